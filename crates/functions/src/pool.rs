//! The instance pool of one function configuration (a version at one
//! revision): warm instances are reused, new ones are started up to the
//! concurrency limit, idle ones are stopped after the keep-alive, and a
//! retired pool (code or configuration changed) drains.
//!
//! An instance is a sandbox (the executor's process) plus its own Runtime
//! API listener. Each instance has one owning task that watches the
//! process; the invoke path talks to it over channels. Each instance also
//! has its log stream ([`InstanceLog`]): the function's output and the
//! platform's `START`/`END`/`REPORT` lines, in order.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runtime_api::{InstanceEvent, RuntimeApi, RuntimeApiConfig};
use tokio::sync::{mpsc, oneshot, watch};

use crate::instance_log::InstanceLog;
use crate::{ExitInfo, FunctionConfig, ResolvedImage, Sandbox, SandboxInstance, SandboxSpec};

#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Idle instances are stopped after this long.
    pub keep_alive: Duration,
    /// A runtime must call `next` within this long after start.
    pub init_timeout: Duration,
    /// Where log streams are written.
    pub logs_dir: PathBuf,
    /// `AWS_ENDPOINT_URL` given to instances (Stratus itself).
    pub endpoint_url: String,
    /// An invocation beyond the concurrency limit waits this long for an
    /// instance to become free before it is throttled (zero: throttled at
    /// once, as Lambda does).
    pub queue_wait: Duration,
}

/// Invocations waiting for an instance of one pool, at most.
const MAX_WAITERS: usize = 1024;

/// Why no instance could be had.
#[derive(Debug)]
pub(crate) enum AcquireError {
    /// At the concurrency limit.
    Throttled,
    /// The instance could not start or failed its init: the error document
    /// and the log tail.
    InitFailed {
        error_type: String,
        message: String,
        /// What the runtime posted to `/runtime/init/error`: returned to
        /// the caller as it is, like Lambda does.
        runtime_body: Option<bytes::Bytes>,
        log_tail: String,
        /// The failed instance's log stream, for the invocation's
        /// `START`/`END`/`REPORT` lines (none if it never opened).
        log: Option<InstanceLog>,
    },
}

enum InstanceCmd {
    Kill,
    MaxMemory(oneshot::Sender<Option<u64>>),
}

/// One running instance.
pub(crate) struct Instance {
    pub id: String,
    pub runtime: RuntimeApi,
    cmd: mpsc::Sender<InstanceCmd>,
    pub exited: watch::Receiver<Option<ExitInfo>>,
    pub log: InstanceLog,
    memory_probe: Option<crate::MemoryProbe>,
    /// Set for the first invocation after a cold start.
    pub init_duration: Option<Duration>,
    last_used: Instant,
}

impl Instance {
    pub async fn max_memory_mb(&self) -> u64 {
        if let Some(bytes) = self.memory_probe.as_ref().and_then(|probe| probe()) {
            return bytes.div_ceil(1024 * 1024);
        }
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(InstanceCmd::MaxMemory(tx)).await.is_err() {
            return 0;
        }
        rx.await
            .ok()
            .flatten()
            .map(|b| b.div_ceil(1024 * 1024))
            .unwrap_or(0)
    }

    pub async fn kill(self) {
        let _ = self.cmd.send(InstanceCmd::Kill).await;
        let mut exited = self.exited.clone();
        let _ = exited.wait_for(|e| e.is_some()).await;
        self.runtime.shutdown().await;
    }
}

/// An instance made but not yet watched: started, or created ahead (a
/// spare) and waiting for [`SandboxInstance::begin`].
struct Made {
    /// Created ahead: its process starts on [`SandboxInstance::begin`].
    ahead: bool,
    id: String,
    stream: String,
    runtime: RuntimeApi,
    events: mpsc::Receiver<InstanceEvent>,
    sandbox: Box<dyn SandboxInstance>,
}

impl Made {
    /// Stops a spare that will not be used.
    async fn discard(mut self) {
        self.sandbox.kill().await;
        self.runtime.shutdown().await;
    }
}

/// A cold start waits this long at most for a spare being made.
const SPARE_WAIT: Duration = Duration::from_secs(1);
/// A spare unused for this long is stopped (it holds a parked process).
const SPARE_IDLE: Duration = Duration::from_secs(15 * 60);

