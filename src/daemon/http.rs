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
use crate::app::health::Health;
use crate::model::time;

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
    match Health::read(app.config(), app.store(), time::now()).await {
        Ok(health) => {
            let code = if health.healthy() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (code, axum::Json(health)).into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unhealthy", "error": e.to_string()})),
        )
            .into_response(),
    }
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
