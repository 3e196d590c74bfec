-- Training metrics, for the training-quality policies (loss_plateau, loss_divergence): one row
-- per job and reported step with the values its metrics event gave (what it left out stays
-- null). Read incrementally from the job's events: `metrics_cursor` holds the newest event
-- stored, and the next read pages from the newest event down to it.
CREATE TABLE metrics (
    account                         TEXT    NOT NULL,
    job_id                          TEXT    NOT NULL,
    step                            INTEGER NOT NULL,
    total_steps                     INTEGER,
    train_loss                      REAL,
    train_mean_token_accuracy       REAL,
    valid_loss                      REAL,
    valid_mean_token_accuracy       REAL,
    full_valid_loss                 REAL,
    full_valid_mean_token_accuracy  REAL,
    reported_at                     INTEGER NOT NULL,
    PRIMARY KEY (account, job_id, step)
) WITHOUT ROWID;

CREATE TABLE metrics_cursor (
    account          TEXT    NOT NULL,
    job_id           TEXT    NOT NULL,
    newest_event_id  TEXT    NOT NULL,
    read_at          INTEGER NOT NULL,
    -- The newest step when its checkpoints were last read (they are read again once an epoch
    -- may have ended since).
    checkpoints_step INTEGER,
    PRIMARY KEY (account, job_id)
) WITHOUT ROWID;

-- Checkpoints the API listed for a job (one at the end of each epoch): a usable model each.
CREATE TABLE checkpoints (
    account     TEXT    NOT NULL,
    job_id      TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    model       TEXT    NOT NULL,
    step        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    metrics     TEXT    NOT NULL,
    PRIMARY KEY (account, job_id, id)
) WITHOUT ROWID;

-- The checkpoint to use instead of a job a training-quality policy stopped: ftguard's JSON
-- {model, step, metric, value}, or null when the API listed none.
ALTER TABLE actions ADD COLUMN best_checkpoint TEXT;

-- What stopping it did not spend, estimated when a training-quality policy stopped a job (steps
-- not trained x tokens per step so far x price), in micro-dollars; null when not estimated.
ALTER TABLE actions ADD COLUMN estimated_saving INTEGER;