fn init_failed(error_type: &str, message: String) -> AcquireError {
    AcquireError::InitFailed {
        error_type: error_type.to_string(),
        message,
        runtime_body: None,
        log_tail: String::new(),
        log: None,
    }
}

/// What a waiting invocation is handed.
enum Grant {
    /// A warm instance another invocation just released.
    Instance(Instance),
    /// A slot under the limit (an instance ended): start a new one.
    Start,
}

/// The pool's instances and the invocations waiting for one. Kept under
/// one lock so that a release never misses a waiter.
#[derive(Default)]
struct Slots {
    idle: Vec<Instance>,
    /// Instances alive (idle, busy or starting).
    alive: usize,
    /// Oldest first.
    waiters: std::collections::VecDeque<oneshot::Sender<Grant>>,
}

/// The instances of one function configuration.
pub(crate) struct Pool {
    pub config: FunctionConfig,
    image: ResolvedImage,
    sandbox: Arc<dyn Sandbox>,
    settings: PoolConfig,
    /// A zip function's unpacked package.
    code_dir: Option<PathBuf>,
    slots: Mutex<Slots>,
    limit: AtomicUsize,
    /// Whether `limit` is the function's reserved concurrency (rather than
    /// the account's, which the service also enforces across functions).
    reserved: AtomicBool,
    retired: AtomicBool,
    /// This pool, for the tasks it spawns.
    me: std::sync::Weak<Pool>,
    /// An instance created ahead for the next cold start, and since when.
    spare: Mutex<Option<(Made, Instant)>>,
    /// A spare exists or is being made.
    spare_wanted: AtomicBool,
    /// The task making a spare (awaited on retirement, so that none is
    /// left behind by a shutdown).
    making: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Told when the making of a spare ends.
    spare_made: tokio::sync::Notify,
}

impl Pool {
    pub fn new(
        config: FunctionConfig,
        image: ResolvedImage,
        sandbox: Arc<dyn Sandbox>,
        settings: PoolConfig,
        (limit, reserved): (usize, bool),
        code_dir: Option<PathBuf>,
        me: std::sync::Weak<Pool>,
    ) -> Pool {
        Pool {
            config,
            image,
            sandbox,
            settings,
            code_dir,
            slots: Mutex::new(Slots::default()),
            limit: AtomicUsize::new(limit),
            reserved: AtomicBool::new(reserved),
            retired: AtomicBool::new(false),
            me,
            spare: Mutex::new(None),
            spare_wanted: AtomicBool::new(false),
            making: Mutex::new(None),
            spare_made: tokio::sync::Notify::new(),
        }
    }

    pub fn set_limit(&self, limit: usize, reserved: bool) {
        self.limit.store(limit, Ordering::Relaxed);
        self.reserved.store(reserved, Ordering::Relaxed);
    }

