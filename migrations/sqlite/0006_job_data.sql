-- The class names of the job's data set by id (a JSON array), recorded when the job is
-- planned: reports name classes ("Dice.fluid") without reading the data set's folder.
ALTER TABLE jobs ADD COLUMN classes TEXT;
-- A content fingerprint of the files the job trained and validated on, recorded with its
-- result (`train:<hex> val:<hex>`): rows scored on different files are told apart.
ALTER TABLE jobs ADD COLUMN data_fingerprint TEXT;
