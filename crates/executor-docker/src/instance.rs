//! A running instance: its container, output, exit and memory use.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bollard::container::{AttachContainerResults, LogOutput};
use bollard::query_parameters::{
    KillContainerOptions, RemoveContainerOptions, StatsOptions, WaitContainerOptions,
};
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::lines::LineSplitter;

/// How long `kill` waits for the engine to report the killed container's
/// exit before removing it regardless.
const KILL_WAIT: Duration = Duration::from_secs(10);

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

/// How an instance ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExitInfo {
    /// The exit code, unless a signal ended the process.
    pub code: Option<i32>,
    /// The signal that ended it (the engine reports 128+n, so a process
    /// that itself exits with 129..=192 reads as a signal too).
    pub signal: Option<i32>,
    /// The kernel's OOM killer struck in the container (it hit its memory
    /// limit).
    pub oom_killed: bool,
    /// The engine's error about the container, if it had one.
    pub error: Option<String>,
}

impl ExitInfo {
    fn from_status(status: Option<i64>) -> ExitInfo {
        let (code, signal) = match status.and_then(|s| i32::try_from(s).ok()) {
            Some(c) if (129..=128 + 64).contains(&c) => (None, Some(c - 128)),
            Some(c) => (Some(c), None),
            None => (None, None),
        };
        ExitInfo {
            code,
            signal,
            ..ExitInfo::default()
        }
    }
}

/// An instance run as a Docker container. Dropping it removes the
/// container (best effort, in a spawned task); [`DockerInstance::kill`]
/// does the same and waits for it.
pub struct DockerInstance {
    id: String,
    container: String,
    docker: bollard::Docker,
    output: Option<mpsc::Receiver<OutputLine>>,
    exit: watch::Receiver<Option<ExitInfo>>,
    /// Peak memory use seen so far, in bytes; 0 until the first sample.
    max_memory: Arc<AtomicU64>,
    /// The container is gone from the engine.
    removed: Arc<AtomicBool>,
    stats: JoinHandle<()>,
}

impl std::fmt::Debug for DockerInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerInstance")
            .field("id", &self.id)
            .field("container", &self.container)
            .finish_non_exhaustive()
    }
}

impl DockerInstance {
    /// Starts the tasks that read a started container's output, memory
    /// use and exit.
    pub(crate) fn spawn(
        docker: bollard::Docker,
        id: String,
        container: String,
        attached: AttachContainerResults,
        max_line: usize,
        capacity: usize,
    ) -> DockerInstance {
        let (tx, rx) = mpsc::channel(capacity);
        // Nothing is written to the container's stdin.
        drop(attached.input);
        tokio::spawn(pump_output(attached.output, tx, max_line));
        let max_memory = Arc::new(AtomicU64::new(0));
        let stats = tokio::spawn(watch_memory(
            docker.clone(),
            container.clone(),
            max_memory.clone(),
        ));
        let removed = Arc::new(AtomicBool::new(false));
        let (exit_tx, exit) = watch::channel(None);
        tokio::spawn(watch_exit(
            docker.clone(),
            container.clone(),
            removed.clone(),
            exit_tx,
        ));
        tracing::debug!(instance = %id, %container, "instance started");
        DockerInstance {
            id,
            container,
            docker,
            output: Some(rx),
            exit,
            max_memory,
            removed,
            stats,
        }
    }

    /// The instance id the caller chose.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The container's name (the configured prefix + the instance id).
    pub fn container_name(&self) -> &str {
        &self.container
    }

    /// The instance's stdout and stderr lines, once. The channel is
    /// bounded; it closes when the container's output ends.
    pub fn take_output(&mut self) -> Option<mpsc::Receiver<OutputLine>> {
        self.output.take()
    }

    /// Waits for the container to end; it is removed by then. Cancel-safe
    /// and idempotent.
    pub async fn wait(&mut self) -> ExitInfo {
        let mut exit = self.exit.clone();
        let info = match exit.wait_for(Option::is_some).await {
            Ok(info) => info.clone().unwrap_or_default(),
            // The watching task is gone without an answer (the runtime is
            // shutting down).
            Err(_) => ExitInfo::default(),
        };
        info
    }

    /// Kills the container (SIGKILL) and removes it. Idempotent.
    pub async fn kill(&mut self) -> ExitInfo {
        if self.exit.borrow().is_none() {
            let killed = self
                .docker
                .kill_container(
                    &self.container,
                    Some(KillContainerOptions {
                        signal: "KILL".to_string(),
                    }),
                )
                .await;
            if let Err(e) = killed {
                // 404/409: it is gone or not running any more.
                tracing::debug!(instance = %self.id, error = %crate::engine_message(&e), "kill");
            }
            if tokio::time::timeout(KILL_WAIT, self.wait()).await.is_err() {
                tracing::warn!(instance = %self.id, "the engine did not report the killed container's exit; removing it");
            }
        }
        if !self.removed.load(Ordering::Acquire) {
            remove(&self.docker, &self.container).await;
            self.removed.store(true, Ordering::Release);
        }
        self.exit.borrow().clone().unwrap_or_default()
    }

    /// Peak memory use so far (sampled about once a second by the engine),
    /// or `None` before the first sample.
    pub fn max_memory_used_bytes(&self) -> Option<u64> {
        Some(self.max_memory.load(Ordering::Relaxed)).filter(|&b| b > 0)
    }
}

