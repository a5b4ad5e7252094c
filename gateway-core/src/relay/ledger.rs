//! In-memory quota ledger: the truth for admission while the usage writer catches the
//! database up. Each quota-limited request reserves an estimate before it is sent, so
//! concurrent requests on a small quota overspend by at most about one request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::snapshot::Snapshot;

/// Per-token quota state.
#[derive(Debug, Default)]
struct Account {
    /// Woken whenever a reservation is released.
    released: Arc<tokio::sync::Notify>,
    /// Spent, settled (nano-dollars), including what the writer has not yet stored.
    used: i64,
    /// Reserved by requests in flight.
    reserved: i64,
    /// Largest single request cost seen, the basis of the next reservation.
    largest: i64,
}

/// Quota ledger keyed by token id.
#[derive(Debug, Default)]
pub struct Ledger {
    accounts: Mutex<HashMap<i64, Arc<Mutex<Account>>>>,
}

/// Result of asking the ledger to admit a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Admitted with this reservation (nano-dollars) to settle later.
    Admitted(i64),
    /// The quota is spent.
    Exhausted,
    /// Quota remains but is reserved by requests in flight: wait for one to settle.
    Busy,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Ledger {
    /// Add accounts for new tokens (from their stored usage) and drop deleted ones.
    /// Existing accounts keep their in-memory usage, which is ahead of the database.
    pub fn sync(&self, snap: &Snapshot) {
        let mut accounts = lock(&self.accounts);
        let mut live = std::collections::HashSet::with_capacity(snap.tokens.len());
        for t in snap.tokens.values() {
            live.insert(t.id);
            accounts.entry(t.id).or_insert_with(|| {
                Arc::new(Mutex::new(Account {
                    used: t.used_quota_nano,
                    ..Default::default()
                }))
            });
        }
        accounts.retain(|id, _| live.contains(id));
    }

    fn account(&self, token_id: i64) -> Arc<Mutex<Account>> {
        lock(&self.accounts).entry(token_id).or_default().clone()
    }

    /// Used quota of a token as the ledger knows it.
    pub fn used(&self, token_id: i64) -> i64 {
        lock(&self.account(token_id)).used
    }

    /// Admit a request on a token with `limit` (nano, -1 unlimited). `estimate` is the
    /// request's own upper bound when it has one (from `max_tokens`).
    pub fn admit(&self, token_id: i64, limit: i64, estimate: Option<i64>) -> Admission {
        if limit < 0 {
            return Admission::Admitted(0);
        }
        let acc = self.account(token_id);
        let mut a = lock(&acc);
        let remaining = limit - a.used - a.reserved;
        if a.used >= limit {
            return Admission::Exhausted;
        }
        // Without a bound or history, reserve everything left: requests run one at a time
        // until a first cost is known.
        let want = match (estimate, a.largest) {
            (Some(e), l) => e.max(l),
            (None, 0) => (limit - a.used).max(1),
            (None, l) => l.saturating_mul(2),
        };
        if want <= remaining || a.reserved == 0 {
            a.reserved += want;
            Admission::Admitted(want)
        } else {
            Admission::Busy
        }
    }

    /// Notified when a reservation of this token is released (see [`Admission::Busy`]).
    pub fn released(&self, token_id: i64) -> Arc<tokio::sync::Notify> {
        lock(&self.account(token_id)).released.clone()
    }

    /// Settle a request: release its reservation and add its real cost.
    pub fn settle(&self, token_id: i64, reservation: i64, cost: i64) {
        let acc = self.account(token_id);
        let mut a = lock(&acc);
        a.reserved = (a.reserved - reservation).max(0);
        a.used += cost;
        a.largest = a.largest.max(cost);
        a.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_tokens_reserve_nothing() {
        let l = Ledger::default();
        assert_eq!(l.admit(1, -1, None), Admission::Admitted(0));
    }

    #[test]
    fn first_request_runs_alone_then_concurrency_returns() {
        let l = Ledger::default();
        let Admission::Admitted(r) = l.admit(1, 1000, None) else {
            panic!()
        };
        assert_eq!(r, 1000);
        assert_eq!(l.admit(1, 1000, None), Admission::Busy);
        l.settle(1, r, 100);
        assert_eq!(l.used(1), 100);
        // Now each request reserves twice the largest seen cost.
        assert_eq!(l.admit(1, 1000, None), Admission::Admitted(200));
        assert_eq!(l.admit(1, 1000, None), Admission::Admitted(200));
    }

    #[test]
    fn spent_quota_is_refused() {
        let l = Ledger::default();
        l.settle(1, 0, 1000);
        assert_eq!(l.admit(1, 1000, Some(1)), Admission::Exhausted);
    }
}
