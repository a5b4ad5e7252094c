//! Per-channel load: requests in flight and a latency EWMA (time to first byte for
//! streams, whole response otherwise), plus the health verdicts a supervisor reports.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Weight of a new latency sample.
const ALPHA: f64 = 0.3;

/// Load of one channel.
#[derive(Debug, Default)]
pub struct ChannelLoad {
    in_flight: AtomicI64,
    /// EWMA in microseconds as f64 bits; 0 = no sample yet.
    ewma_us: AtomicU64,
    /// When a request last began or ended here (unix ms; 0 = never): idle unload reads it.
    last_active_ms: AtomicI64,
}

impl ChannelLoad {
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// When a request last began or ended on this channel (unix ms, 0 = never).
    pub fn last_active_ms(&self) -> i64 {
        self.last_active_ms.load(Ordering::Relaxed)
    }

    /// The latency EWMA in milliseconds (None before the first sample).
    pub fn latency_ms(&self) -> Option<f64> {
        let bits = self.ewma_us.load(Ordering::Relaxed);
        (bits != 0).then(|| f64::from_bits(bits) / 1000.0)
    }

    fn observe(&self, d: Duration) {
        let sample = d.as_secs_f64() * 1e6;
        let _ = self
            .ewma_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let next = if bits == 0 {
                    sample
                } else {
                    ALPHA * sample + (1.0 - ALPHA) * f64::from_bits(bits)
                };
                Some(next.max(1e-3).to_bits())
            });
    }
}

/// Loads of every channel the relay has used.
#[derive(Debug, Default)]
pub struct Loads {
    channels: RwLock<crate::Map<i64, Arc<ChannelLoad>>>,
    /// Health verdicts reported by a supervisor (the local runtime); absent = unknown = up.
    health: RwLock<crate::Map<i64, bool>>,
}

impl Loads {
    pub fn get(&self, channel: i64) -> Arc<ChannelLoad> {
        if let Some(l) = self.channels.read().expect("loads lock").get(&channel) {
            return l.clone();
        }
        self.channels
            .write()
            .expect("loads lock")
            .entry(channel)
            .or_default()
            .clone()
    }

    /// Count a request in flight on `channel` until the guard drops.
    pub fn begin(&self, channel: i64) -> LoadGuard {
        let load = self.get(channel);
        load.in_flight.fetch_add(1, Ordering::Relaxed);
        load.last_active_ms
            .store(crate::vocab::now_ms(), Ordering::Relaxed);
        LoadGuard { load }
    }

    /// Record a latency sample for `channel`.
    pub fn observe(&self, channel: i64, latency: Duration) {
        self.get(channel).observe(latency);
    }

    /// Report a health check result (the runtime's supervisor calls this).
    pub fn set_health(&self, channel: i64, up: bool) {
        self.health
            .write()
            .expect("health lock")
            .insert(channel, up);
    }

    /// Forget a channel's health verdict (when it is removed).
    pub fn clear_health(&self, channel: i64) {
        self.health.write().expect("health lock").remove(&channel);
    }

    /// False only when a health check said the channel is down.
    pub fn healthy(&self, channel: i64) -> bool {
        self.health
            .read()
            .expect("health lock")
            .get(&channel)
            .copied()
            .unwrap_or(true)
    }
}

/// Holds one in-flight slot on a channel.
#[derive(Debug)]
pub struct LoadGuard {
    load: Arc<ChannelLoad>,
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.load
            .last_active_ms
            .store(crate::vocab::now_ms(), Ordering::Relaxed);
        self.load.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_and_ewma_moves_towards_samples() {
        let loads = Loads::default();
        let a = loads.begin(1);
        let b = loads.begin(1);
        assert_eq!(loads.get(1).in_flight(), 2);
        drop(a);
        drop(b);
        assert_eq!(loads.get(1).in_flight(), 0);
        assert_eq!(loads.get(1).latency_ms(), None);
        loads.observe(1, Duration::from_millis(100));
        assert!((loads.get(1).latency_ms().unwrap() - 100.0).abs() < 0.01);
        loads.observe(1, Duration::from_millis(200));
        assert!((loads.get(1).latency_ms().unwrap() - 130.0).abs() < 0.01);
        assert!(loads.healthy(1));
        loads.set_health(1, false);
        assert!(!loads.healthy(1));
    }
}
