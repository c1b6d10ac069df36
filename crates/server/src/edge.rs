//! The edge: one router in front of every surface. A request is routed,
//! in order, by: the `/v2/` registry prefix; the `/_stratus/` admin
//! prefix; the AWS service it addresses (`X-Amz-Target` or the SigV4
//! credential scope); the console at `/`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{header, StatusCode};
use tracing::Instrument;

use crate::metrics::Surface;
use crate::{admin, aws, oci, App};

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new().fallback(dispatch).with_state(app)
}

async fn dispatch(State(app): State<Arc<App>>, req: Request) -> Response {
    let path = req.uri().path();
    let span = tracing::debug_span!("request", method = %req.method(), path = %path);
    let (surface, response) = async {
        let path = req.uri().path();
        if path == "/v2" || path.starts_with("/v2/") {
            (Surface::Registry, oci::handle(&app, req).await)
        } else if path.starts_with("/_stratus/") {
            (Surface::Admin, admin::handle(&app, req).await)
        } else if let Some(service) = aws::service_of(&req) {
            (Surface::AwsApi, aws::handle(&app, service, req).await)
        } else if path == "/" && req.method() == http::Method::GET {
            (Surface::Other, console_placeholder())
        } else {
            (Surface::Other, not_found(path))
        }
    }
    .instrument(span)
    .await;
    app.metrics.record(surface, response.status().as_u16());
    response
}

fn console_placeholder() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!doctype html><title>Stratus</title><h1>Stratus</h1>\
         <p>The web console is not built yet. The AWS APIs and the registry are served on this port: \
         set <code>AWS_ENDPOINT_URL</code> to this address.</p>",
    )
        .into_response()
}

fn not_found(path: &str) -> Response {
    let body = serde_json::json!({
        "message": format!("no Stratus surface serves {path}; AWS API calls need an X-Amz-Target header or a SigV4 Authorization header, the registry lives under /v2/"),
    });
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}
