//! Container-image functions end to end, against the real `stratus`
//! binary: the test function (`tests/fixtures/rust-function`, built on the
//! official `lambda_runtime` crate, statically linked) goes into an image
//! built with [`OciImageBuilder`], skopeo pushes it to the built-in
//! registry, and the real aws CLI creates, waits for, invokes, updates and
//! deletes the function. The oci executor runs each instance under runc.
//!
//! Raw HTTP stands in for the CLI where the CLI cannot say what a test
//! needs (bodies over 6 MB, parallel requests, a 429 the CLI would retry)
//! or where a loop of CLI runs would only cost time. Raw requests carry an
//! unverified SigV4 `Authorization` header whose credential scope names
//! [`REGION`]: the server takes the caller's region from it.
//!
//! Every server is stopped gracefully at the end of its test, and the test
//! then checks that no container of that server is left in runc's state
//! (`<data dir>/oci/runtime`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};
use tempfile::TempDir;
use test_support::{
    aws_err, aws_json, poll_until, BuiltImage, CopyOptions, OciImageBuilder, OutputExt, Skopeo,
    TestServer,
};

const REGION: &str = "ap-northeast-2";
const ACCOUNT: &str = "000000000000";
const ROLE: &str = "arn:aws:iam::000000000000:role/lambda-role";
/// The largest synchronous Invoke request body.
const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
/// The bytes of log `X-Amz-Log-Result` carries at most.
const TAIL_BYTES: usize = 4096;
/// How long a function may take to become `Active` (the image is unpacked
/// once, in the background).
const ACTIVATION_TIMEOUT: Duration = Duration::from_secs(60);

// ----- the test function ----------------------------------------------------

/// The test function's `bootstrap` (built once per test process).
fn bootstrap() -> &'static [u8] {
    test_support::rust_function_bootstrap()
}

// ----- a server and its clients --------------------------------------------

/// A server with its data dir, a directory for OCI layouts and invoke
/// output files, and an HTTP client for raw requests.
struct Stratus {
    server: TestServer,
    http: Client,
    work: TempDir,
    outfiles: AtomicUsize,
    /// Declared last: removed after the server is gone.
    _data: TempDir,
}

impl Stratus {
    fn start() -> Stratus {
        Self::start_with(&[])
    }

    fn start_with(args: &[&str]) -> Stratus {
        // Build before the server starts, so that its time does not count
        // against anything the server does.
        bootstrap();
        let data = TempDir::with_prefix("stratus-lambda-image-").expect("create data dir");
        let server =
            TestServer::start_with(Path::new(env!("CARGO_BIN_EXE_stratus")), data.path(), args);
        Stratus {
            server,
            http: Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("http client"),
            work: TempDir::with_prefix("stratus-lambda-work-").expect("create work dir"),
            outfiles: AtomicUsize::new(0),
            _data: data,
        }
    }

    /// `aws lambda ARGS…`, asserting success; stdout as JSON.
    #[track_caller]
    fn lambda(&self, args: &[&str]) -> Value {
        let mut all = vec!["lambda"];
        all.extend_from_slice(args);
        aws_json(&self.server, REGION, &all)
    }

    /// `aws lambda ARGS…`, asserting failure; stderr.
    #[track_caller]
    fn lambda_err(&self, args: &[&str]) -> String {
        let mut all = vec!["lambda"];
        all.extend_from_slice(args);
        aws_err(&self.server, REGION, &all)
    }

