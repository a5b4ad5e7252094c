//! Carrying out what the pages ask: form text → store/runtime calls → a `Notice` that
//! says what happened and, on failure, what fixes it. Routing changes reload the snapshot.

use gateway_core::vocab::status;
use std::collections::BTreeMap;
use std::time::Duration;

use gateway_core::console::{self, ApiError, Session};
use gateway_core::money::parse_usd;
use gateway_core::store::{
    FieldError, StoreError, channels, now_secs, prices, split_list, tokens, users,
};
use llama_manager::runtime::{SettingsPatch, deploy, engine};

use super::{CLOSE_TO_TRAY_KEY, Console, LISTEN_KEY, THEME_KEY, first_run};
use crate::views::channels::CHANNEL_FORM;
use crate::views::dashboard::PROVIDER_FORM;
use crate::views::data::*;
use crate::views::pricing::PRICE_FORM;
use crate::views::settings::{BURST_FORM, LISTEN_FORM, RETENTION_FORM};
use crate::views::tokens::TOKEN_FORM;

pub(super) fn store_err(e: StoreError) -> Notice {
    let fix = match &e {
        StoreError::Invalid(_) => Some("Correct the field and save again."),
        StoreError::Conflict(_) => Some("Choose another name."),
        e if e.is_disk_full() => Some("Free some disk space, then try again."),
        _ => None,
    };
    Notice::error(e.to_string(), fix)
}

/// A notice in the window's words: CLI and API instructions from the libraries become
/// the button, field or page that fixes the problem ([`super::words`]).
fn worded(mut n: Notice) -> Notice {
    n.text = super::words::desktop(&n.text);
    n.fix = n.fix.map(|f| super::words::desktop(&f));
    if let Some(r) = n.refused.as_mut() {
        for (_, m) in r.fields.iter_mut() {
            *m = super::words::desktop(m);
        }
    }
    n
}

/// At most five names, then how many more.
fn preview(names: &[String]) -> String {
    let mut s = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 5 {
        s.push_str(&format!(" and {} more", names.len() - 5));
    }
    s
}

/// A refusal from gateway-core's console service, with what fixes it.
pub(super) fn api_err(e: ApiError) -> Notice {
    let fix = match e.status.as_u16() {
        400 => Some("Correct the field and save again."),
        403 => Some("Sign in with an enabled admin account."),
        404 => Some("It was deleted meanwhile: the list shows what is left."),
        409 => Some("Choose another name."),
        507 => Some("Free some disk space, then try again."),
        _ => None,
    };
    Notice::error(e.message, fix)
}

/// A new key for `by` from the Tokens form; the notice carries the key (shown once).
/// A refusal names every field to correct (gateway-core's checks, as the API's).
pub(super) async fn create_token(
    state: &gateway_core::console::Shared,
    by: &Session,
    f: TokenForm,
) -> Result<Notice, Notice> {
    let mut refused = Refusals::default();
    let quota = refused
        .parsed("quota_limit", usd("quota", &f.quota_usd))
        .map(|q| q.unwrap_or(-1));
    let days: Option<Option<i64>> = refused.parsed(
        "expired_time",
        opt_number("expires in days", &f.expires_days),
    );
    let fields = tokens::TokenFields {
        name: Some(f.name.clone()),
        quota_limit_nano: quota,
        expired_time: days.map(|d| d.map(|d| now_secs() + d * 86_400).unwrap_or(-1)),
        models: Some(f.models.clone()),
        group: Some(if f.group.trim().is_empty() {
            "default".into()
        } else {
            f.group.clone()
        }),
        local_only: Some(f.local_only),
        ..Default::default()
    };
    refused.add(tokens::field_errors(fields.clone()));
    refused.refuse(TOKEN_FORM, "Key not created")?;
    let (_, key) = gateway_core::console::tokens::create_token(state, by, fields)
        .await
        .map_err(api_err)?;
    let mut n = Notice::ok(format!(
        "Key {} created. Copy it now: it is shown only once.",
        f.name.trim()
    ))
    .completing(TOKEN_FORM);
    n.secret = Some(key.key);
    Ok(n)
}

/// The refused fields of a form: its text that does not parse, then what gateway-core's
/// checks refuse (the same checks as the console API's); all shown at once.
#[derive(Default)]
struct Refusals(Vec<(String, String)>);

