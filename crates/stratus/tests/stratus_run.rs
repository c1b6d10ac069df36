//! `stratus run IMAGE`, the no-Docker local test mode, against the real
//! binary: the test function (`tests/fixtures/rust-function`, the official
//! `lambda_runtime` crate) in an image from an OCI layout, a `docker save`
//! tarball written by skopeo, and a running `stratus serve`'s registry;
//! invoked with plain HTTP as the tutorial's `curl` does.
//!
//! Each run gets its own data directory so that, after SIGTERM, the test
//! can check that runc's state (`<data dir>/oci/runtime`) holds no
//! container.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};
use tempfile::TempDir;
use test_support::{poll_until, try_poll_until, OciImageBuilder, OutputExt, Skopeo, TestServer};

const INVOKE_PATH: &str = "/2015-03-31/functions/function/invocations";
/// Import, unpack and activation of the test image (the bootstrap build
/// happens before the process starts).
const START_TIMEOUT: Duration = Duration::from_secs(120);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_stratus")
}

/// Writes the test function's image (one layer with `/bootstrap`) as an
/// OCI layout in `dir`, tagged `latest`; returns `oci:DIR:latest`.
fn write_layout(dir: &Path) -> String {
    OciImageBuilder::new()
        .layer([("bootstrap", test_support::rust_function_bootstrap())])
        .entrypoint(&["/bootstrap"])
        .write(dir, "latest")
        .oci_ref()
}

/// A running `stratus run`.
struct Run {
    child: Option<Child>,
    addr: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr_log: PathBuf,
    data: PathBuf,
    http: Client,
}

impl Run {
    /// `stratus run IMAGE --listen 127.0.0.1:0 --data-dir DATA ARGS…`,
    /// waiting for its ready line.
    #[track_caller]
    fn start(image: &str, data: &Path, args: &[&str]) -> Run {
        let stderr_log = data.with_extension("stderr.log");
        let stderr = std::fs::File::create(&stderr_log).expect("stderr log");
        let mut child = Command::new(bin())
            .args(["run", image, "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn stratus run");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let lines = stdout.clone();
        let pipe = child.stdout.take().expect("stdout");
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                lines.lock().expect("lines").push(line);
            }
        });
        let mut run = Run {
            child: Some(child),
            addr: String::new(),
            stdout,
            stderr_log,
            data: data.to_path_buf(),
            http: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
        };
        let ready = try_poll_until(START_TIMEOUT, || {
            if let Some(addr) = run.stdout().lines().find_map(|l| {
                l.strip_prefix("stratus run listening on http://")
                    .map(str::to_string)
            }) {
                return Some(Ok(addr));
            }
            run.child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
                .map(Err)
        });
        match ready {
            Some(Ok(addr)) => run.addr = addr,
            Some(Err(status)) => panic!(
                "stratus run exited with {status} before it was ready:\n{}",
                run.stderr()
            ),
            None => panic!(
                "stratus run was not ready within {START_TIMEOUT:?}:\n{}",
                run.stderr()
            ),
        }
        run
    }

    fn stdout(&self) -> String {
        self.stdout.lock().expect("lines").join("\n")
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs `body` to the invocations path; (status, headers, JSON body).
    #[track_caller]
    fn invoke_at(&self, path: &str, body: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .body(body.to_string())
            .send()
            .unwrap_or_else(|e| panic!("invoke: {e}\n{}", self.stderr()));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().expect("body");
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {text}"));
        (status, headers, value)
    }

    #[track_caller]
    fn invoke(&self, body: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        self.invoke_at(INVOKE_PATH, body)
    }

    /// SIGTERM, then the exit status (within 30 s).
    #[track_caller]
    fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill -TERM failed");
        match try_poll_until(STOP_TIMEOUT, || child.try_wait().expect("try_wait")) {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "stratus run did not exit within {STOP_TIMEOUT:?} of SIGTERM:\n{}",
                    self.stderr()
                );
            }
        }
    }

    /// Containers in this run's runc state directory.
    fn containers(&self) -> Vec<String> {
        let root = self.data.join("oci").join("runtime");
        if !root.exists() {
            return Vec::new();
        }
        let out = Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["list", "-q"])
            .output()
            .expect("runc list");
        assert!(out.status.success(), "runc list: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Stops the run cleanly: exit 0 and no container left.
    #[track_caller]
    fn stop(&mut self) {
        let status = self.terminate();
        assert!(
            status.success(),
            "stratus run exited with {status} after SIGTERM:\n{}",
            self.stderr()
        );
        assert_eq!(
            self.containers(),
            Vec::<String>::new(),
            "leftover containers"
        );
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("--- stratus run stderr ---\n{}", self.stderr());
        }
    }
}

