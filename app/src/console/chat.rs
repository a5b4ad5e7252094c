//! The Chat page's service (the playground): conversations kept in the database, and the
//! answer streamed from the gateway's own `/v1/chat/completions` with the desktop key, so
//! a chat is authenticated, routed, logged and billed like any other client's request.
//!
//! One answer streams at a time. Its text and speed live in [`ChatHub`] while it streams
//! (the window shows them as they arrive, woken by [`ChatHub::subscribe`]); when it ends —
//! finished, stopped or failed — it is saved with what it measured: time to first token,
//! tokens, tokens per second, and the cost from the request's own log record.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use gateway_core::AppState;
use gateway_core::console::routing;
use gateway_core::store::conversations::{self, Message, Settings};
use gateway_core::store::logs;
use serde_json::Value;
use tokio::sync::{oneshot, watch};

use super::Console;
use super::actions::store_err;
use super::first_run;
use super::load::{date_time, usd_text};
use crate::views::chat::{ATTACH_FORM, Turn, request_body};
use crate::views::data::{
    AnswerStats, ChatData, ChatForm, ChatImage, ChatMessage, ChatModel, ConversationItem,
    ConversationView, LiveAnswer, Notice, RefusedFields,
};

/// The form id of the Send form (its refused fields are marked).
pub const FORM: &str = "chat";

/// The largest image file attached, and the most all images of one message may weigh
/// together (the gateway takes request bodies up to 32 MB by default; base64 adds a third).
pub const IMAGE_MAX_BYTES: u64 = 20 * 1024 * 1024;

/// The type of an image the playground sends, from the file's first bytes (None: not a
/// PNG, JPEG, WebP or GIF, whatever the file's name says).
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// `bytes` in megabytes, as a person reads them (`20.5 MB`).
fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

/// An attachment refused: the message shows next to the Attach control and in the notice.
fn refuse_image(text: String, fix: &str) -> Notice {
    let mut n = Notice::error(text.clone(), Some(fix));
    n.refused = Some(Box::new(RefusedFields {
        form: ATTACH_FORM.into(),
        fields: vec![("image".into(), text)],
    }));
    n
}

/// The playground's state in this process.
pub struct ChatHub {
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
    http: reqwest::Client,
}

#[derive(Default)]
struct Inner {
    /// `http://127.0.0.1:port` while the gateway listens.
    endpoint: Option<String>,
    /// The open conversation; before the user picks one (or New chat), the most recent.
    current: Option<i64>,
    chosen: bool,
    /// A model asked for from another page (for a new chat).
    model: Option<String>,
    live: Option<LiveAnswer>,
    stop: Option<oneshot::Sender<()>>,
    /// Images attached to the next message, with their size in bytes.
    pending: Vec<(ChatImage, u64)>,
}

impl Default for ChatHub {
    fn default() -> Self {
        ChatHub {
            inner: Mutex::default(),
            changed: watch::channel(0).0,
            // Loopback to our own gateway: no proxy, no overall timeout (answers stream
            // for as long as the model writes).
            http: reqwest::Client::builder()
                .no_proxy()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }
}

impl ChatHub {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Woken whenever the streaming answer changes or ends.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    /// The answer streaming now.
    pub fn live(&self) -> Option<LiveAnswer> {
        self.lock().live.clone()
    }

    /// Where the gateway listens (`host:port`; anything else: not listening). A wildcard
    /// address is reached on loopback.
    pub fn set_listening(&self, listening: &str) {
        let endpoint = listening.parse::<std::net::SocketAddr>().ok().map(|mut a| {
            if a.ip().is_unspecified() {
                a.set_ip(if a.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            format!("http://{a}")
        });
        self.lock().endpoint = endpoint;
    }
}

/// A number field: empty is None; otherwise it must parse and lie in `range`.
fn parse_field<T: std::str::FromStr + PartialOrd>(
    text: &str,
    range: std::ops::RangeInclusive<T>,
) -> Result<Option<T>, ()> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<T>() {
        Ok(v) if range.contains(&v) => Ok(Some(v)),
        _ => Err(()),
    }
}

impl Console {
    /// The models `key` may use (None: no key), those on this machine first, then by name.
    pub fn served_models(&self, key: Option<&str>) -> Vec<ChatModel> {
        let mut models: Vec<ChatModel> = key
            .map(|k| routing::served_models(&self.state, k))
            .unwrap_or_default()
            .into_iter()
            .map(|m| ChatModel {
                name: m.name,
                local: m.local,
            })
            .collect();
        models.sort_by(|a, b| b.local.cmp(&a.local).then(a.name.cmp(&b.name)));
        models
    }

