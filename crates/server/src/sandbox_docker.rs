//! Adapts the `docker` executor to the functions crate's `Sandbox` trait.
//! The engine is reached lazily (the server is ready before it) and again
//! on the next use after a failure, so starting Docker later is enough.
//!
//! What is Lambda here and not in the executor: the registry login the
//! engine pulls with (a registry token for the image's account, as
//! `GetAuthorizationToken` mints them), and, when containers reach the
//! host through an alias (Docker Desktop), rewriting the loopback
//! addresses of `AWS_LAMBDA_RUNTIME_API` and `AWS_ENDPOINT_URL`.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use executor_docker::{
    DockerExecutor, DockerExecutorConfig, DockerInstance, ImageRef, InstanceSpec, RegistryAuth,
};
use functions::{ExitInfo, OutputStream, ResolvedImage, Sandbox, SandboxInstance, SandboxSpec};
use tokio::sync::OnceCell;

/// How long the registry token a pull carries stays valid.
const PULL_TOKEN_SECS: i64 = 3600;
/// Environment variables holding an address of the host the instance
/// talks to.
const HOST_ADDRESS_VARS: &[&str] = &["AWS_LAMBDA_RUNTIME_API", "AWS_ENDPOINT_URL"];

pub(crate) struct DockerSandbox {
    config: DockerExecutorConfig,
    token_secret: Vec<u8>,
    executor: OnceCell<Arc<DockerExecutor>>,
}

/// Names this server's containers: the first 16 hex digits of the SHA-256
/// of its (absolute) data directory, so two servers sharing an engine
/// never remove each other's containers.
pub(crate) fn server_id(data_dir: &Path) -> String {
    blobs::Digest::of(data_dir.as_os_str().as_bytes()).hex()[..16].to_string()
}

impl DockerSandbox {
    /// `endpoint`: the engine (`unix://…`, `tcp://…`); `registry`: the
    /// address the engine pulls from (`127.0.0.1:PORT`); `host_alias`:
    /// see [`DockerExecutorConfig::host_alias`].
    pub fn new(
        endpoint: String,
        registry: String,
        host_alias: Option<String>,
        data_dir: &Path,
        token_secret: Vec<u8>,
    ) -> DockerSandbox {
        let mut config = DockerExecutorConfig::new(registry, server_id(data_dir));
        config.endpoint = endpoint;
        config.host_alias = host_alias;
        DockerSandbox {
            config,
            token_secret,
            executor: OnceCell::new(),
        }
    }

    /// The executor, connected on first use (and retried after a
    /// failure); the error says what to do.
    pub async fn executor(&self) -> Result<Arc<DockerExecutor>, String> {
        self.executor
            .get_or_try_init(|| async {
                let exec = DockerExecutor::connect(self.config.clone())
                    .await
                    .map_err(|e| format!("{e}; start Docker or choose --executor oci"))?;
                match exec.cleanup_leftovers().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        containers = n,
                        "removed containers a previous run left behind"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not clean up containers of a previous run")
                    }
                }
                tracing::info!(
                    endpoint = %self.config.endpoint,
                    engine = %exec.engine_version(),
                    server_label = %self.config.server_id,
                    "docker executor ready"
                );
                Ok(Arc::new(exec))
            })
            .await
            .cloned()
    }

    /// A registry login for the image's account.
    fn auth(&self, image: &ResolvedImage) -> RegistryAuth {
        let expires = time::OffsetDateTime::now_utc().unix_timestamp() + PULL_TOKEN_SECS;
        RegistryAuth {
            username: "AWS".to_string(),
            password: aws_protocol::token::mint(
                &self.token_secret,
                &image.account,
                &image.region,
                expires,
            ),
        }
    }

    /// The environment with loopback addresses replaced by the host alias.
    fn rewrite_env(&self, env: Vec<(String, String)>) -> Vec<(String, String)> {
        let Some(alias) = &self.config.host_alias else {
            return env;
        };
        env.into_iter()
            .map(|(k, v)| {
                if HOST_ADDRESS_VARS.contains(&k.as_str()) {
                    let v = replace_loopback(&v, alias);
                    (k, v)
                } else {
                    (k, v)
                }
            })
            .collect()
    }
}

/// `127.0.0.1:P` or `http://127.0.0.1:P` with `alias` for the host.
fn replace_loopback(value: &str, alias: &str) -> String {
    for host in ["127.0.0.1:", "localhost:"] {
        if let Some(rest) = value.strip_prefix(host) {
            return format!("{alias}:{rest}");
        }
        if let Some(rest) = value.strip_prefix(&format!("http://{host}")) {
            return format!("http://{alias}:{rest}");
        }
    }
    value.to_string()
}

fn image_ref(image: &ResolvedImage) -> ImageRef {
    ImageRef {
        repository: image.repository.clone(),
        manifest_digest: image.manifest_digest.clone(),
    }
}

#[async_trait::async_trait]
impl Sandbox for DockerSandbox {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn prepare(&self, image: &ResolvedImage) -> Result<(), String> {
        let exec = self.executor().await?;
        exec.prepare(&image_ref(image), Some(&self.auth(image)))
            .await
            .map_err(|e| e.to_string())
    }

    async fn start(&self, spec: SandboxSpec) -> Result<Box<dyn SandboxInstance>, String> {
        let exec = self.executor().await?;
        let auth = self.auth(&spec.image);
        let instance = exec
            .start(InstanceSpec {
                instance_id: spec.instance_id,
                image: image_ref(&spec.image),
                auth: Some(auth),
                args: spec.argv,
                env: self.rewrite_env(spec.env),
                working_dir: spec.working_dir,
                user: spec.image.user.clone(),
                memory_limit_bytes: spec.memory_bytes,
                tmp_size_bytes: spec.tmp_bytes,
                // A zip function's package.
                read_only_dirs: spec
                    .code_dir
                    .map(|dir| vec![(dir, "/var/task".to_string())])
                    .unwrap_or_default(),
            })
            .await
            .map_err(|e| e.to_string())?;
        Ok(Box::new(DockerSandboxInstance { instance }))
    }
}

struct DockerSandboxInstance {
    instance: DockerInstance,
}

fn exit_info(e: executor_docker::ExitInfo) -> ExitInfo {
    ExitInfo {
        code: e.code,
        signal: e.signal,
        oom_killed: e.oom_killed,
    }
}

#[async_trait::async_trait]
impl SandboxInstance for DockerSandboxInstance {
    fn take_output(&mut self) -> Option<OutputStream> {
        // Straight from the executor's channel, so that lines waiting
        // there are visible to the log at once.
        let from = self.instance.take_output()?;
        Some(Box::new(crate::sandbox::ChannelOutput::new(
            from,
            |l: executor_docker::OutputLine| l.line,
        )))
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_become_the_host_alias() {
        let a = "host.docker.internal";
        assert_eq!(
            replace_loopback("127.0.0.1:9001", a),
            "host.docker.internal:9001"
        );
        assert_eq!(
            replace_loopback("http://127.0.0.1:4566", a),
            "http://host.docker.internal:4566"
        );
        assert_eq!(
            replace_loopback("http://localhost:4566", a),
            "http://host.docker.internal:4566"
        );
        assert_eq!(replace_loopback("10.0.0.1:1", a), "10.0.0.1:1");
    }

    #[test]
    fn the_server_id_is_stable_per_data_dir() {
        let a = server_id(Path::new("/data/a"));
        assert_eq!(a.len(), 16);
        assert_eq!(a, server_id(Path::new("/data/a")));
        assert_ne!(a, server_id(Path::new("/data/b")));
    }
}
