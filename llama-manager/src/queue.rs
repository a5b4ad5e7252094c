//! The download queue: many model downloads, at most `limit` transferring at once, the
//! others waiting in the order they were added. Each job can be paused, resumed and
//! cancelled, also while it is still waiting. Events (with the job id) arrive on a
//! channel, so a UI or the CLI reads them at its own pace and may call back into the
//! queue while handling one.
//!
//! A paused job gives up its slot (the next waiting job starts) and keeps its place in
//! line: resumed, it continues from its `.part` as soon as a slot is free, before every
//! job added after it. A cancelled job that never started never reaches the hub.
//!
//! The work itself is [`download_model`]: the queue only decides when each job runs,
//! driving it through the same [`Control`] channel.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

use crate::download::{Control, DownloadError, DownloadEvent, DownloadOptions, download_model};
use crate::hub::HubClient;
use crate::library::{Library, Model};

/// A job's id, unique in its queue, increasing in the order jobs were added.
pub type JobId = u64;

/// Concurrent downloads when nothing says otherwise.
pub const DEFAULT_JOBS: usize = 2;
/// The most concurrent downloads the queue accepts.
pub const MAX_JOBS: usize = 16;

/// The concurrency limit from `BURNCLOUD_DOWNLOAD_JOBS` (default [`DEFAULT_JOBS`]).
pub fn jobs_from_env() -> Result<usize, QueueError> {
    match std::env::var("BURNCLOUD_DOWNLOAD_JOBS") {
        Err(_) => Ok(DEFAULT_JOBS),
        Ok(v) if v.trim().is_empty() => Ok(DEFAULT_JOBS),
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_JOBS).contains(n))
            .ok_or(QueueError::BadLimit(format!(
                "BURNCLOUD_DOWNLOAD_JOBS={v:?}"
            ))),
    }
}

/// Where a job stands.
#[derive(Debug, Clone, PartialEq)]
pub enum JobStatus {
    /// Waiting for a slot.
    Queued,
    Running,
    /// Paused by the user: holds no slot, keeps its place in line.
    Paused,
    /// Verified and registered.
    Done(Box<Model>),
    /// Why it did not finish (the partial files are kept when the error says so).
    Failed(String),
    Cancelled,
}

impl JobStatus {
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            JobStatus::Done(_) | JobStatus::Failed(_) | JobStatus::Cancelled
        )
    }
}

/// A job as the UI lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobInfo {
    pub id: JobId,
    pub spec: String,
    pub status: JobStatus,
}

/// What the queue reports, in order per job.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueEvent {
    /// Added; `ahead` jobs are waiting or running before it.
    Queued {
        job: JobId,
        spec: String,
        ahead: usize,
    },
    /// Got a slot (first time, or again after a pause).
    Started {
        job: JobId,
    },
    /// Paused (while waiting or while running).
    Paused {
        job: JobId,
    },
    /// Resumed: waiting for a slot again.
    Resumed {
        job: JobId,
    },
    /// The download's own progress.
    Download {
        job: JobId,
        event: DownloadEvent,
    },
    Finished {
        job: JobId,
        model: Box<Model>,
    },
    Failed {
        job: JobId,
        spec: String,
        reason: String,
    },
    Cancelled {
        job: JobId,
    },
}

impl QueueEvent {
    pub fn job(&self) -> JobId {
        match self {
            QueueEvent::Queued { job, .. }
            | QueueEvent::Started { job }
            | QueueEvent::Paused { job }
            | QueueEvent::Resumed { job }
            | QueueEvent::Download { job, .. }
            | QueueEvent::Finished { job, .. }
            | QueueEvent::Failed { job, .. }
            | QueueEvent::Cancelled { job } => *job,
        }
    }
}

/// What the queue refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueueError {
    #[error("no such download job {0}")]
    UnknownJob(JobId),
    #[error("download job {job} ({spec}) has already finished")]
    Finished { job: JobId, spec: String },
    #[error("{spec} is already in the download queue as job {job}")]
    AlreadyQueued { spec: String, job: JobId },
    #[error("a model to download is needed: REPO, REPO:QUANT or REPO:FILE")]
    EmptySpec,
    #[error("{0}: the number of concurrent downloads must be between 1 and {MAX_JOBS}")]
    BadLimit(String),
    #[error("the download queue needs a Tokio runtime")]
    NoRuntime,
}

struct Job {
    spec: String,
    status: JobStatus,
    /// Set once its task was spawned (it may be paused with the task waiting).
    control: Option<watch::Sender<Control>>,
    /// Counts against the limit.
    slot: bool,
    done: watch::Sender<bool>,
}

