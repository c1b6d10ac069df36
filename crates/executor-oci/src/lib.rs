//! The `oci` executor: runs instances of container images under a real OCI
//! runtime (runc, or crun where it works).
//!
//! An image's layers are read from the blob store and unpacked once per
//! manifest digest into a cached root filesystem (whiteouts applied, hostile
//! tar entries refused). Each instance gets a bundle — a generated
//! `config.json` pointing at the shared, read-only root — and is run by
//! `runc run` with its own mount, pid, ipc and uts
//! namespaces, the host network (so it reaches its Runtime API on
//! loopback), a size-limited `/tmp`, and a cgroup memory limit whose OOM
//! kills are reported in [`ExitInfo`].
//!
//! Deliberately not known here: Lambda. This crate knows images, processes,
//! limits and output lines; what the process is for, and what an OOM kill
//! means to a caller, is the caller's.
//!
//! Layout of the state directory the caller hands over:
//! `rootfs/<manifest hex>/` unpacked images, `bundles/<container id>/` one
//! per live instance, `runtime/` the runtime's own state (`--root`), which
//! holds only our containers.

mod cgroup;
mod confined;
mod image;
mod instance;
#[allow(unsafe_code)]
mod output;
#[allow(unsafe_code)]
mod reaper;
mod rootfs;
mod runtime;
mod spec;
mod unpack;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use blobs::{BlobError, Digest, SharedBlobStore};

pub use image::{ImageConfig, ImageConfigError, ImageLayer, ImageSpec};
pub use instance::{ExitInfo, ExitStatus, OciInstance, OutputLine, OutputStream};
pub use output::{Output, TryRecvError};

use cgroup::MemoryCgroups;
use rootfs::RootfsCache;
use runtime::Runtime;

/// The runtime's JSON log inside a bundle.
const RUNTIME_LOG: &str = "runtime.log";
/// Where the runtime writes the container's init pid (in the bundle).
const PID_FILE: &str = "init.pid";
const INSTALL_HINT: &str =
    "install the Debian package runc (apt-get install runc) or use --executor docker";
const PROBE_EXECUTABLE: &str = "/stratus-runtime-probe-absent";

/// Where to look for a runtime when none is configured.
pub const DEFAULT_SEARCH_PATH: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Configuration of the executor. [`OciExecutorConfig::new`] gives the
/// defaults.
#[derive(Debug, Clone)]
pub struct OciExecutorConfig {
    /// A directory the executor owns (e.g. `<data-dir>/oci`).
    pub state_dir: PathBuf,
    /// The runtime binary; `None` picks the first of crun and runc found
    /// along `search_path` that can run a container on this machine.
    pub runtime: Option<PathBuf>,
    pub search_path: Vec<PathBuf>,
    /// Prefix of container ids and cgroup names; `cleanup_leftovers`
    /// removes containers that carry it.
    pub container_prefix: String,
    /// Host files bind-mounted read-only at the same path in every
    /// instance, when they exist on the host.
    pub host_files: Vec<PathBuf>,
    /// Limit on the bytes of regular files one image unpacks to.
    pub max_unpacked_bytes: u64,
    /// Output lines longer than this arrive in pieces.
    pub max_output_line_bytes: usize,
}

impl OciExecutorConfig {
    pub fn new(state_dir: impl Into<PathBuf>) -> OciExecutorConfig {
        OciExecutorConfig {
            state_dir: state_dir.into(),
            runtime: None,
            search_path: DEFAULT_SEARCH_PATH.iter().map(PathBuf::from).collect(),
            container_prefix: "stratus-".to_string(),
            host_files: vec!["/etc/resolv.conf".into(), "/etc/hosts".into()],
            // Lambda's limit on an image's uncompressed size.
            max_unpacked_bytes: 10 << 30,
            max_output_line_bytes: 256 << 10,
        }
    }
}

/// An instance to start.
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    /// Unique among live instances: letters, digits, `-` and `_`, at most
    /// 64 characters.
    pub instance_id: String,
    pub image: ImageSpec,
    /// The final command line (entrypoint and command already resolved).
    pub args: Vec<String>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// Absolute path inside the image.
    pub working_dir: String,
    /// As an image's `USER` (`name`, `uid`, `name:group`, `uid:gid`),
    /// resolved with the image's `/etc/passwd`; `None` is root.
    pub user: Option<String>,
    pub memory_limit_bytes: u64,
    /// Size of the instance's `/tmp` (a tmpfs; what it holds counts
    /// against the memory limit too).
    pub tmp_size_bytes: u64,
    /// Host directories mounted read-only into the instance:
    /// (host path, absolute path inside).
    pub read_only_dirs: Vec<(PathBuf, String)>,
}

