//! `qwp-sf`: the command line of the qwp-sf project.
//!
//! - `serve`: the reference QWP server, optionally persisting rows as JSONL.
//! - `ingest`: InfluxDB line protocol in, rows out through a store-and-forward
//!   `Sender` (with no `--conf`, against an in-process server).
//! - `drain`: replay whatever a slot still holds, then exit.
//! - `inspect`: a read-only report of what is stuck on disk.
//! - `decode`: a QWP1 message or a segment file as JSON lines.
//! - `sim`: the deterministic simulation, one line per seed.
//!
//! Exit codes: 0 ok, 1 any error (one `error: …` line on stderr with its
//! cause chain), 2 when `inspect` finds a slot recovery would refuse.
//! Logs go to stderr (`-v`, `RUST_LOG`); stdout carries only the command's
//! output, whose formats are contracts.
#![forbid(unsafe_code)]

mod decode;
mod drain;
mod error;
mod ilp;
mod ingest;
mod inspect;
mod serve;
mod sim;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use error::CliError;

/// Store-and-forward ingestion into QuestDB over QWP.
#[derive(Debug, Parser)]
#[command(name = "qwp-sf", version, about, long_about = None)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG
    /// overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the reference QWP ingest server until SIGINT/SIGTERM.
    Serve(serve::ServeArgs),
    /// Send InfluxDB line protocol through a store-and-forward sender.
    Ingest(ingest::IngestArgs),
    /// Replay everything a slot holds unacknowledged, then exit.
    Drain(drain::DrainArgs),
    /// Show what is on disk under an sf_dir, read-only.
    Inspect(inspect::InspectArgs),
    /// Print a QWP1 message or a segment file's frames as JSON lines.
    Decode(decode::DecodeArgs),
    /// Run the deterministic simulation: one line per seed.
    Sim(sim::SimArgs),
}

/// How a command that ran to its end wants the process to exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// `inspect` found a slot recovery would refuse: exit 2.
    Refused,
}

/// Writes one line of a command's stdout contract and flushes it; a closed
/// stdout (EPIPE) is an error with exit code 1, never a panic.
fn print_line(line: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(CliError::Output)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    init_logging(cli.verbose);
    match run(cli.command) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Refused) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {}", error::chain(&e));
            ExitCode::from(1)
        }
    }
}

/// `--help`/`--version` print and exit 0; a usage error is one `error:`
/// line and exit 1 (clap's own exit code 2 is `inspect`'s "refused").
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    eprintln!("{} (see --help)", one_line(&e.render().to_string()));
    ExitCode::from(1)
}

/// The paragraph before clap's usage block, on one line.
fn one_line(rendered: &str) -> String {
    rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(command: Command) -> Result<Outcome, CliError> {
    match command {
        Command::Serve(a) => serve::run(a),
        Command::Ingest(a) => ingest::run(a),
        Command::Drain(a) => drain::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Decode(a) => decode::run(a),
        Command::Sim(a) => sim::run(a),
    }
}

/// Logs to stderr: `RUST_LOG` when set, else warnings plus one level per `-v`.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// A path argument: reads `-` as standard input where a command allows it.
pub fn is_stdin(path: &std::path::Path) -> bool {
    path == std::path::Path::new("-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_flag_has_help_text() {
        fn check(cmd: &clap::Command, path: &str) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(
                    arg.get_help().is_some() || arg.get_long_help().is_some(),
                    "{path} --{id} has no help text"
                );
            }
            for sub in cmd.get_subcommands() {
                assert!(
                    sub.get_about().is_some(),
                    "{path} {} has no about",
                    sub.get_name()
                );
                check(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        Cli::command().debug_assert();
        check(&Cli::command(), "qwp-sf");
    }

    #[test]
    fn a_usage_error_is_one_error_line() {
        let e = Cli::try_parse_from(["qwp-sf", "serve", "--user", "u"]).unwrap_err();
        let line = one_line(&e.render().to_string());
        assert!(line.starts_with("error: "), "{line}");
        assert!(line.contains("--password"), "{line}");
        assert!(!line.contains('\n'));
    }
}
