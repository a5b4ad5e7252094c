//! Which extra llama-server arguments a deployment may carry (`model run --arg`, the
//! deploy settings): an allow-list of tuning flags. Everything that changes what is served
//! or where (model, host, port, API key, alias, files read or served, logging
//! destinations, remote backends, router mode) is BurnCloud's, and refused with the
//! flag named; the flags BurnCloud has its own option for say which one.

/// Tuning flags llama-server accepts that change nothing but speed, memory or defaults.
pub const ALLOWED: &[&str] = &[
    // CPU and scheduling
    "-tb",
    "--threads-batch",
    "-C",
    "--cpu-mask",
    "-Cr",
    "--cpu-range",
    "--cpu-strict",
    "--prio",
    "--poll",
    "-Cb",
    "--cpu-mask-batch",
    "-Crb",
    "--cpu-range-batch",
    "--cpu-strict-batch",
    "--prio-batch",
    "--poll-batch",
    "--numa",
    // batching, cache, memory
    "-b",
    "--batch-size",
    "-ub",
    "--ubatch-size",
    "-fa",
    "--flash-attn",
    "-ctk",
    "--cache-type-k",
    "-ctv",
    "--cache-type-v",
    "--mlock",
    "--mmap",
    "--no-mmap",
    "-lm",
    "--load-mode",
    "--direct-io",
    "--no-direct-io",
    "--repack",
    "--no-repack",
    "--no-host",
    "--swa-full",
    "-kvu",
    "--kv-unified",
    "--no-kv-unified",
    "-kvo",
    "--kv-offload",
    "-nkvo",
    "--no-kv-offload",
    "-cb",
    "--cont-batching",
    "-nocb",
    "--no-cont-batching",
    "--cache-reuse",
    "-cram",
    "--cache-ram",
    "-dt",
    "--defrag-thold",
    "--context-shift",
    "--no-context-shift",
    "--warmup",
    "--no-warmup",
    "--no-op-offload",
    // GPUs
    "-dev",
    "--device",
    "-sm",
    "--split-mode",
    "-ts",
    "--tensor-split",
    "-mg",
    "--main-gpu",
    "-ot",
    "--override-tensor",
    "-cmoe",
    "--cpu-moe",
    "-ncmoe",
    "--n-cpu-moe",
    "-fit",
    "--fit",
    "-fitt",
    "--fit-target",
    "-fitc",
    "--fit-ctx",
    // RoPE and context extension
    "--rope-scaling",
    "--rope-scale",
    "--rope-freq-base",
    "--rope-freq-scale",
    "--yarn-orig-ctx",
    "--yarn-ext-factor",
    "--yarn-attn-factor",
    "--yarn-beta-slow",
    "--yarn-beta-fast",
    "-gan",
    "--grp-attn-n",
    "-gaw",
    "--grp-attn-w",
    // sampling defaults
    "-s",
    "--seed",
    "--temp",
    "--top-k",
    "--top-p",
    "--min-p",
    "--typical",
    "--top-nsigma",
    "--repeat-penalty",
    "--repeat-last-n",
    "--presence-penalty",
    "--frequency-penalty",
    "--dry-multiplier",
    "--dry-base",
    "--dry-allowed-length",
    "--dry-penalty-last-n",
    "--dynatemp-range",
    "--dynatemp-exp",
    "--mirostat",
    "--mirostat-lr",
    "--mirostat-ent",
    "--xtc-probability",
    "--xtc-threshold",
    "--samplers",
    "--sampling-seq",
    "--ignore-eos",
    "-n",
    "--n-predict",
    "--keep",
    // constraints given inline (their -file forms read files: refused)
    "--grammar",
    "--json-schema",
    // the model's metadata as loaded (e.g. a longer trained context), not its file
    "--override-kv",
    // chat formatting
    "--jinja",
    "--no-jinja",
    "--chat-template",
    "--chat-template-kwargs",
    "--reasoning-format",
    "--reasoning-budget",
    "-rea",
    "--reasoning",
    "--pooling",
    // server behaviour
    "-to",
    "--timeout",
    "--threads-http",
    "--metrics",
    "--slots",
    "--no-slots",
    "-sps",
    "--slot-prompt-similarity",
    "--no-webui",
];

/// Flags BurnCloud sets from its own options: the option to use instead.
const OWN_OPTION: &[(&[&str], &str)] = &[
    (&["-c", "--ctx-size"], "--ctx"),
    (
        &["-ngl", "--gpu-layers", "--n-gpu-layers"],
        "--gpu-layers (auto, all, -1 or N)",
    ),
    (&["-t", "--threads"], "--threads"),
    (&["-np", "--parallel"], "--parallel"),
    (&["--port"], "--port"),
    (
        &["--embedding", "--embeddings", "--reranking", "--rerank"],
        "--mode embeddings|rerank",
    ),
];

/// Whether `token` is a flag (a value may be a negative number).
fn is_flag(token: &str) -> bool {
    token.starts_with('-') && token.len() > 1 && token.parse::<f64>().is_err()
}

/// Check extra arguments against the allow-list: the first refused flag, explained.
pub fn check(extra: &[String]) -> Result<(), String> {
    for a in extra {
        let a = a.trim();
        if !is_flag(a) {
            continue;
        }
        let flag = a.split(['=', ' ']).next().unwrap_or(a);
        if ALLOWED.contains(&flag) {
            continue;
        }
        if let Some((_, own)) = OWN_OPTION.iter().find(|(flags, _)| flags.contains(&flag)) {
            return Err(format!(
                "llama-server argument {flag} is set by BurnCloud: use {own} instead of --arg"
            ));
        }
        return Err(format!(
            "llama-server argument {flag} is not allowed in --arg: BurnCloud manages the model, host, port, API key, alias, served files and logs of its engines. Allowed tuning flags: {}",
            ALLOWED.join(" ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tuning_flags_pass_and_the_rest_is_refused_by_name() {
        assert!(check(&v(&["--flash-attn", "on", "-ctk", "q8_0", "--temp=0.2"])).is_ok());
        assert!(
            check(&v(&[
                "--rope-freq-scale",
                "-0.5",
                "--override-tensor",
                "x=CPU"
            ]))
            .is_ok()
        );
        assert!(
            check(&v(&[
                "--override-kv",
                "llama.context_length=int:65536",
                "--grammar",
                "root ::= \"hi\"",
            ]))
            .is_ok()
        );
        for bad in [
            "--path",
            "--static-path",
            "--log-file",
            "--api-key",
            "--api-key-file",
            "--host",
            "-m",
            "--model",
            "-hf",
            "--alias",
            "--lora",
            "--rpc",
            "--slot-save-path",
            "--chat-template-file",
            "--grammar-file",
            "--json-schema-file",
            "--ssl-key-file",
        ] {
            let err = check(&v(&["--temp", "0.1", &format!("{bad}=x")])).unwrap_err();
            assert!(
                err.contains(&format!("argument {bad} is not allowed")),
                "{err}"
            );
            assert!(
                err.contains("--flash-attn"),
                "lists the allowed ones: {err}"
            );
        }
        let err = check(&v(&["-ngl", "99"])).unwrap_err();
        assert!(err.contains("use --gpu-layers"), "{err}");
        let err = check(&v(&["--port=1"])).unwrap_err();
        assert!(err.contains("use --port"), "{err}");
    }
}
