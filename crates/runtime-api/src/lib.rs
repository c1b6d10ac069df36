//! The Lambda Runtime API (2018-06-01) for one function instance.
//!
//! [`RuntimeApi::bind`] opens a listener on `127.0.0.1:0`; the executor
//! starts the instance with `AWS_LAMBDA_RUNTIME_API` set to
//! [`RuntimeApi::addr`], and the instance's runtime client (awslambdaric,
//! `lambda_runtime`, a custom `bootstrap`, …) long-polls it. The pool hands
//! invocations over with [`RuntimeApi::invoke`] and learns about the
//! instance's initialisation from the [`InstanceEvent`] channel.
//!
//! The wire follows `shared/specs/lambda-runtime-api.md` (§2–§9) and, where the
//! documentation is silent, the RAPID core of the AWS Runtime Interface
//! Emulator: the same status codes, `errorType`s and messages.
//!
//! # What this crate deliberately does not know
//!
//! Pools, executors, processes, images and the Lambda control plane. It never
//! times an invocation out (the caller races [`RuntimeApi::invoke`] against
//! the function timeout and kills the instance), never watches the runtime
//! process (the executor does), and never turns an outcome into an Invoke API
//! response (the functions crate does).
//!
//! # Invariants
//!
//! - One invocation at a time per instance; a second concurrent
//!   [`RuntimeApi::invoke`] is refused with [`InvokeError::Busy`].
//! - An event is only ever delivered to a runtime that has called
//!   `GET …/invocation/next`.
//! - Every body is read against a cap ([`RuntimeApiConfig`]); headers are capped
//!   by the HTTP parser; at most [`MAX_CONNECTIONS`] connections are served.
//! - No request, however malformed, panics or wedges the listener.
//!
//! The state of the instance is a small state machine behind a `std` mutex
//! that is never held across an `.await`: both the HTTP handlers and
//! [`RuntimeApi::invoke`] (including its cancellation path, which runs in
//! `Drop` and cannot await a channel) must change it atomically, and a mutex
//! with microsecond critical sections is both simpler and cheaper here than an
//! owning task.

mod server;
mod state;
mod wire;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::state::{Shared, Submitted};

/// RAPID's `MaxPayloadSize`: 6 MiB plus 100 bytes of slack, the largest
/// buffered response Lambda accepts from a runtime.
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024 + 100;

/// The most connections one listener serves at once (a runtime client uses
/// one or two); further connections wait to be accepted.
pub const MAX_CONNECTIONS: usize = 32;

/// Configuration of one instance's Runtime API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeApiConfig {
    /// The function's ARN; sent as `Lambda-Runtime-Invoked-Function-Arn`
    /// when an [`Invocation`] names none.
    pub function_arn: String,
    /// Largest body accepted on `…/response` (buffered or streamed); a
    /// larger one gets `413 RequestEntityTooLarge` and the invocation ends
    /// with [`InvokeOutcome::ResponseTooLarge`].
    pub max_response_bytes: usize,
    /// Largest body accepted on `…/error` and `/runtime/init/error`.
    pub max_error_bytes: usize,
}

impl RuntimeApiConfig {
    /// Lambda's limits: [`MAX_PAYLOAD_BYTES`] for responses and errors.
    pub fn new(function_arn: impl Into<String>) -> Self {
        Self {
            function_arn: function_arn.into(),
            max_response_bytes: MAX_PAYLOAD_BYTES,
            max_error_bytes: MAX_PAYLOAD_BYTES,
        }
    }
}

/// One invocation, as the runtime will see it on `GET …/invocation/next`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id`: 1–256 characters from
    /// `A-Z a-z 0-9 - . _ ~` (normally a UUID), since the runtime echoes it in
    /// a URL path.
    pub request_id: String,
    /// The event, delivered byte for byte.
    pub payload: Bytes,
    /// Sent as `Lambda-Runtime-Deadline-Ms` (Unix epoch milliseconds).
    pub deadline: SystemTime,
    /// The ARN as the caller addressed the function (unqualified, version or
    /// alias); empty means [`RuntimeApiConfig::function_arn`].
    pub invoked_function_arn: String,
    /// `Lambda-Runtime-Trace-Id`, e.g. `Root=1-…;Parent=…;Sampled=0`.
    pub trace_id: Option<String>,
    /// `Lambda-Runtime-Client-Context`: the caller's *base64-decoded* client
    /// context JSON (runtime clients parse it as JSON).
    pub client_context: Option<String>,
    /// `Lambda-Runtime-Cognito-Identity`: JSON
    /// `{"cognitoIdentityId":…,"cognitoIdentityPoolId":…}`.
    pub cognito_identity: Option<String>,
    /// The payload's content type; `application/json` when absent.
    pub content_type: Option<String>,
}

