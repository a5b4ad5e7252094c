//! The web console of a plain user: their balance, their keys, their requests, their
//! invitations. Every read and every change is filtered by their id; anything else is
//! refused here, whatever the page sends.

use std::collections::HashMap;
use std::sync::Arc;

use gateway_core::AppState;
use gateway_core::store::{StoreResult, invitations, tokens, users};

use super::actions::{create_token, store_err};
use super::load::{log_rows, token_rows, usd_text};
use crate::views::data::{Action, InvitationRow, LogFilter, Notice, TokenForm, UserData};

/// One signed-in user's service; cheap to clone.
#[derive(Clone)]
pub struct UserConsole {
    state: Arc<AppState>,
    user_id: String,
    /// `host:port` the browser reached us on (invitation links point there).
    host: String,
}

impl UserConsole {
    pub fn new(state: Arc<AppState>, user_id: String, host: &str) -> Self {
        UserConsole {
            state,
            user_id,
            host: host.to_string(),
        }
    }

    fn user(&self) -> Result<users::User, Notice> {
        self.state
            .store
            .with(|c| users::get(c, &self.user_id))
            .map_err(store_err)?
            .ok_or_else(|| Notice::error("this account no longer exists", None))
    }

    /// Everything the user's pages show.
    pub fn load(&self, filter: &LogFilter) -> StoreResult<UserData> {
        let user = self.state.store.with(|c| users::find(c, &self.user_id))?;
        // Exact, as the desktop shows money (a sub-cent spend is not $0.00).
        let used = gateway_core::console::users::used_nano(&self.state, &user);
        let balance = if user.quota_nano < 0 {
            "unlimited".to_string()
        } else {
            super::load::usd_text(user.quota_nano - used)
        };
        // Channels are the operator's business: a user's records name none.
        let filter = LogFilter {
            channel: String::new(),
            ..filter.clone()
        };
        let mut logs = log_rows(&self.state, &filter, &HashMap::new(), Some(&self.user_id))?;
        for r in &mut logs.rows {
            r.channel = String::new();
            r.failover = None;
        }
        let invitations = self
            .state
            .store
            .with(|c| invitations::list(c, Some(&self.user_id)))?
            .into_iter()
            .map(|i| self.invitation_row(&i))
            .collect();
        Ok(UserData {
            username: user.username.clone(),
            balance,
            used: super::load::usd_text(used),
            group: user.group.clone(),
            tokens: token_rows(&self.state, Some(&self.user_id))?,
            logs,
            invitations,
        })
    }

    fn invitation_row(&self, i: &invitations::Invitation) -> InvitationRow {
        super::admin::invitation_row(i, &self.host, String::new())
    }

    /// Do what the user asked, on their own things only. `None` for what the web layer
    /// handles itself (copy, filters, logout).
    pub async fn apply(&self, action: Action) -> Option<Notice> {
        let out = match action {
            Action::Copy(_) | Action::FilterLogs(_) | Action::Logout | Action::DismissNotice => {
                return None;
            }
            Action::CreateToken(f) => self.create_token(f).await,
            Action::SetTokenEnabled(id, on) => {
                let r = self.state.store.with(|c| {
                    tokens::update(
                        c,
                        id,
                        Some(&self.user_id),
                        tokens::TokenFields {
                            status: Some(if on { 1 } else { 2 }),
                            ..Default::default()
                        },
                    )
                });
                self.changed(r, if on { "Key enabled." } else { "Key disabled." })
                    .await
            }
            Action::RevokeToken(id) => {
                let r = self
                    .state
                    .store
                    .with(|c| tokens::delete(c, id, Some(&self.user_id)));
                self.changed(r, "Key revoked: requests with it now fail with 401.")
                    .await
            }
            Action::Redeem(code) => self.redeem(code).await,
            Action::CreateInvitation => self.create_invitation().await,
            Action::DeleteInvitation(code) => self.delete_invitation(&code).await,
            _ => Err(Notice::error(
                "permission denied: this needs an admin account",
                Some("Ask an admin of this gateway."),
            )),
        };
        Some(out.unwrap_or_else(|e| e))
    }

    async fn changed<T>(
        &self,
        r: Result<T, gateway_core::store::StoreError>,
        ok: &str,
    ) -> Result<Notice, Notice> {
        r.map_err(store_err)?;
        self.state.config_changed().await;
        Ok(Notice::ok(ok))
    }

    /// A key of the user's own, in the user's own group (a user cannot pick another).
    async fn create_token(&self, f: TokenForm) -> Result<Notice, Notice> {
        let user = self.user()?;
        let f = TokenForm {
            group: user.group.clone(),
            ..f
        };
        create_token(&self.state, &gateway_core::console::Session { user }, f).await
    }

