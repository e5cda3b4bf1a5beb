//! The typed column setters of [`MessageBuilder`]: each checks its value
//! first (so a refusal needs no undo of a half-written value), then appends
//! the value's wire bytes to its column.

use super::decimal::{self, DECIMAL128_DIGITS};
use super::error::{ArrayProblem, ColumnShape, EncodeError};
use super::{plain, Column, DecimalWidth, MessageBuilder, MAX_SYMBOLS, MAX_VALUE_LEN};
use crate::types::{ColumnType, GEOHASH_PRECISION_BITS, HEADER_LEN, MAX_ARRAY_DIMS};

impl MessageBuilder {
    /// Sets a SYMBOL column (interned in the message's dictionary).
    pub fn symbol(&mut self, name: &str, value: &str) -> Result<&mut Self, EncodeError> {
        if self.row.table.is_none() {
            return Err(EncodeError::NoRowInProgress);
        }
        if value.len() > self.cfg.max_batch_bytes {
            // Refuse before copying a value that can never fit.
            let e = EncodeError::BatchFull {
                would_be: HEADER_LEN.saturating_add(value.len()),
                max: self.cfg.max_batch_bytes,
                pending_rows: self.pending_rows,
            };
            return self.reject(e);
        }
        let Some(id) = self.symbols.intern(value, MAX_SYMBOLS) else {
            return self.reject(EncodeError::TooManySymbols { max: MAX_SYMBOLS });
        };
        self.put(name, plain(ColumnType::Symbol), false, |c| {
            crate::varint::write(&mut c.data, u64::from(id))
        })
    }

    /// Sets a BOOLEAN column.
    pub fn column_bool(&mut self, name: &str, v: bool) -> Result<&mut Self, EncodeError> {
        self.put(name, plain(ColumnType::Boolean), false, |c| c.push_bool(v))
    }

    /// Sets a BYTE column.
    pub fn column_i8(&mut self, name: &str, v: i8) -> Result<&mut Self, EncodeError> {
        self.put(name, plain(ColumnType::Byte), false, |c| {
            c.data.extend_from_slice(&v.to_le_bytes())
        })
    }

    /// Sets a SHORT column.
    pub fn column_i16(&mut self, name: &str, v: i16) -> Result<&mut Self, EncodeError> {
        self.put(name, plain(ColumnType::Short), false, |c| {
            c.data.extend_from_slice(&v.to_le_bytes())
        })
    }

    /// Sets an INT column.
    pub fn column_i32(&mut self, name: &str, v: i32) -> Result<&mut Self, EncodeError> {
        self.put(name, plain(ColumnType::Int), false, |c| {
            c.data.extend_from_slice(&v.to_le_bytes())
        })
    }

    /// Sets a LONG column.
    pub fn column_i64(&mut self, name: &str, v: i64) -> Result<&mut Self, EncodeError> {
        self.put(name, plain(ColumnType::Long), false, |c| {
            c.data.extend_from_slice(&v.to_le_bytes())
        })
    }

    /// Sets a FLOAT column.
    pub fn column_f32(&mut self, name: &str, v: f32) -> Result<&mut Self, EncodeError> {
        self.put(name, plain(ColumnType::Float), false, |c| {
            c.data.extend_from_slice(&v.to_le_bytes())
        })
    }

    /// Sets a DOUBLE column.
    pub fn column_f64(&mut self, name: &str, v: f64) -> Result<&mut Self, EncodeError> {
        self.put(name, plain(ColumnType::Double), false, |c| {
            c.data.extend_from_slice(&v.to_le_bytes())
        })
    }

    /// Sets a (non-designated) TIMESTAMP column, in µs since the epoch.
    pub fn column_ts_micros(&mut self, name: &str, v: i64) -> Result<&mut Self, EncodeError> {
        self.put(name, plain(ColumnType::Timestamp), false, |c| {
            c.data.extend_from_slice(&v.to_le_bytes())
        })
    }

    /// Sets a (non-designated) TIMESTAMP_NANOS column, in ns since the epoch.
    pub fn column_ts_nanos(&mut self, name: &str, v: i64) -> Result<&mut Self, EncodeError> {
        self.put(name, plain(ColumnType::TimestampNanos), false, |c| {
            c.data.extend_from_slice(&v.to_le_bytes())
        })
    }

    /// Sets a DATE column, in ms since the epoch.
    pub fn column_date_millis(&mut self, name: &str, v: i64) -> Result<&mut Self, EncodeError> {
        self.put(name, plain(ColumnType::Date), false, |c| {
            c.data.extend_from_slice(&v.to_le_bytes())
        })
    }

    /// Sets a UUID column. `v` is the UUID read as a big-endian number
    /// (`u128::from_be_bytes` of its canonical 16 bytes); the wire carries
    /// the low 64 bits then the high 64 bits, each LE.
    pub fn column_uuid(&mut self, name: &str, v: u128) -> Result<&mut Self, EncodeError> {
        self.put(name, plain(ColumnType::Uuid), false, |c| {
            c.data.extend_from_slice(&v.to_le_bytes())
        })
    }

