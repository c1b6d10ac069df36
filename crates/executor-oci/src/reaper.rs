//! Runs `runc run --detach` under a small reaper process, so that the
//! container's stdout and stderr are the executor's own pipes (no relay
//! through the runtime) and the runtime does not stay resident.
//!
//! ```text
//! stratus ──fork──► reaper (child subreaper, own process group)
//!                     ├─fork+exec─► runc run --detach …   exits once the container runs
//!                     └─ adopts ──► the container's init  its exit status is the reaper's
//! ```
//!
//! In foreground mode the runtime copies the container's output through
//! its own pipes, so a line the function printed before it answered could
//! still be inside the runtime when the answer arrived. Detached, the
//! container writes straight into the executor's pipes: once the answer is
//! in, everything printed before it can be read without waiting.
//!
//! The reaper is the runtime's parent and a child subreaper: when `runc`
//! exits, the container's init is re-parented to it. It waits for both and
//! exits with the init's status (a signal as 128+n, as the runtime itself
//! reports it), so the executor learns the exit status as it did from
//! `runc run`. Between `fork` and `_exit` it only makes system calls
//! (everything it needs is prepared before the fork).

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// What the reaper exits with when the runtime could not be executed.
const EXEC_FAILED: i32 = 127;
/// … or when it could not fork the runtime.
const FORK_FAILED: i32 = 125;
/// The reaper's descriptor for [`Spawned::runtime_done`].
const DONE_FD: RawFd = 3;
/// How many (pid, status) pairs the reaper remembers while it waits.
const REMEMBERED: usize = 16;

/// A started reaper and the read ends of the container's output pipes.
pub(crate) struct Spawned {
    pub process: Reaper,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// Gets one byte, the runtime's exit code, when the runtime command
    /// has finished (the container is created or running, or it failed).
    pub runtime_done: OwnedFd,
}

/// Waits for the byte the reaper writes when the runtime command exits:
/// its exit code (`None` if the reaper died first).
pub(crate) async fn runtime_exit(done: OwnedFd) -> Option<i32> {
    // SAFETY: an `OwnedFd` stays open, and is the same descriptor, until
    // the `AsyncFd` that owns it is dropped.
    let fd = unsafe { AsyncFd::register_with_interest(done, Interest::READABLE) }.ok()?;
    loop {
        let mut ready = fd.readable().await.ok()?;
        let mut byte = [0u8; 1];
        // SAFETY: reads one byte into a one-byte buffer.
        let n = unsafe { libc::read(fd.get_ref().as_raw_fd(), byte.as_mut_ptr().cast(), 1) };
        match n {
            1 => return Some(i32::from(byte[0])),
            0 => return None,
            _ if io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock => {
                ready.clear_ready();
            }
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => return None,
        }
    }
}

/// The reaper process: a child of this process, waited for through a
/// pidfd (or a thread where pidfds are not supported).
pub(crate) struct Reaper {
    pid: libc::pid_t,
    wait: Waiter,
    status: Option<std::process::ExitStatus>,
}

enum Waiter {
    PidFd(AsyncFd<OwnedFd>),
    Thread(Option<tokio::sync::oneshot::Receiver<i32>>),
}

impl std::fmt::Debug for Reaper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reaper")
            .field("pid", &self.pid)
            .field("status", &self.status)
            .finish()
    }
}