struct State {
    jobs: BTreeMap<JobId, Job>,
    running: usize,
    limit: usize,
    next_id: JobId,
}

struct Inner {
    lib: Library,
    client: HubClient,
    opts: DownloadOptions,
    rt: tokio::runtime::Handle,
    events: mpsc::UnboundedSender<QueueEvent>,
    state: Mutex<State>,
}

/// The queue. Cheap to clone; every clone is the same queue.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("jobs", &self.jobs())
            .finish_non_exhaustive()
    }
}

impl Queue {
    /// A queue running at most `limit` downloads at once. Call it inside a Tokio runtime
    /// (the jobs run there); its methods can then be called from any thread.
    pub fn new(
        lib: Library,
        client: HubClient,
        opts: DownloadOptions,
        limit: usize,
    ) -> Result<(Queue, mpsc::UnboundedReceiver<QueueEvent>), QueueError> {
        check_limit(limit)?;
        let rt = tokio::runtime::Handle::try_current().map_err(|_| QueueError::NoRuntime)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let q = Queue {
            inner: Arc::new(Inner {
                lib,
                client,
                opts,
                rt,
                events: tx,
                state: Mutex::new(State {
                    jobs: BTreeMap::new(),
                    running: 0,
                    limit,
                    next_id: 1,
                }),
            }),
        };
        Ok((q, rx))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, e: QueueEvent) {
        // Nobody listening is fine: the status is also in `jobs()`.
        let _ = self.inner.events.send(e);
    }

