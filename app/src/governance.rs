//! `burncloud user|group|redemption|invite ...`: governance on the same database as the
//! gateway (a running gateway picks changes up within a second through `config_rev`).
//! Rules live in `gateway-core`'s store; this module parses flags and prints.

use std::process::ExitCode;

use gateway_core::Config;
use gateway_core::money::{format_usd, parse_signed_usd, parse_usd};
use gateway_core::store::governance::{self, Governance, GovernanceChange, Registration};
use gateway_core::store::users::{self, BalanceChange, Role, User, UserChange};
use gateway_core::store::{Store, groups, invitations, now_secs, redemptions};
use gateway_core::tariff::{format_ratio, parse_ratio};

use crate::cli::{
    AdminCommand, GroupCommand, InviteCommand, RedemptionCommand, UserCommand, UserSet,
};

/// A governance command.
pub enum Cmd {
    User(UserCommand),
    Group(GroupCommand),
    Redemption(RedemptionCommand),
    Invite(InviteCommand),
    Admin(AdminCommand),
}

/// Run a command; results on stdout, errors on stderr.
pub fn run(config: &Config, cmd: Cmd) -> ExitCode {
    let result = Store::connect(&config.database)
        .map_err(|e| e.to_string())
        .and_then(|store| match cmd {
            Cmd::User(c) => user(&store, c),
            Cmd::Group(c) => group(&store, c),
            Cmd::Redemption(c) => redemption(&store, c),
            Cmd::Invite(c) => invite(&store, c),
            Cmd::Admin(c) => admin(&store, c),
        });
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn admin(store: &Store, cmd: AdminCommand) -> Result<String, String> {
    let AdminCommand::ResetPassword {
        user,
        password_stdin,
    } = cmd;
    let u = store
        .with(|c| users::find(c, &user))
        .map_err(|e| e.to_string())?;
    let (password, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
        (line.trim_end_matches(['\r', '\n']).to_string(), false)
    } else {
        (
            format!(
                "{}-{}",
                gateway_core::auth::random_alnum(12),
                gateway_core::auth::random_alnum(8)
            ),
            true,
        )
    };
    if let Some(why) = gateway_core::auth::password_weakness(&password, &u.username) {
        return Err(why.to_string());
    }
    let hash = gateway_core::auth::hash_password(&password).map_err(|e| e.to_string())?;
    store
        .with(|c| users::set_password(c, &u.id, &hash))
        .map_err(|e| e.to_string())?;
    Ok(if generated {
        format!(
            "New password for {}: {password}\n(older login tokens no longer work)",
            u.username
        )
    } else {
        format!(
            "Password of {} changed (older login tokens no longer work)",
            u.username
        )
    })
}

fn balance_text(u: &User) -> String {
    match u.balance_nano() {
        None => "unlimited".into(),
        Some(b) => format!("${}", format_usd(b)),
    }
}

fn status_text(s: i64) -> &'static str {
    if s == 1 { "enabled" } else { "disabled" }
}

fn describe(u: &User) -> String {
    format!(
        "{}: role {}, group {}, {}, balance {} (spent ${})",
        u.username,
        u.role.as_str(),
        u.group,
        status_text(u.status),
        balance_text(u),
        format_usd(u.used_quota_nano)
    )
}

fn usd_or_unlimited(flag: &str, v: &str) -> Result<Option<i64>, String> {
    match v.trim() {
        "-1" | "unlimited" => Ok(None),
        t => parse_usd(t).map(Some).map_err(|e| format!("--{flag}: {e}")),
    }
}

fn settings_text(g: &Governance) -> String {
    let newbie = if g.new_user_balance_nano < 0 {
        "unlimited".to_string()
    } else {
        format!("${}", format_usd(g.new_user_balance_nano))
    };
    format!(
        "registration: {}\nnew user balance: {newbie}\ninviter reward: ${}\ninvitee reward: ${}\nunpriced cloud models for users: {}\nuses per user invitation: {}",
        g.registration.as_str(),
        format_usd(g.inviter_reward_nano),
        format_usd(g.invitee_reward_nano),
        if g.allow_unpriced_cloud {
            "allowed"
        } else {
            "refused (402)"
        },
        g.user_invite_max_uses
    )
}

