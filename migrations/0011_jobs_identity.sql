-- A job is found by (account, created_at, id) instead of (account, id). The API's ids are
-- random, so a unique index on them took every page of a first sync to ~60 scattered index
-- pages, each written to the WAL again at every page's commit: that index alone cost about a
-- third of a first sync. Creation times come in order (the list is newest first, and a new job
-- is newer than every stored one), so this index is written at its edge like the others.
-- A job's created_at never changes (the API sets it when the job is made); lookups by id alone
-- read this index, which holds the ids (a few milliseconds at 100,000 jobs).
CREATE TABLE jobs_v3 (
    seq              INTEGER PRIMARY KEY,
    account          TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    model            TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    -- The status before the latest write of this row (NULL when that write inserted it).
    prev_status      TEXT,
    created_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    trained_tokens   INTEGER,
    estimated_finish INTEGER,
    training_file    TEXT,
    last_step_at     INTEGER,
    raw              TEXT    NOT NULL,
    first_seen_at    INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    steps_checked_at INTEGER,
    gone_at          INTEGER
);
INSERT INTO jobs_v3 (seq, account, id, model, status, prev_status, created_at, finished_at,
                     trained_tokens, estimated_finish, training_file, last_step_at, raw,
                     first_seen_at, updated_at, steps_checked_at, gone_at)
    SELECT seq, account, id, model, status, prev_status, created_at, finished_at,
           trained_tokens, estimated_finish, training_file, last_step_at, raw,
           first_seen_at, updated_at, steps_checked_at, gone_at
    FROM jobs ORDER BY seq;
-- Its indexes and triggers go with it.
DROP TABLE jobs;
ALTER TABLE jobs_v3 RENAME TO jobs;

CREATE UNIQUE INDEX jobs_identity ON jobs (account, created_at, id);
CREATE INDEX jobs_by_status ON jobs (status, account);
CREATE INDEX jobs_by_created ON jobs (created_at);
-- An account's jobs in creation order, ties in storing order (listings page through them).
CREATE INDEX jobs_by_account ON jobs (account, created_at);
CREATE INDEX jobs_active ON jobs (created_at)
    WHERE status NOT IN ('succeeded','failed','cancelled') AND gone_at IS NULL;
CREATE INDEX jobs_gone ON jobs (account, status) WHERE gone_at IS NOT NULL;

-- Status changes of stored jobs are history rows, written in the same statement. A job's first
-- sight no longer is one: it is the row itself (`first_seen_at`, and the status before its
-- first change), read back as the first entry of its history. That was a second row, and its
-- index entry, written for every job of a first sync. Rows already written stay.
CREATE TRIGGER jobs_status_changed AFTER UPDATE OF status ON jobs
WHEN OLD.status IS NOT NEW.status
BEGIN
    INSERT INTO status_transitions (job_seq, account, job_id, from_status, to_status, observed_at)
    VALUES (NEW.seq, NEW.account, NEW.id, OLD.status, NEW.status, NEW.updated_at);
END;
CREATE TRIGGER jobs_finished_rewritten AFTER UPDATE OF raw ON jobs
WHEN OLD.status = NEW.status AND NEW.status IN ('succeeded','failed','cancelled')
BEGIN
    UPDATE store_marks SET finished_rewrites = finished_rewrites + 1 WHERE id = 1;
END;
