//! Wire shapes of the Runtime API: header names, the event rendering, the
//! error → HTTP mapping, error-type sanitising and bounded body reading.

use std::time::UNIX_EPOCH;

use bytes::{Bytes, BytesMut};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};

use crate::state::Event;
use crate::{Invocation, InvokeError, InvokeOutcome};

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("lambda-runtime-aws-request-id");
pub(crate) const DEADLINE_MS: HeaderName = HeaderName::from_static("lambda-runtime-deadline-ms");
pub(crate) const INVOKED_FUNCTION_ARN: HeaderName =
    HeaderName::from_static("lambda-runtime-invoked-function-arn");
pub(crate) const TRACE_ID: HeaderName = HeaderName::from_static("lambda-runtime-trace-id");
pub(crate) const CLIENT_CONTEXT: HeaderName =
    HeaderName::from_static("lambda-runtime-client-context");
pub(crate) const COGNITO_IDENTITY: HeaderName =
    HeaderName::from_static("lambda-runtime-cognito-identity");
pub(crate) const FUNCTION_ERROR_TYPE: HeaderName =
    HeaderName::from_static("lambda-runtime-function-error-type");
pub(crate) const FUNCTION_ERROR_BODY: HeaderName =
    HeaderName::from_static("lambda-runtime-function-error-body");
pub(crate) const RESPONSE_MODE: HeaderName =
    HeaderName::from_static("lambda-runtime-function-response-mode");

/// The only value `Lambda-Runtime-Function-Response-Mode` may take.
pub(crate) const STREAMING: &str = "streaming";
/// `/error` bodies of this type are `{errorMessage,errorType,stackTrace,errorCause}`
/// documents that RAPID splits; the caller sees them without `errorCause`.
const ERROR_CAUSE_CONTENT_TYPE: &str = "application/vnd.aws.lambda.error.cause+json";
const APPLICATION_JSON: &str = "application/json";
const MAX_REQUEST_ID_LEN: usize = 256;

pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// Everything the API answers other than success, with one rendering each
/// (RAPID `rapi/rendering`; `concurrent` is our own case, see `state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApiError {
    InvalidStateTransition {
        from: &'static str,
        to: &'static str,
        concurrent: bool,
    },
    InvalidRequestId,
    InvalidFunctionResponseMode,
    TruncatedHttpRequest,
    RequestEntityTooLarge {
        limit: usize,
    },
    InternalServerError,
    NotFound,
    MethodNotAllowed,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorDocument<'a> {
    error_message: &'a str,
    error_type: &'a str,
}

impl ApiError {
    pub(crate) fn into_response(self) -> HttpResponse {
        let (status, error_type, message) = match self {
            ApiError::InvalidStateTransition {
                from,
                to,
                concurrent,
            } => {
                let cause = if concurrent {
                    "Concurrent state modification"
                } else {
                    "State transition is not allowed"
                };
                (
                    StatusCode::FORBIDDEN,
                    "InvalidStateTransition",
                    format!(
                        "State transition from {from} to {to} failed for runtime. Error: {cause}"
                    ),
                )
            }
            ApiError::InvalidRequestId => (
                StatusCode::BAD_REQUEST,
                "InvalidRequestID",
                "Invalid request ID".to_owned(),
            ),
            ApiError::InvalidFunctionResponseMode => (
                StatusCode::BAD_REQUEST,
                "InvalidFunctionResponseMode",
                "Invalid function response mode".to_owned(),
            ),
            ApiError::TruncatedHttpRequest => (
                StatusCode::BAD_REQUEST,
                "TruncatedHTTPRequest",
                "HTTP request detected as truncated".to_owned(),
            ),
            ApiError::RequestEntityTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                format!("Exceeded maximum allowed payload size ({limit} bytes)."),
            ),
            ApiError::InternalServerError => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "Internal Server Error".to_owned(),
            ),
            // The chi router's answers: plain text 404, empty 405.
            ApiError::NotFound => {
                return plain(StatusCode::NOT_FOUND, "404 page not found\n");
            }
            ApiError::MethodNotAllowed => return plain(StatusCode::METHOD_NOT_ALLOWED, ""),
        };
        json(
            status,
            &ErrorDocument {
                error_message: &message,
                error_type,
            },
        )
    }
}

