//! The hub client and downloads against the fake hub: search, details, ranged header
//! reads, and every fault (cut, stall, 429/500, corrupt byte, Range ignored, ETag
//! changed, gated) ending either verified or with a clear reason.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gateway_core::store::Store;
use llama_manager::download::{
    Control, DownloadError, DownloadEvent, DownloadOptions, download_model, unfinished,
};
use llama_manager::hub::{HubClient, SearchQuery, SearchSort};
use llama_manager::library::{Library, Source};
use llama_manager::testing::fake_hub::{FakeFile, FakeHub, FakeRepo, Fault};
use llama_manager::testing::gguf_writer::{TinyLlama, tiny_llama};

fn repos() -> Vec<FakeRepo> {
    let mut tiny = FakeRepo::new(
        "acme/tiny-GGUF",
        vec![
            FakeFile::new("README.md", "# tiny"),
            FakeFile::new("tiny.Q4_K_M.gguf", tiny_llama("tiny q4", 1)),
            FakeFile::new("tiny.Q8_0.gguf", tiny_llama("tiny q8", 2)),
        ],
    );
    tiny.downloads = 500;
    tiny.likes = 3;
    let mut split = FakeRepo::new(
        "acme/split-vision-GGUF",
        vec![
            FakeFile::new("split-F16-00001-of-00002.gguf", tiny_llama("split", 3)),
            FakeFile::new("split-F16-00002-of-00002.gguf", tiny_llama("split", 4)),
            FakeFile::new("mmproj-split-F16.gguf", tiny_llama("proj", 5)),
        ],
    );
    split.downloads = 100;
    split.likes = 30;
    split.last_modified = "2026-06-01T00:00:00.000Z".into();
    let mut gated = FakeRepo::new(
        "bigco/gated-GGUF",
        vec![FakeFile::new("gated.Q4_K_M.gguf", tiny_llama("gated", 6))],
    );
    gated.gated = true;
    let readme_only = FakeRepo::new("acme/no-gguf", vec![FakeFile::new("README.md", "x")]);
    let mut huge = FakeRepo::new(
        "acme/huge-GGUF",
        vec![FakeFile::new("huge.Q4_K_M.gguf", tiny_llama("huge", 7))],
    );
    huge.files[0].declared_size = Some(1 << 50);
    vec![tiny, split, gated, readme_only, huge]
}

fn opts() -> DownloadOptions {
    DownloadOptions {
        max_attempts: 4,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        stall_timeout: Duration::from_secs(1),
        progress_every: Duration::from_millis(50),
        ..Default::default()
    }
}