    /// `localhost:PORT/REPO:TAG`.
    fn local_uri(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.server.registry_host())
    }

    /// Creates `repo` with the aws CLI.
    #[track_caller]
    fn create_repository(&self, repo: &str) {
        aws_json(
            &self.server,
            REGION,
            &["ecr", "create-repository", "--repository-name", repo],
        );
    }

    /// Builds the test function's image (one layer holding `/bootstrap`,
    /// entrypoint `["/bootstrap"]`, `env` in its config) and pushes it to
    /// `localhost:PORT/REPO:TAG` with skopeo, digests preserved.
    #[track_caller]
    fn push_image(&self, repo: &str, tag: &str, env: &[(&str, &str)]) -> BuiltImage {
        let mut builder = OciImageBuilder::new()
            .layer([("bootstrap", bootstrap())])
            .entrypoint(&["/bootstrap"]);
        for (key, value) in env {
            builder = builder.env(key, value);
        }
        let layout = self
            .work
            .path()
            .join("layouts")
            .join(repo.replace('/', "_"));
        let image = builder.write(&layout, tag);
        let dest = format!("docker://{}", self.local_uri(repo, tag));
        Skopeo::new()
            .copy_with(
                &image.oci_ref(),
                &dest,
                CopyOptions {
                    preserve_digests: true,
                    ..CopyOptions::default()
                },
            )
            .assert_success(&format!("skopeo copy to {dest}"));
        image
    }

    /// `aws lambda create-function` for an image function, with `extra`
    /// arguments; returns the FunctionConfiguration.
    #[track_caller]
    fn create_function(&self, name: &str, image_uri: &str, extra: &[&str]) -> Value {
        let code = format!("ImageUri={image_uri}");
        let mut args = vec![
            "create-function",
            "--function-name",
            name,
            "--package-type",
            "Image",
            "--code",
            &code,
            "--role",
            ROLE,
            "--architectures",
            "x86_64",
        ];
        args.extend_from_slice(extra);
        self.lambda(&args)
    }

    /// [`Stratus::create_function`], then waits until it is `Active`.
    #[track_caller]
    fn create_active(&self, name: &str, image_uri: &str, extra: &[&str]) -> Value {
        let created = self.create_function(name, image_uri, extra);
        assert_eq!(created["State"], "Pending", "{created}");
        self.wait_ready(name)
    }

    /// Polls GetFunction (raw HTTP) until the function is `Active` with
    /// `LastUpdateStatus: Successful`; fails at once on `Failed`.
    #[track_caller]
    fn wait_ready(&self, name: &str) -> Value {
        poll_until(ACTIVATION_TIMEOUT, || {
            let r = self.send(
                self.http
                    .get(self.server.url(&format!("/2015-03-31/functions/{name}"))),
            );
            assert_eq!(r.status, 200, "GetFunction {name}: {}", r.text());
            let c = r.json()["Configuration"].clone();
            assert_ne!(c["State"], "Failed", "{c}");
            assert_ne!(c["LastUpdateStatus"], "Failed", "{c}");
            (c["State"] == "Active" && c["LastUpdateStatus"] == "Successful").then_some(c)
        })
    }

    /// `aws lambda invoke --payload PAYLOAD [--log-type Tail] OUTFILE`.
    #[track_caller]
    fn invoke(&self, name: &str, payload: &Value, tail: bool) -> Invoked {
        let tail: &[&str] = if tail { &["--log-type", "Tail"] } else { &[] };
        self.invoke_with(name, payload, tail)
    }

    /// `aws lambda invoke --payload PAYLOAD EXTRA… OUTFILE`.
    #[track_caller]
    fn invoke_with(&self, name: &str, payload: &Value, extra: &[&str]) -> Invoked {
        let payload = payload.to_string();
        let n = self.outfiles.fetch_add(1, Ordering::Relaxed);
        let outfile = self.work.path().join(format!("out-{n}.json"));
        let outfile_arg = outfile.to_string_lossy().into_owned();
        let mut args = vec!["invoke", "--function-name", name, "--payload", &payload];
        args.extend_from_slice(extra);
        args.push(&outfile_arg);
        let out = self.lambda(&args);
        let body = fs::read(&outfile).unwrap_or_else(|e| panic!("read {}: {e}", outfile.display()));
        Invoked {
            status: out["StatusCode"]
                .as_u64()
                .unwrap_or_else(|| panic!("{out}")) as u16,
            function_error: out["FunctionError"].as_str().map(str::to_string),
            executed_version: out["ExecutedVersion"].as_str().map(str::to_string),
            log: out["LogResult"].as_str().map(decode_log),
            body,
        }
    }

    /// POST …/invocations over raw HTTP (`Tail` logs asked for).
    #[track_caller]
    fn invoke_http(&self, name: &str, body: impl Into<reqwest::blocking::Body>) -> Raw {
        self.send(
            self.http
                .post(
                    self.server
                        .url(&format!("/2015-03-31/functions/{name}/invocations")),
                )
                .header("X-Amz-Log-Type", "Tail")
                .body(body),
        )
    }

    /// Sends a request carrying a credential scope for [`REGION`].
    #[track_caller]
    fn send(&self, request: reqwest::blocking::RequestBuilder) -> Raw {
        let response = request
            .header(
                "Authorization",
                format!(
                    "AWS4-HMAC-SHA256 Credential=test/20250101/{REGION}/lambda/aws4_request, \
                     SignedHeaders=host, Signature={}",
                    "0".repeat(64)
                ),
            )
            .send()
            .unwrap_or_else(|e| panic!("request to stratus failed: {e}"));
        Raw::read(response)
    }

    /// Ids of the containers running an instance in this server's runc
    /// state (a spare made ahead for the next cold start is `created`, and
    /// not counted).
    #[track_caller]
    fn containers(&self) -> Vec<String> {
        self.container_states()
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .filter(|(_, status)| status != "created")
            .map(|(id, _)| id)
            .collect()
    }

    /// Ids of the spares: containers created ahead, not started.
    #[track_caller]
    fn spares(&self) -> Vec<String> {
        self.container_states()
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .filter(|(_, status)| status == "created")
            .map(|(id, _)| id)
            .collect()
    }

    /// Every container, whatever its status.
    fn list_containers(&self) -> Result<Vec<String>, String> {
        Ok(self
            .container_states()?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// (id, status) of every container in this server's runc state.
    fn container_states(&self) -> Result<Vec<(String, String)>, String> {
        let root = self.runtime_root();
        if !root.exists() {
            return Ok(Vec::new());
        }
        let out = Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["list", "--format", "json"])
            .output()
            .map_err(|e| format!("cannot run runc (apt-get install runc): {e}"))?;
        if !out.status.success() {
            return Err(format!("runc list failed: {}", out.stderr_str()));
        }
        let listed: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        Ok(listed
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|c| {
                        (
                            string_at(c, "/id").to_string(),
                            string_at(c, "/status").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Everything the instances of function `name` logged so far (the
    /// files of its log group, `<data dir>/logs/<account>/<region>/<group>/
    /// <stream>.log`, one `<epoch ms>\t<line>` per line), timestamps cut.
    fn function_log(&self, name: &str) -> String {
        let group = format!("/aws/lambda/{name}").replace('/', "%2F");
        let dir = self
            .server
            .data_dir()
            .join("logs")
            .join(ACCOUNT)
            .join(REGION)
            .join(group);
        let Ok(entries) = fs::read_dir(&dir) else {
            return String::new();
        };
        let mut streams: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
        streams.sort();
        let mut log = String::new();
        for path in streams {
            let text = fs::read_to_string(&path).unwrap_or_default();
            for line in text.lines() {
                log.push_str(line.split_once('\t').map_or(line, |(_, l)| l));
                log.push('\n');
            }
        }
        log
    }

    fn runtime_root(&self) -> PathBuf {
        self.server.data_dir().join("oci").join("runtime")
    }

    /// Polls until this server runs exactly `n` containers.
    #[track_caller]
    fn wait_containers(&self, n: usize) {
        let mut last = Vec::new();
        let ok = test_support::try_poll_until(Duration::from_secs(15), || {
            last = self.containers();
            (last.len() == n).then_some(())
        });
        assert!(ok.is_some(), "expected {n} containers, runc lists {last:?}");
    }
}

impl Drop for Stratus {
    /// Stops the server gracefully (it stops every instance) and checks
    /// that no container is left; after a failure, removes any that are.
    fn drop(&mut self) {
        if self.server.is_running() {
            let status = self.server.terminate();
            if !thread::panicking() {
                assert!(status.success(), "stratus exited with {status}");
            }
        }
        let left = self.list_containers().unwrap_or_default();
        if left.is_empty() {
            return;
        }
        for id in &left {
            let _ = Command::new("runc")
                .arg("--root")
                .arg(self.runtime_root())
                .args(["delete", "--force", id])
                .output();
        }
        if !thread::panicking() {
            panic!(
                "containers left after a graceful stop: {left:?}\n{}",
                self.server.stderr_tail()
            );
        }
    }
}

/// A raw HTTP response, read completely.
struct Raw {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    fn read(response: Response) -> Raw {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().expect("read response body").to_vec();
        Raw {
            status,
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }

    /// The decoded `X-Amz-Log-Result`.
    #[track_caller]
    fn log(&self) -> String {
        decode_log(
            self.header("x-amz-log-result")
                .unwrap_or_else(|| panic!("no X-Amz-Log-Result: {:?}", self.headers)),
        )
    }
}

/// What `aws lambda invoke` printed and wrote.
#[derive(Debug)]
struct Invoked {
    status: u16,
    function_error: Option<String>,
    executed_version: Option<String>,
    /// `LogResult`, decoded.
    log: Option<String>,
    /// The outfile.
    body: Vec<u8>,
}

impl Invoked {
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "payload is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    #[track_caller]
    fn log(&self) -> &str {
        self.log
            .as_deref()
            .unwrap_or_else(|| panic!("no LogResult: {self:?}"))
    }

    /// Asserts a successful invocation and returns its payload.
    #[track_caller]
    fn ok(&self) -> Value {
        assert_eq!(self.status, 200, "{self:?}");
        assert_eq!(
            self.function_error,
            None,
            "function failed: {}\nlog:\n{}",
            String::from_utf8_lossy(&self.body),
            self.log.as_deref().unwrap_or("")
        );
        self.json()
    }

    /// Asserts an `Unhandled` function error and returns its document.
    #[track_caller]
    fn unhandled(&self) -> Value {
        assert_eq!(self.status, 200, "{self:?}");
        assert_eq!(
            self.function_error.as_deref(),
            Some("Unhandled"),
            "{self:?}"
        );
        self.json()
    }
}

#[track_caller]
fn decode_log(b64: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_else(|e| panic!("LogResult is not base64 ({e}): {b64}"));
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("LogResult is not UTF-8: {e}"))
}

/// The fields of a `REPORT` line: `REPORT RequestId: ID\tDuration: 1.23
/// ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 20
/// MB[\tInit Duration: 45.67 ms]…`.
#[derive(Debug)]
struct Report {
    request_id: String,
    duration_ms: f64,
    billed_ms: f64,
    memory_mb: u64,
    max_memory_used_mb: u64,
    init_ms: Option<f64>,
}

#[track_caller]
fn parse_report(line: &str) -> Report {
    let rest = line
        .strip_prefix("REPORT ")
        .unwrap_or_else(|| panic!("not a REPORT line: {line:?}"));
    let fields: BTreeMap<&str, &str> = rest
        .split('\t')
        .filter(|f| !f.is_empty())
        .map(|f| {
            f.split_once(": ")
                .unwrap_or_else(|| panic!("REPORT field {f:?} is not `Name: value` in {line:?}"))
        })
        .collect();
    let field = |name: &str| {
        *fields
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
    };
    let number = |value: &str, unit: &str| -> f64 {
        value
            .strip_suffix(unit)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{value:?} is not a number of{unit} in {line:?}"))
    };
    Report {
        request_id: field("RequestId").to_string(),
        duration_ms: number(field("Duration"), " ms"),
        billed_ms: number(field("Billed Duration"), " ms"),
        memory_mb: number(field("Memory Size"), " MB") as u64,
        max_memory_used_mb: number(field("Max Memory Used"), " MB") as u64,
        init_ms: fields.get("Init Duration").map(|v| number(v, " ms")),
    }
}

/// Checks the platform lines of one invocation's log tail: it ends with
/// `END` and `REPORT` for `request_id` (after `START` when the tail holds
/// it); returns the report.
#[track_caller]
fn check_log(log: &str, request_id: &str, memory_mb: u64) -> Report {
    let lines: Vec<&str> = log.lines().collect();
    let n = lines.len();
    assert!(n >= 2, "log too short:\n{log}");
    assert_eq!(
        lines[n - 2],
        format!("END RequestId: {request_id}"),
        "{log}"
    );
    let report = parse_report(lines[n - 1]);
    assert_eq!(report.request_id, request_id, "{log}");
    assert_eq!(report.memory_mb, memory_mb, "{log}");
    assert!(report.duration_ms > 0.0, "{report:?}");
    assert!(report.billed_ms >= report.duration_ms, "{report:?}");
    assert!(
        report.max_memory_used_mb > 0 && report.max_memory_used_mb <= memory_mb,
        "{report:?}"
    );
    report
}

/// The `RequestId` of the `START` line, which must be the first line, for
/// `version`.
#[track_caller]
fn start_request_id(log: &str, version: &str) -> String {
    let first = log.lines().next().unwrap_or_default();
    let rest = first
        .strip_prefix("START RequestId: ")
        .unwrap_or_else(|| panic!("the log does not begin with START:\n{log}"));
    let (id, v) = rest
        .split_once(" Version: ")
        .unwrap_or_else(|| panic!("no Version in {first:?}"));
    assert_eq!(v, version, "{first}");
    id.to_string()
}

/// Asserts that the aws CLI's stderr names the error `code`.
#[track_caller]
fn assert_code(stderr: &str, code: &str) {
    assert!(
        stderr.contains(&format!("({code})")),
        "expected {code} in:\n{stderr}"
    );
}

fn echo(n: u64) -> Value {
    json!({"action": "echo", "n": n})
}

fn string_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
}

// ----- create, activate, invoke ---------------------------------------------

#[test]
fn an_image_function_is_created_activated_and_invoked() {
    let s = Stratus::start();
    s.create_repository("hello");
    let image = s.push_image("hello", "latest", &[("USER_FROM_IMAGE", "image")]);
    let digest_hex = image.manifest_digest.trim_start_matches("sha256:");

    let created = s.create_function(
        "f",
        &s.local_uri("hello", "latest"),
        &["--environment", "Variables={USER_STAGE=dev}"],
    );
    let arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:f");
    assert_eq!(created["FunctionName"], "f", "{created}");
    assert_eq!(created["FunctionArn"], arn.as_str(), "{created}");
    assert_eq!(created["State"], "Pending", "{created}");
    assert_eq!(created["StateReasonCode"], "Creating", "{created}");
    assert!(created.get("LastUpdateStatus").is_none(), "{created}");
    assert_eq!(created["CodeSha256"], digest_hex, "{created}");
    assert_eq!(created["PackageType"], "Image", "{created}");
    assert_eq!(created["Version"], "$LATEST", "{created}");
    assert_eq!(created["Role"], ROLE, "{created}");
    assert_eq!(created["MemorySize"], 128, "{created}");
    assert_eq!(created["Timeout"], 3, "{created}");
    assert_eq!(created["Architectures"], json!(["x86_64"]), "{created}");
    assert_eq!(
        created["Environment"],
        json!({"Variables": {"USER_STAGE": "dev"}}),
        "{created}"
    );
    assert_eq!(
        created["LoggingConfig"]["LogGroup"], "/aws/lambda/f",
        "{created}"
    );
    assert!(created.get("Runtime").is_none(), "{created}");

    // The waiter returns once GetFunction says Active.
    s.lambda(&["wait", "function-active-v2", "--function-name", "f"]);
    let config = s.lambda(&["get-function-configuration", "--function-name", "f"]);
    assert_eq!(config["State"], "Active", "{config}");
    assert_eq!(config["LastUpdateStatus"], "Successful", "{config}");
    assert!(config.get("StateReason").is_none(), "{config}");
    assert_eq!(config["CodeSha256"], digest_hex, "{config}");
    assert_eq!(config["RevisionId"], created["RevisionId"], "{config}");

    // Cold.
    let first = s.invoke("f", &echo(1), true);
    assert_eq!(first.executed_version.as_deref(), Some("$LATEST"));
    let body = first.ok();
    assert_eq!(body["echo"], echo(1), "{body}");
    assert_eq!(body["function_arn"], arn.as_str(), "{body}");
    let env = &body["env"];
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "f", "{env}");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST", "{env}");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "128", "{env}");
    assert_eq!(env["AWS_REGION"], REGION, "{env}");
    assert_eq!(env["AWS_DEFAULT_REGION"], REGION, "{env}");
    assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/f", "{env}");
    assert_eq!(
        env["AWS_ENDPOINT_URL"],
        s.server.endpoint().as_str(),
        "{env}"
    );
    let runtime_api = string_at(env, "/AWS_LAMBDA_RUNTIME_API");
    let port = runtime_api
        .strip_prefix("127.0.0.1:")
        .unwrap_or_else(|| panic!("AWS_LAMBDA_RUNTIME_API={runtime_api}"));
    assert!(port.parse::<u16>().is_ok_and(|p| p != 0), "{runtime_api}");
    assert_eq!(env["USER_STAGE"], "dev", "{env}");
    assert_eq!(env["USER_FROM_IMAGE"], "image", "{env}");
    let stream = string_at(env, "/AWS_LAMBDA_LOG_STREAM_NAME").to_string();

    let log = first.log();
    let request_id = start_request_id(log, "$LATEST");
    assert_eq!(body["request_id"], request_id.as_str(), "{body}");
    assert!(
        log.contains(&format!("\necho request {request_id}\n")),
        "the function's line is missing:\n{log}"
    );
    let report = check_log(log, &request_id, 128);
    assert!(
        report.init_ms.is_some_and(|ms| ms > 0.0),
        "a cold start reports its Init Duration:\n{log}"
    );

    // Warm: the same instance, no Init Duration.
    let second = s.invoke("f", &echo(2), true);
    let body = second.ok();
    assert_eq!(body["echo"], echo(2), "{body}");
    assert_eq!(
        body["env"]["AWS_LAMBDA_LOG_STREAM_NAME"],
        stream.as_str(),
        "{body}"
    );
    let log = second.log();
    let second_id = start_request_id(log, "$LATEST");
    assert_ne!(second_id, request_id);
    let report = check_log(log, &second_id, 128);
    assert_eq!(
        report.init_ms, None,
        "a warm invoke has no Init Duration:\n{log}"
    );
    assert_eq!(s.containers().len(), 1);
}

/// GetFunction, GetFunctionConfiguration and ListFunctions; an `ImageUri`
/// in ECR form names the same registry; Invoke takes a name, a partial or
/// full ARN and a qualifier.
#[test]
fn get_list_and_address_functions() {
    let s = Stratus::start();
    s.create_repository("team/app");
    let image = s.push_image("team/app", "latest", &[]);
    let ecr_host = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com");
    let ecr_uri = format!("{ecr_host}/team/app:latest");

    s.create_active("b-ecr", &ecr_uri, &[]);
    let got = s.lambda(&["get-function", "--function-name", "b-ecr"]);
    assert_eq!(got["Code"]["RepositoryType"], "ECR", "{got}");
    assert_eq!(got["Code"]["ImageUri"], ecr_uri.as_str(), "{got}");
    assert_eq!(
        got["Code"]["ResolvedImageUri"],
        format!("{ecr_host}/team/app@{}", image.manifest_digest).as_str(),
        "{got}"
    );
    let config = s.lambda(&["get-function-configuration", "--function-name", "b-ecr"]);
    assert_eq!(got["Configuration"], config, "{got}");
    assert_eq!(
        config["CodeSha256"],
        image.manifest_digest.trim_start_matches("sha256:"),
        "{config}"
    );

    let r = s.invoke_http("b-ecr", echo(7).to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-function-error"), None, "{}", r.text());
    assert_eq!(r.header("x-amz-executed-version"), Some("$LATEST"));
    assert_eq!(r.json()["echo"], echo(7));

    // The function sees the ARN the caller used.
    let arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:b-ecr");
    for (path_name, query, invoked_arn) in [
        ("b-ecr%3A%24LATEST", "", format!("{arn}:$LATEST")),
        ("b-ecr", "?Qualifier=%24LATEST", format!("{arn}:$LATEST")),
        ("000000000000%3Afunction%3Ab-ecr", "", arn.clone()),
        (
            "arn%3Aaws%3Alambda%3Aap-northeast-2%3A000000000000%3Afunction%3Ab-ecr",
            "",
            arn.clone(),
        ),
    ] {
        let r = s.send(
            s.http
                .post(s.server.url(&format!(
                    "/2015-03-31/functions/{path_name}/invocations{query}"
                )))
                .body(echo(8).to_string()),
        );
        assert_eq!(r.status, 200, "{path_name}{query}: {}", r.text());
        assert_eq!(r.header("x-amz-executed-version"), Some("$LATEST"));
        assert_eq!(
            r.json()["function_arn"],
            invoked_arn.as_str(),
            "{path_name}{query}"
        );
    }
    let r = s.send(
        s.http
            .post(
                s.server
                    .url("/2015-03-31/functions/b-ecr/invocations?Qualifier=7"),
            )
            .body("{}"),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("ResourceNotFoundException")
    );
    let r = s.send(
        s.http
            .post(
                s.server
                    .url("/2015-03-31/functions/b-ecr%3A%24LATEST/invocations?Qualifier=7"),
            )
            .body("{}"),
    );
    assert_eq!(r.status, 400, "{}", r.text());

    // The local form resolves to the same image; the resolved URI keeps it.
    let local_uri = s.local_uri("team/app", "latest");
    s.create_function("c-local", &local_uri, &[]);
    s.create_function("a-local", &local_uri, &["--memory-size", "256"]);
    let got = s.lambda(&["get-function", "--function-name", "a-local"]);
    assert_eq!(
        got["Code"]["ResolvedImageUri"],
        format!(
            "{}/team/app@{}",
            s.server.registry_host(),
            image.manifest_digest
        )
        .as_str(),
        "{got}"
    );

    let names = |v: &Value| -> Vec<String> {
        v["Functions"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|f| string_at(f, "/FunctionName").to_string())
            .collect()
    };
    // One function per page: the CLI follows NextMarker to the end.
    let all = s.lambda(&["list-functions", "--page-size", "1"]);
    assert_eq!(names(&all), ["a-local", "b-ecr", "c-local"], "{all}");
    let a = &all["Functions"][0];
    assert_eq!(a["MemorySize"], 256, "{a}");
    assert_eq!(a["PackageType"], "Image", "{a}");
    // Two items, then the rest from the CLI's token.
    let page = s.lambda(&["list-functions", "--max-items", "2"]);
    assert_eq!(names(&page), ["a-local", "b-ecr"], "{page}");
    let token = string_at(&page, "/NextToken");
    let rest = s.lambda(&["list-functions", "--starting-token", token]);
    assert_eq!(names(&rest), ["c-local"], "{rest}");
    assert!(rest.get("NextToken").is_none(), "{rest}");
}

#[test]
fn create_function_rejects_bad_requests() {
    let s = Stratus::start();
    s.create_repository("app");
    s.push_image("app", "v1", &[]);
    let uri = s.local_uri("app", "v1");
    let create = |name: &str, image_uri: &str, role: &str| {
        let code = format!("ImageUri={image_uri}");
        s.lambda_err(&[
            "create-function",
            "--function-name",
            name,
            "--package-type",
            "Image",
            "--code",
            &code,
            "--role",
            role,
        ])
    };
    // Images that are not there, or not in Stratus' registry.
    let missing_tag = create("f", &s.local_uri("app", "nope"), ROLE);
    assert_code(&missing_tag, "InvalidParameterValueException");
    assert!(missing_tag.contains("app:nope"), "{missing_tag}");
    let missing_repo = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/nothing:latest");
    assert_code(
        &create("f", &missing_repo, ROLE),
        "InvalidParameterValueException",
    );
    assert_code(
        &create("f", "docker.io/library/python:3.12", ROLE),
        "InvalidParameterValueException",
    );
    // Constraint violations.
    assert_code(&create("f", &uri, "lambda-role"), "ValidationException");
    assert_code(
        &create("f", &uri, "arn:aws:iam::000000000000:user/x"),
        "ValidationException",
    );
    assert_code(&create("bad name", &uri, ROLE), "ValidationException");
    // None of that created anything.
    let listed = s.lambda(&["list-functions"]);
    assert_eq!(listed["Functions"], json!([]), "{listed}");

    s.create_function("f", &uri, &[]);
    let duplicate = create("f", &uri, ROLE);
    assert_code(&duplicate, "ResourceConflictException");
    assert!(
        duplicate.contains("Function already exist: f"),
        "{duplicate}"
    );

    let unknown = s.lambda_err(&[
        "invoke",
        "--function-name",
        "nope",
        "--payload",
        "{}",
        &s.work.path().join("out.json").to_string_lossy(),
    ]);
    assert_code(&unknown, "ResourceNotFoundException");
    assert!(
        unknown.contains(&format!(
            "Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:nope"
        )),
        "{unknown}"
    );
}

// ----- invocations that go wrong ---------------------------------------------

#[test]
fn function_errors_and_bad_payloads() {
    let s = Stratus::start();
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active("f", &s.local_uri("app", "latest"), &[]);

    // The handler's error, as lambda_runtime posted it.
    let failed = s.invoke("f", &json!({"action": "error"}), true);
    let doc = failed.unhandled();
    assert_eq!(
        doc["errorMessage"], "the test function failed on purpose",
        "{doc}"
    );
    assert!(doc["errorType"].is_string(), "{doc}");
    let id = start_request_id(failed.log(), "$LATEST");
    check_log(failed.log(), &id, 128);

    // A response over 6 MB is not delivered.
    let big = s.invoke(
        "f",
        &json!({"action": "big", "bytes": 7 * 1024 * 1024}),
        false,
    );
    let doc = big.unhandled();
    assert_eq!(doc["errorType"], "Function.ResponseSizeTooLarge", "{doc}");
    assert!(big.body.len() < 4096, "{} bytes", big.body.len());

    // The instance still serves.
    let r = s.invoke_http("f", echo(3).to_string());
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-amz-function-error"), None, "{}", r.text());
    assert_eq!(r.json()["echo"], echo(3));

    // Requests the function never sees.
    let not_json = s.lambda_err(&[
        "invoke",
        "--function-name",
        "f",
        "--payload",
        "{not json",
        &s.work.path().join("never.json").to_string_lossy(),
    ]);
    assert!(
        not_json.contains("(InvalidRequestContentException)"),
        "{not_json}"
    );
    assert!(!s.work.path().join("never.json").exists());

    let too_big = s.invoke_http("f", format!("\"{}\"", "x".repeat(MAX_SYNC_PAYLOAD)));
    assert_eq!(too_big.status, 413, "{}", too_big.text());
    assert_eq!(
        too_big.header("x-amzn-errortype"),
        Some("RequestTooLargeException")
    );
    let message = too_big.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains(&MAX_SYNC_PAYLOAD.to_string()),
        "{}",
        too_big.text()
    );
    // Exactly 6 MB is fine.
    let head = r#"{"action":"sleep","ms":1,"pad":""#;
    let pad = "y".repeat(MAX_SYNC_PAYLOAD - head.len() - 2);
    let at_limit = format!("{head}{pad}\"}}");
    assert_eq!(at_limit.len(), MAX_SYNC_PAYLOAD);
    let r = s.invoke_http("f", at_limit);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-function-error"), None);

    let unknown = s.invoke_http("nope", "{}");
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    assert_eq!(
        unknown.header("x-amzn-errortype"),
        Some("ResourceNotFoundException")
    );
}

/// A process that exits or is killed for memory mid-invocation fails that
/// invocation only: the next one gets a new instance.
#[test]
fn crashed_instances_are_replaced() {
    let s = Stratus::start();
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active(
        "f",
        &s.local_uri("app", "latest"),
        &["--memory-size", "128"],
    );
    let stream_of = |payload: &Value| -> String {
        string_at(payload, "/env/AWS_LAMBDA_LOG_STREAM_NAME").to_string()
    };
    let first = stream_of(&s.invoke_http("f", echo(1).to_string()).json());

    let exited = s.invoke("f", &json!({"action": "exit"}), true);
    let doc = exited.unhandled();
    assert_eq!(doc["errorType"], "Runtime.ExitError", "{doc}");
    let message = string_at(&doc, "/errorMessage");
    assert!(message.contains("exit status 3"), "{doc}");
    let id = start_request_id(exited.log(), "$LATEST");
    assert!(message.contains(&id), "{doc}");
    // What it printed before it exited is logged before END.
    assert!(
        exited
            .log()
            .contains(&format!("\nexiting mid-invocation\nEND RequestId: {id}\n")),
        "{}",
        exited.log()
    );
    check_log(exited.log(), &id, 128);

    let next = s.invoke("f", &echo(2), true);
    let second = stream_of(&next.ok());
    assert_ne!(first, second, "a dead instance was reused");
    let id = start_request_id(next.log(), "$LATEST");
    assert!(check_log(next.log(), &id, 128).init_ms.is_some());

    let oom = s.invoke_http("f", json!({"action": "oom", "mb": 400}).to_string());
    assert_eq!(oom.status, 200, "{}", oom.text());
    assert_eq!(oom.header("x-amz-function-error"), Some("Unhandled"));
    let doc = oom.json();
    assert!(
        doc["errorType"] == "Runtime.OutOfMemory" || doc["errorType"] == "Runtime.ExitError",
        "{doc}\nlog:\n{}",
        oom.log()
    );

    let after = s.invoke_http("f", echo(3).to_string());
    assert_eq!(
        after.header("x-amz-function-error"),
        None,
        "{}",
        after.text()
    );
    let third = stream_of(&after.json());
    assert_ne!(second, third, "an instance killed for memory was reused");
    s.wait_containers(1);
}

#[test]
fn an_invocation_that_runs_too_long_times_out() {
    let s = Stratus::start();
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active("f", &s.local_uri("app", "latest"), &[]);
    let updated = s.lambda(&[
        "update-function-configuration",
        "--function-name",
        "f",
        "--timeout",
        "1",
    ]);
    assert_eq!(updated["Timeout"], 1, "{updated}");
    s.lambda(&["wait", "function-updated-v2", "--function-name", "f"]);

    let started = Instant::now();
    let timed_out = s.invoke_http("f", json!({"action": "sleep", "ms": 3000}).to_string());
    let elapsed = started.elapsed();
    assert_eq!(timed_out.status, 200, "{}", timed_out.text());
    assert_eq!(timed_out.header("x-amz-function-error"), Some("Unhandled"));
    let doc = timed_out.json();
    let message = string_at(&doc, "/errorMessage");
    assert!(
        message.contains("Task timed out after 1.00 seconds"),
        "{doc}"
    );
    assert!(
        elapsed < Duration::from_millis(2900),
        "the caller waited {elapsed:?} for a 1 s timeout"
    );
    let log = timed_out.log();
    assert!(log.contains("Task timed out after 1.00 seconds"), "{log}");
    let id = start_request_id(&log, "$LATEST");
    let report = check_log(&log, &id, 128);
    assert!(report.duration_ms >= 1000.0, "{report:?}");

    // The timed-out instance is gone; a new one answers.
    let next = s.invoke("f", &echo(1), true);
    assert_eq!(next.ok()["echo"], echo(1));
    let id = start_request_id(next.log(), "$LATEST");
    assert!(check_log(next.log(), &id, 128).init_ms.is_some());
    s.wait_containers(1);
}

/// `X-Amz-Log-Result` is the last 4 KB of the invocation's log.
#[test]
fn the_log_tail_is_the_last_4_kb() {
    let s = Stratus::start();
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active("f", &s.local_uri("app", "latest"), &[]);

    let printed = s.invoke("f", &json!({"action": "print", "lines": 5000}), true);
    assert_eq!(printed.ok(), json!({"printed": 5000}));
    let log = printed.log();
    assert!(log.len() <= TAIL_BYTES, "{} bytes of tail", log.len());
    assert!(log.len() > TAIL_BYTES / 2, "{} bytes of tail", log.len());
    let lines: Vec<&str> = log.lines().collect();
    let n = lines.len();
    assert!(
        lines[n - 1].starts_with("REPORT RequestId: "),
        "the tail must end with REPORT:\n{log}"
    );
    let id = parse_report(lines[n - 1]).request_id;
    check_log(log, &id, 128);
    assert_eq!(
        lines[n - 3],
        "line 4999 of the test function's output",
        "the function's last line comes right before END:\n{log}"
    );
}

/// What a function prints before it answers is logged between that
/// invocation's START and END, also without `--log-type Tail` (nothing
/// waits for the output to pause: the instance writes into the server's
/// pipes directly).
#[test]
fn output_lands_inside_its_invocation() {
    let s = Stratus::start();
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active("f", &s.local_uri("app", "latest"), &[]);
    let mut ids = Vec::new();
    for i in 0..40 {
        let prints = i % 10 == 9;
        let payload = if prints {
            json!({"action": "print", "lines": 300})
        } else {
            echo(i)
        };
        let r = s.send(
            s.http
                .post(s.server.url("/2015-03-31/functions/f/invocations"))
                .body(payload.to_string()),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let id = r
            .header("x-amzn-requestid")
            .expect("request id")
            .to_string();
        ids.push((id, prints));
    }
    let last = &ids[ids.len() - 1].0;
    let log = poll_until(Duration::from_secs(30), || {
        let log = s.function_log("f");
        log.contains(&format!("REPORT RequestId: {last}\t"))
            .then_some(log)
    });
    let lines: Vec<&str> = log.lines().collect();
    let at = |want: &str| {
        lines
            .iter()
            .position(|l| *l == want)
            .unwrap_or_else(|| panic!("no line {want:?} in\n{log}"))
    };
    for (id, prints) in &ids {
        let start = at(&format!("START RequestId: {id} Version: $LATEST"));
        let end = at(&format!("END RequestId: {id}"));
        assert!(start < end, "{log}");
        let inside = &lines[start + 1..end];
        if *prints {
            let expected: Vec<String> = (0..300)
                .map(|k| format!("line {k} of the test function's output"))
                .collect();
            assert!(
                inside == expected,
                "invocation {id}: {} lines inside, first {:?}, last {:?}",
                inside.len(),
                inside.first(),
                inside.last()
            );
        } else {
            assert_eq!(inside, [format!("echo request {id}")], "invocation {id}");
        }
    }
}

/// An activated function has an instance created ahead (not started);
/// its first invocation starts that one, the pool makes another for the
/// next cold start, and deleting the function removes both.
#[test]
fn cold_starts_use_an_instance_made_ahead() {
    let s = Stratus::start();
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active("f", &s.local_uri("app", "latest"), &[]);
    let spare = poll_until(Duration::from_secs(30), || {
        let spares = s.spares();
        (spares.len() == 1).then(|| spares[0].clone())
    });
    assert!(s.containers().is_empty(), "{:?}", s.containers());

    let first = s.invoke("f", &echo(1), true);
    assert_eq!(first.ok()["echo"]["n"], 1, "{first:?}");
    let report = check_log(first.log(), &start_request_id(first.log(), "$LATEST"), 128);
    assert!(
        report.init_ms.is_some(),
        "a cold start reports its Init Duration"
    );
    // The spare is the instance now running.
    assert_eq!(s.containers(), std::slice::from_ref(&spare));
    let next_spare = poll_until(Duration::from_secs(30), || {
        let spares = s.spares();
        (spares.len() == 1 && spares[0] != spare).then(|| spares[0].clone())
    });
    // A warm invocation leaves the spare alone.
    let warm = s.invoke("f", &echo(2), true);
    assert_eq!(warm.ok()["echo"]["n"], 2);
    assert_eq!(s.spares(), [next_spare]);

    s.lambda(&["delete-function", "--function-name", "f"]);
    poll_until(Duration::from_secs(30), || {
        s.list_containers()
            .is_ok_and(|all| all.is_empty())
            .then_some(())
    });
}

/// A runtime that never asks for work fails the invocation after the init
/// timeout (10 s), and its instance is stopped.
#[test]
fn a_runtime_that_never_gets_ready_fails_its_init() {
    let s = Stratus::start();
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active(
        "f",
        &s.local_uri("app", "latest"),
        &["--environment", "Variables={STRATUS_TEST_NEVER_READY=1}"],
    );
    let started = Instant::now();
    let r = s.invoke_http("f", echo(1).to_string());
    let elapsed = started.elapsed();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    let doc = r.json();
    assert!(doc["errorType"].is_string(), "{doc}");
    assert!(doc["errorMessage"].is_string(), "{doc}");
    assert!(
        elapsed >= Duration::from_secs(9) && elapsed < Duration::from_secs(30),
        "init failed after {elapsed:?}"
    );
    let log = r.log();
    assert!(log.contains("REPORT RequestId: "), "{log}");
    // The log stream has the invocation's lines too.
    let id = r
        .header("x-amzn-requestid")
        .expect("request id")
        .to_string();
    let stream = poll_until(Duration::from_secs(10), || {
        let log = s.function_log("f");
        log.contains(&format!("REPORT RequestId: {id}\t"))
            .then_some(log)
    });
    assert!(
        stream.contains(&format!("START RequestId: {id} Version: $LATEST")),
        "{stream}"
    );
    assert!(stream.contains("Status: error"), "{stream}");
    s.wait_containers(0);
}

// ----- changes to a function --------------------------------------------------

#[test]
fn updates_reach_new_invocations() {
    let s = Stratus::start();
    s.create_repository("app");
    s.push_image("app", "v1", &[("USER_IMAGE", "v1")]);
    let v2 = s.push_image("app", "v2", &[("USER_IMAGE", "v2")]);
    s.create_active(
        "f",
        &s.local_uri("app", "v1"),
        &["--environment", "Variables={USER_STAGE=one}"],
    );
    // The function runs the digest `v1` named when it was created, not
    // what the tag names later.
    s.push_image("app", "v1", &[("USER_IMAGE", "moved")]);
    let env_of = |s: &Stratus| -> Value {
        let r = s.invoke_http("f", echo(1).to_string());
        assert_eq!(r.header("x-amz-function-error"), None, "{}", r.text());
        r.json()["env"].clone()
    };
    let env = env_of(&s);
    assert_eq!(
        (&env["USER_STAGE"], &env["USER_IMAGE"]),
        (&json!("one"), &json!("v1")),
        "{env}"
    );

    let updated = s.lambda(&[
        "update-function-configuration",
        "--function-name",
        "f",
        "--environment",
        "Variables={USER_STAGE=two}",
    ]);
    assert_eq!(
        updated["Environment"],
        json!({"Variables": {"USER_STAGE": "two"}}),
        "{updated}"
    );
    s.lambda(&["wait", "function-updated-v2", "--function-name", "f"]);
    let env = env_of(&s);
    assert_eq!(
        (&env["USER_STAGE"], &env["USER_IMAGE"]),
        (&json!("two"), &json!("v1")),
        "{env}"
    );

    let v2_uri = s.local_uri("app", "v2");
    let updated = s.lambda(&[
        "update-function-code",
        "--function-name",
        "f",
        "--image-uri",
        &v2_uri,
    ]);
    assert_eq!(
        updated["CodeSha256"],
        v2.manifest_digest.trim_start_matches("sha256:"),
        "{updated}"
    );
    s.wait_ready("f");
    let env = env_of(&s);
    assert_eq!(
        (&env["USER_STAGE"], &env["USER_IMAGE"]),
        (&json!("two"), &json!("v2")),
        "{env}"
    );
    let got = s.lambda(&["get-function", "--function-name", "f"]);
    assert_eq!(got["Code"]["ImageUri"], v2_uri.as_str(), "{got}");
    // Instances of the old code and configuration are stopped.
    s.wait_containers(1);
}

#[test]
fn a_deleted_function_is_gone_with_its_instances() {
    let s = Stratus::start();
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active("f", &s.local_uri("app", "latest"), &[]);
    let r = s.invoke_http("f", echo(1).to_string());
    assert_eq!(r.header("x-amz-function-error"), None, "{}", r.text());
    assert_eq!(s.containers().len(), 1);

    // botocore's newer model binds the HTTP status to `StatusCode`.
    let deleted = s.lambda(&["delete-function", "--function-name", "f"]);
    assert_eq!(deleted, json!({"StatusCode": 204}));
    s.wait_containers(0);
    let err = s.lambda_err(&["get-function", "--function-name", "f"]);
    assert!(err.contains("(ResourceNotFoundException)"), "{err}");
    let r = s.invoke_http("f", echo(2).to_string());
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("ResourceNotFoundException")
    );
    // The name is free again.
    s.create_active("f", &s.local_uri("app", "latest"), &[]);
}

#[test]
fn accepted_events_survive_a_restart() {
    let mut s = Stratus::start();
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active("f", &s.local_uri("app", "latest"), &[]);
    let r = s.send(
        s.http
            .post(s.server.url("/2015-03-31/functions/f/invocations"))
            .header("X-Amz-Invocation-Type", "Event")
            .body(json!({"action": "sleep", "ms": 2000}).to_string()),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r
        .header("x-amzn-requestid")
        .expect("request id")
        .to_string();
    let start = format!("START RequestId: {id} Version");
    poll_until(Duration::from_secs(30), || {
        s.function_log("f").contains(&start).then_some(())
    });

    // Stopped mid-invocation: the next server delivers it again (its
    // regular retry would only come a minute later).
    s.server.restart();
    let log = poll_until(Duration::from_secs(60), || {
        let log = s.function_log("f");
        log.lines()
            .any(|l| {
                l.starts_with(&format!("REPORT RequestId: {id}\t")) && !l.contains("Status: error")
            })
            .then_some(log)
    });
    assert!(log.matches(&start).count() >= 2, "{log}");
}

#[test]
fn functions_survive_a_restart() {
    let mut s = Stratus::start();
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active("f", &s.local_uri("app", "latest"), &[]);
    let r = s.invoke_http("f", echo(1).to_string());
    assert_eq!(r.header("x-amz-function-error"), None, "{}", r.text());

    s.server.restart();
    assert!(s.containers().is_empty(), "{:?}", s.containers());
    let config = s.lambda(&["get-function-configuration", "--function-name", "f"]);
    assert_eq!(config["State"], "Active", "{config}");
    assert_eq!(config["LastUpdateStatus"], "Successful", "{config}");
    let again = s.invoke("f", &echo(2), true);
    let body = again.ok();
    assert_eq!(body["echo"], echo(2));
    // The instance talks to the server's new address.
    assert_eq!(
        body["env"]["AWS_ENDPOINT_URL"],
        s.server.endpoint().as_str(),
        "{body}"
    );
    let id = start_request_id(again.log(), "$LATEST");
    assert!(check_log(again.log(), &id, 128).init_ms.is_some());
}

// ----- concurrency ------------------------------------------------------------

/// Runs `n` invocations of `payload` at once over raw HTTP.
fn invoke_parallel(s: &Stratus, name: &str, n: usize, payload: &Value) -> Vec<Raw> {
    thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|_| scope.spawn(|| s.invoke_http(name, payload.to_string())))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("invoke thread"))
            .collect()
    })
}

