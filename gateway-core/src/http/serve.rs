//! The accept loop: every connection is served by hyper's HTTP/1 (upgrades allowed, for
//! the web console's socket) with its own [`Front`](super::front::Front), and a graceful
//! stop: no new connections, each open one finishes the request it is answering and
//! closes, idle ones close at once, and [`serve`] returns once all are closed.
//!
//! `axum::serve` did the same with a `select!` between the connection and a shutdown
//! `watch` on every poll of every connection (a random pick, a `Notified` poll and
//! re-registration: ~2 % of a relayed request's user-space time), with hyper-util's
//! protocol-sniffing wrapper on every read and the tower glue's clone of the service and
//! `Oneshot` for every request. Here a connection reads one flag per poll and registers
//! its waker once.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::front::MakeFront;

/// Serve `listener`'s connections until `stop` completes, then stop gracefully (see the
/// module's documentation).
pub async fn serve(listener: TcpListener, make: MakeFront, stop: impl Future<Output = ()>) {
    let stopping = Arc::new(Stopping::default());
    // Every connection holds a receiver: once all are dropped, every connection closed.
    let (open_tx, open_rx) = tokio::sync::watch::channel(());
    let mut stop = std::pin::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            // The client gave up before we took its connection: nothing to do.
            Err(e) if is_connection_error(&e) => continue,
            // Out of file descriptors or memory: wait for some to be freed.
            Err(e) => {
                tracing::error!(error = %e, "cannot accept a connection; trying again in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Streams are relayed chunk by chunk: never let Nagle hold a chunk back.
        let _ = tcp.set_nodelay(true);
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(tcp), make.connection(peer))
            .with_upgrades();
        let watched = Watched {
            conn: Box::pin(conn),
            stopping: stopping.clone(),
            slot: None,
            draining: false,
        };
        let open = open_rx.clone();
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
            drop(open);
        });
    }
    drop(listener);
    drop(open_rx);
    stopping.stop();
    open_tx.closed().await;
}

/// Errors of one connection that came and went, not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// The stop signal the open connections watch.
#[derive(Default)]
struct Stopping {
    stopped: AtomicBool,
    /// Each open connection's waker, by a number of its own.
    wakers: Mutex<(u64, HashMap<u64, Waker>)>,
}

impl Stopping {
    fn wakers(&self) -> std::sync::MutexGuard<'_, (u64, HashMap<u64, Waker>)> {
        self.wakers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, waker: &Waker) -> u64 {
        let mut w = self.wakers();
        w.0 += 1;
        let id = w.0;
        w.1.insert(id, waker.clone());
        id
    }

    fn unregister(&self, id: u64) {
        self.wakers().1.remove(&id);
    }

    /// Set the flag, then wake every registered connection. A connection registers before
    /// it reads the flag, so one registering while this runs either is woken here or
    /// reads the flag set.
    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let wakers: Vec<Waker> = self.wakers().1.drain().map(|(_, w)| w).collect();
        for w in wakers {
            w.wake();
        }
    }
}

type Conn = hyper::server::conn::http1::UpgradeableConnection<
    TokioIo<tokio::net::TcpStream>,
    super::front::Front,
>;

/// A connection that starts its graceful shutdown when the server stops. Polled only as
/// its own task (spawned above), so the waker it registers on its first poll stays the
/// task's.
struct Watched {
    conn: Pin<Box<Conn>>,
    stopping: Arc<Stopping>,
    slot: Option<u64>,
    draining: bool,
}

impl Future for Watched {
    type Output = hyper::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.slot.is_none() {
            this.slot = Some(this.stopping.register(cx.waker()));
        }
        if !this.draining && this.stopping.stopped.load(Ordering::SeqCst) {
            this.draining = true;
            this.conn.as_mut().graceful_shutdown();
        }
        this.conn.as_mut().poll(cx)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(id) = self.slot {
            self.stopping.unregister(id);
        }
    }
}
