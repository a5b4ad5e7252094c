//! The web console at `/`: the desktop's pages in a browser, for the router on a server
//! and for the desktop's own gateway.
//!
//! Dioxus LiveView: the same components as the desktop run on the server, one VirtualDom
//! per open page, and a WebSocket carries DOM edits out and events in. Chosen over server
//! rendering with a thin client because the pages are stateful forms (the desktop's code,
//! unchanged) and a thin client would be a second copy of every page's behaviour in
//! JavaScript.
//!
//! Security: the routes sit behind the gateway's Host/Origin guard. Logging in
//! (`POST /console/api/session`, JSON only, throttled like `/api/auth/login`) sets an
//! HttpOnly, SameSite=Strict cookie holding a login token that expires; the WebSocket is
//! accepted only from this page's own origin with a valid cookie, and the session is
//! checked again every 2 s (expired, password changed, user disabled: back to the login
//! page). Admins get the desktop's pages; a plain user gets `UserShell`, fed by
//! `UserConsole`, which reads and changes only that user's things.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use dioxus::prelude::*;
use dioxus_liveview::LiveViewPool;
use gateway_core::http::{SESSION_COOKIE, Session, cookie};

use crate::console::Console;
use crate::console::user::UserConsole;
use crate::views::data::{Action, ConsoleData, LogFilter, Notice, NoticeEvent, UserData};
use crate::views::user::{UserPage, UserShell};
use crate::views::{GatewayInfo, GatewayState, Page, STYLESHEET, Shell};

#[derive(Clone)]
struct Web {
    console: Console,
    /// Whether `/` runs the LiveView console (the router) or says to use the window (the
    /// desktop app: see [`routes`]).
    live: bool,
    rt: tokio::runtime::Handle,
    /// The LiveView threads, started by the first page that connects.
    pool: Arc<OnceLock<LiveViewPool>>,
}

/// The web console's routes, served on the gateway's listener (see `Gateway::mount`).
/// Must be called inside the gateway's tokio runtime.
///
/// `live: false` (the desktop app) serves the login and registration pages but not the
/// LiveView console: dioxus 0.7 keeps one process-wide event converter, and LiveView's
/// (serialized form data) and the desktop webview's (its own form data) cannot both be
/// installed — the second would make the window's inputs panic.
pub fn routes(console: Console, live: bool) -> Router {
    let web = Web {
        console,
        live,
        rt: tokio::runtime::Handle::current(),
        pool: Arc::default(),
    };
    Router::new()
        .route("/", get(index))
        .route("/register", get(register))
        .route("/favicon.svg", get(favicon))
        .route("/console/ws", get(socket))
        .with_state(web)
}

/// `/`: the console for a valid session, the login page otherwise.
async fn index(State(web): State<Web>, headers: HeaderMap) -> Response {
    match Session::from_cookie(&web.console.state, &headers).await {
        Ok(_) if web.live => page(&console_html()),
        Ok(s) => page(&desktop_html(&s.user.username)),
        Err(_) => page(&login_html()),
    }
}

/// `/register?invite_code=...`: where invitation links lead.
async fn register() -> Response {
    page(&register_html())
}

async fn favicon() -> Response {
    (
        [(header::CONTENT_TYPE, "image/svg+xml")],
        include_str!("../../assets/icons/burncloud.svg"),
    )
        .into_response()
}

/// An HTML page that is never cached, framed or given away in a Referer (invitation
/// codes are in the URL).
fn page(html: &str) -> Response {
    let mut r = Html(html.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    r
}

/// The page's own origin: `Origin` must name exactly the host the page came from (the
/// guard only checks that it is an allowed host; `localhost:8080` is another site's page).
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok());
    match (host, origin) {
        (Some(h), Some(o)) => o == format!("http://{h}") || o == format!("https://{h}"),
        _ => false,
    }
}

