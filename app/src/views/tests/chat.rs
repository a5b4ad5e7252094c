//! The Chat page against a real gateway listening on loopback, with a fake OpenAI upstream
//! speaking the documented stream format: the answer streams through the gateway's own
//! `/v1` with the desktop key, is logged and priced, saved with what it measured, and Stop
//! keeps what arrived. The page renders models grouped, stats, Markdown and the snippets.

use std::sync::Arc;
use std::time::Duration;

use super::*;

#[path = "../../../../gateway-core/tests/support/fake_openai.rs"]
mod fake_openai;

/// A console whose gateway listens on loopback, with one priced OpenAI channel on `fake`.
async fn chatting(fake: Arc<fake_openai::Fake>) -> (TestConsole, gateway_core::ServeHandle) {
    let t = console().await;
    first_run::ensure(&t.console.state).unwrap();
    t.console.state.config_changed().await;
    let upstream = fake_openai::start(fake).await;
    let mut form = channel_form("openai-main", &format!("http://{upstream}"));
    form.mapping.clear();
    let n = t.console.apply(Action::SaveChannel(form)).await.unwrap();
    assert!(n.ok, "{n:?}");
    let n = t
        .console
        .apply(Action::SavePrice(PriceForm {
            model: "gpt-4o-mini".into(),
            input: "0.15".into(),
            output: "0.60".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(n.ok, "{n:?}");
    let handle = t
        .gateway
        .serve_on("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (t, handle)
}

fn chat_load(c: &Console, handle: &gateway_core::ServeHandle) -> ChatData {
    c.load(&LogFilter::default(), &handle.local_addr().to_string())
        .unwrap()
        .chat
}

/// Wait until no answer streams, then the Chat page's data.
async fn settled(c: &Console, handle: &gateway_core::ServeHandle) -> ChatData {
    for _ in 0..400 {
        if c.chat.live().is_none() {
            return chat_load(c, handle);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the answer never ended: {:?}", c.chat.live());
}

fn send(text: &str, conversation: Option<i64>) -> Action {
    Action::ChatSend(ChatForm {
        conversation,
        model: "gpt-4o-mini".into(),
        system: "Be brief.".into(),
        temperature: "0.3".into(),
        max_tokens: "64".into(),
        text: text.into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_streams_through_the_gateway_and_is_logged_priced_and_kept() {
    let fake = fake_openai::Fake::new();
    let (t, handle) = chatting(fake.clone()).await;
    let c = &t.console;
    let data = chat_load(c, &handle);
    assert!(data.blocked.is_none(), "{:?}", data.blocked);
    assert_eq!(
        data.models,
        vec![ChatModel {
            name: "gpt-4o-mini".into(),
            local: false
        }]
    );
    assert_eq!(data.model, "gpt-4o-mini");

    // Sent: no message (the answer streaming in says it).
    assert_eq!(c.apply(send("Say hello", None)).await, None);
    let data = settled(c, &handle).await;
    let conv = data.current.expect("the new conversation is open");
    assert_eq!(conv.title, "Say hello");
    assert_eq!(
        (
            conv.system.as_str(),
            conv.temperature.as_str(),
            conv.max_tokens.as_str()
        ),
        ("Be brief.", "0.3", "64")
    );
    assert_eq!(conv.messages.len(), 2);
    let answer = &conv.messages[1];
    assert_eq!(answer.content, "Hello from fake");
    assert!(answer.error.is_none() && !answer.stopped, "{answer:?}");
    let stats = answer.stats.clone().unwrap();
    assert_eq!(stats.tokens, Some(3), "the usage chunk's completion tokens");
    assert!(stats.ttft_ms.is_some());
    // The cost is the request's own log record's, as the Logs page shows it.
    let rid = stats.request_id.clone().expect("x-request-id");
    let (rows, _) = t
        .console
        .state
        .store
        .with(|s| {
            logs::query(
                s,
                &logs::LogQuery {
                    request_id: Some(rid.clone()),
                    page: 1,
                    page_size: 10,
                    ..Default::default()
                },
            )
        })
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].record.cost_nano > 0);
    assert_eq!(
        stats.cost,
        Some(crate::console::load::usd_text(rows[0].record.cost_nano))
    );
    // What the upstream received: the system prompt first, the settings, a streamed
    // request asking for usage, through the gateway (the channel's key, not ours).
    let seen = fake.last().unwrap();
    assert_eq!(seen.body["messages"][0]["content"], "Be brief.");
    assert_eq!(seen.body["messages"][1]["content"], "Say hello");
    assert_eq!(seen.body["temperature"], 0.3);
    assert_eq!(seen.body["max_tokens"], 64);
    assert_eq!(seen.body["stream"], true);
    assert_eq!(
        seen.authorization.as_deref(),
        Some("Bearer sk-upstream-secret-123456")
    );

    // A second turn carries the history.
    assert_eq!(c.apply(send("And again", Some(conv.id))).await, None);
    let data = settled(c, &handle).await;
    assert_eq!(data.current.as_ref().unwrap().messages.len(), 4);
    let msgs = fake.last().unwrap().body["messages"].clone();
    assert_eq!(msgs.as_array().unwrap().len(), 4, "{msgs}");
    assert_eq!(msgs[2]["content"], "Hello from fake");

    // The page: grouped models, the answer's numbers, the snippets with the key.
    let mut all = load(c);
    all.chat = data.clone();
    let html = render_page(info(GatewayState::Running), all, Page::Chat, None);
    assert!(html.contains("<optgroup label=\"Cloud\">"), "{html}");
    assert!(html.contains("3 tokens"), "{html}");
    assert!(html.contains(&stats.cost.clone().unwrap()), "{html}");
    assert!(html.contains("tokens/s"), "{html}");
    let key = data.key.clone().unwrap();
    assert!(
        html.contains(&format!("Authorization: Bearer {key}")),
        "curl snippet: {html}"
    );
    assert!(html.contains("from openai import OpenAI"), "{html}");

    // Rename, and the list; a new Console on the same database still has it (a restart).
    let n = c
        .apply(Action::ChatRename {
            id: conv.id,
            title: "Greetings".into(),
        })
        .await
        .unwrap();
    assert!(n.ok, "{n:?}");
    let again = Console::new(c.state.clone(), None);
    let list = chat_load(&again, &handle).conversations;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].title, "Greetings");
    let n = c.apply(Action::ChatDelete(conv.id)).await.unwrap();
    assert!(n.ok, "{n:?}");
    let data = chat_load(c, &handle);
    assert!(data.conversations.is_empty() && data.current.is_none());
    handle.stop(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_keeps_what_arrived_and_refusals_say_what_to_change() {
    let pieces: Vec<&'static str> = vec![" word"; 200];
    let fake = Arc::new(fake_openai::Fake {
        pieces,
        chunk_delay: Duration::from_millis(20),
        ..Arc::try_unwrap(fake_openai::Fake::new()).unwrap()
    });
    let (t, handle) = chatting(fake).await;
    let c = &t.console;

    // Refused: every bad field at once, nothing sent.
    let n = c
        .apply(Action::ChatSend(ChatForm {
            model: "gpt-4o-mini".into(),
            temperature: "3".into(),
            max_tokens: "0".into(),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(!n.ok);
    let fields: Vec<_> = n
        .refused
        .as_ref()
        .unwrap()
        .fields
        .iter()
        .map(|f| f.0.as_str())
        .collect();
    assert_eq!(fields, ["text", "temperature", "max_tokens"]);
    assert!(chat_load(c, &handle).conversations.is_empty());

    assert_eq!(c.apply(send("Count slowly", None)).await, None);
    // A second message while one streams is refused.
    let busy = c.apply(send("Another", None)).await.unwrap();
    assert!(
        !busy.ok && busy.text.contains("still streaming"),
        "{busy:?}"
    );
    let mut seen_text = false;
    for _ in 0..200 {
        if c.chat.live().is_some_and(|l| l.chunks >= 5) {
            seen_text = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen_text, "the answer streams in: {:?}", c.chat.live());
    let live = c.chat.live().unwrap();
    assert!(
        live.ttft_ms.is_some() && live.tokens_per_sec.is_some(),
        "{live:?}"
    );
    assert!(c.apply(Action::ChatStop).await.is_none());
    let data = settled(c, &handle).await;
    let answer = data.current.unwrap().messages[1].clone();
    assert!(answer.stopped, "{answer:?}");
    let words = answer.content.matches("word").count();
    assert!(
        (5..200).contains(&words),
        "kept what arrived, not all: {words}"
    );
    // The stopped request is in the logs too.
    assert!(answer.stats.unwrap().request_id.is_some());
    // Nothing streams: Stop says so.
    assert!(!c.apply(Action::ChatStop).await.unwrap().ok);

    // A model the gateway does not serve: the gateway's own error is saved with the turn.
    let mut f = match send("Hi", None) {
        Action::ChatSend(f) => f,
        _ => unreachable!(),
    };
    f.model = "no-such-model".into();
    assert_eq!(c.apply(Action::ChatSend(f)).await, None);
    let data = settled(c, &handle).await;
    let e = data.current.unwrap().messages[1].error.clone().unwrap();
    assert!(e.contains("404") && e.contains("no-such-model"), "{e}");
    handle.stop(Duration::from_secs(1)).await;
}

/// A 1×1 PNG (a real one: signature, IHDR, IDAT, IEND).
const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attached_image_goes_as_a_content_part_is_kept_and_sent_again_with_the_history() {
    use crate::views::chat::{ATTACH_FORM, SHORTENED_NOTE};
    use base64::Engine as _;
    let fake = fake_openai::Fake::new();
    let (t, handle) = chatting(fake.clone()).await;
    let c = &t.console;
    let png = base64::engine::general_purpose::STANDARD
        .decode(PNG_1X1)
        .unwrap();
    let data_url = format!("data:image/png;base64,{PNG_1X1}");
    let cat = t.dir.path().join("cat.png");
    std::fs::write(&cat, &png).unwrap();
    let path = |p: &std::path::Path| p.display().to_string();

    // Attached: pending, with its thumbnail and a Remove button.
    assert_eq!(c.apply(Action::ChatAttach(path(&cat))).await, None);
    let data = chat_load(c, &handle);
    assert_eq!(data.pending.len(), 1);
    assert_eq!(
        (data.pending[0].name.as_str(), &*data.pending[0].url),
        ("cat.png", data_url.as_str())
    );

    // Refused, with the reason next to the Attach control: another type (whatever the
    // name says), a file over 20 MB; nothing is added.
    let notes = t.dir.path().join("notes.txt");
    std::fs::write(&notes, "just text").unwrap();
    let n = c.apply(Action::ChatAttach(path(&notes))).await.unwrap();
    assert!(!n.ok);
    assert_eq!(
        n.field_error(ATTACH_FORM, "image"),
        Some("notes.txt is not a PNG, JPEG, WebP or GIF image.")
    );
    let mut all = load(c);
    all.chat = chat_load(c, &handle);
    let html = render_page(info(GatewayState::Running), all, Page::Chat, Some(n));
    let attach = html.find("id=\"chat-attach\"").expect("the Attach control");
    let message = html
        .find("<span class=\"bc-field-error\">notes.txt is not a PNG, JPEG, WebP or GIF image.</span>")
        .expect("the message under the control");
    assert!(message > attach && message - attach < 1000, "{html}");
    let big = t.dir.path().join("big.png");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(21 * 1024 * 1024).unwrap();
    drop(f);
    let n = c.apply(Action::ChatAttach(path(&big))).await.unwrap();
    assert_eq!(
        n.field_error(ATTACH_FORM, "image"),
        Some("big.png is 21.0 MB; an image can be at most 20.0 MB.")
    );
    assert!(n.fix.is_some());
    let disguised = t.dir.path().join("photo.png");
    std::fs::write(&disguised, "not an image at all").unwrap();
    let n = c.apply(Action::ChatAttach(path(&disguised))).await.unwrap();
    assert!(n.field_error(ATTACH_FORM, "image").is_some(), "{n:?}");
    assert_eq!(chat_load(c, &handle).pending.len(), 1);

    // Remove takes that one image off.
    let dog = t.dir.path().join("dog.png");
    std::fs::write(&dog, &png).unwrap();
    assert_eq!(c.apply(Action::ChatAttach(path(&dog))).await, None);
    let mut all = load(c);
    all.chat = chat_load(c, &handle);
    let html = render_page(info(GatewayState::Running), all.clone(), Page::Chat, None);
    assert!(
        html.contains("aria-label=\"Remove image cat.png\"")
            && html.contains("aria-label=\"Remove image dog.png\""),
        "{html}"
    );
    assert!(
        html.contains(&format!("src=\"{data_url}\"")),
        "thumbnail: {html}"
    );
    // Show as code: the image part, its data cut short with a note.
    assert!(html.contains(SHORTENED_NOTE), "{html}");
    assert!(
        html.contains("&#34;type&#34;: &#34;image_url&#34;"),
        "{html}"
    );
    let turns = [crate::views::chat::Turn {
        role: "user".into(),
        text: "What is this?".into(),
        images: vec![data_url.clone().into()],
    }];
    let form = ChatForm {
        model: "gpt-4o-mini".into(),
        ..Default::default()
    };
    let (curl, python) = crate::views::chat::snippets("http://x", "sk-1", &form, &turns);
    for code in [&curl, &python] {
        assert!(
            code.contains(SHORTENED_NOTE) && code.contains("image_url"),
            "{code}"
        );
        assert!(
            code.contains(&format!("data:image/png;base64,{}…", &PNG_1X1[..48])),
            "{code}"
        );
        assert!(!code.contains(PNG_1X1), "{code}");
    }
    assert_eq!(c.apply(Action::ChatDetach(1)).await, None);
    let pending = chat_load(c, &handle).pending;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].name, "cat.png");
    assert!(!c.apply(Action::ChatDetach(5)).await.unwrap().ok);

    // Sent: the upstream receives OpenAI content parts, the text first, then the data URL.
    assert_eq!(c.apply(send("What is in this image?", None)).await, None);
    let data = settled(c, &handle).await;
    assert!(data.pending.is_empty(), "sent with the message");
    let seen = fake.last().unwrap();
    assert_eq!(
        seen.body["messages"][1]["content"],
        serde_json::json!([
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": data_url}}
        ]),
        "{}",
        seen.body
    );

    // Kept: a new Console on the same database (a restart) shows the image in the
    // transcript, and the next turn sends it again with the history.
    let again = Console::new(c.state.clone(), None);
    let data = chat_load(&again, &handle);
    let conv = data.current.clone().expect("the conversation");
    assert_eq!(conv.messages[0].images.len(), 1);
    assert_eq!(&*conv.messages[0].images[0].url, data_url.as_str());
    let mut all = load(&again);
    all.chat = data;
    let html = render_page(info(GatewayState::Running), all, Page::Chat, None);
    assert!(
        html.contains(&format!("class=\"bc-msg-image\" src=\"{data_url}\"")),
        "{html}"
    );
    assert_eq!(c.apply(send("And now?", Some(conv.id))).await, None);
    settled(c, &handle).await;
    let msgs = fake.last().unwrap().body["messages"].clone();
    assert_eq!(
        msgs[1]["content"][1]["image_url"]["url"],
        data_url.as_str(),
        "{msgs}"
    );
    assert_eq!(msgs[3]["content"], "And now?", "{msgs}");
    handle.stop(Duration::from_secs(1)).await;
}

#[test]
fn answers_render_as_markdown_with_code_to_copy_and_html_as_text() {
    let data = ConsoleData {
        chat: ChatData {
            models: vec![
                ChatModel { name: "local-1".into(), local: true },
                ChatModel { name: "gpt-4o".into(), local: false },
            ],
            model: "local-1".into(),
            current: Some(ConversationView {
                id: 7,
                title: "Code".into(),
                model: "local-1".into(),
                system: String::new(),
                temperature: String::new(),
                max_tokens: String::new(),
                messages: vec![
                    ChatMessage {
                        role: "user".into(),
                        content: "<b>show</b> code".into(),
                        images: Vec::new(),
                        model: String::new(),
                        stats: None,
                        stopped: false,
                        error: None,
                    },
                    ChatMessage {
                        role: "assistant".into(),
                        content: "Sure, **here**:\n\n```python\nprint('hi')\n```\n<img src=x onerror=alert(1)>".into(),
                        images: Vec::new(),
                        model: "local-1".into(),
                        stats: Some(AnswerStats {
                            ttft_ms: Some(42),
                            tokens: Some(9),
                            tokens_per_sec: Some(31.25),
                            cost: Some("$0.00".into()),
                            request_id: Some("r".into()),
                        }),
                        stopped: true,
                        error: None,
                    },
                ],
            }),
            base_url: "http://127.0.0.1:3000".into(),
            key: Some("sk-test".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let html = render_page(info(GatewayState::Running), data, Page::Chat, None);
    assert!(
        html.contains("<optgroup label=\"On this machine\">"),
        "{html}"
    );
    assert!(html.contains("<strong>here</strong>"), "{html}");
    assert!(
        html.contains("print(&#39;hi&#39;)") || html.contains("print('hi')"),
        "{html}"
    );
    assert!(html.contains("aria-label=\"Copy code\""), "{html}");
    assert!(
        !html.contains("<img src=x"),
        "raw HTML from a model is not rendered: {html}"
    );
    assert!(
        html.contains("&#60;b&#62;show&#60;/b&#62; code") && !html.contains("<b>show</b>"),
        "a user's text is text: {html}"
    );
    assert!(
        html.contains("first token 42 ms · 31.2 tokens/s · 9 tokens · $0.00"),
        "{html}"
    );
    assert!(html.contains(">Stopped<"), "{html}");
    assert!(html.contains("id=\"chat-send\""), "{html}");
    // No key: the page says why and Send is off.
    let html = render_page(
        info(GatewayState::Running),
        ConsoleData {
            chat: ChatData {
                blocked: Some(
                    "The desktop key was revoked. Create a new key on the Dashboard to chat."
                        .into(),
                ),
                ..Default::default()
            },
            ..Default::default()
        },
        Page::Chat,
        None,
    );
    assert!(html.contains("id=\"chat-blocked\""), "{html}");
    assert!(html.contains("disabled"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_connects_a_provider_in_one_step_and_the_snippets_name_its_model() {
    let t = console().await;
    first_run::ensure(&t.console.state).unwrap();
    t.console.state.config_changed().await;
    let c = &t.console;
    // Nothing answers: the dashboard offers the ways to a first answer, no snippets for
    // a model nothing serves.
    let d = load(c).dashboard;
    assert!(d.get_started);
    let names: Vec<_> = d.providers.iter().map(|p| p.name.as_str()).collect();
    for p in ["OpenAI / OpenAI-compatible", "Anthropic", "Google Gemini"] {
        assert!(names.contains(&p), "{names:?}");
    }
    assert!(
        !names.contains(&"Azure OpenAI") && !names.contains(&"Ollama"),
        "{names:?}"
    );
    let html = page(c, Page::Dashboard);
    assert!(
        html.contains("id=\"get-started\"") && !html.contains("id=\"snippets\""),
        "{html}"
    );

    // A key the provider refuses: nothing saved, the reason and its fix.
    let refusing = rejecting_upstream().await;
    let n = c
        .apply(Action::ConnectProvider(ProviderForm {
            type_id: 1,
            key: "sk-wrong".into(),
            base_url: refusing,
        }))
        .await
        .unwrap();
    assert!(!n.ok && n.fix.is_some(), "{n:?}");
    assert!(load(c).channels.is_empty());
    // An empty key: refused before asking anyone.
    let n = c
        .apply(Action::ConnectProvider(ProviderForm {
            type_id: 1,
            ..Default::default()
        }))
        .await
        .unwrap();
    assert!(!n.ok && n.text.contains("empty"), "{n:?}");

    // A good key: its models are listed and served; the snippets name one.
    let fake = fake_openai::Fake::new();
    let upstream = fake_openai::start(fake.clone()).await;
    let n = c
        .apply(Action::ConnectProvider(ProviderForm {
            type_id: 1,
            key: "sk-good-key-123".into(),
            base_url: format!("http://{upstream}"),
        }))
        .await
        .unwrap();
    assert!(
        n.ok && n.completes(crate::views::dashboard::PROVIDER_FORM),
        "{n:?}"
    );
    assert!(n.text.contains("gpt-4o-mini"), "{n:?}");
    let data = load(c);
    assert_eq!(data.channels.len(), 1);
    assert_eq!(data.channels[0].name, "openai");
    assert!(data.channels[0].models.contains("gpt-4o-mini"));
    assert!(!data.dashboard.get_started);
    assert!(
        routing::model_exists(&c.state, &data.dashboard.example_model),
        "{}",
        data.dashboard.example_model
    );
    let html = page(c, Page::Dashboard);
    assert!(
        html.contains("id=\"snippets\"") && html.contains("Try it in Chat"),
        "{html}"
    );
    // A second provider of the same type gets its own name.
    let n = c
        .apply(Action::ConnectProvider(ProviderForm {
            type_id: 1,
            key: "sk-good-key-456".into(),
            base_url: format!("http://{upstream}"),
        }))
        .await
        .unwrap();
    assert!(n.ok, "{n:?}");
    assert_eq!(
        load(c)
            .channels
            .iter()
            .filter(|c| c.name == "openai-2")
            .count(),
        1
    );
}
