//! The runtime's state machine (RAPID `core/states.go`) and the one
//! invocation slot, shared by the HTTP handlers and [`crate::RuntimeApi`].
//!
//! ```text
//! Started ──next──► Ready ──event delivered──► Running ──POST reply──► Replying ──body read──► ResponseSent
//!    │                ▲                           │ next: same event again                         │
//!    │ init/error     └───────────────────────────┴──────────────── next ◄─────────────────────────┘
//!    ▼
//! InitError (terminal)
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use http::HeaderMap;
use tokio::sync::{mpsc, oneshot};

use crate::wire::{self, ApiError};
use crate::{InstanceEvent, InvokeError, InvokeOutcome, RuntimeApiConfig};

/// A rendered `GET …/next` answer; shared so a repeated `next` can resend it.
#[derive(Debug)]
pub(crate) struct Event {
    pub(crate) request_id: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// Which reply the runtime is posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyKind {
    Response,
    Error,
}

impl ReplyKind {
    fn state_name(self) -> &'static str {
        match self {
            ReplyKind::Response => "InvocationResponse",
            ReplyKind::Error => "InvocationErrorResponse",
        }
    }
}

pub(crate) enum Submitted {
    /// The instance failed its init; this is the cached outcome.
    Cached(InvokeOutcome),
    Pending {
        ticket: u64,
        reply: oneshot::Receiver<InvokeOutcome>,
    },
}

pub(crate) enum Next {
    Deliver(Arc<Event>),
    Wait(oneshot::Receiver<Arc<Event>>),
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: RuntimeApiConfig,
    state: Mutex<State>,
    events: mpsc::Sender<InstanceEvent>,
    tickets: AtomicU64,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// The runtime's pending `GET …/next`, only ever set in `Phase::Ready`.
    waiter: Option<oneshot::Sender<Arc<Event>>>,
    /// An invocation not yet delivered (the runtime is not in `next`).
    queued: Option<Slot>,
    /// The `invoke` call in flight (queued, running or being replied to).
    live: Option<(u64, String)>,
    closed: bool,
}

#[derive(Debug)]
struct Slot {
    ticket: u64,
    event: Arc<Event>,
    reply: oneshot::Sender<InvokeOutcome>,
}

#[derive(Debug)]
enum Phase {
    /// Spawned; has not called `next` yet.
    Started,
    /// In `next` (or about to be) with nothing to run.
    Ready,
    /// Has the event; `reply` is `None` once the caller abandoned it.
    Running {
        event: Arc<Event>,
        ticket: u64,
        reply: Option<oneshot::Sender<InvokeOutcome>>,
    },
    /// A handler is reading the reply's body.
    Replying { kind: ReplyKind },
    /// Replied; not back in `next` yet.
    ResponseSent,
    /// Posted `/runtime/init/error`; terminal.
    InitError { error_type: String, body: Bytes },
}

impl Phase {
    /// RAPID's state names, which appear in `InvalidStateTransition` messages.
    fn name(&self) -> &'static str {
        match self {
            Phase::Started => "Started",
            Phase::Ready => "Ready",
            Phase::Running { .. } => "Running",
            Phase::Replying { kind } => kind.state_name(),
            Phase::ResponseSent => "RuntimeResponseSentState",
            Phase::InitError { .. } => "InitError",
        }
    }
}