    pub fn reserved(&self) -> bool {
        self.reserved.load(Ordering::Relaxed)
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A warm instance, or a new one if the limit allows; at the limit,
    /// waits (up to [`PoolConfig::queue_wait`], oldest first) for one to
    /// be released.
    pub async fn acquire(&self) -> Result<Instance, AcquireError> {
        enum Next {
            Warm(Instance),
            Start,
            Wait(oneshot::Receiver<Grant>),
            Throttled,
        }
        let mut dead = Vec::new();
        let next = {
            let mut s = self.slots();
            let mut warm = None;
            while let Some(inst) = s.idle.pop() {
                if inst.exited.borrow().is_none() {
                    warm = Some(inst);
                    break;
                }
                s.alive -= 1;
                dead.push(inst);
            }
            if let Some(inst) = warm {
                Next::Warm(inst)
            } else if s.alive < self.limit.load(Ordering::Relaxed) {
                s.alive += 1;
                Next::Start
            } else {
                if s.waiters.len() >= MAX_WAITERS {
                    s.waiters.retain(|w| !w.is_closed());
                }
                if self.settings.queue_wait.is_zero() || s.waiters.len() >= MAX_WAITERS {
                    Next::Throttled
                } else {
                    let (tx, rx) = oneshot::channel();
                    s.waiters.push_back(tx);
                    Next::Wait(rx)
                }
            }
        };
        kill_all(dead).await;
        let waiting = match next {
            Next::Warm(inst) => return Ok(inst),
            Next::Throttled => return Err(AcquireError::Throttled),
            Next::Start => None,
            Next::Wait(rx) => Some(rx),
        };
        let grant = match waiting {
            None => Grant::Start,
            Some(mut rx) => match tokio::time::timeout(self.settings.queue_wait, &mut rx).await {
                Ok(Ok(g)) => g,
                _ => {
                    // A grant sent as the wait ended must not be lost.
                    rx.close();
                    match rx.try_recv() {
                        Ok(g) => g,
                        Err(_) => return Err(AcquireError::Throttled),
                    }
                }
            },
        };
        match grant {
            Grant::Instance(inst) => Ok(inst),
            Grant::Start => match self.start().await {
                Ok(inst) => Ok(inst),
                Err(e) => {
                    self.free_slot();
                    Err(e)
                }
            },
        }
    }

    /// An instance ended: its slot goes to the oldest waiter, if any.
    fn free_slot(&self) {
        let mut s = self.slots();
        while let Some(w) = s.waiters.pop_front() {
            if w.send(Grant::Start).is_ok() {
                return;
            }
        }
        s.alive -= 1;
    }

    /// Puts an instance back after an invocation (to the oldest waiter
    /// first); unhealthy instances and those of a retired pool are stopped.
    pub async fn release(&self, mut inst: Instance, healthy: bool) {
        inst.init_duration = None;
        if healthy && !self.retired.load(Ordering::Acquire) && inst.exited.borrow().is_none() {
            inst.last_used = Instant::now();
            let mut s = self.slots();
            while let Some(w) = s.waiters.pop_front() {
                match w.send(Grant::Instance(inst)) {
                    Ok(()) => return,
                    // The waiter gave up: the instance comes back as sent.
                    Err(Grant::Instance(back)) => inst = back,
                    Err(Grant::Start) => return,
                }
            }
            s.idle.push(inst);
            return;
        }
        inst.kill().await;
        self.free_slot();
    }

    /// Stops idle instances unused for longer than the keep-alive.
    pub async fn reap(&self) {
        let keep_alive = self.settings.keep_alive;
        let expired: Vec<Instance> = {
            let mut s = self.slots();
            let (old, fresh): (Vec<_>, Vec<_>) = s
                .idle
                .drain(..)
                .partition(|i| i.last_used.elapsed() >= keep_alive);
            s.idle = fresh;
            s.alive -= old.len();
            old
        };
        kill_all(expired).await;
        let stale = {
            let mut spare = self.spare.lock().unwrap_or_else(|p| p.into_inner());
            match spare.as_ref() {
                Some((_, since)) if since.elapsed() >= SPARE_IDLE.max(keep_alive) => spare.take(),
                _ => None,
            }
        };
        if let Some((made, _)) = stale {
            made.discard().await;
            self.spare_wanted.store(false, Ordering::Release);
        }
    }

    /// No new work; idle instances stop now, busy ones when released.
    pub async fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        let idle: Vec<Instance> = {
            let mut s = self.slots();
            let idle: Vec<Instance> = s.idle.drain(..).collect();
            s.alive -= idle.len();
            idle
        };
        kill_all(idle).await;
        let making = self.making.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(making) = making {
            // It sees the pool retired and stops what it made.
            let _ = making.await;
        }
        let spare = self.spare.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((made, _)) = spare {
            made.discard().await;
        }
    }

    pub fn alive(&self) -> usize {
        self.slots().alive
    }

    fn stream_name(&self, instance_id: &str) -> String {
        let date = time::OffsetDateTime::now_utc().date();
        format!(
            "{:04}/{:02}/{:02}/[{}]{}",
            date.year(),
            date.month() as u8,
            date.day(),
            self.config.version,
            instance_id
        )
    }

