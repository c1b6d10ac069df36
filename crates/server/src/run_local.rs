//! `stratus run IMAGE`: the tutorial's local test (`docker run -p 9000:8080
//! IMAGE` + `curl …/2015-03-31/functions/function/invocations`) without a
//! Docker engine, and with concurrent invocations.
//!
//! The same machinery as `stratus serve`, composed differently: a store,
//! blob store and registry on a (usually temporary) data directory; the
//! image imported into that registry as a push would store it; a function
//! named `function` created through [`functions::Functions`] (the
//! CreateFunction path) on the `oci` executor; and, instead of the edge,
//! the Runtime Interface Emulator's surface — `POST
//! /2015-03-31/functions/{any}/invocations` and `GET /`. The function's
//! log streams are tailed to stdout, as the emulator prints them.

mod import;
mod pull;
mod source;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_protocol::error::{AwsError, Protocol};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use blobs::FsBlobStore;
use bytes::Bytes;
use functions::{
    CreateFunction, Functions, ImageOverrides, InvokeError, InvokeRequest, State as FnState,
};
use http::{HeaderMap, HeaderValue, StatusCode};
use registry::{NewRepository, Registry, RegistryConfig, Scope};
use store::Store;

use crate::{lambda_images, sandbox};

/// The function's name, as the emulator calls it.
pub const FUNCTION_NAME: &str = "function";
const ACCOUNT: &str = "000000000000";
const REGION: &str = "us-east-1";
const ROLE: &str = "arn:aws:iam::000000000000:role/stratus-run";
/// Largest invocation request body (Lambda's synchronous limit).
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;
/// How long the image may take to unpack before the function is Active.
const ACTIVATION_TIMEOUT: Duration = Duration::from_secs(600);
/// How often the log files are checked for new lines.
const LOG_POLL: Duration = Duration::from_millis(50);
/// Bytes read from one log file per poll, at most.
const LOG_READ_MAX: u64 = 1 << 20;

/// Everything `stratus run` needs, resolved by the binary.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// An OCI layout (`oci:DIR[:TAG]` or a directory with `oci-layout`),
    /// a `docker save` tarball (`FILE` or `docker-archive:FILE[:TAG]`), or
    /// `HOST:PORT/REPO[:TAG|@DIGEST]` on a loopback registry.
    pub image: String,
    pub listen: SocketAddr,
    /// Data directory (absolute: the OCI runtime resolves paths in it).
    pub data_dir: PathBuf,
    /// The function's environment variables.
    pub env: BTreeMap<String, String>,
    pub memory_mb: u32,
    pub timeout_s: u32,
    /// Instances at most; invokes beyond wait for one.
    pub concurrency: usize,
    /// How long an invoke beyond `concurrency` waits for an instance.
    pub queue_wait: Duration,
    /// Overrides the image's CMD (`ImageConfig.Command`).
    pub handler: Option<String>,
    /// Basic credentials for a registry pull.
    pub registry_credentials: Option<(String, String)>,
    /// `AWS_ENDPOINT_URL` the function sees.
    pub endpoint_url: String,
    /// Time given to in-flight invocations on shutdown.
    pub shutdown_grace: Duration,
}

