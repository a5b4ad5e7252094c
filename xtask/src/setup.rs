//! Installing what the build and the tests need: Debian/Ubuntu packages through apt
//! (only the missing ones), and a Python venv with the official SDKs.

use std::process::Command;

use anyhow::{Result, bail};

use crate::{cache_dir, sh};

/// Needed to build the desktop app (WebKitGTK, xdo, appindicator for the tray).
pub const BUILD_PACKAGES: &[&str] = &[
    "build-essential",
    "pkg-config",
    "libssl-dev",
    "libwebkit2gtk-4.1-dev",
    "libxdo-dev",
    "libayatana-appindicator3-dev",
];

/// Needed by the tests: a real window under Xvfb and its screenshot, Python for the SDKs.
pub const TEST_PACKAGES: &[&str] = &[
    "xvfb",
    "xauth",
    "dbus-x11",
    "at-spi2-core",
    "x11-utils",
    "xdotool",
    "imagemagick",
    "python3",
    "python3-venv",
    "curl",
];

/// Python packages for the SDK tests (pinned).
const PYTHON_PACKAGES: &[&str] = &[
    "openai==3.54.0",
    "anthropic==2.12.0",
    "pytest==9.2.0",
    "httpx==0.28.1",
];

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Install the missing packages with apt-get (as root, or through sudo).
pub fn ensure_packages(pkgs: &[&str]) -> Result<()> {
    if !cfg!(target_os = "linux") {
        return Ok(());
    }
    if Command::new("dpkg-query")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "xtask: not a Debian/Ubuntu system: install the equivalents of {pkgs:?} yourself (see README)"
        );
        return Ok(());
    }
    let missing: Vec<&str> = pkgs.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let apt = |args: &[&str]| -> Result<()> {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            Command::new("sudo")
        };
        if !root {
            cmd.arg("apt-get");
        }
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        sh(&mut cmd)
    };
    apt(&["update", "-qq"])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(&missing);
    apt(&args)
}

/// A venv in the cache with the SDKs; returns its python.
pub fn ensure_venv() -> Result<std::path::PathBuf> {
    let venv = cache_dir().join("venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        sh(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    let stamp = venv.join("burncloud-requirements.txt");
    let wanted = PYTHON_PACKAGES.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        sh(Command::new(&python)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(PYTHON_PACKAGES))?;
        std::fs::write(&stamp, wanted)?;
    }
    Ok(python)
}

/// Fail when the headless binary links GTK or WebKit.
pub fn check_headless_links(bin: &std::path::Path) -> Result<()> {
    if !cfg!(target_os = "linux") {
        return Ok(());
    }
    let out = Command::new("ldd").arg(bin).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    for lib in ["webkit", "gtk", "appindicator"] {
        if text.contains(lib) {
            bail!("the headless build links {lib}:\n{text}");
        }
    }
    eprintln!("xtask: headless build links no GUI library");
    Ok(())
}
