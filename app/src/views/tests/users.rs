//! The Users page against a real temporary database: rendered with real rows, and every
//! action applied through the console layer, checked in the database, with the API's
//! refusals (same gateway-core functions as the console API's handlers).

use gateway_core::auth;
use gateway_core::store::{governance, groups, invitations, now_secs, redemptions, users};

use super::*;
use crate::console::user::UserConsole;
use crate::views::users::{
    GOVERNANCE_FORM, GROUP_FORM, INVITATION_FORM, NEW_USER_FORM, REDEMPTION_FORM, balance_form,
};

async fn act(c: &Console, a: Action) -> Notice {
    c.apply(a).await.expect("a notice")
}

/// A refusal: not ok, the words expected, a fix, and no form emptied.
async fn refused(c: &Console, a: Action, words: &str) -> Notice {
    let n = act(c, a.clone()).await;
    assert!(!n.ok, "{a:?} must be refused: {n:?}");
    assert!(n.text.contains(words), "{a:?}: {n:?} should say {words:?}");
    assert!(n.fix.is_some(), "{a:?}: a fix: {n:?}");
    assert!(n.completed.is_none(), "a refused form keeps what was typed");
    n
}

fn user(c: &Console, name: &str) -> users::User {
    c.state.store.with(|s| users::find(s, name)).unwrap()
}

fn user_count(c: &Console) -> usize {
    c.state.store.with(|s| users::list(s)).unwrap().len()
}

fn new_user(name: &str, password: &str, group: &str, balance: &str) -> NewUserForm {
    NewUserForm {
        username: name.into(),
        password: password.into(),
        group: group.into(),
        balance_usd: balance.into(),
        ..Default::default()
    }
}

fn balance(id: &str, how: BalanceHow, amount: &str) -> Action {
    Action::ChangeBalance {
        id: id.into(),
        how,
        amount: amount.into(),
    }
}

const USD: i64 = 1_000_000_000;

