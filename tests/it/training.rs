//! Training-quality policies end to end: the simulator's jobs publish loss curves as metrics
//! events and checkpoints; the real binary reads them incrementally, cancels the plateauing and
//! the diverging job once each, early, naming the checkpoint to use instead, and leaves the
//! converging one alone.

use crate::common::*;
use ftguard::sim::CurveShape;

/// Divergence first: a job both would stop is stopped by the first decision.
pub const POLICIES: &str = r#"
[[policies]]
name = "diverging"
kind = "loss_divergence"
metric = "train_loss"
factor = 2.0
patience = 30
min_steps = 50

[[policies]]
name = "early-stop"
kind = "loss_plateau"
metric = "valid_loss"
patience = 200
min_delta = 0.01
min_steps = 100
"#;

/// 3,000 steps at 10 a second, 3 epochs (checkpoints at steps 1,000, 2,000 and 3,000): the
/// plateau flattens by step 500 and its validation loss rises from step 750; the diverging job
/// triples its loss at step 1,500; the converging one improves to the end.
pub fn curve_jobs(now: i64) -> Vec<SimJob> {
    vec![
        SimJob::in_status("ftjob-plateau", "running", 200, now).with_curve(
            CurveShape::Plateau,
            3000,
            10,
        ),
        SimJob::in_status("ftjob-diverge", "running", 250, now).with_curve(
            CurveShape::Diverging { at: 1500 },
            3000,
            10,
        ),
        SimJob::in_status("ftjob-converge", "running", 200, now).with_curve(
            CurveShape::Converging,
            3000,
            10,
        ),
    ]
}

fn events_requests(sim: &Sim, id: &str) -> Vec<String> {
    sim.requests()
        .into_iter()
        .filter(|r| r.path.ends_with(&format!("/fine_tuning/jobs/{id}/events")))
        .map(|r| r.query)
        .collect()
}

