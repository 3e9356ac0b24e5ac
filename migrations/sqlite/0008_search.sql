-- Adaptive search (`search:` and `stop:` in a sweep file). Every decision is a row derived
-- from the rows before it (see crates/core/src/search): the events jobs reported and the
-- decisions taken, each numbered per sweep. The unique keys make a second proposal of the
-- same trial number or point, a second promotion to the same rung, or a second report of the
-- same rung by the same job impossible, whichever agent tries.
-- (The jobs table's status CHECK gains 'paused' and 'stopped' in code: SQLite cannot alter a
-- CHECK inside a migration's transaction without dropping the table, see store/sql/connect.rs.)

-- A trial's job: its trial number, its index among the trial's seeds x folds, and the rung
-- iteration it runs to before pausing (NULL: to its end).
ALTER TABLE jobs ADD COLUMN trial BIGINT;
ALTER TABLE jobs ADD COLUMN trial_job BIGINT;
ALTER TABLE jobs ADD COLUMN pause_at BIGINT;
CREATE UNIQUE INDEX jobs_trial ON jobs (sweep_id, trial, trial_job) WHERE trial IS NOT NULL;

-- The effective sweep file of a search, so that agents on any node build the same trial jobs.
ALTER TABLE sweeps ADD COLUMN search_spec TEXT;

CREATE TABLE search_events (
    sweep_id    INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
    seq         BIGINT  NOT NULL,
    kind        TEXT    NOT NULL,
    trial       BIGINT,
    trial_job   BIGINT,
    rung        BIGINT,
    job_id      BIGINT,
    body        TEXT    NOT NULL,
    recorded_at BIGINT  NOT NULL,
    PRIMARY KEY (sweep_id, seq)
);
CREATE UNIQUE INDEX search_events_once ON search_events (sweep_id, kind, trial, trial_job, rung)
    WHERE trial IS NOT NULL;

CREATE TABLE search_decisions (
    sweep_id    INTEGER NOT NULL REFERENCES sweeps (id) ON DELETE CASCADE,
    seq         BIGINT  NOT NULL,
    after_event BIGINT  NOT NULL,
    action      TEXT    NOT NULL,
    trial       BIGINT  NOT NULL,
    rung        BIGINT  NOT NULL,
    -- a proposal's values, canonical JSON
    params      TEXT,
    body        TEXT    NOT NULL,
    decided_at  BIGINT  NOT NULL,
    decided_by  TEXT,
    PRIMARY KEY (sweep_id, seq)
);
CREATE UNIQUE INDEX search_proposed_once ON search_decisions (sweep_id, trial) WHERE action = 'propose';
CREATE UNIQUE INDEX search_point_once ON search_decisions (sweep_id, params) WHERE params IS NOT NULL;
CREATE UNIQUE INDEX search_promoted_once ON search_decisions (sweep_id, trial, rung) WHERE action = 'promote';