#[test]
fn parallel_invocations_get_instances_of_their_own() {
    let s = Stratus::start();
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active("f", &s.local_uri("app", "latest"), &[]);
    let sleep = json!({"action": "sleep", "ms": 500});

    // No instance is free while the others sleep: four cold starts.
    for r in invoke_parallel(&s, "f", 4, &sleep) {
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-amz-function-error"), None, "{}", r.text());
        assert_eq!(r.json(), json!({"slept_ms": 500}));
        let log = r.log();
        let id = start_request_id(&log, "$LATEST");
        assert!(check_log(&log, &id, 128).init_ms.is_some(), "{log}");
    }
    assert_eq!(s.containers().len(), 4);
    // Then four warm ones.
    for r in invoke_parallel(&s, "f", 4, &sleep) {
        assert_eq!(r.header("x-amz-function-error"), None, "{}", r.text());
        let log = r.log();
        let id = start_request_id(&log, "$LATEST");
        assert_eq!(check_log(&log, &id, 128).init_ms, None, "{log}");
    }
    assert_eq!(s.containers().len(), 4);
}

#[test]
fn the_account_concurrency_limit_throttles() {
    // No queue wait: throttled at once, as Lambda does.
    let s = Stratus::start_with(&["--account-concurrency", "1", "--invoke-queue-wait-ms", "0"]);
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active("f", &s.local_uri("app", "latest"), &[]);
    let sleep = json!({"action": "sleep", "ms": 1500});

    let results = invoke_parallel(&s, "f", 2, &sleep);
    let (ok, throttled): (Vec<&Raw>, Vec<&Raw>) = results.iter().partition(|r| r.status == 200);
    assert_eq!(
        (ok.len(), throttled.len()),
        (1, 1),
        "{:?}",
        results.iter().map(Raw::text).collect::<Vec<_>>()
    );
    assert_eq!(ok[0].json(), json!({"slept_ms": 1500}));
    let t = throttled[0];
    assert_eq!(t.status, 429, "{}", t.text());
    assert_eq!(
        t.header("x-amzn-errortype"),
        Some("TooManyRequestsException")
    );
    assert_eq!(
        t.json()["Reason"],
        "ConcurrentInvocationLimitExceeded",
        "{}",
        t.text()
    );
    assert!(t.header("retry-after").is_some(), "{:?}", t.headers);

    // The limit is the account's: another function waits its turn too.
    s.create_active("g", &s.local_uri("app", "latest"), &[]);
    let (a, b) = thread::scope(|scope| {
        let a = scope.spawn(|| s.invoke_http("f", sleep.to_string()));
        let b = scope.spawn(|| s.invoke_http("g", sleep.to_string()));
        (a.join().expect("f"), b.join().expect("g"))
    });
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 429], "{}\n{}", a.text(), b.text());
}

