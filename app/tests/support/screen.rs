//! A private X display for the real-window tests: Xvfb with its own D-Bus session, the
//! app launched on it, and the keyboard, clipboard and window lookups the tests drive it
//! with (xdotool, xclip). Every process started here ends when its handle drops.
#![allow(dead_code)]

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_burncloud");

/// A child process, killed and reaped on drop.
pub struct Proc(pub Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Fail (not skip) when a tool the test needs is missing.
pub fn require(tool: &str) {
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

pub fn free_display() -> u32 {
    (90..200)
        .find(|n| {
            !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .expect("a free X display number")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// llama-server processes serving a model from `folder` (its path is on their command line).
pub fn llama_servers_of(folder: &std::path::Path) -> usize {
    let out = Command::new("pgrep")
        .args(["-f", &format!("{}.*--port", folder.display())])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// Xvfb (1280×800) and a D-Bus session on a free display.
pub struct Screen {
    pub display: u32,
    pub bus: String,
    bus_pid: Option<u32>,
    _xvfb: Proc,
}

impl Screen {
    pub fn start() -> Screen {
        for tool in [
            "Xvfb",
            "dbus-launch",
            "xdotool",
            "import",
            "convert",
            "xclip",
        ] {
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
        let out = String::from_utf8_lossy(&dbus.stdout).to_string();
        let bus = out
            .lines()
            .find_map(|l| {
                l.strip_prefix("DBUS_SESSION_BUS_ADDRESS='")
                    .map(|r| r.trim_end_matches("';").to_string())
            })
            .expect("dbus-launch printed an address");
        let bus_pid = out.lines().find_map(|l| {
            l.strip_prefix("DBUS_SESSION_BUS_PID=")
                .map(|r| r.trim_end_matches(';').parse().unwrap())
        });
        Screen {
            display,
            bus,
            bus_pid,
            _xvfb: xvfb,
        }
    }

    /// `burncloud` on this display with `data_dir` and `PORT=port`; its stderr goes to
    /// `data_dir/<log>`.
    pub fn launch(
        &self,
        data_dir: &std::path::Path,
        port: u16,
        log: &str,
        env: &[(&str, &str)],
    ) -> Proc {
        let mut cmd = Command::new(BIN);
        cmd.env("DISPLAY", format!(":{}", self.display))
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("NO_AT_BRIDGE", "1")
            .env("BURNCLOUD_DATA_DIR", data_dir)
            .env("PORT", port.to_string())
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .env_remove("DATABASE_URL")
            .env_remove("BURNCLOUD_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(data_dir.join(log)).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc(cmd.spawn().unwrap())
    }

    pub fn xdo(&self, args: &[&str]) -> Output {
        Command::new("xdotool")
            .args(args)
            .env("DISPLAY", format!(":{}", self.display))
            .output()
            .unwrap()
    }

    /// The first window whose title matches `pattern` (a regex), waited for.
    pub fn window(&self, pattern: &str, timeout: Duration) -> String {
        let mut id = String::new();
        wait_until(&format!("a window titled {pattern}"), timeout, || {
            id = String::from_utf8_lossy(&self.xdo(&["search", "--name", pattern]).stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            !id.is_empty()
        });
        id
    }

    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.xdo(&["key", "--delay", "60", k]);
        }
    }

    /// Type `text` at `delay_ms` per key.
    pub fn type_text(&self, text: &str, delay_ms: u32) {
        self.xdo(&["type", "--delay", &delay_ms.to_string(), "--", text]);
    }

    /// xclip -i stays in the background to serve the clipboard: no pipe of ours open in it.
    pub fn set_clipboard(&self, text: &str) {
        let mut child = Command::new("xclip")
            .args(["-i", "-selection", "clipboard"])
            .env("DISPLAY", format!(":{}", self.display))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(text.as_bytes()).unwrap();
        }
        assert!(child.wait().unwrap().success(), "xclip -i");
    }

    pub fn clipboard(&self) -> String {
        let out = Command::new("xclip")
            .args(["-o", "-selection", "clipboard"])
            .env("DISPLAY", format!(":{}", self.display))
            .stderr(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// What the window holds where the focus is: a field's text, or (from a button) the
    /// page's text. Select all, copy, read the clipboard.
    pub fn copy_all(&self) -> String {
        self.set_clipboard("");
        self.keys(&["ctrl+a", "ctrl+c"]);
        std::thread::sleep(Duration::from_millis(400));
        self.clipboard()
    }
}

impl Screen {
    /// Wait until the window's text (copied from where the focus is) holds every one of
    /// `needles`; the text, or a failure showing the last one.
    pub fn wait_for_text(&self, what: &str, timeout: Duration, needles: &[&str]) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.copy_all();
            if needles.iter().all(|n| text.contains(n)) {
                return text;
            }
            if Instant::now() >= deadline {
                let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
                    .join(format!("timeout-{}.png", what.replace(' ', "-")));
                let _ = Command::new("import")
                    .args(["-window", "root"])
                    .arg(&shot)
                    .env("DISPLAY", format!(":{}", self.display))
                    .status();
                panic!(
                    "timed out waiting for {what} ({needles:?}); screenshot {}; the window's text:\n{text}",
                    shot.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        if let Some(pid) = self.bus_pid {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}
