//! Page tests: every page rendered (VirtualDom + SSR) from the real state of a temporary
//! database, and the effect of the pages' actions on that state.

use dioxus::prelude::*;
use gateway_core::console::routing;
use gateway_core::store::logs::{self, LogRecord};
use gateway_core::store::now_ms;

use super::data::Action;
use super::data::*;
use super::*;
use crate::console::testing::{TestConsole, console};
use crate::console::{Console, first_run};

fn render_page(info: GatewayInfo, data: ConsoleData, page: Page, notice: Option<Notice>) -> String {
    let mut dom = VirtualDom::new_with_props(
        move |(info, data, page, notice): (GatewayInfo, ConsoleData, Page, Option<Notice>)| {
            rsx! { Shell { info, data, page, notice, on_navigate: |_| {}, on_action: |_| {} } }
        },
        (info, data, page, notice),
    );
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

fn info(state: GatewayState) -> GatewayInfo {
    GatewayInfo {
        url: "http://127.0.0.1:3000".into(),
        state,
        data_dir: "/data".into(),
    }
}

fn load(c: &Console) -> ConsoleData {
    c.load(&LogFilter::default(), "127.0.0.1:3000").unwrap()
}

fn page(c: &Console, p: Page) -> String {
    render_page(info(GatewayState::Running), load(c), p, None)
}

fn record(i: i64, model: &str, status: i64, channel: Option<i64>) -> LogRecord {
    LogRecord {
        request_id: format!("req-{i}"),
        created_at_ms: now_ms() - i * 1000,
        model: Some(model.into()),
        channel_id: channel,
        endpoint: "/v1/chat/completions".into(),
        status,
        latency_ms: Some(120),
        prompt_tokens: Some(10),
        completion_tokens: Some(5),
        cost_nano: 1_500_000,
        error: (status >= 400).then(|| "upstream 502".into()),
        locality: Some("cloud".into()),
        ..Default::default()
    }
}

fn commit(t: &TestConsole, records: &[LogRecord]) {
    t.console
        .state
        .store
        .with(|c| logs::commit_usage(c, records, None))
        .unwrap();
}

fn channel_form(name: &str, base: &str) -> ChannelForm {
    ChannelForm {
        type_id: 1,
        name: name.into(),
        key: "sk-upstream-secret-123456".into(),
        base_url: base.into(),
        models: "gpt-4o-mini".into(),
        mapping: "gpt-4o-mini=gpt-4o-mini-2024".into(),
        group: "default".into(),
        priority: "0".into(),
        weight: "1".into(),
        locality: "cloud".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn dashboard_shows_first_run_key_snippets_charts_and_recent_requests() {
    let t = console().await;
    assert!(first_run::ensure(&t.console.state).unwrap());
    // A channel: something answers, so the dashboard shows snippets (not "get started").
    let base = rejecting_upstream().await;
    let n = t
        .console
        .apply(Action::SaveChannel(channel_form("openai-main", &base)))
        .await
        .unwrap();
    assert!(n.ok, "{n:?}");
    commit(
        &t,
        &[
            record(1, "gpt-4o-mini", 200, None),
            record(2, "gpt-4o-mini", 502, None),
        ],
    );
    let key = first_run::read_credentials(t.dir.path()).unwrap().key;
    let html = page(&t.console, Page::Dashboard);
    assert!(html.contains("http://127.0.0.1:3000/v1"), "{html}");
    assert!(html.contains(&key), "the first-run key is shown");
    assert!(html.contains("Authorization: Bearer"), "curl snippet");
    assert!(html.contains("from openai import OpenAI"), "Python snippet");
    assert!(
        html.contains("apiBase: http://127.0.0.1:3000/v1"),
        "IDE snippet"
    );
    assert!(html.contains("2 requests"));
    assert!(html.contains("30 tokens"));
    assert!(html.contains("50.0% errors"));
    assert!(html.matches("<rect").count() >= 4, "bars drawn");
    assert!(html.contains("id=\"recent\""));
    assert!(html.contains(">502<"));
    assert!(html.contains("No local model is running"));
    for p in Page::ALL {
        assert!(html.contains(p.title()), "nav lists {}", p.title());
    }
    assert!(html.contains("aria-current=\"page\""));
    // Revoking the key: the dashboard says so and offers a new one.
    let toks = load(&t.console).tokens;
    t.console
        .apply(Action::RevokeToken(toks[0].id))
        .await
        .unwrap();
    let html = page(&t.console, Page::Dashboard);
    assert!(!html.contains(&key));
    assert!(
        html.contains("revoked") && html.contains("Create a new key"),
        "{html}"
    );
    let n = t.console.apply(Action::NewDashboardKey).await.unwrap();
    assert!(n.ok, "{n:?}");
    let fresh = first_run::read_credentials(t.dir.path()).unwrap().key;
    assert!(page(&t.console, Page::Dashboard).contains(&fresh));
}

#[test]
fn a_busy_port_is_said_where_the_user_is_with_the_fix() {
    let msg = "port 3000 on 127.0.0.1 is already in use: stop the other program or choose another port with PORT=<n>";
    let html = render_page(
        info(GatewayState::Failed(msg.into())),
        ConsoleData::default(),
        Page::Dashboard,
        None,
    );
    assert!(html.contains("Not running"));
    assert!(html.contains("already in use"), "{html}");
    assert!(html.contains("role=\"alert\""));
    assert!(html.contains("Settings page"));
}

/// A fake OpenAI upstream that rejects every key.
async fn rejecting_upstream() -> String {
    use axum::{
        Router,
        http::StatusCode,
        routing::{get, post},
    };
    let refuse = || async {
        (
            StatusCode::UNAUTHORIZED,
            r#"{"error":{"message":"Incorrect API key"}}"#,
        )
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(refuse))
        .route("/v1/models", get(refuse));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.ok() });
    format!("http://{addr}")
}

#[tokio::test]
async fn channels_page_lists_live_state_and_its_actions_change_it() {
    let t = console().await;
    // The desktop's local admin (made at first start) is who changes channels.
    first_run::ensure(&t.console.state).unwrap();
    let html = page(&t.console, Page::Channels);
    assert!(html.contains("No channels yet"));
    let base = rejecting_upstream().await;
    let n = t
        .console
        .apply(Action::SaveChannel(channel_form("openai-main", &base)))
        .await
        .unwrap();
    assert!(n.ok, "{n:?}");
    // The snapshot routes the new channel's model.
    assert!(routing::model_exists(&t.console.state, "gpt-4o-mini"));
    let id = load(&t.console).channels[0].id;
    commit(
        &t,
        &[
            record(1, "gpt-4o-mini", 200, Some(id)),
            record(2, "gpt-4o-mini", 200, Some(id)),
        ],
    );
    let html = page(&t.console, Page::Channels);
    assert!(html.contains("openai-main"), "{html}");
    assert!(html.contains("OpenAI / OpenAI-compatible"));
    assert!(html.contains(">enabled<"));
    assert!(html.contains(">breaker closed<"), "breaker state");
    assert!(html.contains("2 req"), "today's usage");
    assert!(html.contains("sk-...3456"), "masked key");
    assert!(
        !html.contains("sk-upstream-secret-123456"),
        "the key never reaches the page"
    );
    assert!(html.contains("mapping gpt-4o-mini=gpt-4o-mini-2024"));
    assert!(html.contains(">Test<"));
    // The test button reaches the upstream and says the key was rejected, with the fix.
    let n = t.console.apply(Action::TestChannel(id)).await.unwrap();
    assert!(!n.ok);
    assert!(n.text.contains("401"), "{n:?}");
    assert!(n.fix.unwrap().contains("paste a valid key"));
    // So does the model list, asked of the provider with the channel's key.
    assert!(html.contains("List the models of openai-main"));
    let n = t
        .console
        .apply(Action::ListChannelModels(id))
        .await
        .unwrap();
    assert!(!n.ok);
    assert!(
        n.text.contains("401") && n.text.contains("Incorrect API key"),
        "{n:?}"
    );
    assert!(n.fix.unwrap().contains("paste a valid key"));
    // Edit keeps the key when left empty.
    let mut f = ChannelForm::from_row(&load(&t.console).channels[0]);
    f.priority = "5".into();
    assert!(t.console.apply(Action::SaveChannel(f)).await.unwrap().ok);
    let c = &load(&t.console).channels[0];
    assert_eq!((c.priority, c.masked_key.as_str()), (5, "sk-...3456"));
    // A bad mapping is refused with the way to write it.
    let mut bad = channel_form("x", &base);
    bad.mapping = "nonsense".into();
    let n = t.console.apply(Action::SaveChannel(bad)).await.unwrap();
    assert!(!n.ok && n.fix.is_some());
    // Disable, then delete.
    t.console
        .apply(Action::SetChannelEnabled(id, false))
        .await
        .unwrap();
    assert!(page(&t.console, Page::Channels).contains(">disabled<"));
    assert!(!routing::model_exists(&t.console.state, "gpt-4o-mini"));
    t.console.apply(Action::DeleteChannel(id)).await.unwrap();
    assert!(page(&t.console, Page::Channels).contains("No channels yet"));
}

#[tokio::test]
async fn tokens_page_creates_a_key_shown_once_and_revokes_it() {
    let t = console().await;
    first_run::ensure(&t.console.state).unwrap();
    let form = TokenForm {
        name: "my-ide".into(),
        quota_usd: "5".into(),
        expires_days: "30".into(),
        models: "gpt-4o-mini".into(),
        group: "default".into(),
        local_only: true,
    };
    let n = t.console.apply(Action::CreateToken(form)).await.unwrap();
    assert!(n.ok, "{n:?}");
    let key = n.secret.clone().unwrap();
    assert!(key.starts_with("sk-"));
    assert_eq!(routing::key_local_only(&t.console.state, &key), Some(true));
    // The notice shows the key once with a copy button; the list only its display form.
    let data = load(&t.console);
    let with_notice = render_page(
        info(GatewayState::Running),
        data.clone(),
        Page::Tokens,
        Some(n.clone()),
    );
    assert!(with_notice.contains(&key) && with_notice.contains("Copy"));
    // Copy (or any later message) takes the key's place: the key stays on screen with it.
    let copied = Notice::ok("Copied to the clipboard.").keeping_secret_of(Some(&n));
    let after_copy = render_page(
        info(GatewayState::Running),
        data.clone(),
        Page::Tokens,
        Some(copied.clone()),
    );
    assert!(
        after_copy.contains("Copied to the clipboard.") && after_copy.contains(&key),
        "{after_copy}"
    );
    let later = Notice::error("a download failed", None).keeping_secret_of(Some(&copied));
    assert_eq!(later.secret.as_deref(), Some(key.as_str()));
    assert!(Notice::ok("x").keeping_secret_of(None).secret.is_none());
    // The key stays until Dismiss: across page changes (there and back), and when a read
    // error comes; the desktop and the web console move the notice bar through
    // `Notice::after` only.
    let mut shown = Notice::after(None, NoticeEvent::Shown(n.clone()));
    shown = Notice::after(shown.as_ref(), NoticeEvent::MovedOn);
    let elsewhere = render_page(
        info(GatewayState::Running),
        data.clone(),
        Page::Logs,
        shown.clone(),
    );
    assert!(elsewhere.contains(&key), "another page: {elsewhere}");
    assert!(
        elsewhere.contains("aria-label=\"Dismiss the new key\"") && elsewhere.contains(">Dismiss<"),
        "{elsewhere}"
    );
    shown = Notice::after(shown.as_ref(), NoticeEvent::MovedOn);
    let back = render_page(
        info(GatewayState::Running),
        data.clone(),
        Page::Tokens,
        shown.clone(),
    );
    assert!(back.contains(&key), "back on Tokens: {back}");
    shown = Notice::after(
        shown.as_ref(),
        NoticeEvent::Shown(Notice::error(
            "could not read the database: disk I/O error",
            Some("Check the data folder's disk space and permissions."),
        )),
    );
    let read_error = render_page(
        info(GatewayState::Running),
        data.clone(),
        Page::Tokens,
        shown.clone(),
    );
    assert!(
        read_error.contains("disk I/O error") && read_error.contains(&key),
        "{read_error}"
    );
    shown = Notice::after(shown.as_ref(), NoticeEvent::Dismissed);
    assert_eq!(shown, None);
    let dismissed = render_page(
        info(GatewayState::Running),
        data.clone(),
        Page::Tokens,
        shown,
    );
    assert!(!dismissed.contains(&key));
    // Any other message goes when the user moves on, and has no Dismiss of its own.
    let plain = Notice::ok("Saved.");
    assert_eq!(Notice::after(Some(&plain), NoticeEvent::MovedOn), None);
    let html = render_page(
        info(GatewayState::Running),
        data.clone(),
        Page::Tokens,
        Some(plain),
    );
    assert!(!html.contains("dismiss-notice"));
    let html = page(&t.console, Page::Tokens);
    assert!(!html.contains(&key));
    assert!(html.contains("my-ide"));
    assert!(html.contains("$5"), "{html}");
    assert!(html.contains("local only"));
    assert!(
        html.contains("desktop default"),
        "the first-run key is listed"
    );
    let id = data.tokens.iter().find(|t| t.name == "my-ide").unwrap().id;
    t.console
        .apply(Action::SetTokenEnabled(id, false))
        .await
        .unwrap();
    assert!(page(&t.console, Page::Tokens).contains(">disabled<"));
    t.console.apply(Action::RevokeToken(id)).await.unwrap();
    assert!(!page(&t.console, Page::Tokens).contains("<td>my-ide"));
    assert!(!routing::key_accepted(&t.console.state, &key));
    // Bad input is refused with the field named.
    let n = t
        .console
        .apply(Action::CreateToken(TokenForm {
            name: "x".into(),
            quota_usd: "lots".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(!n.ok && n.text.contains("quota"), "{n:?}");
}

#[tokio::test]
async fn models_page_shows_the_library_fit_and_deployment() {
    let t = console().await;
    let file = t.dir.path().join("tiny.Q8_0.gguf");
    std::fs::write(
        &file,
        llama_manager::testing::gguf_writer::tiny_llama("tiny", 1),
    )
    .unwrap();
    let m = t.console.library.import(&file).unwrap();
    let html = page(&t.console, Page::Models);
    assert!(html.contains(&m.name), "{html}");
    assert!(html.contains("llama"));
    assert!(html.contains("not deployed"));
    assert!(html.contains("Deploy…"));
    assert!(html.contains("channel local-"));
    assert!(html.contains("This machine:"));
    // Without a runtime in this process, deploying says why and what to do.
    let n = t
        .console
        .apply(Action::Deploy(DeployForm {
            model_id: m.id,
            ctx: "512".into(),
            jit: true,
            start: false,
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(!n.ok && n.text.contains("runtime"), "{n:?}");
    // Fields that cannot be read are refused all at once, each marked in the dialog,
    // before anything else (the dialog stays open with them; a success closes it).
    let typed = DeployForm {
        model_id: m.id,
        port: "70000".into(),
        ctx: "big".into(),
        gpu_layers: "most".into(),
        start: false,
        ..Default::default()
    };
    let n = t
        .console
        .apply(Action::Deploy(typed.clone()))
        .await
        .unwrap();
    let form = crate::views::models::deploy_form(m.id);
    assert!(n.text.contains("3 fields to correct"), "{n:?}");
    assert!(
        n.field_error(&form, "port")
            .unwrap()
            .contains("Port: 70000"),
        "{n:?}"
    );
    assert!(
        n.field_error(&form, "ctx")
            .unwrap()
            .contains("Context size: big"),
        "{n:?}"
    );
    assert!(n.field_error(&form, "gpu_layers").is_some(), "{n:?}");
    assert!(n.completed.is_none(), "a refusal keeps the dialog");
    let mut dom = VirtualDom::new_with_props(
        move |(form, notice): (DeployForm, Option<Notice>)| {
            rsx! { crate::views::models::DeployDialog { form, installed: vec![], notice, on_install: |_| {}, on_submit: |_| {}, on_cancel: |_| {} } }
        },
        (typed.clone(), Some(n.clone())),
    );
    dom.rebuild_in_place();
    // Nothing sent from this dialog yet: no marks (they belong to what a Save sent).
    let html = dioxus_ssr::render(&dom);
    assert!(!html.contains("bc-field-error"), "{html}");
    // A deployment saved by another process (the CLI) is shown with its settings.
    t.console
        .state
        .store
        .with(|c| {
            llama_manager::runtime::deploy::save(
                c,
                m.id,
                llama_manager::runtime::SettingsPatch {
                    jit: Some(true),
                    idle_ttl_secs: Some(300),
                    ..Default::default()
                },
                None,
            )
        })
        .unwrap();
    let html = page(&t.console, Page::Models);
    assert!(html.contains("JIT on"), "{html}");
    assert!(html.contains("idle stop 300s"));
    assert!(html.contains(">Start<"));
    // A GPU the engine cannot use: the warning and its one-click fix.
    let mut data = load(&t.console);
    assert!(data.models.gpu_warning.is_none());
    data.models.gpu_warning =
        Some("NVIDIA GeForce RTX 4070 is present but the engine lists no GPU".into());
    let html = render_page(info(GatewayState::Running), data, Page::Models, None);
    assert!(
        html.contains("id=\"gpu-warning\"") && html.contains("Install the GPU engine"),
        "{html}"
    );
}

#[tokio::test]
async fn logs_page_filters_pages_and_details_a_failover() {
    let t = console().await;
    // The desktop's local admin (made at first start) is who changes channels.
    first_run::ensure(&t.console.state).unwrap();
    let base = rejecting_upstream().await;
    t.console
        .apply(Action::SaveChannel(channel_form("primary", &base)))
        .await
        .unwrap();
    let id = load(&t.console).channels[0].id;
    let mut recs: Vec<LogRecord> = (1..=30)
        .map(|i| record(i, "gpt-4o-mini", 200, Some(id)))
        .collect();
    let mut failed = record(31, "claude-3", 502, Some(id));
    failed.failover = Some(format!("{id}:502,9:timeout"));
    failed.burst = Some("edge_burst,local_overloaded,public".into());
    recs.push(failed);
    commit(&t, &recs);
    let c = &t.console;
    let data = c.load(&LogFilter::default(), "").unwrap();
    assert_eq!(data.logs.total, 31);
    assert_eq!(data.logs.rows.len(), 25);
    let html = page(c, Page::Logs);
    assert!(html.contains("31 requests · page 1 of 2"), "{html}");
    let errors = c
        .load(
            &LogFilter {
                status: "error".into(),
                ..Default::default()
            },
            "",
        )
        .unwrap();
    assert_eq!(errors.logs.total, 1);
    let by_model = c
        .load(
            &LogFilter {
                model: "claude-3".into(),
                ..Default::default()
            },
            "",
        )
        .unwrap();
    assert_eq!(by_model.logs.total, 1);
    // What a person types: the start of a name, in any case.
    for (typed, n) in [
        ("GPT-4", 30),
        ("gpt-4o-mini", 30),
        ("claude", 1),
        ("gpt-5", 0),
    ] {
        let found = c
            .load(
                &LogFilter {
                    model: typed.into(),
                    ..Default::default()
                },
                "",
            )
            .unwrap();
        assert_eq!(found.logs.total, n, "{typed}");
    }
    let by_channel = c
        .load(
            &LogFilter {
                channel: "primary".into(),
                ..Default::default()
            },
            "",
        )
        .unwrap();
    assert_eq!(by_channel.logs.total, 31);
    let page2 = c
        .load(
            &LogFilter {
                page: 2,
                ..Default::default()
            },
            "",
        )
        .unwrap();
    assert_eq!(page2.logs.rows.len(), 6);
    let item = errors.logs.rows[0].clone();
    assert_eq!(item.failover.as_deref(), Some("primary: 502 → #9: timeout"));
    let mut dom = VirtualDom::new_with_props(
        move |item: LogItem| rsx! { crate::views::logs::LogDetail { item } },
        item,
    );
    dom.rebuild_in_place();
    let html = dioxus_ssr::render(&dom);
    assert!(html.contains("primary: 502 → #9: timeout"), "{html}");
    assert!(html.contains("edge_burst, local_overloaded, public"));

    // The detail opens in the row under the one clicked, not below all 25 (out of sight).
    let rows = data.logs.rows.clone();
    let opened = rows[2].clone();
    let mut dom = VirtualDom::new_with_props(
        move |(rows, open): (Vec<LogItem>, Option<i64>)| {
            rsx! { crate::views::logs::LogTable { rows, open, on_toggle: |_| {} } }
        },
        (rows.clone(), Some(opened.id)),
    );
    dom.rebuild_in_place();
    let html = dioxus_ssr::render(&dom);
    let detail = html.find("id=\"log-detail\"").expect("the detail is shown");
    let own = html
        .find(&format!("Request {}", opened.request_id))
        .expect("the opened request's detail");
    assert!(own > detail, "the detail is the opened request's");
    let row_of = |item: &LogItem| html.find(&format!(">{}<", item.time)).unwrap();
    assert!(
        row_of(&opened) < detail,
        "the detail follows its row: {html}"
    );
    // Every later row comes after the detail (times are distinct per row here).
    for later in &rows[3..] {
        if later.time != opened.time {
            assert!(html.find(&format!(">{}<", later.time)).unwrap() > detail);
        }
    }
    assert_eq!(html.matches("aria-expanded=\"true\"").count(), 1);
}

#[tokio::test]
async fn pricing_page_edits_prices_and_aliases() {
    let t = console().await;
    let c = &t.console;
    assert!(page(c, Page::Pricing).contains("No prices yet"));
    let n = c
        .apply(Action::SavePrice(PriceForm {
            model: "gpt-4".into(),
            input: "30".into(),
            output: "60".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(n.ok, "{n:?}");
    c.apply(Action::SavePrice(PriceForm {
        model: "gpt-4-turbo".into(),
        alias_of: "gpt-4".into(),
        ..Default::default()
    }))
    .await
    .unwrap();
    let html = page(c, Page::Pricing);
    assert!(html.contains("gpt-4-turbo"), "{html}");
    assert!(html.contains("$30"), "{html}");
    assert!(
        routing::priced(&t.console.state, "gpt-4-turbo"),
        "alias priced in the snapshot"
    );
    let n = c
        .apply(Action::SavePrice(PriceForm {
            model: "x".into(),
            input: "-1".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(!n.ok);
    c.apply(Action::DeletePrice("gpt-4-turbo".into()))
        .await
        .unwrap();
    assert!(!page(c, Page::Pricing).contains("gpt-4-turbo"));
}

#[tokio::test]
async fn settings_page_shows_and_saves_settings() {
    let t = console().await;
    first_run::ensure(&t.console.state).unwrap();
    let c = &t.console;
    let html = page(c, Page::Settings);
    assert!(html.contains("Listening now: 127.0.0.1:3000"));
    assert!(!html.contains("lan-warning"));
    // Start at login: off by default; the toggle writes and removes the real entry.
    assert!(html.contains("Start with the system") && html.contains("Off (the default)."));
    let entry = t.dir.path().join("config/autostart/burncloud.desktop");
    assert!(!entry.exists());
    let n = c.apply(Action::SetAutostart(true)).await.unwrap();
    assert!(n.ok, "{n:?}");
    assert!(
        std::fs::read_to_string(&entry)
            .unwrap()
            .contains("Exec=\"/usr/bin/burncloud\"")
    );
    assert!(page(c, Page::Settings).contains(&format!("On: {}", entry.display())));
    let n = c.apply(Action::SetAutostart(false)).await.unwrap();
    assert!(n.ok && !entry.exists(), "{n:?}");
    assert!(
        html.contains(&t.dir.path().display().to_string()),
        "data folder"
    );
    assert!(
        html.contains("on the Users page (Alt+9)"),
        "accounts: {html}"
    );
    assert!(html.contains("edge_burst"));
    // Listen on every interface: saved, and the page warns.
    let n = c
        .apply(Action::SaveListen {
            host: "0.0.0.0".into(),
            port: "3001".into(),
        })
        .await
        .unwrap();
    assert!(n.ok, "{n:?}");
    assert_eq!(
        crate::console::saved_listen(&c.state).unwrap().to_string(),
        "0.0.0.0:3001"
    );
    let html = page(c, Page::Settings);
    assert!(
        html.contains("lan-warning") && html.contains("other computers"),
        "{html}"
    );
    let n = c
        .apply(Action::SaveListen {
            host: "my-pc".into(),
            port: "1".into(),
        })
        .await
        .unwrap();
    assert!(!n.ok && n.fix.is_some());
    // Messages in the form's words: a port out of range is not "not a number", and burst
    // settings name the fields as the form does, not the API's keys.
    let n = c
        .apply(Action::SaveListen {
            host: "127.0.0.1".into(),
            port: "99999".into(),
        })
        .await
        .unwrap();
    use crate::views::settings::{BURST_FORM, LISTEN_FORM, RETENTION_FORM};
    assert!(
        !n.ok
            && n.text
                .starts_with("Listen address not saved: Port: 99999 is not a port number"),
        "{n:?}"
    );
    // The message goes under the field it is about, with how to write it.
    let port_mark = n.field_error(LISTEN_FORM, "port").unwrap_or_default();
    assert!(port_mark.contains("1 to 65535"), "{n:?}");
    assert_eq!(n.field_error(LISTEN_FORM, "host"), None, "{n:?}");
    // Both fields wrong: both marked at once.
    let n = c
        .apply(Action::SaveListen {
            host: "my-pc".into(),
            port: "0".into(),
        })
        .await
        .unwrap();
    assert!(n.text.contains("2 fields to correct"), "{n:?}");
    assert!(
        n.field_error(LISTEN_FORM, "host")
            .unwrap()
            .contains("127.0.0.1")
    );
    assert!(n.field_error(LISTEN_FORM, "port").is_some());
    let mut b = load(c).settings.burst;
    b.daily_budget_usd = "-5".into();
    let n = c.apply(Action::SaveBurst(b.clone())).await.unwrap();
    assert!(!n.ok && n.text.contains("Daily cloud budget"), "{n:?}");
    assert!(!n.text.contains("daily_cloud_budget_usd"), "{n:?}");
    assert!(
        n.field_error(BURST_FORM, "daily_budget_usd")
            .is_some_and(|m| m.contains("Daily cloud budget")),
        "the gateway's refusal is marked on its field: {n:?}"
    );
    b.daily_budget_usd = "5".into();
    b.local_max_queue = "-1".into();
    b.cloud_max_queue = "many".into();
    let n = c.apply(Action::SaveBurst(b)).await.unwrap();
    assert_eq!(
        n.field_error(BURST_FORM, "local_max_queue"),
        Some("Local queue limit: -1 is out of range for this field"),
        "{n:?}"
    );
    assert_eq!(
        n.field_error(BURST_FORM, "cloud_max_queue"),
        Some("Cloud queue limit: many is not a number"),
        "{n:?}"
    );
    let n = c
        .apply(Action::SetLogRetention("ninety".into()))
        .await
        .unwrap();
    assert!(n.field_error(RETENTION_FORM, "days").is_some(), "{n:?}");
    // Burst settings reach the policy.
    let mut b = load(c).settings.burst;
    b.mode = "cloud_burst".into();
    b.daily_budget_usd = "2.5".into();
    assert!(c.apply(Action::SaveBurst(b)).await.unwrap().ok);
    let s = &gateway_core::console::settings::burst_settings(&c.state);
    assert_eq!(
        (s.mode.as_str(), s.daily_cloud_budget_usd),
        ("cloud_burst", 2.5)
    );
    // Keyless Ollama requests: off by default, then a chosen key, then off again.
    let data = load(c);
    assert_eq!(data.settings.ollama_keyless, None);
    let (id, _) = data.settings.keys[0].clone();
    let n = c.apply(Action::SetOllamaKeyless(Some(id))).await.unwrap();
    assert!(n.ok, "{n:?}");
    assert_eq!(routing::ollama_keyless_token(&c.state), Some(id));
    let data = load(c);
    assert_eq!(data.settings.ollama_keyless, Some(id));
    assert!(
        render_page(info(GatewayState::Running), data, Page::Settings, None)
            .contains("ollama-keyless")
    );
    assert!(c.apply(Action::SetOllamaKeyless(None)).await.unwrap().ok);
    assert_eq!(routing::ollama_keyless_token(&c.state), None);
    // Request-log retention: every record by default; words refused with a fix; a number
    // of days saved, shown, and applied at once (the gateway's API reads the same setting).
    assert_eq!(load(c).settings.log_retention_days, 0);
    for bad in ["ninety", "-1", "1.5"] {
        let n = c.apply(Action::SetLogRetention(bad.into())).await.unwrap();
        assert!(!n.ok && n.fix.is_some(), "{bad}: {n:?}");
    }
    let n = c
        .apply(Action::SetLogRetention(" 30 ".into()))
        .await
        .unwrap();
    assert!(n.ok && n.text.contains("kept 30 days"), "{n:?}");
    let data = load(c);
    assert_eq!(data.settings.log_retention_days, 30);
    assert_eq!(
        c.state
            .store
            .with(|c| gateway_core::store::logs::retention_days(c))
            .unwrap(),
        30
    );
    assert!(
        render_page(info(GatewayState::Running), data, Page::Settings, None)
            .contains("Days to keep request logs")
    );
    let n = c.apply(Action::SetLogRetention("0".into())).await.unwrap();
    assert!(
        n.ok && n.text.contains("Every request-log record is kept"),
        "{n:?}"
    );
    // Window settings.
    c.apply(Action::SetCloseToTray(true)).await.unwrap();
    c.apply(Action::SetTheme(Theme::Dark)).await.unwrap();
    let data = load(c);
    assert!(data.settings.close_to_tray);
    assert!(
        render_page(info(GatewayState::Running), data, Page::Settings, None)
            .contains("bc-theme-dark")
    );
}

#[test]
fn stylesheet_uses_fluent_tokens_for_light_and_dark_and_focus_rings() {
    assert!(STYLESHEET.contains("--colorBrandBackground: #0f6cbd"));
    assert!(STYLESHEET.contains("prefers-color-scheme: dark"));
    assert!(STYLESHEET.contains("var(--shadow4)"));
    assert!(STYLESHEET.contains(":focus-visible"));
    assert!(
        STYLESHEET.contains("max-width: 1000px"),
        "narrow windows (900×600)"
    );
}

mod a11y;
mod chat;
mod costs;
mod engines;
mod forms;
mod listen_env;
mod models_alias;
mod no_cli;
mod users;

mod hub_downloads {
    //! The Models page's hub search and downloads against a fake hub on 127.0.0.1.
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use llama_manager::download::DownloadOptions;
    use llama_manager::queue::JobStatus;
    use llama_manager::testing::fake_hub::{FakeFile, FakeHub, FakeRepo, Fault};
    use llama_manager::testing::gguf_writer::tiny_llama;

    use super::*;
    use crate::console::hub::Hub;

    fn opts() -> DownloadOptions {
        DownloadOptions {
            max_attempts: 2,
            backoff_base: Duration::from_millis(20),
            backoff_max: Duration::from_millis(100),
            stall_timeout: Duration::from_secs(5),
            progress_every: Duration::from_millis(50),
            ..Default::default()
        }
    }

    fn fake_hub() -> FakeHub {
        let mut r = FakeRepo::new(
            "acme/tiny-GGUF",
            vec![
                FakeFile::new("tiny.Q4_K_M.gguf", tiny_llama("tiny q4", 1)),
                FakeFile::new("tiny.Q8_0.gguf", tiny_llama("tiny q8", 2)),
            ],
        );
        r.downloads = 4242;
        r.likes = 77;
        let mut g = FakeRepo::new(
            "acme/locked-GGUF",
            vec![FakeFile::new("locked.Q4_K_M.gguf", tiny_llama("locked", 3))],
        );
        g.gated = true;
        let other = FakeRepo::new(
            "zeta/other-GGUF",
            vec![FakeFile::new("other.Q4_K_M.gguf", tiny_llama("other", 4))],
        );
        FakeHub::start(vec![r, g, other])
    }

    async fn console_on(hub: &FakeHub) -> TestConsole {
        let mut t = console().await;
        t.console.hub = Arc::new(Hub::new(Some((hub.url.clone(), None)), opts(), Some(2)));
        t
    }

    async fn act(c: &Console, a: Action) -> Notice {
        c.apply(a).await.expect("a notice")
    }

    async fn finish(c: &Console, id: u64) -> JobStatus {
        let q = c.hub.queue().expect("the queue exists after a download");
        tokio::time::timeout(Duration::from_secs(60), q.wait(id))
            .await
            .expect("the job finishes")
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn models_page_searches_the_hub_lists_files_and_downloads_into_the_library() {
        let hub = fake_hub();
        let t = console_on(&hub).await;
        let c = &t.console;
        let n = act(
            c,
            Action::HubSearch {
                query: "acme".into(),
                sort: "downloads".into(),
            },
        )
        .await;
        assert!(n.ok, "{n:?}");
        let html = page(c, Page::Models);
        assert!(html.contains("acme/tiny-GGUF"), "{html}");
        assert!(html.contains(">4242<") && html.contains(">77<"), "{html}");
        assert!(html.contains("gated"), "the gated repo is marked");
        assert!(!html.contains("zeta/other-GGUF"), "only matches are listed");

        let n = act(c, Action::HubFiles("acme/tiny-GGUF".into())).await;
        assert!(n.ok, "{n:?}");
        let q8_size = hub.repos_mut(|rs| rs[0].files[1].data.len()) as f64 / 1048576.0;
        let html = page(c, Page::Models);
        assert!(html.contains("tiny.Q4_K_M.gguf") && html.contains("tiny.Q8_0.gguf"));
        assert!(
            html.contains(">Q4_K_M<") && html.contains(">Q8_0<"),
            "{html}"
        );
        assert!(html.contains(&format!("{q8_size:.1} MiB")), "{html}");
        assert_eq!(
            html.matches("Check fit").count(),
            2,
            "fit is read on request"
        );

        let n = act(
            c,
            Action::HubFit {
                repo: "acme/tiny-GGUF".into(),
                file: "tiny.Q8_0.gguf".into(),
            },
        )
        .await;
        assert!(n.ok, "{n:?}");
        let data = load(c);
        let files = data.models.hub.files.unwrap().files;
        let fit = files[1].fit.clone().expect("the Q8_0 fit");
        assert!(files[0].fit.is_none());
        let html = page(c, Page::Models);
        assert!(
            html.contains(&fit.label) && html.contains(&fit.explain),
            "{html}"
        );
        assert_eq!(html.matches("Check fit").count(), 1);
        let fit_reads = hub
            .log()
            .iter()
            .filter(|s| s.path.contains("/resolve/") && s.range.is_some())
            .count();
        assert!(fit_reads >= 1, "the fit came from a ranged header read");
        assert!(
            c.library.list().unwrap().is_empty(),
            "checking fit downloads nothing"
        );

        let n = act(c, Action::Download("acme/tiny-GGUF:tiny.Q8_0.gguf".into())).await;
        assert!(n.ok, "{n:?}");
        let id = c.hub.queue().unwrap().jobs()[0].id;
        assert!(matches!(finish(c, id).await, JobStatus::Done(_)));
        let html = page(c, Page::Models);
        assert!(html.contains("id=\"downloads\""), "{html}");
        assert!(html.contains(">done<"), "{html}");
        let lib = c.library.list().unwrap();
        assert_eq!(lib.len(), 1);
        assert!(html.contains(&lib[0].name), "{html}");
        assert!(
            html.contains("hub: acme/tiny-GGUF"),
            "in the library: {html}"
        );

        // Gated without a token: the job fails and says how to fix it.
        act(c, Action::Download("acme/locked-GGUF".into())).await;
        let id = c.hub.queue().unwrap().jobs()[1].id;
        assert!(matches!(finish(c, id).await, JobStatus::Failed(_)));
        let html = page(c, Page::Models);
        assert!(
            html.contains(">failed<") && html.contains("HF_TOKEN"),
            "{html}"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        let notice = loop {
            if let Some(n) = c.hub.take_notices().pop() {
                break n;
            }
            assert!(Instant::now() < deadline, "no failure notice");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(!notice.ok && notice.text.contains("gated"), "{notice:?}");
        assert!(notice.fix.unwrap().contains("HF_TOKEN"));
        assert_eq!(
            c.library.list().unwrap().len(),
            1,
            "nothing else registered"
        );

        // A corrupt transfer: the SHA-256 check fails the job, with what to do.
        let at = hub.repos_mut(|rs| rs[0].files[0].data.len() as u64) / 2;
        hub.inject([Fault::CorruptByte(at)]);
        act(c, Action::Download("acme/tiny-GGUF:Q4_K_M".into())).await;
        let id = c.hub.queue().unwrap().jobs()[2].id;
        let JobStatus::Failed(reason) = finish(c, id).await else {
            panic!("a corrupt file must fail")
        };
        assert!(reason.contains("SHA-256"), "{reason}");
        let html = page(c, Page::Models);
        assert!(html.contains("arrived corrupt"), "the fix is shown: {html}");
        assert_eq!(c.library.list().unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hub_that_is_down_is_a_notice_with_a_fix() {
        let url = {
            let hub = FakeHub::start(vec![]);
            hub.url.clone()
        };
        let mut t = console().await;
        t.console.hub = Arc::new(Hub::new(Some((url, None)), opts(), Some(1)));
        let n = act(
            &t.console,
            Action::HubSearch {
                query: "x".into(),
                sort: "likes".into(),
            },
        )
        .await;
        assert!(!n.ok && n.text.contains("cannot reach"), "{n:?}");
        assert!(n.fix.clone().unwrap().contains("network"));
        let html = render_page(
            info(GatewayState::Running),
            load(&t.console),
            Page::Models,
            Some(n),
        );
        assert!(html.contains("How to fix"), "{html}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn downloads_show_progress_pause_resume_and_cancel_a_throttled_job() {
        let hub = fake_hub();
        hub.throttle(Some(40_000));
        let t = console_on(&hub).await;
        let c = &t.console;
        act(c, Action::Download("acme/tiny-GGUF:Q4_K_M".into())).await;
        let id = c.hub.queue().unwrap().jobs()[0].id;
        // Progress arrives through the queue's events.
        let deadline = Instant::now() + Duration::from_secs(20);
        let row = loop {
            let d = load(c).models.hub.downloads;
            if d[0].rate != "—" {
                break d[0].clone();
            }
            assert!(Instant::now() < deadline, "no progress: {d:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(row.state, "downloading");
        assert!(
            row.bytes.contains(" / ") && row.rate.ends_with("/s"),
            "{row:?}"
        );
        assert!(row.eta.ends_with(" s"), "{row:?}");
        let html = page(c, Page::Models);
        assert!(
            html.contains(">Pause<") && html.contains(">Cancel<"),
            "{html}"
        );

        assert!(act(c, Action::PauseDownload(id)).await.ok);
        let html = page(c, Page::Models);
        assert!(
            html.contains(">paused<") && html.contains(">Resume<"),
            "{html}"
        );
        assert!(act(c, Action::ResumeDownload(id)).await.ok);

        let n = act(c, Action::CancelDownload(id)).await;
        assert!(n.ok, "{n:?}");
        assert_eq!(finish(c, id).await, JobStatus::Cancelled);
        let html = page(c, Page::Models);
        assert!(html.contains(">cancelled<"), "{html}");
        assert!(!html.contains(">Cancel<"), "a finished job has no buttons");
        assert!(c.library.list().unwrap().is_empty(), "nothing registered");
        assert!(html.contains("The library is empty."));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn first_run_offers_a_small_chat_model_that_fits_and_one_click_runs_it() {
        let big = tiny_llama("chatty q8", 8);
        let small = tiny_llama("chatty q4", 4);
        let hub = FakeHub::start(vec![
            FakeRepo::new(
                "acme/chatty-Instruct-GGUF",
                vec![
                    FakeFile::new("chatty.Q8_0.gguf", big),
                    FakeFile::new("chatty.Q4_K_M.gguf", small),
                ],
            ),
            // Not a chat model: not searched for.
            FakeRepo::new(
                "acme/embedder-GGUF",
                vec![FakeFile::new("embed.Q2_K.gguf", tiny_llama("embed", 1))],
            ),
        ]);
        let t = console_on(&hub).await;
        first_run::ensure(&t.console.state).unwrap();
        t.console.state.config_changed().await;
        let c = &t.console;
        // Nothing answers: the pick is searched for in the background.
        let d = load(c).dashboard;
        assert!(d.get_started);
        assert!(
            d.local_note
                .as_deref()
                .is_some_and(|n| n.contains("Looking")),
            "{d:?}"
        );
        let mut pick = None;
        for _ in 0..200 {
            pick = load(c).dashboard.local_pick;
            if pick.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let pick = pick.expect("a pick");
        assert_eq!(pick.repo, "acme/chatty-Instruct-GGUF");
        assert_eq!(pick.file, "chatty.Q4_K_M.gguf", "Q4_K_M preferred");
        assert!(pick.progress.is_none());
        let html = page(c, Page::Dashboard);
        assert!(
            html.contains("id=\"local-pick-run\"") && html.contains("chatty.Q4_K_M.gguf"),
            "{html}"
        );
        // Only headers were read (ranged requests): no download before the click.
        let served = hub.downloads();
        assert!(served.iter().all(|d| d.range.is_some()), "{served:?}");
        // Something else than the offer is refused.
        let n = act(
            c,
            Action::RunLocalPick("acme/embedder-GGUF:embed.Q2_K.gguf".into()),
        )
        .await;
        assert!(!n.ok && n.fix.is_some(), "{n:?}");
        // One click: downloaded, deployed to start on the first request, Chat opens on it.
        let n = act(c, Action::RunLocalPick(pick.spec.clone())).await;
        assert!(n.ok, "{n:?}");
        let mut ready = false;
        for _ in 0..400 {
            if c.starter.take_open_chat() {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(
            ready,
            "the model never became ready: {:?}",
            load(c).dashboard
        );
        let data = load(c);
        assert_eq!(data.models.models.len(), 1);
        let id = data.models.models[0].id;
        let name = format!("local-{id}");
        let dep = data.models.models[0].deployment.clone().expect("deployed");
        assert!(dep.jit, "started on the first request: {dep:?}");
        assert!(!data.dashboard.get_started);
        assert_eq!(data.dashboard.example_model, name, "the snippets name it");
        assert!(
            data.chat.models.iter().any(|m| m.name == name && m.local),
            "{:?}",
            data.chat.models
        );
        assert_eq!(data.chat.model, name, "the Chat page opens on it");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hub_results_page_through_and_finished_downloads_can_be_cleared() {
        let mut repos: Vec<FakeRepo> = (0..35)
            .map(|i| {
                let mut r = FakeRepo::new(
                    &format!("bulk/model-{i:02}-GGUF"),
                    vec![FakeFile::new("m.Q4_K_M.gguf", tiny_llama("bulk", i))],
                );
                r.downloads = 1000 - i;
                r
            })
            .collect();
        repos.push(FakeRepo::new(
            "acme/one-GGUF",
            vec![FakeFile::new("one.Q4_K_M.gguf", tiny_llama("one", 99))],
        ));
        let hub = FakeHub::start(repos);
        let t = console_on(&hub).await;
        let c = &t.console;
        let n = act(
            c,
            Action::HubSearch {
                query: "bulk".into(),
                sort: "downloads".into(),
            },
        )
        .await;
        assert!(n.ok && n.text.contains("more on the next page"), "{n:?}");
        let h = load(c).models.hub;
        assert_eq!((h.results.len(), h.page, h.has_next), (30, 1, true));
        assert_eq!(
            h.results[0].id, "bulk/model-00-GGUF",
            "most downloads first"
        );
        let html = page(c, Page::Models);
        assert!(
            html.contains("Page 1") && html.contains("Next page"),
            "{html}"
        );
        let n = act(c, Action::HubPage(2)).await;
        assert!(n.ok, "{n:?}");
        let h = load(c).models.hub;
        assert_eq!((h.results.len(), h.page, h.has_next), (5, 2, false));
        assert_eq!(h.results[0].id, "bulk/model-30-GGUF");
        act(c, Action::HubPage(1)).await;
        assert_eq!(load(c).models.hub.results[0].id, "bulk/model-00-GGUF");

        // A finished download stays listed until cleared; a running one is kept.
        let n = act(c, Action::Download("acme/one-GGUF:one.Q4_K_M.gguf".into())).await;
        assert!(n.ok, "{n:?}");
        let id = c.hub.queue().unwrap().jobs()[0].id;
        assert!(matches!(finish(c, id).await, JobStatus::Done(_)));
        assert_eq!(load(c).models.hub.downloads.len(), 1);
        assert!(page(c, Page::Models).contains("id=\"clear-downloads\""));
        let n = act(c, Action::ClearFinishedDownloads).await;
        assert!(n.ok && n.text.contains("1 finished"), "{n:?}");
        assert!(load(c).models.hub.downloads.is_empty());
        assert!(!page(c, Page::Models).contains("id=\"downloads\""));
        assert_eq!(
            load(c).models.models.len(),
            1,
            "the model stays in the library"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_gguf_picked_or_dropped_is_imported_and_a_bad_file_says_why() {
        let t = console().await;
        let c = &t.console;
        let html = page(c, Page::Models);
        assert!(
            html.contains("Import GGUF…") && html.contains("accept=\".gguf\""),
            "{html}"
        );
        let file = t.dir.path().join("picked.gguf");
        std::fs::write(&file, tiny_llama("picked one", 5)).unwrap();
        let n = act(c, Action::ImportGguf(file.display().to_string())).await;
        assert!(n.ok && n.text.contains("local-1"), "{n:?}");
        let models = load(c).models.models;
        assert_eq!(models.len(), 1);
        assert_eq!(models[0].path, file.display().to_string());
        // Not a GGUF: refused, with the reason and the fix; nothing added.
        let junk = t.dir.path().join("notes.gguf");
        std::fs::write(&junk, b"hello").unwrap();
        let n = act(c, Action::ImportGguf(junk.display().to_string())).await;
        assert!(
            !n.ok && n.text.contains("notes.gguf") && n.fix.is_some(),
            "{n:?}"
        );
        let n = act(c, Action::ImportGguf(String::new())).await;
        assert!(!n.ok, "{n:?}");
        assert_eq!(load(c).models.models.len(), 1);
    }
}
