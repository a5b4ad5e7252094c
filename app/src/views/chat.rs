//! Chat: the playground. Pick any model the gateway serves (local and cloud, grouped),
//! a system prompt, temperature and max tokens; the answer streams in with Stop, renders
//! as Markdown with copyable code blocks, and shows its time to first token, tokens per
//! second, tokens and cost. Conversations are saved (list, rename, delete). "Show as code"
//! gives the same request for curl and Python. Images (PNG, JPEG, WebP, GIF) picked or
//! dropped on the message box go with the next message as OpenAI `image_url` parts.

use dioxus::html::HasFileData;
use dioxus::prelude::*;

use super::Badge;
use super::data::{
    Action, AnswerStats, ChatData, ChatForm, ChatImage, ChatMessage, ConversationView, LiveAnswer,
    Notice,
};
use super::form::{FieldMessage, TextArea, TextInput, field_mark, invalid};
use super::markdown::{Segment, segments};

/// The id of the Send form in notices (the console's `chat::FORM`).
pub const CHAT_FORM: &str = "chat";
/// The id of the Attach image control in notices (a refused image's message shows there).
pub const ATTACH_FORM: &str = "chat-attach";

/// One message of a conversation as it is sent: its text and the images sent with it
/// (data URLs).
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub role: String,
    pub text: String,
    pub images: Vec<std::sync::Arc<str>>,
}

/// The form for a conversation (its last settings) or a new chat.
fn form_for(chat: &ChatData) -> ChatForm {
    match &chat.current {
        Some(c) => ChatForm {
            conversation: Some(c.id),
            model: if c.model.is_empty() {
                chat.model.clone()
            } else {
                c.model.clone()
            },
            system: c.system.clone(),
            temperature: c.temperature.clone(),
            max_tokens: c.max_tokens.clone(),
            text: String::new(),
        },
        None => ChatForm {
            model: chat.model.clone(),
            ..Default::default()
        },
    }
}

