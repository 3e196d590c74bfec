-- The spend of a budget period's finished jobs is kept between passes while nothing finished
-- changed (`Store::history_mark`). A status change or a new job adds a status transition; a
-- finished job whose payload changes without one (trained_tokens filled in late, say) is
-- counted here, so kept tallies are redone instead of going stale.
CREATE TABLE store_marks (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    finished_rewrites INTEGER NOT NULL
);
INSERT INTO store_marks (id, finished_rewrites) VALUES (1, 0);
CREATE TRIGGER jobs_finished_rewritten AFTER UPDATE OF raw ON jobs
WHEN OLD.status = NEW.status AND NEW.status IN ('succeeded','failed','cancelled')
BEGIN
    UPDATE store_marks SET finished_rewrites = finished_rewrites + 1 WHERE id = 1;
END;
