//! `qwp-sf`: the command line of the qwp-sf project.
//!
//! The subcommands (`serve`, `ingest`, `drain`, `inspect`, `decode`, `sim`)
//! arrive with the CLI issue. Until then the binary says so and exits non-zero
//! rather than pretending to do work.

fn main() -> std::process::ExitCode {
    eprintln!(
        "qwp-sf {}: no subcommands are implemented yet (serve, ingest, drain, inspect, decode and sim are planned)",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::from(2)
}
