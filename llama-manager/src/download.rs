//! Downloads users can trust: HTTP Range resume (after a dropped connection and after
//! the process was killed: the `.part` file and its row in `model_downloads` survive),
//! `If-Range` on the ETag, retry with exponential backoff, stall detection, pause and
//! cancel, SHA-256 verified against the hub's `lfs.oid` before anything is registered,
//! a disk space check before starting, and throttled progress events.
//!
//! Writing and hashing run on a blocking thread fed through a channel, so the network
//! side never waits on the disk or the hash.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gateway_core::store::db::{OptionalExtension, params};
use gateway_core::store::{Store, StoreError, now_secs};
use reqwest::{StatusCode, header};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::hub::client::{content_range_start, content_range_total};
use crate::hub::files::{HubFile, group};
use crate::hub::{HubClient, HubError, parse_spec, pick_mmproj, pick_variant};
use crate::library::{Library, LibraryError, Model, ModelFile, NewModel, Source, default_name};

/// Knobs (the defaults suit real networks; tests shorten them).
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// Consecutive failed attempts (without any progress) before giving up.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// No bytes for this long = stalled (reported, then retried).
    pub stall_timeout: Duration,
    /// At most one progress event per this interval.
    pub progress_every: Duration,
    /// Download into this Hugging Face hub cache, in its layout (`blobs/<sha256>`,
    /// `snapshots/<rev>/<file>` links, `refs/main`), so other tools reuse the files;
    /// None: `<data dir>/models`.
    pub hf_cache: Option<PathBuf>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            max_attempts: 8,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(30),
            progress_every: Duration::from_millis(250),
            hf_cache: None,
        }
    }
}

impl DownloadOptions {
    /// Defaults, overridden by `BURNCLOUD_DOWNLOAD_STALL_SECS`,
    /// `BURNCLOUD_DOWNLOAD_RETRIES` and `BURNCLOUD_DOWNLOAD_BACKOFF_MS`.
    pub fn from_env() -> Self {
        let mut o = DownloadOptions::default();
        let num = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let Some(s) = num("BURNCLOUD_DOWNLOAD_STALL_SECS") {
            o.stall_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(n) = num("BURNCLOUD_DOWNLOAD_RETRIES") {
            o.max_attempts = n.clamp(1, 1000) as u32;
        }
        if let Some(ms) = num("BURNCLOUD_DOWNLOAD_BACKOFF_MS") {
            o.backoff_base = Duration::from_millis(ms);
        }
        if std::env::var("BURNCLOUD_HF_CACHE_DOWNLOADS")
            .is_ok_and(|v| matches!(v.trim(), "1" | "true" | "yes" | "on"))
        {
            o.hf_cache = crate::library::hf_cache_dir();
        }
        o
    }
}

/// What a download is doing, for progress bars and the UI.
#[derive(Debug, Clone, PartialEq)]
pub enum DownloadEvent {
    Started {
        file: String,
        total: u64,
        resumed_from: u64,
    },
    /// Throttled to a few per second.
    Progress {
        file: String,
        done: u64,
        total: u64,
        bytes_per_sec: u64,
        eta_secs: Option<u64>,
    },
    Stalled {
        file: String,
        secs: u64,
    },
    Retrying {
        file: String,
        attempt: u32,
        max: u32,
        wait: Duration,
        reason: String,
    },
    /// The partial file could not be continued and was started over.
    Restarted {
        file: String,
        reason: String,
    },
    Paused {
        file: String,
    },
    Verified {
        file: String,
        sha256: String,
    },
}

impl fmt::Display for DownloadEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownloadEvent::Started {
                file,
                total,
                resumed_from,
            } => write!(f, "{file}: starting at {resumed_from} of {total} bytes"),
            DownloadEvent::Progress {
                file, done, total, ..
            } => write!(f, "{file}: {done} of {total} bytes"),
            DownloadEvent::Stalled { file, secs } => {
                write!(f, "{file}: no data for {secs}s, reconnecting")
            }
            DownloadEvent::Retrying {
                file,
                attempt,
                max,
                wait,
                reason,
            } => write!(
                f,
                "{file}: {reason}; retry {attempt}/{max} in {:.1}s",
                wait.as_secs_f64()
            ),
            DownloadEvent::Restarted { file, reason } => {
                write!(f, "{file}: {reason}; starting this file over")
            }
            DownloadEvent::Paused { file } => write!(f, "{file}: paused"),
            DownloadEvent::Verified { file, sha256 } => {
                write!(
                    f,
                    "{file}: SHA-256 verified ({})",
                    &sha256[..sha256.len().min(12)]
                )
            }
        }
    }
}

