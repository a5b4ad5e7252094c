//! Relay tunables: timeouts, retry budget, breaker thresholds (environment overridable).

use std::time::Duration;

/// Timeouts and budgets of the relay.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// TCP/TLS connect to an upstream.
    pub connect_timeout: Duration,
    /// From sending the request to the response headers (and, for streams, the first chunk).
    pub first_byte_timeout: Duration,
    /// Longest silence between two body chunks.
    pub idle_timeout: Duration,
    /// How many channels one request may try.
    pub max_attempts: usize,
    /// Breaker: errors in the window before it may open.
    pub breaker_min_errors: u32,
    /// Breaker: error ratio (0-1) in the window that opens it.
    pub breaker_error_ratio: f64,
    /// Breaker: the sliding window.
    pub breaker_window: Duration,
    /// Breaker: how long it stays open before a half-open probe.
    pub breaker_cooldown: Duration,
    /// How long a request for a stopped just-in-time local model waits for it to load
    /// before a 503 with `Retry-After`.
    pub jit_wait: Duration,
    /// Base URLs of OpenAI-format upstreams that serve `/v1/responses` themselves:
    /// Responses requests to them pass through (previous_response_id, reasoning items and
    /// hosted tools work there). `https://api.openai.com` plus
    /// `BURNCLOUD_RESPONSES_UPSTREAMS` (comma list).
    pub responses_upstreams: Vec<String>,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings {
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(120),
            max_attempts: 5,
            breaker_min_errors: 5,
            breaker_error_ratio: 0.5,
            breaker_window: Duration::from_secs(30),
            breaker_cooldown: Duration::from_secs(30),
            jit_wait: Duration::from_secs(120),
            responses_upstreams: vec!["https://api.openai.com".into()],
        }
    }
}

impl RelaySettings {
    /// Defaults overridden by `BURNCLOUD_CONNECT_TIMEOUT_MS`, `BURNCLOUD_FIRST_BYTE_TIMEOUT_MS`,
    /// `BURNCLOUD_IDLE_TIMEOUT_MS`, `BURNCLOUD_MAX_ATTEMPTS`, `BURNCLOUD_BREAKER_MIN_ERRORS`,
    /// `BURNCLOUD_BREAKER_COOLDOWN_MS`, `BURNCLOUD_JIT_WAIT_MS`, `BURNCLOUD_RESPONSES_UPSTREAMS`.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Self {
        let mut s = RelaySettings::default();
        let ms = |k: &str| {
            get(k)
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_millis)
        };
        if let Some(d) = ms("BURNCLOUD_CONNECT_TIMEOUT_MS") {
            s.connect_timeout = d;
        }
        if let Some(d) = ms("BURNCLOUD_FIRST_BYTE_TIMEOUT_MS") {
            s.first_byte_timeout = d;
        }
        if let Some(d) = ms("BURNCLOUD_IDLE_TIMEOUT_MS") {
            s.idle_timeout = d;
        }
        if let Some(d) = ms("BURNCLOUD_JIT_WAIT_MS") {
            s.jit_wait = d;
        }
        if let Some(d) = ms("BURNCLOUD_BREAKER_COOLDOWN_MS") {
            s.breaker_cooldown = d;
        }
        if let Some(n) = get("BURNCLOUD_MAX_ATTEMPTS").and_then(|v| v.parse().ok()) {
            s.max_attempts = usize::max(1, n);
        }
        if let Some(n) = get("BURNCLOUD_BREAKER_MIN_ERRORS").and_then(|v| v.parse().ok()) {
            s.breaker_min_errors = u32::max(1, n);
        }
        if let Some(list) = get("BURNCLOUD_RESPONSES_UPSTREAMS") {
            s.responses_upstreams.extend(
                list.split(',')
                    .map(|u| u.trim().trim_end_matches('/').to_string())
                    .filter(|u| !u.is_empty()),
            );
        }
        s
    }

    /// Whether the upstream at `base_url` serves the Responses API itself.
    pub fn speaks_responses(&self, base_url: &str) -> bool {
        let base = base_url.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        self.responses_upstreams.iter().any(|u| u == base)
    }
}
