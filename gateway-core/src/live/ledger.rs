//! In-memory quota ledger: the truth for admission while the usage writer catches the
//! database up. Each quota-limited request reserves an estimate on its token and on its
//! user's balance before it is sent, so concurrent requests on a small quota overspend by
//! at most about one request.
//!
//! With several gateways on one database (PostgreSQL) the ledger runs on leases: each
//! account spends only what the database granted this gateway (`allowance`), and asks the
//! lease task (`live::leases`) for more before it runs out, so no request waits on the
//! database unless a quota is nearly spent. See `store::leases` for the bound.

use std::sync::{Arc, Mutex};

use crate::snapshot::Snapshot;

/// Quota state of one token or one user.
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
    /// Lease mode: what this gateway may still spend (granted minus settled costs).
    allowance: i64,
    /// Lease mode: the database said nothing is left beyond `allowance` (asked again on
    /// every lease round, so a credit is noticed).
    dry: bool,
    /// Lease mode: more is wanted (at least this much); the lease task asks for it.
    wanted: i64,
    /// Lease mode: a request used this account (only used accounts are leased).
    active: bool,
    /// Lease mode: the limit of the last admission; a new one (a credit, a raised quota)
    /// clears `dry`, so the next request waits for a lease round instead of a refusal.
    limit_seen: i64,
}

/// Result of asking the ledger to admit a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Admitted with this reservation (nano-dollars) to settle later.
    Admitted(i64),
    /// The quota is spent.
    Exhausted,
    /// Quota remains but is reserved by requests in flight (or, with leases, is being
    /// granted): wait for a release.
    Busy,
}

/// What the lease task should ask the database for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseWant<K> {
    pub key: K,
    pub at_least: i64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Accounts of one kind (tokens by id, users by id).
#[derive(Debug)]
struct Accounts<K>(Mutex<crate::Map<K, Arc<Mutex<Account>>>>);

impl<K> Default for Accounts<K> {
    fn default() -> Self {
        Accounts(Mutex::new(crate::Map::default()))
    }
}

impl<K: std::hash::Hash + Eq + Clone> Accounts<K> {
    /// Add accounts (from stored usage) and drop the ones not listed. Existing accounts
    /// keep their in-memory usage, which is ahead of the database.
    fn sync(&self, live: impl Iterator<Item = (K, i64)>) {
        let mut accounts = lock(&self.0);
        let mut keep = std::collections::HashSet::new();
        for (k, used) in live {
            keep.insert(k.clone());
            accounts.entry(k).or_insert_with(|| {
                Arc::new(Mutex::new(Account {
                    used,
                    ..Default::default()
                }))
            });
        }
        accounts.retain(|k, _| keep.contains(k));
    }

    /// The account of `key`, made if new. Looked up borrowed (`&str` for a user): the key
    /// is copied only when the account is made, not per request.
    fn account<Q>(&self, key: &Q) -> Arc<Mutex<Account>>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut accounts = lock(&self.0);
        if let Some(a) = accounts.get(key) {
            return a.clone();
        }
        accounts.entry(key.to_owned()).or_default().clone()
    }

    fn admit<Q>(&self, key: &Q, limit: i64, estimate: Option<i64>, leased: bool) -> Admission
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if limit < 0 {
            return Admission::Admitted(0);
        }
        let acc = self.account(key);
        let mut a = lock(&acc);
        if leased {
            if a.limit_seen != limit {
                a.limit_seen = limit;
                a.dry = false;
            }
            return a.admit_leased(estimate);
        }
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

    fn settle<Q>(&self, key: &Q, reservation: i64, cost: i64)
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let acc = self.account(key);
        let mut a = lock(&acc);
        a.reserved = (a.reserved - reservation).max(0);
        a.used += cost;
        a.allowance -= cost;
        a.largest = a.largest.max(cost);
        a.released.notify_waiters();
    }

    /// Lease mode: accounts running low (and spent ones, to notice a credit).
    fn wants(&self) -> Vec<LeaseWant<K>> {
        let accounts = lock(&self.0);
        accounts
            .iter()
            .filter_map(|(k, acc)| {
                let a = lock(acc);
                let unit = a.largest.max(1);
                let low = a.allowance - a.reserved < 2 * unit;
                (a.active && (a.wanted > 0 || low)).then(|| LeaseWant {
                    key: k.clone(),
                    at_least: a.wanted.max(2 * unit),
                })
            })
            .collect()
    }

    /// Lease mode: the database's answer for `key`.
    fn granted<Q>(&self, key: &Q, nano: Option<i64>, last: bool)
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let acc = self.account(key);
        let mut a = lock(&acc);
        match nano {
            Some(n) => {
                a.allowance += n;
                a.dry = last;
            }
            // No limit any more: the snapshot will say so; let waiting requests retry.
            None => a.dry = false,
        }
        a.wanted = 0;
        a.released.notify_waiters();
    }
}

