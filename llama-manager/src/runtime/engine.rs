//! The llama-server engine: where it is (setting / `LLAMA_SERVER`, next to the `burncloud`
//! executable, the runtimes folder, `PATH`), which version it is, and installing an
//! official llama.cpp release archive into the runtimes folder.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The executable's file name on this platform.
pub const EXE: &str = if cfg!(windows) {
    "llama-server.exe"
} else {
    "llama-server"
};

/// Where llama.cpp publishes releases (GitHub's "latest release" API); override with
/// `BURNCLOUD_ENGINE_RELEASE_URL` (a mirror, or a test server).
pub const DEFAULT_RELEASE_URL: &str =
    "https://api.github.com/repos/ggml-org/llama.cpp/releases/latest";

/// How the engine was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The `engine_path` setting or `LLAMA_SERVER`.
    Configured,
    /// Next to the `burncloud` executable (a bundled engine).
    Bundled,
    /// `<data dir>/runtimes/...` (installed by `burncloud engine install`).
    Installed,
    /// On `PATH`.
    Path,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Configured => "configured (LLAMA_SERVER / setting)",
            Source::Bundled => "bundled next to burncloud",
            Source::Installed => "installed in the runtimes folder",
            Source::Path => "found on PATH",
        }
    }
}

/// A usable engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Engine {
    pub path: PathBuf,
    pub source: Source,
    /// `--version`'s answer, e.g. "11434 (abc1234)"; None when it would not say.
    pub version: Option<String>,
}

/// Why no engine is usable.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the configured llama-server {0} does not exist or is not executable")]
    ConfiguredMissing(PathBuf),
    #[error(
        "no llama-server found (looked at LLAMA_SERVER, next to burncloud, in {runtimes}, and on PATH): install one with `burncloud engine install`, or set LLAMA_SERVER to its path"
    )]
    NotFound { runtimes: PathBuf },
    #[error("engine release: {0}")]
    Release(String),
    #[error("engine archive: {0}")]
    Archive(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn executable(p: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(p) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// The runtimes folder: `<data dir>/runtimes`.
pub fn runtimes_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("runtimes")
}

/// Find an engine: `configured` (setting or `LLAMA_SERVER`) wins and must work; then next
/// to the current executable, the newest install in the runtimes folder, `PATH`.
pub fn discover(data_dir: &Path, configured: Option<&Path>) -> Result<Engine, EngineError> {
    let mut e = locate(data_dir, configured)?;
    e.version = version(&e.path);
    Ok(e)
}

/// [`discover`] without asking the version (no process is run).
pub fn locate(data_dir: &Path, configured: Option<&Path>) -> Result<Engine, EngineError> {
    let found = |path: PathBuf, source| Engine {
        version: None,
        path,
        source,
    };
    if let Some(p) = configured {
        return if executable(p) {
            Ok(found(p.to_path_buf(), Source::Configured))
        } else {
            Err(EngineError::ConfiguredMissing(p.to_path_buf()))
        };
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let p = dir.join(EXE);
        if executable(&p) {
            return Ok(found(p, Source::Bundled));
        }
    }
    let runtimes = runtimes_dir(data_dir);
    if let Some(p) = newest_install(&runtimes) {
        return Ok(found(p, Source::Installed));
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(EXE);
            if executable(&p) {
                return Ok(found(p, Source::Path));
            }
        }
    }
    Err(EngineError::NotFound { runtimes })
}

/// The most recently installed engine under `runtimes` (each install is a folder).
fn newest_install(runtimes: &Path) -> Option<PathBuf> {
    let mut installs: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(runtimes)
        .ok()?
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let exe = find_exe(&e.path())?;
            let t = e.metadata().and_then(|m| m.modified()).ok()?;
            Some((t, exe))
        })
        .collect();
    installs.sort();
    installs.pop().map(|(_, p)| p)
}

/// `llama-server` anywhere under `dir` (release archives nest it in `build/bin/` or not).
fn find_exe(dir: &Path) -> Option<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == EXE) && executable(&p) {
                return Some(p);
            }
        }
    }
    None
}

