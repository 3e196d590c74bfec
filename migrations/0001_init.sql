-- Latest view of every job, per account. `raw` is the payload as the API sent it.
CREATE TABLE jobs (
    account          TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    model            TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    finished_at      INTEGER,
    trained_tokens   INTEGER,
    estimated_finish INTEGER,
    training_file    TEXT,
    last_step_at     INTEGER,
    raw              TEXT    NOT NULL,
    first_seen_at    INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (account, id)
) WITHOUT ROWID;
CREATE INDEX jobs_by_status ON jobs (status, account);
CREATE INDEX jobs_by_created ON jobs (created_at);

-- Every status change ftguard observed (from_status NULL: first sight).
CREATE TABLE status_transitions (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    account     TEXT    NOT NULL,
    job_id      TEXT    NOT NULL,
    from_status TEXT,
    to_status   TEXT    NOT NULL,
    observed_at INTEGER NOT NULL
);
CREATE INDEX transitions_by_job ON status_transitions (account, job_id);

CREATE TABLE sync_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account     TEXT    NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    pages       INTEGER NOT NULL DEFAULT 0,
    jobs_seen   INTEGER NOT NULL DEFAULT 0,
    error       TEXT
);
CREATE INDEX sync_runs_by_account ON sync_runs (account, started_at);

-- Every decision that reached enforcement, written `pending` before any network call.
CREATE TABLE actions (
    id                         INTEGER PRIMARY KEY AUTOINCREMENT,
    account                    TEXT    NOT NULL,
    job_id                     TEXT    NOT NULL,
    policy                     TEXT    NOT NULL,
    action                     TEXT    NOT NULL,
    reason                     TEXT    NOT NULL,
    outcome                    TEXT    NOT NULL,
    attempts                   INTEGER NOT NULL DEFAULT 0,
    requested_at               INTEGER NOT NULL,
    completed_at               INTEGER,
    http_status                INTEGER,
    response_status            TEXT,
    response_trained_tokens    INTEGER,
    response_finished_at       INTEGER,
    response_fine_tuned_model  TEXT,
    response_error             TEXT,
    error                      TEXT,
    note                       TEXT
);
CREATE INDEX actions_by_job ON actions (account, job_id);
-- The database itself refuses a second in-flight or successful cancel of a job.
CREATE UNIQUE INDEX one_cancel_per_job ON actions (account, job_id)
    WHERE action = 'cancel' AND outcome IN ('pending', 'succeeded');

-- Grace periods in progress: first time a job was seen violating a policy.
CREATE TABLE grace_marks (
    account       TEXT    NOT NULL,
    job_id        TEXT    NOT NULL,
    policy        TEXT    NOT NULL,
    first_seen_at INTEGER NOT NULL,
    PRIMARY KEY (account, job_id, policy)
) WITHOUT ROWID;