#[tokio::test]
async fn loss_policies_cancel_the_plateau_and_the_divergence_once_with_their_best_checkpoint() {
    let sim = Sim::start(curve_jobs(now())).await.unwrap();
    let env = Env::new();
    env.sim_config(&sim, "", POLICIES);
    env.ok(&["run", "--once"]).await;
    assert_eq!(sim.cancel_requests("ftjob-plateau"), 1);
    assert_eq!(sim.cancel_requests("ftjob-diverge"), 1);
    assert_eq!(
        sim.cancel_requests("ftjob-converge"),
        0,
        "converging: untouched"
    );
    // Early: they would have trained until 300 s.
    assert_eq!(sim.status("ftjob-plateau").as_deref(), Some("cancelled"));
    assert_eq!(sim.status("ftjob-diverge").as_deref(), Some("cancelled"));
    // A first read pages through each running job's events once: 2,000 and 2,500 steps (a
    // page more if the simulator's clock ticked meanwhile: 10 steps a second), 100 a page,
    // each page after the last one's oldest event.
    for (id, pages) in [("ftjob-converge", 20), ("ftjob-diverge", 25)] {
        let queries = events_requests(&sim, id);
        assert!(
            (pages..=pages + 1).contains(&queries.len()),
            "{id}: {queries:?}"
        );
        let distinct: std::collections::HashSet<&String> = queries.iter().collect();
        assert_eq!(
            distinct.len(),
            queries.len(),
            "no page read twice: {queries:?}"
        );
    }

    let actions = env.json(&["actions", "--json"]).await;
    let cancel_of = |id: &str| -> Vec<serde_json::Value> {
        actions
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["job_id"] == id && a["action"] == "cancel")
            .cloned()
            .collect()
    };
    let plateau = cancel_of("ftjob-plateau");
    assert_eq!(plateau.len(), 1, "{actions:#}");
    assert_eq!(plateau[0]["policy"], "early-stop");
    let reason = plateau[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("valid_loss has not improved by 0.01 for "),
        "{reason}"
    );
    // Its validation loss is lowest at the first epoch's end: that checkpoint, by its full
    // validation loss.
    let best = &plateau[0]["best_checkpoint"];
    assert_eq!(best["step"], 1000, "{best}");
    assert_eq!(best["metric"], "full_valid_loss");
    assert_eq!(
        best["model"],
        "ft:gpt-4o-mini-2024-07-18:sim::ftjob-plateau:ckpt-step-1000"
    );
    let diverge = cancel_of("ftjob-diverge");
    assert_eq!(diverge.len(), 1, "{actions:#}");
    assert_eq!(diverge[0]["policy"], "diverging");
    assert!(
        diverge[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("train_loss above 2x its best for "),
        "{}",
        diverge[0]["reason"]
    );
    // Before the blow-up (step 1,000), not after it (step 2,000), by training loss.
    assert_eq!(diverge[0]["best_checkpoint"]["step"], 1000);
    assert_eq!(diverge[0]["best_checkpoint"]["metric"], "train_loss");
    assert!(cancel_of("ftjob-converge").is_empty());
    // What stopping them did not spend: the steps left at the tokens per step they trained
    // (the simulator trains 100 tokens a second at 10 steps a second: 10 a step) at $3 per
    // million, recorded on the action and summed by `spend`.
    let saving = |a: &serde_json::Value| a["estimated_saving_usd"].as_f64().unwrap();
    let plateau_saving = saving(&plateau[0]);
    assert!(
        (0.025..0.035).contains(&plateau_saving),
        "about 1,000 steps x 10 tokens x $3/M = $0.03 (the stored step may lag the cancel): {plateau_saving}"
    );
    let diverge_saving = saving(&diverge[0]);
    assert!(
        (0.012..0.018).contains(&diverge_saving),
        "about 500 steps x 10 tokens x $3/M = $0.015: {diverge_saving}"
    );
    let spend = env.ok(&["spend"]).await;
    assert!(
        spend.contains("stopped early by training-quality policies since ")
            && spend.contains(": 2 jobs, about $0.0")
            && spend.contains(" not spent"),
        "{spend}"
    );

    // `show` draws the converging job's curve, marks and lists its checkpoints (read as its
    // epochs ended), and says how far it is from each policy's limit in steps.
    let text = env.ok(&["show", "ftjob-converge"]).await;
    for want in [
        "  training        step ",
        "    train_loss    ",
        "    valid_loss    ",
        "    checkpoints   ",
        "ft:gpt-4o-mini-2024-07-18:sim::ftjob-converge:ckpt-step-1000",
        "keeps it for now: best valid_loss ",
        "steps without improvement, acts after ",
    ] {
        assert!(text.contains(want), "{want:?} not in {text}");
    }
    let shown = env.json(&["show", "ftjob-converge", "--json"]).await;
    let metrics = shown["metrics"].as_array().unwrap();
    assert!(metrics.len() >= 2000, "{}", metrics.len());
    assert_eq!(metrics[0]["step"], 1);
    assert!(metrics[0]["train_loss"].as_f64().unwrap() > 1.0);
    assert!(metrics[0]["valid_loss"].is_null(), "missing stays null");
    assert_eq!(metrics[9]["step"], 10);
    assert!(metrics[9]["valid_loss"].as_f64().is_some());
    assert_eq!(shown["checkpoints"][0]["step"], 1000);
    let plan = env.ok(&["plan", "--offline", "--upcoming", "1h"]).await;
    assert!(
        plan.contains("training quality, watched in steps")
            && plan.contains("ftjob-converge [early-stop] best valid_loss"),
        "{plan}"
    );

    // Steady state: one events request for the job still running (20 new steps, stopping at
    // the newest event stored), none for the stopped ones; nothing cancelled again.
    sim.clear_requests();
    sim.advance(2);
    env.ok(&["run", "--once"]).await;
    let again = events_requests(&sim, "ftjob-converge");
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(!again[0].contains("after="), "{again:?}");
    assert!(events_requests(&sim, "ftjob-plateau").is_empty());
    // No epoch ended since its checkpoints were read (at step 2,000): not read again.
    assert!(
        !sim.requests()
            .iter()
            .any(|r| r.path.ends_with("/checkpoints")),
        "checkpoints only when an epoch may have ended"
    );
    assert_eq!(sim.cancel_requests("ftjob-plateau"), 0);
    assert_eq!(sim.cancel_requests("ftjob-converge"), 0);
}

#[tokio::test]
async fn config_check_names_bad_training_quality_keys() {
    let env = Env::new();
    for (body, says) in [
        (
            "kind = \"loss_plateau\"\npatience = 0",
            "patience 0 is out of range",
        ),
        (
            "kind = \"loss_divergence\"\npatience = 5\nfactor = 1.0",
            "factor 1 must be more than 1",
        ),
        (
            "kind = \"loss_plateau\"\npatience = 5\nmetric = \"bleu\"",
            "metric \"bleu\" is not a loss",
        ),
        (
            "kind = \"loss_plateau\"\npatience = 5\nfactor = 2.0",
            "key `factor` does not apply",
        ),
        (
            "kind = \"loss_plateau\"\npatience = 5\nmin_delta = -1.0",
            "min_delta -1 must be",
        ),
    ] {
        env.write_config("", &format!("[[policies]]\nname = \"q\"\n{body}\n"));
        let out = env.run(&["config", "check"]).await;
        assert!(!out.status.success(), "{body}");
        let err = stderr(&out);
        assert!(
            err.contains("policies[0] (\"q\")") && err.contains(says),
            "{body}: {err}"
        );
    }
}

