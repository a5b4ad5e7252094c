//! The Chat page (playground) in the real window under Xvfb, against a real llama-server
//! serving a generated GGUF from the library (started just in time by the first request):
//! a message typed and sent with Ctrl+Enter, the answer streaming in with its time to
//! first token and tokens per second, Stop, the conversation still there after a restart,
//! and the request on the Logs page. Needs what `desktop.rs` needs, plus the pinned
//! llama-server `cargo xtask test` builds.
#![cfg(feature = "desktop")]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use gateway_core::store::conversations;
use llama_manager::testing::fake_hub::{FakeFile, FakeHub, FakeRepo};
use llama_manager::testing::gguf_writer::{TinyLlama, tiny_llama};
use llama_manager::testing::llama_server;

#[path = "../../gateway-core/tests/support/fake_openai.rs"]
mod fake_openai;
#[path = "support/screen.rs"]
mod screen;
use screen::{BIN, Screen, free_port, llama_servers_of, wait_until};

/// One window test at a time: each runs an app, a WebKit renderer and maybe a
/// llama-server on this 2-core machine, and their keyboard timing needs the CPU.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// The engine the app runs: the real llama-server, told to ignore end-of-stream so an
/// answer without a token limit streams long enough to be stopped by hand.
fn engine(dir: &Path) -> String {
    let real = llama_server();
    let path = dir.join("llama-server-ignore-eos.sh");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\ncase \" $* \" in *\" --version \"*|*\" --help \"*) exec '{r}' \"$@\";; esac\nexec '{r}' \"$@\" --ignore-eos\n",
            r = real.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path.display().to_string()
}

fn cli(dir: &Path, engine: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env("BURNCLOUD_DATA_DIR", dir)
        .env("HOME", dir)
        .env("LLAMA_SERVER", engine)
        .env_remove("DATABASE_URL")
        .env_remove("BURNCLOUD_DATABASE_URL")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "burncloud {args:?}: {text}");
    text
}

/// The chat's messages as stored (the app's own database, read beside it).
fn stored(dir: &Path) -> Vec<conversations::Message> {
    let store = gateway_core::store::Store::open(&dir.join("burncloud.db")).unwrap();
    store
        .with(|c| {
            let mut all = Vec::new();
            let owners: Vec<String> =
                c.query_all("SELECT DISTINCT user_id FROM conversations", [], |r| {
                    r.get(0)
                })?;
            for o in owners {
                for conv in conversations::list(c, &o)? {
                    all.extend(conversations::messages(c, &o, conv.id)?);
                }
            }
            Ok(all)
        })
        .unwrap_or_default()
}

/// On the Chat page that just opened: type a message (the box has the focus), send it
/// with Ctrl+Enter, and wait for the saved answer.
fn ask_on_chat_page(screen: &Screen, d: &Path, timeout: Duration) -> conversations::Message {
    screen.window("^BurnCloud · Chat$", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(1200));
    screen.type_text("Hello!", 20);
    screen.keys(&["ctrl+Return"]);
    let mut answer = None;
    wait_until("the first answer saved", timeout, || {
        answer = stored(d).into_iter().find(|m| m.role == "assistant");
        answer.is_some()
    });
    answer.unwrap()
}

