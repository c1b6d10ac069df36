//! One instance's log stream: the function's output and the platform's
//! `START`/`END`/`REPORT` lines, in order, in one file, plus the tail of
//! the current invocation for `X-Amz-Log-Result`.
//!
//! The state sits behind a short lock. A task per instance logs the output
//! as it comes; the invoking task writes `START` and `END`/`REPORT` itself,
//! `END` after taking the output that is ready at that moment: with
//! immediate output (see [`crate::InstanceOutput::is_immediate`]) that is
//! everything the function printed before its answer, so its lines land
//! between its invocation's `START` and `END`, with no hand-off to another
//! task on the invoke path.
//!
//! Lines are stored as `<epoch ms>\t<line>`; they reach the file at most
//! [`FLUSH_DELAY`] after they were logged, in one `write` for whatever was
//! logged meanwhile (a long invocation's `START` and output are visible
//! while it runs; under load one `write` covers many invocations).

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use tokio::sync::watch;

use crate::{OutputStream, TryLine};

/// Bytes of log kept for `X-Amz-Log-Result`.
pub(crate) const TAIL_BYTES: usize = 4096;
/// Output of an instance whose output is not immediate is taken as logged
/// once none arrived for this long…
const OUTPUT_QUIET: Duration = Duration::from_millis(10);
/// …or after this long in all (a function whose background task prints
/// without pause); also how long the end of an exited instance's output is
/// waited for.
const OUTPUT_SETTLE_MAX: Duration = Duration::from_millis(500);
/// Output lines the logging task takes in one go before it yields.
const OUTPUT_BATCH: usize = 1024;
/// Logged lines reach the file at most this long after they were logged.
const FLUSH_DELAY: Duration = Duration::from_millis(20);
/// Ready output lines taken before a platform line, at most: everything
/// printed before it, unless a function prints without pause.
const READY_MAX: usize = 100_000;

/// A handle on an instance's log stream. Clones share it.
#[derive(Clone)]
pub(crate) struct InstanceLog {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for InstanceLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InstanceLog")
    }
}

struct Shared {
    state: Mutex<State>,
    /// Output lines logged so far, and whether the output has ended.
    progress: watch::Sender<(u64, bool)>,
}

struct State {
    file: Option<std::io::BufWriter<std::fs::File>>,
    tail: String,
    dirty: bool,
    /// Between `START` and `END`.
    invoking: bool,
    /// The following task will flush within [`FLUSH_DELAY`].
    flush_armed: bool,
    /// Wakes the following task (to arm its flush timer).
    follower: Option<std::task::Waker>,
    output: Option<OutputStream>,
    immediate: bool,
}

