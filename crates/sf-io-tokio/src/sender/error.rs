//! The one error type of the public sender API.

use qwp_proto::encoder::EncodeError;
use sf_core::config::ConfigError;
use sf_core::engine::{EngineBuildError, EngineError};
use sf_core::errors::SenderError;
use sf_core::storage::AppendError;
use sf_core::Fsn;

use crate::fs::{FsError, SlotOpenError};
use crate::net::SettingsError;

/// Why a sender call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connect string or a configuration value is invalid.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// A value the configuration checks could not catch (derived limits).
    #[error("configuration: {0}")]
    InvalidConfig(String),
    /// The connection settings (client id, credentials, TLS roots) are
    /// invalid.
    #[error("connection settings: {0}")]
    Settings(#[from] SettingsError),
    /// The slot could not be opened: held by another sender (the error names
    /// its PID, C3) or refused by recovery (S3).
    #[error(transparent)]
    Slot(#[from] SlotOpenError),
    /// A file of the slot could not be opened.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// The engine refused the configuration or the recovered slot.
    #[error("engine: {0}")]
    Engine(#[from] EngineBuildError),
    /// A row was refused by the encoder; the rows already pending are kept.
    #[error("row refused: {0}")]
    Encode(#[from] EncodeError),
    /// A terminal error is latched (HALT policy, terminal close code, auth
    /// failure, reconnect budget): every producer call returns it.
    #[error("sender halted: {0}")]
    Terminal(SenderError),
    /// The sender was closed.
    #[error("sender is closed")]
    Closed,
    /// The append was refused: frame too large, the cap's deadline passed
    /// (S6; the message says whether the wire was up or reconnecting), or
    /// the write into the segment failed (S7: the FSN did not advance).
    #[error("append refused: {0}")]
    Append(#[from] AppendError),
    /// `wait_acked` gave up before the FSN was acknowledged.
    #[error("FSN {fsn} not acknowledged within {timeout_ms} ms (acknowledged: {acked:?})")]
    AckTimeout {
        /// The FSN waited for.
        fsn: Fsn,
        /// The timeout.
        timeout_ms: u128,
        /// The acknowledged FSN when the wait ended.
        acked: Option<Fsn>,
    },
    /// The I/O task or its thread could not start or stopped unexpectedly.
    #[error("I/O task: {0}")]
    IoTask(String),
}

impl From<EngineError> for Error {
    fn from(e: EngineError) -> Error {
        match e {
            EngineError::Terminal(t) => Error::Terminal(t),
            EngineError::Closed => Error::Closed,
            EngineError::Append(a) => Error::Append(a),
        }
    }
}

/// Shorthand for results of the sender API.
pub type Result<T, E = Error> = core::result::Result<T, E>;
