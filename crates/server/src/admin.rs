//! The admin plane under `/_stratus/`: health, Prometheus metrics and the
//! garbage collector (run on a timer, or on demand).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{header, HeaderValue, Method, StatusCode};

use crate::App;

pub(crate) async fn handle(app: &App, req: Request) -> Response {
    let path = req.uri().path();
    match (req.method(), path) {
        (&Method::GET, "/_stratus/health") => {
            json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
        }
        (&Method::GET, "/_stratus/metrics") => {
            let mut r = Response::new(Body::from(app.metrics.render()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        (&Method::POST, "/_stratus/gc") => {
            let grace = req
                .uri()
                .query()
                .and_then(|q| {
                    url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "grace_seconds")
                })
                .and_then(|(_, v)| v.parse::<u64>().ok())
                .map(Duration::from_secs)
                .unwrap_or(app.config.gc_grace);
            match run_gc(app, grace).await {
                Ok(report) => json(StatusCode::OK, &serde_json::json!(report)),
                Err(e) => json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &serde_json::json!({"message": e.to_string()}),
                ),
            }
        }
        _ => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"message": format!("unknown admin endpoint {} {path}; try GET /_stratus/health, GET /_stratus/metrics or POST /_stratus/gc", req.method())}),
        ),
    }
}

async fn run_gc(app: &App, grace: Duration) -> Result<registry::GcReport, registry::RegistryError> {
    let report = app.registry.collect_garbage(grace).await?;
    app.metrics.gc_runs.fetch_add(1, Ordering::Relaxed);
    app.metrics
        .gc_blobs_deleted
        .fetch_add(report.blobs_deleted, Ordering::Relaxed);
    app.metrics
        .gc_bytes_freed
        .fetch_add(report.bytes_freed, Ordering::Relaxed);
    tracing::info!(?report, "garbage collection finished");
    Ok(report)
}

/// Runs the collector every `gc_interval` (never when it is zero).
pub(crate) fn spawn_gc_loop(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = app.config.gc_interval;
        if interval.is_zero() {
            return;
        }
        loop {
            tokio::time::sleep(interval).await;
            if let Err(e) = run_gc(&app, app.config.gc_grace).await {
                tracing::warn!(error = %e, "garbage collection failed; will retry next interval");
            }
        }
    })
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut r = Response::new(Body::from(value.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
