-- Billed tokens per training file and tokenizer, counted once (files are immutable).
-- A failed count keeps its error so it is retried later, not every pass.
CREATE TABLE file_tokens (
    account    TEXT    NOT NULL,
    file_id    TEXT    NOT NULL,
    encoding   TEXT    NOT NULL,
    examples   INTEGER,
    tokens     INTEGER,
    malformed  INTEGER,
    bytes      INTEGER,
    error      TEXT,
    counted_at INTEGER NOT NULL,
    PRIMARY KEY (account, file_id, encoding)
) WITHOUT ROWID;
