//! Adapts the `oci` executor to the functions crate's `Sandbox` trait.
//! The executor is created lazily (probing for a working OCI runtime takes
//! tens of milliseconds), so the server is ready before it.

use std::path::PathBuf;
use std::sync::Arc;

use blobs::{Digest, SharedBlobStore};
use executor_oci::{
    ExitStatus, ImageConfig, ImageLayer, ImageSpec, InstanceSpec, OciExecutor, OciExecutorConfig,
    OciInstance,
};
use functions::{
    ExitInfo, InstanceOutput, OutputLine, OutputStream, ResolvedImage, Sandbox, SandboxInstance,
    SandboxSpec, TryLine,
};
use futures::Stream;
use tokio::sync::OnceCell;

pub(crate) struct OciSandbox {
    state_dir: PathBuf,
    blobs: SharedBlobStore,
    executor: OnceCell<Result<Arc<OciExecutor>, String>>,
}

impl OciSandbox {
    pub fn new(state_dir: PathBuf, blobs: SharedBlobStore) -> OciSandbox {
        OciSandbox {
            state_dir,
            blobs,
            executor: OnceCell::new(),
        }
    }

    /// The executor, created on first use; the error says what to install.
    pub async fn executor(&self) -> Result<Arc<OciExecutor>, String> {
        self.executor
            .get_or_init(|| async {
                let exec = OciExecutor::new(
                    OciExecutorConfig::new(self.state_dir.clone()),
                    self.blobs.clone(),
                )
                .await
                .map_err(|e| e.to_string())?;
                match exec.cleanup_leftovers().await {
                    Ok(l) => tracing::debug!(?l, "removed instances a previous run left behind"),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not clean up instances of a previous run")
                    }
                }
                tracing::info!(runtime = %exec.runtime_path().display(), "oci executor ready");
                Ok(Arc::new(exec))
            })
            .await
            .clone()
    }
}

fn image_spec(image: &ResolvedImage) -> Result<ImageSpec, String> {
    let layers = image
        .layers
        .iter()
        .map(|(d, m)| {
            Ok(ImageLayer {
                digest: Digest::parse(d).map_err(|e| e.to_string())?,
                media_type: m.clone(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ImageSpec {
        manifest_digest: Digest::parse(&image.manifest_digest).map_err(|e| e.to_string())?,
        layers,
        config: ImageConfig {
            entrypoint: image.entrypoint.clone(),
            cmd: image.cmd.clone(),
            env: image.env.clone(),
            working_dir: image.working_dir.clone(),
            user: image.user.clone(),
        },
    })
}

#[async_trait::async_trait]
impl Sandbox for OciSandbox {
    fn name(&self) -> &'static str {
        "oci"
    }

    async fn prepare(&self, image: &ResolvedImage) -> Result<(), String> {
        let exec = self.executor().await?;
        exec.prepare(&image_spec(image)?)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn start(&self, spec: SandboxSpec) -> Result<Box<dyn SandboxInstance>, String> {
        self.launch(spec, false).await
    }

    fn creates_ahead(&self) -> bool {
        true
    }

    async fn create(&self, spec: SandboxSpec) -> Result<Box<dyn SandboxInstance>, String> {
        self.launch(spec, true).await
    }
}

impl OciSandbox {
    async fn launch(
        &self,
        spec: SandboxSpec,
        create_only: bool,
    ) -> Result<Box<dyn SandboxInstance>, String> {
        let exec = self.executor().await?;
        let user = spec.image.user.clone();
        let spec = InstanceSpec {
            instance_id: spec.instance_id,
            image: image_spec(&spec.image)?,
            args: spec.argv,
            env: spec.env,
            working_dir: spec.working_dir,
            user,
            memory_limit_bytes: spec.memory_bytes,
            tmp_size_bytes: spec.tmp_bytes,
            read_only_dirs: spec
                .code_dir
                .map(|dir| vec![(dir, "/var/task".to_string())])
                .unwrap_or_default(),
        };
        let instance = if create_only {
            exec.create(spec).await
        } else {
            exec.start(spec).await
        }
        .map_err(|e| e.to_string())?;
        Ok(Box::new(OciSandboxInstance { instance }))
    }
}

struct OciSandboxInstance {
    instance: OciInstance,
}

fn exit_info(e: executor_oci::ExitInfo) -> ExitInfo {
    let (code, signal) = match e.status {
        ExitStatus::Code(c) => (Some(c), None),
        ExitStatus::Signal(s) => (None, Some(s)),
        ExitStatus::Unknown => (None, None),
    };
    ExitInfo {
        code,
        signal,
        oom_killed: e.oom_killed,
    }
}

#[async_trait::async_trait]
impl SandboxInstance for OciSandboxInstance {
    fn take_output(&mut self) -> Option<OutputStream> {
        // Read straight from the instance's pipes (no task in between).
        Some(Box::new(OciOutput(self.instance.take_output()?)))
    }

    async fn begin(&mut self) -> Result<(), String> {
        self.instance.begin().await
    }

    async fn wait(&mut self) -> ExitInfo {
        exit_info(self.instance.wait().await)
    }

    async fn kill(&mut self) {
        let _ = self.instance.kill().await;
    }

    fn max_memory_used_bytes(&self) -> Option<u64> {
        self.instance.max_memory_used_bytes()
    }

    fn memory_probe(&self) -> Option<functions::MemoryProbe> {
        let probe = self.instance.memory_probe()?;
        Some(std::sync::Arc::new(probe))
    }
}

/// The oci executor's output: read from the instance's pipes, immediate.
struct OciOutput(executor_oci::Output);

impl InstanceOutput for OciOutput {
    fn poll_line(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<OutputLine>> {
        std::pin::Pin::new(&mut self.0)
            .poll_next(cx)
            .map(|l| l.map(|l| OutputLine { line: l.line }))
    }

    fn try_line(&mut self) -> TryLine {
        match self.0.try_recv() {
            Ok(l) => TryLine::Line(OutputLine { line: l.line }),
            Err(executor_oci::TryRecvError::Empty) => TryLine::Empty,
            Err(executor_oci::TryRecvError::Disconnected) => TryLine::Ended,
        }
    }

    fn is_immediate(&self) -> bool {
        true
    }
}

/// An executor's output channel as an [`InstanceOutput`] (not immediate:
/// the executor's reader sits between the instance and the channel).
pub(crate) struct ChannelOutput<T> {
    rx: tokio::sync::mpsc::Receiver<T>,
    line: fn(T) -> String,
}

impl<T> ChannelOutput<T> {
    pub(crate) fn new(rx: tokio::sync::mpsc::Receiver<T>, line: fn(T) -> String) -> Self {
        ChannelOutput { rx, line }
    }
}

impl<T: Send + 'static> InstanceOutput for ChannelOutput<T> {
    fn poll_line(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<OutputLine>> {
        self.rx.poll_recv(cx).map(|l| {
            l.map(|l| OutputLine {
                line: (self.line)(l),
            })
        })
    }

    fn try_line(&mut self) -> TryLine {
        use tokio::sync::mpsc::error::TryRecvError;
        match self.rx.try_recv() {
            Ok(l) => TryLine::Line(OutputLine {
                line: (self.line)(l),
            }),
            Err(TryRecvError::Empty) => TryLine::Empty,
            Err(TryRecvError::Disconnected) => TryLine::Ended,
        }
    }
}
