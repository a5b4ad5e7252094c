//! How a channel's answer reaches the client: the upstream's [`Decode`] (into OpenAI chat,
//! or observed in the client's own protocol), then the client protocol's stages.

use axum::http::StatusCode;

use super::ingress::RequestInfo;
use crate::ingress;
use crate::upstream::{Answer, Decode, Upstream};
use crate::wire::conversion::Conversion;
use crate::wire::{Endpoint, Ingress, OpenAiErrorBody, Pipeline};

/// What the relay knows of an answer when it starts relaying it.
pub(super) struct Received<'a> {
    pub(super) native: bool,
    pub(super) is_sse: bool,
    pub(super) is_json: bool,
    pub(super) status: StatusCode,
    pub(super) upstream_model: &'a str,
}

/// The stages that turn a channel's answer into what the client's ingress speaks (`None`:
/// relayed as it is, only scanned), with what the request's conversion dropped or renamed
/// applied.
pub(super) fn answer_pipeline(
    ep: Endpoint,
    upstream: &dyn Upstream,
    got: &Received<'_>,
    info: &RequestInfo,
    conv: &Conversion,
) -> Option<Pipeline> {
    let client = ep.ingress();
    let status = got.status.as_u16();
    let decode = upstream.answer(&Answer {
        ingress: client,
        native: got.native,
        is_sse: got.is_sse,
        status,
        model: &info.model,
        upstream_model: got.upstream_model,
        usage: client != Ingress::OpenAi || info.client_wants_usage,
    });
    let stages = match decode {
        Decode::Native(stages) => stages,
        Decode::OpenAi | Decode::ToOpenAi(_) => {
            let mut stages = match decode {
                Decode::ToOpenAi(stages) => stages,
                _ => Vec::new(),
            };
            stages.extend(ingress::tail(ep, got.is_sse, status, &info.model));
            if stages.is_empty() {
                // OpenAI to an OpenAI client: as it is, except an error body that is not
                // JSON (a proxy's page), which is put in OpenAI's error shape.
                if got.status.is_success() || got.is_json {
                    return None;
                }
                stages.push(Box::new(OpenAiErrorBody::new(status)));
            }
            stages
        }
    };
    let mut pipeline = Pipeline::new(stages);
    pipeline.apply(conv);
    Some(pipeline)
}
