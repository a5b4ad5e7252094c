//! `cargo xtask dist`: the release packages in one folder with checksums (`.deb` by
//! cargo-deb, a tarball for other Linux distributions), and the installed-package test the
//! test command runs: install the `.deb`, check its dependency list against what the
//! binary needs, run `burncloud --version`, `burncloud router` (health check) and the
//! desktop app under Xvfb (screenshot), then remove the package.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cache_dir, cargo, root, sh, target_dir};

const CARGO_DEB_VERSION: &str = "3.8.0";

/// cargo-deb, installed once into the cache (not into the checkout).
fn cargo_deb() -> Result<PathBuf> {
    let tools = cache_dir().join("tools");
    let bin = tools.join("bin/cargo-deb");
    let ok = Command::new(&bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains(CARGO_DEB_VERSION))
        .unwrap_or(false);
    if !ok {
        sh(cargo()
            .args([
                "install",
                "cargo-deb",
                "--locked",
                "--version",
                CARGO_DEB_VERSION,
                "--root",
            ])
            .arg(&tools))?;
    }
    Ok(bin)
}

pub fn version() -> Result<String> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml"))?;
    manifest
        .lines()
        .skip_while(|l| l.trim() != "[workspace.package]")
        .find_map(|l| l.trim().strip_prefix("version = "))
        .map(|v| v.trim_matches('"').to_string())
        .context("no version in [workspace.package]")
}

/// Build the release binary, the `.deb` and the tarball into `<target>/dist/` with
/// `SHA256SUMS`; returns the `.deb`'s path.
pub fn dist() -> Result<PathBuf> {
    if !cfg!(target_os = "linux") {
        bail!(
            "`cargo xtask dist` builds the Linux packages; on Windows and macOS use cargo-packager with installer/Packager.toml (see README)"
        );
    }
    let out = target_dir().join("dist");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    let deb_tool = cargo_deb()?;
    // The shipped build (profile-guided outside the test command, see `pgo`), packed by
    // cargo-deb as built.
    let built = crate::pgo::release(&[], "shipped")?;
    sh(Command::new(&deb_tool)
        .args(["-p", "burncloud", "--no-build", "--target", &built.triple])
        .arg("--output")
        .arg(&out)
        .env("CARGO_TARGET_DIR", &built.dir))?;
    let deb = std::fs::read_dir(&out)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .context("cargo-deb produced no .deb")?;

    // The tarball: the same files under a relocatable prefix.
    let ver = version()?;
    let arch = std::env::consts::ARCH;
    let name = format!("burncloud-{ver}-linux-{arch}");
    let stage = out.join(&name);
    let icons = root().join("assets/icons");
    let mut files: Vec<(PathBuf, PathBuf)> = vec![
        (built.bin.clone(), "bin/burncloud".into()),
        (
            root().join("installer/burncloud.desktop"),
            "share/applications/burncloud.desktop".into(),
        ),
        (
            icons.join("burncloud.svg"),
            "share/icons/hicolor/scalable/apps/burncloud.svg".into(),
        ),
        (root().join("README.md"), "README.md".into()),
        (root().join("LICENSE"), "LICENSE".into()),
    ];
    for size in [32, 48, 64, 128, 256, 512] {
        files.push((
            icons.join(format!("burncloud-{size}.png")),
            format!("share/icons/hicolor/{size}x{size}/apps/burncloud.png").into(),
        ));
    }
    for (from, to) in files {
        let dest = stage.join(to);
        std::fs::create_dir_all(dest.parent().unwrap())?;
        std::fs::copy(&from, &dest).with_context(|| format!("copy {}", from.display()))?;
    }
    let tarball = out.join(format!("{name}.tar.gz"));
    sh(Command::new("tar")
        .arg("-czf")
        .arg(&tarball)
        .arg("-C")
        .arg(&out)
        .arg(&name))?;
    std::fs::remove_dir_all(&stage)?;

    let mut sums = String::new();
    for p in [&deb, &tarball] {
        sums.push_str(&format!(
            "{}  {}\n",
            crate::setup::sha256_of(p)?,
            p.file_name().unwrap().to_string_lossy()
        ));
    }
    std::fs::write(out.join("SHA256SUMS"), &sums)?;
    eprintln!("xtask: packages in {}:\n{sums}", out.display());
    Ok(deb)
}

