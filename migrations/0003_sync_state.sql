-- Incremental sync: per account, how far back a steady-state sync must page (the creation time
-- of the oldest job that was active at the last sync, or of the newest job when none was), and
-- when the last complete listing finished.
CREATE TABLE sync_state (
    account      TEXT    PRIMARY KEY,
    boundary     INTEGER,
    last_full_at INTEGER
) WITHOUT ROWID;
