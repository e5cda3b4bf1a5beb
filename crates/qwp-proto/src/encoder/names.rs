//! Table and column name rules.
//!
//! The wire caps names at 127 UTF-8 bytes. On top of that QuestDB refuses
//! some characters because names become directory and file names. The sets
//! below are the facts of QuestDB's `TableUtils.isValidColumnName` /
//! `isValidTableName` (public repository `questdb/questdb`,
//! `core/src/main/java/io/questdb/cairo/TableUtils.java`; identical across the
//! revisions we checked):
//! - both kinds: `? , ' " \ / : ) ( + * % ~`, U+0000..=U+0008, TAB, LF,
//!   U+000B, U+000C, CR, U+000E, U+000F, DEL (U+007F) and the BOM U+FEFF;
//! - columns additionally: `.` and `-`;
//! - tables: `.` only alone and not first or last (no `..`), and no
//!   leading or trailing space.
//!
//! Refusing these here turns a server-side rejection of a whole stored frame
//! (which a store-and-forward client could only drop or halt on) into an
//! immediate error on the one bad row.

use super::error::NameProblem;
use crate::types::MAX_NAME_LEN;

/// Characters refused in both table and column names.
fn forbidden_in_both(c: char) -> bool {
    matches!(
        c,
        '?' | ',' | '\'' | '"' | '\\' | '/' | ':' | ')' | '(' | '+' | '*' | '%' | '~' | '\u{0}'
            ..='\u{8}'
                | '\t'
                | '\n'
                | '\u{b}'
                | '\u{c}'
                | '\r'
                | '\u{e}'
                | '\u{f}'
                | '\u{7f}'
                | '\u{feff}'
    )
}

fn check_len(name: &str) -> Result<(), NameProblem> {
    if name.is_empty() {
        return Err(NameProblem::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameProblem::TooLong { len: name.len() });
    }
    Ok(())
}

/// Checks a column name against the wire limit and QuestDB's rules.
pub(crate) fn check_column_name(name: &str) -> Result<(), NameProblem> {
    check_len(name)?;
    for (at, ch) in name.char_indices() {
        if forbidden_in_both(ch) || ch == '.' || ch == '-' {
            return Err(NameProblem::ForbiddenChar { ch, at });
        }
    }
    Ok(())
}

/// Checks a table name against the wire limit and QuestDB's rules.
pub(crate) fn check_table_name(name: &str) -> Result<(), NameProblem> {
    check_len(name)?;
    let mut prev_dot = false;
    for (at, ch) in name.char_indices() {
        if forbidden_in_both(ch) {
            return Err(NameProblem::ForbiddenChar { ch, at });
        }
        let dot = ch == '.';
        if dot && (at == 0 || at + 1 == name.len() || prev_dot) {
            return Err(NameProblem::MisplacedDot);
        }
        prev_dot = dot;
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Err(NameProblem::EdgeSpace);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_refuse_questdb_forbidden_chars() {
        for bad in [
            "a.b",
            "a-b",
            "a?",
            "a,b",
            "a'b",
            "a\"b",
            "a\\b",
            "a/b",
            "a:b",
            "a)",
            "(a",
            "a+b",
            "a*b",
            "a%",
            "a~",
            "a\0",
            "a\u{8}",
            "a\tb",
            "a\nb",
            "a\u{b}",
            "a\u{c}",
            "a\rb",
            "a\u{e}",
            "a\u{f}",
            "a\u{7f}",
            "\u{feff}a",
        ] {
            assert!(
                matches!(
                    check_column_name(bad),
                    Err(NameProblem::ForbiddenChar { .. })
                ),
                "{bad:?}"
            );
        }
        for good in [
            "a",
            "temp_c",
            "Ünïcödé",
            "with space",
            "a#b",
            "a\u{10}b",
            "日本",
        ] {
            assert_eq!(check_column_name(good), Ok(()), "{good:?}");
        }
        assert_eq!(
            check_column_name("a-b"),
            Err(NameProblem::ForbiddenChar { ch: '-', at: 1 })
        );
    }

    #[test]
    fn table_names_allow_single_inner_dots_and_dashes() {
        for good in ["t", "file.csv", "a.b.c", "my-table", "with space", "x_1"] {
            assert_eq!(check_table_name(good), Ok(()), "{good:?}");
        }
        for bad in [".t", "t.", "a..b", "."] {
            assert_eq!(
                check_table_name(bad),
                Err(NameProblem::MisplacedDot),
                "{bad:?}"
            );
        }
        for bad in [" t", "t ", " "] {
            assert_eq!(
                check_table_name(bad),
                Err(NameProblem::EdgeSpace),
                "{bad:?}"
            );
        }
        for bad in ["a/b", "a:b", "a\0", "a~", "a\u{feff}"] {
            assert!(
                matches!(
                    check_table_name(bad),
                    Err(NameProblem::ForbiddenChar { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn name_length_is_counted_in_utf8_bytes() {
        assert_eq!(check_table_name(""), Err(NameProblem::Empty));
        assert_eq!(check_column_name(""), Err(NameProblem::Empty));
        let ok = "x".repeat(MAX_NAME_LEN);
        assert_eq!(check_column_name(&ok), Ok(()));
        assert_eq!(
            check_column_name(&"x".repeat(MAX_NAME_LEN + 1)),
            Err(NameProblem::TooLong { len: 128 })
        );
        // 64 two-byte chars = 128 bytes, although only 64 chars.
        assert_eq!(
            check_table_name(&"é".repeat(64)),
            Err(NameProblem::TooLong { len: 128 })
        );
    }
}