impl RunOptions {
    pub fn new(image: impl Into<String>, data_dir: PathBuf) -> RunOptions {
        RunOptions {
            image: image.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 9000)),
            data_dir,
            env: BTreeMap::new(),
            memory_mb: functions::model::DEFAULT_MEMORY_MB,
            timeout_s: functions::model::DEFAULT_TIMEOUT_S,
            concurrency: 8,
            queue_wait: Duration::from_secs(60),
            handler: None,
            registry_credentials: None,
            endpoint_url: "http://127.0.0.1:4566".into(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The image argument, or the image itself, is unusable.
    #[error("{0}")]
    Image(String),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot open blob storage: {0}")]
    Blobs(#[from] blobs::BlobError),
    #[error("cannot store the image: {0}")]
    Registry(#[from] registry::RegistryError),
    /// No OCI runtime can run containers here (says what to install).
    #[error("container-image functions cannot run here: {0}")]
    Runtime(String),
    #[error("the function could not be created: {0}")]
    Function(String),
    #[error("cannot listen on {addr}: {source}; pick another port with --port (or --listen ADDR; port 0 picks a free one)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Shared by the request handlers.
struct Local {
    functions: Arc<Functions>,
}

/// A function imported, created and Active, with its port bound.
pub struct RunningLocal {
    listener: tokio::net::TcpListener,
    local: Arc<Local>,
    store: Arc<Store>,
    logs_dir: PathBuf,
    grace: Duration,
    image_digest: String,
}

/// Imports the image, creates the function, waits for it to be Active and
/// binds the port. Nothing is served until [`RunningLocal::serve`].
pub async fn run_local(opts: RunOptions) -> Result<RunningLocal, RunError> {
    let started = Instant::now();
    let source = source::parse(&opts.image)?;
    let data_dir = opts.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|source| RunError::DataDir {
        path: data_dir.display().to_string(),
        source,
    })?;
    let store = Arc::new(Store::open_sqlite(&data_dir.join("metadata.db")).await?);
    let blobs: blobs::SharedBlobStore = Arc::new(FsBlobStore::open(&data_dir.join("blobs"))?);
    let registry = Arc::new(Registry::new(
        store.clone(),
        blobs.clone(),
        RegistryConfig {
            default_region: REGION.into(),
            ..RegistryConfig::default()
        },
    ));
    registry.recover().await?;

    // The runtime first: without one nothing below is worth doing.
    let oci = Arc::new(sandbox::OciSandbox::new(data_dir.join("oci"), blobs));
    oci.executor().await.map_err(RunError::Runtime)?;

    let scope = Scope {
        account: ACCOUNT.into(),
        region: REGION.into(),
    };
    let repo = match registry
        .create_repository(
            &scope,
            NewRepository {
                name: FUNCTION_NAME.into(),
                tag_mutability: "MUTABLE".into(),
                scan_on_push: false,
                encryption_type: "AES256".into(),
                kms_key: None,
                tags_json: "[]".into(),
            },
        )
        .await
    {
        Ok(r) => r,
        Err(registry::RegistryError::RepositoryAlreadyExists { .. }) => {
            registry.repository(&scope, FUNCTION_NAME).await?
        }
        Err(e) => return Err(e.into()),
    };
    let target = import::Target {
        registry: &registry,
        repo: &repo,
    };
    let digest = import::import(
        &target,
        &source,
        &data_dir,
        opts.registry_credentials.as_ref(),
    )
    .await?;
    tracing::info!(image = %opts.image, %digest, elapsed_ms = started.elapsed().as_millis() as u64, "image imported");

    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| RunError::Bind {
            addr: opts.listen,
            source,
        })?;
    let logs_dir = data_dir.join("logs");
    let functions = Functions::new(
        store.clone(),
        Arc::new(lambda_images::RegistryImages {
            registry: registry.clone(),
        }),
        oci,
        functions::FunctionsConfig {
            pool: functions::PoolConfig {
                keep_alive: Duration::from_secs(600),
                init_timeout: Duration::from_secs(10),
                logs_dir: logs_dir.clone(),
                endpoint_url: opts.endpoint_url.clone(),
                queue_wait: opts.queue_wait,
            },
            account_concurrency: opts.concurrency.max(1),
            max_sync_payload: MAX_PAYLOAD,
            max_async_payload: 256 * 1024,
            code_dir: data_dir.join("code"),
            async_retry_delay: Duration::from_secs(60),
        },
    );
    create_function(&functions, &opts).await?;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "function {FUNCTION_NAME} is Active"
    );
    Ok(RunningLocal {
        listener,
        local: Arc::new(Local { functions }),
        store,
        logs_dir,
        grace: opts.shutdown_grace,
        image_digest: digest.to_string(),
    })
}

fn function_error(e: functions::FunctionError) -> RunError {
    RunError::Function(e.to_string())
}

/// Creates `function` from the imported image (replacing one a previous
/// run on the same data directory left) and waits until it is Active.
async fn create_function(functions: &Arc<Functions>, opts: &RunOptions) -> Result<(), RunError> {
    match functions.delete(ACCOUNT, REGION, FUNCTION_NAME, None).await {
        Ok(()) | Err(functions::FunctionError::NotFound(_)) => {}
        Err(e) => return Err(function_error(e)),
    }
    let overrides = opts.handler.as_ref().map(|h| ImageOverrides {
        command: Some(vec![h.clone()]),
        ..ImageOverrides::default()
    });
    functions
        .create(
            ACCOUNT,
            REGION,
            CreateFunction {
                name: FUNCTION_NAME.into(),
                role: ROLE.into(),
                package_type: Some("Image".into()),
                image_uri: Some(format!("{FUNCTION_NAME}:{}", import::TAG)),
                timeout_s: Some(opts.timeout_s.into()),
                memory_mb: Some(opts.memory_mb.into()),
                environment: (!opts.env.is_empty()).then(|| opts.env.clone()),
                image_overrides: overrides,
                ..CreateFunction::default()
            },
        )
        .await
        .map_err(function_error)?;
    let deadline = Instant::now() + ACTIVATION_TIMEOUT;
    loop {
        let (config, _, _) = functions
            .get(ACCOUNT, REGION, FUNCTION_NAME, None)
            .await
            .map_err(function_error)?;
        match config.state {
            FnState::Active => return Ok(()),
            FnState::Pending if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            FnState::Pending => {
                return Err(RunError::Function(format!(
                    "the image was not ready to run within {} seconds",
                    ACTIVATION_TIMEOUT.as_secs()
                )))
            }
            FnState::Failed | FnState::Inactive => {
                return Err(RunError::Function(
                    config
                        .state_reason
                        .unwrap_or_else(|| "the function failed to activate".into()),
                ))
            }
        }
    }
}

impl RunningLocal {
    pub fn local_addr(&self) -> Result<SocketAddr, RunError> {
        Ok(self.listener.local_addr()?)
    }

