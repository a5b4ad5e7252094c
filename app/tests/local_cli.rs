//! `burncloud model run|ps|logs|stop` on the real binary with a real `burncloud router`
//! and a real llama-server (built by `cargo xtask test`): import → run → chat through the
//! gateway → stop → the channel is gone; `kill -9` of the router leaves no llama-server
//! behind; a busy port is reported with its holder.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use llama_manager::testing::gguf_writer::tiny_llama;
use llama_manager::testing::llama_server;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_burncloud");

fn cmd(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("BURNCLOUD_DATA_DIR", dir)
        .env("HOME", dir)
        .env("LLAMA_SERVER", llama_server())
        .env("BURNCLOUD_LOCAL_FIRST_PORT", "19180")
        .env("BURNCLOUD_NVIDIA_SMI", "/nonexistent/nvidia-smi")
        .env("HF_HUB_CACHE", dir.join("hf-cache"))
        .env("HOST", "127.0.0.1")
        .env_remove("DATABASE_URL")
        .env_remove("BURNCLOUD_DATABASE_URL");
    c
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let o = cmd(dir, args).output().expect("burncloud runs");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

struct Router {
    child: Child,
    addr: String,
}

impl Router {
    fn start(dir: &Path) -> Router {
        let log = std::fs::File::create(dir.join(format!(
            "router-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        )))
        .unwrap();
        let mut child = cmd(dir, &["router"])
            .env("PORT", "0")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("router did not start: {line}"))
            .to_string();
        Router { child, addr }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

fn pid_in(out: &str) -> u32 {
    out.split("(pid ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in: {out}"))
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn models(client: &reqwest::blocking::Client, addr: &str, jwt: &str) -> Vec<String> {
    let v: Value = client
        .get(format!("http://{addr}/v1/models"))
        .bearer_auth(jwt)
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn import_run_chat_stop_and_kill_9_leaves_no_llama_server() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = d.join("tiny-local.gguf");
    std::fs::write(&model, tiny_llama("tiny local", 5)).unwrap();
    let (code, out, err) = run(d, &["model", "import", model.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");

    // Without a running BurnCloud, `run` says what to do.
    let (code, _, err) = run(d, &["model", "run", "1"]);
    assert_eq!(code, 1);
    assert!(err.contains("BurnCloud is not running"), "{err}");

    let router = Router::start(d);
    let client = reqwest::blocking::Client::new();
    // One BurnCloud per data folder: a second router is refused, naming the first, and
    // the first keeps serving.
    let (code, _, err) = run(d, &["router"]);
    assert_eq!(code, 1, "{err}");
    let first_port = router.addr.rsplit(':').next().unwrap();
    assert!(
        err.contains(&format!(
            "already running (pid {}, port {first_port})",
            router.child.id()
        )),
        "{err}"
    );
    let health = client
        .get(format!("http://{}/health", router.addr))
        .send()
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    // Extra llama-server arguments are an allow-list of tuning flags.
    let (code, _, err) = run(
        d,
        &[
            "model",
            "run",
            "1",
            "--arg=--flash-attn",
            "--arg=on",
            "--arg=--path",
            "--arg=/",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("argument --path is not allowed") && err.contains("--flash-attn"),
        "{err}"
    );
    let v: Value = client
        .post(format!("http://{}/api/auth/register", router.addr))
        .json(&json!({"username": "admin", "password": "YourSecurePassword!", "email": "a@example.com"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let jwt = v["data"]["token"].as_str().unwrap().to_string();

    let (code, out, err) = run(d, &["model", "run", "1", "--ctx", "256", "--threads", "1"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("is running as local-1 on http://127.0.0.1:"),
        "{out}"
    );
    let pid = pid_in(&out);
    assert!(alive(pid));
    let (code, ps, _) = run(d, &["model", "ps"]);
    assert_eq!(code, 0);
    let row = ps
        .lines()
        .find(|l| l.contains("local-1"))
        .unwrap_or_else(|| panic!("{ps}"));
    assert!(
        row.contains("ready") && row.contains(&pid.to_string()) && row.contains("MiB"),
        "{ps}"
    );
    assert!(models(&client, &router.addr, &jwt).contains(&"local-1".to_string()));

    for stream in [false, true] {
        let resp = client
            .post(format!("http://{}/v1/chat/completions", router.addr))
            .bearer_auth(&jwt)
            .json(&json!({"model": "local-1", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5, "stream": stream}))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let body = resp.text().unwrap();
        assert!(
            if stream {
                body.contains("[DONE]")
            } else {
                body.contains("completion_tokens")
            },
            "{body}"
        );
    }
    let (code, logs, _) = run(d, &["model", "logs", "1", "-n", "400"]);
    assert_eq!(code, 0);
    assert!(
        logs.contains("[burncloud] starting") && logs.contains("-c 256"),
        "{logs}"
    );
    assert!(
        logs.contains("API key in LLAMA_API_KEY") && !logs.contains("--api-key"),
        "{logs}"
    );

    // A busy port: reported with its holder, nothing started.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let (code, out, _) = run(d, &["model", "stop", "1"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Stopped model 1"), "{out}");
    wait_until("llama-server exits after stop", 10, || !alive(pid));
    assert!(!models(&client, &router.addr, &jwt).contains(&"local-1".to_string()));
    let (code, _, err) = run(d, &["model", "run", "1", "--port", &port]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("port {port} is already in use by")) && err.contains("pid"),
        "{err}"
    );
    drop(busy);

    // Run again on a default port (0: back to the first free one), then kill -9 the
    // supervising router.
    // `--gpu-layers -1` means every layer: the child runs with `-ngl all` (llama.cpp's own
    // -1 would mean auto).
    let (code, out, err) = run(
        d,
        &["model", "run", "1", "--port", "0", "--gpu-layers", "-1"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("on http://127.0.0.1:1918"), "{out}");
    let pid2 = pid_in(&out);
    assert!(alive(pid2));
    let argv: Vec<String> = std::fs::read(format!("/proc/{pid2}/cmdline"))
        .unwrap()
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let ngl = argv.iter().position(|a| a == "-ngl").expect("-ngl given");
    assert_eq!(argv[ngl + 1], "all", "{argv:?}");
    let (code, out, _) = run(d, &["model", "deploy", "1", "--gpu-layers", "all"]);
    assert_eq!(code, 0);
    assert!(out.contains("GPU layers: all"), "{out}");
    let (code, _, err) = run(d, &["model", "deploy", "1", "--gpu-layers", "most"]);
    assert_eq!(code, 1);
    assert!(err.contains("auto, all, -1"), "{err}");
    let router_pid = router.child.id();
    // SAFETY: plain syscall on our child.
    unsafe_kill(router_pid, 9);
    drop(router);
    wait_until(
        "no llama-server outlives a kill -9 of its supervisor",
        5,
        || !alive(pid2),
    );

    // The next start cleans up: no stale channel, the model is stopped (not autostart).
    let router = Router::start(d);
    let (code, ps, _) = run(d, &["model", "ps"]);
    assert_eq!(code, 0);
    assert!(
        ps.lines()
            .any(|l| l.contains("local-1") && l.contains("stopped")),
        "{ps}"
    );
    let v: Value = client
        .post(format!("http://{}/api/auth/login", router.addr))
        .json(&json!({"username": "admin", "password": "YourSecurePassword!"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let jwt = v["data"]["token"].as_str().unwrap().to_string();
    assert!(!models(&client, &router.addr, &jwt).contains(&"local-1".to_string()));

    // A GGUF another tool put in the Hugging Face cache is listed in place and runs.
    let repo = d.join("hf-cache/models--TheOrg--Tiny-GGUF");
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("snapshots/0123abcd")).unwrap();
    std::fs::write(repo.join("blobs/9a8b7c"), tiny_llama("hf tiny", 9)).unwrap();
    std::os::unix::fs::symlink(
        "../../blobs/9a8b7c",
        repo.join("snapshots/0123abcd/tiny.Q8_0.gguf"),
    )
    .unwrap();
    let (code, out, err) = run(d, &["model", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("tiny.Q8_0") && out.contains("found in the Hugging Face cache"),
        "{out}"
    );
    let (code, out, err) = run(d, &["model", "run", "tiny.Q8_0", "--ctx", "256"]);
    assert_eq!(code, 0, "{out}{err}");
    let pid3 = pid_in(&out);
    let argv = std::fs::read(format!("/proc/{pid3}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&argv).contains("snapshots/0123abcd/tiny.Q8_0.gguf"),
        "served from the cache, not a copy"
    );
    let (code, out, _) = run(d, &["model", "stop", "tiny.Q8_0"]);
    assert_eq!(code, 0, "{out}");
}

fn unsafe_kill(pid: u32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}
