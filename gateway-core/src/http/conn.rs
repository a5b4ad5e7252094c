//! The accept loop: each connection is served by hyper's HTTP/1 server with a
//! [`Front`](super::front::Front), until the gateway stops (then every connection finishes
//! the request in flight and closes, and the loop returns once all have).
//!
//! What `axum::serve` does, with one setting it does not expose: half-close is allowed.
//! Without it, hyper reads the socket while a request is in flight to notice a client
//! that went away, and that read takes a new 8 KiB buffer on every request (the old one
//! is still shared with the request's headers and body). A client that leaves is noticed
//! when its answer is written instead, which is when the relay would act on it anyway (a
//! request is relayed and billed to its end either way: see `relay::forward::Detached`).
//! A client that half-closes after its request (allowed by HTTP/1.1) gets its answer.

use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use super::front::MakeFront;

/// Serve connections accepted on `listener` until `stop` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    front: MakeFront,
    mut stop: watch::Receiver<bool>,
) {
    // Every connection holds a receiver: when all are dropped, the connections are done.
    let (done_tx, done_rx) = watch::channel(());
    // Turned true on stop: connections finish their request in flight and close.
    let (drain_tx, drain_rx) = watch::channel(false);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = turned_true(&mut stop) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            // The client gave up before it was accepted.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::error!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Streams are relayed chunk by chunk: never let Nagle hold a chunk back.
        let _ = tcp.set_nodelay(true);
        let service = front
            .for_peer(peer)
            .map_request(|r: hyper::Request<hyper::body::Incoming>| r.map(axum::body::Body::new));
        let mut drain = drain_rx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .half_close(true)
                .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service))
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = turned_true(&mut drain) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.as_mut().await;
                }
            }
            drop(done);
        });
    }
    drop(listener);
    let _ = drain_tx.send(true);
    drop(done_rx);
    done_tx.closed().await;
}

/// Until `flag` is true (or its sender is gone).
async fn turned_true(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|f| *f).await;
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}
