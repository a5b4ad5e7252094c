//! Burst routing: where a model is served by both local and cloud channels (or through
//! the burst alias), choose the side per request from three axes, in this order:
//!
//! 1. **sovereignty** (always wins): sensitive requests and local-only keys stay local;
//! 2. **cost**: when today's cloud budget is spent, local;
//! 3. **load**: the mode's primary side unless it is down or overloaded.
//!
//! Everything here is request-scoped: a per-request `X-Burst-Mode` changes that request
//! only (AI Burst Cloud mutates its global mode from the header). The policy is swapped
//! whole when the settings change.

pub mod classify;
pub mod load;
pub mod spend;

use serde::{Deserialize, Serialize};

pub use classify::{Classifier, Detector, Finding, Sensitivity};
pub use load::{LoadGuard, Loads};
pub use spend::CloudSpend;

use crate::money::usd_from_f64;

/// Key of the saved console changes in the `settings` table.
pub const BURST_SETTINGS_KEY: &str = "burst";

/// Which side is primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BurstMode {
    /// Local primary, cloud overflow.
    #[default]
    EdgeBurst,
    /// Cloud primary, local for sensitive requests and as fallback.
    CloudBurst,
}

impl BurstMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "edge_burst" => Some(BurstMode::EdgeBurst),
            "cloud_burst" => Some(BurstMode::CloudBurst),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            BurstMode::EdgeBurst => "edge_burst",
            BurstMode::CloudBurst => "cloud_burst",
        }
    }
    fn primary(self) -> Side {
        match self {
            BurstMode::EdgeBurst => Side::Local,
            BurstMode::CloudBurst => Side::Cloud,
        }
    }
}

/// Where a channel runs (its `locality`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Local,
    Cloud,
}

impl Side {
    pub fn of(locality: &str) -> Side {
        if locality == "local" {
            Side::Local
        } else {
            Side::Cloud
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Local => "local",
            Side::Cloud => "cloud",
        }
    }
    pub fn other(self) -> Side {
        match self {
            Side::Local => Side::Cloud,
            Side::Cloud => Side::Local,
        }
    }
}

/// The settings, under AI Burst Cloud's names where it has them. Stored as JSON in the
/// `settings` table (key `burst`); the environment gives the defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BurstSettings {
    pub mode: BurstMode,
    /// The model name that means "let burst routing choose".
    pub alias: String,
    /// What the alias runs on local channels (None: the first model a local channel serves).
    pub local_model: Option<String>,
    /// What the alias runs on cloud channels (None: the first model a cloud channel serves).
    pub cloud_model: Option<String>,
    pub local_max_queue: u32,
    pub local_latency_threshold_ms: u64,
    pub cloud_max_queue: u32,
    pub cloud_latency_threshold_ms: u64,
    /// USD per day; -1: no budget.
    pub daily_cloud_budget_usd: f64,
    /// IANA name for the budget's midnight; empty: the system's zone.
    pub timezone: String,
    pub keywords: Vec<String>,
    /// Keyword hits that make a request sensitive; fewer (but one or more): internal.
    pub sensitive_keyword_hits: usize,
    pub detectors: Vec<Detector>,
}

impl Default for BurstSettings {
    fn default() -> Self {
        BurstSettings {
            mode: BurstMode::EdgeBurst,
            alias: "burst-auto".into(),
            local_model: None,
            cloud_model: None,
            local_max_queue: 5,
            local_latency_threshold_ms: 2000,
            cloud_max_queue: 50,
            cloud_latency_threshold_ms: 5000,
            daily_cloud_budget_usd: 5.0,
            timezone: String::new(),
            keywords: classify::DEFAULT_KEYWORDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            sensitive_keyword_hits: 1,
            detectors: Detector::ALL.to_vec(),
        }
    }
}

