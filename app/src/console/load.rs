//! Loading what the pages show: one blocking pass over the database (small queries, the
//! logs page bounded by its page size) plus the relay's and the runtime's in-memory state.

use gateway_core::vocab::status;
use std::collections::HashMap;

use gateway_core::AppState;

use gateway_core::burst;
use gateway_core::channel_types::{CHANNEL_TYPES, channel_type};
use gateway_core::console::channels::channel_health;
use gateway_core::money::format_usd as plain_usd;
use gateway_core::store::{StoreResult, channels, logs, now_ms, prices, tokens};
use llama_manager::runtime::{State, deploy, engine, process};

use super::{CLOSE_TO_TRAY_KEY, Console, THEME_KEY, first_run, saved_listen, words};
use crate::views::data::*;

pub const LOG_PAGE_SIZE: i64 = 25;

impl Console {
    /// Everything the pages show. `listening`: where the gateway listens now (or why not).
    pub fn load(&self, filter: &LogFilter, listening: &str) -> StoreResult<ConsoleData> {
        let names = self.channel_names()?;
        Ok(ConsoleData {
            dashboard: self.dashboard(&names)?,
            channels: self.channels()?,
            channel_types: channel_types(),
            tokens: self.tokens()?,
            models: self.models()?,
            logs: self.logs(filter, &names)?,
            prices: self.prices()?,
            users: self.users_page(listening)?,
            settings: self.settings(listening)?,
            chat: self.chat_data(listening)?,
        })
    }

    fn channel_names(&self) -> StoreResult<HashMap<i64, String>> {
        Ok(self
            .state
            .store
            .with(|c| channels::list(c))?
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect())
    }

    /// Start of today (unix ms) in the burst budget's time zone (the system's by default).
    fn today_start_ms(&self) -> i64 {
        let tz = gateway_core::console::settings::burst_settings(&self.state).timezone;
        let now = now_ms();
        match burst::spend::zone(&tz) {
            Ok(zone) => burst::spend::day_bounds(now, &zone).0,
            Err(_) => now - now.rem_euclid(86_400_000),
        }
    }

    pub fn dashboard(&self, names: &HashMap<i64, String>) -> StoreResult<DashboardData> {
        let (key, key_note) = first_run::dashboard_key(&self.state);
        let now_minute = now_ms() / 60_000;
        let first = now_minute - 59;
        let totals = self
            .state
            .store
            .with(|c| logs::per_minute(c, first * 60_000))?;
        let mut minutes = vec![MinuteStats::default(); 60];
        for t in totals {
            if let Some(slot) = usize::try_from(t.minute - first)
                .ok()
                .and_then(|i| minutes.get_mut(i))
            {
                *slot = MinuteStats {
                    requests: t.requests,
                    tokens: t.tokens,
                    cost_nano: t.cost_nano,
                    errors: t.errors,
                };
            }
        }
        // A model that answers the key shown: a local one first.
        let example_model = self
            .served_models(key.as_deref())
            .first()
            .map(|m| m.name.clone())
            .or_else(|| gateway_core::console::routing::example_model(&self.state))
            .unwrap_or_else(|| "gpt-4o-mini".into());
        let library = self.models()?.models;
        let get_started = names.is_empty() && library.is_empty();
        // While nothing answers (a download of the pick included: the library is empty
        // until it is done).
        let (local_pick, local_note) = if get_started {
            let (mut pick, note) = self.local_pick();
            if let Some(p) = pick.as_mut() {
                self.local_pick_progress(p);
            }
            (pick, note)
        } else {
            (None, None)
        };
        let running = library
            .into_iter()
            .filter_map(|m| {
                let d = m.deployment?;
                d.active.then_some(RunningModel {
                    id: m.id,
                    name: m.name,
                    state: d.state,
                    port: d.port,
                })
            })
            .collect();
        let (recent, _) = self.state.store.with(|c| {
            logs::query(
                c,
                &logs::LogQuery {
                    page: 1,
                    page_size: 8,
                    ..Default::default()
                },
            )
        })?;
        Ok(DashboardData {
            key,
            key_note,
            example_model,
            get_started,
            local_pick,
            local_note,
            providers: channel_types()
                .into_iter()
                .filter(|t| t.lists_models && !t.local)
                .collect(),
            minutes,
            running,
            recent: recent.iter().map(|r| log_item(r, names)).collect(),
        })
    }