#[component]
pub fn ChatPage(
    chat: ChatData,
    notice: Option<Notice>,
    on_action: EventHandler<Action>,
) -> Element {
    let base = form_for(&chat);
    let mut f = use_signal(|| base.clone());
    // Another conversation (or a model picked on another page): its settings, keeping
    // what is typed in the message box.
    use_effect(use_reactive((&base,), move |(base,)| {
        f.with_mut(|f| {
            let text = std::mem::take(&mut f.text);
            *f = base;
            f.text = text;
        })
    }));
    let mut sent = use_signal(|| None::<ChatForm>);
    // Sent: an answer started streaming; the message box empties (a refused message
    // keeps what was typed, its fields marked).
    let answering = chat.live.as_ref().map(|l| l.conversation_id);
    use_effect(use_reactive((&answering,), move |(answering,)| {
        if answering.is_some() {
            f.with_mut(|f| f.text.clear());
            sent.set(None);
        }
    }));
    let cur = f();
    let last = sent();
    let mark = |field: &str, get: fn(&ChatForm) -> String| {
        field_mark(
            &notice,
            CHAT_FORM,
            field,
            last.as_ref().map(get).as_deref(),
            &get(&cur),
        )
    };
    let m_text = mark("text", |f| f.text.clone());
    let m_model = mark("model", |f| f.model.clone());
    let m_temp = mark("temperature", |f| f.temperature.clone());
    let m_max = mark("max_tokens", |f| f.max_tokens.clone());
    let m_image = notice
        .as_ref()
        .and_then(|n| n.field_error(ATTACH_FORM, "image"))
        .map(str::to_string);
    let streaming = chat.live.is_some();
    let can_send = chat.blocked.is_none() && !streaming;
    let conv_id = chat.current.as_ref().map(|c| c.id);
    let local: Vec<String> = chat
        .models
        .iter()
        .filter(|m| m.local)
        .map(|m| m.name.clone())
        .collect();
    let cloud: Vec<String> = chat
        .models
        .iter()
        .filter(|m| !m.local)
        .map(|m| m.name.clone())
        .collect();
    let picked = cur.model.clone();
    let send = move |_| {
        let form = ChatForm {
            conversation: conv_id,
            ..f()
        };
        sent.set(Some(form.clone()));
        on_action.call(Action::ChatSend(form));
    };
    rsx! {
        div { class: "bc-chat",
            aside { class: "bc-card bc-chat-list", "aria-label": "Conversations",
                button { class: "bc-button bc-button-primary", id: "chat-new",
                    onclick: move |_| on_action.call(Action::ChatOpen(None)),
                    "New chat"
                }
                if chat.conversations.is_empty() {
                    p { class: "bc-caption", "No saved conversations." }
                }
                ul { class: "bc-chat-items",
                    for c in chat.conversations.clone() {
                        li { key: "{c.id}",
                            button {
                                class: if Some(c.id) == conv_id { "bc-chat-item bc-row-selected" } else { "bc-chat-item" },
                                "aria-current": if Some(c.id) == conv_id { "true" } else { "false" },
                                title: "{c.title} ({c.updated})",
                                onclick: move |_| on_action.call(Action::ChatOpen(Some(c.id))),
                                span { class: "bc-chat-item-title", "{c.title}" }
                                span { class: "bc-caption", "{c.updated}" }
                            }
                        }
                    }
                }
            }
            div { class: "bc-chat-main",
                if let Some(why) = &chat.blocked {
                    section { class: "bc-card bc-warning", role: "status", id: "chat-blocked", p { "{why}" } }
                }
                section { class: "bc-card bc-form", id: "chat-settings",
                    div { class: "bc-fields bc-fields-inline",
                        label { "Model"
                            select { id: "chat-model", "aria-invalid": invalid(&m_model),
                                onchange: move |e| f.with_mut(|f| f.model = e.value()),
                                if picked.is_empty() || !chat.models.iter().any(|m| m.name == picked) {
                                    option { value: "{picked}", selected: true, if picked.is_empty() { "Pick a model" } else { "{picked} (not served now)" } }
                                }
                                if !local.is_empty() {
                                    optgroup { label: "On this machine",
                                        for m in local.clone() {
                                            option { key: "{m}", value: "{m}", selected: m == picked, "{m}" }
                                        }
                                    }
                                }
                                if !cloud.is_empty() {
                                    optgroup { label: "Cloud",
                                        for m in cloud.clone() {
                                            option { key: "{m}", value: "{m}", selected: m == picked, "{m}" }
                                        }
                                    }
                                }
                            }
                            FieldMessage { message: m_model.clone() }
                        }
                        label { "Temperature"
                            TextInput { id: "chat-temperature", value: cur.temperature.clone(), inputmode: "decimal", placeholder: "default", aria_invalid: invalid(&m_temp), oninput: move |v| f.with_mut(|f| f.temperature = v) }
                            FieldMessage { message: m_temp.clone() }
                        }
                        label { "Max tokens"
                            TextInput { id: "chat-max-tokens", value: cur.max_tokens.clone(), inputmode: "numeric", placeholder: "no limit", aria_invalid: invalid(&m_max), oninput: move |v| f.with_mut(|f| f.max_tokens = v) }
                            FieldMessage { message: m_max.clone() }
                        }
                    }
                    details { class: "bc-chat-system", open: !cur.system.is_empty(),
                        summary { "System prompt" }
                        TextArea { id: "chat-system", rows: "2", "aria-label": "System prompt", value: cur.system.clone(), placeholder: "You are a helpful assistant.", oninput: move |v| f.with_mut(|f| f.system = v) }
                    }
                }
                if let Some(c) = chat.current.clone() {
                    ConversationHeader { conversation: c, streaming, on_action }
                }
                section { class: "bc-card bc-chat-log", id: "chat-log", role: "log", "aria-label": "Conversation", "aria-live": "polite",
                    if chat.current.as_ref().is_none_or(|c| c.messages.is_empty()) && !streaming {
                        p { class: "bc-caption", "Ask the model something. Answers stream in; Stop keeps what arrived." }
                    }
                    if let Some(c) = chat.current.clone() {
                        for (i, m) in c.messages.into_iter().enumerate() {
                            MessageView { key: "{i}", message: m, on_action }
                        }
                    }
                    if let Some(live) = chat.live.clone() {
                        LiveView { live, on_action }
                    }
                }
                section { class: "bc-card bc-chat-composer",
                    // An image dropped on the message box is attached (the desktop gives
                    // the file's path).
                    ondragover: move |e: DragEvent| e.prevent_default(),
                    ondrop: move |e: DragEvent| {
                        e.prevent_default();
                        for file in e.files() {
                            on_action.call(Action::ChatAttach(file.path().display().to_string()));
                        }
                    },
                    TextArea { id: "chat-text", rows: "3", focused: true, "aria-label": "Message", "aria-invalid": invalid(&m_text), value: cur.text.clone(), placeholder: "Message (Ctrl+Enter sends)",
                        onkeydown: move |e: KeyboardEvent| {
                            if e.key() == Key::Enter && e.modifiers().ctrl() && can_send {
                                e.prevent_default();
                                let form = ChatForm { conversation: conv_id, ..f() };
                                sent.set(Some(form.clone()));
                                on_action.call(Action::ChatSend(form));
                            }
                        },
                        oninput: move |v| f.with_mut(|f| f.text = v)
                    }
                    FieldMessage { message: m_text.clone() }
                    if !chat.pending.is_empty() {
                        ul { class: "bc-chat-pending", id: "chat-pending", "aria-label": "Images attached to the next message",
                            for (i, img) in chat.pending.clone().into_iter().enumerate() {
                                li { key: "{i}-{img.name}", class: "bc-chat-thumb",
                                    img { src: "{img.url}", alt: "{img.name}", title: "{img.name}" }
                                    button { class: "bc-button bc-button-small", "aria-label": "Remove image {img.name}",
                                        onclick: move |_| on_action.call(Action::ChatDetach(i)),
                                        "Remove"
                                    }
                                }
                            }
                        }
                    }
                    div { class: "bc-toolbar",
                        // Send (or Stop) first: the next control after the message box.
                        if streaming {
                            button { class: "bc-button bc-button-danger", id: "chat-stop", onclick: move |_| on_action.call(Action::ChatStop), "Stop" }
                        } else {
                            button { class: "bc-button bc-button-primary", id: "chat-send", disabled: !can_send, onclick: send, "Send" }
                        }
                        label { class: "bc-button", id: "chat-attach", title: "PNG, JPEG, WebP or GIF, up to 20 MB; or drop images on the message box", "Attach image…"
                            input { r#type: "file", accept: ".png,.jpg,.jpeg,.webp,.gif,image/png,image/jpeg,image/webp,image/gif", multiple: true, class: "bc-file-input", "aria-label": "Attach images",
                                onchange: move |e: FormEvent| {
                                    for file in e.files() {
                                        on_action.call(Action::ChatAttach(file.path().display().to_string()));
                                    }
                                }
                            }
                        }
                        FieldMessage { message: m_image.clone() }
                    }
                }
                ShowAsCode { chat: chat.clone(), form: cur.clone(), on_action }
            }
        }
    }
}

