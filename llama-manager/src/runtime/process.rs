//! Child processes that cannot outlive us: each llama-server runs in its own process group
//! (Unix) with a parent-death signal (Linux), is stopped with SIGTERM → wait → SIGKILL on
//! the whole group and reaped; a pid file per child lets the next start find and stop
//! children a crashed run left behind.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The environment variable llama-server reads its API key from (`--api-key`'s
/// `LLAMA_API_KEY` in llama.cpp's `common/arg.cpp`): the key stays off the command line.
pub const API_KEY_ENV: &str = "LLAMA_API_KEY";

/// Build the command for a supervised child: own process group, killed with us. Variables
/// llama-server would read as arguments (`LLAMA_ARG_*`, `LLAMA_API_KEY`) are not inherited,
/// so only the arguments given here (and the allow-listed extras among them) apply.
pub fn command(program: &Path, args: &[String]) -> Command {
    let mut cmd = Command::new(program);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("LLAMA_ARG_") || k == API_KEY_ENV {
            cmd.env_remove(k.as_ref());
        }
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    {
        // SAFETY: only async-signal-safe calls (setpgid, prctl, getppid) between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                #[cfg(target_os = "linux")]
                {
                    // Dies when the thread that spawned it exits: spawn from a long-lived thread.
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // The parent died between fork and prctl.
                    if libc::getppid() == 1 {
                        libc::_exit(1);
                    }
                }
                Ok(())
            });
        }
    }
    #[cfg(windows)]
    {
        // CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW (no console window pops up); the
        // child joins our kill-on-close job object once spawned (`adopt`).
        cmd.creation_flags(0x0000_0200 | 0x0800_0000);
    }
    cmd
}

/// Tie a spawned child to this process's life where the OS needs help: on Windows it
/// joins a job object with kill-on-close, so the children die with us even when we
/// crash (Linux has the parent-death signal; elsewhere the pid files clean up later).
pub fn adopt(child: &Child) {
    #[cfg(windows)]
    if let Some(h) = child.raw_handle() {
        job::assign(h);
    }
    #[cfg(not(windows))]
    let _ = child;
}

#[cfg(windows)]
mod job {
    use std::sync::OnceLock;

    use windows_sys::Win32::System::JobObjects::{
        AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
        JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
        SetInformationJobObject,
    };

    /// The job's handle (kept open for the process's life: closing it, which the OS does
    /// when we die, kills every process in it).
    static JOB: OnceLock<Option<usize>> = OnceLock::new();

    fn job() -> Option<usize> {
        *JOB.get_or_init(|| {
            // SAFETY: plain Win32 calls with valid arguments; the handle is never closed.
            unsafe {
                let h = CreateJobObjectW(std::ptr::null(), std::ptr::null());
                if h.is_null() {
                    tracing::warn!("cannot create a job object: children may outlive a crash");
                    return None;
                }
                let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = std::mem::zeroed();
                info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
                let ok = SetInformationJobObject(
                    h,
                    JobObjectExtendedLimitInformation,
                    &info as *const _ as *const core::ffi::c_void,
                    std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
                );
                if ok == 0 {
                    tracing::warn!("cannot set kill-on-close on the job object");
                    return None;
                }
                Some(h as usize)
            }
        })
    }

    pub fn assign(process: std::os::windows::io::RawHandle) {
        let Some(j) = job() else { return };
        // SAFETY: `process` is a live child's handle, `j` our job's.
        let ok = unsafe { AssignProcessToJobObject(j as _, process as _) };
        if ok == 0 {
            tracing::warn!("cannot put a child into the job object");
        }
    }
}

/// Send `sig` to the process group `pgid` (Unix).
#[cfg(unix)]
fn signal_group(pgid: u32, sig: i32) -> bool {
    // SAFETY: plain syscall.
    unsafe { libc::kill(-(pgid as i32), sig) == 0 }
}