/// `202 {"status":"OK"}`.
pub(crate) fn accepted() -> HttpResponse {
    #[derive(Serialize)]
    struct Status {
        status: &'static str,
    }
    json(StatusCode::ACCEPTED, &Status { status: "OK" })
}

pub(crate) fn pong() -> HttpResponse {
    plain(StatusCode::OK, "pong")
}

/// JSON with the trailing newline Go's `json.Encoder` writes.
fn json(status: StatusCode, value: &impl Serialize) -> HttpResponse {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    body.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(APPLICATION_JSON));
    response
}

fn plain(status: StatusCode, text: &'static str) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    if !text.is_empty() {
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    response
}

/// The `200` answer to `GET …/next` for `event`.
pub(crate) fn event_response(event: &Event) -> HttpResponse {
    let mut response = Response::new(Full::new(event.body.clone()));
    *response.headers_mut() = event.headers.clone();
    response
}

/// Validates `invocation` and renders its `GET …/next` answer once, so that
/// delivery (and redelivery) cannot fail.
pub(crate) fn render_event(
    invocation: Invocation,
    function_arn: &str,
) -> Result<Event, InvokeError> {
    let Invocation {
        request_id,
        payload,
        deadline,
        invoked_function_arn,
        trace_id,
        client_context,
        cognito_identity,
        content_type,
    } = invocation;
    if request_id.is_empty() || request_id.len() > MAX_REQUEST_ID_LEN {
        return Err(InvokeError::InvalidInvocation {
            field: "request_id",
            reason: "must be 1 to 256 characters",
        });
    }
    if !request_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        return Err(InvokeError::InvalidInvocation {
            field: "request_id",
            reason: "may only contain A-Z a-z 0-9 - . _ ~",
        });
    }
    let arn = if invoked_function_arn.is_empty() {
        function_arn
    } else {
        &invoked_function_arn
    };
    let deadline_ms = deadline
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);

    let mut headers = HeaderMap::with_capacity(8);
    // RAPID never sends an empty header value; neither do we.
    let mut put = |name: HeaderName, field: &'static str, value: &str| {
        if value.is_empty() {
            return Ok(());
        }
        let value = HeaderValue::from_str(value).map_err(|_| InvokeError::InvalidInvocation {
            field,
            reason: "is not a valid HTTP header value",
        })?;
        headers.insert(name, value);
        Ok(())
    };
    put(REQUEST_ID, "request_id", &request_id)?;
    put(DEADLINE_MS, "deadline", &deadline_ms.to_string())?;
    put(INVOKED_FUNCTION_ARN, "invoked_function_arn", arn)?;
    put(TRACE_ID, "trace_id", trace_id.as_deref().unwrap_or(""))?;
    put(
        CLIENT_CONTEXT,
        "client_context",
        client_context.as_deref().unwrap_or(""),
    )?;
    put(
        COGNITO_IDENTITY,
        "cognito_identity",
        cognito_identity.as_deref().unwrap_or(""),
    )?;
    let content_type = content_type.as_deref().filter(|c| !c.is_empty());
    put(
        CONTENT_TYPE,
        "content_type",
        content_type.unwrap_or(APPLICATION_JSON),
    )?;
    if !headers.contains_key(INVOKED_FUNCTION_ARN) {
        return Err(InvokeError::InvalidInvocation {
            field: "invoked_function_arn",
            reason: "is empty and so is the configured function_arn",
        });
    }
    Ok(Event {
        request_id,
        headers,
        body: payload,
    })
}

/// RAPID's `GetValidRuntimeOrFunctionErrorType`: a type containing
/// `(Runtime|Function)\.[A-Z][a-zA-Z]+` is kept whole; anything else becomes
/// `Runtime.Unknown`, or `Function.Unknown` with a `Function.` prefix.
pub(crate) fn sanitize_error_type(raw: Option<&HeaderValue>) -> String {
    let raw = raw.and_then(|v| v.to_str().ok()).unwrap_or("");
    let valid = ["Runtime.", "Function."].iter().any(|prefix| {
        raw.match_indices(prefix).any(|(at, _)| {
            let rest = &raw.as_bytes()[at + prefix.len()..];
            matches!(rest, [first, second, ..] if first.is_ascii_uppercase() && second.is_ascii_alphabetic())
        })
    });
    if valid {
        raw.to_owned()
    } else if raw.starts_with("Function.") {
        "Function.Unknown".to_owned()
    } else {
        "Runtime.Unknown".to_owned()
    }
}

