//! The HTTP/1.1 listener: accept loop, routing and the endpoint handlers.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, Method, Request};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::state::{Next, Reply, ReplyKind, Shared};
use crate::wire::{self, ApiError, HttpResponse, ReadBody};
use crate::{InvokeOutcome, MAX_CONNECTIONS};

/// Bound on a request's line plus headers (and on a chunked body's
/// trailers); awslambdaric sends X-Ray error causes of up to 1 MiB as a
/// header. Also the connection's read buffer size.
const MAX_HEADER_BYTES: usize = 2 * 1024 * 1024;
/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves until the task is aborted; aborting it drops every connection.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            permit = Arc::clone(&permits).acquire_owned() => {
                let Ok(permit) = permit else { return };
                match listener.accept().await {
                    Ok((stream, _)) => {
                        connections.spawn(serve_connection(stream, Arc::clone(&shared), permit));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "runtime api accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                }
            }
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, _permit: OwnedSemaphorePermit) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(handle(&shared, request).await) }
    });
    // No header read timeout: hyper would also apply it to idle keep-alive
    // connections between invocations. The only client is the instance's own
    // runtime, which the pool kills at the function timeout.
    let connection = http1::Builder::new()
        .half_close(false)
        .header_read_timeout(None)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_header_size(MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(stream), service);
    if let Err(error) = connection.await {
        tracing::debug!(%error, "runtime api connection ended");
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Ping,
    Next,
    Reply(&'a str, ReplyKind),
    InitError,
}

/// The paths RAPID's router mounts under `/2018-06-01` (the SnapStart
/// `restore` routes only exist in init-caching mode, so they are 404 here).
fn route<'a>(method: &Method, path: &'a str) -> Result<Route<'a>, ApiError> {
    let rest = path.strip_prefix("/2018-06-01").ok_or(ApiError::NotFound)?;
    let (route, allowed) = match rest {
        "/ping" => (Route::Ping, Method::GET),
        "/runtime/invocation/next" => (Route::Next, Method::GET),
        "/runtime/init/error" => (Route::InitError, Method::POST),
        _ => {
            let (id, action) = rest
                .strip_prefix("/runtime/invocation/")
                .and_then(|r| r.split_once('/'))
                .ok_or(ApiError::NotFound)?;
            let kind = match action {
                "response" => ReplyKind::Response,
                "error" => ReplyKind::Error,
                _ => return Err(ApiError::NotFound),
            };
            (Route::Reply(id, kind), Method::POST)
        }
    };
    if *method == allowed {
        Ok(route)
    } else {
        Err(ApiError::MethodNotAllowed)
    }
}

async fn handle(shared: &Arc<Shared>, request: Request<Incoming>) -> HttpResponse {
    let (parts, body) = request.into_parts();
    let route = match route(&parts.method, parts.uri.path()) {
        Ok(route) => route,
        Err(error) => {
            tracing::debug!(method = %parts.method, path = parts.uri.path(), "runtime api: no such route");
            return error.into_response();
        }
    };
    match route {
        Route::Ping => wire::pong(),
        Route::Next => next(shared).await,
        Route::Reply(id, kind) => {
            let limit = match kind {
                ReplyKind::Response => shared.config.max_response_bytes,
                ReplyKind::Error => shared.config.max_error_bytes,
            };
            match shared.begin_reply(id, kind) {
                Ok(reply) => match kind {
                    ReplyKind::Response => response(reply, &parts.headers, body, limit).await,
                    ReplyKind::Error => error(reply, &parts.headers, body, limit).await,
                },
                Err(refusal) => {
                    tracing::debug!(request_id = id, ?kind, ?refusal, "runtime reply refused");
                    wire::discard(body, limit).await;
                    refusal.into_response()
                }
            }
        }
        Route::InitError => init_error(shared, &parts.headers, body).await,
    }
}

/// `GET …/invocation/next`: a long poll without timeout.
async fn next(shared: &Shared) -> HttpResponse {
    let event = match shared.next() {
        Ok(Next::Deliver(event)) => event,
        Ok(Next::Wait(waiting)) => match waiting.await {
            Ok(event) => event,
            // Shut down while waiting.
            Err(_) => return ApiError::InternalServerError.into_response(),
        },
        Err(refusal) => {
            tracing::debug!(?refusal, "runtime next refused");
            return refusal.into_response();
        }
    };
    tracing::debug!(request_id = %event.request_id, "event delivered");
    wire::event_response(&event)
}

/// `POST …/{id}/response`, buffered or streamed.
async fn response(reply: Reply, headers: &HeaderMap, body: Incoming, limit: usize) -> HttpResponse {
    let streaming = match headers.get(wire::RESPONSE_MODE) {
        None => false,
        Some(mode) if mode == wire::STREAMING => true,
        Some(_) => {
            let outcome = wire::invalid_response_mode(reply.request_id());
            reply.complete(outcome);
            wire::discard(body, limit).await;
            return ApiError::InvalidFunctionResponseMode.into_response();
        }
    };
    match wire::read_body(body, limit).await {
        ReadBody::Complete { data, trailers } => {
            let stream_error = trailers
                .as_ref()
                .filter(|_| streaming)
                .and_then(|t| t.get(wire::FUNCTION_ERROR_TYPE).map(|ty| (t, ty)));
            let outcome = match stream_error {
                // A mid-stream failure; what was streamed before is dropped.
                Some((trailers, error_type)) => InvokeOutcome::FunctionError {
                    error_type: wire::sanitize_error_type(Some(error_type)),
                    body: stream_error_body(trailers),
                },
                None => InvokeOutcome::Response {
                    body: data,
                    content_type: headers
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                },
            };
            reply.complete(outcome);
            wire::accepted()
        }
        ReadBody::TooLarge { size } => too_large(reply, size, limit),
        ReadBody::Truncated => truncated(reply),
    }
}