/// Pause / resume / cancel, sent through a `watch` channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Run,
    Pause,
    Cancel,
}

/// Why a download did not finish.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error("{repo}: {reason}")]
    Choice { repo: String, reason: String },
    #[error(
        "not enough disk space in {dir}: the download needs {need} bytes more, {have} are free"
    )]
    NoSpace { dir: String, need: u64, have: u64 },
    #[error(
        "{file} is corrupt: SHA-256 {got} does not match the hub's {expected}; the downloaded file was deleted, run the download again"
    )]
    Mismatch {
        file: String,
        expected: String,
        got: String,
    },
    #[error(
        "{file}: gave up after {attempts} attempts: {last} (the partial file is kept; run the download again to resume)"
    )]
    GaveUp {
        file: String,
        attempts: u32,
        last: String,
    },
    #[error("cancelled; the partial files were deleted")]
    Cancelled,
    #[error("{file} is already being downloaded by another job")]
    Busy { file: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Library(#[from] LibraryError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DownloadError + '_ {
    move |source| DownloadError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Event sink.
pub type OnEvent<'a> = &'a (dyn Fn(&DownloadEvent) + Send + Sync);

/// An unfinished download (a `.part` file and its resume state).
#[derive(Debug, Clone, PartialEq)]
pub struct Unfinished {
    pub repo: String,
    pub file: String,
    pub part_path: PathBuf,
    pub size: u64,
    /// Bytes already on disk.
    pub have: u64,
}

/// Unfinished downloads, for `model list` and the UI.
pub fn unfinished(lib: &Library) -> Result<Vec<Unfinished>, StoreError> {
    lib.store().with(|c| {
        let rows = c
            .prepare(
                "SELECT repo, file, part_path, size_bytes FROM model_downloads ORDER BY updated_at",
            )?
            .query_map([], |r| {
                Ok(Unfinished {
                    repo: r.get(0)?,
                    file: r.get(1)?,
                    part_path: PathBuf::from(r.get::<_, String>(2)?),
                    size: r.get::<_, i64>(3)? as u64,
                    have: 0,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .map(|mut u| {
                u.have = std::fs::metadata(&u.part_path)
                    .map(|m| m.len())
                    .unwrap_or(0);
                u
            })
            .collect())
    })
}

/// A file to fetch.
#[derive(Debug, Clone)]
pub struct FileJob {
    pub repo: String,
    pub revision: String,
    pub file: HubFile,
    pub dest: PathBuf,
}

impl FileJob {
    pub fn part_path(&self) -> PathBuf {
        let mut s = self.dest.clone().into_os_string();
        s.push(".part");
        PathBuf::from(s)
    }
}

struct ResumeRow {
    sha256: String,
    size: u64,
    etag: Option<String>,
}

fn load_row(store: &Store, part: &Path) -> Result<Option<ResumeRow>, StoreError> {
    let key = part.to_string_lossy().into_owned();
    store.with(move |c| {
        Ok(c.query_row(
            "SELECT sha256, size_bytes, etag FROM model_downloads WHERE part_path = ?1",
            [key],
            |r| {
                Ok(ResumeRow {
                    sha256: r.get(0)?,
                    size: r.get::<_, i64>(1)? as u64,
                    etag: r.get(2)?,
                })
            },
        )
        .optional()?)
    })
}

fn save_row(store: &Store, job: &FileJob, etag: Option<&str>) -> Result<(), StoreError> {
    let (part, repo, file, rev) = (
        job.part_path().to_string_lossy().into_owned(),
        job.repo.clone(),
        job.file.path.clone(),
        job.revision.clone(),
    );
    let sha = job.file.sha256.clone().unwrap_or_default();
    let size = job.file.size as i64;
    let etag = etag.map(str::to_string);
    store.with(move |c| {
        c.execute(
            "INSERT INTO model_downloads (part_path, repo, file, revision, sha256, size_bytes, etag, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT(part_path) DO UPDATE SET repo = ?2, file = ?3, revision = ?4, sha256 = ?5, \
             size_bytes = ?6, etag = ?7, updated_at = ?8",
            params![part, repo, file, rev, sha, size, etag, now_secs()],
        )?;
        Ok(())
    })
}

fn delete_row(store: &Store, part: &Path) -> Result<(), StoreError> {
    let key = part.to_string_lossy().into_owned();
    store.with(move |c| {
        c.execute("DELETE FROM model_downloads WHERE part_path = ?1", [key])?;
        Ok(())
    })
}

/// Hash what is already in the `.part` file.
fn hash_prefix(path: &Path) -> std::io::Result<(Sha256, u64)> {
    let mut h = Sha256::new();
    let mut n = 0u64;
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((h, 0)),
        Err(e) => return Err(e),
    };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            return Ok((h, n));
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
}

/// The disk writer: appends and hashes on a blocking thread.
struct Sink {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    task: tokio::task::JoinHandle<std::io::Result<(Sha256, std::fs::File)>>,
}

impl Sink {
    fn start(file: std::fs::File, mut hasher: Sha256) -> Sink {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(64);
        let task = tokio::task::spawn_blocking(move || {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            while let Some(b) = rx.blocking_recv() {
                hasher.update(&b);
                w.write_all(&b)?;
            }
            let file = w.into_inner().map_err(|e| e.into_error())?;
            Ok((hasher, file))
        });
        Sink { tx, task }
    }

    async fn finish(self) -> std::io::Result<(Sha256, std::fs::File)> {
        drop(self.tx);
        self.task
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
    }
}

enum Attempt {
    Done,
    /// Failed; `progressed` says whether bytes arrived (resets the failure count).
    Retry {
        reason: String,
        progressed: bool,
        wait: Option<Duration>,
    },
}

fn open_part(part: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true);
    if truncate {
        o.write(true).truncate(true);
    } else {
        o.append(true);
    }
    o.open(part)
}

/// `.part` files this process is writing: two jobs (e.g. `REPO` and `REPO:Q4_K_M` in one
/// queue) never append to the same file.
static BUSY: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

struct BusyGuard(PathBuf);

impl BusyGuard {
    fn take(part: &Path) -> Option<BusyGuard> {
        let mut busy = BUSY.lock().unwrap_or_else(|p| p.into_inner());
        if busy.iter().any(|p| p == part) {
            return None;
        }
        busy.push(part.to_path_buf());
        Some(BusyGuard(part.to_path_buf()))
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        BUSY.lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|p| *p != self.0);
    }
}

/// Download one file to `job.dest`, resuming its `.part`, verifying its SHA-256.
pub async fn download_file(
    client: &HubClient,
    store: &Store,
    job: &FileJob,
    opts: &DownloadOptions,
    on_event: OnEvent<'_>,
    mut control: Option<watch::Receiver<Control>>,
) -> Result<String, DownloadError> {
    let part = job.part_path();
    let name = job.file.path.clone();
    let _busy = BusyGuard::take(&part).ok_or_else(|| DownloadError::Busy { file: name.clone() })?;
    let total = job.file.size;
    let expected = job.file.sha256.clone();
    if let Some(dir) = job.dest.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    // Resume state: only a `.part` started for the same content is continued.
    let mut etag: Option<String> = None;
    match load_row(store, &part)? {
        Some(row) if Some(&row.sha256) == expected.as_ref() && row.size == total => {
            etag = row.etag;
        }
        Some(_) => {
            let _ = std::fs::remove_file(&part);
            on_event(&DownloadEvent::Restarted {
                file: name.clone(),
                reason: "the hub's file changed since the partial download".into(),
            });
        }
        None => {}
    }
    save_row(store, job, etag.as_deref())?;
    let p2 = part.clone();
    let (mut hasher, mut have) = tokio::task::spawn_blocking(move || hash_prefix(&p2))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r)
        .map_err(io_err(&part))?;
    if have > total {
        hasher = Sha256::new();
        have = 0;
        open_part(&part, true).map_err(io_err(&part))?;
    }
    on_event(&DownloadEvent::Started {
        file: name.clone(),
        total,
        resumed_from: have,
    });
    let url = client.resolve_url(&job.repo, &job.revision, &job.file.path)?;
    let mut failures = 0u32;
    let mut last_progress = Instant::now();
    let mut window = (Instant::now(), have);
    let mut rate = 0u64;
    loop {
        // Pause / cancel between attempts.
        if let Some(c) = control.as_mut() {
            let mut announced = false;
            loop {
                let state = *c.borrow_and_update();
                match state {
                    Control::Run => break,
                    Control::Cancel => {
                        let _ = std::fs::remove_file(&part);
                        delete_row(store, &part)?;
                        return Err(DownloadError::Cancelled);
                    }
                    Control::Pause => {
                        if !announced {
                            on_event(&DownloadEvent::Paused { file: name.clone() });
                            announced = true;
                        }
                        if c.changed().await.is_err() {
                            break;
                        }
                    }
                }
            }
        }
        if have == total {
            break;
        }
        let mut rb = client.get(url.clone());
        if have > 0 {
            rb = rb.header(header::RANGE, format!("bytes={have}-"));
            if let Some(e) = &etag {
                rb = rb.header(header::IF_RANGE, e.as_str());
            }
        }
        let outcome = match rb.send().await {
            Err(e) => Attempt::Retry {
                reason: format!("connection failed: {}", client.unreachable(&e)),
                progressed: false,
                wait: None,
            },
            Ok(resp) => {
                let status = resp.status();
                if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                    let wait = resp
                        .headers()
                        .get(header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.min(300)));
                    Attempt::Retry {
                        reason: format!("the hub answered {status}"),
                        progressed: false,
                        wait,
                    }
                } else if status == StatusCode::RANGE_NOT_SATISFIABLE {
                    on_event(&DownloadEvent::Restarted {
                        file: name.clone(),
                        reason: "the server refused to resume".into(),
                    });
                    open_part(&part, true).map_err(io_err(&part))?;
                    hasher = Sha256::new();
                    have = 0;
                    etag = None;
                    continue;
                } else {
                    client.check_file_status(status, &job.repo, &job.file.path)?;
                    let new_etag = resp
                        .headers()
                        .get(header::ETAG)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let partial = status == StatusCode::PARTIAL_CONTENT;
                    let start = if partial {
                        content_range_start(resp.headers())
                    } else {
                        Some(0)
                    };
                    let same_etag = match (&etag, &new_etag) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    };
                    let body_total = if partial {
                        content_range_total(resp.headers())
                    } else {
                        resp.content_length()
                    };
                    let mut restart_reason = None;
                    if have > 0 && !partial {
                        restart_reason = Some(if same_etag {
                            "the server ignored the resume request (Range)"
                        } else {
                            "the file's ETag changed since the partial download"
                        });
                    } else if partial && (start != Some(have) || !same_etag) {
                        restart_reason =
                            Some("the server resumed at the wrong place or for a changed file");
                    }
                    if let Some(t) = body_total.filter(|t| *t != total) {
                        return Err(DownloadError::Hub(HubError::BadAnswer {
                            url: url.to_string(),
                            reason: format!("the file has {t} bytes, the tree said {total}"),
                        }));
                    }
                    if let Some(reason) = restart_reason {
                        on_event(&DownloadEvent::Restarted {
                            file: name.clone(),
                            reason: reason.into(),
                        });
                        hasher = Sha256::new();
                        have = 0;
                    }
                    if partial && restart_reason.is_some() {
                        // A 206 for the wrong bytes: ask again, from zero, without If-Range.
                        open_part(&part, true).map_err(io_err(&part))?;
                        etag = None;
                        continue;
                    }
                    if new_etag != etag {
                        etag = new_etag;
                        save_row(store, job, etag.as_deref())?;
                    }
                    let file = open_part(&part, have == 0).map_err(io_err(&part))?;
                    let sink = Sink::start(file, hasher);
                    let before = have;
                    let mut resp = resp;
                    let mut fail: Option<String> = None;
                    let mut cancel_or_pause = None;
                    loop {
                        let next =
                            async { tokio::time::timeout(opts.stall_timeout, resp.chunk()).await };
                        let chunk = match control.as_mut() {
                            Some(c) => tokio::select! {
                                r = next => Some(r),
                                changed = c.changed() => {
                                    if changed.is_ok() && *c.borrow() != Control::Run {
                                        cancel_or_pause = Some(*c.borrow());
                                        break;
                                    }
                                    None
                                }
                            },
                            None => Some(next.await),
                        };
                        let Some(chunk) = chunk else { continue };
                        match chunk {
                            Err(_) => {
                                on_event(&DownloadEvent::Stalled {
                                    file: name.clone(),
                                    secs: opts.stall_timeout.as_secs(),
                                });
                                fail = Some(format!(
                                    "stalled: no data for {}s",
                                    opts.stall_timeout.as_secs()
                                ));
                                break;
                            }
                            Ok(Err(e)) => {
                                fail = Some(format!("connection dropped: {e}"));
                                break;
                            }
                            Ok(Ok(None)) => break,
                            Ok(Ok(Some(b))) => {
                                let n = b.len() as u64;
                                if have + n > total {
                                    fail =
                                        Some("the server sent more bytes than the file has".into());
                                    break;
                                }
                                if sink.tx.send(b).await.is_err() {
                                    break; // the writer failed: its error comes from finish()
                                }
                                have += n;
                                if last_progress.elapsed() >= opts.progress_every {
                                    let (t0, b0) = window;
                                    let secs = t0.elapsed().as_secs_f64();
                                    if secs > 0.0 {
                                        rate = ((have - b0) as f64 / secs) as u64;
                                    }
                                    if secs > 3.0 {
                                        window = (Instant::now(), have);
                                    }
                                    last_progress = Instant::now();
                                    on_event(&DownloadEvent::Progress {
                                        file: name.clone(),
                                        done: have,
                                        total,
                                        bytes_per_sec: rate,
                                        eta_secs: (total - have).checked_div(rate),
                                    });
                                }
                            }
                        }
                    }
                    let (h, f) = sink.finish().await.map_err(io_err(&part))?;
                    hasher = h;
                    // No fsync: a kill keeps the page cache, and the SHA-256 check covers
                    // the bytes actually read back on resume. (fsync of the whole file
                    // cost 35% of the throughput on this machine.)
                    drop(f);
                    // The bytes on disk are the truth (a failed write leaves fewer).
                    let on_disk = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
                    if on_disk != have {
                        return Err(DownloadError::Io {
                            path: part.display().to_string(),
                            source: std::io::Error::other(format!(
                                "wrote {on_disk} of {have} bytes (disk full?)"
                            )),
                        });
                    }
                    if let Some(c) = cancel_or_pause {
                        if c == Control::Cancel {
                            let _ = std::fs::remove_file(&part);
                            delete_row(store, &part)?;
                            return Err(DownloadError::Cancelled);
                        }
                        continue; // paused: the top of the loop waits
                    }
                    match fail {
                        None if have == total => Attempt::Done,
                        None => Attempt::Retry {
                            reason: "the connection closed early".into(),
                            progressed: have > before,
                            wait: None,
                        },
                        Some(reason) => Attempt::Retry {
                            reason,
                            progressed: have > before,
                            wait: None,
                        },
                    }
                }
            }
        };
        match outcome {
            Attempt::Done => break,
            Attempt::Retry {
                reason,
                progressed,
                wait,
            } => {
                failures = if progressed { 1 } else { failures + 1 };
                if failures >= opts.max_attempts {
                    return Err(DownloadError::GaveUp {
                        file: name,
                        attempts: failures,
                        last: reason,
                    });
                }
                let backoff = opts
                    .backoff_base
                    .saturating_mul(1 << (failures - 1).min(16))
                    .min(opts.backoff_max);
                let wait = wait.unwrap_or(backoff).max(backoff);
                on_event(&DownloadEvent::Retrying {
                    file: name.clone(),
                    attempt: failures,
                    max: opts.max_attempts - 1,
                    wait,
                    reason,
                });
                tokio::time::sleep(wait).await;
            }
        }
    }
    let got = hex::encode(hasher.finalize());
    if let Some(exp) = &expected
        && !exp.eq_ignore_ascii_case(&got)
    {
        let _ = std::fs::remove_file(&part);
        delete_row(store, &part)?;
        return Err(DownloadError::Mismatch {
            file: name,
            expected: exp.clone(),
            got,
        });
    }
    std::fs::rename(&part, &job.dest).map_err(io_err(&job.dest))?;
    delete_row(store, &part)?;
    on_event(&DownloadEvent::Verified {
        file: name,
        sha256: got.clone(),
    });
    Ok(got)
}

