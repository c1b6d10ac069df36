//! A running instance: the `runc run` child, its output, its exit.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cgroup::{MemoryCgroups, MemoryStats};
use crate::output::Output;
use crate::reaper::Reaper;
use crate::runtime::{self, Runtime};

/// How long `kill` keeps asking the runtime before forcing the issue.
const KILL_GRACE: Duration = Duration::from_secs(5);
const KILL_RETRY: Duration = Duration::from_millis(100);

/// Which of the instance's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// One line of instance output, without its newline. Lines longer than the
/// configured maximum arrive in pieces; invalid UTF-8 is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub stream: OutputStream,
    pub line: String,
}

/// How the instance's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it (the runtime reports this as 128+n, so a process
    /// that itself exits with 129..=192 reads as a signal too).
    Signal(i32),
    /// The exit status could not be learned.
    Unknown,
}

impl ExitStatus {
    fn from_runtime(status: std::process::ExitStatus) -> ExitStatus {
        match (status.code(), status.signal()) {
            (Some(code), _) if (129..=128 + 64).contains(&code) => ExitStatus::Signal(code - 128),
            (Some(code), _) => ExitStatus::Code(code),
            (None, Some(signal)) => ExitStatus::Signal(signal),
            (None, None) => ExitStatus::Unknown,
        }
    }
}

/// What is known once an instance is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    pub status: ExitStatus,
    /// The kernel's OOM killer killed a process of the instance: it hit its
    /// memory limit (Lambda's `Runtime.OutOfMemory`).
    pub oom_killed: bool,
    /// Peak memory use of the instance's cgroup.
    pub max_memory_used_bytes: Option<u64>,
    /// The runtime's own error if it failed to create or start the process
    /// (e.g. the executable does not exist in the image).
    pub runtime_error: Option<String>,
}

/// An instance run by the OCI runtime. Dropping it removes the container
/// (best effort, on a helper thread); [`OciInstance::kill`] does the same
/// and waits for it.
pub struct OciInstance {
    pub(crate) id: String,
    pub(crate) container_id: String,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) cgroups: Arc<MemoryCgroups>,
    pub(crate) cgroup_dir: Option<PathBuf>,
    pub(crate) bundle: PathBuf,
    /// The reaper of `runc run --detach` (see [`crate::reaper`]); it exits
    /// with the container's init.
    pub(crate) process: Option<Reaper>,
    /// Made by `create`, not begun yet.
    pub(crate) created_only: bool,
    /// Read end of the reaper's runtime-exit pipe, held open.
    pub(crate) _runtime_done: Option<std::os::fd::OwnedFd>,
    pub(crate) output: Option<Output>,
    pub(crate) status: Option<ExitStatus>,
    pub(crate) stats: Option<MemoryStats>,
    /// The cgroup's peak-usage file, opened on first read and re-read in
    /// place (a path lookup in cgroupfs per invoke costs more than the read).
    pub(crate) peak_file: std::sync::OnceLock<Option<std::fs::File>>,
    pub(crate) runtime_error: Option<String>,
    pub(crate) cleaned: bool,
}