/// Starts `program args…` (the runtime's `run --detach`) under a reaper.
/// `pid_file` is where the runtime writes the container's init pid.
pub(crate) fn spawn(program: &Path, args: &[OsString], pid_file: &Path) -> io::Result<Spawned> {
    let cstring = |bytes: &[u8]| {
        CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte"))
    };
    let program_c = cstring(program.as_os_str().as_bytes())?;
    let mut argv_c = vec![program_c.clone()];
    for arg in args {
        argv_c.push(cstring(arg.as_bytes())?);
    }
    let env_c: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let pid_file_c = cstring(pid_file.as_os_str().as_bytes())?;
    let mut argv: Vec<*const libc::c_char> = argv_c.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env_c.iter().map(|c| c.as_ptr()).collect();
    envp.push(std::ptr::null());

    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (done_r, done_w) = pipe()?;
    let null = std::fs::File::open("/dev/null")?;
    let plan = Plan {
        program: program_c.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        pid_file: pid_file_c.as_ptr(),
        stdin: null.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
        done: done_w.as_raw_fd(),
    };
    // SAFETY: the child only runs `reap`, which makes system calls on
    // memory prepared above and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the forked child; see `reap`.
        unsafe { reap(&plan) }
    }
    drop((out_w, err_w, done_w, null));
    set_nonblocking(&out_r)?;
    set_nonblocking(&err_r)?;
    set_nonblocking(&done_r)?;
    let wait = match pidfd_open(pid) {
        // SAFETY: an `OwnedFd` stays open, and is the same descriptor,
        // until the `AsyncFd` that owns it is dropped.
        Ok(fd) => match unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) } {
            Ok(fd) => Waiter::PidFd(fd),
            Err(_) => Waiter::Thread(Some(wait_on_thread(pid))),
        },
        Err(_) => Waiter::Thread(Some(wait_on_thread(pid))),
    };
    Ok(Spawned {
        process: Reaper {
            pid,
            wait,
            status: None,
        },
        stdout: out_r,
        stderr: err_r,
        runtime_done: done_r,
    })
}

impl Reaper {
    /// Waits for the reaper to exit (the container's init ended, or the
    /// runtime failed to start it). Cancel-safe; later calls return the
    /// same status.
    pub(crate) async fn wait(&mut self) -> io::Result<std::process::ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let raw = match &mut self.wait {
            Waiter::PidFd(fd) => loop {
                if let Some(raw) = try_reap(self.pid)? {
                    break raw;
                }
                let mut ready = fd.readable().await?;
                ready.clear_ready();
            },
            Waiter::Thread(rx) => {
                let Some(receiver) = rx.as_mut() else {
                    return Err(io::Error::other("the reaper's status was lost"));
                };
                let raw = receiver
                    .await
                    .map_err(|_| io::Error::other("the reaper's waiting thread ended"))?;
                *rx = None;
                raw
            }
        };
        let status = std::process::ExitStatus::from_raw(raw);
        self.status = Some(status);
        Ok(status)
    }

    /// Sends SIGKILL to the reaper (not to the container: the runtime
    /// kills that). Does nothing once it has been waited for.
    pub(crate) fn start_kill(&self) {
        if self.status.is_none() {
            // SAFETY: the pid is our unreaped child, so it cannot be reused.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
    }

    /// Blocks until the reaper exits (for clean-up threads).
    pub(crate) fn wait_blocking(mut self) {
        if self.status.is_some() {
            return;
        }
        match std::mem::replace(&mut self.wait, Waiter::Thread(None)) {
            Waiter::PidFd(_) => {
                let mut raw = 0;
                loop {
                    // SAFETY: waits for our own child.
                    let r = unsafe { libc::waitpid(self.pid, &mut raw, 0) };
                    if r >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                        break;
                    }
                }
            }
            // The thread reaps it.
            Waiter::Thread(_) => {}
        }
        self.status = Some(std::process::ExitStatus::from_raw(0));
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if self.status.is_some() || matches!(self.wait, Waiter::Thread(_)) {
            return;
        }
        // Not waited for: reap it in the background once it exits, so it
        // does not stay a zombie.
        let pid = self.pid;
        let _ = std::thread::Builder::new()
            .name("executor-oci-reap".into())
            .spawn(move || {
                let mut raw = 0;
                // SAFETY: waits for our own child.
                while unsafe { libc::waitpid(pid, &mut raw, 0) } < 0
                    && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
                {
                }
            });
    }
}