impl Drop for DockerInstance {
    fn drop(&mut self) {
        self.stats.abort();
        if self.removed.load(Ordering::Acquire) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let docker = self.docker.clone();
                let container = self.container.clone();
                handle.spawn(async move { remove(&docker, &container).await });
            }
            Err(_) => {
                tracing::warn!(instance = %self.id, container = %self.container, "cannot remove a dropped instance's container outside the async runtime; the next start removes it");
            }
        }
    }
}

/// Removes a container, killing it if it runs; a container already gone
/// is fine.
pub(crate) async fn remove(docker: &bollard::Docker, container: &str) {
    let options = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    match docker.remove_container(container, Some(options)).await {
        Ok(()) => {}
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        // 409: removal already in progress.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => {}
        Err(e) => {
            tracing::warn!(%container, error = %crate::engine_message(&e), "removing the container failed")
        }
    }
}

/// Waits for the container to stop, learns how (exit code, OOM kill),
/// removes it and reports.
async fn watch_exit(
    docker: bollard::Docker,
    container: String,
    removed: Arc<AtomicBool>,
    exit: watch::Sender<Option<ExitInfo>>,
) {
    let options = WaitContainerOptions {
        condition: "not-running".to_string(),
    };
    let mut waiting = docker.wait_container(&container, Some(options));
    let status = match waiting.next().await {
        Some(Ok(r)) => Some(r.status_code),
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Some(code),
        Some(Err(e)) => {
            tracing::warn!(%container, error = %crate::engine_message(&e), "waiting for the container failed");
            None
        }
        None => None,
    };
    drop(waiting);
    let state = docker
        .inspect_container(&container, None)
        .await
        .ok()
        .and_then(|i| i.state);
    let mut info = ExitInfo::from_status(status.or(state.as_ref().and_then(|s| s.exit_code)));
    if let Some(state) = state {
        info.oom_killed = state.oom_killed.unwrap_or(false);
        info.error = state.error.filter(|e| !e.is_empty());
    }
    remove(&docker, &container).await;
    removed.store(true, Ordering::Release);
    tracing::debug!(%container, ?info, "instance exited");
    let _ = exit.send(Some(info));
}

/// Follows the engine's memory samples of the container until it stops.
async fn watch_memory(docker: bollard::Docker, container: String, max: Arc<AtomicU64>) {
    let options = StatsOptions {
        stream: true,
        one_shot: false,
    };
    let mut samples = docker.stats(&container, Some(options));
    while let Some(Ok(sample)) = samples.next().await {
        if let Some(m) = sample.memory_stats {
            // cgroup v1 keeps the peak; v2 only the current use.
            let peak = m.max_usage.unwrap_or(0).max(m.usage.unwrap_or(0));
            max.fetch_max(peak, Ordering::Relaxed);
        }
    }
}

/// Splits the attach stream into lines per stream. Keeps reading after the
/// receiver is gone, so the container never blocks on its output.
async fn pump_output(
    mut output: std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>,
    >,
    tx: mpsc::Sender<OutputLine>,
    max_line: usize,
) {
    let mut tx = Some(tx);
    let mut out = LineSplitter::new(max_line);
    let mut err = LineSplitter::new(max_line);
    async fn send(
        tx: &mut Option<mpsc::Sender<OutputLine>>,
        stream: OutputStream,
        lines: Vec<String>,
    ) {
        for line in lines {
            let Some(sender) = tx else { return };
            if sender.send(OutputLine { stream, line }).await.is_err() {
                *tx = None;
            }
        }
    }
    while let Some(Ok(chunk)) = output.next().await {
        match chunk {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                send(&mut tx, OutputStream::Stdout, out.push(&message)).await
            }
            LogOutput::StdErr { message } => {
                send(&mut tx, OutputStream::Stderr, err.push(&message)).await
            }
            LogOutput::StdIn { .. } => {}
        }
    }
    send(&mut tx, OutputStream::Stdout, out.finish()).await;
    send(&mut tx, OutputStream::Stderr, err.finish()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_exit_statuses_map_to_codes_and_signals() {
        let s = |status: Option<i64>| {
            let i = ExitInfo::from_status(status);
            (i.code, i.signal)
        };
        assert_eq!(s(Some(0)), (Some(0), None));
        assert_eq!(s(Some(3)), (Some(3), None));
        assert_eq!(s(Some(137)), (None, Some(9)));
        assert_eq!(s(Some(255)), (Some(255), None));
        assert_eq!(s(None), (None, None));
    }

    #[tokio::test]
    async fn output_is_split_per_stream_and_drained_without_a_reader() {
        let chunks = || {
            vec![
                Ok(LogOutput::StdOut {
                    message: "a\nb".into(),
                }),
                Ok(LogOutput::StdErr {
                    message: "e1\n".into(),
                }),
                Ok(LogOutput::StdOut {
                    message: "c\n".into(),
                }),
            ]
        };
        let (tx, mut rx) = mpsc::channel(10);
        pump_output(Box::pin(futures::stream::iter(chunks())), tx, 100).await;
        let mut got = Vec::new();
        while let Some(l) = rx.recv().await {
            got.push((l.stream, l.line));
        }
        assert_eq!(
            got,
            [
                (OutputStream::Stdout, "a".to_string()),
                (OutputStream::Stderr, "e1".to_string()),
                (OutputStream::Stdout, "bc".to_string()),
            ]
        );
        let (tx, rx) = mpsc::channel(1);
        drop(rx);
        pump_output(Box::pin(futures::stream::iter(chunks())), tx, 100).await;
    }
}
