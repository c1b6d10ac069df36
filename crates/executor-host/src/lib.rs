//! Runs instances as plain local processes of the current user: the
//! `host` executor, the fast inner loop for development.
//!
//! There is no isolation. An instance is one process started with exactly
//! the environment, arguments and working directory it is given, in a
//! process group of its own, so that stopping it (SIGKILL to the group)
//! also stops whatever it started. When the main process ends, the rest of
//! its group is killed too: an instance lives and dies with its main
//! process. A process that leaves the group (`setsid`) escapes that.
//!
//! Memory is measured, not limited: the peak is the main process's
//! `VmHWM` from `/proc/<pid>/status`. A limit would need cgroups (which is
//! what the `oci` executor is for); `RLIMIT_AS` is no substitute, since
//! runtimes such as Go and the JVM reserve far more address space than
//! they use and would fail to start.
//!
//! This crate knows processes, not Lambda: what to run for a runtime is
//! the caller's business. It reads no environment or files of its own.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustix::io::Errno;
use rustix::process::{kill_process_group, waitid, Pid, Signal, WaitId, WaitIdOptions};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, watch};

const READ_CHUNK: usize = 64 << 10;
/// `/proc/<pid>/status` is about 1.5 KB.
const STATUS_BUF: usize = 8 << 10;

/// Configuration of the executor. [`HostExecutorConfig::default`] gives
/// the defaults.
#[derive(Debug, Clone)]
pub struct HostExecutorConfig {
    /// Output lines longer than this arrive in pieces.
    pub max_output_line_bytes: usize,
    /// Lines buffered between an instance and its consumer.
    pub output_channel_capacity: usize,
}

impl Default for HostExecutorConfig {
    fn default() -> Self {
        HostExecutorConfig {
            max_output_line_bytes: 256 << 10,
            output_channel_capacity: 1024,
        }
    }
}

/// A process to start.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Names the instance in logs.
    pub instance_id: String,
    /// The executable; an absolute path (a relative one is resolved
    /// against the caller's working directory, not `cwd`).
    pub program: PathBuf,
    /// Arguments after the program.
    pub args: Vec<String>,
    /// The complete environment: nothing of the caller's is inherited.
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot run {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch the process: {0}")]
    Watch(#[source] std::io::Error),
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// One line of output, without its newline. Lines longer than the
/// configured maximum arrive in pieces; invalid UTF-8 is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    pub stream: OutputStream,
    pub line: String,
}

/// How the main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
    /// The exit status could not be learned.
    Unknown,
}

impl ExitStatus {
    fn of(status: std::io::Result<std::process::ExitStatus>) -> ExitStatus {
        use std::os::unix::process::ExitStatusExt;
        match status {
            Ok(s) => match (s.code(), s.signal()) {
                (Some(code), _) => ExitStatus::Code(code),
                (None, Some(signal)) => ExitStatus::Signal(signal),
                (None, None) => ExitStatus::Unknown,
            },
            Err(_) => ExitStatus::Unknown,
        }
    }
}

/// Starts processes.
#[derive(Debug, Clone, Default)]
pub struct HostExecutor {
    config: HostExecutorConfig,
}

impl HostExecutor {
    pub fn new(config: HostExecutorConfig) -> HostExecutor {
        HostExecutor { config }
    }