    pub fn channels(&self) -> StoreResult<Vec<ChannelRow>> {
        let since = self.today_start_ms();
        let (list, usage) = self.state.store.with(|c| {
            Ok((
                channels::list(c)?,
                logs::usage_by_channel(c, since)?
                    .into_iter()
                    .collect::<HashMap<_, _>>(),
            ))
        })?;
        Ok(list
            .into_iter()
            .map(|c| {
                let ty = channel_type(c.channel_type);
                let health = channel_health(&self.state, c.id);
                let u = usage.get(&c.id).copied().unwrap_or_default();
                ChannelRow {
                    id: c.id,
                    type_name: ty.map(|t| t.name.to_string()).unwrap_or_default(),
                    type_id: c.channel_type,
                    masked_key: c.masked_key(),
                    base_url: c.base_url.clone(),
                    models: c.models.join(","),
                    mapping: c
                        .model_mapping
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(","),
                    group: c.groups.join(","),
                    priority: c.priority,
                    weight: c.weight,
                    locality: c.locality.clone(),
                    enabled: c.status == status::ENABLED,
                    disabled_reason: c.disabled_reason.clone(),
                    breaker: health.breaker.into(),
                    latency_ms: health.latency_ms,
                    in_flight: health.in_flight,
                    today_requests: u.requests,
                    today_tokens: u.tokens,
                    today_cost: usd_text(u.cost_nano),
                    // Every provider's upstream builds its own test request.
                    testable: ty.is_some(),
                    name: c.name,
                }
            })
            .collect())
    }

    pub fn tokens(&self) -> StoreResult<Vec<TokenRow>> {
        token_rows(&self.state, None)
    }

    pub fn models(&self) -> StoreResult<ModelsData> {
        // Models in the shared Hugging Face cache join the library (looked at every 30 s).
        static LAST_SCAN: std::sync::Mutex<Option<std::time::Instant>> =
            std::sync::Mutex::new(None);
        {
            let mut last = LAST_SCAN.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_none_or(|t| t.elapsed() > std::time::Duration::from_secs(30)) {
                *last = Some(std::time::Instant::now());
                if let Some(hub) = llama_manager::library::hf_cache_dir()
                    && let Err(e) = self.library.sync_hf_cache(&hub)
                {
                    tracing::warn!("Hugging Face cache: {e}");
                }
            }
        }
        let list = self.library.list().unwrap_or_default();
        let deps: HashMap<i64, deploy::Deployment> = self
            .state
            .store
            .with(|c| deploy::list(c))?
            .into_iter()
            .map(|d| (d.model_id, d))
            .collect();
        let live = self.runtime.as_ref().map(|r| r.statuses());
        let hw = hardware_in(&self.data_dir);
        let models = list
            .into_iter()
            .map(|m| {
                let fit = llama_manager::fit::fit(&m.summary, m.size, &hw);
                let deployment = deps.get(&m.id).map(|d| {
                    // This process's runtime knows best; the table is what it last wrote.
                    let status = live
                        .as_ref()
                        .and_then(|l| l.get(&m.id).cloned())
                        .unwrap_or_else(|| d.status.clone());
                    let state = if live.is_some() {
                        status.state
                    } else {
                        State::Stopped
                    };
                    let active = state.active();
                    DeploymentRow {
                        state: state.as_str().into(),
                        active,
                        desired_running: d.desired_running,
                        port: status.port.filter(|_| active),
                        pid: status.pid.filter(|_| active),
                        memory: status
                            .pid
                            .filter(|_| active)
                            .and_then(process::rss_bytes)
                            .map(mib),
                        restarts: status.restarts,
                        last_error: status.last_error.as_deref().map(words::desktop),
                        ctx: d.settings.ctx_size,
                        gpu_layers: d.settings.gpu_layers.map(|g| g.to_string()),
                        port_setting: d.settings.port,
                        threads: d.settings.threads,
                        parallel: d.settings.parallel,
                        engine: d.settings.engine.map(|b| b.to_string()),
                        mode: d.settings.mode.as_str().into(),
                        jit: d.settings.jit,
                        idle_ttl_secs: d.settings.idle_ttl_secs,
                    }
                });
                let s = &m.summary;
                ModelRow {
                    id: m.id,
                    channel: format!("local-{}", m.id),
                    architecture: s.architecture.clone(),
                    parameters: params_text(s.parameters),
                    quantization: m.quantization.clone().unwrap_or_else(|| "?".into()),
                    size: mib(m.size),
                    context: s.context_length.to_string(),
                    source: match m.repo.as_deref() {
                        Some(r) => format!("hub: {r}"),
                        None => "imported".into(),
                    },
                    path: m.path.display().to_string(),
                    fit_label: fit.verdict.label().into(),
                    fit_ok: fit.verdict != llama_manager::fit::Verdict::WontFit,
                    fit_explain: fit.explain(),
                    fit_ctx: fit.ctx,
                    fit_gpu_layers: fit.gpu_layers,
                    log_tail: self
                        .runtime
                        .as_ref()
                        .map(|r| r.logs(m.id, 12))
                        .unwrap_or_default(),
                    deployment,
                    alias: m.alias,
                    name: m.name,
                }
            })
            .collect();
        Ok(ModelsData {
            engine: engine_text(&self.data_dir).into(),
            hardware: hw.describe(),
            gpu_warning: gpu_warning(&hw),
            installed_backends: installed_backends(&self.data_dir),
            models,
            runtime: self.runtime.is_some(),
            hub: self.hub_data(),
        })
    }

