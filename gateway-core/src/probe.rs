//! A channel's probe: one 1-token request straight to its upstream (the desktop's and the
//! CLI's "Test"), and its provider's model list; never following a redirect with the key.

use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};

use crate::channel_types::channel_type;
use crate::store::channels::Channel;
use crate::upstream::vertex::Tokens;
use crate::upstream::{CallError, Request, Target};
use crate::wire::Endpoint;
use crate::wire::openai::peek;

/// A successful probe.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The upstream model asked.
    pub model: String,
    pub millis: u128,
}

/// Why a probe failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProbeError {
    #[error("the channel lists no model to test with")]
    NoModel,
    #[error("testing {0} channels is not supported yet")]
    Unsupported(&'static str),
    #[error("{0} has no model list this gateway can read")]
    NoModelList(&'static str),
    #[error("the channel cannot send a request as configured ({0})")]
    Misconfigured(&'static str),
    #[error("cannot reach {url}: {error}")]
    Unreachable { url: String, error: String },
    #[error("the upstream answered {status}: {body}")]
    Status { status: u16, body: String },
}

impl ProbeError {
    /// What the person can do about it, where there is something.
    pub fn fix(&self) -> Option<&'static str> {
        match self {
            ProbeError::NoModel => Some("Edit the channel and add a model."),
            ProbeError::NoModelList(_) => Some("Type the model names in the channel's models."),
            ProbeError::Unsupported(_) => {
                Some("Send a request through the gateway and check the logs.")
            }
            ProbeError::Misconfigured(_) => Some("Edit the channel: check its key and base URL."),
            ProbeError::Unreachable { .. } => {
                Some("Check the base URL and your network connection.")
            }
            ProbeError::Status { status, .. } => match status {
                300..=399 => {
                    Some("The upstream redirects elsewhere: use the final URL as the base URL.")
                }
                401 | 403 => {
                    Some("The upstream rejected the key: edit the channel and paste a valid key.")
                }
                404 => {
                    Some("Check the base URL and that the model name exists upstream (or map it).")
                }
                429 => Some("The upstream is rate limiting or out of credit: check your plan."),
                _ => None,
            },
        }
    }
}

/// The client a probe uses: bounded in time, never following a redirect with the key.
fn client(c: &Channel) -> Result<reqwest::Client, ProbeError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ProbeError::Unreachable {
            url: c.base_url.clone(),
            error: e.to_string(),
        })
}

/// `Authorization: Bearer <key>` for upstreams that take it, when the key is set.
fn bearer_of(c: &Channel) -> Option<HeaderValue> {
    (!c.key.is_empty())
        .then(|| HeaderValue::from_str(&format!("Bearer {}", c.key)).ok())
        .flatten()
}

fn target<'a>(c: &'a Channel, bearer: Option<&'a HeaderValue>) -> Target<'a> {
    Target {
        id: c.id,
        base_url: &c.base_url,
        key: &c.key,
        bearer,
    }
}

/// Send a request; a refusal becomes [`ProbeError::Status`] with the start of its body.
async fn send(c: &Channel, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ProbeError> {
    let resp = req.send().await.map_err(|e| ProbeError::Unreachable {
        url: c.base_url.clone(),
        error: e.to_string(),
    })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body: String = resp
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    Err(ProbeError::Status {
        status: status.as_u16(),
        body,
    })
}

/// Send one 1-token chat request for the channel's first model.
pub async fn probe_channel(c: &Channel) -> Result<Probe, ProbeError> {
    let ty = channel_type(c.channel_type).ok_or(ProbeError::Unsupported("unknown"))?;
    let model = c.models.first().ok_or(ProbeError::NoModel)?;
    let upstream = c.model_mapping.get(model).unwrap_or(model).clone();
    let client = client(c)?;
    let body = serde_json::json!({
        "model": upstream,
        "messages": [{"role": "user", "content": "ping"}],
        "max_tokens": 1,
    });
    let canonical = bytes::Bytes::from(body.to_string());
    let info = peek(&canonical).map_err(|_| ProbeError::Unsupported(ty.name))?;
    let bearer = bearer_of(c);
    let request = Request {
        ep: Endpoint::Chat,
        canonical: &canonical,
        info: &info,
        native: None,
        model: &upstream,
        client: &HeaderMap::new(),
    };
    let call = ty
        .upstream
        .call(&target(c, bearer.as_ref()), &request)
        .map_err(|e| match e {
            CallError::Skip(why) => ProbeError::Misconfigured(why),
            CallError::Refuse(_) => ProbeError::Unsupported(ty.name),
        })?;
    let mut req = client.post(&call.url).headers(call.headers).body(call.body);
    if call.google_token {
        let token = Tokens::default()
            .bearer(&client, c.id, &c.key, Duration::from_secs(20))
            .await
            .map_err(|error| ProbeError::Unreachable {
                url: "the service account's token endpoint".into(),
                error,
            })?;
        req = req.header(header::AUTHORIZATION, token);
    }
    let started = Instant::now();
    send(c, req).await?;
    Ok(Probe {
        model: upstream,
        millis: started.elapsed().as_millis(),
    })
}

/// The models the channel's key may use, as its provider lists them.
pub async fn list_models(c: &Channel) -> Result<Vec<String>, ProbeError> {
    let ty = channel_type(c.channel_type).ok_or(ProbeError::Unsupported("unknown"))?;
    let bearer = bearer_of(c);
    let (url, headers) = ty
        .upstream
        .models_request(&target(c, bearer.as_ref()))
        .ok_or(ProbeError::NoModelList(ty.name))?;
    let resp = send(c, client(c)?.get(url).headers(headers)).await?;
    let answer: serde_json::Value = resp.json().await.map_err(|e| ProbeError::Unreachable {
        url: c.base_url.clone(),
        error: format!("the model list is not JSON ({e})"),
    })?;
    Ok(ty.upstream.models_in(&answer))
}
