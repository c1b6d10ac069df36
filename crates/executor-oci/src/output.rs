//! An instance's output, read straight from its stdout and stderr pipes.
//!
//! There is no reading task in between: whoever polls [`Output`] reads the
//! pipes, and every poll first tries a read, whatever the reactor last
//! said. So a poll that finds nothing proves that everything the instance
//! wrote before the poll began has been handed out: a caller that knows
//! the function printed a line before it answered gets that line by
//! taking lines until nothing is ready (see [`Output::try_recv`]).
//! An instance whose output nobody reads blocks once a pipe is full, as
//! any process writing to a pipe does.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
pub use tokio::sync::mpsc::error::TryRecvError;

use crate::instance::{OutputLine, OutputStream};

const READ_CHUNK: usize = 64 << 10;

/// The lines an instance prints on stdout and stderr, in the order they
/// are read; ends when both pipes reach their end. Lines longer than the
/// configured maximum arrive in pieces; invalid UTF-8 is replaced.
pub struct Output {
    pipes: [Option<Pipe>; 2],
    ready: VecDeque<OutputLine>,
    max_line: usize,
    chunk: Box<[u8]>,
}

struct Pipe {
    fd: AsyncFd<OwnedFd>,
    stream: OutputStream,
    /// Bytes of a line not ended yet.
    pending: Vec<u8>,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
    }
}

impl Output {
    /// Reads these (non-blocking) pipe read ends. Must be called inside a
    /// Tokio runtime.
    pub(crate) fn new(stdout: OwnedFd, stderr: OwnedFd, max_line: usize) -> io::Result<Output> {
        let pipe = |fd, stream| -> io::Result<Option<Pipe>> {
            // SAFETY: an `OwnedFd` stays open, and is the same descriptor,
            // until the `AsyncFd` that owns it is dropped.
            let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
            Ok(Some(Pipe {
                fd,
                stream,
                pending: Vec::new(),
            }))
        };
        Ok(Output {
            pipes: [
                pipe(stdout, OutputStream::Stdout)?,
                pipe(stderr, OutputStream::Stderr)?,
            ],
            ready: VecDeque::new(),
            max_line: max_line.max(4),
            chunk: vec![0u8; READ_CHUNK].into_boxed_slice(),
        })
    }

    /// The next line; `None` once both streams have ended.
    pub async fn recv(&mut self) -> Option<OutputLine> {
        std::future::poll_fn(|cx| self.poll_line(cx)).await
    }

    /// A line that can be read now. Never registers for a wake-up, so a
    /// task waiting in [`Output::recv`] (or polling the stream) elsewhere
    /// stays registered.
    pub fn try_recv(&mut self) -> Result<OutputLine, TryRecvError> {
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Ok(line);
            }
            if self.pipes.iter().all(Option::is_none) {
                return Err(TryRecvError::Disconnected);
            }
            if !self.read_now() {
                return Err(TryRecvError::Empty);
            }
        }
    }

    /// One read on each open pipe, whatever the reactor knows. False when
    /// neither had anything.
    fn read_now(&mut self) -> bool {
        let mut progressed = false;
        for slot in &mut self.pipes {
            let Some(pipe) = slot.as_mut() else { continue };
            match read(pipe.fd.get_ref(), &mut self.chunk) {
                Ok(0) => {
                    pipe.finish(&mut self.ready, self.max_line);
                    *slot = None;
                    progressed = true;
                }
                Ok(n) => {
                    pipe.take(&self.chunk[..n], &mut self.ready, self.max_line);
                    progressed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => progressed = true,
                Err(_) => {
                    pipe.finish(&mut self.ready, self.max_line);
                    *slot = None;
                    progressed = true;
                }
            }
        }
        progressed
    }

    /// Waits through the reactor: a pipe is read when it is known to be
    /// readable, and its readiness cleared when the read finds nothing.
    fn poll_line(&mut self, cx: &mut Context<'_>) -> Poll<Option<OutputLine>> {
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Poll::Ready(Some(line));
            }
            if self.pipes.iter().all(Option::is_none) {
                return Poll::Ready(None);
            }
            let mut progressed = false;
            for slot in &mut self.pipes {
                let Some(pipe) = slot.as_mut() else { continue };
                let mut guard = match pipe.fd.poll_read_ready(cx) {
                    Poll::Pending => continue,
                    Poll::Ready(Ok(guard)) => guard,
                    Poll::Ready(Err(_)) => {
                        pipe.finish(&mut self.ready, self.max_line);
                        *slot = None;
                        progressed = true;
                        continue;
                    }
                };
                match read(guard.get_inner(), &mut self.chunk) {
                    Ok(0) => {
                        drop(guard);
                        pipe.finish(&mut self.ready, self.max_line);
                        *slot = None;
                    }
                    Ok(n) => {
                        drop(guard);
                        pipe.take(&self.chunk[..n], &mut self.ready, self.max_line);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // Stale readiness: cleared, then polled again (which
                        // registers the wake-up).
                        guard.clear_ready();
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        drop(guard);
                        pipe.finish(&mut self.ready, self.max_line);
                        *slot = None;
                    }
                }
                progressed = true;
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    }
}

