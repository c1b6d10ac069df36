//! The `docker` executor: runs instances of container images through the
//! Docker Engine API (with `bollard`), for machines where Docker is what
//! there is (Docker Desktop, or a host without an OCI runtime).
//!
//! The engine takes images from the caller's registry by digest
//! (`REGISTRY/REPOSITORY@sha256:…`, pulled once, with an optional registry
//! login passed as `X-Registry-Auth`). Each instance is one container:
//! the command line as the entrypoint, the complete environment, a memory
//! limit without swap, a read-only root with a size-limited tmpfs `/tmp`,
//! the host network by default (so the instance reaches a listener on the
//! host's loopback), no init process, no restart, no engine-side log file.
//! Its stdout and stderr arrive as bounded lines; its exit (code, OOM kill)
//! comes from the engine. Containers carry labels naming the instance and
//! the server that made them, so a restarted server removes what a crashed
//! one left behind.
//!
//! Deliberately not known here: Lambda. This crate knows images,
//! containers, limits and output lines.

mod instance;
mod lines;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, ResourcesUlimits,
};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, CreateImageOptions, ListContainersOptions,
    RemoveContainerOptions,
};
use futures::StreamExt;
use tokio::sync::OnceCell;

pub use instance::{DockerInstance, ExitInfo, OutputLine, OutputStream};

/// The engine's endpoint when none is configured.
pub const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";

/// Capabilities a root process in an instance keeps (the same small set
/// as the oci executor: its own files and users, nothing that reaches the
/// host).
const CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
];
/// Limits on open files and on processes/threads per instance.
const NOFILE: i64 = 1024;
const PIDS: i64 = 1024;
/// The engine refuses memory limits below 6 MiB.
const MIN_MEMORY_BYTES: u64 = 6 << 20;

/// Configuration of the executor. [`DockerExecutorConfig::new`] gives the
/// defaults.
#[derive(Debug, Clone)]
pub struct DockerExecutorConfig {
    /// `unix:///path`, `tcp://host:port` or `http://host:port`.
    pub endpoint: String,
    /// The registry the engine pulls from, `host:port` (a loopback address
    /// the engine trusts without TLS, e.g. `127.0.0.1:4566`).
    pub registry: String,
    /// `None`: containers use the host network (Linux), so an address on
    /// the host's loopback is theirs too. `Some(host)`: containers use the
    /// engine's default network and reach the host as `host` (e.g.
    /// `host.docker.internal` on Docker Desktop); the caller rewrites the
    /// addresses it hands its instances.
    pub host_alias: Option<String>,
    /// Prefix of the labels (`<prefix>.instance`, `<prefix>.server`).
    pub label_prefix: String,
    /// Names this server's containers (`<prefix>.server`); cleanup removes
    /// only containers carrying it.
    pub server_id: String,
    /// Prefix of container names (prefix + instance id).
    pub container_prefix: String,
    /// Output lines longer than this arrive in pieces.
    pub max_output_line_bytes: usize,
    /// Lines buffered between an instance and its consumer.
    pub output_channel_capacity: usize,
    /// Limit on the wait for the engine to answer a request (its headers;
    /// streams such as a pull's progress may run longer).
    pub request_timeout: Duration,
}

impl DockerExecutorConfig {
    pub fn new(registry: impl Into<String>, server_id: impl Into<String>) -> DockerExecutorConfig {
        DockerExecutorConfig {
            endpoint: DEFAULT_ENDPOINT.to_string(),
            registry: registry.into(),
            host_alias: None,
            label_prefix: "io.stratus".to_string(),
            server_id: server_id.into(),
            container_prefix: "stratus-".to_string(),
            max_output_line_bytes: 256 << 10,
            output_channel_capacity: 1024,
            request_timeout: Duration::from_secs(120),
        }
    }
}

/// An image in the configured registry, by manifest digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub repository: String,
    /// `sha256:<64 hex>`.
    pub manifest_digest: String,
}

/// A registry login for pulling (sent as `X-Registry-Auth`).
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// An instance to start.
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    /// Unique among live instances: letters, digits, `-` and `_`, at most
    /// 64 characters.
    pub instance_id: String,
    pub image: ImageRef,
    /// Login for pulling the image if it is not in the engine yet.
    pub auth: Option<RegistryAuth>,
    /// The final command line (entrypoint and command already resolved).
    pub args: Vec<String>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// Absolute path inside the image.
    pub working_dir: String,
    /// As an image's `USER`; the engine resolves it in the image. `None`
    /// is root.
    pub user: Option<String>,
    pub memory_limit_bytes: u64,
    /// Size of the instance's `/tmp` (a tmpfs).
    pub tmp_size_bytes: u64,
    /// Host directories bind-mounted read-only: (host path, absolute path
    /// in the container). The engine must see the host path (a local
    /// engine, or a Docker Desktop shared folder).
    pub read_only_dirs: Vec<(std::path::PathBuf, String)>,
}

