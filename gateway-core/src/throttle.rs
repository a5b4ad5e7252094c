//! Brute force and memory: logins and registrations limited per client address and per
//! user name (free attempts, then a doubling lock answered with 429 + `Retry-After`), and
//! argon2 hashing on one thread per core with a bounded queue, so a flood of logins
//! cannot grow memory without bound. Each hash takes 19 MiB; done on the blocking pool's
//! many threads, the allocator kept one such block per thread (measured: +19.5 MB per
//! login, 4 GB after 500 concurrent ones). A few long-lived threads keep it at a few.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Failed logins for one user name before it is locked.
const FREE_PER_USER: u32 = 5;
/// Failed logins from one address before it is locked.
const FREE_PER_ADDR: u32 = 20;
/// Registrations from one address per window before it is locked.
const FREE_REGISTRATIONS: u32 = 20;
/// A record is forgotten this long after its last event.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The longest lock.
const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// Requests waiting for a hashing slot beyond this are refused at once.
const MAX_WAITING: usize = 256;
/// Records kept at most (oldest dropped first when full).
const MAX_RECORDS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Addr(IpAddr),
    Register(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Record {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// Work for a hashing thread, given that thread's reusable argon2 memory.
type Job = Box<dyn FnOnce(&mut Vec<argon2::Block>) + Send>;

/// The throttle of one gateway.
pub struct AuthThrottle {
    /// Jobs for the hashing threads (started on first use), at most [`MAX_WAITING`] queued.
    hashing: OnceLock<std::sync::mpsc::SyncSender<Job>>,
    records: Mutex<HashMap<Key, Record>>,
}

impl std::fmt::Debug for AuthThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthThrottle")
    }
}

impl Default for AuthThrottle {
    fn default() -> Self {
        AuthThrottle {
            hashing: OnceLock::new(),
            records: Mutex::new(HashMap::new()),
        }
    }
}

/// How long a hashing thread keeps its 19 MiB argon2 block after its last job: reused
/// through a burst of logins, handed back once they stop.
const KEEP_MEMORY: Duration = Duration::from_secs(2);

/// Start one hashing thread per core; they end when the throttle is dropped.
fn start_hashers() -> std::sync::mpsc::SyncSender<Job> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(MAX_WAITING);
    let rx = std::sync::Arc::new(Mutex::new(rx));
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    for i in 0..cores {
        let rx = rx.clone();
        let _ = std::thread::Builder::new()
            .name(format!("burncloud-argon2-{i}"))
            .spawn(move || hasher(&rx, KEEP_MEMORY));
    }
    tx
}

