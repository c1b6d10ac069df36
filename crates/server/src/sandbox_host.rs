//! Adapts the `host` executor to the functions crate's `Sandbox` trait:
//! what a zip function's runtime means as a local process.
//!
//! - `provided.*`: the package's `bootstrap`.
//! - `python3.*`: the local Python as `python3 -m awslambdaric HANDLER`
//!   (the runtime interface client installed with pip), with the package on
//!   `PYTHONPATH`.
//!
//! Either runs in the unpacked package's directory, which is also
//! `LAMBDA_TASK_ROOT` (instead of `/var/task`). Image functions do not run
//! here (activation already refuses them).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use executor_host::{ExitStatus, HostExecutor, HostExecutorConfig, HostInstance, ProcessSpec};
use functions::{ExitInfo, OutputStream, ResolvedImage, Sandbox, SandboxInstance, SandboxSpec};
use tokio::sync::OnceCell;

/// What the Python check runs: the interpreter's own path, if the runtime
/// interface client imports.
const PYTHON_PROBE: &str = "import sys, awslambdaric; sys.stdout.write(sys.executable)";
const PYTHON_PROBE_TIMEOUT: Duration = Duration::from_secs(20);

pub(crate) struct HostSandbox {
    executor: HostExecutor,
    /// `--host-python` as given (a name looked up on PATH, or a path).
    python: PathBuf,
    /// The interpreter's absolute path once the check passed.
    python_ready: OnceCell<PathBuf>,
}

impl HostSandbox {
    pub fn new(python: PathBuf) -> HostSandbox {
        HostSandbox {
            executor: HostExecutor::new(HostExecutorConfig::default()),
            python,
            python_ready: OnceCell::new(),
        }
    }

    /// The Python that runs `python3.*` functions, checked once it works
    /// (and again on the next use after a failure, so installing
    /// `awslambdaric` later is enough). The error says what to do.
    pub async fn python(&self) -> Result<PathBuf, String> {
        self.python_ready
            .get_or_try_init(|| async {
                let exe = probe_python(&self.python).await?;
                tracing::info!(python = %exe.display(), "host executor: python3 functions run on this interpreter");
                Ok(exe)
            })
            .await
            .cloned()
    }
}

async fn probe_python(python: &Path) -> Result<PathBuf, String> {
    let shown = python.display();
    let run = tokio::process::Command::new(python)
        .args(["-c", PYTHON_PROBE])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(PYTHON_PROBE_TIMEOUT, run).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            return Err(format!(
                "cannot run {shown} ({e}); install Python 3 or point --host-python at it"
            ))
        }
        Err(_) => {
            return Err(format!(
                "{shown} did not answer within {}s",
                PYTHON_PROBE_TIMEOUT.as_secs()
            ))
        }
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        return Err(format!(
            "{shown} cannot import the runtime interface client ({last}); install it with `{shown} -m pip install awslambdaric`"
        ));
    }
    let exe = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if exe.is_absolute() {
        Ok(exe)
    } else {
        Err(format!(
            "{shown} does not say where its interpreter is (sys.executable is {:?}); point --host-python at the interpreter",
            exe.display().to_string()
        ))
    }
}

/// What runs for a runtime (the environment is added by the caller).
#[derive(Debug, PartialEq)]
enum Launch {
    Bootstrap,
    Python { handler: String },
}

fn launch_for(runtime: &str, handler: Option<&str>) -> Result<Launch, String> {
    if runtime.starts_with("provided") {
        return Ok(Launch::Bootstrap);
    }
    if runtime.starts_with("python3") {
        return match handler.filter(|h| !h.is_empty()) {
            Some(h) => Ok(Launch::Python {
                handler: h.to_string(),
            }),
            None => Err("a python3 function needs a handler (module.function)".into()),
        };
    }
    Err(format!(
        "the host executor runs provided.* (a bootstrap) and python3.* (with awslambdaric) functions, not {runtime}; use --executor oci or docker for it"
    ))
}

/// Sets `key` in `env`, replacing what was there.
fn set_env(env: &mut Vec<(String, String)>, key: &str, value: String) {
    env.retain(|(k, _)| k != key);
    env.push((key.to_string(), value));
}

