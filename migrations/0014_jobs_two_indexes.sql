-- Jobs keep two full indexes instead of four. A first sync writes every job into each of them,
-- and a page's commit wrote 20 index pages to the log beside the table's 26: (account,
-- created_at) and (created_at) were 10 of them, and each only served listings in an order that
-- the identity key can serve too once creation time leads it. So the identity is now
-- (created_at, account, id): newest first across accounts, an account's jobs by skipping the
-- others' (a handful of accounts), ties broken by account then id. A first sync of 10,000 jobs
-- takes about a tenth less time (BENCHMARKS.md).
DROP INDEX jobs_by_account;
DROP INDEX jobs_by_created;
DROP INDEX jobs_identity;
CREATE UNIQUE INDEX jobs_identity ON jobs (created_at, account, id);
-- Active jobs in the same order, so listings of them page with the same cursor.
DROP INDEX jobs_active;
CREATE INDEX jobs_active ON jobs (created_at, account, id)
    WHERE status NOT IN ('succeeded','failed','cancelled') AND gone_at IS NULL;
