-- BurnCloud initial schema. Money is integer nano-dollars (1 USD = 1_000_000_000).
-- Times are unix seconds unless the column name says _ms.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    email         TEXT,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'user')),
    "group"       TEXT NOT NULL DEFAULT 'default',
    status        INTEGER NOT NULL DEFAULT 1,
    balance_nano  INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE channels (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL,
    type            INTEGER NOT NULL,
    key             TEXT NOT NULL,
    base_url        TEXT NOT NULL DEFAULT '',
    models          TEXT NOT NULL,
    "group"         TEXT NOT NULL DEFAULT 'default',
    weight          INTEGER NOT NULL DEFAULT 1,
    priority        INTEGER NOT NULL DEFAULT 0,
    model_mapping   TEXT,
    status          INTEGER NOT NULL DEFAULT 1,
    locality        TEXT NOT NULL DEFAULT 'cloud' CHECK (locality IN ('local', 'cloud')),
    rpm_limit       INTEGER,
    disabled_reason TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- One row per (group, model, channel): what the router looks up.
CREATE TABLE abilities (
    "group"    TEXT NOT NULL,
    model      TEXT NOT NULL,
    channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    enabled    INTEGER NOT NULL,
    priority   INTEGER NOT NULL,
    weight     INTEGER NOT NULL,
    PRIMARY KEY ("group", model, channel_id)
);
CREATE INDEX abilities_channel ON abilities(channel_id);

CREATE TABLE tokens (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    key_hash         TEXT NOT NULL UNIQUE,
    key_prefix       TEXT NOT NULL,
    status           INTEGER NOT NULL DEFAULT 1,
    quota_limit_nano INTEGER NOT NULL DEFAULT -1,
    used_quota_nano  INTEGER NOT NULL DEFAULT 0,
    expired_time     INTEGER NOT NULL DEFAULT -1,
    models           TEXT NOT NULL DEFAULT '',
    "group"          TEXT NOT NULL DEFAULT 'default',
    allow_ips        TEXT NOT NULL DEFAULT '',
    rpm_limit        INTEGER,
    tpm_limit        INTEGER,
    created_at       INTEGER NOT NULL
);
CREATE INDEX tokens_user ON tokens(user_id);

-- Prices per 1M tokens in nano-dollars; an alias row points at another model instead.
CREATE TABLE prices (
    model            TEXT PRIMARY KEY,
    input_nano       INTEGER,
    output_nano      INTEGER,
    cache_read_nano  INTEGER,
    cache_write_nano INTEGER,
    alias_of         TEXT,
    updated_at       INTEGER NOT NULL,
    CHECK ((alias_of IS NULL) = (input_nano IS NOT NULL AND output_nano IS NOT NULL))
);

-- One record per data-plane request.
CREATE TABLE logs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id        TEXT NOT NULL,
    created_at_ms     INTEGER NOT NULL,
    user_id           TEXT,
    token_id          INTEGER,
    model             TEXT,
    channel_id        INTEGER,
    endpoint          TEXT NOT NULL DEFAULT '',
    status            INTEGER NOT NULL,
    stream            INTEGER NOT NULL DEFAULT 0,
    latency_ms        INTEGER,
    ttfb_ms           INTEGER,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    cost_nano         INTEGER NOT NULL DEFAULT 0,
    error             TEXT,
    failover          TEXT,
    flags             TEXT
);
CREATE INDEX logs_user_time ON logs(user_id, created_at_ms);
CREATE INDEX logs_time ON logs(created_at_ms);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- config_rev moves whenever routing-relevant data changes, from any process
-- (the CLI included), so a running gateway notices and reloads its snapshot.
CREATE TABLE meta (
    k TEXT PRIMARY KEY,
    v INTEGER NOT NULL
);
INSERT INTO meta (k, v) VALUES ('config_rev', 0);

CREATE TRIGGER channels_rev_i AFTER INSERT ON channels BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER channels_rev_u AFTER UPDATE ON channels BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER channels_rev_d AFTER DELETE ON channels BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER tokens_rev_i AFTER INSERT ON tokens BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER tokens_rev_u AFTER UPDATE OF name, key_hash, status, quota_limit_nano, expired_time, models, "group", allow_ips, rpm_limit, tpm_limit ON tokens BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER tokens_rev_d AFTER DELETE ON tokens BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER prices_rev_i AFTER INSERT ON prices BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER prices_rev_u AFTER UPDATE ON prices BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER prices_rev_d AFTER DELETE ON prices BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER users_rev_u AFTER UPDATE OF role, status, "group" ON users BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER users_rev_d AFTER DELETE ON users BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