impl BurstSettings {
    /// Defaults overridden by `BURST_MODE`, `BURST_ALIAS`, `LOCAL_MODEL`, `CLOUD_MODEL`,
    /// `LOCAL_MAX_QUEUE`, `LOCAL_LATENCY_THRESHOLD_MS`, `CLOUD_MAX_QUEUE`,
    /// `CLOUD_LATENCY_THRESHOLD_MS`, `DAILY_CLOUD_BUDGET_USD`, `BURST_TIMEZONE`,
    /// `SENSITIVE_KEYWORDS` (comma list). Unparseable values are reported, not ignored.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut s = BurstSettings::default();
        fn num<T: std::str::FromStr>(k: &str, v: Option<String>) -> Result<Option<T>, String> {
            v.map(|v| {
                v.trim()
                    .parse()
                    .map_err(|_| format!("{k} must be a number, got '{v}'"))
            })
            .transpose()
        }
        if let Some(m) = get("BURST_MODE") {
            s.mode = BurstMode::parse(&m).ok_or_else(|| {
                format!("BURST_MODE must be edge_burst or cloud_burst, got '{m}'")
            })?;
        }
        if let Some(a) = get("BURST_ALIAS").filter(|a| !a.trim().is_empty()) {
            s.alias = a.trim().into();
        }
        s.local_model = get("LOCAL_MODEL").filter(|m| !m.trim().is_empty());
        s.cloud_model = get("CLOUD_MODEL").filter(|m| !m.trim().is_empty());
        if let Some(n) = num("LOCAL_MAX_QUEUE", get("LOCAL_MAX_QUEUE"))? {
            s.local_max_queue = n;
        }
        if let Some(n) = num(
            "LOCAL_LATENCY_THRESHOLD_MS",
            get("LOCAL_LATENCY_THRESHOLD_MS"),
        )? {
            s.local_latency_threshold_ms = n;
        }
        if let Some(n) = num("CLOUD_MAX_QUEUE", get("CLOUD_MAX_QUEUE"))? {
            s.cloud_max_queue = n;
        }
        if let Some(n) = num(
            "CLOUD_LATENCY_THRESHOLD_MS",
            get("CLOUD_LATENCY_THRESHOLD_MS"),
        )? {
            s.cloud_latency_threshold_ms = n;
        }
        if let Some(n) = num("DAILY_CLOUD_BUDGET_USD", get("DAILY_CLOUD_BUDGET_USD"))? {
            s.daily_cloud_budget_usd = n;
        }
        if let Some(tz) = get("BURST_TIMEZONE") {
            s.timezone = tz.trim().into();
        }
        if let Some(k) = get("SENSITIVE_KEYWORDS") {
            s.keywords = k
                .split(',')
                .map(|w| w.trim().to_string())
                .filter(|w| !w.is_empty())
                .collect();
        }
        s.validate()?;
        Ok(s)
    }

    /// Check the values a policy is built from.
    pub fn validate(&self) -> Result<(), String> {
        if self.alias.trim().is_empty() {
            return Err("alias must not be empty".into());
        }
        if self.local_max_queue == 0 || self.cloud_max_queue == 0 {
            return Err("local_max_queue and cloud_max_queue must be 1 or more".into());
        }
        let b = self.daily_cloud_budget_usd;
        if !(b == -1.0 || (b.is_finite() && b >= 0.0)) {
            return Err("daily_cloud_budget_usd must be -1 (no budget) or 0 and more".into());
        }
        usd_from_f64(b.max(0.0)).map_err(|e| format!("daily_cloud_budget_usd: {e}"))?;
        if self.sensitive_keyword_hits == 0 {
            return Err("sensitive_keyword_hits must be 1 or more".into());
        }
        spend::zone(&self.timezone)?;
        Ok(())
    }
}

/// Compiled settings: what a request reads.
#[derive(Debug)]
pub struct BurstPolicy {
    pub settings: BurstSettings,
    pub classifier: Classifier,
    /// None: no budget.
    pub budget_nano: Option<i64>,
}

