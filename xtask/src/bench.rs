//! `cargo xtask bench`: the gateway against a local OpenAI mock, measured in one run next
//! to the mock itself and to nginx `proxy_pass` in front of the same mock.
//!
//! Pinned when there are two cores: this process (the load generators: wrk and an
//! open-loop client) and the mocks on CPU 0, the proxy under test (gateway or nginx, one
//! worker) on CPU 1. Measures, for the mock direct, nginx and the gateway: req/s at 50
//! connections (wrk) and the proxy's CPU time per request (`/proc/PID/stat`), streams/s
//! (~5 KB streamed answers) at 1 and 10 connections with CPU per stream, p50/p99 at a fixed
//! 1,000 req/s and stream time to first byte at a fixed 200 streams/s (latency counted from
//! each request's send), stream time to first byte and to the end at 10
//! connections back to back (saturated: queueing more than the hop), RSS idle / peak of the
//! headless release build (profile-guided as `dist` builds it, see `pgo`), and RSS across
//! 1,000 concurrent long streams.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::{cache_dir, setup, target_dir};

const CHAT: &str = r#"{"model":"bench-model","messages":[{"role":"user","content":"Say hello to the benchmark"}],"max_tokens":16}"#;
/// A streamed answer of ~5 KB (the stream mock sends 18 pieces).
const STREAM_CHAT: &str = r#"{"model":"bench-stream","messages":[{"role":"user","content":"Say hello to the benchmark"}],"max_tokens":16,"stream":true}"#;

pub(crate) struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    /// SIGTERM, then SIGKILL if it has not exited within 5 s; its exit status.
    pub(crate) fn stop(&mut self) -> Result<std::process::ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Ok(status);
        }
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("xtask: {} did not stop on SIGTERM; killing", self.name);
        let _ = self.child.kill();
        Ok(self.child.wait()?)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Start a process that prints its address on its first stdout line.
pub(crate) fn start(name: &'static str, cmd: &mut Command) -> Result<(Proc, String)> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("start {name}"))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
    let addr = line
        .split_whitespace()
        .find_map(|w| {
            w.strip_prefix("http://")
                .or(Some(w))
                .filter(|w| w.starts_with("127.0.0.1:"))
        })
        .map(str::to_string)
        .with_context(|| format!("{name} printed no address: {line:?}"))?;
    Ok((Proc { child, name }, addr))
}

fn rss_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .map(|l| l.local_addr().map(|a| a.port()).unwrap_or(0))
        .unwrap_or(0)
}

/// wrk with `conns` connections for `secs`, posting `body`; returns (req/s, requests).
fn wrk(url: &str, auth: Option<&str>, conns: u32, secs: u64, body: &str) -> Result<(f64, u64)> {
    let script = cache_dir().join(format!("bench-post-{}.lua", std::process::id()));
    let mut lua = format!(
        "wrk.method = \"POST\"\nwrk.body = [[{body}]]\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
    );
    if let Some(a) = auth {
        lua.push_str(&format!(
            "wrk.headers[\"Authorization\"] = \"Bearer {a}\"\n"
        ));
    }
    std::fs::write(&script, lua)?;
    let out = Command::new("wrk")
        .args(["-t1", &format!("-c{conns}"), &format!("-d{secs}s"), "-s"])
        .arg(&script)
        .arg(url)
        .output();
    let _ = std::fs::remove_file(&script);
    let out = out?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        bail!("wrk saw errors against {url}:\n{text}");
    }
    let rps = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("Requests/sec:")
                .map(|v| v.trim().parse::<f64>())
        })
        .context("no Requests/sec in wrk output")?
        .context("bad Requests/sec")?;
    // "  123456 requests in 10.00s, 12.34MB read"
    let requests = text
        .lines()
        .find_map(|l| {
            let l = l.trim();
            l.contains(" requests in ")
                .then(|| l.split_whitespace().next()?.parse::<u64>().ok())
                .flatten()
        })
        .context("no request count in wrk output")?;
    Ok((rps, requests))
}

/// CPU time of processes in microseconds from `/proc/PID/stat`: (user, system).
fn cpu_us(pids: &[u32]) -> (u64, u64) {
    // /proc counts in clock ticks of 10 ms (USER_HZ = 100 on Linux).
    const TICK_US: u64 = 10_000;
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|s| {
            // Fields after the command name (which may hold spaces) in parentheses.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of the line, 12 and 13 of `rest`.
            Some((
                f.get(11)?.parse::<u64>().ok()?,
                f.get(12)?.parse::<u64>().ok()?,
            ))
        })
        .fold((0, 0), |(u, k), (du, dk)| {
            (u + du * TICK_US, k + dk * TICK_US)
        })
}

