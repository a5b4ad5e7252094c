//! Abuse tests on the real binary: what a hostile web page, a stranger on the network or a
//! plain user can try against a fresh `burncloud router` (issue "safe by default").

mod support;

#[path = "../../gateway-core/tests/support/fake_openai.rs"]
mod fake_openai;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{BIN, Router};

const PASSWORD: &str = "YourSecurePassword!";

/// Send exactly these bytes; returns the status and the body.
fn raw(addr: &str, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// A POST as a browser page would send it, with `Connection: close`.
fn page_post(addr: &str, host: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    raw(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

struct Api {
    base: String,
    client: reqwest::blocking::Client,
}

impl Api {
    fn new(router: &Router) -> Api {
        Api {
            base: router.base(),
            client: reqwest::blocking::Client::new(),
        }
    }
    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut rb = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }
    fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, token, Some(body))
    }
    fn put(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PUT, path, token, Some(body))
    }
    fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, token, None)
    }
    fn register(&self, name: &str) -> (u16, Value) {
        self.post(
            "/api/auth/register",
            None,
            json!({"username": name, "password": PASSWORD}),
        )
    }
    fn admin(&self) -> String {
        let (s, v) = self.register("admin");
        assert_eq!(s, 200, "{v}");
        v["data"]["token"].as_str().unwrap().to_string()
    }
    /// Open registration and register a plain user; returns (user id, login token).
    fn user(&self, admin: &str, name: &str) -> (String, String) {
        let (s, v) = self.put(
            "/console/api/settings/governance",
            Some(admin),
            json!({"registration": "open"}),
        );
        assert_eq!(s, 200, "{v}");
        let (s, v) = self.register(name);
        assert_eq!(s, 200, "{v}");
        (
            v["data"]["id"].as_str().unwrap().to_string(),
            v["data"]["token"].as_str().unwrap().to_string(),
        )
    }
    fn channel(&self, admin: &str, body: Value) -> i64 {
        let (s, v) = self.post("/console/api/channel", Some(admin), body);
        assert_eq!(s, 200, "{v}");
        v["data"]["id"].as_i64().unwrap()
    }
    fn chat(&self, token: &str, model: &str) -> (u16, Value) {
        self.post(
            "/v1/chat/completions",
            Some(token),
            json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}),
        )
    }
    /// Log records (admin), newest first, after the usage writer has flushed.
    fn logs(&self, admin: &str) -> Vec<Value> {
        std::thread::sleep(Duration::from_millis(400));
        let (s, v) = self.get("/console/api/logs?page_size=50", Some(admin));
        assert_eq!(s, 200, "{v}");
        v["data"]["items"].as_array().cloned().unwrap_or_default()
    }
}

fn fake_upstream() -> (
    tokio::runtime::Runtime,
    std::sync::Arc<fake_openai::Fake>,
    String,
) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = fake_openai::Fake::new();
    let addr = rt.block_on(fake_openai::start(fake.clone()));
    (rt, fake, format!("http://{addr}"))
}

