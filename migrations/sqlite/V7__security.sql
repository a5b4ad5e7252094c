-- Safe by default (issue 15).

-- Registration becomes `closed` by default on new installs. Installs that already have
-- users and never saved a choice ran with the old default, `open`: keep it for them.
INSERT INTO settings (key, value)
SELECT 'governance', '{"registration":"open"}'
WHERE EXISTS (SELECT 1 FROM users)
  AND NOT EXISTS (SELECT 1 FROM settings WHERE key = 'governance');

-- Limits an admin set on someone else's token: its owner may only tighten them.
ALTER TABLE tokens ADD COLUMN limits_locked INTEGER NOT NULL DEFAULT 0;

-- The price catalog (shipped with the binary, refreshed by `burncloud price sync`):
-- billed when the owner set no price and no ratio for a model.
CREATE TABLE price_catalog (
    model             TEXT PRIMARY KEY,
    provider          TEXT NOT NULL,
    mode              TEXT NOT NULL DEFAULT 'chat',
    input_nano        INTEGER NOT NULL,
    output_nano       INTEGER NOT NULL,
    cache_read_nano   INTEGER,
    cache_write_nano  INTEGER,
    context_length    INTEGER,
    max_output_tokens INTEGER,
    source            TEXT NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE TRIGGER price_catalog_rev_i AFTER INSERT ON price_catalog BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER price_catalog_rev_u AFTER UPDATE ON price_catalog BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER price_catalog_rev_d AFTER DELETE ON price_catalog BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
