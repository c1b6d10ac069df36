//! The Lambda service: control-plane operations on function
//! configurations, state transitions (Pending → Active | Failed), and the
//! invoke path through the pools.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use runtime_api::{Invocation, InvokeOutcome};
use store::{FunctionRow, Store, StoreError};

use crate::code::{CodeError, CodeStore};
use crate::model::{self, *};
use crate::pool::{describe_exit, AcquireError, Pool, PoolConfig};
use crate::{ImageError, ImageSource, Sandbox};

#[derive(Debug, Clone)]
pub struct FunctionsConfig {
    pub pool: PoolConfig,
    /// Concurrent executions per account when a function reserves none.
    pub account_concurrency: usize,
    /// Largest synchronous request and response payload.
    pub max_sync_payload: usize,
    /// Largest asynchronous (`Event`) payload.
    pub max_async_payload: usize,
    /// Where zip functions' packages are kept.
    pub code_dir: std::path::PathBuf,
    /// Before the first retry of a failed asynchronous invocation; each
    /// further retry waits twice as long.
    pub async_retry_delay: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error("Function not found: {0}")]
    NotFound(String),
    #[error("Function already exist: {0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PreconditionFailed(String),
    /// Not found, with the whole message (aliases, policies, settings).
    #[error("{0}")]
    Missing(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for FunctionError {
    fn from(e: StoreError) -> Self {
        FunctionError::Internal(e.to_string())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("Function not found: {0}")]
    NotFound(String),
    #[error("The operation cannot be performed at this time. The function is currently in the following state: {0}")]
    NotReady(&'static str),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("Could not parse request body into json: {0}")]
    InvalidContent(String),
    #[error("Request must be smaller than {limit} bytes for the {operation} operation")]
    TooLarge {
        limit: usize,
        operation: &'static str,
    },
    #[error("Rate Exceeded.")]
    Throttled { reason: &'static str },
    #[error("internal error: {0}")]
    Internal(String),
}

/// The request of a `CreateFunction`.
#[derive(Debug, Clone, Default)]
pub struct CreateFunction {
    pub name: String,
    pub role: String,
    pub package_type: Option<String>,
    pub image_uri: Option<String>,
    /// `Code.ZipFile`, decoded.
    pub zip_file: Option<Bytes>,
    /// `Code.S3Bucket`/`S3Key` were given (not supported).
    pub has_s3: bool,
    pub handler: Option<String>,
    pub runtime: Option<String>,
    pub description: Option<String>,
    pub timeout_s: Option<i64>,
    pub memory_mb: Option<i64>,
    pub ephemeral_mb: Option<i64>,
    pub environment: Option<BTreeMap<String, String>>,
    pub image_overrides: Option<ImageOverrides>,
    pub architectures: Option<Vec<String>>,
    pub publish: bool,
    pub tags: BTreeMap<String, String>,
}

/// Tries, one second apart, to deliver an event recovered at start while
/// its function is not ready or at its limit.
const REDELIVERY_ATTEMPTS: usize = 120;

/// The tag that picks a function's executor (`oci`, `docker`, `host`)
/// when it is not the server's default.
pub const EXECUTOR_TAG: &str = "stratus:executor";

/// The new code of an `UpdateFunctionCode`.
#[derive(Debug, Clone, Default)]
pub struct CodeUpdate {
    pub image_uri: Option<String>,
    /// `ZipFile`, decoded.
    pub zip_file: Option<Bytes>,
    /// `S3Bucket`/`S3Key` were given (not supported).
    pub has_s3: bool,
}

/// The request of an `UpdateFunctionConfiguration` (absent = unchanged).
#[derive(Debug, Clone, Default)]
pub struct UpdateConfiguration {
    pub role: Option<String>,
    pub handler: Option<String>,
    pub description: Option<String>,
    pub timeout_s: Option<i64>,
    pub memory_mb: Option<i64>,
    pub ephemeral_mb: Option<i64>,
    pub environment: Option<BTreeMap<String, String>>,
    pub image_overrides: Option<ImageOverrides>,
    pub revision_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct InvokeRequest {
    pub account: String,
    pub region: String,
    pub function: String,
    pub qualifier: Option<String>,
    pub payload: Bytes,
    /// `RequestResponse`, `Event` or `DryRun`.
    pub invocation_type: String,
    pub tail_log: bool,
    pub client_context: Option<String>,
    pub request_id: String,
}

#[derive(Debug, Clone)]
pub struct InvokeResult {
    pub status: u16,
    pub payload: Bytes,
    /// `Unhandled` when the function or its runtime failed.
    pub function_error: Option<String>,
    pub executed_version: String,
    /// Last 4 KB of the invocation's log when asked for.
    pub log_tail: Option<String>,
}

type PoolKey = (String, String, String, String);

/// (account, region, function, qualifier).
type SnapshotKey = (String, String, String, Option<String>);

#[derive(Clone)]
struct Snapshot {
    generation: u64,
    row: Arc<FunctionRow>,
    config: Arc<FunctionConfig>,
}

/// Most invoke snapshots kept (the map is cleared when full).
const MAX_SNAPSHOTS: usize = 4096;

/// Most asynchronous invocations held at once (each holds its payload,
/// at most the async payload limit).
const MAX_QUEUED_EVENTS: usize = 1024;

/// The Lambda service.
pub struct Functions {
    store: Arc<Store>,
    images: Arc<dyn ImageSource>,
    sandbox: Arc<dyn Sandbox>,
    config: FunctionsConfig,
    /// Executors other than the default one, by name, for functions that
    /// choose one with the [`EXECUTOR_TAG`] tag.
    executors: Mutex<HashMap<&'static str, Arc<dyn Sandbox>>>,
    code: CodeStore,
    pools: Mutex<HashMap<PoolKey, Arc<Pool>>>,
    /// What invokes read, kept while the store's generation says no write
    /// happened since: the invoke path does not touch SQL when warm.
    snapshots: Mutex<HashMap<SnapshotKey, Snapshot>>,
    /// Asynchronous invocations accepted and not yet finished (the event
    /// queue is bounded: beyond it, `Event` invokes are throttled).
    events: Arc<tokio::sync::Semaphore>,
    /// Invocations running per (account, region) of functions that
    /// reserve no concurrency: they share `account_concurrency`.
    running: Mutex<HashMap<(String, String), Arc<tokio::sync::Semaphore>>>,
}

/// One of the account's concurrent executions, given back when dropped.
type AccountSlot = tokio::sync::OwnedSemaphorePermit;

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn new_revision() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn parse_config(json: &str) -> Result<FunctionConfig, FunctionError> {
    serde_json::from_str(json)
        .map_err(|e| FunctionError::Internal(format!("stored configuration is unreadable: {e}")))
}

fn to_json(c: &FunctionConfig) -> Result<String, FunctionError> {
    serde_json::to_string(c).map_err(|e| FunctionError::Internal(e.to_string()))
}

fn check_range(field: &str, value: i64, min: i64, max: i64) -> Result<u32, FunctionError> {
    if value < min || value > max {
        return Err(FunctionError::Validation(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must have value {}",
            if value < min {
                format!("greater than or equal to {min}")
            } else {
                format!("less than or equal to {max}")
            }
        )));
    }
    Ok(value as u32)
}

fn check_environment(env: &BTreeMap<String, String>) -> Result<(), FunctionError> {
    let reserved: Vec<&str> = env
        .keys()
        .filter(|k| model::RESERVED_ENV.contains(&k.as_str()))
        .map(String::as_str)
        .collect();
    if !reserved.is_empty() {
        return Err(FunctionError::InvalidParameter(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {}",
            reserved.join(", ")
        )));
    }
    let size: usize = env.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_ENV_BYTES {
        return Err(FunctionError::InvalidParameter(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {size}"
        )));
    }
    for k in env.keys() {
        let ok = k.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok {
            return Err(FunctionError::Validation(format!(
                "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+] (key {k:?})"
            )));
        }
    }
    Ok(())
}

/// Splits a `FunctionName` path value: a name, `name:qualifier`, a partial
/// ARN `account:function:name[:qualifier]` or a full ARN.
pub fn parse_function_ref(s: &str) -> Result<(String, Option<String>), FunctionError> {
    let invalid = || {
        FunctionError::Validation(format!(
            "1 validation error detected: Value '{s}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
        ))
    };
    let parts: Vec<&str> = s.split(':').collect();
    let (name, qualifier) = match parts.as_slice() {
        [name] => (*name, None),
        [name, q] => (*name, Some(*q)),
        [_account, "function", name] => (*name, None),
        [_account, "function", name, q] => (*name, Some(*q)),
        ["arn", _, "lambda", _region, _account, "function", name] => (*name, None),
        ["arn", _, "lambda", _region, _account, "function", name, q] => (*name, Some(*q)),
        _ => return Err(invalid()),
    };
    if !is_valid_function_name(name) || qualifier.is_some_and(|q| q.is_empty() || q.len() > 128) {
        return Err(invalid());
    }
    Ok((name.to_string(), qualifier.map(str::to_string)))
}

impl Functions {
    pub fn new(
        store: Arc<Store>,
        images: Arc<dyn ImageSource>,
        sandbox: Arc<dyn Sandbox>,
        config: FunctionsConfig,
    ) -> Arc<Functions> {
        let f = Arc::new(Functions {
            store,
            images,
            sandbox,
            code: CodeStore::new(config.code_dir.clone()),
            executors: Mutex::new(HashMap::new()),
            config,
            pools: Mutex::new(HashMap::new()),
            snapshots: Mutex::new(HashMap::new()),
            events: Arc::new(tokio::sync::Semaphore::new(MAX_QUEUED_EVENTS)),
            running: Mutex::new(HashMap::new()),
        });
        let weak = Arc::downgrade(&f);
        let every = (f.config.pool.keep_alive / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(30));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(f) = weak.upgrade() else { break };
                let pools: Vec<Arc<Pool>> = f.pool_map().values().cloned().collect();
                for p in pools {
                    p.reap().await;
                }
            }
        });
        f
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub fn account_concurrency(&self) -> usize {
        self.config.account_concurrency
    }

    pub fn sandbox_name(&self) -> &'static str {
        self.sandbox.name()
    }

    /// Makes another executor available to functions that name it in
    /// their [`EXECUTOR_TAG`] tag.
    pub fn add_executor(&self, sandbox: Arc<dyn Sandbox>) {
        self.executors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sandbox.name(), sandbox);
    }

    /// The executor of a function: the one its [`EXECUTOR_TAG`] tag names,
    /// or the server's default.
    fn sandbox_for(&self, row: &FunctionRow) -> Result<Arc<dyn Sandbox>, String> {
        // Most functions carry no such tag: no JSON parse for them.
        if !row.tags_json.contains(EXECUTOR_TAG) {
            return Ok(self.sandbox.clone());
        }
        let tags: BTreeMap<String, String> =
            serde_json::from_str(&row.tags_json).unwrap_or_default();
        let Some(name) = tags.get(EXECUTOR_TAG) else {
            return Ok(self.sandbox.clone());
        };
        if name == self.sandbox.name() {
            return Ok(self.sandbox.clone());
        }
        let executors = self.executors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = executors.get(name.as_str()) {
            return Ok(s.clone());
        }
        let mut names: Vec<&str> = executors.keys().copied().collect();
        names.push(self.sandbox.name());
        names.sort_unstable();
        Err(format!(
            "The tag {EXECUTOR_TAG} names the executor {name:?}, which this server does not have; valid executors: {}. Change the tag, then update the function's code or configuration.",
            names.join(", ")
        ))
    }

    fn pool_map(&self) -> std::sync::MutexGuard<'_, HashMap<PoolKey, Arc<Pool>>> {
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn row(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<FunctionRow, FunctionError> {
        self.store
            .function_get(account, region, name)
            .await?
            .ok_or_else(|| FunctionError::NotFound(function_arn(region, account, name)))
    }

    /// Re-runs activation of functions a previous process left `Pending`.
    pub async fn recover(self: &Arc<Self>) -> Result<(), FunctionError> {
        let events = self.store.async_events_all().await?;
        if !events.is_empty() {
            tracing::info!(
                count = events.len(),
                "delivering asynchronous invocations accepted before the restart"
            );
        }
        for event in events {
            self.clone().spawn_redelivery(event);
        }
        for row in self.store.function_all().await? {
            let c = parse_config(&row.latest_json)?;
            if c.state == State::Pending || c.last_update_status == Some(UpdateStatus::InProgress) {
                self.clone().spawn_activation(
                    row.account.clone(),
                    row.region.clone(),
                    row.name.clone(),
                    c.revision_id.clone(),
                );
            }
        }
        Ok(())
    }

    /// Delivers an event accepted before a restart, once its function can
    /// run (it may be activating again); dropped if the function is gone.
    fn spawn_redelivery(self: Arc<Self>, event: store::AsyncEventRow) {
        tokio::spawn(async move {
            let req = InvokeRequest {
                account: event.account.clone(),
                region: event.region.clone(),
                function: event.function_ref.clone(),
                qualifier: event.qualifier.clone(),
                payload: Bytes::from(event.payload.clone()),
                invocation_type: "Event".into(),
                tail_log: false,
                client_context: event.client_context.clone(),
                request_id: event.id.clone(),
            };
            for _ in 0..REDELIVERY_ATTEMPTS {
                match self.invoke(req.clone()).await {
                    // Queued again under its id; its task removes the row.
                    Ok(_) => return,
                    Err(InvokeError::NotReady(_)) | Err(InvokeError::Throttled { .. }) => {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Err(e) => {
                        tracing::warn!(request_id = %event.id, function = %event.function_ref, error = %e, "asynchronous invocation dropped after the restart");
                        let _ = self.store.async_event_delete(&event.id).await;
                        return;
                    }
                }
            }
            tracing::warn!(request_id = %event.id, function = %event.function_ref, "asynchronous invocation still waits for its function; kept for the next start");
        });
    }

    pub async fn create(
        self: &Arc<Self>,
        account: &str,
        region: &str,
        req: CreateFunction,
    ) -> Result<FunctionConfig, FunctionError> {
        if !is_valid_function_name(&req.name) {
            return Err(FunctionError::Validation(format!(
                "1 validation error detected: Value '{}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?",
                req.name
            )));
        }
        if !is_valid_role_arn(&req.role) {
            return Err(FunctionError::Validation(format!(
                "1 validation error detected: Value '{}' at 'role' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{{12}}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
                req.role
            )));
        }
        let package_type = match req.package_type.as_deref() {
            Some("Image") => PackageType::Image,
            None | Some("Zip") => PackageType::Zip,
            Some(other) => {
                return Err(FunctionError::Validation(format!(
                    "1 validation error detected: Value '{other}' at 'packageType' failed to satisfy constraint: Member must satisfy enum value set: [Image, Zip]"
                )))
            }
        };
        if package_type == PackageType::Zip {
            check_zip_request(&req)?;
        } else {
            if req.runtime.is_some() {
                return Err(FunctionError::InvalidParameter(
                    "Runtime and Handler are not supported for package type Image; the image's CMD (or ImageConfig.Command) names the handler".into(),
                ));
            }
            if req.zip_file.is_some() || req.has_s3 {
                return Err(FunctionError::InvalidParameter(
                    "Please don't provide ZipFile or S3 code when creating a function with packageType Image."
                        .into(),
                ));
            }
            if req.image_uri.is_none() {
                return Err(FunctionError::InvalidParameter(
                    "Please provide ImageUri when creating a function with packageType Image."
                        .into(),
                ));
            }
        }
        let timeout_s = check_range(
            "timeout",
            req.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S.into()),
            1,
            MAX_TIMEOUT_S.into(),
        )?;
        let memory_mb = check_range(
            "memorySize",
            req.memory_mb.unwrap_or(DEFAULT_MEMORY_MB.into()),
            MIN_MEMORY_MB.into(),
            MAX_MEMORY_MB.into(),
        )?;
        let ephemeral_mb = check_range(
            "ephemeralStorage.size",
            req.ephemeral_mb.unwrap_or(DEFAULT_EPHEMERAL_MB.into()),
            512,
            MAX_EPHEMERAL_MB.into(),
        )?;
        if let Some(env) = &req.environment {
            check_environment(env)?;
        }
        let architectures = req
            .architectures
            .clone()
            .unwrap_or_else(|| vec!["x86_64".into()]);
        if architectures.len() != 1 || !matches!(architectures[0].as_str(), "x86_64" | "arm64") {
            return Err(FunctionError::Validation(
                "1 validation error detected: Value at 'architectures' failed to satisfy constraint: Member must have length less than or equal to 1, and members must be x86_64 or arm64".into(),
            ));
        }
        let (code, code_sha256, code_size) = match package_type {
            PackageType::Zip => {
                let stored = self.store_zip(req.zip_file.clone()).await?;
                let runtime = req.runtime.as_deref().unwrap_or_default();
                let code = CodeRef {
                    image_uri: runtime_base_image(runtime).unwrap_or_default().to_string(),
                    repository: String::new(),
                    digest: String::new(),
                    zip_sha256: Some(stored.sha256_hex),
                };
                (code, stored.code_sha256, stored.size)
            }
            PackageType::Image => {
                let image_uri = req.image_uri.clone().unwrap_or_default();
                let image = self.resolve_image(account, region, &image_uri).await?;
                let code = CodeRef {
                    image_uri,
                    repository: image.repository.clone(),
                    digest: image.manifest_digest.clone(),
                    zip_sha256: None,
                };
                let sha = image
                    .manifest_digest
                    .trim_start_matches("sha256:")
                    .to_string();
                (code, sha, 0)
            }
        };
        let config = FunctionConfig {
            name: req.name.clone(),
            account: account.to_string(),
            region: region.to_string(),
            version: LATEST.into(),
            package_type,
            role: req.role,
            handler: req.handler,
            runtime: req.runtime,
            description: req.description.unwrap_or_default(),
            timeout_s,
            memory_mb,
            ephemeral_mb,
            environment: req.environment,
            image_overrides: req.image_overrides.unwrap_or_default(),
            architectures,
            code,
            code_sha256,
            code_size,
            state: State::Pending,
            state_reason: Some("The function is being created.".into()),
            state_reason_code: Some("Creating".into()),
            last_update_status: None,
            last_update_reason: None,
            last_update_reason_code: None,
            last_modified_ms: now_ms(),
            revision_id: new_revision(),
            tracing_mode: "PassThrough".into(),
        };
        let row = FunctionRow {
            id: uuid::Uuid::new_v4().to_string(),
            account: account.to_string(),
            region: region.to_string(),
            name: req.name.clone(),
            created_at_ms: now_ms(),
            latest_json: to_json(&config)?,
            next_version: 1,
            reserved_concurrency: None,
            tags_json: serde_json::to_string(&req.tags).unwrap_or_else(|_| "{}".into()),
            policy_json: None,
            event_invoke_json: None,
        };
        if !self.store.function_insert(&row).await? {
            return Err(FunctionError::AlreadyExists(req.name));
        }
        self.clone().spawn_activation(
            account.to_string(),
            region.to_string(),
            req.name.clone(),
            config.revision_id.clone(),
        );
        Ok(config)
    }

    async fn resolve_image(
        &self,
        account: &str,
        region: &str,
        uri: &str,
    ) -> Result<crate::ResolvedImage, FunctionError> {
        self.images
            .resolve(account, region, uri)
            .await
            .map_err(|e| match e {
                ImageError::Invalid(m) => FunctionError::InvalidParameter(m),
                ImageError::Internal(m) => FunctionError::Internal(m),
            })
    }

    /// Checks and keeps a zip package.
    async fn store_zip(&self, zip: Option<Bytes>) -> Result<crate::code::StoredZip, FunctionError> {
        let zip = zip.ok_or_else(|| {
            FunctionError::InvalidParameter("Please provide a source for function code.".into())
        })?;
        self.code.put(zip).await.map_err(|e| match e {
            CodeError::Invalid(m) => FunctionError::InvalidParameter(m),
            CodeError::Internal(m) => FunctionError::Internal(m),
        })
    }

    /// Where a zip function's package is kept (for `Code.Location`).
    pub fn zip_path(&self, sha256_hex: &str) -> Option<std::path::PathBuf> {
        self.code.zip_path(sha256_hex)
    }

    /// The image a function runs on, resolved and pinned: for a zip
    /// function, its runtime's base image (an error says how to push it).
    async fn activation_image(
        &self,
        sandbox: &Arc<dyn Sandbox>,
        account: &str,
        region: &str,
        c: &FunctionConfig,
    ) -> Result<crate::ResolvedImage, String> {
        if !sandbox.runs_images() {
            return match c.package_type {
                PackageType::Zip => Ok(crate::ResolvedImage {
                    account: account.to_string(),
                    region: region.to_string(),
                    architecture: "x86_64".into(),
                    ..crate::ResolvedImage::default()
                }),
                PackageType::Image => Err(format!(
                    "The {} executor runs zip functions as local processes; image functions need --executor oci or docker (or the tag stratus:executor=oci or docker).",
                    sandbox.name()
                )),
            };
        }
        if c.package_type == PackageType::Zip {
            if !c.code.digest.is_empty() {
                let pinned = format!("{}@{}", c.code.repository, c.code.digest);
                if let Ok(image) = self.resolve_image(account, region, &pinned).await {
                    return Ok(image);
                }
            }
            let base = &c.code.image_uri;
            return self
                .resolve_image(account, region, base)
                .await
                .map_err(|_| self.missing_base_image(c));
        }
        let image = self
            .resolve_image(account, region, &c.code.image_uri)
            .await
            .map_err(|e| format!("The image could not be prepared to run: {e}"))?;
        if image.manifest_digest != c.code.digest {
            // The tag moved since the function pinned its digest: the
            // pinned digest is what runs.
            let pinned = format!("{}@{}", c.code.repository, c.code.digest);
            return self
                .resolve_image(account, region, &pinned)
                .await
                .map_err(|e| format!("The image could not be prepared to run: {e}"));
        }
        Ok(image)
    }

    fn missing_base_image(&self, c: &FunctionConfig) -> String {
        let base = &c.code.image_uri;
        let repository = base.split(':').next().unwrap_or(base);
        let registry = self
            .config
            .pool
            .endpoint_url
            .trim_start_matches("http://")
            .replace("127.0.0.1", "localhost");
        format!(
            "The base image of runtime {runtime} is not in Stratus' registry. Push it as {base}: \
             docker pull public.ecr.aws/{base} && docker tag public.ecr.aws/{base} {registry}/{base} && \
             docker push {registry}/{base} (create the repository first with `aws ecr create-repository \
             --repository-name {repository}` unless the server runs with --auto-create-repositories), \
             then update the function's code to retry.",
            runtime = c.runtime.as_deref().unwrap_or("?"),
        )
    }

    /// Unpacks the image in the background and moves the function to
    /// `Active` (or `Failed`), unless its code changed meanwhile.
    fn spawn_activation(
        self: Arc<Self>,
        account: String,
        region: String,
        name: String,
        revision: String,
    ) {
        tokio::spawn(async move {
            let outcome = async {
                let row = self
                    .row(&account, &region, &name)
                    .await
                    .map_err(|e| e.to_string())?;
                let c = parse_config(&row.latest_json).map_err(|e| e.to_string())?;
                let sandbox = self.sandbox_for(&row)?;
                let image = self
                    .activation_image(&sandbox, &account, &region, &c)
                    .await?;
                sandbox
                    .prepare(&image)
                    .await
                    .map_err(|e| format!("The image could not be prepared to run: {e}"))?;
                if c.package_type == PackageType::Image {
                    // Active means ready: the first invocation finds an
                    // instance made ahead.
                    self.make_spare(&row, &c, true).await;
                }
                Ok::<_, String>((image.repository, image.manifest_digest))
            }
            .await;
            let activated = outcome.is_ok();
            let result = self
                .finish_activation(&account, &region, &name, &revision, outcome)
                .await;
            if let Err(e) = result {
                tracing::warn!(function = %name, error = %e, "could not record the function's state");
            } else if activated {
                self.make_spare_for(&account, &region, &name, &revision)
                    .await;
            }
        });
    }

    /// Has the pool of a function configuration make an instance ahead,
    /// waiting for it (up to a few seconds) with `wait`.
    async fn make_spare(&self, row: &FunctionRow, config: &FunctionConfig, wait: bool) {
        match self.pool_for(row, config).await {
            Ok(pool) => {
                pool.prepare_spare();
                if wait {
                    pool.spare_ready(Duration::from_secs(5)).await;
                }
            }
            Err(e) => {
                tracing::debug!(function = %row.name, error = %e, "no instance made ahead")
            }
        }
    }

    /// [`Self::make_spare`] for a function's freshly activated
    /// configuration (a zip function's base image is pinned by then).
    async fn make_spare_for(&self, account: &str, region: &str, name: &str, revision: &str) {
        let Ok(row) = self.row(account, region, name).await else {
            return;
        };
        let Ok(config) = parse_config(&row.latest_json) else {
            return;
        };
        if config.state != State::Active || config.revision_id != revision {
            return;
        }
        self.make_spare(&row, &config, false).await;
    }

    async fn finish_activation(
        &self,
        account: &str,
        region: &str,
        name: &str,
        revision: &str,
        outcome: Result<(String, String), String>,
    ) -> Result<(), FunctionError> {
        let mut row = self.row(account, region, name).await?;
        let mut c = parse_config(&row.latest_json)?;
        if c.revision_id != revision {
            return Ok(()); // changed again meanwhile; that change activates itself
        }
        let creating = c.state == State::Pending;
        match outcome {
            Ok((repository, digest)) => {
                if c.package_type == PackageType::Zip {
                    // The base image is pinned like an image function's.
                    c.code.repository = repository;
                    c.code.digest = digest;
                }
                c.state = State::Active;
                c.state_reason = None;
                c.state_reason_code = None;
                if !creating {
                    c.last_update_status = Some(UpdateStatus::Successful);
                    c.last_update_reason = None;
                    c.last_update_reason_code = None;
                } else {
                    c.last_update_status = Some(UpdateStatus::Successful);
                }
            }
            Err(reason) => {
                tracing::warn!(function = %name, %reason, "function image could not be prepared");
                if creating {
                    c.state = State::Failed;
                    c.state_reason = Some(reason.clone());
                    c.state_reason_code = Some("InvalidImage".into());
                }
                c.last_update_status = Some(UpdateStatus::Failed);
                c.last_update_reason = Some(reason);
                c.last_update_reason_code = Some("InvalidImage".into());
            }
        }
        row.latest_json = to_json(&c)?;
        self.store.function_update(&row).await?;
        Ok(())
    }

    /// A configuration (`$LATEST` or a published version), with the
    /// function's tags and reserved concurrency.
    pub async fn get(
        &self,
        account: &str,
        region: &str,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<(FunctionConfig, BTreeMap<String, String>, Option<i64>), FunctionError> {
        let row = self.row(account, region, name).await?;
        let tags: BTreeMap<String, String> =
            serde_json::from_str(&row.tags_json).unwrap_or_default();
        let config = self.config_of(&row, qualifier, false).await?;
        Ok((config, tags, row.reserved_concurrency))
    }

    /// The configuration `qualifier` names; an alias resolves to its own
    /// version, or with `weighted` to the one its routing picks.
    async fn config_of(
        &self,
        row: &FunctionRow,
        qualifier: Option<&str>,
        weighted: bool,
    ) -> Result<FunctionConfig, FunctionError> {
        match qualifier {
            None | Some(LATEST) => parse_config(&row.latest_json),
            Some(q) => {
                let not_found = || {
                    FunctionError::NotFound(format!(
                        "{}:{q}",
                        function_arn(&row.region, &row.account, &row.name)
                    ))
                };
                let resolved;
                let q = if q.bytes().all(|b| b.is_ascii_digit()) {
                    q
                } else {
                    resolved = self
                        .alias_version(row, q, weighted)
                        .await?
                        .ok_or_else(not_found)?;
                    if resolved == LATEST {
                        return parse_config(&row.latest_json);
                    }
                    resolved.as_str()
                };
                let version: i64 = q.parse().map_err(|_| not_found())?;
                let json = self
                    .store
                    .function_version_get(&row.id, version)
                    .await?
                    .ok_or_else(not_found)?;
                parse_config(&json)
            }
        }
    }

    /// A page of functions by name, strictly after `marker`.
    pub async fn list(
        &self,
        account: &str,
        region: &str,
        marker: Option<&str>,
        max: i64,
    ) -> Result<(Vec<FunctionConfig>, Option<String>), FunctionError> {
        let max = max.clamp(1, 50);
        let rows = self
            .store
            .function_list(account, region, marker, max + 1)
            .await?;
        let more = rows.len() as i64 > max;
        let mut out = Vec::new();
        for r in rows.iter().take(max as usize) {
            out.push(parse_config(&r.latest_json)?);
        }
        let next = if more {
            out.last().map(|c| c.name.clone())
        } else {
            None
        };
        Ok((out, next))
    }

    pub async fn update_code(
        self: &Arc<Self>,
        account: &str,
        region: &str,
        name: &str,
        code: CodeUpdate,
        revision_id: Option<String>,
    ) -> Result<FunctionConfig, FunctionError> {
        let CodeUpdate {
            image_uri,
            zip_file,
            has_s3,
        } = code;
        let mut row = self.row(account, region, name).await?;
        let mut c = parse_config(&row.latest_json)?;
        check_revision(&c, revision_id.as_deref())?;
        if c.state == State::Pending || c.last_update_status == Some(UpdateStatus::InProgress) {
            return Err(in_progress(&c));
        }
        if c.package_type == PackageType::Zip {
            if image_uri.is_some() {
                return Err(FunctionError::InvalidParameter(
                    "Please don't provide ImageUri when updating a function with packageType Zip."
                        .into(),
                ));
            }
            if has_s3 {
                return Err(s3_unsupported());
            }
            let stored = self.store_zip(zip_file).await?;
            c.code.zip_sha256 = Some(stored.sha256_hex);
            c.code_sha256 = stored.code_sha256;
            c.code_size = stored.size;
            self.begin_update(&mut row, &mut c).await?;
            return Ok(c);
        }
        if zip_file.is_some() || has_s3 {
            return Err(FunctionError::InvalidParameter(
                "Please don't provide ZipFile when updating a function with packageType Image."
                    .into(),
            ));
        }
        let uri = image_uri.ok_or_else(|| {
            FunctionError::InvalidParameter(
                "Please provide ImageUri when updating a function with packageType Image.".into(),
            )
        })?;
        let image = self.resolve_image(account, region, &uri).await?;
        c.code = CodeRef {
            image_uri: uri,
            repository: image.repository.clone(),
            digest: image.manifest_digest.clone(),
            zip_sha256: None,
        };
        c.code_sha256 = image
            .manifest_digest
            .trim_start_matches("sha256:")
            .to_string();
        self.begin_update(&mut row, &mut c).await?;
        Ok(c)
    }

    pub async fn update_configuration(
        self: &Arc<Self>,
        account: &str,
        region: &str,
        name: &str,
        u: UpdateConfiguration,
    ) -> Result<FunctionConfig, FunctionError> {
        let mut row = self.row(account, region, name).await?;
        let mut c = parse_config(&row.latest_json)?;
        check_revision(&c, u.revision_id.as_deref())?;
        if c.state == State::Pending || c.last_update_status == Some(UpdateStatus::InProgress) {
            return Err(in_progress(&c));
        }
        if let Some(role) = u.role {
            if !is_valid_role_arn(&role) {
                return Err(FunctionError::Validation(format!(
                    "1 validation error detected: Value '{role}' at 'role' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{{12}}:role/?[a-zA-Z_0-9+=,.@\\-_/]+"
                )));
            }
            c.role = role;
        }
        if let Some(t) = u.timeout_s {
            c.timeout_s = check_range("timeout", t, 1, MAX_TIMEOUT_S.into())?;
        }
        if let Some(m) = u.memory_mb {
            c.memory_mb = check_range("memorySize", m, MIN_MEMORY_MB.into(), MAX_MEMORY_MB.into())?;
        }
        if let Some(e) = u.ephemeral_mb {
            c.ephemeral_mb = check_range("ephemeralStorage.size", e, 512, MAX_EPHEMERAL_MB.into())?;
        }
        if let Some(env) = u.environment {
            check_environment(&env)?;
            c.environment = Some(env);
        }
        if let Some(o) = u.image_overrides {
            c.image_overrides = o;
        }
        if let Some(d) = u.description {
            c.description = d;
        }
        if let Some(h) = u.handler {
            c.handler = Some(h);
        }
        self.begin_update(&mut row, &mut c).await?;
        Ok(c)
    }

    async fn begin_update(
        self: &Arc<Self>,
        row: &mut FunctionRow,
        c: &mut FunctionConfig,
    ) -> Result<(), FunctionError> {
        c.revision_id = new_revision();
        c.last_modified_ms = now_ms();
        c.last_update_status = Some(UpdateStatus::InProgress);
        c.last_update_reason = Some("The function is being created.".into());
        c.last_update_reason_code = Some("Creating".into());
        row.latest_json = to_json(c)?;
        if !self.store.function_update(row).await? {
            return Err(FunctionError::NotFound(c.arn()));
        }
        self.retire_pools(&c.account, &c.region, &c.name, Some(LATEST))
            .await;
        self.clone().spawn_activation(
            c.account.clone(),
            c.region.clone(),
            c.name.clone(),
            c.revision_id.clone(),
        );
        Ok(())
    }

    pub async fn delete(
        &self,
        account: &str,
        region: &str,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<(), FunctionError> {
        let row = self.row(account, region, name).await?;
        match qualifier {
            None => {
                self.store.function_delete(&row.id).await?;
                self.retire_pools(account, region, name, None).await;
            }
            Some(LATEST) => {
                return Err(FunctionError::InvalidParameter(
                    "$LATEST version cannot be deleted without deleting the function.".into(),
                ))
            }
            Some(q) => {
                let version: i64 = q.parse().map_err(|_| {
                    FunctionError::NotFound(format!("{}:{q}", function_arn(region, account, name)))
                })?;
                let q = version.to_string();
                let aliases = self.aliases_of_version(&row, &q).await?;
                if !aliases.is_empty() {
                    return Err(FunctionError::Conflict(format!(
                        "Unable to delete version because the following aliases reference it: [{}]",
                        aliases.join(", ")
                    )));
                }
                if !self.store.function_version_delete(&row.id, version).await? {
                    return Err(FunctionError::NotFound(format!(
                        "{}:{q}",
                        function_arn(region, account, name)
                    )));
                }
                self.retire_pools(account, region, name, Some(&q)).await;
            }
        }
        Ok(())
    }

    /// Retires the pools of a function (or of one of its versions).
    async fn retire_pools(&self, account: &str, region: &str, name: &str, version: Option<&str>) {
        let retired: Vec<Arc<Pool>> = {
            let mut pools = self.pool_map();
            let keys: Vec<PoolKey> = pools
                .keys()
                .filter(|k| {
                    k.0 == account
                        && k.1 == region
                        && k.2 == name
                        && version.is_none_or(|v| k.3.starts_with(&format!("{v}#")))
                })
                .cloned()
                .collect();
            keys.iter().filter_map(|k| pools.remove(k)).collect()
        };
        for p in retired {
            p.retire().await;
        }
    }

    /// Stops every instance (server shutdown).
    pub async fn shutdown(&self) {
        let pools: Vec<Arc<Pool>> = self.pool_map().drain().map(|(_, p)| p).collect();
        for p in pools {
            p.retire().await;
        }
    }

    /// Number of running instances of a function (all versions).
    pub fn instances(&self, account: &str, region: &str, name: &str) -> usize {
        self.pool_map()
            .iter()
            .filter(|(k, _)| k.0 == account && k.1 == region && k.2 == name)
            .map(|(_, p)| p.alive())
            .sum()
    }

    async fn pool_for(
        &self,
        row: &FunctionRow,
        config: &FunctionConfig,
    ) -> Result<Arc<Pool>, InvokeError> {
        let sandbox = self.sandbox_for(row).map_err(InvokeError::Internal)?;
        // A changed executor tag gets a pool of its own.
        let key: PoolKey = (
            row.account.clone(),
            row.region.clone(),
            row.name.clone(),
            format!(
                "{}#{}@{}",
                config.version,
                config.revision_id,
                sandbox.name()
            ),
        );
        let reserved = row.reserved_concurrency.is_some();
        let limit = row
            .reserved_concurrency
            .map(|r| r.max(0) as usize)
            .unwrap_or(self.config.account_concurrency);
        if let Some(p) = self.pool_map().get(&key) {
            p.set_limit(limit, reserved);
            return Ok(p.clone());
        }
        let image = if config.code.digest.is_empty() && !sandbox.runs_images() {
            crate::ResolvedImage {
                account: row.account.clone(),
                region: row.region.clone(),
                architecture: "x86_64".into(),
                ..crate::ResolvedImage::default()
            }
        } else {
            let pinned = format!("{}@{}", config.code.repository, config.code.digest);
            self.images
                .resolve(&row.account, &row.region, &pinned)
                .await
                .map_err(|e| match e {
                    ImageError::Invalid(m) => InvokeError::Internal(format!(
                        "the function's image is gone from the registry: {m}"
                    )),
                    ImageError::Internal(m) => InvokeError::Internal(m),
                })?
        };
        let code_dir = config
            .code
            .zip_sha256
            .as_deref()
            .map(|sha| self.code.dir(sha));
        let pool = Arc::new_cyclic(|me| {
            Pool::new(
                config.clone(),
                image,
                sandbox,
                self.config.pool.clone(),
                (limit, reserved),
                code_dir,
                me.clone(),
            )
        });
        let pool = self.pool_map().entry(key).or_insert(pool).clone();
        Ok(pool)
    }

    /// The function row and the configuration an invoke runs, from memory
    /// when no write happened since they were read. Aliases are resolved
    /// anew each time (weighted routing picks per invoke).
    async fn snapshot(
        &self,
        account: &str,
        region: &str,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<(Arc<FunctionRow>, Arc<FunctionConfig>), InvokeError> {
        let cacheable =
            qualifier.is_none_or(|q| q == LATEST || q.bytes().all(|b| b.is_ascii_digit()));
        let key: SnapshotKey = (
            account.to_string(),
            region.to_string(),
            name.to_string(),
            qualifier.map(str::to_string),
        );
        let generation = self.store.generation();
        if cacheable {
            let cached = self.snapshot_map().get(&key).cloned();
            if let Some(s) = cached.filter(|s| s.generation == generation) {
                return Ok((s.row, s.config));
            }
        }
        let row = self
            .store
            .function_get(account, region, name)
            .await
            .map_err(|e| InvokeError::Internal(e.to_string()))?
            .ok_or_else(|| InvokeError::NotFound(function_arn(region, account, name)))?;
        let config = self
            .config_of(&row, qualifier, true)
            .await
            .map_err(|e| match e {
                FunctionError::NotFound(m) => InvokeError::NotFound(m),
                other => InvokeError::Internal(other.to_string()),
            })?;
        let (row, config) = (Arc::new(row), Arc::new(config));
        if cacheable && self.store.generation() == generation {
            let mut map = self.snapshot_map();
            if map.len() >= MAX_SNAPSHOTS {
                map.clear();
            }
            map.insert(
                key,
                Snapshot {
                    generation,
                    row: row.clone(),
                    config: config.clone(),
                },
            );
        }
        Ok((row, config))
    }

    fn snapshot_map(&self) -> std::sync::MutexGuard<'_, HashMap<SnapshotKey, Snapshot>> {
        self.snapshots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Invokes a function.
    pub async fn invoke(
        self: &Arc<Self>,
        mut req: InvokeRequest,
    ) -> Result<InvokeResult, InvokeError> {
        let (name, path_qualifier) = parse_function_ref(&req.function)
            .map_err(|e| InvokeError::InvalidParameter(e.to_string()))?;
        let qualifier = match (path_qualifier, req.qualifier.clone()) {
            (Some(a), Some(b)) if a != b => {
                return Err(InvokeError::InvalidParameter(
                    "The derived qualifier from the function name does not match the specified qualifier.".into(),
                ))
            }
            (a, b) => a.or(b),
        };
        // However it was given, the qualifier is part of the ARN the
        // function sees as invoked.
        req.qualifier = qualifier.clone();
        let (row, config) = self
            .snapshot(&req.account, &req.region, &name, qualifier.as_deref())
            .await?;
        let (row, config) = (&*row, &*config);
        match config.state {
            State::Active => {}
            State::Pending => return Err(InvokeError::NotReady("Pending")),
            State::Failed => return Err(InvokeError::NotReady("Failed")),
            State::Inactive => return Err(InvokeError::NotReady("Inactive")),
        }
        let event = match req.invocation_type.as_str() {
            "RequestResponse" => false,
            "Event" => true,
            "DryRun" => {
                return Ok(InvokeResult {
                    status: 204,
                    payload: Bytes::new(),
                    function_error: None,
                    executed_version: config.version.clone(),
                    log_tail: None,
                })
            }
            other => {
                return Err(InvokeError::InvalidParameter(format!(
                    "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
                )))
            }
        };
        let limit = if event {
            self.config.max_async_payload
        } else {
            self.config.max_sync_payload
        };
        if req.payload.len() > limit {
            return Err(InvokeError::TooLarge {
                limit,
                operation: "InvokeFunction",
            });
        }
        if req.payload.is_empty() {
            // An invoke without a payload delivers `{}`, as Lambda does.
            req.payload = Bytes::from_static(b"{}");
        } else {
            serde_json::from_slice::<serde::de::IgnoredAny>(&req.payload)
                .map_err(|e| InvokeError::InvalidContent(e.to_string()))?;
        }
        // An asynchronous invocation is accepted anyway: throttles are
        // retried from the queue, as Lambda does.
        if row.reserved_concurrency == Some(0) && !event {
            return Err(InvokeError::Throttled {
                reason: "ReservedFunctionConcurrentInvocationLimitExceeded",
            });
        }
        let pool = self.pool_for(row, config).await?;
        if event {
            let event_config: crate::EventInvokeConfig = row
                .event_invoke_json
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or_default();
            let Ok(queued) = self.events.clone().try_acquire_owned() else {
                return Err(InvokeError::Throttled {
                    reason: "ConcurrentInvocationLimitExceeded",
                });
            };
            // Accepted means recorded: a restarted server delivers it.
            self.store
                .async_event_insert(&store::AsyncEventRow {
                    id: req.request_id.clone(),
                    account: req.account.clone(),
                    region: req.region.clone(),
                    function_ref: req.function.clone(),
                    qualifier: req.qualifier.clone(),
                    payload: String::from_utf8_lossy(&req.payload).into_owned(),
                    client_context: req.client_context.clone(),
                    received_ms: now_ms(),
                })
                .await
                .map_err(|e| InvokeError::Internal(e.to_string()))?;
            let this = self.clone();
            tokio::spawn(async move {
                let id = req.request_id.clone();
                this.run_event(pool, req, event_config).await;
                if let Err(e) = this.store.async_event_delete(&id).await {
                    tracing::warn!(request_id = %id, error = %e, "could not remove a finished asynchronous invocation");
                }
                drop(queued);
            });
            return Ok(InvokeResult {
                status: 202,
                payload: Bytes::new(),
                function_error: None,
                executed_version: config.version.clone(),
                log_tail: None,
            });
        }
        // The invocation runs in the caller's task, but a caller that
        // disconnects must not cancel it half-way (the instance would be
        // dropped without going back to its pool), and Lambda lets it
        // finish too: then the rest of it runs in a task of its own.
        let this = self.clone();
        Detachable::new(async move { this.run(&pool, &req).await }).await
    }

    /// An asynchronous invocation: retried (twice by default) with
    /// backoff when the function fails or is throttled, and dropped once
    /// older than the maximum event age.
    async fn run_event(
        &self,
        pool: Arc<Pool>,
        req: InvokeRequest,
        settings: crate::EventInvokeConfig,
    ) {
        let received = Instant::now();
        let max_age = Duration::from_secs(settings.maximum_event_age_s.into());
        let attempts = 1 + settings.maximum_retry_attempts;
        let mut delay = self.config.async_retry_delay;
        for attempt in 0..attempts {
            if received.elapsed() > max_age {
                tracing::warn!(function = %pool.config.name, request_id = %req.request_id, "asynchronous invocation dropped: older than MaximumEventAgeInSeconds");
                return;
            }
            match self.run(&pool, &req).await {
                Ok(r) if r.function_error.is_none() => return,
                Ok(_) | Err(InvokeError::Throttled { .. }) => {
                    tracing::info!(function = %pool.config.name, attempt, "asynchronous invocation failed");
                }
                Err(e) => {
                    tracing::warn!(function = %pool.config.name, error = %e, "asynchronous invocation dropped");
                    return;
                }
            }
            if attempt + 1 < attempts {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }

    /// Takes one of the account's concurrent executions, waiting (oldest
    /// first) up to the queue wait for one to become free.
    async fn account_slot(&self, account: &str, region: &str) -> Option<AccountSlot> {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((account.to_string(), region.to_string()))
            .or_insert_with(|| {
                Arc::new(tokio::sync::Semaphore::new(self.config.account_concurrency))
            })
            .clone();
        if let Ok(slot) = running.clone().try_acquire_owned() {
            return Some(slot);
        }
        let wait = self.config.pool.queue_wait;
        if wait.is_zero() {
            return None;
        }
        tokio::time::timeout(wait, running.acquire_owned())
            .await
            .ok()?
            .ok()
    }

    async fn run(&self, pool: &Pool, req: &InvokeRequest) -> Result<InvokeResult, InvokeError> {
        let config = &pool.config;
        // Held until the invocation is over.
        let _slot = if pool.reserved() {
            None
        } else {
            let slot = self.account_slot(&config.account, &config.region).await;
            Some(slot.ok_or(InvokeError::Throttled {
                reason: "ConcurrentInvocationLimitExceeded",
            })?)
        };
        let inst = match pool.acquire().await {
            Ok(i) => i,
            Err(AcquireError::Throttled) => {
                return Err(InvokeError::Throttled {
                    reason: if pool.reserved() {
                        "ReservedFunctionConcurrentInvocationLimitExceeded"
                    } else {
                        "ConcurrentInvocationLimitExceeded"
                    },
                })
            }
            Err(AcquireError::InitFailed {
                error_type,
                message,
                runtime_body,
                log_tail,
                log,
            }) => {
                let body = match runtime_body {
                    Some(b) if !b.is_empty() => b,
                    _ => Bytes::from(
                        serde_json::json!({"errorType": error_type, "errorMessage": format!("RequestId: {} Error: {message}", req.request_id)})
                            .to_string(),
                    ),
                };
                let lines = [
                    format!("START RequestId: {} Version: {}", req.request_id, config.version),
                    format!("END RequestId: {}", req.request_id),
                    format!(
                        "REPORT RequestId: {}\tDuration: 0.00 ms\tBilled Duration: 0 ms\tMemory Size: {} MB\tMax Memory Used: 0 MB\tStatus: error\tError Type: {error_type}",
                        req.request_id, config.memory_mb
                    ),
                ];
                let mut tail = log_tail;
                for line in lines {
                    tail.push_str(&line);
                    tail.push('\n');
                    // Also in the log stream, after what the runtime printed.
                    if let Some(log) = &log {
                        log.line(&line);
                    }
                }
                return Ok(InvokeResult {
                    status: 200,
                    payload: body,
                    function_error: Some("Unhandled".into()),
                    executed_version: config.version.clone(),
                    log_tail: req.tail_log.then_some(tail),
                });
            }
        };
        tracing::debug!(function = %config.name, version = %config.version, instance = %inst.id, request_id = %req.request_id, cold = inst.init_duration.is_some(), "invoke");
        inst.log.begin_invocation(&format!(
            "START RequestId: {} Version: {}",
            req.request_id, config.version
        ));
        let started = Instant::now();
        let deadline = std::time::SystemTime::now() + Duration::from_secs(config.timeout_s.into());
        let invocation = Invocation {
            request_id: req.request_id.clone(),
            payload: req.payload.clone(),
            deadline,
            invoked_function_arn: match &req.qualifier {
                Some(q) => format!("{}:{q}", config.arn()),
                None => config.arn(),
            },
            trace_id: None,
            client_context: req.client_context.clone(),
            cognito_identity: None,
            content_type: None,
        };
        let mut exited = inst.exited.clone();
        let timeout = Duration::from_secs(config.timeout_s.into());
        let outcome = tokio::select! {
            r = tokio::time::timeout(timeout, inst.runtime.invoke(invocation)) => match r {
                Ok(Ok(o)) => Outcome::Done(o),
                Ok(Err(e)) => Outcome::Platform("Runtime.Unknown".into(), format!("the Runtime API failed: {e}")),
                Err(_) => Outcome::TimedOut,
            },
            r = exited.wait_for(|e| e.is_some()) => Outcome::Exited(r.ok().and_then(|g| g.clone())),
        };
        let duration = started.elapsed();
        let ended = matches!(outcome, Outcome::Exited(_));
        let mut healthy = true;
        let (payload, function_error, status_note) = match outcome {
            Outcome::Done(InvokeOutcome::Response { body, .. }) => (body, None, None),
            Outcome::Done(InvokeOutcome::FunctionError { body, .. }) => {
                (body, Some("Unhandled"), None)
            }
            Outcome::Done(InvokeOutcome::InitError { body, .. }) => {
                healthy = false;
                (
                    body,
                    Some("Unhandled"),
                    Some(("error", "Runtime.InitError")),
                )
            }
            Outcome::Done(InvokeOutcome::ResponseTooLarge { size, limit }) => {
                let body = serde_json::json!({"errorType": "Function.ResponseSizeTooLarge", "errorMessage": format!("Response payload size ({size} bytes) exceeded maximum allowed payload size ({limit} bytes).")});
                (Bytes::from(body.to_string()), Some("Unhandled"), None)
            }
            Outcome::TimedOut => {
                healthy = false;
                let msg = format!(
                    "RequestId: {} Error: Task timed out after {:.2} seconds",
                    req.request_id,
                    timeout.as_secs_f64()
                );
                let body =
                    serde_json::json!({"errorType": "Sandbox.Timedout", "errorMessage": msg});
                (
                    Bytes::from(body.to_string()),
                    Some("Unhandled"),
                    Some(("timeout", "Sandbox.Timedout")),
                )
            }
            Outcome::Exited(e) => {
                healthy = false;
                let oom = e.as_ref().is_some_and(|e| e.oom_killed);
                let error_type = if oom {
                    "Runtime.OutOfMemory"
                } else {
                    "Runtime.ExitError"
                };
                let body = serde_json::json!({"errorType": error_type, "errorMessage": format!("RequestId: {} Error: Runtime exited {}", req.request_id, describe_exit(e.as_ref()))});
                (
                    Bytes::from(body.to_string()),
                    Some("Unhandled"),
                    Some(("error", error_type)),
                )
            }
            Outcome::Platform(t, m) => {
                healthy = false;
                let body = serde_json::json!({"errorType": t, "errorMessage": format!("RequestId: {} Error: {m}", req.request_id)});
                (
                    Bytes::from(body.to_string()),
                    Some("Unhandled"),
                    Some(("error", "Runtime.Unknown")),
                )
            }
        };
        // Lines printed before the answer (or the crash) belong before END.
        if req.tail_log || !healthy {
            inst.log.settle(ended).await;
        }
        if status_note.is_some_and(|(s, _)| s == "timeout") {
            inst.log.line(&format!(
                "{} {} Task timed out after {:.2} seconds",
                aws_now(),
                req.request_id,
                timeout.as_secs_f64()
            ));
        }
        let ms = duration.as_secs_f64() * 1000.0;
        let mut report = format!(
            "REPORT RequestId: {}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
            req.request_id,
            ms.ceil() as u64,
            config.memory_mb,
            inst.max_memory_mb().await
        );
        if let Some(init) = inst.init_duration {
            report.push_str(&format!(
                "\tInit Duration: {:.2} ms",
                init.as_secs_f64() * 1000.0
            ));
        }
        if let Some((status, error_type)) = status_note {
            report.push_str(&format!("\tStatus: {status}\tError Type: {error_type}"));
        }
        let tail = inst.log.end_invocation(
            &[format!("END RequestId: {}", req.request_id), report],
            req.tail_log,
        );
        pool.release(inst, healthy).await;
        Ok(InvokeResult {
            status: 200,
            payload,
            function_error: function_error.map(str::to_string),
            executed_version: config.version.clone(),
            log_tail: tail,
        })
    }
}

/// A future polled in the caller's task (no hand-off to another task);
/// dropped before it completes, it finishes in a task of its own.
struct Detachable<F: Future + Send + 'static>
where
    F::Output: Send,
{
    inner: Option<std::pin::Pin<Box<F>>>,
}

impl<F: Future + Send + 'static> Detachable<F>
where
    F::Output: Send,
{
    fn new(future: F) -> Self {
        Detachable {
            inner: Some(Box::pin(future)),
        }
    }
}

impl<F: Future + Send + 'static> Future for Detachable<F>
where
    F::Output: Send,
{
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let Some(inner) = self.inner.as_mut() else {
            return std::task::Poll::Pending;
        };
        let output = std::task::ready!(inner.as_mut().poll(cx));
        self.inner = None;
        std::task::Poll::Ready(output)
    }
}

impl<F: Future + Send + 'static> Drop for Detachable<F>
where
    F::Output: Send,
{
    fn drop(&mut self) {
        if let (Some(rest), Ok(runtime)) =
            (self.inner.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(rest);
        }
    }
}

enum Outcome {
    Done(InvokeOutcome),
    TimedOut,
    Exited(Option<crate::ExitInfo>),
    Platform(String, String),
}

fn aws_now() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

fn s3_unsupported() -> FunctionError {
    FunctionError::InvalidParameter(
        "Stratus takes a function's code as ZipFile (aws lambda ... --zip-file fileb://function.zip); S3Bucket/S3Key code locations are not supported.".into(),
    )
}

/// The members a zip function must (and must not) have.
fn check_zip_request(req: &CreateFunction) -> Result<(), FunctionError> {
    let (Some(runtime), Some(handler)) = (req.runtime.as_deref(), req.handler.as_deref()) else {
        return Err(FunctionError::InvalidParameter(
            "Runtime and Handler are mandatory parameters for functions created with deployment packages.".into(),
        ));
    };
    if runtime_base_image(runtime).is_none() {
        let names: Vec<&str> = RUNTIMES.iter().map(|(r, _)| *r).collect();
        return Err(FunctionError::InvalidParameter(format!(
            "Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [{}] or be a valid ARN",
            names.join(", ")
        )));
    }
    if handler.is_empty() || handler.len() > 128 || handler.chars().any(char::is_whitespace) {
        return Err(FunctionError::Validation(format!(
            "1 validation error detected: Value '{handler}' at 'handler' failed to satisfy constraint: Member must satisfy regular expression pattern: [^\\s]+"
        )));
    }
    if req.image_uri.is_some() {
        return Err(FunctionError::InvalidParameter(
            "Please don't provide ImageUri when creating a function with packageType Zip.".into(),
        ));
    }
    if req.has_s3 {
        return Err(s3_unsupported());
    }
    Ok(())
}

fn check_revision(c: &FunctionConfig, expected: Option<&str>) -> Result<(), FunctionError> {
    match expected {
        Some(r) if r != c.revision_id => Err(FunctionError::PreconditionFailed(
            "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id".into(),
        )),
        _ => Ok(()),
    }
}

fn in_progress(c: &FunctionConfig) -> FunctionError {
    FunctionError::Conflict(format!(
        "The operation cannot be performed at this time. An update is in progress for resource: {}",
        c.arn()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_function_references() {
        let ok = |s: &str| parse_function_ref(s).expect(s);
        assert_eq!(ok("demo"), ("demo".into(), None));
        assert_eq!(ok("demo:live"), ("demo".into(), Some("live".into())));
        assert_eq!(ok("000000000000:function:demo"), ("demo".into(), None));
        assert_eq!(
            ok("arn:aws:lambda:us-east-1:000000000000:function:demo:$LATEST"),
            ("demo".into(), Some("$LATEST".into()))
        );
        for bad in ["", "a b", "arn:aws:s3:::bucket", "demo:", "x:y:z"] {
            assert!(parse_function_ref(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn environment_rules() {
        let mut env = BTreeMap::new();
        env.insert("STAGE".to_string(), "dev".to_string());
        assert!(check_environment(&env).is_ok());
        env.insert("AWS_REGION".to_string(), "x".to_string());
        assert!(matches!(
            check_environment(&env),
            Err(FunctionError::InvalidParameter(_))
        ));
        let mut big = BTreeMap::new();
        big.insert("BIG".to_string(), "x".repeat(5000));
        assert!(matches!(
            check_environment(&big),
            Err(FunctionError::InvalidParameter(_))
        ));
    }

    #[tokio::test]
    async fn a_dropped_detachable_future_finishes_in_a_task() {
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let (done, finished) = tokio::sync::oneshot::channel();
        let mut run = Detachable::new(async move {
            let _ = wait.await;
            let _ = done.send("finished");
            1
        });
        // Started in the caller's task, then the caller goes away.
        assert!(futures::poll!(&mut run).is_pending());
        drop(run);
        let _ = go.send(());
        assert_eq!(finished.await, Ok("finished"));
        // Completed in place, it is not run again.
        assert_eq!(Detachable::new(async { 2 }).await, 2);
    }
}