    pub fn logs(&self, f: &LogFilter, names: &HashMap<i64, String>) -> StoreResult<LogsData> {
        log_rows(&self.state, f, names, None)
    }

    pub fn prices(&self) -> StoreResult<Vec<PriceRow>> {
        let opt = |v: Option<i64>| v.map(usd_text).unwrap_or_default();
        Ok(self
            .state
            .store
            .with(|c| prices::list(c))?
            .into_iter()
            .map(|p| PriceRow {
                input: usd_text(p.rates.input),
                output: usd_text(p.rates.output),
                cache_read: opt(p.rates.cache_read),
                cache_write: opt(p.rates.cache_write),
                alias_of: p.alias_of,
                model: p.model,
            })
            .collect())
    }

    pub fn settings(&self, listening: &str) -> StoreResult<SettingsData> {
        let cfg = &self.state.config;
        let saved = saved_listen(&self.state);
        let b = &gateway_core::console::settings::burst_settings(&self.state);
        let keys = self.state.store.with(|c| tokens::list(c, None))?;
        let hub_endpoint =
            std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".into());
        let hub_token = if std::env::var("HF_TOKEN").is_ok_and(|t| !t.trim().is_empty()) {
            Some("HF_TOKEN (environment)".to_string())
        } else if llama_manager::hub::client::token_from_env().is_some() {
            Some("the Hugging Face token saved on this computer".to_string())
        } else {
            None
        };
        Ok(SettingsData {
            host: saved
                .map(|a| a.ip().to_string())
                .unwrap_or_else(|| cfg.host.to_string()),
            port: saved.map(|a| a.port()).unwrap_or(cfg.port),
            listening: listening.to_string(),
            env_override: super::listen_env(),
            burst: BurstForm {
                mode: b.mode.as_str().into(),
                alias: b.alias.clone(),
                daily_budget_usd: b.daily_cloud_budget_usd.to_string(),
                local_max_queue: b.local_max_queue.to_string(),
                cloud_max_queue: b.cloud_max_queue.to_string(),
            },
            hub_endpoint,
            hub_token,
            engine: engine_text(&self.data_dir).into(),
            close_to_tray: self.setting(CLOSE_TO_TRAY_KEY).as_deref() == Some("1"),
            autostart: self.autostart.as_ref().map(|e| {
                (
                    crate::autostart::is_enabled(e),
                    crate::autostart::location(e),
                )
            }),
            theme: Theme::parse(self.setting(THEME_KEY).as_deref().unwrap_or("")),
            ollama_keyless: gateway_core::console::routing::ollama_keyless_token(&self.state),
            log_retention_days: self
                .state
                .store
                .with(|c| gateway_core::store::logs::retention_days(c))
                .unwrap_or(0),
            keys: keys
                .into_iter()
                .filter(|t| t.status == status::ENABLED)
                .map(|t| (t.id, format!("{} ({})", t.name, t.key_prefix)))
                .collect(),
            data_dir: self.data_dir.display().to_string(),
        })
    }
}