struct Env {
    _dir: tempfile::TempDir,
    lib: Library,
    hub: FakeHub,
    client: HubClient,
    events: Arc<Mutex<Vec<DownloadEvent>>>,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&gateway_core::store::testing::location(dir.path())).unwrap();
        let lib = Library::new(store, dir.path().join("models"));
        let hub = FakeHub::start(repos());
        let client = HubClient::new(&hub.url, None).unwrap();
        Env {
            _dir: dir,
            lib,
            hub,
            client,
            events: Arc::default(),
        }
    }

    async fn download(&self, spec: &str) -> Result<llama_manager::library::Model, DownloadError> {
        self.download_with(spec, None).await
    }

    async fn download_with(
        &self,
        spec: &str,
        control: Option<tokio::sync::watch::Receiver<Control>>,
    ) -> Result<llama_manager::library::Model, DownloadError> {
        let ev = self.events.clone();
        let on = move |e: &DownloadEvent| ev.lock().unwrap().push(e.clone());
        download_model(&self.lib, &self.client, spec, &opts(), &on, control).await
    }

    fn events(&self) -> Vec<DownloadEvent> {
        self.events.lock().unwrap().clone()
    }

    fn size(&self, repo: &str, file: &str) -> u64 {
        self.data(repo, file).len() as u64
    }

    fn data(&self, repo: &str, file: &str) -> Vec<u8> {
        self.hub.repos_mut(|rs| {
            rs.iter()
                .find(|r| r.id == repo)
                .unwrap()
                .files
                .iter()
                .find(|f| f.path == file)
                .unwrap()
                .data
                .to_vec()
        })
    }

    fn served_total(&self) -> u64 {
        self.hub
            .downloads()
            .iter()
            .map(|s| s.bytes.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }

    fn model_rows(&self) -> i64 {
        self.lib
            .store()
            .with(|c| Ok(c.query_row("SELECT COUNT(*) FROM models", [], |r| r.get(0))?))
            .unwrap()
    }
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn search_sorts_and_pages() {
    let env = Env::new();
    let q = |text: &str, sort| SearchQuery {
        text: text.into(),
        sort,
        limit: 2,
    };
    let p1 = env
        .client
        .search_page(&q("", SearchSort::Downloads), 1)
        .await
        .unwrap();
    // acme/no-gguf has no GGUF file: filtered out by filter=gguf.
    assert_eq!(p1.models.len(), 2);
    assert_eq!(p1.models[0].id, "acme/tiny-GGUF");
    assert_eq!(p1.models[0].downloads, 500);
    assert!(p1.next.is_some());
    let p2 = env
        .client
        .search_page(&q("", SearchSort::Downloads), 2)
        .await
        .unwrap();
    assert_eq!(p2.models.len(), 2);
    assert!(p2.next.is_none());
    let all: Vec<String> = p1
        .models
        .iter()
        .chain(&p2.models)
        .map(|m| m.id.clone())
        .collect();
    assert!(!all.contains(&"acme/no-gguf".to_string()));
    assert_eq!(all.len(), 4);
    let p3 = env
        .client
        .search_page(&q("", SearchSort::Downloads), 3)
        .await
        .unwrap();
    assert!(p3.models.is_empty());
    let likes = env
        .client
        .search_page(&q("acme", SearchSort::Likes), 1)
        .await
        .unwrap();
    assert_eq!(likes.models[0].id, "acme/split-vision-GGUF");
    let recent = env
        .client
        .search_page(&q("GGUF", SearchSort::Recent), 1)
        .await
        .unwrap();
    assert_eq!(recent.models[0].id, "acme/split-vision-GGUF");
    let gated = env
        .client
        .search_page(&q("gated", SearchSort::Downloads), 1)
        .await
        .unwrap();
    assert!(gated.models[0].gated);
    // The request carried the documented parameters.
    let log = env.hub.log();
    assert!(log.iter().any(|s| s.path.starts_with("/api/models?")
        && s.path.contains("filter=gguf")
        && s.path.contains("sort=likes")
        && s.path.contains("limit=2")));
}

#[tokio::test]
async fn repo_details_group_shards_and_projectors_and_read_remote_headers() {
    let env = Env::new();
    let d = env
        .client
        .repo_details("acme/split-vision-GGUF")
        .await
        .unwrap();
    assert_eq!(d.files.variants.len(), 1);
    let v = &d.files.variants[0];
    assert_eq!(v.quant.as_deref(), Some("F16"));
    assert_eq!(v.files.len(), 2);
    assert!(v.complete());
    assert_eq!(d.files.mmproj.len(), 1);
    assert_eq!(v.files[0].sha256.as_ref().unwrap().len(), 64);

    let t = env.client.repo_details("acme/tiny-GGUF").await.unwrap();
    let quants: Vec<_> = t
        .files
        .variants
        .iter()
        .map(|v| v.quant.clone().unwrap())
        .collect();
    assert_eq!(quants, vec!["Q4_K_M", "Q8_0"]);

    // The header, from a ranged read, before any download.
    env.hub.clear_log();
    let s = env
        .client
        .remote_summary("acme/tiny-GGUF", &t.info.sha, "tiny.Q4_K_M.gguf")
        .await
        .unwrap();
    assert_eq!(s.architecture, "llama");
    assert_eq!(s.layers, 2);
    assert_eq!(s.parameters, TinyLlama::default().parameters());
    let cdn = env.hub.downloads();
    assert_eq!(cdn.len(), 1);
    assert_eq!(cdn[0].range.as_deref(), Some("bytes=0-1048575"));

    let err = env.client.repo_details("acme/nope").await.unwrap_err();
    assert!(err.to_string().contains("acme/nope was not found"), "{err}");
    let err = env.client.repo_details("../etc").await.unwrap_err();
    assert!(err.to_string().contains("not a repository id"), "{err}");
    let down = HubClient::new("http://127.0.0.1:9", None).unwrap();
    let err = down.repo_details("acme/tiny-GGUF").await.unwrap_err();
    assert!(
        err.to_string().contains("cannot reach the model hub"),
        "{err}"
    );
}

#[tokio::test]
async fn download_verifies_registers_and_is_idempotent() {
    let env = Env::new();
    let m = env.download("acme/tiny-GGUF:q4_k_m").await.unwrap();
    assert_eq!(m.source, Source::Hub);
    assert_eq!(m.repo.as_deref(), Some("acme/tiny-GGUF"));
    assert_eq!(m.name, "tiny.Q4_K_M");
    assert_eq!(m.summary.name.as_deref(), Some("tiny q4"));
    let data = env.data("acme/tiny-GGUF", "tiny.Q4_K_M.gguf");
    assert_eq!(std::fs::read(&m.path).unwrap(), data);
    assert_eq!(m.files[0].sha256.as_deref().unwrap().len(), 64);
    // resolve redirected to the CDN path, which served the bytes once.
    assert!(
        env.hub
            .log()
            .iter()
            .any(|s| s.path.contains("/resolve/") && s.status == 302)
    );
    assert_eq!(env.served_total(), data.len() as u64);
    assert!(
        env.events()
            .iter()
            .any(|e| matches!(e, DownloadEvent::Verified { .. }))
    );
    assert!(unfinished(&env.lib).unwrap().is_empty());
    assert_eq!(files_under(env.lib.models_dir()), vec!["tiny.Q4_K_M.gguf"]);

    // Again: already in the library, nothing downloaded.
    env.hub.clear_log();
    let again = env
        .download("acme/tiny-GGUF:tiny.Q4_K_M.gguf")
        .await
        .unwrap();
    assert_eq!(again.id, m.id);
    assert!(env.hub.downloads().is_empty());

    // rm deletes downloaded files.
    let (_, deleted) = env.lib.remove(&m.id.to_string()).unwrap();
    assert_eq!(deleted.len(), 1);
    assert!(files_under(env.lib.models_dir()).is_empty());
}

#[tokio::test]
async fn cut_connection_resumes_with_range() {
    let env = Env::new();
    env.hub
        .inject([Fault::CutAfter(100_000), Fault::CutAfter(50_000)]);
    let m = env.download("acme/tiny-GGUF:Q8_0").await.unwrap();
    let size = env.size("acme/tiny-GGUF", "tiny.Q8_0.gguf");
    assert_eq!(
        std::fs::read(&m.path).unwrap(),
        env.data("acme/tiny-GGUF", "tiny.Q8_0.gguf")
    );
    let dl = env.hub.downloads();
    assert_eq!(dl.len(), 3);
    assert_eq!(dl[0].range, None);
    assert_eq!(dl[1].range.as_deref(), Some("bytes=100000-"));
    assert!(dl[1].if_range.is_some(), "If-Range guards the resume");
    assert_eq!(dl[2].range.as_deref(), Some("bytes=150000-"));
    assert_eq!(dl[2].status, 206);
    // Nothing was fetched twice.
    assert_eq!(env.served_total(), size);
    let retries = env
        .events()
        .iter()
        .filter(|e| matches!(e, DownloadEvent::Retrying { .. }))
        .count();
    assert_eq!(retries, 2);
}

#[tokio::test]
async fn stall_is_reported_then_retried() {
    let env = Env::new();
    env.hub.inject([Fault::Stall {
        after: 64_000,
        secs: 4,
    }]);
    let m = env.download("acme/tiny-GGUF:Q4_K_M").await.unwrap();
    assert_eq!(
        std::fs::read(&m.path).unwrap(),
        env.data("acme/tiny-GGUF", "tiny.Q4_K_M.gguf")
    );
    let ev = env.events();
    assert!(
        ev.iter()
            .any(|e| matches!(e, DownloadEvent::Stalled { secs: 1, .. })),
        "{ev:?}"
    );
    let dl = env.hub.downloads();
    assert_eq!(dl[1].range.as_deref(), Some("bytes=64000-"));
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_with_backoff() {
    let env = Env::new();
    env.hub
        .inject([Fault::Status(429), Fault::Status(500), Fault::Status(503)]);
    let t0 = std::time::Instant::now();
    env.download("acme/tiny-GGUF:Q4_K_M").await.unwrap();
    // 429 carried Retry-After: 1.
    assert!(t0.elapsed() >= Duration::from_secs(1));
    let waits: Vec<Duration> = env
        .events()
        .iter()
        .filter_map(|e| match e {
            DownloadEvent::Retrying { wait, .. } => Some(*wait),
            _ => None,
        })
        .collect();
    assert_eq!(waits.len(), 3);
    assert_eq!(waits[0], Duration::from_secs(1));
    assert!(waits[2] > waits[1], "exponential backoff: {waits:?}");

    // Always failing: gives up with the reason, after max_attempts.
    env.hub.inject((0..10).map(|_| Fault::Status(500)));
    let err = env.download("acme/tiny-GGUF:Q8_0").await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("gave up after 4 attempts") && msg.contains("500"),
        "{msg}"
    );
    assert_eq!(env.model_rows(), 1);
}

#[tokio::test]
async fn corrupt_byte_deletes_and_says_so() {
    let env = Env::new();
    env.hub.inject([Fault::CorruptByte(300_000)]);
    let err = env.download("acme/tiny-GGUF:Q4_K_M").await.unwrap_err();
    assert!(matches!(err, DownloadError::Mismatch { .. }));
    let msg = err.to_string();
    assert!(msg.contains("corrupt") && msg.contains("deleted"), "{msg}");
    assert!(
        files_under(env.lib.models_dir()).is_empty(),
        "nothing left behind"
    );
    assert!(unfinished(&env.lib).unwrap().is_empty());
    assert_eq!(env.model_rows(), 0);
    // The next try starts clean and succeeds.
    env.download("acme/tiny-GGUF:Q4_K_M").await.unwrap();
}

#[tokio::test]
async fn ignored_range_restarts_from_zero_and_verifies() {
    let env = Env::new();
    env.hub
        .inject([Fault::CutAfter(200_000), Fault::IgnoreRange]);
    let m = env.download("acme/tiny-GGUF:Q4_K_M").await.unwrap();
    assert_eq!(
        std::fs::read(&m.path).unwrap(),
        env.data("acme/tiny-GGUF", "tiny.Q4_K_M.gguf")
    );
    let ev = env.events();
    assert!(
        ev.iter().any(
            |e| matches!(e, DownloadEvent::Restarted { reason, .. } if reason.contains("ignored"))
        ),
        "{ev:?}"
    );
    assert_eq!(env.hub.downloads()[1].status, 200);
}

#[tokio::test]
async fn changed_etag_restarts_instead_of_mixing_files() {
    let env = Env::new();
    env.hub
        .inject([Fault::CutAfter(200_000), Fault::ChangeEtag]);
    let m = env.download("acme/tiny-GGUF:Q4_K_M").await.unwrap();
    assert_eq!(
        std::fs::read(&m.path).unwrap(),
        env.data("acme/tiny-GGUF", "tiny.Q4_K_M.gguf")
    );
    let dl = env.hub.downloads();
    assert!(dl[1].if_range.is_some());
    assert_eq!(
        dl[1].status, 200,
        "If-Range with the old ETag gets the whole file"
    );
    assert!(
        env.events().iter().any(
            |e| matches!(e, DownloadEvent::Restarted { reason, .. } if reason.contains("ETag"))
        )
    );
}

#[tokio::test]
async fn gated_repositories_need_a_token() {
    let env = Env::new();
    let err = env.download("bigco/gated-GGUF").await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("gated") && msg.contains("HF_TOKEN"), "{msg}");
    assert!(env.hub.downloads().is_empty());

    env.hub.set_token("hf_good");
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&gateway_core::store::testing::location(dir.path())).unwrap();
    let lib = Library::new(store, dir.path().join("models"));
    let wrong = HubClient::new(&env.hub.url, Some("hf_wrong".into())).unwrap();
    let on = |_: &DownloadEvent| {};
    let err = download_model(&lib, &wrong, "bigco/gated-GGUF", &opts(), &on, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("has no access"), "{err}");
    let good = HubClient::new(&env.hub.url, Some("hf_good".into())).unwrap();
    let m = download_model(&lib, &good, "bigco/gated-GGUF", &opts(), &on, None)
        .await
        .unwrap();
    assert_eq!(m.name, "gated.Q4_K_M");
    let auth = env
        .hub
        .log()
        .iter()
        .filter(|s| s.path.contains("/resolve/"))
        .filter_map(|s| s.authorization.clone())
        .collect::<Vec<_>>();
    assert!(auth.contains(&"Bearer hf_good".to_string()));
}

