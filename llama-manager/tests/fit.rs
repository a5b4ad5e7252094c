//! Fit verdicts for fixed hardware descriptions: no GPU; an 8 GB GPU; Apple 16 GB.

use llama_manager::fit::{Verdict, fit};
use llama_manager::gguf::{self, ModelSummary};
use llama_manager::hardware::{Gpu, GpuKind, Hardware};
use llama_manager::testing::gguf_writer::tiny_llama;

const GIB: u64 = 1 << 30;

/// A model's shape as its GGUF header describes it.
#[allow(clippy::too_many_arguments)]
fn model(
    weights: u64,
    layers: u64,
    embd: u64,
    heads: u64,
    kv_heads: u64,
    ff: u64,
    vocab: u64,
    ctx: u64,
) -> ModelSummary {
    // Token embeddings and output: two vocab × embd matrices at the model's bits per weight.
    let params_guess = weights as f64;
    let non_layer = (2 * vocab * embd) as f64 * (weights as f64 / params_guess.max(1.0)) * 0.6;
    let non_layer = non_layer as u64;
    ModelSummary {
        architecture: "llama".into(),
        layers,
        embedding_length: embd,
        head_count: heads,
        head_count_kv: kv_heads,
        key_length: embd / heads,
        value_length: embd / heads,
        feed_forward_length: ff,
        vocab_size: vocab,
        context_length: ctx,
        non_layer_bytes: non_layer,
        layer_bytes: weights - non_layer,
        ..ModelSummary::default()
    }
}

/// Llama-3-8B-like at Q4_K_M (4.9 GB).
fn q4_8b() -> ModelSummary {
    model(4_920_000_000, 32, 4096, 32, 8, 14336, 128_256, 8192)
}

/// Llama-2-13B at Q8_0 (13.8 GB), no GQA.
fn q8_13b() -> ModelSummary {
    model(13_830_000_000, 40, 5120, 40, 40, 13824, 32_000, 4096)
}

/// Llama-3-70B at Q4_K_M (42.5 GB).
fn q4_70b() -> ModelSummary {
    model(42_500_000_000, 80, 8192, 64, 8, 28672, 128_256, 8192)
}

fn no_gpu() -> Hardware {
    Hardware::cpu_only(16 * GIB, 12 * GIB, 8)
}

fn gpu_8gb() -> Hardware {
    let mut hw = Hardware::cpu_only(32 * GIB, 28 * GIB, 16);
    hw.gpus.push(Gpu {
        name: "NVIDIA GeForce RTX 3070".into(),
        kind: GpuKind::Nvidia,
        vram_total: 8 * GIB,
        vram_free: Some(7_800 << 20),
    });
    hw
}

fn apple_16gb() -> Hardware {
    let mut hw = Hardware::cpu_only(16 * GIB, 12 * GIB, 10);
    hw.gpus.push(Gpu {
        name: "Apple M2".into(),
        kind: GpuKind::Apple,
        vram_total: 16 * GIB,
        vram_free: None,
    });
    hw
}

#[test]
fn no_gpu_runs_on_cpu_or_not_at_all() {
    let f = fit(&q4_8b(), 0, &no_gpu());
    assert_eq!(f.verdict, Verdict::CpuOnly, "{}", f.explain());
    assert_eq!(f.gpu_layers, 0);
    assert_eq!(f.ctx, 8192);
    assert!(f.ram_need <= 12 * GIB);
    assert_eq!(f.ram_need, f.weights_bytes + f.kv_bytes + f.compute_bytes);
    // 32 layers × 8 KV heads × 256 × 2 bytes per token = 128 KiB/token → 1 GiB at 8192.
    assert_eq!(f.kv_bytes, 8192 * 32 * 8 * 256 * 2);

    let f = fit(&q4_70b(), 0, &no_gpu());
    assert_eq!(f.verdict, Verdict::WontFit);
    assert_eq!(f.ctx, 512, "smallest context tried");
    let text = f.explain();
    assert!(text.starts_with("will not fit"), "{text}");
    assert!(text.contains("12.00 GiB"), "{text}");

    // 13B Q8 (12.9 GiB of weights) does not fit in 12 GiB available at any context.
    assert_eq!(fit(&q8_13b(), 0, &no_gpu()).verdict, Verdict::WontFit);
}