impl Refusals {
    /// A parsed field's value, or None with its message (and how to write it) kept.
    fn parsed<T>(&mut self, field: &str, r: Result<T, Notice>) -> Option<T> {
        r.map_err(|n| {
            let message = match n.fix {
                Some(fix) => format!("{}. {fix}", n.text),
                None => n.text,
            };
            self.0.push((field.to_string(), message));
        })
        .ok()
    }
    /// gateway-core's refusals (a field that did not parse keeps its own message).
    fn add(&mut self, errors: Vec<FieldError>) {
        for e in errors {
            if !self.0.iter().any(|(f, _)| f == e.field) {
                self.0.push((e.field.to_string(), e.message));
            }
        }
    }
    /// Err with a notice naming every refused field of `form`, if there is one.
    fn refuse(self, form: &str, what: &str) -> Result<(), Notice> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(Notice::refusing(
                form,
                format!("{what}: {}.", self.0[0].1.trim_end_matches('.')),
                self.0,
            )),
            n => Err(Notice::refusing(
                form,
                format!("{what}: {n} fields to correct (marked below)."),
                self.0,
            )),
        }
    }
}

fn number<T: std::str::FromStr>(field: &str, text: &str, default: T) -> Result<T, Notice> {
    Ok(opt_number(field, text)?.unwrap_or(default))
}

fn opt_number<T: std::str::FromStr>(field: &str, text: &str) -> Result<Option<T>, Notice> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse().map(Some).map_err(|_| {
        // A number the field cannot hold (too big, negative, a fraction) is not "not a number".
        let why = if t.parse::<f64>().is_ok() {
            "is out of range for this field"
        } else {
            "is not a number"
        };
        Notice::error(format!("{field}: {t} {why}"), None)
    })
}

/// A gateway message about burst settings in the words of the Settings form.
fn burst_words(message: &str) -> String {
    [
        ("daily_cloud_budget_usd", "Daily cloud budget"),
        ("local_max_queue", "Local queue limit"),
        ("cloud_max_queue", "Cloud queue limit"),
        ("alias", "Alias model name"),
    ]
    .iter()
    .fold(message.to_string(), |m, (key, label)| m.replace(key, label))
}

/// `from=to` pairs separated by commas.
pub fn parse_mapping(text: &str) -> Result<BTreeMap<String, String>, Notice> {
    let mut out = BTreeMap::new();
    for pair in split_list(text) {
        let Some((from, to)) = pair.split_once('=') else {
            return Err(Notice::error(
                format!("model mapping: {pair:?} is not from=to"),
                Some("Write pairs like gpt-4o=gpt-4o-2024-08-06, separated by commas."),
            ));
        };
        out.insert(from.trim().to_string(), to.trim().to_string());
    }
    Ok(out)
}

fn usd(field: &str, text: &str) -> Result<Option<i64>, Notice> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    parse_usd(t)
        .map(Some)
        .map_err(|e| Notice::error(format!("{field}: {e}"), None))
}