impl BurstPolicy {
    pub fn new(settings: BurstSettings) -> Result<Self, String> {
        settings.validate()?;
        let classifier = Classifier::new(
            &settings.keywords,
            &settings.detectors,
            settings.sensitive_keyword_hits,
        );
        let budget_nano = (settings.daily_cloud_budget_usd >= 0.0)
            .then(|| usd_from_f64(settings.daily_cloud_budget_usd))
            .transpose()
            .map_err(|e| e.to_string())?;
        Ok(BurstPolicy {
            settings,
            classifier,
            budget_nano,
        })
    }

    pub fn max_queue(&self, side: Side) -> i64 {
        i64::from(match side {
            Side::Local => self.settings.local_max_queue,
            Side::Cloud => self.settings.cloud_max_queue,
        })
    }

    pub fn latency_threshold_ms(&self, side: Side) -> u64 {
        match side {
            Side::Local => self.settings.local_latency_threshold_ms,
            Side::Cloud => self.settings.cloud_latency_threshold_ms,
        }
    }
}

/// The state of one side for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SideState {
    /// Some channel of this side serves the request.
    pub present: bool,
    /// Every such channel is down (breaker open or failed health check).
    pub down: bool,
    /// Every such channel that is up is at its queue or latency limit.
    pub overloaded: bool,
}

impl SideState {
    fn usable(self) -> bool {
        self.present && !self.down
    }
}

/// What the request carries into the decision.
#[derive(Debug, Clone, Copy)]
pub struct Inputs {
    pub mode: BurstMode,
    pub sensitivity: Sensitivity,
    pub local_only_token: bool,
    pub budget_exhausted: bool,
    pub local: SideState,
    pub cloud: SideState,
}

/// The sides to try, in order, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub sides: Vec<Side>,
    pub reason: &'static str,
}

/// Why no side may serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: &'static str,
}

