//! The OCI runtime binary (runc or crun), driven through its CLI.
//!
//! Both speak the same command line for what is used here: a private
//! `--root` state directory under the executor's state dir (so listing and
//! cleaning up never touch other users' containers), `run --keep --bundle`,
//! `kill`, `delete --force`, `list --format json`, and a JSON log file for
//! the runtime's own errors (kept apart from the instance's stderr).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

/// A runtime command that takes longer than this is considered hung.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub(crate) struct Runtime {
    pub path: PathBuf,
    /// The runtime's state directory (`--root`).
    pub root: PathBuf,
}

impl Runtime {
    fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.path);
        cmd.arg("--root")
            .arg(&self.root)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            // Its own process group: a Ctrl-C at the terminal goes to
            // Stratus, which drains; `runc run` would forward it to the
            // instance at once.
            .process_group(0);
        cmd
    }

    /// `run` of a bundle, with the runtime's own log in `log`. The caller
    /// sets up stdio.
    pub(crate) fn run_command(
        &self,
        bundle: &Path,
        id: &str,
        log: &Path,
        keep: bool,
    ) -> tokio::process::Command {
        let mut cmd = self.command();
        cmd.arg("--log")
            .arg(log)
            .arg("--log-format")
            .arg("json")
            .arg("run");
        if keep {
            cmd.arg("--keep");
        }
        cmd.arg("--bundle").arg(bundle).arg(id);
        cmd
    }

    /// The arguments of a detached `run` of a bundle, or of a `create`
    /// (the container waits for [`Self::start`]); the container's init
    /// pid goes to `pid_file`, the runtime's own log to `log`. Run under
    /// [`crate::reaper`].
    pub(crate) fn detached_args(
        &self,
        create_only: bool,
        bundle: &Path,
        id: &str,
        log: &Path,
        pid_file: &Path,
    ) -> Vec<std::ffi::OsString> {
        let verb: &[&std::ffi::OsStr] = if create_only {
            &["create".as_ref()]
        } else {
            &["run".as_ref(), "--detach".as_ref()]
        };
        let head: [&std::ffi::OsStr; 6] = [
            "--root".as_ref(),
            self.root.as_os_str(),
            "--log".as_ref(),
            log.as_os_str(),
            "--log-format".as_ref(),
            "json".as_ref(),
        ];
        head.into_iter()
            .chain(verb.iter().copied())
            .chain([
                "--pid-file".as_ref(),
                pid_file.as_os_str(),
                "--bundle".as_ref(),
                bundle.as_os_str(),
                id.as_ref(),
            ])
            .map(std::ffi::OsStr::to_os_string)
            .collect()
    }

    async fn output(&self, args: &[&str]) -> Result<Output, String> {
        let mut cmd = self.command();
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        match tokio::time::timeout(COMMAND_TIMEOUT, cmd.output()).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(format!("cannot run {}: {e}", self.path.display())),
            Err(_) => Err(format!(
                "`{} {}` did not finish within {}s",
                self.path.display(),
                args.join(" "),
                COMMAND_TIMEOUT.as_secs()
            )),
        }
    }

    async fn checked(&self, args: &[&str], absent_ok: bool) -> Result<Output, String> {
        let out = self.output(args).await?;
        if out.status.success() {
            return Ok(out);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        if absent_ok && (stderr.contains("does not exist") || stderr.contains("not found")) {
            return Ok(out);
        }
        Err(format!(
            "`{} {}` failed ({}): {}",
            self.path.display(),
            args.join(" "),
            out.status,
            stderr.trim()
        ))
    }

    /// Starts the process of a created container.
    pub(crate) async fn start(&self, id: &str) -> Result<(), String> {
        self.checked(&["start", id], false).await.map(drop)
    }

    /// Sends SIGKILL to the container's processes.
    pub(crate) async fn kill(&self, id: &str) -> Result<(), String> {
        self.checked(&["kill", id, "KILL"], true).await.map(drop)
    }

    /// Removes the container, killing it first if it still runs; a missing
    /// container is fine.
    pub(crate) async fn delete_force(&self, id: &str) -> Result<(), String> {
        self.checked(&["delete", "--force", id], true)
            .await
            .map(drop)
    }

    /// [`Self::delete_force`] for places without an async runtime (Drop).
    pub(crate) fn delete_force_blocking(&self, id: &str) {
        let _ = std::process::Command::new(&self.path)
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Ids of the containers in our state directory.
    pub(crate) async fn list(&self) -> Result<Vec<String>, String> {
        let out = self.checked(&["list", "--format", "json"], false).await?;
        // runc prints `null` when there are none.
        let items: Option<Vec<serde_json::Value>> = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("unexpected `list` output: {e}"))?;
        Ok(items
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c["id"].as_str().map(str::to_string))
            .collect())
    }
}

/// The runtime's error messages from its JSON log file, joined.
pub(crate) fn log_errors(log: &[u8]) -> Option<String> {
    let errors: Vec<String> = String::from_utf8_lossy(log)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| matches!(v["level"].as_str(), Some("error" | "fatal")))
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// Candidate runtime binaries in preference order: crun (faster) before
/// runc, each the first found along `search_path`.
pub(crate) fn candidates(search_path: &[PathBuf]) -> Vec<PathBuf> {
    ["crun", "runc"]
        .iter()
        .filter_map(|name| {
            search_path
                .iter()
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_errors_from_the_runtime_log() {
        let log = br#"{"level":"warning","msg":"cgroup not empty","time":"t"}
{"level":"error","msg":"runc run failed: exec: \"/x\": stat /x: no such file or directory","time":"t"}
not json"#;
        assert_eq!(
            log_errors(log).as_deref(),
            Some("runc run failed: exec: \"/x\": stat /x: no such file or directory")
        );
        assert_eq!(log_errors(b""), None);
    }

    #[test]
    fn prefers_crun_then_runc_along_the_search_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).expect("mkdir");
        std::fs::create_dir(&b).expect("mkdir");
        std::fs::write(b.join("runc"), "").expect("write");
        std::fs::write(b.join("crun"), "").expect("write");
        std::fs::write(a.join("runc"), "").expect("write");
        assert_eq!(
            candidates(&[a.clone(), b.clone()]),
            vec![b.join("crun"), a.join("runc")]
        );
        assert_eq!(candidates(&[]), Vec::<PathBuf>::new());
    }
}
