//! The download queue against the throttled fake hub: the concurrency limit holds (the
//! hub counts the bodies it sends at once), every job ends verified and registered,
//! a cancelled waiting job never reaches the hub, a paused job keeps its place and
//! resumes with Range, one failure does not stop the others and says why.

use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gateway_core::store::Store;
use llama_manager::download::{DownloadEvent, DownloadOptions, unfinished};
use llama_manager::hub::HubClient;
use llama_manager::library::Library;
use llama_manager::queue::{JobId, JobStatus, Queue, QueueError, QueueEvent};
use llama_manager::testing::fake_hub::{FakeFile, FakeHub, FakeRepo, Fault};
use llama_manager::testing::gguf_writer::tiny_llama;

/// Bytes per second per connection: a tiny model (~460 KB) takes about half a second.
const RATE: u64 = 1_000_000;

fn opts() -> DownloadOptions {
    DownloadOptions {
        max_attempts: 4,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        stall_timeout: Duration::from_secs(5),
        progress_every: Duration::from_millis(50),
        ..Default::default()
    }
}

fn repo(i: u32) -> String {
    format!("acme/m{i}-GGUF")
}

struct Env {
    _dir: tempfile::TempDir,
    lib: Library,
    hub: FakeHub,
    queue: Queue,
    rx: Mutex<tokio::sync::mpsc::UnboundedReceiver<QueueEvent>>,
    events: Mutex<Vec<QueueEvent>>,
}

