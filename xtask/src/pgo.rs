//! Profile-guided release builds of `burncloud` (`cargo xtask bench`, `dist`).
//!
//! Two passes: the binary is built instrumented (`-Cprofile-generate`), run as `burncloud
//! router` in front of the fake OpenAI and Anthropic upstreams under a mix of the requests
//! clients send ([`MIX`]: chat completions plain and streamed, with tools, Anthropic
//! Messages passed through and translated both ways, Responses, the model list, and the
//! usual errors), stopped by SIGTERM so that it writes its profile, and built again with
//! the merged profile (`-Cprofile-use`). Both passes use `--target <host>` so that the
//! flags reach only the binary's code, not build scripts or proc macros. The profile is
//! named by its hash (a new profile is a new flag, so cargo rebuilds) and reused while the
//! instrumented binary is unchanged (an unchanged tree is not rebuilt).
//!
//! `BURNCLOUD_PGO=0`, and the test command's quick release builds, build without a profile.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;

use crate::bench::{MOCK_KEY, Upstream, configure, start, tempfile_dir};
use crate::{cargo, sh, target_dir};

/// The key `fake_anthropic` accepts.
const ANTHROPIC_KEY: &str = "sk-ant-api03-fake-key-0123456789";

/// A release build of `burncloud`.
pub struct Built {
    /// The binary.
    pub bin: PathBuf,
    /// The target folder it was built in (`<target>/<name>`, `<target>/<name>-plain`
    /// without a profile).
    pub dir: PathBuf,
    /// The target triple it was built for (always given, so the flags reach only the
    /// binary's code).
    pub triple: String,
}

/// Whether release builds are profile-guided: not when `BURNCLOUD_PGO=0`, nor in the test
/// command (whose release builds are quick ones).
pub fn enabled() -> bool {
    !(std::env::var("BURNCLOUD_PGO").is_ok_and(|v| v == "0") || crate::quick_release_on())
}

/// A release build of `burncloud` with `features` (e.g. `--no-default-features`) in
/// `<target>/<name>`, profile-guided when [`enabled`] (else in `<target>/<name>-plain`).
pub fn release(features: &[&str], name: &str) -> Result<Built> {
    let triple = host_triple()?;
    let dir = target_dir().join(name);
    let build = |dir: &Path, flags: Option<String>| -> Result<PathBuf> {
        let mut cmd = cargo();
        cmd.args(["build", "--release", "-p", "burncloud"])
            .args(features)
            .args(["--target", &triple, "--target-dir"])
            .arg(dir);
        if let Some(f) = flags {
            cmd.env("RUSTFLAGS", rustflags(&f))
                .env_remove("CARGO_ENCODED_RUSTFLAGS");
        }
        sh(&mut cmd)?;
        Ok(dir.join(&triple).join("release/burncloud"))
    };
    if !enabled() {
        // Its own folder: switching between the two builds does not rebuild either.
        eprintln!("xtask: release build without a profile");
        let dir = target_dir().join(format!("{name}-plain"));
        let bin = build(&dir, None)?;
        return Ok(Built { bin, dir, triple });
    }
    let profdata = llvm_profdata(&triple)?;
    let work = target_dir().join("pgo").join(name);
    let raw = work.join("raw");
    eprintln!("xtask: profile-guided build, pass 1: instrumented");
    let instrumented = build(
        &target_dir().join(format!("{name}-pgo-gen")),
        Some(format!("-Cprofile-generate={}", raw.display())),
    )?;
    let stamp = work.join("trained-on");
    let built = crate::setup::sha256_of(&instrumented)?;
    let reuse = std::fs::read_to_string(&stamp).ok().and_then(|s| {
        let (hash, file) = s.trim().split_once(' ')?;
        (hash == built && Path::new(file).is_file()).then(|| PathBuf::from(file))
    });
    let profile = match reuse {
        Some(p) => {
            eprintln!(
                "xtask: the instrumented binary is unchanged: reusing {}",
                p.display()
            );
            p
        }
        None => {
            let _ = std::fs::remove_dir_all(&raw);
            std::fs::create_dir_all(&raw)?;
            let fakes = release_examples(&["fake_openai", "fake_anthropic"])?;
            eprintln!("xtask: profile-guided build: training run");
            let done = train(&instrumented, &fakes, Duration::from_secs(20))?;
            eprintln!("xtask: training: {done}");
            let merged = work.join("merged.profdata");
            let raws = profraws(&raw)?;
            sh(Command::new(&profdata)
                .args(["merge", "-o"])
                .arg(&merged)
                .args(&raws))?;
            let hash = crate::setup::sha256_of(&merged)?;
            let named = work.join(format!("burncloud-{}.profdata", &hash[..16]));
            for old in std::fs::read_dir(&work)?.flatten() {
                if old.path().extension().is_some_and(|x| x == "profdata") && old.path() != merged {
                    let _ = std::fs::remove_file(old.path());
                }
            }
            std::fs::rename(&merged, &named)?;
            std::fs::write(&stamp, format!("{built} {}\n", named.display()))?;
            named
        }
    };
    eprintln!(
        "xtask: profile-guided build, pass 2: with {}",
        profile.display()
    );
    let bin = build(&dir, Some(format!("-Cprofile-use={}", profile.display())))?;
    Ok(Built { bin, dir, triple })
}

