//! AWS Bedrock Claude (channel type 33): the Anthropic Messages body (without `model` and
//! `stream`, with `anthropic_version: bedrock-2023-05-31`) posted to
//! `/model/{id}/invoke` or `/model/{id}/invoke-with-response-stream`, signed with SigV4
//! (AWS's `aws-sigv4`). Streams arrive as AWS event-stream frames whose `chunk` payloads
//! carry base64 Anthropic events; [`EventStreamToSse`] turns them back into Anthropic's SSE
//! so the Anthropic stages do the rest.
//! <https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html>,
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelWithResponseStream.html>.
//!
//! The channel key is `ACCESS_KEY_ID|SECRET_ACCESS_KEY|REGION` with an optional
//! `|SESSION_TOKEN` (New API's convention); the base URL defaults to the region's
//! `https://bedrock-runtime.{region}.amazonaws.com`.

use std::time::SystemTime;

use base64::Engine;
use serde_json::{Value, json};

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::anthropic::{AnthropicObserver, FromAnthropic, messages_body};
use super::{Answer, Call, CallError, Decode, Request, Target, Upstream};
use crate::vocab::Usage;
use crate::wire::{Stage, sse};

pub const ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// AWS Bedrock, Claude models.
pub struct Bedrock;

impl Upstream for Bedrock {
    fn name(&self) -> &'static str {
        "AWS Bedrock"
    }

    /// The key carries the region; the endpoint follows from it unless given.
    fn check_key(&self, key: &str, base_url: &mut String) -> Result<(), String> {
        let creds = Credentials::parse(key)?;
        if base_url.is_empty() {
            *base_url = format!("https://bedrock-runtime.{}.amazonaws.com", creds.region);
        }
        Ok(())
    }

    fn call(&self, t: &Target<'_>, r: &Request<'_>) -> Result<Call, CallError> {
        let creds = Credentials::parse(t.key).map_err(|e| {
            tracing::warn!(channel = t.id, "{e}");
            CallError::Skip("bad_channel_key")
        })?;
        let (messages, native) = messages_body(r)?;
        let body = serde_json::to_vec(&body(messages)).unwrap_or_default();
        let url = url(t.base_url, &creds.region, r.model, r.info.stream);
        let content_type = [("content-type", "application/json")];
        let now = SystemTime::now();
        let signed = sign(&creds, &url, &content_type, &body, now).map_err(|e| {
            tracing::warn!(channel = t.id, "SigV4 signing failed: {e}");
            CallError::Skip("signing_failed")
        })?;
        let mut headers = HeaderMap::new();
        for (k, v) in signed {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&v),
            ) {
                headers.insert(k, v);
            }
        }
        // A stream comes as AWS event-stream frames, not server-sent events.
        Ok(Call::new(url, headers, body.into(), "bedrock").native(native))
    }

    fn answer(&self, a: &Answer<'_>) -> Decode {
        let frames = || -> Vec<Box<dyn Stage>> {
            if a.is_sse {
                vec![Box::new(EventStreamToSse::default())]
            } else {
                Vec::new()
            }
        };
        if a.native {
            if a.status >= 400 {
                // Bedrock's error body (`{"message": …}`) goes to the Messages client's
                // converter, which reads any error shape.
                return Decode::OpenAi;
            }
            let mut stages = frames();
            stages.push(Box::new(AnthropicObserver::new(a.is_sse)));
            return Decode::Native(stages);
        }
        let mut stages = frames();
        stages.push(Box::new(FromAnthropic::new(a.is_sse, a.status, a.usage)));
        Decode::ToOpenAi(stages)
    }
}

/// Parsed channel credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    pub session_token: Option<String>,
}

impl Credentials {
    pub fn parse(key: &str) -> Result<Self, String> {
        let parts: Vec<&str> = key.split('|').map(str::trim).collect();
        match parts.as_slice() {
            [ak, sk, region] | [ak, sk, region, _]
                if !ak.is_empty() && !sk.is_empty() && !region.is_empty() =>
            {
                Ok(Credentials {
                    access_key: ak.to_string(),
                    secret_key: sk.to_string(),
                    region: region.to_string(),
                    session_token: parts.get(3).filter(|t| !t.is_empty()).map(|t| t.to_string()),
                })
            }
            _ => Err("a Bedrock channel key must be ACCESS_KEY_ID|SECRET_ACCESS_KEY|REGION[|SESSION_TOKEN]".into()),
        }
    }
}

fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The invoke URL for a model id (ids contain `:`, which is escaped).
pub fn url(base_url: &str, region: &str, model_id: &str, stream: bool) -> String {
    let base = if base_url.trim().is_empty() {
        format!("https://bedrock-runtime.{region}.amazonaws.com")
    } else {
        base_url.trim_end_matches('/').to_string()
    };
    let op = if stream {
        "invoke-with-response-stream"
    } else {
        "invoke"
    };
    format!("{base}/model/{}/{op}", encode_segment(model_id))
}

/// The body fields Bedrock's Anthropic models take (AWS, "Anthropic Claude Messages API"
/// inference parameters); anything else is refused as an "extraneous key".
pub const BODY_KEYS: &[&str] = &[
    "anthropic_version",
    "anthropic_beta",
    "max_tokens",
    "messages",
    "system",
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
];

/// An Anthropic Messages body as Bedrock wants it: `model` and `stream` go into the URL,
/// `anthropic_version` is Bedrock's, and fields newer clients add for Anthropic's own API
/// (`metadata`, `context_management`, `output_config`, ...) are left out.
pub fn body(mut messages: Value) -> Value {
    if let Some(o) = messages.as_object_mut() {
        o.retain(|k, _| BODY_KEYS.contains(&k.as_str()));
        o.insert("anthropic_version".into(), json!(ANTHROPIC_VERSION));
    }
    messages
}

/// SigV4 headers (`authorization`, `x-amz-date`, `x-amz-security-token`) for a request
/// that also carries `headers`.
pub fn sign(
    creds: &Credentials,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let identity = aws_credential_types::Credentials::new(
        &creds.access_key,
        &creds.secret_key,
        creds.session_token.clone(),
        None,
        "burncloud-channel",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&creds.region)
        .name("bedrock")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// One decoded event-stream message.
#[derive(Debug, PartialEq)]
pub struct Frame {
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Largest frame accepted (AWS caps messages at 16 MB).
const MAX_FRAME: usize = 16 * 1024 * 1024 + 1024;

/// Decodes `application/vnd.amazon.eventstream` frames across arbitrary chunking,
/// checking both CRCs.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    pending: Vec<u8>,
}

fn be32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

impl FrameDecoder {
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<Frame>) -> Result<(), String> {
        self.pending.extend_from_slice(input);
        let mut start = 0;
        loop {
            let buf = &self.pending[start..];
            if buf.len() < 12 {
                break;
            }
            let total = be32(&buf[0..4]);
            let headers_len = be32(&buf[4..8]);
            if crc32fast::hash(&buf[0..8]) as usize != be32(&buf[8..12]) {
                return Err("event-stream prelude checksum mismatch".into());
            }
            if !(16..=MAX_FRAME).contains(&total) || headers_len + 16 > total {
                return Err(format!("event-stream frame of {total} bytes is invalid"));
            }
            if buf.len() < total {
                break;
            }
            let frame = &buf[..total];
            if crc32fast::hash(&frame[..total - 4]) as usize != be32(&frame[total - 4..]) {
                return Err("event-stream message checksum mismatch".into());
            }
            let headers = parse_headers(&frame[12..12 + headers_len])?;
            out.push(Frame {
                headers,
                payload: frame[12 + headers_len..total - 4].to_vec(),
            });
            start += total;
        }
        self.pending.drain(..start);
        Ok(())
    }
}

fn parse_headers(mut b: &[u8]) -> Result<Vec<(String, String)>, String> {
    let bad = || "event-stream header block is malformed".to_string();
    let mut out = Vec::new();
    while !b.is_empty() {
        let n = *b.first().ok_or_else(bad)? as usize;
        let name = b.get(1..1 + n).ok_or_else(bad)?;
        let name = String::from_utf8_lossy(name).into_owned();
        b = &b[1 + n..];
        let ty = *b.first().ok_or_else(bad)?;
        b = &b[1..];
        let value = match ty {
            0 => "true".to_string(),
            1 => "false".to_string(),
            2 => {
                let v = b.first().ok_or_else(bad)?;
                b = &b[1..];
                v.to_string()
            }
            3 | 4 | 5 | 8 => {
                let len = match ty {
                    3 => 2,
                    4 => 4,
                    _ => 8,
                };
                let v = b.get(..len).ok_or_else(bad)?;
                b = &b[len..];
                hex::encode(v)
            }
            6 | 7 => {
                let len = b.get(..2).ok_or_else(bad)?;
                let len = u16::from_be_bytes([len[0], len[1]]) as usize;
                let v = b.get(2..2 + len).ok_or_else(bad)?;
                let s = String::from_utf8_lossy(v).into_owned();
                b = &b[2 + len..];
                s
            }
            9 => {
                let v = b.get(..16).ok_or_else(bad)?;
                b = &b[16..];
                hex::encode(v)
            }
            _ => return Err(bad()),
        };
        out.push((name, value));
    }
    Ok(out)
}