    /// The digest of the image manifest the function runs.
    pub fn image_digest(&self) -> &str {
        &self.image_digest
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets
    /// in-flight invocations finish within the grace period, stops every
    /// instance and closes the store. Function logs go to stdout.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), RunError> {
        let stop_tail = Arc::new(AtomicBool::new(false));
        let tail = {
            let (dir, stop) = (self.logs_dir.clone(), stop_tail.clone());
            std::thread::Builder::new()
                .name("stratus-run-logs".into())
                .spawn(move || tail_logs(&dir, &stop))?
        };
        let router = axum::Router::new()
            .route("/", get(health))
            .route("/2015-03-31/functions/{name}/invocations", post(invoke))
            .fallback(not_found)
            .with_state(self.local.clone());
        let (begun_tx, begun_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            let _ = begun_tx.send(());
        };
        let serving = tokio::spawn(async move {
            axum::serve(self.listener, router)
                .with_graceful_shutdown(signal)
                .await
        });
        let grace = self.grace;
        let result = tokio::select! {
            r = serving => r.map_err(|e| std::io::Error::other(e.to_string())).and_then(|r| r),
            _ = async {
                let _ = begun_rx.await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!("shutdown grace period over; dropping remaining invocations");
                Ok(())
            }
        };
        self.local.functions.shutdown().await;
        stop_tail.store(true, Ordering::Release);
        let _ = tail.join();
        self.store.close().await;
        result.map_err(RunError::Io)
    }
}

async fn health() -> &'static str {
    "stratus run: POST /2015-03-31/functions/function/invocations\n"
}

async fn not_found() -> Response {
    error_response(&AwsError::new(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        "not found: stratus run serves POST /2015-03-31/functions/function/invocations",
    ))
}

fn error_response(e: &AwsError) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    e.render(Protocol::RestJson, &request_id)
        .map(Body::from)
        .into_response()
}

/// The one error→wire mapping of this surface (Lambda's REST-JSON shape).
fn invoke_error(e: InvokeError) -> AwsError {
    let message = e.to_string();
    match e {
        InvokeError::NotFound(_) => {
            AwsError::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
        }
        InvokeError::NotReady(_) => {
            AwsError::new(StatusCode::CONFLICT, "ResourceConflictException", message)
        }
        InvokeError::InvalidParameter(_) => AwsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            message,
        ),
        InvokeError::InvalidContent(_) => AwsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            message,
        ),
        InvokeError::TooLarge { .. } => AwsError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            message,
        ),
        InvokeError::Throttled { reason } => AwsError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            message,
        )
        .with_extra("Reason", reason),
        InvokeError::Internal(_) => {
            tracing::error!(error = %message, "invoke failed");
            AwsError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceException",
                message,
            )
        }
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `POST /2015-03-31/functions/{any}/invocations`: the emulator accepts any
/// function name and runs its one function.
async fn invoke(State(local): State<Arc<Local>>, req: Request) -> Response {
    let headers = req.headers().clone();
    let payload: Bytes = match axum::body::to_bytes(req.into_body(), MAX_PAYLOAD).await {
        Ok(b) => b,
        Err(_) => {
            return error_response(&invoke_error(InvokeError::TooLarge {
                limit: MAX_PAYLOAD,
                operation: "InvokeFunction",
            }))
        }
    };
    let request = InvokeRequest {
        account: ACCOUNT.into(),
        region: REGION.into(),
        function: FUNCTION_NAME.into(),
        qualifier: None,
        payload,
        invocation_type: header(&headers, "x-amz-invocation-type")
            .unwrap_or_else(|| "RequestResponse".into()),
        tail_log: false,
        client_context: header(&headers, "x-amz-client-context"),
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    let request_id = request.request_id.clone();
    match local.functions.invoke(request).await {
        Ok(r) => {
            let mut resp = Response::new(Body::from(r.payload));
            *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
            let h = resp.headers_mut();
            h.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                h.insert("x-amzn-requestid", v);
            }
            if let Ok(v) = HeaderValue::from_str(&r.executed_version) {
                h.insert("x-amz-executed-version", v);
            }
            if let Some(fe) = r
                .function_error
                .and_then(|f| HeaderValue::from_str(&f).ok())
            {
                h.insert("x-amz-function-error", fe);
            }
            resp
        }
        Err(e) => error_response(&invoke_error(e)),
    }
}

