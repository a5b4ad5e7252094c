//! The Models page's hub search and downloads: the last search and file listing (kept
//! here, so every reload shows them), fit verdicts read from remote headers on request,
//! and the one download [`Queue`] of this process with each job's latest progress.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use llama_manager::download::{DownloadEvent, DownloadOptions};
use llama_manager::hub::{HubClient, HubError, SearchQuery, SearchSort};
use llama_manager::queue::{self, JobId, JobStatus, Queue, QueueError, QueueEvent};

use super::Console;
use crate::views::data::*;

/// Repositories per page of hub results.
pub const RESULTS_PER_PAGE: u32 = 30;

/// Where the hub is and how downloads run; the state the pages show.
pub struct Hub {
    /// The hub's address and token; None: `HF_ENDPOINT` (default huggingface.co) and
    /// `HF_TOKEN` or the `huggingface-cli login` file.
    endpoint: Option<(String, Option<String>)>,
    opts: DownloadOptions,
    /// Concurrent downloads; None: `BURNCLOUD_DOWNLOAD_JOBS`.
    limit: Option<usize>,
    view: Mutex<HubView>,
    queue: Mutex<Option<Queue>>,
    progress: Arc<Mutex<Progress>>,
}

#[derive(Default)]
struct HubView {
    query: String,
    sort: String,
    results: Vec<HubRepoRow>,
    page: u32,
    has_next: bool,
    /// Finished downloads taken off the list.
    cleared: std::collections::HashSet<JobId>,
    files: Option<HubFilesData>,
    /// `repo:path` → fit from the remote header.
    fits: HashMap<String, HubFit>,
}

#[derive(Default)]
struct Progress {
    jobs: HashMap<JobId, JobProgress>,
    /// Failures not shown yet (the desktop turns them into notices).
    notices: Vec<Notice>,
}

#[derive(Default, Clone)]
struct JobProgress {
    done: u64,
    total: u64,
    rate: u64,
    eta: Option<u64>,
}

impl Hub {
    /// `endpoint` (address, token) None: from the environment; `limit` None:
    /// `BURNCLOUD_DOWNLOAD_JOBS`.
    pub fn new(
        endpoint: Option<(String, Option<String>)>,
        opts: DownloadOptions,
        limit: Option<usize>,
    ) -> Self {
        Hub {
            endpoint,
            opts,
            limit,
            view: Mutex::default(),
            queue: Mutex::default(),
            progress: Arc::default(),
        }
    }

    pub fn from_env() -> Self {
        Hub::new(None, DownloadOptions::from_env(), None)
    }

    fn view(&self) -> std::sync::MutexGuard<'_, HubView> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn client(&self) -> Result<HubClient, Notice> {
        let r = match &self.endpoint {
            Some((e, token)) => HubClient::new(e, token.clone()),
            None => HubClient::from_env(),
        };
        r.map_err(|e| hub_err(&e))
    }

    /// The queue, if a download was asked for in this process.
    pub fn queue(&self) -> Option<Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Failed downloads not reported yet.
    pub fn take_notices(&self) -> Vec<Notice> {
        std::mem::take(&mut lock(&self.progress).notices)
    }
}

fn lock(p: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    lock_of(p)
}

/// A mutex's guard, also after a panic elsewhere.
pub(super) fn lock_of<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A hub error in words, with what fixes it.
fn hub_err(e: &HubError) -> Notice {
    let fix = match e {
        HubError::Unreachable { .. } => {
            "Check the network connection, or point HF_ENDPOINT at a reachable mirror."
        }
        HubError::RepoNotFound { .. } => {
            "Check the repository name; for a private one set HF_TOKEN."
        }
        HubError::GatedNoToken { .. } | HubError::GatedDenied { .. } => {
            "Accept the model's terms on the hub, then set HF_TOKEN to a read token of that account and restart BurnCloud."
        }
        HubError::Invalid(_) => "Set HF_ENDPOINT to an http(s) address, or unset it.",
        _ => "Try again later; if it persists, check HF_ENDPOINT.",
    };
    Notice::error(e.to_string(), Some(fix))
}

