//! The GGUF header parser: little-endian, versions 2 and 3, every value type, arrays,
//! tensor infos. Never trusts a length from the file with an allocation.

use std::io::Read;
use std::path::Path;

use super::{Gguf, MAGIC, TensorInfo, Value, ValueType};

/// Why a header could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("not a GGUF file (it does not start with the bytes \"GGUF\")")]
    NotGguf,
    #[error(
        "big-endian GGUF files are not supported (llama.cpp on this machine reads little-endian)"
    )]
    BigEndian,
    #[error("GGUF version {0} is not supported (versions 2 and 3 are)")]
    UnsupportedVersion(u32),
    /// The bytes end inside the header; `at` is where more was needed.
    #[error("the file ends inside the GGUF header (at byte {at}): it is truncated")]
    Truncated { at: u64 },
    #[error("invalid GGUF header at byte {at}: {what}")]
    Invalid { at: u64, what: String },
    #[error("the GGUF header is larger than {0} bytes")]
    TooLarge(u64),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Strings longer than this are taken as corruption, not data.
const MAX_STRING: u64 = 64 << 20;
/// More key/values or tensors than this are taken as corruption.
const MAX_COUNT: u64 = 1 << 24;
/// Arrays of arrays deeper than this are refused.
const MAX_DEPTH: u32 = 8;
/// llama.cpp's `GGML_MAX_DIMS`.
const MAX_DIMS: u32 = 4;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], GgufError> {
        let at = self.pos as u64;
        let end = at.checked_add(n).ok_or(GgufError::Truncated { at })?;
        if end > self.buf.len() as u64 {
            return Err(GgufError::Truncated { at: end });
        }
        let s = &self.buf[self.pos..end as usize];
        self.pos = end as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let s = self.take(N as u64)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn invalid(&self, what: impl Into<String>) -> GgufError {
        GgufError::Invalid {
            at: self.pos as u64,
            what: what.into(),
        }
    }

    fn count(&mut self, what: &str) -> Result<u64, GgufError> {
        let n = self.u64()?;
        if n > MAX_COUNT {
            return Err(self.invalid(format!("{what} count {n} is not plausible")));
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, GgufError> {
        let len = self.u64()?;
        if len > MAX_STRING {
            return Err(self.invalid(format!("string length {len} is not plausible")));
        }
        let bytes = self.take(len)?;
        // Token strings may hold partial UTF-8 sequences; keep them readable.
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    fn value_type(&mut self) -> Result<ValueType, GgufError> {
        let t = self.u32()?;
        ValueType::from_u32(t).ok_or_else(|| self.invalid(format!("unknown value type {t}")))
    }

    fn value(&mut self, t: ValueType, depth: u32) -> Result<Value, GgufError> {
        Ok(match t {
            ValueType::U8 => Value::U8(self.array::<1>()?[0]),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array()?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array()?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array()?)),
            ValueType::U32 => Value::U32(self.u32()?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array()?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array()?)),
            ValueType::U64 => Value::U64(self.u64()?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array()?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array()?)),
            ValueType::Bool => match self.array::<1>()?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(self.invalid(format!("bool value {b} is neither 0 nor 1"))),
            },
            ValueType::String => Value::String(self.string()?),
            ValueType::Array => {
                if depth >= MAX_DEPTH {
                    return Err(self.invalid("arrays nested too deeply"));
                }
                let elem = self.value_type()?;
                let n = self.u64()?;
                // Every element takes at least one byte: a length past the end of the
                // buffer is truncation (or corruption), found without allocating it.
                let left = (self.buf.len() - self.pos) as u64;
                if n > left {
                    return Err(GgufError::Truncated {
                        at: (self.pos as u64).saturating_add(n),
                    });
                }
                let mut items = Vec::with_capacity((n as usize).min(4096));
                for _ in 0..n {
                    items.push(self.value(elem, depth + 1)?);
                }
                Value::Array { elem, items }
            }
        })
    }
}

/// Parse a GGUF header from `bytes` (the whole file or a prefix of it).
///
/// A prefix that ends inside the header gives [`GgufError::Truncated`] with the offset
/// that was needed, so callers can read more and try again.
pub fn parse(bytes: &[u8]) -> Result<Gguf, GgufError> {
    let mut c = Cursor { buf: bytes, pos: 0 };
    let magic: [u8; 4] = match c.array() {
        Ok(m) => m,
        Err(e) if bytes.len() < 4 && MAGIC.starts_with(bytes) => return Err(e),
        Err(_) => return Err(GgufError::NotGguf),
    };
    if magic != MAGIC {
        return Err(GgufError::NotGguf);
    }
    let version = c.u32()?;
    if version & 0xFFFF == 0 && (1..=3).contains(&version.swap_bytes()) {
        return Err(GgufError::BigEndian);
    }
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion(version));
    }
    let n_tensors = c.count("tensor")?;
    let n_kv = c.count("metadata")?;
    let mut metadata = Vec::with_capacity((n_kv as usize).min(1024));
    for _ in 0..n_kv {
        let key = c.string()?;
        let t = c.value_type()?;
        let v = c.value(t, 0)?;
        metadata.push((key, v));
    }
    let mut tensors = Vec::with_capacity((n_tensors as usize).min(4096));
    for _ in 0..n_tensors {
        let name = c.string()?;
        let n_dims = c.u32()?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(c.invalid(format!("tensor {name} has {n_dims} dimensions")));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(c.u64()?);
        }
        let ggml_type = c.u32()?;
        let offset = c.u64()?;
        tensors.push(TensorInfo {
            name,
            dims,
            ggml_type,
            offset,
        });
    }
    let header_len = c.pos as u64;
    let mut g = Gguf {
        version,
        metadata,
        tensors,
        header_len,
        data_offset: 0,
    };
    let align = g.alignment();
    g.data_offset = header_len.div_ceil(align).saturating_mul(align);
    Ok(g)
}

/// Read the header of the GGUF file at `path`, reading only as much of the file as the
/// header needs (up to `max_header` bytes).
pub fn read_path(path: &Path, max_header: u64) -> Result<(Gguf, u64), GgufError> {
    let io = |source| GgufError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len < 24 {
        // Shorter than the fixed part of any GGUF header (an empty file, a stub).
        return Err(GgufError::NotGguf);
    }
    let mut buf = Vec::new();
    let mut want: u64 = 1 << 20;
    loop {
        let target = want.min(len).min(max_header);
        if (buf.len() as u64) < target {
            let mut more = Vec::new();
            (&mut file)
                .take(target - buf.len() as u64)
                .read_to_end(&mut more)
                .map_err(io)?;
            buf.extend_from_slice(&more);
        }
        match parse(&buf) {
            Err(GgufError::Truncated { at }) if (buf.len() as u64) < len => {
                if buf.len() as u64 >= max_header {
                    return Err(GgufError::TooLarge(max_header));
                }
                want = want.saturating_mul(2).max(at.saturating_add(1 << 16));
            }
            other => return other.map(|g| (g, len)),
        }
    }
}
