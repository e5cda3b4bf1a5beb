//! The one error type of the connect-string parser.
//!
//! Every variant names the key it is about and, for keys whose values are not
//! secret, the offending value, so that the message alone tells the user what
//! to change. Values of `password`, `token` and `tls_roots_password` never
//! appear in an error: those keys only fail when empty, and when the parameter
//! after one of them is not a known `key=` (the mark of a secret holding an
//! unescaped `;`), the error is [`ConfigError::SecretNotEscaped`], which does
//! not quote it.

/// Why a connect string (or a builder setting) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The string does not start with `<scheme>::`.
    #[error(
        "the connect string must start with `ws::` or `wss::` (e.g. `ws::addr=localhost:9000;`)"
    )]
    MissingScheme,

    /// A scheme other than `ws` / `wss`.
    #[error(
        "scheme `{scheme}` is not supported: store-and-forward ingest runs only over the \
         WebSocket transports `ws::` and `wss::` (TLS)"
    )]
    UnsupportedScheme {
        /// The scheme as written.
        scheme: String,
    },

    /// A parameter contains no `=`.
    #[error(
        "parameter `{fragment}` has no `=`; every parameter is `key=value;` and a `;` \
         inside a value must be doubled (`;;`)"
    )]
    MissingEquals {
        /// The parameter text (at most 64 characters of it).
        fragment: String,
    },

    /// A key that is empty or holds characters other than ASCII letters, digits
    /// and `_`.
    #[error("`{key}` is not a valid key: keys are ASCII letters, digits and `_`")]
    InvalidKey {
        /// The key as written.
        key: String,
    },

    /// `key=` with nothing after the `=`.
    #[error("`{key}` has no value")]
    MissingValue {
        /// The key.
        key: String,
    },

    /// A value holds a control character (U+0000–U+001F, U+007F–U+009F).
    #[error(
        "the value of `{key}` contains a control character, which connect strings do not allow"
    )]
    ControlCharacter {
        /// The key whose value holds it.
        key: String,
    },

    /// Text after a secret value could not be read as a parameter; most likely
    /// the secret holds an unescaped `;`. The text is not echoed.
    #[error(
        "the text after `{key}=…;` is not a valid parameter; if the {key} contains `;`, \
         write it as `;;` (the text is not shown because it may be part of the secret)"
    )]
    SecretNotEscaped {
        /// The secret key (`password`, `token` or `tls_roots_password`).
        key: &'static str,
    },

    /// A key this client does not know.
    #[error("unknown key `{key}`")]
    UnknownKey {
        /// The key as written.
        key: String,
    },

    /// A key of the egress query client (`target`, `failover*`, `lb_strategy`).
    #[error(
        "`{key}` configures the egress query client; an ingest sender does not accept it \
         (remove it from this connect string)"
    )]
    EgressOnlyKey {
        /// The key as written.
        key: String,
    },

    /// A key given twice (only `addr` may repeat).
    #[error("`{key}` is given more than once (only `addr` may repeat)")]
    DuplicateKey {
        /// The key.
        key: String,
    },

    /// No `addr` at all.
    #[error("`addr` is required (e.g. `addr=localhost:9000`)")]
    MissingAddr,

    /// `addr` has an empty entry: `,,`, or a leading or trailing comma.
    #[error("`addr={value}` has an empty entry (check for `,,` or a leading or trailing comma)")]
    EmptyAddrEntry {
        /// The `addr` value as written.
        value: String,
    },

    /// One `addr` entry is not `host[:port]`.
    #[error("`addr` entry `{entry}` is invalid: {reason}")]
    InvalidAddr {
        /// The entry as written.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A value that is not one of the keywords the key accepts.
    #[error("`{key}={value}` is invalid: expected {expected}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// The accepted spellings.
        expected: &'static str,
    },

    /// A value that is not a decimal integer (or does not fit 64 bits).
    #[error("`{key}={value}` is invalid: {reason}")]
    InvalidNumber {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// Why it is not a number.
        reason: &'static str,
    },

    /// A size that is not `<integer>[K|M|G|T]` or does not fit 64 bits.
    #[error("`{key}={value}` is not a size: {reason}")]
    InvalidSize {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// Why it is not a size.
        reason: &'static str,
    },

    /// A well-formed number outside the range the key allows.
    #[error("`{key}={value}` is out of range: {expected}")]
    OutOfRange {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// The allowed range.
        expected: String,
    },

    /// A `sender_id` that cannot be a slot directory name.
    #[error("`sender_id={value}` is invalid: {reason}")]
    InvalidSenderId {
        /// The value as written.
        value: String,
        /// Why it cannot name a slot directory.
        reason: &'static str,
    },

    /// Both Basic (`username`/`password`) and Bearer (`token`) credentials.
    #[error("give either `username`+`password` (HTTP Basic) or `token` (Bearer), not both")]
    ConflictingAuth,

    /// Half of a Basic credential.
    #[error("HTTP Basic auth needs both `username` and `password`; `{missing}` is missing")]
    IncompleteBasicAuth {
        /// The missing half.
        missing: &'static str,
    },

    /// A TLS key on the plain `ws::` transport.
    #[error("`{key}` only applies to TLS connections; use the `wss::` scheme or remove it")]
    TlsKeyWithoutTls {
        /// The key.
        key: String,
    },

    /// A key whose setting needs files on disk, in memory mode.
    #[error(
        "`{key}={value}` needs `sf_dir` (memory mode has no files); set `sf_dir` or remove it"
    )]
    RequiresSfDir {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
    },

    /// Two keys whose values contradict each other.
    #[error("`{key}` conflicts with `{other}`: {detail}")]
    Conflict {
        /// The key reported.
        key: &'static str,
        /// The key it conflicts with.
        other: &'static str,
        /// How they conflict, with the values.
        detail: String,
    },
}
