//! A fake Hugging Face hub on 127.0.0.1 speaking the real wire formats: model search
//! with `Link` paging, repository info, the recursive tree with `lfs` SHA-256, `resolve`
//! redirecting (302) to a CDN path that honours `Range`/`If-Range` with 206 and
//! `Content-Range` — plus fault injection for the download paths.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use sha2::{Digest, Sha256};

/// One injected fault, used by the next download (CDN `GET`) request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Send this many bytes of the body, then drop the connection.
    CutAfter(u64),
    /// Send this many bytes, then send nothing for `secs` (then the rest).
    Stall { after: u64, secs: u64 },
    /// Answer with this status (429 carries `Retry-After: 1`).
    Status(u16),
    /// Flip the byte at this absolute offset of the file.
    CorruptByte(u64),
    /// Answer 200 with the whole file even when `Range` was asked for.
    IgnoreRange,
    /// The file's ETag changes from now on (as when the CDN object was replaced).
    ChangeEtag,
}

/// A file in a fake repository.
#[derive(Debug, Clone)]
pub struct FakeFile {
    pub path: String,
    pub data: Bytes,
    /// Size announced in the tree (defaults to the real size), e.g. to test disk space.
    pub declared_size: Option<u64>,
    /// Whether the tree lists it as an LFS file (with `lfs.oid` = SHA-256).
    pub lfs: bool,
}

impl FakeFile {
    pub fn new(path: &str, data: impl Into<Bytes>) -> Self {
        let path = path.to_string();
        let lfs = path.ends_with(".gguf");
        FakeFile {
            path,
            data: data.into(),
            declared_size: None,
            lfs,
        }
    }

    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.data))
    }
}

/// A fake repository.
#[derive(Debug, Clone)]
pub struct FakeRepo {
    pub id: String,
    pub sha: String,
    /// Downloads need a token (`401` without one).
    pub gated: bool,
    pub downloads: u64,
    pub likes: u64,
    pub last_modified: String,
    pub files: Vec<FakeFile>,
}

impl FakeRepo {
    pub fn new(id: &str, files: Vec<FakeFile>) -> Self {
        let sha = hex::encode(Sha256::digest(id.as_bytes()))[..40].to_string();
        FakeRepo {
            id: id.to_string(),
            sha,
            gated: false,
            downloads: 0,
            likes: 0,
            last_modified: "2026-01-01T00:00:00.000Z".into(),
            files,
        }
    }
}

/// One request the fake hub answered.
#[derive(Debug, Clone)]
pub struct Served {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub authorization: Option<String>,
    pub status: u16,
    /// Body bytes written to the socket (for downloads).
    pub bytes: Arc<AtomicU64>,
}

#[derive(Default)]
struct Inner {
    repos: Mutex<Vec<FakeRepo>>,
    faults: Mutex<VecDeque<Fault>>,
    log: Mutex<Vec<Served>>,
    etag_gen: Mutex<HashMap<String, u32>>,
    /// Bytes per second for downloads (`None`: as fast as possible).
    throttle: Mutex<Option<u64>>,
    token: Mutex<Option<String>>,
    /// Download bodies being sent right now, and the most seen at once.
    active: AtomicUsize,
    max_active: AtomicUsize,
}

/// Counts a download body as in flight from its first byte planned until the stream
/// ends or the client goes away (the stream is dropped).
struct InFlight(Arc<Inner>);