/// A process and its children (nginx's workers).
fn with_children(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let ppid = std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s[s.rfind(')')? + 2..].to_string();
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                });
            if ppid == Some(pid) {
                pids.push(child);
            }
        }
    }
    pids
}

/// One wrk run against a proxy, with the proxy's CPU time per request.
struct Run {
    rps: f64,
    /// The proxy's CPU time per request, split into user space and kernel.
    user_kernel_us_per_req: Option<(f64, f64)>,
}

impl Run {
    /// The proxy's CPU time per request, user space and kernel together.
    fn cpu_us_per_req(&self) -> Option<f64> {
        self.user_kernel_us_per_req.map(|(u, k)| u + k)
    }
}

fn measured(
    url: &str,
    auth: Option<&str>,
    conns: u32,
    secs: u64,
    body: &str,
    proxy: Option<&[u32]>,
) -> Result<Run> {
    let before = proxy.map(cpu_us);
    let (rps, requests) = wrk(url, auth, conns, secs, body)?;
    let n = requests.max(1) as f64;
    let user_kernel_us_per_req = proxy.zip(before).map(|(p, (u0, k0))| {
        let (u, k) = cpu_us(p);
        ((u - u0) as f64 / n, (k - k0) as f64 / n)
    });
    Ok(Run {
        rps,
        user_kernel_us_per_req,
    })
}

struct Latency {
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
    overhead_p50_ms: Option<f64>,
    overhead_p99_ms: Option<f64>,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The table rows of one open-loop measure for the mock direct, nginx and the gateway:
/// p50 / p99, what each proxy adds to direct's, and the errors.
fn latency_rows(at: &str, added: &str, [d, n, g]: [&Latency; 3]) -> String {
    format!(
        "| p50 / p99 at {at} | {:.3} / {:.3} ms | {:.3} / {:.3} ms | {:.3} / {:.3} ms | - |\n\
         | {added} | - | {:+.3} / {:+.3} ms | {:+.3} / {:+.3} ms | - |\n\
         | errors at {at} | {} | {} | {} | - |\n",
        d.p50_ms,
        d.p99_ms,
        n.p50_ms,
        n.p99_ms,
        g.p50_ms,
        g.p99_ms,
        n.p50_ms - d.p50_ms,
        n.p99_ms - d.p99_ms,
        g.p50_ms - d.p50_ms,
        g.p99_ms - d.p99_ms,
        d.errors,
        n.errors,
        g.errors,
    )
}

/// Open-loop load at `rate` req/s for `secs`; latency from the moment each request is
/// sent to the end of its answer, or for `body` = [`STREAM_CHAT`] to the stream's first
/// chunk. Requests are scheduled on tokio's timer, which fires up to 1 ms late (its
/// resolution): counted from the schedule, that lateness sat in every column and swung the
/// differences by more than the hop being measured. The sending loop never waits for an
/// answer (a slow proxy cannot delay the next send), so counting from the send hides no
/// queueing of the proxy's; the timer's lateness is printed on its own.
async fn fixed_rate(
    url: &str,
    auth: Option<&str>,
    body: &'static str,
    rate: u64,
    secs: u64,
) -> Latency {
    let stream = body == STREAM_CHAT;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let total = rate * secs;
    let start = tokio::time::Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::with_capacity(total as usize);
    let mut late = Vec::with_capacity(total as usize);
    for i in 0..total {
        let at = start + Duration::from_nanos(i * 1_000_000_000 / rate);
        tokio::time::sleep_until(at).await;
        let sent = tokio::time::Instant::now();
        late.push((sent - at).as_secs_f64() * 1000.0);
        let mut rb = client
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(a) = auth {
            rb = rb.bearer_auth(a);
        }
        tasks.push(tokio::spawn(async move {
            let resp = rb.send().await;
            let (ok, overhead, first) = match resp {
                Ok(r) => {
                    let oh = r
                        .headers()
                        .get("x-burncloud-overhead-ms")
                        .and_then(|v| v.to_str().ok()?.parse::<f64>().ok());
                    let mut ok = r.status().is_success();
                    let mut first = None;
                    if stream {
                        let mut s = r.bytes_stream();
                        ok &= matches!(s.next().await, Some(Ok(_)));
                        first = Some(sent.elapsed());
                        while let Some(c) = s.next().await {
                            ok &= c.is_ok();
                        }
                    } else {
                        ok &= r.bytes().await.is_ok();
                    }
                    (ok, oh, first)
                }
                Err(_) => (false, None, None),
            };
            let t = first.unwrap_or_else(|| sent.elapsed());
            (t.as_secs_f64() * 1000.0, ok, overhead)
        }));
    }
    let mut lat = Vec::with_capacity(tasks.len());
    let mut oh = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((ms, ok, o)) = t.await {
            if ok {
                lat.push(ms)
            } else {
                errors += 1
            }
            if let Some(o) = o {
                oh.push(o);
            }
        }
    }
    lat.sort_by(f64::total_cmp);
    oh.sort_by(f64::total_cmp);
    late.sort_by(f64::total_cmp);
    eprintln!(
        "xtask:   {rate}/s to {url}: sends {:.3} / {:.3} ms p50 / p99 after their schedule (timer)",
        pct(&late, 0.5),
        pct(&late, 0.99)
    );
    Latency {
        p50_ms: pct(&lat, 0.5),
        p99_ms: pct(&lat, 0.99),
        errors,
        overhead_p50_ms: (!oh.is_empty()).then(|| pct(&oh, 0.5)),
        overhead_p99_ms: (!oh.is_empty()).then(|| pct(&oh, 0.99)),
    }
}

