//! The Users page's service: accounts, groups, redemption codes, invitations and the
//! registration settings. Every change goes through the same gateway-core function as the
//! console API's handler (`gateway_core::http::create_user`, `change_user`, `set_group`,
//! …), acting as the signed-in admin (web console) or the desktop's local admin, so the
//! rules and the refusals are the API's. This module only turns form text into those
//! calls and their answers into notices.

use gateway_core::vocab::status;
use std::collections::HashMap;

use gateway_core::console::{self as api, ApiError, Session};
use gateway_core::money::format_usd;
use gateway_core::store::{
    StoreResult, governance, groups, invitations, now_secs, redemptions, users,
};
use gateway_core::tariff::format_ratio;

use super::Console;
use super::actions::store_err;
use super::load::{date_time, usd_text};
use crate::views::data::*;
use crate::views::users::{
    GOVERNANCE_FORM, GROUP_FORM, INVITATION_FORM, NEW_USER_FORM, REDEMPTION_FORM, balance_form,
};

/// Where "Save CSV file" writes, under the data folder.
pub const EXPORTS_DIR: &str = "exports";

/// An invitation as a row: its link points at `host` (`host:port` the gateway is reached on).
pub(super) fn invitation_row(
    i: &invitations::Invitation,
    host: &str,
    inviter: String,
) -> InvitationRow {
    let mut headers = axum::http::HeaderMap::new();
    if let Ok(h) = host.parse() {
        headers.insert(axum::http::header::HOST, h);
    }
    InvitationRow {
        code: i.code.clone(),
        inviter,
        link: api::invitation_link(&headers, &i.code),
        uses: if i.max_uses == 0 {
            format!("{} of unlimited", i.uses)
        } else {
            format!("{} of {}", i.uses, i.max_uses)
        },
        expires: if i.expires_at < 0 {
            "never".into()
        } else {
            date_time(i.expires_at * 1000)
        },
    }
}

/// A refusal from gateway-core in its own words, with what fixes it.
fn refused(e: ApiError, fix: &str) -> Notice {
    let fix = match e.status.as_u16() {
        403 => "Sign in with an enabled admin account.",
        404 => "It was deleted meanwhile: the list shows what is left.",
        _ => fix,
    };
    Notice::error(e.message, Some(fix))
}

/// A refused new user, marked on the field the refusal is about (the API names it in
/// its message; the form's fields are those words).
fn new_user_refused(e: ApiError) -> Notice {
    if e.status.as_u16() != 400 && e.status.as_u16() != 409 {
        return refused(e, "Correct the field and create the user again.");
    }
    let lower = e.message.to_lowercase();
    let field = [
        ("password", "password"),
        ("username", "username"),
        ("user name", "username"),
        ("email", "email"),
        ("group", "group"),
        ("role", "role"),
        ("balance", "balance_usd"),
    ]
    .iter()
    .find(|(word, _)| lower.contains(word))
    .map(|(_, field)| field.to_string());
    let fields = field
        .map(|f| vec![(f, e.message.clone())])
        .unwrap_or_default();
    let mut n = Notice::refusing(NEW_USER_FORM, e.message, fields);
    n.fix = Some(
        "Correct the marked field and create the user again: the form keeps what you typed.".into(),
    );
    n
}

/// An amount in USD as typed (a leading `$` allowed); empty: none.
fn usd(field: &str, text: &str) -> Result<Option<f64>, Notice> {
    let t = text.trim();
    let t = t.strip_prefix('$').unwrap_or(t).trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(Some)
        .ok_or_else(|| {
            Notice::error(
                format!("{field}: '{t}' is not a number"),
                Some("Type an amount in US dollars, such as 5 or 0.50."),
            )
        })
}

/// A whole number as typed; empty: none.
fn whole(field: &str, text: &str) -> Result<Option<i64>, Notice> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<i64>().map(Some).map_err(|_| {
        Notice::error(
            format!("{field}: '{t}' is not a whole number"),
            Some("Type a whole number, such as 1 or 10."),
        )
    })
}

/// "Expires in days" as the unix time it names; empty: never (-1).
fn expiry(text: &str) -> Result<Option<i64>, Notice> {
    let Some(days) = whole("Expires in days", text)? else {
        return Ok(None);
    };
    if days < 1 {
        return Err(Notice::error(
            format!("Expires in days: {days} is not in the future"),
            Some("Type 1 or more days, or leave it empty for never."),
        ));
    }
    Ok(Some(now_secs().saturating_add(days.saturating_mul(86_400))))
}

