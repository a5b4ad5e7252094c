-- A name the owner chooses for a local model (`burncloud model alias`), answered beside
-- local-<id> and local-<slug>: e.g. the name a tool insists on sending.
ALTER TABLE models ADD COLUMN alias TEXT;
CREATE UNIQUE INDEX models_alias ON models(alias) WHERE alias IS NOT NULL;
CREATE TRIGGER models_alias_rev AFTER UPDATE OF alias ON models BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
