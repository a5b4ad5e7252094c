//! The console service: what the control plane does, for the HTTP API (`http`), the
//! desktop window and the web console alike. Inputs and outputs are plain data (the
//! store's records, bodies that deserialize from the API's JSON); every rule — who may,
//! what is valid, what must be reloaded after — lives here, so the consoles and the JSON
//! API cannot disagree.
//!
//! - [`users`], [`groups`], [`invitations`], [`redemptions`]: accounts and governance.
//! - [`channels`], [`tokens`], [`settings`]: routing configuration; a channel's test and
//!   health.
//! - [`routing`]: what the data plane serves right now.

pub mod channels;
mod error;
pub mod groups;
pub mod invitations;
pub mod redemptions;
pub mod routing;
pub mod settings;
pub mod tokens;
pub mod users;

pub use error::ApiError;
pub use groups::{GroupBody, delete_group, set_group};
pub use invitations::{
    SettingsBody as GovernanceBody, create_for as create_invitation, delete_invitation,
    link as invitation_link, update_governance,
};
pub use redemptions::{BatchBody, create_redemptions, delete_redemption};
pub use users::{
    NewUserBody, UserBody, balance_fields, change_user, create_user, redeem_for, used_nano,
};

pub use crate::state::Shared;
use crate::store::users::{Role, User};

/// Who acts: a logged-in user.
/// The caller, authenticated by a login JWT (`Authorization: Bearer ...`).
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
}

impl Session {
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// Refuse non-admins.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "permission denied: this needs an admin account",
            ))
        }
    }

    /// `None` for admins (see everything), the caller's id otherwise.
    pub fn owner_filter(&self) -> Option<String> {
        (!self.is_admin()).then(|| self.user.id.clone())
    }
}

/// Hash a new password on the argon2 threads (429 when too many wait).
pub(crate) async fn hash_password(state: &Shared, password: String) -> Result<String, ApiError> {
    state
        .auth_throttle
        .hash(move |mem| crate::auth::hash_password_with(&password, mem))
        .await?
        .map_err(|e| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}
