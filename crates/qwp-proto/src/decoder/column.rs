//! One column data section: null flag and bitmap, the type's prefix, then
//! the values.
//!
//! Every reader checks that the input holds at least the minimum bytes for
//! a declared count *before* allocating for it, so an absurd count in a
//! short message is refused as truncation instead of reserving memory.

use std::collections::BTreeMap;

use super::error::{ErrorKind, Fault};
use super::nulls::NullMask;
use super::reader::Reader;
use super::symbols::SymbolScope;
use super::value::{ArrayValue, ColumnValues, SymbolValues};
use crate::gorilla::{self, GorillaError};
use crate::types::{ColumnType, GEOHASH_PRECISION_BITS, MAX_ARRAY_DIMS};

/// Message-wide settings a column section depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ColumnContext<'a> {
    /// FLAG_GORILLA: timestamp sections start with an encoding byte.
    pub(crate) gorilla: bool,
    /// How SYMBOL ids resolve.
    pub(crate) symbols: SymbolScope<'a>,
    /// Entry limit of a per-column symbol dictionary.
    pub(crate) max_symbol_entries: usize,
}

/// Decodes one column section of `row_count` rows.
pub(crate) fn decode_column(
    r: &mut Reader<'_>,
    ty: ColumnType,
    row_count: usize,
    ctx: &ColumnContext<'_>,
) -> Result<(Option<NullMask>, ColumnValues), Fault> {
    let flag = r.u8("null flag")?;
    let nulls = if flag == 0 {
        None
    } else {
        let bitmap = r.take(row_count.div_ceil(8), "null bitmap")?;
        Some(NullMask::from_wire(bitmap, row_count))
    };
    let n = nulls.as_ref().map_or(row_count, NullMask::value_count);
    let values = decode_values(r, ty, n, ctx)?;
    // A bitmap with no null row says nothing the absence of one does not.
    let nulls = nulls.filter(|m| m.null_count() > 0);
    // GEOHASH sentinel mode: an all-ones value at the column's byte width is
    // the reference null (wire-ingress §11), so it decodes as null rather
    // than as a value. Other sentinels (BOOLEAN false, BYTE/SHORT/CHAR 0)
    // are indistinguishable from real values and are returned as values.
    // Only flag 00 means sentinel mode: in bitmap mode every value is one.
    if flag == 0 {
        if let ColumnValues::Geohash {
            precision_bits,
            values,
        } = values
        {
            return Ok(geohash_sentinels_to_nulls(precision_bits, values));
        }
    }
    Ok((nulls, values))
}

fn geohash_sentinels_to_nulls(
    precision_bits: u8,
    values: Vec<u64>,
) -> (Option<NullMask>, ColumnValues) {
    let null = geohash_null(precision_bits);
    let nulls = if values.contains(&null) {
        Some(NullMask::from_flags(values.iter().map(|v| *v == null)))
    } else {
        None
    };
    let values = if nulls.is_some() {
        values.into_iter().filter(|v| *v != null).collect()
    } else {
        values
    };
    (
        nulls,
        ColumnValues::Geohash {
            precision_bits,
            values,
        },
    )
}

/// The all-ones sentinel at the byte width of a `precision_bits` geohash.
fn geohash_null(precision_bits: u8) -> u64 {
    let width = geohash_width(precision_bits);
    if width >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * width)) - 1
    }
}

fn geohash_width(precision_bits: u8) -> usize {
    usize::from(precision_bits).div_ceil(8)
}

/// Decodes `n` fixed-width little-endian values.
fn fixed<const W: usize, T>(
    r: &mut Reader<'_>,
    n: usize,
    what: &'static str,
    convert: impl Fn([u8; W]) -> T,
) -> Result<Vec<T>, Fault> {
    let bytes = r.take_items(n, W, what)?;
    Ok(bytes
        .chunks_exact(W)
        .map(|c| {
            let mut a = [0u8; W];
            a.copy_from_slice(c);
            convert(a)
        })
        .collect())
}

