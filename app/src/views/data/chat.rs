//! What the Chat page (the playground) shows and sends: the models the desktop key may
//! use, the saved conversations, the open one, and the answer streaming now.

/// Everything the Chat page shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatData {
    /// The models the desktop key may use, local ones first.
    pub models: Vec<ChatModel>,
    /// Saved conversations, most recently used first.
    pub conversations: Vec<ConversationItem>,
    /// The open conversation (None: a new chat).
    pub current: Option<ConversationView>,
    /// The model to offer first (the open conversation's, the one asked for from another
    /// page, or the first local one).
    pub model: String,
    /// The answer being streamed now.
    pub live: Option<LiveAnswer>,
    /// The gateway's address and the key the snippets use (None: no desktop key).
    pub base_url: String,
    pub key: Option<String>,
    /// Why the page cannot send (no key, gateway stopped, no model), with what fixes it.
    pub blocked: Option<String>,
    /// Images attached to the next message, in the order they were added.
    pub pending: Vec<ChatImage>,
}

/// An image attached to a message: PNG, JPEG, WebP or GIF as a data URL
/// (`data:image/png;base64,...`), shared rather than copied from render to render.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatImage {
    /// The file's name (pending attachments); empty for an image of a saved message.
    pub name: String,
    pub url: std::sync::Arc<str>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatModel {
    pub name: String,
    /// Answered on this machine (a library model or a channel marked local).
    pub local: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConversationItem {
    pub id: i64,
    pub title: String,
    pub updated: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConversationView {
    pub id: i64,
    pub title: String,
    pub model: String,
    pub system: String,
    /// As the form shows it ("" when unset).
    pub temperature: String,
    pub max_tokens: String,
    pub messages: Vec<ChatMessage>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    /// Images sent with a user message.
    pub images: Vec<ChatImage>,
    /// The model that answered.
    pub model: String,
    pub stats: Option<AnswerStats>,
    pub stopped: bool,
    pub error: Option<String>,
}

/// What an answer measured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnswerStats {
    /// Time to first token.
    pub ttft_ms: Option<i64>,
    pub tokens: Option<i64>,
    pub tokens_per_sec: Option<f64>,
    /// As the Logs page shows it (`$0.0000036`), from the request's log record.
    pub cost: Option<String>,
    pub request_id: Option<String>,
}

/// The answer streaming now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiveAnswer {
    pub conversation_id: i64,
    pub model: String,
    pub text: String,
    pub ttft_ms: Option<i64>,
    /// Chunks of text received so far.
    pub chunks: i64,
    /// Tokens per second so far.
    pub tokens_per_sec: Option<f64>,
}

/// The Send form, as typed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatForm {
    /// None: start a new conversation.
    pub conversation: Option<i64>,
    pub model: String,
    pub system: String,
    pub temperature: String,
    pub max_tokens: String,
    pub text: String,
}
