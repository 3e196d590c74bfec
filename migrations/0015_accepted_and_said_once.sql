-- A cancel the API answered 200 while the job it returned was still active (a provider winding
-- it down, or one that ignored it) is `accepted`, not `succeeded`: the job has not ended. Like
-- a succeeded one it is never sent again, so the one-cancel index covers it too.
DROP INDEX one_cancel_per_job;
CREATE UNIQUE INDEX one_cancel_per_job ON actions (account, job_id)
    WHERE action = 'cancel' AND outcome IN ('pending', 'succeeded', 'accepted');

-- What an upstream sent that ftguard cannot trust about a job — an id that cannot be one URL
-- path segment, a negative count, a time before 2015 or after the job was first seen — is
-- said once per job and kind, across passes and restarts, not at every sync.
CREATE TABLE said_once (
    account  TEXT    NOT NULL,
    job_id   TEXT    NOT NULL,
    what     TEXT    NOT NULL,
    detail   TEXT    NOT NULL,
    said_at  INTEGER NOT NULL,
    PRIMARY KEY (account, job_id, what)
) WITHOUT ROWID;