/// Connecting to the engine failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach the Docker engine at {endpoint}: {message}")]
pub struct ConnectError {
    pub endpoint: String,
    pub message: String,
}

/// A request to the engine failed.
#[derive(Debug, thiserror::Error)]
#[error("the Docker engine could not {what}: {message}")]
pub struct EngineError {
    pub what: String,
    pub message: String,
}

/// Making an image available in the engine failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("invalid image reference: {0}")]
    InvalidImage(String),
    #[error("the Docker engine could not pull {image}: {message}")]
    Pull { image: String, message: String },
}

/// Starting an instance failed (before its process could run).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error("invalid instance: {0}")]
    InvalidSpec(String),
    #[error("instance {0} already exists")]
    AlreadyExists(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What the engine said, without bollard's wrapping.
pub(crate) fn engine_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => format!("{message} (HTTP {status_code})"),
        other => other.to_string(),
    }
}

fn engine_error(what: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> EngineError {
    let what = what.into();
    move |e| EngineError {
        what,
        message: engine_message(&e),
    }
}

fn status_of(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Runs image instances as Docker containers. Cheap to share behind an
/// `Arc`; all methods take `&self`.
pub struct DockerExecutor {
    docker: bollard::Docker,
    config: DockerExecutorConfig,
    engine_version: String,
    /// One pull at a time per image reference; a failed pull is retried by
    /// the next caller.
    pulled: Mutex<HashMap<String, Arc<OnceCell<()>>>>,
}

impl std::fmt::Debug for DockerExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerExecutor")
            .field("endpoint", &self.config.endpoint)
            .field("engine_version", &self.engine_version)
            .finish_non_exhaustive()
    }
}

impl DockerExecutor {
    /// Connects to the engine and agrees on an API version (the lower of
    /// the engine's and bollard's).
    pub async fn connect(config: DockerExecutorConfig) -> Result<DockerExecutor, ConnectError> {
        let fail = |message: String| ConnectError {
            endpoint: config.endpoint.clone(),
            message,
        };
        let docker = bollard::Docker::connect_with_host(&config.endpoint)
            .map_err(|e| fail(engine_message(&e)))?
            .with_timeout(config.request_timeout);
        let docker = tokio::time::timeout(config.request_timeout, docker.negotiate_version())
            .await
            .map_err(|_| fail("no answer".into()))?
            .map_err(|e| fail(engine_message(&e)))?;
        let version = docker
            .version()
            .await
            .map_err(|e| fail(engine_message(&e)))?;
        let engine_version = format!(
            "{} (API {})",
            version.version.as_deref().unwrap_or("unknown"),
            version.api_version.as_deref().unwrap_or("unknown")
        );
        Ok(DockerExecutor {
            docker,
            config,
            engine_version,
            pulled: Mutex::new(HashMap::new()),
        })
    }

    /// The engine's version and API version, for logs.
    pub fn engine_version(&self) -> &str {
        &self.engine_version
    }

    pub fn config(&self) -> &DockerExecutorConfig {
        &self.config
    }

    /// `REGISTRY/REPOSITORY@DIGEST`, the reference the engine pulls.
    pub fn image_reference(&self, image: &ImageRef) -> String {
        format!(
            "{}/{}@{}",
            self.config.registry, image.repository, image.manifest_digest
        )
    }