    async fn redeem(&self, code: String) -> Result<Notice, Notice> {
        if code.trim().is_empty() {
            return Err(Notice::error(
                "Enter a redemption code.",
                Some("Paste the code you were given."),
            ));
        }
        let (amount, _) = gateway_core::console::redeem_for(&self.state, &self.user_id, code)
            .await
            .map_err(|e| Notice::error(e.message, None))?;
        Ok(Notice::ok(format!(
            "{} added to your balance.",
            usd_text(amount)
        )))
    }

    /// One of the user's own invitations (the API's rule: a user deletes only their own).
    async fn delete_invitation(&self, code: &str) -> Result<Notice, Notice> {
        let by = gateway_core::console::Session { user: self.user()? };
        gateway_core::console::delete_invitation(&self.state, &by, code)
            .await
            .map_err(|e| Notice::error(e.message, None))?;
        Ok(Notice::ok(
            "Invitation deleted: its link no longer registers.",
        ))
    }

    async fn create_invitation(&self) -> Result<Notice, Notice> {
        let user = self.user()?;
        let inv = gateway_core::console::create_invitation(&self.state, &user, None, None)
            .await
            .map_err(|e| Notice::error(e.message, None))?;
        let row = self.invitation_row(&inv);
        Ok(Notice::ok(format!(
            "Invitation created (single use): {}",
            row.link
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::testing;
    use crate::views::data::ChannelForm;
    use gateway_core::store::governance;

    fn set_registration(state: &AppState, r: governance::Registration) {
        state
            .store
            .with(|c| {
                governance::update(
                    c,
                    governance::GovernanceChange {
                        registration: Some(r),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
    }

    fn form(name: &str) -> TokenForm {
        TokenForm {
            name: name.into(),
            group: "vip".into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_user_sees_and_changes_only_their_own_things() {
        let t = testing::console().await;
        let state = t.console.state.clone();
        set_registration(&state, governance::Registration::Open);
        let (admin, bob) = state
            .store
            .with(|c| {
                Ok((
                    users::create(c, "admin", None, "x")?,
                    users::create(c, "bob", None, "x")?,
                ))
            })
            .unwrap();
        assert_eq!(admin.role, users::Role::Admin);
        let mut admin_console = t.console.clone();
        admin_console.acting = Some(admin.id.clone());
        let n = admin_console
            .apply(Action::CreateToken(form("admin-key")))
            .await
            .unwrap();
        assert!(n.ok, "{n:?}");
        let admin_token = token_rows(&state, Some(&admin.id)).unwrap()[0].id;

        let user = UserConsole::new(state.clone(), bob.id.clone(), "127.0.0.1:3000");
        let data = user.load(&LogFilter::default()).unwrap();
        assert_eq!(data.username, "bob");
        assert!(data.tokens.is_empty(), "{:?}", data.tokens);
        // Another user's key cannot be revoked or disabled by sending its id.
        for a in [
            Action::RevokeToken(admin_token),
            Action::SetTokenEnabled(admin_token, false),
        ] {
            let n = user.apply(a).await.unwrap();
            assert!(!n.ok, "{n:?}");
        }
        assert_eq!(token_rows(&state, Some(&admin.id)).unwrap().len(), 1);
        assert!(token_rows(&state, Some(&admin.id)).unwrap()[0].enabled);
        // Admin actions are refused whatever the page sends.
        let n = user
            .apply(Action::SaveChannel(ChannelForm {
                name: "x".into(),
                type_id: 1,
                ..Default::default()
            }))
            .await
            .unwrap();
        assert!(!n.ok && n.text.contains("admin"), "{n:?}");
        // Their own key: in their own group, whatever the form said; shown once.
        let n = user
            .apply(Action::CreateToken(form("bob-key")))
            .await
            .unwrap();
        assert!(n.ok && n.secret.as_deref().is_some_and(|k| k.starts_with("sk-")));
        let rows = user.load(&LogFilter::default()).unwrap().tokens;
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].name.as_str(), rows[0].group.as_str()),
            ("bob-key", "default")
        );
        // Invitations: created with a link to this gateway's registration page, deleted.
        set_registration(&state, governance::Registration::Closed);
        let n = user.apply(Action::CreateInvitation).await.unwrap();
        // While registration is closed a user's code would be useless: refused.
        assert!(!n.ok && n.text.contains("closed"), "{n:?}");
        set_registration(&state, governance::Registration::InviteOnly);
        let n = user.apply(Action::CreateInvitation).await.unwrap();
        assert!(n.ok, "{n:?}");
        let inv = user.load(&LogFilter::default()).unwrap().invitations;
        assert_eq!(inv.len(), 1);
        assert!(
            inv[0]
                .link
                .starts_with("http://127.0.0.1:3000/register?invite_code=")
        );
        assert_eq!(inv[0].uses, "0 of 1");
        let n = user
            .apply(Action::DeleteInvitation(inv[0].code.clone()))
            .await
            .unwrap();
        assert!(n.ok, "{n:?}");
        // An empty or unknown redemption code is refused in words.
        for code in ["", "no-such-code"] {
            let n = user.apply(Action::Redeem(code.into())).await.unwrap();
            assert!(!n.ok, "{n:?}");
        }
    }
}