fn user(store: &Store, cmd: UserCommand) -> Result<String, String> {
    let e = |e: gateway_core::store::StoreError| e.to_string();
    match cmd {
        UserCommand::List => {
            let list = store.with(|c| users::list(c)).map_err(e)?;
            if list.is_empty() {
                return Ok("No users yet: the first one registered becomes the admin.".into());
            }
            let w = list
                .iter()
                .map(|u| u.username.len())
                .max()
                .unwrap_or(4)
                .max(4);
            let mut out = format!(
                "{:<w$}  {:<5}  {:<10}  {:<8}  {:>12}  ID",
                "USER", "ROLE", "GROUP", "STATUS", "BALANCE"
            );
            for u in &list {
                out.push_str(&format!(
                    "\n{:<w$}  {:<5}  {:<10}  {:<8}  {:>12}  {}",
                    u.username,
                    u.role.as_str(),
                    u.group,
                    status_text(u.status),
                    balance_text(u),
                    u.id
                ));
            }
            Ok(out)
        }
        UserCommand::Show { user } => {
            let u = store.with(|c| users::find(c, &user)).map_err(e)?;
            Ok(format!("{}\nid: {}", describe(&u), u.id))
        }
        UserCommand::Set(UserSet {
            user,
            role,
            status,
            group,
            balance,
            add_balance,
        }) => {
            let balance = match (balance, add_balance) {
                (Some(b), _) => Some(match usd_or_unlimited("balance", &b)? {
                    None => BalanceChange::Unlimited,
                    Some(n) => BalanceChange::Set(n),
                }),
                (None, Some(d)) => Some(BalanceChange::Adjust(
                    parse_signed_usd(&d).map_err(|e| format!("--add-balance: {e}"))?,
                )),
                (None, None) => None,
            };
            let status = status
                .map(|s| match s.trim() {
                    "enabled" | "1" => Ok(1),
                    "disabled" | "2" => Ok(2),
                    other => Err(format!(
                        "--status must be enabled or disabled, not '{other}'"
                    )),
                })
                .transpose()?;
            let change = UserChange {
                role: role
                    .as_deref()
                    .map(Role::from_name)
                    .transpose()
                    .map_err(e)?,
                status,
                group,
                balance,
            };
            if change.role.is_none()
                && change.status.is_none()
                && change.group.is_none()
                && change.balance.is_none()
            {
                return Err(
                    "nothing to change: give --role, --status, --group, --balance or --add-balance"
                        .into(),
                );
            }
            let u = store
                .with(|c| {
                    let id = users::find(c, &user)?.id;
                    users::update(c, &id, change)
                })
                .map_err(e)?;
            Ok(format!("Updated {}", describe(&u)))
        }
        UserCommand::Settings(s) => {
            let nano = |flag: &str, v: Option<String>| -> Result<Option<i64>, String> {
                v.map(|v| parse_usd(&v).map_err(|e| format!("--{flag}: {e}")))
                    .transpose()
            };
            let change = GovernanceChange {
                registration: s
                    .registration
                    .as_deref()
                    .map(Registration::parse)
                    .transpose()
                    .map_err(e)?,
                new_user_balance_nano: s
                    .new_user_balance
                    .as_deref()
                    .map(|v| usd_or_unlimited("new-user-balance", v).map(|b| b.unwrap_or(-1)))
                    .transpose()?,
                inviter_reward_nano: nano("inviter-reward", s.inviter_reward)?,
                invitee_reward_nano: nano("invitee-reward", s.invitee_reward)?,
                allow_unpriced_cloud: s
                    .allow_unpriced_cloud
                    .as_deref()
                    .map(|v| match v {
                        "on" | "true" | "yes" => Ok(true),
                        "off" | "false" | "no" => Ok(false),
                        other => Err(format!(
                            "--allow-unpriced-cloud: say on or off, not '{other}'"
                        )),
                    })
                    .transpose()?,
                user_invite_max_uses: s.user_invite_max_uses,
            };
            let unchanged = change.allow_unpriced_cloud.is_none()
                && change.user_invite_max_uses.is_none()
                && change.registration.is_none()
                && change.new_user_balance_nano.is_none()
                && change.inviter_reward_nano.is_none()
                && change.invitee_reward_nano.is_none();
            let g = if unchanged {
                store.with(|c| governance::load(c)).map_err(e)?
            } else {
                store.with(|c| governance::update(c, change)).map_err(e)?
            };
            Ok(settings_text(&g))
        }
    }
}