#[test]
fn a_hostile_web_page_cannot_register_or_post_forms() {
    let dir = tempfile::tempdir().unwrap();
    let router = Router::start(dir.path(), 0).expect("router starts");
    let addr = router.addr.clone();
    let port = router.port();
    let body = r#"{"username":"admin","password":"YourSecurePassword!"}"#;
    // DNS rebinding: the page's own name in Host, a text/plain body (no CORS preflight).
    let (s, b) = page_post(
        &addr,
        &format!("evil.example:{port}"),
        "/api/auth/register",
        "Content-Type: text/plain;charset=UTF-8\r\nOrigin: http://evil.example:3000\r\n",
        body,
    );
    assert_eq!(s, 403, "{b}");
    assert!(b.contains("BURNCLOUD_ALLOWED_HOSTS"), "{b}");
    let host = format!("127.0.0.1:{port}");
    // Simple requests a page on any origin can send, aimed at the right host.
    for ct in [
        "Content-Type: text/plain\r\n",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "Content-Type: multipart/form-data; boundary=----x\r\n",
        "",
    ] {
        let (s, b) = page_post(&addr, &host, "/api/auth/register", ct, body);
        assert_eq!(s, 415, "{ct:?}: {b}");
    }
    // A foreign page's Origin, even with a JSON body.
    let (s, b) = page_post(
        &addr,
        &host,
        "/api/auth/register",
        "Content-Type: application/json\r\nOrigin: https://evil.example\r\n",
        body,
    );
    assert_eq!(s, 403, "{b}");
    // The relay's paths (served before the router, for speed) are guarded the same way: a
    // page can neither rebind a name nor post cross-site to spend the owner's keys.
    for (h, origin) in [
        (format!("evil.example:{port}"), ""),
        (host.clone(), "Origin: https://evil.example\r\n"),
    ] {
        for path in ["/v1/chat/completions", "/v1/messages", "/v1/responses"] {
            let (s, b) = page_post(
                &addr,
                &h,
                path,
                &format!("Content-Type: text/plain\r\n{origin}"),
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
            );
            assert_eq!(s, 403, "{path} via {h} {origin:?}: {b}");
            assert!(b.contains("permission_denied"), "{b}");
        }
    }
    // Nothing was created: the owner's own registration is the first, and admin.
    let (s, b) = page_post(
        &addr,
        &format!("localhost:{port}"),
        "/api/auth/register",
        &format!(
            "Content-Type: application/json; charset=utf-8\r\nOrigin: http://localhost:{port}\r\n"
        ),
        body,
    );
    assert_eq!(s, 200, "{b}");
    assert!(b.contains(r#""roles":["admin"]"#), "{b}");
    drop(router);
    // Names the owner adds are answered.
    let dir = tempfile::tempdir().unwrap();
    let router = Router::start_with(
        dir.path(),
        &[
            ("BURNCLOUD_PORT", "0"),
            ("BURNCLOUD_ALLOWED_HOSTS", "gw.example"),
        ],
    )
    .unwrap();
    let get = |host: &str| {
        raw(
            &router.addr,
            &format!("GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .0
    };
    assert_eq!(get("gw.example"), 200);
    assert_eq!(get("other.example"), 403);
}

#[test]
fn registration_is_closed_by_default_after_the_admin() {
    let dir = tempfile::tempdir().unwrap();
    let router = Router::start(dir.path(), 0).unwrap();
    let api = Api::new(&router);
    let admin = api.admin();
    let (s, v) = api.register("stranger");
    assert_eq!(s, 403, "{v}");
    assert!(v["message"].as_str().unwrap().contains("closed"), "{v}");
    let (s, v) = api.get("/console/api/settings/governance", Some(&admin));
    assert_eq!(
        (s, v["data"]["registration"].as_str()),
        (200, Some("closed"))
    );
}

/// A network namespace with a veth pair: the gateway listens on the host side, a client
/// runs on the other side — a peer that is not loopback, made here and removed after.
struct Netns {
    name: String,
    host_if: String,
    host_ip: String,
}

impl Netns {
    fn create() -> Netns {
        let n = std::process::id() % 200 + 20;
        let ns = Netns {
            name: format!("bcsec{n}"),
            host_if: format!("bcs{n}a"),
            host_ip: format!("10.231.{n}.1"),
        };
        let peer_if = format!("bcs{n}b");
        let _ = Command::new("ip").args(["netns", "del", &ns.name]).status();
        let _ = Command::new("ip")
            .args(["link", "del", &ns.host_if])
            .status();
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), ns.name.clone()],
            vec![
                "link".into(),
                "add".into(),
                ns.host_if.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                peer_if.clone(),
            ],
            vec![
                "link".into(),
                "set".into(),
                peer_if.clone(),
                "netns".into(),
                ns.name.clone(),
            ],
            vec![
                "addr".into(),
                "add".into(),
                format!("{}/30", ns.host_ip),
                "dev".into(),
                ns.host_if.clone(),
            ],
            vec!["link".into(), "set".into(), ns.host_if.clone(), "up".into()],
            vec![
                "netns".into(),
                "exec".into(),
                ns.name.clone(),
                "ip".into(),
                "addr".into(),
                "add".into(),
                format!("10.231.{n}.2/30"),
                "dev".into(),
                peer_if.clone(),
            ],
            vec![
                "netns".into(),
                "exec".into(),
                ns.name.clone(),
                "ip".into(),
                "link".into(),
                "set".into(),
                peer_if,
                "up".into(),
            ],
        ];
        for args in steps {
            let st = Command::new("ip")
                .args(&args)
                .status()
                .expect("iproute2 is installed");
            assert!(
                st.success(),
                "ip {args:?} failed: this test needs root and iproute2"
            );
        }
        ns
    }

    /// curl from inside the namespace: (status, body).
    fn curl(&self, args: &[&str]) -> (u16, String) {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.name,
                "curl",
                "-s",
                "-m",
                "10",
                "-w",
                "\n%{http_code}",
            ])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[test]
fn a_stranger_on_the_network_cannot_take_the_first_account() {
    let ns = Netns::create();
    let dir = tempfile::tempdir().unwrap();
    let router = Router::start_with(
        dir.path(),
        &[("BURNCLOUD_HOST", &ns.host_ip), ("BURNCLOUD_PORT", "0")],
    )
    .expect("router starts on the veth address");
    let url = |p: &str| format!("http://{}{p}", router.addr);
    let printed = router
        .line_with("setup token")
        .expect("the setup token is announced");
    let token_file = dir.path().join("setup-token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(router.line_with(token.trim()).is_some(), "{printed}");
    assert_mode(&token_file, 0o600);
    let reg = |extra: &str| {
        ns.curl(&[
            "-H",
            "Content-Type: application/json",
            "-d",
            &format!(r#"{{"username":"admin","password":"{PASSWORD}"{extra}}}"#),
            &url("/api/auth/register"),
        ])
    };
    let (s, b) = reg("");
    assert_eq!(s, 403, "{b}");
    assert!(b.contains("setup token"), "{b}");
    let (s, b) = reg(r#","setup_token":"wrong-token-0000000000000000000000""#);
    assert_eq!(s, 403, "{b}");
    // Operational details are the admin's on a network listener.
    let (s, _) = ns.curl(&[&url("/metrics")]);
    assert_eq!(s, 401);
    let (s, b) = ns.curl(&[&url("/health")]);
    assert_eq!((s, b.as_str()), (200, r#"{"status":"ok"}"#));
    // With the token it works, once.
    let (s, b) = reg(&format!(r#","setup_token":"{}""#, token.trim()));
    assert_eq!(s, 200, "{b}");
    assert!(b.contains(r#""roles":["admin"]"#), "{b}");
    assert!(!token_file.exists(), "the setup token is spent");
    let admin: Value = serde_json::from_str(&b).unwrap();
    let jwt = admin["data"]["token"].as_str().unwrap();
    let (s, b) = ns.curl(&[
        "-H",
        &format!("Authorization: Bearer {jwt}"),
        &url("/metrics"),
    ]);
    assert_eq!(s, 200, "{b}");
}

#[test]
fn users_without_balance_cannot_spend_on_unpriced_or_priced_cloud_models() {
    let (_rt, fake, upstream) = fake_upstream();
    let dir = tempfile::tempdir().unwrap();
    let router = Router::start(dir.path(), 0).unwrap();
    let api = Api::new(&router);
    let admin = api.admin();
    api.channel(
        &admin,
        json!({"name": "cloud", "type": 1, "key": "sk-upstream-0123456789", "base_url": upstream, "models": "mystery-model,gpt-4o-mini"}),
    );
    let (_, user) = api.user(&admin, "stranger");
    // No price anywhere: 402, and the upstream never sees the request.
    let (s, v) = api.chat(&user, "mystery-model");
    assert_eq!(s, 402, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ask an admin to set a price"),
        "{v}"
    );
    // Priced by the shipped catalog, but the user's balance is $0.
    let (s, v) = api.chat(&user, "gpt-4o-mini");
    assert_eq!(s, 402, "{v}");
    assert_eq!(fake.hits(), 0);
    // The admin (unlimited) may; and may allow unpriced cloud use for everyone.
    assert_eq!(api.chat(&admin, "mystery-model").0, 200);
    let (s, _) = api.put(
        "/console/api/settings/governance",
        Some(&admin),
        json!({"allow_unpriced_cloud": true}),
    );
    assert_eq!(s, 200);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(api.chat(&user, "mystery-model").0, 200);
}

#[test]
fn burst_failover_to_a_priced_cloud_channel_is_admitted_again() {
    let (_rt, fake, upstream) = fake_upstream();
    let dir = tempfile::tempdir().unwrap();
    let router = Router::start(dir.path(), 0).unwrap();
    let api = Api::new(&router);
    let admin = api.admin();
    // A local model that is down (free), and a priced cloud model behind the burst alias.
    api.channel(
        &admin,
        json!({"name": "local", "type": 1, "key": "x", "base_url": "http://127.0.0.1:9", "models": "tiny-local", "locality": "local"}),
    );
    api.channel(
        &admin,
        json!({"name": "cloud", "type": 1, "key": "sk-upstream-0123456789", "base_url": upstream, "models": "gpt-4o-mini"}),
    );
    let (_, user) = api.user(&admin, "walker");
    let (s, v) = api.chat(&user, "burst-auto");
    assert_eq!(s, 402, "failover to the cloud needs balance: {v}");
    assert_eq!(fake.hits(), 0, "nothing was spent");
    // With balance the same request fails over and is billed.
    let (s, v) = api.get("/console/api/users", Some(&admin));
    assert_eq!(s, 200);
    let id = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "walker")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = api.put(
        &format!("/console/api/users/{id}"),
        Some(&admin),
        json!({"balance_usd": 1.0}),
    );
    assert_eq!(s, 200, "{v}");
    std::thread::sleep(Duration::from_millis(300));
    let (s, v) = api.chat(&user, "burst-auto");
    assert_eq!(s, 200, "{v}");
    assert_eq!(fake.hits(), 1);
}

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn assert_mode(p: &std::path::Path, want: u32) {
    assert_eq!(mode(p), want, "{} is {:o}", p.display(), mode(p));
}

#[test]
fn files_are_private_and_a_copied_database_holds_no_provider_key() {
    use std::os::unix::fs::PermissionsExt;
    let (_rt, fake, upstream) = fake_upstream();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    const SECRET: &str = "sk-upstream-SECRET-4242424242";
    {
        let router = Router::start(&data, 0).unwrap();
        let api = Api::new(&router);
        let admin = api.admin();
        api.channel(
            &admin,
            json!({"name": "cloud", "type": 1, "key": SECRET, "base_url": upstream, "models": "gpt-4o-mini"}),
        );
        assert_eq!(api.chat(&admin, "gpt-4o-mini").0, 200);
        assert_eq!(
            fake.last().unwrap().authorization.as_deref(),
            Some(&*format!("Bearer {SECRET}"))
        );
        assert_eq!(router.terminate(), 0);
    }
    // An install from before: loose modes everywhere.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        data.join("burncloud.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(
        data.join("jwt_secret"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let router = Router::start(&data, 0).unwrap();
    assert_mode(&data, 0o700);
    for f in [
        "burncloud.db",
        "burncloud.db-wal",
        "burncloud.db-shm",
        "jwt_secret",
        "provider-keys.key",
    ] {
        assert_mode(&data.join(f), 0o600);
    }
    drop(router);
    // The key is in no database file.
    for f in ["burncloud.db", "burncloud.db-wal", "burncloud.db-shm"] {
        let bytes = std::fs::read(data.join(f)).unwrap_or_default();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "{f} holds the key"
        );
    }
    // A copy of the database elsewhere cannot give it back.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    for f in ["burncloud.db", "burncloud.db-wal"] {
        if data.join(f).exists() {
            std::fs::copy(data.join(f), elsewhere.join(f)).unwrap();
        }
    }
    let store = gateway_core::store::Store::open(&elsewhere.join("burncloud.db")).unwrap();
    let channels = store
        .with(|c| gateway_core::store::channels::list(c))
        .unwrap();
    assert_eq!(channels.len(), 1);
    assert!(channels[0].key.is_empty(), "the copy revealed a key");
    // The install itself still reads it.
    let store = gateway_core::store::Store::open(&data.join("burncloud.db")).unwrap();
    let channels = store
        .with(|c| gateway_core::store::channels::list(c))
        .unwrap();
    assert_eq!(channels[0].key, SECRET);
}

#[test]
fn wrong_passwords_are_throttled_and_a_login_flood_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let router = Router::start(dir.path(), 0).unwrap();
    let api = Api::new(&router);
    api.admin();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..20 {
        let r = api
            .client
            .post(format!("{}/api/auth/login", api.base))
            .json(&json!({"username": "admin", "password": "Wrong-password-1"}))
            .send()
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
        }
    }
    assert!(statuses[..5].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(retry_after.is_some_and(|r| r.parse::<u64>().unwrap() >= 1));
    // 500 concurrent logins (different names, so the per-name lock does not stop them):
    // argon2 runs one per core, so memory stays bounded.
    let pid = router.child.id();
    let rss = |field: &str| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    let before = rss("VmRSS:");
    let t0 = Instant::now();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = api.base.clone();
    let codes: Vec<u16> = rt.block_on(async move {
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let tasks: Vec<_> = (0..500)
            .map(|i| {
                let (client, base) = (client.clone(), base.clone());
                tokio::spawn(async move {
                    client
                        .post(format!("{base}/api/auth/login"))
                        .json(&json!({"username": format!("nobody{i}"), "password": "Wrong-password-1"}))
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0)
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let peak = rss("VmHWM:");
    println!(
        "500 concurrent logins: RSS before {before} kB, peak {peak} kB, {:.1} s; statuses 401: {}, 429: {}",
        t0.elapsed().as_secs_f64(),
        codes.iter().filter(|c| **c == 401).count(),
        codes.iter().filter(|c| **c == 429).count()
    );
    assert!(codes.iter().all(|c| *c == 401 || *c == 429), "{codes:?}");
    assert!(
        peak < before + 64 * 1024,
        "peak RSS {peak} kB from {before} kB"
    );
}

#[test]
fn an_owner_cannot_raise_what_an_admin_set_on_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let router = Router::start(dir.path(), 0).unwrap();
    let api = Api::new(&router);
    let admin = api.admin();
    let (_, user) = api.user(&admin, "carol");
    let (s, v) = api.post("/console/api/tokens", Some(&user), json!({"name": "mine"}));
    assert_eq!(s, 200, "{v}");
    let id = v["data"]["id"].as_i64().unwrap();
    let path = format!("/console/api/tokens/{id}");
    // The owner may change their own key freely until an admin sets limits on it.
    assert_eq!(
        api.put(&path, Some(&user), json!({"rpm_limit": 100})).0,
        200
    );
    let (s, v) = api.put(
        &path,
        Some(&admin),
        json!({"quota_limit": 1.0, "rpm_limit": 10, "models": "gpt-4o-mini"}),
    );
    assert_eq!(s, 200, "{v}");
    for loosen in [
        json!({"quota_limit": -1}),
        json!({"quota_limit": 5.0}),
        json!({"rpm_limit": 11}),
        json!({"rpm_limit": null}),
        json!({"models": ""}),
        json!({"models": "gpt-4o-mini,gpt-4o"}),
    ] {
        let (s, v) = api.put(&path, Some(&user), loosen.clone());
        assert_eq!(s, 403, "{loosen} -> {v}");
    }
    let (s, v) = api.put(
        &path,
        Some(&user),
        json!({"quota_limit": 0.5, "rpm_limit": 5}),
    );
    assert_eq!(s, 200, "tightening is fine: {v}");
    let (_, v) = api.get(&path, Some(&user));
    assert_eq!(
        (
            v["data"]["quota_limit"].as_f64(),
            v["data"]["rpm_limit"].as_i64()
        ),
        (Some(0.5), Some(5))
    );
}

#[test]
fn an_upstream_redirect_is_not_followed_with_the_key() {
    let (rt, fake, upstream) = fake_upstream();
    let thief = fake_openai::Fake::new();
    let thief_addr = rt.block_on(fake_openai::start(thief.clone()));
    fake.set(fake_openai::Behavior::Redirect(format!(
        "http://{thief_addr}/v1/chat/completions"
    )));
    let dir = tempfile::tempdir().unwrap();
    let router = Router::start(dir.path(), 0).unwrap();
    let api = Api::new(&router);
    let admin = api.admin();
    api.channel(
        &admin,
        json!({"name": "moved", "type": 1, "key": "sk-upstream-0123456789", "base_url": upstream, "models": "gpt-4o-mini"}),
    );
    let (s, v) = api.chat(&admin, "gpt-4o-mini");
    assert_eq!(s, 503, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("redirect(307)->127.0.0.1"), "{msg}");
    assert_eq!(fake.hits(), 1);
    assert_eq!(thief.hits(), 0, "the key went to the redirect target");
}

#[test]
fn a_client_that_leaves_before_the_first_byte_is_billed() {
    let (_rt, fake, upstream) = fake_upstream();
    fake.set(fake_openai::Behavior::Delay(Duration::from_millis(800)));
    let dir = tempfile::tempdir().unwrap();
    let router = Router::start(dir.path(), 0).unwrap();
    let api = Api::new(&router);
    let admin = api.admin();
    api.channel(
        &admin,
        json!({"name": "slow", "type": 1, "key": "sk-upstream-0123456789", "base_url": upstream, "models": "gpt-4o-mini"}),
    );
    let (s, v) = api.post("/console/api/tokens", Some(&admin), json!({"name": "k"}));
    assert_eq!(s, 200, "{v}");
    let key = v["data"]["key"].as_str().unwrap().to_string();
    // Send, then hang up while the upstream is still thinking.
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    let mut s = TcpStream::connect(&router.addr).unwrap();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(s);
    std::thread::sleep(Duration::from_millis(1200));
    let logs = api.logs(&admin);
    let rec = logs
        .iter()
        .find(|r| r["endpoint"] == "/v1/chat/completions")
        .expect("the request was logged");
    assert_eq!(rec["status"], 499, "{rec}");
    assert_eq!(
        (
            rec["prompt_tokens"].as_i64(),
            rec["completion_tokens"].as_i64()
        ),
        (Some(12), Some(3)),
        "{rec}"
    );
    // 12 × $0.15 + 3 × $0.60 per 1M tokens (gpt-4o-mini in the shipped catalog).
    assert_eq!(rec["cost_usd"].as_f64(), Some(0.0000036), "{rec}");
    assert!(
        rec["error"].as_str().unwrap().contains("usage was read"),
        "{rec}"
    );
}

#[test]
fn owner_tools_on_the_machine() {
    let dir = tempfile::tempdir().unwrap();
    // A short JWT_SECRET is refused; a hostname in HOST is ignored with a warning.
    let out = Command::new(BIN)
        .arg("router")
        .env("BURNCLOUD_DATA_DIR", dir.path())
        .env("JWT_SECRET", "short")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32"));
    let router = Router::start_with(
        dir.path(),
        &[
            ("HOST", "mybox.example"),
            ("BURNCLOUD_PORT", "0"),
            ("BURNCLOUD_ADMIN_PASSWORD", "Container-admin-1"),
        ],
    )
    .expect("a hostname in HOST does not stop the router");
    assert!(router.addr.starts_with("127.0.0.1:"), "{}", router.addr);
    assert!(router.line_with("Created the admin account").is_some());
    let api = Api::new(&router);
    let login = |pw: &str| {
        api.post(
            "/api/auth/login",
            None,
            json!({"username": "admin", "password": pw}),
        )
        .0
    };
    assert_eq!(login("Container-admin-1"), 200);
    // Reset on the machine: the new password works, the old one no longer does.
    let out = Command::new(BIN)
        .args(["admin", "reset-password", "admin"])
        .env("BURNCLOUD_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let new = text
        .split("admin: ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(login(&new), 200);
    assert_eq!(login("Container-admin-1"), 401);
}