/// Prints lines written from now on to every log stream under `dir` to
/// stdout (the message only, without the stored timestamp) until `stop`,
/// then once more. Streams are read from where the previous poll left off; a line
/// still being written waits for its newline.
fn tail_logs(dir: &Path, stop: &AtomicBool) {
    // Streams a previous run left in a kept data directory are not
    // printed again.
    let mut offsets: HashMap<PathBuf, u64> = log_files(dir)
        .into_iter()
        .filter_map(|f| Some((f.clone(), std::fs::metadata(&f).ok()?.len())))
        .collect();
    loop {
        let last = stop.load(Ordering::Acquire);
        let mut out = std::io::stdout().lock();
        for file in log_files(dir) {
            let offset = offsets.entry(file.clone()).or_insert(0);
            if let Ok(lines) = read_new(&file, offset) {
                for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let message = match line.iter().position(|b| *b == b'\t') {
                        Some(i) => &line[i + 1..],
                        None => line,
                    };
                    let _ = out.write_all(message);
                    let _ = out.write_all(b"\n");
                }
            }
        }
        let _ = out.flush();
        drop(out);
        if last {
            return;
        }
        std::thread::sleep(LOG_POLL);
    }
}

/// `<dir>/<account>/<region>/<group>/<stream>.log`.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut level = vec![dir.to_path_buf()];
    for _ in 0..3 {
        level = level
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
    }
    let mut files: Vec<PathBuf> = level
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    files
}

/// Complete lines appended to `file` since `offset` (advanced past them).
fn read_new(file: &Path, offset: &mut u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(file)?;
    let len = f.metadata()?.len();
    if len <= *offset {
        return Ok(Vec::new());
    }
    f.seek(SeekFrom::Start(*offset))?;
    let mut buf = Vec::new();
    f.take(LOG_READ_MAX).read_to_end(&mut buf)?;
    match buf.iter().rposition(|b| *b == b'\n') {
        Some(end) => {
            buf.truncate(end + 1);
            *offset += buf.len() as u64;
            Ok(buf)
        }
        None if buf.len() as u64 >= LOG_READ_MAX => {
            // One line longer than a whole read: print it in pieces.
            *offset += buf.len() as u64;
            buf.push(b'\n');
            Ok(buf)
        }
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_reads_complete_lines_only() {
        let tmp = tempfile::tempdir().expect("tmp");
        let stream = tmp.path().join("a/r/g");
        std::fs::create_dir_all(&stream).expect("mkdir");
        let file = stream.join("s.log");
        std::fs::write(&file, b"1\tSTART RequestId: x\n2\thalf").expect("write");
        assert_eq!(log_files(tmp.path()), vec![file.clone()]);
        let mut offset = 0;
        assert_eq!(
            read_new(&file, &mut offset).expect("read"),
            b"1\tSTART RequestId: x\n"
        );
        assert_eq!(read_new(&file, &mut offset).expect("read"), b"");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .expect("open");
        f.write_all(b" line\n").expect("append");
        assert_eq!(
            read_new(&file, &mut offset).expect("read"),
            b"2\thalf line\n"
        );
    }

    #[test]
    fn invoke_errors_have_aws_statuses() {
        let e = invoke_error(InvokeError::Throttled {
            reason: "ConcurrentInvocationLimitExceeded",
        });
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        let e = invoke_error(InvokeError::InvalidContent("x".into()));
        assert_eq!(
            (e.status, e.code.as_str()),
            (StatusCode::BAD_REQUEST, "InvalidRequestContentException")
        );
    }
}