impl InFlight {
    fn new(st: Arc<Inner>) -> InFlight {
        let now = st.active.fetch_add(1, Ordering::SeqCst) + 1;
        st.max_active.fetch_max(now, Ordering::SeqCst);
        InFlight(st)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The running fake hub. Dropping it stops the server.
pub struct FakeHub {
    pub url: String,
    inner: Arc<Inner>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl FakeHub {
    /// Start on 127.0.0.1 port 0, on its own thread and runtime (usable from sync and
    /// async tests alike).
    pub fn start(repos: Vec<FakeRepo>) -> FakeHub {
        let inner = Arc::new(Inner::default());
        *lock(&inner.repos) = repos;
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let state = inner.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("fake hub runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind fake hub");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                let app = router(state);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        let addr = addr_rx.recv().expect("fake hub started");
        FakeHub {
            url: format!("http://{addr}"),
            inner,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Queue faults for the next download requests, one per request.
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.inner.faults).extend(faults);
    }

    /// Limit download speed (bytes per second), or lift the limit.
    pub fn throttle(&self, bytes_per_sec: Option<u64>) {
        *lock(&self.inner.throttle) = bytes_per_sec;
    }

    /// Gated repositories accept this token.
    pub fn set_token(&self, token: &str) {
        *lock(&self.inner.token) = Some(token.to_string());
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Served> {
        lock(&self.inner.log).clone()
    }

    /// Download (CDN) requests so far.
    pub fn downloads(&self) -> Vec<Served> {
        self.log()
            .into_iter()
            .filter(|s| s.path.starts_with("/cdn/") && s.method == "GET")
            .collect()
    }

    /// Forget the log (and the most concurrent downloads seen).
    pub fn clear_log(&self) {
        lock(&self.inner.log).clear();
        self.inner.max_active.store(0, Ordering::SeqCst);
    }

    /// Download bodies being sent right now.
    pub fn active_downloads(&self) -> usize {
        self.inner.active.load(Ordering::SeqCst)
    }

    /// The most download bodies sent at the same time since start (or `clear_log`).
    pub fn max_concurrent_downloads(&self) -> usize {
        self.inner.max_active.load(Ordering::SeqCst)
    }

    /// Replace a repository's file (e.g. a new upload).
    pub fn repos_mut<R>(&self, f: impl FnOnce(&mut Vec<FakeRepo>) -> R) -> R {
        f(&mut lock(&self.inner.repos))
    }
}

fn router(state: Arc<Inner>) -> Router {
    Router::new()
        .route("/api/models", get(search))
        .route("/api/models/{org}/{name}", get(info))
        .route("/api/models/{org}/{name}/revision/{rev}", get(info_rev))
        .route("/api/models/{org}/{name}/tree/{rev}", get(tree))
        .route("/{org}/{name}/resolve/{rev}/{*file}", get(resolve))
        .route("/cdn/{org}/{name}/{sha}/{*file}", get(cdn))
        .with_state(state)
}

fn log_request(st: &Inner, method: &Method, path: &str, h: &HeaderMap) -> Arc<AtomicU64> {
    let s = |n: header::HeaderName| h.get(n).and_then(|v| v.to_str().ok()).map(String::from);
    let bytes = Arc::new(AtomicU64::new(0));
    lock(&st.log).push(Served {
        method: method.to_string(),
        path: path.to_string(),
        range: s(header::RANGE),
        if_range: s(header::IF_RANGE),
        authorization: s(header::AUTHORIZATION),
        status: 0,
        bytes: bytes.clone(),
    });
    bytes
}

fn set_status(st: &Inner, status: StatusCode) {
    if let Some(last) = lock(&st.log).last_mut() {
        last.status = status.as_u16();
    }
}

fn hub_error(status: StatusCode, code: &str, msg: &str) -> Response {
    (
        status,
        [("x-error-code", code.to_string())],
        axum::Json(serde_json::json!({ "error": msg })),
    )
        .into_response()
}

fn find_repo(st: &Inner, id: &str) -> Option<FakeRepo> {
    lock(&st.repos).iter().find(|r| r.id == id).cloned()
}

fn model_json(r: &FakeRepo) -> serde_json::Value {
    serde_json::json!({
        "_id": r.sha[..24],
        "id": r.id,
        "modelId": r.id,
        "likes": r.likes,
        "downloads": r.downloads,
        "private": false,
        "gated": if r.gated { serde_json::json!("manual") } else { serde_json::json!(false) },
        "tags": ["gguf", "text-generation"],
        "pipeline_tag": "text-generation",
        "library_name": "gguf",
        "lastModified": r.last_modified,
        "createdAt": r.last_modified,
    })
}

async fn search(
    State(st): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    log_request(&st, req.method(), &req.uri().to_string(), req.headers());
    let needle = q.get("search").cloned().unwrap_or_default().to_lowercase();
    let mut found: Vec<FakeRepo> = lock(&st.repos)
        .iter()
        .filter(|r| r.id.to_lowercase().contains(&needle))
        .filter(|r| {
            q.get("filter")
                .is_none_or(|f| f != "gguf" || r.files.iter().any(|f| f.path.ends_with(".gguf")))
        })
        .cloned()
        .collect();
    match q.get("sort").map(String::as_str) {
        Some("likes") => found.sort_by_key(|r| std::cmp::Reverse(r.likes)),
        Some("lastModified") => {
            found.sort_by(|a, b| b.last_modified.cmp(&a.last_modified));
        }
        _ => found.sort_by_key(|r| std::cmp::Reverse(r.downloads)),
    }
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    let offset: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let page: Vec<serde_json::Value> = found
        .iter()
        .skip(offset)
        .take(limit)
        .map(model_json)
        .collect();
    let mut resp = axum::Json(page).into_response();
    if offset + limit < found.len() {
        let mut next: Vec<(String, String)> =
            q.into_iter().filter(|(k, _)| k != "cursor").collect();
        next.sort();
        next.push(("cursor".into(), (offset + limit).to_string()));
        let qs: Vec<String> = next.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let link = format!("<http://{host}/api/models?{}>; rel=\"next\"", qs.join("&"));
        if let Ok(v) = link.parse() {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    set_status(&st, StatusCode::OK);
    resp
}

async fn info(
    State(st): State<Arc<Inner>>,
    Path((org, name)): Path<(String, String)>,
    req: Request,
) -> Response {
    repo_info(&st, &format!("{org}/{name}"), &req)
}

async fn info_rev(
    State(st): State<Arc<Inner>>,
    Path((org, name, _rev)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    repo_info(&st, &format!("{org}/{name}"), &req)
}

fn repo_info(st: &Inner, id: &str, req: &Request) -> Response {
    log_request(st, req.method(), &req.uri().to_string(), req.headers());
    let Some(r) = find_repo(st, id) else {
        set_status(st, StatusCode::NOT_FOUND);
        return hub_error(
            StatusCode::NOT_FOUND,
            "RepoNotFound",
            "Repository not found",
        );
    };
    let mut v = model_json(&r);
    v["sha"] = r.sha.clone().into();
    v["siblings"] = r
        .files
        .iter()
        .map(|f| serde_json::json!({ "rfilename": f.path }))
        .collect();
    set_status(st, StatusCode::OK);
    axum::Json(v).into_response()
}

async fn tree(
    State(st): State<Arc<Inner>>,
    Path((org, name, _rev)): Path<(String, String, String)>,
    req: Request,
) -> Response {
    log_request(&st, req.method(), &req.uri().to_string(), req.headers());
    let Some(r) = find_repo(&st, &format!("{org}/{name}")) else {
        set_status(&st, StatusCode::NOT_FOUND);
        return hub_error(
            StatusCode::NOT_FOUND,
            "RepoNotFound",
            "Repository not found",
        );
    };
    let entries: Vec<serde_json::Value> = r
        .files
        .iter()
        .map(|f| {
            let size = f.declared_size.unwrap_or(f.data.len() as u64);
            let git_oid = hex::encode(Sha256::digest(f.path.as_bytes()))[..40].to_string();
            let mut e = serde_json::json!({
                "type": "file", "oid": git_oid, "size": size, "path": f.path,
            });
            if f.lfs {
                e["lfs"] = serde_json::json!({
                    "oid": f.sha256(), "size": size, "pointerSize": 134
                });
            }
            e
        })
        .collect();
    set_status(&st, StatusCode::OK);
    axum::Json(entries).into_response()
}

fn authorized(st: &Inner, h: &HeaderMap) -> bool {
    let want = lock(&st.token).clone();
    let got = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    matches!((want, got), (Some(w), Some(g)) if w == g)
}

fn etag_of(st: &Inner, f: &FakeFile) -> String {
    let g = lock(&st.etag_gen).get(&f.path).copied().unwrap_or(0);
    format!("\"{}-{g}\"", &f.sha256()[..16])
}

async fn resolve(
    State(st): State<Arc<Inner>>,
    Path((org, name, rev, file)): Path<(String, String, String, String)>,
    req: Request,
) -> Response {
    log_request(&st, req.method(), &req.uri().to_string(), req.headers());
    let Some(r) = find_repo(&st, &format!("{org}/{name}")) else {
        set_status(&st, StatusCode::NOT_FOUND);
        return hub_error(
            StatusCode::NOT_FOUND,
            "RepoNotFound",
            "Repository not found",
        );
    };
    if r.gated && !authorized(&st, req.headers()) {
        set_status(&st, StatusCode::UNAUTHORIZED);
        return hub_error(
            StatusCode::UNAUTHORIZED,
            "GatedRepo",
            &format!(
                "Access to model {} is restricted. You must have access to it and be authenticated to access it. Please log in.",
                r.id
            ),
        );
    }
    if rev != "main" && rev != r.sha {
        set_status(&st, StatusCode::NOT_FOUND);
        return hub_error(StatusCode::NOT_FOUND, "RevisionNotFound", "Invalid rev id");
    }
    let Some(f) = r.files.iter().find(|f| f.path == file) else {
        set_status(&st, StatusCode::NOT_FOUND);
        return hub_error(StatusCode::NOT_FOUND, "EntryNotFound", "Entry not found");
    };
    set_status(&st, StatusCode::FOUND);
    let location = format!("/cdn/{}/{}/{}", r.id, r.sha, f.path);
    (
        StatusCode::FOUND,
        [
            (header::LOCATION.as_str(), location),
            ("x-repo-commit", r.sha.clone()),
            ("x-linked-etag", etag_of(&st, f)),
            ("x-linked-size", f.data.len().to_string()),
        ],
    )
        .into_response()
}

/// `bytes=START-` or `bytes=START-END` (inclusive).
fn parse_range(v: &str, len: u64) -> Option<(u64, u64)> {
    let spec = v.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.parse().ok()?;
    let end: u64 = if b.is_empty() {
        len.checked_sub(1)?
    } else {
        b.parse::<u64>().ok()?.min(len.checked_sub(1)?)
    };
    (start <= end).then_some((start, end))
}

async fn cdn(
    State(st): State<Arc<Inner>>,
    Path((org, name, _sha, file)): Path<(String, String, String, String)>,
    req: Request,
) -> Response {
    let counter = log_request(&st, req.method(), &req.uri().to_string(), req.headers());
    let Some(r) = find_repo(&st, &format!("{org}/{name}")) else {
        set_status(&st, StatusCode::NOT_FOUND);
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(f) = r.files.iter().find(|f| f.path == file).cloned() else {
        set_status(&st, StatusCode::NOT_FOUND);
        return StatusCode::NOT_FOUND.into_response();
    };
    let fault = if req.method() == Method::GET {
        lock(&st.faults).pop_front()
    } else {
        None
    };
    if let Some(Fault::ChangeEtag) = fault {
        *lock(&st.etag_gen).entry(f.path.clone()).or_insert(0) += 1;
    }
    if let Some(Fault::Status(code)) = fault {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        set_status(&st, status);
        let mut resp = (status, "injected failure").into_response();
        if code == 429 {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        return resp;
    }
    let etag = etag_of(&st, &f);
    let len = f.data.len() as u64;
    let h = req.headers();
    let mut range = h
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, len));
    if let Some(ir) = h.get(header::IF_RANGE).and_then(|v| v.to_str().ok())
        && ir != etag
    {
        range = None; // the representation changed: send it whole
    }
    if matches!(fault, Some(Fault::IgnoreRange)) {
        range = None;
    }
    let (status, start, end) = match range {
        Some(Some((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e + 1),
        Some(None) => {
            set_status(&st, StatusCode::RANGE_NOT_SATISFIABLE);
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{len}"))],
            )
                .into_response();
        }
        None => (StatusCode::OK, 0, len),
    };
    set_status(&st, status);
    let mut headers = vec![
        (header::ETAG, etag),
        (header::ACCEPT_RANGES, "bytes".to_string()),
        (header::CONTENT_LENGTH, (end - start).to_string()),
        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
    ];
    if status == StatusCode::PARTIAL_CONTENT {
        headers.push((
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", end - 1),
        ));
    }
    let mut resp = Response::builder().status(status);
    for (k, v) in headers {
        resp = resp.header(k, v);
    }
    if req.method() == Method::HEAD {
        return resp.body(Body::empty()).unwrap_or_default();
    }
    let throttle = *lock(&st.throttle);
    let plan = Plan {
        _in_flight: InFlight::new(st.clone()),
        data: f.data.clone(),
        pos: start,
        end,
        fault,
        sent: 0,
        counter,
        throttle,
    };
    let stream = futures_util::stream::unfold(plan, next_chunk);
    resp.body(Body::from_stream(stream)).unwrap_or_default()
}

struct Plan {
    _in_flight: InFlight,
    data: Bytes,
    pos: u64,
    end: u64,
    fault: Option<Fault>,
    sent: u64,
    counter: Arc<AtomicU64>,
    throttle: Option<u64>,
}

async fn next_chunk(mut p: Plan) -> Option<(Result<Bytes, std::io::Error>, Plan)> {
    if p.pos >= p.end {
        return None;
    }
    let mut chunk = if p.throttle.is_some() {
        16 << 10
    } else {
        1 << 20
    };
    match p.fault {
        Some(Fault::CutAfter(n)) => {
            if p.sent >= n {
                // Let what was sent reach the client before the connection drops.
                tokio::time::sleep(Duration::from_millis(100)).await;
                p.pos = p.end;
                return Some((Err(std::io::Error::other("injected cut")), p));
            }
            chunk = chunk.min(n - p.sent);
        }
        Some(Fault::Stall { after, secs }) => {
            if p.sent >= after {
                tokio::time::sleep(Duration::from_secs(secs)).await;
                p.fault = None;
            } else {
                chunk = chunk.min(after - p.sent);
            }
        }
        _ => {}
    }
    if let Some(rate) = p.throttle {
        tokio::time::sleep(Duration::from_secs_f64(chunk as f64 / rate.max(1) as f64)).await;
    }
    let n = chunk.min(p.end - p.pos);
    let mut bytes = p.data.slice(p.pos as usize..(p.pos + n) as usize);
    if let Some(Fault::CorruptByte(at)) = p.fault
        && (p.pos..p.pos + n).contains(&at)
    {
        let mut v = bytes.to_vec();
        v[(at - p.pos) as usize] ^= 0xFF;
        bytes = Bytes::from(v);
    }
    p.pos += n;
    p.sent += n;
    p.counter.fetch_add(n, Ordering::Relaxed);
    Some((Ok(bytes), p))
}