/// What fixes a failed download (the queue reports the reason as text).
pub fn download_fix(reason: &str) -> &'static str {
    if reason.contains("disk space") {
        "Free some disk space in the data folder, then download again (the partial file is kept)."
    } else if reason.contains("gated") {
        "Accept the model's terms on the hub, then set HF_TOKEN to a read token of that account and restart BurnCloud."
    } else if reason.contains("SHA-256") {
        "The file arrived corrupt and was deleted: download it again."
    } else if reason.contains("cannot reach") || reason.contains("gave up") {
        "Check the network connection, then download again: it resumes from the partial file."
    } else {
        "Download again; if it fails the same way, check the repository on the hub."
    }
}

fn sort_of(s: &str) -> SearchSort {
    match s {
        "likes" => SearchSort::Likes,
        "recent" => SearchSort::Recent,
        _ => SearchSort::Downloads,
    }
}

pub(super) fn mib(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", b as f64 / 1048576.0)
    }
}

pub(super) fn queue_err(e: QueueError) -> Notice {
    let fix = match e {
        QueueError::BadLimit(_) => Some("Set BURNCLOUD_DOWNLOAD_JOBS between 1 and 16."),
        QueueError::AlreadyQueued { .. } => Some("Follow it in Downloads below."),
        _ => None,
    };
    Notice::error(e.to_string(), fix)
}

impl Console {
    pub(super) async fn hub_search(&self, query: String, sort: String) -> Result<Notice, Notice> {
        self.hub_search_page(query, sort, 1).await
    }

    /// Another page of the last search.
    pub(super) async fn hub_page(&self, page: u32) -> Result<Notice, Notice> {
        let (query, sort) = {
            let v = self.hub.view();
            (v.query.clone(), v.sort.clone())
        };
        self.hub_search_page(query, sort, page.max(1)).await
    }

    async fn hub_search_page(
        &self,
        query: String,
        sort: String,
        page_no: u32,
    ) -> Result<Notice, Notice> {
        let client = self.hub.client()?;
        let q = SearchQuery {
            text: query.trim().to_string(),
            sort: sort_of(&sort),
            limit: RESULTS_PER_PAGE,
        };
        let page = client
            .search_page(&q, page_no)
            .await
            .map_err(|e| hub_err(&e))?;
        let has_next = page.next.is_some();
        let results: Vec<HubRepoRow> = page
            .models
            .into_iter()
            .map(|m| HubRepoRow {
                id: m.id,
                downloads: m.downloads,
                likes: m.likes,
                updated: m.last_modified.get(..10).unwrap_or_default().to_string(),
                gated: m.gated,
            })
            .collect();
        let n = results.len();
        let mut v = self.hub.view();
        v.query = q.text.clone();
        v.sort = sort;
        v.results = results;
        v.page = page_no;
        v.has_next = has_next;
        v.files = None;
        Ok(Notice::ok(if n == 0 {
            format!("No GGUF repositories match {:?}.", q.text)
        } else if page_no == 1 && !has_next {
            format!("{n} repositories match {:?}.", q.text)
        } else {
            format!(
                "Page {page_no}: {n} repositories matching {:?}{}.",
                q.text,
                if has_next {
                    ", more on the next page"
                } else {
                    ""
                }
            )
        }))
    }

    pub(super) async fn hub_files(&self, repo: String) -> Result<Notice, Notice> {
        let client = self.hub.client()?;
        let d = client.repo_details(&repo).await.map_err(|e| hub_err(&e))?;
        let files: Vec<HubFileRow> = d
            .files
            .variants
            .iter()
            .map(|v| HubFileRow {
                path: v.path.clone(),
                quantization: v.quant.clone().unwrap_or_else(|| "?".into()),
                size: mib(v.size()),
                bytes: v.size(),
                shards: v.shards,
                complete: v.complete(),
                spec: format!("{}:{}", d.info.id, v.path),
                fit: None,
            })
            .collect();
        let n = files.len();
        self.hub.view().files = Some(HubFilesData {
            repo: d.info.id.clone(),
            sha: d.info.sha.clone(),
            gated: d.info.gated,
            files,
        });
        Ok(Notice::ok(format!(
            "{}: {n} GGUF model file(s).",
            d.info.id
        )))
    }

