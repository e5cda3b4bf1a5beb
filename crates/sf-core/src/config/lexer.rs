//! The connect-string grammar, below the level of meaning: `scheme::`, then
//! `key=value` parameters separated by `;`, with `;;` standing for a literal
//! `;` inside a value. Keys and values are handed up verbatim; what they mean
//! and whether they are valid is the builder's business.

use super::error::ConfigError;

/// Splits `scheme::params` and returns `(scheme, params)`.
///
/// A scheme is one or more ASCII letters, digits or `_`; anything else before
/// the first `::` (or no `::` at all) means the scheme is missing. Which
/// schemes are supported is decided by the caller.
pub(super) fn split_scheme(conf: &str) -> Result<(&str, &str), ConfigError> {
    let (scheme, params) = conf.split_once("::").ok_or(ConfigError::MissingScheme)?;
    if !is_identifier(scheme) {
        return Err(ConfigError::MissingScheme);
    }
    Ok((scheme, params))
}

/// Whether `s` is a non-empty run of ASCII letters, digits and `_` (the shape
/// of both schemes and keys).
pub(super) fn is_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One `key=value` parameter, value already unescaped.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct RawParam<'a> {
    /// Everything before the first `=` (not yet checked to be an identifier).
    pub key: &'a str,
    /// The value with every `;;` replaced by `;`.
    pub value: String,
}

/// A parameter that has no `=` before its terminating `;` (or the end).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct NoEquals<'a> {
    /// The parameter's text.
    pub fragment: &'a str,
}

/// Walks the parameters after `scheme::`, one at a time.
///
/// The parser stops at the first error, so the lexer never has to guess how
/// to resynchronise after a malformed parameter.
pub(super) struct Lexer<'a> {
    rest: &'a str,
}

impl<'a> Lexer<'a> {
    /// A lexer over the text after `scheme::`.
    pub(super) fn new(params: &'a str) -> Self {
        Lexer { rest: params }
    }

    /// The next parameter, or `None` at the end. A trailing `;` is optional.
    pub(super) fn next_param(&mut self) -> Option<Result<RawParam<'a>, NoEquals<'a>>> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = self.rest;
        let eq = rest.find('=');
        let semi = rest.find(';');
        let key_end = match (eq, semi) {
            (Some(e), Some(s)) if e < s => e,
            (Some(e), None) => e,
            (_, Some(s)) => {
                self.rest = "";
                return Some(Err(NoEquals {
                    fragment: &rest[..s],
                }));
            }
            (None, None) => {
                self.rest = "";
                return Some(Err(NoEquals { fragment: rest }));
            }
        };
        let key = &rest[..key_end];
        let after = &rest[key_end + 1..];
        // The value runs to the first `;` that is not part of a `;;` pair.
        let mut value = String::new();
        let mut consumed = after.len();
        let mut chunk_start = 0;
        let bytes = after.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b';' {
                value.push_str(&after[chunk_start..i]);
                if bytes.get(i + 1) == Some(&b';') {
                    value.push(';');
                    i += 2;
                    chunk_start = i;
                    continue;
                }
                consumed = i + 1;
                chunk_start = bytes.len();
                break;
            }
            i += 1;
        }
        if chunk_start < bytes.len() {
            value.push_str(&after[chunk_start..]);
        }
        self.rest = &after[consumed.min(after.len())..];
        Some(Ok(RawParam { key, value }))
    }
}

/// Writes `value` so that the lexer reads it back unchanged: every `;`
/// becomes `;;`.
pub(super) fn push_escaped(out: &mut String, value: &str) {
    for ch in value.chars() {
        if ch == ';' {
            out.push_str(";;");
        } else {
            out.push(ch);
        }
    }
}

/// Whether `ch` is a control character that connect strings forbid
/// (U+0000–U+001F and U+007F–U+009F).
pub(super) fn is_forbidden_control(ch: char) -> bool {
    matches!(ch, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(params: &str) -> Vec<Result<(String, String), String>> {
        let mut lexer = Lexer::new(params);
        let mut out = Vec::new();
        while let Some(p) = lexer.next_param() {
            out.push(
                p.map(|p| (p.key.to_owned(), p.value))
                    .map_err(|e| e.fragment.to_owned()),
            );
        }
        out
    }

    fn ok(k: &str, v: &str) -> Result<(String, String), String> {
        Ok((k.to_owned(), v.to_owned()))
    }

    #[test]
    fn trailing_semicolon_is_optional() {
        assert_eq!(all("a=1;b=2;"), vec![ok("a", "1"), ok("b", "2")]);
        assert_eq!(all("a=1;b=2"), vec![ok("a", "1"), ok("b", "2")]);
        assert_eq!(all(""), vec![]);
    }

    #[test]
    fn doubled_semicolon_is_a_literal_semicolon() {
        assert_eq!(
            all("password=p;;ssw;;rd;x=1"),
            vec![ok("password", "p;ssw;rd"), ok("x", "1")]
        );
        assert_eq!(all("a=;;;"), vec![ok("a", ";")]);
        assert_eq!(all("a=x;;"), vec![ok("a", "x;")]);
        assert_eq!(all("a=;;;;b;"), vec![ok("a", ";;b")]);
    }

    #[test]
    fn equals_inside_a_value_is_kept() {
        assert_eq!(all("token=abc==;"), vec![ok("token", "abc==")]);
    }

    #[test]
    fn parameter_without_equals_is_reported() {
        assert_eq!(
            all("a=1;oops;b=2"),
            vec![ok("a", "1"), Err("oops".to_owned())]
        );
        assert_eq!(all("oops"), vec![Err("oops".to_owned())]);
        assert_eq!(all(";"), vec![Err(String::new())]);
    }

    #[test]
    fn empty_value_is_handed_up_as_empty() {
        assert_eq!(all("a=;"), vec![ok("a", "")]);
        assert_eq!(all("a="), vec![ok("a", "")]);
    }

    #[test]
    fn escape_then_lex_is_identity() {
        for v in ["", ";", ";;", "a;b", "x;", ";x", "é;ü", "="] {
            let mut s = String::from("k=");
            push_escaped(&mut s, v);
            s.push(';');
            assert_eq!(all(&s), vec![ok("k", v)], "value {v:?}");
        }
    }

    #[test]
    fn scheme_needs_identifier_and_double_colon() {
        assert_eq!(split_scheme("ws::addr=h"), Ok(("ws", "addr=h")));
        assert_eq!(split_scheme("ws:addr=h"), Err(ConfigError::MissingScheme));
        assert_eq!(split_scheme("::addr=h"), Err(ConfigError::MissingScheme));
        assert_eq!(
            split_scheme("addr=[::1]:9000"),
            Err(ConfigError::MissingScheme)
        );
    }
}
