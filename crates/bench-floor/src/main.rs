//! The floor of the warm-invoke path, a baseline for `bench/invoke.sh`: the
//! least a server can do to turn an Invoke request into a Runtime API event
//! and back.
//!
//! It starts N instances of a function as plain host processes, all polling
//! one Runtime API port, and hands each invoke
//! (`POST /2015-03-31/functions/function/invocations`, the emulator's path)
//! straight to a waiting `GET /2018-06-01/runtime/invocation/next`; the
//! instance's `POST …/invocation/{id}/response` (or `/error`) completes it.
//! Invokes queue while every instance is busy.
//!
//! Deliberately nothing else: no logs, limits, timeouts, isolation,
//! validation or error mapping. It is a measuring stick, not a server.
//!
//! ```text
//! bench-floor [--listen ADDR] [--instances N] -- BOOTSTRAP [ARGS…]
//! ```
//!
//! Prints `listening on http://ADDR` once every instance waits for work.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, Notify};

const INVOKE_PATH: &str = "/2015-03-31/functions/function/invocations";
const NEXT_PATH: &str = "/2018-06-01/runtime/invocation/next";
const INVOCATION_PREFIX: &str = "/2018-06-01/runtime/invocation/";
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:function";
/// The deadline each event carries (the emulator's default timeout).
const DEADLINE: Duration = Duration::from_secs(300);
/// How long the instances get to call `next` for the first time.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

type Reply = Response<Full<Bytes>>;

struct Args {
    listen: SocketAddr,
    instances: usize,
    command: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 9000)),
        instances: 1,
        command: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--listen" => {
                let v = value("--listen")?;
                args.listen = v.parse().map_err(|e| format!("--listen {v}: {e}"))?;
            }
            "--instances" => {
                let v = value("--instances")?;
                args.instances = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("--instances {v}: expected a positive number"))?;
            }
            "--" => {
                args.command = it.collect();
                break;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.command.is_empty() {
        return Err(
            "usage: bench-floor [--listen ADDR] [--instances N] -- BOOTSTRAP [ARGS…]".into(),
        );
    }
    Ok(args)
}

/// An event on its way to an instance.
struct Event {
    id: String,
    body: Bytes,
}

#[derive(Default)]
struct Queues {
    /// `next` polls parked until an event arrives.
    idle: VecDeque<oneshot::Sender<Event>>,
    /// Events that found no parked `next`.
    queued: VecDeque<Event>,
    /// Invokes waiting for their instance's reply, by request id.
    pending: HashMap<String, oneshot::Sender<Bytes>>,
}

#[derive(Default)]
struct Floor {
    queues: Mutex<Queues>,
    ids: AtomicU64,
    /// Signalled whenever a `next` parks.
    parked: Notify,
}