    /// The fit of one file, from a ranged read of its header.
    pub(super) async fn hub_fit(&self, repo: String, file: String) -> Result<Notice, Notice> {
        let client = self.hub.client()?;
        // The listing on screen has the pinned commit and the size (all shards); else ask.
        let listed = {
            let v = self.hub.view();
            v.files.as_ref().filter(|f| f.repo == repo).and_then(|f| {
                f.files
                    .iter()
                    .find(|x| x.path == file)
                    .map(|x| (f.sha.clone(), x.bytes))
            })
        };
        let (sha, bytes) = match listed {
            Some(l) => l,
            None => {
                let d = client.repo_details(&repo).await.map_err(|e| hub_err(&e))?;
                let bytes = d
                    .files
                    .variants
                    .iter()
                    .find(|v| v.path == file)
                    .map(|v| v.size())
                    .ok_or_else(|| Notice::error(format!("no {file} in {repo}"), None))?;
                (d.info.sha, bytes)
            }
        };
        let s = client
            .remote_summary(&repo, &sha, &file)
            .await
            .map_err(|e| hub_err(&e))?;
        let fit = llama_manager::fit::fit(&s, bytes, &super::load::hardware());
        let row = HubFit {
            label: fit.verdict.label().into(),
            ok: fit.verdict != llama_manager::fit::Verdict::WontFit,
            explain: fit.explain(),
        };
        let text = format!("{file}: {} on this machine.", row.label);
        self.hub.view().fits.insert(format!("{repo}:{file}"), row);
        Ok(Notice::ok(text))
    }

