-- A job the API answers 404 for (deleted by the provider, or the account's key now points at
-- another project) is marked gone: ftguard stops retrieving it, deciding on it and counting
-- its projected cost, instead of asking about it and warning every minute for ever. A listing
-- or retrieve that shows it again clears the mark.
ALTER TABLE jobs ADD COLUMN gone_at INTEGER;
DROP INDEX jobs_active;
CREATE INDEX jobs_active ON jobs (created_at)
    WHERE status NOT IN ('succeeded','failed','cancelled') AND gone_at IS NULL;
-- The few gone jobs, for `/metrics` (counted as status "gone", not as the status they had).
CREATE INDEX jobs_gone ON jobs (account, status) WHERE gone_at IS NOT NULL;
