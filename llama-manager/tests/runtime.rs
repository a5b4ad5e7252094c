//! The local runtime with a real gateway (port 0, temporary SQLite file) and a real
//! llama-server (built by `cargo xtask test`, path in BURNCLOUD_TEST_LLAMA_SERVER) serving
//! the tiny generated model; fake engines (shell scripts) only where llama-server cannot
//! be made to fail on purpose (stalls, unknown architecture).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_core::store::{Store, channels};
use gateway_core::{Config, Gateway, ServeHandle};
use llama_manager::library::Library;
use llama_manager::runtime::deploy::{self, SettingsPatch, State};
use llama_manager::runtime::{Runtime, RuntimeOptions, process::PidFiles};
use llama_manager::testing::gguf_writer::tiny_llama;
use llama_manager::testing::llama_server;
use serde_json::{Value, json};

struct Env {
    dir: tempfile::TempDir,
    gateway: Option<Gateway>,
    handle: Option<ServeHandle>,
    base: String,
    runtime: Runtime,
    jwt: String,
    client: reqwest::Client,
}

fn options(dir: &Path, engine: PathBuf) -> RuntimeOptions {
    let mut o = RuntimeOptions::new(dir);
    o.engine = Some(engine);
    // Tests run in parallel: each environment gets its own port range.
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    o.first_port = 18080 + 20 * NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    o.stop_grace = Duration::from_secs(3);
    o.health_interval = Duration::from_millis(300);
    o.restart_backoff = Duration::from_millis(200);
    o.tick = Duration::from_millis(100);
    o
}

