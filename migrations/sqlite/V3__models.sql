-- Local model library (llama-manager): downloaded and imported GGUF models.

CREATE TABLE models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    -- 'import': registered in place (never deleted by us); 'hub': downloaded into the data dir.
    source TEXT NOT NULL CHECK (source IN ('import', 'hub')),
    repo TEXT,
    revision TEXT,
    -- The file llama-server opens (the first shard of a split model).
    path TEXT NOT NULL UNIQUE,
    -- All files (shards and mmproj) together.
    size_bytes INTEGER NOT NULL,
    architecture TEXT NOT NULL,
    parameters INTEGER NOT NULL,
    quantization TEXT,
    context_length INTEGER NOT NULL,
    -- The GGUF header summary (JSON), for info and the fit verdict.
    summary TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE model_files (
    model_id INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('weights', 'mmproj')),
    idx INTEGER NOT NULL,
    path TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    -- Verified SHA-256 (downloads); NULL for imported files.
    sha256 TEXT,
    PRIMARY KEY (model_id, path)
);

-- Resume state of unfinished downloads: the `.part` file and what it is a prefix of.
CREATE TABLE model_downloads (
    part_path TEXT PRIMARY KEY,
    repo TEXT NOT NULL,
    file TEXT NOT NULL,
    revision TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    etag TEXT,
    updated_at INTEGER NOT NULL
);