impl Console {
    /// Do what a page asked. `None` for actions the desktop layer handles itself.
    pub async fn apply(&self, action: Action) -> Option<Notice> {
        let out = match action {
            Action::ToggleGateway
            | Action::Copy(_)
            | Action::FilterLogs(_)
            | Action::Logout
            | Action::DismissNotice => {
                return None;
            }
            Action::ChatSend(f) => return self.chat_send(f).await,
            Action::ChatStop => return self.chat_stop(),
            Action::ChatOpen(id) => return self.chat_open(id),
            Action::ChatRename { id, title } => return self.chat_rename(id, &title),
            Action::ChatDelete(id) => return self.chat_delete(id),
            Action::ChatAttach(path) => return self.chat_attach(&path).await,
            Action::ChatDetach(i) => return self.chat_detach(i),
            Action::ChatWith(model) => {
                self.chat_with(model);
                return None;
            }
            // The Users page: accounts, groups, codes, invitations, registration.
            a @ (Action::CreateUser(_)
            | Action::SetUserEnabled { .. }
            | Action::SetUserRole { .. }
            | Action::SetUserGroup { .. }
            | Action::ChangeBalance { .. }
            | Action::SaveGroup(_)
            | Action::DeleteGroup(_)
            | Action::CreateRedemptions(_)
            | Action::DeleteRedemption(_)
            | Action::ExportRedemptions { .. }
            | Action::Invite(_)
            | Action::DeleteInvitation(_)
            | Action::SaveGovernance(_)) => self.apply_users(a).await,
            // The signed-in admin's own balance and invitations (web console).
            a @ (Action::Redeem(_) | Action::CreateInvitation) => {
                let user = match self.admin_id() {
                    Ok(id) => super::user::UserConsole::new(self.state.clone(), id, ""),
                    Err(e) => return Some(e),
                };
                return user.apply(a).await;
            }
            Action::SaveChannel(f) => self.save_channel(f).await,
            Action::ConnectProvider(f) => self.connect_provider(f).await,
            Action::RunLocalPick(spec) => self.run_local_pick(spec),
            Action::SetChannelEnabled(id, on) => {
                self.as_admin(
                    |state, by| async move {
                        console::channels::set_channel_enabled(&state, &by, id, on).await
                    },
                    if on {
                        "Channel enabled."
                    } else {
                        "Channel disabled."
                    },
                )
                .await
            }
            Action::DeleteChannel(id) => {
                self.as_admin(
                    |state, by| async move {
                        console::channels::delete_channel(&state, &by, id).await
                    },
                    "Channel deleted.",
                )
                .await
            }
            Action::TestChannel(id) => self.test_channel(id).await,
            Action::ListChannelModels(id) => self.list_channel_models(id).await,
            Action::CreateToken(f) => self.create_token(f).await,
            Action::SetTokenEnabled(id, on) => {
                let fields = tokens::TokenFields {
                    status: Some(if on { status::ENABLED } else { status::DISABLED }),
                    ..Default::default()
                };
                self.as_admin(
                    |state, by| async move {
                        console::tokens::update_token(&state, &by, id, fields).await
                    },
                    if on { "Key enabled." } else { "Key disabled." },
                )
                .await
            }
            Action::RevokeToken(id) => {
                self.as_admin(
                    |state, by| async move { console::tokens::delete_token(&state, &by, id).await },
                    "Key revoked: requests with it now fail with 401.",
                )
                .await
            }
            Action::NewDashboardKey => match first_run::new_key(&self.state) {
                Ok(_) => {
                    self.state.config_changed().await;
                    Ok(Notice::ok("A new key is ready on the dashboard."))
                }
                Err(e) => Err(store_err(e)),
            },
            Action::Deploy(f) => self.deploy(f),
            Action::SetModelAlias { id, alias } => self.set_model_alias(id, &alias).await,
            Action::ImportGguf(path) => self.import_gguf(&path).await,
            Action::StartModel(id) => self.set_desired(id, true),
            Action::StopModel(id) => self.set_desired(id, false),
            Action::SavePrice(f) => self.save_price(f).await,
            Action::DeletePrice(model) => {
                let r = self.state.store.with(|c| prices::delete(c, &model));
                self.routing_changed(r, &format!("Price of {model} deleted."))
                    .await
            }
            Action::SaveListen { host, port } => self.save_listen(&host, &port),
            Action::SaveBurst(f) => self.save_burst(f).await,
            Action::InstallEngine => self.install_engine(None).await,
            Action::InstallBackend(b) => match engine::Backend::parse(&b) {
                Ok(b) => self.install_engine(Some(b)).await,
                Err(e) => Err(Notice::error(e, Some("Pick an engine from the list."))),
            },
            Action::HubSearch { query, sort } => self.hub_search(query, sort).await,
            Action::HubPage(n) => self.hub_page(n).await,
            Action::ClearFinishedDownloads => Ok(self.clear_finished_downloads()),
            Action::HubFiles(repo) => self.hub_files(repo).await,
            Action::HubFit { repo, file } => self.hub_fit(repo, file).await,
            Action::Download(spec) => self.download(spec),
            Action::PauseDownload(id) => self.control_download(id, "pause"),
            Action::ResumeDownload(id) => self.control_download(id, "resume"),
            Action::CancelDownload(id) => self.control_download(id, "cancel"),
            Action::SetCloseToTray(on) => self
                .set_setting(CLOSE_TO_TRAY_KEY, if on { "1" } else { "0" })
                .map(|_| {
                    Notice::ok(if on {
                        "Closing the window now keeps BurnCloud running in the tray."
                    } else {
                        "Closing the window now quits BurnCloud."
                    })
                })
                .map_err(store_err),
            Action::SetOllamaKeyless(id) => {
                let value = id.map(|i| i.to_string()).unwrap_or_default();
                let r =
                    self.set_setting(gateway_core::console::routing::OLLAMA_KEYLESS_TOKEN, &value);
                self.routing_changed(
                    r,
                    if id.is_some() {
                        "Ollama-API requests from this machine without a key now use the chosen key."
                    } else {
                        "Ollama-API requests now need a key."
                    },
                )
                .await
            }
            Action::SetLogRetention(text) => self.set_log_retention(&text),
            Action::SetAutostart(on) => match &self.autostart {
                None => Err(Notice::error(
                    "Cannot tell this user's home folder, so BurnCloud cannot register itself to start at login.",
                    Some("Start BurnCloud from your desktop session (it sets HOME), then try again."),
                )),
                Some(e) => {
                    let done = if on {
                        crate::autostart::enable(e)
                    } else {
                        crate::autostart::disable(e)
                    };
                    done.map(|_| {
                        Notice::ok(if on {
                            format!(
                                "BurnCloud will start when you log in ({}).",
                                crate::autostart::location(e)
                            )
                        } else {
                            "BurnCloud will not start when you log in.".to_string()
                        })
                    })
                    .map_err(|err| {
                        Notice::error(
                            format!("Could not change start at login: {err}"),
                            Some("Check that the folder is writable."),
                        )
                    })
                }
            },
            Action::SetTheme(t) => self
                .set_setting(THEME_KEY, t.as_str())
                .map(|_| Notice::ok(format!("Theme: {}.", t.as_str())))
                .map_err(store_err),
        };
        Some(worded(out.unwrap_or_else(|e| e)))
    }

