-- Protocol adaptors: each request's client format and the serving channel's format, and
-- the prompt tokens read from / written to the provider's cache (billed at their own prices).
ALTER TABLE logs ADD COLUMN ingress TEXT;
ALTER TABLE logs ADD COLUMN upstream TEXT;
ALTER TABLE logs ADD COLUMN cache_read_tokens INTEGER;
ALTER TABLE logs ADD COLUMN cache_write_tokens INTEGER;