/// The body of an `/error` post as the caller will see it: unchanged,
/// except for RAPID's error-cause content type, whose `errorCause` is
/// stripped (an unparsable one becomes the JSON string `"Invalid error body"`).
pub(crate) fn error_body(content_type: Option<&HeaderValue>, body: Bytes) -> Bytes {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct WithCause {
        error_message: Option<String>,
        error_type: Option<String>,
        stack_trace: Option<Vec<String>>,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Filtered {
        error_message: String,
        error_type: String,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        stack_trace: Vec<String>,
    }
    if content_type.and_then(|v| v.to_str().ok()) != Some(ERROR_CAUSE_CONTENT_TYPE) {
        return body;
    }
    let filtered = serde_json::from_slice::<WithCause>(&body)
        .ok()
        .and_then(|e| {
            serde_json::to_vec(&Filtered {
                error_message: e.error_message.unwrap_or_default(),
                error_type: e.error_type.unwrap_or_default(),
                stack_trace: e.stack_trace.unwrap_or_default(),
            })
            .ok()
        });
    match filtered {
        Some(filtered) => Bytes::from(filtered),
        None => Bytes::from_static(b"\"Invalid error body\""),
    }
}

/// A platform-made error document, `RequestId: <id> Error: <cause>` (§8).
fn synthesized(error_type: &str, message: &str) -> Bytes {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Synthesized<'a> {
        error_type: &'a str,
        error_message: &'a str,
    }
    Bytes::from(
        serde_json::to_vec(&Synthesized {
            error_type,
            error_message: message,
        })
        .unwrap_or_default(),
    )
}

/// The outcome when the runtime's reply body ended early.
pub(crate) fn truncated_response(request_id: &str) -> InvokeOutcome {
    let error_type = "Runtime.TruncatedResponse";
    InvokeOutcome::FunctionError {
        error_type: error_type.to_owned(),
        body: synthesized(
            error_type,
            &format!("RequestId: {request_id} Error: runtime response was truncated"),
        ),
    }
}

/// The outcome when `/response` carried a response mode other than `streaming`.
pub(crate) fn invalid_response_mode(request_id: &str) -> InvokeOutcome {
    let error_type = "Runtime.InvalidResponseModeHeader";
    InvokeOutcome::FunctionError {
        error_type: error_type.to_owned(),
        body: synthesized(
            error_type,
            &format!(
                "RequestId: {request_id} Error: invalid Lambda-Runtime-Function-Response-Mode header"
            ),
        ),
    }
}

/// The init error recorded when `/runtime/init/error`'s body was too large.
pub(crate) fn oversized_init_error(error_type: &str, size: usize, limit: usize) -> Bytes {
    synthesized(
        error_type,
        &format!(
            "Init error payload size ({size} bytes) exceeded maximum allowed payload size ({limit} bytes)."
        ),
    )
}

/// A request body read against a limit.
#[derive(Debug)]
pub(crate) enum ReadBody {
    Complete {
        data: Bytes,
        trailers: Option<HeaderMap>,
    },
    /// Larger than the limit; `size` is what was counted (or declared).
    TooLarge { size: usize },
    /// The connection ended (or the framing broke) before the body did.
    Truncated,
}

/// How far past its limit an oversized body is read (and discarded) so the
/// runtime still gets a clean `413`; beyond that the connection is dropped.
const DRAIN_SLACK: usize = 64 * 1024 * 1024;

