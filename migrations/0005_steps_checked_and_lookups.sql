-- When the job's events were last fetched successfully. `stalled` decides only on evidence:
-- a job whose events could not be fetched is never called stalled for lack of steps.
ALTER TABLE jobs ADD COLUMN steps_checked_at INTEGER;

-- Active jobs are a handful in a history of thousands: every sync and pass looks them up, and
-- an account's oldest one is the incremental boundary. Without this index each of those read
-- every stored row (125 ms per query at 100,000 jobs, several times a minute). Keyed by
-- creation time alone, so listings of active jobs come out in order without a sort; per-account
-- questions read all active jobs, which are few.
CREATE INDEX jobs_active ON jobs (created_at)
    WHERE status NOT IN ('succeeded','failed','cancelled');
-- An account's newest job (the boundary when none is active).
CREATE INDEX jobs_by_account ON jobs (account, created_at);