    /// The Chat page's data (`listening`: where the gateway listens, as Settings shows it).
    pub fn chat_data(&self, listening: &str) -> gateway_core::store::StoreResult<ChatData> {
        self.chat.set_listening(listening);
        let (key, key_note) = first_run::dashboard_key(&self.state);
        let models = self.served_models(key.as_deref());
        let owner = key
            .as_deref()
            .and_then(|k| routing::key_owner(&self.state, k));
        let (current, asked, live, endpoint) = {
            let i = self.chat.lock();
            (
                i.current,
                i.model.clone(),
                i.live.clone(),
                i.endpoint.clone(),
            )
        };
        let (chosen, pending) = {
            let i = self.chat.lock();
            (i.chosen, i.pending.iter().map(|(p, _)| p.clone()).collect())
        };
        let (conversations, current) = match &owner {
            Some(owner) => self.state.store.with(|c| {
                let list = conversations::list(c, owner)?;
                let current = if chosen {
                    current
                } else {
                    list.first().map(|c| c.id)
                };
                let view = match current {
                    Some(id) => match conversations::get(c, owner, id) {
                        Ok(conv) => {
                            let messages = conversations::messages(c, owner, id)?;
                            Some(view(conv, messages))
                        }
                        Err(_) => None,
                    },
                    None => None,
                };
                Ok((list, view))
            })?,
            None => (Vec::new(), None),
        };
        let model = current
            .as_ref()
            .map(|c| c.model.clone())
            .filter(|m| !m.is_empty())
            .or(asked)
            .or_else(|| models.first().map(|m| m.name.clone()))
            .unwrap_or_default();
        let blocked = if key.is_none() {
            Some(format!(
                "{} Create a new key on the Dashboard to chat.",
                key_note.unwrap_or_default()
            ))
        } else if endpoint.is_none() {
            Some("The gateway is stopped. Start it on the Dashboard to chat.".into())
        } else if models.is_empty() {
            Some("No model to chat with yet. Add a provider on the Channels page, or download and deploy a model on the Models page.".into())
        } else {
            None
        };
        Ok(ChatData {
            models,
            conversations: conversations
                .into_iter()
                .map(|c| ConversationItem {
                    id: c.id,
                    title: c.title,
                    updated: date_time(c.updated_ms),
                })
                .collect(),
            current,
            model,
            live,
            base_url: endpoint.unwrap_or_else(|| format!("http://{listening}")),
            key,
            blocked,
            pending,
        })
    }

    /// Attach the image file at `path` to the next message: a PNG, JPEG, WebP or GIF of
    /// at most 20 MB (all of one message's images together too).
    pub async fn chat_attach(&self, path: &str) -> Option<Notice> {
        let path = std::path::PathBuf::from(path.trim());
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        if name.is_empty() {
            return Some(refuse_image(
                "No file was given to attach.".into(),
                "Pick an image with Attach image, or drop one on the message box.",
            ));
        }
        let size = match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => m.len(),
            Ok(_) => {
                return Some(refuse_image(
                    format!("{name} is a folder, not an image."),
                    "Pick a PNG, JPEG, WebP or GIF file.",
                ));
            }
            Err(e) => {
                return Some(refuse_image(
                    format!("{name} could not be read: {e}."),
                    "Check that the file is still there and that you may read it, then attach it again.",
                ));
            }
        };
        if size > IMAGE_MAX_BYTES {
            return Some(refuse_image(
                format!(
                    "{name} is {}; an image can be at most {}.",
                    mb(size),
                    mb(IMAGE_MAX_BYTES)
                ),
                "Scale the image down or save it as JPEG, then attach it again.",
            ));
        }
        let attached: u64 = self.chat.lock().pending.iter().map(|(_, n)| n).sum();
        if attached + size > IMAGE_MAX_BYTES {
            return Some(refuse_image(
                format!(
                    "With {name} the images of this message would weigh {}; together they can be at most {}.",
                    mb(attached + size),
                    mb(IMAGE_MAX_BYTES)
                ),
                "Remove an image or send this one in the next message.",
            ));
        }
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(e) => {
                return Some(refuse_image(
                    format!("{name} could not be read: {e}."),
                    "Check that you may read the file, then attach it again.",
                ));
            }
        };
        let Some(mime) = image_type(&bytes) else {
            return Some(refuse_image(
                format!("{name} is not a PNG, JPEG, WebP or GIF image."),
                "Attach a PNG, JPEG, WebP or GIF file (other formats: save as PNG first).",
            ));
        };
        use base64::Engine as _;
        let url = format!(
            "data:{mime};base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&bytes)
        );
        self.chat.lock().pending.push((
            ChatImage {
                name,
                url: url.into(),
            },
            bytes.len() as u64,
        ));
        self.chat.bump();
        None
    }

