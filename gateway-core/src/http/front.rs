//! The service each connection is served by. A POST to one of the relay's paths — the
//! hot path — goes straight to the relay behind the same Host/Origin guard; everything
//! else goes through the router. The router's way costs a route lookup, a clone of the
//! boxed route and of the middleware's service, and request extensions (connection info,
//! listener, matched path): about a quarter of a relayed request's heap allocations.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::http::Method;
use axum::response::Response;
use axum::routing::future::RouteFuture;
use tower::Service;

use super::guard::{self, HostPolicy};
use crate::relay::Detached;
use crate::state::Shared;

/// Makes one [`Front`] per accepted connection (see [`super::serve`]).
#[derive(Clone)]
pub struct MakeFront(Arc<Parts>);

/// What every connection's service shares.
struct Parts {
    router: Router,
    state: Shared,
    policy: Arc<HostPolicy>,
}

impl MakeFront {
    pub(super) fn new(router: Router, state: Shared, policy: Arc<HostPolicy>) -> Self {
        MakeFront(Arc::new(Parts {
            router,
            state,
            policy,
        }))
    }

    /// The service of a connection from `peer`.
    pub(super) fn connection(&self, peer: SocketAddr) -> Front {
        Front {
            parts: self.0.clone(),
            peer,
        }
    }
}

/// One connection's service, called by hyper itself: hyper's `Service` takes `&self`, so
/// a request costs no clone of the service and no tower `Oneshot` (what the tower-to-hyper
/// glue of `axum::serve` did for every request).
pub struct Front {
    parts: Arc<Parts>,
    peer: SocketAddr,
}

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = FrontFuture;

    fn call(&self, req: hyper::Request<hyper::body::Incoming>) -> FrontFuture {
        let mut req: Request = req.map(axum::body::Body::new);
        let parts = &*self.parts;
        if req.method() == Method::POST
            && let Some(ep) = crate::relay::endpoint_of(req.uri().path())
        {
            return match guard::refusal(&parts.policy, &req) {
                None => FrontFuture(Way::Relay(crate::relay::relay_direct(
                    parts.state.clone(),
                    ep,
                    self.peer,
                    req,
                ))),
                Some(refused) => FrontFuture(Way::Refused(Some(refused))),
            };
        }
        req.extensions_mut().insert(ConnectInfo(self.peer));
        FrontFuture(Way::Router(parts.router.clone().call(req)))
    }
}

/// A [`Front`]'s response on its way.
pub struct FrontFuture(Way);

enum Way {
    Relay(Detached),
    Refused(Option<Response>),
    Router(RouteFuture<Infallible>),
}

impl Future for FrontFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Way::Relay(f) => Pin::new(f).poll(cx).map(Ok),
            Way::Refused(r) => match r.take() {
                Some(r) => Poll::Ready(Ok(r)),
                None => Poll::Pending, // polled again after it completed: never resolves
            },
            Way::Router(f) => Pin::new(f).poll(cx),
        }
    }
}