/// `/console/ws`: one VirtualDom for one open page of a signed-in user.
async fn socket(State(web): State<Web>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    if !web.live {
        return (StatusCode::NOT_FOUND, "no web console here").into_response();
    }
    if !same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "the web console's socket only answers its own page",
        )
            .into_response();
    }
    let session = match Session::from_cookie(&web.console.state, &headers).await {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let token = cookie(&headers, SESSION_COOKIE).unwrap_or_default();
    let admin = session.is_admin();
    let user = session.user;
    let mut console = web.console.clone();
    console.acting = Some(user.id.clone());
    let ctx = WebContext {
        user_console: UserConsole::new(console.state.clone(), user.id.clone(), &host),
        console,
        username: user.username,
        admin,
        token,
        host,
        rt: web.rt.clone(),
    };
    let pool = web.pool.get_or_init(LiveViewPool::new).clone();
    ws.on_upgrade(move |socket| async move {
        let socket = dioxus_liveview::axum_socket(socket);
        let _ = pool
            .launch_virtualdom(socket, move || VirtualDom::new_with_props(web_root, ctx))
            .await;
    })
}

/// What one open page of the console knows.
#[derive(Clone)]
struct WebContext {
    /// The admin's service (acting as the signed-in admin); never used for plain users.
    console: Console,
    user_console: UserConsole,
    username: String,
    admin: bool,
    /// The session's login token, checked again every pass.
    token: String,
    host: String,
    rt: tokio::runtime::Handle,
}

impl WebContext {
    /// Whether the session still holds (not expired, same password, user enabled) with the
    /// role this page was opened for: an admin demoted (or a user promoted) meanwhile
    /// starts again from `/`, which opens the console of their new role.
    async fn session_valid(&self) -> bool {
        let state = self.console.state.clone();
        let token = self.token.clone();
        let admin = self.admin;
        self.rt
            .spawn(async move {
                Session::for_token(&state, &token)
                    .await
                    .is_ok_and(|s| s.is_admin() == admin)
            })
            .await
            .unwrap_or(false)
    }
}

fn web_root(ctx: WebContext) -> Element {
    let admin = ctx.admin;
    use_context_provider(|| ctx);
    if admin {
        rsx! { AdminConsole {} }
    } else {
        rsx! { UserConsolePage {} }
    }
}

/// Back to `/` (the login page once the session is gone).
fn leave() {
    let _ = dioxus::document::eval("window.location.href = '/';");
}

fn logout() {
    let _ = dioxus::document::eval(
        "fetch('/console/api/session', {method: 'DELETE', headers: {'content-type': 'application/json'}}).finally(() => { window.location.href = '/'; });",
    );
}

/// The tab's title names the page (as the desktop's window title does).
fn set_title(page: &str) {
    let title = serde_json::to_string(&format!("BurnCloud · {page}")).unwrap_or_default();
    let _ = dioxus::document::eval(&format!("document.title = {title};"));
}

/// Put text on the clipboard (Clipboard API, else a selected textarea).
fn copy_to_clipboard(text: &str) {
    let quoted = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into());
    let js = format!(
        "const t = {quoted}; try {{ await navigator.clipboard.writeText(t); }} catch (e) {{ const a = document.createElement('textarea'); a.value = t; document.body.appendChild(a); a.select(); document.execCommand('copy'); a.remove(); }}"
    );
    let _ = dioxus::document::eval(&js);
}

/// What the page does itself (clipboard, log filter, logout): `Some` with the notice to
/// show when it handled the action, `None` for an action for the console.
fn in_page(a: &Action, mut filter: Signal<LogFilter>) -> Option<Option<Notice>> {
    match a {
        Action::Copy(text) => {
            copy_to_clipboard(text);
            Some(Some(Notice::ok("Copied to the clipboard.")))
        }
        Action::FilterLogs(f) => {
            filter.set(f.clone());
            Some(None)
        }
        Action::Logout => {
            logout();
            Some(None)
        }
        _ => None,
    }
}