    /// Take the pending image at `index` off the next message.
    pub fn chat_detach(&self, index: usize) -> Option<Notice> {
        let mut i = self.chat.lock();
        if index >= i.pending.len() {
            return Some(Notice::error(
                "That image is no longer attached.",
                Some("The images shown under the message box are the ones that go with it."),
            ));
        }
        i.pending.remove(index);
        drop(i);
        self.chat.bump();
        None
    }

    /// Open a saved conversation (None: a new chat).
    pub fn chat_open(&self, id: Option<i64>) -> Option<Notice> {
        let mut i = self.chat.lock();
        i.current = id;
        i.chosen = true;
        if id.is_none() {
            i.model = None;
        }
        None
    }

    /// A new chat with `model` picked.
    pub fn chat_with(&self, model: String) {
        let mut i = self.chat.lock();
        i.current = None;
        i.chosen = true;
        i.model = Some(model);
    }

    pub fn chat_stop(&self) -> Option<Notice> {
        match self.chat.lock().stop.take() {
            Some(tx) => {
                let _ = tx.send(());
                None
            }
            None => Some(Notice::error("No answer is streaming.", None)),
        }
    }

    fn chat_owner(&self) -> Result<(String, String), Notice> {
        let (key, note) = first_run::dashboard_key(&self.state);
        let Some(key) = key else {
            return Err(Notice::error(
                note.unwrap_or_else(|| "There is no desktop key.".into()),
                Some("Create a new key on the Dashboard, then send again."),
            ));
        };
        let owner = routing::key_owner(&self.state, &key).ok_or_else(|| {
            Notice::error(
                "The desktop key is not active yet.",
                Some("Wait a second and send again."),
            )
        })?;
        Ok((key, owner))
    }

    pub fn chat_rename(&self, id: i64, title: &str) -> Option<Notice> {
        let owner = match self.chat_owner() {
            Ok((_, o)) => o,
            Err(n) => return Some(n),
        };
        Some(
            match self
                .state
                .store
                .with(|c| conversations::rename(c, &owner, id, title))
            {
                Ok(()) => Notice::ok("Conversation renamed."),
                Err(e) => store_err(e),
            },
        )
    }

    pub fn chat_delete(&self, id: i64) -> Option<Notice> {
        let owner = match self.chat_owner() {
            Ok((_, o)) => o,
            Err(n) => return Some(n),
        };
        if self
            .chat
            .lock()
            .live
            .as_ref()
            .is_some_and(|l| l.conversation_id == id)
        {
            return Some(Notice::error(
                "This conversation is still being answered.",
                Some("Stop the answer first, then delete it."),
            ));
        }
        Some(
            match self
                .state
                .store
                .with(|c| conversations::delete(c, &owner, id))
            {
                Ok(()) => {
                    let mut i = self.chat.lock();
                    if i.current == Some(id) {
                        i.current = None;
                        i.chosen = false;
                    }
                    Notice::ok("Conversation deleted.")
                }
                Err(e) => store_err(e),
            },
        )
    }