    /// Sets a LONG256 column from four 64-bit limbs, least significant first.
    pub fn column_long256(
        &mut self,
        name: &str,
        limbs: [u64; 4],
    ) -> Result<&mut Self, EncodeError> {
        self.put(name, plain(ColumnType::Long256), false, |c| {
            for l in limbs {
                c.data.extend_from_slice(&l.to_le_bytes());
            }
        })
    }

    /// Sets a GEOHASH column of `precision_bits` (1..=60) bits; `bits` must
    /// not have bits set above the precision.
    pub fn column_geohash(
        &mut self,
        name: &str,
        bits: u64,
        precision_bits: u8,
    ) -> Result<&mut Self, EncodeError> {
        if !GEOHASH_PRECISION_BITS.contains(&precision_bits) {
            let e = EncodeError::GeohashPrecision {
                column: name.to_owned(),
                bits: precision_bits,
            };
            return self.reject(e);
        }
        if bits >> precision_bits != 0 {
            let e = EncodeError::GeohashValueTooWide {
                column: name.to_owned(),
                bits: precision_bits,
            };
            return self.reject(e);
        }
        let shape = ColumnShape {
            ty: ColumnType::Geohash,
            param: precision_bits,
        };
        let width = usize::from(precision_bits).div_ceil(8);
        self.put(name, shape, false, |c| {
            c.data.extend_from_slice(&bits.to_le_bytes()[..width])
        })
    }

    /// Sets a VARCHAR column.
    pub fn column_str(&mut self, name: &str, v: &str) -> Result<&mut Self, EncodeError> {
        self.var(name, ColumnType::Varchar, v.as_bytes())
    }

    /// Sets a BINARY column.
    pub fn column_binary(&mut self, name: &str, v: &[u8]) -> Result<&mut Self, EncodeError> {
        self.var(name, ColumnType::Binary, v)
    }

    fn var(&mut self, name: &str, ty: ColumnType, v: &[u8]) -> Result<&mut Self, EncodeError> {
        if v.len() > MAX_VALUE_LEN {
            let e = EncodeError::ValueTooLong {
                column: name.to_owned(),
                len: v.len(),
                max: MAX_VALUE_LEN,
            };
            return self.reject(e);
        }
        if v.len() > self.cfg.max_batch_bytes {
            // Refuse before copying a value that can never fit.
            let e = EncodeError::BatchFull {
                would_be: HEADER_LEN.saturating_add(v.len()),
                max: self.cfg.max_batch_bytes,
                pending_rows: self.pending_rows,
            };
            return self.reject(e);
        }
        self.put(name, plain(ty), false, |c| c.push_var(v))
    }

    /// Sets a CHAR column (one UTF-16 code unit, so `v` must be in the
    /// Basic Multilingual Plane).
    pub fn column_char(&mut self, name: &str, v: char) -> Result<&mut Self, EncodeError> {
        let Ok(unit) = u16::try_from(u32::from(v)) else {
            let e = EncodeError::CharNotBmp {
                column: name.to_owned(),
                ch: v,
            };
            return self.reject(e);
        };
        self.put(name, plain(ColumnType::Char), false, |c| {
            c.data.extend_from_slice(&unit.to_le_bytes())
        })
    }

    /// Sets an IPv4 column.
    pub fn column_ipv4(
        &mut self,
        name: &str,
        v: std::net::Ipv4Addr,
    ) -> Result<&mut Self, EncodeError> {
        self.put(name, plain(ColumnType::Ipv4), false, |c| {
            c.data.extend_from_slice(&u32::from(v).to_le_bytes())
        })
    }

    fn check_scale(
        &mut self,
        name: &str,
        width: DecimalWidth,
        scale: u8,
    ) -> Result<(), EncodeError> {
        if scale > width.digits() {
            let e = EncodeError::DecimalScaleOutOfRange {
                column: name.to_owned(),
                scale,
                max: width.digits(),
            };
            self.reject(e)?;
        }
        Ok(())
    }

    fn decimal_range_error(
        &mut self,
        name: &str,
        width: DecimalWidth,
    ) -> Result<&mut Self, EncodeError> {
        let e = EncodeError::DecimalOutOfRange {
            column: name.to_owned(),
            max_digits: width.digits(),
        };
        self.reject(e)
    }

    /// Sets a DECIMAL column of `width` from an unscaled value and a scale
    /// (value = unscaled · 10^-scale). The unscaled value must have at most
    /// `width.digits()` digits, and the scale must not exceed that count.
    pub fn column_decimal(
        &mut self,
        name: &str,
        width: DecimalWidth,
        unscaled: i128,
        scale: u8,
    ) -> Result<&mut Self, EncodeError> {
        self.check_scale(name, width, scale)?;
        let digits = width.digits().min(DECIMAL128_DIGITS);
        if !decimal::fits_i128(unscaled, digits) {
            return self.decimal_range_error(name, width);
        }
        let shape = ColumnShape {
            ty: width.column_type(),
            param: scale,
        };
        self.put(name, shape, false, |c| {
            let le = unscaled.to_le_bytes();
            match width {
                DecimalWidth::D64 => c.data.extend_from_slice(&le[..8]),
                DecimalWidth::D128 => c.data.extend_from_slice(&le),
                DecimalWidth::D256 => {
                    c.data.extend_from_slice(&le);
                    let ext = if unscaled < 0 { [0xff; 16] } else { [0; 16] };
                    c.data.extend_from_slice(&ext);
                }
            }
        })
    }