#[tokio::test]
async fn users_page_creates_and_changes_accounts_with_the_apis_rules() {
    let t = console().await;
    first_run::ensure(&t.console.state).unwrap();
    let c = &t.console;
    let html = page(c, Page::Users);
    assert!(
        html.contains("id=\"users-table\"") && html.contains(">admin<"),
        "{html}"
    );
    assert!(
        html.contains("unlimited"),
        "the first admin's balance: {html}"
    );
    assert!(
        html.contains("×1") && html.contains(">vip<"),
        "the groups: {html}"
    );

    // Create: the account exists with the password, group and balance typed.
    let n = act(
        c,
        Action::CreateUser(new_user("carol", "Carol-pass-1", "vip", "5")),
    )
    .await;
    assert!(n.ok && n.completes(NEW_USER_FORM), "{n:?}");
    let carol = user(c, "carol");
    assert_eq!(
        (carol.role, carol.group.as_str(), carol.quota_nano),
        (users::Role::User, "vip", 5 * USD)
    );
    let (_, hash) = c
        .state
        .store
        .with(|s| users::find_with_hash(s, "carol"))
        .unwrap()
        .unwrap();
    assert!(auth::verify_password("Carol-pass-1", &hash));
    let html = page(c, Page::Users);
    assert!(html.contains(">carol<") && html.contains("$5.00"), "{html}");

    // Refused as the API refuses, nothing created, the form not emptied; the message is
    // marked on the field it is about (shown under it).
    for (form, words, field) in [
        (
            new_user("carol", "Carol-pass-1", "default", ""),
            "username 'carol' is already taken",
            "username",
        ),
        (
            new_user("erin", "short", "default", ""),
            "password must be at least 8 characters",
            "password",
        ),
        (
            new_user("erin", "Erin-pass-1", "gold", ""),
            "no group 'gold'",
            "group",
        ),
        (
            new_user("erin", "Erin-pass-1", "default", "-5"),
            "balance_usd must be -1 (unlimited) or 0 and more",
            "balance_usd",
        ),
        (
            new_user("erin", "Erin-pass-1", "default", "lots"),
            "Starting balance: 'lots' is not a number",
            "balance_usd",
        ),
        (
            new_user("no spaces", "Erin-pass-1", "default", ""),
            "username must be",
            "username",
        ),
    ] {
        let n = refused(c, Action::CreateUser(form), words).await;
        let mark = n.field_error(crate::views::users::NEW_USER_FORM, field);
        assert!(
            mark.is_some_and(|m| m.contains(words)),
            "{words:?} marked on {field}: {n:?}"
        );
    }
    assert_eq!(user_count(c), 2);

    // Disable and enable.
    let n = act(
        c,
        Action::SetUserEnabled {
            id: carol.id.clone(),
            enabled: false,
        },
    )
    .await;
    assert!(n.ok, "{n:?}");
    assert_eq!(user(c, "carol").status, 2);
    assert!(page(c, Page::Users).contains(">disabled<"));
    act(
        c,
        Action::SetUserEnabled {
            id: carol.id.clone(),
            enabled: true,
        },
    )
    .await;
    assert_eq!(user(c, "carol").status, 1);

    // The last enabled admin can be neither demoted nor disabled.
    let admin = user(c, first_run::ADMIN_NAME);
    let n = refused(
        c,
        Action::SetUserRole {
            id: admin.id.clone(),
            role: "user".into(),
        },
        "'admin' is the last enabled admin: make another admin first",
    )
    .await;
    assert!(
        n.fix.as_deref().unwrap().contains("another user an admin"),
        "{n:?}"
    );
    refused(
        c,
        Action::SetUserEnabled {
            id: admin.id.clone(),
            enabled: false,
        },
        "last enabled admin",
    )
    .await;
    let admin_now = user(c, first_run::ADMIN_NAME);
    assert_eq!((admin_now.role, admin_now.status), (users::Role::Admin, 1));
    // Role: carol becomes an admin, then a user again.
    for (role, expect) in [("admin", users::Role::Admin), ("user", users::Role::User)] {
        let n = act(
            c,
            Action::SetUserRole {
                id: carol.id.clone(),
                role: role.into(),
            },
        )
        .await;
        assert!(n.ok, "{n:?}");
        assert_eq!(user(c, "carol").role, expect);
    }
    refused(
        c,
        Action::SetUserRole {
            id: carol.id.clone(),
            role: "root".into(),
        },
        "role must be admin or user",
    )
    .await;

    // Group: an unknown one is refused with where to create it.
    let n = refused(
        c,
        Action::SetUserGroup {
            id: carol.id.clone(),
            group: "gold".into(),
        },
        "no group 'gold'",
    )
    .await;
    assert!(
        n.fix
            .as_deref()
            .unwrap()
            .contains("Groups and price ratios"),
        "{n:?}"
    );
    assert!(
        act(
            c,
            Action::SetUserGroup {
                id: carol.id.clone(),
                group: "default".into(),
            },
        )
        .await
        .ok
    );
    assert_eq!(user(c, "carol").group, "default");

    // Balance: add, subtract, never below 0, set, unlimited.
    let n = act(c, balance(&carol.id, BalanceHow::Add, "2.5")).await;
    assert!(n.ok && n.completes(&balance_form(&carol.id)), "{n:?}");
    assert!(n.text.contains("$7.50 left"), "{n:?}");
    assert_eq!(user(c, "carol").quota_nano, 7_500_000_000);
    refused(
        c,
        balance(&carol.id, BalanceHow::Subtract, "10"),
        "the balance of 'carol' would drop below 0",
    )
    .await;
    assert!(
        act(c, balance(&carol.id, BalanceHow::Subtract, "$1"))
            .await
            .ok
    );
    assert_eq!(user(c, "carol").quota_nano, 6_500_000_000);
    refused(c, balance(&carol.id, BalanceHow::Add, "-3"), "negative").await;
    refused(c, balance(&carol.id, BalanceHow::Add, ""), "how much").await;
    refused(
        c,
        balance(&carol.id, BalanceHow::Set, "-5"),
        "balance_usd must be -1 (unlimited) or 0 and more",
    )
    .await;
    assert_eq!(user(c, "carol").quota_nano, 6_500_000_000);
    assert!(act(c, balance(&carol.id, BalanceHow::Set, "3")).await.ok);
    assert_eq!(user(c, "carol").quota_nano, 3 * USD);
    assert!(act(c, balance(&carol.id, BalanceHow::Set, "-1")).await.ok);
    assert_eq!(user(c, "carol").quota_nano, -1);
    refused(
        c,
        balance(&carol.id, BalanceHow::Add, "1"),
        "has an unlimited balance",
    )
    .await;
    assert!(page(c, Page::Users).contains("Make admin"));
}

