-- The store holds domain values, not the API's JSON: a job's values are kept in `detail`,
-- ftguard's own JSON of them (`store/jobs.rs`, `Detail`; the columns queried are written from
-- the same values), and `raw` is kept verbatim only to be shown. Rows written before are given
-- their `detail` here from their columns, and what has none from `raw` the way
-- `provider::payload` reads a job (tests/it/migrations.rs compares the two):
-- `n_epochs` from `hyperparameters`, or from `method.<type>.hyperparameters` when that one is a
-- number and the top one is not; metadata values as text; an empty `error` is none. A row whose
-- `raw` is not JSON (edited by hand) keeps no `detail` and is skipped on reading, as before.
ALTER TABLE jobs ADD COLUMN detail TEXT;

UPDATE jobs SET detail = json_object(
    'model', model,
    'status', status,
    'finished_at', finished_at,
    'trained_tokens', trained_tokens,
    'estimated_finish', estimated_finish,
    'training_file', training_file,
    'fine_tuned_model', json_extract(raw, '$.fine_tuned_model'),
    'validation_file', json_extract(raw, '$.validation_file'),
    'method', json_extract(raw, '$.method.type'),
    'suffix', json_extract(raw, '$.user_provided_suffix'),
    'n_epochs', json(CASE
        WHEN e.top IS NOT NULL AND e.nested IS NOT NULL
             AND NOT (json_type(e.top) IN ('integer', 'real') OR (json_type(e.top) = 'text'
                      AND trim(e.top ->> '$') GLOB '[0-9]*' AND NOT trim(e.top ->> '$') GLOB '*[^0-9.]*'))
             AND (json_type(e.nested) IN ('integer', 'real') OR (json_type(e.nested) = 'text'
                      AND trim(e.nested ->> '$') GLOB '[0-9]*' AND NOT trim(e.nested ->> '$') GLOB '*[^0-9.]*'))
            THEN e.nested
        ELSE COALESCE(e.top, e.nested)
    END),
    'metadata', json((SELECT json_group_object(key, CASE type
            WHEN 'text' THEN value
            WHEN 'true' THEN 'true'
            WHEN 'false' THEN 'false'
            WHEN 'null' THEN 'null'
            ELSE '' || value  -- as text, not embedded as JSON
        END) FROM json_each(jobs.raw, '$.metadata')
        WHERE json_type(jobs.raw, '$.metadata') = 'object')),
    'error', json(CASE
        WHEN json_type(raw, '$.error') IS NULL OR json_type(raw, '$.error') = 'null' THEN NULL
        WHEN raw -> '$.error' IN ('{}', '""') THEN NULL
        ELSE raw -> '$.error'
    END)
)
FROM (SELECT seq,
             nullif(raw -> '$.hyperparameters.n_epochs', 'null') AS top,
             COALESCE(nullif(raw -> '$.method.supervised.hyperparameters.n_epochs', 'null'),
                      nullif(raw -> '$.method.dpo.hyperparameters.n_epochs', 'null'),
                      nullif(raw -> '$.method.reinforcement.hyperparameters.n_epochs', 'null'))
                 AS nested
        FROM jobs WHERE json_valid(raw)) AS e
WHERE e.seq = jobs.seq;