impl InstanceLog {
    /// Opens (creates) the log stream's file.
    pub(crate) async fn open(path: &Path) -> InstanceLog {
        let owned = path.to_path_buf();
        let file = tokio::task::spawn_blocking(move || {
            if let Some(dir) = owned.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&owned)
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Err(e) = &file {
            tracing::warn!(path = %path.display(), error = %e, "cannot open the log stream");
        }
        InstanceLog {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    file: file
                        .ok()
                        .map(|f| std::io::BufWriter::with_capacity(64 * 1024, f)),
                    tail: String::new(),
                    dirty: false,
                    invoking: false,
                    flush_armed: false,
                    follower: None,
                    output: None,
                    immediate: false,
                }),
                progress: watch::channel((0, false)).0,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Logs the instance's output from now on (a task until it ends).
    pub(crate) fn follow(&self, output: OutputStream) {
        {
            let mut state = self.state();
            state.immediate = output.is_immediate();
            state.output = Some(output);
        }
        tokio::spawn(follow_output(self.shared.clone()));
    }

    /// A platform line, after the output that is ready now.
    pub(crate) fn line(&self, line: &str) {
        let mut state = self.state();
        state.take_ready();
        state.write(line);
        if !state.invoking {
            state.flush();
        }
    }

    /// Forgets the tail (a new instance starts).
    pub(crate) fn begin_tail(&self) {
        self.state().tail.clear();
    }

    /// Starts an invocation; the tail starts with `line` (its `START`).
    /// Output not logged yet stays after it: it was printed after the
    /// previous answer, and Lambda, which freezes an instance between
    /// invocations, shows such lines in the next invocation too.
    pub(crate) fn begin_invocation(&self, line: &str) {
        let mut state = self.state();
        state.tail.clear();
        state.invoking = true;
        state.write(line);
        state.arm_flush();
    }

    /// Ends an invocation with `lines` (its `END` and `REPORT`), after the
    /// output printed before them. The stream is written out within
    /// [`FLUSH_DELAY`] (under load, one `write` for many invocations).
    /// Returns the tail when asked.
    pub(crate) fn end_invocation(&self, lines: &[String], tail: bool) -> Option<String> {
        let mut state = self.state();
        state.take_ready();
        for line in lines {
            state.write(line);
        }
        state.invoking = false;
        if state.output.is_some() {
            state.arm_flush();
        } else {
            // Nobody follows the output any more: write it out now.
            state.flush();
        }
        tail.then(|| state.tail_text())
    }

    /// The tail so far (at most [`TAIL_BYTES`]).
    pub(crate) fn tail(&self) -> String {
        let mut state = self.state();
        state.take_ready();
        state.tail_text()
    }

    /// Waits until the lines the instance printed so far are in the log.
    ///
    /// With `ended` (the process exited) this waits for the end of the
    /// output. Otherwise, with immediate output, what is ready now is
    /// everything printed before the answer; without, a line printed just
    /// before the answer may still be on its way, so it waits until no
    /// line has come for [`OUTPUT_QUIET`]. Either way for at most
    /// [`OUTPUT_SETTLE_MAX`].
    pub(crate) async fn settle(&self, ended: bool) {
        if !ended && self.state().immediate {
            self.state().take_ready();
            return;
        }
        let mut progress = self.shared.progress.subscribe();
        let deadline = tokio::time::Instant::now() + OUTPUT_SETTLE_MAX;
        loop {
            if self.state().take_ready() {
                return;
            }
            if progress.borrow_and_update().1 {
                return;
            }
            let until = if ended {
                deadline
            } else {
                (tokio::time::Instant::now() + OUTPUT_QUIET).min(deadline)
            };
            match tokio::time::timeout_at(until, progress.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => {
                    self.state().take_ready();
                    return;
                }
            }
        }
    }
}

impl State {
    fn write(&mut self, line: &str) {
        let now = time::OffsetDateTime::now_utc();
        let ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
        if let Some(f) = self.file.as_mut() {
            let _ = writeln!(f, "{ms}\t{line}");
            self.dirty = true;
        }
        self.tail.push_str(line);
        self.tail.push('\n');
        if self.tail.len() > 4 * TAIL_BYTES {
            let cut = floor_char_boundary(&self.tail, self.tail.len() - TAIL_BYTES);
            self.tail.drain(..cut);
        }
    }

    /// Logs the output lines that are ready now. True once the output has
    /// ended.
    fn take_ready(&mut self) -> bool {
        for _ in 0..READY_MAX {
            let Some(output) = self.output.as_mut() else {
                return true;
            };
            match output.try_line() {
                TryLine::Line(line) => self.write(&line.line),
                TryLine::Empty => return false,
                TryLine::Ended => {
                    self.output = None;
                    return true;
                }
            }
        }
        false
    }

    /// Has the following task write the stream out within
    /// [`FLUSH_DELAY`] (one wake-up per period, not per line).
    fn arm_flush(&mut self) {
        if !self.flush_armed {
            if let Some(follower) = self.follower.take() {
                self.flush_armed = true;
                follower.wake();
            }
        }
    }

    fn tail_text(&self) -> String {
        let start = floor_char_boundary(&self.tail, self.tail.len().saturating_sub(TAIL_BYTES));
        self.tail[start..].to_string()
    }