/// One hashing thread: runs jobs, and lets its block go when none came for `keep` (a
/// router that saw one login held 19 MiB per core for the rest of its life).
fn hasher(rx: &Mutex<std::sync::mpsc::Receiver<Job>>, keep: Duration) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut memory: Vec<argon2::Block> = Vec::new();
    loop {
        let next = {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            if memory.is_empty() {
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                rx.recv_timeout(keep)
            }
        };
        match next {
            Ok(job) => job(&mut memory),
            Err(RecvTimeoutError::Timeout) => memory = Vec::new(),
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// A refusal, answered as 429 with `Retry-After` (the HTTP layer turns it into its error).
#[derive(Debug)]
pub struct Throttled {
    pub retry_after: Duration,
    pub message: String,
}

/// Why a password could not be hashed or checked now.
#[derive(Debug)]
pub enum HashError {
    /// Too many already wait for a hashing thread.
    Busy(Throttled),
    /// The hashing thread went away.
    Failed,
}

fn lock_for(count: u32, free: u32) -> Duration {
    let over = count.saturating_sub(free).min(20);
    Duration::from_secs(1u64 << over).min(MAX_LOCK)
}

impl AuthThrottle {
    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Record>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn locked(&self, keys: &[Key], now: Instant) -> Option<Duration> {
        let records = self.records();
        keys.iter()
            .filter_map(|k| records.get(k))
            .filter(|r| now.duration_since(r.last) < WINDOW)
            .filter_map(|r| r.locked_until)
            .filter(|u| *u > now)
            .map(|u| u - now)
            .max()
    }

    fn fail(&self, key: Key, free: u32, now: Instant) {
        let mut records = self.records();
        if records.len() >= MAX_RECORDS {
            records.retain(|_, r| now.duration_since(r.last) < WINDOW);
            if records.len() >= MAX_RECORDS {
                let oldest = records
                    .iter()
                    .min_by_key(|(_, r)| r.last)
                    .map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    records.remove(&k);
                }
            }
        }
        let r = records.entry(key).or_insert(Record {
            count: 0,
            last: now,
            locked_until: None,
        });
        if now.duration_since(r.last) >= WINDOW {
            r.count = 0;
            r.locked_until = None;
        }
        r.count += 1;
        r.last = now;
        if r.count >= free {
            r.locked_until = Some(now + lock_for(r.count, free));
        }
    }

    /// Refuse a login attempt while its user name or address is locked.
    pub fn check_login(&self, addr: IpAddr, username: &str) -> Result<(), Throttled> {
        let keys = [Key::User(username.to_lowercase()), Key::Addr(addr)];
        match self.locked(&keys, Instant::now()) {
            None => Ok(()),
            Some(wait) => Err(Throttled {
                retry_after: wait,
                message: format!(
                    "too many failed logins: try again in {} s",
                    wait.as_secs().max(1)
                ),
            }),
        }
    }

    /// Count a failed login.
    pub fn login_failed(&self, addr: IpAddr, username: &str) {
        let now = Instant::now();
        self.fail(Key::User(username.to_lowercase()), FREE_PER_USER, now);
        self.fail(Key::Addr(addr), FREE_PER_ADDR, now);
    }

    /// A successful login clears its user name's record.
    pub fn login_succeeded(&self, username: &str) {
        self.records().remove(&Key::User(username.to_lowercase()));
    }

    /// Refuse a registration when this address registered too often lately.
    pub fn check_register(&self, addr: IpAddr) -> Result<(), Throttled> {
        match self.locked(&[Key::Register(addr)], Instant::now()) {
            None => Ok(()),
            Some(wait) => Err(Throttled {
                retry_after: wait,
                message: format!(
                    "too many registrations from this address: try again in {} s",
                    wait.as_secs().max(1)
                ),
            }),
        }
    }

    /// Count a registration attempt from `addr`.
    pub fn registered(&self, addr: IpAddr) {
        self.fail(Key::Register(addr), FREE_REGISTRATIONS, Instant::now());
    }

    /// Run an argon2 computation on a hashing thread (one per core); refused with 429
    /// when too many already wait.
    pub async fn hash<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Vec<argon2::Block>) -> R + Send + 'static,
    ) -> Result<R, HashError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _ = tx.send(f(memory));
        });
        self.hashing
            .get_or_init(start_hashers)
            .try_send(job)
            .map_err(|_| {
                HashError::Busy(Throttled {
                    retry_after: Duration::from_secs(1),
                    message: "too many logins at once: try again in a second".into(),
                })
            })?;
        rx.await.map_err(|_| HashError::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashing_thread_lets_its_block_go_when_logins_stop() {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(4);
        let rx = Mutex::new(rx);
        let (seen_tx, seen_rx) = std::sync::mpsc::channel::<usize>();
        let keep = Duration::from_millis(100);
        std::thread::scope(|s| {
            s.spawn(|| hasher(&rx, keep));
            let report = |seen_tx: std::sync::mpsc::Sender<usize>| -> Job {
                Box::new(move |memory| {
                    let held = memory.len();
                    crate::auth::verify_password_with(
                        "pw",
                        "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                        memory,
                    );
                    let _ = seen_tx.send(held);
                })
            };
            // The first job finds no block; a second one right after reuses it.
            tx.send(report(seen_tx.clone())).unwrap();
            assert_eq!(seen_rx.recv().unwrap(), 0);
            tx.send(report(seen_tx.clone())).unwrap();
            assert_eq!(seen_rx.recv().unwrap(), 64);
            // After `keep` without a job, the next one starts without it.
            std::thread::sleep(keep * 3);
            tx.send(report(seen_tx.clone())).unwrap();
            assert_eq!(seen_rx.recv().unwrap(), 0);
            drop(tx);
        });
    }

    #[test]
    fn a_user_name_locks_after_its_free_attempts_and_the_lock_doubles() {
        let t = AuthThrottle::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..FREE_PER_USER - 1 {
            t.check_login(ip, "admin").unwrap();
            t.login_failed(ip, "admin");
        }
        t.check_login(ip, "admin").unwrap();
        t.login_failed(ip, "admin");
        assert!(
            t.check_login(ip, "Admin").is_err(),
            "names are case-insensitive"
        );
        // Another name from another address is not affected.
        t.check_login("10.0.0.2".parse().unwrap(), "bob").unwrap();
        assert_eq!(lock_for(5, 5), Duration::from_secs(1));
        assert_eq!(lock_for(7, 5), Duration::from_secs(4));
        assert_eq!(lock_for(60, 5), MAX_LOCK);
        t.login_succeeded("admin");
        t.check_login(ip, "admin").unwrap();
    }
}