    /// Carry out a console-service call as this console's admin; `ok` is the notice.
    async fn as_admin<T, F, Fut>(&self, call: F, ok: &str) -> Result<Notice, Notice>
    where
        F: FnOnce(console::Shared, Session) -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let by = self.admin_session()?;
        call(self.state.clone(), by).await.map_err(api_err)?;
        Ok(Notice::ok(ok))
    }

    async fn routing_changed<T>(
        &self,
        r: Result<T, StoreError>,
        ok: &str,
    ) -> Result<Notice, Notice> {
        r.map_err(store_err)?;
        self.state.config_changed().await;
        Ok(Notice::ok(ok))
    }

    async fn save_channel(&self, f: ChannelForm) -> Result<Notice, Notice> {
        let mut refused = Refusals::default();
        let fields = channels::ChannelFields {
            name: Some(f.name.clone()),
            channel_type: Some(f.type_id),
            key: (!f.key.trim().is_empty() || f.id.is_none()).then(|| f.key.trim().to_string()),
            base_url: Some(f.base_url.clone()),
            models: Some(f.models.clone()),
            group: Some(if f.group.trim().is_empty() {
                "default".into()
            } else {
                f.group.clone()
            }),
            weight: refused.parsed("weight", number("weight", &f.weight, 1)),
            priority: refused.parsed("priority", number("priority", &f.priority, 0)),
            model_mapping: refused.parsed("model_mapping", parse_mapping(&f.mapping)),
            locality: Some(f.locality.trim().to_string()).filter(|l| !l.is_empty()),
            ..Default::default()
        };
        let checked = fields.clone();
        refused.add(
            self.state
                .store
                .with(|c| channels::field_errors(c, f.id, checked))
                .map_err(store_err)?,
        );
        refused.refuse(CHANNEL_FORM, "Channel not saved")?;
        let by = self.admin_session()?;
        let c = match f.id {
            None => console::channels::create_channel(&self.state, &by, fields).await,
            Some(id) => console::channels::update_channel(&self.state, &by, id, fields).await,
        }
        .map_err(api_err)?;
        Ok(Notice::ok(format!("Channel {} saved.", c.name)).completing(CHANNEL_FORM))
    }

    /// A one-token request straight to the channel's upstream, reported in words.
    async fn test_channel(&self, id: i64) -> Result<Notice, Notice> {
        let c = self
            .state
            .store
            .with(|c| channels::get(c, id))
            .map_err(store_err)?
            .ok_or_else(|| Notice::error(format!("channel {id} not found"), None))?;
        match gateway_core::console::channels::probe_channel(&c).await {
            Ok(p) => Ok(Notice::ok(format!(
                "{} answered {} in {} ms.",
                c.name, p.model, p.millis
            ))),
            Err(e) => Err(Notice::error(format!("{}: {e}", c.name), e.fix())),
        }
    }

    /// What the channel's provider lists for its key, in words.
    async fn list_channel_models(&self, id: i64) -> Result<Notice, Notice> {
        let by = self.admin_session()?;
        match console::channels::upstream_models(&self.state, &by, id).await {
            Ok(list) if list.is_empty() => Ok(Notice::ok(
                "The provider lists no model for this key.".to_string(),
            )),
            Ok(list) => Ok(Notice::ok(format!(
                "The provider lists {} models for this key: {}.",
                list.len(),
                list.join(", ")
            ))),
            Err(f) => Err(Notice::error(f.message, f.fix)),
        }
    }

    /// First run: one step from a provider key to models that answer.
    async fn connect_provider(&self, f: ProviderForm) -> Result<Notice, Notice> {
        let by = self.admin_session()?;
        match console::channels::connect_provider(&self.state, &by, f.type_id, &f.key, &f.base_url)
            .await
        {
            Ok(c) => {
                // Straight to a chat with one of its models (the desktop opens the page).
                let key = super::first_run::dashboard_key(&self.state).0;
                if let Some(m) = self
                    .served_models(key.as_deref())
                    .into_iter()
                    .find(|m| c.models.contains(&m.name))
                {
                    self.chat_with(m.name);
                }
                Ok(Notice::ok(format!(
                    "Connected: channel {} serves {} model{} ({}). Ask one something.",
                    c.name,
                    c.models.len(),
                    if c.models.len() == 1 { "" } else { "s" },
                    preview(&c.models)
                ))
                .completing(PROVIDER_FORM))
            }
            Err(f) => Err(Notice::error(f.message, f.fix)),
        }
    }

    /// Who owns what this console creates: the signed-in admin in the web console, the
    /// first enabled admin on the desktop.
    pub(super) fn admin_id(&self) -> Result<String, Notice> {
        if let Some(id) = &self.acting {
            return Ok(id.clone());
        }
        self.state
            .store
            .with(|c| users::list(c))
            .map_err(store_err)?
            .into_iter()
            .find(|u| u.role == users::Role::Admin && u.status == status::ENABLED)
            .map(|u| u.id)
            .ok_or_else(|| {
                Notice::error(
                    "This console has no enabled admin account to act as: every admin is disabled.",
                    None,
                )
            })
    }

    async fn create_token(&self, f: TokenForm) -> Result<Notice, Notice> {
        let by = self.admin_session()?;
        create_token(&self.state, &by, f).await
    }

    fn runtime_or_err(&self) -> Result<&llama_manager::runtime::Runtime, Notice> {
        self.runtime.as_ref().ok_or_else(|| {
            Notice::error(
                "local models are unavailable: the runtime did not start",
                Some("See the app's log for why, then restart BurnCloud."),
            )
        })
    }

    fn engine_or_err(&self) -> Result<(), Notice> {
        super::load::engine_text(&self.data_dir)
            .map(|_| ())
            .map_err(|e| {
                Notice::error(
                    e,
                    Some("Install the engine on the Settings page (or set LLAMA_SERVER)."),
                )
            })
    }

    fn deploy(&self, f: DeployForm) -> Result<Notice, Notice> {
        // Every refused field at once, each marked in the Deploy dialog (kept open).
        let mut refused = Refusals::default();
        let engine = refused.parsed(
            "engine",
            match f.engine.trim() {
                "" | "auto" => Ok(None),
                b => engine::Backend::parse(b)
                    .map(Some)
                    .map_err(|e| Notice::error(e, Some("Pick an engine from the list."))),
            },
        );
        let mode = refused.parsed(
            "mode",
            if f.mode.trim().is_empty() {
                Ok(llama_manager::runtime::Mode::Chat)
            } else {
                llama_manager::runtime::Mode::parse(&f.mode)
                    .map_err(|e| Notice::error(e, Some("Pick chat, embeddings or rerank.")))
            },
        );
        let port = refused.parsed("port", opt_number("Port", &f.port));
        let threads = refused.parsed("threads", opt_number("Threads", &f.threads));
        let parallel = refused.parsed("parallel", opt_number("Parallel slots", &f.parallel));
        let ctx = refused.parsed("ctx", opt_number("Context size", &f.ctx));
        let gpu_layers = refused.parsed(
            "gpu_layers",
            llama_manager::runtime::GpuLayers::parse(&f.gpu_layers).map_err(|e| {
                Notice::error(e, Some("Use auto, all (or -1) or a number of layers."))
            }),
        );
        let idle = refused.parsed(
            "idle_ttl_secs",
            number("Stop after idle seconds", &f.idle_ttl_secs, 0),
        );
        let form = crate::views::models::deploy_form(f.model_id);
        refused.refuse(&form, "Not deployed")?;
        let (Some(engine), Some(mode), Some(port), Some(threads), Some(parallel), Some(ctx)) =
            (engine, mode, port, threads, parallel, ctx)
        else {
            return Err(Notice::error("Not deployed", None));
        };
        let (Some(gpu_layers), Some(idle)) = (gpu_layers, idle) else {
            return Err(Notice::error("Not deployed", None));
        };
        let patch = SettingsPatch {
            port: Some(port),
            threads: Some(threads),
            parallel: Some(parallel),
            engine: Some(engine),
            mode: Some(mode),
            ctx_size: Some(ctx),
            gpu_layers: Some(gpu_layers),
            jit: Some(f.jit),
            idle_ttl_secs: Some(idle),
            ..Default::default()
        };
        if f.start {
            self.engine_or_err()?;
        }
        let rt = self.runtime_or_err()?;
        self.state
            .store
            .with(|c| deploy::save(c, f.model_id, patch, f.start.then_some(true)))
            .map_err(store_err)?;
        rt.reconcile();
        Ok(Notice::ok(if f.start {
            "Starting: the state below follows the engine."
        } else {
            "Deployment settings saved."
        })
        .completing(form))
    }

    /// A library model's alias, with the CLI's rules (`burncloud model alias`); a refusal
    /// marks the field.
    async fn set_model_alias(&self, id: i64, alias: &str) -> Result<Notice, Notice> {
        let form = crate::views::models::alias_form(id);
        let alias = alias.trim();
        let m = self
            .library
            .set_alias(&id.to_string(), (!alias.is_empty()).then_some(alias))
            .map_err(|e| {
                let msg = super::words::desktop(&e.to_string());
                Notice::refusing(
                    form.clone(),
                    format!("Alias not saved: {msg}."),
                    vec![("alias".into(), msg)],
                )
            })?;
        self.state.config_changed().await;
        Ok(Notice::ok(match &m.alias {
            Some(a) => format!(
                "Model {} ({}) now also answers to \"{a}\" (its channel is local-{}).",
                m.id, m.name, m.id
            ),
            None => format!("Model {} ({}) has no alias now.", m.id, m.name),
        })
        .completing(form))
    }

    /// A GGUF file on this machine into the library (it is referenced where it is).
    async fn import_gguf(&self, path: &str) -> Result<Notice, Notice> {
        let path = std::path::PathBuf::from(path.trim());
        if path.as_os_str().is_empty() {
            return Err(Notice::error(
                "No file was picked.",
                Some(
                    "Pick a .gguf file with Import GGUF…, or drop one on the Engine card of the Models page.",
                ),
            ));
        }
        let library = self.library.clone();
        let p = path.clone();
        let imported = tokio::task::spawn_blocking(move || library.import(&p))
            .await
            .map_err(|e| Notice::error(e.to_string(), None))?;
        let m = imported.map_err(|e| {
            Notice::error(
                format!("{} was not imported: {e}", path.display()),
                Some("Pick a GGUF model file (llama.cpp's format), complete and readable."),
            )
        })?;
        self.state.config_changed().await;
        Ok(Notice::ok(format!(
            "Imported model {} ({}): {} parameters, {}; it answers as local-{} once deployed.",
            m.id,
            m.name,
            m.summary.parameters,
            m.quantization.as_deref().unwrap_or("?"),
            m.id
        )))
    }

    fn set_desired(&self, id: i64, run: bool) -> Result<Notice, Notice> {
        if run {
            self.engine_or_err()?;
        }
        let rt = self.runtime_or_err()?;
        let exists = self
            .state
            .store
            .with(|c| deploy::get(c, id))
            .map_err(store_err)?
            .is_some();
        let r = if exists {
            self.state.store.with(|c| deploy::set_desired(c, id, run))
        } else if run {
            self.state
                .store
                .with(|c| deploy::save(c, id, SettingsPatch::default(), Some(true)))
                .map(|_| ())
        } else {
            Ok(())
        };
        r.map_err(store_err)?;
        rt.reconcile();
        Ok(Notice::ok(if run { "Starting…" } else { "Stopping…" }))
    }

    async fn save_price(&self, f: PriceForm) -> Result<Notice, Notice> {
        let model = f.model.trim().to_string();
        let mut refused = Refusals::default();
        let r = if !f.alias_of.trim().is_empty() {
            let target = f.alias_of.trim().to_string();
            refused.add(
                self.state
                    .store
                    .with(|c| prices::alias_errors(c, &model, &target))
                    .map_err(store_err)?,
            );
            refused.refuse(PRICE_FORM, "Price not saved")?;
            self.state
                .store
                .with(|c| prices::set_alias(c, &model, &target))
        } else {
            let input = refused.parsed("input", usd("input", &f.input));
            let output = refused.parsed("output", usd("output", &f.output));
            let cache_read = refused.parsed("cache_read", usd("cache read", &f.cache_read));
            let cache_write = refused.parsed("cache_write", usd("cache write", &f.cache_write));
            let rates = prices::Rates {
                input: input.flatten().unwrap_or(0),
                output: output.flatten().unwrap_or(0),
                cache_read: cache_read.flatten(),
                cache_write: cache_write.flatten(),
            };
            refused.add(prices::rate_errors(&model, &rates));
            refused.refuse(PRICE_FORM, "Price not saved")?;
            self.state.store.with(|c| prices::set(c, &model, rates))
        };
        r.map_err(store_err)?;
        self.state.config_changed().await;
        Ok(Notice::ok(format!("Price of {model} saved.")).completing(PRICE_FORM))
    }

    fn save_listen(&self, host: &str, port: &str) -> Result<Notice, Notice> {
        let mut refused = Refusals::default();
        let ip = refused.parsed(
            "host",
            host.trim().parse::<std::net::IpAddr>().map_err(|_| {
                Notice::error(
                    format!("{host:?} is not an IP address"),
                    Some("Use 127.0.0.1 (this computer only) or 0.0.0.0 (every network)."),
                )
            }),
        );
        let port = refused.parsed(
            "port",
            match port.trim() {
                "" => Ok(3000),
                p => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                    Notice::error(
                        format!("Port: {p} is not a port number"),
                        Some("Use a whole number from 1 to 65535; 3000 is the default."),
                    )
                }),
            },
        );
        refused.refuse(LISTEN_FORM, "Listen address not saved")?;
        let (Some(ip), Some(port)) = (ip, port) else {
            return Err(Notice::error("Listen address not saved", None));
        };
        let addr = std::net::SocketAddr::new(ip, port);
        self.set_setting(LISTEN_KEY, &addr.to_string())
            .map_err(store_err)?;
        let env = super::listen_env();
        if env.is_empty() {
            return Ok(Notice::ok(format!("Listen address saved: {addr}.")));
        }
        let cfg = &self.state.config;
        let kept = std::net::SocketAddr::new(cfg.host, cfg.port);
        Ok(Notice::ok(format!(
            "Listen address {addr} saved, but {} in the environment keeps the gateway on {kept}; {addr} applies when BurnCloud is started without {}.",
            env.join(" and "),
            if env.len() == 1 { "it" } else { "them" }
        )))
    }

    async fn save_burst(&self, f: BurstForm) -> Result<Notice, Notice> {
        let mut refused = Refusals::default();
        let budget = refused.parsed(
            "daily_budget_usd",
            number::<f64>("Daily cloud budget", &f.daily_budget_usd, 5.0),
        );
        let lq = refused.parsed(
            "local_max_queue",
            number::<u32>("Local queue limit", &f.local_max_queue, 5),
        );
        let cq = refused.parsed(
            "cloud_max_queue",
            number::<u32>("Cloud queue limit", &f.cloud_max_queue, 50),
        );
        refused.refuse(BURST_FORM, "Burst settings not saved")?;
        let (Some(budget), Some(lq), Some(cq)) = (budget, lq, cq) else {
            return Err(Notice::error("Burst settings not saved", None));
        };
        let mut fields = serde_json::Map::new();
        fields.insert("mode".into(), f.mode.trim().into());
        fields.insert("alias".into(), f.alias.trim().into());
        fields.insert("daily_cloud_budget_usd".into(), budget.into());
        fields.insert("local_max_queue".into(), lq.into());
        fields.insert("cloud_max_queue".into(), cq.into());
        let by = self.admin_session()?;
        gateway_core::console::settings::change_burst(&self.state, &by, fields)
            .await
            .map_err(|e| {
                // The gateway names the setting it refused: mark that field of the form.
                let field = [
                    ("daily_cloud_budget_usd", "daily_budget_usd"),
                    ("local_max_queue", "local_max_queue"),
                    ("cloud_max_queue", "cloud_max_queue"),
                    ("alias", "alias"),
                    ("mode", "mode"),
                ]
                .iter()
                .find(|(key, _)| e.message.contains(key))
                .map(|(_, field)| field.to_string());
                let words = burst_words(&e.message);
                let fields = field.map(|f| vec![(f, words.clone())]).unwrap_or_default();
                Notice::refusing(
                    BURST_FORM,
                    format!("Burst settings not saved: {words}"),
                    fields,
                )
            })?;
        Ok(Notice::ok("Burst settings saved."))
    }

    /// Install the best engine for this machine (a GPU build where a GPU is found), or
    /// the one of `backend`.
    async fn install_engine(&self, backend: Option<engine::Backend>) -> Result<Notice, Notice> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Notice::error(e.to_string(), None))?;
        let platform = engine::Platform::current().ok_or_else(|| {
            Notice::error(
                "no official llama.cpp build for this platform",
                Some("Build llama-server yourself and set LLAMA_SERVER."),
            )
        })?;
        let req = engine::InstallRequest {
            release_url: std::env::var("BURNCLOUD_ENGINE_RELEASE_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| engine::DEFAULT_RELEASE_URL.to_string()),
            runtimes: engine::runtimes_dir(&self.data_dir),
            platform,
            hardware: super::load::hardware_in(&self.data_dir),
            backend,
            allow_unverified: false,
        };
        let e = engine::install(&client, &req, |_, _| {})
            .await
            .map_err(|e| {
                Notice::error(
                    format!("engine install failed: {e}"),
                    Some("Check the network, or build llama-server yourself and set LLAMA_SERVER."),
                )
            })?;
        Ok(Notice::ok(format!(
            "Installed the {} engine of llama.cpp {} ({}) at {}.",
            e.backend,
            e.tag,
            e.reason,
            e.path.display()
        )))
    }
}

