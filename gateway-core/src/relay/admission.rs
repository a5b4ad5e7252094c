//! Whether a request may go on, and what it reserves: the key's address and model
//! allow-lists, its per-minute limits, a stopped just-in-time local model started, and on
//! every attempt the quota and balance reserved at that channel's price.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::StatusCode;

use super::OpenAiError;
use super::ingress::{self, Caller};
use super::settle::Settle;
use crate::burst::Side;
use crate::live::ledger::Admission;
use crate::snapshot::Snapshot;
use crate::state::Shared;
use crate::vocab::Usage;

/// The key's own allow-lists: the caller's address, and the model (as resolved or as
/// asked).
pub(super) fn key_allows(
    caller: &Caller,
    model: &str,
    asked: &str,
    ip: IpAddr,
) -> Result<(), OpenAiError> {
    let Some(t) = &caller.token else {
        return Ok(());
    };
    if !ingress::ip_allowed(&t.allow_ips, ip) {
        return Err(OpenAiError::permission_denied(format!(
            "This API key may not be used from {ip}"
        )));
    }
    if !caller.model_allowed(model) && !caller.model_allowed(asked) {
        return Err(OpenAiError::permission_denied(format!(
            "This API key may not use the model '{model}'"
        )));
    }
    Ok(())
}

/// The key's requests and tokens per minute (a request counts when it passes here).
pub(super) fn key_rate_limits(state: &Shared, caller: &Caller) -> Result<(), OpenAiError> {
    let Some(t) = &caller.token else {
        return Ok(());
    };
    let limits = &state.relay.limits;
    if let Some(rpm) = t.rpm_limit
        && !limits.token_rpm.try_add(t.id, 1, limits.share(rpm))
    {
        return Err(OpenAiError::minute_limit(
            "requests",
            rpm,
            format!("Rate limit reached: this API key allows {rpm} requests per minute"),
        ));
    }
    if let Some(tpm) = t.tpm_limit
        && limits.token_tpm.at_limit(t.id, limits.share(tpm))
    {
        return Err(OpenAiError::minute_limit(
            "tokens",
            tpm,
            format!("Rate limit reached: this API key allows {tpm} tokens per minute"),
        ));
    }
    Ok(())
}

/// A stopped just-in-time local model: start it (one start for all callers) and wait;
/// the snapshot to route with (a fresh one once it runs).
pub(super) async fn start_if_stopped(
    state: &Shared,
    snap: Arc<Snapshot>,
    caller: &Caller,
    model: &str,
) -> Result<Arc<Snapshot>, OpenAiError> {
    match snap.jit_models.get(model) {
        Some(&id) if snap.tiers(caller.group(), model).is_none() => {
            jit_start(state, id, model).await?;
            Ok(state.snapshot.load_full())
        }
        _ => Ok(snap),
    }
}

/// Start a just-in-time local model and wait for it, at most `jit_wait`.
async fn jit_start(state: &Shared, id: i64, model: &str) -> Result<(), OpenAiError> {
    let Some(rt) = state.local_runtime() else {
        return Err(OpenAiError::unavailable(format!(
            "The local model '{model}' is stopped and this gateway has no local runtime to start it"
        )));
    };
    let wait = state.relay.settings.jit_wait;
    match tokio::time::timeout(wait, rt.ensure_running(id)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(OpenAiError::unavailable(format!(
            "The local model '{model}' could not be started: {e}"
        ))),
        Err(_) => Err(OpenAiError::unavailable(format!(
            "The local model '{model}' is still loading (waited {} s): retry shortly",
            wait.as_secs()
        ))
        .with_retry_after(5)),
    }
}