impl Console {
    /// What the Users page shows. `host`: where the gateway is reached (invitation links).
    pub fn users_page(&self, host: &str) -> StoreResult<UsersData> {
        let (list, groups, codes, invitations, gov) = self.state.store.with(|c| {
            Ok((
                users::list(c)?,
                groups::list(c)?,
                redemptions::list(c, false)?,
                invitations::list(c, None)?,
                governance::load(c)?,
            ))
        })?;
        let names: HashMap<&str, &str> = list
            .iter()
            .map(|u| (u.id.as_str(), u.username.as_str()))
            .collect();
        let name = |id: &str| names.get(id).copied().unwrap_or(id).to_string();
        let now = now_secs();
        let unused: Vec<_> = codes
            .iter()
            .filter(|r| r.state(now) == "unused")
            .cloned()
            .collect();
        Ok(UsersData {
            users: list.iter().map(|u| self.user_row(u, &name)).collect(),
            groups: groups
                .into_iter()
                .map(|g| GroupRow {
                    ratio: format_ratio(g.ratio_micro),
                    name: g.name,
                    description: g.description,
                    users: g.users,
                })
                .collect(),
            codes_csv: redemptions::csv(&codes, now),
            unused_codes_csv: redemptions::csv(&unused, now),
            codes: codes
                .iter()
                .map(|r| CodeRow {
                    id: r.id,
                    code: r.code.clone(),
                    name: r.name.clone(),
                    amount: usd_text(r.amount_nano),
                    state: r.state(now).into(),
                    expires: if r.expires_at < 0 {
                        "never".into()
                    } else {
                        date_time(r.expires_at * 1000)
                    },
                    redeemed_by: r.redeemed_by.as_deref().map(name).unwrap_or_default(),
                    created: date_time(r.created_at * 1000),
                })
                .collect(),
            invitations: invitations
                .iter()
                .map(|i| invitation_row(i, host, name(&i.inviter_id)))
                .collect(),
            governance: GovernanceForm {
                registration: gov.registration.as_str().into(),
                new_user_balance_usd: if gov.new_user_balance_nano < 0 {
                    "-1".into()
                } else {
                    format_usd(gov.new_user_balance_nano)
                },
                inviter_reward_usd: format_usd(gov.inviter_reward_nano),
                invitee_reward_usd: format_usd(gov.invitee_reward_nano),
                user_invite_max_uses: gov.user_invite_max_uses.to_string(),
                allow_unpriced_cloud: gov.allow_unpriced_cloud,
            },
            exports_dir: self.data_dir.join(EXPORTS_DIR).display().to_string(),
        })
    }

    fn user_row(&self, u: &users::User, name: &dyn Fn(&str) -> String) -> UserRow {
        let used = api::used_nano(&self.state, u);
        UserRow {
            id: u.id.clone(),
            name: u.username.clone(),
            email: u.email.clone().unwrap_or_default(),
            role: u.role.as_str().into(),
            group: u.group.clone(),
            balance: if u.quota_nano < 0 {
                "unlimited".into()
            } else {
                usd_text(u.quota_nano - used)
            },
            unlimited: u.quota_nano < 0,
            spent: usd_text(used),
            enabled: u.status == status::ENABLED,
            invited_by: u.invited_by.as_deref().map(name).unwrap_or_default(),
        }
    }

    /// The admin these changes are made as, read afresh for every action (as the API reads
    /// the session's user for every request): a demoted or disabled admin is refused.
    pub(super) fn admin_session(&self) -> Result<Session, Notice> {
        let id = self.admin_id()?;
        let user = self
            .state
            .store
            .with(|c| users::get(c, &id))
            .map_err(store_err)?
            .ok_or_else(|| {
                Notice::error(
                    "this account no longer exists",
                    Some("Sign in with an admin account."),
                )
            })?;
        if user.status != status::ENABLED {
            return Err(Notice::error(
                "this account is disabled",
                Some("Sign in with an enabled admin account."),
            ));
        }
        Ok(Session { user })
    }