/// The open conversation's title with Rename and Delete.
#[component]
fn ConversationHeader(
    conversation: ConversationView,
    streaming: bool,
    on_action: EventHandler<Action>,
) -> Element {
    let id = conversation.id;
    let mut title = use_signal(|| conversation.title.clone());
    let mut renaming = use_signal(|| false);
    let mut confirm = use_signal(|| false);
    rsx! {
        div { class: "bc-row bc-chat-header",
            if renaming() {
                TextInput { id: "chat-title", "aria-label": "Conversation title", value: conversation.title.clone(), oninput: move |v| title.set(v) }
                button { class: "bc-button bc-button-primary bc-button-small", id: "chat-rename-save",
                    onclick: move |_| { renaming.set(false); on_action.call(Action::ChatRename { id, title: title() }); },
                    "Save title"
                }
                button { class: "bc-button bc-button-small", onclick: move |_| renaming.set(false), "Cancel" }
            } else {
                h2 { id: "chat-title-text", "{conversation.title}" }
                button { class: "bc-button bc-button-small", id: "chat-rename", "aria-label": "Rename conversation",
                    onclick: move |_| { title.set(conversation.title.clone()); renaming.set(true); },
                    "Rename"
                }
                if confirm() {
                    span { class: "bc-caption", "Delete this conversation?" }
                    button { class: "bc-button bc-button-danger bc-button-small", id: "chat-delete-confirm",
                        onclick: move |_| { confirm.set(false); on_action.call(Action::ChatDelete(id)); },
                        "Delete"
                    }
                    button { class: "bc-button bc-button-small", onclick: move |_| confirm.set(false), "Keep" }
                } else {
                    button { class: "bc-button bc-button-small", id: "chat-delete", disabled: streaming, "aria-label": "Delete conversation",
                        onclick: move |_| confirm.set(true),
                        "Delete"
                    }
                }
            }
        }
    }
}