    /// Sets a DECIMAL64 column (see [`MessageBuilder::column_decimal`]).
    pub fn column_decimal64(
        &mut self,
        name: &str,
        unscaled: i64,
        scale: u8,
    ) -> Result<&mut Self, EncodeError> {
        self.column_decimal(name, DecimalWidth::D64, i128::from(unscaled), scale)
    }

    /// Sets a DECIMAL128 column (see [`MessageBuilder::column_decimal`]).
    pub fn column_decimal128(
        &mut self,
        name: &str,
        unscaled: i128,
        scale: u8,
    ) -> Result<&mut Self, EncodeError> {
        self.column_decimal(name, DecimalWidth::D128, unscaled, scale)
    }

    /// Sets a DECIMAL256 column from a two's-complement unscaled value in
    /// four 64-bit limbs, least significant first (at most 76 digits).
    pub fn column_decimal256(
        &mut self,
        name: &str,
        unscaled: [u64; 4],
        scale: u8,
    ) -> Result<&mut Self, EncodeError> {
        self.check_scale(name, DecimalWidth::D256, scale)?;
        if !decimal::fits_i256(unscaled) {
            return self.decimal_range_error(name, DecimalWidth::D256);
        }
        let shape = ColumnShape {
            ty: ColumnType::Decimal256,
            param: scale,
        };
        self.put(name, shape, false, |c| {
            for l in unscaled {
                c.data.extend_from_slice(&l.to_le_bytes());
            }
        })
    }

    /// Checks an array shape against its element count.
    fn check_array(&mut self, name: &str, dims: &[usize], len: usize) -> Result<(), EncodeError> {
        let problem = if dims.is_empty() {
            Some(ArrayProblem::NoDimensions)
        } else if dims.len() > MAX_ARRAY_DIMS {
            Some(ArrayProblem::TooManyDimensions { dims: dims.len() })
        } else if let Some((dim, &len)) = dims
            .iter()
            .enumerate()
            .find(|(_, &d)| d > i32::MAX as usize)
        {
            Some(ArrayProblem::DimensionTooLarge { dim, len })
        } else {
            match dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)) {
                None => Some(ArrayProblem::ElementCountOverflow),
                Some(expected) if expected != len => Some(ArrayProblem::ElementCountMismatch {
                    expected,
                    actual: len,
                }),
                Some(_) => None,
            }
        };
        if let Some(problem) = problem {
            let e = EncodeError::InvalidArray {
                column: name.to_owned(),
                problem,
            };
            self.reject(e)?;
        }
        // 8 bytes per element plus the shape; refuse before copying a value
        // that can never fit.
        let bytes = len.saturating_mul(8).saturating_add(1 + 4 * dims.len());
        if bytes > self.cfg.max_batch_bytes {
            let e = EncodeError::BatchFull {
                would_be: HEADER_LEN.saturating_add(bytes),
                max: self.cfg.max_batch_bytes,
                pending_rows: self.pending_rows,
            };
            self.reject(e)?;
        }
        Ok(())
    }

    fn write_dims(c: &mut Column, dims: &[usize]) {
        // Checked: 1..=32 dims, each within i32.
        c.data.push(dims.len() as u8);
        for &d in dims {
            c.data.extend_from_slice(&(d as i32).to_le_bytes());
        }
    }

    /// Sets a DOUBLE_ARRAY column: `dims` are the lengths of each dimension
    /// (1..=32 of them), `values` the elements in row-major order.
    pub fn column_f64_array(
        &mut self,
        name: &str,
        dims: &[usize],
        values: &[f64],
    ) -> Result<&mut Self, EncodeError> {
        self.check_array(name, dims, values.len())?;
        self.put(name, plain(ColumnType::DoubleArray), false, |c| {
            Self::write_dims(c, dims);
            c.data.reserve(values.len() * 8);
            for v in values {
                c.data.extend_from_slice(&v.to_le_bytes());
            }
        })
    }

    /// Sets a LONG_ARRAY column: `dims` are the lengths of each dimension
    /// (1..=32 of them), `values` the elements in row-major order.
    pub fn column_i64_array(
        &mut self,
        name: &str,
        dims: &[usize],
        values: &[i64],
    ) -> Result<&mut Self, EncodeError> {
        self.check_array(name, dims, values.len())?;
        self.put(name, plain(ColumnType::LongArray), false, |c| {
            Self::write_dims(c, dims);
            c.data.reserve(values.len() * 8);
            for v in values {
                c.data.extend_from_slice(&v.to_le_bytes());
            }
        })
    }
}
