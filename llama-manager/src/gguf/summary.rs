//! From raw GGUF metadata to the facts the library shows and the fit verdict uses.

use serde::{Deserialize, Serialize};

use super::{Gguf, Value};

/// What BurnCloud knows about a model file from its header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ModelSummary {
    pub architecture: String,
    pub name: Option<String>,
    /// Parameters (sum of the elements of every tensor, all shards).
    pub parameters: u64,
    pub layers: u64,
    pub context_length: u64,
    pub embedding_length: u64,
    pub feed_forward_length: u64,
    pub head_count: u64,
    pub head_count_kv: u64,
    /// Per-head key and value sizes (default embedding / heads).
    pub key_length: u64,
    pub value_length: u64,
    pub vocab_size: u64,
    /// `general.file_type` as llama.cpp names it (`Q4_K_M`, `F16`, ...).
    pub file_type: Option<String>,
    pub has_chat_template: bool,
    /// Shards the model is split into (1 when not split).
    pub split_count: u64,
    /// Weight bytes of everything outside the repeating blocks (embeddings, output).
    pub non_layer_bytes: u64,
    /// Weight bytes of all repeating blocks (`blk.N.*`).
    pub layer_bytes: u64,
    /// `<arch>.pooling_type` (llama.cpp's numbering: 0 none, 1 mean, 2 cls, 3 last,
    /// 4 rank) where the model says; embedding models do.
    #[serde(default)]
    pub pooling_type: Option<u64>,
}

impl ModelSummary {
    /// Summarise one header; `file_len` is the file's size (for tensor sizes).
    pub fn from_gguf(g: &Gguf, file_len: u64) -> Result<Self, String> {
        let arch = g
            .get("general.architecture")
            .and_then(Value::as_str)
            .ok_or("the GGUF header has no general.architecture: not a model file")?
            .to_string();
        let num = |k: &str| -> u64 {
            match g.get(&format!("{arch}.{k}")) {
                // Some models store a per-layer array (e.g. head_count_kv): take the largest.
                Some(Value::Array { items, .. }) => {
                    items.iter().filter_map(Value::as_u64).max().unwrap_or(0)
                }
                Some(v) => v.as_u64().unwrap_or(0),
                None => 0,
            }
        };
        let embedding_length = num("embedding_length");
        let head_count = num("attention.head_count");
        let head_count_kv = match num("attention.head_count_kv") {
            0 => head_count,
            n => n,
        };
        let head_dim = embedding_length.checked_div(head_count).unwrap_or(0);
        let key_length = match num("attention.key_length") {
            0 => head_dim,
            n => n,
        };
        let value_length = match num("attention.value_length") {
            0 => head_dim,
            n => n,
        };
        let vocab_size = match g.get("tokenizer.ggml.tokens") {
            Some(Value::Array { items, .. }) => items.len() as u64,
            _ => num("vocab_size"),
        };
        let sizes = g.tensor_sizes(file_len);
        let (mut layer_bytes, mut non_layer_bytes) = (0u64, 0u64);
        for (t, s) in g.tensors.iter().zip(&sizes) {
            if t.name.starts_with("blk.") {
                layer_bytes += s;
            } else {
                non_layer_bytes += s;
            }
        }
        Ok(ModelSummary {
            pooling_type: g
                .get(&format!("{arch}.pooling_type"))
                .and_then(Value::as_u64),
            name: g
                .get("general.name")
                .and_then(Value::as_str)
                .map(str::to_string),
            parameters: g.tensors.iter().map(|t| t.elements()).sum(),
            layers: num("block_count"),
            context_length: num("context_length"),
            embedding_length,
            feed_forward_length: num("feed_forward_length"),
            head_count,
            head_count_kv,
            key_length,
            value_length,
            vocab_size,
            file_type: g
                .get("general.file_type")
                .and_then(Value::as_u64)
                .map(file_type_name),
            has_chat_template: g
                .get("tokenizer.chat_template")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty()),
            split_count: g
                .get("split.count")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .max(1),
            non_layer_bytes,
            layer_bytes,
            architecture: arch,
        })
    }

    /// Add another shard's tensors (parameters and bytes) to this summary.
    pub fn add_shard(&mut self, g: &Gguf, file_len: u64) {
        self.parameters += g.tensors.iter().map(|t| t.elements()).sum::<u64>();
        for (t, s) in g.tensors.iter().zip(g.tensor_sizes(file_len)) {
            if t.name.starts_with("blk.") {
                self.layer_bytes += s;
            } else {
                self.non_layer_bytes += s;
            }
        }
    }

    /// All weight bytes.
    pub fn weight_bytes(&self) -> u64 {
        self.layer_bytes + self.non_layer_bytes
    }

    /// "1.1B", "470K", ...
    pub fn parameters_human(&self) -> String {
        human_count(self.parameters)
    }
}

/// 1_100_000_000 → "1.1B".
pub fn human_count(n: u64) -> String {
    let f = n as f64;
    if f >= 1e9 {
        format!("{:.1}B", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.1}M", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.1}K", f / 1e3)
    } else {
        n.to_string()
    }
}

/// llama.cpp's `llama_ftype` names.
pub fn file_type_name(ft: u64) -> String {
    let s = match ft {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        other => return format!("type {other}"),
    };
    s.to_string()
}
