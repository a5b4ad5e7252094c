//! The usage writer: settled requests are queued here and committed in batches (group
//! commit) by one dedicated thread, so no request ever waits on the database. The thread
//! sleeps until a record arrives, then waits 10 ms to gather the rest
//! of the batch: one wake-up and one transaction per batch, not per request. A failed
//! batch (disk full, locked) is kept and retried; shutdown drains the queue. Each commit
//! bumps the gateway's change counter ([`crate::AppState::subscribe_changes`]), so consoles
//! show new records when they land instead of polling. A second without records after
//! some arrived trims the heap (see [`super::heap`]).

use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::store::Store;
use crate::store::logs::{self, LogRecord};

/// Largest batch committed in one transaction.
const MAX_BATCH: usize = 4096;
/// How long the writer gathers a batch after its first record. Longer batches write
/// fewer pages per record (the same index leaves are touched once per commit); 10 ms
/// measured cheaper than 2 ms under load, and a console sees a record 10 ms later.
const GATHER: Duration = Duration::from_millis(10);
/// No record settled for this long: the gateway went quiet, and the heap freed since the
/// last trim is handed back ([`super::heap::trim`]).
const QUIET: Duration = Duration::from_secs(1);

/// Sender side, held by the relay.
#[derive(Debug, Clone)]
pub struct UsageWriter {
    tx: mpsc::Sender<Msg>,
}

/// Records travel unboxed: the channel's blocks hold 31 messages each, one allocation per
/// 31 records instead of a box per record (which the writer's thread freed, so the
/// request's thread never reused it).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Msg {
    Record(LogRecord),
    Flush(oneshot::Sender<()>),
}

/// Handle to the writer thread.
pub struct WriterThread(std::thread::JoinHandle<()>);

impl WriterThread {
    /// Wait (blocking) for the thread to finish; it does once every sender is dropped.
    pub fn join(self) {
        let _ = self.0.join();
    }
}

impl UsageWriter {
    /// Start the writer thread. `lease`: this gateway's instance id when gateways share
    /// the database (stored costs then come off its quota leases).
    /// `changes` is bumped after every commit.
    pub fn start(
        store: Store,
        lease: Option<String>,
        changes: tokio::sync::watch::Sender<u64>,
    ) -> std::io::Result<(UsageWriter, WriterThread)> {
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("burncloud-usage-writer".into())
            .spawn(move || run(store, lease, rx, changes))?;
        Ok((UsageWriter { tx }, WriterThread(handle)))
    }

    /// Queue a record (never blocks).
    pub fn send(&self, record: LogRecord) {
        if self.tx.send(Msg::Record(record)).is_err() {
            tracing::error!("usage writer stopped; a usage record could not be queued");
        }
    }

    /// Wait until everything queued so far is committed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

fn run(
    store: Store,
    lease: Option<String>,
    rx: mpsc::Receiver<Msg>,
    changes: tokio::sync::watch::Sender<u64>,
) {
    let lease = lease.as_deref();
    let mut batch: Vec<LogRecord> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    // Records came since the heap was last trimmed.
    let mut busy = false;
    loop {
        let first = if busy {
            match rx.recv_timeout(QUIET) {
                Ok(m) => m,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    // Quiet since: what the burst freed goes back to the system.
                    super::heap::trim();
                    busy = false;
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(m) => m,
                Err(_) => break,
            }
        };
        busy = true;
        let flush_now = matches!(first, Msg::Flush(_));
        push(first, &mut batch, &mut waiters);
        if !flush_now {
            std::thread::sleep(GATHER);
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => push(m, &mut batch, &mut waiters),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            commit(&store, lease, &mut batch);
            changes.send_modify(|n| *n = n.wrapping_add(1));
        }
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
    // Every sender is gone: everything received was committed above.
    commit(&store, lease, &mut batch);
}

fn push(m: Msg, batch: &mut Vec<LogRecord>, waiters: &mut Vec<oneshot::Sender<()>>) {
    match m {
        Msg::Record(r) => batch.push(r),
        Msg::Flush(w) => waiters.push(w),
    }
}

fn commit(store: &Store, lease: Option<&str>, batch: &mut Vec<LogRecord>) {
    let mut delay = Duration::from_millis(50);
    while !batch.is_empty() {
        match store.with(|c| logs::commit_usage(c, batch, lease)) {
            Ok(()) => batch.clear(),
            Err(e) => {
                tracing::error!(error = %e, pending = batch.len(), "could not store usage records; will retry");
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    fn rss_anon_kb() -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = s.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn a_quiet_second_after_records_hands_the_freed_heap_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&crate::store::testing::location(dir.path())).unwrap();
        let (changes, _) = tokio::sync::watch::channel(0);
        let (writer, thread) = UsageWriter::start(store.clone(), None, changes).unwrap();
        // 64 MB in 64 KB blocks (below glibc's mmap threshold), three in four freed: the
        // free runs lie between live blocks, where free() alone keeps them.
        let mut blocks: Vec<Vec<u8>> = (0..1000).map(|_| vec![1u8; 64 * 1024]).collect();
        let mut i = 0;
        blocks.retain(|_| {
            i += 1;
            i % 4 == 0
        });
        let before = rss_anon_kb();
        writer.send(LogRecord {
            request_id: "quiet".into(),
            status: 200,
            ..Default::default()
        });
        std::thread::sleep(QUIET + GATHER + Duration::from_millis(700));
        let after = rss_anon_kb();
        assert!(
            after + 32_000 < before,
            "RssAnon {before} kB -> {after} kB a quiet second after the last record"
        );
        assert!(blocks.iter().all(|b| b.len() == 64 * 1024 && b[4096] == 1));
        drop(writer);
        thread.join();
        // The record itself was committed.
        let minutes = store.with(|c| logs::per_minute(c, 0)).unwrap();
        assert_eq!(minutes.iter().map(|m| m.requests).sum::<i64>(), 1);
    }
}
