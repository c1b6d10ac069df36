//! [`TestServer`]: the real `stratus` binary, run as a child process.
//!
//! The contract with the binary: `stratus serve --listen 127.0.0.1:0
//! --data-dir DIR [more args]` prints exactly one line to stdout when it is
//! ready, `stratus listening on http://127.0.0.1:PORT` (its logs go to
//! stderr); `GET /_stratus/health` answers 200; SIGTERM makes it exit 0
//! after a graceful shutdown.

use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use tempfile::TempDir;

use crate::cmd::wait_with_deadline;

/// The line the server prints on stdout when it is ready, before the URL.
const READY_PREFIX: &str = "stratus listening on http://";
/// How long the server may take to print its ready line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a graceful shutdown may take after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How many lines of the server's stderr a failure message shows.
const TAIL_LINES: usize = 80;
/// Variables of the test harness itself; the server must not see them as
/// its own `STRATUS_*` configuration.
const HARNESS_ENV_PREFIX: &str = "STRATUS_TEST_";

/// A running `stratus serve`, killed when dropped.
///
/// The server's stderr (across restarts) is kept in a log file in a
/// temporary directory owned by the `TestServer`; its tail is printed when a
/// test panics while the server is alive or when the server fails to start
/// or stop.
pub struct TestServer {
    bin: PathBuf,
    data_dir: PathBuf,
    extra_args: Vec<String>,
    child: Option<Child>,
    addr: SocketAddr,
    starts: u32,
    /// Set once a failure message carried the stderr tail, so that Drop
    /// does not print it a second time.
    tail_shown: bool,
    stderr_log: PathBuf,
    stdout_log: PathBuf,
    /// Holds the logs and, for [`TestServer::start`], the data dir. Declared
    /// last so that it is removed after the child is gone.
    _tmp: TempDir,
}

impl TestServer {
    /// Starts `bin` with a fresh data dir that is deleted with the server.
    #[track_caller]
    pub fn start(bin: &Path) -> Self {
        let tmp = TempDir::with_prefix("stratus-test-").expect("create temp dir");
        let data_dir = tmp.path().join("data");
        fs::create_dir(&data_dir).expect("create data dir");
        Self::launch(bin, data_dir, &[], tmp)
    }

    /// Starts `bin` on `data_dir` (which the caller owns) with `extra_args`
    /// after the standard ones.
    #[track_caller]
    pub fn start_with(bin: &Path, data_dir: &Path, extra_args: &[&str]) -> Self {
        let tmp = TempDir::with_prefix("stratus-test-").expect("create temp dir");
        Self::launch(bin, data_dir.to_path_buf(), extra_args, tmp)
    }

    #[track_caller]
    fn launch(bin: &Path, data_dir: PathBuf, extra_args: &[&str], tmp: TempDir) -> Self {
        let mut server = TestServer {
            bin: bin.to_path_buf(),
            data_dir,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            starts: 0,
            tail_shown: false,
            stderr_log: tmp.path().join("stderr.log"),
            stdout_log: tmp.path().join("stdout.log"),
            _tmp: tmp,
        };
        server.spawn();
        server
    }