    /// Carry out a Users-page action.
    pub(super) async fn apply_users(&self, action: Action) -> Result<Notice, Notice> {
        let by = self.admin_session()?;
        match action {
            Action::CreateUser(f) => {
                let balance_usd = usd("Starting balance", &f.balance_usd).map_err(|n| {
                    let message = n.text.clone();
                    let mut r = Notice::refusing(
                        NEW_USER_FORM,
                        n.text,
                        vec![("balance_usd".into(), message)],
                    );
                    r.fix = n.fix;
                    r
                })?;
                let body = api::NewUserBody {
                    username: f.username.clone(),
                    password: f.password,
                    email: Some(f.email),
                    role: Some(f.role),
                    group: Some(f.group),
                    balance_usd,
                };
                let u = api::create_user(&self.state, &by, body)
                    .await
                    .map_err(new_user_refused)?;
                Ok(Notice::ok(format!(
                    "User {} created: {}, group {}, balance {}.",
                    u.username,
                    u.role.as_str(),
                    u.group,
                    u.balance_nano()
                        .map(usd_text)
                        .unwrap_or_else(|| "unlimited".into())
                ))
                .completing(NEW_USER_FORM))
            }
            Action::SetUserEnabled { id, enabled } => {
                let body = api::UserBody {
                    status: Some(if enabled { 1 } else { 2 }),
                    ..Default::default()
                };
                let u = self.change(&by, &id, body).await?;
                Ok(Notice::ok(if enabled {
                    format!(
                        "{} is enabled: they can sign in and use their keys.",
                        u.username
                    )
                } else {
                    format!(
                        "{} is disabled: their sign-ins and keys are refused.",
                        u.username
                    )
                }))
            }
            Action::SetUserRole { id, role } => {
                let body = api::UserBody {
                    role: Some(role),
                    ..Default::default()
                };
                let u = self.change(&by, &id, body).await?;
                Ok(Notice::ok(format!(
                    "{} is now {}.",
                    u.username,
                    match u.role {
                        users::Role::Admin => "an admin",
                        users::Role::User => "a user",
                    }
                )))
            }
            Action::SetUserGroup { id, group } => {
                let body = api::UserBody {
                    group: Some(group),
                    ..Default::default()
                };
                let u = self.change(&by, &id, body).await?;
                Ok(Notice::ok(format!(
                    "{} is in group {}: their keys route and bill as that group.",
                    u.username, u.group
                )))
            }
            Action::ChangeBalance { id, how, amount } => {
                let Some(v) = usd("Amount", &amount)? else {
                    return Err(Notice::error(
                        "Amount: type how much, in US dollars",
                        Some("Type an amount such as 5 or 0.50, then choose Add, Subtract or Set."),
                    ));
                };
                let body = match how {
                    BalanceHow::Set => api::UserBody {
                        balance_usd: Some(v),
                        ..Default::default()
                    },
                    _ if v < 0.0 => {
                        return Err(Notice::error(
                            format!("Amount: {amount} is negative"),
                            Some(
                                "Type the amount without a sign: Add adds it, Subtract takes it away.",
                            ),
                        ));
                    }
                    BalanceHow::Add => api::UserBody {
                        balance_delta_usd: Some(v),
                        ..Default::default()
                    },
                    BalanceHow::Subtract => api::UserBody {
                        balance_delta_usd: Some(-v),
                        ..Default::default()
                    },
                };
                let u = self.change(&by, &id, body).await?;
                Ok(Notice::ok(if u.quota_nano < 0 {
                    format!("{} now has an unlimited balance.", u.username)
                } else {
                    format!(
                        "{} now has {} left.",
                        u.username,
                        usd_text(u.quota_nano - api::used_nano(&self.state, &u))
                    )
                })
                .completing(balance_form(&id)))
            }
            Action::SaveGroup(f) => {
                let body = api::GroupBody {
                    ratio: number("Ratio", &f.ratio)?,
                    description: Some(f.description),
                };
                let g = api::set_group(&self.state, &by, &f.name, body)
                    .await
                    .map_err(|e| refused(e, "Correct the field and save the group again."))?;
                Ok(Notice::ok(format!(
                    "Group {} saved: costs of its users ×{}.",
                    g.name,
                    format_ratio(g.ratio_micro)
                ))
                .completing(GROUP_FORM))
            }
            Action::DeleteGroup(name) => {
                api::delete_group(&self.state, &by, &name)
                    .await
                    .map_err(|e| {
                        refused(
                            e,
                            "Move its users to another group (the Group column above) first.",
                        )
                    })?;
                Ok(Notice::ok(format!("Group {name} deleted.")))
            }
            Action::CreateRedemptions(f) => {
                let body = api::BatchBody {
                    name: Some(f.name),
                    amount_usd: usd("Amount", &f.amount_usd)?,
                    count: whole("How many", &f.count)?,
                    expires_at: expiry(&f.expires_days)?,
                };
                let batch = api::create_redemptions(&self.state, &by, body)
                    .await
                    .map_err(|e| refused(e, "Correct the field and create the codes again."))?;
                let first = batch.first();
                Ok(Notice::ok(format!(
                    "{} code(s) of {} created ({}): they are at the top of the list; Copy CSV copies them all.",
                    batch.len(),
                    first.map(|r| usd_text(r.amount_nano)).unwrap_or_default(),
                    first.map(|r| r.name.as_str()).unwrap_or_default(),
                ))
                .completing(REDEMPTION_FORM))
            }
            Action::DeleteRedemption(id) => {
                api::delete_redemption(&self.state, &by, id)
                    .await
                    .map_err(|e| refused(e, "Reload the page and try again."))?;
                Ok(Notice::ok(
                    "Code deleted: it can no longer be redeemed (a balance it credited stays).",
                ))
            }
            Action::ExportRedemptions { unused_only } => self.export_codes(&by, unused_only),
            Action::Invite(f) => {
                let max_uses = whole("Uses", &f.max_uses)?;
                let expires_at = expiry(&f.expires_days)?;
                api::create_invitation(&self.state, &by.user, max_uses, expires_at)
                    .await
                    .map_err(|e| {
                        refused(e, "Correct the field and create the invitation again.")
                    })?;
                Ok(
                    Notice::ok("Invitation created: copy its link from the list below.")
                        .completing(INVITATION_FORM),
                )
            }
            Action::DeleteInvitation(code) => {
                api::delete_invitation(&self.state, &by, &code)
                    .await
                    .map_err(|e| refused(e, "Reload the page and try again."))?;
                Ok(Notice::ok(
                    "Invitation deleted: its link no longer registers.",
                ))
            }
            Action::SaveGovernance(f) => {
                let body = api::GovernanceBody {
                    registration: Some(f.registration).filter(|r| !r.trim().is_empty()),
                    new_user_balance_usd: usd("New-user balance", &f.new_user_balance_usd)?,
                    inviter_reward_usd: usd("Reward to the inviter", &f.inviter_reward_usd)?,
                    invitee_reward_usd: usd("Reward to the invited user", &f.invitee_reward_usd)?,
                    allow_unpriced_cloud: Some(f.allow_unpriced_cloud),
                    user_invite_max_uses: whole(
                        "Uses of a user's invitation",
                        &f.user_invite_max_uses,
                    )?,
                };
                let g = api::update_governance(&self.state, &by, body)
                    .await
                    .map_err(|e| refused(e, "Correct the field and save again."))?;
                Ok(Notice::ok(format!(
                    "Registration settings saved: registration is {}.",
                    g.registration.as_str().replace('_', " ")
                ))
                .completing(GOVERNANCE_FORM))
            }
            other => Err(Notice::error(
                format!("not an action of the Users page: {other:?}"),
                None,
            )),
        }
    }