/// An answer's numbers: time to first token, tokens per second, tokens, cost.
pub fn stats_text(s: &AnswerStats) -> String {
    let mut parts = Vec::new();
    if let Some(t) = s.ttft_ms {
        parts.push(format!("first token {t} ms"));
    }
    if let Some(r) = s.tokens_per_sec {
        parts.push(format!("{r:.1} tokens/s"));
    }
    if let Some(n) = s.tokens {
        parts.push(format!("{n} tokens"));
    }
    if let Some(c) = &s.cost {
        parts.push(c.clone());
    }
    parts.join(" · ")
}

#[component]
fn MessageView(message: ChatMessage, on_action: EventHandler<Action>) -> Element {
    if message.role == "user" {
        return rsx! {
            div { class: "bc-msg bc-msg-user",
                span { class: "bc-caption", "You" }
                if !message.images.is_empty() {
                    MessageImages { images: message.images.clone() }
                }
                if !message.content.is_empty() {
                    p { class: "bc-msg-text", "{message.content}" }
                }
            }
        };
    }
    let stats = message.stats.as_ref().map(stats_text).unwrap_or_default();
    rsx! {
        div { class: "bc-msg bc-msg-assistant",
            span { class: "bc-caption", "{message.model}" }
            Answer { text: message.content.clone(), on_action }
            if let Some(e) = &message.error {
                p { class: "bc-error", role: "alert", "{e}" }
            }
            div { class: "bc-msg-stats bc-caption",
                if message.stopped { Badge { kind: "neutral", text: "Stopped" } }
                span { class: "bc-stats", "{stats}" }
                if !message.content.is_empty() {
                    button { class: "bc-button bc-button-small", "aria-label": "Copy answer",
                        onclick: { let t = message.content.clone(); move |_| on_action.call(Action::Copy(t.clone())) },
                        "Copy"
                    }
                }
            }
        }
    }
}

/// The images sent with a message (full size on their own, scaled down in the transcript).
#[component]
fn MessageImages(images: Vec<ChatImage>) -> Element {
    let n = images.len();
    rsx! {
        div { class: "bc-msg-images",
            for (i, img) in images.into_iter().enumerate() {
                img { key: "{i}", class: "bc-msg-image", src: "{img.url}", alt: "Image {i + 1} of {n} sent with this message" }
            }
        }
    }
}

