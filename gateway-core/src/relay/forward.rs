//! The `/v1` handlers, and one request's way through the relay as a straight line of
//! steps: authorize → read (the client's protocol → the canonical request) → the key's
//! allow-lists → start a stopped local model → plan → the key's rate limits → the attempts
//! ([`Attempts`]). A [`Settle`] follows the request from the first step and settles it
//! exactly once.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::OpenAiError;
use super::admission;
use super::attempt::Attempts;
use super::endpoint::{Endpoint, render_error};
use super::ingress::{self, Caller};
use super::plan;
use super::request;
use super::settle::Settle;
use crate::live::metrics::StatusLabel;
use crate::snapshot::Snapshot;
use crate::state::Shared;
use crate::wire::Ingress;

pub async fn chat_completions(
    State(state): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    detached(relay_request(state, Endpoint::Chat, addr, req)).await
}

pub async fn completions(
    State(state): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    detached(relay_request(state, Endpoint::Completions, addr, req)).await
}

pub async fn embeddings(
    State(state): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    detached(relay_request(state, Endpoint::Embeddings, addr, req)).await
}

pub async fn rerank(
    State(state): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    detached(relay_request(state, Endpoint::Rerank, addr, req)).await
}

pub async fn messages(
    State(state): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    detached(relay_request(state, Endpoint::Messages, addr, req)).await
}

pub async fn responses(
    State(state): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    detached(relay_request(state, Endpoint::Responses, addr, req)).await
}

/// The endpoint a POST to `path` relays, for the paths the relay serves (exactly as the
/// router matches them): the connection's service sends these straight here.
pub(crate) fn endpoint_of(path: &str) -> Option<Endpoint> {
    Some(match path {
        "/v1/chat/completions" => Endpoint::Chat,
        "/v1/completions" => Endpoint::Completions,
        "/v1/embeddings" => Endpoint::Embeddings,
        "/v1/rerank" => Endpoint::Rerank,
        "/v1/messages" => Endpoint::Messages,
        "/v1/responses" => Endpoint::Responses,
        _ => return None,
    })
}

/// A request on a relay path, relayed without the router (its guard already passed):
/// what the handlers above do, minus routing, extractors and extensions.
pub(crate) fn relay_direct(
    state: Shared,
    ep: Endpoint,
    addr: SocketAddr,
    req: Request,
) -> Detached {
    Detached {
        relay: Some(Box::pin(relay_request(state, ep, addr, req))),
    }
}

/// The relay of a whole request: its headers are taken, not copied (axum's `HeaderMap`
/// extractor clones them).
fn relay_request(
    state: Shared,
    ep: Endpoint,
    addr: SocketAddr,
    req: Request,
) -> impl Future<Output = Response> + Send + 'static {
    let (parts, body) = req.into_parts();
    relay(state, ep, addr, parts.headers, body)
}

/// Run the relay so that a client that goes away does not cancel it. It is polled right
/// here, in the connection's task (a task of its own per request cost a spawn, a channel
/// and often a wake-up of another worker thread); if this future is dropped before the
/// relay finished (the client went away), the rest of the relay is spawned and runs to its
/// end: the upstream is still read and its usage billed (see [`RelayBody`]'s drop), and
/// the undelivered response, dropped, is drained. A panic inside becomes a 500.
pub(super) fn detached(
    relay: impl Future<Output = Response> + Send + 'static,
) -> impl Future<Output = Response> + Send {
    Detached {
        relay: Some(Box::pin(relay)),
    }
}

type RelayFuture = std::pin::Pin<Box<dyn Future<Output = Response> + Send>>;

pub(crate) struct Detached {
    relay: Option<RelayFuture>,
}

fn failed_inside() -> Response {
    OpenAiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "the request failed inside the gateway",
    )
    .into_response()
}

impl Future for Detached {
    type Output = Response;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Response> {
        use std::task::Poll;
        let Some(relay) = self.relay.as_mut() else {
            return Poll::Ready(failed_inside());
        };
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| relay.as_mut().poll(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(response)) => {
                self.relay = None;
                Poll::Ready(response)
            }
            Err(_) => {
                tracing::error!("a request's relay panicked");
                self.relay = None;
                Poll::Ready(failed_inside())
            }
        }
    }
}

impl Drop for Detached {
    fn drop(&mut self) {
        // Dropped unfinished: the client went away (or the server is stopping). Without a
        // runtime nothing could run it; a stopping runtime drops the task.
        if let Some(relay) = self.relay.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                drop(relay.await);
            });
        }
    }
}

/// One request, from its bytes to the response.
pub(super) async fn relay(
    state: Shared,
    ep: Endpoint,
    addr: SocketAddr,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let t0 = Instant::now();
    let snap = state.snapshot.load_full();
    let caller = match authorize(&state, &snap, ep, &headers, addr) {
        Ok(c) => c,
        Err(e) => return render_error(ep.ingress(), e),
    };
    let mut settle = Settle::new(state.clone(), &caller, ep, t0);
    settle.group_ratio = snap.group_ratio(caller.group());
    let inbound = match request::read(ep, body, state.config.max_body_bytes, &snap).await {
        Ok(i) => i,
        Err(e) => return settle.reject(e),
    };
    settle.model = Some(inbound.info.model.as_str().into());
    settle.stream = inbound.info.stream;
    settle.prompt_estimate = (inbound.body.len() / 4) as i64;
    if let Err(e) = admission::key_allows(&caller, &inbound.info.model, &inbound.asked, addr.ip()) {
        return settle.reject(e);
    }
    let snap = match admission::start_if_stopped(&state, snap, &caller, &inbound.info.model).await {
        Ok(s) => s,
        Err(e) => return settle.reject(e),
    };
    let plan = match plan::plan(
        &state,
        &snap,
        &caller,
        &inbound.info,
        &inbound.body,
        &headers,
    ) {
        Ok(p) => p,
        Err(refused) => {
            settle.burst = refused.burst;
            return settle.reject(refused.error);
        }
    };
    settle.burst = plan.burst.clone();
    if let Err(e) = admission::key_rate_limits(&state, &caller) {
        return settle.reject(e);
    }
    let attempts = Attempts {
        state: &state,
        snap: &snap,
        ep,
        caller: &caller,
        inbound: &inbound,
        plan: &plan,
        headers: &headers,
        t0,
    };
    attempts.run(settle).await
}

/// The caller: their key, or for Ollama clients the keyless local caller; a refusal is
/// counted.
fn authorize(
    state: &Shared,
    snap: &Snapshot,
    ep: Endpoint,
    headers: &HeaderMap,
    addr: SocketAddr,
) -> Result<Caller, OpenAiError> {
    let authenticated = if ep.ingress() == Ingress::Ollama {
        ingress::ollama_caller(state, snap, headers, addr)
    } else {
        ingress::authenticate(state, snap, headers)
    };
    authenticated.inspect_err(|e| {
        state
            .relay
            .metrics
            .requests
            .get_or_create(&StatusLabel {
                status: e.status.as_u16(),
                model: None,
                channel: None,
            })
            .inc();
    })
}