/// Wait up to 2 s, or less when an action asks for a reload.
async fn next_pass(reload: Signal<u64>, seen: u64) {
    for _ in 0..20 {
        if *reload.peek() != seen {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn show(notice: Signal<Option<Notice>>, n: Notice) {
    tell(notice, NoticeEvent::Shown(n));
}

/// The notice bar after `event` (a key shown once stays until Dismiss).
fn tell(mut notice: Signal<Option<Notice>>, event: NoticeEvent) {
    let next = Notice::after(notice.peek().as_ref(), event);
    if *notice.peek() != next {
        notice.set(next);
    }
}

const DESKTOP_ONLY: &str =
    "This is a setting of the desktop app; the web console cannot change it.";

#[component]
fn AdminConsole() -> Element {
    let ctx = use_context::<WebContext>();
    let mut page = use_signal(|| Page::Dashboard);
    let mut data = use_signal(ConsoleData::default);
    let notice = use_signal(|| None::<Notice>);
    let filter = use_signal(LogFilter::default);
    let mut reload = use_signal(|| 0u64);
    let c = ctx.clone();
    use_future(move || {
        let ctx = c.clone();
        async move {
            loop {
                if !ctx.session_valid().await {
                    leave();
                    return;
                }
                let seen = *reload.peek();
                let console = ctx.console.clone();
                let f = filter.peek().clone();
                let listening = ctx.host.clone();
                match ctx
                    .rt
                    .spawn_blocking(move || console.load(&f, &listening))
                    .await
                {
                    Ok(Ok(d)) => data.set(d),
                    Ok(Err(e)) => show(
                        notice,
                        Notice::error(format!("could not read the database: {e}"), None),
                    ),
                    Err(_) => {}
                }
                next_pass(reload, seen).await;
            }
        }
    });
    let act = {
        let ctx = ctx.clone();
        move |a: Action| {
            if matches!(a, Action::DismissNotice) {
                tell(notice, NoticeEvent::Dismissed);
                return;
            }
            let ctx = ctx.clone();
            spawn(async move {
                let result = match in_page(&a, filter) {
                    Some(handled) => handled,
                    None => match a {
                        Action::ToggleGateway
                        | Action::SaveListen { .. }
                        | Action::SetCloseToTray(_)
                        | Action::SetAutostart(_) => Some(Notice::error(
                            DESKTOP_ONLY,
                            Some("On a server, set HOST and PORT in the router's environment."),
                        )),
                        Action::ExportRedemptions { .. } => Some(Notice::error(
                            "Save CSV file writes on the machine BurnCloud runs on, not on this computer.",
                            Some("Use Copy CSV: it puts the codes on this computer's clipboard."),
                        )),
                        other => {
                            let console = ctx.console.clone();
                            ctx.rt
                                .spawn(async move { console.apply(other).await })
                                .await
                                .ok()
                                .flatten()
                        }
                    },
                };
                if let Some(n) = result {
                    show(notice, n);
                }
                *reload.write() += 1;
            });
        }
    };
    use_effect(move || set_title(page().title()));
    let info = GatewayInfo {
        url: format!("http://{}", ctx.host),
        state: GatewayState::Running,
        data_dir: ctx.console.data_dir.display().to_string(),
    };
    rsx! {
        Shell {
            info,
            data: data(),
            page: page(),
            notice: notice(),
            account: Some(ctx.username.clone()),
            on_navigate: move |p| {
                page.set(p);
                tell(notice, NoticeEvent::MovedOn);
                *reload.write() += 1;
            },
            on_action: act,
        }
    }
}

#[component]
fn UserConsolePage() -> Element {
    let ctx = use_context::<WebContext>();
    let mut page = use_signal(|| UserPage::Overview);
    let mut data = use_signal(|| UserData {
        username: ctx.username.clone(),
        ..Default::default()
    });
    let notice = use_signal(|| None::<Notice>);
    let filter = use_signal(LogFilter::default);
    let mut reload = use_signal(|| 0u64);
    let c = ctx.clone();
    use_future(move || {
        let ctx = c.clone();
        async move {
            loop {
                if !ctx.session_valid().await {
                    leave();
                    return;
                }
                let seen = *reload.peek();
                let user = ctx.user_console.clone();
                let f = filter.peek().clone();
                match ctx.rt.spawn_blocking(move || user.load(&f)).await {
                    Ok(Ok(d)) => data.set(d),
                    Ok(Err(e)) => show(
                        notice,
                        Notice::error(format!("could not read your data: {e}"), None),
                    ),
                    Err(_) => {}
                }
                next_pass(reload, seen).await;
            }
        }
    });
    let act = {
        let ctx = ctx.clone();
        move |a: Action| {
            if matches!(a, Action::DismissNotice) {
                tell(notice, NoticeEvent::Dismissed);
                return;
            }
            let ctx = ctx.clone();
            spawn(async move {
                let result = match in_page(&a, filter) {
                    Some(handled) => handled,
                    None => {
                        let user = ctx.user_console.clone();
                        ctx.rt
                            .spawn(async move { user.apply(a).await })
                            .await
                            .ok()
                            .flatten()
                    }
                };
                if let Some(n) = result {
                    show(notice, n);
                }
                *reload.write() += 1;
            });
        }
    };
    use_effect(move || set_title(page().title()));
    rsx! {
        UserShell {
            data: data(),
            page: page(),
            notice: notice(),
            base_url: format!("http://{}", ctx.host),
            on_navigate: move |p| {
                page.set(p);
                tell(notice, NoticeEvent::MovedOn);
                *reload.write() += 1;
            },
            on_action: act,
        }
    }
}

fn console_html() -> String {
    let glue = dioxus_liveview::interpreter_glue("/console/ws");
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>BurnCloud</title><link rel="icon" href="/favicon.svg"><style>{STYLESHEET}</style></head>
<body><div id="main"></div>{glue}
<script>
// The server ends the socket when the session ends or the gateway stops: start again
// from `/` (the login page when the session is gone).
if (window.ipc) {{ window.ipc.ws.addEventListener('close', () => setTimeout(() => window.location.reload(), 1000)); }}
</script></body></html>"#
    )
}

/// A small form page in the console's style; `script` handles its submit.
fn form_html(title: &str, intro: &str, fields: &str, button: &str, script: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · BurnCloud</title><link rel="icon" href="/favicon.svg"><style>{STYLESHEET}
.bc-login {{ max-width: 420px; margin: 10vh auto; }}
.bc-login label {{ display: block; margin-bottom: 12px; }}
.bc-login input {{ display: block; width: 100%; box-sizing: border-box; }}
</style></head>
<body class="bc-shell-web"><main class="bc-login">
<form class="bc-card bc-form" id="form">
<div class="bc-brand"><span class="bc-brand-mark">B</span><span>BurnCloud</span></div>
<h1 class="bc-title">{title}</h1><p class="bc-caption">{intro}</p>
{fields}
<p class="bc-notice bc-error" id="error" role="alert" hidden></p>
<button class="bc-button bc-button-primary" type="submit" id="submit">{button}</button>
</form></main>
<script>
const $ = (id) => document.getElementById(id);
async function post(url, body) {{
  const r = await fetch(url, {{ method: 'POST', headers: {{ 'content-type': 'application/json' }}, body: JSON.stringify(body) }});
  let j = {{}};
  try {{ j = await r.json(); }} catch (e) {{ j = {{ message: 'the gateway answered ' + r.status }}; }}
  if (!r.ok || j.success === false) {{ throw new Error(j.message || ('the gateway answered ' + r.status)); }}
  return j;
}}
function fail(e) {{ $('error').textContent = e.message; $('error').hidden = false; $('submit').disabled = false; }}
{script}
</script></body></html>"#
    )
}

/// `/` of the desktop app's gateway for a signed-in user.
fn desktop_html(username: &str) -> String {
    let name: String = username
        .chars()
        .filter(|c| c.is_alphanumeric() || "_-.@".contains(*c))
        .collect();
    form_html(
        "Signed in",
        &format!(
            "Signed in as {name}. This BurnCloud runs as a desktop app: its console is the app's window on the machine that runs it. Keys for your tools come from its owner, or from the console API (POST /console/api/tokens with a login token). A server started with `burncloud router` serves the full console here."
        ),
        "",
        "Log out",
        r#"$('form').addEventListener('submit', async (e) => {
  e.preventDefault();
  await fetch('/console/api/session', { method: 'DELETE', headers: { 'content-type': 'application/json' } });
  window.location.href = '/';
});"#,
    )
}

