//! Will this model run here, and how: full GPU / partial offload / CPU only / won't fit,
//! with a suggested context size and `-ngl`, from the GGUF summary and the hardware.
//!
//! The memory model (shown with every verdict):
//! - weights: the tensor bytes from the header (per repeating block and the rest);
//! - KV cache: `ctx × layers × kv_heads × (key_len × K + value_len × V)` bytes, K and V the
//!   bytes per element of the cache types (F16: 2; `-ctk`/`-ctv q8_0`: 34/32, q4_0: 18/32,
//!   ... see [`KvTypes`]);
//! - compute buffer: `4 × batch(512) × (vocab + ctx × heads + 4 × embd + ff)` bytes
//!   (logits and attention scores dominate);
//! - GPU budget: free VRAM (or 90 % of it) minus 400 MiB for the driver context; on
//!   Apple silicon the Metal working set (2/3 of RAM up to 36 GiB, 3/4 above);
//! - RAM budget: available RAM (what the GPU takes of unified memory is subtracted).

use serde::Serialize;

use crate::gguf::ModelSummary;
use crate::hardware::{GpuKind, Hardware};

const GIB: f64 = (1u64 << 30) as f64;
const BATCH: u64 = 512;
const GPU_CONTEXT_OVERHEAD: u64 = 400 << 20;
/// Context sizes are not suggested above this (users may ask for more).
pub const MAX_SUGGESTED_CTX: u64 = 8192;
const MIN_CTX: u64 = 512;

/// The verdict class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    FullGpu,
    PartialOffload,
    CpuOnly,
    WontFit,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::FullGpu => "full GPU",
            Verdict::PartialOffload => "partial GPU offload",
            Verdict::CpuOnly => "CPU only",
            Verdict::WontFit => "will not fit",
        }
    }
}

/// A verdict with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fit {
    pub verdict: Verdict,
    /// Suggested context size (`-c`).
    pub ctx: u64,
    /// Suggested `-ngl` (layers on the GPU; `layers + 1` = everything incl. output).
    pub gpu_layers: u64,
    /// The model's repeating blocks.
    pub layers: u64,
    pub weights_bytes: u64,
    pub kv_bytes: u64,
    pub compute_bytes: u64,
    pub gpu_budget: u64,
    pub ram_budget: u64,
    /// What this plan puts in GPU memory and in RAM.
    pub gpu_need: u64,
    pub ram_need: u64,
}

impl Fit {
    /// The verdict and its numbers, for people.
    pub fn explain(&self) -> String {
        let g = |b: u64| format!("{:.2} GiB", b as f64 / GIB);
        let head = match self.verdict {
            Verdict::FullGpu => format!(
                "full GPU: all {} layers on the GPU (-ngl {}), context {}",
                self.layers, self.gpu_layers, self.ctx
            ),
            Verdict::PartialOffload => format!(
                "partial GPU offload: {} of {} layers on the GPU (-ngl {}), context {}",
                self.gpu_layers, self.layers, self.gpu_layers, self.ctx
            ),
            Verdict::CpuOnly => format!("CPU only (-ngl 0), context {}", self.ctx),
            Verdict::WontFit => format!(
                "will not fit: needs at least {} even at context {}, {} of RAM and {} of GPU memory usable",
                g(self.weights_bytes + self.kv_bytes + self.compute_bytes),
                self.ctx,
                g(self.ram_budget),
                g(self.gpu_budget)
            ),
        };
        format!(
            "{head}\n  weights {} + KV cache {} (ctx {}) + compute {}\n  GPU: needs {} of {} usable; RAM: needs {} of {} available",
            g(self.weights_bytes),
            g(self.kv_bytes),
            self.ctx,
            g(self.compute_bytes),
            g(self.gpu_need),
            g(self.gpu_budget),
            g(self.ram_need),
            g(self.ram_budget)
        )
    }
}

/// The KV cache's element types (`-ctk`/`--cache-type-k`, `-ctv`/`--cache-type-v`), as
/// bytes per element × 32 (ggml's block sizes: q8_0 is 34 bytes per 32 values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvTypes {
    pub k32: u64,
    pub v32: u64,
}

impl Default for KvTypes {
    /// F16, llama-server's default.
    fn default() -> Self {
        KvTypes { k32: 64, v32: 64 }
    }
}

impl KvTypes {
    fn bytes32(name: &str) -> Option<u64> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "f32" => 128,
            "f16" | "bf16" => 64,
            "q8_0" => 34,
            "q5_1" => 24,
            "q5_0" => 22,
            "q4_1" => 20,
            "q4_0" | "iq4_nl" => 18,
            _ => return None,
        })
    }

    /// The cache types named in llama-server arguments (unknown ones stay F16).
    pub fn from_args(args: &[String]) -> KvTypes {
        let mut kv = KvTypes::default();
        let mut it = args.iter().peekable();
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) => (f, Some(v.to_string())),
                None => (a.as_str(), None),
            };
            let is_k = matches!(flag, "-ctk" | "--cache-type-k");
            let is_v = matches!(flag, "-ctv" | "--cache-type-v");
            if !is_k && !is_v {
                continue;
            }
            let value = inline.or_else(|| it.next().cloned()).unwrap_or_default();
            if let Some(b) = Self::bytes32(&value) {
                if is_k {
                    kv.k32 = b;
                } else {
                    kv.v32 = b;
                }
            }
        }
        kv
    }
}

