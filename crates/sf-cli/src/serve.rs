//! `qwp-sf serve`: the reference QWP server as a process.
//!
//! Contract: exactly one line `listening on ws://HOST:PORT` on stdout once
//! the listener accepts connections (the real port when bound to port 0),
//! nothing else on stdout; a clean stop on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use qwp_server::{Auth, DurableAckMode, Server, ServerConfig, ServerHandle};

use crate::error::CliError;
use crate::Outcome;

/// Arguments of `qwp-sf serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Append every accepted row to DIR/TABLE.jsonl (one JSON object per
    /// row, column name to value, the designated timestamp under
    /// "timestamp").
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Answer X-QWP-Request-Durable-Ack clients with DURABLE_ACK frames.
    #[arg(long)]
    durable_ack: bool,
    /// With --durable-ack: how long after its OK a commit becomes durable.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "durable_ack")]
    durable_ack_delay_ms: u64,
    /// Demand `Authorization: Bearer T` on every upgrade.
    #[arg(long, value_name = "T", conflicts_with_all = ["user", "password"])]
    token: Option<String>,
    /// Demand HTTP Basic auth with this user (needs --password).
    #[arg(long, value_name = "U", requires = "password")]
    user: Option<String>,
    /// The password for --user.
    #[arg(long, value_name = "P", requires = "user")]
    password: Option<String>,
}

impl ServeArgs {
    fn config(&self) -> ServerConfig {
        // A long-running server must not grow with every row: rows are only
        // counted (and persisted with --data-dir).
        let mut config = ServerConfig::new(self.listen).with_retain_rows(false);
        if let Some(dir) = &self.data_dir {
            config = config.with_data_dir(dir);
        }
        if self.durable_ack {
            config = config.with_durable_ack(DurableAckMode::After(Duration::from_millis(
                self.durable_ack_delay_ms,
            )));
        }
        if let Some(token) = &self.token {
            config = config.with_auth(Auth::Bearer {
                token: token.clone(),
            });
        } else if let (Some(username), Some(password)) = (&self.user, &self.password) {
            config = config.with_auth(Auth::Basic {
                username: username.clone(),
                password: password.clone(),
            });
        }
        config
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> Result<Outcome, CliError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    rt.block_on(async {
        // Handlers first: a signal sent as soon as the line is read must
        // stop the server cleanly, not kill it with the default action.
        let stop = stop_signals()?;
        let server = Server::bind(args.config()).await?;
        announce(&server)?;
        wait_for_stop_signal(stop).await;
        tracing::info!("stopping");
        server.shutdown().await;
        Ok(Outcome::Ok)
    })
}

/// The one stdout line, flushed at once: scripts and tests wait on it.
fn announce(server: &ServerHandle) -> Result<(), CliError> {
    crate::print_line(&listening_line(server.local_addr()))
}

/// `listening on ws://HOST:PORT`.
pub fn listening_line(addr: SocketAddr) -> String {
    format!("listening on ws://{addr}")
}

/// SIGTERM and SIGINT handlers, installed before the server announces.
fn stop_signals() -> Result<(tokio::signal::unix::Signal, tokio::signal::unix::Signal), CliError> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate()).map_err(CliError::Signal)?;
    let int = signal(SignalKind::interrupt()).map_err(CliError::Signal)?;
    Ok((term, int))
}

async fn wait_for_stop_signal(
    (mut term, mut int): (tokio::signal::unix::Signal, tokio::signal::unix::Signal),
) {
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line_names_the_bound_address() {
        let v4: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(listening_line(v4), "listening on ws://127.0.0.1:9000");
        let v6: SocketAddr = "[::1]:9001".parse().unwrap();
        assert_eq!(listening_line(v6), "listening on ws://[::1]:9001");
    }
}
