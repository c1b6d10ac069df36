//! Running external programs: bounded in time, with their output kept for
//! the failure message.

use std::io::{ErrorKind, Read};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a client command (aws, docker, skopeo) may run before it is
/// killed and the test fails: a hung client must not hang CI.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `cmd` to completion with stdin closed and stdout/stderr captured.
///
/// Panics if the program cannot be started (with `install_hint` when it is
/// not installed) or runs longer than `timeout` (it is then killed).
#[track_caller]
pub fn run_command(cmd: &mut Command, timeout: Duration, install_hint: &str) -> Output {
    let program = describe(cmd);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("`{program}`: program not found ({install_hint})")
        }
        Err(e) => panic!("`{program}`: cannot start: {e}"),
    };
    let stdout = spawn_reader(&mut child, Stream::Stdout);
    let stderr = spawn_reader(&mut child, Stream::Stderr);
    let status = wait_with_deadline(&mut child, timeout);
    let output = Output {
        status: status.unwrap_or_else(|| {
            let _ = child.kill();
            child.wait().expect("wait for killed child")
        }),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    if status.is_none() {
        panic!(
            "`{program}` did not finish within {timeout:?}; killed\n--- stdout ---\n{}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
    output
}

enum Stream {
    Stdout,
    Stderr,
}

fn spawn_reader(child: &mut Child, stream: Stream) -> thread::JoinHandle<Vec<u8>> {
    let mut pipe: Box<dyn Read + Send> = match stream {
        Stream::Stdout => Box::new(child.stdout.take().expect("stdout is piped")),
        Stream::Stderr => Box::new(child.stderr.take().expect("stderr is piped")),
    };
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// Polls `child` until it exits or `timeout` passes (then `None`).
pub(crate) fn wait_with_deadline(
    child: &mut Child,
    timeout: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(5);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait on child") {
            return Some(status);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::sleep(interval.min(deadline - now));
        interval = (interval * 2).min(Duration::from_millis(100));
    }
}

/// `program arg arg …` for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Assertions and text accessors for a finished command's [`Output`].
pub trait OutputExt: Sized {
    /// Stdout as (lossy) UTF-8.
    fn stdout_str(&self) -> String;
    /// Stderr as (lossy) UTF-8.
    fn stderr_str(&self) -> String;
    /// Panics, showing stdout and stderr, unless the command succeeded.
    #[track_caller]
    fn assert_success(self, what: &str) -> Self;
    /// Panics, showing stdout, unless the command failed.
    #[track_caller]
    fn assert_failure(self, what: &str) -> Self;
}

impl OutputExt for Output {
    fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    #[track_caller]
    fn assert_success(self, what: &str) -> Self {
        if !self.status.success() {
            panic!(
                "`{what}` failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.status,
                self.stdout_str(),
                self.stderr_str()
            );
        }
        self
    }

    #[track_caller]
    fn assert_failure(self, what: &str) -> Self {
        if self.status.success() {
            panic!(
                "`{what}` succeeded but was expected to fail\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.stdout_str(),
                self.stderr_str()
            );
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_status() {
        let out = run_command(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
            "",
        );
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout_str(), "out\n");
        assert_eq!(out.stderr_str(), "err\n");
        let out = out.assert_failure("sh");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    #[should_panic(expected = "did not finish within")]
    fn kills_a_command_that_runs_too_long() {
        run_command(
            Command::new("sh").args(["-c", "exec sleep 30"]),
            Duration::from_millis(200),
            "",
        );
    }

    #[test]
    #[should_panic(expected = "program not found (install it with care)")]
    fn names_the_missing_program() {
        run_command(
            &mut Command::new("stratus-no-such-program"),
            Duration::from_secs(1),
            "install it with care",
        );
    }

    #[test]
    #[should_panic(expected = "--- stderr ---\nboom")]
    fn assert_success_shows_stderr() {
        run_command(
            Command::new("sh").args(["-c", "echo boom >&2; exit 1"]),
            Duration::from_secs(10),
            "",
        )
        .assert_success("sh");
    }
}
