//! Download throughput from the local fake hub vs `curl` on the same file.
//!
//! `cargo run --release -p llama-manager --features test-support --example bench_download [MiB]`

use std::time::Instant;

use gateway_core::store::Store;
use llama_manager::download::{DownloadOptions, FileJob, download_file};
use llama_manager::hub::HubClient;
use llama_manager::hub::files::HubFile;
use llama_manager::testing::fake_hub::{FakeFile, FakeHub, FakeRepo};

#[tokio::main]
async fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(256);
    let mut data = vec![0u8; mib << 20];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let file = FakeFile::new("bench.gguf", data);
    let sha = file.sha256();
    let repo = FakeRepo::new("bench/bench-GGUF", vec![file]);
    let rev = repo.sha.clone();
    let hub = FakeHub::start(vec![repo]);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db")).expect("store");
    let client = HubClient::new(&hub.url, None).expect("client");
    let size = (mib << 20) as u64;
    let url = client
        .resolve_url("bench/bench-GGUF", &rev, "bench.gguf")
        .expect("url");
    let mut ours = Vec::new();
    let mut curl = Vec::new();
    for round in 0..3 {
        let dest = dir.path().join(format!("ours-{round}.gguf"));
        let job = FileJob {
            repo: "bench/bench-GGUF".into(),
            revision: rev.clone(),
            file: HubFile {
                path: "bench.gguf".into(),
                size,
                sha256: Some(sha.clone()),
            },
            dest: dest.clone(),
        };
        let t = Instant::now();
        download_file(
            &client,
            &store,
            &job,
            &DownloadOptions::default(),
            &|_| {},
            None,
        )
        .await
        .expect("download");
        ours.push(size as f64 / t.elapsed().as_secs_f64() / 1e6);
        std::fs::remove_file(&dest).ok();

        let out = dir.path().join(format!("curl-{round}.gguf"));
        let t = Instant::now();
        let st = std::process::Command::new("curl")
            .args(["-sSfL", "-o"])
            .arg(&out)
            .arg(url.as_str())
            .status()
            .expect("curl runs");
        assert!(st.success());
        curl.push(size as f64 / t.elapsed().as_secs_f64() / 1e6);
        std::fs::remove_file(&out).ok();
    }
    let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    let med = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    println!(
        "{mib} MiB: burncloud (resumable, SHA-256 verified) median {:.0} MB/s best {:.0}; curl median {:.0} MB/s best {:.0}; ratio of medians {:.2}",
        med(&mut ours.clone()),
        best(&ours),
        med(&mut curl.clone()),
        best(&curl),
        med(&mut ours) / med(&mut curl)
    );
}
