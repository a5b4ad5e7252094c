//! The Users page's ways in: redemption codes (create a batch, revoke, export CSV),
//! invitations (create with uses and expiry, copy the link, delete) and the registration
//! settings (mode, new-user balance, invitation rewards).

use dioxus::prelude::*;

use super::form::TextInput;

use super::Badge;
use super::data::{
    Action, GovernanceForm, InvitationForm, InvitationRow, Notice, RedemptionForm, UsersData,
};
use super::users::{GOVERNANCE_FORM, INVITATION_FORM, REDEMPTION_FORM, use_on_success};

#[component]
pub fn Codes(
    data: UsersData,
    notice: Option<Notice>,
    confirm: Signal<Option<String>>,
    on_action: EventHandler<Action>,
) -> Element {
    let mut f = use_signal(RedemptionForm::default);
    use_on_success(&notice, REDEMPTION_FORM, move || {
        f.set(RedemptionForm::default())
    });
    let mut unused_only = use_signal(|| false);
    let mut confirm = confirm;
    let cur = f();
    let csv = if unused_only() {
        data.unused_codes_csv.clone()
    } else {
        data.codes_csv.clone()
    };
    let shown: Vec<_> = data
        .codes
        .iter()
        .filter(|c| !unused_only() || c.state == "unused")
        .cloned()
        .collect();
    rsx! {
        section { class: "bc-card bc-form bc-wide", id: "codes",
            h2 { "Redemption codes" }
            p { class: "bc-caption", "A code credits its amount to the balance of the first user who redeems it (web console: Balance & invitations)." }
            div { class: "bc-fields bc-fields-inline", id: "redemption-form",
                label { "Name" TextInput { value: cur.name.clone(), placeholder: "launch", oninput: move |v: String| f.with_mut(|f| f.name = v) } }
                label { "Amount, USD" TextInput { inputmode: "decimal", value: cur.amount_usd.clone(), oninput: move |v: String| f.with_mut(|f| f.amount_usd = v) } }
                label { "How many" TextInput { r#type: "number", min: "1", value: cur.count.clone(), oninput: move |v: String| f.with_mut(|f| f.count = v) } }
                label { "Expires in days (empty: never)" TextInput { r#type: "number", min: "1", value: cur.expires_days.clone(), oninput: move |v: String| f.with_mut(|f| f.expires_days = v) } }
                button { class: "bc-button bc-button-primary", id: "create-codes", onclick: move |_| on_action.call(Action::CreateRedemptions(f())), "Create codes" }
            }
            div { class: "bc-toolbar", id: "codes-export",
                label { class: "bc-check",
                    input { r#type: "checkbox", checked: unused_only(), onchange: move |e| unused_only.set(e.checked()) }
                    "Only codes that can still be redeemed"
                }
                button { class: "bc-button", id: "copy-csv", onclick: move |_| on_action.call(Action::Copy(csv.clone())), "Copy CSV" }
                button { class: "bc-button", id: "save-csv", onclick: move |_| on_action.call(Action::ExportRedemptions { unused_only: unused_only() }), "Save CSV file" }
                span { class: "bc-caption", "Saved into {data.exports_dir} (readable only by you)." }
            }
            if shown.is_empty() {
                p { "No redemption codes." }
            } else {
                div { class: "bc-table-wrap",
                    table { class: "bc-table", id: "codes-table",
                        // Four columns, so the row actions fit the default window: the name
                        // and creation fold under the code, expiry and redeemer under the state.
                        thead { tr { th { "Code" } th { "Amount" } th { "State" } th { "Actions" } } }
                        tbody {
                            for c in shown {
                                tr { key: "{c.id}",
                                    td { class: "bc-cell-wide",
                                        code { "{c.code}" }
                                        div { class: "bc-caption", "{c.name} · created {c.created}" }
                                    }
                                    td { "{c.amount}" }
                                    td {
                                        Badge { kind: match c.state.as_str() { "unused" => "success", "used" => "neutral", _ => "danger" }.to_string(), text: c.state.clone() }
                                        div { class: "bc-caption", "expires {c.expires}" }
                                        if !c.redeemed_by.is_empty() && c.redeemed_by != "-" { div { class: "bc-caption", "redeemed by {c.redeemed_by}" } }
                                    }
                                    td { class: "bc-actions",
                                        button { class: "bc-button bc-button-small", onclick: { let code = c.code.clone(); move |_| on_action.call(Action::Copy(code.clone())) }, "Copy" }
                                        if confirm() == Some(format!("code:{}", c.id)) {
                                            button { class: "bc-button bc-button-small bc-button-danger", onclick: move |_| { on_action.call(Action::DeleteRedemption(c.id)); confirm.set(None); },
                                                if c.state == "unused" { "Revoke {c.name} code?" } else { "Delete this record?" }
                                            }
                                            button { class: "bc-button bc-button-small", onclick: move |_| confirm.set(None), "Cancel" }
                                        } else {
                                            button { class: "bc-button bc-button-small", onclick: move |_| confirm.set(Some(format!("code:{}", c.id))),
                                                if c.state == "unused" { "Revoke" } else { "Delete" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[component]
pub fn Invitations(
    invitations: Vec<InvitationRow>,
    notice: Option<Notice>,
    confirm: Signal<Option<String>>,
    on_action: EventHandler<Action>,
) -> Element {
    let mut f = use_signal(InvitationForm::default);
    use_on_success(&notice, INVITATION_FORM, move || {
        f.set(InvitationForm::default())
    });
    let mut confirm = confirm;
    let cur = f();
    rsx! {
        section { class: "bc-card bc-form bc-wide", id: "invitations",
            h2 { "Invitations" }
            p { class: "bc-caption", "An invitation link opens the registration page with its code filled in; it works while registration is open or invite-only." }
            div { class: "bc-fields bc-fields-inline", id: "invitation-form",
                label { "Uses (0: unlimited)" TextInput { r#type: "number", min: "0", value: cur.max_uses.clone(), oninput: move |v: String| f.with_mut(|f| f.max_uses = v) } }
                label { "Expires in days (empty: never)" TextInput { r#type: "number", min: "1", value: cur.expires_days.clone(), oninput: move |v: String| f.with_mut(|f| f.expires_days = v) } }
                button { class: "bc-button bc-button-primary", id: "create-admin-invitation", onclick: move |_| on_action.call(Action::Invite(f())), "Create invitation" }
            }
            if invitations.is_empty() {
                p { "No invitations." }
            } else {
                div { class: "bc-table-wrap",
                    table { class: "bc-table", id: "admin-invitations-table",
                        thead { tr { th { "Link" } th { "From" } th { "Used" } th { "Expires" } th { "Actions" } } }
                        tbody {
                            for i in invitations {
                                tr { key: "{i.code}",
                                    td { code { "{i.link}" } }
                                    td { "{i.inviter}" }
                                    td { "{i.uses}" }
                                    td { "{i.expires}" }
                                    td { class: "bc-actions",
                                        button { class: "bc-button bc-button-small", onclick: { let link = i.link.clone(); move |_| on_action.call(Action::Copy(link.clone())) }, "Copy" }
                                        if confirm() == Some(format!("invitation:{}", i.code)) {
                                            button { class: "bc-button bc-button-small bc-button-danger", onclick: { let c = i.code.clone(); move |_| { on_action.call(Action::DeleteInvitation(c.clone())); confirm.set(None); } }, "Delete this invitation?" }
                                            button { class: "bc-button bc-button-small", onclick: move |_| confirm.set(None), "Cancel" }
                                        } else {
                                            button { class: "bc-button bc-button-small", onclick: { let c = i.code.clone(); move |_| confirm.set(Some(format!("invitation:{c}"))) }, "Delete" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The registration settings: the saved values until the admin edits them; after a
/// successful save the saved values again, after a refused one what was typed.
#[component]
pub fn Registration(
    saved: GovernanceForm,
    notice: Option<Notice>,
    on_action: EventHandler<Action>,
) -> Element {
    let mut edit = use_signal(|| None::<GovernanceForm>);
    use_on_success(&notice, GOVERNANCE_FORM, move || edit.set(None));
    let cur = edit().unwrap_or_else(|| saved.clone());
    // Each field's handler starts from the form as shown now (saved or being edited).
    let (f1, f2, f3, f4, f5, f6) = (
        cur.clone(),
        cur.clone(),
        cur.clone(),
        cur.clone(),
        cur.clone(),
        cur.clone(),
    );
    let form = cur.clone();
    rsx! {
        section { class: "bc-card bc-form bc-wide", id: "registration",
            h2 { "Registration" }
            div { class: "bc-fields",
                label { "Who may register"
                    select { id: "registration-mode", onchange: move |e| edit.set(Some(GovernanceForm { registration: e.value(), ..f1.clone() })),
                        option { value: "open", selected: cur.registration == "open", "open: anyone who reaches the gateway" }
                        option { value: "invite_only", selected: cur.registration == "invite_only", "invite only: with an invitation code" }
                        option { value: "closed", selected: cur.registration == "closed", "closed: accounts are made here" }
                    }
                }
                label { "New-user balance, USD (-1: unlimited)" TextInput { inputmode: "decimal", value: cur.new_user_balance_usd.clone(), oninput: move |v: String| edit.set(Some(GovernanceForm { new_user_balance_usd: v, ..f2.clone() })) } }
                label { "Reward to the inviter, USD" TextInput { inputmode: "decimal", value: cur.inviter_reward_usd.clone(), oninput: move |v: String| edit.set(Some(GovernanceForm { inviter_reward_usd: v, ..f3.clone() })) } }
                label { "Reward to the invited user, USD" TextInput { inputmode: "decimal", value: cur.invitee_reward_usd.clone(), oninput: move |v: String| edit.set(Some(GovernanceForm { invitee_reward_usd: v, ..f4.clone() })) } }
                label { "Uses of a user's invitation (at most)" TextInput { r#type: "number", min: "1", value: cur.user_invite_max_uses.clone(), oninput: move |v: String| edit.set(Some(GovernanceForm { user_invite_max_uses: v, ..f5.clone() })) } }
                label { class: "bc-check",
                    input { r#type: "checkbox", checked: cur.allow_unpriced_cloud, onchange: move |e| edit.set(Some(GovernanceForm { allow_unpriced_cloud: e.checked(), ..f6.clone() })) }
                    "Users may use cloud models that have no price (billed $0)"
                }
            }
            div { class: "bc-toolbar",
                button { class: "bc-button bc-button-primary", id: "save-registration", onclick: move |_| on_action.call(Action::SaveGovernance(form.clone())), "Save registration settings" }
            }
        }
    }
}
