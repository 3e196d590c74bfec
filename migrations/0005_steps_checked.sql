-- When the job's events were last fetched successfully. `stalled` decides only on evidence:
-- a job whose events could not be fetched is never called stalled for lack of steps.
ALTER TABLE jobs ADD COLUMN steps_checked_at INTEGER;