impl Stream for Output {
    type Item = OutputLine;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<OutputLine>> {
        self.get_mut().poll_line(cx)
    }
}

impl Pipe {
    /// Splits newly read bytes into lines.
    fn take(&mut self, mut data: &[u8], out: &mut VecDeque<OutputLine>, max: usize) {
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            self.pending.extend_from_slice(&data[..pos]);
            data = &data[pos + 1..];
            for piece in split_line(&self.pending, max) {
                out.push_back(self.line(piece));
            }
            self.pending.clear();
        }
        self.pending.extend_from_slice(data);
        while self.pending.len() > max {
            let cut = utf8_cut(&self.pending[..max]);
            let line = self.line(&self.pending[..cut]);
            out.push_back(line);
            self.pending.drain(..cut);
        }
    }

    /// The stream ended: an unfinished last line is a line too.
    fn finish(&mut self, out: &mut VecDeque<OutputLine>, max: usize) {
        if !self.pending.is_empty() {
            for piece in split_line(&self.pending, max) {
                out.push_back(self.line(piece));
            }
            self.pending.clear();
        }
    }

    fn line(&self, bytes: &[u8]) -> OutputLine {
        OutputLine {
            stream: self.stream,
            line: String::from_utf8_lossy(bytes).into_owned(),
        }
    }
}

fn read(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: reads into a buffer of the given length.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// Splits a line into pieces of at most `max` bytes, not inside a UTF-8
/// character where avoidable.
fn split_line(mut line: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while line.len() > max {
        let cut = utf8_cut(&line[..max]);
        out.push(&line[..cut]);
        line = &line[cut..];
    }
    out.push(line);
    out
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::FromRawFd;

    fn pipe() -> (OwnedFd, std::fs::File) {
        let mut fds = [0; 2];
        // SAFETY: room for two descriptors.
        assert_eq!(
            unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) },
            0
        );
        // SAFETY: fresh descriptors.
        unsafe {
            (
                OwnedFd::from_raw_fd(fds[0]),
                std::fs::File::from_raw_fd(fds[1]),
            )
        }
    }

    async fn lines(input: &[u8], max: usize) -> Vec<String> {
        let (out_r, mut out_w) = pipe();
        let (err_r, err_w) = pipe();
        drop(err_w);
        out_w.write_all(input).unwrap();
        drop(out_w);
        let mut output = Output::new(out_r, err_r, max).unwrap();
        let mut got = Vec::new();
        while let Some(l) = output.recv().await {
            got.push(l.line);
        }
        got
    }

    #[tokio::test]
    async fn splits_lines_and_long_lines() {
        assert_eq!(lines(b"a\nbb\n\nlast", 100).await, ["a", "bb", "", "last"]);
        assert_eq!(
            lines(b"abcdefghij\nxy\n", 4).await,
            ["abcd", "efgh", "ij", "xy"]
        );
        assert_eq!(lines(b"abcdefghij", 4).await, ["abcd", "efgh", "ij"]);
        // "é" is two bytes; it is not cut in half.
        assert_eq!(lines("abcé\n".as_bytes(), 4).await, ["abc", "é"]);
        assert_eq!(lines(b"", 4).await, Vec::<String>::new());
    }

    #[tokio::test]
    async fn what_was_written_is_ready_at_once_and_stderr_is_tagged() {
        let (out_r, mut out_w) = pipe();
        let (err_r, mut err_w) = pipe();
        let mut output = Output::new(out_r, err_r, 100).unwrap();
        assert_eq!(output.try_recv(), Err(TryRecvError::Empty));
        // Written after the reactor last looked: still ready now.
        out_w.write_all(b"one\ntwo\npart").unwrap();
        err_w.write_all(b"oops\n").unwrap();
        let mut got = Vec::new();
        while let Ok(l) = output.try_recv() {
            got.push((l.stream, l.line));
        }
        let got: Vec<_> = got.iter().map(|(s, l)| (*s, l.as_str())).collect();
        assert_eq!(
            got,
            [
                (OutputStream::Stdout, "one"),
                (OutputStream::Stdout, "two"),
                (OutputStream::Stderr, "oops")
            ]
        );
        drop((out_w, err_w));
        assert_eq!(output.try_recv().map(|l| l.line), Ok("part".to_string()));
        assert_eq!(output.try_recv(), Err(TryRecvError::Disconnected));
    }

    #[tokio::test]
    async fn a_waiting_reader_is_woken_by_a_write() {
        let (out_r, mut out_w) = pipe();
        let (err_r, _err_w) = pipe();
        let mut output = Output::new(out_r, err_r, 100).unwrap();
        let reader = tokio::spawn(async move { output.recv().await.map(|l| l.line) });
        tokio::task::yield_now().await;
        out_w.write_all(b"late\n").unwrap();
        assert_eq!(reader.await.unwrap().as_deref(), Some("late"));
    }
}
