//! The lease task's work (several gateways on one database): ask the database for more of
//! the quotas the ledger is running low on, and keep this gateway's heartbeat, from which
//! each gateway also learns how many share the per-minute limits. Runs beside the
//! requests, never on their path; `server` drives it.

use crate::store::leases::{self, Grant, Kind, Want};
use crate::store::{Store, StoreResult, now_ms};

use super::RelayState;

/// One round: ask for every account the ledger wants more of, and hand out the answers.
pub async fn top_up(store: &Store, instance: &str, relay: &RelayState) -> StoreResult<()> {
    let (tokens, users) = relay.ledger.lease_wants();
    if tokens.is_empty() && users.is_empty() {
        return Ok(());
    }
    let wants: Vec<Want> = tokens
        .iter()
        .map(|w| Want {
            kind: Kind::Token,
            account: w.key.to_string(),
            at_least: w.at_least,
        })
        .chain(users.iter().map(|w| Want {
            kind: Kind::User,
            account: w.key.clone(),
            at_least: w.at_least,
        }))
        .collect();
    let instance = instance.to_string();
    let grants = store
        .run(move |c| leases::top_up(c, &instance, &wants, now_ms()))
        .await?;
    let (token_grants, user_grants) = grants.split_at(tokens.len());
    for (w, g) in tokens.iter().zip(token_grants) {
        let (nano, last) = answer(*g);
        relay.ledger.token_granted(w.key, nano, last);
    }
    for (w, g) in users.iter().zip(user_grants) {
        let (nano, last) = answer(*g);
        relay.ledger.user_granted(&w.key, nano, last);
    }
    Ok(())
}

/// A grant as the ledger takes it: nano granted (None: no limit) and whether it was the last.
fn answer(g: Grant) -> (Option<i64>, bool) {
    match g {
        Grant::Unlimited => (None, false),
        Grant::Granted { nano, last } => (Some(nano), last),
        // Deleted: nothing more; the next snapshot drops the account.
        Grant::Gone => (Some(0), true),
    }
}

/// Refresh this gateway's heartbeat; the per-minute limits are shared among the live ones.
pub async fn heartbeat(store: &Store, instance: &str, relay: &RelayState) -> StoreResult<()> {
    let instance = instance.to_string();
    let gateways = store
        .run(move |c| leases::heartbeat(c, &instance, now_ms()))
        .await?;
    relay.limits.set_gateways(gateways);
    Ok(())
}