pub(super) fn channel_types() -> Vec<ChannelTypeOption> {
    CHANNEL_TYPES
        .iter()
        .map(|t| ChannelTypeOption {
            id: t.id,
            name: t.name.into(),
            default_base_url: t.default_base_url.unwrap_or("").into(),
            local: t.local_by_default,
            lists_models: t.lists_models(),
        })
        .collect()
}

static HW: std::sync::OnceLock<llama_manager::hardware::Hardware> = std::sync::OnceLock::new();

/// Hardware is probed once per process (it does not change while the app runs): the
/// probes, then the engine's own view of its devices (`--list-devices`).
pub(super) fn hardware_in(data_dir: &std::path::Path) -> llama_manager::hardware::Hardware {
    HW.get_or_init(|| {
        let configured = std::env::var_os("LLAMA_SERVER")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from);
        let engine = engine::locate(data_dir, configured.as_deref())
            .ok()
            .map(|e| e.path);
        llama_manager::hardware::detect_with_engine(engine.as_deref())
    })
    .clone()
}

/// [`hardware_in`] once the pages have loaded (else the probes without the engine).
pub(super) fn hardware() -> llama_manager::hardware::Hardware {
    HW.get_or_init(llama_manager::hardware::detect).clone()
}

pub fn engine_text(data_dir: &std::path::Path) -> Result<String, String> {
    let configured = std::env::var_os("LLAMA_SERVER")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from);
    engine::locate(data_dir, configured.as_deref())
        .map(|e| format!("{} ({})", e.path.display(), e.source.label()))
        .map_err(|e| words::desktop(&e.to_string()))
}

/// The backends with an engine in `<data dir>/runtimes`, in the catalog's order.
pub fn installed_backends(data_dir: &std::path::Path) -> Vec<String> {
    let have = engine::installed(&engine::runtimes_dir(data_dir));
    engine::Backend::ALL
        .iter()
        .filter(|b| have.iter().any(|i| i.backend == **b))
        .map(|b| b.to_string())
        .collect()
}

/// The warning for a GPU the engine leaves idle, in the window's words (its fix is the
/// button under it).
pub fn gpu_warning(hw: &llama_manager::hardware::Hardware) -> Option<String> {
    hw.gpu_unused()
        .then(|| hw.warnings.first().map(|w| words::desktop(w)))
        .flatten()
}

fn params_text(p: u64) -> String {
    match p {
        p if p >= 1_000_000_000 => format!("{:.1}B", p as f64 / 1e9),
        p if p >= 1_000_000 => format!("{:.1}M", p as f64 / 1e6),
        p => format!("{:.1}K", p as f64 / 1e3),
    }
}

fn mib(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", b as f64 / 1048576.0)
    }
}

/// Local date and time of a unix-ms instant.
pub fn date_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

