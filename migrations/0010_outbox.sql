-- Webhook notices not delivered yet. A notice is written here before it is sent and deleted
-- once a webhook took it, so one a webhook refused (or that a crash or restart interrupted)
-- is sent again later — with backoff, for up to a day — instead of being lost. `notifier` is
-- the webhook's URL reference (`env NAME`, `file PATH`, `credential NAME`), never the URL;
-- `body` is what is POSTed.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY,
    notifier   TEXT    NOT NULL,
    event      TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    INTEGER NOT NULL,
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox (next_at);
