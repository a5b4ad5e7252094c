//! A small GGUF writer: hand-made headers for parser edge cases and tiny real
//! llama-architecture models (the stack notes' 2-layer, 64-wide model, ~470 KB).

use crate::gguf::{Value, ValueType};

/// Builds a GGUF file in memory (little-endian, version 3).
#[derive(Debug, Clone)]
pub struct GgufWriter {
    pub version: u32,
    pub kvs: Vec<(String, Value)>,
    tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
    alignment: u64,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Encode one value (without its type tag).
pub fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::String(s) => put_str(out, s),
        Value::Array { elem, items } => {
            out.extend_from_slice(&(*elem as u32).to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for i in items {
                put_value(out, i);
            }
        }
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

impl GgufWriter {
    pub fn new() -> Self {
        GgufWriter {
            version: 3,
            kvs: Vec::new(),
            tensors: Vec::new(),
            alignment: 32,
        }
    }

    /// Add a key/value.
    pub fn kv(mut self, key: &str, v: Value) -> Self {
        if key == "general.alignment"
            && let Some(a) = v.as_u64()
        {
            self.alignment = a;
        }
        self.kvs.push((key.to_string(), v));
        self
    }

    /// Add an F32 tensor; `dims` in GGML order (fastest first).
    pub fn tensor_f32(mut self, name: &str, dims: &[u64], data: &[f32]) -> Self {
        let bytes = data.iter().flat_map(|f| f.to_le_bytes()).collect();
        self.tensors
            .push((name.to_string(), dims.to_vec(), 0, bytes));
        self
    }

    /// Add a tensor of any `ggml_type` with raw data.
    pub fn tensor_raw(mut self, name: &str, dims: &[u64], ggml_type: u32, data: Vec<u8>) -> Self {
        self.tensors
            .push((name.to_string(), dims.to_vec(), ggml_type, data));
        self
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.kvs.len() as u64).to_le_bytes());
        for (k, v) in &self.kvs {
            put_str(&mut out, k);
            out.extend_from_slice(&(v.value_type() as u32).to_le_bytes());
            put_value(&mut out, v);
        }
        let align = self.alignment.max(1);
        let mut offset = 0u64;
        let mut offsets = Vec::new();
        for (name, dims, t, data) in &self.tensors {
            put_str(&mut out, name);
            out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offsets.push(offset);
            offset = (offset + data.len() as u64).div_ceil(align) * align;
        }
        let pad = |out: &mut Vec<u8>| {
            while !(out.len() as u64).is_multiple_of(align) {
                out.push(0);
            }
        };
        pad(&mut out);
        let data_start = out.len() as u64;
        for ((_, _, _, data), off) in self.tensors.iter().zip(offsets) {
            out.resize((data_start + off) as usize, 0);
            out.extend_from_slice(data);
        }
        pad(&mut out);
        out
    }
}

fn strings(items: impl IntoIterator<Item = String>) -> Value {
    Value::Array {
        elem: ValueType::String,
        items: items.into_iter().map(Value::String).collect(),
    }
}

/// Shape of a tiny llama model.
#[derive(Debug, Clone)]
pub struct TinyLlama {
    pub name: String,
    pub embd: u64,
    pub heads: u64,
    pub layers: u64,
    pub ff: u64,
    pub ctx: u64,
    /// Seeds the random weights: different seeds, different bytes (and SHA-256).
    pub seed: u64,
    pub chat_template: bool,
}

impl Default for TinyLlama {
    fn default() -> Self {
        TinyLlama {
            name: "tiny-llama".into(),
            embd: 64,
            heads: 4,
            layers: 2,
            ff: 128,
            ctx: 512,
            seed: 1,
            chat_template: true,
        }
    }
}

/// Vocabulary of the tiny model: `<unk>`, `<s>`, `</s>` and the 256 byte tokens.
pub const TINY_VOCAB: u64 = 259;

impl TinyLlama {
    /// Parameters the model has (for assertions).
    pub fn parameters(&self) -> u64 {
        let (e, f) = (self.embd, self.ff);
        2 * e * TINY_VOCAB + e + self.layers * (2 * e + 4 * e * e + 3 * e * f)
    }