#[test]
fn invocations_beyond_the_limit_wait_their_turn() {
    let s = Stratus::start_with(&[
        "--account-concurrency",
        "1",
        "--invoke-queue-wait-ms",
        "20000",
    ]);
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active("f", &s.local_uri("app", "latest"), &[]);
    let sleep = json!({"action": "sleep", "ms": 300});

    // Three at once on one allowed execution: they queue, none is
    // throttled, and they share the one instance.
    let results = invoke_parallel(&s, "f", 3, &sleep);
    for r in &results {
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json(), json!({"slept_ms": 300}));
    }
    let cold = results
        .iter()
        .filter(|r| {
            let log = r.log();
            check_log(&log, &start_request_id(&log, "$LATEST"), 128)
                .init_ms
                .is_some()
        })
        .count();
    assert_eq!(cold, 1, "one cold start, then the same instance");
    assert_eq!(s.containers().len(), 1);

    // Reserved concurrency queues the same way.
    s.lambda(&[
        "put-function-concurrency",
        "--function-name",
        "f",
        "--reserved-concurrent-executions",
        "1",
    ]);
    for r in invoke_parallel(&s, "f", 2, &sleep) {
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

#[test]
fn a_queued_invocation_is_throttled_when_its_wait_ends() {
    let s = Stratus::start_with(&[
        "--account-concurrency",
        "1",
        "--invoke-queue-wait-ms",
        "200",
    ]);
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active("f", &s.local_uri("app", "latest"), &[]);
    // Well inside the function's 3 s timeout.
    let sleep = json!({"action": "sleep", "ms": 2000});
    let results = invoke_parallel(&s, "f", 2, &sleep);
    let mut statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 429]);
    // The instance went back to the pool: the next invoke is warm.
    let r = s.invoke("f", &echo(1), true);
    let log = r.log().to_string();
    assert_eq!(
        check_log(&log, &start_request_id(&log, "$LATEST"), 128).init_ms,
        None,
        "{log}"
    );
}