impl Account {
    fn admit_leased(&mut self, estimate: Option<i64>) -> Admission {
        self.active = true;
        let free = self.allowance - self.reserved;
        let want = match (estimate, self.largest) {
            (Some(e), l) => e.max(l),
            (None, 0) => free.max(1),
            (None, l) => l.saturating_mul(2),
        };
        // One request may run past the lease when nothing else is in flight: the bound is
        // the quota plus one request per gateway.
        if want <= free || (self.reserved == 0 && self.allowance > 0) {
            self.reserved += want;
            return Admission::Admitted(want);
        }
        if self.dry {
            if self.reserved == 0 {
                return Admission::Exhausted;
            }
            return Admission::Busy;
        }
        self.wanted = self.wanted.max(want);
        Admission::Busy
    }
}

/// Quota ledger: token quotas by token id, user balances by user id. A request draws on
/// both: it is admitted only when its token and its user can each cover the reservation.
#[derive(Debug, Default)]
pub struct Ledger {
    tokens: Accounts<i64>,
    users: Accounts<String>,
    /// Lease mode (several gateways on one database).
    leased: std::sync::atomic::AtomicBool,
    /// Wakes the lease task when an account wants more.
    pub lease_wanted: tokio::sync::Notify,
}

impl Ledger {
    /// Add accounts for new tokens and users (from their stored usage) and drop deleted ones.
    pub fn sync(&self, snap: &Snapshot) {
        self.tokens
            .sync(snap.tokens.values().map(|t| (t.id, t.used_quota_nano)));
        self.users.sync(
            snap.users
                .values()
                .map(|u| (u.id.clone(), u.used_quota_nano)),
        );
    }

    /// Used quota of a token as the ledger knows it.
    #[cfg(test)]
    pub fn used(&self, token_id: i64) -> i64 {
        lock(&self.tokens.account(&token_id)).used
    }

    /// Spent by a user as the ledger knows it.
    #[cfg(test)]
    pub fn user_used(&self, user_id: &str) -> i64 {
        lock(&self.users.account(user_id)).used
    }

    /// Spent by a user as the ledger knows it, without creating an account.
    pub fn peek_user_used(&self, user_id: &str) -> Option<i64> {
        let accounts = lock(&self.users.0);
        accounts.get(user_id).map(|a| lock(a).used)
    }

    /// Admit a request on a token with `limit` (nano, -1 unlimited). `estimate` is the
    /// request's own upper bound when it has one (from `max_tokens`).
    pub fn admit(&self, token_id: i64, limit: i64, estimate: Option<i64>) -> Admission {
        let a = self
            .tokens
            .admit(&token_id, limit, estimate, self.is_leased());
        self.wake_leases(a);
        a
    }

    /// Admit a request on a user's balance: `quota` granted (nano, -1 unlimited).
    pub fn admit_user(&self, user_id: &str, quota: i64, estimate: Option<i64>) -> Admission {
        let a = self.users.admit(user_id, quota, estimate, self.is_leased());
        self.wake_leases(a);
        a
    }

    fn wake_leases(&self, a: Admission) {
        if a == Admission::Busy && self.is_leased() {
            self.lease_wanted.notify_one();
        }
    }

