-- Several gateways on one database (issue 22). Each running gateway registers itself and
-- keeps a heartbeat; quota_leases holds the part of a token's quota or a user's balance
-- that one gateway may spend without asking the database again. A lease counts only
-- while its gateway's heartbeat is fresh.
CREATE TABLE instances (
    id           TEXT PRIMARY KEY,
    started_ms   BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL
);
CREATE TABLE quota_leases (
    instance     TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('token', 'user')),
    account      TEXT NOT NULL,
    granted_nano BIGINT NOT NULL,
    PRIMARY KEY (instance, kind, account)
);
CREATE INDEX quota_leases_account ON quota_leases(kind, account);