fn limbs(b: [u8; 32]) -> [u64; 4] {
    let mut out = [0u64; 4];
    for (limb, chunk) in out.iter_mut().zip(b.chunks_exact(8)) {
        let mut a = [0u8; 8];
        a.copy_from_slice(chunk);
        *limb = u64::from_le_bytes(a);
    }
    out
}

fn decode_values(
    r: &mut Reader<'_>,
    ty: ColumnType,
    n: usize,
    ctx: &ColumnContext<'_>,
) -> Result<ColumnValues, Fault> {
    Ok(match ty {
        ColumnType::Boolean => {
            let bytes = r.take(n.div_ceil(8), "boolean values")?;
            ColumnValues::Boolean(
                bytes
                    .iter()
                    .flat_map(|b| (0..8).map(move |k| (b >> k) & 1 == 1))
                    .take(n)
                    .collect(),
            )
        }
        ColumnType::Byte => ColumnValues::Byte(fixed(r, n, "byte values", i8::from_le_bytes)?),
        ColumnType::Short => ColumnValues::Short(fixed(r, n, "short values", i16::from_le_bytes)?),
        ColumnType::Int => ColumnValues::Int(fixed(r, n, "int values", i32::from_le_bytes)?),
        ColumnType::Long => ColumnValues::Long(fixed(r, n, "long values", i64::from_le_bytes)?),
        ColumnType::Float => ColumnValues::Float(fixed(r, n, "float values", f32::from_le_bytes)?),
        ColumnType::Double => {
            ColumnValues::Double(fixed(r, n, "double values", f64::from_le_bytes)?)
        }
        ColumnType::Date => ColumnValues::Date(fixed(r, n, "date values", i64::from_le_bytes)?),
        ColumnType::Char => ColumnValues::Char(fixed(r, n, "char values", u16::from_le_bytes)?),
        ColumnType::Ipv4 => ColumnValues::Ipv4(fixed(r, n, "ipv4 values", u32::from_le_bytes)?),
        // Low 64 bits first, then high: exactly a little-endian u128.
        ColumnType::Uuid => ColumnValues::Uuid(fixed(r, n, "uuid values", u128::from_le_bytes)?),
        ColumnType::Long256 => ColumnValues::Long256(fixed(r, n, "long256 values", limbs)?),
        ColumnType::Timestamp => ColumnValues::Timestamp(timestamps(r, n, ctx.gorilla)?),
        ColumnType::TimestampNanos => ColumnValues::TimestampNanos(timestamps(r, n, ctx.gorilla)?),
        ColumnType::Decimal64 => {
            let scale = r.u8("decimal scale")?;
            let values = fixed(r, n, "decimal64 values", i64::from_le_bytes)?;
            ColumnValues::Decimal64 { scale, values }
        }
        ColumnType::Decimal128 => {
            let scale = r.u8("decimal scale")?;
            let values = fixed(r, n, "decimal128 values", i128::from_le_bytes)?;
            ColumnValues::Decimal128 { scale, values }
        }
        ColumnType::Decimal256 => {
            let scale = r.u8("decimal scale")?;
            let values = fixed(r, n, "decimal256 values", limbs)?;
            ColumnValues::Decimal256 { scale, values }
        }
        ColumnType::Geohash => {
            let at = r.offset();
            let bits = r.varint("geohash precision")?;
            let precision_bits = u8::try_from(bits)
                .ok()
                .filter(|p| GEOHASH_PRECISION_BITS.contains(p))
                .ok_or(Fault::new(ErrorKind::GeohashPrecision { bits }, at))?;
            let width = geohash_width(precision_bits);
            let bytes = r.take_items(n, width, "geohash values")?;
            let values = bytes
                .chunks_exact(width)
                .map(|c| {
                    let mut a = [0u8; 8];
                    a.iter_mut().zip(c).for_each(|(d, s)| *d = *s);
                    u64::from_le_bytes(a)
                })
                .collect();
            ColumnValues::Geohash {
                precision_bits,
                values,
            }
        }
        ColumnType::Varchar => {
            let (data_at, slices) = var_len(r, n, "varchar data")?;
            let mut values = Vec::with_capacity(n);
            for (start, bytes) in slices {
                let s = core::str::from_utf8(bytes).map_err(|e| {
                    Fault::new(
                        ErrorKind::InvalidUtf8 {
                            what: "varchar value",
                        },
                        data_at + start + e.valid_up_to(),
                    )
                })?;
                values.push(s.to_owned());
            }
            ColumnValues::Varchar(values)
        }
        ColumnType::Binary => {
            let (_, slices) = var_len(r, n, "binary data")?;
            ColumnValues::Binary(slices.map(|(_, b)| b.to_vec()).collect())
        }
        ColumnType::Symbol => ColumnValues::Symbol(symbols(r, n, ctx)?),
        ColumnType::DoubleArray => {
            ColumnValues::DoubleArray(arrays(r, n, "double array", f64::from_le_bytes)?)
        }
        ColumnType::LongArray => {
            ColumnValues::LongArray(arrays(r, n, "long array", i64::from_le_bytes)?)
        }
    })
}