/// `Lambda-Runtime-Function-Error-Body`: base64 of the error document;
/// passed on decoded (or as sent, when it is not base64).
fn stream_error_body(trailers: &HeaderMap) -> Bytes {
    let Some(raw) = trailers.get(wire::FUNCTION_ERROR_BODY) else {
        return Bytes::new();
    };
    match base64::engine::general_purpose::STANDARD.decode(raw.as_bytes()) {
        Ok(decoded) => Bytes::from(decoded),
        Err(_) => Bytes::copy_from_slice(raw.as_bytes()),
    }
}

/// `POST …/{id}/error`.
async fn error(reply: Reply, headers: &HeaderMap, body: Incoming, limit: usize) -> HttpResponse {
    let error_type = wire::sanitize_error_type(headers.get(wire::FUNCTION_ERROR_TYPE));
    match wire::read_body(body, limit).await {
        ReadBody::Complete { data, .. } => {
            reply.complete(InvokeOutcome::FunctionError {
                error_type,
                body: wire::error_body(headers.get(CONTENT_TYPE), data),
            });
            wire::accepted()
        }
        ReadBody::TooLarge { size } => too_large(reply, size, limit),
        ReadBody::Truncated => truncated(reply),
    }
}

fn too_large(reply: Reply, size: usize, limit: usize) -> HttpResponse {
    tracing::debug!(
        request_id = reply.request_id(),
        size,
        limit,
        "runtime reply too large"
    );
    reply.complete(InvokeOutcome::ResponseTooLarge { size, limit });
    ApiError::RequestEntityTooLarge { limit }.into_response()
}

fn truncated(reply: Reply) -> HttpResponse {
    tracing::debug!(request_id = reply.request_id(), "runtime reply truncated");
    let outcome = wire::truncated_response(reply.request_id());
    reply.complete(outcome);
    ApiError::TruncatedHttpRequest.into_response()
}

/// `POST /runtime/init/error`.
async fn init_error(shared: &Shared, headers: &HeaderMap, body: Incoming) -> HttpResponse {
    let error_type = wire::sanitize_error_type(headers.get(wire::FUNCTION_ERROR_TYPE));
    let limit = shared.config.max_error_bytes;
    let (body, answer) = match wire::read_body(body, limit).await {
        ReadBody::Complete { data, .. } => (data, wire::accepted()),
        ReadBody::TooLarge { size } => (
            wire::oversized_init_error(&error_type, size, limit),
            ApiError::RequestEntityTooLarge { limit }.into_response(),
        ),
        // A broken request changes nothing; a runtime that dies mid-post is
        // seen by the executor when it exits.
        ReadBody::Truncated => return ApiError::TruncatedHttpRequest.into_response(),
    };
    tracing::debug!(%error_type, "runtime init error");
    match shared.init_error(error_type, body) {
        Ok(()) => answer,
        Err(refusal) => refusal.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let check = |method: Method, path: &str, expected: Result<Route<'_>, ApiError>| {
            assert_eq!(route(&method, path), expected, "{method} {path}");
        };
        check(Method::GET, "/2018-06-01/ping", Ok(Route::Ping));
        check(
            Method::GET,
            "/2018-06-01/runtime/invocation/next",
            Ok(Route::Next),
        );
        check(
            Method::POST,
            "/2018-06-01/runtime/invocation/abc/response",
            Ok(Route::Reply("abc", ReplyKind::Response)),
        );
        check(
            Method::POST,
            "/2018-06-01/runtime/invocation/abc/error",
            Ok(Route::Reply("abc", ReplyKind::Error)),
        );
        check(
            Method::POST,
            "/2018-06-01/runtime/invocation//response",
            Ok(Route::Reply("", ReplyKind::Response)),
        );
        check(
            Method::POST,
            "/2018-06-01/runtime/init/error",
            Ok(Route::InitError),
        );
        check(
            Method::POST,
            "/2018-06-01/runtime/invocation/next",
            Err(ApiError::MethodNotAllowed),
        );
        check(
            Method::GET,
            "/2018-06-01/runtime/invocation/abc/response",
            Err(ApiError::MethodNotAllowed),
        );
        check(
            Method::GET,
            "/2018-06-01/runtime/init/error",
            Err(ApiError::MethodNotAllowed),
        );
        check(
            Method::POST,
            "/2018-06-01/runtime/invocation/a/b/response",
            Err(ApiError::NotFound),
        );
        check(
            Method::POST,
            "/2018-06-01/runtime/invocation/abc/reply",
            Err(ApiError::NotFound),
        );
        check(
            Method::GET,
            "/2018-06-01/runtime/restore/next",
            Err(ApiError::NotFound),
        );
        check(
            Method::GET,
            "/2020-01-01/extension/event/next",
            Err(ApiError::NotFound),
        );
        check(Method::GET, "/", Err(ApiError::NotFound));
        check(
            Method::GET,
            "/2018-06-01/runtime/invocation/next/",
            Err(ApiError::NotFound),
        );
    }
}
