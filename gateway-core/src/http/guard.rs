//! Who may talk to the gateway at all, before any handler runs: Host and Origin checks
//! against DNS rebinding and cross-site requests, and JSON-only state changes on the
//! control plane (a web page can send `text/plain`, forms and multipart without a CORS
//! preflight; it cannot send `application/json` cross-site).
//!
//! Allowed Host names: IP literals that are loopback or the listen address (any IP
//! literal while listening on all interfaces — an IP literal cannot be rebound),
//! `localhost` and `*.localhost`, and the owner's names (`BURNCLOUD_ALLOWED_HOSTS`, `*` for
//! any). A present `Origin` must name an allowed host.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::vocab::OpenAiError;

/// The Host/Origin policy of one listener.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    addr: SocketAddr,
    listen: IpAddr,
    extra: Vec<String>,
    any: bool,
}

impl HostPolicy {
    pub fn new(addr: SocketAddr, allowed: &[String]) -> Self {
        HostPolicy {
            addr,
            listen: addr.ip(),
            any: allowed.iter().any(|h| h == "*"),
            extra: allowed.to_vec(),
        }
    }

    /// Whether a host name (no port) may be used to reach this gateway.
    pub fn host_allowed(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        let host = host.trim_end_matches('.');
        // Lower-cased only when it is not already (the common case copies nothing).
        let host: std::borrow::Cow<'_, str> = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            host.to_ascii_lowercase().into()
        } else {
            host.into()
        };
        let host = host.as_ref();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return ip.is_loopback() || ip == self.listen || self.listen.is_unspecified();
        }
        host == "localhost" || host.ends_with(".localhost") || self.extra.iter().any(|e| e == host)
    }

    /// Why a request is refused, or None.
    fn check(&self, req: &Request) -> Option<Refusal> {
        if let Some(host) = req.headers().get(header::HOST) {
            match host.to_str().ok().and_then(host_of) {
                Some(n) if self.host_allowed(n) => {}
                other => return Some(Refusal::Host(other.unwrap_or("?").to_string())),
            }
        }
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let host = origin
                .to_str()
                .ok()
                .and_then(|o| o.parse::<axum::http::Uri>().ok())
                .filter(|u| matches!(u.scheme_str(), Some("http" | "https")))
                .and_then(|u| u.host().map(str::to_string));
            match host {
                Some(h) if self.host_allowed(&h) => {}
                _ => {
                    return Some(Refusal::Origin(
                        origin.to_str().unwrap_or("?").chars().take(200).collect(),
                    ));
                }
            }
        }
        if changes_state(req.method()) && is_control_plane(req.uri().path()) && has_body(req) {
            let json = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(is_json_type);
            if !json {
                return Some(Refusal::ContentType);
            }
        }
        None
    }
}

/// The host of a `Host` header (`name`, `name:port`, `[v6]`, `[v6]:port`; brackets kept),
/// or None when the value is not one. Read in place: nothing is copied per request.
fn host_of(value: &str) -> Option<&str> {
    let (host, port) = match value.strip_prefix('[') {
        Some(rest) => {
            let inner = &rest[..rest.find(']')?];
            if inner.is_empty()
                || !inner
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                return None;
            }
            let (host, after) = value.split_at(inner.len() + 2);
            match after {
                "" => (host, None),
                a => (host, Some(a.strip_prefix(':')?)),
            }
        }
        None => match value.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        },
    };
    let name_ok = host.starts_with('[')
        || (!host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    (name_ok && port_ok).then_some(host)
}

enum Refusal {
    Host(String),
    Origin(String),
    ContentType,
}

