//! Per-minute counters for RPM/TPM limits of tokens and RPM caps of channels.

use std::sync::Mutex;

/// Fixed one-minute windows keyed by an id.
#[derive(Debug, Default)]
pub struct MinuteCounter {
    windows: Mutex<crate::Map<i64, (u64, i64)>>,
}

fn minute_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 60)
        .unwrap_or(0)
}

impl MinuteCounter {
    /// Add `n` if the current minute stays within `limit`; false when it would not.
    pub fn try_add(&self, id: i64, n: i64, limit: i64) -> bool {
        let now = minute_now();
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let e = w.entry(id).or_insert((now, 0));
        if e.0 != now {
            *e = (now, 0);
        }
        if e.1 + n > limit {
            return false;
        }
        e.1 += n;
        true
    }

    /// Whether the current minute is already at or over `limit`.
    pub fn at_limit(&self, id: i64, limit: i64) -> bool {
        let now = minute_now();
        let w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        w.get(&id).is_some_and(|e| e.0 == now && e.1 >= limit)
    }

    /// Add `n` unconditionally (tokens counted after a request settles).
    pub fn add(&self, id: i64, n: i64) {
        let now = minute_now();
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let e = w.entry(id).or_insert((now, 0));
        if e.0 != now {
            *e = (now, 0);
        }
        e.1 += n;
    }
}

/// All limit counters of the relay.
#[derive(Debug, Default)]
pub struct Limits {
    pub token_rpm: MinuteCounter,
    pub token_tpm: MinuteCounter,
    pub channel_rpm: MinuteCounter,
    /// Live gateways sharing the database (0 or 1: this one alone).
    gateways: std::sync::atomic::AtomicI64,
}

impl Limits {
    /// This gateway's part of a per-minute limit: an equal share when several gateways
    /// share one database (at least 1), so together they keep the limit.
    pub fn share(&self, limit: i64) -> i64 {
        let n = self
            .gateways
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(1);
        if n == 1 { limit } else { (limit / n).max(1) }
    }

    /// How many gateways share the database (from the heartbeat).
    pub fn set_gateways(&self, n: i64) {
        self.gateways.store(n, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_up_to_the_limit() {
        let c = MinuteCounter::default();
        assert!(c.try_add(1, 1, 2));
        assert!(c.try_add(1, 1, 2));
        assert!(!c.try_add(1, 1, 2));
        assert!(c.at_limit(1, 2));
        assert!(c.try_add(2, 1, 2));
    }

    #[test]
    fn gateways_share_limits() {
        let l = Limits::default();
        assert_eq!(l.share(60), 60);
        l.set_gateways(3);
        assert_eq!((l.share(60), l.share(2)), (20, 1));
    }
}
