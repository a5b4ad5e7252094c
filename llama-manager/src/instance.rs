//! One owner per data folder: an operating-system file lock (`File::try_lock`, released by
//! the OS when the process dies, however it dies) plus a small JSON note of who holds it
//! (pid, gateway port, the desktop's wake-up address).
//!
//! The note is a separate file because Windows locks are mandatory: nobody else could read
//! a locked file there. `<name>.lock` is only ever locked; `<name>.json` (mode 0600, it
//! holds the wake-up token) is rewritten by the holder.
//!
//! Used for the whole app (`<data dir>/burncloud.lock`: a second `burncloud router` or
//! desktop launch is refused) and for the local-model supervisor
//! (`<data dir>/runtime/supervisor.lock`: one process starts and stops llama-server
//! children of a data folder).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Who holds a lock, as its holder wrote it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    /// The gateway's port, once it listens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The desktop app's loopback wake-up port (a second launch asks it to show its window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_port: Option<u16>,
    /// The secret a wake-up request must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_token: Option<String>,
}

impl Owner {
    /// "pid N, port P" (what a refused second instance prints).
    pub fn describe(&self) -> String {
        match (self.pid, self.port) {
            (0, _) => "another process".into(),
            (pid, Some(port)) => format!("pid {pid}, port {port}"),
            (pid, None) => format!("pid {pid}"),
        }
    }
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("already running ({})", .0.describe())]
    Held(Owner),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct Lock {
    _file: File,
    note: PathBuf,
    owner: std::sync::Mutex<Owner>,
}

fn paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.lock")),
        dir.join(format!("{name}.json")),
    )
}

/// Create `dir` (and its parents) readable by this user only, when missing.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

fn read_note(note: &Path) -> Owner {
    std::fs::read(note)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

impl Lock {
    /// Take `<dir>/<name>.lock` without waiting; `Held` with the holder's note when another
    /// process (or another handle in this process) has it.
    pub fn acquire(dir: &Path, name: &str) -> Result<Lock, LockError> {
        let (path, note) = paths(dir, name);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        create_private_dir(dir).map_err(io)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(LockError::Held(read_note(&note))),
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let lock = Lock {
            _file: file,
            note,
            owner: std::sync::Mutex::new(Owner {
                pid: std::process::id(),
                ..Owner::default()
            }),
        };
        lock.write().map_err(|source| LockError::Io {
            path: lock.note.clone(),
            source,
        })?;
        Ok(lock)
    }

    /// Change the note (e.g. the port once listening).
    pub fn update(&self, f: impl FnOnce(&mut Owner)) -> std::io::Result<()> {
        f(&mut self.owner.lock().unwrap_or_else(|p| p.into_inner()));
        self.write()
    }

    /// What the note says now.
    pub fn owner(&self) -> Owner {
        self.owner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn write(&self) -> std::io::Result<()> {
        let body = serde_json::to_vec(&self.owner()).unwrap_or_default();
        let tmp = self.note.with_extension("json.tmp");
        let mut o = OpenOptions::new();
        o.create(true).write(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp)?;
        f.write_all(&body)?;
        drop(f);
        std::fs::rename(&tmp, &self.note)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // The lock itself goes with the file handle; the note would only mislead.
        let _ = std::fs::remove_file(&self.note);
    }
}

/// Who holds `<dir>/<name>.lock` now (None: nobody). Probes with a non-blocking lock
/// that is released at once.
pub fn holder(dir: &Path, name: &str) -> Option<Owner> {
    let (path, note) = paths(dir, name);
    let file = OpenOptions::new().read(true).write(true).open(&path).ok()?;
    match file.try_lock() {
        Ok(()) => None,
        Err(TryLockError::WouldBlock) => Some(read_note(&note)),
        Err(TryLockError::Error(_)) => None,
    }
}

/// The app's lock: `<data dir>/burncloud.lock`.
pub const APP: &str = "burncloud";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_and_its_note() {
        let dir = tempfile::tempdir().unwrap();
        assert!(holder(dir.path(), "x").is_none());
        let first = Lock::acquire(dir.path(), "x").unwrap();
        first.update(|o| o.port = Some(3000)).unwrap();
        // A second handle, even in the same process, is refused with the note.
        match Lock::acquire(dir.path(), "x") {
            Err(LockError::Held(o)) => {
                assert_eq!(o.pid, std::process::id());
                assert_eq!(o.port, Some(3000));
                assert_eq!(
                    LockError::Held(o).to_string(),
                    format!("already running (pid {}, port 3000)", std::process::id())
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(holder(dir.path(), "x").unwrap().port, Some(3000));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("x.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        drop(first);
        assert!(holder(dir.path(), "x").is_none());
        let again = Lock::acquire(dir.path(), "x").unwrap();
        assert_eq!(again.owner().port, None);
    }
}
