//! Why a row or a message could not be encoded.

use thiserror::Error;

use crate::types::ColumnType;

/// The shape of a column: its type plus the per-column parameter the wire
/// carries once per section (GEOHASH precision bits, DECIMAL scale).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnShape {
    /// The wire type.
    pub ty: ColumnType,
    /// GEOHASH precision in bits or DECIMAL scale; `0` for every other type.
    pub param: u8,
}

impl core::fmt::Display for ColumnShape {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.ty {
            ColumnType::Geohash => write!(f, "GEOHASH({} bits)", self.param),
            ColumnType::Decimal64 | ColumnType::Decimal128 | ColumnType::Decimal256 => {
                write!(f, "{}(scale {})", self.ty, self.param)
            }
            ty => write!(f, "{ty}"),
        }
    }
}

/// What is wrong with a table or column name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    /// The name is empty.
    Empty,
    /// The name is longer than [`crate::types::MAX_NAME_LEN`] UTF-8 bytes.
    TooLong {
        /// Its length in UTF-8 bytes.
        len: usize,
    },
    /// The name contains a character QuestDB rejects in this kind of name.
    ForbiddenChar {
        /// The character.
        ch: char,
        /// Its byte offset in the name.
        at: usize,
    },
    /// A table name starts or ends with `.`, or has two dots in a row.
    MisplacedDot,
    /// A table name starts or ends with a space.
    EdgeSpace,
}

impl core::fmt::Display for NameProblem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NameProblem::Empty => f.write_str("it is empty"),
            NameProblem::TooLong { len } => write!(
                f,
                "it is {len} UTF-8 bytes long (max {})",
                crate::types::MAX_NAME_LEN
            ),
            NameProblem::ForbiddenChar { ch, at } => {
                write!(f, "character {ch:?} at byte {at} is not allowed")
            }
            NameProblem::MisplacedDot => {
                f.write_str("a dot may only appear alone and not at either end")
            }
            NameProblem::EdgeSpace => f.write_str("it starts or ends with a space"),
        }
    }
}

/// What is wrong with an array value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrayProblem {
    /// The array has no dimensions.
    NoDimensions,
    /// The array has more than [`crate::types::MAX_ARRAY_DIMS`] dimensions.
    TooManyDimensions {
        /// How many it has.
        dims: usize,
    },
    /// A dimension length does not fit the wire's non-negative i32.
    DimensionTooLarge {
        /// Which dimension.
        dim: usize,
        /// Its length.
        len: usize,
    },
    /// The product of the dimension lengths overflows.
    ElementCountOverflow,
    /// The product of the dimension lengths is not the number of elements given.
    ElementCountMismatch {
        /// The product of the dimensions.
        expected: usize,
        /// The elements supplied.
        actual: usize,
    },
}

impl core::fmt::Display for ArrayProblem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ArrayProblem::NoDimensions => f.write_str("it has no dimensions"),
            ArrayProblem::TooManyDimensions { dims } => write!(
                f,
                "it has {dims} dimensions (max {})",
                crate::types::MAX_ARRAY_DIMS
            ),
            ArrayProblem::DimensionTooLarge { dim, len } => {
                write!(f, "dimension {dim} has length {len} (max {})", i32::MAX)
            }
            ArrayProblem::ElementCountOverflow => {
                f.write_str("the product of its dimensions overflows")
            }
            ArrayProblem::ElementCountMismatch { expected, actual } => write!(
                f,
                "its dimensions call for {expected} elements but {actual} were given"
            ),
        }
    }
}

