-- A job the sweep file no longer produces (a grid value removed, a stage edited so that its
-- dependants are new jobs): kept with its results, never claimed, left out of reports unless
-- asked for. Cleared when the file produces the job again.
ALTER TABLE jobs ADD COLUMN retired_at BIGINT;
