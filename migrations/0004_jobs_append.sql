-- Jobs become an ordinary rowid table. As a WITHOUT ROWID table its ~1 KB rows were clustered
-- by (account, id); the API's ids are random, so every insert of a first sync landed mid-tree
-- and split full pages of payloads. Now rows are appended and (account, id) is a small index.
-- `seq` is declared so that VACUUM keeps it: status history refers to jobs by it.
CREATE TABLE jobs_v2 (
    seq              INTEGER PRIMARY KEY,
    account          TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    model            TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    -- The status before the latest write of this row (NULL when that write inserted it):
    -- lets one upsert statement report what it changed (RETURNING sees only new values).
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
    UNIQUE (account, id)
);
INSERT INTO jobs_v2 (account, id, model, status, prev_status, created_at, finished_at,
                     trained_tokens, estimated_finish, training_file, last_step_at, raw,
                     first_seen_at, updated_at)
    SELECT account, id, model, status, status, created_at, finished_at, trained_tokens,
           estimated_finish, training_file, last_step_at, raw, first_seen_at, updated_at
    FROM jobs ORDER BY created_at;

-- Status history is found by the job's `seq`, which grows with every new job, instead of by
-- (account, id): a first sync appends to that index instead of inserting at random places.
-- account and job_id stay in each row for people reading the file.
CREATE TABLE status_transitions_v2 (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_seq     INTEGER NOT NULL,
    account     TEXT    NOT NULL,
    job_id      TEXT    NOT NULL,
    from_status TEXT,
    to_status   TEXT    NOT NULL,
    observed_at INTEGER NOT NULL
);
INSERT INTO status_transitions_v2 (seq, job_seq, account, job_id, from_status, to_status, observed_at)
    SELECT t.seq, j.seq, t.account, t.job_id, t.from_status, t.to_status, t.observed_at
    FROM status_transitions t JOIN jobs_v2 j ON j.account = t.account AND j.id = t.job_id
    ORDER BY t.seq;

DROP TABLE jobs;
DROP TABLE status_transitions;
ALTER TABLE jobs_v2 RENAME TO jobs;
ALTER TABLE status_transitions_v2 RENAME TO status_transitions;
CREATE INDEX jobs_by_status ON jobs (status, account);
CREATE INDEX jobs_by_created ON jobs (created_at);
CREATE INDEX transitions_by_job ON status_transitions (job_seq);

-- Status history is written by the database itself, in the same statement as the job, so a
-- page of jobs is one statement and no writer can forget a transition.
CREATE TRIGGER jobs_first_seen AFTER INSERT ON jobs
BEGIN
    INSERT INTO status_transitions (job_seq, account, job_id, from_status, to_status, observed_at)
    VALUES (NEW.seq, NEW.account, NEW.id, NULL, NEW.status, NEW.updated_at);
END;
CREATE TRIGGER jobs_status_changed AFTER UPDATE OF status ON jobs
WHEN OLD.status IS NOT NEW.status
BEGIN
    INSERT INTO status_transitions (job_seq, account, job_id, from_status, to_status, observed_at)
    VALUES (NEW.seq, NEW.account, NEW.id, OLD.status, NEW.status, NEW.updated_at);
END;
