//! InfluxDB line protocol in: InfluxData's parser splits and parses, this
//! module numbers the lines and maps each parsed line onto the `Sender`'s row
//! API.
//!
//! | ILP | Sender call |
//! |---|---|
//! | measurement | `table` |
//! | tag | `symbol` |
//! | field `12i` | `column_i64` |
//! | field `12u` | `column_i64` (refused above `i64::MAX`: QuestDB has no unsigned LONG) |
//! | field `1.5` | `column_f64` |
//! | field `"text"` | `column_str` (VARCHAR) |
//! | field `t` / `false` | `column_bool` |
//! | timestamp (ns) | `at_nanos` |
//! | no timestamp | `at_now` |
//!
//! Blank lines and lines starting with `#` are skipped (the comment form
//! QuestDB and Telegraf files use); line numbers count every physical line.

use influxdb_line_protocol::{FieldValue, ParsedLine};
use qwp_proto::encoder::EncodeError;
use sf_io_tokio::Sender;

use crate::error::CliError;

/// One logical line of the input with its 1-based physical line number.
#[derive(Debug)]
pub struct NumberedLine<'a> {
    /// Where the line starts in the input.
    pub number: usize,
    /// The parsed line, or the parser's reason.
    pub parsed: Result<ParsedLine<'a>, String>,
}

/// The data lines of `input`, in order, each parsed. A quoted string field
/// may span physical lines; the number is the line the entry starts on.
pub fn lines(input: &str) -> impl Iterator<Item = NumberedLine<'_>> {
    let mut next_number = 1usize;
    influxdb_line_protocol::split_lines(input).filter_map(move |raw| {
        let number = next_number;
        next_number += 1 + raw.matches('\n').count();
        let text = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = text.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            return None;
        }
        let parsed = match influxdb_line_protocol::parse_lines(text).next() {
            Some(Ok(line)) => check(line),
            Some(Err(e)) => Err(e.to_string()),
            None => return None,
        };
        Some(NumberedLine { number, parsed })
    })
}

/// Checks what the parser accepts but a QuestDB row cannot hold.
fn check(line: ParsedLine<'_>) -> Result<ParsedLine<'_>, String> {
    for (name, value) in &line.field_set {
        if let FieldValue::U64(v) = value {
            if i64::try_from(*v).is_err() {
                return Err(format!(
                    "field {name}: unsigned integer {v} does not fit a LONG column"
                ));
            }
        }
    }
    Ok(line)
}

/// Parses every line of `input` without sending anything; the first bad
/// line is the error. Returns the number of rows.
pub fn validate(input: &str) -> Result<u64, CliError> {
    let mut rows = 0u64;
    for line in lines(input) {
        if let Err(reason) = line.parsed {
            return Err(CliError::Ilp {
                line: line.number,
                reason,
            });
        }
        rows += 1;
    }
    Ok(rows)
}

/// Writes one parsed line as a row. A row that would overflow the frame
/// limit is retried once after a flush (the sender refuses such a row
/// without a trace); any other refusal rolls the row back and is the error.
pub fn send_line(
    sender: &mut Sender,
    number: usize,
    line: &ParsedLine<'_>,
) -> Result<(), CliError> {
    match write_row(sender, line) {
        Ok(()) => Ok(()),
        Err(sf_io_tokio::Error::Encode(EncodeError::BatchFull { pending_rows, .. }))
            if pending_rows > 0 =>
        {
            sender.flush()?;
            write_row(sender, line).map_err(|source| refused(sender, number, source))
        }
        Err(source) => Err(refused(sender, number, source)),
    }
}

fn refused(sender: &mut Sender, number: usize, source: sf_io_tokio::Error) -> CliError {
    // Leave no half-built row behind for the close that follows.
    let _ = sender.with_row(|b| {
        b.rollback_row();
        Ok(())
    });
    CliError::Row {
        line: number,
        source: Box::new(source),
    }
}

fn write_row(sender: &mut Sender, line: &ParsedLine<'_>) -> Result<(), sf_io_tokio::Error> {
    sender.table(line.series.measurement.as_str())?;
    if let Some(tags) = &line.series.tag_set {
        for (name, value) in tags {
            sender.symbol(name.as_str(), value.as_str())?;
        }
    }
    for (name, value) in &line.field_set {
        let name = name.as_str();
        match value {
            FieldValue::I64(v) => sender.column_i64(name, *v)?,
            // `check` refused values above i64::MAX before anything was sent.
            FieldValue::U64(v) => sender.column_i64(name, i64::try_from(*v).unwrap_or(i64::MAX))?,
            FieldValue::F64(v) => sender.column_f64(name, *v)?,
            FieldValue::String(s) => sender.column_str(name, s.as_str())?,
            FieldValue::Boolean(b) => sender.column_bool(name, *b)?,
        };
    }
    match line.timestamp {
        Some(ns) => sender.at_nanos(ns),
        None => sender.at_now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers_count_blank_comment_and_multiline_entries() {
        let input = "# comment\n\ncpu,host=a v=1i 1\ncpu s=\"two\nlines\" 2\r\ncpu v=3i 3\n";
        let numbers: Vec<usize> = lines(input).map(|l| l.number).collect();
        assert_eq!(numbers, vec![3, 4, 6]);
        assert!(lines(input).all(|l| l.parsed.is_ok()));
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number_and_the_parsers_reason() {
        let input = "cpu v=1i 1\ncpu v=1i 2\ncpu v=notanumber 3\ncpu v=1i 4\n";
        match validate(input) {
            Err(CliError::Ilp { line, reason }) => {
                assert_eq!(line, 3);
                assert!(!reason.is_empty());
            }
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    #[test]
    fn an_unsigned_field_above_i64_max_is_refused_before_sending() {
        let input = "cpu v=18446744073709551615u 1\n";
        match validate(input) {
            Err(CliError::Ilp { line, reason }) => {
                assert_eq!(line, 1);
                assert!(reason.contains("does not fit"), "{reason}");
            }
            other => panic!("expected a line error, got {other:?}"),
        }
        assert_eq!(validate("cpu v=5u 1\n").unwrap(), 1);
    }

    #[test]
    fn every_field_type_parses() {
        let input = "m,t=x i=1i,u=2u,f=1.5,s=\"hi\",b=true 1700000000000000000\nm f=2\n";
        let parsed: Vec<_> = lines(input).map(|l| l.parsed.unwrap()).collect();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].timestamp, Some(1_700_000_000_000_000_000));
        assert_eq!(parsed[1].timestamp, None);
    }
}