/// Creating the executor or cleaning up after a previous process failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    #[error("no OCI runtime (crun or runc) found in {searched}; {INSTALL_HINT}")]
    NoRuntime { searched: String },
    #[error("no OCI runtime can run containers on this machine ({details}); {INSTALL_HINT}")]
    RuntimeUnusable { details: String },
    #[error("executor state directory i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("OCI runtime failed: {0}")]
    Runtime(String),
}

/// Unpacking an image failed.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error("image layer {0} is not in the blob store")]
    BlobMissing(Digest),
    #[error(
        "image layer {digest} has media type {media_type}: zstd-compressed layers are unsupported"
    )]
    UnsupportedMediaType { digest: Digest, media_type: String },
    #[error("reading an image layer failed: {0}")]
    Blob(#[source] BlobError),
    #[error("image layer {digest} cannot be unpacked: {message}")]
    Layer { digest: Digest, message: String },
    #[error("the image unpacks to more than the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("image cache i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Starting an instance failed (before its process could run).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error("invalid instance: {0}")]
    InvalidSpec(String),
    #[error("instance {0} already exists")]
    AlreadyExists(String),
    #[error("cannot run as the image's user: {0}")]
    User(String),
    #[error("instance bundle i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run the OCI runtime {runtime}: {source}")]
    Spawn {
        runtime: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What [`OciExecutor::cleanup_leftovers`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Leftovers {
    pub containers: usize,
    pub bundles: usize,
    pub partial_unpacks: usize,
}

/// Runs image instances under an OCI runtime. Cheap to share behind an
/// `Arc`; all methods take `&self`.
pub struct OciExecutor {
    runtime: Arc<Runtime>,
    cgroups: Arc<MemoryCgroups>,
    rootfs: RootfsCache,
    bundles: PathBuf,
    prefix: String,
    host_files: Vec<PathBuf>,
    max_output_line_bytes: usize,
}

impl std::fmt::Debug for OciExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciExecutor")
            .field("runtime", &self.runtime.path)
            .field("bundles", &self.bundles)
            .finish_non_exhaustive()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ExecutorError + '_ {
    move |source| ExecutorError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl OciExecutor {
    /// Sets up the state directory and picks the runtime: the configured
    /// one, or the first of crun and runc that runs a probe container here
    /// (a machine may have a runtime that cannot handle its cgroup layout).
    /// Takes a few tens of milliseconds per probed runtime.
    pub async fn new(
        config: OciExecutorConfig,
        blobs: SharedBlobStore,
    ) -> Result<OciExecutor, ExecutorError> {
        let state = &config.state_dir;
        let bundles = state.join("bundles");
        let runtime_root = state.join("runtime");
        for dir in [&bundles, &runtime_root] {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let host_files: Vec<PathBuf> = config
            .host_files
            .iter()
            .filter(|f| f.is_absolute() && f.is_file())
            .cloned()
            .collect();
        let mount_files = host_files.iter().map(|f| f.display().to_string()).collect();
        let rootfs_dir = state.join("rootfs");
        let rootfs = RootfsCache::open(
            rootfs_dir.clone(),
            blobs,
            config.max_unpacked_bytes,
            mount_files,
        )
        .map_err(io_err(&rootfs_dir))?;
        let cgroups = Arc::new(MemoryCgroups::detect());
        if *cgroups == MemoryCgroups::Unknown {
            tracing::warn!("no memory cgroup found; OOM kills and memory use will not be reported");
        }

        let candidates = match &config.runtime {
            Some(path) => vec![path.clone()],
            None => runtime::candidates(&config.search_path),
        };
        if candidates.is_empty() {
            let searched = config
                .search_path
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(":");
            return Err(ExecutorError::NoRuntime { searched });
        }
        let mut executor = OciExecutor {
            runtime: Arc::new(Runtime {
                path: PathBuf::new(),
                root: runtime_root.clone(),
            }),
            cgroups,
            rootfs,
            bundles,
            prefix: config.container_prefix,
            host_files,
            max_output_line_bytes: config.max_output_line_bytes,
        };
        let mut failures = Vec::new();
        for path in candidates {
            executor.runtime = Arc::new(Runtime {
                path: path.clone(),
                root: runtime_root.clone(),
            });
            match executor.probe().await {
                Ok(()) => {
                    tracing::info!(runtime = %path.display(), "OCI runtime works");
                    return Ok(executor);
                }
                Err(why) => {
                    tracing::warn!(runtime = %path.display(), why, "OCI runtime cannot run containers here");
                    failures.push(format!("{}: {why}", path.display()));
                }
            }
        }
        Err(ExecutorError::RuntimeUnusable {
            details: failures.join("; "),
        })
    }

    /// The runtime binary in use.
    pub fn runtime_path(&self) -> &Path {
        &self.runtime.path
    }

    /// Runs a container whose executable does not exist: a working runtime
    /// sets up namespaces, mounts and the cgroup, then fails to exec and
    /// says so. A runtime that cannot cope with the machine fails earlier
    /// or (crun on some cgroup v1 hosts) exits 0 without running anything.
    async fn probe(&self) -> Result<(), String> {
        let id = format!(
            "{}probe-{}",
            self.prefix,
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let bundle = self.bundles.join(&id);
        let rootfs = bundle.join("rootfs");
        let result = async {
            std::fs::create_dir_all(&rootfs).map_err(|e| e.to_string())?;
            let files: Vec<String> = self
                .host_files
                .iter()
                .map(|f| f.display().to_string())
                .collect();
            let files: Vec<&str> = files.iter().map(String::as_str).collect();
            unpack::make_mount_points(&rootfs, &files).map_err(|e| e.to_string())?;
            let args = vec![PROBE_EXECUTABLE.to_string()];
            let config = spec::RuntimeConfig {
                rootfs: &rootfs,
                args: &args,
                env: &[],
                cwd: "/",
                uid: 0,
                gid: 0,
                memory_limit_bytes: 64 << 20,
                swap_limit: self.cgroups.swap_limit_supported(),
                tmp_size_bytes: 1 << 20,
                cgroups_path: &id,
                host_files: &self.host_files,
                read_only_dirs: &[],
            };
            write_config(&bundle, &config).map_err(|e| e.to_string())?;
            let log = bundle.join(RUNTIME_LOG);
            let mut cmd = self.runtime.run_command(&bundle, &id, &log, false);
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            let out = tokio::time::timeout(std::time::Duration::from_secs(20), cmd.output())
                .await
                .map_err(|_| "the probe container did not finish within 20s".to_string())?
                .map_err(|e| format!("cannot run it: {e}"))?;
            let log = std::fs::read(&log).unwrap_or_default();
            let said = format!(
                "{} {}",
                runtime::log_errors(&log).unwrap_or_default(),
                String::from_utf8_lossy(&out.stderr)
            );
            if out.status.success() {
                return Err("it exited 0 without running the process".to_string());
            }
            if said.contains(PROBE_EXECUTABLE) {
                Ok(())
            } else {
                Err(format!("{}: {}", out.status, said.trim()))
            }
        }
        .await;
        let _ = self.runtime.delete_force(&id).await;
        let _ = std::fs::remove_dir_all(&bundle);
        result
    }

    /// The unpacked root filesystem of `image`: unpacked on first use (one
    /// unpack per manifest digest, concurrent callers wait for it), then
    /// cached across restarts.
    pub async fn prepare(&self, image: &ImageSpec) -> Result<PathBuf, PrepareError> {
        self.rootfs.prepare(image).await
    }

    /// Starts an instance: prepares its image, writes its bundle and runs
    /// the runtime. Returns as soon as the runtime process is running; a
    /// failure of the runtime to start the process (e.g. a missing
    /// executable) shows in [`ExitInfo::runtime_error`].
    pub async fn start(&self, spec: InstanceSpec) -> Result<OciInstance, StartError> {
        self.launch(spec, false).await
    }

    /// Creates an instance without starting its process: everything
    /// [`OciExecutor::start`] does except the last step, which
    /// [`OciInstance::begin`] takes later (a `runc start`, about a quarter
    /// of a `runc run`). The created container holds the runtime's parked
    /// init process and nothing else.
    pub async fn create(&self, spec: InstanceSpec) -> Result<OciInstance, StartError> {
        self.launch(spec, true).await
    }

    async fn launch(
        &self,
        spec: InstanceSpec,
        create_only: bool,
    ) -> Result<OciInstance, StartError> {
        validate(&spec)?;
        let rootfs = self.prepare(&spec.image).await?;
        let (uid, gid) = match spec.user.as_deref().filter(|u| !u.is_empty()) {
            None => (0, 0),
            Some(user) => {
                let (rootfs, user) = (rootfs.clone(), user.to_string());
                tokio::task::spawn_blocking(move || spec::resolve_user(&rootfs, Some(&user)))
                    .await
                    .map_err(|e| StartError::User(e.to_string()))?
                    .map_err(StartError::User)?
            }
        };
        let container_id = format!("{}{}", self.prefix, spec.instance_id);
        let bundle = self.bundles.join(&container_id);
        let bundle_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StartError::Io { path, source }
        };
        match tokio::fs::create_dir(&bundle).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StartError::AlreadyExists(spec.instance_id));
            }
            Err(e) => return Err(bundle_err(&bundle)(e)),
        }
        let config = spec::RuntimeConfig {
            rootfs: &rootfs,
            args: &spec.args,
            env: &spec.env,
            cwd: &spec.working_dir,
            uid,
            gid,
            memory_limit_bytes: spec.memory_limit_bytes,
            swap_limit: self.cgroups.swap_limit_supported(),
            tmp_size_bytes: spec.tmp_size_bytes,
            cgroups_path: &container_id,
            host_files: &self.host_files,
            read_only_dirs: &spec.read_only_dirs,
        };
        let json = serde_json::to_vec(&config.to_json()).map_err(std::io::Error::other);
        let written = match json {
            Ok(json) => tokio::fs::write(bundle.join("config.json"), json).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            let _ = tokio::fs::remove_dir_all(&bundle).await;
            return Err(bundle_err(&bundle)(e));
        }

        let args = self.runtime.detached_args(
            create_only,
            &bundle,
            &container_id,
            &bundle.join(RUNTIME_LOG),
            &bundle.join(PID_FILE),
        );
        let spawned =
            reaper::spawn(&self.runtime.path, &args, &bundle.join(PID_FILE)).and_then(|s| {
                let output = output::Output::new(s.stdout, s.stderr, self.max_output_line_bytes)?;
                Ok((s.process, output, s.runtime_done))
            });
        let (process, output, runtime_done) = match spawned {
            Ok(spawned) => spawned,
            Err(source) => {
                let _ = tokio::fs::remove_dir_all(&bundle).await;
                return Err(StartError::Spawn {
                    runtime: self.runtime.path.clone(),
                    source,
                });
            }
        };
        // The reaper writes the runtime's exit code into this pipe: kept
        // open (a write into a closed pipe would kill the reaper).
        let runtime_done = if create_only {
            // `begin` needs the container to exist: wait for `runc create`.
            // A failure shows in the runtime log, which `wait` reads.
            let code = reaper::runtime_exit(runtime_done).await;
            if code != Some(0) {
                tracing::debug!(instance = %spec.instance_id, ?code, "the runtime could not create the container");
            }
            None
        } else {
            Some(runtime_done)
        };
        tracing::debug!(instance = %spec.instance_id, container = %container_id, "instance started");
        Ok(OciInstance {
            id: spec.instance_id,
            cgroup_dir: self.cgroups.dir_for(&container_id),
            container_id,
            runtime: self.runtime.clone(),
            cgroups: self.cgroups.clone(),
            bundle,
            process: Some(process),
            _runtime_done: runtime_done,
            created_only: create_only,
            output: Some(output),
            status: None,
            stats: None,
            peak_file: std::sync::OnceLock::new(),
            runtime_error: None,
            cleaned: false,
        })
    }

    /// Removes what a previous process that did not shut down cleanly left:
    /// its containers (killed and deleted), their bundles, half-unpacked
    /// images. Call once at startup, before starting instances.
    pub async fn cleanup_leftovers(&self) -> Result<Leftovers, ExecutorError> {
        let mut left = Leftovers::default();
        for id in self.runtime.list().await.map_err(ExecutorError::Runtime)? {
            if id.starts_with(&self.prefix) {
                self.runtime
                    .delete_force(&id)
                    .await
                    .map_err(ExecutorError::Runtime)?;
                tracing::info!(container = %id, "removed a leftover container");
                left.containers += 1;
            }
        }
        let entries = std::fs::read_dir(&self.bundles).map_err(io_err(&self.bundles))?;
        for entry in entries {
            let path = entry.map_err(io_err(&self.bundles))?.path();
            std::fs::remove_dir_all(&path).map_err(io_err(&path))?;
            left.bundles += 1;
        }
        left.partial_unpacks = self
            .rootfs
            .sweep_temporaries()
            .map_err(io_err(self.rootfs.dir()))?;
        Ok(left)
    }
}

fn write_config(bundle: &Path, config: &spec::RuntimeConfig<'_>) -> std::io::Result<()> {
    let json = serde_json::to_vec(&config.to_json()).map_err(std::io::Error::other)?;
    std::fs::write(bundle.join("config.json"), json)
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
    if spec.memory_limit_bytes < (4 << 20) {
        return Err(StartError::InvalidSpec(format!(
            "memory limit of {} bytes is below 4 MiB",
            spec.memory_limit_bytes
        )));
    }
    for (_, destination) in &spec.read_only_dirs {
        if !destination.starts_with('/') || destination.split('/').any(|c| c == "..") {
            return Err(StartError::InvalidSpec(format!(
                "mount destination {destination:?} must be an absolute path without '..'"
            )));
        }
    }
    if spec.tmp_size_bytes == 0 {
        return Err(StartError::InvalidSpec("/tmp size is zero".into()));
    }
    if let Some((k, _)) = spec
        .env
        .iter()
        .find(|(k, _)| k.is_empty() || k.contains('='))
    {
        return Err(StartError::InvalidSpec(format!(
            "environment variable name {k:?} is empty or has '='"
        )));
    }
    Ok(())
}
