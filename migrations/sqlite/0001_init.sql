-- Results database of `sweep`: sweeps, their jobs, metrics, loss curves, artifacts.
-- Times are unix milliseconds (BIGINT). Kept to SQL that SQLite and Postgres both accept
-- where it is cheap; a Postgres migration set will differ only in the id columns.

CREATE TABLE sweeps (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    spec_path   TEXT    NOT NULL,
    spec_text   TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY,
    sweep_id      INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
    hash          TEXT    NOT NULL,
    stage         TEXT,
    label         TEXT    NOT NULL,
    config_json   TEXT    NOT NULL,
    seed          BIGINT  NOT NULL,
    -- hash of the job (same sweep) whose final checkpoint initialises this one
    depends_on    TEXT,
    status        TEXT    NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'diverged', 'interrupted')),
    -- claims (every start, resumes included) and failed attempts (what max_attempts limits:
    -- Ctrl-C or a killed orchestrator must not use up a job's retries)
    attempts      INTEGER NOT NULL DEFAULT 0,
    failures      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    -- "host:pid:nonce" of the orchestrator running it
    owner         TEXT,
    heartbeat_at  BIGINT,
    started_at    BIGINT,
    finished_at   BIGINT,
    iteration     BIGINT  NOT NULL DEFAULT 0,
    total_iters   BIGINT,
    error         TEXT,
    stderr_tail   TEXT,
    artifact_dir  TEXT,
    created_at    BIGINT  NOT NULL,
    UNIQUE (sweep_id, hash)
);

-- The claim query: pending / interrupted jobs of one sweep in id order.
CREATE INDEX jobs_claim ON jobs (sweep_id, status, id);

-- One row per number of the evaluation. class NULL: a mean or aAcc. value NULL: NaN
-- (SQLite stores NaN as NULL; MMSeg's nanmean produces NaN for a class absent everywhere).
CREATE TABLE metrics (
    job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    split   TEXT    NOT NULL,
    name    TEXT    NOT NULL,
    class   INTEGER,
    value   DOUBLE PRECISION
);
CREATE INDEX metrics_job ON metrics (job_id);

-- Training curve; a resumed job re-recording an iteration overwrites it. loss NULL: NaN.
CREATE TABLE curves (
    job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    iteration  BIGINT  NOT NULL,
    loss       DOUBLE PRECISION,
    lr         DOUBLE PRECISION,
    secs       DOUBLE PRECISION,
    PRIMARY KEY (job_id, iteration)
);

CREATE TABLE artifacts (
    id          INTEGER PRIMARY KEY,
    job_id      INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL CHECK (kind IN ('checkpoint', 'prediction', 'final')),
    path        TEXT    NOT NULL,
    iteration   BIGINT,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX artifacts_job ON artifacts (job_id);