    /// A real llama-architecture GGUF (F32 weights) llama.cpp can load.
    pub fn build(&self) -> Vec<u8> {
        let mut rng = self.seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut weights = |n: u64| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    rng = rng
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((rng >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
                })
                .collect()
        };
        let (e, f, v) = (self.embd, self.ff, TINY_VOCAB);
        let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
        tokens.extend((0..256).map(|b| format!("<0x{b:02X}>")));
        let mut types = vec![Value::I32(2), Value::I32(3), Value::I32(3)];
        types.extend((0..256).map(|_| Value::I32(6)));
        let mut w = GgufWriter::new()
            .kv("general.architecture", Value::String("llama".into()))
            .kv("general.name", Value::String(self.name.clone()))
            .kv("general.file_type", Value::U32(0))
            .kv("llama.context_length", Value::U32(self.ctx as u32))
            .kv("llama.embedding_length", Value::U32(e as u32))
            .kv("llama.block_count", Value::U32(self.layers as u32))
            .kv("llama.feed_forward_length", Value::U32(f as u32))
            .kv("llama.attention.head_count", Value::U32(self.heads as u32))
            .kv(
                "llama.attention.head_count_kv",
                Value::U32(self.heads as u32),
            )
            .kv(
                "llama.rope.dimension_count",
                Value::U32((e / self.heads) as u32),
            )
            .kv("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5))
            .kv("tokenizer.ggml.model", Value::String("llama".into()))
            .kv("tokenizer.ggml.tokens", strings(tokens))
            .kv(
                "tokenizer.ggml.scores",
                Value::Array {
                    elem: ValueType::F32,
                    items: (0..v).map(|_| Value::F32(0.0)).collect(),
                },
            )
            .kv(
                "tokenizer.ggml.token_type",
                Value::Array {
                    elem: ValueType::I32,
                    items: types,
                },
            )
            .kv("tokenizer.ggml.bos_token_id", Value::U32(1))
            .kv("tokenizer.ggml.eos_token_id", Value::U32(2))
            .kv("tokenizer.ggml.unknown_token_id", Value::U32(0));
        if self.chat_template {
            w = w.kv(
                "tokenizer.chat_template",
                Value::String(
                    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                        .into(),
                ),
            );
        }
        w = w
            .tensor_f32("token_embd.weight", &[e, v], &weights(e * v))
            .tensor_f32("output_norm.weight", &[e], &vec![1.0; e as usize])
            .tensor_f32("output.weight", &[e, v], &weights(e * v));
        for i in 0..self.layers {
            let p = format!("blk.{i}");
            w = w
                .tensor_f32(
                    &format!("{p}.attn_norm.weight"),
                    &[e],
                    &vec![1.0; e as usize],
                )
                .tensor_f32(&format!("{p}.attn_q.weight"), &[e, e], &weights(e * e))
                .tensor_f32(&format!("{p}.attn_k.weight"), &[e, e], &weights(e * e))
                .tensor_f32(&format!("{p}.attn_v.weight"), &[e, e], &weights(e * e))
                .tensor_f32(&format!("{p}.attn_output.weight"), &[e, e], &weights(e * e))
                .tensor_f32(
                    &format!("{p}.ffn_norm.weight"),
                    &[e],
                    &vec![1.0; e as usize],
                )
                .tensor_f32(&format!("{p}.ffn_gate.weight"), &[e, f], &weights(e * f))
                .tensor_f32(&format!("{p}.ffn_up.weight"), &[e, f], &weights(e * f))
                .tensor_f32(&format!("{p}.ffn_down.weight"), &[f, e], &weights(e * f));
        }
        w.to_bytes()
    }
}

/// The default tiny model with `name` and `seed`.
pub fn tiny_llama(name: &str, seed: u64) -> Vec<u8> {
    TinyLlama {
        name: name.into(),
        seed,
        ..TinyLlama::default()
    }
    .build()
}