    /// Add `REPO[:FILE|:QUANT]` at the end of the line. The same spec cannot be waiting
    /// or running twice.
    pub fn enqueue(&self, spec: &str) -> Result<JobId, QueueError> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(QueueError::EmptySpec);
        }
        let mut st = self.state();
        if let Some((id, _)) = st
            .jobs
            .iter()
            .find(|(_, j)| j.spec == spec && !j.status.is_finished())
        {
            return Err(QueueError::AlreadyQueued {
                spec: spec.into(),
                job: *id,
            });
        }
        let id = st.next_id;
        st.next_id += 1;
        let ahead = st.jobs.values().filter(|j| !j.status.is_finished()).count();
        st.jobs.insert(
            id,
            Job {
                spec: spec.into(),
                status: JobStatus::Queued,
                control: None,
                slot: false,
                done: watch::channel(false).0,
            },
        );
        self.emit(QueueEvent::Queued {
            job: id,
            spec: spec.into(),
            ahead,
        });
        self.pump(&mut st);
        Ok(id)
    }

    /// Pause a waiting or running job. Its slot goes to the next waiting job.
    pub fn pause(&self, id: JobId) -> Result<(), QueueError> {
        let mut st = self.state();
        let job = live(&mut st, id)?;
        if job.status == JobStatus::Paused {
            return Ok(());
        }
        job.status = JobStatus::Paused;
        if let Some(c) = &job.control {
            let _ = c.send(Control::Pause);
        }
        let freed = std::mem::take(&mut job.slot);
        if freed {
            st.running -= 1;
        }
        self.emit(QueueEvent::Paused { job: id });
        self.pump(&mut st);
        Ok(())
    }

    /// Resume a paused job: it runs as soon as a slot is free, before the jobs added
    /// after it.
    pub fn resume(&self, id: JobId) -> Result<(), QueueError> {
        let mut st = self.state();
        let job = live(&mut st, id)?;
        if job.status != JobStatus::Paused {
            return Ok(());
        }
        job.status = JobStatus::Queued;
        self.emit(QueueEvent::Resumed { job: id });
        self.pump(&mut st);
        Ok(())
    }

    /// Cancel a job. One that never started is dropped at once (it never reaches the
    /// hub); a started one deletes its partial files and reports `Cancelled` when done.
    pub fn cancel(&self, id: JobId) -> Result<(), QueueError> {
        let mut st = self.state();
        let job = live(&mut st, id)?;
        match &job.control {
            Some(c) => {
                let _ = c.send(Control::Cancel);
            }
            None => {
                job.status = JobStatus::Cancelled;
                self.emit(QueueEvent::Cancelled { job: id });
                job.done.send_replace(true);
            }
        }
        Ok(())
    }

    /// Change the number of concurrent downloads. Lowering it lets running jobs finish.
    pub fn set_limit(&self, limit: usize) -> Result<(), QueueError> {
        check_limit(limit)?;
        let mut st = self.state();
        st.limit = limit;
        self.pump(&mut st);
        Ok(())
    }

    pub fn limit(&self) -> usize {
        self.state().limit
    }

    /// Every job, in queue order (finished ones included).
    pub fn jobs(&self) -> Vec<JobInfo> {
        self.state()
            .jobs
            .iter()
            .map(|(id, j)| JobInfo {
                id: *id,
                spec: j.spec.clone(),
                status: j.status.clone(),
            })
            .collect()
    }

    pub fn status(&self, id: JobId) -> Result<JobStatus, QueueError> {
        self.state()
            .jobs
            .get(&id)
            .map(|j| j.status.clone())
            .ok_or(QueueError::UnknownJob(id))
    }

    /// Wait until a job has finished; its final status. Its last event is on the event
    /// channel by then.
    pub async fn wait(&self, id: JobId) -> Result<JobStatus, QueueError> {
        let mut rx = {
            let st = self.state();
            let job = st.jobs.get(&id).ok_or(QueueError::UnknownJob(id))?;
            job.done.subscribe()
        };
        // The sender lives as long as the job's entry, which is never removed.
        let _ = rx.wait_for(|done| *done).await;
        self.status(id)
    }

    /// Wait until every job added so far has finished.
    pub async fn wait_all(&self) -> Vec<JobInfo> {
        let ids: Vec<JobId> = self.state().jobs.keys().copied().collect();
        for id in ids {
            let _ = self.wait(id).await;
        }
        self.jobs()
    }

    /// Give free slots to waiting jobs, oldest first.
    fn pump(&self, st: &mut State) {
        while st.running < st.limit {
            let Some((&id, job)) = st
                .jobs
                .iter_mut()
                .find(|(_, j)| j.status == JobStatus::Queued && !j.slot)
            else {
                return;
            };
            job.status = JobStatus::Running;
            job.slot = true;
            st.running += 1;
            self.emit(QueueEvent::Started { job: id });
            match &job.control {
                // Paused while running earlier: its task waits for this.
                Some(c) => {
                    let _ = c.send(Control::Run);
                }
                None => {
                    let (tx, rx) = watch::channel(Control::Run);
                    job.control = Some(tx);
                    self.spawn(id, job.spec.clone(), rx);
                }
            }
        }
    }

    fn spawn(&self, id: JobId, spec: String, control: watch::Receiver<Control>) {
        let q = self.clone();
        self.inner.rt.spawn(async move {
            let events = q.inner.events.clone();
            let on_event = move |e: &DownloadEvent| {
                let _ = events.send(QueueEvent::Download {
                    job: id,
                    event: e.clone(),
                });
            };
            let i = &q.inner;
            let result =
                download_model(&i.lib, &i.client, &spec, &i.opts, &on_event, Some(control)).await;
            q.finish(id, result);
        });
    }

    fn finish(&self, id: JobId, result: Result<Model, DownloadError>) {
        let mut st = self.state();
        let Some(job) = st.jobs.get_mut(&id) else {
            return;
        };
        let (status, event) = match result {
            Ok(m) => {
                let m = Box::new(m);
                (
                    JobStatus::Done(m.clone()),
                    QueueEvent::Finished { job: id, model: m },
                )
            }
            Err(DownloadError::Cancelled) => {
                (JobStatus::Cancelled, QueueEvent::Cancelled { job: id })
            }
            Err(e) => {
                let reason = e.to_string();
                (
                    JobStatus::Failed(reason.clone()),
                    QueueEvent::Failed {
                        job: id,
                        spec: job.spec.clone(),
                        reason,
                    },
                )
            }
        };
        job.status = status;
        job.control = None;
        let freed = std::mem::take(&mut job.slot);
        // The event first: whoever `wait`ed for the job finds it on the channel.
        self.emit(event);
        job.done.send_replace(true);
        if freed {
            st.running -= 1;
        }
        self.pump(&mut st);
    }
}

fn check_limit(limit: usize) -> Result<(), QueueError> {
    if (1..=MAX_JOBS).contains(&limit) {
        Ok(())
    } else {
        Err(QueueError::BadLimit(limit.to_string()))
    }
}

/// The job, if it has not finished.
fn live(st: &mut State, id: JobId) -> Result<&mut Job, QueueError> {
    let job = st.jobs.get_mut(&id).ok_or(QueueError::UnknownJob(id))?;
    if job.status.is_finished() {
        return Err(QueueError::Finished {
            job: id,
            spec: job.spec.clone(),
        });
    }
    Ok(job)
}