impl Console {
    /// Keep request-log records `text` days (0: all); older ones go now and then hourly.
    fn set_log_retention(&self, text: &str) -> Result<Notice, Notice> {
        use gateway_core::store::logs;
        let days = text
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|d| (0..=logs::MAX_RETENTION_DAYS).contains(d))
            .ok_or_else(|| {
                let message = format!(
                    "Days to keep request logs: {:?} is not a whole number of days",
                    text.trim()
                );
                let mut n = Notice::refusing(
                    RETENTION_FORM,
                    message.clone(),
                    vec![("days".to_string(), message)],
                );
                n.fix = Some("Type 0 to keep every record, or a number of days such as 90.".into());
                n
            })?;
        let deleted = self
            .state
            .store
            .with(|c| {
                gateway_core::store::settings::set(c, logs::RETENTION_KEY, &days.to_string())?;
                logs::apply_retention(c, gateway_core::store::now_ms())
            })
            .map_err(store_err)?;
        Ok(Notice::ok(match (days, deleted) {
            (0, _) => "Every request-log record is kept.".to_string(),
            (d, 0) => {
                format!("Request logs are kept {d} days; older records are deleted every hour.")
            }
            (d, n) => format!("Request logs are kept {d} days; {n} older records were deleted."),
        }))
    }
}