#[test]
fn eight_gb_gpu_full_partial_and_cpu_side() {
    let hw = gpu_8gb();
    let f = fit(&q4_8b(), 0, &hw);
    assert_eq!(f.verdict, Verdict::FullGpu, "{}", f.explain());
    assert_eq!(f.gpu_layers, 33);
    assert_eq!(f.ctx, 8192);
    assert!(f.gpu_need <= f.gpu_budget);
    assert_eq!(f.gpu_budget, (7_800 << 20) - (400 << 20));

    let f = fit(&q8_13b(), 0, &hw);
    assert_eq!(f.verdict, Verdict::PartialOffload, "{}", f.explain());
    assert!(f.gpu_layers >= 5 && f.gpu_layers < 40, "{}", f.explain());
    assert_eq!(f.ctx, 4096, "the trained context is below the cap");
    assert!(f.gpu_need <= f.gpu_budget && f.ram_need <= f.ram_budget);
    // One more layer would not fit on the GPU.
    let per_layer = (f.weights_bytes - q8_13b().non_layer_bytes) / 40 + f.kv_bytes / 40;
    assert!(f.gpu_need + per_layer > f.gpu_budget);
    assert!(
        f.explain()
            .contains(&format!("{} of 40 layers", f.gpu_layers))
    );

    // 70B: 8 GB of VRAM and 28 GiB of RAM are not enough.
    assert_eq!(fit(&q4_70b(), 0, &hw).verdict, Verdict::WontFit);
}

#[test]
fn apple_16gb_unified_memory() {
    let hw = apple_16gb();
    let f = fit(&q4_8b(), 0, &hw);
    assert_eq!(f.verdict, Verdict::FullGpu, "{}", f.explain());
    // The Metal working set: 2/3 of 16 GiB.
    assert_eq!(f.gpu_budget, (16 * GIB) * 2 / 3);
    // Unified: the GPU's share comes out of RAM too.
    assert_eq!(f.ram_need, f.gpu_need);

    let f = fit(&q8_13b(), 0, &hw);
    assert_eq!(f.verdict, Verdict::WontFit, "{}", f.explain());
    assert_eq!(fit(&q4_70b(), 0, &hw).verdict, Verdict::WontFit);
}

#[test]
fn tiny_real_model_from_its_header() {
    let bytes = tiny_llama("t", 1);
    let g = gguf::parse(&bytes).unwrap();
    let s = ModelSummary::from_gguf(&g, bytes.len() as u64).unwrap();
    let f = fit(&s, bytes.len() as u64, &gpu_8gb());
    assert_eq!(f.verdict, Verdict::FullGpu);
    assert_eq!(f.ctx, 512, "never more than the trained context");
    assert_eq!(f.gpu_layers, 3);
    assert_eq!(f.weights_bytes, s.weight_bytes());
    let f = fit(&s, bytes.len() as u64, &no_gpu());
    assert_eq!(f.verdict, Verdict::CpuOnly);
    // A machine with almost no memory.
    let f = fit(
        &s,
        bytes.len() as u64,
        &Hardware::cpu_only(1 << 20, 1 << 20, 1),
    );
    assert_eq!(f.verdict, Verdict::WontFit);
}

#[test]
fn a_cpu_only_engine_never_gets_a_gpu_verdict() {
    // The 8 GB GPU would hold the 8B model fully, but the engine is a CPU build.
    let mut hw = gpu_8gb();
    hw.engine_cpu_only = true;
    let f = fit(&q4_8b(), 0, &hw);
    assert_eq!(f.verdict, Verdict::CpuOnly, "{}", f.explain());
    assert_eq!(f.gpu_layers, 0);
    assert_eq!(f.gpu_budget, 0);
}

#[test]
fn a_quantized_kv_cache_takes_less_memory() {
    use llama_manager::fit::{KvTypes, fit_with};
    let args: Vec<String> = ["--flash-attn", "on", "-ctk", "q8_0", "--cache-type-v=q8_0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let kv = KvTypes::from_args(&args);
    assert_eq!(kv, KvTypes { k32: 34, v32: 34 });
    let f16 = fit(&q4_8b(), 0, &no_gpu());
    let q8 = fit_with(&q4_8b(), 0, &no_gpu(), kv);
    assert_eq!(q8.ctx, f16.ctx);
    // 34/32 bytes per element instead of 2.
    assert_eq!(q8.kv_bytes, f16.kv_bytes * 34 / 64);
    assert!(q8.ram_need < f16.ram_need);
}