fn as_root(args: &[&str]) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let mut c = if root {
        Command::new(args[0])
    } else {
        let mut c = Command::new("sudo");
        c.arg(args[0]);
        c
    };
    c.args(&args[1..]).env("DEBIAN_FRONTEND", "noninteractive");
    c
}

/// Package names in a Depends field (alternatives included, versions dropped).
fn depends_of(deb: &Path) -> Result<Vec<String>> {
    let out = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .arg("Depends")
        .output()?;
    let field = String::from_utf8_lossy(&out.stdout).to_string();
    Ok(field
        .split([',', '|'])
        .map(|d| d.split_whitespace().next().unwrap_or("").to_string())
        .filter(|d| !d.is_empty())
        .collect())
}

/// Every shared library the installed binary needs directly (its ELF `NEEDED` entries)
/// must come from a package the .deb depends on, and the libraries loaded with dlopen must
/// be listed too. (What those libraries need in turn, their own packages depend on.)
fn check_dependencies(deb: &Path, bin: &Path) -> Result<()> {
    let depends = depends_of(deb)?;
    let elf = Command::new("objdump").arg("-p").arg(bin).output()?;
    let needed: Vec<String> = String::from_utf8_lossy(&elf.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("NEEDED"))
        .map(|s| s.trim().to_string())
        .collect();
    if needed.is_empty() {
        bail!("objdump found no NEEDED entries in {}", bin.display());
    }
    let ldd = Command::new("ldd").arg(bin).output()?;
    let resolved = String::from_utf8_lossy(&ldd.stdout).to_string();
    let mut missing = Vec::new();
    let mut checked = 0;
    for soname in &needed {
        // Where the loader finds it (ldd), then the package that ships it (dpkg -S).
        let path = resolved
            .lines()
            .find(|l| {
                let first = l.split_whitespace().next().unwrap_or("");
                first == soname || first.ends_with(&format!("/{soname}"))
            })
            .and_then(|l| {
                l.split("=>")
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .or_else(|| l.split_whitespace().next())
            })
            .filter(|p| p.starts_with('/'))
            .with_context(|| format!("the loader does not find {soname}"))?
            .to_string();
        let real = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone().into());
        let owner = [path.clone(), real.display().to_string()]
            .iter()
            .find_map(|p| {
                let o = Command::new("dpkg").args(["-S", p]).output().ok()?;
                o.status.success().then(|| {
                    String::from_utf8_lossy(&o.stdout)
                        .split(':')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_string()
                })
            })
            .with_context(|| format!("no package ships {path}"))?;
        checked += 1;
        if !depends.contains(&owner) {
            missing.push(format!("{owner} (for {soname})"));
        }
    }
    for dl in ["libayatana-appindicator3-1", "libwebkit2gtk-4.1-0"] {
        if !depends.contains(&dl.to_string()) {
            missing.push(format!("{dl} (loaded at run time)"));
        }
    }
    if !missing.is_empty() {
        bail!(
            "the .deb's Depends ({}) misses what the binary needs: {}",
            depends.join(", "),
            missing.join(", ")
        );
    }
    eprintln!(
        "xtask: .deb dependencies cover the {checked} libraries the binary links and those it loads at run time (Depends: {})",
        depends.join(", ")
    );
    Ok(())
}

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn http_ok(url: &str) -> bool {
    Command::new("curl")
        .args(["-sf", "-o", "/dev/null", "--max-time", "2", url])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn wait(what: &str, secs: u64, mut f: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Install the .deb, exercise the installed binary, remove it.
pub fn test_installed(deb: &Path) -> Result<()> {
    if !cfg!(target_os = "linux") {
        return Ok(());
    }
    let bin = Path::new("/usr/bin/burncloud");
    // apt resolves the dependencies from the archive (they are installed by the build).
    sh(as_root(&["apt-get", "install", "-y", "-qq", "--no-install-recommends"]).arg(deb))?;
    let result = exercise(deb, bin);
    sh(&mut as_root(&[
        "apt-get",
        "remove",
        "-y",
        "-qq",
        "burncloud",
    ]))?;
    if bin.exists() || Path::new("/usr/share/applications/burncloud.desktop").exists() {
        bail!("removing the package left its files behind");
    }
    result?;
    eprintln!("xtask: the .deb installs, runs (CLI, router, desktop window) and removes cleanly");
    Ok(())
}

fn exercise(deb: &Path, bin: &Path) -> Result<()> {
    check_dependencies(deb, bin)?;
    for f in [
        "/usr/share/applications/burncloud.desktop",
        "/usr/share/icons/hicolor/256x256/apps/burncloud.png",
    ] {
        if !Path::new(f).exists() {
            bail!("the package does not install {f}");
        }
    }
    let out = Command::new(bin).arg("--version").output()?;
    let v = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || v.trim() != format!("burncloud {}", version()?) {
        bail!("installed `burncloud --version` said {v:?}");
    }
    let data = tempfile_dir("burncloud-deb-")?;
    // The router.
    let port = free_port()?;
    let router = Kill(
        Command::new(bin)
            .arg("router")
            .env("BURNCLOUD_DATA_DIR", data.join("router"))
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let health = format!("http://127.0.0.1:{port}/health");
    wait("the installed router's /health", 20, || http_ok(&health))?;
    drop(router);

    // The desktop app under Xvfb, with a screenshot.
    let display = (90..200)
        .find(|n| {
            !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .context("no free X display")?;
    let disp = format!(":{display}");
    let _xvfb = Kill(
        Command::new("Xvfb")
            .args([
                disp.as_str(),
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("Xvfb (installed by cargo xtask test)")?,
    );
    wait("Xvfb", 10, || {
        Path::new(&format!("/tmp/.X11-unix/X{display}")).exists()
    })?;
    let dbus = Command::new("dbus-launch")
        .arg("--sh-syntax")
        .env("DISPLAY", &disp)
        .output()?;
    let dbus_env = String::from_utf8_lossy(&dbus.stdout).to_string();
    // `NAME='value';` (the address) or `NAME=value;` (the pid).
    let var = |name: &str| {
        dbus_env
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(|v| v.trim_end_matches(';').trim_matches('\'').to_string())
    };
    let dbus_addr = var("DBUS_SESSION_BUS_ADDRESS").unwrap_or_default();
    let dbus_pid =
        var("DBUS_SESSION_BUS_PID").and_then(|p| p.trim_end_matches(';').parse::<u32>().ok());
    let port = free_port()?;
    let app = Kill(
        Command::new(bin)
            .env("DISPLAY", &disp)
            .env("DBUS_SESSION_BUS_ADDRESS", &dbus_addr)
            .env("NO_AT_BRIDGE", "1")
            .env("BURNCLOUD_DATA_DIR", data.join("desktop"))
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let health = format!("http://127.0.0.1:{port}/health");
    let shown = (|| -> Result<PathBuf> {
        wait("the installed desktop app's /health", 30, || {
            http_ok(&health)
        })?;
        wait("the BurnCloud window", 30, || {
            Command::new("xdotool")
                .args(["search", "--name", "BurnCloud"])
                .env("DISPLAY", &disp)
                .output()
                .map(|o| o.status.success() && !o.stdout.is_empty())
                .unwrap_or(false)
        })?;
        std::thread::sleep(Duration::from_secs(2)); // let the webview paint
        let shot = target_dir().join("dist-installed-desktop.png");
        sh(Command::new("import")
            .args(["-window", "root"])
            .arg(&shot)
            .env("DISPLAY", &disp))?;
        let sd = Command::new("convert")
            .arg(&shot)
            .args(["-format", "%[fx:standard_deviation]", "info:"])
            .output()?;
        let sd: f64 = String::from_utf8_lossy(&sd.stdout)
            .trim()
            .parse()
            .unwrap_or(0.0);
        if sd < 0.02 {
            bail!(
                "the installed app's window looks blank (pixel standard deviation {sd:.4}): {}",
                shot.display()
            );
        }
        Ok(shot)
    })();
    drop(app);
    if let Some(pid) = dbus_pid {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    let shot = shown?;
    eprintln!(
        "xtask: installed desktop app drew its window: {}",
        shot.display()
    );
    let _ = std::fs::remove_dir_all(&data);
    Ok(())
}

fn tempfile_dir(prefix: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "{prefix}{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cargo-packager cannot run here (no Windows or macOS): check what can be checked
    /// without it, so the Windows/macOS packages stay buildable by construction.
    #[test]
    fn packager_config_is_complete() {
        let dir = root().join("installer");
        let text = std::fs::read_to_string(dir.join("Packager.toml")).unwrap();
        let cfg: toml::Table = toml::from_str(&text).expect("Packager.toml parses");
        for key in [
            "name",
            "product-name",
            "identifier",
            "version",
            "description",
            "out-dir",
            "binaries-dir",
            "before-packaging-command",
        ] {
            assert!(
                cfg.get(key)
                    .and_then(|v| v.as_str())
                    .is_some_and(|s| !s.is_empty()),
                "{key} missing"
            );
        }
        assert_eq!(
            cfg["version"].as_str().unwrap(),
            version().unwrap(),
            "Packager.toml's version follows the workspace"
        );
        assert_eq!(cfg["name"].as_str().unwrap(), "burncloud");
        let id = cfg["identifier"].as_str().unwrap();
        assert!(
            id.split('.').count() >= 3
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
            "{id}"
        );
        let formats: Vec<&str> = cfg["formats"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        for f in ["nsis", "wix", "app", "dmg"] {
            assert!(formats.contains(&f), "format {f}");
        }
        let icons = cfg["icons"].as_array().unwrap();
        assert!(!icons.is_empty());
        for i in icons {
            let p = dir.join(i.as_str().unwrap());
            let bytes = std::fs::read(&p).unwrap_or_else(|_| panic!("icon {} exists", p.display()));
            assert_eq!(
                &bytes[..8],
                b"\x89PNG\r\n\x1a\n",
                "{} is a PNG",
                p.display()
            );
        }
        assert!(
            dir.join(cfg["license-file"].as_str().unwrap()).exists(),
            "license-file exists"
        );
        let plist = dir.join(cfg["macos"]["info-plist-path"].as_str().unwrap());
        let plist = std::fs::read_to_string(plist).unwrap();
        assert!(
            plist.contains("<plist version=\"1.0\">") && plist.trim_end().ends_with("</plist>")
        );
        let bins = cfg["binaries"].as_array().unwrap();
        assert!(
            bins.iter()
                .any(|b| b["main"].as_bool() == Some(true)
                    && b["path"].as_str() == Some("burncloud"))
        );
        let nsis = cfg["nsis"]["preinstall-section"].as_str().unwrap();
        assert!(
            nsis.contains("Section WebView2") && nsis.contains("SectionEnd"),
            "WebView2 handled"
        );
    }

    #[test]
    fn deb_metadata_lists_runtime_libraries_and_existing_assets() {
        let app = root().join("app");
        let manifest: toml::Table =
            toml::from_str(&std::fs::read_to_string(app.join("Cargo.toml")).unwrap()).unwrap();
        let deb = &manifest["package"]["metadata"]["deb"];
        let depends = deb["depends"].as_str().unwrap();
        for d in ["$auto", "libayatana-appindicator3-1", "libwebkit2gtk-4.1-0"] {
            assert!(depends.contains(d), "Depends lists {d}");
        }
        for a in deb["assets"].as_array().unwrap() {
            let src = a[0].as_str().unwrap();
            if src.starts_with("target/") {
                continue; // built by cargo-deb
            }
            assert!(app.join(src).exists(), "asset {src} exists");
        }
        let entry = std::fs::read_to_string(root().join("installer/burncloud.desktop")).unwrap();
        for line in [
            "[Desktop Entry]",
            "Type=Application",
            "Exec=burncloud",
            "Icon=burncloud",
            "Name=BurnCloud",
        ] {
            assert!(entry.lines().any(|l| l == line), "desktop entry has {line}");
        }
    }
}
