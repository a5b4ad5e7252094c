//! Model names and aliases on the Models page: the card names what the model answers to,
//! an alias is saved and cleared with the CLI's rules, and a refused one marks the field
//! with its message until it is changed.

use super::*;
use crate::views::models::{AliasEditor, alias_form};

fn render_alias(value: &str, sent: Option<&str>, notice: Option<Notice>) -> String {
    let props = (value.to_string(), sent.map(str::to_string), notice);
    let mut dom = VirtualDom::new_with_props(
        move |(value, sent, notice): (String, Option<String>, Option<Notice>)| {
            rsx! { AliasEditor { model_id: 1, value, sent, notice, on_save: |_| {} } }
        },
        props,
    );
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

#[tokio::test]
async fn a_model_alias_is_shown_saved_cleared_and_refused_next_to_its_field() {
    let t = console().await;
    let c = &t.console;
    let file = t.dir.path().join("tiny.Q8_0.gguf");
    std::fs::write(
        &file,
        llama_manager::testing::gguf_writer::tiny_llama("tiny", 1),
    )
    .unwrap();
    let m = c.library.import(&file).unwrap();
    let html = page(c, Page::Models);
    assert!(
        html.contains(&format!("Answers as local-{}", m.id)),
        "{html}"
    );
    assert!(html.contains("Save alias") && !html.contains("Clear alias"));
    // Saved: the card names it, the library keeps it.
    let n = c
        .apply(Action::SetModelAlias {
            id: m.id,
            alias: " my-tiny ".into(),
        })
        .await
        .unwrap();
    assert!(n.ok && n.completes(&alias_form(m.id)), "{n:?}");
    assert!(n.text.contains("now also answers to \"my-tiny\""), "{n:?}");
    assert_eq!(
        c.library.get(&m.id.to_string()).unwrap().alias.as_deref(),
        Some("my-tiny")
    );
    let html = page(c, Page::Models);
    assert!(
        html.contains("and as <strong>my-tiny</strong>") && html.contains("Clear alias"),
        "{html}"
    );
    // Refused with the CLI's rules, the message on the field.
    for (bad, words) in [
        ("local-7", "is reserved"),
        ("my tiny", "cannot be in an alias"),
    ] {
        let n = c
            .apply(Action::SetModelAlias {
                id: m.id,
                alias: bad.into(),
            })
            .await
            .unwrap();
        assert!(!n.ok && n.completed.is_none(), "{n:?}");
        let msg = n
            .field_error(&alias_form(m.id), "alias")
            .unwrap()
            .to_string();
        assert!(msg.contains(words), "{msg}");
        let html = render_alias(bad, Some(bad), Some(n.clone()));
        assert!(
            html.contains("bc-field-error")
                && html.contains(words)
                && html.contains("aria-invalid=\"true\""),
            "{html}"
        );
        // Another model's form, or a changed field, shows no mark.
        assert!(!render_alias("other", Some(bad), Some(n)).contains("aria-invalid=\"true\""));
    }
    assert_eq!(
        c.library.get(&m.id.to_string()).unwrap().alias.as_deref(),
        Some("my-tiny"),
        "a refused alias changes nothing"
    );
    // Cleared.
    let n = c
        .apply(Action::SetModelAlias {
            id: m.id,
            alias: String::new(),
        })
        .await
        .unwrap();
    assert!(n.ok && n.text.contains("has no alias now"), "{n:?}");
    assert!(c.library.get(&m.id.to_string()).unwrap().alias.is_none());
}
