//! The llama-server engine: where it is (setting / `LLAMA_SERVER`, next to the `burncloud`
//! executable, the runtimes folder, `PATH`), which version it is, and installing an
//! official llama.cpp release archive into the runtimes folder.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::catalog;
pub use super::catalog::{Backend, Platform};
use crate::hardware::Hardware;

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
    /// The backend of an installed engine (None: configured, bundled or on PATH).
    pub backend: Option<Backend>,
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
    #[error("engine not verified: {0}")]
    Unverified(String),
    #[error(
        "no {0} engine is installed: install it with `burncloud engine install --backend {0}` (see `burncloud engine list`)"
    )]
    BackendMissing(Backend),
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
/// to the current executable, the runtimes folder (a GPU build before a CPU one, then the
/// newest), `PATH`.
pub fn discover(data_dir: &Path, configured: Option<&Path>) -> Result<Engine, EngineError> {
    let mut e = locate(data_dir, configured)?;
    e.version = version(&e.path);
    Ok(e)
}

/// [`discover`] without asking the version (no process is run).
pub fn locate(data_dir: &Path, configured: Option<&Path>) -> Result<Engine, EngineError> {
    locate_backend(data_dir, configured, None)
}

/// [`locate`] for a deployment: one that names its engine's backend gets the newest
/// install of that backend (whatever else is configured), or a clear error.
pub fn locate_backend(
    data_dir: &Path,
    configured: Option<&Path>,
    backend: Option<Backend>,
) -> Result<Engine, EngineError> {
    let found = |path: PathBuf, source| Engine {
        version: None,
        path,
        source,
        backend: None,
    };
    if let Some(b) = backend {
        return installed(&runtimes_dir(data_dir))
            .into_iter()
            .find(|i| i.backend == b)
            .map(|i| Engine {
                backend: Some(b),
                ..found(i.path, Source::Installed)
            })
            .ok_or(EngineError::BackendMissing(b));
    }
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
    // Installed engines: a GPU build before a CPU one, then the newest.
    let all = installed(&runtimes);
    if let Some(i) = all
        .iter()
        .find(|i| i.backend.is_gpu())
        .or_else(|| all.first())
    {
        return Ok(Engine {
            backend: Some(i.backend),
            ..found(i.path.clone(), Source::Installed)
        });
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

/// What `engine install` should do.
#[derive(Debug, Clone)]
pub struct InstallRequest {
    /// The release JSON (`BURNCLOUD_ENGINE_RELEASE_URL`, default llama.cpp's latest).
    pub release_url: String,
    /// `<data dir>/runtimes`.
    pub runtimes: PathBuf,
    /// Where the engine will run (this machine, see [`Platform::current`]).
    pub platform: Platform,
    /// The machine's hardware (GPUs, the driver's CUDA version) for the choice.
    pub hardware: Hardware,
    /// The user's backend (None: the best for the hardware).
    pub backend: Option<Backend>,
    /// Install archives the release gives no SHA-256 digest for.
    pub allow_unverified: bool,
}

/// An installed engine: `<runtimes>/<backend>[-<variant>]-<tag>/` with `engine.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Installed {
    pub backend: Backend,
    pub variant: Option<String>,
    pub tag: String,
    /// The archive(s) it came from.
    pub assets: Vec<String>,
    /// Every archive matched the release's SHA-256 digest.
    pub verified: bool,
    /// Why this build was chosen.
    pub reason: String,
    /// The executable (filled in when listed).
    #[serde(skip)]
    pub path: PathBuf,
}

const MANIFEST: &str = "engine.json";

/// The engines installed under `runtimes`, newest first. Folders from before engines had
/// a backend (no `engine.json`) count as CPU builds.
pub fn installed(runtimes: &Path) -> Vec<Installed> {
    let Ok(rd) = std::fs::read_dir(runtimes) else {
        return Vec::new();
    };
    let mut out: Vec<(std::time::SystemTime, Installed)> = rd
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| {
            let dir = e.path();
            let path = find_exe(&dir)?;
            let t = e.metadata().and_then(|m| m.modified()).ok()?;
            let mut i: Installed = std::fs::read(dir.join(MANIFEST))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_else(|| Installed {
                    backend: Backend::Cpu,
                    variant: None,
                    tag: e.file_name().to_string_lossy().into_owned(),
                    assets: Vec::new(),
                    verified: false,
                    reason: "installed by an earlier version".into(),
                    path: PathBuf::new(),
                });
            i.path = path;
            Some((t, i))
        })
        .collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.0));
    out.into_iter().map(|(_, i)| i).collect()
}

fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Removes a folder when dropped, unless disarmed: nothing is left behind on failure.
struct Cleanup(Option<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// Download `url` into `path`, hashing as it goes; the SHA-256 (hex).
async fn fetch(
    client: &reqwest::Client,
    url: &str,
    path: &Path,
    on_chunk: &mut impl FnMut(u64),
) -> Result<String, EngineError> {
    use sha2::Digest;
    let mut resp = client
        .get(url)
        .header("user-agent", "burncloud")
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| EngineError::Release(format!("{url}: {e}")))?;
    let total = resp.content_length();
    let io = |source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::create(path).map_err(io)?;
    let mut hash = sha2::Sha256::new();
    let mut got = 0u64;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| EngineError::Release(format!("{url}: {e}")))?
    {
        std::io::Write::write_all(&mut file, &chunk).map_err(io)?;
        hash.update(&chunk);
        got += chunk.len() as u64;
        on_chunk(chunk.len() as u64);
    }
    if total.is_some_and(|t| t != got) {
        return Err(EngineError::Release(format!(
            "{url}: got {got} of {} bytes",
            total.unwrap_or(0)
        )));
    }
    Ok(hex::encode(hash.finalize()))
}

/// Read the release, choose the engine for the machine (or the asked backend), download it
/// (and the CUDA runtime beside a CUDA build), check every archive against the release's
/// SHA-256 `digest`, unpack into `<runtimes>/<backend>[-<variant>]-<tag>/`, and check that
/// it runs. A missing digest is refused unless `allow_unverified`; a wrong one always is.
/// On any failure nothing is left in the runtimes folder.
pub async fn install(
    client: &reqwest::Client,
    req: &InstallRequest,
    mut on_progress: impl FnMut(u64, Option<u64>),
) -> Result<Installed, EngineError> {
    let url = &req.release_url;
    let rel = |e: reqwest::Error| EngineError::Release(format!("{url}: {e}"));
    let json: serde_json::Value = client
        .get(url)
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
    let release = catalog::parse_release(&json)?;
    let choice = release.choose(&req.platform, &req.hardware, req.backend)?;
    let assets: Vec<&catalog::Asset> = std::iter::once(&choice.engine)
        .chain(choice.companion.as_ref())
        .collect();
    for a in &assets {
        if a.sha256.is_none() && !req.allow_unverified {
            return Err(EngineError::Unverified(format!(
                "{} has no SHA-256 digest in release {}: refusing an unverified engine (pass --allow-unverified to install it anyway)",
                a.name, release.tag
            )));
        }
    }
    let e = &choice.engine;
    let name = match &e.variant {
        Some(v) if e.backend != Backend::Hip || v != "radeon" => {
            format!("{}-{}-{}", e.backend, safe(v), safe(&release.tag))
        }
        _ => format!("{}-{}", e.backend, safe(&release.tag)),
    };
    let runtimes = &req.runtimes;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EngineError::Io { path, source }
    };
    std::fs::create_dir_all(runtimes).map_err(io(runtimes))?;
    let staging = runtimes.join(format!(".{name}.partial"));
    let _ = std::fs::remove_dir_all(&staging);
    let downloads = staging.join(".downloads");
    std::fs::create_dir_all(&downloads).map_err(io(&downloads))?;
    let mut guard = Cleanup(Some(staging.clone()));
    let total: Option<u64> = assets.iter().map(|a| a.size).sum();
    let mut done = 0u64;
    let mut verified = true;
    for a in &assets {
        let file = downloads.join(safe(&a.name));
        let got = fetch(client, &a.url, &file, &mut |n| {
            done += n;
            on_progress(done, total);
        })
        .await?;
        match &a.sha256 {
            Some(want) if *want != got => {
                return Err(EngineError::Unverified(format!(
                    "{}: SHA-256 {got} is not the release's {want}: the download is damaged or was tampered with; nothing was installed",
                    a.name
                )));
            }
            Some(_) => {}
            None => verified = false,
        }
        let (archive, dest, tar) = (file.clone(), staging.clone(), a.name.ends_with(".tar.gz"));
        tokio::task::spawn_blocking(move || unpack(&archive, &dest, tar))
            .await
            .map_err(|e| EngineError::Archive(e.to_string()))??;
    }
    let _ = std::fs::remove_dir_all(&downloads);
    if find_exe(&staging).is_none() {
        return Err(EngineError::Archive(format!("{} holds no {EXE}", e.name)));
    }
    let manifest = Installed {
        backend: e.backend,
        variant: e.variant.clone(),
        tag: release.tag.clone(),
        assets: assets.iter().map(|a| a.name.clone()).collect(),
        verified,
        reason: choice.reason.clone(),
        path: PathBuf::new(),
    };
    std::fs::write(
        staging.join(MANIFEST),
        serde_json::to_vec_pretty(&manifest).unwrap_or_default(),
    )
    .map_err(io(&staging))?;
    let dest = runtimes.join(&name);
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::rename(&staging, &dest).map_err(io(&dest))?;
    guard.0 = Some(dest.clone());
    let path = find_exe(&dest)
        .ok_or_else(|| EngineError::Archive(format!("{} holds no {EXE}", e.name)))?;
    if version(&path).is_none() {
        return Err(EngineError::Archive(format!(
            "{} does not run on this machine (`--version` gave no answer); removed it",
            e.name
        )));
    }
    guard.0 = None;
    Ok(Installed { path, ..manifest })
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
    fn versions() {
        assert_eq!(
            parse_version("load_backend: x\nversion: 11434 (abc1234)\nbuilt with cc"),
            Some("11434 (abc1234)".into())
        );
        assert_eq!(parse_version("nothing"), None);
    }
}
