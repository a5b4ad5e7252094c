//! The desktop layer: window, tray icon, quitting. The only module that knows the
//! desktop runtime; views stay renderer-agnostic.

use std::process::ExitCode;
use std::sync::Arc;

use dioxus::desktop::trayicon::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem};
use dioxus::desktop::trayicon::{Icon, TrayIcon, TrayIconBuilder};
use dioxus::desktop::{Config as DesktopConfig, LogicalSize, WindowBuilder, WindowCloseBehaviour};
use dioxus::prelude::*;
use gateway_core::Config;

use crate::controller::GatewayController;
use crate::views::{GatewayInfo, STYLESHEET, Shell};

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
    let Some(rt) = crate::router::runtime() else {
        return ExitCode::FAILURE;
    };
    let _guard = rt.enter();
    let controller = Arc::new(GatewayController::new(config));
    rt.block_on(controller.start());
    match controller.status().state {
        crate::views::GatewayState::Running => {
            println!("BurnCloud gateway listening on {}", controller.status().url)
        }
        crate::views::GatewayState::Failed(e) => eprintln!("gateway not started: {e}"),
        _ => {}
    }
    let close = if std::env::var("BURNCLOUD_CLOSE_TO_TRAY").is_ok_and(|v| v == "1") {
        WindowCloseBehaviour::WindowHides
    } else {
        WindowCloseBehaviour::WindowCloses
    };
    let cfg = DesktopConfig::new()
        .with_menu(None)
        .with_close_behaviour(close)
        .with_custom_head(format!("<style>{STYLESHEET}</style>"))
        .with_window(
            WindowBuilder::new()
                .with_title("BurnCloud")
                .with_inner_size(LogicalSize::new(1100.0, 720.0))
                .with_min_inner_size(LogicalSize::new(720.0, 480.0)),
        );
    // SIGINT/SIGTERM: flush usage and stop like the tray's Quit does.
    {
        let c = controller.clone();
        rt.spawn(async move {
            crate::router::shutdown_signal().await;
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
}

/// Tray menu ids.
const MENU_OPEN: &str = "burncloud-open";
const MENU_TOGGLE: &str = "burncloud-toggle";
const MENU_QUIT: &str = "burncloud-quit";

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

fn build_tray(toggle: &MenuItem) -> Result<TrayIcon, String> {
    let menu = Menu::new();
    let open = MenuItem::with_id(MENU_OPEN, "Open BurnCloud", true, None);
    let quit = MenuItem::with_id(MENU_QUIT, "Quit BurnCloud", true, None);
    menu.append_items(&[&open, toggle, &PredefinedMenuItem::separator(), &quit])
        .map_err(|e| e.to_string())?;
    let mut builder = TrayIconBuilder::new()
        .with_menu(Box::new(menu))
        .with_tooltip("BurnCloud");
    if let Some(icon) = tray_icon_image() {
        builder = builder.with_icon(icon);
    }
    builder.build().map_err(|e| e.to_string())
}

#[component]
fn App() -> Element {
    let ctx = use_context::<AppContext>();
    let mut info = use_signal(|| ctx.controller.status());
    // Follow the gateway's status.
    let controller = ctx.controller.clone();
    use_future(move || {
        let mut rx = controller.subscribe();
        async move {
            while rx.changed().await.is_ok() {
                let next: GatewayInfo = rx.borrow().clone();
                info.set(next);
            }
        }
    });
    // Tray: built once on the GUI thread and kept alive; no tray host is not fatal.
    let toggle_item = use_hook(|| MenuItem::with_id(MENU_TOGGLE, "Stop gateway", true, None));
    let _tray = use_hook({
        let toggle_item = toggle_item.clone();
        move || match build_tray(&toggle_item) {
            Ok(t) => Some(Rc::new(t)),
            Err(e) => {
                tracing::warn!("no tray icon: {e}");
                None
            }
        }
    });
    {
        let label = if info().state == crate::views::GatewayState::Running {
            "Stop gateway"
        } else {
            "Start gateway"
        };
        toggle_item.set_text(label);
    }
    let on_menu = {
        let ctx = ctx.clone();
        move |id: &str| match id {
            MENU_OPEN => {
                let w = dioxus::desktop::window();
                w.set_visible(true);
                w.set_focus();
            }
            MENU_TOGGLE => {
                let c = ctx.controller.clone();
                ctx.rt.spawn(async move { c.toggle().await });
            }
            MENU_QUIT => {
                let c = ctx.controller.clone();
                let rt = ctx.rt.clone();
                // Block a helper thread, not the GUI thread's executor, while usage is flushed.
                let _ = std::thread::spawn(move || rt.block_on(c.shutdown())).join();
                std::process::exit(0);
            }
            _ => {}
        }
    };
    // In dioxus 0.7.10 tray menu clicks arrive through the muda handler; register both.
    let on_menu_a = on_menu.clone();
    dioxus::desktop::use_muda_event_handler(move |e: &MenuEvent| on_menu_a(e.id().as_ref()));
    dioxus::desktop::use_tray_menu_event_handler(move |e: &MenuEvent| on_menu(e.id().as_ref()));

    let toggle_ctx = ctx.clone();
    rsx! {
        Shell {
            info: info(),
            on_toggle: move |_| {
                let c = toggle_ctx.controller.clone();
                toggle_ctx.rt.spawn(async move { c.toggle().await });
            },
        }
    }
}

use std::rc::Rc;