/// The caller's RUSTFLAGS with `extra` after them.
fn rustflags(extra: &str) -> String {
    with_callers(std::env::var("RUSTFLAGS").ok(), extra)
}

fn with_callers(callers: Option<String>, extra: &str) -> String {
    match callers {
        Some(f) if !f.trim().is_empty() => format!("{f} {extra}"),
        _ => extra.to_string(),
    }
}

/// The profiles the instrumented router wrote (one per process).
fn profraws(dir: &Path) -> Result<Vec<PathBuf>> {
    let found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "profraw"))
        .collect();
    if found.is_empty() {
        bail!(
            "the instrumented router wrote no profile into {} (did it exit cleanly?)",
            dir.display()
        );
    }
    Ok(found)
}

fn host_triple() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("no host in `rustc -vV`")
}

/// `llvm-profdata` of the toolchain's LLVM (the `llvm-tools` component, added when missing).
fn llvm_profdata(host: &str) -> Result<PathBuf> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .current_dir(crate::root())
        .output()
        .context("rustc --print sysroot")?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let tool = sysroot
        .join("lib/rustlib")
        .join(host)
        .join("bin/llvm-profdata");
    if !tool.is_file() {
        sh(Command::new("rustup").args(["component", "add", "llvm-tools"]))
            .context("a profile-guided build needs rustup's llvm-tools (or BURNCLOUD_PGO=0)")?;
    }
    if !tool.is_file() {
        bail!(
            "no llvm-profdata at {} after adding llvm-tools",
            tool.display()
        );
    }
    Ok(tool)
}

/// gateway-core's examples `names` (the fake upstreams, the burst benchmark), built in
/// release; returns their folder.
pub fn release_examples(names: &[&str]) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "-p", "gateway-core"]);
    for name in names {
        cmd.args(["--example", name]);
    }
    sh(&mut cmd)?;
    Ok(target_dir().join("release/examples"))
}

/// How a call authenticates.
#[derive(Clone, Copy)]
enum Auth {
    Bearer,
    XApiKey,
    Wrong,
}

/// One request of the training mix and what the gateway must answer.
struct Call {
    what: &'static str,
    path: &'static str,
    auth: Auth,
    body: &'static str,
    status: u16,
    /// Text the answer must contain (a stream's last event, an error's code).
    ends: &'static str,
    /// How many calls of every round of the mix ([`mix_round`]) are this one.
    weight: usize,
}

