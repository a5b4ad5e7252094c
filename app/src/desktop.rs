//! The desktop layer: window, tray icon, quitting. The only module that knows the
//! desktop runtime; views stay renderer-agnostic.

use std::process::ExitCode;
use std::sync::Arc;

use dioxus::desktop::trayicon::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu};
use dioxus::desktop::trayicon::{Icon, TrayIcon, TrayIconBuilder};
use dioxus::desktop::{Config as DesktopConfig, LogicalSize, WindowBuilder, WindowCloseBehaviour};
use dioxus::prelude::*;
use gateway_core::Config;

use crate::controller::GatewayController;
use crate::views::data::{Action, ConsoleData, LogFilter, Notice, NoticeEvent};
use crate::views::{GatewayInfo, GatewayState, Page, STYLESHEET, Shell};

/// Whether a graphical session is available.
pub fn display_available() -> bool {
    if cfg!(any(target_os = "windows", target_os = "macos")) {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// Run the window with the gateway in-process on one multi-thread runtime.
pub fn run(config: Config) -> ExitCode {
    // One BurnCloud per data folder: a second launch brings the first window forward.
    let lock = match crate::instance::claim(&config.data_dir) {
        Ok(l) => l,
        Err(refused) => {
            if refused.owner.as_ref().is_some_and(crate::instance::wake) {
                eprintln!(
                    "{}
Its window was brought to the front.",
                    refused.message
                );
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {}", refused.message);
            return ExitCode::FAILURE;
        }
    };
    let (wake_tx, wake_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    if let Err(e) = crate::instance::listen_for_wake(&lock, move || {
        let _ = wake_tx.send(());
    }) {
        tracing::warn!(error = %e, "a second launch will not be able to show this window");
    }
    let Some(rt) = crate::router::runtime() else {
        return ExitCode::FAILURE;
    };
    let _guard = rt.enter();
    // Caught before the address is printed (see router::Shutdown).
    let mut stop = crate::router::Shutdown::listen();
    let controller = Arc::new(GatewayController::new(config));
    rt.block_on(controller.start());
    crate::instance::set_port(&lock, &controller.status().url);
    match controller.status().state {
        GatewayState::Running => crate::router::say(format_args!(
            "BurnCloud gateway listening on {}",
            controller.status().url
        )),
        GatewayState::Failed(e) => eprintln!("gateway not started: {e}"),
        _ => {}
    }
    // Close to tray: the Settings page's choice, or BURNCLOUD_CLOSE_TO_TRAY=1.
    let saved_close = controller
        .console()
        .and_then(|c| c.setting(crate::console::CLOSE_TO_TRAY_KEY));
    let close = if std::env::var("BURNCLOUD_CLOSE_TO_TRAY").is_ok_and(|v| v == "1")
        || saved_close.as_deref() == Some("1")
    {
        WindowCloseBehaviour::WindowHides
    } else {
        WindowCloseBehaviour::WindowCloses
    };
    let cfg = DesktopConfig::new()
        .with_menu(None)
        .with_close_behaviour(close)
        .with_custom_head(format!("<style>{STYLESHEET}</style>{SHORTCUTS}"))
        .with_window(
            WindowBuilder::new()
                .with_title("BurnCloud")
                .with_inner_size(LogicalSize::new(1100.0, 720.0))
                .with_min_inner_size(LogicalSize::new(900.0, 600.0)),
        );
    // SIGINT/SIGTERM: flush usage and stop like the tray's Quit does.
    {
        let c = controller.clone();
        rt.spawn(async move {
            stop.wait().await;
            c.shutdown().await;
            std::process::exit(0);
        });
    }
    let handle = rt.handle().clone();
    dioxus::LaunchBuilder::desktop()
        .with_cfg(cfg)
        .with_context(AppContext {
            controller: controller.clone(),
            rt: handle,
            wake: Arc::new(std::sync::Mutex::new(Some(wake_rx))),
        })
        .launch(App);
    // The window closed: stop the gateway and flush usage before exiting.
    rt.block_on(controller.shutdown());
    ExitCode::SUCCESS
}

#[derive(Clone)]
struct AppContext {
    controller: Arc<GatewayController>,
    rt: tokio::runtime::Handle,
    /// Wake-ups from a second launch (taken once by the app).
    wake: Arc<std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<()>>>>,
}

/// Tray menu ids.
const MENU_OPEN: &str = "burncloud-open";
const MENU_TOGGLE: &str = "burncloud-toggle";
const MENU_QUIT: &str = "burncloud-quit";
const MENU_MODEL: &str = "burncloud-model-";

/// Alt+1..9 go to the pages in `Page::ALL`'s order (keyboard navigation besides Tab
/// through the nav buttons).
const SHORTCUTS: &str = r#"<script>
window.addEventListener('keydown', function (e) {
  if (e.altKey && e.key >= '1' && e.key <= '9') {
    var items = document.querySelectorAll('.bc-nav-item');
    var i = Number(e.key) - 1;
    if (items[i]) { items[i].click(); items[i].focus(); e.preventDefault(); }
  }
});
</script>"#;

// A page added to `Page::ALL` needs its key in SHORTCUTS (and in tests/desktop.rs PAGES).
const _: () = assert!(Page::ALL.len() == 9, "SHORTCUTS covers Alt+1..9");

/// A 32×32 flame-coloured disc for the tray (no image decoding needed).
fn tray_icon_image() -> Option<Icon> {
    let size = 32u32;
    let mut rgba = Vec::with_capacity((size * size * 4) as usize);
    for y in 0..size {
        for x in 0..size {
            let (dx, dy) = (x as f32 - 15.5, y as f32 - 15.5);
            let d = (dx * dx + dy * dy).sqrt();
            let alpha = if d < 14.0 { 255 } else { 0 };
            let t = y as f32 / size as f32;
            rgba.extend_from_slice(&[255, (180.0 - 120.0 * t) as u8, 40, alpha]);
        }
    }
    Icon::from_rgba(rgba, size, size).ok()
}

fn build_tray(toggle: &MenuItem, models: &Submenu) -> Result<TrayIcon, String> {
    let menu = Menu::new();
    let open = MenuItem::with_id(MENU_OPEN, "Open BurnCloud", true, None);
    let quit = MenuItem::with_id(MENU_QUIT, "Quit BurnCloud", true, None);
    menu.append_items(&[
        &open,
        toggle,
        models,
        &PredefinedMenuItem::separator(),
        &quit,
    ])
    .map_err(|e| e.to_string())?;
    let mut builder = TrayIconBuilder::new()
        .with_menu(Box::new(menu))
        .with_tooltip("BurnCloud");
    if let Some(icon) = tray_icon_image() {
        builder = builder.with_icon(icon);
    }
    builder.build().map_err(|e| e.to_string())
}

/// The tray's "Local models" submenu: one start/stop item per library model.
fn fill_models_menu(sub: &Submenu, models: &[(i64, String, bool)]) {
    while sub.remove_at(0).is_some() {}
    if models.is_empty() {
        let _ = sub.append(&MenuItem::new("No models in the library", false, None));
    }
    for (id, name, active) in models {
        let label = if *active {
            format!("Stop {name}")
        } else {
            format!("Start {name}")
        };
        let _ = sub.append(&MenuItem::with_id(
            format!("{MENU_MODEL}{id}"),
            label,
            true,
            None,
        ));
    }
}

fn tooltip(info: &GatewayInfo, running: usize) -> String {
    let gw = match &info.state {
        GatewayState::Running => format!("gateway on {}", info.url),
        GatewayState::Starting => "gateway starting".into(),
        GatewayState::Stopped => "gateway stopped".into(),
        GatewayState::Failed(e) => format!("gateway not running: {e}"),
    };
    format!("BurnCloud — {gw}; {running} local model(s) running")
}

/// Put text on the clipboard from the webview (Clipboard API, else a selected textarea).
fn copy_to_clipboard(text: &str) {
    let quoted = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into());
    let js = format!(
        "const t = {quoted}; try {{ await navigator.clipboard.writeText(t); }} catch (e) {{ const a = document.createElement('textarea'); a.value = t; document.body.appendChild(a); a.select(); document.execCommand('copy'); a.remove(); }}"
    );
    let _ = dioxus::document::eval(&js);
}

/// The notice bar after `event` (a key shown once stays until Dismiss).
fn tell(mut notice: Signal<Option<Notice>>, event: NoticeEvent) {
    let next = Notice::after(notice.peek().as_ref(), event);
    if *notice.peek() != next {
        notice.set(next);
    }
}

/// Where the gateway listens (`host:port`), as the Settings page shows it.
fn listening(info: &GatewayInfo) -> String {
    match &info.state {
        GatewayState::Running => info.url.trim_start_matches("http://").to_string(),
        _ => "not listening".to_string(),
    }
}

#[component]
fn App() -> Element {
    let ctx = use_context::<AppContext>();
    let mut info = use_signal(|| ctx.controller.status());
    let mut page = use_signal(|| Page::Dashboard);
    let mut data = use_signal(ConsoleData::default);
    let notice = use_signal(|| None::<Notice>);
    let mut filter = use_signal(LogFilter::default);
    // Asks the reload loop below for a pass now (actions, page changes, the tray's Open).
    let poke = use_hook(|| Arc::new(tokio::sync::Notify::new()));
    // Follow the gateway's status.
    let controller = ctx.controller.clone();
    let p1 = poke.clone();
    use_future(move || {
        let mut rx = controller.subscribe();
        let poke = p1.clone();
        async move {
            while rx.changed().await.is_ok() {
                let next: GatewayInfo = rx.borrow().clone();
                info.set(next);
                poke.notify_one();
            }
        }
    });
    // A second launch asked for this window: show it, restore it, focus it.
    let mut wake = ctx.wake.lock().unwrap_or_else(|p| p.into_inner()).take();
    let p0 = poke.clone();
    use_future(move || {
        let mut wake = wake.take();
        let poke = p0.clone();
        async move {
            let Some(rx) = wake.as_mut() else { return };
            while rx.recv().await.is_some() {
                let w = dioxus::desktop::window();
                w.set_visible(true);
                w.set_minimized(false);
                w.set_focus();
                poke.notify_one();
                tracing::info!("shown at the request of a second launch");
            }
        }
    });
    // Reload the pages' data when something they show changed, never on a timer: after
    // every action and page change (`poke`), when the gateway commits usage or reloads its
    // routing (another process included), when local models change state, when a download
    // moves, and at each new minute (the charts). While the window is hidden in the tray,
    // nothing is read. A burst of changes (traffic) is read at most once a second.
    let c2 = ctx.clone();
    let p2 = poke.clone();
    use_future(move || {
        let ctx = c2.clone();
        let poke = p2.clone();
        async move {
            let console = ctx.controller.console();
            let mut statuses = console
                .as_ref()
                .and_then(|c| c.runtime.as_ref().map(|r| r.subscribe()));
            let mut changes = console.as_ref().map(|c| c.state.subscribe_changes());
            // New engine log lines: the Models page's log tails follow them.
            let mut log_lines = console
                .as_ref()
                .and_then(|c| c.runtime.as_ref().map(|r| r.subscribe_logs()));
            let mut last_load: Option<std::time::Instant> = None;
            loop {
                let visible = dioxus::desktop::window().is_visible();
                if visible && let Some(console) = ctx.controller.console() {
                    let f = filter.peek().clone();
                    let listening = listening(&info.peek());
                    // A download that failed since the last pass: say why, with a fix.
                    if let Some(n) = console.hub.take_notices().pop() {
                        tell(notice, NoticeEvent::Shown(n));
                    }
                    let loaded = ctx
                        .rt
                        .spawn_blocking(move || console.load(&f, &listening))
                        .await;
                    last_load = Some(std::time::Instant::now());
                    match loaded {
                        // Re-render only what changed: an equal load is not set.
                        Ok(Ok(d)) => {
                            if *data.peek() != d {
                                data.set(d);
                            }
                            // The first-run model is ready: on to the Chat page.
                            if ctx
                                .controller
                                .console()
                                .is_some_and(|c| c.starter.take_open_chat())
                            {
                                page.set(Page::Chat);
                                tell(
                                    notice,
                                    NoticeEvent::Shown(Notice::ok(
                                        "The model is in the library and starts on the first message.",
                                    )),
                                );
                            }
                        }
                        Ok(Err(e)) => tell(
                            notice,
                            NoticeEvent::Shown(Notice::error(
                                format!("could not read the database: {e}"),
                                Some("Check the data folder's disk space and permissions."),
                            )),
                        ),
                        Err(_) => {}
                    }
                }
                // Wait for the next minute (the charts), a poke or an event. A log line
                // wakes only the Models page (the others show no log); it is not a reload.
                let event = loop {
                    let now = gateway_core::vocab::now_ms();
                    let minute = std::time::Duration::from_millis(
                        (60_000 - now.rem_euclid(60_000)) as u64 + 50,
                    );
                    let woke = tokio::select! {
                        _ = tokio::time::sleep(minute) => Some(false),
                        _ = poke.notified() => Some(false),
                        r = async { changes.as_mut()?.changed().await.ok() } , if changes.is_some() => {
                            if r.is_none() { changes = None; }
                            Some(true)
                        }
                        r = async { statuses.as_mut()?.changed().await.ok() }, if statuses.is_some() => {
                            if r.is_none() { statuses = None; }
                            Some(true)
                        }
                        r = async { log_lines.as_mut()?.changed().await.ok() }, if log_lines.is_some() => {
                            if r.is_none() { log_lines = None; }
                            (*page.peek() == Page::Models).then_some(true)
                        }
                    };
                    if let Some(event) = woke {
                        break event;
                    }
                };
                // Hidden: nothing is read until the window is shown (the tray's Open pokes).
                if event && visible {
                    let since = last_load.map(|t| t.elapsed()).unwrap_or_default();
                    let wait = std::time::Duration::from_secs(1)
                        .saturating_sub(since)
                        .max(std::time::Duration::from_millis(100));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    });
    // The streaming chat answer, as it arrives (at most ~30 times a second); when it
    // ends, the saved conversation is read again.
    let c3 = ctx.clone();
    let p3 = poke.clone();
    use_future(move || {
        let ctx = c3.clone();
        let poke = p3.clone();
        async move {
            let Some(console) = ctx.controller.console() else {
                return;
            };
            let mut rx = console.chat.subscribe();
            while rx.changed().await.is_ok() {
                tokio::time::sleep(std::time::Duration::from_millis(33)).await;
                rx.borrow_and_update();
                let live = console.chat.live();
                let ended = live.is_none() && data.peek().chat.live.is_some();
                if data.peek().chat.live != live {
                    data.with_mut(|d| d.chat.live = live);
                }
                if ended {
                    poke.notify_one();
                }
            }
        }
    });
    // Tell a benchmark (and the log) when the first frame is on screen.
    use_hook(|| {
        spawn(async move {
            let mut e = dioxus::document::eval(
                "requestAnimationFrame(() => requestAnimationFrame(() => dioxus.send(true)));",
            );
            if e.recv::<bool>().await.is_ok() {
                let ms = crate::STARTED
                    .get()
                    .map(|t| t.elapsed().as_millis())
                    .unwrap_or(0);
                eprintln!("burncloud: window drawn {ms} ms after start");
            }
        })
    });
    // The window title names the page (tests and screen readers use it).
    use_effect(move || {
        dioxus::desktop::window().set_title(&format!("BurnCloud · {}", page().title()));
    });

    // Tray: built once on the GUI thread and kept alive; no tray host is not fatal.
    let toggle_item = use_hook(|| MenuItem::with_id(MENU_TOGGLE, "Stop gateway", true, None));
    let models_menu = use_hook(|| Submenu::new("Local models", true));
    let tray = use_hook({
        let toggle_item = toggle_item.clone();
        let models_menu = models_menu.clone();
        move || match build_tray(&toggle_item, &models_menu) {
            Ok(t) => Some(Rc::new(t)),
            Err(e) => {
                tracing::warn!("no tray icon: {e}");
                None
            }
        }
    });
    let mut tray_models = use_signal(Vec::<(i64, String, bool)>::new);
    {
        let label = if info().state == GatewayState::Running {
            "Stop gateway"
        } else {
            "Start gateway"
        };
        toggle_item.set_text(label);
        let models: Vec<(i64, String, bool)> = data()
            .models
            .models
            .iter()
            .map(|m| {
                (
                    m.id,
                    m.name.clone(),
                    m.deployment.as_ref().is_some_and(|d| d.active),
                )
            })
            .collect();
        if *tray_models.peek() != models || models.is_empty() && models_menu.items().is_empty() {
            fill_models_menu(&models_menu, &models);
            let running = models.iter().filter(|m| m.2).count();
            if let Some(t) = &tray {
                let _ = t.set_tooltip(Some(tooltip(&info(), running)));
            }
            tray_models.set(models);
        } else if let Some(t) = &tray {
            let running = models.iter().filter(|m| m.2).count();
            let _ = t.set_tooltip(Some(tooltip(&info(), running)));
        }
    }

    // Actions from the pages and the tray.
    let act = {
        let ctx = ctx.clone();
        let poke = poke.clone();
        move |a: Action| {
            let ctx = ctx.clone();
            let poke = poke.clone();
            // From the dashboard or a model's row: the Chat page, with that model.
            if matches!(a, Action::ChatWith(_)) {
                let mut page = page;
                page.set(Page::Chat);
                tell(notice, NoticeEvent::MovedOn);
            }
            // A message sent says nothing; an earlier refusal must not stay on screen.
            if matches!(a, Action::ChatSend(_)) && notice.peek().as_ref().is_some_and(|n| !n.ok) {
                tell(notice, NoticeEvent::MovedOn);
            }
            // Dismiss: the notice and a key shown once with it go.
            if matches!(a, Action::DismissNotice) {
                tell(notice, NoticeEvent::Dismissed);
                return;
            }
            spawn(async move {
                let result = match a {
                    Action::ToggleGateway => {
                        let c = ctx.controller.clone();
                        let _ = ctx.rt.spawn(async move { c.toggle().await }).await;
                        None
                    }
                    Action::Copy(text) => {
                        copy_to_clipboard(&text);
                        Some(Notice::ok("Copied to the clipboard."))
                    }
                    Action::FilterLogs(f) => {
                        filter.set(f);
                        None
                    }
                    other => {
                        let Some(console) = ctx.controller.console() else {
                            return;
                        };
                        let restart = matches!(other, Action::SaveListen { .. });
                        let close = match &other {
                            Action::SetCloseToTray(on) => Some(*on),
                            _ => None,
                        };
                        let connect = matches!(other, Action::ConnectProvider(_));
                        let reader = console.clone();
                        let n = ctx
                            .rt
                            .spawn(async move { console.apply(other).await })
                            .await
                            .ok()
                            .flatten();
                        // The lists change with the message, not at the next reload.
                        let (f, at) = (filter.peek().clone(), listening(&info.peek()));
                        if let Ok(Ok(d)) = ctx.rt.spawn_blocking(move || reader.load(&f, &at)).await
                        {
                            data.set(d);
                        }
                        if n.as_ref().is_some_and(|n| n.ok) {
                            // A provider connected on first run: on to the Chat page.
                            if connect {
                                let mut page = page;
                                page.set(Page::Chat);
                            }
                            if restart {
                                let c = ctx.controller.clone();
                                let _ = ctx.rt.spawn(async move { c.restart().await }).await;
                            }
                            if let Some(on) = close {
                                dioxus::desktop::window().set_close_behavior(if on {
                                    WindowCloseBehaviour::WindowHides
                                } else {
                                    WindowCloseBehaviour::WindowCloses
                                });
                            }
                        }
                        n
                    }
                };
                if let Some(n) = result {
                    tell(notice, NoticeEvent::Shown(n));
                }
                poke.notify_one();
            });
        }
    };
    let on_menu = {
        let ctx = ctx.clone();
        let act = act.clone();
        let poke = poke.clone();
        move |id: &str| match id {
            MENU_OPEN => {
                let w = dioxus::desktop::window();
                w.set_visible(true);
                w.set_focus();
                poke.notify_one();
            }
            MENU_TOGGLE => act(Action::ToggleGateway),
            MENU_QUIT => {
                let c = ctx.controller.clone();
                let rt = ctx.rt.clone();
                // Block a helper thread, not the GUI thread's executor, while every child
                // process stops and usage is flushed.
                let _ = std::thread::spawn(move || rt.block_on(c.shutdown())).join();
                std::process::exit(0);
            }
            other => {
                if let Some(id) = other
                    .strip_prefix(MENU_MODEL)
                    .and_then(|n| n.parse::<i64>().ok())
                {
                    let active = tray_models.peek().iter().any(|(m, _, on)| *m == id && *on);
                    act(if active {
                        Action::StopModel(id)
                    } else {
                        Action::StartModel(id)
                    });
                }
            }
        }
    };
    // In dioxus 0.7.10 tray menu clicks arrive through the muda handler; register both.
    let on_menu_a = on_menu.clone();
    dioxus::desktop::use_muda_event_handler(move |e: &MenuEvent| on_menu_a(e.id().as_ref()));
    dioxus::desktop::use_tray_menu_event_handler(move |e: &MenuEvent| on_menu(e.id().as_ref()));

    rsx! {
        Shell {
            info: info(),
            data: data(),
            page: page(),
            notice: notice(),
            on_navigate: move |p| {
                page.set(p);
                tell(notice, NoticeEvent::MovedOn);
                poke.notify_one();
            },
            on_action: act,
        }
    }
}

use std::rc::Rc;