/// How an invocation ended, as far as the runtime told us.
///
/// Function failures are data here, not errors: the caller turns them into
/// the Invoke API's `X-Amz-Function-Error: Unhandled` responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeOutcome {
    /// `POST …/{id}/response`: the function's result. A streamed response
    /// (`Lambda-Runtime-Function-Response-Mode: streaming`) is read to its end
    /// and reported here as well.
    Response {
        body: Bytes,
        /// The runtime's `Content-Type`, if it sent one.
        content_type: Option<String>,
    },
    /// `POST …/{id}/error` (body passed through unchanged), a streamed
    /// response that ended with `Lambda-Runtime-Function-Error-*` trailers,
    /// or a reply the API refused (`Runtime.InvalidResponseModeHeader`,
    /// `Runtime.TruncatedResponse`, with a synthesized body).
    FunctionError {
        /// `Lambda-Runtime-Function-Error-Type` sanitised as RAPID does:
        /// kept when it contains `(Runtime|Function).Xy…`, otherwise
        /// `Runtime.Unknown` (`Function.Unknown` for a `Function.` prefix).
        error_type: String,
        body: Bytes,
    },
    /// The response (or error) body exceeded its limit; the runtime got
    /// `413 RequestEntityTooLarge`. The Invoke API reports this as
    /// `Function.ResponseSizeTooLarge`.
    ResponseTooLarge { size: usize, limit: usize },
    /// The runtime posted `/runtime/init/error` instead of taking this
    /// invocation (also returned, cached, for any later invocation).
    InitError { error_type: String, body: Bytes },
}

/// What the instance's runtime did outside of any invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceEvent {
    /// The runtime called `GET …/invocation/next` for the first time: its
    /// initialisation is complete.
    Ready,
    /// The runtime posted `/runtime/init/error` (it normally exits next).
    /// `error_type` is sanitised like [`InvokeOutcome::FunctionError`]'s.
    InitError { error_type: String, body: Bytes },
}

/// Errors of [`RuntimeApi::bind`].
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("cannot bind the runtime api listener on 127.0.0.1: {0}")]
    Io(#[from] std::io::Error),
}

/// Errors of [`RuntimeApi::invoke`]: misuse by the caller or a stopped
/// listener, never a function failure.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvokeError {
    #[error("instance is busy with invocation {request_id}")]
    Busy { request_id: String },
    #[error("invocation field {field} is invalid: {reason}")]
    InvalidInvocation {
        field: &'static str,
        reason: &'static str,
    },
    #[error("the runtime api listener has stopped")]
    Stopped,
}

/// The Runtime API of one function instance. Dropping it stops the listener
/// and closes every connection, like [`RuntimeApi::shutdown`].
#[derive(Debug)]
pub struct RuntimeApi {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tasks: JoinSet<()>,
}

impl RuntimeApi {
    /// Binds `127.0.0.1:0` and starts serving. The receiver yields at most
    /// one [`InstanceEvent::Ready`] or [`InstanceEvent::InitError`].
    pub async fn bind(
        config: RuntimeApiConfig,
    ) -> Result<(RuntimeApi, mpsc::Receiver<InstanceEvent>), BindError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (events_tx, events_rx) = mpsc::channel(2);
        let span = tracing::info_span!("runtime_api", function = %config.function_arn, %addr);
        let shared = Arc::new(Shared::new(config, events_tx));
        let mut tasks = JoinSet::new();
        tasks.spawn(server::serve(listener, Arc::clone(&shared)).instrument(span));
        Ok((
            RuntimeApi {
                shared,
                addr,
                tasks,
            },
            events_rx,
        ))
    }

    /// The listener's address, for `AWS_LAMBDA_RUNTIME_API`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Hands `invocation` to the instance — to its pending `GET …/next`, or
    /// to the next one it makes — and waits for the outcome.
    ///
    /// No timeout of its own. Cancel-safe: dropping the future abandons the
    /// invocation (a late reply for it gets `400 InvalidRequestID`, and the
    /// instance takes new invocations once its runtime polls again).
    pub async fn invoke(&self, invocation: Invocation) -> Result<InvokeOutcome, InvokeError> {
        let request_id = invocation.request_id.clone();
        let event = wire::render_event(invocation, &self.shared.config.function_arn)?;
        let (ticket, reply) = match self.shared.submit(event)? {
            Submitted::Cached(outcome) => return Ok(outcome),
            Submitted::Pending { ticket, reply } => (ticket, reply),
        };
        // Abandoning a finished ticket is a no-op, so the guard always runs.
        let _guard = AbandonOnDrop {
            shared: &self.shared,
            ticket,
        };
        reply
            .instrument(tracing::debug_span!("invocation", request_id = %request_id))
            .await
            .map_err(|_| InvokeError::Stopped)
    }

    /// Stops accepting, answers a waiting `GET …/next` with `500` and closes
    /// every connection; the runtime client then fails and exits.
    pub async fn shutdown(mut self) {
        self.shared.close();
        self.tasks.shutdown().await;
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// Abandons the invocation when the [`RuntimeApi::invoke`] future is dropped
/// before its outcome arrived.
struct AbandonOnDrop<'a> {
    shared: &'a Shared,
    ticket: u64,
}

impl Drop for AbandonOnDrop<'_> {
    fn drop(&mut self) {
        self.shared.abandon(self.ticket);
    }
}