    /// Makes `image` available in the engine: pulled once (concurrent
    /// callers share the pull), skipped when the engine has it already.
    pub async fn prepare(
        &self,
        image: &ImageRef,
        auth: Option<&RegistryAuth>,
    ) -> Result<(), PullError> {
        validate_image(image)?;
        let reference = self.image_reference(image);
        let cell = self
            .pulled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reference.clone())
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.pull(&reference, auth))
            .await
            .map(|_| ())
    }

    async fn pull(&self, reference: &str, auth: Option<&RegistryAuth>) -> Result<(), PullError> {
        if self.docker.inspect_image(reference).await.is_ok() {
            return Ok(());
        }
        let fail = |message: String| PullError::Pull {
            image: reference.to_string(),
            message,
        };
        let started = std::time::Instant::now();
        let options = CreateImageOptions {
            from_image: Some(reference.to_string()),
            ..Default::default()
        };
        let credentials = auth.map(|a| DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.clone()),
            serveraddress: Some(self.config.registry.clone()),
            ..Default::default()
        });
        let mut progress = self.docker.create_image(Some(options), None, credentials);
        while let Some(item) = progress.next().await {
            item.map_err(|e| fail(engine_message(&e)))?;
        }
        self.docker.inspect_image(reference).await.map_err(|e| {
            fail(format!(
                "the image is not there after the pull: {}",
                engine_message(&e)
            ))
        })?;
        tracing::info!(image = %reference, elapsed_ms = started.elapsed().as_millis() as u64, "image pulled into the Docker engine");
        Ok(())
    }

    /// Forgets that `image` was pulled (the engine no longer has it).
    fn forget(&self, image: &ImageRef) {
        self.pulled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.image_reference(image));
    }

    /// Starts an instance: pulls its image if needed, creates the
    /// container, attaches to its output and starts it. Returns once the
    /// engine has started the process; a process that cannot be executed
    /// (e.g. a missing executable) fails here.
    pub async fn start(&self, spec: InstanceSpec) -> Result<DockerInstance, StartError> {
        validate(&spec)?;
        self.prepare(&spec.image, spec.auth.as_ref()).await?;
        let name = format!("{}{}", self.config.container_prefix, spec.instance_id);
        let body = self.container_body(&spec);
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let created = match self
            .docker
            .create_container(Some(options.clone()), body.clone())
            .await
        {
            // The image went away (e.g. `docker rmi`): pull it again, once.
            Err(e) if status_of(&e) == Some(404) => {
                self.forget(&spec.image);
                self.prepare(&spec.image, spec.auth.as_ref()).await?;
                self.docker.create_container(Some(options), body).await
            }
            other => other,
        };
        match created {
            Ok(_) => {}
            Err(e) if status_of(&e) == Some(409) => {
                return Err(StartError::AlreadyExists(spec.instance_id));
            }
            Err(e) => return Err(engine_error("create the container")(e).into()),
        }
        match self.attach_and_start(&name).await {
            Ok(attached) => Ok(instance::DockerInstance::spawn(
                self.docker.clone(),
                spec.instance_id,
                name,
                attached,
                self.config.max_output_line_bytes,
                self.config.output_channel_capacity.max(1),
            )),
            Err(e) => {
                instance::remove(&self.docker, &name).await;
                Err(e.into())
            }
        }
    }

    async fn attach_and_start(
        &self,
        name: &str,
    ) -> Result<bollard::container::AttachContainerResults, EngineError> {
        // Attached before the start, so that no output is missed.
        let attached = self
            .docker
            .attach_container(
                name,
                Some(AttachContainerOptions {
                    stream: true,
                    stdout: true,
                    stderr: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(engine_error("attach to the container's output"))?;
        self.docker
            .start_container(name, None)
            .await
            .map_err(engine_error("start the container"))?;
        Ok(attached)
    }

    fn container_body(&self, spec: &InstanceSpec) -> ContainerCreateBody {
        let c = &self.config;
        let labels = HashMap::from([
            (
                format!("{}.instance", c.label_prefix),
                spec.instance_id.clone(),
            ),
            (format!("{}.server", c.label_prefix), c.server_id.clone()),
        ]);
        let memory = i64::try_from(spec.memory_limit_bytes).unwrap_or(i64::MAX);
        let (network_mode, extra_hosts) = match &c.host_alias {
            None => ("host".to_string(), None),
            // Docker Desktop knows host.docker.internal; a Linux engine
            // (20.10+) needs to be told.
            Some(alias) if alias == "host.docker.internal" => (
                "default".to_string(),
                Some(vec![format!("{alias}:host-gateway")]),
            ),
            Some(_) => ("default".to_string(), None),
        };
        let host_config = HostConfig {
            memory: Some(memory),
            // Memory + swap equal to memory: no swap.
            memory_swap: Some(memory),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_string(),
                format!(
                    "rw,nosuid,nodev,mode=1777,size={}",
                    spec.tmp_size_bytes.max(1)
                ),
            )])),
            network_mode: Some(network_mode),
            extra_hosts,
            mounts: Some(
                spec.read_only_dirs
                    .iter()
                    .map(|(host, target)| Mount {
                        typ: Some(MountType::BIND),
                        source: Some(host.to_string_lossy().into_owned()),
                        target: Some(target.clone()),
                        read_only: Some(true),
                        ..Default::default()
                    })
                    .collect(),
            ),
            init: Some(false),
            auto_remove: Some(false),
            // Output is read through the attach stream; nothing on disk.
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".to_string()),
                config: None,
            }),
            cap_drop: Some(vec!["ALL".to_string()]),
            cap_add: Some(CAPABILITIES.iter().map(|c| c.to_string()).collect()),
            security_opt: Some(vec!["no-new-privileges".to_string()]),
            pids_limit: Some(PIDS),
            ulimits: Some(vec![ResourcesUlimits {
                name: Some("nofile".to_string()),
                soft: Some(NOFILE),
                hard: Some(NOFILE),
            }]),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(self.image_reference(&spec.image)),
            // The command line as it stands: the image's own entrypoint
            // and command are already folded in by the caller.
            entrypoint: Some(spec.args.clone()),
            cmd: Some(Vec::new()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: Some(spec.working_dir.clone()),
            user: spec.user.clone().filter(|u| !u.is_empty()),
            labels: Some(labels),
            attach_stdin: Some(false),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            open_stdin: Some(false),
            host_config: Some(host_config),
            ..Default::default()
        }
    }

    /// Removes the containers of this server (by its label) that a
    /// previous process left, running or not. Call once at startup,
    /// before starting instances. Returns how many were removed.
    pub async fn cleanup_leftovers(&self) -> Result<usize, EngineError> {
        let label = format!(
            "{}.server={}",
            self.config.label_prefix, self.config.server_id
        );
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_string(), vec![label])])),
            ..Default::default()
        };
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(engine_error("list containers"))?;
        let mut removed = 0;
        for c in containers {
            let Some(id) = c.id else { continue };
            match self
                .docker
                .remove_container(
                    &id,
                    Some(RemoveContainerOptions {
                        force: true,
                        ..Default::default()
                    }),
                )
                .await
            {
                Ok(()) => {
                    tracing::info!(container = %id, "removed a leftover container");
                    removed += 1;
                }
                Err(e) if status_of(&e) == Some(404) => {}
                Err(e) => return Err(engine_error(format!("remove container {id}"))(e)),
            }
        }
        Ok(removed)
    }
}