#[tokio::test]
async fn bad_choices_are_explained() {
    let env = Env::new();
    let err = env.download("acme/tiny-GGUF").await.unwrap();
    // Several variants, no selector: Q4_K_M is the default.
    assert_eq!(err.name, "tiny.Q4_K_M");
    let err = env
        .download("acme/tiny-GGUF:Q2_K")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no Q2_K file") && err.contains("Q8_0"),
        "{err}"
    );
    let err = env.download("acme/no-gguf").await.unwrap_err().to_string();
    assert!(err.contains("no GGUF model files"), "{err}");
    let err = env.download("acme/missing").await.unwrap_err().to_string();
    assert!(err.contains("not found"), "{err}");
    let err = env
        .download("acme/split-vision-GGUF:mmproj-split-F16.gguf")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("projector"), "{err}");
    assert_eq!(env.model_rows(), 1);
}

#[tokio::test]
async fn disk_space_is_checked_before_starting() {
    let env = Env::new();
    let err = env.download("acme/huge-GGUF").await.unwrap_err();
    assert!(matches!(err, DownloadError::NoSpace { .. }), "{err}");
    assert!(err.to_string().contains("not enough disk space"), "{err}");
    assert!(env.hub.downloads().is_empty());
    assert!(files_under(env.lib.models_dir()).is_empty());
}