    /// Starts `spec` in a new process group, stdin from `/dev/null`,
    /// stdout and stderr read as lines. Must be called within a Tokio
    /// runtime.
    pub fn start(&self, spec: ProcessSpec) -> Result<HostInstance, StartError> {
        let mut cmd = std::process::Command::new(&spec.program);
        cmd.args(&spec.args)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&spec.cwd)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| StartError::Spawn {
            program: spec.program.display().to_string(),
            source,
        })?;
        let pid = Pid::from_child(&child);
        let shared = Arc::new(Shared {
            pid,
            reaped: Mutex::new(false),
        });
        // Opened while the child cannot have been reaped: the file keeps
        // naming this process even if its pid is reused later.
        let status_file = std::fs::File::open(format!("/proc/{}/status", pid.as_raw_nonzero()))
            .map_err(|e| tracing::debug!(error = %e, "cannot open the process status"))
            .ok();

        let (tx, rx) = mpsc::channel(self.config.output_channel_capacity.max(1));
        let max = self.config.max_output_line_bytes;
        let pipes = (|| -> std::io::Result<()> {
            if let Some(out) = child.stdout.take() {
                let out = tokio::process::ChildStdout::from_std(out)?;
                tokio::spawn(pump_lines(out, OutputStream::Stdout, tx.clone(), max));
            }
            if let Some(err) = child.stderr.take() {
                let err = tokio::process::ChildStderr::from_std(err)?;
                tokio::spawn(pump_lines(err, OutputStream::Stderr, tx, max));
            }
            Ok(())
        })();

        if let Err(e) = pipes {
            shared.kill_group();
            let _ = child.wait();
            return Err(StartError::Watch(e));
        }
        let (exit_tx, exit_rx) = watch::channel(None);
        // The child goes to the waiter thread once it runs, so that it
        // can still be reaped here if the thread cannot start.
        let (child_tx, child_rx) = std::sync::mpsc::channel::<std::process::Child>();
        let waiter = shared.clone();
        let id = spec.instance_id.clone();
        let spawned = std::thread::Builder::new()
            .name("executor-host-wait".into())
            .stack_size(64 << 10)
            .spawn(move || {
                if let Ok(child) = child_rx.recv() {
                    let status = waiter.wait_and_reap(child, &id);
                    let _ = exit_tx.send(Some(status));
                }
            });
        if let Err(e) = spawned {
            shared.kill_group();
            let _ = child.wait();
            return Err(StartError::Watch(e));
        }
        // The thread only ends after receiving.
        let _ = child_tx.send(child);
        tracing::debug!(instance = %spec.instance_id, pid = pid.as_raw_nonzero(), "instance started");
        Ok(HostInstance {
            id: spec.instance_id,
            shared,
            exit: exit_rx,
            output: Some(rx),
            status_file: Mutex::new(status_file),
            peak: AtomicU64::new(0),
        })
    }
}

/// What the waiter thread and the instance share. The main process's pid
/// names the group; it stays reserved until the process is reaped, and
/// `reaped` (under its lock) says whether signalling it is still safe.
struct Shared {
    pid: Pid,
    reaped: Mutex<bool>,
}

impl Shared {
    fn reaped(&self) -> std::sync::MutexGuard<'_, bool> {
        self.reaped.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// SIGKILL to the whole group, unless the main process was reaped
    /// (its pid, and so the group id, may belong to someone else now).
    fn kill_group(&self) {
        let reaped = self.reaped();
        if !*reaped {
            match kill_process_group(self.pid, Signal::KILL) {
                Ok(()) | Err(Errno::SRCH) => {}
                Err(e) => {
                    tracing::warn!(pid = self.pid.as_raw_nonzero(), error = %e, "cannot kill the process group")
                }
            }
        }
    }

    /// Blocks until the main process exits, kills the rest of its group
    /// while the group id is still reserved, then reaps it.
    fn wait_and_reap(&self, mut child: std::process::Child, id: &str) -> ExitStatus {
        loop {
            match waitid(
                WaitId::Pid(self.pid),
                WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
            ) {
                Ok(_) => break,
                Err(Errno::INTR) => continue,
                Err(e) => {
                    tracing::warn!(instance = %id, error = %e, "waiting for the process failed");
                    break;
                }
            }
        }
        let mut reaped = self.reaped();
        if !*reaped {
            match kill_process_group(self.pid, Signal::KILL) {
                Ok(()) | Err(Errno::SRCH) => {}
                Err(e) => {
                    tracing::warn!(instance = %id, error = %e, "cannot kill the process group")
                }
            }
        }
        let status = ExitStatus::of(child.wait());
        *reaped = true;
        status
    }
}

/// A running process and its group. Dropping it kills the group.
pub struct HostInstance {
    id: String,
    shared: Arc<Shared>,
    exit: watch::Receiver<Option<ExitStatus>>,
    output: Option<mpsc::Receiver<OutputLine>>,
    status_file: Mutex<Option<std::fs::File>>,
    /// The highest `VmHWM` read so far, in bytes.
    peak: AtomicU64,
}

impl std::fmt::Debug for HostInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostInstance")
            .field("id", &self.id)
            .field("pid", &self.shared.pid.as_raw_nonzero())
            .finish_non_exhaustive()
    }
}