/// Ask the engine its version (`--version`), waiting at most 10 s.
pub fn version(path: &Path) -> Option<String> {
    let mut child = std::process::Command::new(path)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut text = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut text);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    parse_version(&text)
}

/// "version: 11434 (abc1234)" → "11434 (abc1234)".
pub fn parse_version(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("version:"))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The release asset for this platform: llama.cpp's CPU builds.
pub fn asset_marker() -> Option<&'static str> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Some("bin-ubuntu-x64"),
        ("linux", "aarch64") => Some("bin-ubuntu-arm64"),
        ("macos", "aarch64") => Some("bin-macos-arm64"),
        ("macos", "x86_64") => Some("bin-macos-x64"),
        ("windows", "x86_64") => Some("bin-win-cpu-x64"),
        ("windows", "aarch64") => Some("bin-win-cpu-arm64"),
        _ => None,
    }
}

/// Pick the asset to download from a release JSON (`tag_name`, `assets[].name`,
/// `assets[].browser_download_url`): `(tag, name, url)`.
pub fn pick_asset(
    release: &serde_json::Value,
    marker: &str,
) -> Result<(String, String, String), EngineError> {
    let tag = release["tag_name"]
        .as_str()
        .ok_or_else(|| EngineError::Release("the release has no tag_name".into()))?
        .to_string();
    let assets = release["assets"]
        .as_array()
        .ok_or_else(|| EngineError::Release("the release lists no assets".into()))?;
    let archive = |n: &str| n.ends_with(".zip") || n.ends_with(".tar.gz");
    let hit = assets.iter().find(|a| {
        a["name"]
            .as_str()
            .is_some_and(|n| n.contains(marker) && archive(n))
    });
    let Some(a) = hit else {
        let names: Vec<&str> = assets.iter().filter_map(|a| a["name"].as_str()).collect();
        return Err(EngineError::Release(format!(
            "release {tag} has no archive for this platform ({marker}); it has: {}",
            names.join(", ")
        )));
    };
    let name = a["name"].as_str().unwrap_or_default().to_string();
    let url = a["browser_download_url"]
        .as_str()
        .ok_or_else(|| EngineError::Release(format!("asset {name} has no download URL")))?
        .to_string();
    Ok((tag, name, url))
}

/// Download the release at `release_url` for this platform, unpack it into
/// `<runtimes>/<tag>/` and return the engine in it (checked by running `--version`).
pub async fn install(
    client: &reqwest::Client,
    release_url: &str,
    runtimes: &Path,
    mut on_progress: impl FnMut(u64, Option<u64>),
) -> Result<Engine, EngineError> {
    let marker = asset_marker().ok_or_else(|| {
        EngineError::Release(format!(
            "no official llama.cpp build for {} {}: build llama-server yourself and set LLAMA_SERVER",
            std::env::consts::OS,
            std::env::consts::ARCH
        ))
    })?;
    let rel = |e: reqwest::Error| EngineError::Release(format!("{release_url}: {e}"));
    let release: serde_json::Value = client
        .get(release_url)
        .header("user-agent", "burncloud")
        .header("accept", "application/vnd.github+json")
        .send()
        .await
        .map_err(rel)?
        .error_for_status()
        .map_err(rel)?
        .json()
        .await
        .map_err(rel)?;
    let (tag, name, url) = pick_asset(&release, marker)?;
    let safe_tag: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EngineError::Io { path, source }
    };
    std::fs::create_dir_all(runtimes).map_err(io(runtimes))?;
    let archive = runtimes.join(format!("{safe_tag}-{name}.part"));
    let mut resp = client
        .get(&url)
        .header("user-agent", "burncloud")
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| EngineError::Release(format!("{url}: {e}")))?;
    let total = resp.content_length();
    let mut file = std::fs::File::create(&archive).map_err(io(&archive))?;
    let mut got = 0u64;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                std::io::Write::write_all(&mut file, &chunk).map_err(io(&archive))?;
                got += chunk.len() as u64;
                on_progress(got, total);
            }
            Ok(None) => break,
            Err(e) => {
                let _ = std::fs::remove_file(&archive);
                return Err(EngineError::Release(format!("{url}: {e}")));
            }
        }
    }
    drop(file);
    if total.is_some_and(|t| t != got) {
        let _ = std::fs::remove_file(&archive);
        return Err(EngineError::Release(format!(
            "{url}: got {got} of {} bytes",
            total.unwrap_or(0)
        )));
    }
    let dest = runtimes.join(&safe_tag);
    let staging = runtimes.join(format!("{safe_tag}.unpacking"));
    let _ = std::fs::remove_dir_all(&staging);
    let unpacked = {
        let archive = archive.clone();
        let staging = staging.clone();
        let tar = name.ends_with(".tar.gz");
        tokio::task::spawn_blocking(move || unpack(&archive, &staging, tar))
            .await
            .map_err(|e| EngineError::Archive(e.to_string()))?
    };
    let _ = std::fs::remove_file(&archive);
    if let Err(e) = unpacked {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let Some(_) = find_exe(&staging) else {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(EngineError::Archive(format!("{name} holds no {EXE}")));
    };
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::rename(&staging, &dest).map_err(io(&dest))?;
    let path =
        find_exe(&dest).ok_or_else(|| EngineError::Archive(format!("{name} holds no {EXE}")))?;
    let version = version(&path);
    if version.is_none() {
        return Err(EngineError::Archive(format!(
            "{} does not run on this machine (`--version` gave no answer)",
            path.display()
        )));
    }
    Ok(Engine {
        path,
        source: Source::Installed,
        version,
    })
}