    fn environment(
        &self,
        runtime_addr: std::net::SocketAddr,
        stream: &str,
        handler: Option<&str>,
    ) -> Vec<(String, String)> {
        let c = &self.config;
        let mut env: Vec<(String, String)> = Vec::new();
        for kv in &self.image.env {
            if let Some((k, v)) = kv.split_once('=') {
                env.push((k.to_string(), v.to_string()));
            }
        }
        for (k, v) in crate::user_env(c) {
            env.retain(|(ek, _)| *ek != k);
            env.push((k, v));
        }
        let mut set = |k: &str, v: String| {
            env.retain(|(ek, _)| ek != k);
            env.push((k.to_string(), v));
        };
        set("AWS_LAMBDA_RUNTIME_API", runtime_addr.to_string());
        if let Some(h) = handler {
            set("_HANDLER", h.to_string());
        }
        if !env_has(&self.image.env, "LAMBDA_TASK_ROOT") {
            set("LAMBDA_TASK_ROOT", "/var/task".into());
        }
        if !env_has(&self.image.env, "LAMBDA_RUNTIME_DIR") {
            set("LAMBDA_RUNTIME_DIR", "/var/runtime".into());
        }
        set("AWS_LAMBDA_FUNCTION_NAME", c.name.clone());
        set("AWS_LAMBDA_FUNCTION_VERSION", c.version.clone());
        set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", c.memory_mb.to_string());
        set("AWS_LAMBDA_LOG_GROUP_NAME", c.log_group());
        set("AWS_LAMBDA_LOG_STREAM_NAME", stream.to_string());
        set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into());
        set("AWS_REGION", c.region.clone());
        set("AWS_DEFAULT_REGION", c.region.clone());
        set("TZ", ":UTC".into());
        set("AWS_ACCESS_KEY_ID", c.account.clone());
        set("AWS_SECRET_ACCESS_KEY", "stratus".into());
        set("AWS_SESSION_TOKEN", "stratus".into());
        set("AWS_ENDPOINT_URL", self.settings.endpoint_url.clone());
        if !env_has(&self.image.env, "PATH") {
            set("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".into());
        }
        env
    }

    /// The command line, handler and working directory of an instance.
    ///
    /// An image function runs its image's ENTRYPOINT and CMD (or the
    /// `ImageConfig` overrides). A zip function runs in `/var/task` on its
    /// runtime's base image: an OS-only runtime (`provided.*`) executes the
    /// package's `bootstrap`; the others run the base image's entrypoint
    /// with the handler as its argument (as the official images expect),
    /// or the runtime's `/var/runtime/bootstrap` if it has none.
    fn command_line(&self) -> (Vec<String>, Option<String>, String) {
        let c = &self.config;
        if c.package_type == crate::PackageType::Zip {
            let handler = c.handler.clone().unwrap_or_default();
            let runtime = c.runtime.as_deref().unwrap_or_default();
            let argv = if crate::model::is_os_only_runtime(runtime) {
                vec!["/var/task/bootstrap".to_string()]
            } else if self.image.entrypoint.is_empty() {
                vec!["/var/runtime/bootstrap".to_string()]
            } else {
                let mut argv = self.image.entrypoint.clone();
                argv.push(handler.clone());
                argv
            };
            return (argv, Some(handler), "/var/task".into());
        }
        let o = &c.image_overrides;
        let mut argv = o
            .entry_point
            .clone()
            .unwrap_or_else(|| self.image.entrypoint.clone());
        let cmd = o.command.clone().unwrap_or_else(|| self.image.cmd.clone());
        let handler = c.handler.clone().or_else(|| cmd.first().cloned());
        argv.extend(cmd);
        let working_dir = o
            .working_directory
            .clone()
            .or_else(|| self.image.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        (argv, handler, working_dir)
    }

    /// Starts a new instance and waits for its runtime to ask for work.
    /// Binds an instance's Runtime API and has the sandbox start it, or
    /// only create it (`ahead`: a spare that [`SandboxInstance::begin`]
    /// starts later).
    async fn make(&self, ahead: bool) -> Result<Made, AcquireError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let stream = self.stream_name(&id);
        let (runtime, events) = RuntimeApi::bind(RuntimeApiConfig::new(self.config.arn()))
            .await
            .map_err(|e| {
                init_failed(
                    "Runtime.Unknown",
                    format!("cannot open the Runtime API: {e}"),
                )
            })?;
        let (argv, handler, working_dir) = self.command_line();
        let spec = SandboxSpec {
            instance_id: id.clone(),
            image: self.image.clone(),
            argv,
            env: self.environment(runtime.addr(), &stream, handler.as_deref()),
            working_dir,
            memory_bytes: u64::from(self.config.memory_mb) * 1024 * 1024,
            tmp_bytes: u64::from(self.config.ephemeral_mb) * 1024 * 1024,
            code_dir: self.code_dir.clone(),
            runtime: self.config.runtime.clone(),
            handler: handler.clone(),
        };
        let made = if ahead {
            self.sandbox.create(spec).await
        } else {
            self.sandbox.start(spec).await
        };
        match made {
            Ok(sandbox) => Ok(Made {
                ahead,
                id,
                stream,
                runtime,
                events,
                sandbox,
            }),
            Err(e) => {
                runtime.shutdown().await;
                Err(init_failed(
                    "Runtime.Unknown",
                    format!("the function's instance could not start: {e}"),
                ))
            }
        }
    }

    /// Makes a spare for the next cold start in the background, if the
    /// sandbox can create instances ahead and there is none (nor one on
    /// its way).
    pub fn prepare_spare(&self) {
        if !self.sandbox.creates_ahead()
            || self.retired.load(Ordering::Acquire)
            || self.spare_wanted.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let Some(pool) = self.me.upgrade() else {
            return;
        };
        let making = tokio::spawn(async move {
            match pool.make(true).await {
                Ok(made) => {
                    let stale = {
                        let mut spare = pool.spare.lock().unwrap_or_else(|p| p.into_inner());
                        if pool.retired.load(Ordering::Acquire) {
                            Some(made)
                        } else {
                            *spare = Some((made, Instant::now()));
                            None
                        }
                    };
                    if let Some(made) = stale {
                        made.discard().await;
                    }
                }
                Err(AcquireError::InitFailed { message, .. }) => {
                    tracing::debug!(function = %pool.config.name, %message, "no spare instance");
                    pool.spare_wanted.store(false, Ordering::Release);
                }
                Err(AcquireError::Throttled) => pool.spare_wanted.store(false, Ordering::Release),
            }
            pool.spare_made.notify_waiters();
        });
        *self.making.lock().unwrap_or_else(|p| p.into_inner()) = Some(making);
    }

    /// Waits (up to `limit`) until the spare being made is there; returns
    /// at once when there is one or none is being made.
    pub async fn spare_ready(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let made = self.spare_made.notified();
            tokio::pin!(made);
            made.as_mut().enable();
            let present = self
                .spare
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some();
            if present || !self.spare_wanted.load(Ordering::Acquire) {
                return;
            }
            if tokio::time::timeout_at(deadline, made).await.is_err() {
                return;
            }
        }
    }

    /// The spare, if there is one.
    fn take_spare(&self) -> Option<Made> {
        let (made, _) = self
            .spare
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()?;
        self.spare_wanted.store(false, Ordering::Release);
        Some(made)
    }

    /// Starts a new instance (the spare, if there is one) and waits for
    /// its runtime to ask for work. `Init Duration` counts from the start
    /// of its process (a spare's creation happened ahead).
    async fn start(&self) -> Result<Instance, AcquireError> {
        // A spare on its way is closer than a new instance.
        self.spare_ready(SPARE_WAIT).await;
        let (made, started) = match self.take_spare() {
            Some(made) => (made, Instant::now()),
            None => {
                let started = Instant::now();
                let made = self.make(false).await?;
                (made, started)
            }
        };
        let Made {
            ahead,
            id,
            stream,
            runtime,
            mut events,
            mut sandbox,
        } = made;
        let log = InstanceLog::open(&self.log_path(&stream)).await;
        log.begin_tail();
        if let Some(output) = sandbox.take_output() {
            log.follow(output);
        }
        let begun = if ahead { sandbox.begin().await } else { Ok(()) };
        if let Err(e) = begun {
            sandbox.kill().await;
            runtime.shutdown().await;
            return Err(init_failed(
                "Runtime.Unknown",
                format!("the function's instance could not start: {e}"),
            ));
        }
        let memory_probe = sandbox.memory_probe();
        let (cmd_tx, cmd_rx) = mpsc::channel(4);
        let (exit_tx, exited) = watch::channel(None);
        tokio::spawn(own_instance(sandbox, cmd_rx, exit_tx));
        let mut exit_watch = exited.clone();
        let ready = tokio::time::timeout(self.settings.init_timeout, async {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(InstanceEvent::Ready) => Ok(()),
                    Some(InstanceEvent::InitError { error_type, body }) => Err((
                        error_type,
                        String::from_utf8_lossy(&body).into_owned(),
                        Some(body),
                    )),
                    None => Err(("Runtime.Unknown".into(), "the Runtime API closed".into(), None)),
                },
                r = exit_watch.wait_for(|e| e.is_some()) => {
                    let e = r.ok().and_then(|g| g.clone());
                    Err(("Runtime.ExitError".into(), format!("Runtime exited {}", describe_exit(e.as_ref())), None))
                }
            }
        })
        .await;
        let instance = Instance {
            id,
            runtime,
            cmd: cmd_tx,
            exited,
            log,
            memory_probe,
            init_duration: Some(started.elapsed()),
            last_used: Instant::now(),
        };
        let failure = match ready {
            Ok(Ok(())) => {
                // Another spare for the next cold start, now that this one
                // no longer competes for the CPU.
                self.prepare_spare();
                return Ok(instance);
            }
            Ok(Err(f)) => f,
            Err(_) => (
                "Runtime.Unknown".into(),
                format!(
                    "the runtime did not call the Runtime API within {:.2} seconds of starting",
                    self.settings.init_timeout.as_secs_f64()
                ),
                None,
            ),
        };
        let log_tail = instance.log.tail();
        let log = instance.log.clone();
        instance.kill().await;
        Err(AcquireError::InitFailed {
            error_type: failure.0,
            message: failure.1,
            runtime_body: failure.2,
            log_tail,
            log: Some(log),
        })
    }

    fn log_path(&self, stream: &str) -> PathBuf {
        log_stream_path(
            &self.settings.logs_dir,
            &self.config.account,
            &self.config.region,
            &self.config.log_group(),
            stream,
        )
    }
}