/// Free bytes on the file system holding `dir`.
pub fn free_space(dir: &Path) -> Option<u64> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let disks = sysinfo::Disks::new_with_refreshed_list().ok()?;
    disks
        .iter()
        .filter(|d| dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| d.available_space())
}

/// A relative path from the hub, safe to join under our directory.
fn safe_rel(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    p.components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
        .then(|| p.to_path_buf())
}

/// Link `link` (in `snapshots/<rev>/`) to `blob` as the Hugging Face cache does: a
/// relative symlink (Windows without symlink rights: a hard link, else a copy).
fn hf_link(blob: &Path, link: &Path) -> std::io::Result<()> {
    if let Some(parent) = link.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let _ = std::fs::remove_file(link);
    // From snapshots/<rev>/<dirs…>/file up to the repository folder, then blobs/<sha>.
    let depth = link
        .ancestors()
        .skip(1)
        .take_while(|a| a.file_name().is_some_and(|n| n != "snapshots"))
        .count();
    let mut target = PathBuf::new();
    for _ in 0..=depth {
        target.push("..");
    }
    target.push("blobs");
    target.push(blob.file_name().unwrap_or_default());
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&target, link)
    }
    #[cfg(windows)]
    {
        std::os::windows::fs::symlink_file(&target, link)
            .or_else(|_| std::fs::hard_link(blob, link))
            .or_else(|_| std::fs::copy(blob, link).map(|_| ()))
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = target;
        std::fs::copy(blob, link).map(|_| ())
    }
}