/// The training mix, weighted towards what clients send most (chat, plain and streamed).
static MIX: &[Call] = &[
    Call {
        what: "chat",
        path: "/v1/chat/completions",
        auth: Auth::Bearer,
        body: r#"{"model":"train-chat","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hello"}],"max_tokens":16}"#,
        status: 200,
        ends: "\"usage\"",
        weight: 8,
    },
    Call {
        what: "chat stream",
        path: "/v1/chat/completions",
        auth: Auth::Bearer,
        body: r#"{"model":"train-stream","messages":[{"role":"user","content":"Say hello"}],"max_tokens":16,"stream":true,"stream_options":{"include_usage":true}}"#,
        status: 200,
        ends: "data: [DONE]",
        weight: 6,
    },
    Call {
        what: "chat with tools",
        path: "/v1/chat/completions",
        auth: Auth::Bearer,
        body: r#"{"model":"train-chat","messages":[{"role":"user","content":"Weather in Paris?"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],"tool_choice":"auto"}"#,
        status: 200,
        ends: "\"usage\"",
        weight: 2,
    },
    Call {
        what: "messages to Anthropic",
        path: "/v1/messages",
        auth: Auth::XApiKey,
        body: r#"{"model":"train-claude","max_tokens":64,"system":"Be brief.","messages":[{"role":"user","content":"Say hello"}]}"#,
        status: 200,
        ends: "\"usage\"",
        weight: 2,
    },
    Call {
        what: "messages stream to Anthropic",
        path: "/v1/messages",
        auth: Auth::XApiKey,
        body: r#"{"model":"train-claude","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Say hello"}]}"#,
        status: 200,
        ends: "message_stop",
        weight: 2,
    },
    Call {
        what: "messages stream to OpenAI (translated)",
        path: "/v1/messages",
        auth: Auth::XApiKey,
        body: r#"{"model":"train-stream","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Say hello"}]}"#,
        status: 200,
        ends: "message_stop",
        weight: 1,
    },
    Call {
        what: "chat to Anthropic (translated)",
        path: "/v1/chat/completions",
        auth: Auth::Bearer,
        body: r#"{"model":"train-claude","messages":[{"role":"user","content":"Say hello"}],"max_tokens":16,"stream":true}"#,
        status: 200,
        ends: "data: [DONE]",
        weight: 1,
    },
    Call {
        what: "responses stream",
        path: "/v1/responses",
        auth: Auth::Bearer,
        body: r#"{"model":"train-chat","input":"Say hello","stream":true}"#,
        status: 200,
        ends: "response.completed",
        weight: 1,
    },
    Call {
        what: "models",
        path: "/v1/models",
        auth: Auth::Bearer,
        body: "",
        status: 200,
        ends: "train-claude",
        weight: 1,
    },
    Call {
        what: "wrong key",
        path: "/v1/chat/completions",
        auth: Auth::Wrong,
        body: r#"{"model":"train-chat","messages":[{"role":"user","content":"Say hello"}]}"#,
        status: 401,
        ends: "invalid_token",
        weight: 1,
    },
    Call {
        what: "unknown model",
        path: "/v1/chat/completions",
        auth: Auth::Bearer,
        body: r#"{"model":"no-such-model","messages":[{"role":"user","content":"Say hello"}]}"#,
        status: 404,
        ends: "model_not_found",
        weight: 1,
    },
    Call {
        what: "malformed JSON",
        path: "/v1/chat/completions",
        auth: Auth::Bearer,
        body: r#"{"model":"train-chat","messages":[{"role":"user","#,
        status: 400,
        ends: "invalid_request",
        weight: 1,
    },
];

/// The calls of one round of the mix, each as often as its weight.
fn mix_round() -> Vec<&'static Call> {
    MIX.iter()
        .flat_map(|c| std::iter::repeat_n(c, c.weight))
        .collect()
}

/// What a training run did.
pub struct Trained {
    calls: usize,
    secs: f64,
}

impl std::fmt::Display for Trained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests in {:.1} s ({} kinds), every answer as expected",
            self.calls,
            self.secs,
            MIX.len()
        )
    }
}