fn login_html() -> String {
    form_html(
        "Sign in",
        "Sign in to manage this gateway. Have an invitation link? Open it to create an account.",
        r#"<label>Username <input id="username" name="username" autocomplete="username" required></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password" required></label>"#,
        "Sign in",
        r#"$('form').addEventListener('submit', async (e) => {
  e.preventDefault(); $('submit').disabled = true; $('error').hidden = true;
  try { await post('/console/api/session', { username: $('username').value, password: $('password').value }); window.location.href = '/'; }
  catch (err) { fail(err); }
});"#,
    )
}

fn register_html() -> String {
    form_html(
        "Create your account",
        "You were invited to this BurnCloud gateway. Choose a username and a password.",
        r#"<label>Username <input id="username" name="username" autocomplete="username" required></label>
<label>Password (at least 8 characters, two kinds: letters, digits, symbols) <input id="password" name="password" type="password" autocomplete="new-password" required></label>
<label>Email (optional) <input id="email" name="email" type="email" autocomplete="email"></label>
<label>Invitation code <input id="invite_code" name="invite_code"></label>"#,
        "Create account",
        r#"$('invite_code').value = new URLSearchParams(window.location.search).get('invite_code') || '';
$('form').addEventListener('submit', async (e) => {
  e.preventDefault(); $('submit').disabled = true; $('error').hidden = true;
  const body = { username: $('username').value, password: $('password').value };
  if ($('email').value) body.email = $('email').value;
  if ($('invite_code').value) body.invite_code = $('invite_code').value;
  try {
    await post('/api/auth/register', body);
    await post('/console/api/session', { username: body.username, password: body.password });
    window.location.href = '/';
  } catch (err) { fail(err); }
});"#,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::store::{now_secs, users};

    fn context(console: &Console, user: &users::User, admin: bool) -> WebContext {
        WebContext {
            console: console.clone(),
            user_console: UserConsole::new(console.state.clone(), user.id.clone(), "127.0.0.1"),
            username: user.username.clone(),
            admin,
            token: console
                .state
                .jwt
                .issue(&user.id, &user.username, user.role, now_secs()),
            host: "127.0.0.1:3000".into(),
            rt: tokio::runtime::Handle::current(),
        }
    }

    #[tokio::test]
    async fn an_open_page_ends_when_its_users_role_changes() {
        let t = crate::console::testing::console().await;
        let state = t.console.state.clone();
        let (first, second) = state
            .store
            .with(|c| {
                let first = users::create(c, "admin", None, "x")?;
                let second = users::create_by_admin(
                    c,
                    users::NewAccount {
                        username: "boss",
                        email: None,
                        password_hash: "x",
                        role: users::Role::Admin,
                        group: "default",
                        balance_nano: None,
                    },
                )?;
                Ok((first, second))
            })
            .unwrap();
        let admin_page = context(&t.console, &second, true);
        assert!(admin_page.session_valid().await);
        // Demoted by the other admin: the admin page ends; a user's page would hold.
        state
            .store
            .with(|c| {
                users::update(
                    c,
                    &second.id,
                    users::UserChange {
                        role: Some(users::Role::User),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        assert!(!admin_page.session_valid().await);
        assert!(context(&t.console, &second, false).session_valid().await);
        assert!(context(&t.console, &first, true).session_valid().await);
    }
}