/// A timestamp section's `n` values: raw i64s, or with FLAG_GORILLA an
/// encoding byte followed by either form.
fn timestamps(r: &mut Reader<'_>, n: usize, gorilla_flag: bool) -> Result<Vec<i64>, Fault> {
    if !gorilla_flag {
        return fixed(r, n, "timestamp values", i64::from_le_bytes);
    }
    match gorilla::decode(r.rest(), n) {
        Ok((values, used)) => {
            r.advance(used, "timestamp values")?;
            Ok(values)
        }
        Err(GorillaError::UnknownEncoding(found)) => {
            Err(r.fault(ErrorKind::TimestampEncoding { found }))
        }
        Err(GorillaError::Truncated { needed, .. }) => Err(r.truncated(
            "timestamp values",
            (r.remaining() as u64).saturating_add(needed as u64),
        )),
    }
}

/// Reads the `(n + 1)` u32 offsets of a VARCHAR/BINARY section and its data,
/// returning where the data starts and an iterator over the `n` values as
/// `(start offset within the data, bytes)`.
fn var_len<'a>(
    r: &mut Reader<'a>,
    n: usize,
    what: &'static str,
) -> Result<(usize, impl Iterator<Item = (usize, &'a [u8])> + 'a), Fault> {
    let offsets_at = r.offset();
    let count = n
        .checked_add(1)
        .ok_or_else(|| r.truncated("value offsets", u64::MAX))?;
    let raw = r.take_items(count, 4, "value offsets")?;
    let offset = |i: usize| {
        let mut a = [0u8; 4];
        if let Some(c) = raw.get(i * 4..i * 4 + 4) {
            a.copy_from_slice(c);
        }
        u32::from_le_bytes(a)
    };
    let first = offset(0);
    if first != 0 {
        return Err(Fault::new(
            ErrorKind::FirstOffsetNotZero { found: first },
            offsets_at,
        ));
    }
    let mut previous = 0u32;
    for index in 1..count {
        let found = offset(index);
        if found < previous {
            return Err(Fault::new(
                ErrorKind::OffsetsNotMonotonic {
                    index,
                    previous,
                    found,
                },
                offsets_at + index * 4,
            ));
        }
        previous = found;
    }
    let end = previous;
    if end as u64 > r.remaining() as u64 {
        return Err(r.fault(ErrorKind::OffsetPastEnd {
            end,
            available: r.remaining(),
        }));
    }
    let data_at = r.offset();
    let data = r.take(end as usize, what)?;
    let values = (0..n).map(move |i| {
        let (s, e) = (offset(i) as usize, offset(i + 1) as usize);
        (s, data.get(s..e).unwrap_or_default())
    });
    Ok((data_at, values))
}

/// A SYMBOL section's `n` ids, resolved against the message's delta (and
/// the connection's dictionary) or, without the delta flag, against the
/// column's own dictionary.
fn symbols(r: &mut Reader<'_>, n: usize, ctx: &ColumnContext<'_>) -> Result<SymbolValues, Fault> {
    let local: Option<Vec<&str>> = match ctx.symbols {
        SymbolScope::Delta { .. } => None,
        SymbolScope::PerColumn => {
            let at = r.offset();
            let size = r.varint("symbol dictionary size")?;
            if size > ctx.max_symbol_entries as u64 {
                return Err(Fault::new(
                    ErrorKind::SymbolDictionaryTooLarge {
                        entries: size,
                        max: ctx.max_symbol_entries,
                    },
                    at,
                ));
            }
            // Every entry takes at least its one-byte length.
            r.require("symbol dictionary entries", size)?;
            let mut entries = Vec::with_capacity(size as usize);
            for _ in 0..size {
                entries.push(r.string("symbol dictionary entry", None)?);
            }
            Some(entries)
        }
    };
    // Every id takes at least one byte.
    r.require("symbol ids", n as u64)?;
    let mut out = SymbolValues {
        ids: Vec::with_capacity(n),
        strings: BTreeMap::new(),
    };
    for _ in 0..n {
        let at = r.offset();
        let id = r.varint("symbol id")?;
        let undeclared = || Fault::new(ErrorKind::UndeclaredSymbol { id }, at);
        let value = match &local {
            Some(entries) => usize::try_from(id)
                .ok()
                .and_then(|i| entries.get(i).copied()),
            None => ctx.symbols.resolve(id),
        }
        .ok_or_else(undeclared)?;
        let id32 = u32::try_from(id).map_err(|_| undeclared())?;
        out.strings.entry(id32).or_insert_with(|| value.to_owned());
        out.ids.push(id32);
    }
    Ok(out)
}

/// `n` array values: each `n_dims: u8` (1..=32), `n_dims` i32 lengths
/// (≥ 0), then `product(dims)` 8-byte elements.
fn arrays<T>(
    r: &mut Reader<'_>,
    n: usize,
    what: &'static str,
    convert: fn([u8; 8]) -> T,
) -> Result<Vec<ArrayValue<T>>, Fault> {
    // Every value takes at least n_dims and one length: 5 bytes.
    r.require(what, (n as u64).saturating_mul(5))?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let at = r.offset();
        let n_dims = r.u8("array dimension count")?;
        if n_dims == 0 || usize::from(n_dims) > MAX_ARRAY_DIMS {
            return Err(Fault::new(ErrorKind::ArrayDims { n_dims }, at));
        }
        let mut dims = Vec::with_capacity(usize::from(n_dims));
        let mut elements: u64 = 1;
        for dim in 0..usize::from(n_dims) {
            let at = r.offset();
            let length = i32::from_le_bytes(r.array("array dimension length")?);
            let length = u32::try_from(length)
                .map_err(|_| Fault::new(ErrorKind::NegativeArrayDim { dim, length }, at))?;
            elements = elements
                .checked_mul(u64::from(length))
                .ok_or(Fault::new(ErrorKind::ArrayElementCountOverflow, at))?;
            dims.push(length);
        }
        let bytes = elements
            .checked_mul(8)
            .ok_or(Fault::new(ErrorKind::ArrayElementCountOverflow, at))?;
        r.require("array elements", bytes)?;
        // Bounded by the remaining input just above, so it fits usize.
        let values = fixed(r, elements as usize, "array elements", convert)?;
        out.push(ArrayValue { dims, values });
    }
    Ok(out)
}