/// Why the encoder refused a call. Every error from a row method rolls the
/// row in progress back, so the builder holds exactly the rows it held
/// before that row was started.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// The configuration cannot produce valid messages.
    #[error("invalid encoder configuration: {0}")]
    InvalidConfig(&'static str),
    /// A column value or row end was given before [`super::MessageBuilder::table`].
    #[error("no row in progress: call table() first")]
    NoRowInProgress,
    /// `table()` or `encode_into()` was called while a row was in progress.
    #[error("a row for table {table:?} is in progress; end it with at_*() or roll it back")]
    RowInProgress {
        /// The table of the row in progress.
        table: String,
    },
    /// A row was ended without any column.
    #[error("row for table {table:?} has no columns")]
    EmptyRow {
        /// The table.
        table: String,
    },
    /// The table name is not one QuestDB accepts.
    #[error("invalid table name {name:?}: {problem}")]
    InvalidTableName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        problem: NameProblem,
    },
    /// The column name is not one QuestDB accepts.
    #[error("invalid column name {column:?} in table {table:?}: {problem}")]
    InvalidColumnName {
        /// The table.
        table: String,
        /// The name as given.
        column: String,
        /// What is wrong with it.
        problem: NameProblem,
    },
    /// Adding the column would exceed [`crate::types::MAX_COLUMNS`].
    #[error("table {table:?} would have more than {max} columns")]
    TooManyColumns {
        /// The table.
        table: String,
        /// The limit.
        max: usize,
    },
    /// Adding the table would exceed the u16 table count of the header.
    #[error("a message holds at most {max} tables")]
    TooManyTables {
        /// The limit.
        max: usize,
    },
    /// The table already holds the configured maximum of rows for one message.
    #[error("table {table:?} already holds {max} rows in this message")]
    TooManyRows {
        /// The table.
        table: String,
        /// The limit.
        max: usize,
    },
    /// The message's symbol dictionary is full.
    #[error("a message holds at most {max} distinct symbols")]
    TooManySymbols {
        /// The limit.
        max: usize,
    },
    /// The column was given a value of a different type (or a different
    /// GEOHASH precision or DECIMAL scale) earlier in this message.
    #[error("column {column:?} of table {table:?} is {existing} in this message, not {requested}")]
    ColumnTypeChanged {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// The shape it already has.
        existing: ColumnShape,
        /// The shape this value asked for.
        requested: ColumnShape,
    },
    /// The table's designated timestamp was given in µs and ns in one message.
    #[error(
        "table {table:?} mixes {existing} and {requested} designated timestamps in one message"
    )]
    DesignatedTimestampUnitChanged {
        /// The table.
        table: String,
        /// The unit already used.
        existing: ColumnType,
        /// The unit this row asked for.
        requested: ColumnType,
    },
    /// The column was already set in this row.
    #[error("column {column:?} of table {table:?} is set twice in one row")]
    DuplicateColumn {
        /// The table.
        table: String,
        /// The column.
        column: String,
    },
    /// The unscaled decimal has more digits than its width holds.
    #[error("decimal for column {column:?} has more than {max_digits} digits")]
    DecimalOutOfRange {
        /// The column.
        column: String,
        /// The digits the width holds.
        max_digits: u8,
    },
    /// The decimal scale is larger than the width's digit count.
    #[error("decimal scale {scale} for column {column:?} exceeds {max}")]
    DecimalScaleOutOfRange {
        /// The column.
        column: String,
        /// The scale given.
        scale: u8,
        /// The largest scale of that width.
        max: u8,
    },
    /// GEOHASH precision outside 1..=60 bits.
    #[error("geohash precision {bits} bits for column {column:?} is outside 1..=60")]
    GeohashPrecision {
        /// The column.
        column: String,
        /// The precision given.
        bits: u8,
    },
    /// A GEOHASH value has bits set above its precision.
    #[error("geohash value for column {column:?} does not fit in {bits} bits")]
    GeohashValueTooWide {
        /// The column.
        column: String,
        /// The precision.
        bits: u8,
    },
    /// A CHAR value outside the Basic Multilingual Plane (it needs two UTF-16 units).
    #[error("char {ch:?} for column {column:?} is not a single UTF-16 code unit")]
    CharNotBmp {
        /// The column.
        column: String,
        /// The character.
        ch: char,
    },
    /// An array value whose shape the wire cannot carry.
    #[error("array for column {column:?}: {problem}")]
    InvalidArray {
        /// The column.
        column: String,
        /// What is wrong.
        problem: ArrayProblem,
    },
    /// A VARCHAR or BINARY value longer than the wire's 2^31-1 bytes.
    #[error("value for column {column:?} is {len} bytes (max {max})")]
    ValueTooLong {
        /// The column.
        column: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The row would push the message over the configured maximum size; it
    /// was rolled back. Encode the pending rows and retry the row in a new
    /// message (if `pending_rows` is 0, the row can never fit).
    #[error("row would grow the message to {would_be} bytes, over the {max}-byte limit ({pending_rows} rows pending)")]
    BatchFull {
        /// The size bound the message would reach with the row.
        would_be: usize,
        /// The configured maximum.
        max: usize,
        /// Rows already pending (not counting the rejected one).
        pending_rows: usize,
    },
}
