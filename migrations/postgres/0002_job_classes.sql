-- The class names of the job's data set by id (a JSON array), recorded when the job is
-- planned: reports name classes ("Dice.fluid") without reading the data set's folder.
ALTER TABLE jobs ADD COLUMN classes TEXT;
