//! Every control has an accessible name: each page rendered from a database with content
//! (a channel, a key, a price, requests, accounts, a conversation), then every button,
//! link, input, select and textarea checked the way a screen reader names it — its
//! `aria-label` or `aria-labelledby`, a wrapping `<label>` or one pointing at it with
//! `for`, its text (buttons, links), or its `title`.

use kuchikiki::traits::TendrilSink;

use super::*;

fn text_of(node: &kuchikiki::NodeRef) -> String {
    node.text_contents()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The controls of `html` without an accessible name, described.
fn unnamed(html: &str) -> Vec<String> {
    let doc = kuchikiki::parse_html().one(html).document_node;
    let labelled_ids: Vec<String> = doc
        .select("label[for]")
        .unwrap()
        .filter_map(|l| l.attributes.borrow().get("for").map(str::to_string))
        .collect();
    let mut missing = Vec::new();
    for el in doc.select("button, a, input, select, textarea").unwrap() {
        let name = el.name.local.to_string();
        let attrs = el.attributes.borrow();
        if attrs.get("type") == Some("hidden") {
            continue;
        }
        let nonempty = |k: &str| attrs.get(k).is_some_and(|v| !v.trim().is_empty());
        let mut named = nonempty("aria-label") || nonempty("aria-labelledby") || nonempty("title");
        if matches!(name.as_str(), "button" | "a") {
            named |= !text_of(el.as_node()).is_empty();
        } else {
            named |= el
                .as_node()
                .ancestors()
                .any(|a| a.as_element().is_some_and(|e| &*e.name.local == "label"));
            named |= attrs
                .get("id")
                .is_some_and(|id| labelled_ids.iter().any(|l| l == id));
        }
        if !named {
            let id = attrs.get("id").unwrap_or("");
            let class = attrs.get("class").unwrap_or("");
            let context: String = el
                .as_node()
                .parent()
                .map(|p| text_of(&p))
                .unwrap_or_default()
                .chars()
                .take(60)
                .collect();
            missing.push(format!(
                "<{name} id={id:?} class={class:?}> near {context:?}"
            ));
        }
    }
    missing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_control_on_every_page_has_an_accessible_name() {
    let t = console().await;
    first_run::ensure(&t.console.state).unwrap();
    t.console.state.config_changed().await;
    let c = &t.console;
    let base = rejecting_upstream().await;
    for a in [
        Action::SaveChannel(channel_form("openai-main", &base)),
        Action::CreateToken(TokenForm {
            name: "ide".into(),
            group: "default".into(),
            ..Default::default()
        }),
        Action::SavePrice(PriceForm {
            model: "gpt-4o-mini".into(),
            input: "0.15".into(),
            output: "0.6".into(),
            ..Default::default()
        }),
        Action::CreateUser(NewUserForm {
            username: "carol".into(),
            password: "Carol-pass-1".into(),
            role: "user".into(),
            group: "default".into(),
            ..Default::default()
        }),
    ] {
        let n = c.apply(a).await.unwrap();
        assert!(n.ok, "{n:?}");
    }
    commit(
        &t,
        &[
            record(1, "gpt-4o-mini", 200, None),
            record(2, "gpt-4o-mini", 502, None),
        ],
    );
    let mut data = load(c);
    // A conversation with an answer, for the Chat page.
    data.chat.current = Some(ConversationView {
        id: 1,
        title: "Hello".into(),
        model: "gpt-4o-mini".into(),
        system: String::new(),
        temperature: String::new(),
        max_tokens: String::new(),
        messages: vec![
            ChatMessage {
                role: "user".into(),
                content: "What is this?".into(),
                images: vec![ChatImage {
                    name: String::new(),
                    url: "data:image/png;base64,iVBORw0KGgo=".into(),
                }],
                model: String::new(),
                stats: None,
                stopped: false,
                error: None,
            },
            ChatMessage {
                role: "assistant".into(),
                content: "Hi!\n\n```sh\necho hi\n```".into(),
                images: Vec::new(),
                model: "gpt-4o-mini".into(),
                stats: None,
                stopped: false,
                error: None,
            },
        ],
    });
    // An image attached to the next message: its Remove button is named too.
    data.chat.pending = vec![ChatImage {
        name: "cat.png".into(),
        url: "data:image/png;base64,iVBORw0KGgo=".into(),
    }];
    let mut report = Vec::new();
    let mut checked = 0;
    for p in Page::ALL {
        let html = render_page(info(GatewayState::Running), data.clone(), p, None);
        let controls = kuchikiki::parse_html()
            .one(html.as_str())
            .document_node
            .select("button, input, select, textarea")
            .unwrap()
            .count();
        assert!(controls > 0, "{} has controls", p.title());
        checked += controls;
        for m in unnamed(&html) {
            report.push(format!("{}: {m}", p.title()));
        }
    }
    eprintln!(
        "accessible names: {checked} controls on {} pages",
        Page::ALL.len()
    );
    assert!(
        report.is_empty(),
        "controls without an accessible name:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_check_finds_an_unnamed_control() {
    let found = unnamed(
        r#"<label>Name <input id="a"></label><label for="b">B</label><input id="b"><input id="c"><button aria-label="Copy"></button><button></button><button>Save</button>"#,
    );
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("id=\"c\"") && found[1].starts_with("<button"));
}
