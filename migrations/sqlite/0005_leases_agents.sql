-- Many agents on one queue (PostgreSQL, or several processes on one SQLite file).
-- lease_expires_at: the claim holds until then (database clock, unix ms); the owner's
-- heartbeat renews it by lease_ms. An expired lease is reclaimed by any agent.
ALTER TABLE jobs ADD COLUMN lease_expires_at BIGINT;
ALTER TABLE jobs ADD COLUMN lease_ms BIGINT;
-- The Slurm job (`123_4`) of the agent that runs it, for `sweep status`.
ALTER TABLE jobs ADD COLUMN slurm_job TEXT;
-- Where the sweep's checkpoints, predictions and logs go (`--runs` or the file's `runs:`),
-- so that agents on other nodes find the same folder.
ALTER TABLE sweeps ADD COLUMN runs_dir TEXT;
CREATE INDEX jobs_running ON jobs (status, lease_expires_at);