/// Download `REPO[:FILE|:QUANT]` (all shards and the projector, as one model), verify
/// every file and register the model. Returns the existing model when it is already in
/// the library.
pub async fn download_model(
    lib: &Library,
    client: &HubClient,
    spec: &str,
    opts: &DownloadOptions,
    on_event: OnEvent<'_>,
    control: Option<watch::Receiver<Control>>,
) -> Result<Model, DownloadError> {
    let (repo, sel) = parse_spec(spec.trim());
    let info = client.repo(repo).await?;
    let tree = client.tree(repo, &info.sha).await?;
    let files = group(&tree);
    let choice = |reason: String| DownloadError::Choice {
        repo: repo.to_string(),
        reason,
    };
    let variant = pick_variant(&files, sel).map_err(choice)?;
    if !variant.complete() {
        return Err(choice(format!(
            "{} is split into {} shards but the repository has {}",
            variant.path,
            variant.shards,
            variant.files.len()
        )));
    }
    if info.gated && !client.has_token() {
        return Err(HubError::GatedNoToken {
            repo: repo.into(),
            endpoint: client.endpoint().into(),
        }
        .into());
    }
    // The shared Hugging Face cache (when asked, and when every file has its LFS hash,
    // which names the blob): files go to blobs/<sha256>, linked from snapshots/<rev>/.
    let hf_repo = opts
        .hf_cache
        .as_ref()
        .filter(|_| {
            variant.files.iter().all(|f| f.sha256.is_some())
                && pick_mmproj(&files).is_none_or(|m| m.sha256.is_some())
        })
        .map(|hub| hub.join(format!("models--{}", repo.replace('/', "--"))));
    let dir = match &hf_repo {
        Some(r) => r.join("blobs"),
        None => lib.models_dir().join(repo.replace('/', "--")),
    };
    let mut links: Vec<PathBuf> = Vec::new();
    let mut jobs: Vec<(String, FileJob)> = Vec::new();
    let mut all = variant.files.clone();
    let mmproj = pick_mmproj(&files);
    all.extend(mmproj.clone());
    for f in all {
        let rel = safe_rel(&f.path)
            .ok_or_else(|| choice(format!("refusing the unsafe file path {:?}", f.path)))?;
        let role = if mmproj.as_ref() == Some(&f) {
            "mmproj"
        } else {
            "weights"
        };
        let dest = match (&hf_repo, &f.sha256) {
            (Some(r), Some(sha)) => {
                links.push(r.join("snapshots").join(&info.sha).join(&rel));
                dir.join(sha)
            }
            _ => {
                links.push(dir.join(&rel));
                dir.join(&rel)
            }
        };
        jobs.push((
            role.into(),
            FileJob {
                repo: repo.into(),
                revision: info.sha.clone(),
                dest,
                file: f,
            },
        ));
    }
    // Already downloaded?
    let primary = std::fs::canonicalize(&jobs[0].1.dest).unwrap_or(jobs[0].1.dest.clone());
    if let Some(m) = lib
        .list()?
        .into_iter()
        .find(|m| m.path == primary || m.path == jobs[0].1.dest || m.path == links[0])
    {
        return Ok(m);
    }
    // Disk space for what is still missing.
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let need: u64 = jobs
        .iter()
        .map(|(_, j)| {
            if j.dest.exists() {
                0
            } else {
                let have = std::fs::metadata(j.part_path())
                    .map(|m| m.len())
                    .unwrap_or(0);
                j.file.size.saturating_sub(have)
            }
        })
        .sum();
    if let Some(free) = free_space(&dir) {
        // Keep 100 MiB spare for the database and logs.
        if need.saturating_add(100 << 20) > free {
            let _ = std::fs::remove_dir(&dir);
            return Err(DownloadError::NoSpace {
                dir: dir.display().to_string(),
                need,
                have: free,
            });
        }
    }
    let mut out_files = Vec::new();
    for (role, job) in &jobs {
        let sha = if job.dest.exists() && !job.part_path().exists() {
            // Finished earlier (e.g. killed before registering): check it again.
            let d = job.dest.clone();
            let (h, n) = tokio::task::spawn_blocking(move || hash_prefix(&d))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|r| r)
                .map_err(io_err(&job.dest))?;
            let got = hex::encode(h.finalize());
            if n == job.file.size && job.file.sha256.as_ref().is_none_or(|e| *e == got) {
                got
            } else {
                std::fs::remove_file(&job.dest).map_err(io_err(&job.dest))?;
                download_file(client, lib.store(), job, opts, on_event, control.clone()).await?
            }
        } else {
            download_file(client, lib.store(), job, opts, on_event, control.clone()).await?
        };
        out_files.push(ModelFile {
            role: role.clone(),
            path: job.dest.clone(),
            size: job.file.size,
            sha256: Some(sha),
        });
    }
    if let Some(r) = &hf_repo {
        for (f, link) in out_files.iter_mut().zip(&links) {
            hf_link(&f.path, link).map_err(io_err(link))?;
            f.path = link.clone();
        }
        let refs = r.join("refs");
        std::fs::create_dir_all(&refs).map_err(io_err(&refs))?;
        std::fs::write(refs.join("main"), &info.sha).map_err(io_err(&refs))?;
    }
    let registered = lib.register(NewModel {
        source: Source::Hub,
        repo: Some(repo.into()),
        revision: Some(info.sha.clone()),
        files: out_files.clone(),
        name: default_name(&variant.path),
    });
    match registered {
        Ok(m) => Ok(m),
        Err(e) => {
            // Verified but unusable (e.g. not a model GGUF): leave nothing behind.
            for f in &out_files {
                let _ = std::fs::remove_file(&f.path);
            }
            Err(e.into())
        }
    }
}