/// Runs `stratus run ARGS…` expecting it to fail before it is ready;
/// returns (status, stderr).
fn run_failing(args: &[&str], data: &Path) -> (ExitStatus, String) {
    let out = test_support::run_command(
        Command::new(bin())
            .arg("run")
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data),
        Duration::from_secs(120),
        "build stratus",
    );
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn oci_layout_invokes_errors_logs_concurrency_and_clean_stop() {
    let work = TempDir::with_prefix("stratus-run-").expect("tmp");
    let image = write_layout(&work.path().join("layout"));
    let data = work.path().join("data");
    let mut run = Run::start(&image, &data, &["--env", "USER_GREETING=hello"]);

    // Health, like the emulator's port answering.
    let health = run.http.get(run.url("/")).send().expect("GET /");
    assert_eq!(health.status().as_u16(), 200);

    // The tutorial's curl: echo the event; the environment is the function's.
    let (status, headers, body) = run.invoke(r#"{"action":"echo","n":1}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["echo"]["n"], 1, "{body}");
    assert_eq!(body["env"]["USER_GREETING"], "hello", "{body}");
    assert_eq!(
        body["env"]["AWS_LAMBDA_FUNCTION_NAME"], "function",
        "{body}"
    );
    assert!(headers.get("x-amz-function-error").is_none());
    let request_id = headers
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
        .expect("request id")
        .to_string();
    assert_eq!(body["request_id"], request_id.as_str());

    // Any function name in the path runs the one function, as the emulator does.
    let (status, _, body) = run.invoke_at("/2015-03-31/functions/anything/invocations", "{}");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["echo"], json!({}));

    // A function error: 200 with the error document and the header.
    let (status, headers, body) = run.invoke(r#"{"action":"error"}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        headers
            .get("x-amz-function-error")
            .and_then(|v| v.to_str().ok()),
        Some("Unhandled")
    );
    assert!(
        body["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("failed on purpose")),
        "{body}"
    );

    // A malformed event is the caller's fault, never a 5xx.
    let (status, headers, body) = run.invoke("{not json");
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok()),
        Some("InvalidRequestContentException")
    );

    // The function's output and the platform lines reach stdout.
    poll_until(Duration::from_secs(10), || {
        let out = run.stdout();
        (out.contains(&format!("START RequestId: {request_id}"))
            && out.contains(&format!("echo request {request_id}"))
            && out.contains(&format!("REPORT RequestId: {request_id}")))
        .then_some(())
    });

    // 8 invocations of 500 ms at once run side by side (the emulator
    // serves one at a time: 4 s). New instances start cold, so the bound
    // leaves room for that, far below the serial 4 s.
    let started = Instant::now();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (http, url) = (run.http.clone(), run.url(INVOKE_PATH));
            thread::spawn(move || {
                let resp = http
                    .post(url)
                    .body(r#"{"action":"sleep","ms":500}"#)
                    .send()
                    .expect("invoke");
                (resp.status().as_u16(), resp.text().expect("body"))
            })
        })
        .collect();
    for h in handles {
        let (status, body) = h.join().expect("thread");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"slept_ms\":500"), "{body}");
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(2),
        "8 concurrent 500 ms invocations took {elapsed:?}"
    );

    run.stop();
}

#[test]
fn docker_save_tarball_runs() {
    let work = TempDir::with_prefix("stratus-run-").expect("tmp");
    let layout = write_layout(&work.path().join("layout"));
    let tar = work.path().join("image.tar");
    Skopeo::new()
        .copy(
            &layout,
            &format!("docker-archive:{}:my_lambda:latest", tar.display()),
        )
        .assert_success("skopeo copy to docker-archive");
    let data = work.path().join("data");
    let mut run = Run::start(&tar.display().to_string(), &data, &["--memory-mb", "256"]);
    let (status, _, body) = run.invoke(r#"{"action":"echo","from":"tar"}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["echo"]["from"], "tar");
    assert_eq!(body["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    run.stop();
}

#[test]
fn image_from_a_local_registry_runs() {
    let work = TempDir::with_prefix("stratus-run-").expect("tmp");
    let layout = write_layout(&work.path().join("layout"));
    let mut serve = TestServer::start_with(
        Path::new(bin()),
        &work.path().join("serve-data"),
        &["--auto-create-repositories"],
    );
    let reference = format!("{}/team/app:v1", serve.registry_host());
    Skopeo::new()
        .copy(&layout, &format!("docker://{reference}"))
        .assert_success("skopeo push");
    let mut run = Run::start(&reference, &work.path().join("data"), &[]);
    let (status, _, body) = run.invoke(r#"{"from":"registry"}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["echo"]["from"], "registry");
    run.stop();
    serve.stop();
}

#[test]
fn bad_images_fail_with_a_clear_error() {
    let work = TempDir::with_prefix("stratus-run-").expect("tmp");
    let data = work.path().join("data");
    let missing = work.path().join("nope.tar");
    let (status, stderr) = run_failing(&[missing.to_str().expect("utf-8")], &data);
    assert!(!status.success());
    assert!(stderr.contains("does not exist"), "{stderr}");

    let (status, stderr) = run_failing(&["public.ecr.aws/lambda/python:3.11"], &data);
    assert!(!status.success());
    assert!(
        stderr.contains("never contacts") && stderr.contains("docker save"),
        "{stderr}"
    );

    let not_tar = work.path().join("junk.tar");
    std::fs::write(&not_tar, vec![7u8; 4096]).expect("write");
    let (status, stderr) = run_failing(&[not_tar.to_str().expect("utf-8")], &data);
    assert!(!status.success());
    assert!(stderr.contains("not a `docker save` tarball"), "{stderr}");

    let (status, stderr) = run_failing(&["localhost:1/app:latest"], &data);
    assert!(!status.success());
    assert!(stderr.contains("cannot reach the registry"), "{stderr}");
}

/// The tutorial's own path: an image built by docker, `docker save`d.
#[test]
fn docker_saved_image_runs() {
    test_support::require_docker!();
    let work = TempDir::with_prefix("stratus-run-").expect("tmp");
    let docker = test_support::Docker::new();
    let tag = format!("stratus-run-test:{}", std::process::id());
    docker.build_scratch_image_with(
        &tag,
        &[("bootstrap", test_support::rust_function_bootstrap())],
        &[r#"ENTRYPOINT ["/bootstrap"]"#],
    );
    let tar = work.path().join("saved.tar");
    docker.ok(&["save", &tag, "-o", tar.to_str().expect("utf-8")]);
    let mut run = Run::start(
        &format!("docker-archive:{}", tar.display()),
        &work.path().join("data"),
        &[],
    );
    let (status, _, body) = run.invoke(r#"{"from":"docker save"}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["echo"]["from"], "docker save");
    run.stop();
}
