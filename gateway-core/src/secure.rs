//! Files at rest: the data folder is the owner's alone (0700), and the files holding
//! secrets or personal data (database, WAL, keys, credentials, logs, pid files) are 0600 —
//! set when created and fixed on start for installs from before.

use std::io::Write;
use std::path::Path;

/// Write a file only its owner can read (0600 on Unix), replacing it.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    set_mode(path, 0o600)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// chmod on Unix; nothing elsewhere (Windows profiles are per-user already).
pub fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// Make `dir` 0700 and every file in it — and in its `runtime/` and `logs/` trees — 0600.
/// Models (large, not secret) keep their modes: the folder's 0700 already hides them.
pub fn secure_data_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    set_mode(dir, 0o700)?;
    fix_files(dir, false)?;
    for sub in ["runtime", "logs"] {
        let p = dir.join(sub);
        if p.is_dir() {
            set_mode(&p, 0o700)?;
            fix_files(&p, true)?;
        }
    }
    Ok(())
}

fn fix_files(dir: &Path, recurse: bool) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let ft = entry.file_type()?;
        if ft.is_file() {
            set_mode(&entry.path(), 0o600)?;
        } else if ft.is_dir() && recurse {
            set_mode(&entry.path(), 0o700)?;
            fix_files(&entry.path(), true)?;
        }
    }
    Ok(())
}

/// Random letters and digits.
pub fn random_alnum(len: usize) -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
