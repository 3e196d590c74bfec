# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_ftguard_global_optspecs
    string join \n config= log-format= h/help V/version
end

function __fish_ftguard_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_ftguard_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_ftguard_using_subcommand
    set -l cmd (__fish_ftguard_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c ftguard -n "__fish_ftguard_needs_command" -l config -d 'Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml' -r -F
complete -c ftguard -n "__fish_ftguard_needs_command" -l log-format -d 'Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info)' -r -f -a "text\t''
json\t''"
complete -c ftguard -n "__fish_ftguard_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ftguard -n "__fish_ftguard_needs_command" -s V -l version -d 'Print version'
complete -c ftguard -n "__fish_ftguard_needs_command" -f -a "run" -d 'Run the daemon: sync at start and on daemon.sync_schedule, evaluate policies, enforce. Stops cleanly on SIGTERM/SIGINT; SIGHUP reloads the configuration'
complete -c ftguard -n "__fish_ftguard_needs_command" -f -a "sync" -d 'Sync every account once and print a summary per account. Exit 0 if at least one synced'
complete -c ftguard -n "__fish_ftguard_needs_command" -f -a "plan" -d 'Show what the policies would do now and why. Never acts'
complete -c ftguard -n "__fish_ftguard_needs_command" -f -a "replay" -d 'What the policies would have done over the stored history, and what it would have saved'
complete -c ftguard -n "__fish_ftguard_needs_command" -f -a "jobs" -d 'List stored jobs, newest first'
complete -c ftguard -n "__fish_ftguard_needs_command" -f -a "spend" -d 'Spend per group in a period: spent (finished jobs), projected (active jobs), limit and remaining (from a budget policy with the same period and grouping); and what jobs stopped early by training-quality policies did not spend'
complete -c ftguard -n "__fish_ftguard_needs_command" -f -a "show" -d 'Show one job with its status history and actions, and where it stands with each policy now: breaking it (acted on at the next pass), in grace until when, when a time limit will be reached and what follows, how many steps a training-quality policy gives it if its loss does not improve, or why a policy leaves it alone. A job with stored training metrics also shows its loss curve (train and validation loss over the steps, as sparklines on one scale) with its checkpoints marked and listed'
complete -c ftguard -n "__fish_ftguard_needs_command" -f -a "status" -d 'Whether ftguard is doing its job, from the database: each account\'s last successful sync, active and stored jobs, actions of the last 24 hours. Exit 1 when unhealthy (an account not synced successfully within three sync intervals, as `/healthz`)'
complete -c ftguard -n "__fish_ftguard_needs_command" -f -a "actions" -d 'List recorded actions (cancels, pauses, warnings, holds), oldest first'
complete -c ftguard -n "__fish_ftguard_needs_command" -f -a "cancel" -d 'Cancel a job by hand, through the same recorded path as policies (policy "manual")'
complete -c ftguard -n "__fish_ftguard_needs_command" -f -a "resume" -d 'Resume a paused job. Recorded as an action of policy "manual" (with what the API answered) and notified as `resumed`'
complete -c ftguard -n "__fish_ftguard_needs_command" -f -a "config" -d 'Configuration commands'
complete -c ftguard -n "__fish_ftguard_needs_command" -f -a "sim" -d 'Serve the built-in simulator of the fine-tuning API until interrupted: for trying configurations, benchmarks and gateway tests. Point an account\'s base_url at it'
complete -c ftguard -n "__fish_ftguard_needs_command" -f -a "demo" -d 'Run ftguard against its built-in simulator for a short while: no account needed'
complete -c ftguard -n "__fish_ftguard_needs_command" -f -a "completions" -d 'Print a shell completion script, e.g. `ftguard completions bash | sudo tee /usr/share/bash-completion/completions/ftguard`'
complete -c ftguard -n "__fish_ftguard_needs_command" -f -a "man" -d 'Print a man page (roff): ftguard(1), or ftguard-COMMAND(1) for a command. The .deb installs them all (from man/, kept current by a test)'
complete -c ftguard -n "__fish_ftguard_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ftguard -n "__fish_ftguard_using_subcommand run" -l config -d 'Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml' -r -F
complete -c ftguard -n "__fish_ftguard_using_subcommand run" -l log-format -d 'Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info)' -r -f -a "text\t''
json\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand run" -l once -d 'One sync, one evaluation of every policy, enforcement, then exit: 0 on success, 1 when every account\'s sync failed (nothing is watched), 2 when an action failed (for a systemd timer or cron instead of the daemon)'
complete -c ftguard -n "__fish_ftguard_using_subcommand run" -l json -d 'With --once: print what was done as JSON: `syncs` (as `sync --json`), the counts (cancelled, accepted, paused, already_finished, failed, held, warned, cleared, notified, dry_run) and `lines`, one per action as the text output shows it'
complete -c ftguard -n "__fish_ftguard_using_subcommand run" -s h -l help -d 'Print help'
complete -c ftguard -n "__fish_ftguard_using_subcommand run" -s V -l version -d 'Print version'
complete -c ftguard -n "__fish_ftguard_using_subcommand sync" -l account -d 'Only this account (repeatable): to retry one that failed, or look at one of many. Only its credentials are needed' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand sync" -l config -d 'Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml' -r -F
complete -c ftguard -n "__fish_ftguard_using_subcommand sync" -l log-format -d 'Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info)' -r -f -a "text\t''
json\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand sync" -l full -d 'List every job, not only those since the oldest job active at the last sync (the daemon does this every daemon.full_sync_every, default 24h)'
complete -c ftguard -n "__fish_ftguard_using_subcommand sync" -l json -d 'Print the summary as JSON'
complete -c ftguard -n "__fish_ftguard_using_subcommand sync" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ftguard -n "__fish_ftguard_using_subcommand sync" -s V -l version -d 'Print version'
complete -c ftguard -n "__fish_ftguard_using_subcommand plan" -l upcoming -d 'Also list what will happen within this long if nothing changes (e.g. 12h): each active job that will reach a time limit (or end its grace period), when, under which policy, and what follows' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand plan" -l config -d 'Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml' -r -F
complete -c ftguard -n "__fish_ftguard_using_subcommand plan" -l log-format -d 'Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info)' -r -f -a "text\t''
json\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand plan" -l offline -d 'Use the stored jobs; do not sync first. Needs no credentials'
complete -c ftguard -n "__fish_ftguard_using_subcommand plan" -l json -d 'Print a JSON array. Job entries: account, job_id, policy, action (cancel, pause, notify, warn, clear), act_after (for warn: when the grace period ends), reason, dry_run, already_done (the action recorded earlier that stands for it, so the pass does not act again: action_id, what; else null). Budget entries: action "budget_notice", policy, group, period_start, percent, reason. With --upcoming: action "upcoming", account, job_id, policy, at, then (cancel, pause, notify or warn), dry_run, schedule (the policy\'s own cron, if any: it acts at its next run after `at`)'
complete -c ftguard -n "__fish_ftguard_using_subcommand plan" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ftguard -n "__fish_ftguard_using_subcommand plan" -s V -l version -d 'Print version'
complete -c ftguard -n "__fish_ftguard_using_subcommand replay" -l since -d 'How far back (a duration like 90d, or a date like 2026-09-01): jobs created since' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand replay" -l policies -d 'Replay the `[[policies]]` (and `[pricing]`, if any) of this TOML file instead of the configuration\'s: try a candidate before deploying it. Validated like `config check`' -r -F
complete -c ftguard -n "__fish_ftguard_using_subcommand replay" -l config -d 'Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml' -r -F
complete -c ftguard -n "__fish_ftguard_using_subcommand replay" -l log-format -d 'Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info)' -r -f -a "text\t''
json\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand replay" -l json -d 'Print JSON: since, until, jobs (created in the window), policies (name, kind, action, jobs: account, job_id, at, reason, actual_status, actual_cost_usd, saved_usd; jobs_count, saved_usd, not_judged: jobs, why), saved_usd'
complete -c ftguard -n "__fish_ftguard_using_subcommand replay" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ftguard -n "__fish_ftguard_using_subcommand replay" -s V -l version -d 'Print version'
complete -c ftguard -n "__fish_ftguard_using_subcommand jobs" -l status -d 'Only jobs with this status (e.g. running, queued, cancelled; `active`: every job not finished yet; `gone`: jobs the API no longer knows)' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand jobs" -l account -d 'Only jobs of this account' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand jobs" -l model -d 'Only jobs whose base model matches this glob, as in a policy\'s `match.models` (e.g. \'gpt-4o*\')' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand jobs" -l since -d 'Only jobs created since: a duration back from now (24h, 7d), a date (2026-11-01, UTC) or a timestamp (2026-11-01T12:00:00Z)' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand jobs" -l limit -d 'At most N jobs, the newest' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand jobs" -l config -d 'Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml' -r -F
complete -c ftguard -n "__fish_ftguard_using_subcommand jobs" -l log-format -d 'Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info)' -r -f -a "text\t''
json\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand jobs" -l json -d 'Print a JSON array with the API\'s values verbatim (unix seconds)'
complete -c ftguard -n "__fish_ftguard_using_subcommand jobs" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ftguard -n "__fish_ftguard_using_subcommand jobs" -s V -l version -d 'Print version'
complete -c ftguard -n "__fish_ftguard_using_subcommand spend" -l period -d 'day, week, month (calendar, UTC or the budget\'s timezone) or a duration like 30d' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand spend" -l by -d 'Group by account, model or metadata.KEY (default: one group)' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand spend" -l config -d 'Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml' -r -F
complete -c ftguard -n "__fish_ftguard_using_subcommand spend" -l log-format -d 'Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info)' -r -f -a "text\t''
json\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand spend" -l json -d 'Print a JSON array, dollars as numbers'
complete -c ftguard -n "__fish_ftguard_using_subcommand spend" -s h -l help -d 'Print help'
complete -c ftguard -n "__fish_ftguard_using_subcommand spend" -s V -l version -d 'Print version'
complete -c ftguard -n "__fish_ftguard_using_subcommand show" -l account -d 'The account, when the id exists in several' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand show" -l config -d 'Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml' -r -F
complete -c ftguard -n "__fish_ftguard_using_subcommand show" -l log-format -d 'Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info)' -r -f -a "text\t''
json\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand show" -l json -d 'Print the job, its raw payload, status history, actions and `policies` (per policy: `policy`, `standing` = breaks | paused (breaks a pause policy and is paused already) | in_grace | due | watching (a training-quality policy: `progress`) | keeps | group | not_matched | exempt, with `reason`, `until` or `at` where they apply, `action`, `dry_run`, `grace_secs`, and `already_done` when an action recorded earlier stands for it: `action_id`, `what`), `metrics` (per reported step: step, total_steps, train_loss, valid_loss, full_valid_loss and the accuracies, null where not reported) and `checkpoints` (id, model, step, created_at, metrics) as JSON'
complete -c ftguard -n "__fish_ftguard_using_subcommand show" -s h -l help -d 'Print help'
complete -c ftguard -n "__fish_ftguard_using_subcommand show" -s V -l version -d 'Print version'
complete -c ftguard -n "__fish_ftguard_using_subcommand status" -l config -d 'Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml' -r -F
complete -c ftguard -n "__fish_ftguard_using_subcommand status" -l log-format -d 'Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info)' -r -f -a "text\t''
json\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand status" -l json -d 'Print JSON: healthy, problems, sync_interval_secs, accounts (account, healthy, last_successful_sync, last_sync, last_error, active_jobs, stored_jobs), actions_last_24h (per outcome), pending_actions, notices_waiting and oldest_notice_waiting_since (webhook notices not delivered yet), database'
complete -c ftguard -n "__fish_ftguard_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ftguard -n "__fish_ftguard_using_subcommand status" -s V -l version -d 'Print version'
complete -c ftguard -n "__fish_ftguard_using_subcommand actions" -l job -d 'Only actions on this job' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand actions" -l since -d 'Only actions requested since: a duration back from now (24h, 7d), a date (2026-11-01, UTC) or a timestamp (2026-11-01T12:00:00Z)' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand actions" -l policy -d 'Only actions of this policy (`manual` for `ftguard cancel` and `resume`)' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand actions" -l action -d 'Only this action' -r -f -a "cancel\t''
pause\t''
resume\t''
warn\t''
clear\t''
notify\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand actions" -l outcome -d 'Only this outcome' -r -f -a "pending\t''
succeeded\t''
accepted\t''
already_finished\t''
failed\t''
held\t''
dry_run\t''
notified\t''
warned\t''
cleared\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand actions" -l config -d 'Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml' -r -F
complete -c ftguard -n "__fish_ftguard_using_subcommand actions" -l log-format -d 'Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info)' -r -f -a "text\t''
json\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand actions" -l json -d 'Print a JSON array: id, account, job_id, policy, action, reason, outcome, attempts, requested_at, completed_at, http_status, response_* fields, error, note, best_checkpoint (training-quality policies: the checkpoint to use instead, {model, step, metric, value}, else null), estimated_saving_usd (what stopping it early did not spend, else null)'
complete -c ftguard -n "__fish_ftguard_using_subcommand actions" -s h -l help -d 'Print help'
complete -c ftguard -n "__fish_ftguard_using_subcommand actions" -s V -l version -d 'Print version'
complete -c ftguard -n "__fish_ftguard_using_subcommand cancel" -l account -d 'The account, needed when the job is not stored yet or exists in several' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand cancel" -l reason -d 'Why: recorded with the action' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand cancel" -l config -d 'Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml' -r -F
complete -c ftguard -n "__fish_ftguard_using_subcommand cancel" -l log-format -d 'Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info)' -r -f -a "text\t''
json\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand cancel" -l json -d 'Print JSON: `sent` (whether a cancel went out now) and `action`, the job\'s cancel as recorded (the fields of `actions --json`; the earlier one when none was sent, or the row saying it did not take: the job still active 10 minutes after the API accepted it)'
complete -c ftguard -n "__fish_ftguard_using_subcommand cancel" -s h -l help -d 'Print help'
complete -c ftguard -n "__fish_ftguard_using_subcommand cancel" -s V -l version -d 'Print version'
complete -c ftguard -n "__fish_ftguard_using_subcommand resume" -l account -d 'The account, when the id exists in several' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand resume" -l reason -d 'Why: recorded with the action' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand resume" -l config -d 'Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml' -r -F
complete -c ftguard -n "__fish_ftguard_using_subcommand resume" -l log-format -d 'Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info)' -r -f -a "text\t''
json\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand resume" -l json -d 'Print the action as recorded (the fields of `actions --json`)'
complete -c ftguard -n "__fish_ftguard_using_subcommand resume" -s h -l help -d 'Print help'
complete -c ftguard -n "__fish_ftguard_using_subcommand resume" -s V -l version -d 'Print version'
complete -c ftguard -n "__fish_ftguard_using_subcommand config; and not __fish_seen_subcommand_from check help" -l config -d 'Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml' -r -F
complete -c ftguard -n "__fish_ftguard_using_subcommand config; and not __fish_seen_subcommand_from check help" -l log-format -d 'Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info)' -r -f -a "text\t''
json\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand config; and not __fish_seen_subcommand_from check help" -s h -l help -d 'Print help'
complete -c ftguard -n "__fish_ftguard_using_subcommand config; and not __fish_seen_subcommand_from check help" -s V -l version -d 'Print version'
complete -c ftguard -n "__fish_ftguard_using_subcommand config; and not __fish_seen_subcommand_from check help" -f -a "check" -d 'Validate everything (keys, durations, cron, secrets) and print the effective configuration with secrets redacted. Non-zero exit on any error'
complete -c ftguard -n "__fish_ftguard_using_subcommand config; and not __fish_seen_subcommand_from check help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ftguard -n "__fish_ftguard_using_subcommand config; and __fish_seen_subcommand_from check" -l config -d 'Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml' -r -F
complete -c ftguard -n "__fish_ftguard_using_subcommand config; and __fish_seen_subcommand_from check" -l log-format -d 'Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info)' -r -f -a "text\t''
json\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand config; and __fish_seen_subcommand_from check" -l online -d 'Also ask each account\'s API for its newest job (one `GET /fine_tuning/jobs?limit=1`, no retries, nothing stored): checks base_url, credentials and Portkey headers before the daemon depends on them. Non-zero exit if any account fails'
complete -c ftguard -n "__fish_ftguard_using_subcommand config; and __fish_seen_subcommand_from check" -l test-notifiers -d 'Also send each [[notifiers]] webhook one notice with event `test` (once, no retries): shows the URL works and how notices look in the channel. Non-zero exit if any is refused'
complete -c ftguard -n "__fish_ftguard_using_subcommand config; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c ftguard -n "__fish_ftguard_using_subcommand config; and __fish_seen_subcommand_from check" -s V -l version -d 'Print version'
complete -c ftguard -n "__fish_ftguard_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "check" -d 'Validate everything (keys, durations, cron, secrets) and print the effective configuration with secrets redacted. Non-zero exit on any error'
complete -c ftguard -n "__fish_ftguard_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ftguard -n "__fish_ftguard_using_subcommand sim" -l listen -d 'Address to listen on' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand sim" -l jobs -d 'Finished jobs in history (at most 2,000,000: about 600 MB of memory)' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand sim" -l active -d 'Running jobs (the newest), one of them past 7 hours; each has a small training file (200 examples, about 20,000 tokens) for cost policies to count. At most 100,000' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand sim" -l latency -d 'Added to every answer, like a remote API\'s round trip (e.g. 20ms)' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand sim" -l config -d 'Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml' -r -F
complete -c ftguard -n "__fish_ftguard_using_subcommand sim" -l log-format -d 'Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info)' -r -f -a "text\t''
json\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand sim" -s h -l help -d 'Print help'
complete -c ftguard -n "__fish_ftguard_using_subcommand sim" -s V -l version -d 'Print version'
complete -c ftguard -n "__fish_ftguard_using_subcommand demo" -l seconds -d 'How long to run' -r
complete -c ftguard -n "__fish_ftguard_using_subcommand demo" -l config -d 'Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml' -r -F
complete -c ftguard -n "__fish_ftguard_using_subcommand demo" -l log-format -d 'Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info)' -r -f -a "text\t''
json\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand demo" -s h -l help -d 'Print help'
complete -c ftguard -n "__fish_ftguard_using_subcommand demo" -s V -l version -d 'Print version'
complete -c ftguard -n "__fish_ftguard_using_subcommand completions" -l config -d 'Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml' -r -F
complete -c ftguard -n "__fish_ftguard_using_subcommand completions" -l log-format -d 'Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info)' -r -f -a "text\t''
json\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand completions" -s h -l help -d 'Print help'
complete -c ftguard -n "__fish_ftguard_using_subcommand completions" -s V -l version -d 'Print version'
complete -c ftguard -n "__fish_ftguard_using_subcommand man" -l config -d 'Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml' -r -F
complete -c ftguard -n "__fish_ftguard_using_subcommand man" -l log-format -d 'Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info)' -r -f -a "text\t''
json\t''"
complete -c ftguard -n "__fish_ftguard_using_subcommand man" -s h -l help -d 'Print help'
complete -c ftguard -n "__fish_ftguard_using_subcommand man" -s V -l version -d 'Print version'
complete -c ftguard -n "__fish_ftguard_using_subcommand help; and not __fish_seen_subcommand_from run sync plan replay jobs spend show status actions cancel resume config sim demo completions man help" -f -a "run" -d 'Run the daemon: sync at start and on daemon.sync_schedule, evaluate policies, enforce. Stops cleanly on SIGTERM/SIGINT; SIGHUP reloads the configuration'
complete -c ftguard -n "__fish_ftguard_using_subcommand help; and not __fish_seen_subcommand_from run sync plan replay jobs spend show status actions cancel resume config sim demo completions man help" -f -a "sync" -d 'Sync every account once and print a summary per account. Exit 0 if at least one synced'
complete -c ftguard -n "__fish_ftguard_using_subcommand help; and not __fish_seen_subcommand_from run sync plan replay jobs spend show status actions cancel resume config sim demo completions man help" -f -a "plan" -d 'Show what the policies would do now and why. Never acts'
complete -c ftguard -n "__fish_ftguard_using_subcommand help; and not __fish_seen_subcommand_from run sync plan replay jobs spend show status actions cancel resume config sim demo completions man help" -f -a "replay" -d 'What the policies would have done over the stored history, and what it would have saved'
complete -c ftguard -n "__fish_ftguard_using_subcommand help; and not __fish_seen_subcommand_from run sync plan replay jobs spend show status actions cancel resume config sim demo completions man help" -f -a "jobs" -d 'List stored jobs, newest first'
complete -c ftguard -n "__fish_ftguard_using_subcommand help; and not __fish_seen_subcommand_from run sync plan replay jobs spend show status actions cancel resume config sim demo completions man help" -f -a "spend" -d 'Spend per group in a period: spent (finished jobs), projected (active jobs), limit and remaining (from a budget policy with the same period and grouping); and what jobs stopped early by training-quality policies did not spend'
complete -c ftguard -n "__fish_ftguard_using_subcommand help; and not __fish_seen_subcommand_from run sync plan replay jobs spend show status actions cancel resume config sim demo completions man help" -f -a "show" -d 'Show one job with its status history and actions, and where it stands with each policy now: breaking it (acted on at the next pass), in grace until when, when a time limit will be reached and what follows, how many steps a training-quality policy gives it if its loss does not improve, or why a policy leaves it alone. A job with stored training metrics also shows its loss curve (train and validation loss over the steps, as sparklines on one scale) with its checkpoints marked and listed'
complete -c ftguard -n "__fish_ftguard_using_subcommand help; and not __fish_seen_subcommand_from run sync plan replay jobs spend show status actions cancel resume config sim demo completions man help" -f -a "status" -d 'Whether ftguard is doing its job, from the database: each account\'s last successful sync, active and stored jobs, actions of the last 24 hours. Exit 1 when unhealthy (an account not synced successfully within three sync intervals, as `/healthz`)'
complete -c ftguard -n "__fish_ftguard_using_subcommand help; and not __fish_seen_subcommand_from run sync plan replay jobs spend show status actions cancel resume config sim demo completions man help" -f -a "actions" -d 'List recorded actions (cancels, pauses, warnings, holds), oldest first'
complete -c ftguard -n "__fish_ftguard_using_subcommand help; and not __fish_seen_subcommand_from run sync plan replay jobs spend show status actions cancel resume config sim demo completions man help" -f -a "cancel" -d 'Cancel a job by hand, through the same recorded path as policies (policy "manual")'
complete -c ftguard -n "__fish_ftguard_using_subcommand help; and not __fish_seen_subcommand_from run sync plan replay jobs spend show status actions cancel resume config sim demo completions man help" -f -a "resume" -d 'Resume a paused job. Recorded as an action of policy "manual" (with what the API answered) and notified as `resumed`'
complete -c ftguard -n "__fish_ftguard_using_subcommand help; and not __fish_seen_subcommand_from run sync plan replay jobs spend show status actions cancel resume config sim demo completions man help" -f -a "config" -d 'Configuration commands'
complete -c ftguard -n "__fish_ftguard_using_subcommand help; and not __fish_seen_subcommand_from run sync plan replay jobs spend show status actions cancel resume config sim demo completions man help" -f -a "sim" -d 'Serve the built-in simulator of the fine-tuning API until interrupted: for trying configurations, benchmarks and gateway tests. Point an account\'s base_url at it'
complete -c ftguard -n "__fish_ftguard_using_subcommand help; and not __fish_seen_subcommand_from run sync plan replay jobs spend show status actions cancel resume config sim demo completions man help" -f -a "demo" -d 'Run ftguard against its built-in simulator for a short while: no account needed'
complete -c ftguard -n "__fish_ftguard_using_subcommand help; and not __fish_seen_subcommand_from run sync plan replay jobs spend show status actions cancel resume config sim demo completions man help" -f -a "completions" -d 'Print a shell completion script, e.g. `ftguard completions bash | sudo tee /usr/share/bash-completion/completions/ftguard`'
complete -c ftguard -n "__fish_ftguard_using_subcommand help; and not __fish_seen_subcommand_from run sync plan replay jobs spend show status actions cancel resume config sim demo completions man help" -f -a "man" -d 'Print a man page (roff): ftguard(1), or ftguard-COMMAND(1) for a command. The .deb installs them all (from man/, kept current by a test)'
complete -c ftguard -n "__fish_ftguard_using_subcommand help; and not __fish_seen_subcommand_from run sync plan replay jobs spend show status actions cancel resume config sim demo completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c ftguard -n "__fish_ftguard_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Validate everything (keys, durations, cron, secrets) and print the effective configuration with secrets redacted. Non-zero exit on any error'