/// Unpack a zip or .tar.gz into `dest`, refusing entries that escape it; keeps Unix modes.
fn unpack(archive: &Path, dest: &Path, tar_gz: bool) -> Result<(), EngineError> {
    let bad =
        |e: &dyn std::fmt::Display| EngineError::Archive(format!("{}: {e}", archive.display()));
    std::fs::create_dir_all(dest).map_err(|e| bad(&e))?;
    let file = std::fs::File::open(archive).map_err(|e| bad(&e))?;
    if tar_gz {
        let mut t = tar::Archive::new(flate2::read::GzDecoder::new(file));
        t.set_preserve_permissions(true);
        for entry in t.entries().map_err(|e| bad(&e))? {
            let mut entry = entry.map_err(|e| bad(&e))?;
            // `unpack_in` refuses paths that leave `dest`.
            entry.unpack_in(dest).map_err(|e| bad(&e))?;
        }
        return Ok(());
    }
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(&e))?;
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).map_err(|e| bad(&e))?;
        let Some(rel) = f.enclosed_name() else {
            return Err(bad(&format!(
                "entry {} leaves the folder",
                String::from_utf8_lossy(f.name_raw())
            )));
        };
        let out = dest.join(rel);
        if f.is_dir() {
            std::fs::create_dir_all(&out).map_err(|e| bad(&e))?;
            continue;
        }
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(|e| bad(&e))?;
        }
        let mut w = std::fs::File::create(&out).map_err(|e| bad(&e))?;
        std::io::copy(&mut f, &mut w).map_err(|e| bad(&e))?;
        #[cfg(unix)]
        if let Some(mode) = f.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&out, std::fs::Permissions::from_mode(mode & 0o777));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_assets() {
        assert_eq!(
            parse_version("load_backend: x\nversion: 11434 (abc1234)\nbuilt with cc"),
            Some("11434 (abc1234)".into())
        );
        assert_eq!(parse_version("nothing"), None);
        let rel = serde_json::json!({"tag_name": "b11434", "assets": [
            {"name": "llama-b11434-bin-win-cpu-x64.zip", "browser_download_url": "http://x/w.zip"},
            {"name": "llama-b11434-bin-ubuntu-x64.zip", "browser_download_url": "http://x/u.zip"}
        ]});
        let (tag, name, url) = pick_asset(&rel, "bin-ubuntu-x64").unwrap();
        assert_eq!((tag.as_str(), url.as_str()), ("b11434", "http://x/u.zip"));
        assert!(name.contains("ubuntu"));
        let err = pick_asset(&rel, "bin-macos-arm64").unwrap_err().to_string();
        assert!(
            err.contains("no archive for this platform") && err.contains("ubuntu"),
            "{err}"
        );
    }
}