    /// `127.0.0.1:PORT` of the current run.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port of the current run (it may change on restart).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT{path}`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `localhost:PORT`: the registry host for docker and skopeo (docker
    /// talks plain HTTP to localhost without an `insecure-registries` entry).
    pub fn registry_host(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    /// The data dir the server runs on.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Everything the server wrote to stderr so far, across restarts.
    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// Whether the process is still alive (false after it exited by itself,
    /// or after `stop`/`kill9`).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => child.try_wait().expect("try_wait on server").is_none(),
            None => false,
        }
    }

    /// Sends SIGKILL and reaps the process: a crash, for recovery tests.
    #[track_caller]
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("kill9: server is not running");
        let _ = child.kill();
        child.wait().expect("wait for killed server");
    }

    /// Sends SIGTERM and waits for a clean exit (status 0) within 30 s;
    /// panics with the stderr tail otherwise.
    #[track_caller]
    pub fn stop(&mut self) {
        let status = self.terminate();
        if !status.success() {
            self.fail(&format!(
                "stratus exited with {status} after SIGTERM (expected 0)"
            ));
        }
    }

    /// Sends SIGTERM and returns the exit status (which may be a failure);
    /// panics only if the server does not exit within 30 s.
    #[track_caller]
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("stop: server is not running");
        if child.try_wait().expect("try_wait on server").is_none() {
            kill_process(Pid::from_child(&child), Signal::TERM).expect("send SIGTERM");
        }
        match wait_with_deadline(&mut child, STOP_TIMEOUT) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                self.fail(&format!(
                    "stratus did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed"
                ));
            }
        }
    }

    /// Starts the server again on the same data dir and arguments, first
    /// stopping it gracefully if it still runs. The port may change.
    #[track_caller]
    pub fn restart(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
        self.spawn();
    }

    /// The last lines of the server's stderr, framed for a failure message.
    pub fn stderr_tail(&self) -> String {
        let log = self.stderr();
        let lines: Vec<&str> = log.lines().collect();
        let from = lines.len().saturating_sub(TAIL_LINES);
        format!(
            "--- stratus stderr (last {} of {} lines, {}) ---\n{}\n--- end of stratus stderr ---",
            lines.len() - from,
            lines.len(),
            self.stderr_log.display(),
            lines[from..].join("\n")
        )
    }

    #[track_caller]
    fn spawn(&mut self) {
        self.starts += 1;
        let mut stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr_log)
            .expect("open stderr log");
        writeln!(stderr, "=== test-support: start #{} ===", self.starts).expect("write log");

        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&self.data_dir)
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .env("RUST_BACKTRACE", "1");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with(HARNESS_ENV_PREFIX) {
                cmd.env_remove(key);
            }
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));

        let lines = forward_stdout(&mut child, &self.stdout_log);
        let ready = self.wait_ready(&mut child, &lines);
        self.child = Some(child);
        match ready {
            Ok(addr) => self.addr = addr,
            Err(why) => self.fail(&format!("stratus did not start: {why}")),
        }
        if let Err(why) = self.check_health() {
            self.fail(&format!(
                "stratus printed its ready line but GET /_stratus/health failed: {why}"
            ));
        }
    }

    /// Waits for the ready line; the process must not exit meanwhile and
    /// must print nothing else to stdout before it.
    fn wait_ready(
        &self,
        child: &mut Child,
        lines: &mpsc::Receiver<String>,
    ) -> Result<SocketAddr, String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match lines.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => return parse_ready_line(&line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Stdout closed: the process is exiting, or closed it.
                    let status = wait_with_deadline(child, Duration::from_secs(5));
                    return Err(match status {
                        Some(status) => format!("it exited with {status} before it was ready"),
                        None => "it closed stdout without printing its ready line".to_string(),
                    });
                }
            }
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                // Take a line that raced with the exit, if any.
                if let Ok(line) = lines.try_recv() {
                    if let Ok(addr) = parse_ready_line(&line) {
                        return Err(format!("it printed {addr} but exited with {status}"));
                    }
                }
                return Err(format!("it exited with {status} before it was ready"));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no `{READY_PREFIX}…` line on stdout within {START_TIMEOUT:?}"
                ));
            }
        }
    }

    fn check_health(&self) -> Result<(), String> {
        let status = http_get_status(self.addr, "/_stratus/health")?;
        if status == 200 {
            Ok(())
        } else {
            Err(format!("status {status}"))
        }
    }

    /// Kills the server if it runs and panics with `msg` and the stderr tail.
    #[track_caller]
    fn fail(&mut self, msg: &str) -> ! {
        self.kill_quietly();
        self.tail_shown = true;
        panic!("{msg}\n{}", self.stderr_tail());
    }

    fn kill_quietly(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if thread::panicking() && !self.tail_shown {
            eprintln!("{}", self.stderr_tail());
        }
        // Kills a live server and reaps an exited one.
        self.kill_quietly();
    }
}

/// Sends each stdout line of `child` to the returned channel and copies it
/// to `log`, until stdout closes.
fn forward_stdout(child: &mut Child, log: &Path) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut log = OpenOptions::new().create(true).append(true).open(log).ok();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(log) = log.as_mut() {
                let _ = writeln!(log, "{line}");
            }
            // The receiver is gone once the server is ready; keep draining
            // so the server never blocks on a full pipe.
            let _ = tx.send(line);
        }
    });
    rx
}

fn parse_ready_line(line: &str) -> Result<SocketAddr, String> {
    let unexpected =
        || format!("unexpected first stdout line {line:?} (want `{READY_PREFIX}127.0.0.1:PORT`)");
    let rest = line.strip_prefix(READY_PREFIX).ok_or_else(unexpected)?;
    let addr: SocketAddr = rest.trim_end().parse().map_err(|_| unexpected())?;
    if !addr.ip().is_loopback() || addr.port() == 0 {
        return Err(unexpected());
    }
    Ok(addr)
}

/// A minimal HTTP/1.1 GET over std's TcpStream, so that starting a server
/// works the same from sync and async tests.
fn http_get_status(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let timeout = Duration::from_secs(10);
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("send: {e}"))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") && head.len() < 1024 {
        match stream.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    // Read the rest (bounded) so the server does not see a reset connection.
    let _ = stream.take(64 * 1024).read_to_end(&mut Vec::new());
    let head = String::from_utf8_lossy(&head);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status line {head:?}"))?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_ready_line() {
        assert_eq!(
            parse_ready_line("stratus listening on http://127.0.0.1:4321"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 4321)))
        );
        for bad in [
            "listening on http://127.0.0.1:4321",
            "stratus listening on http://127.0.0.1:0",
            "stratus listening on http://10.0.0.1:80",
            "stratus listening on http://127.0.0.1",
        ] {
            assert!(parse_ready_line(bad).is_err(), "{bad}");
        }
    }
}