struct Shape {
    layers: u64,
    per_layer: u64,
    non_layer: u64,
    kv_per_token_layer: u64,
    vocab: u64,
    heads: u64,
    embd: u64,
    ff: u64,
}

impl Shape {
    fn new(s: &ModelSummary, file_size: u64, kv: KvTypes) -> Shape {
        let layers = s.layers.max(1);
        let (per_layer, non_layer) = if s.split_count > 1 && file_size > s.weight_bytes() {
            // A remote split model's header only describes its first shard.
            ((file_size - s.non_layer_bytes) / layers, s.non_layer_bytes)
        } else if s.layer_bytes > 0 {
            (s.layer_bytes / layers, s.non_layer_bytes)
        } else {
            (file_size / layers, 0)
        };
        Shape {
            layers,
            per_layer,
            non_layer,
            kv_per_token_layer: s.head_count_kv * (s.key_length * kv.k32 + s.value_length * kv.v32)
                / 32,
            vocab: s.vocab_size.max(1),
            heads: s.head_count.max(1),
            embd: s.embedding_length,
            ff: s.feed_forward_length,
        }
    }

    fn kv_layer(&self, ctx: u64) -> u64 {
        ctx * self.kv_per_token_layer
    }

    fn compute(&self, ctx: u64) -> u64 {
        4 * BATCH * (self.vocab + ctx * self.heads + 4 * self.embd + self.ff)
    }

    fn weights(&self) -> u64 {
        self.per_layer * self.layers + self.non_layer
    }
}

fn budgets(hw: &Hardware) -> (u64, bool) {
    // The engine is a CPU build: whatever GPU the machine has, nothing goes there.
    if hw.engine_cpu_only {
        return (0, false);
    }
    let Some(gpu) = hw
        .gpus
        .iter()
        .max_by_key(|g| g.vram_free.unwrap_or(g.vram_total))
    else {
        return (0, false);
    };
    if gpu.kind == GpuKind::Apple {
        let frac = if gpu.vram_total <= 36 << 30 {
            2.0 / 3.0
        } else {
            0.75
        };
        return ((gpu.vram_total as f64 * frac) as u64, true);
    }
    let usable = gpu
        .vram_free
        .unwrap_or((gpu.vram_total as f64 * 0.9) as u64);
    (usable.saturating_sub(GPU_CONTEXT_OVERHEAD), false)
}

/// Decide how (and whether) a model runs on `hw`. `file_size` is used when the header's
/// tensor sizes are unknown.
pub fn fit(s: &ModelSummary, file_size: u64, hw: &Hardware) -> Fit {
    fit_with(s, file_size, hw, KvTypes::default())
}

/// [`fit`] with the KV cache types the deployment asks for (`-ctk`/`-ctv`).
pub fn fit_with(s: &ModelSummary, file_size: u64, hw: &Hardware, kv: KvTypes) -> Fit {
    let shape = Shape::new(s, file_size, kv);
    let (gpu_budget, unified) = budgets(hw);
    let ram = hw.ram_available;
    let trained = if s.context_length == 0 {
        4096
    } else {
        s.context_length
    };
    let default_ctx = trained.min(MAX_SUGGESTED_CTX).max(MIN_CTX.min(trained));
    let mut ctxs = vec![default_ctx];
    while let Some(&last) = ctxs.last() {
        let next = last / 2;
        if next < MIN_CTX.min(default_ctx) || next == 0 {
            break;
        }
        ctxs.push(next);
    }
    let make = |verdict, ctx, gpu_layers, gpu_need, ram_need| Fit {
        verdict,
        ctx,
        gpu_layers,
        layers: shape.layers,
        weights_bytes: shape.weights(),
        kv_bytes: shape.kv_layer(ctx) * shape.layers,
        compute_bytes: shape.compute(ctx),
        gpu_budget,
        ram_budget: ram,
        gpu_need,
        ram_need,
    };
    let full_need = |ctx| shape.weights() + shape.kv_layer(ctx) * shape.layers + shape.compute(ctx);
    // 1. Everything on the GPU, at a context of at least 2048 (or the trained one).
    if gpu_budget > 0 {
        for &ctx in ctxs.iter().filter(|&&c| c >= 2048.min(default_ctx)) {
            let need = full_need(ctx);
            let ram_need = if unified { need } else { 0 };
            if need <= gpu_budget && ram_need <= ram {
                return make(Verdict::FullGpu, ctx, shape.layers + 1, need, ram_need);
            }
        }
    }
    // 2. Partial offload or CPU only, at the largest context that fits.
    for &ctx in &ctxs {
        let per = shape.per_layer + shape.kv_layer(ctx);
        let compute = shape.compute(ctx);
        if gpu_budget > compute {
            let n = ((gpu_budget - compute) / per.max(1)).min(shape.layers);
            // In a partial plan the output layer and embeddings stay on the CPU.
            if n >= 1 {
                let gpu_need = compute + n * per;
                let cpu_need = shape.non_layer + (shape.layers - n) * per + compute;
                let ram_need = if unified {
                    cpu_need + gpu_need
                } else {
                    cpu_need
                };
                if ram_need <= ram {
                    return make(Verdict::PartialOffload, ctx, n, gpu_need, ram_need);
                }
            }
        }
        let need = full_need(ctx);
        if need <= ram {
            return make(Verdict::CpuOnly, ctx, 0, 0, need);
        }
    }
    let ctx = *ctxs.last().unwrap_or(&MIN_CTX);
    make(Verdict::WontFit, ctx, 0, 0, full_need(ctx))
}