impl Shared {
    pub(crate) fn new(config: RuntimeApiConfig, events: mpsc::Sender<InstanceEvent>) -> Self {
        Self {
            config,
            state: Mutex::new(State {
                phase: Phase::Started,
                waiter: None,
                queued: None,
                live: None,
                closed: false,
            }),
            events,
            tickets: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; recover rather than cascade.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn emit(&self, event: InstanceEvent) {
        // At most one event per instance and room for two: never full. A
        // dropped receiver means nobody listens.
        let _ = self.events.try_send(event);
    }

    /// Queues an invocation, or hands it straight to a waiting `next`.
    pub(crate) fn submit(&self, event: Event) -> Result<Submitted, InvokeError> {
        let mut state = self.lock();
        if state.closed {
            return Err(InvokeError::Stopped);
        }
        if let Phase::InitError { error_type, body } = &state.phase {
            return Ok(Submitted::Cached(InvokeOutcome::InitError {
                error_type: error_type.clone(),
                body: body.clone(),
            }));
        }
        if let Some((_, request_id)) = &state.live {
            return Err(InvokeError::Busy {
                request_id: request_id.clone(),
            });
        }
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        let (reply, receiver) = oneshot::channel();
        state.live = Some((ticket, event.request_id.clone()));
        let mut event = Arc::new(event);
        if matches!(state.phase, Phase::Ready) {
            if let Some(waiter) = state.waiter.take() {
                // Kept for a repeated `next`.
                let delivered = Arc::clone(&event);
                match waiter.send(event) {
                    Ok(()) => {
                        state.phase = Phase::Running {
                            event: delivered,
                            ticket,
                            reply: Some(reply),
                        };
                        return Ok(Submitted::Pending {
                            ticket,
                            reply: receiver,
                        });
                    }
                    // The poller went away; keep the event for the next one.
                    Err(returned) => event = returned,
                }
            }
        }
        state.queued = Some(Slot {
            ticket,
            event,
            reply,
        });
        Ok(Submitted::Pending {
            ticket,
            reply: receiver,
        })
    }

    /// The caller dropped its `invoke` future.
    pub(crate) fn abandon(&self, ticket: u64) {
        let mut state = self.lock();
        if state.live.as_ref().is_some_and(|(t, _)| *t == ticket) {
            state.live = None;
        }
        if state
            .queued
            .as_ref()
            .is_some_and(|slot| slot.ticket == ticket)
        {
            state.queued = None;
        }
        if let Phase::Running {
            ticket: running,
            reply,
            ..
        } = &mut state.phase
        {
            if *running == ticket {
                *reply = None;
            }
        }
    }

    /// `GET …/invocation/next`.
    pub(crate) fn next(&self) -> Result<Next, ApiError> {
        let mut state = self.lock();
        if state.closed {
            return Err(ApiError::InternalServerError);
        }
        match &state.phase {
            Phase::InitError { .. } | Phase::Replying { .. } => {
                return Err(ApiError::InvalidStateTransition {
                    from: state.phase.name(),
                    to: "Ready",
                    concurrent: false,
                });
            }
            Phase::Started => self.emit(InstanceEvent::Ready),
            // A repeated `next` while running is a retry of delivery (RAPID).
            Phase::Running {
                event,
                reply: Some(_),
                ..
            } => return Ok(Next::Deliver(Arc::clone(event))),
            // The caller is gone; nothing to redeliver.
            Phase::Running { reply: None, .. } | Phase::ResponseSent | Phase::Ready => {}
        }
        state.phase = Phase::Ready;
        if let Some(slot) = state.queued.take() {
            let event = Arc::clone(&slot.event);
            state.phase = Phase::Running {
                event: slot.event,
                ticket: slot.ticket,
                reply: Some(slot.reply),
            };
            return Ok(Next::Deliver(event));
        }
        if state.waiter.as_ref().is_some_and(|w| !w.is_closed()) {
            return Err(ApiError::InvalidStateTransition {
                from: "Ready",
                to: "Ready",
                concurrent: true,
            });
        }
        let (waiter, receiver) = oneshot::channel();
        state.waiter = Some(waiter);
        Ok(Next::Wait(receiver))
    }

    /// Starts a `POST …/{id}/response` or `…/error`: checks the state and
    /// the id, and takes the invocation's reply channel.
    pub(crate) fn begin_reply(
        self: &Arc<Self>,
        request_id: &str,
        kind: ReplyKind,
    ) -> Result<Reply, ApiError> {
        let mut state = self.lock();
        if state.closed {
            return Err(ApiError::InternalServerError);
        }
        let Phase::Running {
            event,
            ticket,
            reply,
        } = &mut state.phase
        else {
            return Err(ApiError::InvalidStateTransition {
                from: state.phase.name(),
                to: kind.state_name(),
                concurrent: false,
            });
        };
        if event.request_id != request_id {
            return Err(ApiError::InvalidRequestId);
        }
        let ticket = *ticket;
        match reply.take() {
            Some(sender) => {
                state.phase = Phase::Replying { kind };
                Ok(Reply {
                    shared: Arc::clone(self),
                    ticket,
                    request_id: request_id.to_owned(),
                    sender: Some(sender),
                })
            }
            // Abandoned by the caller: the runtime is done with it, but
            // nobody waits for the answer.
            None => {
                state.phase = Phase::ResponseSent;
                Err(ApiError::InvalidRequestId)
            }
        }
    }

    /// `POST /runtime/init/error` with its body already read.
    pub(crate) fn init_error(&self, error_type: String, body: Bytes) -> Result<(), ApiError> {
        let mut state = self.lock();
        if state.closed {
            return Err(ApiError::InternalServerError);
        }
        if !matches!(state.phase, Phase::Started) {
            return Err(ApiError::InvalidStateTransition {
                from: state.phase.name(),
                to: "InitError",
                concurrent: false,
            });
        }
        state.phase = Phase::InitError {
            error_type: error_type.clone(),
            body: body.clone(),
        };
        if let Some(slot) = state.queued.take() {
            state.live = None;
            let _ = slot.reply.send(InvokeOutcome::InitError {
                error_type: error_type.clone(),
                body: body.clone(),
            });
        }
        self.emit(InstanceEvent::InitError { error_type, body });
        Ok(())
    }

    /// Refuses everything from now on and releases a waiting `next`.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.waiter = None;
        state.queued = None;
        state.live = None;
        if let Phase::Running { reply, .. } = &mut state.phase {
            *reply = None;
        }
    }
}

/// The right to complete one invocation, held while its reply body is read.
/// Dropped without [`Reply::complete`] (connection gone mid-body), the
/// invocation ends with `Runtime.TruncatedResponse`.
#[derive(Debug)]
pub(crate) struct Reply {
    shared: Arc<Shared>,
    ticket: u64,
    request_id: String,
    sender: Option<oneshot::Sender<InvokeOutcome>>,
}

impl Reply {
    pub(crate) fn request_id(&self) -> &str {
        &self.request_id
    }

    pub(crate) fn complete(mut self, outcome: InvokeOutcome) {
        self.finish(outcome);
    }

    fn finish(&mut self, outcome: InvokeOutcome) {
        let Some(sender) = self.sender.take() else {
            return;
        };
        {
            let mut state = self.shared.lock();
            if matches!(state.phase, Phase::Replying { .. }) {
                state.phase = Phase::ResponseSent;
            }
            if state.live.as_ref().is_some_and(|(t, _)| *t == self.ticket) {
                state.live = None;
            }
        }
        // After `live` is cleared, so the caller can invoke again at once.
        let _ = sender.send(outcome);
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if self.sender.is_some() {
            let outcome = wire::truncated_response(&self.request_id);
            self.finish(outcome);
        }
    }
}
