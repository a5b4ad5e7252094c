//! The usage writer: settled requests are queued here and committed in batches (group
//! commit) by one dedicated thread, so no request ever waits on the database. The thread
//! sleeps until a record arrives, then waits 10 ms to gather the rest
//! of the batch: one wake-up and one transaction per batch, not per request. A failed
//! batch (disk full, locked) is kept and retried; shutdown drains the queue. Each commit
//! bumps the gateway's change counter ([`crate::AppState::subscribe_changes`]), so consoles
//! show new records when they land instead of polling.

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

/// Sender side, held by the relay.
#[derive(Debug, Clone)]
pub struct UsageWriter {
    tx: mpsc::Sender<Msg>,
}

#[derive(Debug)]
enum Msg {
    Record(Box<LogRecord>),
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
        if self.tx.send(Msg::Record(Box::new(record))).is_err() {
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
    while let Ok(first) = rx.recv() {
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
        Msg::Record(r) => batch.push(*r),
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
