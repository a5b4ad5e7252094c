-- The desktop's chat playground (issue 19): conversations and their messages, kept per
-- user so they survive a restart. An assistant message keeps what the answer measured:
-- the gateway's request id (its log record, with the cost), time to first token, tokens
-- per second, and whether the user stopped it.
CREATE TABLE conversations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT NOT NULL,
    title       TEXT NOT NULL,
    model       TEXT NOT NULL DEFAULT '',
    system      TEXT NOT NULL DEFAULT '',
    temperature REAL,
    max_tokens  INTEGER,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);
CREATE INDEX conversations_user ON conversations(user_id, updated_ms);
CREATE TABLE conversation_messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content         TEXT NOT NULL,
    model           TEXT NOT NULL DEFAULT '',
    request_id      TEXT,
    ttft_ms         INTEGER,
    tokens          INTEGER,
    tokens_per_sec  REAL,
    cost_nano       INTEGER,
    stopped         INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    created_ms      INTEGER NOT NULL
);
CREATE INDEX conversation_messages_conv ON conversation_messages(conversation_id, id);