fn changes_state(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Ollama's API shares the `/api/` prefix; it is data plane, not control plane.
const OLLAMA_PATHS: &[&str] = &[
    "/api/chat",
    "/api/generate",
    "/api/embed",
    "/api/embeddings",
    "/api/show",
    "/api/tags",
    "/api/ps",
    "/api/version",
];

fn is_control_plane(path: &str) -> bool {
    (path.starts_with("/api/") && !OLLAMA_PATHS.contains(&path))
        || path.starts_with("/console/api/")
}

fn has_body(req: &Request) -> bool {
    match req.headers().get(header::CONTENT_LENGTH) {
        Some(len) => len.to_str().ok().and_then(|l| l.trim().parse::<u64>().ok()) != Some(0),
        None => req.headers().contains_key(header::TRANSFER_ENCODING),
    }
}

/// `application/json` or `application/<x>+json`, any parameters.
fn is_json_type(v: &str) -> bool {
    let essence = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The listener a request came in on (a request extension set by [`guard`]).
#[derive(Debug, Clone, Copy)]
pub struct Listener(pub SocketAddr);

impl Listener {
    /// Reachable only from this machine.
    pub fn loopback_only(self) -> bool {
        self.0.ip().is_loopback()
    }
}

/// The middleware: refuse before routing.
pub async fn guard(policy: Arc<HostPolicy>, mut req: Request, next: Next) -> Response {
    match refusal(&policy, &req) {
        None => {
            req.extensions_mut().insert(Listener(policy.addr));
            next.run(req).await
        }
        Some(refused) => refused,
    }
}

/// The answer refusing a request, or None if it may pass.
pub(crate) fn refusal(policy: &HostPolicy, req: &Request) -> Option<Response> {
    policy.check(req).map(|r| refuse(req.uri().path(), r))
}

fn refuse(path: &str, r: Refusal) -> Response {
    let (status, message) = match r {
        Refusal::Host(h) => (
            StatusCode::FORBIDDEN,
            format!(
                "Host '{h}' is not allowed: BurnCloud answers to localhost, loopback addresses and its listen address. To reach it by this name, add it to BURNCLOUD_ALLOWED_HOSTS (comma list) or to Settings → Allowed hosts"
            ),
        ),
        Refusal::Origin(o) => (
            StatusCode::FORBIDDEN,
            format!(
                "requests from the web page at '{o}' are not allowed: a page may call BurnCloud only from an allowed host (add its name to BURNCLOUD_ALLOWED_HOSTS to allow it)"
            ),
        ),
        Refusal::ContentType => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with Content-Type: application/json".to_string(),
        ),
    };
    if path.starts_with("/v1/") {
        let code = if status == StatusCode::FORBIDDEN {
            "permission_denied"
        } else {
            "invalid_request"
        };
        return OpenAiError::new(status, code, message).into_response();
    }
    ApiError::new(status, message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(listen: &str, extra: &[&str]) -> HostPolicy {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        HostPolicy::new(SocketAddr::new(listen.parse().unwrap(), 3000), &extra)
    }

    #[test]
    fn names_that_cannot_be_rebound_pass() {
        let p = policy("127.0.0.1", &[]);
        for ok in [
            "localhost",
            "127.0.0.1",
            "[::1]",
            "app.localhost",
            "LOCALHOST.",
        ] {
            assert!(p.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "192.168.1.9",
            "localhost.evil.example",
            "burncloud",
        ] {
            assert!(!p.host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn listen_address_and_owner_names() {
        let p = policy("10.1.2.3", &["gw.lan"]);
        assert!(p.host_allowed("10.1.2.3"));
        assert!(p.host_allowed("gw.lan"));
        assert!(!p.host_allowed("10.1.2.4"));
        let all = policy("0.0.0.0", &[]);
        assert!(all.host_allowed("192.168.1.9"));
        assert!(!all.host_allowed("evil.example"));
        assert!(policy("127.0.0.1", &["*"]).host_allowed("evil.example"));
    }

    #[test]
    fn host_headers_are_read_in_place() {
        for (value, host) in [
            ("localhost:3000", "localhost"),
            ("127.0.0.1", "127.0.0.1"),
            ("[::1]:3000", "[::1]"),
            ("[::1]", "[::1]"),
            ("evil.example:80", "evil.example"),
            ("My_Box.LAN.", "My_Box.LAN."),
        ] {
            assert_eq!(host_of(value), Some(host), "{value}");
        }
        for bad in [
            "",
            ":3000",
            "a b",
            "x:abc",
            "x:",
            "x:99999",
            "x:1:2",
            "[::1",
            "[]:80",
            "[::1]x",
            "[evil.example]",
            "user@localhost",
            "localhost/x",
        ] {
            assert_eq!(host_of(bad), None, "{bad:?}");
        }
        // Refused as "?", whatever the allow list says.
        let p = policy("127.0.0.1", &["*"]);
        let req = Request::builder()
            .uri("/v1/chat/completions")
            .header(header::HOST, "a b")
            .body(axum::body::Body::empty())
            .unwrap();
        assert!(matches!(p.check(&req), Some(Refusal::Host(h)) if h == "?"));
    }

    #[test]
    fn json_types() {
        assert!(is_json_type("application/json"));
        assert!(is_json_type("Application/JSON; charset=utf-8"));
        assert!(is_json_type("application/merge-patch+json"));
        assert!(!is_json_type("text/plain"));
        assert!(!is_json_type("application/x-www-form-urlencoded"));
        assert!(!is_json_type("multipart/form-data; boundary=x"));
    }
}