/// Encode one frame with string headers (used by tests and fakes).
pub fn encode_frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (k, v) in headers {
        h.push(k.len() as u8);
        h.extend_from_slice(k.as_bytes());
        h.push(7);
        h.extend_from_slice(&(v.len() as u16).to_be_bytes());
        h.extend_from_slice(v.as_bytes());
    }
    let total = 12 + h.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&out[..8]);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// Bedrock exception type → Anthropic error type.
fn error_type(exception: &str) -> &'static str {
    match exception {
        "throttlingException" | "ThrottlingException" => "rate_limit_error",
        "validationException" | "ValidationException" => "invalid_request_error",
        "accessDeniedException" | "AccessDeniedException" => "permission_error",
        "serviceUnavailableException" | "modelNotReadyException" => "overloaded_error",
        _ => "api_error",
    }
}

/// Event-stream frames in, Anthropic SSE out.
#[derive(Default)]
pub struct EventStreamToSse {
    decoder: FrameDecoder,
    failed: bool,
}

impl Stage for EventStreamToSse {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.failed {
            return;
        }
        let mut frames = Vec::new();
        let res = self.decoder.feed(chunk, &mut frames);
        for f in frames {
            match f.header(":message-type") {
                Some("event") => {
                    let Ok(v) = serde_json::from_slice::<Value>(&f.payload) else {
                        continue;
                    };
                    let Some(bytes) = v["bytes"]
                        .as_str()
                        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    else {
                        continue;
                    };
                    let Ok(event) = serde_json::from_slice::<Value>(&bytes) else {
                        continue;
                    };
                    let name = event["type"].as_str().unwrap_or("unknown").to_string();
                    sse::write_event(out, &name, &event);
                }
                _ => {
                    let message = serde_json::from_slice::<Value>(&f.payload)
                        .ok()
                        .and_then(|v| v["message"].as_str().map(str::to_string))
                        .unwrap_or_else(|| "Bedrock stream exception".into());
                    let kind = error_type(f.header(":exception-type").unwrap_or_default());
                    sse::write_event(
                        out,
                        "error",
                        &json!({"type": "error", "error": {"type": kind, "message": message}}),
                    );
                }
            }
        }
        if let Err(e) = res {
            self.failed = true;
            sse::write_event(
                out,
                "error",
                &json!({"type": "error", "error": {"type": "api_error", "message": e}}),
            );
        }
    }
    fn finish(&mut self, _out: &mut Vec<u8>) {}
    fn fail(&mut self, _message: &str, _out: &mut Vec<u8>) {}
    fn usage(&self) -> Option<Usage> {
        None
    }
    fn content_events(&self) -> i64 {
        0
    }
    fn content_type(&self) -> &'static str {
        "text/event-stream"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_across_any_chunking_and_corruption_is_caught() {
        let a = encode_frame(
            &[(":event-type", "chunk"), (":message-type", "event")],
            br#"{"bytes":"e30="}"#,
        );
        let b = encode_frame(
            &[(":message-type", "exception")],
            br#"{"message":"slow down"}"#,
        );
        let all = [a.clone(), b].concat();
        for n in [1, 3, 16, all.len()] {
            let mut d = FrameDecoder::default();
            let mut out = Vec::new();
            for c in all.chunks(n) {
                d.feed(c, &mut out).unwrap();
            }
            assert_eq!(out.len(), 2);
            assert_eq!(out[0].header(":event-type"), Some("chunk"));
            assert_eq!(out[1].payload, br#"{"message":"slow down"}"#);
        }
        let mut bad = a.clone();
        let last = bad.len() - 6;
        bad[last] ^= 1;
        assert!(FrameDecoder::default().feed(&bad, &mut Vec::new()).is_err());
    }

    #[test]
    fn keys_and_urls() {
        let c = Credentials::parse("AKID|secret|eu-west-1").unwrap();
        assert_eq!(c.region, "eu-west-1");
        assert!(c.session_token.is_none());
        assert!(Credentials::parse("just-a-key").is_err());
        assert_eq!(
            url(
                "",
                "us-east-1",
                "anthropic.claude-3-5-sonnet-20241022-v2:0",
                true
            ),
            "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0/invoke-with-response-stream"
        );
    }
}
