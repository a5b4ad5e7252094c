//! GGUF: the header format of llama.cpp model files (our own parser, no llama.cpp).
//!
//! `read` parses the header (metadata key/values of every type, arrays, tensor infos)
//! from a byte prefix, so the same code reads a local file and a ranged read of a remote
//! one; `summary` turns the metadata into what the library and the fit verdict need.

mod read;
mod summary;

pub use read::{GgufError, parse, read_path};

pub use summary::{ModelSummary, file_type_name, human_count};

/// The magic at the start of every GGUF file.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Data alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Metadata value types as numbered by the GGUF specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    /// The type for a number read from the file.
    pub fn from_u32(v: u32) -> Option<Self> {
        use ValueType::*;
        Some(match v {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    /// Elements all of type `elem` (arrays of arrays are allowed).
    Array {
        elem: ValueType,
        items: Vec<Value>,
    },
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    /// The value's type tag.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array { .. } => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// Any non-negative integer value as `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

/// One tensor's description in the header (its data lives after the header).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Vec<u64>,
    /// `ggml_type` number (0 = F32, 1 = F16, ...).
    pub ggml_type: u32,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
}

/// Bytes per block and elements per block of the common `ggml_type`s.
fn type_block(ggml_type: u32) -> Option<(u64, u64)> {
    Some(match ggml_type {
        0 => (4, 1),     // F32
        1 => (2, 1),     // F16
        2 => (18, 32),   // Q4_0
        3 => (20, 32),   // Q4_1
        6 => (22, 32),   // Q5_0
        7 => (24, 32),   // Q5_1
        8 => (34, 32),   // Q8_0
        10 => (84, 256), // Q2_K
        11 => (110, 256),
        12 => (144, 256),
        13 => (176, 256),
        14 => (210, 256),
        15 => (292, 256),
        24 => (1, 1), // I8
        25 => (2, 1), // I16
        26 => (4, 1), // I32
        27 => (8, 1), // I64
        28 => (8, 1), // F64
        30 => (2, 1), // BF16
        _ => return None,
    })
}

impl TensorInfo {
    /// Data size in bytes, for the types whose block size we know.
    pub fn known_size(&self) -> Option<u64> {
        let (bytes, per) = type_block(self.ggml_type)?;
        Some(self.elements().div_ceil(per).saturating_mul(bytes))
    }

    /// Number of elements (product of the dimensions).
    pub fn elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |a, d| a.saturating_mul(*d))
    }
}

/// A parsed GGUF header.
#[derive(Debug, Clone, PartialEq)]
pub struct Gguf {
    pub version: u32,
    /// Key/values in file order.
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    /// Bytes of header (before the aligned data section).
    pub header_len: u64,
    /// Where the data section starts (header rounded up to the alignment).
    pub data_offset: u64,
}

impl Gguf {
    /// The value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The alignment of the data section.
    pub fn alignment(&self) -> u64 {
        self.get("general.alignment")
            .and_then(Value::as_u64)
            .filter(|a| *a > 0)
            .unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// Check that a file of `file_len` bytes holds all tensor data the header describes.
    pub fn check_complete(&self, file_len: u64) -> Result<(), GgufError> {
        let Some(last) = self.tensors.iter().max_by_key(|t| t.offset) else {
            return Ok(());
        };
        let need = self
            .data_offset
            .saturating_add(last.offset)
            .saturating_add(last.known_size().unwrap_or(1));
        if file_len < need {
            return Err(GgufError::Truncated { at: need });
        }
        Ok(())
    }

    /// Size in bytes of each tensor's data, in header order, derived from the offsets and
    /// the size of the file (`file_len`): no table of quantization block sizes needed.
    pub fn tensor_sizes(&self, file_len: u64) -> Vec<u64> {
        let data_len = file_len.saturating_sub(self.data_offset);
        let mut order: Vec<usize> = (0..self.tensors.len()).collect();
        order.sort_by_key(|&i| self.tensors[i].offset);
        let mut sizes = vec![0u64; self.tensors.len()];
        for (pos, &i) in order.iter().enumerate() {
            let end = order
                .get(pos + 1)
                .map(|&j| self.tensors[j].offset)
                .unwrap_or(data_len);
            sizes[i] = end.saturating_sub(self.tensors[i].offset);
        }
        sizes
    }
}
