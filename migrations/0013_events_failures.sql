-- Jobs whose events the API would not give (a gateway that does not route `/events` for the
-- provider, as Portkey for Bedrock and Vertex AI): a `stalled` policy wants them every sync,
-- and each sync asked again and warned again. One row per job while its events fail: the
-- first failure is said, later ones are retried once an hour; a success deletes the row.
CREATE TABLE events_failures (
    account    TEXT    NOT NULL,
    job_id     TEXT    NOT NULL,
    failed_at  INTEGER NOT NULL,
    error      TEXT    NOT NULL,
    PRIMARY KEY (account, job_id)
) WITHOUT ROWID;