fn log_item(r: &logs::LogRow, names: &HashMap<i64, String>) -> LogItem {
    let l = &r.record;
    LogItem {
        id: r.id,
        request_id: l.request_id.clone(),
        time: date_time(l.created_at_ms),
        endpoint: l.endpoint.to_string(),
        model: l.model.clone().unwrap_or_default(),
        channel: l
            .channel_id
            .map(|id| {
                names
                    .get(&id)
                    .cloned()
                    .unwrap_or_else(|| format!("#{id} (deleted)"))
            })
            .unwrap_or_else(|| "-".into()),
        status: l.status,
        latency: l
            .latency_ms
            .map(|ms| format!("{ms} ms"))
            .unwrap_or_else(|| "-".into()),
        prompt_tokens: l.prompt_tokens.unwrap_or(0),
        completion_tokens: l.completion_tokens.unwrap_or(0),
        cost: usd_text(l.cost_nano),
        error: l.error.clone(),
        failover: l.failover.as_ref().map(|f| {
            f.split(',')
                .map(|step| match step.split_once(':') {
                    Some((ch, why)) => {
                        let name = ch
                            .parse::<i64>()
                            .ok()
                            .and_then(|id| names.get(&id).cloned())
                            .unwrap_or_else(|| format!("#{ch}"));
                        format!("{name}: {why}")
                    }
                    None => step.to_string(),
                })
                .collect::<Vec<_>>()
                .join(" → ")
        }),
        burst: l.burst.as_ref().map(|b| b.replace(',', ", ")),
        locality: l.locality.as_deref().map(String::from),
        flags: l.flags.clone(),
        stream: l.stream,
    }
}

/// One page of request records: everyone's, or `user`'s only.
pub(super) fn log_rows(
    state: &AppState,
    f: &LogFilter,
    names: &HashMap<i64, String>,
    user: Option<&str>,
) -> StoreResult<LogsData> {
    let status = f.status.trim();
    let channel_id = if f.channel.trim().is_empty() {
        None
    } else {
        names
            .iter()
            .find(|(_, n)| n.as_str() == f.channel.trim())
            .map(|(id, _)| *id)
            .or_else(|| f.channel.trim().parse().ok())
            .or(Some(-1))
    };
    let q = logs::LogQuery {
        model_prefix: Some(f.model.trim().to_string()).filter(|s| !s.is_empty()),
        channel_id,
        status: status.parse().ok(),
        failed: match status {
            "error" => Some(true),
            "ok" => Some(false),
            _ => None,
        },
        page: f.page.max(1),
        page_size: LOG_PAGE_SIZE,
        user_id: user.map(str::to_string),
        ..Default::default()
    };
    let (rows, total) = state.store.with(|c| logs::query(c, &q))?;
    Ok(LogsData {
        filter: LogFilter {
            page: q.page,
            ..f.clone()
        },
        total,
        page_size: LOG_PAGE_SIZE,
        rows: rows.iter().map(|r| log_item(r, names)).collect(),
    })
}

/// The keys' rows: every key, or `owner`'s only.
pub(super) fn token_rows(state: &AppState, owner: Option<&str>) -> StoreResult<Vec<TokenRow>> {
    let (list, usage) = state.store.with(|c| {
        Ok((
            tokens::list(c, owner)?,
            logs::usage_by_token(c, 0)?
                .into_iter()
                .collect::<HashMap<_, _>>(),
        ))
    })?;
    let now = gateway_core::store::now_secs();
    Ok(list
        .into_iter()
        .map(|t| TokenRow {
            id: t.id,
            display: t.key_prefix.clone(),
            enabled: t.status == status::ENABLED,
            quota: if t.quota_limit_nano < 0 {
                "unlimited".into()
            } else {
                usd_text(t.quota_limit_nano)
            },
            used: usd_text(t.used_quota_nano),
            expires: if t.expired_time < 0 {
                "never".into()
            } else {
                date_time(t.expired_time * 1000)
            },
            expired: t.expired_time >= 0 && t.expired_time <= now,
            models: if t.models.is_empty() {
                "all".into()
            } else {
                t.models.join(",")
            },
            group: t.group.clone(),
            local_only: t.local_only,
            requests: usage.get(&t.id).map(|u| u.requests).unwrap_or(0),
            name: t.name,
        })
        .collect())
}

/// `$1.50`.
pub fn usd_text(nano: i64) -> String {
    format!("${}", plain_usd(nano))
}
