-- Local runtime (llama-manager): how each library model is deployed on llama-server, what
-- the user wants (desired) and what the supervisor last reported (state ...).

CREATE TABLE deployments (
    model_id      INTEGER PRIMARY KEY REFERENCES models(id) ON DELETE CASCADE,
    -- Requested settings; NULL: the default (first free port from 8080, the fit verdict's
    -- context and GPU layers, llama-server's own thread count, one slot).
    port          INTEGER,
    ctx_size      INTEGER,
    gpu_layers    INTEGER,
    threads       INTEGER,
    parallel      INTEGER,
    -- JSON array of extra llama-server arguments.
    extra_args    TEXT NOT NULL DEFAULT '[]',
    -- Start on the first request for local-<id>; stop after idle_ttl_secs without requests
    -- (0: never).
    jit           INTEGER NOT NULL DEFAULT 0,
    idle_ttl_secs INTEGER NOT NULL DEFAULT 0,
    -- Start when the app starts.
    autostart     INTEGER NOT NULL DEFAULT 0,
    desired       TEXT NOT NULL DEFAULT 'stopped' CHECK (desired IN ('running', 'stopped')),
    -- When desired was last set (ms): asking again retries a failed start.
    desired_at    INTEGER NOT NULL DEFAULT 0,
    -- Reported by the supervisor of the running app. acted_at: the desired_at it has acted
    -- on (a CLI waits for it).
    acted_at      INTEGER NOT NULL DEFAULT 0,
    state         TEXT NOT NULL DEFAULT 'stopped'
                  CHECK (state IN ('stopped', 'starting', 'ready', 'stopping', 'restarting', 'failed')),
    pid           INTEGER,
    actual_port   INTEGER,
    started_at    INTEGER,
    restarts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    -- The `local-<id>` channel registered while ready.
    channel_id    INTEGER,
    updated_at    INTEGER NOT NULL
);

-- Which models are startable on demand is routing data: other processes must notice.
CREATE TRIGGER deployments_rev_i AFTER INSERT ON deployments BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER deployments_rev_u AFTER UPDATE OF jit ON deployments BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;
CREATE TRIGGER deployments_rev_d AFTER DELETE ON deployments BEGIN UPDATE meta SET v = v + 1 WHERE k = 'config_rev'; END;

-- The process whose supervisor owns the children (one per data dir); it beats every second.
CREATE TABLE runtime_owner (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    pid          INTEGER NOT NULL,
    heartbeat_ms INTEGER NOT NULL
);