#[component]
fn LiveView(live: LiveAnswer, on_action: EventHandler<Action>) -> Element {
    let stats = stats_text(&AnswerStats {
        ttft_ms: live.ttft_ms,
        tokens_per_sec: live.tokens_per_sec,
        ..Default::default()
    });
    rsx! {
        div { class: "bc-msg bc-msg-assistant bc-msg-live", id: "chat-live", "aria-busy": "true",
            span { class: "bc-caption", "{live.model}" }
            if live.text.is_empty() {
                p { class: "bc-caption", "Waiting for the first token…" }
            } else {
                Answer { text: live.text.clone(), on_action }
            }
            div { class: "bc-msg-stats bc-caption", span { class: "bc-stats", "{stats}" } }
        }
    }
}

/// Markdown with each code block in its own box with Copy.
#[component]
fn Answer(text: String, on_action: EventHandler<Action>) -> Element {
    rsx! {
        div { class: "bc-msg-text bc-markdown",
            for (i, s) in segments(&text).into_iter().enumerate() {
                match s {
                    Segment::Html(h) => rsx! { div { key: "{i}", dangerous_inner_html: "{h}" } },
                    Segment::Code { lang, text } => rsx! {
                        div { key: "{i}", class: "bc-code",
                            div { class: "bc-code-bar",
                                span { class: "bc-caption", "{lang}" }
                                button { class: "bc-button bc-button-small", "aria-label": "Copy code",
                                    onclick: { let t = text.clone(); move |_| on_action.call(Action::Copy(t.clone())) },
                                    "Copy"
                                }
                            }
                            pre { class: "bc-pre", code { "{text}" } }
                        }
                    },
                }
            }
        }
    }
}

/// The request the Send button makes, for curl and Python (the openai SDK).
#[component]
fn ShowAsCode(chat: ChatData, form: ChatForm, on_action: EventHandler<Action>) -> Element {
    let mut turns: Vec<Turn> = chat
        .current
        .iter()
        .flat_map(|c| c.messages.iter())
        .filter(|m| m.error.is_none() && (!m.content.is_empty() || !m.images.is_empty()))
        .map(|m| Turn {
            role: m.role.clone(),
            text: m.content.clone(),
            images: m.images.iter().map(|i| i.url.clone()).collect(),
        })
        .collect();
    let text = if form.text.trim().is_empty() && chat.pending.is_empty() {
        "Hello!".to_string()
    } else {
        form.text.trim().to_string()
    };
    turns.push(Turn {
        role: "user".into(),
        text,
        images: chat.pending.iter().map(|i| i.url.clone()).collect(),
    });
    let key = chat.key.clone().unwrap_or_else(|| "sk-...".into());
    let (curl, python) = snippets(&chat.base_url, &key, &form, &turns);
    rsx! {
        details { class: "bc-card bc-chat-code", id: "chat-code",
            summary { "Show as code" }
            div { class: "bc-copy",
                span { class: "bc-caption", "curl" }
                pre { class: "bc-pre bc-snippet", id: "chat-code-curl", "{curl}" }
                button { class: "bc-button bc-button-small", "aria-label": "Copy curl command", onclick: { let c = curl.clone(); move |_| on_action.call(Action::Copy(c.clone())) }, "Copy" }
            }
            div { class: "bc-copy",
                span { class: "bc-caption", "Python (openai)" }
                pre { class: "bc-pre bc-snippet", id: "chat-code-python", "{python}" }
                button { class: "bc-button bc-button-small", "aria-label": "Copy Python code", onclick: { let p = python.clone(); move |_| on_action.call(Action::Copy(p.clone())) }, "Copy" }
            }
        }
    }
}

/// How much of an image's base64 the snippets show.
pub const SHOWN_BASE64: usize = 48;

/// The note above snippets whose images are cut short.
pub const SHORTENED_NOTE: &str = "The base64 data of each image is cut short here (it ends in …); Send sends all of it. To run this, put the whole base64 of the file in its place.";

