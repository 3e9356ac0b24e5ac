-- Shared prefixes: grid rows that differ only in `iters` (with a schedule that does not depend
-- on it) train once. The longer job depends on the next shorter one (`depends_on`) and, with
-- `continues` = 1, continues from its final checkpoint instead of starting from a stage's
-- weights. A job that another continues keeps its optimiser state in that checkpoint.
ALTER TABLE jobs ADD COLUMN continues BIGINT NOT NULL DEFAULT 0;