/// `waitpid(pid, WNOHANG)`: the raw status once the child has exited.
fn try_reap(pid: libc::pid_t) -> io::Result<Option<i32>> {
    let mut raw = 0;
    loop {
        // SAFETY: waits for our own child.
        let r = unsafe { libc::waitpid(pid, &mut raw, libc::WNOHANG) };
        if r == pid {
            return Ok(Some(raw));
        }
        if r == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn wait_on_thread(pid: libc::pid_t) -> tokio::sync::oneshot::Receiver<i32> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let _ = std::thread::Builder::new()
        .name("executor-oci-wait".into())
        .spawn(move || {
            let mut raw = 0;
            loop {
                // SAFETY: waits for our own child.
                let r = unsafe { libc::waitpid(pid, &mut raw, 0) };
                if r == pid {
                    let _ = tx.send(raw);
                    return;
                }
                if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    return;
                }
            }
        });
    rx
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: plain fcntl on an open descriptor.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Everything the reaper needs, prepared before the fork.
struct Plan {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    pid_file: *const libc::c_char,
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    /// Where the runtime's exit code goes (as fd 3 in the reaper).
    done: RawFd,
}

/// The reaper's whole life, in the forked child. Only system calls.
///
/// # Safety
/// Must only be called in a freshly forked child, with `plan` pointing at
/// memory that was valid at the fork.
unsafe fn reap(plan: &Plan) -> ! {
    // Default signal dispositions and an empty mask: the parent's handlers
    // (the async runtime's) must not run here.
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    for signal in 1..libc::SIGRTMIN() {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            libc::signal(signal, libc::SIG_DFL);
        }
    }
    // Its own process group: a Ctrl-C at the terminal goes to Stratus,
    // which drains; it must not reach the instance at once.
    libc::setpgid(0, 0);
    libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    if libc::dup2(plan.stdin, 0) < 0
        || libc::dup2(plan.stdout, 1) < 0
        || libc::dup2(plan.stderr, 2) < 0
        || libc::dup2(plan.done, DONE_FD) < 0
        || libc::fcntl(DONE_FD, libc::F_SETFD, libc::FD_CLOEXEC) < 0
    {
        libc::_exit(FORK_FAILED);
    }
    if libc::syscall(libc::SYS_close_range, DONE_FD as u32 + 1, u32::MAX, 0u32) < 0 {
        for fd in DONE_FD + 1..4096 {
            libc::close(fd);
        }
    }
    let runtime = libc::fork();
    if runtime < 0 {
        libc::_exit(FORK_FAILED);
    }
    if runtime == 0 {
        libc::execve(plan.program, plan.argv, plan.envp);
        libc::_exit(EXEC_FAILED);
    }
    let mut seen = [(0 as libc::pid_t, 0i32); REMEMBERED];
    let mut count = 0usize;
    let mut runtime_status = None;
    loop {
        let mut raw = 0;
        let pid = libc::waitpid(-1, &mut raw, 0);
        if pid < 0 {
            if *libc::__errno_location() == libc::EINTR {
                continue;
            }
            // ECHILD: the runtime and everything it left to us are gone.
            break;
        }
        if pid == runtime {
            runtime_status = Some(raw);
            let code: u8 = if libc::WIFEXITED(raw) {
                libc::WEXITSTATUS(raw) as u8
            } else {
                255
            };
            libc::write(DONE_FD, (&code as *const u8).cast(), 1);
            libc::close(DONE_FD);
        } else {
            seen[count % REMEMBERED] = (pid, raw);
            count += 1;
        }
    }
    // The container's init, by the pid the runtime recorded; else the
    // last adopted process; else the runtime's own failure.
    let init = read_pid(plan.pid_file);
    let remembered = &seen[..count.min(REMEMBERED)];
    let status = init
        .and_then(|pid| remembered.iter().find(|(p, _)| *p == pid))
        .or_else(|| {
            let last = (count + REMEMBERED - 1) % REMEMBERED;
            (count > 0).then(|| &seen[last])
        })
        .map(|&(_, raw)| raw)
        .or(runtime_status);
    let code = match status {
        Some(raw) if libc::WIFEXITED(raw) => libc::WEXITSTATUS(raw),
        Some(raw) if libc::WIFSIGNALED(raw) => 128 + libc::WTERMSIG(raw),
        _ => FORK_FAILED,
    };
    libc::_exit(code)
}

/// The decimal pid in `path`, read with plain system calls.
unsafe fn read_pid(path: *const libc::c_char) -> Option<libc::pid_t> {
    let fd = libc::open(path, libc::O_RDONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return None;
    }
    let mut buf = [0u8; 32];
    let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
    libc::close(fd);
    if n <= 0 {
        return None;
    }
    let mut pid: libc::pid_t = 0;
    for &b in &buf[..n as usize] {
        match b {
            b'0'..=b'9' => {
                pid = pid
                    .checked_mul(10)?
                    .checked_add(libc::pid_t::from(b - b'0'))?
            }
            _ => break,
        }
    }
    (pid > 0).then_some(pid)
}
