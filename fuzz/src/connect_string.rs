//! Target `connect_string`: arbitrary text through [`Config::from_conf`].
//!
//! Property: a string that parses prints (with [`Config::to_conf_string`]) to a
//! string that parses to an equal configuration, and printing that again gives
//! the same string (the printed form is a fixed point). Errors and the redacted
//! form display without panicking.

use sf_core::config::Config;

use crate::Outcome;

/// Runs the body on `data` (invalid UTF-8 is replaced, so every input reaches
/// the parser).
pub fn run(data: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(data);
    let cfg = match Config::from_conf(&text) {
        Ok(cfg) => cfg,
        Err(e) => {
            let _ = e.to_string();
            return "error";
        }
    };
    let printed = cfg.to_conf_string();
    let _ = cfg.to_redacted_conf_string();
    let reparsed = Config::from_conf(&printed).unwrap_or_else(|e| {
        panic!("config: printed form {printed:?} of {text:?} does not parse: {e}")
    });
    assert_eq!(
        reparsed, cfg,
        "config: {text:?} printed as {printed:?} parses to a different configuration"
    );
    assert_eq!(
        reparsed.to_conf_string(),
        printed,
        "config: printed form is not a fixed point"
    );
    if cfg.storage().is_memory_mode() {
        "ok/memory"
    } else {
        "ok/sf_dir"
    }
}
