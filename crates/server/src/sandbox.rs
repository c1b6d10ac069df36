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
    ExitInfo, OutputLine, OutputStream, ResolvedImage, Sandbox, SandboxInstance, SandboxSpec,
};
use futures::StreamExt;
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
        let exec = self.executor().await?;
        let user = spec.image.user.clone();
        let instance = exec
            .start(InstanceSpec {
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
            })
            .await
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
        // Read straight from the executor's channel (no task in between),
        // so that lines waiting there are visible to the log writer.
        let mut from = self.instance.take_output()?;
        let lines = futures::stream::poll_fn(move |cx| {
            from.poll_recv(cx)
                .map(|l| l.map(|l| OutputLine { line: l.line }))
        });
        Some(lines.boxed())
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
