//! `qwp-sf drain --conf CONF`: open the slot the connect string names,
//! recover it, replay everything unacknowledged, and exit once the server
//! acknowledged all of it.
//!
//! Output contract (stdout, one line):
//! `drained F frames from slot SENDER_ID (acked FSN A)`, where F is the
//! number of frames that were unacknowledged when the slot was opened and
//! A the acknowledged FSN at the end (`none` for an empty slot that never
//! held a frame).

use std::time::Duration;

use sf_core::config::Config;
use sf_core::Fsn;
use sf_io_tokio::Sender;

use crate::error::CliError;
use crate::ingest::fsns_between;
use crate::Outcome;

/// Arguments of `qwp-sf drain`.
#[derive(Debug, clap::Args)]
pub struct DrainArgs {
    /// Connect string naming the server and the slot (`sf_dir`, and
    /// `sender_id` unless it is `default`).
    #[arg(long, value_name = "CONF")]
    conf: String,
    /// How long to wait for the server to acknowledge everything.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    ack_timeout_secs: u64,
}

/// Runs `drain`.
pub fn run(args: DrainArgs) -> Result<Outcome, CliError> {
    let config = Config::from_conf(&args.conf)?;
    if config.storage().sf_dir.is_none() {
        return Err(CliError::Usage(
            "drain needs sf_dir in the connect string: a memory-mode sender has no slot to drain"
                .to_owned(),
        ));
    }
    let sender_id = config.storage().sender_id.clone();
    // What recovery will find, read before the sender opens the slot (once
    // it runs, replay may already be acknowledged by the time its counters
    // are read). The sender's own open refuses the same slots.
    let slot_dir = std::path::Path::new(config.storage().sf_dir.as_deref().unwrap_or_default())
        .join(&sender_id);
    let pending = match sf_io_tokio::fs::inspect_slot(&slot_dir).recovery {
        Ok(plan) => fsns_between(plan.slot.acked, plan.slot.next_fsn.prev()),
        // The sender's open reports the reason with its context.
        Err(_) => 0,
    };
    // Building the sender takes the lock, recovers the slot and connects;
    // replay starts at acked + 1 on its own (W1).
    let sender = Sender::from_config(config)?;
    let start = sender.counters();
    let waited = match start.published_fsn {
        Some(last) => sender.wait_acked(last, Duration::from_secs(args.ack_timeout_secs)),
        None => Ok(()),
    };
    let end = sender.counters();
    let closed = sender.close();
    waited?;
    closed?;
    crate::print_line(&drained_line(pending, &sender_id, end.acked_fsn))?;
    Ok(Outcome::Ok)
}

/// The one output line.
pub fn drained_line(frames: u64, sender_id: &str, acked: Option<Fsn>) -> String {
    let acked = acked.map_or_else(|| "none".to_owned(), |f| f.get().to_string());
    format!("drained {frames} frames from slot {sender_id} (acked FSN {acked})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drained_line_is_the_documented_format() {
        assert_eq!(
            drained_line(3, "default", Some(Fsn(7))),
            "drained 3 frames from slot default (acked FSN 7)"
        );
        assert_eq!(
            drained_line(0, "s1", None),
            "drained 0 frames from slot s1 (acked FSN none)"
        );
    }
}