/// Reserve on the token's quota and the user's balance, waiting (bounded) while
/// reservations of requests in flight hold what is left.
async fn admit(
    state: &Shared,
    caller: &Caller,
    settle: &mut Settle,
    user_quota: i64,
    estimate: Option<i64>,
) -> Result<(), OpenAiError> {
    let ledger = &state.relay.ledger;
    let wait_until = tokio::time::Instant::now() + state.relay.settings.first_byte_timeout;
    loop {
        let released = match &caller.token {
            Some(t) => ledger.released(t.id),
            None => ledger.user_released(caller.user_id()),
        };
        let notified = released.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let user_released = ledger.user_released(caller.user_id());
        let user_notified = user_released.notified();
        tokio::pin!(user_notified);
        user_notified.as_mut().enable();
        let token_reservation = match &caller.token {
            None => 0,
            Some(t) => match ledger.admit(t.id, t.quota_limit_nano, estimate) {
                Admission::Admitted(r) => r,
                Admission::Exhausted => return Err(OpenAiError::insufficient_quota()),
                Admission::Busy => {
                    if tokio::time::timeout_at(wait_until, notified).await.is_err() {
                        return Err(OpenAiError::rate_limited(
                            "Too many concurrent requests for the quota left on this API key",
                        ));
                    }
                    continue;
                }
            },
        };
        let release_token = || {
            if let Some(t) = &caller.token {
                ledger.settle(t.id, token_reservation, 0);
            }
        };
        match ledger.admit_user(caller.user_id(), user_quota, estimate) {
            Admission::Admitted(r) => {
                settle.reservation = token_reservation;
                settle.user_reservation = r;
                return Ok(());
            }
            Admission::Exhausted => {
                release_token();
                return Err(OpenAiError::new(
                    StatusCode::PAYMENT_REQUIRED,
                    "insufficient_quota",
                    "Your account balance is used up: redeem a code or ask an admin to top it up",
                ));
            }
            Admission::Busy => {
                release_token();
                if tokio::time::timeout_at(wait_until, user_notified)
                    .await
                    .is_err()
                {
                    return Err(OpenAiError::rate_limited(
                        "Too many concurrent requests for the balance left on this account",
                    ));
                }
            }
        }
    }
}

/// Admit an attempt on a channel of `side` serving `model`: a non-admin may not use an
/// unpriced cloud model (unless the admin allows it); the token quota and the user's
/// balance are reserved for this model's price — again when it differs from the price
/// reserved for an earlier attempt.
pub(super) async fn admit_attempt(
    state: &Shared,
    caller: &Caller,
    settle: &mut Settle,
    snap: &Snapshot,
    side: Side,
    model: &str,
    max_tokens: Option<i64>,
) -> Result<(), OpenAiError> {
    let tariff = snap.tariff(model);
    if side == Side::Cloud && tariff.is_none() && !caller.user.admin && !snap.allow_unpriced_cloud {
        return Err(OpenAiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_quota",
            format!(
                "The cloud model '{model}' has no price, so it cannot be billed: ask an admin to set a price for it"
            ),
        ));
    }
    if settle.admitted && settle.tariff == tariff {
        return Ok(());
    }
    if settle.admitted {
        let ledger = &state.relay.ledger;
        if let Some(t) = &caller.token {
            ledger.settle(t.id, std::mem::take(&mut settle.reservation), 0);
        }
        ledger.settle_user(
            caller.user_id(),
            std::mem::take(&mut settle.user_reservation),
            0,
        );
        settle.admitted = false;
    }
    let estimate = match (max_tokens, &tariff) {
        (Some(max), Some(t)) => Some(t.cost(
            Usage {
                prompt: settle.prompt_estimate,
                completion: max,
                ..Default::default()
            },
            settle.group_ratio,
        )),
        _ => None,
    };
    // Free requests (unpriced, or priced 0) do not draw on the user's balance.
    let user_quota = if tariff.is_some_and(|t| !t.is_free()) {
        caller.user.quota_nano
    } else {
        -1
    };
    admit(state, caller, settle, user_quota, estimate).await?;
    settle.admitted = true;
    settle.tariff = tariff;
    Ok(())
}
