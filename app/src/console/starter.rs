//! First run, the local way: while nothing answers, find a small chat model on the hub
//! that fits this machine (by the fit verdict of its header), and with one click download
//! it, deploy it to start on the first request, and open the Chat page on it.
//!
//! The pick: GGUF repositories matching [`QUERY`], most downloaded first; of the first
//! [`REPOS`] that are not gated, every single-file variant, preferring Q4_K_M; the
//! smallest files are checked from their remote header (no download) until one fits.

use std::sync::Mutex;

use llama_manager::hub::{SearchQuery, SearchSort};
use llama_manager::queue::JobId;
use llama_manager::runtime::deploy::{self, SettingsPatch};

use super::Console;
use super::hub::{lock_of, mib};
use crate::views::data::{LocalPick, Notice};

/// What the hub is searched for: chat (instruction-tuned) models.
pub const QUERY: &str = "instruct";
/// Repositories looked into.
const REPOS: usize = 5;
/// Files whose header is read before giving up.
const CHECKS: usize = 3;

/// The first-run local path's state in this process.
#[derive(Debug, Default)]
pub struct Starter {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    state: State,
    /// The download started from the dashboard, and its pick.
    job: Option<(JobId, LocalPick)>,
    /// The model is ready: the desktop opens the Chat page once.
    open_chat: bool,
}

#[derive(Debug, Default, Clone)]
enum State {
    #[default]
    NotAsked,
    Searching,
    Found(LocalPick),
    Nothing(String),
}

impl Starter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        lock_of(&self.inner)
    }

    /// Whether the desktop should open the Chat page now (asked once per ready model).
    pub fn take_open_chat(&self) -> bool {
        std::mem::take(&mut self.lock().open_chat)
    }
}

impl Console {
    /// The dashboard's local path: the pick (searched for in the background on first
    /// call), or why there is none yet.
    pub fn local_pick(&self) -> (Option<LocalPick>, Option<String>) {
        let mut i = self.starter.lock();
        if let Some((_, pick)) = &i.job {
            return (Some(pick.clone()), None);
        }
        match i.state.clone() {
            State::NotAsked => {
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    i.state = State::Searching;
                    let c = self.clone();
                    rt.spawn(async move {
                        let found = c.recommend().await;
                        c.starter.lock().state = match found {
                            Ok(p) => State::Found(p),
                            Err(why) => State::Nothing(why),
                        };
                        c.state.announce_change();
                    });
                }
                (None, Some(searching()))
            }
            State::Searching => (None, Some(searching())),
            State::Found(p) => (Some(p), None),
            State::Nothing(why) => (None, Some(why)),
        }
    }

    /// A small chat model on the hub that fits this machine.
    async fn recommend(&self) -> Result<LocalPick, String> {
        let client = self.hub.client().map_err(|n| n.text)?;
        let q = SearchQuery {
            text: QUERY.into(),
            sort: SearchSort::Downloads,
            limit: 20,
        };
        let page = client
            .search_page(&q, 1)
            .await
            .map_err(|e| format!("The hub could not be searched: {e}"))?;
        let mut candidates = Vec::new();
        for repo in page.models.iter().filter(|m| !m.gated).take(REPOS) {
            let Ok(d) = client.repo_details(&repo.id).await else {
                continue;
            };
            for v in d
                .files
                .variants
                .iter()
                .filter(|v| v.shards <= 1 && v.complete())
            {
                let preferred = v.quant.as_deref() == Some("Q4_K_M");
                candidates.push((
                    !preferred,
                    v.size(),
                    d.info.id.clone(),
                    d.info.sha.clone(),
                    v.path.clone(),
                    v.quant.clone(),
                ));
            }
        }
        candidates.sort();
        let hardware = super::load::hardware();
        for (_, bytes, repo, sha, path, quant) in candidates.into_iter().take(CHECKS) {
            let Ok(s) = client.remote_summary(&repo, &sha, &path).await else {
                continue;
            };
            let fit = llama_manager::fit::fit(&s, bytes, &hardware);
            if fit.verdict != llama_manager::fit::Verdict::WontFit {
                return Ok(LocalPick {
                    spec: format!("{repo}:{path}"),
                    repo,
                    file: path,
                    quantization: quant.unwrap_or_else(|| "?".into()),
                    size: mib(bytes),
                    fit: fit.verdict.label().into(),
                    progress: None,
                    ctx: fit.ctx,
                });
            }
        }
        Err("No small chat model on the hub fits this machine. Models → Find models on the hub lists them all.".into())
    }

    /// Download the pick; when it is in the library it is deployed (started on the first
    /// request) and the Chat page opens on it.
    pub(super) fn run_local_pick(&self, spec: String) -> Result<Notice, Notice> {
        let pick = match &self.starter.lock().state {
            State::Found(p) if p.spec == spec => p.clone(),
            _ => {
                return Err(Notice::error(
                    format!("{spec} is not the model offered here."),
                    Some("Download it from Models → Find models on the hub."),
                ));
            }
        };
        let q = self.download_queue()?;
        let id = q.enqueue(&spec).map_err(super::hub::queue_err)?;
        self.starter.lock().job = Some((id, pick));
        Ok(Notice::ok(format!(
            "Downloading {spec}: it will answer in Chat when it is here."
        )))
    }

    /// The download's progress for the dashboard.
    pub fn local_pick_progress(&self, pick: &mut LocalPick) {
        let job = self.starter.lock().job.as_ref().map(|(j, _)| *j);
        if let Some(job) = job {
            pick.progress = Some(self.download_progress(job));
        }
    }

    /// The queue finished a download: when it is the dashboard's, deploy it and open Chat.
    pub(super) async fn download_finished(&self, job: JobId, model_id: i64) {
        let (ctx, ours) = {
            let i = self.starter.lock();
            match &i.job {
                Some((j, p)) if *j == job => (p.ctx, true),
                _ => (0, false),
            }
        };
        if !ours {
            return;
        }
        let patch = SettingsPatch {
            jit: Some(true),
            ctx_size: Some((ctx > 0).then_some(ctx)),
            ..Default::default()
        };
        let saved = self
            .state
            .store
            .with(|c| deploy::save(c, model_id, patch, None));
        if let Err(e) = saved {
            tracing::warn!(error = %e, "the first-run model could not be deployed");
            return;
        }
        if let Some(rt) = &self.runtime {
            rt.reconcile();
        }
        self.state.config_changed().await;
        self.chat_with(llama_manager_channel(model_id));
        let mut i = self.starter.lock();
        i.job = None;
        i.state = State::NotAsked;
        i.open_chat = true;
        drop(i);
        self.state.announce_change();
    }
}

fn searching() -> String {
    "Looking on the hub for a small chat model that fits this machine…".into()
}

/// The gateway's name for a library model.
fn llama_manager_channel(id: i64) -> String {
    gateway_core::local::channel_name(id)
}
