//! HTTP surface: the control plane (`/api/*`, `/console/api/*`), `/health`, and the router
//! that mounts the data plane (`/v1/*`). Handlers are thin: extract, call the console
//! service (or the store for plain reads), answer in the API's JSON shape.

mod auth_api;
mod billing_api;
mod channels_api;
mod extract;
mod front;
mod groups_api;
pub mod guard;
mod invitations_api;
mod logs_api;
mod ollama_settings_api;
mod prices_api;
mod redemptions_api;
mod serve;
mod settings_api;
mod tokens_api;
mod users_api;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::json;

pub use channels_api::view as channel_view;
pub use extract::{ApiJson, SESSION_COOKIE, cookie};
pub use front::MakeFront;
pub use serve::serve;
pub use tokens_api::view as token_view;

pub use crate::console::{ApiError, Session};
use crate::state::AppState;

pub use crate::state::Shared;

/// Largest control-plane request body.
const CONSOLE_BODY_LIMIT: usize = 1024 * 1024;

/// The whole HTTP application, for a listener bound to `listen`. `extra`: routes the
/// embedding program adds (the web console); they sit behind the same Host/Origin guard.
pub fn router(state: Shared, listen: std::net::SocketAddr, extra: Option<Router>) -> Router {
    let policy = Arc::new(guard::HostPolicy::new(listen, &state.config.allowed_hosts));
    router_with(state, policy, extra)
}

/// What a listener on `listen` serves each connection with: [`router`]'s application,
/// with the relay's POST routes taken before it (see [`front`]).
pub fn front(state: Shared, listen: std::net::SocketAddr, extra: Option<Router>) -> MakeFront {
    let policy = Arc::new(guard::HostPolicy::new(listen, &state.config.allowed_hosts));
    let router = router_with(state.clone(), policy.clone(), extra);
    MakeFront::new(router, state, policy)
}

fn router_with(state: Shared, policy: Arc<guard::HostPolicy>, extra: Option<Router>) -> Router {
    let console = Router::new()
        .route("/api/auth/register", post(auth_api::register))
        .route("/api/auth/login", post(auth_api::login))
        .route(
            "/console/api/session",
            post(auth_api::session_login).delete(auth_api::session_logout),
        )
        .route(
            "/api/user/self",
            get(auth_api::me).put(users_api::update_self),
        )
        .route(
            "/console/api/users",
            get(users_api::list).post(users_api::create),
        )
        .route(
            "/console/api/users/{id}",
            get(users_api::get_one).put(users_api::update),
        )
        .route("/console/api/user/redeem", post(users_api::redeem))
        .route("/console/api/groups", get(groups_api::list))
        .route(
            "/console/api/groups/{name}",
            get(groups_api::get_one)
                .put(groups_api::put)
                .delete(groups_api::delete),
        )
        .route(
            "/console/api/redemptions",
            get(redemptions_api::list).post(redemptions_api::create),
        )
        .route(
            "/console/api/redemptions/{id}",
            axum::routing::delete(redemptions_api::delete),
        )
        .route(
            "/console/api/invitations",
            get(invitations_api::list).post(invitations_api::create),
        )
        .route(
            "/console/api/invitations/{code}",
            axum::routing::delete(invitations_api::delete),
        )
        .route(
            "/console/api/settings/governance",
            get(invitations_api::get_settings).put(invitations_api::put_settings),
        )
        .route("/api/billing/summary", get(billing_api::summary))
        .route(
            "/console/api/channel",
            get(channels_api::list)
                .post(channels_api::create)
                .put(channels_api::update),
        )
        .route("/console/api/channel/types", get(channels_api::types))
        .route(
            "/console/api/channel/{id}",
            get(channels_api::get_one)
                .put(channels_api::update_by_path)
                .delete(channels_api::delete),
        )
        .route(
            "/console/api/channel/{id}/models",
            get(channels_api::models),
        )
        .route(
            "/console/api/tokens",
            get(tokens_api::list).post(tokens_api::create),
        )
        .route(
            "/console/api/tokens/{id}",
            get(tokens_api::get_one)
                .put(tokens_api::update)
                .delete(tokens_api::delete),
        )
        .route(
            "/console/api/prices",
            get(prices_api::list).put(prices_api::put_body),
        )
        .route(
            "/console/api/prices/{*model}",
            get(prices_api::get_one)
                .put(prices_api::put)
                .delete(prices_api::delete),
        )
        .route("/console/api/logs", get(logs_api::list))
        .route(
            "/console/api/settings/logs",
            get(logs_api::get_settings).put(logs_api::put_settings),
        )
        .route(
            "/console/api/settings/ollama",
            get(ollama_settings_api::get).put(ollama_settings_api::put),
        )
        .route(
            "/console/api/settings/burst",
            get(settings_api::get_burst)
                .put(settings_api::put_burst)
                .delete(settings_api::delete_burst),
        )
        .layer(DefaultBodyLimit::max(CONSOLE_BODY_LIMIT));

    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .merge(console)
        .merge(crate::relay::routes(state.clone()))
        // Ollama's API (`/api/version`, `/api/chat`, ...): data plane, mounted apart from
        // the control plane's `/api/*`.
        .merge(crate::relay::ollama_routes())
        .fallback(not_found)
        .with_state(state)
        .merge(extra.unwrap_or_default())
        .layer(axum::middleware::from_fn(move |req, next| {
            guard::guard(policy.clone(), req, next)
        }))
}

/// `/health`: liveness for anyone; the details (version, burst state) only on a loopback
/// listener or for an admin.
async fn health(
    axum::extract::State(state): axum::extract::State<Shared>,
    listener: Option<axum::Extension<guard::Listener>>,
    headers: axum::http::HeaderMap,
) -> impl IntoResponse {
    if !detail_allowed(&state, listener, &headers) {
        return axum::Json(json!({"status": "ok"}));
    }
    axum::Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": state.started_at.elapsed().as_secs(),
        "burst": settings_api::burst_health(&state),
    }))
}

/// `/metrics` (Prometheus/OpenMetrics text): on a loopback listener, or for an admin.
async fn metrics(
    axum::extract::State(state): axum::extract::State<Shared>,
    listener: Option<axum::Extension<guard::Listener>>,
    headers: axum::http::HeaderMap,
) -> Response {
    if !detail_allowed(&state, listener, &headers) {
        return crate::vocab::OpenAiError::invalid_token(
            "/metrics on a network listener needs an admin's key: send Authorization: Bearer <admin sk- key>",
        )
        .into_response();
    }
    let body = state.relay.metrics.render(&state.relay.breakers);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Whether operational details (`/health`'s, `/metrics`) may be shown: always on a
/// loopback listener, otherwise to an admin's key or login token.
pub(crate) fn detail_allowed(
    state: &AppState,
    listener: Option<axum::Extension<guard::Listener>>,
    headers: &axum::http::HeaderMap,
) -> bool {
    if listener.is_none_or(|l| l.0.loopback_only()) {
        return true;
    }
    let snap = state.snapshot.load();
    crate::relay::authenticate(state, &snap, headers).is_ok_and(|c| c.user.admin)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/v1/") {
        return crate::relay::OpenAiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {}", uri.path()),
        )
        .into_response();
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route for {}", uri.path()),
    )
    .into_response()
}

/// `{"success": true, "data": ...}`
pub fn ok<T: Serialize>(data: T) -> Response {
    axum::Json(json!({"success": true, "data": data})).into_response()
}

/// Result type of control-plane handlers.
pub type ApiResult = Result<Response, ApiError>;
