//! Forms that lose nothing: a refused Save names every refused field at once (gateway-core's
//! checks, the API's words), keeps the form open with what was typed, marks each field
//! until it is changed; and no input is bound to its value while the user types.

use super::*;
use crate::views::channels::{CHANNEL_FORM, ChannelEditor};
use crate::views::form::field_mark;
use crate::views::pricing::PRICE_FORM;
use crate::views::tokens::TOKEN_FORM;

fn fields_of(n: &Notice, form: &str) -> Vec<String> {
    let r = n.refused.as_ref().expect("the refused fields");
    assert_eq!(r.form, form);
    r.fields.iter().map(|(f, _)| f.clone()).collect()
}

/// A refused notice: not ok, nothing completed, a fix.
fn assert_refused(n: &Notice) {
    assert!(!n.ok, "{n:?}");
    assert!(n.completed.is_none(), "a refused form keeps what was typed");
    assert!(n.fix.is_some(), "{n:?}");
}

fn render_editor(form: ChannelForm, sent: Option<ChannelForm>, notice: Option<Notice>) -> String {
    let types = vec![ChannelTypeOption {
        id: 1,
        name: "OpenAI / OpenAI-compatible".into(),
        default_base_url: "https://api.openai.com".into(),
        local: false,
        lists_models: true,
    }];
    let mut dom = VirtualDom::new_with_props(
        move |(form, types, sent, notice): (
            ChannelForm,
            Vec<ChannelTypeOption>,
            Option<ChannelForm>,
            Option<Notice>,
        )| {
            rsx! { ChannelEditor { form, types, sent, notice, on_save: |_| {}, on_cancel: |_| {} } }
        },
        (form, types, sent, notice),
    );
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

#[tokio::test]
async fn a_refused_channel_names_every_field_and_the_form_keeps_and_marks_them() {
    let t = console().await;
    // The desktop's local admin (made at first start) is who changes channels.
    first_run::ensure(&t.console.state).unwrap();
    let c = &t.console;
    let mut typed = channel_form("pasted-key-channel", "ftp://upstream");
    typed.models = " ".into();
    typed.weight = "-2".into();
    typed.priority = "high".into();
    let n = c.apply(Action::SaveChannel(typed.clone())).await.unwrap();
    assert_refused(&n);
    assert_eq!(
        fields_of(&n, CHANNEL_FORM),
        ["priority", "base_url", "models", "weight"],
        "every refused field at once: {n:?}"
    );
    assert_eq!(
        n.field_error(CHANNEL_FORM, "models"),
        Some("models must list at least one model (comma separated)")
    );
    assert!(n.text.contains("4 fields to correct"), "{n:?}");
    assert!(load(c).channels.is_empty(), "nothing saved");

    // The form as the user left it: every field as typed (the key included), each refused
    // field marked with its message.
    let html = render_editor(typed.clone(), Some(typed.clone()), Some(n.clone()));
    for value in [
        "pasted-key-channel",
        "sk-upstream-secret-123456",
        "ftp://upstream",
        "-2",
        "high",
    ] {
        assert!(html.contains(&format!("\"{value}\"")), "{value}: {html}");
    }
    for message in [
        "models must list at least one model (comma separated)",
        "weight must be 0 or more",
        "base_url must start with http:// or https://",
        "priority: high is not a number",
    ] {
        assert!(html.contains(message), "{message}: {html}");
    }
    assert_eq!(html.matches("aria-invalid=\"true\"").count(), 4, "{html}");
    // Models and weight fixed: their marks go, the others stay.
    let mut fixed = typed.clone();
    fixed.models = "gpt-4o-mini".into();
    fixed.weight = "1".into();
    let html = render_editor(fixed.clone(), Some(typed.clone()), Some(n.clone()));
    assert!(!html.contains("models must list"), "{html}");
    assert!(!html.contains("weight must be"), "{html}");
    assert!(html.contains("base_url must start with"), "{html}");
    assert_eq!(html.matches("aria-invalid=\"true\"").count(), 2, "{html}");
    // A form that has not been saved shows no marks.
    let html = render_editor(typed.clone(), None, Some(n.clone()));
    assert!(!html.contains("aria-invalid=\"true\""), "{html}");

    // Saved once every field is right: the success closes the form.
    fixed.base_url = rejecting_upstream().await;
    fixed.priority = "0".into();
    let n = c.apply(Action::SaveChannel(fixed)).await.unwrap();
    assert!(n.completes(CHANNEL_FORM), "{n:?}");
    assert_eq!(load(c).channels[0].name, "pasted-key-channel");

    // An edit is checked against the stored channel (an empty key keeps it).
    let mut edit = ChannelForm::from_row(&load(c).channels[0]);
    edit.weight = "-1".into();
    edit.models = String::new();
    let n = c.apply(Action::SaveChannel(edit)).await.unwrap();
    assert_refused(&n);
    assert_eq!(fields_of(&n, CHANNEL_FORM), ["models", "weight"]);
}

#[tokio::test]
async fn refused_keys_and_prices_name_every_field() {
    let t = console().await;
    first_run::ensure(&t.console.state).unwrap();
    let c = &t.console;
    let keys_before = load(c).tokens.len();
    let n = c
        .apply(Action::CreateToken(TokenForm {
            name: " ".into(),
            quota_usd: "lots".into(),
            expires_days: "soon".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_refused(&n);
    assert_eq!(
        fields_of(&n, TOKEN_FORM),
        ["quota_limit", "expired_time", "name"]
    );
    assert_eq!(
        n.field_error(TOKEN_FORM, "name"),
        Some("name must not be empty")
    );
    assert_eq!(load(c).tokens.len(), keys_before, "no key made");
    let n = c
        .apply(Action::CreateToken(TokenForm {
            name: "ide".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(n.completes(TOKEN_FORM) && n.secret.is_some(), "{n:?}");

    let n = c
        .apply(Action::SavePrice(PriceForm {
            model: " ".into(),
            input: "-1".into(),
            output: "x".into(),
            cache_read: "0.5".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_refused(&n);
    assert_eq!(fields_of(&n, PRICE_FORM), ["input", "output", "model"]);
    let n = c
        .apply(Action::SavePrice(PriceForm {
            model: "m".into(),
            alias_of: "nothing-priced".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_refused(&n);
    assert_eq!(fields_of(&n, PRICE_FORM), ["alias_of"]);
    let n = c
        .apply(Action::SavePrice(PriceForm {
            model: "m".into(),
            input: "1".into(),
            output: "2".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(n.completes(PRICE_FORM), "{n:?}");
}

#[test]
fn a_mark_lasts_while_the_field_holds_what_was_sent() {
    let n = Some(Notice::refusing(
        "f",
        "not saved",
        vec![("name".into(), "name must not be empty".into())],
    ));
    let mark = |sent: Option<&str>, now: &str| field_mark(&n, "f", "name", sent, now);
    assert_eq!(
        mark(Some(""), "").as_deref(),
        Some("name must not be empty")
    );
    assert_eq!(mark(Some(""), "a"), None, "changed: the mark goes");
    assert_eq!(mark(None, ""), None, "not sent: no mark");
    assert_eq!(field_mark(&n, "other", "name", Some(""), ""), None);
    assert_eq!(field_mark(&n, "f", "key", Some(""), ""), None);
    assert_eq!(field_mark(&None, "f", "name", Some(""), ""), None);
}

/// An input bound to its value (`value=`) is written back on every render with the last
/// value the app saw: keys typed during that round trip were lost. No page has one.
#[tokio::test]
async fn no_text_input_is_written_back_while_the_user_types() {
    let t = console().await;
    first_run::ensure(&t.console.state).unwrap();
    let data = load(&t.console);
    let mut inputs = 0;
    for p in Page::ALL {
        let html = render_page(info(GatewayState::Running), data.clone(), p, None);
        for tag in html.split("<input").skip(1) {
            let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            if tag.contains("type=\"checkbox\"") || tag.contains("type=\"radio\"") {
                continue;
            }
            inputs += 1;
            assert!(
                !tag.contains(" value="),
                "{}: an input bound to its value: <input{tag}>",
                p.title()
            );
        }
    }
    assert!(inputs > 20, "{inputs} text inputs seen");
    // The web console's plain-user pages (the Keys page's form, the redeem code).
    let user = UserData::default();
    for p in crate::views::user::UserPage::ALL {
        let mut dom = VirtualDom::new_with_props(
            move |(data, page): (UserData, crate::views::user::UserPage)| {
                rsx! { crate::views::user::UserShell { data, page, notice: None, base_url: "http://127.0.0.1:3000".to_string(), on_navigate: |_| {}, on_action: |_| {} } }
            },
            (user.clone(), p),
        );
        dom.rebuild_in_place();
        let html = dioxus_ssr::render(&dom);
        for tag in html.split("<input").skip(1) {
            let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            assert!(
                tag.contains("type=\"checkbox\"") || !tag.contains(" value="),
                "an input bound to its value: <input{tag}>"
            );
        }
    }
}
