//! Windows from Linux: the whole workspace (desktop included) must compile for
//! `x86_64-pc-windows-gnu`, the `burncloud.exe` is built, and the NSIS installer
//! (`installer/windows/burncloud.nsi`) is made with Debian's `makensis` and its contents
//! listed (7-Zip reads NSIS installers) as a check. The target dir is
//! `<target dir>/windows` (outside the checkout in CI: the target dir is in the cache).
//!
//! macOS cannot be checked here: its C parts (SQLite, aws-lc) need Apple's SDK.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{cargo, root, setup, sh, target_dir};

pub const TARGET: &str = "x86_64-pc-windows-gnu";

/// The MinGW cross compiler (C parts: SQLite, aws-lc), NSIS, 7-Zip for the listing.
pub const PACKAGES: &[&str] = &[
    "gcc-mingw-w64-x86-64",
    "g++-mingw-w64-x86-64",
    "nsis",
    "p7zip-full",
];

/// The files the installer must hold (as 7-Zip lists them).
const EXPECTED: &[&str] = &["burncloud.exe", "LICENSE.txt", "README.md"];

fn target_dir_windows() -> PathBuf {
    target_dir().join("windows")
}

/// `rustup target add` (a no-op when present) and the Debian packages.
fn ensure_toolchain() -> Result<()> {
    setup::ensure_packages(PACKAGES)?;
    sh(Command::new("rustup").args(["target", "add", TARGET]))
}

/// Check the workspace and build `burncloud.exe` (desktop feature, release), then the
/// installer; returns the installer's path.
pub fn check_and_package() -> Result<PathBuf> {
    if !cfg!(target_os = "linux") {
        eprintln!("xtask: the Windows cross-build check runs on Linux only");
        return Ok(PathBuf::new());
    }
    ensure_toolchain()?;
    let t0 = Instant::now();
    // Every crate of the workspace, desktop included, as libraries and binaries.
    sh(cargo()
        .args(["build", "--workspace", "--release", "--target", TARGET])
        .arg("--target-dir")
        .arg(target_dir_windows()))?;
    eprintln!(
        "xtask: Windows build ({TARGET}, workspace, release) took {:.0} s",
        t0.elapsed().as_secs_f64()
    );
    let exe = target_dir_windows()
        .join(TARGET)
        .join("release/burncloud.exe");
    if !exe.exists() {
        bail!("{} was not built", exe.display());
    }
    installer(&exe)
}

/// Build the NSIS installer around `exe` and check what it holds.
pub fn installer(exe: &std::path::Path) -> Result<PathBuf> {
    let version = crate::dist::version()?;
    // Not `<target>/dist`: `cargo xtask dist` empties that folder.
    let out_dir = target_dir_windows().join("dist");
    std::fs::create_dir_all(&out_dir)?;
    let out = out_dir.join(format!("burncloud-{version}-windows-x86_64-setup.exe"));
    let _ = std::fs::remove_file(&out);
    sh(Command::new("makensis")
        .arg("-V2")
        .arg(format!("-DVERSION={version}"))
        .arg(format!("-DEXE={}", exe.display()))
        .arg(format!("-DROOT={}", root().display()))
        .arg(format!("-DOUTFILE={}", out.display()))
        .arg(root().join("installer/windows/burncloud.nsi")))?;
    let listing = Command::new("7z")
        .args(["l", "-ba"])
        .arg(&out)
        .output()
        .context("7z")?;
    let text = String::from_utf8_lossy(&listing.stdout);
    if !listing.status.success() {
        bail!(
            "7z cannot read {}: {}",
            out.display(),
            String::from_utf8_lossy(&listing.stderr)
        );
    }
    eprintln!("xtask: {} holds:\n{text}", out.display());
    for f in EXPECTED {
        if !text.lines().any(|l| l.trim_end().ends_with(f)) {
            bail!("the Windows installer lacks {f}:\n{text}");
        }
    }
    let size = std::fs::metadata(&out)?.len();
    eprintln!(
        "xtask: Windows installer {} ({:.1} MiB) holds {}",
        out.display(),
        size as f64 / 1048576.0,
        EXPECTED.join(", ")
    );
    Ok(out)
}
