-- Burst routing: per-token sovereignty and mode, and what each request's routing decided.

ALTER TABLE tokens ADD COLUMN local_only INTEGER NOT NULL DEFAULT 0;
-- NULL: the global burst mode applies.
ALTER TABLE tokens ADD COLUMN burst_mode TEXT CHECK (burst_mode IS NULL OR burst_mode IN ('edge_burst', 'cloud_burst'));

-- 'local' / 'cloud' of the channel that served (NULL: none did).
ALTER TABLE logs ADD COLUMN locality TEXT;
-- 'mode,reason,sensitivity' where burst routing decided, else NULL.
ALTER TABLE logs ADD COLUMN burst TEXT;
CREATE INDEX logs_locality_time ON logs(locality, created_at_ms);

-- Routing-relevant token columns grew: recreate the trigger with them.
DROP TRIGGER tokens_rev_u;
CREATE TRIGGER tokens_rev_u AFTER UPDATE OF name, key_hash, status, quota_limit_nano, expired_time, models, "group", allow_ips, rpm_limit, tpm_limit, local_only, burst_mode ON tokens BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;

-- Settings the data plane reads (burst) move the revision too, so other processes notice.
CREATE TRIGGER settings_rev_i AFTER INSERT ON settings BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER settings_rev_u AFTER UPDATE ON settings BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