impl Floor {
    fn queues(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands the event to a parked `next`, or queues it.
    fn dispatch(&self, mut event: Event, reply: oneshot::Sender<Bytes>) {
        let mut q = self.queues();
        q.pending.insert(event.id.clone(), reply);
        while let Some(next) = q.idle.pop_front() {
            match next.send(event) {
                Ok(()) => return,
                // That poll's connection is gone; try the next one.
                Err(back) => event = back,
            }
        }
        q.queued.push_back(event);
    }

    async fn wait_parked(&self, n: usize) {
        loop {
            let parked = self.parked.notified();
            if self.queues().idle.len() >= n {
                return;
            }
            parked.await;
        }
    }
}

fn reply(status: StatusCode, body: Bytes) -> Reply {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r
}

/// The Invoke side.
async fn invoke(floor: Arc<Floor>, req: Request<Incoming>) -> Reply {
    if req.method() != Method::POST || req.uri().path() != INVOKE_PATH {
        return reply(StatusCode::NOT_FOUND, Bytes::new());
    }
    let Ok(body) = req.into_body().collect().await else {
        return reply(StatusCode::BAD_REQUEST, Bytes::new());
    };
    let id = floor.ids.fetch_add(1, Ordering::Relaxed).to_string();
    let (tx, rx) = oneshot::channel();
    floor.dispatch(
        Event {
            id,
            body: body.to_bytes(),
        },
        tx,
    );
    match rx.await {
        Ok(body) => reply(StatusCode::OK, body),
        Err(_) => reply(StatusCode::BAD_GATEWAY, Bytes::new()),
    }
}

/// The Runtime API side.
async fn runtime(floor: Arc<Floor>, req: Request<Incoming>) -> Reply {
    let path = req.uri().path();
    if req.method() == Method::GET && path == NEXT_PATH {
        return next(&floor).await;
    }
    let id = path
        .strip_prefix(INVOCATION_PREFIX)
        .and_then(|rest| rest.split_once('/'))
        .filter(|(_, action)| matches!(*action, "response" | "error"))
        .map(|(id, _)| id.to_string());
    match (req.method() == Method::POST, id) {
        (true, Some(id)) => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            if let Some(waiting) = floor.queues().pending.remove(&id) {
                let _ = waiting.send(body);
            }
            reply(StatusCode::ACCEPTED, Bytes::new())
        }
        _ => reply(StatusCode::NOT_FOUND, Bytes::new()),
    }
}

async fn next(floor: &Floor) -> Reply {
    let queued = {
        let mut q = floor.queues();
        match q.queued.pop_front() {
            Some(event) => Ok(event),
            None => {
                let (tx, rx) = oneshot::channel();
                q.idle.push_back(tx);
                Err(rx)
            }
        }
    };
    let event = match queued {
        Ok(event) => event,
        Err(rx) => {
            floor.parked.notify_waiters();
            match rx.await {
                Ok(event) => event,
                Err(_) => return reply(StatusCode::INTERNAL_SERVER_ERROR, Bytes::new()),
            }
        }
    };
    let deadline_ms = (SystemTime::now() + DEADLINE)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let mut r = reply(StatusCode::OK, event.body);
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert(
        "lambda-runtime-invoked-function-arn",
        HeaderValue::from_static(FUNCTION_ARN),
    );
    h.insert("lambda-runtime-deadline-ms", deadline_ms.into());
    if let Ok(id) = event.id.parse() {
        h.insert("lambda-runtime-aws-request-id", id);
    }
    r
}

/// Serves HTTP/1.1 on `listener` with `route` until the process ends.
async fn serve<F, Fut>(listener: TcpListener, floor: Arc<Floor>, route: F)
where
    F: Fn(Arc<Floor>, Request<Incoming>) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let floor = Arc::clone(&floor);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let response = route(Arc::clone(&floor), req);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn spawn_instance(command: &[String], runtime_api: SocketAddr) -> std::io::Result<Child> {
    Command::new(&command[0])
        .args(&command[1..])
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "function")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let floor = Arc::new(Floor::default());
    let runtime_listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| format!("cannot bind the runtime api: {e}"))?;
    let runtime_addr = runtime_listener.local_addr().map_err(|e| e.to_string())?;
    let invoke_listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let invoke_addr = invoke_listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(serve(runtime_listener, Arc::clone(&floor), runtime));

    // Held until the end: dropping a child kills it.
    let mut children = Vec::with_capacity(args.instances);
    for _ in 0..args.instances {
        let child = spawn_instance(&args.command, runtime_addr)
            .map_err(|e| format!("cannot start {}: {e}", args.command[0]))?;
        children.push(child);
    }
    tokio::time::timeout(READY_TIMEOUT, floor.wait_parked(args.instances))
        .await
        .map_err(|_| "the instances did not all call next within 10 s".to_string())?;

    tokio::spawn(serve(invoke_listener, floor, invoke));
    println!("listening on http://{invoke_addr}");
    shutdown_signal().await;
    for child in &mut children {
        let _ = child.kill().await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let result = match parse_args() {
        Ok(args) => run(args).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-floor: {e}");
            ExitCode::FAILURE
        }
    }
}