    /// Send a message and stream the answer in the background.
    pub async fn chat_send(&self, f: ChatForm) -> Option<Notice> {
        let mut fields = Vec::new();
        let text = f.text.trim().to_string();
        let images: Vec<ChatImage> = self
            .chat
            .lock()
            .pending
            .iter()
            .map(|(p, _)| p.clone())
            .collect();
        if text.is_empty() && images.is_empty() {
            fields.push(("text".to_string(), "Type a message.".to_string()));
        }
        let model = f.model.trim().to_string();
        if model.is_empty() {
            fields.push(("model".to_string(), "Pick a model.".to_string()));
        }
        let temperature = parse_field::<f64>(&f.temperature, 0.0..=2.0).unwrap_or_else(|()| {
            fields.push((
                "temperature".into(),
                "A number from 0 to 2 (e.g. 0.7), or empty for the model's default.".into(),
            ));
            None
        });
        let max_tokens = parse_field::<i64>(&f.max_tokens, 1..=1_000_000).unwrap_or_else(|()| {
            fields.push((
                "max_tokens".into(),
                "A whole number of tokens from 1 to 1000000, or empty for no limit.".into(),
            ));
            None
        });
        if !fields.is_empty() {
            return Some(Notice::refusing(FORM, "The message was not sent.", fields));
        }
        let (key, owner) = match self.chat_owner() {
            Ok(k) => k,
            Err(n) => return Some(n),
        };
        let Some(endpoint) = self.chat.lock().endpoint.clone() else {
            return Some(Notice::error(
                "The gateway is stopped, so nothing can answer.",
                Some("Start the gateway on the Dashboard, then send again."),
            ));
        };
        if self.chat.lock().live.is_some() {
            return Some(Notice::error(
                "An answer is still streaming.",
                Some("Stop it, or wait for it to finish, then send again."),
            ));
        }
        let settings = Settings {
            model: model.clone(),
            system: f.system.clone(),
            temperature,
            max_tokens,
        };
        let store = &self.state.store;
        let saved = store.with(|c| {
            let id = match f.conversation {
                Some(id) => conversations::get(c, &owner, id)?.id,
                None => {
                    let title = if text.is_empty() { "Image" } else { &text };
                    conversations::create(c, &owner, title, &settings)?.id
                }
            };
            conversations::add_message(
                c,
                &owner,
                &Message {
                    conversation_id: id,
                    role: "user".into(),
                    content: text.clone(),
                    images: images.iter().map(|i| i.url.to_string()).collect(),
                    ..Default::default()
                },
                Some(&settings),
            )?;
            let turns: Vec<Turn> = conversations::messages(c, &owner, id)?
                .into_iter()
                .filter(|m| m.error.is_none() && (!m.content.is_empty() || !m.images.is_empty()))
                .map(|m| Turn {
                    role: m.role,
                    text: m.content,
                    images: m.images.into_iter().map(Into::into).collect(),
                })
                .collect();
            Ok((id, turns))
        });
        let (id, turns) = match saved {
            Ok(v) => v,
            Err(e) => return Some(store_err(e)),
        };
        // Sent with the message: off the pending list (one attached meanwhile stays).
        {
            let mut i = self.chat.lock();
            let n = images.len().min(i.pending.len());
            i.pending.drain(..n);
        }
        let body = request_body(&model, &f.system, temperature, max_tokens, &turns, true);
        let (stop_tx, stop_rx) = oneshot::channel();
        {
            let mut i = self.chat.lock();
            i.current = Some(id);
            i.chosen = true;
            i.stop = Some(stop_tx);
            i.live = Some(LiveAnswer {
                conversation_id: id,
                model: model.clone(),
                ..Default::default()
            });
        }
        self.chat.bump();
        let job = Stream {
            hub: self.chat.clone(),
            state: self.state.clone(),
            url: format!("{endpoint}/v1/chat/completions"),
            key,
            owner,
            conversation: id,
            model: model.clone(),
        };
        tokio::spawn(job.run(body, stop_rx));
        // No message: the answer streaming in says it.
        None
    }
}

