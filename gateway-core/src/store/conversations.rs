//! The chat playground's conversations: per user, with their messages. An assistant
//! message keeps what its answer measured (request id, time to first token, tokens,
//! tokens per second, cost) and whether the user stopped it. A user message keeps the
//! images sent with it (data URLs, stored as a JSON array).

use crate::store::db::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use crate::vocab::now_ms;

use super::{StoreError, StoreResult};

/// Longest title kept (characters).
pub const TITLE_MAX: usize = 80;

#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub id: i64,
    pub user_id: String,
    pub title: String,
    pub model: String,
    pub system: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<i64>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// What a conversation is asked with (the playground's settings when it was last sent).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settings {
    pub model: String,
    pub system: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    pub id: i64,
    pub conversation_id: i64,
    /// `user` or `assistant`.
    pub role: String,
    pub content: String,
    /// Images sent with a user message, as data URLs (`data:image/png;base64,...`).
    pub images: Vec<String>,
    /// The model that answered (assistant messages).
    pub model: String,
    pub request_id: Option<String>,
    pub ttft_ms: Option<i64>,
    pub tokens: Option<i64>,
    pub tokens_per_sec: Option<f64>,
    pub cost_nano: Option<i64>,
    pub stopped: bool,
    pub error: Option<String>,
    pub created_ms: i64,
}

const COLUMNS: &str =
    "id, user_id, title, model, system, temperature, max_tokens, created_ms, updated_ms";

fn conversation(r: &Row<'_>) -> crate::store::db::Result<Conversation> {
    Ok(Conversation {
        id: r.get(0)?,
        user_id: r.get(1)?,
        title: r.get(2)?,
        model: r.get(3)?,
        system: r.get(4)?,
        temperature: r.get(5)?,
        max_tokens: r.get(6)?,
        created_ms: r.get(7)?,
        updated_ms: r.get(8)?,
    })
}

/// A title from the first words of a message: one line, at most [`TITLE_MAX`] characters.
pub fn title_from(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return "New chat".into();
    }
    if line.chars().count() <= TITLE_MAX {
        return line;
    }
    let mut t: String = line.chars().take(TITLE_MAX - 1).collect();
    t.push('…');
    t
}

fn clean_title(title: &str) -> StoreResult<String> {
    let t = title.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.is_empty() {
        return Err(StoreError::Invalid("a conversation needs a title".into()));
    }
    if t.chars().count() > TITLE_MAX {
        return Err(StoreError::Invalid(format!(
            "a title has at most {TITLE_MAX} characters"
        )));
    }
    Ok(t)
}

/// A user's conversations, the most recently used first.
pub fn list(conn: &Connection, user_id: &str) -> StoreResult<Vec<Conversation>> {
    Ok(conn.query_all(
        &format!(
            "SELECT {COLUMNS} FROM conversations WHERE user_id = ?1 ORDER BY updated_ms DESC, id DESC"
        ),
        [user_id],
        conversation,
    )?)
}

/// One of the user's conversations.
pub fn get(conn: &Connection, user_id: &str, id: i64) -> StoreResult<Conversation> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM conversations WHERE id = ?1 AND user_id = ?2"),
        params![id, user_id],
        conversation,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound(format!("conversation {id} not found")))
}

/// A new conversation, titled from `first_message`.
pub fn create(
    conn: &mut Connection,
    user_id: &str,
    first_message: &str,
    s: &Settings,
) -> StoreResult<Conversation> {
    let now = now_ms();
    let title = title_from(first_message);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO conversations (user_id, title, model, system, temperature, max_tokens, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![user_id, title, s.model, s.system, s.temperature, s.max_tokens, now],
    )?;
    let id = tx.last_insert_rowid();
    tx.commit()?;
    get(conn, user_id, id)
}

pub fn rename(conn: &Connection, user_id: &str, id: i64, title: &str) -> StoreResult<()> {
    let title = clean_title(title)?;
    let n = conn.execute(
        "UPDATE conversations SET title = ?1 WHERE id = ?2 AND user_id = ?3",
        params![title, id, user_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("conversation {id} not found")));
    }
    Ok(())
}

/// Delete a conversation and its messages.
pub fn delete(conn: &mut Connection, user_id: &str, id: i64) -> StoreResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let n = tx.execute(
        "DELETE FROM conversations WHERE id = ?1 AND user_id = ?2",
        params![id, user_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("conversation {id} not found")));
    }
    tx.execute(
        "DELETE FROM conversation_messages WHERE conversation_id = ?1",
        [id],
    )?;
    tx.commit()?;
    Ok(())
}