#[tokio::test]
async fn shards_and_projector_are_one_model() {
    let env = Env::new();
    let m = env.download("acme/split-vision-GGUF").await.unwrap();
    assert_eq!(m.name, "split-F16");
    assert_eq!(m.files.len(), 3);
    assert_eq!(m.files[2].role, "mmproj");
    assert!(m.mmproj().is_some());
    assert_eq!(m.summary.parameters, 2 * TinyLlama::default().parameters());
    assert!(m.files.iter().all(|f| f.sha256.is_some()));
    let (_, deleted) = env.lib.remove("split-F16").unwrap();
    assert_eq!(deleted.len(), 3);
}

#[tokio::test]
async fn pause_resume_and_cancel() {
    let env = Env::new();
    env.hub.throttle(Some(300_000));
    let (tx, rx) = tokio::sync::watch::channel(Control::Run);
    let task = {
        let ev = env.events.clone();
        let lib = env.lib.clone();
        let client = env.client.clone();
        tokio::spawn(async move {
            let on = move |e: &DownloadEvent| ev.lock().unwrap().push(e.clone());
            download_model(
                &lib,
                &client,
                "acme/tiny-GGUF:Q4_K_M",
                &opts(),
                &on,
                Some(rx),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    tx.send(Control::Pause).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let part = unfinished(&env.lib).unwrap();
    assert_eq!(part.len(), 1);
    let frozen = part[0].have;
    assert!(frozen > 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(unfinished(&env.lib).unwrap()[0].have, frozen, "paused");
    assert!(
        env.events()
            .iter()
            .any(|e| matches!(e, DownloadEvent::Paused { .. }))
    );
    tx.send(Control::Run).unwrap();
    let m = task.await.unwrap().unwrap();
    assert_eq!(
        std::fs::read(&m.path).unwrap(),
        env.data("acme/tiny-GGUF", "tiny.Q4_K_M.gguf")
    );
    // Progress events came, throttled.
    let progress = env
        .events()
        .iter()
        .filter(|e| matches!(e, DownloadEvent::Progress { .. }))
        .count();
    assert!((2..=60).contains(&progress), "{progress}");

    let (tx, rx) = tokio::sync::watch::channel(Control::Run);
    let task = {
        let lib = env.lib.clone();
        let client = env.client.clone();
        tokio::spawn(async move {
            let on = |_: &DownloadEvent| {};
            download_model(&lib, &client, "acme/tiny-GGUF:Q8_0", &opts(), &on, Some(rx)).await
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    tx.send(Control::Cancel).unwrap();
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, DownloadError::Cancelled), "{err}");
    assert!(unfinished(&env.lib).unwrap().is_empty());
    assert_eq!(files_under(env.lib.models_dir()), vec!["tiny.Q4_K_M.gguf"]);
    assert_eq!(env.model_rows(), 1);
}

#[cfg(unix)]
#[tokio::test]
async fn a_download_into_the_shared_hugging_face_cache_uses_its_layout() {
    let env = Env::new();
    let hub_cache = env._dir.path().join("hf/hub");
    let mut o = opts();
    o.hf_cache = Some(hub_cache.clone());
    let on = |_: &DownloadEvent| {};
    let m = download_model(&env.lib, &env.client, "acme/tiny-GGUF:Q8_0", &o, &on, None)
        .await
        .unwrap();
    let repo = hub_cache.join("models--acme--tiny-GGUF");
    let sha = std::fs::read_to_string(repo.join("refs/main")).unwrap();
    let link = repo.join("snapshots").join(&sha).join("tiny.Q8_0.gguf");
    assert_eq!(m.path, link);
    let target = std::fs::read_link(&link).unwrap();
    let blob_sha = m.files[0].sha256.clone().unwrap();
    assert_eq!(target, Path::new("../../blobs").join(&blob_sha));
    assert_eq!(
        std::fs::read(&link).unwrap(),
        env.data("acme/tiny-GGUF", "tiny.Q8_0.gguf")
    );
    assert!(
        files_under(env.lib.models_dir()).is_empty(),
        "no copy in models/"
    );
    // Another library (or tool) reading that cache finds the same model in place.
    let other_dir = tempfile::tempdir().unwrap();
    let other = Library::new(
        Store::connect(&gateway_core::store::testing::location(other_dir.path())).unwrap(),
        other_dir.path().join("models"),
    );
    let found = other.sync_hf_cache(&hub_cache).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].path, link);
    // Removing it from the library keeps the shared files.
    env.lib.remove(&m.id.to_string()).unwrap();
    assert!(link.exists() && repo.join("blobs").join(&blob_sha).exists());
}