/// Streaming requests on `conns` connections, `per_conn` each in turn: the median time
/// to the first byte and to the end of the stream.
async fn stream_times(url: &str, auth: Option<&str>, conns: usize, per_conn: usize) -> (f64, f64) {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let client = client.clone();
        let url = url.to_string();
        let auth = auth.map(str::to_string);
        tasks.push(tokio::spawn(async move {
            let mut v = Vec::with_capacity(per_conn);
            for _ in 0..per_conn {
                let t = Instant::now();
                let mut rb = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(STREAM_CHAT);
                if let Some(a) = &auth {
                    rb = rb.bearer_auth(a);
                }
                let Ok(resp) = rb.send().await else { continue };
                let mut s = resp.bytes_stream();
                let Some(Ok(_)) = s.next().await else {
                    continue;
                };
                let first = t.elapsed().as_secs_f64() * 1000.0;
                while s.next().await.is_some() {}
                v.push((first, t.elapsed().as_secs_f64() * 1000.0));
            }
            v
        }));
    }
    let mut firsts = Vec::new();
    let mut totals = Vec::new();
    for t in tasks {
        for (f, total) in t.await.unwrap_or_default() {
            firsts.push(f);
            totals.push(total);
        }
    }
    firsts.sort_by(f64::total_cmp);
    totals.sort_by(f64::total_cmp);
    (pct(&firsts, 0.5), pct(&totals, 0.5))
}

/// Hold `n` streams of `model` open at once through `url`, sampling the gateway's RSS.
async fn many_streams(
    url: &str,
    auth: &str,
    n: usize,
    pid: u32,
    model: &str,
) -> (u64, u64, u64, usize) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let body = CHAT
        .replace("\"max_tokens\":16", "\"max_tokens\":16,\"stream\":true")
        .replace("bench-model", model);
    let mut tasks = Vec::new();
    for _ in 0..n {
        let rb = client
            .post(url)
            .header("content-type", "application/json")
            .bearer_auth(auth)
            .body(body.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(resp) = rb.send().await else {
                return false;
            };
            if !resp.status().is_success() {
                return false;
            }
            let mut s = resp.bytes_stream();
            let mut ok = true;
            while let Some(c) = s.next().await {
                ok &= c.is_ok();
            }
            ok
        }));
    }
    let mut samples = Vec::new();
    while !tasks.iter().all(|t| t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        samples.push(rss_kb(pid, "VmRSS:"));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap_or(false) {
            ok += 1;
        }
    }
    let during: Vec<u64> = samples.iter().copied().filter(|s| *s > 0).collect();
    let min = during.iter().copied().min().unwrap_or(0);
    let max = during.iter().copied().max().unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    (min, max, rss_kb(pid, "VmRSS:"), ok)
}