    fn flush(&mut self) {
        if self.dirty {
            if let Some(f) = self.file.as_mut() {
                let _ = f.flush();
            }
            self.dirty = false;
        }
    }
}

/// Logs the output as it comes, until it ends, and writes what was logged
/// out within [`FLUSH_DELAY`] (the end of an invocation writes it at once).
async fn follow_output(shared: Arc<Shared>) {
    let mut logged = 0u64;
    let mut timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        let before = logged;
        let mut outcome = Poll::Pending;
        for _ in 0..OUTPUT_BATCH {
            let Some(output) = state.output.as_mut() else {
                outcome = Poll::Ready(());
                break;
            };
            match output.poll_line(cx) {
                Poll::Ready(Some(line)) => {
                    state.write(&line.line);
                    logged += 1;
                }
                Poll::Ready(None) => {
                    state.output = None;
                    outcome = Poll::Ready(());
                    break;
                }
                Poll::Pending => break,
            }
        }
        if outcome.is_pending() && logged - before == OUTPUT_BATCH as u64 {
            // More may be waiting: come back after others had their turn.
            cx.waker().wake_by_ref();
        }
        if outcome.is_ready() {
            state.flush();
        } else {
            if state.dirty {
                state.flush_armed = true;
            }
            if state.flush_armed {
                let due = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(FLUSH_DELAY)));
                if due.as_mut().poll(cx).is_ready() {
                    timer = None;
                    state.flush();
                    state.flush_armed = false;
                }
            }
            state.follower = Some(cx.waker().clone());
        }
        let ended = outcome.is_ready();
        drop(state);
        if logged != before || ended {
            shared.progress.send_replace((logged, ended));
        }
        outcome
    })
    .await;
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{InstanceOutput, OutputLine};
    use std::collections::VecDeque;
    use std::task::{Context, Waker};

    type Feed = Arc<Mutex<(VecDeque<Option<String>>, Option<Waker>)>>;

    /// Output fed by the test: `ready` lines can be taken at once; a
    /// `None` marks the end.
    #[derive(Default)]
    struct Fed {
        lines: Feed,
    }

    impl Fed {
        fn push(&self, line: Option<&str>) {
            let mut l = self.lines.lock().unwrap();
            l.0.push_back(line.map(str::to_string));
            if let Some(w) = l.1.take() {
                w.wake();
            }
        }
    }

    struct FedOutput(Feed);

    impl InstanceOutput for FedOutput {
        fn poll_line(&mut self, cx: &mut Context<'_>) -> Poll<Option<OutputLine>> {
            match self.try_line() {
                TryLine::Line(l) => Poll::Ready(Some(l)),
                TryLine::Ended => Poll::Ready(None),
                TryLine::Empty => {
                    self.0.lock().unwrap().1 = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
        fn try_line(&mut self) -> TryLine {
            let mut l = self.0.lock().unwrap();
            match l.0.front() {
                None => TryLine::Empty,
                Some(None) => TryLine::Ended,
                Some(Some(_)) => TryLine::Line(OutputLine {
                    line: l.0.pop_front().flatten().unwrap_or_default(),
                }),
            }
        }
        fn is_immediate(&self) -> bool {
            true
        }
    }

    fn file_lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split_once('\t').map_or(l, |(_, l)| l).to_string())
            .collect()
    }

    async fn last_line_becomes(path: &Path, line: &str) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while file_lines(path).last().map(String::as_str) != Some(line) {
                tokio::time::sleep(FLUSH_DELAY).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{line:?} is not written out: {:?}", file_lines(path)));
    }

    #[tokio::test]
    async fn ready_output_goes_between_start_and_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b.log");
        let log = InstanceLog::open(&path).await;
        let fed = Fed::default();
        fed.push(Some("init line"));
        log.follow(Box::new(FedOutput(fed.lines.clone())));
        last_line_becomes(&path, "init line").await;
        log.begin_invocation("START 1");
        // A running invocation's START reaches the file by itself.
        last_line_becomes(&path, "START 1").await;
        fed.push(Some("during 1"));
        fed.push(Some("also during 1"));
        let tail = log.end_invocation(&["END 1".into(), "REPORT 1".into()], true);
        assert_eq!(
            tail.as_deref(),
            Some("START 1\nduring 1\nalso during 1\nEND 1\nREPORT 1\n")
        );
        last_line_becomes(&path, "REPORT 1").await;
        assert_eq!(
            file_lines(&path),
            [
                "init line",
                "START 1",
                "during 1",
                "also during 1",
                "END 1",
                "REPORT 1"
            ]
        );
        // Between invocations, output reaches the file by itself.
        fed.push(Some("stray"));
        last_line_becomes(&path, "stray").await;
        fed.push(None);
        log.settle(true).await;
        assert!(
            log.state().output.is_none(),
            "the end of the output is seen"
        );
    }

    #[tokio::test]
    async fn the_tail_keeps_the_last_4_kb() {
        let dir = tempfile::tempdir().unwrap();
        let log = InstanceLog::open(&dir.path().join("t.log")).await;
        log.begin_invocation("START");
        for i in 0..1000 {
            log.line(&format!("line {i} of some length to fill the tail"));
        }
        let tail = log
            .end_invocation(&["END".into()], true)
            .unwrap_or_default();
        assert!(tail.len() <= TAIL_BYTES);
        assert!(tail.ends_with("line 999 of some length to fill the tail\nEND\n"));
    }
}