/// Decide which side serves. Pure: the same inputs give the same answer.
pub fn decide(i: &Inputs) -> Result<Decision, Refusal> {
    let only_local = |reason: &'static str, message: &'static str| {
        if i.local.usable() {
            Ok(Decision {
                sides: vec![Side::Local],
                reason,
            })
        } else {
            Err(Refusal { reason, message })
        }
    };
    if i.sensitivity == Sensitivity::Sensitive {
        return only_local(
            "sensitive_data_local",
            "this request looks sensitive, so it may only run on a local model, and no local channel can serve it right now; it was not sent to the cloud",
        );
    }
    if i.local_only_token {
        return only_local(
            "token_local_only",
            "this API key is local-only and no local channel can serve the request right now",
        );
    }
    if i.budget_exhausted {
        return only_local(
            "cloud_budget_exhausted",
            "today's cloud budget is spent and no local channel can serve the request right now",
        );
    }
    // Internal material prefers local whatever the mode; it may still overflow.
    let primary = if i.sensitivity == Sensitivity::Internal {
        Side::Local
    } else {
        i.mode.primary()
    };
    let secondary = primary.other();
    let state = |s: Side| if s == Side::Local { i.local } else { i.cloud };
    let (p, s) = (state(primary), state(secondary));
    let decision = |first: Side, reason: &'static str| {
        let mut sides = vec![first];
        if state(first.other()).usable() {
            sides.push(first.other());
        }
        Ok(Decision { sides, reason })
    };
    if !p.usable() {
        if !s.usable() {
            return Err(Refusal {
                reason: "no_backend",
                message: "neither a local nor a cloud channel can serve the request right now",
            });
        }
        return decision(
            secondary,
            match (primary, p.present) {
                (Side::Local, true) => "local_down_burst_to_cloud",
                (Side::Local, false) => "no_local_burst_to_cloud",
                (Side::Cloud, true) => "cloud_down_burst_to_local",
                (Side::Cloud, false) => "no_cloud_burst_to_local",
            },
        );
    }
    if p.overloaded && s.usable() && !s.overloaded {
        return decision(
            secondary,
            match primary {
                Side::Local => "local_overloaded_burst_to_cloud",
                Side::Cloud => "cloud_overloaded_burst_to_local",
            },
        );
    }
    decision(
        primary,
        match (primary, i.sensitivity) {
            (Side::Local, Sensitivity::Internal) => "internal_prefers_local",
            (Side::Local, _) => "local_primary",
            (Side::Cloud, _) => "cloud_primary",
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: SideState = SideState {
        present: true,
        down: false,
        overloaded: false,
    };
    const BUSY: SideState = SideState {
        present: true,
        down: false,
        overloaded: true,
    };
    const DOWN: SideState = SideState {
        present: true,
        down: true,
        overloaded: false,
    };

    fn inputs(mode: BurstMode, local: SideState, cloud: SideState) -> Inputs {
        Inputs {
            mode,
            sensitivity: Sensitivity::Public,
            local_only_token: false,
            budget_exhausted: false,
            local,
            cloud,
        }
    }

    fn sides(i: &Inputs) -> (Vec<Side>, &'static str) {
        let d = decide(i).expect("decides");
        (d.sides, d.reason)
    }

    #[test]
    fn modes_pick_their_primary_and_keep_the_other_as_fallback() {
        use Side::*;
        assert_eq!(
            sides(&inputs(BurstMode::EdgeBurst, UP, UP)),
            (vec![Local, Cloud], "local_primary")
        );
        assert_eq!(
            sides(&inputs(BurstMode::CloudBurst, UP, UP)),
            (vec![Cloud, Local], "cloud_primary")
        );
    }

    #[test]
    fn overload_bursts_to_the_other_side_unless_it_is_busy_too() {
        use Side::*;
        assert_eq!(
            sides(&inputs(BurstMode::EdgeBurst, BUSY, UP)),
            (vec![Cloud, Local], "local_overloaded_burst_to_cloud")
        );
        assert_eq!(
            sides(&inputs(BurstMode::CloudBurst, UP, BUSY)),
            (vec![Local, Cloud], "cloud_overloaded_burst_to_local")
        );
        assert_eq!(
            sides(&inputs(BurstMode::EdgeBurst, BUSY, BUSY)).1,
            "local_primary"
        );
    }

    #[test]
    fn down_or_missing_primary_goes_to_the_other_side() {
        use Side::*;
        assert_eq!(
            sides(&inputs(BurstMode::EdgeBurst, DOWN, UP)),
            (vec![Cloud], "local_down_burst_to_cloud")
        );
        assert_eq!(
            sides(&inputs(BurstMode::CloudBurst, UP, SideState::default())),
            (vec![Local], "no_cloud_burst_to_local")
        );
        assert_eq!(
            decide(&inputs(BurstMode::EdgeBurst, DOWN, DOWN))
                .unwrap_err()
                .reason,
            "no_backend"
        );
    }

    #[test]
    fn sovereignty_always_wins() {
        for mode in [BurstMode::EdgeBurst, BurstMode::CloudBurst] {
            let mut i = inputs(mode, BUSY, UP);
            i.sensitivity = Sensitivity::Sensitive;
            assert_eq!(sides(&i), (vec![Side::Local], "sensitive_data_local"));
            i.local = DOWN;
            assert_eq!(decide(&i).unwrap_err().reason, "sensitive_data_local");
            i.local = SideState::default();
            assert!(decide(&i).is_err());
            let mut t = inputs(mode, UP, UP);
            t.local_only_token = true;
            assert_eq!(sides(&t), (vec![Side::Local], "token_local_only"));
        }
    }

    #[test]
    fn budget_exhausted_means_local() {
        let mut i = inputs(BurstMode::CloudBurst, UP, UP);
        i.budget_exhausted = true;
        assert_eq!(sides(&i), (vec![Side::Local], "cloud_budget_exhausted"));
        i.local = DOWN;
        assert_eq!(decide(&i).unwrap_err().reason, "cloud_budget_exhausted");
    }

    #[test]
    fn internal_prefers_local_but_may_overflow() {
        let mut i = inputs(BurstMode::CloudBurst, UP, UP);
        i.sensitivity = Sensitivity::Internal;
        assert_eq!(
            sides(&i),
            (vec![Side::Local, Side::Cloud], "internal_prefers_local")
        );
        i.local = BUSY;
        assert_eq!(sides(&i).1, "local_overloaded_burst_to_cloud");
    }

    #[test]
    fn settings_from_the_environment() {
        let env = |k: &str| match k {
            "BURST_MODE" => Some("cloud_burst".to_string()),
            "DAILY_CLOUD_BUDGET_USD" => Some("1.25".into()),
            "SENSITIVE_KEYWORDS" => Some("alpha, beta ,,".into()),
            "LOCAL_MAX_QUEUE" => Some("7".into()),
            _ => None,
        };
        let s = BurstSettings::from_lookup(&env).unwrap();
        assert_eq!(s.mode, BurstMode::CloudBurst);
        assert_eq!(s.keywords, vec!["alpha", "beta"]);
        assert_eq!(s.local_max_queue, 7);
        assert_eq!(
            BurstPolicy::new(s).unwrap().budget_nano,
            Some(1_250_000_000)
        );
        let bad = |k: &str| (k == "LOCAL_MAX_QUEUE").then(|| "many".to_string());
        assert!(
            BurstSettings::from_lookup(&bad)
                .unwrap_err()
                .contains("LOCAL_MAX_QUEUE")
        );
        let bad_mode = |k: &str| (k == "BURST_MODE").then(|| "sideways".to_string());
        assert!(BurstSettings::from_lookup(&bad_mode).is_err());
    }
}

/// The settings in effect: `base` (the environment's) with the saved console changes
/// (a JSON object of the fields changed) on top.
pub fn effective(base: &BurstSettings, saved: Option<&str>) -> Result<BurstSettings, String> {
    let Some(saved) = saved else {
        return Ok(base.clone());
    };
    let patch: serde_json::Value =
        serde_json::from_str(saved).map_err(|e| format!("saved burst settings: {e}"))?;
    apply_patch(base, &patch)
}

/// `base` with the fields of a JSON object replaced; unknown fields and wrong types are
/// errors naming the field.
pub fn apply_patch(
    base: &BurstSettings,
    patch: &serde_json::Value,
) -> Result<BurstSettings, String> {
    let serde_json::Value::Object(fields) = patch else {
        return Err("burst settings must be a JSON object".into());
    };
    let mut v = serde_json::to_value(base).map_err(|e| e.to_string())?;
    if let serde_json::Value::Object(m) = &mut v {
        for (k, x) in fields {
            m.insert(k.clone(), x.clone());
        }
    }
    let s: BurstSettings = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." {
            inner
        } else {
            format!("{path}: {inner}")
        }
    })?;
    s.validate()?;
    Ok(s)
}