fn api(
    client: &reqwest::blocking::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Result<Value> {
    let mut rb = client.post(format!("{base}{path}")).json(&body);
    if path.starts_with("/console/api/prices/") {
        rb = client.put(format!("{base}{path}")).json(&body);
    }
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let v: Value = rb.send()?.json()?;
    if v["success"] != true {
        bail!("{path}: {v}");
    }
    Ok(v["data"].clone())
}

/// Whether the machine has a second core for pinning (load generator and mock on CPU 0,
/// the proxy under test on CPU 1). Decided before this process pins itself to CPU 0 (after
/// which it sees one core) and passed on in `BURNCLOUD_BENCH_PIN`.
fn pinning() -> bool {
    if let Ok(v) = std::env::var("BURNCLOUD_BENCH_PIN") {
        return v == "1";
    }
    std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
        && Command::new("taskset").arg("-V").output().is_ok()
}

/// `cmd` run on CPU 1 when pinning.
fn on_proxy_core(program: &std::path::Path, pin: bool) -> Command {
    if pin {
        let mut c = Command::new("taskset");
        c.args(["-c", "1"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

pub fn bench() -> Result<()> {
    // Many sockets: raise the open-file limit by re-executing under a higher `ulimit -n`;
    // this process (the load generators) and the mocks then run on CPU 0.
    if std::env::var_os("BURNCLOUD_BENCH_ULIMIT").is_none() {
        let exe = std::env::current_exe()?;
        let pinned = pinning();
        let pin = if pinned { "taskset -c 0 " } else { "" };
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n 65536 2>/dev/null || ulimit -n 8192; exec {pin}\"$0\" bench"
            ))
            .arg(exe)
            .env("BURNCLOUD_BENCH_ULIMIT", "1")
            .env("BURNCLOUD_BENCH_PIN", if pinned { "1" } else { "0" })
            .status()?;
        if !status.success() {
            bail!("bench failed");
        }
        return Ok(());
    }
    let pin = pinning();
    setup::ensure_packages(&["wrk", "nginx-light", "util-linux"])?;
    // The headless build as `cargo xtask dist` would ship it: profile-guided (see `pgo`).
    let burncloud = crate::pgo::release(&["--no-default-features"], "headless")?.bin;
    let examples = crate::pgo::release_examples(&["fake_openai", "bench_burst"])?;
    // Burst routing's own cost (classification + decision), in process.
    let burst_out = Command::new(examples.join("bench_burst")).output()?;
    if !burst_out.status.success() {
        bail!("bench_burst failed");
    }
    let burst_lines = String::from_utf8_lossy(&burst_out.stdout).to_string();
    eprint!("{burst_lines}");
    let fake = examples.join("fake_openai");
    if let Ok(other) = std::env::var("BURNCLOUD_BENCH_AGAINST") {
        return against(&burncloud, std::path::Path::new(&other), &fake, pin);
    }

    let (_mock, mock) = start("mock", Command::new(&fake).args(["--no-record"]))?;
    let (_stream_mock, stream_mock) = start(
        "stream mock",
        Command::new(&fake).args(["--no-record", "--pieces", "18"]),
    )?;
    let (_slow_mock, slow_mock) = start(
        "slow mock",
        Command::new(&fake).args(["--no-record", "--chunk-delay-ms", "100", "--pieces", "40"]),
    )?;
    let data = tempfile_dir()?;
    let (gateway, gw) = start(
        "gateway",
        on_proxy_core(&burncloud, pin)
            .arg("router")
            .env("BURNCLOUD_DATA_DIR", &data)
            .env("PORT", "0")
            .env("RUST_LOG", "warn"),
    )?;
    let gw_pid = gateway.child.id();
    std::thread::sleep(Duration::from_millis(1000));
    let rss_idle = rss_kb(gw_pid, "VmRSS:");

    let key = configure(
        &gw,
        &[
            Upstream::openai("mock", &mock, "bench-model", MOCK_KEY),
            Upstream::openai("stream", &stream_mock, "bench-stream", MOCK_KEY),
            Upstream::openai("slow", &slow_mock, "bench-slow", MOCK_KEY),
        ],
    )?;

    // nginx proxy_pass in front of the same mocks, one worker on the proxy's core.
    let nginx_dir = cache_dir().join("bench-nginx");
    std::fs::create_dir_all(nginx_dir.join("logs"))?;
    let nginx_port = free_port();
    std::fs::write(
        nginx_dir.join("nginx.conf"),
        format!(
            "daemon off;\nworker_processes 1;\npid {pid};\nerror_log stderr error;\nevents {{ worker_connections 8192; }}\n\
             http {{ access_log off; upstream mock {{ server {mock}; keepalive 128; }} upstream stream {{ server {stream_mock}; keepalive 128; }}\n\
             server {{ listen 127.0.0.1:{nginx_port}; location / {{ proxy_pass http://mock; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off; }}\n\
             location /stream/ {{ proxy_pass http://stream/; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering off; }} }} }}\n",
            pid = nginx_dir.join("nginx.pid").display()
        ),
    )?;
    let nginx_bin = std::path::Path::new("/usr/sbin/nginx");
    let nginx = Proc {
        child: on_proxy_core(nginx_bin, pin)
            .arg("-p")
            .arg(&nginx_dir)
            .arg("-c")
            .arg(nginx_dir.join("nginx.conf"))
            .spawn()
            .context("start nginx")?,
        name: "nginx",
    };
    std::thread::sleep(Duration::from_millis(500));
    let nginx_pids = with_children(nginx.child.id());
    let gw_pids = [gw_pid];

    let chat_path = "/v1/chat/completions";
    let direct_url = format!("http://{mock}{chat_path}");
    let nginx_url = format!("http://127.0.0.1:{nginx_port}{chat_path}");
    let gw_url = format!("http://{gw}{chat_path}");
    let direct_stream = format!("http://{stream_mock}{chat_path}");
    let nginx_stream = format!("http://127.0.0.1:{nginx_port}/stream{chat_path}");
    let k = Some(key.as_str());
    eprintln!("xtask: wrk, 50 connections, 10 s each");
    let rps_direct = measured(&direct_url, None, 50, 10, CHAT, None)?;
    let rps_nginx = measured(&nginx_url, None, 50, 10, CHAT, Some(&nginx_pids))?;
    let rps_gw = measured(&gw_url, k, 50, 10, CHAT, Some(&gw_pids))?;
    eprintln!("xtask: streams (~5 KB each), 1 and 10 connections, 10 s each");
    let mut streams = Vec::new();
    for conns in [1, 10] {
        streams.push((
            conns,
            measured(&direct_stream, None, conns, 10, STREAM_CHAT, None)?,
            measured(
                &nginx_stream,
                None,
                conns,
                10,
                STREAM_CHAT,
                Some(&nginx_pids),
            )?,
            measured(&gw_url, k, conns, 10, STREAM_CHAT, Some(&gw_pids))?,
        ));
    }

    eprintln!("xtask: the same gateway on PostgreSQL, 50 and 10 connections, 10 s each");
    let (pg_rps, pg_streams) = postgres_run(&burncloud, pin, &mock, &stream_mock)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    eprintln!("xtask: fixed 1,000 req/s, 10 s each");
    let lat_direct = rt.block_on(fixed_rate(&direct_url, None, CHAT, 1000, 10));
    let lat_nginx = rt.block_on(fixed_rate(&nginx_url, None, CHAT, 1000, 10));
    let lat_gw = rt.block_on(fixed_rate(&gw_url, k, CHAT, 1000, 10));
    eprintln!("xtask: stream time to first byte at a fixed 200 streams/s, 10 s each");
    let ttfb_direct = rt.block_on(fixed_rate(&direct_stream, None, STREAM_CHAT, 200, 10));
    let ttfb_nginx = rt.block_on(fixed_rate(&nginx_stream, None, STREAM_CHAT, 200, 10));
    let ttfb_gw = rt.block_on(fixed_rate(&gw_url, k, STREAM_CHAT, 200, 10));
    eprintln!("xtask: stream time to first byte and to the end, 10 connections back to back");
    let st_direct = rt.block_on(stream_times(&direct_stream, None, 10, 200));
    let st_nginx = rt.block_on(stream_times(&nginx_stream, None, 10, 200));
    let st_gw = rt.block_on(stream_times(&gw_url, k, 10, 200));
    let rss_peak_load = rss_kb(gw_pid, "VmHWM:");
    eprintln!("xtask: 1,000 concurrent streams of 4 s");
    drop(nginx);
    // The long streams go to the slow mock (40 chunks, 100 ms apart) through its own model.
    let (min_during, max_during, after, ok_streams) =
        rt.block_on(many_streams(&gw_url, &key, 1000, gw_pid, "bench-slow"));
    let rss_peak = rss_kb(gw_pid, "VmHWM:");

    // Where the time went: the kernel's share (loopback TCP, wake-ups) is a cost every
    // proxy pays; user space is the proxy's own work.
    let cpu = |r: &Run| {
        r.user_kernel_us_per_req
            .map(|(u, k)| format!(" / {:.0} µs ({u:.1} user + {k:.1} kernel)", u + k))
            .unwrap_or_default()
    };
    let ratio = |gw: f64, ng: f64| format!("{:.2}×", gw / ng);
    let mut table = format!(
        "Pinned: {pin} (load generator and mocks on CPU 0, proxy on CPU 1).\n\n\
         | measure (2 cores, loopback) | mock direct | nginx proxy_pass | BurnCloud gateway | gateway / nginx |\n\
         |---|---|---|---|---|\n\
         | req/s / CPU per request, 50 connections (wrk, 10 s) | {:.0} | {:.0}{} | {:.0}{} | {} |\n",
        rps_direct.rps,
        rps_nginx.rps,
        cpu(&rps_nginx),
        rps_gw.rps,
        cpu(&rps_gw),
        ratio(rps_gw.rps, rps_nginx.rps),
    );
    for (conns, d, n, g) in &streams {
        table.push_str(&format!(
            "| streams/s / CPU per stream, {conns} connection(s) | {:.0} | {:.0}{} | {:.0}{} | {} |\n",
            d.rps,
            n.rps,
            cpu(n),
            g.rps,
            cpu(g),
            ratio(g.rps, n.rps),
        ));
    }
    table.push_str(&latency_rows(
        "1,000 req/s",
        "added p50 / p99 vs direct",
        [&lat_direct, &lat_nginx, &lat_gw],
    ));
    table.push_str(&format!(
        "| gateway's own overhead header p50 / p99 | - | - | {} / {} ms | - |\n",
        lat_gw
            .overhead_p50_ms
            .map(|v| format!("{v:.3}"))
            .unwrap_or("-".into()),
        lat_gw
            .overhead_p99_ms
            .map(|v| format!("{v:.3}"))
            .unwrap_or("-".into()),
    ));
    table.push_str(&latency_rows(
        "200 streams/s (stream TTFB)",
        "added stream TTFB p50 / p99 vs direct",
        [&ttfb_direct, &ttfb_nginx, &ttfb_gw],
    ));
    table.push_str(&format!(
        "| stream TTFB p50 / total p50, 10 connections back to back (saturated) | {:.3} / {:.3} ms | {:.3} / {:.3} ms | {:.3} / {:.3} ms | - |\n\
         | gateway RSS idle / peak after the load above | - | - | {:.1} MB / {:.1} MB | - |\n\
         | gateway RSS with 1,000 concurrent 4 s streams (min / max during, after) | - | - | {:.1} / {:.1} MB, {:.1} MB ({ok_streams}/1000 completed) | - |\n\
         | gateway peak RSS overall | - | - | {:.1} MB | - |\n",
        st_direct.0,
        st_direct.1,
        st_nginx.0,
        st_nginx.1,
        st_gw.0,
        st_gw.1,
        rss_idle as f64 / 1024.0,
        rss_peak_load as f64 / 1024.0,
        min_during as f64 / 1024.0,
        max_during as f64 / 1024.0,
        after as f64 / 1024.0,
        rss_peak as f64 / 1024.0,
    ));
    let sqlite_streams = &streams[1].3;
    table.push_str(&format!(
        "\nThe gateway on PostgreSQL (one instance, a local temporary server pinned with the load generator) against SQLite, same mocks:\n\n\
         | measure | SQLite | PostgreSQL | PostgreSQL / SQLite |\n|---|---|---|---|\n\
         | req/s / CPU per request, 50 connections | {:.0}{} | {:.0}{} | {} |\n\
         | streams/s / CPU per stream, 10 connections | {:.0}{} | {:.0}{} | {} |\n",
        rps_gw.rps,
        cpu(&rps_gw),
        pg_rps.rps,
        cpu(&pg_rps),
        ratio(pg_rps.rps, rps_gw.rps),
        sqlite_streams.rps,
        cpu(sqlite_streams),
        pg_streams.rps,
        cpu(&pg_streams),
        ratio(pg_streams.rps, sqlite_streams.rps),
    ));
    let table = format!("{table}\n{burst_lines}");
    println!("{table}");
    let out = target_dir().join("bench.md");
    std::fs::write(&out, &table)?;
    eprintln!("xtask: table written to {}", out.display());
    Ok(())
}

/// Register the admin, add a priced channel per mock, create a key: the key.
pub(crate) fn configure(gw: &str, upstreams: &[Upstream]) -> Result<String> {
    let client = &reqwest::blocking::Client::new();
    let base = format!("http://{gw}");
    let admin = api(
        client,
        &base,
        "/api/auth/register",
        None,
        json!({"username": "bench", "password": "Bench-Password-1"}),
    )?["token"]
        .as_str()
        .context("token")?
        .to_string();
    for u in upstreams {
        api(
            client,
            &base,
            "/console/api/channel",
            Some(&admin),
            json!({"name": u.name, "type": u.kind, "key": u.key, "base_url": format!("http://{}", u.addr), "models": u.model}),
        )?;
        api(
            client,
            &base,
            &format!("/console/api/prices/{}", u.model),
            Some(&admin),
            json!({"input": 0.15, "output": 0.6}),
        )?;
    }
    Ok(api(
        client,
        &base,
        "/console/api/tokens",
        Some(&admin),
        json!({"name": "bench"}),
    )?["key"]
        .as_str()
        .context("key")?
        .to_string())
}

/// A channel [`configure`] adds: a mock upstream at `addr` serving `model`.
pub(crate) struct Upstream<'a> {
    pub name: &'a str,
    /// The channel type (1 OpenAI, 14 Anthropic).
    pub kind: u32,
    pub addr: &'a str,
    pub model: &'a str,
    pub key: &'a str,
}

impl<'a> Upstream<'a> {
    pub(crate) fn openai(name: &'a str, addr: &'a str, model: &'a str, key: &'a str) -> Self {
        Upstream {
            name,
            kind: 1,
            addr,
            model,
            key,
        }
    }
}

/// The key the benchmark's OpenAI channels carry (the mock accepts any).
pub(crate) const MOCK_KEY: &str = "sk-mock-0123456789";

/// The same gateway on PostgreSQL (a temporary server, pinned beside the load generator:
/// in production the database is another machine): req/s and CPU per request at 50
/// connections, and streams/s at 10, to set beside the SQLite run.
fn postgres_run(
    burncloud: &std::path::Path,
    pin: bool,
    mock: &str,
    stream_mock: &str,
) -> Result<(Run, Run)> {
    let pg = crate::postgres::PgServer::start()?;
    if pin && let Some(pid) = pg.postmaster_pid() {
        // Backends are forked from the postmaster and inherit its CPU.
        let _ = Command::new("taskset")
            .args(["-a", "-p", "0x1", &pid.to_string()])
            .output();
    }
    pg.psql("postgres", "CREATE DATABASE bench")?;
    let data = tempfile_dir()?;
    let (gateway, gw) = start(
        "gateway-postgres",
        on_proxy_core(burncloud, pin)
            .arg("router")
            .env("BURNCLOUD_DATA_DIR", &data)
            .env("DATABASE_URL", pg.url_for("bench"))
            .env(
                "JWT_SECRET",
                "bench-secret-0123456789abcdef0123456789abcdef",
            )
            .env("PORT", "0")
            .env("RUST_LOG", "warn"),
    )?;
    let key = configure(
        &gw,
        &[
            Upstream::openai("mock", mock, "bench-model", MOCK_KEY),
            Upstream::openai("stream", stream_mock, "bench-stream", MOCK_KEY),
        ],
    )?;
    let pids = [gateway.child.id()];
    let url = format!("http://{gw}/v1/chat/completions");
    let rps = measured(&url, Some(&key), 50, 10, CHAT, Some(&pids))?;
    let streams = measured(&url, Some(&key), 10, 10, STREAM_CHAT, Some(&pids))?;
    drop(gateway);
    Ok((rps, streams))
}

/// `BURNCLOUD_BENCH_AGAINST=OTHER_BINARY cargo xtask bench`: this build and another one
/// (e.g. main's, to keep or drop a change), both gateways up at once and measured in
/// turns (6 s each, the order alternating), five rounds (`BURNCLOUD_BENCH_ROUNDS`): req/s
/// and CPU per request at 50 connections, streams/s and CPU per stream at 1 and 10
/// connections; then the open-loop latencies: p50 / p99 at a fixed 1,000 req/s and the
/// stream time to first byte at a fixed 200 streams/s (5 s each). The medians are
/// printed, and the median, lowest and highest of the rounds' this/other ratios (for the
/// latencies, of the rounds' differences this − other); their spread is the noise.
/// Nothing else is run.
fn against(
    this: &std::path::Path,
    other: &std::path::Path,
    fake: &std::path::Path,
    pin: bool,
) -> Result<()> {
    let (_mock, mock) = start("mock", Command::new(fake).args(["--no-record"]))?;
    let (_stream_mock, stream_mock) = start(
        "stream mock",
        Command::new(fake).args(["--no-record", "--pieces", "18"]),
    )?;
    let mut gateways = Vec::new();
    for (name, bin) in [("this build", this), ("other", other)] {
        let data = tempfile_dir()?;
        let (proc, gw) = start(
            "gateway",
            on_proxy_core(bin, pin)
                .arg("router")
                .env("BURNCLOUD_DATA_DIR", &data)
                .env("PORT", "0")
                .env("RUST_LOG", "warn"),
        )?;
        let key = configure(
            &gw,
            &[
                Upstream::openai("mock", &mock, "bench-model", MOCK_KEY),
                Upstream::openai("stream", &stream_mock, "bench-stream", MOCK_KEY),
            ],
        )?;
        gateways.push((
            name,
            proc,
            format!("http://{gw}/v1/chat/completions"),
            key,
            data,
        ));
    }
    let tests: [(&str, u32, &str); 3] = [
        ("req/s, 50 connections", 50, CHAT),
        ("streams/s, 1 connection", 1, STREAM_CHAT),
        ("streams/s, 10 connections", 10, STREAM_CHAT),
    ];
    // results[test][gateway] = [(rate, cpu µs)], one per round.
    let rounds: usize = std::env::var("BURNCLOUD_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(5);
    let mut results = vec![vec![Vec::new(); gateways.len()]; tests.len()];
    let latencies: [(&str, &'static str, u64); 2] = [
        ("p50 / p99 at 1,000 req/s, ms", CHAT, 1000),
        (
            "stream TTFB p50 / p99 at 200 streams/s, ms",
            STREAM_CHAT,
            200,
        ),
    ];
    // lat[test][gateway] = [(p50, p99)], one per round.
    let mut lat = vec![vec![Vec::new(); gateways.len()]; latencies.len()];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    for round in 1..=rounds {
        eprintln!("xtask: A/B round {round} of {rounds}");
        // Turns alternate (this, other; then other, this): neither build always goes
        // first after the other's load.
        let order: [usize; 2] = if round % 2 == 1 { [0, 1] } else { [1, 0] };
        for (t, (_, conns, body)) in tests.iter().enumerate() {
            for g in order {
                let (_, proc, url, key, _) = &gateways[g];
                let pids = [proc.child.id()];
                let run = measured(url, Some(key), *conns, 6, body, Some(&pids))?;
                results[t][g].push((run.rps, run.cpu_us_per_req().unwrap_or(f64::NAN)));
            }
        }
        for (t, (_, body, rate)) in latencies.iter().enumerate() {
            for g in order {
                let (_, _, url, key, _) = &gateways[g];
                let l = rt.block_on(fixed_rate(url, Some(key), body, *rate, 5));
                if l.errors > 0 {
                    bail!("{} errors at a fixed {rate}/s", l.errors);
                }
                lat[t][g].push((l.p50_ms, l.p99_ms));
            }
        }
    }
    let mut table = format!(
        "| measure (median of {rounds} rounds) | this build | other | this / other, median of the rounds' ratios (lowest–highest) |\n|---|---|---|---|\n"
    );
    for (t, (name, _, _)) in tests.iter().enumerate() {
        // Each round's two turns ran back to back: their ratio shares that round's
        // conditions, and the spread of the ratios is the noise.
        let ([a, b], [rate, cpu]) = ab_summary(&results[t], |x, y| x / y);
        table.push_str(&format!(
            "| {name} / CPU µs | {:.0} / {:.1} | {:.0} / {:.1} | {:.2}× ({:.2}–{:.2}) / {:.2}× ({:.2}–{:.2}) |\n",
            a.0, a.1, b.0, b.1, rate.0, rate.1, rate.2, cpu.0, cpu.1, cpu.2
        ));
    }
    for (t, (name, _, _)) in latencies.iter().enumerate() {
        let ([a, b], [p50, p99]) = ab_summary(&lat[t], |x, y| x - y);
        table.push_str(&format!(
            "| {name} | {:.3} / {:.3} | {:.3} / {:.3} | {:+.3} ({:+.3}–{:+.3}) / {:+.3} ({:+.3}–{:+.3}) ms |\n",
            a.0, a.1, b.0, b.1, p50.0, p50.1, p50.2, p99.0, p99.1, p99.2
        ));
    }
    println!("{table}");
    Ok(())
}

/// Each build's medians of a measure's (first, second) values.
type Medians = [(f64, f64); 2];
/// For each of the two values: median, lowest and highest over the rounds.
type Spreads = [(f64, f64, f64); 2];

/// One measure of the A/B, from each build's (first, second) value per round: each
/// build's medians, and for each value the median, lowest and highest of the rounds'
/// `combine(this, other)` (a ratio, or a difference for latencies).
fn ab_summary(rounds: &[Vec<(f64, f64)>], combine: fn(f64, f64) -> f64) -> (Medians, Spreads) {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let cell = |g: usize| {
        (
            median(rounds[g].iter().map(|x| x.0).collect()),
            median(rounds[g].iter().map(|x| x.1).collect()),
        )
    };
    let spread = |f: fn(&(f64, f64)) -> f64| {
        let mut v: Vec<f64> = rounds[0]
            .iter()
            .zip(&rounds[1])
            .map(|(a, b)| combine(f(a), f(b)))
            .collect();
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    ([cell(0), cell(1)], [spread(|x| x.0), spread(|x| x.1)])
}

/// A gateway's data folder under the cache, removed when dropped (declare it before the
/// gateway it serves, so the gateway stops first).
pub(crate) struct Scratch(std::path::PathBuf);

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn tempfile_dir() -> Result<Scratch> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = cache_dir().join(format!("bench-data-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    Ok(Scratch(d))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_ab_summary_gives_each_builds_medians_and_the_spread_of_the_rounds() {
        let this = vec![(10.0, 1.0), (30.0, 3.0), (20.0, 2.0)];
        let other = vec![(5.0, 1.0), (10.0, 1.0), (10.0, 1.0)];
        let rounds = [this, other];
        let ([a, b], [first, second]) = super::ab_summary(&rounds, |x, y| x / y);
        assert_eq!((a, b), ((20.0, 2.0), (10.0, 1.0)));
        // Ratios per round: 2, 3, 2 and 1, 3, 2.
        assert_eq!(first, (2.0, 2.0, 3.0));
        assert_eq!(second, (2.0, 1.0, 3.0));
        let (_, [diff, _]) = super::ab_summary(&rounds, |x, y| x - y);
        assert_eq!(diff, (10.0, 5.0, 20.0));
    }
}