impl Env {
    fn new(limit: usize) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&gateway_core::store::testing::location(dir.path())).unwrap();
        let lib = Library::new(store, dir.path().join("models"));
        let repos = (1..=5)
            .map(|i| {
                FakeRepo::new(
                    &repo(i),
                    vec![FakeFile::new(
                        &format!("m{i}.Q4_K_M.gguf"),
                        tiny_llama(&format!("m{i}"), i.into()),
                    )],
                )
            })
            .collect();
        let hub = FakeHub::start(repos);
        hub.throttle(Some(RATE));
        let client = HubClient::new(&hub.url, None).unwrap();
        let (queue, rx) = Queue::new(lib.clone(), client, opts(), limit).unwrap();
        Env {
            _dir: dir,
            lib,
            hub,
            queue,
            rx: Mutex::new(rx),
            events: Mutex::default(),
        }
    }

    fn data(&self, i: u32) -> Vec<u8> {
        self.hub
            .repos_mut(|rs| rs[(i - 1) as usize].files[0].data.to_vec())
    }

    /// Every event so far (what is on the channel now included).
    fn events(&self) -> Vec<QueueEvent> {
        let mut ev = self.events.lock().unwrap();
        let mut rx = self.rx.lock().unwrap();
        while let Ok(e) = rx.try_recv() {
            ev.push(e);
        }
        ev.clone()
    }

    /// Job ids in the order they got a slot.
    fn started(&self) -> Vec<JobId> {
        self.events()
            .iter()
            .filter_map(|e| match e {
                QueueEvent::Started { job } => Some(*job),
                _ => None,
            })
            .collect()
    }

    /// Hub requests (any kind) for a repository.
    fn hits(&self, i: u32) -> usize {
        let r = repo(i);
        self.hub
            .log()
            .iter()
            .filter(|s| s.path.contains(&r))
            .count()
    }

    /// Body bytes the hub sent for a repository.
    fn served(&self, i: u32) -> u64 {
        let r = repo(i);
        self.hub
            .downloads()
            .iter()
            .filter(|s| s.path.contains(&r))
            .map(|s| s.bytes.load(Ordering::Relaxed))
            .sum()
    }

    async fn until(&self, what: &str, f: impl Fn(&Env) -> bool) {
        let t0 = Instant::now();
        while !f(self) {
            assert!(t0.elapsed() < Duration::from_secs(20), "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn model_rows(&self) -> i64 {
        self.lib
            .store()
            .with(|c| Ok(c.query_row("SELECT COUNT(*) FROM models", [], |r| r.get(0))?))
            .unwrap()
    }
}

fn done(s: &JobStatus) -> &llama_manager::library::Model {
    match s {
        JobStatus::Done(m) => m,
        other => panic!("not done: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_jobs_two_at_a_time_all_verified_and_registered() {
    let env = Env::new(2);
    let ids: Vec<JobId> = (1..=4)
        .map(|i| env.queue.enqueue(&repo(i)).unwrap())
        .collect();
    // Watch the hub while it works: never more than two bodies at once.
    let mut seen = 0;
    let t0 = Instant::now();
    while !env.queue.jobs().iter().all(|j| j.status.is_finished()) {
        let now = env.hub.active_downloads();
        assert!(now <= 2, "{now} downloads at once");
        seen = seen.max(now);
        assert!(t0.elapsed() < Duration::from_secs(30), "queue stuck");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let jobs = env.queue.wait_all().await;
    assert_eq!(
        env.hub.max_concurrent_downloads(),
        2,
        "two at once, not fewer"
    );
    assert_eq!(seen, 2);
    // The first two started first; the others waited in order.
    let started = env.started();
    assert_eq!(started, ids, "{started:?}");
    let ev = env.events();
    let pos = |want: &QueueEvent| ev.iter().position(|e| e == want).unwrap();
    let first_done = ev
        .iter()
        .position(|e| matches!(e, QueueEvent::Finished { .. }))
        .unwrap();
    assert!(pos(&QueueEvent::Started { job: ids[2] }) > first_done);
    for (k, j) in jobs.iter().enumerate() {
        let m = done(&j.status);
        assert_eq!(std::fs::read(&m.path).unwrap(), env.data(k as u32 + 1));
        assert_eq!(m.repo.as_deref(), Some(repo(k as u32 + 1).as_str()));
        // Each job's own events carry its id.
        assert!(ev.iter().any(|e| matches!(e,
            QueueEvent::Download { job, event: DownloadEvent::Verified { file, .. } }
                if *job == j.id && file == &format!("m{}.Q4_K_M.gguf", k + 1))));
        assert!(ev.iter().any(|e| matches!(e,
            QueueEvent::Download { job, event: DownloadEvent::Progress { .. } } if *job == j.id)));
    }
    assert_eq!(env.lib.list().unwrap().len(), 4);
    assert!(unfinished(&env.lib).unwrap().is_empty());
    // Every byte served once.
    let served: u64 = env
        .hub
        .downloads()
        .iter()
        .map(|s| s.bytes.load(Ordering::Relaxed))
        .sum();
    let total: u64 = (1..=4).map(|i| env.data(i).len() as u64).sum();
    assert_eq!(served, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_waiting_job_never_reaches_the_hub() {
    let env = Env::new(1);
    let a = env.queue.enqueue(&repo(1)).unwrap();
    let b = env.queue.enqueue(&repo(2)).unwrap();
    let c = env.queue.enqueue(&repo(3)).unwrap();
    assert_eq!(env.queue.status(b).unwrap(), JobStatus::Queued);
    env.queue.cancel(b).unwrap();
    assert_eq!(env.queue.status(b).unwrap(), JobStatus::Cancelled);
    // A running job cancelled: its partial file and row are deleted.
    env.until("job 3 transfers", |e| e.served(3) > 50_000).await;
    done(&env.queue.status(a).unwrap());
    env.queue.cancel(c).unwrap();
    assert_eq!(env.queue.wait(c).await.unwrap(), JobStatus::Cancelled);
    let jobs = env.queue.wait_all().await;
    done(&jobs[0].status);
    assert_eq!(jobs[1].status, JobStatus::Cancelled);
    assert_eq!(
        env.hits(2),
        0,
        "the cancelled waiting job never reached the hub"
    );
    assert!(env.hits(3) > 0);
    assert!(unfinished(&env.lib).unwrap().is_empty());
    assert!(
        !env.lib
            .models_dir()
            .join("acme--m3-GGUF/m3.Q4_K_M.gguf.part")
            .exists()
    );
    assert_eq!(env.model_rows(), 1);
    let ev = env.events();
    assert!(ev.contains(&QueueEvent::Cancelled { job: b }));
    assert!(ev.contains(&QueueEvent::Cancelled { job: c }));
    assert!(!ev.contains(&QueueEvent::Started { job: b }));

    // Finished or unknown jobs: clear refusals.
    let err = env.queue.cancel(a).unwrap_err();
    assert!(matches!(err, QueueError::Finished { .. }), "{err}");
    assert!(err.to_string().contains("already finished"), "{err}");
    assert_eq!(env.queue.pause(99), Err(QueueError::UnknownJob(99)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_job_keeps_its_place_and_resumes_with_range() {
    let env = Env::new(1);
    let a = env.queue.enqueue(&repo(1)).unwrap();
    let b = env.queue.enqueue(&repo(2)).unwrap();
    let c = env.queue.enqueue(&repo(3)).unwrap();
    // Paused while waiting: skipped, keeps its place.
    env.queue.pause(b).unwrap();
    done(&env.queue.wait(a).await.unwrap());
    env.until("job 3 starts", |e| e.started().contains(&c))
        .await;
    assert_eq!(env.queue.status(b).unwrap(), JobStatus::Paused);
    assert_eq!(env.hits(2), 0);
    // Resumed while the slot is taken: waits.
    env.queue.resume(b).unwrap();
    assert_eq!(env.queue.status(b).unwrap(), JobStatus::Queued);
    // Pausing the running job frees its slot for the next in line (b).
    env.until("job 3 transfers", |e| e.served(3) > 50_000).await;
    env.queue.pause(c).unwrap();
    env.until("job 2 starts", |e| e.started().contains(&b))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let frozen = unfinished(&env.lib)
        .unwrap()
        .into_iter()
        .find(|u| u.repo == repo(3))
        .unwrap()
        .have;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still = unfinished(&env.lib)
        .unwrap()
        .into_iter()
        .find(|u| u.repo == repo(3))
        .unwrap()
        .have;
    assert_eq!(frozen, still, "a paused job does not transfer");
    env.queue.resume(c).unwrap();
    let jobs = env.queue.wait_all().await;
    for (k, j) in jobs.iter().enumerate() {
        let m = done(&j.status);
        assert_eq!(std::fs::read(&m.path).unwrap(), env.data(k as u32 + 1));
    }
    assert_eq!(env.started(), vec![a, c, b, c]);
    // c continued from its partial file: one ranged request from what is on disk.
    let c_dl: Vec<_> = env
        .hub
        .downloads()
        .into_iter()
        .filter(|s| s.path.contains(&repo(3)))
        .collect();
    assert_eq!(c_dl.len(), 2, "{c_dl:?}");
    assert_eq!(
        c_dl[1].range.as_deref(),
        Some(format!("bytes={frozen}-").as_str())
    );
    // Pausing drops the connection, so what was still in the socket is fetched again:
    // at most a few throttled chunks, not the file.
    let served: u64 = c_dl.iter().map(|s| s.bytes.load(Ordering::Relaxed)).sum();
    let size = env.data(3).len() as u64;
    assert!(
        served >= size && served - size <= 64 << 10,
        "served {served} for {size} bytes"
    );
    let ev = env.events();
    assert!(ev.contains(&QueueEvent::Paused { job: b }));
    assert!(ev.contains(&QueueEvent::Resumed { job: c }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failure_does_not_stop_the_others() {
    let env = Env::new(2);
    env.hub.inject([Fault::CorruptByte(1000)]);
    for i in 1..=4 {
        env.queue.enqueue(&repo(i)).unwrap();
    }
    let missing = env.queue.enqueue("acme/missing").unwrap();
    let jobs = env.queue.wait_all().await;
    let failed: Vec<_> = jobs
        .iter()
        .filter_map(|j| match &j.status {
            JobStatus::Failed(r) => Some((j.id, r.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 2, "{jobs:?}");
    let corrupt: Vec<_> = failed.iter().filter(|(id, _)| *id != missing).collect();
    assert_eq!(corrupt.len(), 1);
    let reason = &corrupt[0].1;
    assert!(
        reason.contains("corrupt") && reason.contains("does not match"),
        "{reason}"
    );
    let (_, why) = failed.iter().find(|(id, _)| *id == missing).unwrap();
    assert!(why.contains("acme/missing was not found"), "{why}");
    // The three others are verified and registered; the corrupt one left nothing.
    assert_eq!(
        jobs.iter()
            .filter(|j| matches!(j.status, JobStatus::Done(_)))
            .count(),
        3
    );
    assert_eq!(env.model_rows(), 3);
    assert!(unfinished(&env.lib).unwrap().is_empty());
    let bad = jobs.iter().find(|j| j.id == corrupt[0].0).unwrap();
    let dir = env.lib.models_dir().join(bad.spec.replace('/', "--"));
    assert_eq!(std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0), 0);
    // The Failed event names the spec and the reason.
    assert!(env.events().iter().any(|e| matches!(e,
        QueueEvent::Failed { job, spec, reason } if *job == bad.id && *spec == bad.spec && reason.contains("corrupt"))));
    // Run again: the failed one now succeeds.
    let again = env.queue.enqueue(&bad.spec).unwrap();
    done(&env.queue.wait(again).await.unwrap());
    assert_eq!(env.model_rows(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&gateway_core::store::testing::location(dir.path())).unwrap();
    let lib = Library::new(store, dir.path().join("models"));
    let client = HubClient::new("http://127.0.0.1:9", None).unwrap();
    let err = Queue::new(lib.clone(), client.clone(), opts(), 0).unwrap_err();
    assert!(err.to_string().contains("between 1 and 16"), "{err}");
    let env = Env::new(1);
    assert_eq!(env.queue.enqueue("  "), Err(QueueError::EmptySpec));
    let a = env.queue.enqueue(&repo(1)).unwrap();
    let err = env.queue.enqueue(&format!(" {} ", repo(1))).unwrap_err();
    assert_eq!(
        err,
        QueueError::AlreadyQueued {
            spec: repo(1),
            job: a
        }
    );
    assert!(env.queue.set_limit(17).is_err());
    // Two specs for the same file, at once: one downloads it, the other says why not.
    env.queue.set_limit(2).unwrap();
    let b = env.queue.enqueue(&format!("{}:Q4_K_M", repo(1))).unwrap();
    let (sa, sb) = (
        env.queue.wait(a).await.unwrap(),
        env.queue.wait(b).await.unwrap(),
    );
    let (ok, other) = match (&sa, &sb) {
        (JobStatus::Done(_), o) | (o, JobStatus::Done(_)) => (true, o.clone()),
        _ => (false, sa.clone()),
    };
    assert!(ok, "{sa:?} {sb:?}");
    match other {
        JobStatus::Failed(r) => assert!(r.contains("already being downloaded"), "{r}"),
        // The second one may also find the first already registered.
        JobStatus::Done(_) => {}
        o => panic!("{o:?}"),
    }
    assert_eq!(env.model_rows(), 1);
    assert!(unfinished(&env.lib).unwrap().is_empty());
    drop(lib);
}
