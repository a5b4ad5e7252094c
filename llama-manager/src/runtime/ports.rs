//! Ports for llama-server children: is one free, the first free one from 8080, and which
//! process holds a busy one (where the OS tells: Linux's `/proc`).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// The first port tried when none is chosen.
pub const FIRST_PORT: u16 = 8080;

/// True when nothing listens on `127.0.0.1:port` (we could bind it).
pub fn is_free(port: u16) -> bool {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_ok()
}

/// The first free port at or after `from`, skipping `taken` (ports our own children use).
pub fn first_free(from: u16, taken: &[u16]) -> Option<u16> {
    (from..=u16::MAX).find(|p| !taken.contains(p) && is_free(*p))
}

/// Who holds a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub name: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (pid {})", self.name, self.pid)
    }
}

/// The process listening on `port`, where the OS tells (Linux); None elsewhere or when
/// it belongs to another user.
pub fn holder(port: u16) -> Option<Holder> {
    #[cfg(target_os = "linux")]
    {
        linux::holder(port)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = port;
        None
    }
}

/// "port 8080 is in use by python3 (pid 1234)" and the next free port.
pub fn explain_busy(port: u16, taken: &[u16]) -> String {
    let who = holder(port).map(|h| format!(" by {h}")).unwrap_or_default();
    let next = first_free(port.saturating_add(1), taken)
        .map(|p| format!("; port {p} is free (use --port {p})"))
        .unwrap_or_default();
    format!("port {port} is already in use{who}{next}")
}

#[cfg(target_os = "linux")]
mod linux {
    use super::Holder;

    /// Socket inodes listening on `port` (`/proc/net/tcp` and `tcp6`, state 0A = LISTEN).
    fn listening_inodes(port: u16) -> Vec<u64> {
        let mut out = Vec::new();
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            let Ok(text) = std::fs::read_to_string(table) else {
                continue;
            };
            for line in text.lines().skip(1) {
                let cols: Vec<&str> = line.split_whitespace().collect();
                if cols.len() < 10 || cols[3] != "0A" {
                    continue;
                }
                let local_port = cols[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok());
                if local_port == Some(port)
                    && let Ok(inode) = cols[9].parse::<u64>()
                {
                    out.push(inode);
                }
            }
        }
        out
    }

    pub fn holder(port: u16) -> Option<Holder> {
        let inodes = listening_inodes(port);
        if inodes.is_empty() {
            return None;
        }
        let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                if let Ok(target) = std::fs::read_link(fd.path())
                    && wanted.iter().any(|w| target.as_os_str() == w.as_str())
                {
                    let name = std::fs::read_to_string(entry.path().join("comm"))
                        .map(|s| s.trim().to_string())
                        .unwrap_or_else(|_| "?".into());
                    return Some(Holder { pid, name });
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_port_is_busy_and_its_holder_is_us() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(!is_free(port));
        let next = first_free(port, &[]).unwrap();
        assert_ne!(next, port);
        let msg = explain_busy(port, &[]);
        assert!(
            msg.contains(&format!("port {port} is already in use")),
            "{msg}"
        );
        if cfg!(target_os = "linux") {
            let h = holder(port).expect("the holder of our own listener");
            assert_eq!(h.pid, std::process::id());
            assert!(
                msg.contains(&format!("pid {}", std::process::id())),
                "{msg}"
            );
        }
        drop(l);
        assert!(is_free(port));
        assert_eq!(holder(port), None);
    }
}
