-- When `sync_failing` was last notified per account. The run of failures it belongs to is read
-- from `sync_runs`; a notice older than the run's first failure belongs to an earlier outage.
-- Lets a restarted daemon, and `run --once` started by a timer, say an outage once in all.
CREATE TABLE sync_notices (
    account             TEXT    PRIMARY KEY,
    failing_notified_at INTEGER NOT NULL
) WITHOUT ROWID;
