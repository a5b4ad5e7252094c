//! The usage writer: settled requests are queued here and committed in batches (group
//! commit) on a blocking thread, so no request ever waits on the database. A failed
//! batch (disk full, locked) is kept and retried; shutdown drains the queue.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::store::Store;
use crate::store::logs::{self, LogRecord};

/// Largest batch committed in one transaction.
const MAX_BATCH: usize = 2048;

/// Sender side, held by the relay.
#[derive(Debug, Clone)]
pub struct UsageWriter {
    tx: mpsc::UnboundedSender<Msg>,
}

#[derive(Debug)]
enum Msg {
    Record(Box<LogRecord>),
    Flush(oneshot::Sender<()>),
}

impl UsageWriter {
    /// Start the writer task on the current runtime.
    pub fn start(store: Store) -> (UsageWriter, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = tokio::spawn(run(store, rx));
        (UsageWriter { tx }, handle)
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

async fn run(store: Store, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut batch: Vec<LogRecord> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let Some(first) = rx.recv().await else { break };
        push(first, &mut batch, &mut waiters);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => push(m, &mut batch, &mut waiters),
                Err(_) => break,
            }
        }
        commit(&store, &mut batch).await;
        for w in waiters.drain(..) {
            let _ = w.send(());
        }
    }
    // Channel closed: everything was received and committed above.
    commit(&store, &mut batch).await;
}

fn push(m: Msg, batch: &mut Vec<LogRecord>, waiters: &mut Vec<oneshot::Sender<()>>) {
    match m {
        Msg::Record(r) => batch.push(*r),
        Msg::Flush(w) => waiters.push(w),
    }
}

async fn commit(store: &Store, batch: &mut Vec<LogRecord>) {
    let mut delay = Duration::from_millis(50);
    while !batch.is_empty() {
        let records = std::mem::take(batch);
        // The records travel to the blocking thread and come back whatever happens,
        // so a failed commit loses nothing.
        let outcome = store
            .run(move |c| {
                let r = logs::commit_usage(c, &records);
                Ok((records, r))
            })
            .await;
        match outcome {
            Ok((_, Ok(()))) => return,
            Ok((records, Err(e))) => {
                *batch = records;
                tracing::error!(error = %e, pending = batch.len(), "could not store usage records; will retry");
            }
            Err(e) => {
                tracing::error!(error = %e, "usage writer task failed; records of this batch are lost");
                return;
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}