fn view(conv: conversations::Conversation, messages: Vec<Message>) -> ConversationView {
    ConversationView {
        id: conv.id,
        title: conv.title,
        model: conv.model,
        system: conv.system,
        temperature: conv.temperature.map(|t| t.to_string()).unwrap_or_default(),
        max_tokens: conv.max_tokens.map(|t| t.to_string()).unwrap_or_default(),
        messages: messages
            .into_iter()
            .map(|m| ChatMessage {
                stats: (m.role == "assistant").then(|| AnswerStats {
                    ttft_ms: m.ttft_ms,
                    tokens: m.tokens,
                    tokens_per_sec: m.tokens_per_sec,
                    cost: m.cost_nano.map(usd_text),
                    request_id: m.request_id.clone(),
                }),
                role: m.role,
                content: m.content,
                images: m
                    .images
                    .into_iter()
                    .map(|url| ChatImage {
                        name: String::new(),
                        url: url.into(),
                    })
                    .collect(),
                model: m.model,
                stopped: m.stopped,
                error: m.error,
            })
            .collect(),
    }
}

/// One answer being streamed.
struct Stream {
    hub: Arc<ChatHub>,
    state: Arc<AppState>,
    url: String,
    key: String,
    owner: String,
    conversation: i64,
    model: String,
}

/// What a stream ended with.
#[derive(Default)]
struct Outcome {
    text: String,
    request_id: Option<String>,
    first: Option<Instant>,
    last: Option<Instant>,
    chunks: i64,
    usage_tokens: Option<i64>,
    stopped: bool,
    error: Option<String>,
}

impl Stream {
    async fn run(self, body: Value, mut stop: oneshot::Receiver<()>) {
        let started = Instant::now();
        let mut out = Outcome::default();
        let sent = self
            .hub
            .http
            .post(&self.url)
            .bearer_auth(&self.key)
            .json(&body)
            .send();
        let resp = tokio::select! {
            r = sent => Some(r),
            _ = &mut stop => None,
        };
        match resp {
            None => out.stopped = true,
            Some(Err(e)) => out.error = Some(format!("The gateway could not be reached: {e}")),
            Some(Ok(resp)) => {
                out.request_id = resp
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                if resp.status().is_success() {
                    self.read(resp, started, &mut stop, &mut out).await;
                } else {
                    let status = resp.status();
                    let text = resp.text().await.unwrap_or_default();
                    let message = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                        .unwrap_or(text);
                    out.error = Some(format!("The gateway answered {status}: {message}"));
                }
            }
        }
        self.finish(started, out).await;
    }