fn group(store: &Store, cmd: GroupCommand) -> Result<String, String> {
    let e = |e: gateway_core::store::StoreError| e.to_string();
    match cmd {
        GroupCommand::List => {
            let list = store.with(|c| groups::list(c)).map_err(e)?;
            let w = list.iter().map(|g| g.name.len()).max().unwrap_or(5).max(5);
            let mut out = format!(
                "{:<w$}  {:>8}  {:>5}  DESCRIPTION",
                "GROUP", "RATIO", "USERS"
            );
            for g in &list {
                out.push_str(&format!(
                    "\n{:<w$}  {:>8}  {:>5}  {}",
                    g.name,
                    format_ratio(g.ratio_micro),
                    g.users,
                    g.description
                ));
            }
            Ok(out)
        }
        GroupCommand::Set {
            name,
            ratio,
            description,
        } => {
            let ratio = parse_ratio(&ratio).map_err(|e| format!("--ratio: {e}"))?;
            let g = store
                .with(|c| groups::set(c, &name, ratio, description.as_deref()))
                .map_err(e)?;
            Ok(format!(
                "Set group {}: ratio {}",
                g.name,
                format_ratio(g.ratio_micro)
            ))
        }
        GroupCommand::Delete { name } => {
            store.with(|c| groups::delete(c, &name)).map_err(e)?;
            Ok(format!("Deleted group {name}"))
        }
    }
}

fn redemption(store: &Store, cmd: RedemptionCommand) -> Result<String, String> {
    let e = |e: gateway_core::store::StoreError| e.to_string();
    match cmd {
        RedemptionCommand::Create {
            amount,
            count,
            name,
            expires_at,
        } => {
            let amount = parse_usd(&amount).map_err(|e| format!("--amount: {e}"))?;
            let batch = store
                .with(|c| {
                    redemptions::create_batch(
                        c,
                        &name,
                        amount,
                        count,
                        expires_at.unwrap_or(-1),
                        None,
                    )
                })
                .map_err(e)?;
            Ok(batch
                .iter()
                .map(|r| r.code.as_str())
                .collect::<Vec<_>>()
                .join("\n"))
        }
        RedemptionCommand::List { unused, csv } => {
            let list = store.with(|c| redemptions::list(c, unused)).map_err(e)?;
            let now = now_secs();
            if csv {
                return Ok(redemptions::csv(&list, now));
            }
            if list.is_empty() {
                return Ok("No redemption codes.".into());
            }
            let mut out = format!(
                "{:>5}  {:<32}  {:>10}  {:<7}  NAME",
                "ID", "CODE", "AMOUNT", "STATE"
            );
            for r in &list {
                out.push_str(&format!(
                    "\n{:>5}  {:<32}  {:>10}  {:<7}  {}",
                    r.id,
                    r.code,
                    format!("${}", format_usd(r.amount_nano)),
                    r.state(now),
                    r.name
                ));
            }
            Ok(out)
        }
        RedemptionCommand::Delete { id } => {
            store.with(|c| redemptions::delete(c, id)).map_err(e)?;
            Ok(format!("Deleted redemption code {id}"))
        }
    }
}

fn invite(store: &Store, cmd: InviteCommand) -> Result<String, String> {
    let e = |e: gateway_core::store::StoreError| e.to_string();
    match cmd {
        InviteCommand::Create {
            user,
            max_uses,
            expires_at,
        } => {
            let inv = store
                .with(|c| {
                    let inviter = match &user {
                        Some(u) => users::find(c, u)?,
                        None => users::list(c)?
                            .into_iter()
                            .find(|u| u.role == Role::Admin)
                            .ok_or_else(|| {
                                gateway_core::store::StoreError::NotFound(
                                    "no admin yet: register the first account, or pass --user"
                                        .into(),
                                )
                            })?,
                    };
                    invitations::create(c, &inviter.id, max_uses, expires_at.unwrap_or(-1))
                })
                .map_err(e)?;
            Ok(inv.code)
        }
        InviteCommand::List => {
            let list = store.with(|c| invitations::list(c, None)).map_err(e)?;
            if list.is_empty() {
                return Ok("No invitation codes.".into());
            }
            let mut out = format!("{:<16}  {:>9}  {:<36}", "CODE", "USES", "INVITER");
            for i in &list {
                let uses = if i.max_uses == 0 {
                    format!("{}/∞", i.uses)
                } else {
                    format!("{}/{}", i.uses, i.max_uses)
                };
                out.push_str(&format!("\n{:<16}  {:>9}  {}", i.code, uses, i.inviter_id));
            }
            Ok(out)
        }
    }
}