impl Env {
    async fn start(engine: PathBuf, tweak: impl FnOnce(&mut RuntimeOptions, &mut Config)) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_data_dir(dir.path(), 0);
        config.database = gateway_core::store::testing::location(dir.path());
        let mut opts = options(dir.path(), engine);
        tweak(&mut opts, &mut config);
        let gateway = Gateway::open(config).await.unwrap();
        let handle = gateway
            .serve_on("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let base = format!("http://{}", handle.local_addr());
        let runtime = Runtime::start(gateway.state().clone(), opts).await.unwrap();
        let client = reqwest::Client::new();
        let v: Value = client
            .post(format!("{base}/api/auth/register"))
            .json(&json!({"username": "admin", "password": "YourSecurePassword!", "email": "a@example.com"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let jwt = v["data"]["token"].as_str().unwrap().to_string();
        Env {
            dir,
            gateway: Some(gateway),
            handle: Some(handle),
            base,
            runtime,
            jwt,
            client,
        }
    }

    fn store(&self) -> Store {
        self.gateway.as_ref().unwrap().state().store.clone()
    }

    fn library(&self) -> Library {
        Library::new(self.store(), self.dir.path().join("models"))
    }

    /// Import the tiny model; its id.
    fn import_tiny(&self, name: &str) -> i64 {
        let path = self.dir.path().join(format!("{name}.gguf"));
        std::fs::write(&path, tiny_llama(name, 7)).unwrap();
        self.library().import(&path).unwrap().id
    }

    fn save(&self, id: i64, patch: SettingsPatch, run: Option<bool>) -> deploy::Deployment {
        self.store()
            .with(move |c| deploy::save(c, id, patch, run))
            .unwrap()
    }

    fn deployment(&self, id: i64) -> deploy::Deployment {
        self.store().with(|c| deploy::get(c, id)).unwrap().unwrap()
    }

    async fn run(&self, id: i64, patch: SettingsPatch) -> deploy::Status {
        self.save(id, patch, Some(true));
        self.runtime.reconcile();
        tokio::time::timeout(Duration::from_secs(60), self.runtime.settled(id))
            .await
            .expect("settles within 60 s")
            .unwrap()
    }

    async fn stop_model(&self, id: i64) -> deploy::Status {
        self.store()
            .with(|c| deploy::set_desired(c, id, false))
            .unwrap();
        self.runtime.reconcile();
        tokio::time::timeout(Duration::from_secs(30), self.runtime.settled(id))
            .await
            .expect("stops within 30 s")
            .unwrap()
    }

    async fn chat(&self, model: &str, stream: bool) -> (u16, String, reqwest::header::HeaderMap) {
        let resp = self
            .client
            .post(format!("{}/v1/chat/completions", self.base))
            .bearer_auth(&self.jwt)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8, "stream": stream}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, resp.text().await.unwrap(), headers)
    }

    async fn models(&self) -> Vec<String> {
        let v: Value = self
            .client
            .get(format!("{}/v1/models", self.base))
            .bearer_auth(&self.jwt)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    }

    fn local_channels(&self) -> Vec<channels::Channel> {
        self.store()
            .with(|c| channels::list(c))
            .unwrap()
            .into_iter()
            .filter(|c| c.name.starts_with("local-"))
            .collect()
    }

    async fn shutdown(mut self) -> tempfile::TempDir {
        self.runtime.shutdown().await;
        if let Some(h) = self.handle.take() {
            h.stop(Duration::from_secs(2)).await;
        }
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

fn alive(pid: u32) -> bool {
    // A zombie still answers kill(0): look at /proc's state instead.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z')
        })
        .unwrap_or(false)
}

async fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn usage_of_logs(store: &Store) -> Vec<(String, i64, i64, i64)> {
    store
        .with(|c| {
            let mut s = c.prepare(
                "SELECT model, status, prompt_tokens, completion_tokens FROM logs ORDER BY id",
            )?;
            let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_chat_through_the_gateway_then_stop_removes_the_channel() {
    let env = Env::start(llama_server(), |_, _| {}).await;
    let id = env.import_tiny("tiny-chat");
    let name = format!("local-{id}");
    assert!(!env.models().await.contains(&name));

    let st = env.run(id, SettingsPatch::default()).await;
    assert_eq!(st.state, State::Ready, "{st:?}");
    let pid = st.pid.unwrap();
    assert!(alive(pid));
    let port = st.port.unwrap();
    assert!(port >= 18080);
    // Registered: a local, type-1 channel to the child's port, in /v1/models.
    let chans = env.local_channels();
    assert_eq!(chans.len(), 1);
    assert_eq!(chans[0].name, name);
    assert_eq!(chans[0].locality, "local");
    assert_eq!(chans[0].base_url, format!("http://127.0.0.1:{port}"));
    assert!(env.models().await.contains(&name));
    // The child refuses callers without its random key: only the gateway reaches it.
    let direct = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/chat/completions"))
        .json(&json!({"model": name, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status().as_u16(), 401);
    // The key is not on the child's command line (readable by every local user through
    // `ps`), yet the child demands it: it came through the environment.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains("--alias"), "{cmdline}");
    assert!(
        !cmdline.contains(&chans[0].key) && !cmdline.contains("--api-key"),
        "{cmdline}"
    );
    let keyed = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/v1/models"))
        .bearer_auth(&chans[0].key)
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status().as_u16(), 200);

    let (s, body, h) = env.chat(&name, false).await;
    assert_eq!(s, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["usage"]["completion_tokens"].as_i64().unwrap() > 0, "{v}");
    assert!(h.contains_key("x-burncloud-overhead-ms"));
    let (s, body, _) = env.chat(&name, true).await;
    assert_eq!(s, 200);
    assert!(body.contains("data: [DONE]"), "{body}");
    env.gateway.as_ref().unwrap().state().flush_usage().await;
    let logs = usage_of_logs(&env.store());
    assert_eq!(logs.len(), 2, "{logs:?}");
    for (model, status, p, c) in &logs {
        assert_eq!((model.as_str(), *status), (name.as_str(), 200));
        assert!(*p > 0 && *c > 0, "usage logged: {logs:?}");
    }
    // The log file has the child's output.
    let log =
        std::fs::read_to_string(llama_manager::runtime::log_path(env.dir.path(), id)).unwrap();
    assert!(log.contains("[burncloud] starting"), "{log}");
    assert!(
        !log.contains(&chans[0].key),
        "the API key must not be logged"
    );

    let st = env.stop_model(id).await;
    assert_eq!(st.state, State::Stopped);
    wait_for("the child to exit", 10, || !alive(pid)).await;
    assert!(env.local_channels().is_empty());
    assert!(!env.models().await.contains(&name));
    let (s, body, _) = env.chat(&name, false).await;
    assert_eq!(s, 404, "{body}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_child_is_restarted_and_registered_again() {
    let env = Env::start(llama_server(), |_, _| {}).await;
    let id = env.import_tiny("tiny-crash");
    let st = env.run(id, SettingsPatch::default()).await;
    let pid = st.pid.unwrap();
    let first_channel = st.channel_id.unwrap();
    // SAFETY: plain syscall on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let mut rx = env.runtime.subscribe();
    let st = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let s = rx.borrow_and_update().get(&id).cloned();
            if let Some(s) = s
                && s.state == State::Ready
                && s.pid != Some(pid)
            {
                return s;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("restarted within 30 s");
    assert_eq!(st.restarts, 1);
    assert!(st.last_error.unwrap().contains("killed by signal 9"));
    assert_ne!(st.channel_id, Some(first_channel));
    assert_eq!(env.local_channels().len(), 1);
    let (s, body, _) = env.chat(&format!("local-{id}"), false).await;
    assert_eq!(s, 200, "{body}");
    let new_pid = st.pid.unwrap();
    let dir = env.shutdown().await;
    // Shutdown stops every child and leaves no channel behind.
    assert!(!alive(new_pid));
    let store = Store::connect(&gateway_core::store::testing::location(dir.path())).unwrap();
    assert!(
        store
            .with(|c| channels::list(c))
            .unwrap()
            .iter()
            .all(|c| !c.name.starts_with("local-"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_port_is_reported_with_its_holder_not_retried() {
    let env = Env::start(llama_server(), |_, _| {}).await;
    let id = env.import_tiny("tiny-port");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let st = env
        .run(
            id,
            SettingsPatch {
                port: Some(Some(port)),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(st.state, State::Failed);
    let err = st.last_error.unwrap();
    assert!(
        err.contains(&format!("port {port} is already in use")),
        "{err}"
    );
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert!(err.contains("use --port"), "{err}");
    assert_eq!(st.pid, None, "nothing was started");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let d = env.deployment(id);
    assert_eq!(d.status.state, State::Failed, "not retried blindly");
    assert_eq!(d.status.restarts, 0);
    // Another port (the one suggested) works.
    drop(busy);
    let st = env
        .run(
            id,
            SettingsPatch {
                port: Some(None),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(st.state, State::Ready);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_requests_to_a_stopped_jit_model_start_one_process() {
    let env = Env::start(llama_server(), |_, _| {}).await;
    let id = env.import_tiny("tiny-jit");
    let name = format!("local-{id}");
    env.save(
        id,
        SettingsPatch {
            jit: Some(true),
            idle_ttl_secs: Some(2),
            ..Default::default()
        },
        None,
    );
    // A JIT model is listed while stopped.
    wait_for_models(&env, &name, true).await;
    assert!(env.local_channels().is_empty());

    let reqs = (0..20).map(|_| env.chat(&name, false));
    let results = futures_util::future::join_all(reqs).await;
    for (s, body, _) in &results {
        assert_eq!(*s, 200, "{body}");
    }
    let log =
        std::fs::read_to_string(llama_manager::runtime::log_path(env.dir.path(), id)).unwrap();
    assert_eq!(log.matches("[burncloud] starting").count(), 1, "{log}");
    let st = env.deployment(id).status;
    assert_eq!(st.state, State::Ready);
    let pid = st.pid.unwrap();

    // Idle for 2 s: unloaded, channel gone, still listed, and the next request starts it.
    wait_for("the idle unload", 15, || {
        env.deployment(id).status.state == State::Stopped
    })
    .await;
    wait_for("the child to exit", 10, || !alive(pid)).await;
    assert!(env.local_channels().is_empty());
    wait_for_models(&env, &name, true).await;
    let (s, body, _) = env.chat(&name, true).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("[DONE]"));
    let log =
        std::fs::read_to_string(llama_manager::runtime::log_path(env.dir.path(), id)).unwrap();
    assert_eq!(log.matches("[burncloud] starting").count(), 2);
    env.shutdown().await;
}

async fn wait_for_models(env: &Env, name: &str, present: bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if env.models().await.iter().any(|m| m == name) == present {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/v1/models never {} {name}",
            if present { "listed" } else { "dropped" }
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fake engine: a shell script named llama-server.
fn script(dir: &Path, body: &str) -> PathBuf {
    let d = dir.join(format!("engine-{}", rand_suffix()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("llama-server");
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn rand_suffix() -> String {
    format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_that_makes_no_progress_fails_after_the_stall_timeout_and_requests_get_503() {
    let tmp = tempfile::tempdir().unwrap();
    // Prints a few loading lines, then hangs without listening.
    let eng = script(
        tmp.path(),
        "echo 'load_tensors: loading model'; sleep 0.3; echo 'load_tensors: 50%'; exec sleep 60",
    );
    let env = Env::start(eng, |o, c| {
        o.stall_timeout = Duration::from_millis(1500);
        o.max_restarts = 0;
        c.relay.jit_wait = Duration::from_millis(500);
    })
    .await;
    let id = env.import_tiny("tiny-stall");
    env.save(
        id,
        SettingsPatch {
            jit: Some(true),
            ..Default::default()
        },
        None,
    );
    wait_for_models(&env, &format!("local-{id}"), true).await;
    let t0 = Instant::now();
    let (s, body, h) = env.chat(&format!("local-{id}"), false).await;
    assert_eq!(s, 503, "{body}");
    assert_eq!(h.get("retry-after").unwrap(), "5");
    assert!(body.contains("still loading"), "{body}");
    assert!(t0.elapsed() < Duration::from_secs(3));
    // The stall timeout counts from the last output, so it fails after ≥ 0.3 + 1.5 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.deployment(id).status.state != State::Failed {
        assert!(
            Instant::now() < deadline,
            "no stall failure: {:?}\n{}",
            env.deployment(id),
            std::fs::read_to_string(llama_manager::runtime::log_path(env.dir.path(), id))
                .unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let st = env.deployment(id).status;
    let err = st.last_error.unwrap();
    assert!(err.contains("loading stalled"), "{err}");
    assert!(
        t0.elapsed() >= Duration::from_millis(1700),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(st.pid, None);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_classified_with_their_log_lines_and_deterministic_ones_not_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let eng = script(
        tmp.path(),
        "echo 'llama_model_load: error loading model: error loading model architecture: unknown model architecture: qwen9' >&2; exit 1",
    );
    let env = Env::start(eng, |_, _| {}).await;
    let id = env.import_tiny("tiny-arch");
    let st = env.run(id, SettingsPatch::default()).await;
    assert_eq!(st.state, State::Failed);
    let err = st.last_error.unwrap();
    assert!(err.starts_with("unknown model architecture"), "{err}");
    assert!(err.contains("qwen9"), "the log line is shown: {err}");
    assert!(err.contains("engine install"), "advice: {err}");
    assert_eq!(st.restarts, 0);
    // A crash (no marker) is retried, then given up on with a clear state.
    let eng2 = script(tmp.path(), "echo 'something odd'; exit 3");
    let env2 = Env::start(eng2, |o, _| o.max_restarts = 2).await;
    let id2 = env2.import_tiny("tiny-crashy");
    env2.save(id2, SettingsPatch::default(), Some(true));
    env2.runtime.reconcile();
    wait_for("giving up", 20, || {
        env2.deployment(id2).status.state == State::Failed
    })
    .await;
    let st = env2.deployment(id2).status;
    assert_eq!(st.restarts, 2);
    let err = st.last_error.unwrap();
    assert!(
        err.contains("exited with code 3") && err.contains("gave up after 2 restarts"),
        "{err}"
    );
    // Extra arguments that would override ours are refused before anything runs.
    let bad = env2
        .store()
        .with(move |c| {
            deploy::save(
                c,
                id2,
                SettingsPatch {
                    extra_args: Some(vec!["--port=1".into()]),
                    ..Default::default()
                },
                None,
            )
        })
        .unwrap_err()
        .to_string();
    assert!(bad.contains("use --port"), "{bad}");
    let bad = env2
        .store()
        .with(move |c| {
            deploy::save(
                c,
                id2,
                SettingsPatch {
                    extra_args: Some(vec![
                        "--flash-attn".into(),
                        "on".into(),
                        "--path".into(),
                        "/".into(),
                    ]),
                    ..Default::default()
                },
                None,
            )
        })
        .unwrap_err()
        .to_string();
    assert!(bad.contains("argument --path is not allowed"), "{bad}");
    env.shutdown().await;
    env2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_engine_is_a_clear_failure() {
    let env = Env::start("/nonexistent/llama-server".into(), |_, _| {}).await;
    let id = env.import_tiny("tiny-noeng");
    let st = env.run(id, SettingsPatch::default()).await;
    assert_eq!(st.state, State::Failed);
    let err = st.last_error.unwrap();
    assert!(
        err.contains("/nonexistent/llama-server") && err.contains("engine install"),
        "{err}"
    );
    env.shutdown().await;
}

#[test]
fn orphans_from_a_crashed_run_are_stopped_by_pid_file_and_strangers_are_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    // A process running a program named llama-server (a copy of `sleep`) and one that is not.
    let fake = tmp.path().join("llama-server");
    std::fs::copy("/bin/sleep", &fake).unwrap();
    let mut orphan = std::process::Command::new(&fake).arg("30").spawn().unwrap();
    let mut stranger = std::process::Command::new("/bin/sleep")
        .arg("30")
        .spawn()
        .unwrap();
    // Until exec has happened, /proc shows the test binary, not llama-server.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !llama_manager::runtime::process::runs_program(orphan.id(), fake.to_str().unwrap()) {
        assert!(
            Instant::now() < deadline,
            "the fake llama-server never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let pids = PidFiles::new(tmp.path().join("runtime"));
    pids.write(1, orphan.id(), &fake).unwrap();
    // A recycled pid: the file says llama-server, the process is something else.
    pids.write(2, stranger.id(), &fake).unwrap();
    let stopped = pids.reap_orphans();
    assert_eq!(stopped, vec![orphan.id()]);
    let status = orphan.wait().unwrap();
    assert!(!status.success());
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "a stranger must not be killed"
    );
    stranger.kill().unwrap();
    let _ = stranger.wait();
    assert_eq!(
        std::fs::read_dir(tmp.path().join("runtime"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_marked_autostart_start_with_the_app_and_others_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&gateway_core::store::testing::location(dir.path())).unwrap();
    let lib = Library::new(store.clone(), dir.path().join("models"));
    let mut ids = vec![];
    for n in ["auto", "manual"] {
        let p = dir.path().join(format!("{n}.gguf"));
        std::fs::write(&p, tiny_llama(n, 1)).unwrap();
        ids.push(lib.import(&p).unwrap().id);
    }
    store
        .with(|c| {
            deploy::save(
                c,
                ids[0],
                SettingsPatch {
                    autostart: Some(true),
                    ..Default::default()
                },
                Some(false),
            )?;
            // Desired running from a previous run, but not autostart: stays stopped.
            deploy::save(c, ids[1], SettingsPatch::default(), Some(true))
        })
        .unwrap();
    drop(lib);
    drop(store);
    let mut config = Config::for_data_dir(dir.path(), 0);
    config.database = gateway_core::store::testing::location(dir.path());
    let gateway = Gateway::open(config).await.unwrap();
    let rt = Runtime::start(gateway.state().clone(), options(dir.path(), llama_server()))
        .await
        .unwrap();
    let st = tokio::time::timeout(Duration::from_secs(60), rt.settled(ids[0]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(st.state, State::Ready);
    let other = gateway
        .state()
        .store
        .with(|c| deploy::get(c, ids[1]))
        .unwrap()
        .unwrap();
    assert!(!other.desired_running);
    assert_eq!(other.status.state, State::Stopped);
    // A second supervisor on the same data folder is refused while this one lives.
    let second = Runtime::start(gateway.state().clone(), options(dir.path(), llama_server())).await;
    let err = second.unwrap_err().to_string();
    assert!(err.contains("another BurnCloud"), "{err}");
    rt.shutdown().await;
    gateway.shutdown().await;
    let _ = Arc::new(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_and_rerank_deployments_serve_through_the_gateway() {
    use llama_manager::runtime::Mode;
    let env = Env::start(llama_server(), |_, _| {}).await;
    let emb = env.import_tiny("tiny-embed");
    let rr = env.import_tiny("tiny-rerank");
    let st = env
        .run(
            emb,
            SettingsPatch {
                mode: Some(Mode::Embeddings),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(st.state, State::Ready, "{st:?}");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", st.pid.unwrap())).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains("--embeddings"));
    let resp = env
        .client
        .post(format!("{}/v1/embeddings", env.base))
        .bearer_auth(&env.jwt)
        .json(&json!({"model": format!("local-{emb}"), "input": ["hello world", "bonjour"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.unwrap();
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{v}");
    assert_eq!(data[0]["embedding"].as_array().unwrap().len(), 64, "n_embd");
    assert!(v["usage"]["prompt_tokens"].as_i64().unwrap() > 0, "{v}");

    let st = env
        .run(
            rr,
            SettingsPatch {
                mode: Some(Mode::Rerank),
                ..Default::default()
            },
        )
        .await;
    assert_eq!(st.state, State::Ready, "{st:?}");
    let resp = env
        .client
        .post(format!("{}/v1/rerank", env.base))
        .bearer_auth(&env.jwt)
        .json(&json!({
            "model": format!("local-{rr}"),
            "query": "What is a panda?",
            "documents": ["hi", "The giant panda is a bear native to China.", "Paris is in France."],
            "top_n": 2
        }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{v}");
    for r in results {
        assert!(r["index"].as_u64().unwrap() < 3, "{v}");
        assert!(r["relevance_score"].is_number(), "{v}");
    }
    // Both requests are logged against their models like any other.
    env.gateway.as_ref().unwrap().state().flush_usage().await;
    let logs = usage_of_logs(&env.store());
    assert!(
        logs.iter()
            .any(|(m, s, _, _)| *m == format!("local-{rr}") && *s == 200),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|(m, s, p, _)| *m == format!("local-{emb}") && *s == 200 && *p > 0),
        "{logs:?}"
    );
    env.shutdown().await;
}
