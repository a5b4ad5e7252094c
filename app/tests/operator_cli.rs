//! The operator's CLI on the real binary: `burncloud channel ...` and `burncloud token ...`
//! change what a running router serves within a second; `--json` is the console API's JSON.

mod support;

#[path = "../../gateway-core/tests/support/fake_openai.rs"]
mod fake_openai;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{BIN, Router};

fn run(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("BURNCLOUD_DATA_DIR", dir)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn json_of(args: &[&str], dir: &std::path::Path, stdin: Option<&str>) -> Value {
    let (code, out, err) = run(dir, args, stdin);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {out}"))
}

/// Retry `f` for up to 2 s until it returns true.
fn within_2s(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn channels_and_keys_from_a_script() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = fake_openai::Fake::new();
    let upstream = rt.block_on(fake_openai::start(fake.clone()));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let router = Router::start(d, 0).unwrap();
    let client = reqwest::blocking::Client::new();
    let reg: Value = client
        .post(format!("{}/api/auth/register", router.base()))
        .json(&json!({"username": "admin", "password": "YourSecurePassword!"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(reg["data"]["roles"], json!(["admin"]));

    // A channel, its key from stdin (never on the command line).
    let base = format!("http://{upstream}");
    let ch = json_of(
        &[
            "channel",
            "add",
            "--name",
            "fake",
            "--type",
            "1",
            "--key-stdin",
            "--base-url",
            &base,
            "--models",
            "gpt-4o-mini",
            "--json",
        ],
        d,
        Some("sk-upstream-0123456789\n"),
    );
    let id = ch["id"].as_i64().unwrap().to_string();
    assert_eq!(ch["key"], "sk-...6789", "masked: {ch}");
    let list = json_of(&["channel", "list", "--json"], d, None);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("0123456789"), "{list}");
    let (code, out, _) = run(d, &["channel", "list"], None);
    assert_eq!(code, 0);
    assert!(out.lines().nth(1).unwrap().contains("fake"), "{out}");
    let (code, out, err) = run(d, &["channel", "test", &id], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("answered gpt-4o-mini"), "{out}");
    assert_eq!(
        fake.last().unwrap().authorization.as_deref(),
        Some("Bearer sk-upstream-0123456789")
    );

    // A key for a script, used at once through the running router.
    let tok = json_of(
        &[
            "token", "create", "--name", "ci", "--quota", "1.5", "--json",
        ],
        d,
        None,
    );
    let key = tok["key"].as_str().unwrap().to_string();
    let tid = tok["id"].as_i64().unwrap().to_string();
    assert!(key.starts_with("sk-") && tok["quota_limit"] == 1.5, "{tok}");
    let chat = || {
        client
            .post(format!("{}/v1/chat/completions", router.base()))
            .bearer_auth(&key)
            .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert!(
        within_2s(|| chat() == 200),
        "the new key works within a second or two"
    );
    let shown = json_of(&["token", "show", &tid, "--json"], d, None);
    assert_eq!(shown["name"], "ci");
    assert!(
        shown["key"].as_str().unwrap().contains("..."),
        "shown masked: {shown}"
    );
    let (code, _, err) = run(d, &["token", "set", &tid, "--disable"], None);
    assert_eq!(code, 0, "{err}");
    assert!(within_2s(|| chat() == 401), "a disabled key stops");
    let (code, _, _) = run(d, &["token", "revoke", &tid], None);
    assert_eq!(code, 0);
    assert_eq!(json_of(&["token", "list", "--json"], d, None), json!([]));

    // A failing upstream: exit 1 with the reason and the fix.
    fake.set(fake_openai::Behavior::Status(401));
    let (code, _, err) = run(d, &["channel", "test", &id], None);
    assert_eq!(code, 1);
    assert!(
        err.contains("401") && err.contains("paste a valid key"),
        "{err}"
    );

    // Bad input: exit 1 (refused) or 2 (usage), nothing written.
    let (code, _, err) = run(
        d,
        &[
            "channel", "add", "--name", "x", "--type", "999", "--key", "k", "--models", "m",
        ],
        None,
    );
    assert_eq!(code, 1);
    assert!(err.contains("type 999"), "{err}");
    let (code, _, err) = run(d, &["channel", "show", "abc"], None);
    assert_eq!(code, 1);
    assert!(err.contains("not a channel or token id"), "{err}");
    let (code, _, _) = run(d, &["token", "create"], None);
    assert_eq!(code, 1, "--name is required");
    let (code, _, _) = run(d, &["channel", "frobnicate"], None);
    assert_eq!(code, 2);
    let (code, _, _) = run(d, &["channel", "rm", &id], None);
    assert_eq!(code, 0);
    assert_eq!(json_of(&["channel", "list", "--json"], d, None), json!([]));
    drop(router);
}
