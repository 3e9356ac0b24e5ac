-- The database's own identity, made once when the file is created: every result a job
-- process writes into an artifact folder names it, so a file left there by another
-- database (or by an earlier database at the same path) is never taken for this one's.
CREATE TABLE store_meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

-- Every attempt of a job: how it ended and why (`sweep show JOB`).
-- ended_as: the job's status after the attempt ('pending' when a failure is retried);
-- failure: 'transient' or 'permanent' for a failed attempt.
CREATE TABLE attempts (
    job_id         INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt        INTEGER NOT NULL,
    owner          TEXT,
    started_at     BIGINT,
    ended_at       BIGINT  NOT NULL,
    ended_as       TEXT    NOT NULL,
    failure        TEXT,
    reason         TEXT,
    sweep_version  TEXT,
    PRIMARY KEY (job_id, attempt)
);

-- The sweep build that produced a job's recorded result.
ALTER TABLE jobs ADD COLUMN sweep_version TEXT;
