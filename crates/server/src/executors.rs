//! Which executor runs function instances, and building its sandbox.

use std::sync::Arc;

use blobs::SharedBlobStore;

use crate::{sandbox, sandbox_docker, sandbox_host, Config};

/// The executor that runs function instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Executor {
    /// A real OCI runtime (runc, or crun), images unpacked by Stratus.
    #[default]
    Oci,
    /// The Docker Engine API; the engine pulls images from the registry.
    Docker,
    /// Zip functions as plain local processes: no isolation, no memory
    /// limit, no images.
    Host,
}

impl Executor {
    pub const NAMES: &'static [&'static str] = &["oci", "docker", "host"];

    pub fn as_str(self) -> &'static str {
        match self {
            Executor::Oci => "oci",
            Executor::Docker => "docker",
            Executor::Host => "host",
        }
    }
}

impl std::fmt::Display for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Executor {
    type Err = String;

    fn from_str(s: &str) -> Result<Executor, String> {
        match s {
            "oci" => Ok(Executor::Oci),
            "docker" => Ok(Executor::Docker),
            "host" => Ok(Executor::Host),
            other => Err(format!(
                "unknown executor {other:?}; valid executors: {}",
                Executor::NAMES.join(", ")
            )),
        }
    }
}

/// The sandbox of the configured executor. Says which one is in use, and
/// checks in the background (the edge is ready first) whether it can run
/// anything here, warning with the reason if not.
pub(crate) fn sandbox(
    config: &Config,
    blobs: SharedBlobStore,
    port: u16,
    token_secret: &[u8],
) -> Arc<dyn functions::Sandbox> {
    tracing::info!(executor = %config.executor, "function instances run on the {} executor", config.executor);
    match config.executor {
        Executor::Oci => {
            let oci = Arc::new(sandbox::OciSandbox::new(config.data_dir.join("oci"), blobs));
            let warm = oci.clone();
            tokio::spawn(async move {
                if let Err(e) = warm.executor().await {
                    tracing::warn!("container-image functions cannot run: {e}");
                }
            });
            oci
        }
        Executor::Docker => {
            let docker = Arc::new(sandbox_docker::DockerSandbox::new(
                config.docker_host.clone(),
                format!("127.0.0.1:{port}"),
                config.docker_runtime_api_host.clone(),
                &config.data_dir,
                token_secret.to_vec(),
            ));
            let warm = docker.clone();
            tokio::spawn(async move {
                if let Err(e) = warm.executor().await {
                    tracing::warn!("container-image functions cannot run: {e}");
                }
            });
            docker
        }
        Executor::Host => {
            tracing::warn!("the host executor runs functions as plain processes of this user: no isolation, no memory limit; use it for a fast local loop only");
            let host = Arc::new(sandbox_host::HostSandbox::new(config.host_python.clone()));
            let warm = host.clone();
            tokio::spawn(async move {
                match warm.python().await {
                    Ok(_) => tracing::info!("host executor ready: provided.* and python3.* zip functions can run"),
                    Err(e) => tracing::warn!("host executor: provided.* zip functions can run, python3.* ones cannot: {e}"),
                }
            });
            host
        }
    }
}

/// Says whether an executor a function may pick by tag works here.
fn report(name: &str, usable: Result<(), String>) {
    match usable {
        Ok(()) => tracing::info!(
            executor = name,
            "executor {name} is usable by functions tagged stratus:executor={name}"
        ),
        Err(e) => tracing::info!(
            executor = name,
            "executor {name} is not usable here (functions tagged stratus:executor={name} will fail): {e}"
        ),
    }
}

/// The executors other than the default, for functions whose
/// `stratus:executor` tag names one.
pub(crate) fn alternates(
    config: &Config,
    blobs: SharedBlobStore,
    port: u16,
    token_secret: &[u8],
) -> Vec<Arc<dyn functions::Sandbox>> {
    // Each is probed once in the background, so that the log says which
    // executors a `stratus:executor` tag can use here, and why not.
    let mut out: Vec<Arc<dyn functions::Sandbox>> = Vec::new();
    if config.executor != Executor::Oci {
        let oci = Arc::new(sandbox::OciSandbox::new(config.data_dir.join("oci"), blobs));
        let probe = oci.clone();
        tokio::spawn(async move {
            report("oci", probe.executor().await.map(|_| ()));
        });
        out.push(oci);
    }
    if config.executor != Executor::Docker {
        let docker = Arc::new(sandbox_docker::DockerSandbox::new(
            config.docker_host.clone(),
            format!("127.0.0.1:{port}"),
            config.docker_runtime_api_host.clone(),
            &config.data_dir,
            token_secret.to_vec(),
        ));
        let probe = docker.clone();
        tokio::spawn(async move {
            report("docker", probe.executor().await.map(|_| ()));
        });
        out.push(docker);
    }
    if config.executor != Executor::Host {
        let host = Arc::new(sandbox_host::HostSandbox::new(config.host_python.clone()));
        let probe = host.clone();
        tokio::spawn(async move {
            match probe.python().await {
                Ok(_) => report("host", Ok(())),
                Err(e) => tracing::info!(
                    executor = "host",
                    "executor host is usable for provided.* zip functions tagged stratus:executor=host; python3.* ones cannot run: {e}"
                ),
            }
        });
        out.push(host);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executors_parse_and_print() {
        for name in Executor::NAMES {
            let e: Executor = name.parse().expect("valid");
            assert_eq!(e.to_string(), *name);
        }
        let err = "runc".parse::<Executor>().expect_err("invalid");
        assert!(err.contains("oci, docker, host"), "{err}");
    }
}
