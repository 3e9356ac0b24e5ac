-- Per-image results of an evaluation: the IoUMetric counts per image and class (any summary
-- can be recomputed for any subset of images: bootstrap intervals, folds), the image's Dice
-- and, for foreground classes, its surface distances. NULL: undefined (NaN).
CREATE TABLE image_metrics (
    job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    split      TEXT    NOT NULL,
    image      TEXT    NOT NULL,
    class      INTEGER NOT NULL,
    intersection BIGINT NOT NULL,
    pred       BIGINT  NOT NULL,
    label      BIGINT  NOT NULL,
    dice       DOUBLE PRECISION,
    hd95       DOUBLE PRECISION,
    assd       DOUBLE PRECISION,
    -- both | neither | label_only | prediction_only (foreground classes)
    presence   TEXT,
    unit       TEXT    NOT NULL,
    PRIMARY KEY (job_id, split, image, class)
);

-- Validation during training (`eval.every`): one row per metric and iteration; a resumed job
-- re-recording an iteration replaces that iteration's rows.
CREATE TABLE eval_curves (
    job_id     INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    iteration  BIGINT  NOT NULL,
    split      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    class      INTEGER,
    value      DOUBLE PRECISION
);
CREATE INDEX eval_curves_job ON eval_curves (job_id, iteration);