    /// Spend quotas only as leases from the database grant them (several gateways).
    pub fn use_leases(&self) {
        self.leased
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// True in lease mode.
    pub fn is_leased(&self) -> bool {
        self.leased.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Lease mode: the tokens and users to ask more quota for.
    pub fn lease_wants(&self) -> (Vec<LeaseWant<i64>>, Vec<LeaseWant<String>>) {
        (self.tokens.wants(), self.users.wants())
    }

    /// Lease mode: `nano` more granted to a token (`None`: it has no limit).
    pub fn token_granted(&self, token_id: i64, nano: Option<i64>, last: bool) {
        self.tokens.granted(&token_id, nano, last);
    }

    /// Lease mode: `nano` more granted on a user's balance (`None`: no limit).
    pub fn user_granted(&self, user_id: &str, nano: Option<i64>, last: bool) {
        self.users.granted(user_id, nano, last);
    }

    /// Notified when a reservation of this token is released (see [`Admission::Busy`]).
    pub fn released(&self, token_id: i64) -> Arc<tokio::sync::Notify> {
        lock(&self.tokens.account(&token_id)).released.clone()
    }

    /// Notified when a reservation on this user's balance is released.
    pub fn user_released(&self, user_id: &str) -> Arc<tokio::sync::Notify> {
        lock(&self.users.account(user_id)).released.clone()
    }

    /// Settle a request on a token: release its reservation and add its real cost.
    pub fn settle(&self, token_id: i64, reservation: i64, cost: i64) {
        self.tokens.settle(&token_id, reservation, cost);
    }

    /// Settle a request on a user's balance.
    pub fn settle_user(&self, user_id: &str, reservation: i64, cost: i64) {
        self.users.settle(user_id, reservation, cost);
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
    fn users_have_their_own_accounts() {
        let l = Ledger::default();
        assert_eq!(l.admit_user("u", -1, None), Admission::Admitted(0));
        assert_eq!(l.admit_user("u", 500, Some(100)), Admission::Admitted(100));
        l.settle_user("u", 100, 500);
        assert_eq!(l.user_used("u"), 500);
        assert_eq!(l.admit_user("u", 500, Some(1)), Admission::Exhausted);
        // A credit raises the quota: admitted again.
        assert_eq!(l.admit_user("u", 600, Some(1)), Admission::Admitted(500));
        assert_eq!(l.admit(1, 1000, Some(1)), Admission::Admitted(1));
    }

    #[test]
    fn leases_bound_spending_and_ask_for_more_before_running_out() {
        let l = Ledger::default();
        l.use_leases();
        // Nothing granted yet: wait, and the account asks.
        assert_eq!(l.admit(1, 1000, Some(10)), Admission::Busy);
        let (tokens, _) = l.lease_wants();
        assert_eq!(
            tokens,
            vec![LeaseWant {
                key: 1,
                at_least: 10
            }]
        );
        l.token_granted(1, Some(25), false);
        assert_eq!(l.admit(1, 1000, Some(10)), Admission::Admitted(10));
        assert_eq!(l.admit(1, 1000, Some(10)), Admission::Admitted(10));
        // 5 left, 20 reserved: wait.
        assert_eq!(l.admit(1, 1000, Some(10)), Admission::Busy);
        l.settle(1, 10, 10);
        l.settle(1, 10, 10);
        // Running low (5 < twice the largest cost): asks before it runs out.
        assert_eq!(l.lease_wants().0.len(), 1);
        // The database has nothing more: one request may still run past the lease...
        l.token_granted(1, Some(0), true);
        assert_eq!(l.admit(1, 1000, Some(10)), Admission::Admitted(10));
        assert_eq!(l.admit(1, 1000, Some(10)), Admission::Busy);
        l.settle(1, 10, 10);
        // ...and then the quota is spent.
        assert_eq!(l.admit(1, 1000, Some(10)), Admission::Exhausted);
        assert_eq!(l.used(1), 30);
        // A credit: granted again.
        l.token_granted(1, Some(100), false);
        assert_eq!(l.admit(1, 1000, Some(10)), Admission::Admitted(10));
        // A raised limit is not refused on the old answer: the request waits for a round.
        assert_eq!(l.admit(2, 10, Some(10)), Admission::Busy);
        l.token_granted(2, Some(0), true);
        assert_eq!(l.admit(2, 10, Some(10)), Admission::Exhausted);
        assert_eq!(l.admit(2, 50, Some(10)), Admission::Busy);
    }

    #[test]
    fn spent_quota_is_refused() {
        let l = Ledger::default();
        l.settle(1, 0, 1000);
        assert_eq!(l.admit(1, 1000, Some(1)), Admission::Exhausted);
    }
}