async fn kill_all(instances: Vec<Instance>) {
    for inst in instances {
        inst.kill().await;
    }
}

fn env_has(env: &[String], key: &str) -> bool {
    env.iter()
        .any(|kv| kv.split_once('=').is_some_and(|(k, _)| k == key))
}

pub(crate) fn describe_exit(e: Option<&ExitInfo>) -> String {
    match e {
        Some(ExitInfo {
            oom_killed: true, ..
        }) => "with error: signal: killed (out of memory)".into(),
        Some(ExitInfo { code: Some(c), .. }) => format!("with error: exit status {c}"),
        Some(ExitInfo {
            signal: Some(s), ..
        }) => format!("with error: signal: {s}"),
        _ => "unexpectedly".into(),
    }
}

/// `logs/<account>/<region>/<group>/<stream>.log`, with `/` in names encoded.
pub fn log_stream_path(
    logs_dir: &std::path::Path,
    account: &str,
    region: &str,
    group: &str,
    stream: &str,
) -> PathBuf {
    let enc = |s: &str| s.replace('%', "%25").replace('/', "%2F");
    logs_dir
        .join(account)
        .join(region)
        .join(enc(group))
        .join(format!("{}.log", enc(stream)))
}

/// The owning task of a sandbox instance: watches it end, kills it on
/// request, answers memory probes.
async fn own_instance(
    mut sandbox: Box<dyn SandboxInstance>,
    mut cmds: mpsc::Receiver<InstanceCmd>,
    exit: watch::Sender<Option<ExitInfo>>,
) {
    let info = loop {
        let cmd = tokio::select! {
            info = sandbox.wait() => break info,
            cmd = cmds.recv() => cmd,
        };
        match cmd {
            Some(InstanceCmd::MaxMemory(reply)) => {
                let _ = reply.send(sandbox.max_memory_used_bytes());
            }
            Some(InstanceCmd::Kill) | None => {
                sandbox.kill().await;
                break sandbox.wait().await;
            }
        }
    };
    let _ = exit.send(Some(info));
    // Keep answering (memory probes after exit, kill of a dead instance).
    while let Some(cmd) = cmds.recv().await {
        if let InstanceCmd::MaxMemory(reply) = cmd {
            let _ = reply.send(sandbox.max_memory_used_bytes());
        }
    }
}
