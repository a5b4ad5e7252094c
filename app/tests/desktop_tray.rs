//! The tray icon under Xvfb with a real tray host: Debian's `trayer`, an XEmbed system
//! tray (with no StatusNotifier host on the session bus, libayatana-appindicator shows the
//! icon as an embedded GtkStatusIcon). The test finds the icon in the tray, opens its
//! menu, stops and starts the gateway, starts and stops a library model (a real
//! llama-server) and quits with the model running — and no llama-server is left.
#![cfg(feature = "desktop")]

use std::process::{Command, Stdio};
use std::time::Duration;

use llama_manager::testing::gguf_writer::tiny_llama;
use llama_manager::testing::llama_server;

#[path = "support/screen.rs"]
mod screen;
use screen::{BIN, Proc, Screen, free_port, llama_servers_of, require, wait_until};

/// (id, x, y, width, height) of the shown windows whose name matches `pattern`.
fn windows(screen: &Screen, pattern: &str) -> Vec<(String, i64, i64, i64, i64)> {
    let ids = String::from_utf8_lossy(
        &screen
            .xdo(&["search", "--onlyvisible", "--name", pattern])
            .stdout,
    )
    .lines()
    .map(str::to_string)
    .collect::<Vec<_>>();
    ids.into_iter()
        .filter_map(|id| {
            let geo =
                String::from_utf8_lossy(&screen.xdo(&["getwindowgeometry", "--shell", &id]).stdout)
                    .to_string();
            let g = |k: &str| -> Option<i64> {
                geo.lines()
                    .find_map(|l| l.strip_prefix(&format!("{k}=")))
                    .and_then(|v| v.parse().ok())
            };
            Some((id, g("X")?, g("Y")?, g("WIDTH")?, g("HEIGHT")?))
        })
        .collect()
}

fn health(port: u16) -> bool {
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .is_ok_and(|r| r.status().is_success())
}

#[test]
fn the_tray_menu_toggles_the_gateway_runs_a_model_and_quits_leaving_no_engine() {
    require("trayer");
    require("pgrep");
    let screen = Screen::start();
    let _tray = Proc(
        Command::new("trayer")
            .args([
                "--edge",
                "top",
                "--align",
                "right",
                "--widthtype",
                "request",
                "--height",
                "32",
                "--transparent",
                "false",
            ])
            .env("DISPLAY", format!(":{}", screen.display))
            .env("DBUS_SESSION_BUS_ADDRESS", &screen.bus)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the tray host", Duration::from_secs(20), || {
        !windows(&screen, "^panel$").is_empty()
    });
    // A library model for the "Local models" submenu.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let models = tempfile::tempdir().unwrap();
    let gguf = models.path().join("traytiny.gguf");
    std::fs::write(&gguf, tiny_llama("tray tiny", 21)).unwrap();
    let engine = llama_server().display().to_string();
    let import = Command::new(BIN)
        .args(["model", "import", gguf.to_str().unwrap()])
        .env("BURNCLOUD_DATA_DIR", d)
        .env("HOME", d)
        .env_remove("DATABASE_URL")
        .env_remove("BURNCLOUD_DATABASE_URL")
        .output()
        .unwrap();
    assert!(import.status.success(), "{import:?}");
    let port = free_port();
    let mut app = screen.launch(
        d,
        port,
        "app.log",
        &[
            ("HOME", d.to_str().unwrap()),
            ("LLAMA_SERVER", engine.as_str()),
            ("BURNCLOUD_LOCAL_FIRST_PORT", "19680"),
            ("BURNCLOUD_NVIDIA_SMI", "/nonexistent/nvidia-smi"),
        ],
    );
    wait_until("/health", Duration::from_secs(60), || health(port));
    screen.window("^BurnCloud", Duration::from_secs(60));
    // The icon: the app's window embedded in the tray's panel (top right).
    let mut icon = None;
    wait_until("the icon in the tray", Duration::from_secs(30), || {
        icon = windows(&screen, "^burncloud$")
            .into_iter()
            .find(|(_, x, y, w, h)| *y < 32 && *x > 1000 && *w >= 16 && *h >= 16);
        icon.is_some()
    });
    let (_, ix, iy, iw, ih) = icon.unwrap();
    let (cx, cy) = ((ix + iw / 2).to_string(), (iy + ih / 2).to_string());
    let log = || std::fs::read_to_string(d.join("app.log")).unwrap_or_default();
    // Open the menu (a click on the icon), then pick an item by keyboard.
    let menu = |keys: &[&str]| {
        std::thread::sleep(Duration::from_millis(800));
        screen.xdo(&["mousemove", &cx, &cy, "click", "1"]);
        wait_until("the tray menu", Duration::from_secs(10), || {
            windows(&screen, "^burncloud$")
                .iter()
                .any(|(_, x, y, w, h)| *y >= 20 && *x > 800 && *w > 100 && *h > 60)
        });
        std::thread::sleep(Duration::from_millis(300));
        screen.keys(keys);
    };
    // Open BurnCloud, Stop gateway, Local models ▸, ─, Quit BurnCloud.
    menu(&["Down", "Down", "Return"]);
    wait_until(
        "the gateway stopped from the tray",
        Duration::from_secs(20),
        || !health(port),
    );
    menu(&["Down", "Down", "Return"]);
    wait_until(
        "the gateway started again from the tray",
        Duration::from_secs(20),
        || health(port),
    );
    // Local models ▸ Start traytiny.
    menu(&["Down", "Down", "Down", "Right", "Return"]);
    wait_until(
        "the model started from the tray",
        Duration::from_secs(60),
        || llama_servers_of(models.path()) == 1,
    );
    // Give the window's reload the new state (the submenu says Stop now).
    std::thread::sleep(Duration::from_secs(2));
    menu(&["Down", "Down", "Down", "Right", "Return"]);
    wait_until(
        "the model stopped from the tray",
        Duration::from_secs(30),
        || llama_servers_of(models.path()) == 0,
    );
    std::thread::sleep(Duration::from_secs(2));
    menu(&["Down", "Down", "Down", "Right", "Return"]);
    wait_until("the model started again", Duration::from_secs(60), || {
        llama_servers_of(models.path()) == 1
    });
    // Quit with the model running: the app ends and takes its llama-server along.
    menu(&["Down", "Down", "Down", "Down", "Return"]);
    wait_until(
        "the app quit from the tray",
        Duration::from_secs(30),
        || app.0.try_wait().unwrap().is_some(),
    );
    assert_eq!(
        llama_servers_of(models.path()),
        0,
        "no llama-server outlives the app"
    );
    assert!(!health(port));
    assert!(!log().contains("panicked"), "{}", log());
}
