//! Lambda: function configurations and their states (the control plane),
//! and the invoke path (pool of instances, each a sandbox plus its own
//! Runtime API listener).
//!
//! This crate knows functions, versions and invocations. It does not know
//! HTTP (the server's `lambda` surface speaks the wire), the registry
//! (images come through [`ImageSource`]) or how a process is isolated
//! (instances come through [`Sandbox`]).

pub mod code;
mod instance_log;
pub mod model;
mod pool;
mod service;
mod versions;

use std::collections::BTreeMap;

use bytes::Bytes;

pub use model::{CodeRef, FunctionConfig, ImageOverrides, PackageType, State, UpdateStatus};
pub use pool::PoolConfig;
pub use service::{
    parse_function_ref, CodeUpdate, CreateFunction, FunctionError, Functions, FunctionsConfig,
    InvokeError, InvokeRequest, InvokeResult, UpdateConfiguration, EXECUTOR_TAG,
};
pub use versions::{is_valid_alias_name, Alias, AliasInput, EventInvokeConfig, EventInvokeInput};

/// An image resolved in the built-in registry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResolvedImage {
    /// Account and region of the repository that holds the image (what a
    /// registry login for pulling it names).
    pub account: String,
    pub region: String,
    pub repository: String,
    /// Digest of the single-platform image manifest.
    pub manifest_digest: String,
    /// Layers in order: (digest, media type).
    pub layers: Vec<(String, String)>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub architecture: String,
    /// Sum of the layer sizes.
    pub size: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The URI does not name an image in the built-in registry (not found,
    /// malformed, wrong platform). The message is shown to the user.
    #[error("{0}")]
    Invalid(String),
    #[error("image storage error: {0}")]
    Internal(String),
}

/// Resolves `ImageUri`s against the built-in registry.
#[async_trait::async_trait]
pub trait ImageSource: Send + Sync + 'static {
    async fn resolve(
        &self,
        account: &str,
        region: &str,
        image_uri: &str,
    ) -> Result<ResolvedImage, ImageError>;
}

/// A line a function instance printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub line: String,
}

/// How an instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub oom_killed: bool,
}

/// What to start.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    pub instance_id: String,
    pub image: ResolvedImage,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: String,
    pub memory_bytes: u64,
    pub tmp_bytes: u64,
    /// A zip function's unpacked package, mounted read-only at
    /// `/var/task`.
    pub code_dir: Option<std::path::PathBuf>,
    /// A zip function's runtime (`python3.11`, `provided.al2023`, …).
    pub runtime: Option<String>,
    /// The function's handler (`app.handler`; the CMD of an image).
    pub handler: Option<String>,
}

/// An instance's output lines (stdout and stderr), in the order they are
/// read; ends when the instance's output ends.
///
/// One task waits for lines ([`InstanceOutput::poll_line`]) while the
/// invoking task takes what is ready at the start and end of an invocation
/// ([`InstanceOutput::try_line`]) without disturbing that wait.
pub trait InstanceOutput: Send + 'static {
    /// The next line, waking `cx` when one may be ready; `None` at the end.
    fn poll_line(&mut self, cx: &mut std::task::Context<'_>)
        -> std::task::Poll<Option<OutputLine>>;
    /// A line that is ready now. Never registers for a wake-up.
    fn try_line(&mut self) -> TryLine;
    /// Whether [`TryLine::Empty`] proves that every line printed before
    /// the call was handed out (the instance writes straight into pipes
    /// this reads). If not, a line printed just before an answer may still
    /// be on its way, and the log waits for the output to pause before it
    /// cuts a tail.
    fn is_immediate(&self) -> bool {
        false
    }
}

/// What [`InstanceOutput::try_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum TryLine {
    Line(OutputLine),
    /// Nothing ready now.
    Empty,
    /// The output has ended.
    Ended,
}

/// An instance's output, boxed.
pub type OutputStream = Box<dyn InstanceOutput>;

/// One running instance of a sandbox.
#[async_trait::async_trait]
pub trait SandboxInstance: Send + Sync {
    /// Lines the instance prints (stdout and stderr), once.
    fn take_output(&mut self) -> Option<OutputStream>;
    /// Starts the process of an instance made by [`Sandbox::create`].
    async fn begin(&mut self) -> Result<(), String> {
        Ok(())
    }
    /// Waits for the instance to end.
    async fn wait(&mut self) -> ExitInfo;
    /// Stops the instance for good (idempotent).
    async fn kill(&mut self);
    fn max_memory_used_bytes(&self) -> Option<u64>;
    /// A way to read the peak memory use from any task, without asking
    /// the instance's owning task (one read per invoke, no hand-off).
    /// `None`: only [`SandboxInstance::max_memory_used_bytes`] knows.
    fn memory_probe(&self) -> Option<MemoryProbe> {
        None
    }
}

/// Reads an instance's peak memory use in bytes (`None` once unknown).
pub type MemoryProbe = std::sync::Arc<dyn Fn() -> Option<u64> + Send + Sync>;

/// Runs instances of images in isolation (an executor).
#[async_trait::async_trait]
pub trait Sandbox: Send + Sync + 'static {
    /// A short name for logs (`oci`, `docker`, `host`).
    fn name(&self) -> &'static str;
    /// Whether instances run from images. An executor that does not (the
    /// `host` one runs zip packages as local processes) needs no base
    /// image for zip functions and cannot run image functions.
    fn runs_images(&self) -> bool {
        true
    }
    /// Makes the image ready to start quickly (unpacks it once).
    async fn prepare(&self, image: &ResolvedImage) -> Result<(), String>;
    async fn start(&self, spec: SandboxSpec) -> Result<Box<dyn SandboxInstance>, String>;
    /// Whether [`Sandbox::create`] makes an instance ahead that only
    /// [`SandboxInstance::begin`] starts (the pool then keeps one such
    /// spare per function configuration, so that a cold start costs only
    /// the begin).
    fn creates_ahead(&self) -> bool {
        false
    }
    /// Everything [`Sandbox::start`] does but starting the process.
    async fn create(&self, spec: SandboxSpec) -> Result<Box<dyn SandboxInstance>, String> {
        self.start(spec).await
    }
}

/// The invoke entry point every surface uses (Invoke API, gateway,
/// console): it knows nothing of pools or executors.
#[async_trait::async_trait]
pub trait Invoke: Send + Sync {
    async fn invoke(&self, req: InvokeRequest) -> Result<InvokeResult, InvokeError>;
}

/// Environment a function sees, minus what the platform adds per instance.
pub(crate) fn user_env(config: &FunctionConfig) -> BTreeMap<String, String> {
    config.environment.clone().unwrap_or_default()
}

/// Output of an invocation (the function's bytes or its error document).
pub type Payload = Bytes;