#[test]
fn failed_asynchronous_invocations_are_retried() {
    let s = Stratus::start_with(&["--async-retry-delay-ms", "200"]);
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active("f", &s.local_uri("app", "latest"), &[]);
    let r = s.send(
        s.http
            .post(s.server.url("/2015-03-31/functions/f/invocations"))
            .header("X-Amz-Invocation-Type", "Event")
            .body(json!({"action": "error"}).to_string()),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let id = r
        .header("x-amzn-requestid")
        .expect("request id")
        .to_string();
    // The first attempt and two retries (Lambda's default), each logged.
    let starts = |log: &str| {
        log.matches(&format!("START RequestId: {id} Version"))
            .count()
    };
    let log = poll_until(Duration::from_secs(60), || {
        let log = s.function_log("f");
        (starts(&log) >= 3 && log.matches(&format!("REPORT RequestId: {id}\t")).count() >= 3)
            .then_some(log)
    });
    assert_eq!(starts(&log), 3, "{log}");

    // With no concurrency reserved at all, an Event invoke is still
    // accepted (it waits in the queue; a sync one is throttled).
    s.lambda(&[
        "put-function-concurrency",
        "--function-name",
        "f",
        "--reserved-concurrent-executions",
        "0",
    ]);
    let queued = s.invoke_with("f", &echo(1), &["--invocation-type", "Event"]);
    assert_eq!(queued.status, 202, "{queued:?}");
    let throttled = s.invoke_http("f", echo(2).to_string());
    assert_eq!(throttled.status, 429, "{}", throttled.text());
}

// ----- versions, aliases and function settings --------------------------------

/// The ARN of function `name`.
fn arn_of(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
}

/// The `Version`s of a ListVersionsByFunction answer.
#[track_caller]
fn version_numbers(listed: &Value) -> Vec<String> {
    listed["Versions"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|v| string_at(v, "/Version").to_string())
        .collect()
}

/// Creates function `f` with `USER_STAGE=one`, publishes it as version
/// 1, changes the variable to `two` and publishes version 2.
#[track_caller]
fn function_with_two_versions(s: &Stratus) {
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active(
        "f",
        &s.local_uri("app", "latest"),
        &["--environment", "Variables={USER_STAGE=one}"],
    );
    let v1 = s.lambda(&["publish-version", "--function-name", "f"]);
    assert_eq!(v1["Version"], "1", "{v1}");
    s.lambda(&[
        "update-function-configuration",
        "--function-name",
        "f",
        "--environment",
        "Variables={USER_STAGE=two}",
    ]);
    s.lambda(&["wait", "function-updated-v2", "--function-name", "f"]);
    let v2 = s.lambda(&["publish-version", "--function-name", "f"]);
    assert_eq!(v2["Version"], "2", "{v2}");
}

#[test]
fn versions_are_published_frozen_invoked_and_deleted() {
    let s = Stratus::start();
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    let created = s.create_active(
        "f",
        &s.local_uri("app", "latest"),
        &["--environment", "Variables={USER_STAGE=one}"],
    );
    let arn = arn_of("f");

    let v1 = s.lambda(&[
        "publish-version",
        "--function-name",
        "f",
        "--description",
        "first",
    ]);
    assert_eq!(v1["Version"], "1", "{v1}");
    assert_eq!(v1["FunctionArn"], format!("{arn}:1").as_str(), "{v1}");
    assert_eq!(v1["Description"], "first", "{v1}");
    assert_eq!(v1["CodeSha256"], created["CodeSha256"], "{v1}");
    assert_eq!(v1["State"], "Active", "{v1}");
    assert_eq!(
        v1["Environment"],
        json!({"Variables": {"USER_STAGE": "one"}}),
        "{v1}"
    );
    // Nothing changed since: version 1 again.
    let again = s.lambda(&["publish-version", "--function-name", "f"]);
    assert_eq!(again["Version"], "1", "{again}");
    assert_eq!(again["RevisionId"], v1["RevisionId"], "{again}");

    s.lambda(&[
        "update-function-configuration",
        "--function-name",
        "f",
        "--environment",
        "Variables={USER_STAGE=two}",
    ]);
    s.lambda(&["wait", "function-updated-v2", "--function-name", "f"]);
    let latest = s.lambda(&["get-function-configuration", "--function-name", "f"]);
    let sha = string_at(&latest, "/CodeSha256");
    let revision = string_at(&latest, "/RevisionId");
    // Preconditions that do not hold publish nothing.
    let wrong_sha = s.lambda_err(&[
        "publish-version",
        "--function-name",
        "f",
        "--code-sha256",
        &"0".repeat(64),
    ]);
    assert_code(&wrong_sha, "InvalidParameterValueException");
    let wrong_revision = s.lambda_err(&[
        "publish-version",
        "--function-name",
        "f",
        "--revision-id",
        "00000000-0000-4000-8000-000000000000",
    ]);
    assert_code(&wrong_revision, "PreconditionFailedException");
    let stale_update = s.lambda_err(&[
        "update-function-configuration",
        "--function-name",
        "f",
        "--description",
        "stale",
        "--revision-id",
        "00000000-0000-4000-8000-000000000000",
    ]);
    assert_code(&stale_update, "PreconditionFailedException");
    let v2 = s.lambda(&[
        "publish-version",
        "--function-name",
        "f",
        "--code-sha256",
        sha,
        "--revision-id",
        revision,
    ]);
    assert_eq!(v2["Version"], "2", "{v2}");
    assert_eq!(v2["FunctionArn"], format!("{arn}:2").as_str(), "{v2}");
    assert_eq!(
        v2["Environment"],
        json!({"Variables": {"USER_STAGE": "two"}}),
        "{v2}"
    );

    let listed = s.lambda(&["list-versions-by-function", "--function-name", "f"]);
    assert_eq!(version_numbers(&listed), ["$LATEST", "1", "2"], "{listed}");
    let arns: Vec<&str> = listed["Versions"]
        .as_array()
        .unwrap_or_else(|| panic!("{listed}"))
        .iter()
        .map(|v| string_at(v, "/FunctionArn"))
        .collect();
    assert_eq!(
        arns,
        [
            format!("{arn}:$LATEST"),
            format!("{arn}:1"),
            format!("{arn}:2")
        ],
        "{listed}"
    );
    // One version per page: the CLI follows NextMarker to the end, also
    // from a page that holds only $LATEST.
    let paged = s.lambda(&[
        "list-versions-by-function",
        "--function-name",
        "f",
        "--page-size",
        "1",
    ]);
    assert_eq!(version_numbers(&paged), ["$LATEST", "1", "2"], "{paged}");
    // One item, then the rest from the CLI's token.
    let first = s.lambda(&[
        "list-versions-by-function",
        "--function-name",
        "f",
        "--max-items",
        "1",
    ]);
    assert_eq!(version_numbers(&first), ["$LATEST"], "{first}");
    let token = string_at(&first, "/NextToken");
    let rest = s.lambda(&[
        "list-versions-by-function",
        "--function-name",
        "f",
        "--starting-token",
        token,
    ]);
    assert_eq!(version_numbers(&rest), ["1", "2"], "{rest}");
    assert!(rest.get("NextToken").is_none(), "{rest}");
    // The same through server pages of one.
    let first = s.lambda(&[
        "list-versions-by-function",
        "--function-name",
        "f",
        "--max-items",
        "2",
        "--page-size",
        "1",
    ]);
    assert_eq!(version_numbers(&first), ["$LATEST", "1"], "{first}");
    let token = string_at(&first, "/NextToken");
    let rest = s.lambda(&[
        "list-versions-by-function",
        "--function-name",
        "f",
        "--page-size",
        "1",
        "--starting-token",
        token,
    ]);
    assert_eq!(version_numbers(&rest), ["2"], "{rest}");

    // A version's configuration is frozen.
    let got = s.lambda(&["get-function", "--function-name", "f", "--qualifier", "1"]);
    let c = &got["Configuration"];
    assert_eq!(c["Version"], "1", "{got}");
    assert_eq!(c["FunctionArn"], format!("{arn}:1").as_str(), "{got}");
    assert_eq!(
        c["Environment"],
        json!({"Variables": {"USER_STAGE": "one"}}),
        "{got}"
    );
    assert_eq!(
        got["Code"]["ImageUri"],
        s.local_uri("app", "latest").as_str(),
        "{got}"
    );

    let ran = s.invoke_with("f", &echo(1), &["--qualifier", "1", "--log-type", "Tail"]);
    assert_eq!(ran.executed_version.as_deref(), Some("1"), "{ran:?}");
    let body = ran.ok();
    assert_eq!(body["env"]["USER_STAGE"], "one", "{body}");
    assert_eq!(body["env"]["AWS_LAMBDA_FUNCTION_VERSION"], "1", "{body}");
    assert_eq!(body["function_arn"], format!("{arn}:1").as_str(), "{body}");
    let id = start_request_id(ran.log(), "1");
    check_log(ran.log(), &id, 128);
    let ran = s.invoke("f", &echo(2), false);
    assert_eq!(ran.executed_version.as_deref(), Some("$LATEST"), "{ran:?}");
    assert_eq!(ran.ok()["env"]["USER_STAGE"], "two");
    assert_eq!(s.containers().len(), 2);

    // Deleting version 1 stops its instance; the number is not reused.
    let deleted = s.lambda(&[
        "delete-function",
        "--function-name",
        "f",
        "--qualifier",
        "1",
    ]);
    assert_eq!(deleted, json!({"StatusCode": 204}));
    s.wait_containers(1);
    let out = s.work.path().join("never.json");
    let gone = s.lambda_err(&[
        "invoke",
        "--function-name",
        "f",
        "--qualifier",
        "1",
        &out.to_string_lossy(),
    ]);
    assert_code(&gone, "ResourceNotFoundException");
    assert!(gone.contains(&format!("{arn}:1")), "{gone}");
    assert!(!out.exists());
    let gone = s.lambda_err(&["get-function", "--function-name", "f", "--qualifier", "1"]);
    assert_code(&gone, "ResourceNotFoundException");
    let listed = s.lambda(&["list-versions-by-function", "--function-name", "f"]);
    assert_eq!(version_numbers(&listed), ["$LATEST", "2"], "{listed}");
    let latest = s.lambda_err(&[
        "delete-function",
        "--function-name",
        "f",
        "--qualifier",
        "$LATEST",
    ]);
    assert_code(&latest, "InvalidParameterValueException");
    let again = s.lambda(&["publish-version", "--function-name", "f"]);
    assert_eq!(again["Version"], "2", "{again}");
    s.lambda(&[
        "update-function-configuration",
        "--function-name",
        "f",
        "--environment",
        "Variables={USER_STAGE=three}",
    ]);
    s.lambda(&["wait", "function-updated-v2", "--function-name", "f"]);
    let v3 = s.lambda(&["publish-version", "--function-name", "f"]);
    assert_eq!(v3["Version"], "3", "{v3}");
}

#[test]
fn aliases_route_invocations_to_versions() {
    let s = Stratus::start();
    function_with_two_versions(&s);
    let arn = arn_of("f");

    let live = s.lambda(&[
        "create-alias",
        "--function-name",
        "f",
        "--name",
        "live",
        "--function-version",
        "2",
        "--description",
        "production",
    ]);
    assert_eq!(live["AliasArn"], format!("{arn}:live").as_str(), "{live}");
    assert_eq!(live["Name"], "live", "{live}");
    assert_eq!(live["FunctionVersion"], "2", "{live}");
    assert_eq!(live["Description"], "production", "{live}");
    assert!(live["RevisionId"].is_string(), "{live}");
    assert!(live.get("RoutingConfig").is_none(), "{live}");

    // The function runs as the version and sees the alias ARN.
    let ran = s.invoke_with(
        "f",
        &echo(1),
        &["--qualifier", "live", "--log-type", "Tail"],
    );
    assert_eq!(ran.executed_version.as_deref(), Some("2"), "{ran:?}");
    let body = ran.ok();
    assert_eq!(
        body["function_arn"],
        format!("{arn}:live").as_str(),
        "{body}"
    );
    assert_eq!(body["env"]["AWS_LAMBDA_FUNCTION_VERSION"], "2", "{body}");
    assert_eq!(body["env"]["USER_STAGE"], "two", "{body}");
    start_request_id(ran.log(), "2");

    let duplicate = s.lambda_err(&[
        "create-alias",
        "--function-name",
        "f",
        "--name",
        "live",
        "--function-version",
        "1",
    ]);
    assert_code(&duplicate, "ResourceConflictException");
    let digits = s.lambda_err(&[
        "create-alias",
        "--function-name",
        "f",
        "--name",
        "123",
        "--function-version",
        "1",
    ]);
    assert_code(&digits, "ValidationException");
    let missing = s.lambda_err(&[
        "create-alias",
        "--function-name",
        "f",
        "--name",
        "next",
        "--function-version",
        "9",
    ]);
    assert_code(&missing, "ResourceNotFoundException");
    let stale = s.lambda_err(&[
        "update-alias",
        "--function-name",
        "f",
        "--name",
        "live",
        "--description",
        "x",
        "--revision-id",
        "00000000-0000-4000-8000-000000000000",
    ]);
    assert_code(&stale, "PreconditionFailedException");

    // Half of the invocations go to version 1.
    let weighted = s.lambda(&[
        "update-alias",
        "--function-name",
        "f",
        "--name",
        "live",
        "--routing-config",
        "AdditionalVersionWeights={1=0.5}",
    ]);
    assert_eq!(weighted["FunctionVersion"], "2", "{weighted}");
    assert_eq!(
        weighted["RoutingConfig"],
        json!({"AdditionalVersionWeights": {"1": 0.5}}),
        "{weighted}"
    );
    assert_eq!(weighted["Description"], "production", "{weighted}");
    assert_ne!(weighted["RevisionId"], live["RevisionId"], "{weighted}");
    let mut seen = BTreeMap::<String, usize>::new();
    for n in 0..40 {
        let r = s.invoke_http("f:live", echo(n).to_string());
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-amz-function-error"), None, "{}", r.text());
        let version = r
            .header("x-amz-executed-version")
            .unwrap_or_else(|| panic!("no X-Amz-Executed-Version: {:?}", r.headers))
            .to_string();
        let body = r.json();
        assert_eq!(body["env"]["AWS_LAMBDA_FUNCTION_VERSION"], version.as_str());
        assert_eq!(body["function_arn"], format!("{arn}:live").as_str());
        *seen.entry(version).or_default() += 1;
    }
    assert_eq!(
        seen.keys().map(String::as_str).collect::<Vec<_>>(),
        ["1", "2"],
        "executed versions of 40 invocations: {seen:?}"
    );
    // The control plane shows the alias' own version, not a weighted pick.
    for _ in 0..10 {
        let r = s.send(
            s.http.get(
                s.server
                    .url("/2015-03-31/functions/f/configuration?Qualifier=live"),
            ),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["Version"], "2", "{}", r.text());
    }

    s.lambda(&[
        "create-alias",
        "--function-name",
        "f",
        "--name",
        "beta",
        "--function-version",
        "1",
    ]);
    let names = |v: &Value| -> Vec<String> {
        v["Aliases"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|a| string_at(a, "/Name").to_string())
            .collect()
    };
    let all = s.lambda(&["list-aliases", "--function-name", "f"]);
    assert_eq!(names(&all), ["beta", "live"], "{all}");
    assert_eq!(all["Aliases"][1], weighted, "{all}");
    let of_1 = s.lambda(&[
        "list-aliases",
        "--function-name",
        "f",
        "--function-version",
        "1",
    ]);
    assert_eq!(names(&of_1), ["beta"], "{of_1}");
    // Pages: one alias at a time over the wire, and the CLI's paginator
    // following the markers.
    let page = s.send(
        s.http
            .get(s.server.url("/2015-03-31/functions/f/aliases?MaxItems=1")),
    );
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(names(&page.json()), ["beta"], "{}", page.text());
    let marker = string_at(&page.json(), "/NextMarker").to_string();
    let next = s.send(s.http.get(s.server.url(&format!(
        "/2015-03-31/functions/f/aliases?MaxItems=1&Marker={marker}"
    ))));
    assert_eq!(names(&next.json()), ["live"], "{}", next.text());
    assert!(next.json().get("NextMarker").is_none(), "{}", next.text());
    let paged = s.lambda(&["list-aliases", "--function-name", "f", "--page-size", "1"]);
    assert_eq!(names(&paged), ["beta", "live"], "{paged}");
    let got = s.lambda(&["get-alias", "--function-name", "f", "--name", "live"]);
    assert_eq!(got, weighted);

    // A version an alias refers to stays.
    let referenced = s.lambda_err(&[
        "delete-function",
        "--function-name",
        "f",
        "--qualifier",
        "1",
    ]);
    assert_code(&referenced, "ResourceConflictException");

    let deleted = s.lambda(&["delete-alias", "--function-name", "f", "--name", "beta"]);
    assert_eq!(deleted, Value::Null);
    let gone = s.lambda_err(&["get-alias", "--function-name", "f", "--name", "beta"]);
    assert_code(&gone, "ResourceNotFoundException");
    let r = s.invoke_http("f:beta", echo(1).to_string());
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("ResourceNotFoundException")
    );
    let all = s.lambda(&["list-aliases", "--function-name", "f"]);
    assert_eq!(names(&all), ["live"], "{all}");
    // `live` still routes to version 1; without the extra version it
    // does not, and version 1 can go.
    let referenced = s.lambda_err(&[
        "delete-function",
        "--function-name",
        "f",
        "--qualifier",
        "1",
    ]);
    assert_code(&referenced, "ResourceConflictException");
    let plain = s.lambda(&[
        "update-alias",
        "--function-name",
        "f",
        "--name",
        "live",
        "--routing-config",
        r#"{"AdditionalVersionWeights": {}}"#,
    ]);
    assert!(plain.get("RoutingConfig").is_none(), "{plain}");
    s.lambda(&[
        "delete-function",
        "--function-name",
        "f",
        "--qualifier",
        "1",
    ]);
    let ran = s.invoke_with("f", &echo(1), &["--qualifier", "live"]);
    assert_eq!(ran.executed_version.as_deref(), Some("2"), "{ran:?}");
}

