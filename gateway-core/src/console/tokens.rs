//! Virtual keys (`sk-…`): a user makes, changes and deletes their own; an admin any. The
//! full key exists once, in what [`create_token`] returns; the store keeps its hash.

use super::{ApiError, Session};
use crate::auth::{self, NewKey};
use crate::state::Shared;
use crate::store::tokens::{self, Actor, Token, TokenFields};

/// A user's keys stay in their own group; only an admin picks another.
fn check_group(by: &Session, fields: &TokenFields) -> Result<(), ApiError> {
    if let Some(g) = &fields.group
        && !by.is_admin()
        && g.trim() != by.user.group
        && !g.trim().is_empty()
    {
        return Err(ApiError::forbidden(format!(
            "permission denied: your tokens can only use your group '{}'",
            by.user.group
        )));
    }
    Ok(())
}

/// A new key owned by `by` (its group, unless given): the record, and the key to show once.
pub async fn create_token(
    state: &Shared,
    by: &Session,
    mut fields: TokenFields,
) -> Result<(Token, NewKey), ApiError> {
    if fields.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err(ApiError::bad_request("missing field: name"));
    }
    check_group(by, &fields)?;
    if fields.group.as_deref().is_none_or(|g| g.trim().is_empty()) {
        fields.group = Some(by.user.group.clone());
    }
    let key = auth::new_token_key();
    let user_id = by.user.id.clone();
    let (hash, display) = (key.hash.clone(), key.display.clone());
    let t = state
        .store
        .run(move |c| tokens::create(c, &user_id, &hash, &display, fields))
        .await?;
    state.config_changed().await;
    Ok((t, key))
}

/// Change a key: its owner within the limits an admin set, an admin any key.
pub async fn update_token(
    state: &Shared,
    by: &Session,
    id: i64,
    fields: TokenFields,
) -> Result<Token, ApiError> {
    check_group(by, &fields)?;
    let (admin, me) = (by.is_admin(), by.user.id.clone());
    let t = state
        .store
        .run(move |c| {
            let actor = if admin {
                Actor::Admin(&me)
            } else {
                Actor::Owner(&me)
            };
            tokens::update_as(c, id, actor, fields)
        })
        .await?;
    state.config_changed().await;
    Ok(t)
}

/// Delete a key: its owner, or an admin.
pub async fn delete_token(state: &Shared, by: &Session, id: i64) -> Result<(), ApiError> {
    let owner = by.owner_filter();
    state
        .store
        .run(move |c| tokens::delete(c, id, owner.as_deref()))
        .await?;
    state.config_changed().await;
    Ok(())
}