#[test]
fn the_playground_streams_from_a_real_llama_server_stops_and_keeps_the_conversation() {
    let _one = one_at_a_time();
    let screen = Screen::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Outside the data folder: the app makes every file there private (0600) at start.
    let tools = tempfile::tempdir().unwrap();
    let engine = engine(tools.path());
    // A small (17 MB) model: slow enough on this machine that an answer without a limit
    // streams for seconds.
    let gguf = d.join("chat-tiny.gguf");
    std::fs::write(
        &gguf,
        TinyLlama {
            name: "chat tiny".into(),
            embd: 256,
            heads: 4,
            layers: 4,
            ff: 1024,
            ctx: 8192,
            seed: 7,
            chat_template: true,
        }
        .build(),
    )
    .unwrap();
    cli(d, &engine, &["model", "import", gguf.to_str().unwrap()]);
    cli(
        d,
        &engine,
        &["model", "deploy", "1", "--jit", "true", "--ctx", "8192"],
    );
    let port = free_port();
    let env = [
        ("LLAMA_SERVER", engine.as_str()),
        ("HOME", d.to_str().unwrap()),
        ("BURNCLOUD_LOCAL_FIRST_PORT", "19480"),
        ("BURNCLOUD_NVIDIA_SMI", "/nonexistent/nvidia-smi"),
    ];
    let app = screen.launch(d, port, "app.log", &env);
    let log = || std::fs::read_to_string(d.join("app.log")).unwrap_or_default();
    let window = screen.window("^BurnCloud", Duration::from_secs(60));
    wait_until("the first frame", Duration::from_secs(60), || {
        log().contains("window drawn")
    });

    // The Chat page (Alt+2): the message box has the focus; Ctrl+Enter sends.
    screen.xdo(&["windowfocus", "--sync", &window]);
    screen.keys(&["alt+2"]);
    screen.window("^BurnCloud · Chat$", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    screen.type_text("Hello there, tiny model", 20);
    screen.keys(&["ctrl+Return"]);
    // The box empties and takes the focus again; Tab goes to Stop while the answer streams.
    std::thread::sleep(Duration::from_millis(1200));
    screen.keys(&["Tab"]);
    let text = screen.wait_for_text(
        "streamed text with its speed",
        Duration::from_secs(60),
        &["tokens/s", "first token"],
    );
    let first_answer = started.elapsed();
    assert!(text.contains("Hello there, tiny model"), "{text}");
    assert!(text.contains("Stop"), "still streaming: {text}");
    assert!(llama_servers_of(d) >= 1, "the model started just in time");
    // Stop (the focus is on it).
    screen.keys(&["Return"]);
    let mut messages = Vec::new();
    wait_until("the stopped answer saved", Duration::from_secs(20), || {
        messages = stored(d);
        messages.iter().any(|m| m.role == "assistant")
    });
    let answer = messages.iter().find(|m| m.role == "assistant").unwrap();
    assert!(answer.stopped, "{answer:?}");
    assert!(
        !answer.content.is_empty() && answer.error.is_none(),
        "{answer:?}"
    );
    let speed = answer.tokens_per_sec.expect("tokens per second measured");
    assert!(speed > 0.0 && answer.ttft_ms.is_some(), "{answer:?}");
    let rid = answer.request_id.clone().expect("the request's id");
    // The window shows the saved answer: Stopped, with its numbers.
    std::thread::sleep(Duration::from_millis(1500));
    screen.xdo(&["windowfocus", "--sync", &window]);
    let text = screen.wait_for_text(
        "the saved answer in the window",
        Duration::from_secs(20),
        &["Stopped", "tokens/s"],
    );
    let tokens = answer.tokens.unwrap_or(0);
    assert!(
        text.contains(&format!("{tokens} tokens")),
        "{tokens} tokens in\n{text}"
    );

    // Restart: the conversation is there, opened, with the stopped answer; no engine left.
    let _ = Command::new("kill").arg(app.0.id().to_string()).status();
    drop(app);
    wait_until(
        "no llama-server after quitting",
        Duration::from_secs(20),
        || llama_servers_of(d) == 0,
    );
    let app = screen.launch(d, port, "app2.log", &env);
    let window = screen.window("^BurnCloud", Duration::from_secs(60));
    wait_until(
        "the first frame after the restart",
        Duration::from_secs(60),
        || {
            std::fs::read_to_string(d.join("app2.log"))
                .unwrap_or_default()
                .contains("window drawn")
        },
    );
    screen.xdo(&["windowfocus", "--sync", &window]);
    screen.keys(&["alt+2"]);
    screen.window("^BurnCloud · Chat$", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(1500));
    screen.keys(&["Tab"]);
    screen.wait_for_text(
        "the kept conversation",
        Duration::from_secs(20),
        &["Hello there, tiny model", "Stopped"],
    );
    // The Logs page (Alt+6) lists the request, with its cost.
    screen.keys(&["alt+6"]);
    screen.window("^BurnCloud · Logs$", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(1500));
    screen.wait_for_text(
        "the chat's request on the Logs page",
        Duration::from_secs(20),
        &["local-", "$"],
    );
    let _ = Command::new("kill").arg(app.0.id().to_string()).status();
    drop(app);
    eprintln!(
        "playground: first streamed text with its speed after {:.1} s (JIT start included); stopped answer {tokens} tokens at {speed:.0} tokens/s; request {rid}",
        first_answer.as_secs_f64()
    );
}

/// First launch to a first streamed answer with a provider key: the provider drop-down
/// has the focus on the empty dashboard; Tab, paste the key, give the (fake) provider's address,
/// Connect, and the Chat page opens with one of its models; type, Ctrl+Enter. Counted
/// (keyboard steps, no mouse) and timed from launch.
#[test]
fn first_launch_to_a_first_answer_with_a_provider_key() {
    let _one = one_at_a_time();
    let screen = Screen::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = fake_openai::Fake::new();
    let upstream = rt.block_on(fake_openai::start(fake.clone()));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let launched = Instant::now();
    let app = screen.launch(d, port, "app.log", &[("HOME", d.to_str().unwrap())]);
    let log = || std::fs::read_to_string(d.join("app.log")).unwrap_or_default();
    let window = screen.window("^BurnCloud", Duration::from_secs(60));
    wait_until("the first frame", Duration::from_secs(60), || {
        log().contains("window drawn")
    });
    let drawn = launched.elapsed();
    screen.xdo(&["windowfocus", "--sync", &window]);
    // The dashboard's data arrives, the key field is made and takes the focus.
    std::thread::sleep(Duration::from_millis(2500));
    let mut steps = 0;
    // 1. Paste the key (the provider drop-down has the focus; the key field is next).
    screen.set_clipboard("sk-first-run-key-0123456789");
    screen.keys(&["Tab", "ctrl+v"]);
    steps += 1;
    // 2. The provider's address (a real OpenAI key needs none: the default is filled in).
    screen.keys(&["Tab"]);
    screen.type_text(&format!("http://{upstream}"), 10);
    steps += 1;
    // 3. Connect.
    screen.keys(&["Tab", "Return"]);
    steps += 1;
    // 4. Type a message (the message box has the focus), 5. Ctrl+Enter.
    let answer = ask_on_chat_page(&screen, d, Duration::from_secs(30));
    steps += 2;
    let first_answer = launched.elapsed();
    assert_eq!(answer.content, "Hello from fake", "{answer:?}");
    assert_eq!(answer.model, "gpt-4o-mini");
    // The provider got the key that was pasted, through the gateway.
    let seen = fake.last().unwrap();
    assert_eq!(
        seen.authorization.as_deref(),
        Some("Bearer sk-first-run-key-0123456789")
    );
    assert_eq!(seen.body["messages"][0]["content"], "Hello!");
    // The window shows it, under the message of the connect.
    std::thread::sleep(Duration::from_millis(1500));
    screen.keys(&["Tab"]);
    screen.wait_for_text(
        "the answer in the window",
        Duration::from_secs(20),
        &["Hello from fake", "3 tokens", "Connected: channel openai"],
    );
    let _ = Command::new("kill").arg(app.0.id().to_string()).status();
    drop(app);
    eprintln!(
        "first run, provider key: {steps} keyboard steps, no mouse; window drawn {:.1} s after launch, first answer {:.1} s after launch",
        drawn.as_secs_f64(),
        first_answer.as_secs_f64()
    );
}

/// First launch to a first answer with a model from the hub: the empty dashboard offers a
/// small chat model that fits (searched on the fake hub), one activation of **Download
/// and run** downloads it, deploys it to start on the first request and opens the Chat
/// page; type, Ctrl+Enter, and the real llama-server answers. Counted and timed.
#[test]
fn first_launch_to_a_first_answer_with_a_model_from_the_hub() {
    let _one = one_at_a_time();
    let screen = Screen::start();
    let hub = FakeHub::start(vec![FakeRepo::new(
        "acme/pocket-Instruct-GGUF",
        vec![FakeFile::new(
            "pocket.Q4_K_M.gguf",
            tiny_llama("pocket chat", 11),
        )],
    )]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let engine = llama_server().display().to_string();
    let launched = Instant::now();
    let app = screen.launch(
        d,
        port,
        "app.log",
        &[
            ("HOME", d.to_str().unwrap()),
            ("HF_ENDPOINT", hub.url.as_str()),
            ("LLAMA_SERVER", engine.as_str()),
            ("BURNCLOUD_LOCAL_FIRST_PORT", "19580"),
            ("BURNCLOUD_NVIDIA_SMI", "/nonexistent/nvidia-smi"),
        ],
    );
    let log = || std::fs::read_to_string(d.join("app.log")).unwrap_or_default();
    let window = screen.window("^BurnCloud", Duration::from_secs(60));
    wait_until("the first frame", Duration::from_secs(60), || {
        log().contains("window drawn")
    });
    let drawn = launched.elapsed();
    screen.xdo(&["windowfocus", "--sync", &window]);
    std::thread::sleep(Duration::from_millis(2500));
    // From the provider drop-down (it has the focus): key, base URL, Connect, then
    // Download and run.
    screen.keys(&["Tab", "Tab", "Tab"]);
    screen.wait_for_text(
        "the offered model",
        Duration::from_secs(30),
        &["pocket.Q4_K_M.gguf", "Download and run"],
    );
    screen.keys(&["Tab", "Return"]);
    let mut steps = 1;
    let answer = ask_on_chat_page(&screen, d, Duration::from_secs(60));
    steps += 2;
    let first_answer = launched.elapsed();
    assert!(
        answer.error.is_none() && !answer.content.is_empty(),
        "{answer:?}"
    );
    assert_eq!(answer.model, "local-1");
    assert!(answer.tokens.unwrap_or(0) > 0, "{answer:?}");
    // The whole file came from the hub, once.
    let full: Vec<_> = hub
        .downloads()
        .into_iter()
        .filter(|s| s.range.is_none())
        .collect();
    assert_eq!(full.len(), 1, "{full:?}");
    let _ = Command::new("kill").arg(app.0.id().to_string()).status();
    drop(app);
    wait_until(
        "no llama-server after quitting",
        Duration::from_secs(20),
        || llama_servers_of(d) == 0,
    );
    eprintln!(
        "first run, model from the hub: {steps} steps (Download and run, type, Ctrl+Enter), no mouse; window drawn {:.1} s, first answer {:.1} s after launch",
        drawn.as_secs_f64(),
        first_answer.as_secs_f64()
    );
}