#[test]
fn reserved_concurrency_policy_and_tags() {
    let s = Stratus::start();
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active("f", &s.local_uri("app", "latest"), &[]);
    let arn = arn_of("f");

    // Reserved concurrency 0 turns invocations away.
    let put = s.lambda(&[
        "put-function-concurrency",
        "--function-name",
        "f",
        "--reserved-concurrent-executions",
        "0",
    ]);
    assert_eq!(put, json!({"ReservedConcurrentExecutions": 0}));
    let got = s.lambda(&["get-function-concurrency", "--function-name", "f"]);
    assert_eq!(got, json!({"ReservedConcurrentExecutions": 0}));
    let got = s.lambda(&["get-function", "--function-name", "f"]);
    assert_eq!(
        got["Concurrency"],
        json!({"ReservedConcurrentExecutions": 0}),
        "{got}"
    );
    let r = s.invoke_http("f", echo(1).to_string());
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("TooManyRequestsException")
    );
    assert_eq!(
        r.json()["Reason"],
        "ReservedFunctionConcurrentInvocationLimitExceeded",
        "{}",
        r.text()
    );
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    let throttled = s.lambda_err(&[
        "invoke",
        "--function-name",
        "f",
        &s.work.path().join("never.json").to_string_lossy(),
    ]);
    assert_code(&throttled, "TooManyRequestsException");
    assert!(s.containers().is_empty(), "{:?}", s.containers());

    // One: a second invocation at the same time is throttled.
    s.lambda(&[
        "put-function-concurrency",
        "--function-name",
        "f",
        "--reserved-concurrent-executions",
        "1",
    ]);
    let sleep = json!({"action": "sleep", "ms": 1500});
    let results = invoke_parallel(&s, "f", 2, &sleep);
    let mut statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 429],
        "{:?}",
        results.iter().map(Raw::text).collect::<Vec<_>>()
    );
    let t = results.iter().find(|r| r.status == 429).expect("a 429");
    assert_eq!(
        t.json()["Reason"],
        "ReservedFunctionConcurrentInvocationLimitExceeded",
        "{}",
        t.text()
    );

    let deleted = s.lambda(&["delete-function-concurrency", "--function-name", "f"]);
    assert_eq!(deleted, Value::Null);
    let got = s.lambda(&["get-function-concurrency", "--function-name", "f"]);
    assert!(
        got.is_null() || got == json!({}),
        "no reserved concurrency left: {got}"
    );
    let got = s.lambda(&["get-function", "--function-name", "f"]);
    assert!(got.get("Concurrency").is_none(), "{got}");
    assert_eq!(s.invoke("f", &echo(2), false).ok()["echo"], echo(2));

    // The resource policy.
    let source_arn = format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123/*/*/*");
    let added = s.lambda(&[
        "add-permission",
        "--function-name",
        "f",
        "--statement-id",
        "apigw",
        "--action",
        "lambda:InvokeFunction",
        "--principal",
        "apigateway.amazonaws.com",
        "--source-arn",
        &source_arn,
    ]);
    let statement: Value = serde_json::from_str(string_at(&added, "/Statement"))
        .unwrap_or_else(|e| panic!("Statement is not JSON ({e}): {added}"));
    let expected = json!({
        "Sid": "apigw",
        "Effect": "Allow",
        "Principal": {"Service": "apigateway.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": arn,
        "Condition": {"ArnLike": {"AWS:SourceArn": source_arn}},
    });
    assert_eq!(statement, expected);
    let policy_of = |got: &Value| -> Value {
        serde_json::from_str(string_at(got, "/Policy"))
            .unwrap_or_else(|e| panic!("Policy is not JSON ({e}): {got}"))
    };
    let got = s.lambda(&["get-policy", "--function-name", "f"]);
    assert!(got["RevisionId"].is_string(), "{got}");
    let policy = policy_of(&got);
    assert_eq!(policy["Version"], "2012-10-17", "{policy}");
    assert_eq!(policy["Statement"], json!([expected]), "{policy}");
    s.lambda(&[
        "add-permission",
        "--function-name",
        "f",
        "--statement-id",
        "account",
        "--action",
        "lambda:InvokeFunction",
        "--principal",
        "111122223333",
    ]);
    let duplicate = s.lambda_err(&[
        "add-permission",
        "--function-name",
        "f",
        "--statement-id",
        "apigw",
        "--action",
        "lambda:InvokeFunction",
        "--principal",
        "s3.amazonaws.com",
    ]);
    assert_code(&duplicate, "ResourceConflictException");
    let policy = policy_of(&s.lambda(&["get-policy", "--function-name", "f"]));
    let statements = policy["Statement"]
        .as_array()
        .unwrap_or_else(|| panic!("{policy}"));
    assert_eq!(statements.len(), 2, "{policy}");
    assert_eq!(statements[0], expected, "{policy}");
    assert_eq!(
        statements[1]["Principal"],
        json!({"AWS": "arn:aws:iam::111122223333:root"}),
        "{policy}"
    );
    for sid in ["apigw", "account"] {
        let removed = s.lambda(&[
            "remove-permission",
            "--function-name",
            "f",
            "--statement-id",
            sid,
        ]);
        assert_eq!(removed, Value::Null);
    }
    let none = s.lambda_err(&["get-policy", "--function-name", "f"]);
    assert_code(&none, "ResourceNotFoundException");
    let unknown = s.lambda_err(&[
        "remove-permission",
        "--function-name",
        "f",
        "--statement-id",
        "apigw",
    ]);
    assert_code(&unknown, "ResourceNotFoundException");

    // Tags, addressed by the function's ARN.
    s.lambda(&[
        "tag-resource",
        "--resource",
        &arn,
        "--tags",
        "team=core,stage=dev",
    ]);
    let tags = s.lambda(&["list-tags", "--resource", &arn]);
    assert_eq!(tags, json!({"Tags": {"team": "core", "stage": "dev"}}));
    let got = s.lambda(&["get-function", "--function-name", "f"]);
    assert_eq!(got["Tags"], tags["Tags"], "{got}");
    s.lambda(&["untag-resource", "--resource", &arn, "--tag-keys", "stage"]);
    let tags = s.lambda(&["list-tags", "--resource", &arn]);
    assert_eq!(tags, json!({"Tags": {"team": "core"}}));
    let reserved = s.lambda_err(&["tag-resource", "--resource", &arn, "--tags", "aws:x=1"]);
    assert_code(&reserved, "InvalidParameterValueException");
    for bad in ["not-an-arn", &format!("{arn}:1"), "arn:aws:s3:::bucket"] {
        let err = s.lambda_err(&["list-tags", "--resource", bad]);
        assert_code(&err, "ValidationException");
    }
    let missing = s.lambda_err(&["list-tags", "--resource", &arn_of("nope")]);
    assert_code(&missing, "ResourceNotFoundException");
}