/// `body` with every image data URL cut to its first [`SHOWN_BASE64`] characters of data
/// (whether any was cut).
fn shortened(mut body: serde_json::Value) -> (serde_json::Value, bool) {
    let mut cut = false;
    if let Some(messages) = body["messages"].as_array_mut() {
        for m in messages {
            let Some(parts) = m["content"].as_array_mut() else {
                continue;
            };
            for p in parts {
                let Some(url) = p["image_url"]["url"].as_str() else {
                    continue;
                };
                if let Some((head, data)) = url.split_once(";base64,")
                    && data.len() > SHOWN_BASE64
                {
                    let short = format!(
                        "{head};base64,{}…",
                        data.get(..SHOWN_BASE64).unwrap_or(data)
                    );
                    p["image_url"]["url"] = serde_json::Value::String(short);
                    cut = true;
                }
            }
        }
    }
    (body, cut)
}

/// (curl, Python) for this request. Image data is cut short, with a note saying so.
pub fn snippets(base_url: &str, key: &str, form: &ChatForm, turns: &[Turn]) -> (String, String) {
    let temperature = form.temperature.trim().parse::<f64>().ok();
    let max_tokens = form.max_tokens.trim().parse::<i64>().ok();
    let (body, cut) = shortened(request_body(
        &form.model,
        &form.system,
        temperature,
        max_tokens,
        turns,
        true,
    ));
    let note = if cut {
        format!("# {SHORTENED_NOTE}\n")
    } else {
        String::new()
    };
    let pretty = serde_json::to_string_pretty(&body).unwrap_or_default();
    let curl = format!(
        "{note}curl -N {base_url}/v1/chat/completions \\\n  -H 'Authorization: Bearer {key}' \\\n  -H 'Content-Type: application/json' \\\n  -d '{}'",
        pretty.replace('\'', "'\\''")
    );
    let messages = serde_json::to_string_pretty(&body["messages"]).unwrap_or_default();
    let mut extra = String::new();
    if let Some(t) = temperature {
        extra.push_str(&format!("    temperature={t},\n"));
    }
    if let Some(m) = max_tokens {
        extra.push_str(&format!("    max_tokens={m},\n"));
    }
    let python = format!(
        "{note}from openai import OpenAI\n\nclient = OpenAI(base_url=\"{base_url}/v1\", api_key=\"{key}\")\nstream = client.chat.completions.create(\n    model={model},\n    messages={messages},\n{extra}    stream=True,\n)\nfor chunk in stream:\n    if chunk.choices and chunk.choices[0].delta.content:\n        print(chunk.choices[0].delta.content, end=\"\", flush=True)\n",
        model = serde_json::to_string(&form.model).unwrap_or_default(),
        messages = messages.replace('\n', "\n    "),
    );
    (curl, python)
}

/// The request body for a conversation's turns (oldest first): what Send streams and what
/// the snippets show.
pub fn request_body(
    model: &str,
    system: &str,
    temperature: Option<f64>,
    max_tokens: Option<i64>,
    turns: &[Turn],
    stream: bool,
) -> serde_json::Value {
    use serde_json::json;
    let mut messages = Vec::new();
    if !system.trim().is_empty() {
        messages.push(json!({"role": "system", "content": system}));
    }
    for t in turns {
        // With images: OpenAI content parts, the text first.
        let content = if t.images.is_empty() {
            json!(t.text)
        } else {
            let mut parts = Vec::new();
            if !t.text.is_empty() {
                parts.push(json!({"type": "text", "text": t.text}));
            }
            for url in &t.images {
                parts.push(json!({"type": "image_url", "image_url": {"url": &**url}}));
            }
            json!(parts)
        };
        messages.push(json!({"role": t.role, "content": content}));
    }
    let mut body = json!({"model": model, "messages": messages, "stream": stream});
    if stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    if let Some(t) = temperature {
        body["temperature"] = json!(t);
    }
    if let Some(m) = max_tokens {
        body["max_tokens"] = json!(m);
    }
    body
}