#[tokio::test]
async fn users_page_saves_groups_and_their_ratios() {
    let t = console().await;
    first_run::ensure(&t.console.state).unwrap();
    let c = &t.console;
    let gold = |ratio: &str| {
        Action::SaveGroup(GroupForm {
            name: "gold".into(),
            ratio: ratio.into(),
            description: "paying customers".into(),
        })
    };
    let n1 = act(c, gold("1.5")).await;
    assert!(n1.ok && n1.completes(GROUP_FORM), "{n1:?}");
    let g = c
        .state
        .store
        .with(|s| groups::get(s, "gold"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (g.ratio_micro, g.description.as_str()),
        (1_500_000, "paying customers")
    );
    // The same save twice: two successes, each empties the form.
    let n2 = act(c, gold("1.5")).await;
    assert!(n2.completes(GROUP_FORM) && n2.completed != n1.completed);
    let html = page(c, Page::Users);
    assert!(
        html.contains("×1.5") && html.contains("paying customers"),
        "{html}"
    );
    refused(c, gold(""), "missing field: ratio").await;
    refused(c, gold("-1"), "ratio '-1' must not be negative").await;
    refused(c, gold("cheap"), "Ratio: 'cheap' is not a number").await;
    refused(
        c,
        Action::SaveGroup(GroupForm {
            name: "bad name!".into(),
            ratio: "1".into(),
            ..Default::default()
        }),
        "group name must be",
    )
    .await;
    assert_eq!(
        c.state
            .store
            .with(|s| groups::get(s, "gold"))
            .unwrap()
            .unwrap()
            .ratio_micro,
        1_500_000
    );
    // A group with users, and `default`, are not deleted.
    act(
        c,
        Action::CreateUser(new_user("dave", "Dave-pass-1", "gold", "")),
    )
    .await;
    refused(
        c,
        Action::DeleteGroup("gold".into()),
        "group 'gold' still has 1 user(s)",
    )
    .await;
    refused(
        c,
        Action::DeleteGroup("default".into()),
        "the default group cannot be deleted",
    )
    .await;
    let dave = user(c, "dave");
    act(
        c,
        Action::SetUserGroup {
            id: dave.id,
            group: "default".into(),
        },
    )
    .await;
    assert!(act(c, Action::DeleteGroup("gold".into())).await.ok);
    assert!(
        c.state
            .store
            .with(|s| groups::get(s, "gold"))
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn users_page_creates_revokes_and_exports_redemption_codes() {
    let t = console().await;
    first_run::ensure(&t.console.state).unwrap();
    let c = &t.console;
    assert!(page(c, Page::Users).contains("No redemption codes."));
    let batch = |name: &str, amount: &str, count: &str, days: &str| {
        Action::CreateRedemptions(RedemptionForm {
            name: name.into(),
            amount_usd: amount.into(),
            count: count.into(),
            expires_days: days.into(),
        })
    };
    let n = act(c, batch("launch", "2", "3", "30")).await;
    assert!(n.ok && n.completes(REDEMPTION_FORM), "{n:?}");
    let list = c.state.store.with(|s| redemptions::list(s, false)).unwrap();
    assert_eq!(list.len(), 3);
    assert!(list.iter().all(|r| r.amount_nano == 2 * USD
        && r.name == "launch"
        && (r.expires_at - now_secs() - 30 * 86_400).abs() < 60));
    let admin = user(c, first_run::ADMIN_NAME);
    assert_eq!(list[0].created_by.as_deref(), Some(admin.id.as_str()));
    for (action, words) in [
        (batch("x", "-1", "1", ""), "amount_usd must be more than 0"),
        (batch("x", "", "1", ""), "missing field: amount_usd"),
        (batch("", "1", "1", ""), "missing field: name"),
        (batch("x", "1", "0", ""), "count must be 1 to 1000"),
        (
            batch("x", "1", "many", ""),
            "How many: 'many' is not a whole number",
        ),
        (
            batch("x", "1", "1", "0"),
            "Expires in days: 0 is not in the future",
        ),
    ] {
        refused(c, action, words).await;
    }
    assert_eq!(
        c.state
            .store
            .with(|s| redemptions::list(s, false))
            .unwrap()
            .len(),
        3
    );
    // One is redeemed by a user, one revoked: the page says which is which.
    act(
        c,
        Action::CreateUser(new_user("carol", "Carol-pass-1", "default", "0")),
    )
    .await;
    let carol = user(c, "carol");
    c.state
        .store
        .with(|s| redemptions::redeem(s, &carol.id, &list[0].code))
        .unwrap();
    let n = act(c, Action::DeleteRedemption(list[1].id)).await;
    assert!(n.ok, "{n:?}");
    let data = load(c).users;
    assert_eq!(data.codes.len(), 2);
    assert_eq!(
        (
            data.codes[0].state.as_str(),
            data.codes[0].redeemed_by.as_str()
        ),
        ("used", "carol")
    );
    let html = page(c, Page::Users);
    assert!(
        html.contains(&list[0].code) && html.contains(&list[2].code),
        "{html}"
    );
    assert!(!html.contains(&list[1].code), "revoked");
    assert!(
        html.contains(">used<") && html.contains(">unused<"),
        "{html}"
    );
    refused(c, Action::DeleteRedemption(list[1].id), "not found").await;
    // CSV for Copy: the export format of the CLI, all codes or only redeemable ones.
    let all: Vec<&str> = data.codes_csv.lines().collect();
    assert_eq!(all[0], redemptions::CSV_HEADER);
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(
        all[1].starts_with(&format!("{},launch,2.00,used,", list[0].code))
            && all[1].ends_with(&carol.id),
        "{all:?}"
    );
    let unused: Vec<&str> = data.unused_codes_csv.lines().collect();
    assert_eq!(unused.len(), 2, "{unused:?}");
    assert!(unused[1].starts_with(&format!("{},launch,2.00,unused,", list[2].code)));
    // Save as a file: in the data folder's exports/, readable only by this user.
    let n = act(c, Action::ExportRedemptions { unused_only: true }).await;
    assert!(n.ok && n.text.contains("Saved 1 code(s)"), "{n:?}");
    let dir = t.dir.path().join("exports");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .expect("an export file")
        .unwrap()
        .path();
    assert!(n.text.contains(&file.display().to_string()), "{n:?}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("{}\n", data.unused_codes_csv)
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[tokio::test]
async fn users_page_lists_creates_and_deletes_invitations_and_saves_registration() {
    let t = console().await;
    first_run::ensure(&t.console.state).unwrap();
    let c = &t.console;
    // Invitations: the admin's own, with uses and expiry, even while registration is closed.
    let n = act(
        c,
        Action::Invite(InvitationForm {
            max_uses: "0".into(),
            expires_days: "7".into(),
        }),
    )
    .await;
    assert!(n.ok && n.completes(INVITATION_FORM), "{n:?}");
    let inv = c.state.store.with(|s| invitations::list(s, None)).unwrap();
    assert_eq!(inv.len(), 1);
    assert_eq!(inv[0].max_uses, 0);
    assert!((inv[0].expires_at - now_secs() - 7 * 86_400).abs() < 60);
    refused(
        c,
        Action::Invite(InvitationForm {
            max_uses: "-1".into(),
            expires_days: String::new(),
        }),
        "max_uses must be 0 (unlimited) or more",
    )
    .await;
    // Everyone's invitations are listed, with who made them, and the admin deletes any.
    act(
        c,
        Action::CreateUser(new_user("carol", "Carol-pass-1", "default", "")),
    )
    .await;
    let carol = user(c, "carol");
    let hers = c
        .state
        .store
        .with(|s| invitations::create(s, &carol.id, 1, -1))
        .unwrap();
    let data = load(c).users;
    assert_eq!(data.invitations.len(), 2);
    let row = data
        .invitations
        .iter()
        .find(|i| i.code == inv[0].code)
        .unwrap();
    assert_eq!(
        row.link,
        format!("http://127.0.0.1:3000/register?invite_code={}", inv[0].code)
    );
    assert_eq!(
        (row.inviter.as_str(), row.uses.as_str()),
        ("admin", "0 of unlimited")
    );
    let html = page(c, Page::Users);
    assert!(
        html.contains(&row.link) && html.contains(">carol<"),
        "{html}"
    );
    let n = act(c, Action::DeleteInvitation(hers.code.clone())).await;
    assert!(n.ok, "{n:?}");
    assert_eq!(
        c.state
            .store
            .with(|s| invitations::list(s, None))
            .unwrap()
            .len(),
        1
    );
    refused(c, Action::DeleteInvitation(hers.code), "not found").await;

    // Registration settings: saved, then the API's refusals.
    let mut g = load(c).users.governance;
    assert_eq!(g.registration, "closed");
    g.registration = "invite_only".into();
    g.new_user_balance_usd = "1".into();
    g.inviter_reward_usd = "0.5".into();
    g.invitee_reward_usd = "0.25".into();
    g.user_invite_max_uses = "3".into();
    g.allow_unpriced_cloud = true;
    let n = act(c, Action::SaveGovernance(g.clone())).await;
    assert!(n.ok && n.completes(GOVERNANCE_FORM), "{n:?}");
    let saved = c.state.store.with(|s| governance::load(s)).unwrap();
    assert_eq!(
        saved,
        governance::Governance {
            registration: governance::Registration::InviteOnly,
            new_user_balance_nano: USD,
            inviter_reward_nano: USD / 2,
            invitee_reward_nano: USD / 4,
            allow_unpriced_cloud: true,
            user_invite_max_uses: 3,
        }
    );
    assert!(
        gateway_core::console::routing::allow_unpriced_cloud(&c.state),
        "the data plane sees it"
    );
    let shown = load(c).users.governance;
    assert_eq!(
        (
            shown.registration.as_str(),
            shown.new_user_balance_usd.as_str(),
            shown.inviter_reward_usd.as_str()
        ),
        ("invite_only", "1.00", "0.50")
    );
    assert!(page(c, Page::Users).contains("value=\"invite_only\" selected"));
    // An account made without a balance gets the new-user balance just saved.
    act(
        c,
        Action::CreateUser(new_user("dave", "Dave-pass-1", "default", "")),
    )
    .await;
    assert_eq!(user(c, "dave").quota_nano, USD);
    for (change, words) in [
        (
            GovernanceForm {
                registration: "maybe".into(),
                ..g.clone()
            },
            "registration must be open, invite_only or closed, not 'maybe'",
        ),
        (
            GovernanceForm {
                inviter_reward_usd: "-1".into(),
                ..g.clone()
            },
            "inviter_reward_usd: '-1' must not be negative",
        ),
        (
            GovernanceForm {
                user_invite_max_uses: "0".into(),
                ..g.clone()
            },
            "user_invite_max_uses must be 1 or more",
        ),
        (
            GovernanceForm {
                new_user_balance_usd: "-2".into(),
                ..g.clone()
            },
            "must not be negative",
        ),
    ] {
        refused(c, Action::SaveGovernance(change), words).await;
    }
    assert_eq!(c.state.store.with(|s| governance::load(s)).unwrap(), saved);
    // -1: newcomers are unlimited.
    g.new_user_balance_usd = "-1".into();
    assert!(act(c, Action::SaveGovernance(g)).await.ok);
    assert_eq!(load(c).users.governance.new_user_balance_usd, "-1");
}

#[tokio::test]
async fn users_page_changes_need_an_enabled_admin() {
    let t = console().await;
    first_run::ensure(&t.console.state).unwrap();
    let c = &t.console;
    act(
        c,
        Action::CreateUser(NewUserForm {
            role: "admin".into(),
            ..new_user("boss", "Boss-pass-1", "default", "")
        }),
    )
    .await;
    act(
        c,
        Action::CreateUser(new_user("carol", "Carol-pass-1", "default", "")),
    )
    .await;
    let boss = user(c, "boss");
    assert_eq!(boss.role, users::Role::Admin);
    // boss in the web console; demoted meanwhile by the desktop's admin: refused at the
    // next change, as the API refuses a demoted admin's next request.
    let mut web = c.clone();
    web.acting = Some(boss.id.clone());
    assert!(
        act(
            &web,
            Action::SaveGroup(GroupForm {
                name: "gold".into(),
                ratio: "2".into(),
                ..Default::default()
            })
        )
        .await
        .ok
    );
    act(
        c,
        Action::SetUserRole {
            id: boss.id.clone(),
            role: "user".into(),
        },
    )
    .await;
    let n = act(
        &web,
        Action::CreateUser(new_user("erin", "Erin-pass-1", "default", "")),
    )
    .await;
    assert!(
        !n.ok && n.text == "permission denied: this needs an admin account",
        "{n:?}"
    );
    assert!(users_named(c, "erin").is_none());
    // A plain user's console refuses the page's actions whatever the page sends.
    let carol = user(c, "carol");
    let mine = UserConsole::new(c.state.clone(), carol.id.clone(), "127.0.0.1:3000");
    for a in [
        Action::CreateUser(new_user("erin", "Erin-pass-1", "default", "")),
        Action::SetUserRole {
            id: carol.id.clone(),
            role: "admin".into(),
        },
        balance(&carol.id, BalanceHow::Set, "-1"),
        Action::ExportRedemptions { unused_only: false },
    ] {
        let n = mine.apply(a.clone()).await.unwrap();
        assert!(!n.ok && n.text.contains("admin"), "{a:?}: {n:?}");
    }
    let carol = user(c, "carol");
    assert_eq!((carol.role, carol.quota_nano), (users::Role::User, 0));
    assert!(users_named(c, "erin").is_none());
}

fn users_named(c: &Console, name: &str) -> Option<users::User> {
    c.state
        .store
        .with(|s| users::list(s))
        .unwrap()
        .into_iter()
        .find(|u| u.username == name)
}

#[test]
fn the_navigation_has_the_users_page_on_alt_9() {
    let html = render_page(
        info(GatewayState::Running),
        ConsoleData::default(),
        Page::Users,
        None,
    );
    assert_eq!(Page::ALL[8], Page::Users);
    assert!(html.contains("title=\"Users (Alt+9)\""), "{html}");
    assert!(html.contains("<h1 class=\"bc-title\">Users</h1>"), "{html}");
    for id in [
        "new-user",
        "users-table",
        "groups",
        "codes",
        "invitations",
        "registration",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}: {html}");
    }
}