#[tokio::test]
async fn metrics_export_the_newest_loss_of_watched_running_jobs() {
    let sim = Sim::start(curve_jobs(now())).await.unwrap();
    let env = Env::new();
    env.sim_config(&sim, "", POLICIES);
    let app = env.app().await;
    app.sync().await;
    let text = ftguard::telemetry::render(&app.metrics_snapshot().await.unwrap()).unwrap();
    for job in ["ftjob-converge", "ftjob-plateau", "ftjob-diverge"] {
        for metric in ["train_loss", "valid_loss"] {
            let series = format!(
                "ftguard_training_loss{{account=\"sim\",job_id=\"{job}\",metric=\"{metric}\"}} "
            );
            assert!(text.contains(&series), "{series} not in\n{text}");
        }
        assert!(
            text.contains(&format!(
                "ftguard_training_step{{account=\"sim\",job_id=\"{job}\"}} "
            )),
            "{text}"
        );
    }
    // Without a training-quality policy, nothing is read or exported.
    let plain = Env::new();
    plain.sim_config(&sim, "", "");
    let app = plain.app().await;
    app.sync().await;
    let text = ftguard::telemetry::render(&app.metrics_snapshot().await.unwrap()).unwrap();
    assert!(!text.contains("ftguard_training_loss{"), "{text}");
}

#[tokio::test]
async fn a_metrics_read_cut_short_leaves_no_gap() {
    let now = now();
    let sim = Sim::start(vec![
        SimJob::in_status("ftjob-c", "running", 100, now).with_curve(
            CurveShape::Converging,
            3000,
            10,
        ),
    ])
    .await
    .unwrap();
    let env = Env::new();
    env.sim_config(&sim, "", POLICIES);
    let app = env.app().await;
    // First read: two pages, then the third fails through every retry.
    sim.fault(Endpoint::Events, Fault::Delay(std::time::Duration::ZERO));
    sim.fault(Endpoint::Events, Fault::Delay(std::time::Duration::ZERO));
    for _ in 0..3 {
        sim.fault(Endpoint::Events, Fault::Status(500));
    }
    let first = app.sync().await;
    let warnings = &first[0].1.as_ref().unwrap().warnings;
    assert!(
        warnings.iter().any(|w| w.contains("ftjob-c")),
        "{warnings:?}"
    );
    let stored = app.store().metrics("sim", "ftjob-c").await.unwrap();
    assert!(
        stored.len() >= 200,
        "the two pages read are kept: {}",
        stored.len()
    );
    assert_eq!(
        app.store().metrics_cursor("sim", "ftjob-c").await.unwrap(),
        None,
        "no cursor: the top is read again"
    );
    // The next read pages down again to the first event: every step, none missing.
    sim.advance(3);
    app.sync().await;
    let steps: Vec<i64> = app
        .store()
        .metrics("sim", "ftjob-c")
        .await
        .unwrap()
        .iter()
        .map(|m| m.step)
        .collect();
    assert!(steps.len() >= 1030, "{}", steps.len());
    assert!(
        steps.iter().enumerate().all(|(i, s)| *s == i as i64 + 1),
        "contiguous from step 1"
    );
    assert!(
        app.store()
            .metrics_cursor("sim", "ftjob-c")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn kept_curves_grow_with_each_sync_as_a_fresh_read_would_give() {
    let sim = Sim::start(curve_jobs(now())).await.unwrap();
    let env = Env::new();
    // Patience beyond the jobs' length: nothing is stopped, every job stays running.
    env.sim_config(
        &sim,
        "",
        "[[policies]]\nname = \"p\"\nkind = \"loss_plateau\"\npatience = 100000\n",
    );
    let app = env.app().await;
    let policies = app.config().policies.clone();
    for _ in 0..3 {
        app.sync().await;
        app.decide(&policies, now()).await.unwrap();
        let kept = app.running_curves(&policies).await.unwrap();
        assert_eq!(kept.len(), 3);
        for ((account, job), curves) in &kept {
            let fresh = app.store().curves(account, job).await.unwrap();
            assert_eq!(curves, &fresh, "{job}");
        }
        app.keep_curves(kept);
        sim.advance(3);
    }
}

#[tokio::test]
async fn events_the_api_refuses_are_said_once_and_asked_for_hourly() {
    // A gateway that does not route a provider's events answers 404: the job is not judged,
    // the account's sync says so once, and the events are not asked for at every sync.
    let sim = Sim::start(curve_jobs(now())).await.unwrap();
    let env = Env::new();
    env.sim_config(&sim, "", POLICIES);
    for _ in 0..3 {
        sim.fault(Endpoint::Events, Fault::Status(404));
    }
    let first = env.ok(&["sync"]).await;
    assert_eq!(
        first
            .matches("(asked again hourly; it is not judged by its loss meanwhile)")
            .count(),
        3,
        "{first}"
    );
    sim.clear_requests();
    let again = env.ok(&["run", "--once"]).await;
    assert!(!again.contains("asked again hourly"), "{again}");
    assert!(
        !sim.requests().iter().any(|r| r.path.ends_with("/events")),
        "not asked again within the hour"
    );
    for id in ["ftjob-plateau", "ftjob-diverge", "ftjob-converge"] {
        assert_eq!(
            sim.cancel_requests(id),
            0,
            "{id}: not judged on no evidence"
        );
    }
}