#[async_trait::async_trait]
impl Sandbox for HostSandbox {
    fn name(&self) -> &'static str {
        "host"
    }

    fn runs_images(&self) -> bool {
        false
    }

    async fn prepare(&self, _image: &ResolvedImage) -> Result<(), String> {
        Ok(())
    }

    async fn start(&self, spec: SandboxSpec) -> Result<Box<dyn SandboxInstance>, String> {
        let Some(code_dir) = &spec.code_dir else {
            return Err(
                "the host executor runs zip functions only; image functions need --executor oci or docker"
                    .into(),
            );
        };
        // Absolute, so that it means the same as the working directory
        // and as a path in the environment.
        let code_dir = tokio::fs::canonicalize(code_dir)
            .await
            .map_err(|e| format!("the function's package is not there ({e})"))?;
        let runtime = spec.runtime.as_deref().unwrap_or_default();
        let mut env = spec.env;
        let task_root = code_dir.to_string_lossy().into_owned();
        set_env(&mut env, "LAMBDA_TASK_ROOT", task_root.clone());
        let (program, args) = match launch_for(runtime, spec.handler.as_deref())? {
            Launch::Bootstrap => {
                let bootstrap = code_dir.join("bootstrap");
                let executable = tokio::fs::metadata(&bootstrap)
                    .await
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
                if !executable {
                    return Err("the package has no executable bootstrap at its root".into());
                }
                (bootstrap, Vec::new())
            }
            Launch::Python { handler } => {
                set_env(&mut env, "PYTHONPATH", task_root);
                let python = self.python().await?;
                (python, vec!["-m".into(), "awslambdaric".into(), handler])
            }
        };
        let instance = self
            .executor
            .start(ProcessSpec {
                instance_id: spec.instance_id,
                program,
                args,
                env,
                cwd: code_dir,
            })
            .map_err(|e| e.to_string())?;
        Ok(Box::new(HostSandboxInstance { instance }))
    }
}

struct HostSandboxInstance {
    instance: HostInstance,
}

fn exit_info(status: ExitStatus) -> ExitInfo {
    let (code, signal) = match status {
        ExitStatus::Code(c) => (Some(c), None),
        ExitStatus::Signal(s) => (None, Some(s)),
        ExitStatus::Unknown => (None, None),
    };
    ExitInfo {
        code,
        signal,
        // No memory limit, so no OOM kill of ours.
        oom_killed: false,
    }
}

#[async_trait::async_trait]
impl SandboxInstance for HostSandboxInstance {
    fn take_output(&mut self) -> Option<OutputStream> {
        // Straight from the executor's channel, so that lines waiting
        // there are visible to the log at once.
        let from = self.instance.take_output()?;
        Some(Box::new(crate::sandbox::ChannelOutput::new(
            from,
            |l: executor_host::OutputLine| l.line,
        )))
    }

    async fn wait(&mut self) -> ExitInfo {
        exit_info(self.instance.wait().await)
    }

    async fn kill(&mut self) {
        let _ = self.instance.kill().await;
    }

    fn max_memory_used_bytes(&self) -> Option<u64> {
        self.instance.max_memory_used_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_map_to_what_runs() {
        assert_eq!(
            launch_for("provided.al2023", Some("bootstrap")),
            Ok(Launch::Bootstrap)
        );
        assert_eq!(launch_for("provided", None), Ok(Launch::Bootstrap));
        assert_eq!(
            launch_for("python3.11", Some("app.handler")),
            Ok(Launch::Python {
                handler: "app.handler".into()
            })
        );
        assert!(launch_for("python3.12", None)
            .expect_err("no handler")
            .contains("handler"));
        let err = launch_for("nodejs20.x", Some("index.handler")).expect_err("unsupported");
        assert!(
            err.contains("provided.*") && err.contains("python3.*") && err.contains("nodejs20.x"),
            "{err}"
        );
    }

    #[test]
    fn set_env_replaces() {
        let mut env = vec![
            ("LAMBDA_TASK_ROOT".to_string(), "/var/task".to_string()),
            ("A".to_string(), "1".to_string()),
        ];
        set_env(&mut env, "LAMBDA_TASK_ROOT", "/data/code/x".into());
        assert_eq!(
            env,
            [
                ("A".to_string(), "1".to_string()),
                ("LAMBDA_TASK_ROOT".to_string(), "/data/code/x".to_string())
            ]
        );
    }

    #[tokio::test]
    async fn a_missing_python_says_what_to_do() {
        let err = probe_python(Path::new("/nonexistent/python3"))
            .await
            .expect_err("missing");
        assert!(err.contains("--host-python"), "{err}");
    }
}
