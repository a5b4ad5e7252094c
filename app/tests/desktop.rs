//! The real desktop binary in a real window under Xvfb: the gateway answers `/health`
//! and the window is not blank. Needs Xvfb, dbus-launch, xdotool and ImageMagick's
//! `import` (installed by `cargo xtask test`); a missing tool is a failure, not a skip.
#![cfg(feature = "desktop")]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_burncloud");

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn require(tool: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is not installed: run `cargo xtask test`, which installs the desktop test tools"
    );
}

fn free_display() -> u32 {
    (90..200)
        .find(|n| {
            !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .expect("a free X display number")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Parse a binary PPM (P6) as written by `import`.
fn ppm_pixels(bytes: &[u8]) -> (usize, usize, Vec<[u8; 3]>) {
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes[i] == b'#' {
            while bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let start = i;
        while !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..i]).to_string());
    }
    assert_eq!(fields[0], "P6");
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let data = &bytes[i + 1..];
    let px = data
        .chunks_exact(3)
        .take(w * h)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    (w, h, px)
}

#[test]
fn desktop_window_runs_the_gateway_and_draws() {
    for tool in ["Xvfb", "dbus-launch", "xdotool", "import"] {
        require(tool);
    }
    let display = free_display();
    let xvfb = Proc(
        Command::new("Xvfb")
            .args([
                &format!(":{display}"),
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("Xvfb", Duration::from_secs(20), || {
        std::path::Path::new(&format!("/tmp/.X11-unix/X{display}")).exists()
    });
    let dbus = Command::new("dbus-launch")
        .arg("--sh-syntax")
        .env("DISPLAY", format!(":{display}"))
        .output()
        .unwrap();
    let dbus_out = String::from_utf8_lossy(&dbus.stdout).to_string();
    let var = |name: &str| {
        dbus_out.lines().find_map(|l| {
            l.strip_prefix(&format!("{name}='"))
                .map(|r| r.trim_end_matches("';").to_string())
        })
    };
    let bus = var("DBUS_SESSION_BUS_ADDRESS").expect("dbus-launch printed an address");
    let bus_pid: Option<u32> = dbus_out.lines().find_map(|l| {
        l.strip_prefix("DBUS_SESSION_BUS_PID=")
            .map(|r| r.trim_end_matches(';').parse().unwrap())
    });

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let app = Proc(
        Command::new(BIN)
            .env("DISPLAY", format!(":{display}"))
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .env("NO_AT_BRIDGE", "1")
            .env("BURNCLOUD_DATA_DIR", dir.path())
            .env("PORT", port.to_string())
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("app.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let health = format!("http://127.0.0.1:{port}/health");
    wait_until(
        "/health from the desktop app",
        Duration::from_secs(60),
        || {
            reqwest::blocking::get(&health)
                .map(|r| r.status().is_success())
                .unwrap_or(false)
        },
    );
    let mut window = String::new();
    wait_until("the BurnCloud window", Duration::from_secs(60), || {
        let out = Command::new("xdotool")
            .args(["search", "--name", "^BurnCloud$"])
            .env("DISPLAY", format!(":{display}"))
            .output()
            .unwrap();
        window = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        !window.is_empty()
    });
    // Let the webview paint, then take a screenshot of the whole screen.
    let shot = dir.path().join("shot.ppm");
    let mut distinct = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(2));
        let ok = Command::new("import")
            .args(["-window", "root", shot.to_str().unwrap()])
            .env("DISPLAY", format!(":{display}"))
            .status()
            .unwrap()
            .success();
        assert!(ok, "import failed");
        let (w, h, px) = ppm_pixels(&std::fs::read(&shot).unwrap());
        assert_eq!((w, h), (1280, 800));
        let mut colors: Vec<[u8; 3]> = px;
        colors.sort_unstable();
        colors.dedup();
        distinct = colors.len();
        if distinct > 50 {
            break;
        }
    }
    if let Ok(keep) = std::env::var("BURNCLOUD_SCREENSHOT_DIR") {
        let _ = std::fs::create_dir_all(&keep);
        let _ = Command::new("import")
            .args(["-window", "root", &format!("{keep}/desktop.png")])
            .env("DISPLAY", format!(":{display}"))
            .status();
    }
    let log = std::fs::read_to_string(dir.path().join("app.log")).unwrap_or_default();
    assert!(
        distinct > 50,
        "the screen looks blank ({distinct} colours); app log:\n{log}"
    );
    // A second app on the same (now busy) port: its window says so and it keeps running.
    let dir2 = tempfile::tempdir().unwrap();
    let mut second = Proc(
        Command::new(BIN)
            .env("DISPLAY", format!(":{display}"))
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .env("NO_AT_BRIDGE", "1")
            .env("BURNCLOUD_DATA_DIR", dir2.path())
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir2.path().join("app.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_until("a second BurnCloud window", Duration::from_secs(60), || {
        let out = Command::new("xdotool")
            .args(["search", "--name", "^BurnCloud$"])
            .env("DISPLAY", format!(":{display}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count() >= 2
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        second.0.try_wait().unwrap().is_none(),
        "the app must not exit when its port is taken"
    );
    let log2 = std::fs::read_to_string(dir2.path().join("app.log")).unwrap_or_default();
    assert!(log2.contains("already in use"), "{log2}");
    drop(second);
    // Quit gracefully: SIGTERM ends the app.
    let _ = Command::new("kill").arg(app.0.id().to_string()).status();
    drop(app);
    if let Some(pid) = bus_pid {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    drop(xvfb);
}