/// Add a message and remember the settings it was sent with; the conversation moves to
/// the top of the list.
pub fn add_message(
    conn: &mut Connection,
    user_id: &str,
    m: &Message,
    s: Option<&Settings>,
) -> StoreResult<i64> {
    if m.role != "user" && m.role != "assistant" {
        return Err(StoreError::Invalid(format!("unknown role {:?}", m.role)));
    }
    let now = now_ms();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let n = match s {
        Some(s) => tx.execute(
            "UPDATE conversations SET updated_ms = ?1, model = ?2, system = ?3, temperature = ?4, max_tokens = ?5
             WHERE id = ?6 AND user_id = ?7",
            params![now, s.model, s.system, s.temperature, s.max_tokens, m.conversation_id, user_id],
        )?,
        None => tx.execute(
            "UPDATE conversations SET updated_ms = ?1 WHERE id = ?2 AND user_id = ?3",
            params![now, m.conversation_id, user_id],
        )?,
    };
    if n == 0 {
        return Err(StoreError::NotFound(format!(
            "conversation {} not found",
            m.conversation_id
        )));
    }
    let images = (!m.images.is_empty())
        .then(|| serde_json::to_string(&m.images))
        .transpose()
        .map_err(|e| StoreError::Invalid(format!("the images could not be kept: {e}")))?;
    tx.execute(
        "INSERT INTO conversation_messages (conversation_id, role, content, model, request_id, ttft_ms, tokens, tokens_per_sec, cost_nano, stopped, error, created_ms, images)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            m.conversation_id, m.role, m.content, m.model, m.request_id, m.ttft_ms, m.tokens,
            m.tokens_per_sec, m.cost_nano, m.stopped as i64, m.error, now, images
        ],
    )?;
    let id = tx.last_insert_rowid();
    tx.commit()?;
    Ok(id)
}

/// A conversation's messages, oldest first.
pub fn messages(conn: &Connection, user_id: &str, id: i64) -> StoreResult<Vec<Message>> {
    get(conn, user_id, id)?;
    Ok(conn.query_all(
        "SELECT id, conversation_id, role, content, model, request_id, ttft_ms, tokens, tokens_per_sec, cost_nano, stopped, error, created_ms, images
         FROM conversation_messages WHERE conversation_id = ?1 ORDER BY id",
        [id],
        |r| {
            Ok(Message {
                id: r.get(0)?,
                conversation_id: r.get(1)?,
                role: r.get(2)?,
                content: r.get(3)?,
                model: r.get(4)?,
                request_id: r.get(5)?,
                ttft_ms: r.get(6)?,
                tokens: r.get(7)?,
                tokens_per_sec: r.get(8)?,
                cost_nano: r.get(9)?,
                stopped: r.get::<_, i64>(10)? != 0,
                error: r.get(11)?,
                created_ms: r.get(12)?,
                // A column that does not parse (written by hand) shows no images.
                images: r
                    .get::<_, Option<String>>(13)?
                    .and_then(|j| serde_json::from_str(&j).ok())
                    .unwrap_or_default(),
            })
        },
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversations_keep_messages_per_user_and_go_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            crate::store::Store::connect(&crate::store::testing::location(dir.path())).unwrap();
        store
            .with(|c| {
                let s = Settings {
                    model: "local-1".into(),
                    system: "Be brief.".into(),
                    temperature: Some(0.2),
                    max_tokens: Some(64),
                };
                let long = "word ".repeat(40);
                let conv = create(c, "u1", &long, &s)?;
                assert!(conv.title.ends_with('…') && conv.title.chars().count() == TITLE_MAX);
                assert_eq!(
                    (conv.model.as_str(), conv.temperature),
                    ("local-1", Some(0.2))
                );
                let other = create(c, "u2", "hello", &Settings::default())?;
                add_message(
                    c,
                    "u1",
                    &Message {
                        conversation_id: conv.id,
                        role: "user".into(),
                        content: "Say hi".into(),
                        images: vec!["data:image/png;base64,iVBORw0KGgo=".into()],
                        ..Default::default()
                    },
                    Some(&s),
                )?;
                add_message(
                    c,
                    "u1",
                    &Message {
                        conversation_id: conv.id,
                        role: "assistant".into(),
                        content: "hi".into(),
                        model: "local-1".into(),
                        request_id: Some("r-1".into()),
                        ttft_ms: Some(12),
                        tokens: Some(3),
                        tokens_per_sec: Some(41.5),
                        cost_nano: Some(7),
                        stopped: true,
                        ..Default::default()
                    },
                    None,
                )?;
                let m = messages(c, "u1", conv.id)?;
                assert_eq!(m.len(), 2);
                assert_eq!(m[1].tokens_per_sec, Some(41.5));
                // A user message's images come back as sent; a message without has none.
                assert_eq!(m[0].images, vec!["data:image/png;base64,iVBORw0KGgo="]);
                assert!(m[1].images.is_empty());
                assert!(m[1].stopped && !m[0].stopped);
                // Another user's conversation is not reachable.
                assert!(matches!(
                    messages(c, "u2", conv.id),
                    Err(StoreError::NotFound(_))
                ));
                assert!(
                    add_message(
                        c,
                        "u2",
                        &Message {
                            conversation_id: conv.id,
                            role: "user".into(),
                            ..Default::default()
                        },
                        None
                    )
                    .is_err()
                );
                assert!(matches!(
                    rename(c, "u1", conv.id, "  "),
                    Err(StoreError::Invalid(_))
                ));
                rename(c, "u1", conv.id, "  Greetings\n test ")?;
                assert_eq!(list(c, "u1")?[0].title, "Greetings test");
                delete(c, "u1", conv.id)?;
                assert!(list(c, "u1")?.is_empty());
                let left: i64 =
                    c.query_row("SELECT COUNT(*) FROM conversation_messages", [], |r| {
                        r.get(0)
                    })?;
                assert_eq!(left, 0);
                assert_eq!(list(c, "u2")?[0].id, other.id);
                Ok(())
            })
            .unwrap();
    }
}