#[test]
fn asynchronous_invocations_and_their_settings() {
    let s = Stratus::start();
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active("f", &s.local_uri("app", "latest"), &[]);
    let arn = arn_of("f");

    let none = s.lambda_err(&["get-function-event-invoke-config", "--function-name", "f"]);
    assert_code(&none, "ResourceNotFoundException");
    let put = s.lambda(&[
        "put-function-event-invoke-config",
        "--function-name",
        "f",
        "--maximum-retry-attempts",
        "0",
    ]);
    assert_eq!(put["MaximumRetryAttempts"], 0, "{put}");
    assert_eq!(put["MaximumEventAgeInSeconds"], 21600, "{put}");
    assert_eq!(
        put["FunctionArn"],
        format!("{arn}:$LATEST").as_str(),
        "{put}"
    );
    assert!(put["LastModified"].is_number(), "{put}");
    let got = s.lambda(&["get-function-event-invoke-config", "--function-name", "f"]);
    assert_eq!(got, put);
    // An update keeps what it does not name.
    let updated = s.lambda(&[
        "update-function-event-invoke-config",
        "--function-name",
        "f",
        "--maximum-event-age-in-seconds",
        "3600",
    ]);
    assert_eq!(updated["MaximumRetryAttempts"], 0, "{updated}");
    assert_eq!(updated["MaximumEventAgeInSeconds"], 3600, "{updated}");
    let too_many = s.lambda_err(&[
        "put-function-event-invoke-config",
        "--function-name",
        "f",
        "--maximum-retry-attempts",
        "5",
    ]);
    assert_code(&too_many, "ValidationException");
    let got = s.lambda(&["get-function-event-invoke-config", "--function-name", "f"]);
    assert_eq!(got, updated, "a rejected put changed the settings");

    // Accepted at once; the function runs afterwards.
    let queued = s.invoke_with("f", &echo(1), &["--invocation-type", "Event"]);
    assert_eq!(queued.status, 202, "{queued:?}");
    assert!(queued.body.is_empty(), "{queued:?}");
    let echoed = |log: &str| {
        log.lines()
            .filter(|l| l.starts_with("echo request "))
            .count()
    };
    poll_until(Duration::from_secs(30), || {
        (echoed(&s.function_log("f")) == 1).then_some(())
    });
    // The request id of the 202 is the one the function sees.
    let r = s.send(
        s.http
            .post(s.server.url("/2015-03-31/functions/f/invocations"))
            .header("X-Amz-Invocation-Type", "Event")
            .body(echo(2).to_string()),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(r.body.is_empty(), "{}", r.text());
    let id = r
        .header("x-amzn-requestid")
        .unwrap_or_else(|| panic!("no x-amzn-RequestId: {:?}", r.headers))
        .to_string();
    let log = poll_until(Duration::from_secs(30), || {
        let log = s.function_log("f");
        log.contains(&format!("REPORT RequestId: {id}\t"))
            .then_some(log)
    });
    assert!(log.contains(&format!("\necho request {id}\n")), "{log}");
    assert!(
        log.contains(&format!("START RequestId: {id} Version: $LATEST\n")),
        "{log}"
    );

    // DryRun checks the function is there and runs nothing.
    let dry = s.invoke_with("f", &echo(3), &["--invocation-type", "DryRun"]);
    assert_eq!(dry.status, 204, "{dry:?}");
    assert!(dry.body.is_empty(), "{dry:?}");
    let r = s.send(
        s.http
            .post(s.server.url("/2015-03-31/functions/nope/invocations"))
            .header("X-Amz-Invocation-Type", "DryRun")
            .body("{}"),
    );
    assert_eq!(r.status, 404, "{}", r.text());

    let deleted = s.lambda(&[
        "delete-function-event-invoke-config",
        "--function-name",
        "f",
    ]);
    assert_eq!(deleted, Value::Null);
    let gone = s.lambda_err(&["get-function-event-invoke-config", "--function-name", "f"]);
    assert_code(&gone, "ResourceNotFoundException");
    assert_eq!(echoed(&s.function_log("f")), 2, "{}", s.function_log("f"));
}

#[test]
fn a_caller_that_disconnects_does_not_cost_capacity() {
    use std::io::Write;
    let s = Stratus::start_with(&["--account-concurrency", "1"]);
    s.create_repository("app");
    s.push_image("app", "latest", &[]);
    s.create_active("f", &s.local_uri("app", "latest"), &[]);
    let body = json!({"action": "sleep", "ms": 800}).to_string();
    let mut stream = std::net::TcpStream::connect(s.server.addr()).expect("connect");
    write!(
        stream,
        "POST /2015-03-31/functions/f/invocations HTTP/1.1\r\nHost: {}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=test/20250101/{REGION}/lambda/aws4_request, SignedHeaders=host, Signature={}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        s.server.addr(),
        "0".repeat(64),
        body.len()
    )
    .expect("send invoke");
    // Hang up once the function is running the invocation.
    poll_until(Duration::from_secs(60), || {
        s.function_log("f")
            .contains("START RequestId")
            .then_some(())
    });
    drop(stream);
    // The one execution slot comes back when the abandoned invocation
    // ends; with the slot lost, every later invoke would be throttled.
    let echoed = poll_until(Duration::from_secs(30), || {
        let r = s.invoke_http("f", json!({"action": "echo"}).to_string());
        (r.status == 200).then_some(r)
    });
    assert_eq!(echoed.json()["echo"]["action"], "echo");
    // Both invocations ended and were logged.
    poll_until(Duration::from_secs(30), || {
        (s.function_log("f").matches("REPORT RequestId").count() >= 2).then_some(())
    });
}
