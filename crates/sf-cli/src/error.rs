//! The command line's one error type: every failure a command can end with,
//! with the context an operator needs on a single line.

use std::path::PathBuf;

/// Why a command failed (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file or standard input could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The path (`-` for standard input).
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The input is not UTF-8 text.
    #[error("{} is not UTF-8 text (byte {valid_up_to})", path.display())]
    NotUtf8 {
        /// The path.
        path: PathBuf,
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// Writing the command's output failed (a closed pipe, a full disk).
    #[error("cannot write the output")]
    Output(#[source] std::io::Error),
    /// The tokio runtime could not be built.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// The server could not start.
    #[error("server")]
    Server(#[from] qwp_server::ServerError),
    /// Waiting for SIGINT/SIGTERM failed.
    #[error("cannot install the signal handler")]
    Signal(#[source] std::io::Error),
    /// The connect string is invalid.
    #[error("connect string")]
    Conf(#[from] sf_core::config::ConfigError),
    /// A sender call failed.
    #[error("sender")]
    Sender(#[source] Box<sf_io_tokio::Error>),
    /// A line of line protocol could not be parsed.
    #[error("line {line}: {reason}")]
    Ilp {
        /// 1-based line number in the input.
        line: usize,
        /// The parser's reason.
        reason: String,
    },
    /// A parsed line could not become a row (type clash, bad name, …).
    #[error("line {line}")]
    Row {
        /// 1-based line number in the input.
        line: usize,
        /// The sender's refusal.
        #[source]
        source: Box<sf_io_tokio::Error>,
    },
    /// A command was used in a way it cannot serve (a missing
    /// connect-string key, an out-of-range argument).
    #[error("{0}")]
    Usage(String),
    /// `inspect` was pointed at something that is not there.
    #[error("no slot {sender_id:?} under {}", sf_dir.display())]
    NoSuchSlot {
        /// The sf_dir.
        sf_dir: PathBuf,
        /// The requested sender id.
        sender_id: String,
    },
    /// The sf_dir could not be listed.
    #[error("cannot list {}", path.display())]
    List {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `--hex` input is not hex.
    #[error("hex input: {0}")]
    Hex(String),
    /// A message does not decode.
    #[error("{what} does not decode")]
    Decode {
        /// Which message (`message`, `frame FSN 3`).
        what: String,
        /// The decoder's error.
        #[source]
        source: Box<qwp_proto::decoder::DecodeError>,
    },
    /// A segment file is not a usable segment.
    #[error("{}: {reason}", path.display())]
    Segment {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// `sim`: some seeds broke an invariant (their lines say which).
    #[error("{failed} of {total} seeds failed")]
    SimFailed {
        /// Seeds with a violation.
        failed: u64,
        /// Seeds run.
        total: u64,
    },
    /// A file of a slot could not be read.
    #[error(transparent)]
    Fs(#[from] sf_io_tokio::fs::FsError),
}

impl From<sf_io_tokio::Error> for CliError {
    fn from(e: sf_io_tokio::Error) -> CliError {
        CliError::Sender(Box::new(e))
    }
}

/// `e` and its sources joined with `: `, for the one `error:` line.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        // `#[error(transparent)]` layers repeat their source's message.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_joins_every_cause_on_one_line() {
        let e = CliError::Read {
            path: PathBuf::from("x.ilp"),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "No such file"),
        };
        assert_eq!(chain(&e), "cannot read x.ilp: No such file");
        assert!(!chain(&e).contains('\n'));
    }
}
