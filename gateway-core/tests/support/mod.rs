//! Test harness: a real gateway on 127.0.0.1:0 with a temporary SQLite file.
#![allow(dead_code)]

pub mod fake_anthropic;
pub mod fake_gemini;
pub mod fake_openai;
pub mod fake_vertex;

use std::net::SocketAddr;
use std::time::Duration;

use gateway_core::{Config, Gateway, ServeHandle};
use reqwest::StatusCode;
use serde_json::{Value, json};

pub struct TestGateway {
    pub addr: SocketAddr,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
    gateway: Option<Gateway>,
    handle: Option<ServeHandle>,
}

/// Short timeouts so fault tests run fast.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut c = Config::for_data_dir(dir, 0);
    c.database = gateway_core::store::testing::location(dir);
    c.relay.connect_timeout = Duration::from_millis(500);
    c.relay.first_byte_timeout = Duration::from_millis(800);
    c.relay.idle_timeout = Duration::from_millis(800);
    c.relay.breaker_cooldown = Duration::from_millis(300);
    c.relay.breaker_min_errors = 3;
    c
}

impl TestGateway {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        tweak(&mut config);
        Self::start_in(dir, config).await
    }

    /// A gateway with registration opened: most tests register several users. Tests of
    /// the shipped defaults use [`TestGateway::start_as_shipped`].
    pub async fn start_in(dir: tempfile::TempDir, config: Config) -> Self {
        let gw = Self::start_as_shipped_in(dir, config).await;
        gw.state()
            .store
            .with(|c| {
                gateway_core::store::governance::update(
                    c,
                    gateway_core::store::governance::GovernanceChange {
                        registration: Some(gateway_core::store::governance::Registration::Open),
                        ..Default::default()
                    },
                )
            })
            .expect("registration opened");
        gw
    }

    /// A gateway exactly as a new install starts (registration closed).
    pub async fn start_as_shipped() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = test_config(dir.path());
        Self::start_as_shipped_in(dir, config).await
    }

    pub async fn start_as_shipped_in(dir: tempfile::TempDir, config: Config) -> Self {
        let gateway = Gateway::open(config).await.expect("gateway opens");
        let handle = gateway
            .serve_on("127.0.0.1:0".parse().unwrap())
            .await
            .expect("gateway binds");
        let addr = handle.local_addr();
        TestGateway {
            addr,
            base: format!("http://{addr}"),
            dir,
            client: reqwest::Client::new(),
            gateway: Some(gateway),
            handle: Some(handle),
        }
    }

    pub fn state(&self) -> &std::sync::Arc<gateway_core::AppState> {
        self.gateway.as_ref().unwrap().state()
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut rb = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = rb.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, token, Some(&body.to_string()))
            .await
    }
    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PUT, path, token, Some(&body.to_string()))
            .await
    }
    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, token, None).await
    }
    pub async fn delete(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.send(reqwest::Method::DELETE, path, token, None).await
    }

    /// Register a user, returning the JWT.
    pub async fn register(&self, username: &str) -> String {
        let (s, v) = self
            .post("/api/auth/register", None, json!({"username": username, "password": "YourSecurePassword!", "email": format!("{username}@example.com")}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["data"]["token"].as_str().unwrap().to_string()
    }

    /// Add a channel; returns its id.
    pub async fn add_channel(&self, admin: &str, body: Value) -> i64 {
        let (s, v) = self.post("/console/api/channel", Some(admin), body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["data"]["id"].as_i64().unwrap()
    }

    /// An OpenAI-type channel pointing at `addr` serving `models`.
    pub async fn add_openai_channel(
        &self,
        admin: &str,
        name: &str,
        addr: SocketAddr,
        models: &str,
        priority: i64,
        weight: i64,
    ) -> i64 {
        self.add_channel(
            admin,
            json!({"name": name, "type": 1, "key": format!("sk-upstream-{name}-0123456789"), "base_url": format!("http://{addr}"), "models": models, "group": "default", "weight": weight, "priority": priority}),
        )
        .await
    }

    /// Create a token; returns (id, key).
    pub async fn create_token(&self, jwt: &str, body: Value) -> (i64, String) {
        let (s, v) = self.post("/console/api/tokens", Some(jwt), body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        (
            v["data"]["id"].as_i64().unwrap(),
            v["data"]["key"].as_str().unwrap().to_string(),
        )
    }

    /// Wait for the usage writer to commit everything queued so far.
    /// Everything the database holds, as bytes: the SQLite file and its WAL, or every row
    /// of every table of the PostgreSQL database as text.
    pub fn database_contents(&self) -> Vec<Vec<u8>> {
        match self.state().store.location() {
            gateway_core::store::Location::Sqlite(path) => {
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                vec![
                    std::fs::read(path).unwrap(),
                    std::fs::read(wal).unwrap_or_default(),
                ]
            }
            gateway_core::store::Location::Postgres { .. } => self
                .state()
                .store
                .with(|c| {
                    let tables: Vec<String> = c.query_all(
                        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
                        [],
                        |r| r.get(0),
                    )?;
                    let mut out = Vec::new();
                    for t in tables {
                        let rows: Vec<String> = c.query_all(
                            &format!("SELECT t::text FROM \"{t}\" t"),
                            [],
                            |r| r.get(0),
                        )?;
                        out.push(rows.join("\n").into_bytes());
                    }
                    Ok(out)
                })
                .unwrap(),
        }
    }

    pub async fn flush(&self) {
        self.state().flush_usage().await;
    }

    /// Stop gracefully; the data dir is handed back so its database can be inspected.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(h) = self.handle.take() {
            h.stop(Duration::from_secs(2)).await;
        }
        if let Some(g) = self.gateway.take() {
            g.shutdown().await;
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}