/// Runs `burncloud router` in front of the fakes in `fakes` and sends it the mix: 16
/// connections for `secs`, then one connection for a third of it; checks every answer,
/// then stops the router by SIGTERM and checks it exited cleanly (an instrumented binary
/// writes its profile on exit).
pub fn train(burncloud: &Path, fakes: &Path, secs: Duration) -> Result<Trained> {
    let (_mock, mock) = start(
        "fake OpenAI",
        Command::new(fakes.join("fake_openai")).arg("--no-record"),
    )?;
    let (_stream_mock, stream_mock) = start(
        "fake OpenAI (streams)",
        Command::new(fakes.join("fake_openai")).args(["--no-record", "--pieces", "18"]),
    )?;
    let (_anthropic, anthropic) = start(
        "fake Anthropic",
        &mut Command::new(fakes.join("fake_anthropic")),
    )?;
    let data = tempfile_dir()?;
    let (mut router, gw) = start(
        "router",
        Command::new(burncloud)
            .arg("router")
            .env("BURNCLOUD_DATA_DIR", &*data)
            .env("PORT", "0")
            .env("RUST_LOG", "warn"),
    )?;
    let key = configure(
        &gw,
        &[
            Upstream::openai("chat", &mock, "train-chat", MOCK_KEY),
            Upstream::openai("stream", &stream_mock, "train-stream", MOCK_KEY),
            Upstream {
                name: "anthropic",
                kind: 14,
                addr: &anthropic,
                model: "train-claude",
                key: ANTHROPIC_KEY,
            },
        ],
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let base = format!("http://{gw}");
    let mut calls = rt.block_on(drive(&base, &key, 16, secs))?;
    calls += rt.block_on(drive(&base, &key, 1, secs / 3))?;
    let elapsed = started.elapsed().as_secs_f64();
    let status = router.stop()?;
    if !status.success() {
        bail!("the router exited with {status} after the training run");
    }
    Ok(Trained {
        calls,
        secs: elapsed,
    })
}

/// `conns` connections sending the mix in turn until `secs` have passed; the number of
/// calls made, or the first answer that was not as expected.
async fn drive(base: &str, key: &str, conns: usize, secs: Duration) -> Result<usize> {
    let round = mix_round();
    let deadline = Instant::now() + secs;
    let tasks = (0..conns).map(|i| {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .expect("reqwest client");
        let round = round.clone();
        async move {
            let mut n = 0usize;
            while Instant::now() < deadline {
                let call = round[(i + n) % round.len()];
                send(&client, base, key, call)
                    .await
                    .with_context(|| format!("training call {:?}", call.what))?;
                n += 1;
            }
            anyhow::Ok(n)
        }
    });
    let mut total = 0;
    for r in futures_util::future::join_all(tasks).await {
        total += r?;
    }
    Ok(total)
}

async fn send(client: &reqwest::Client, base: &str, key: &str, call: &Call) -> Result<()> {
    let url = format!("{base}{}", call.path);
    let mut rb = if call.body.is_empty() {
        client.get(url)
    } else {
        client
            .post(url)
            .header("content-type", "application/json")
            .body(call.body)
    };
    rb = match call.auth {
        Auth::Bearer => rb.bearer_auth(key),
        Auth::XApiKey => rb
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01"),
        Auth::Wrong => rb.bearer_auth("sk-not-a-key-of-this-gateway"),
    };
    let resp = rb.send().await?;
    let status = resp.status().as_u16();
    // Read as a client does: chunk by chunk.
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk?);
    }
    let text = String::from_utf8_lossy(&body);
    if status != call.status || !text.contains(call.ends) {
        bail!(
            "expected {} with {:?}, got {status}: {}",
            call.status,
            call.ends,
            text.chars().take(400).collect::<String>()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_round_holds_each_call_as_often_as_its_weight() {
        let round = mix_round();
        assert_eq!(round.len(), MIX.iter().map(|c| c.weight).sum::<usize>());
        for call in MIX {
            assert!(call.weight > 0, "{} is never sent", call.what);
            let n = round.iter().filter(|c| std::ptr::eq(**c, call)).count();
            assert_eq!(n, call.weight, "{}", call.what);
        }
    }

    #[test]
    fn the_callers_rustflags_come_first() {
        let flags = |c: Option<&str>| with_callers(c.map(str::to_string), "-Cprofile-use=p");
        assert_eq!(
            flags(Some("-Ctarget-cpu=native")),
            "-Ctarget-cpu=native -Cprofile-use=p"
        );
        assert_eq!(flags(Some(" ")), "-Cprofile-use=p");
        assert_eq!(flags(None), "-Cprofile-use=p");
    }

    #[test]
    fn no_profile_is_an_error_that_says_where_it_looked() {
        let dir = std::env::temp_dir().join(format!("pgo-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("other.txt"), "x").unwrap();
        let err = profraws(&dir).unwrap_err().to_string();
        assert!(err.contains(&dir.display().to_string()), "{err}");
        std::fs::write(dir.join("default_1.profraw"), "x").unwrap();
        assert_eq!(profraws(&dir).unwrap(), vec![dir.join("default_1.profraw")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
