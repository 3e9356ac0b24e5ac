-- Rows scored by `sweep evaluate` from another program's predictions (nnU-Net, MMSeg, ...):
-- a JSON object {name, predictions, content, cases}; NULL for the sweep's own jobs. Such a
-- row is succeeded from the start, never claimed and never retired by a sweep file.
ALTER TABLE jobs ADD COLUMN external TEXT;