    /// The queue, created on first use on the runtime this runs on.
    pub(super) fn download_queue(&self) -> Result<Queue, Notice> {
        let mut slot = self.hub.queue.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(q) = slot.as_ref() {
            return Ok(q.clone());
        }
        let limit = match self.hub.limit {
            Some(n) => n,
            None => queue::jobs_from_env().map_err(queue_err)?,
        };
        let client = self.hub.client()?;
        let (q, mut rx) = Queue::new(self.library.clone(), client, self.hub.opts.clone(), limit)
            .map_err(queue_err)?;
        let progress = self.hub.progress.clone();
        let state = self.state.clone();
        let console = self.clone();
        tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                let finished = match &e {
                    QueueEvent::Finished { job, model } => Some((*job, model.id)),
                    _ => None,
                };
                {
                    let mut p = lock(&progress);
                    match e {
                        QueueEvent::Download {
                            job,
                            event:
                                DownloadEvent::Progress {
                                    done,
                                    total,
                                    bytes_per_sec,
                                    eta_secs,
                                    ..
                                },
                        } => {
                            p.jobs.insert(
                                job,
                                JobProgress {
                                    done,
                                    total,
                                    rate: bytes_per_sec,
                                    eta: eta_secs,
                                },
                            );
                        }
                        QueueEvent::Download {
                            job,
                            event:
                                DownloadEvent::Started {
                                    total,
                                    resumed_from,
                                    ..
                                },
                        } => {
                            let j = p.jobs.entry(job).or_default();
                            j.total = total;
                            j.done = resumed_from;
                        }
                        QueueEvent::Finished { job, .. } => {
                            let j = p.jobs.entry(job).or_default();
                            j.done = j.total;
                            j.rate = 0;
                            j.eta = None;
                        }
                        QueueEvent::Failed { spec, reason, .. } => {
                            let fix = download_fix(&reason);
                            p.notices.push(Notice::error(
                                format!("Download of {spec} failed: {reason}"),
                                Some(fix),
                            ));
                        }
                        _ => {}
                    }
                }
                // A new library model is a new local channel (the reload tells the pages);
                // the dashboard's first-run download is deployed and opened in Chat.
                if let Some((job, model)) = finished {
                    state.config_changed().await;
                    console.download_finished(job, model).await;
                } else {
                    state.announce_change();
                }
            }
        });
        *slot = Some(q.clone());
        Ok(q)
    }

    pub(super) fn download(&self, spec: String) -> Result<Notice, Notice> {
        let q = self.download_queue()?;
        let id = q.enqueue(&spec).map_err(queue_err)?;
        Ok(Notice::ok(format!(
            "{spec} is queued as download {id}: follow it in Downloads."
        )))
    }

    pub(super) fn control_download(&self, id: JobId, what: &str) -> Result<Notice, Notice> {
        let q = self
            .hub
            .queue()
            .ok_or_else(|| Notice::error(format!("no download {id}"), None))?;
        let r = match what {
            "pause" => q.pause(id).map(|_| "paused"),
            "resume" => q.resume(id).map(|_| "resumed"),
            _ => q.cancel(id).map(|_| "cancelled"),
        };
        r.map(|w| Notice::ok(format!("Download {id} {w}.")))
            .map_err(queue_err)
    }

    /// A download's progress in words (`45 % · 12.0 MiB / 26.7 MiB · 8.1 MiB/s`).
    pub(super) fn download_progress(&self, job: JobId) -> String {
        let p = lock(&self.hub.progress)
            .jobs
            .get(&job)
            .cloned()
            .unwrap_or_default();
        let status = self
            .hub
            .queue()
            .and_then(|q| q.jobs().into_iter().find(|j| j.id == job))
            .map(|j| j.status);
        match status {
            Some(JobStatus::Failed(r)) => format!("failed: {r}"),
            Some(JobStatus::Done(_)) => "downloaded; starting it…".into(),
            _ if p.total == 0 => "waiting to start…".into(),
            _ => {
                let pct = (p.done.min(p.total) * 100)
                    .checked_div(p.total)
                    .unwrap_or(0);
                let mut t = format!("{pct} % · {} / {}", mib(p.done), mib(p.total));
                if p.rate > 0 {
                    t.push_str(&format!(" · {}/s", mib(p.rate)));
                }
                t
            }
        }
    }

    /// Take finished downloads off the list.
    pub(super) fn clear_finished_downloads(&self) -> Notice {
        let finished: Vec<JobId> = self
            .hub
            .queue()
            .map(|q| q.jobs())
            .unwrap_or_default()
            .into_iter()
            .filter(|j| j.status.is_finished())
            .map(|j| j.id)
            .collect();
        let mut v = self.hub.view();
        let before = v.cleared.len();
        v.cleared.extend(finished);
        let n = v.cleared.len() - before;
        Notice::ok(match n {
            0 => "No finished download to clear.".to_string(),
            1 => "Cleared 1 finished download.".to_string(),
            n => format!("Cleared {n} finished downloads."),
        })
    }

    /// The hub section's state for the page.
    pub fn hub_data(&self) -> HubData {
        let v = self.hub.view();
        let files = v.files.clone().map(|mut f| {
            for x in &mut f.files {
                x.fit = v.fits.get(&format!("{}:{}", f.repo, x.path)).cloned();
            }
            f
        });
        let progress = lock(&self.hub.progress).jobs.clone();
        let downloads = self
            .hub
            .queue()
            .map(|q| q.jobs())
            .unwrap_or_default()
            .into_iter()
            .rev()
            .filter(|j| !v.cleared.contains(&j.id))
            .map(|j| {
                let p = progress.get(&j.id).cloned().unwrap_or_default();
                let (state, error) = match &j.status {
                    JobStatus::Queued => ("queued", None),
                    JobStatus::Running => ("downloading", None),
                    JobStatus::Paused => ("paused", None),
                    JobStatus::Done(_) => ("done", None),
                    JobStatus::Failed(r) => ("failed", Some((r.clone(), download_fix(r)))),
                    JobStatus::Cancelled => ("cancelled", None),
                };
                let running = j.status == JobStatus::Running;
                DownloadRow {
                    id: j.id,
                    spec: j.spec,
                    state: state.into(),
                    bytes: if p.total > 0 {
                        format!("{} / {}", mib(p.done), mib(p.total))
                    } else {
                        "—".into()
                    },
                    percent: (p.done.min(p.total) * 100)
                        .checked_div(p.total)
                        .unwrap_or(0) as u8,
                    rate: if running && p.rate > 0 {
                        format!("{}/s", mib(p.rate))
                    } else {
                        "—".into()
                    },
                    eta: match p.eta {
                        Some(s) if running => format!("{s} s"),
                        _ => "—".into(),
                    },
                    can_pause: matches!(j.status, JobStatus::Queued | JobStatus::Running),
                    can_resume: j.status == JobStatus::Paused,
                    can_cancel: !j.status.is_finished(),
                    fix: error.as_ref().map(|(_, f)| f.to_string()),
                    error: error.map(|(e, _)| e),
                }
            })
            .collect();
        HubData {
            query: v.query.clone(),
            sort: if v.sort.is_empty() {
                "downloads".into()
            } else {
                v.sort.clone()
            },
            results: v.results.clone(),
            page: v.page.max(1),
            has_next: v.has_next,
            files,
            downloads,
        }
    }
}