    /// Read the SSE stream line by line as it arrives (only the unfinished line is kept).
    async fn read(
        &self,
        mut resp: reqwest::Response,
        started: Instant,
        stop: &mut oneshot::Receiver<()>,
        out: &mut Outcome,
    ) {
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let chunk = tokio::select! {
                c = resp.chunk() => c,
                _ = &mut *stop => { out.stopped = true; return; }
            };
            let bytes = match chunk {
                Ok(Some(b)) => b,
                Ok(None) => return,
                Err(e) => {
                    out.error = Some(format!("The answer broke off: {e}"));
                    return;
                }
            };
            pending.extend_from_slice(&bytes);
            let mut changed = false;
            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&line);
                let Some(data) = line.trim().strip_prefix("data:") else {
                    continue;
                };
                let data = data.trim();
                if data == "[DONE]" {
                    continue;
                }
                let Ok(v) = serde_json::from_str::<Value>(data) else {
                    continue;
                };
                if let Some(msg) = v["error"]["message"].as_str() {
                    out.error = Some(format!("The model stopped with an error: {msg}"));
                }
                if let Some(n) = v["usage"]["completion_tokens"].as_i64() {
                    out.usage_tokens = Some(n);
                }
                let piece = v["choices"][0]["delta"]["content"].as_str().unwrap_or("");
                if !piece.is_empty() {
                    let now = Instant::now();
                    out.first.get_or_insert(now);
                    out.last = Some(now);
                    out.chunks += 1;
                    out.text.push_str(piece);
                    changed = true;
                }
            }
            if changed {
                let mut i = self.hub.lock();
                if let Some(live) = i.live.as_mut() {
                    live.text.clone_from(&out.text);
                    live.chunks = out.chunks;
                    live.ttft_ms = out.first.map(|f| (f - started).as_millis() as i64);
                    live.tokens_per_sec = rate(out.chunks, out.first, out.last);
                }
                drop(i);
                self.hub.bump();
            }
        }
    }

    /// Save the answer with what it measured; its cost and token count come from the
    /// request's log record (written by the usage writer once the gateway settled it).
    async fn finish(self, started: Instant, out: Outcome) {
        let mut cost = None;
        let mut logged_tokens = None;
        if let Some(rid) = &out.request_id {
            // A stopped stream is settled when the gateway notices the closed connection.
            for _ in 0..40 {
                self.state.flush_usage().await;
                let q = logs::LogQuery {
                    user_id: Some(self.owner.clone()),
                    request_id: Some(rid.clone()),
                    start: Some(gateway_core::vocab::now_ms() / 1000 - 3600),
                    page: 1,
                    page_size: 1,
                    ..Default::default()
                };
                let st = self.state.clone();
                let found =
                    tokio::task::spawn_blocking(move || st.store.with(|c| logs::query(c, &q)))
                        .await
                        .ok()
                        .and_then(|r| r.ok())
                        .and_then(|(rows, _)| rows.into_iter().next());
                if let Some(row) = found {
                    cost = Some(row.record.cost_nano);
                    logged_tokens = row.record.completion_tokens;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let tokens = out
            .usage_tokens
            .or(logged_tokens)
            .or((out.chunks > 0).then_some(out.chunks));
        let per_sec = rate(tokens.unwrap_or(0), out.first, out.last);
        let message = Message {
            conversation_id: self.conversation,
            role: "assistant".into(),
            content: out.text,
            model: self.model.clone(),
            request_id: out.request_id,
            ttft_ms: out.first.map(|f| (f - started).as_millis() as i64),
            tokens,
            tokens_per_sec: per_sec,
            cost_nano: cost,
            stopped: out.stopped,
            error: out.error,
            ..Default::default()
        };
        let st = self.state.clone();
        let owner = self.owner.clone();
        let saved = tokio::task::spawn_blocking(move || {
            st.store
                .with(|c| conversations::add_message(c, &owner, &message, None))
        })
        .await;
        if !matches!(saved, Ok(Ok(_))) {
            tracing::warn!(
                conversation = self.conversation,
                "a chat answer could not be saved"
            );
        }
        {
            let mut i = self.hub.lock();
            i.live = None;
            i.stop = None;
        }
        self.hub.bump();
    }
}

/// Tokens per second between the first and the last piece of text (None: too few to tell).
fn rate(tokens: i64, first: Option<Instant>, last: Option<Instant>) -> Option<f64> {
    let secs = (last? - first?).as_secs_f64();
    (tokens > 1 && secs > 0.0).then(|| (tokens - 1) as f64 / secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_fields_accept_empty_and_refuse_out_of_range() {
        assert_eq!(parse_field::<f64>("", 0.0..=2.0), Ok(None));
        assert_eq!(parse_field::<f64>(" 0.7 ", 0.0..=2.0), Ok(Some(0.7)));
        assert_eq!(parse_field::<f64>("3", 0.0..=2.0), Err(()));
        assert_eq!(parse_field::<i64>("ten", 1..=10), Err(()));
    }

    #[test]
    fn the_body_has_the_system_prompt_first_and_asks_for_usage_when_streaming() {
        let turns = vec![Turn {
            role: "user".into(),
            text: "hi".into(),
            images: Vec::new(),
        }];
        let b = request_body("m", "Be brief.", Some(0.5), Some(9), &turns, true);
        assert_eq!(b["messages"][0]["role"], "system");
        assert_eq!(b["messages"][1]["content"], "hi");
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(
            (b["temperature"].as_f64(), b["max_tokens"].as_i64()),
            (Some(0.5), Some(9))
        );
        let plain = request_body("m", " ", None, None, &turns, false);
        assert_eq!(plain["messages"].as_array().unwrap().len(), 1);
        assert!(plain.get("stream_options").is_none() && plain.get("temperature").is_none());
    }

    #[test]
    fn speed_needs_two_pieces_of_text() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(rate(11, Some(t0), Some(t1)), Some(20.0));
        assert_eq!(rate(1, Some(t0), Some(t1)), None);
        assert_eq!(rate(5, None, Some(t1)), None);
    }
}