/// Reads `body` keeping at most `limit` bytes in memory.
pub(crate) async fn read_body<B>(mut body: B, limit: usize) -> ReadBody
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let declared = body
        .size_hint()
        .exact()
        .and_then(|n| usize::try_from(n).ok());
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    let mut size: usize = 0;
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return ReadBody::Truncated;
        };
        match frame.into_data() {
            Ok(data) => {
                size = size.saturating_add(data.len());
                if size <= limit {
                    buffer.extend_from_slice(&data);
                } else {
                    buffer = BytesMut::new();
                    if size > limit.saturating_add(DRAIN_SLACK) {
                        break;
                    }
                }
            }
            Err(frame) => {
                if let Ok(map) = frame.into_trailers() {
                    trailers = Some(map);
                }
            }
        }
    }
    if size > limit {
        return ReadBody::TooLarge {
            size: size.max(declared.unwrap_or(0)),
        };
    }
    ReadBody::Complete {
        data: buffer.freeze(),
        trailers,
    }
}

/// Reads and drops up to `limit` bytes of a body the answer does not need,
/// so the runtime is not cut off mid-upload.
pub(crate) async fn discard<B>(mut body: B, limit: usize)
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let mut size: usize = 0;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            size = size.saturating_add(data.len());
            if size > limit {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn check_type(raw: Option<&str>, expected: &str) {
        let value = raw.map(|r| HeaderValue::from_str(r).expect("header"));
        assert_eq!(sanitize_error_type(value.as_ref()), expected, "for {raw:?}");
    }

    #[test]
    fn error_types_are_sanitised_like_rapid() {
        check_type(None, "Runtime.Unknown");
        check_type(Some(""), "Runtime.Unknown");
        check_type(Some("unhandled"), "Runtime.Unknown");
        check_type(Some("Unhandled"), "Runtime.Unknown");
        check_type(
            Some("Runtime.ImportModuleError"),
            "Runtime.ImportModuleError",
        );
        check_type(Some("Function.MyError"), "Function.MyError");
        check_type(Some("Function.x"), "Function.Unknown");
        check_type(Some("Runtime.A"), "Runtime.Unknown");
        check_type(Some("Runtime.Ab"), "Runtime.Ab");
        // Unanchored, as in RAPID's regexp.
        check_type(Some("my Runtime.StreamError!"), "my Runtime.StreamError!");
    }

    #[test]
    fn error_cause_documents_are_filtered() {
        let cause = HeaderValue::from_static(ERROR_CAUSE_CONTENT_TYPE);
        let body = Bytes::from_static(
            br#"{"errorMessage":"boom","errorType":"ValueError","stackTrace":["a"],"errorCause":{"paths":[]}}"#,
        );
        assert_eq!(
            error_body(Some(&cause), body),
            Bytes::from_static(
                br#"{"errorMessage":"boom","errorType":"ValueError","stackTrace":["a"]}"#
            )
        );
        assert_eq!(
            error_body(Some(&cause), Bytes::from_static(b"not json")),
            Bytes::from_static(b"\"Invalid error body\"")
        );
        let json = HeaderValue::from_static(APPLICATION_JSON);
        assert_eq!(
            error_body(Some(&json), Bytes::from_static(b"kept as is")),
            Bytes::from_static(b"kept as is")
        );
    }

    fn check_response(response: HttpResponse, status: u16, body: &str) {
        assert_eq!(response.status().as_u16(), status);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let bytes = rt
            .block_on(response.into_body().collect())
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        assert_eq!(std::str::from_utf8(&bytes).expect("utf-8"), body);
    }

    #[test]
    fn answers_render_like_rapid() {
        check_response(accepted(), 202, "{\"status\":\"OK\"}\n");
        check_response(
            ApiError::InvalidRequestId.into_response(),
            400,
            "{\"errorMessage\":\"Invalid request ID\",\"errorType\":\"InvalidRequestID\"}\n",
        );
        check_response(
            ApiError::InvalidStateTransition {
                from: "RuntimeResponseSentState",
                to: "InvocationResponse",
                concurrent: false,
            }
            .into_response(),
            403,
            "{\"errorMessage\":\"State transition from RuntimeResponseSentState to InvocationResponse failed for runtime. Error: State transition is not allowed\",\"errorType\":\"InvalidStateTransition\"}\n",
        );
        check_response(
            ApiError::RequestEntityTooLarge { limit: 6291556 }.into_response(),
            413,
            "{\"errorMessage\":\"Exceeded maximum allowed payload size (6291556 bytes).\",\"errorType\":\"RequestEntityTooLarge\"}\n",
        );
        check_response(
            ApiError::TruncatedHttpRequest.into_response(),
            400,
            "{\"errorMessage\":\"HTTP request detected as truncated\",\"errorType\":\"TruncatedHTTPRequest\"}\n",
        );
        check_response(
            ApiError::InvalidFunctionResponseMode.into_response(),
            400,
            "{\"errorMessage\":\"Invalid function response mode\",\"errorType\":\"InvalidFunctionResponseMode\"}\n",
        );
        check_response(
            ApiError::InternalServerError.into_response(),
            500,
            "{\"errorMessage\":\"Internal Server Error\",\"errorType\":\"InternalServerError\"}\n",
        );
        check_response(
            ApiError::NotFound.into_response(),
            404,
            "404 page not found\n",
        );
        check_response(ApiError::MethodNotAllowed.into_response(), 405, "");
    }

    #[test]
    fn events_carry_every_header_but_empty_ones() {
        let deadline = UNIX_EPOCH + std::time::Duration::from_millis(1_767_225_603_000);
        let event = render_event(
            Invocation {
                request_id: "0f3c6a8e-1d5b-4c7e-9a55-3e2b1f0d9c11".into(),
                payload: Bytes::from_static(b"{\"orderId\": 42}"),
                deadline,
                invoked_function_arn: String::new(),
                trace_id: Some(
                    "Root=1-67750000-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=0"
                        .into(),
                ),
                client_context: Some(String::new()),
                cognito_identity: None,
                content_type: None,
            },
            "arn:aws:lambda:eu-west-1:123456789012:function:demo",
        )
        .expect("valid");
        let header = |name: &HeaderName| {
            event
                .headers
                .get(name)
                .map(|v| v.to_str().expect("ascii").to_owned())
        };
        assert_eq!(
            header(&REQUEST_ID).as_deref(),
            Some("0f3c6a8e-1d5b-4c7e-9a55-3e2b1f0d9c11")
        );
        assert_eq!(header(&DEADLINE_MS).as_deref(), Some("1767225603000"));
        assert_eq!(
            header(&INVOKED_FUNCTION_ARN).as_deref(),
            Some("arn:aws:lambda:eu-west-1:123456789012:function:demo")
        );
        assert!(header(&TRACE_ID).is_some());
        assert_eq!(header(&CLIENT_CONTEXT), None);
        assert_eq!(header(&COGNITO_IDENTITY), None);
        assert_eq!(header(&CONTENT_TYPE).as_deref(), Some("application/json"));
    }

    #[test]
    fn invalid_invocations_are_refused() {
        let base = Invocation {
            request_id: "id".into(),
            payload: Bytes::new(),
            deadline: SystemTime::now(),
            invoked_function_arn: "arn".into(),
            trace_id: None,
            client_context: None,
            cognito_identity: None,
            content_type: None,
        };
        let field_of = |invocation: Invocation, arn: &str| match render_event(invocation, arn) {
            Err(InvokeError::InvalidInvocation { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        };
        assert_eq!(
            field_of(
                Invocation {
                    request_id: String::new(),
                    ..base.clone()
                },
                "a"
            ),
            "request_id"
        );
        assert_eq!(
            field_of(
                Invocation {
                    request_id: "a/b".into(),
                    ..base.clone()
                },
                "a"
            ),
            "request_id"
        );
        assert_eq!(
            field_of(
                Invocation {
                    request_id: "x".repeat(257),
                    ..base.clone()
                },
                "a"
            ),
            "request_id"
        );
        assert_eq!(
            field_of(
                Invocation {
                    trace_id: Some("a\nb".into()),
                    ..base.clone()
                },
                "a"
            ),
            "trace_id"
        );
        assert_eq!(
            field_of(
                Invocation {
                    invoked_function_arn: String::new(),
                    ..base.clone()
                },
                ""
            ),
            "invoked_function_arn"
        );
        assert!(render_event(base, "").is_ok());
    }
}