/// Burst routing's run-time state, part of the relay state.
#[derive(Debug)]
pub struct BurstState {
    pub policy: arc_swap::ArcSwap<BurstPolicy>,
    pub loads: Loads,
    pub spend: CloudSpend,
    /// The environment's settings, under the saved ones.
    pub base: BurstSettings,
}

impl BurstState {
    /// `saved`: the stored patch; `spent_today`: a function of today's start (unix ms)
    /// returning the cloud spend logged since.
    pub fn new(
        base: BurstSettings,
        saved: Option<&str>,
        now_ms: i64,
        spent_since: impl FnOnce(i64) -> i64,
    ) -> Self {
        let settings = effective(&base, saved).unwrap_or_else(|e| {
            tracing::error!(error = %e, "ignoring invalid saved burst settings");
            base.clone()
        });
        let policy = BurstPolicy::new(settings.clone())
            .or_else(|_| BurstPolicy::new(BurstSettings::default()))
            .expect("default burst settings are valid");
        let tz = spend::zone(&policy.settings.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let start = spend::day_bounds(now_ms, &tz).0;
        BurstState {
            spend: CloudSpend::new(tz, now_ms, spent_since(start)),
            policy: arc_swap::ArcSwap::from_pointee(policy),
            loads: Loads::default(),
            base,
        }
    }
}