fn validate_image(image: &ImageRef) -> Result<(), PullError> {
    let repo_ok = !image.repository.is_empty()
        && image.repository.len() <= 256
        && image
            .repository
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b));
    let digest_ok = image
        .manifest_digest
        .strip_prefix("sha256:")
        .is_some_and(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
    if !repo_ok || !digest_ok {
        return Err(PullError::InvalidImage(format!(
            "{:?}@{:?}",
            image.repository, image.manifest_digest
        )));
    }
    Ok(())
}

fn validate(spec: &InstanceSpec) -> Result<(), StartError> {
    let id = &spec.instance_id;
    if id.is_empty()
        || id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(StartError::InvalidSpec(format!(
            "instance id {:?} must be 1-64 letters, digits, '-' or '_'",
            id.chars().take(80).collect::<String>()
        )));
    }
    if spec.args.is_empty() {
        return Err(StartError::InvalidSpec("the command line is empty".into()));
    }
    if !spec.working_dir.starts_with('/') {
        return Err(StartError::InvalidSpec(format!(
            "working directory {:?} is not absolute",
            spec.working_dir
        )));
    }
    if spec.memory_limit_bytes < MIN_MEMORY_BYTES {
        return Err(StartError::InvalidSpec(format!(
            "memory limit of {} bytes is below the engine's minimum of 6 MiB",
            spec.memory_limit_bytes
        )));
    }
    if spec.tmp_size_bytes == 0 {
        return Err(StartError::InvalidSpec("/tmp size is zero".into()));
    }
    if let Some((host, target)) = spec
        .read_only_dirs
        .iter()
        .find(|(host, target)| !host.is_absolute() || !target.starts_with('/'))
    {
        return Err(StartError::InvalidSpec(format!(
            "mount of {} at {target:?}: both paths must be absolute",
            host.display()
        )));
    }
    if let Some((k, _)) = spec
        .env
        .iter()
        .find(|(k, _)| k.is_empty() || k.contains('=') || k.contains('\0'))
    {
        return Err(StartError::InvalidSpec(format!(
            "environment variable name {k:?} is empty or has '='"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> InstanceSpec {
        InstanceSpec {
            instance_id: "abc123".into(),
            image: ImageRef {
                repository: "team/app".into(),
                manifest_digest: format!("sha256:{}", "a".repeat(64)),
            },
            auth: None,
            args: vec!["/bootstrap".into(), "x".into()],
            env: vec![("A".into(), "1".into())],
            working_dir: "/var/task".into(),
            user: Some("993:990".into()),
            memory_limit_bytes: 128 << 20,
            tmp_size_bytes: 512 << 20,
            read_only_dirs: vec![("/data/code/abc".into(), "/var/task".into())],
        }
    }

    #[test]
    fn specs_and_images_are_validated() {
        assert!(validate(&spec()).is_ok());
        let bad = |f: fn(&mut InstanceSpec)| {
            let mut s = spec();
            f(&mut s);
            assert!(validate(&s).is_err(), "{s:?}");
        };
        bad(|s| s.instance_id = "a/b".into());
        bad(|s| s.instance_id = String::new());
        bad(|s| s.args.clear());
        bad(|s| s.working_dir = "rel".into());
        bad(|s| s.memory_limit_bytes = 1 << 20);
        bad(|s| s.tmp_size_bytes = 0);
        bad(|s| s.env.push(("A=B".into(), "x".into())));
        bad(|s| s.read_only_dirs.push(("rel".into(), "/x".into())));
        let image = |repository: &str, digest: &str| ImageRef {
            repository: repository.into(),
            manifest_digest: digest.into(),
        };
        let good = format!("sha256:{}", "0f".repeat(32));
        assert!(validate_image(&image("a/b-c.d_e", &good)).is_ok());
        assert!(validate_image(&image("A", &good)).is_err());
        assert!(validate_image(&image("a b", &good)).is_err());
        assert!(validate_image(&image("", &good)).is_err());
        assert!(validate_image(&image("a", "sha256:00")).is_err());
        assert!(validate_image(&image("a", &format!("md5:{}", "0".repeat(64)))).is_err());
    }

    #[test]
    fn containers_are_limited_labelled_and_on_the_host_network() {
        let config = DockerExecutorConfig::new("127.0.0.1:4566", "srv1");
        let body = container_body_for(config.clone(), &spec());
        assert_eq!(
            body.image.as_deref(),
            Some(format!("127.0.0.1:4566/team/app@sha256:{}", "a".repeat(64)).as_str())
        );
        assert_eq!(
            body.entrypoint,
            Some(vec!["/bootstrap".to_string(), "x".to_string()])
        );
        assert_eq!(body.cmd, Some(vec![]));
        assert_eq!(body.env, Some(vec!["A=1".to_string()]));
        assert_eq!(body.user.as_deref(), Some("993:990"));
        let labels = body.labels.clone().unwrap_or_default();
        assert_eq!(labels["io.stratus.instance"], "abc123");
        assert_eq!(labels["io.stratus.server"], "srv1");
        let h = body.host_config.clone().unwrap_or_default();
        assert_eq!(h.memory, Some(128 << 20));
        assert_eq!(h.memory_swap, Some(128 << 20));
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(h.network_mode.as_deref(), Some("host"));
        assert_eq!(h.init, Some(false));
        assert_eq!(h.auto_remove, Some(false));
        assert_eq!(h.extra_hosts, None);
        let mounts = h.mounts.clone().unwrap_or_default();
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].source.as_deref(), Some("/data/code/abc"));
        assert_eq!(mounts[0].target.as_deref(), Some("/var/task"));
        assert_eq!(mounts[0].read_only, Some(true));
        let tmp = h.tmpfs.unwrap_or_default();
        assert!(tmp["/tmp"].contains("size=536870912"), "{tmp:?}");

        let desktop = DockerExecutorConfig {
            host_alias: Some("host.docker.internal".into()),
            ..config
        };
        let h = container_body_for(desktop, &spec())
            .host_config
            .unwrap_or_default();
        assert_eq!(h.network_mode.as_deref(), Some("default"));
        assert_eq!(
            h.extra_hosts,
            Some(vec!["host.docker.internal:host-gateway".to_string()])
        );
    }

    /// The body without an engine: a client that is never used.
    fn container_body_for(
        config: DockerExecutorConfig,
        spec: &InstanceSpec,
    ) -> ContainerCreateBody {
        let docker = bollard::Docker::connect_with_http(
            "http://127.0.0.1:9",
            1,
            bollard::API_DEFAULT_VERSION,
        )
        .expect("client");
        DockerExecutor {
            docker,
            config,
            engine_version: String::new(),
            pulled: Mutex::new(HashMap::new()),
        }
        .container_body(spec)
    }
}
