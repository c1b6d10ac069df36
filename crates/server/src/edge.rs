//! The edge: one router in front of every surface. A request is routed,
//! in order, by: the AWS host name in `Host` (`{api-id}.execute-api.…`,
//! `{url-id}.lambda-url.…`, `{service}.{region}.amazonaws.com`; see
//! [`hosts`]); the `/v2/` registry prefix (an
//! `{account}.dkr.ecr.{region}.…` host pins the registry's account and
//! region there); the `/_stratus/` admin prefix; the AWS service it
//! addresses (`X-Amz-Target` or the SigV4 credential scope); the console
//! at `/`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{header, StatusCode};
use tracing::Instrument;

use crate::hosts::{self, HostTarget};
use crate::metrics::Surface;
use crate::{admin, aws, oci, App};

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new().fallback(dispatch).with_state(app)
}

async fn dispatch(State(app): State<Arc<App>>, req: Request) -> Response {
    let path = req.uri().path();
    let span = tracing::debug_span!("request", method = %req.method(), path = %path);
    let (surface, response) = async {
        let target = hosts::target_of(req.headers(), req.uri());
        let req = match by_host(&app, target, req).await {
            Ok(routed) => return routed,
            Err(req) => req,
        };
        let path = req.uri().path();
        if path == "/v2" || path.starts_with("/v2/") {
            (Surface::Registry, oci::handle(&app, req).await)
        } else if path.starts_with(crate::code_location::PREFIX) {
            (Surface::Admin, crate::code_location::serve(&app, req).await)
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

/// Routes a request whose `Host` names an AWS endpoint Stratus serves
/// by host rather than by path; gives the request back for every other
/// host. This is the seam for the host-addressed data planes: the API
/// Gateway data plane takes over `ExecuteApi` and function URLs take over
/// `FunctionUrl` (both with the region the host names, if any).
async fn by_host(
    app: &App,
    target: HostTarget,
    req: Request,
) -> Result<(Surface, Response), Request> {
    match target {
        // No API Gateway yet: every API is unknown, answered as AWS
        // answers a request for an API id that does not exist.
        HostTarget::ExecuteApi { .. } => {
            Ok((Surface::Other, forbidden("message", "ForbiddenException")))
        }
        // No function URLs yet: answered as AWS answers an unknown URL id.
        HostTarget::FunctionUrl { .. } => Ok((
            Surface::Other,
            forbidden("Message", "AccessDeniedException"),
        )),
        // An AWS API endpoint: every path is the API's (the service comes
        // from the host for unsigned calls, from the SigV4 scope otherwise).
        HostTarget::AwsApi { .. } => {
            let service = aws::service_of(&req).unwrap_or(aws::Service::Unknown);
            Ok((Surface::AwsApi, aws::handle(app, service, req).await))
        }
        HostTarget::Registry { .. } | HostTarget::Plain => Err(req),
    }
}

/// `403 {"<key>":"Forbidden"}`: API Gateway's (`message`) and function
/// URLs' (`Message`) answer for an id they do not know.
fn forbidden(key: &str, error_type: &'static str) -> Response {
    let body = serde_json::json!({ key: "Forbidden" });
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::FORBIDDEN;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    h.insert(
        "x-amzn-errortype",
        http::HeaderValue::from_static(error_type),
    );
    if let Ok(v) = http::HeaderValue::from_str(&aws_protocol::ids::request_id()) {
        h.insert("x-amzn-requestid", v);
    }
    r
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
