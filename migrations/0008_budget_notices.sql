-- Budget thresholds reached (`warn_at`), one row per policy, group, period and percent: each is
-- notified once. They used to be rows of `actions` with account "budget" and a made-up job id
-- ("{group}@{period start}:{percent}%"), which every reader of actions had to know to skip.
-- Those rows move here: the group is what precedes the last '@' (groups may contain '@'; the
-- suffix is digits, ':' and '%' only).
CREATE TABLE budget_notices (
    policy       TEXT    NOT NULL,
    grp          TEXT    NOT NULL,
    period_start INTEGER NOT NULL,
    percent      INTEGER NOT NULL,
    reason       TEXT    NOT NULL,
    reached_at   INTEGER NOT NULL,
    PRIMARY KEY (policy, grp, period_start, percent)
) WITHOUT ROWID;

INSERT OR IGNORE INTO budget_notices (policy, grp, period_start, percent, reason, reached_at)
    SELECT policy,
           substr(head, 1, length(head) - 1),
           CAST(substr(tail, 1, instr(tail, ':') - 1) AS INTEGER),
           CAST(substr(tail, instr(tail, ':') + 1) AS INTEGER),
           reason,
           requested_at
    FROM (SELECT policy, reason, requested_at,
                 rtrim(job_id, '0123456789:%') AS head,
                 substr(job_id, length(rtrim(job_id, '0123456789:%')) + 1) AS tail
          FROM actions
          WHERE account = 'budget' AND action = 'notify' AND job_id LIKE '%@%:%\%' ESCAPE '\')
    WHERE head LIKE '%@' AND instr(tail, ':') > 1;

DELETE FROM actions
WHERE account = 'budget' AND action = 'notify'
  AND EXISTS (SELECT 1 FROM budget_notices n
              WHERE n.policy = actions.policy AND n.reached_at = actions.requested_at
                AND actions.job_id = n.grp || '@' || n.period_start || ':' || n.percent || '%');