    async fn change(
        &self,
        by: &Session,
        id: &str,
        body: api::UserBody,
    ) -> Result<users::User, Notice> {
        api::change_user(&self.state, by, id, body)
            .await
            .map_err(|e| {
                let fix = if e.message.contains("last enabled admin") {
                    "Make another user an admin first, then change this one."
                } else if e.message.contains("no group") {
                    "Create the group under Groups and price ratios first."
                } else {
                    "Correct the amount and try again."
                };
                refused(e, fix)
            })
    }

    /// The codes as CSV in `<data dir>/exports/`, readable only by this user.
    fn export_codes(&self, by: &Session, unused_only: bool) -> Result<Notice, Notice> {
        by.require_admin()
            .map_err(|e| refused(e, "Sign in with an admin account."))?;
        let list = self
            .state
            .store
            .with(|c| redemptions::list(c, unused_only))
            .map_err(store_err)?;
        let stamp = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::system())
            .strftime("%Y%m%d-%H%M%S")
            .to_string();
        let path = self
            .data_dir
            .join(EXPORTS_DIR)
            .join(format!("redemption-codes-{stamp}.csv"));
        let text = redemptions::csv(&list, now_secs()) + "\n";
        gateway_core::secure::write_private(&path, text.as_bytes()).map_err(|e| {
            Notice::error(
                format!("could not write {}: {e}", path.display()),
                Some("Check the data folder's disk space and permissions."),
            )
        })?;
        Ok(Notice::ok(format!(
            "Saved {} code(s) to {}.",
            list.len(),
            path.display()
        )))
    }
}

/// A number as typed (a ratio); empty: none.
fn number(field: &str, text: &str) -> Result<Option<f64>, Notice> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    t.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(Some)
        .ok_or_else(|| {
            Notice::error(
                format!("{field}: '{t}' is not a number"),
                Some("Type a multiplier such as 1, 0.8 or 1.5."),
            )
        })
}
