//! Per-channel circuit breakers: an error-rate window opens the breaker, a cooldown
//! later one half-open probe is let through, and its outcome closes or re-opens it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::RelaySettings;

/// What a breaker currently allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// Gauge value for `/metrics`: 0 closed, 1 open, 2 half-open.
    pub fn gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

/// Outcomes counted in one-second buckets over the window: O(1) per request and a few
/// hundred bytes per channel, whatever the request rate.
#[derive(Debug)]
struct Breaker {
    /// (second, successes, errors), oldest first.
    buckets: VecDeque<(u64, u32, u32)>,
    open_until: Option<Instant>,
    probing: bool,
}

impl Breaker {
    fn new() -> Self {
        Breaker {
            buckets: VecDeque::new(),
            open_until: None,
            probing: false,
        }
    }

    fn add(&mut self, second: u64, window_secs: u64, success: bool) {
        while self
            .buckets
            .front()
            .is_some_and(|(s, _, _)| s + window_secs <= second)
        {
            self.buckets.pop_front();
        }
        match self.buckets.back_mut() {
            Some(b) if b.0 == second => {
                if success {
                    b.1 += 1
                } else {
                    b.2 += 1
                }
            }
            _ => self
                .buckets
                .push_back((second, u32::from(success), u32::from(!success))),
        }
    }

    /// (successes, errors) in the window.
    fn counts(&self) -> (u32, u32) {
        self.buckets
            .iter()
            .fold((0, 0), |(ok, err), (_, o, e)| (ok + o, err + e))
    }
}

/// All channels' breakers.
#[derive(Debug)]
pub struct Breakers {
    inner: Mutex<crate::Map<i64, Breaker>>,
    epoch: Instant,
    min_errors: u32,
    ratio: f64,
    window: Duration,
    cooldown: Duration,
}

impl Breakers {
    pub fn new(s: &RelaySettings) -> Self {
        Breakers {
            inner: Mutex::new(crate::Map::default()),
            epoch: Instant::now(),
            min_errors: s.breaker_min_errors,
            ratio: s.breaker_error_ratio,
            window: s.breaker_window,
            cooldown: s.breaker_cooldown,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, crate::Map<i64, Breaker>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// May a request go to `channel` now? A half-open breaker admits one probe at a time.
    pub fn allow(&self, channel: i64) -> bool {
        let mut map = self.lock();
        let Some(b) = map.get_mut(&channel) else {
            return true;
        };
        match b.open_until {
            None => true,
            Some(until) if Instant::now() < until => false,
            Some(_) if b.probing => false,
            Some(_) => {
                b.probing = true;
                true
            }
        }
    }

    /// Record an attempt's outcome.
    pub fn record(&self, channel: i64, success: bool) {
        self.record_at(channel, success, Instant::now());
    }

    /// Record an attempt's outcome, known at `now` (a time the caller read already).
    pub fn record_at(&self, channel: i64, success: bool, now: Instant) {
        let second = now.duration_since(self.epoch).as_secs();
        let mut map = self.lock();
        let b = map.entry(channel).or_insert_with(Breaker::new);
        if b.open_until.is_some() {
            if b.probing || b.open_until.is_some_and(|u| now >= u) {
                b.probing = false;
                if success {
                    b.open_until = None;
                    b.buckets.clear();
                } else {
                    b.open_until = Some(now + self.cooldown);
                }
            }
            return;
        }
        b.add(second, self.window.as_secs().max(1), success);
        if success {
            return;
        }
        let (ok, errors) = b.counts();
        if errors >= self.min_errors && f64::from(errors) / f64::from(ok + errors) >= self.ratio {
            tracing::warn!(channel, errors, "circuit breaker opened");
            b.open_until = Some(now + self.cooldown);
            b.probing = false;
        }
    }

    /// Current state of a channel's breaker.
    pub fn state(&self, channel: i64) -> BreakerState {
        let map = self.lock();
        match map.get(&channel).and_then(|b| b.open_until) {
            None => BreakerState::Closed,
            Some(u) if Instant::now() < u => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// Every channel with a breaker and its state.
    pub fn states(&self) -> Vec<(i64, BreakerState)> {
        let ids: Vec<i64> = self.lock().keys().copied().collect();
        ids.into_iter().map(|id| (id, self.state(id))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breakers(cooldown_ms: u64) -> Breakers {
        Breakers::new(&RelaySettings {
            breaker_min_errors: 3,
            breaker_cooldown: Duration::from_millis(cooldown_ms),
            ..Default::default()
        })
    }

    #[test]
    fn opens_after_errors_and_recovers_through_one_probe() {
        let b = breakers(30);
        for _ in 0..3 {
            assert!(b.allow(7));
            b.record(7, false);
        }
        assert_eq!(b.state(7), BreakerState::Open);
        assert!(!b.allow(7));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.state(7), BreakerState::HalfOpen);
        assert!(b.allow(7));
        assert!(!b.allow(7), "only one probe at a time");
        b.record(7, true);
        assert_eq!(b.state(7), BreakerState::Closed);
        assert!(b.allow(7));
    }

    #[test]
    fn failed_probe_reopens() {
        let b = breakers(20);
        for _ in 0..3 {
            b.record(1, false);
        }
        std::thread::sleep(Duration::from_millis(30));
        assert!(b.allow(1));
        b.record(1, false);
        assert_eq!(b.state(1), BreakerState::Open);
    }

    #[test]
    fn successes_keep_it_closed() {
        let b = breakers(20);
        for i in 0..20 {
            b.record(1, i % 5 != 0);
        }
        assert_eq!(b.state(1), BreakerState::Closed);
    }
}
