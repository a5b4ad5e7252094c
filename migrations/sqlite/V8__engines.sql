-- Issue 18: each deployment names its engine (a backend of the installed llama.cpp builds,
-- NULL: the preferred one) and what it serves (chat, embeddings or rerank).
ALTER TABLE deployments ADD COLUMN engine TEXT;
ALTER TABLE deployments ADD COLUMN mode TEXT NOT NULL DEFAULT 'chat'
    CHECK (mode IN ('chat', 'embeddings', 'rerank'));
