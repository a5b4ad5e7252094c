//! Errors in the shape of each client's protocol.

use axum::response::{IntoResponse, Response};

use super::OpenAiError;
use crate::ingress::{anthropic, ollama};
use crate::wire::Ingress;

pub use crate::wire::Endpoint;

/// An error in the shape of the client's ingress.
pub(super) fn render_error(ingress: Ingress, e: OpenAiError) -> Response {
    match ingress {
        Ingress::OpenAi | Ingress::Responses => e.into_response(),
        Ingress::Anthropic => {
            let body = anthropic::error_body(e.status.as_u16(), &e.message);
            let mut resp = (e.status, axum::Json(body)).into_response();
            e.add_headers(&mut resp);
            resp
        }
        Ingress::Ollama => {
            let mut resp = (e.status, axum::Json(ollama::error_body(&e.message))).into_response();
            e.add_headers(&mut resp);
            resp
        }
    }
}
