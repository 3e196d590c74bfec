//! The daemon's HTTP endpoint: `/healthz` and `/metrics`. Off unless `[daemon] listen` is set.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::model::time;
use crate::store::SyncRun;

/// Binds the listener (port 0 picks a free one; read it back with `local_addr`).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the metrics/health endpoint listens beyond loopback: it has no authentication");
    }
    tokio::net::TcpListener::bind(addr).await
}

/// Serves until `stop` is cancelled, always answering with the newest App (reloads swap it).
pub fn spawn(
    listener: tokio::net::TcpListener,
    app: watch::Receiver<App>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(app);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
        {
            tracing::error!(error = %e, "http endpoint stopped");
        }
    })
}

async fn healthz(State(app): State<watch::Receiver<App>>) -> Response {
    let app = app.borrow().clone();
    let runs = match app.store.latest_sync_runs().await {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"status": "unhealthy", "error": e.to_string()})),
            )
                .into_response();
        }
    };
    let last_ok = app.store.last_successful_syncs().await.unwrap_or_default();
    let accounts: Vec<String> = app
        .config
        .accounts
        .iter()
        .map(|a| a.name.to_string())
        .collect();
    let interval = app.config.sync_schedule.interval_or_minute(time::now());
    let (healthy, body) = health(&accounts, &runs, &last_ok, time::now(), interval);
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

/// Healthy when every account synced successfully within three sync intervals.
pub fn health(
    accounts: &[String],
    latest: &[SyncRun],
    last_ok: &[(String, i64)],
    now: i64,
    interval_secs: i64,
) -> (bool, serde_json::Value) {
    let window = 3 * interval_secs.max(1);
    let mut problems = Vec::new();
    let mut details = serde_json::Map::new();
    for a in accounts {
        let ok_at = last_ok.iter().find(|(n, _)| n == a).map(|(_, t)| *t);
        let last_error = latest
            .iter()
            .find(|r| &r.account == a)
            .and_then(|r| r.error.clone());
        let fresh = ok_at.is_some_and(|t| now - t <= window);
        details.insert(
            a.clone(),
            json!({"last_successful_sync": ok_at, "last_error": last_error, "healthy": fresh}),
        );
        if !fresh {
            let why = match (ok_at, &last_error) {
                (None, Some(e)) => format!("never synced successfully; last error: {e}"),
                (None, None) => "not synced yet".to_owned(),
                (Some(t), Some(e)) => format!(
                    "last successful sync {}s ago (> {window}s); last error: {e}",
                    now - t
                ),
                (Some(t), None) => format!("last successful sync {}s ago (> {window}s)", now - t),
            };
            problems.push(json!({"account": a, "reason": why}));
        }
    }
    let healthy = problems.is_empty();
    (
        healthy,
        json!({"status": if healthy { "ok" } else { "unhealthy" }, "problems": problems, "accounts": details}),
    )
}

async fn metrics(State(app): State<watch::Receiver<App>>) -> Response {
    let app = app.borrow().clone();
    let rendered = match app.metrics_snapshot().await {
        Ok(state) => crate::telemetry::render(&state).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match rendered {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(account: &str, error: Option<&str>) -> SyncRun {
        SyncRun {
            account: account.into(),
            started_at: 0,
            finished_at: Some(0),
            pages: 1,
            jobs_seen: 1,
            error: error.map(Into::into),
        }
    }

    #[test]
    fn health_rules() {
        let accounts = vec!["a".to_owned(), "b".to_owned()];
        let now = 10_000;
        let (ok, _) = health(
            &accounts,
            &[],
            &[("a".into(), now - 100), ("b".into(), now - 179)],
            now,
            60,
        );
        assert!(ok);
        let (ok, body) = health(
            &accounts,
            &[run("b", Some("401 Invalid API key"))],
            &[("a".into(), now - 100), ("b".into(), now - 181)],
            now,
            60,
        );
        assert!(!ok);
        let text = body.to_string();
        assert!(
            text.contains("\"account\":\"b\"") && text.contains("401 Invalid API key"),
            "{text}"
        );
        assert!(!text.contains("\"account\":\"a\""), "{text}");
        let (ok, body) = health(&accounts, &[], &[], now, 60);
        assert!(!ok && body.to_string().contains("not synced yet"));
    }
}
