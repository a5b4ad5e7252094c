//! One BurnCloud per data folder, router or desktop: the app lock
//! (`<data dir>/burncloud.lock`, see `llama_manager::instance`), and the desktop's wake-up
//! line, a loopback port with a secret token through which a second launch asks the
//! first instance to bring its window forward.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use llama_manager::instance::{self, Lock, LockError, Owner};

/// Why this process may not run on the data folder.
pub struct Refused {
    /// The holder's note (None: the lock could not even be tried).
    pub owner: Option<Owner>,
    pub message: String,
}

/// Take the app lock of `data_dir`, or say who holds it.
pub fn claim(data_dir: &Path) -> Result<Lock, Refused> {
    match Lock::acquire(data_dir, instance::APP) {
        Ok(l) => Ok(l),
        Err(LockError::Held(o)) => Err(Refused {
            message: format!(
                "BurnCloud is already running ({}) on the data folder {}: use that one, or stop it first (or set BURNCLOUD_DATA_DIR to another folder)",
                o.describe(),
                data_dir.display()
            ),
            owner: Some(o),
        }),
        Err(e) => Err(Refused {
            owner: None,
            message: format!("cannot lock the data folder: {e}"),
        }),
    }
}

/// Record the gateway's port in the lock's note (a refused second instance prints it).
pub fn set_port(lock: &Lock, url_or_addr: &str) {
    let port = url_or_addr
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok());
    if let Some(port) = port
        && let Err(e) = lock.update(|o| o.port = Some(port))
    {
        tracing::warn!(error = %e, "cannot update the instance note");
    }
}

/// Listen on a loopback port for "show TOKEN" and call `on_wake` for each valid request;
/// the port and token go into the lock's note (mode 0600).
pub fn listen_for_wake(lock: &Lock, on_wake: impl Fn() + Send + 'static) -> std::io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = listener.local_addr()?.port();
    let token = gateway_core::auth::random_alnum(32);
    let expected = format!("show {token}");
    lock.update(|o| {
        o.wake_port = Some(port);
        o.wake_token = Some(token);
    })?;
    std::thread::Builder::new()
        .name("burncloud-wake".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let Ok(mut reply) = conn.try_clone() else {
                    continue;
                };
                let mut line = String::new();
                if BufReader::new(conn.take(256)).read_line(&mut line).is_err() {
                    continue;
                }
                if line.trim_end() == expected {
                    on_wake();
                    let _ = reply.write_all(b"ok\n");
                } else {
                    let _ = reply.write_all(b"refused\n");
                }
            }
        })?;
    Ok(())
}

/// Ask the instance described by `owner` to show its window; true when it did.
pub fn wake(owner: &Owner) -> bool {
    let (Some(port), Some(token)) = (owner.wake_port, owner.wake_token.as_deref()) else {
        return false;
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    if s.write_all(format!("show {token}\n").as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = BufReader::new(s).read_line(&mut answer);
    answer.trim() == "ok"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_is_refused_and_wakes_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let lock = claim(dir.path()).unwrap_or_else(|r| panic!("{}", r.message));
        set_port(&lock, "http://127.0.0.1:3456");
        let (tx, rx) = std::sync::mpsc::channel();
        listen_for_wake(&lock, move || {
            let _ = tx.send(());
        })
        .unwrap();
        let refused = match claim(dir.path()) {
            Err(r) => r,
            Ok(_) => panic!("a second claim must be refused"),
        };
        assert!(
            refused.message.contains(&format!(
                "already running (pid {}, port 3456)",
                std::process::id()
            )),
            "{}",
            refused.message
        );
        let owner = refused.owner.unwrap();
        assert!(wake(&owner));
        rx.recv_timeout(Duration::from_secs(2)).unwrap();
        // A wrong token is refused and wakes nothing.
        let mut wrong = owner.clone();
        wrong.wake_token = Some("nope".into());
        assert!(!wake(&wrong));
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
    }
}
