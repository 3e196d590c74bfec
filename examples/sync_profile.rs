//! Profiling aid: runs the simulator with N jobs and one full sync in process, N from argv.
//! `cargo run --release --example sync_profile -- 10000`
#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let now = ftguard::clock::now();
    let jobs = (0..n)
        .map(|i| {
            ftguard::sim::SimJob::in_status(
                &format!("ftjob-{i:06}"),
                if i < 20 { "running" } else { "succeeded" },
                60 + i as i64 * 10,
                now,
            )
        })
        .collect();
    let sim = ftguard::sim::Sim::start(jobs).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ftguard.toml");
    std::fs::write(
        &cfg,
        format!(
            "[daemon]\ndatabase = {:?}\n[[accounts]]\nname = \"sim\"\nbase_url = \"{}\"\n",
            dir.path().join("db").display().to_string(),
            sim.base_url()
        ),
    )
    .unwrap();
    for _ in 0..5 {
        let d = tempfile::tempdir().unwrap();
        let cfg2 = d.path().join("ftguard.toml");
        std::fs::write(
            &cfg2,
            std::fs::read_to_string(&cfg).unwrap().replace(
                &dir.path().join("db").display().to_string(),
                &d.path().join("db").display().to_string(),
            ),
        )
        .unwrap();
        let app = ftguard::app::App::build(ftguard::config::Config::load(Some(&cfg2)).unwrap())
            .await
            .unwrap();
        let t = std::time::Instant::now();
        let r = app.sync_with(true).await;
        println!("{:?} {}", t.elapsed(), r[0].1.is_ok());
    }
}
