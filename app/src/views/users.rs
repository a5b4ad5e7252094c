//! Users (admins): accounts (create; enable/disable, role, group, balance per row), groups
//! and their price ratios, and — in `users_access` — redemption codes, invitations and
//! the registration settings. Forms hold what was typed until the action succeeds (a
//! refused form keeps it); changes that take something away ask for a second click.

use dioxus::prelude::*;

use super::form::{FieldMessage, TextInput, field_mark, invalid};

use super::Badge;
use super::data::{
    Action, BalanceHow, GroupForm, GroupRow, NewUserForm, Notice, UserRow, UsersData,
};
use super::users_access::{Codes, Invitations, Registration};

/// Form ids the console's success notices name (see `Notice::completing`).
pub const NEW_USER_FORM: &str = "new-user";
pub const GROUP_FORM: &str = "group";
pub const REDEMPTION_FORM: &str = "redemptions";
pub const INVITATION_FORM: &str = "invitation";
pub const GOVERNANCE_FORM: &str = "governance";

/// The form id of one user's balance field.
pub fn balance_form(user_id: &str) -> String {
    format!("balance:{user_id}")
}

pub use super::form::use_on_success;

#[component]
pub fn UsersPage(
    data: UsersData,
    notice: Option<Notice>,
    on_action: EventHandler<Action>,
) -> Element {
    // One pending confirmation on the page at a time ("disable:<id>", "group:<name>", …).
    let confirm = use_signal(|| None::<String>);
    let groups: Vec<String> = data.groups.iter().map(|g| g.name.clone()).collect();
    rsx! {
        NewUser { groups: groups.clone(), default_balance: data.governance.new_user_balance_usd.clone(), notice: notice.clone(), on_action }
        section { class: "bc-card bc-wide", id: "users",
            h2 { "Users" }
            div { class: "bc-table-wrap",
                table { class: "bc-table", id: "users-table",
                    thead { tr { th { "User" } th { "Role" } th { "Group" } th { "Balance" } th { "Actions" } } }
                    tbody {
                        for u in data.users.clone() {
                            UserLine { key: "{u.id}", user: u, groups: groups.clone(), notice: notice.clone(), confirm, on_action }
                        }
                    }
                }
            }
        }
        Groups { groups: data.groups.clone(), notice: notice.clone(), confirm, on_action }
        Codes { data: data.clone(), notice: notice.clone(), confirm, on_action }
        Invitations { invitations: data.invitations.clone(), notice: notice.clone(), confirm, on_action }
        Registration { saved: data.governance.clone(), notice, on_action }
    }
}