impl std::fmt::Debug for OciInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciInstance")
            .field("id", &self.id)
            .field("container_id", &self.container_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl OciInstance {
    /// The instance id the caller chose.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The runtime's container id (the configured prefix + the instance id).
    pub fn container_id(&self) -> &str {
        &self.container_id
    }

    /// The instance's stdout and stderr lines, once, read straight from
    /// its pipes: a consumer that stops reading (without dropping them)
    /// stalls the instance's writes once a pipe is full. Ends when both
    /// streams reach their end.
    pub fn take_output(&mut self) -> Option<Output> {
        self.output.take()
    }

    /// Starts the process of an instance made by
    /// [`crate::OciExecutor::create`] (nothing to do for one made by
    /// `start`, or already begun). Returns once the runtime has started it.
    pub async fn begin(&mut self) -> Result<(), String> {
        if !std::mem::take(&mut self.created_only) {
            return Ok(());
        }
        self.runtime.start(&self.container_id).await
    }

    /// Waits for the instance's process to end and removes the container.
    /// Cancel-safe and idempotent: later calls return the same answer.
    pub async fn wait(&mut self) -> ExitInfo {
        if self.status.is_none() {
            let waited = match self.process.as_mut() {
                Some(process) => process.wait().await,
                None => Err(std::io::Error::other("no process")),
            };
            let status = match waited {
                Ok(status) => ExitStatus::from_runtime(status),
                Err(e) => {
                    tracing::warn!(instance = %self.id, error = %e, "waiting for the runtime failed");
                    ExitStatus::Unknown
                }
            };
            self.status = Some(status);
        }
        if self.stats.is_none() {
            // The container was run with --keep: its cgroup is still there.
            self.stats = Some(self.read_stats());
            let log = tokio::fs::read(self.bundle.join(crate::RUNTIME_LOG))
                .await
                .unwrap_or_default();
            self.runtime_error = runtime::log_errors(&log);
        }
        if !self.cleaned {
            if let Err(e) = self.runtime.delete_force(&self.container_id).await {
                tracing::warn!(instance = %self.id, error = %e, "removing the container failed");
            }
            match tokio::fs::remove_dir_all(&self.bundle).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(instance = %self.id, error = %e, "removing the bundle failed")
                }
            }
            self.cleaned = true;
        }
        let stats = self.stats.unwrap_or_default();
        ExitInfo {
            status: self.status.unwrap_or(ExitStatus::Unknown),
            oom_killed: stats.oom_kills.is_some_and(|n| n > 0),
            max_memory_used_bytes: stats.max_usage_bytes,
            runtime_error: self.runtime_error.clone(),
        }
    }

    /// Kills every process of the instance (SIGKILL) and removes the
    /// container. Idempotent; [`OciInstance::wait`] afterwards returns the
    /// exit.
    pub async fn kill(&mut self) -> ExitInfo {
        if self.status.is_none() {
            let deadline = Instant::now() + KILL_GRACE;
            loop {
                // Fails harmlessly while the runtime is still creating the
                // container; the next round catches it.
                let _ = self.runtime.kill(&self.container_id).await;
                let Some(process) = self.process.as_mut() else {
                    self.status = Some(ExitStatus::Unknown);
                    break;
                };
                match tokio::time::timeout(KILL_RETRY, process.wait()).await {
                    Ok(result) => {
                        self.status =
                            Some(result.map_or(ExitStatus::Unknown, ExitStatus::from_runtime));
                        break;
                    }
                    Err(_) if Instant::now() < deadline => continue,
                    Err(_) => {
                        tracing::warn!(instance = %self.id, "runtime did not stop the instance; forcing");
                        let _ = self.runtime.delete_force(&self.container_id).await;
                        process.start_kill();
                        let result = process.wait().await;
                        self.status =
                            Some(result.map_or(ExitStatus::Unknown, ExitStatus::from_runtime));
                        break;
                    }
                }
            }
        }
        self.wait().await
    }

    /// Peak memory use so far (or at exit).
    pub fn max_memory_used_bytes(&self) -> Option<u64> {
        use std::os::unix::fs::FileExt;
        if let Some(stats) = &self.stats {
            return stats.max_usage_bytes;
        }
        let file = self.peak_file.get_or_init(|| {
            let dir = self.cgroup_dir.as_ref()?;
            std::fs::File::open(dir.join(self.cgroups.peak_file_name()?)).ok()
        });
        let mut buf = [0u8; 32];
        let n = file.as_ref()?.read_at(&mut buf, 0).ok()?;
        std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
    }

    /// A reader of the peak memory use that works from any thread (it
    /// holds its own handle on the cgroup's file, opened on first use: the
    /// runtime creates the cgroup after [`crate::OciExecutor::start`]
    /// returns); `None` without a memory cgroup. It reads `None` once the
    /// cgroup is gone.
    pub fn memory_probe(&self) -> Option<impl Fn() -> Option<u64> + Send + Sync + 'static> {
        use std::os::unix::fs::FileExt;
        let path = self
            .cgroup_dir
            .as_ref()?
            .join(self.cgroups.peak_file_name()?);
        let file = std::sync::OnceLock::new();
        Some(move || {
            let file = match file.get() {
                Some(file) => file,
                None => {
                    let opened = std::fs::File::open(&path).ok()?;
                    file.get_or_init(|| opened)
                }
            };
            let mut buf = [0u8; 32];
            let n = file.read_at(&mut buf, 0).ok()?;
            std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
        })
    }

    /// Whether the OOM killer has struck in the instance so far. A process
    /// other than the main one may have been killed while the instance runs
    /// on; the caller decides whether to replace it.
    pub fn oom_killed(&self) -> bool {
        let stats = match &self.stats {
            Some(stats) => *stats,
            None => self.read_stats(),
        };
        stats.oom_kills.is_some_and(|n| n > 0)
    }

    fn read_stats(&self) -> MemoryStats {
        match &self.cgroup_dir {
            Some(dir) => self.cgroups.read_stats(dir),
            None => MemoryStats::default(),
        }
    }
}

impl Drop for OciInstance {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        // A thread, not a task: it must also work while the async runtime
        // shuts down. `delete --force` kills the container if it still runs.
        let runtime = self.runtime.clone();
        let id = self.container_id.clone();
        let bundle = self.bundle.clone();
        let process = self.process.take();
        let spawned = std::thread::Builder::new()
            .name("executor-oci-cleanup".into())
            .spawn(move || {
                runtime.delete_force_blocking(&id);
                let _ = std::fs::remove_dir_all(&bundle);
                // The reaper exits with the container; reap it.
                if let Some(process) = process {
                    process.wait_blocking();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(instance = %self.id, error = %e, "cannot clean up a dropped instance");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_exit_codes_map_to_signals() {
        let s = |raw: i32| ExitStatus::from_runtime(std::process::ExitStatus::from_raw(raw));
        assert_eq!(s(0), ExitStatus::Code(0));
        assert_eq!(s(1 << 8), ExitStatus::Code(1));
        assert_eq!(s(137 << 8), ExitStatus::Signal(9));
        assert_eq!(s(9), ExitStatus::Signal(9));
    }
}