impl HostInstance {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The main process's id (also its group's).
    pub fn pid(&self) -> u32 {
        self.shared.pid.as_raw_nonzero().get().unsigned_abs()
    }

    /// The stdout and stderr lines, once. The channel is bounded: a
    /// consumer that stops reading (without dropping the receiver) stalls
    /// the process's writes. It closes when both streams reach their end.
    pub fn take_output(&mut self) -> Option<mpsc::Receiver<OutputLine>> {
        self.output.take()
    }

    /// Waits for the main process to end (the rest of its group is killed
    /// then). Cancel-safe and idempotent.
    pub async fn wait(&mut self) -> ExitStatus {
        match self.exit.wait_for(Option::is_some).await {
            Ok(status) => status.unwrap_or(ExitStatus::Unknown),
            // The waiter thread is gone without a word: it cannot be.
            Err(_) => ExitStatus::Unknown,
        }
    }

    /// Kills the whole group (SIGKILL) and waits for the main process.
    /// Idempotent.
    pub async fn kill(&mut self) -> ExitStatus {
        self.shared.kill_group();
        self.wait().await
    }

    /// Peak resident memory of the main process (`VmHWM`), read now; once
    /// the process is gone, the last value read (`None` if none was).
    pub fn max_memory_used_bytes(&self) -> Option<u64> {
        let mut file = self.status_file.lock().unwrap_or_else(|e| e.into_inner());
        let now = file.as_mut().and_then(read_vm_hwm);
        if now.is_none() {
            // Gone (or unreadable): no use trying again.
            *file = None;
        }
        let peak = match now {
            Some(n) => self.peak.fetch_max(n, Ordering::Relaxed).max(n),
            None => self.peak.load(Ordering::Relaxed),
        };
        (peak > 0).then_some(peak)
    }
}

impl Drop for HostInstance {
    fn drop(&mut self) {
        // The waiter thread reaps the main process once it is dead.
        self.shared.kill_group();
    }
}

/// `VmHWM` (in bytes) from an open `/proc/<pid>/status`.
fn read_vm_hwm(file: &mut std::fs::File) -> Option<u64> {
    file.seek(SeekFrom::Start(0)).ok()?;
    let mut buf = Vec::with_capacity(STATUS_BUF);
    file.take(STATUS_BUF as u64).read_to_end(&mut buf).ok()?;
    parse_vm_hwm(&String::from_utf8_lossy(&buf))
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kb = line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    Some(kb * 1024)
}

/// Where pumped lines go; forgets the receiver once it is gone.
struct LineSink {
    stream: OutputStream,
    tx: Option<mpsc::Sender<OutputLine>>,
}

impl LineSink {
    async fn send(&mut self, bytes: &[u8]) {
        if let Some(tx) = &self.tx {
            let line = OutputLine {
                stream: self.stream,
                line: String::from_utf8_lossy(bytes).into_owned(),
            };
            if tx.send(line).await.is_err() {
                self.tx = None;
            }
        }
    }

    /// Sends `line` in pieces of at most `max` bytes, not cutting a UTF-8
    /// character where avoidable.
    async fn send_pieces(&mut self, mut line: &[u8], max: usize) {
        while line.len() > max {
            let cut = utf8_cut(&line[..max]);
            self.send(&line[..cut]).await;
            line = &line[cut..];
        }
        self.send(line).await;
    }
}

/// Reads `reader` to its end, sending lines of at most `max_line` bytes.
/// Keeps reading after the receiver is gone, so the process never blocks
/// on a full pipe. Holds at most `max_line` bytes of a line.
async fn pump_lines(
    mut reader: impl AsyncRead + Unpin,
    stream: OutputStream,
    tx: mpsc::Sender<OutputLine>,
    max_line: usize,
) {
    let max_line = max_line.max(4);
    let mut sink = LineSink {
        stream,
        tx: Some(tx),
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let n = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut data = &chunk[..n];
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            pending.extend_from_slice(&data[..pos]);
            data = &data[pos + 1..];
            sink.send_pieces(&pending, max_line).await;
            pending.clear();
        }
        pending.extend_from_slice(data);
        while pending.len() > max_line {
            let cut = utf8_cut(&pending[..max_line]);
            sink.send(&pending[..cut]).await;
            pending.drain(..cut);
        }
    }
    if !pending.is_empty() {
        sink.send_pieces(&pending, max_line).await;
    }
}

/// Where to cut `window` so a trailing incomplete UTF-8 character moves to
/// the next piece.
fn utf8_cut(window: &[u8]) -> usize {
    match std::str::from_utf8(window) {
        Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => e.valid_up_to(),
        _ => window.len(),
    }
}

#[cfg(test)]
mod tests;
