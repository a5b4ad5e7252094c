-- Multi-tenant governance: user balances, groups with price ratios, New API style model
-- ratios, redemption codes and invitations. Ratios are integer millionths (1.5 = 1500000).

-- A user's credit works like a token's quota: quota_nano is what was granted (-1: unlimited),
-- used_quota_nano what was spent (moved by the usage writer); balance = quota - used.
-- balance_nano was never enforced, so every existing user keeps unlimited use.
ALTER TABLE users RENAME COLUMN balance_nano TO quota_nano;
UPDATE users SET quota_nano = -1;
ALTER TABLE users ADD COLUMN used_quota_nano INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN invited_by TEXT;
-- Login tokens issued before this (unix seconds) are refused: a password change logs out.
ALTER TABLE users ADD COLUMN password_changed_at INTEGER NOT NULL DEFAULT 0;

DROP TRIGGER users_rev_u;
CREATE TRIGGER users_rev_u AFTER UPDATE OF role, status, "group", quota_nano, password_changed_at ON users BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER users_rev_i AFTER INSERT ON users BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;

-- User groups and their price multiplier. A group named by channels but absent here costs 1.0.
CREATE TABLE user_groups (
    name        TEXT PRIMARY KEY,
    ratio_micro INTEGER NOT NULL CHECK (ratio_micro >= 0),
    description TEXT NOT NULL DEFAULT '',
    updated_at  INTEGER NOT NULL
);
INSERT INTO user_groups (name, ratio_micro, description, updated_at)
    VALUES ('default', 1000000, 'everyone', CAST(strftime('%s', 'now') AS INTEGER)),
           ('vip', 1000000, '', CAST(strftime('%s', 'now') AS INTEGER));
CREATE TRIGGER user_groups_rev_i AFTER INSERT ON user_groups BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER user_groups_rev_u AFTER UPDATE ON user_groups BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER user_groups_rev_d AFTER DELETE ON user_groups BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;

-- New API's pricing by ratio: cost = (prompt + completion × completion_ratio) × model_ratio
-- × group_ratio × $2 / 1M tokens. A model with an absolute price (prices) ignores its ratio.
CREATE TABLE model_ratios (
    model                  TEXT PRIMARY KEY,
    model_ratio_micro      INTEGER NOT NULL CHECK (model_ratio_micro >= 0),
    completion_ratio_micro INTEGER NOT NULL DEFAULT 1000000 CHECK (completion_ratio_micro >= 0),
    updated_at             INTEGER NOT NULL
);
CREATE TRIGGER model_ratios_rev_i AFTER INSERT ON model_ratios BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER model_ratios_rev_u AFTER UPDATE ON model_ratios BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER model_ratios_rev_d AFTER DELETE ON model_ratios BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;

-- Redemption codes: each credits one user once (redeemed_at set in the same transaction).
CREATE TABLE redemptions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    amount_nano INTEGER NOT NULL CHECK (amount_nano > 0),
    created_by  TEXT,
    created_at  INTEGER NOT NULL,
    -- Unix seconds; -1 never.
    expires_at  INTEGER NOT NULL DEFAULT -1,
    redeemed_by TEXT,
    redeemed_at INTEGER
);
CREATE INDEX redemptions_created ON redemptions(created_at);

-- Invitation codes: registration accepts one while it has uses left (max_uses 0: unlimited).
CREATE TABLE invitations (
    code       TEXT PRIMARY KEY,
    inviter_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    max_uses   INTEGER NOT NULL DEFAULT 1 CHECK (max_uses >= 0),
    uses       INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL DEFAULT -1,
    created_at INTEGER NOT NULL
);
CREATE INDEX invitations_inviter ON invitations(inviter_id);