/// Stop a child: SIGTERM to its group, wait up to `grace`, then SIGKILL; always reaped.
pub async fn terminate(child: &mut Child, grace: Duration) {
    let Some(pid) = child.id() else {
        let _ = child.wait().await;
        return;
    };
    #[cfg(unix)]
    {
        signal_group(pid, libc::SIGTERM);
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            signal_group(pid, libc::SIGKILL); // anything the server itself started
            return;
        }
        signal_group(pid, libc::SIGKILL);
    }
    #[cfg(not(unix))]
    {
        let _ = (pid, grace);
        let _ = child.start_kill();
    }
    let _ = child.wait().await;
}

/// Pid files of running children: `<dir>/<model id>.pid` holding `pid` and the program.
#[derive(Debug, Clone)]
pub struct PidFiles {
    dir: PathBuf,
}

impl PidFiles {
    pub fn new(dir: PathBuf) -> Self {
        PidFiles { dir }
    }

    fn path(&self, id: i64) -> PathBuf {
        self.dir.join(format!("{id}.pid"))
    }

    /// Record a started child.
    pub fn write(&self, id: i64, pid: u32, program: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(self.path(id), format!("{pid}\n{}\n", program.display()))
    }

    /// Forget a stopped child.
    pub fn remove(&self, id: i64) {
        let _ = std::fs::remove_file(self.path(id));
    }

    /// Stop children a previous run left behind (crash, kill -9 where no parent-death
    /// signal exists). Only processes still running the recorded program are touched, so a
    /// recycled pid is never killed. Returns the pids stopped.
    pub fn reap_orphans(&self) -> Vec<u32> {
        let mut stopped = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return stopped;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().and_then(|x| x.to_str()) != Some("pid") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let mut lines = text.lines();
            let pid = lines.next().and_then(|l| l.trim().parse::<u32>().ok());
            let program = lines.next().unwrap_or("").trim().to_string();
            if let Some(pid) = pid
                && runs_program(pid, &program)
            {
                tracing::warn!(pid, %program, "stopping a llama-server left by a previous run");
                kill_now(pid);
                stopped.push(pid);
            }
            let _ = std::fs::remove_file(&path);
        }
        stopped
    }
}

/// Whether process `pid` is alive and runs `program` (by its executable's file name).
pub fn runs_program(pid: u32, program: &str) -> bool {
    let name = Path::new(program)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if name.is_empty() {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or(&[]);
        let argv0 = String::from_utf8_lossy(argv0);
        Path::new(argv0.as_ref())
            .file_name()
            .is_some_and(|n| n.to_string_lossy() == name)
    }
    #[cfg(all(unix, not(target_os = "linux")))]
    {
        std::process::Command::new("ps")
            .args(["-p", &pid.to_string(), "-o", "comm="])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().ends_with(&name))
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
        let Ok(mut sys) = System::new() else {
            return false;
        };
        let pid = Pid::from_u32(pid);
        sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            true,
            ProcessRefreshKind::nothing(),
        );
        sys.process(pid)
            .is_some_and(|p| p.name().to_string_lossy().eq_ignore_ascii_case(&name))
    }
}

/// SIGKILL a process and its group (orphans).
fn kill_now(pid: u32) {
    #[cfg(unix)]
    {
        signal_group(pid, libc::SIGKILL);
        // SAFETY: plain syscall.
        unsafe {
            libc::kill(pid as i32, libc::SIGKILL);
        }
    }
    #[cfg(not(unix))]
    {
        let _ = std::process::Command::new("taskkill")
            .args(["/F", "/T", "/PID", &pid.to_string()])
            .status();
    }
}

/// Resident memory of a process in bytes (None when unknown).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }
    #[cfg(not(target_os = "linux"))]
    {
        use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
        let mut sys = System::new().ok()?;
        let pid = Pid::from_u32(pid);
        sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            true,
            ProcessRefreshKind::nothing().with_memory(),
        );
        sys.process(pid).map(|p| p.memory())
    }
}