#[component]
fn NewUser(
    groups: Vec<String>,
    default_balance: String,
    notice: Option<Notice>,
    on_action: EventHandler<Action>,
) -> Element {
    let mut f = use_signal(NewUserForm::default);
    // What the last Create sent: its refused field is marked while it holds that.
    let mut sent = use_signal(|| None::<NewUserForm>);
    use_on_success(&notice, NEW_USER_FORM, move || {
        f.set(NewUserForm::default());
        sent.set(None);
    });
    let cur = f();
    let last = sent();
    let mark = |field: &str, get: fn(&NewUserForm) -> &str| {
        field_mark(
            &notice,
            NEW_USER_FORM,
            field,
            last.as_ref().map(get),
            get(&cur),
        )
    };
    let m_name = mark("username", |f| &f.username);
    let m_password = mark("password", |f| &f.password);
    let m_email = mark("email", |f| &f.email);
    let m_role = mark("role", |f| &f.role);
    let m_group = mark("group", |f| &f.group);
    let m_balance = mark("balance_usd", |f| &f.balance_usd);
    let balance_hint = match default_balance.as_str() {
        "" => "empty: the new-user balance".to_string(),
        "-1" => "empty: unlimited (the new-user balance)".to_string(),
        b => format!("empty: ${b} (the new-user balance)"),
    };
    rsx! {
        section { class: "bc-card bc-form bc-wide", id: "new-user",
            h2 { "Add a user" }
            p { class: "bc-caption", "Accounts made here do not need registration to be open. The password follows the registration rules: at least 8 characters of two kinds (letters, digits, symbols)." }
            div { class: "bc-fields",
                label { "Username"
                    TextInput { id: "new-user-name", value: cur.username.clone(), autocomplete: "off", aria_invalid: invalid(&m_name), oninput: move |v: String| f.with_mut(|f| f.username = v) }
                    FieldMessage { message: m_name.clone() }
                }
                label { "Password"
                    TextInput { id: "new-user-password", r#type: "password", value: cur.password.clone(), autocomplete: "new-password", aria_invalid: invalid(&m_password), oninput: move |v: String| f.with_mut(|f| f.password = v) }
                    FieldMessage { message: m_password.clone() }
                }
                label { "Email (optional)"
                    TextInput { r#type: "email", value: cur.email.clone(), aria_invalid: invalid(&m_email), oninput: move |v: String| f.with_mut(|f| f.email = v) }
                    FieldMessage { message: m_email.clone() }
                }
                label { "Role"
                    FieldMessage { message: m_role.clone() }
                    select { onchange: move |e| f.with_mut(|f| f.role = e.value()),
                        option { value: "user", selected: cur.role == "user", "user" }
                        option { value: "admin", selected: cur.role == "admin", "admin" }
                    }
                }
                label { "Group"
                    FieldMessage { message: m_group.clone() }
                    select { onchange: move |e| f.with_mut(|f| f.group = e.value()),
                        for g in groups {
                            option { key: "{g}", value: "{g}", selected: cur.group == g, "{g}" }
                        }
                    }
                }
                label { "Starting balance, USD (-1: unlimited)"
                    TextInput { inputmode: "decimal", value: cur.balance_usd.clone(), placeholder: "{balance_hint}", aria_invalid: invalid(&m_balance), oninput: move |v: String| f.with_mut(|f| f.balance_usd = v) }
                    FieldMessage { message: m_balance.clone() }
                }
            }
            div { class: "bc-toolbar",
                button { class: "bc-button bc-button-primary", id: "create-user", onclick: move |_| { sent.set(Some(f())); on_action.call(Action::CreateUser(f())) }, "Create user" }
            }
        }
    }
}

/// One account: group (changed at once), balance (add, take away, set), role and status
/// (a second click confirms what takes something away).
#[component]
fn UserLine(
    user: UserRow,
    groups: Vec<String>,
    notice: Option<Notice>,
    confirm: Signal<Option<String>>,
    on_action: EventHandler<Action>,
) -> Element {
    let mut amount = use_signal(String::new);
    use_on_success(&notice, &balance_form(&user.id), move || {
        amount.set(String::new())
    });
    let mut confirm = confirm;
    let u = user.clone();
    let id = u.id.clone();
    let asking = |what: &str| confirm() == Some(format!("{what}:{id}"));
    let balance = {
        let id = id.clone();
        move |how: BalanceHow| Action::ChangeBalance {
            id: id.clone(),
            how,
            amount: amount(),
        }
    };
    let (b1, b2, b3) = (balance.clone(), balance.clone(), balance);
    let ask = {
        let id = id.clone();
        move |what: &str| Some(format!("{what}:{id}"))
    };
    let (ask1, ask2, ask3, ask4) = (ask.clone(), ask.clone(), ask.clone(), ask);
    let new_role = if u.role == "admin" { "user" } else { "admin" };
    rsx! {
        tr {
            td {
                div { "{u.name}" if !u.enabled { " " Badge { kind: "danger", text: "disabled".to_string() } } }
                if !u.email.is_empty() { div { class: "bc-caption", "{u.email}" } }
                if !u.invited_by.is_empty() { div { class: "bc-caption", "invited by {u.invited_by}" } }
            }
            td { "{u.role}" }
            td {
                select { "aria-label": "Group of {u.name}",
                    onchange: { let id = id.clone(); move |e: Event<FormData>| on_action.call(Action::SetUserGroup { id: id.clone(), group: e.value() }) },
                    for g in groups {
                        option { key: "{g}", value: "{g}", selected: u.group == g, "{g}" }
                    }
                }
            }
            td {
                div { "{u.balance}" span { class: "bc-caption", " · spent {u.spent}" } }
                div { class: "bc-actions",
                    TextInput { class: "bc-input-amount", inputmode: "decimal", placeholder: "USD", aria_label: "Amount for {u.name}", value: amount(), oninput: move |v: String| amount.set(v) }
                    if asking("take") {
                        button { class: "bc-button bc-button-small bc-button-danger", onclick: move |_| { on_action.call(b2(BalanceHow::Subtract)); confirm.set(None); }, "Take ${amount} from {u.name}?" }
                        button { class: "bc-button bc-button-small", onclick: move |_| confirm.set(None), "Cancel" }
                    } else if asking("set") {
                        button { class: "bc-button bc-button-small bc-button-danger", onclick: move |_| { on_action.call(b3(BalanceHow::Set)); confirm.set(None); }, "Set the balance of {u.name} to {amount}?" }
                        button { class: "bc-button bc-button-small", onclick: move |_| confirm.set(None), "Cancel" }
                    } else {
                        if !u.unlimited {
                            button { class: "bc-button bc-button-small", onclick: move |_| on_action.call(b1(BalanceHow::Add)), "Add" }
                            button { class: "bc-button bc-button-small", onclick: move |_| confirm.set(ask1("take")), "Subtract" }
                        }
                        button { class: "bc-button bc-button-small", title: "Set what is left to spend (-1: unlimited)", onclick: move |_| confirm.set(ask2("set")), "Set" }
                    }
                }
            }
            td { class: "bc-actions",
                if asking("role") {
                    button { class: "bc-button bc-button-small bc-button-danger",
                        onclick: { let id = id.clone(); move |_| { on_action.call(Action::SetUserRole { id: id.clone(), role: new_role.to_string() }); confirm.set(None); } },
                        "Make {u.name} {new_role}?"
                    }
                    button { class: "bc-button bc-button-small", onclick: move |_| confirm.set(None), "Cancel" }
                } else {
                    button { class: "bc-button bc-button-small", onclick: move |_| confirm.set(ask3("role")), if new_role == "admin" { "Make admin" } else { "Make user" } }
                }
                if !u.enabled {
                    button { class: "bc-button bc-button-small", onclick: { let id = id.clone(); move |_| on_action.call(Action::SetUserEnabled { id: id.clone(), enabled: true }) }, "Enable" }
                } else if asking("disable") {
                    button { class: "bc-button bc-button-small bc-button-danger",
                        onclick: { let id = id.clone(); move |_| { on_action.call(Action::SetUserEnabled { id: id.clone(), enabled: false }); confirm.set(None); } },
                        "Disable {u.name}?"
                    }
                    button { class: "bc-button bc-button-small", onclick: move |_| confirm.set(None), "Cancel" }
                } else {
                    button { class: "bc-button bc-button-small", onclick: move |_| confirm.set(ask4("disable")), "Disable" }
                }
            }
        }
    }
}

/// Groups and their price ratios: every cost of a user in the group is multiplied by it.
#[component]
fn Groups(
    groups: Vec<GroupRow>,
    notice: Option<Notice>,
    confirm: Signal<Option<String>>,
    on_action: EventHandler<Action>,
) -> Element {
    let mut f = use_signal(GroupForm::default);
    use_on_success(&notice, GROUP_FORM, move || f.set(GroupForm::default()));
    let mut confirm = confirm;
    let cur = f();
    rsx! {
        section { class: "bc-card bc-form bc-wide", id: "groups",
            h2 { "Groups and price ratios" }
            p { class: "bc-caption", "A group's ratio multiplies every cost of its users (1: list price, 0.8: 20% off). Channels name the groups they serve." }
            div { class: "bc-table-wrap",
                table { class: "bc-table", id: "groups-table",
                    thead { tr { th { "Group" } th { "Ratio" } th { "Description" } th { "Users" } th { "Actions" } } }
                    tbody {
                        for g in groups {
                            tr { key: "{g.name}",
                                td { "{g.name}" }
                                td { "×{g.ratio}" }
                                td { "{g.description}" }
                                td { "{g.users}" }
                                td { class: "bc-actions",
                                    button { class: "bc-button bc-button-small",
                                        onclick: { let g = g.clone(); move |_| f.set(GroupForm { name: g.name.clone(), ratio: g.ratio.clone(), description: g.description.clone() }) },
                                        "Edit"
                                    }
                                    if confirm() == Some(format!("group:{}", g.name)) {
                                        button { class: "bc-button bc-button-small bc-button-danger", onclick: { let n = g.name.clone(); move |_| { on_action.call(Action::DeleteGroup(n.clone())); confirm.set(None); } }, "Delete {g.name}?" }
                                        button { class: "bc-button bc-button-small", onclick: move |_| confirm.set(None), "Cancel" }
                                    } else {
                                        button { class: "bc-button bc-button-small", onclick: { let n = g.name.clone(); move |_| confirm.set(Some(format!("group:{n}"))) }, "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            div { class: "bc-fields bc-fields-inline", id: "group-form",
                label { "Group" TextInput { value: cur.name.clone(), placeholder: "vip", oninput: move |v: String| f.with_mut(|f| f.name = v) } }
                label { "Ratio" TextInput { inputmode: "decimal", value: cur.ratio.clone(), placeholder: "1", oninput: move |v: String| f.with_mut(|f| f.ratio = v) } }
                label { "Description" TextInput { value: cur.description.clone(), oninput: move |v: String| f.with_mut(|f| f.description = v) } }
                button { class: "bc-button bc-button-primary", id: "save-group", onclick: move |_| on_action.call(Action::SaveGroup(f())), "Save group" }
            }
        }
    }
}
