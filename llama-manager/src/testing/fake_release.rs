//! A fake llama.cpp release server: GitHub's release JSON (`tag_name`, `assets[]` with
//! `name`, `size`, `digest: "sha256:…"`, `browser_download_url`) and the archives behind
//! it, for `engine install` tests. Asset names are llama.cpp's real ones.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use sha2::Digest as _;

/// How an asset's `digest` field is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    /// The archive's real SHA-256.
    Right,
    /// Another file's SHA-256.
    Wrong,
    /// No `digest` field (older releases).
    Missing,
}

/// One asset: its name, the bytes served, how its digest is given.
#[derive(Debug, Clone)]
pub struct ReleaseAsset {
    pub name: String,
    pub body: Vec<u8>,
    pub digest: Digest,
}

impl ReleaseAsset {
    pub fn new(name: impl Into<String>, body: Vec<u8>, digest: Digest) -> Self {
        ReleaseAsset {
            name: name.into(),
            body,
            digest,
        }
    }
}

/// The asset names of a llama.cpp release (as published for b6xxx–b7xxx, plus the
/// proposed Linux CUDA build left out: upstream has not published one).
pub fn llama_cpp_asset_names(tag: &str) -> Vec<String> {
    [
        "bin-ubuntu-x64.zip",
        "bin-ubuntu-vulkan-x64.zip",
        "bin-ubuntu-arm64.zip",
        "bin-ubuntu-rocm-7.2-x64.tar.gz",
        "bin-win-cpu-x64.zip",
        "bin-win-cpu-arm64.zip",
        "bin-win-cuda-12.4-x64.zip",
        "bin-win-cuda-13.1-x64.zip",
        "bin-win-vulkan-x64.zip",
        "bin-win-hip-radeon-x64.zip",
        "bin-win-sycl-x64.zip",
        "bin-win-opencl-adreno-arm64.zip",
        "bin-macos-arm64.zip",
        "bin-macos-x64.zip",
        "xcframework.zip",
    ]
    .iter()
    .map(|s| format!("llama-{tag}-{s}"))
    .chain([
        "cudart-llama-bin-win-cuda-12.4-x64.zip".to_string(),
        "cudart-llama-bin-win-cuda-13.1-x64.zip".to_string(),
    ])
    .collect()
}

/// A zip as llama.cpp publishes it: `build/bin/<exe>` (mode 755) holding `exe_body`.
pub fn engine_zip(exe_name: &str, exe_body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(&mut bytes));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(0o755);
        w.start_file(format!("build/bin/{exe_name}"), opts)
            .expect("zip entry");
        std::io::Write::write_all(&mut w, exe_body).expect("zip write");
        w.start_file("build/bin/LICENSE", opts).expect("zip entry");
        std::io::Write::write_all(&mut w, b"MIT").expect("zip write");
        w.finish().expect("zip finish");
    }
    bytes
}

struct Served {
    tag: String,
    assets: Vec<ReleaseAsset>,
    base: String,
}

/// The running server (stopped when dropped); `url` is the release JSON's address.
pub struct FakeRelease {
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for FakeRelease {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn release(State(s): State<Arc<Served>>) -> impl IntoResponse {
    let assets: Vec<serde_json::Value> = s
        .assets
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut v = serde_json::json!({
                "id": 1000 + i,
                "name": a.name,
                "size": a.body.len(),
                "content_type": "application/zip",
                "state": "uploaded",
                "browser_download_url": format!("{}/download/{}/{}", s.base, s.tag, a.name),
            });
            let sha = match a.digest {
                Digest::Right => Some(hex::encode(sha2::Sha256::digest(&a.body))),
                Digest::Wrong => Some(hex::encode(sha2::Sha256::digest(b"something else"))),
                Digest::Missing => None,
            };
            if let Some(h) = sha {
                v["digest"] = format!("sha256:{h}").into();
            }
            v
        })
        .collect();
    axum::Json(serde_json::json!({
        "tag_name": s.tag,
        "name": s.tag,
        "draft": false,
        "prerelease": false,
        "assets": assets,
    }))
}

async fn download(
    State(s): State<Arc<Served>>,
    Path((_tag, name)): Path<(String, String)>,
) -> axum::response::Response {
    match s.assets.iter().find(|a| a.name == name) {
        Some(a) => a.body.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

impl FakeRelease {
    /// Serve release `tag` with `assets` on 127.0.0.1 (own thread and runtime).
    pub fn start(tag: &str, assets: Vec<ReleaseAsset>) -> FakeRelease {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let tag = tag.to_string();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("fake release runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind fake release");
                let addr = listener.local_addr().expect("addr");
                addr_tx.send(addr).expect("send addr");
                let served = Arc::new(Served {
                    tag,
                    assets,
                    base: format!("http://{addr}"),
                });
                let app = axum::Router::new()
                    .route("/repos/ggml-org/llama.cpp/releases/latest", get(release))
                    .route("/download/{tag}/{name}", get(download))
                    .with_state(served);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        let addr = addr_rx.recv().expect("fake release started");
        FakeRelease {
            url: format!("http://{addr}/repos/ggml-org/llama.cpp/releases/latest"),
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}
