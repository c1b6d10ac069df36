//! Container-image functions on the `docker` executor, against the real
//! `stratus` binary run with `--executor docker` and the real Docker
//! engine: the test function (`tests/fixtures/rust-function`, built on the
//! official `lambda_runtime` crate) goes into an image pushed with skopeo,
//! the aws CLI creates and invokes the function, the engine pulls the image
//! from Stratus' registry (`127.0.0.1:PORT/repo@sha256:…`) and runs each
//! instance as a container labelled with the server's id.
//!
//! The suites that need the engine are gated by `STRATUS_TEST_DOCKER=1`
//! (`.ci/run` sets it). Every server is stopped at the end of its test and
//! the test then checks, with the docker CLI, that no container carrying
//! the server's label is left; images the engine pulled are removed.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use tempfile::TempDir;
use test_support::{
    aws_err, aws_json, poll_until, require_docker, rust_function_bootstrap, sha256_hex,
    try_poll_until, CopyOptions, Docker, OciImageBuilder, OutputExt, Skopeo, TestServer,
};

const REGION: &str = "us-east-1";
const ROLE: &str = "arn:aws:iam::000000000000:role/lambda-role";
/// How long a function may take to become `Active` (the engine pulls the
/// image on the first one).
const ACTIVATION_TIMEOUT: Duration = Duration::from_secs(120);
/// How long containers may take to appear or go.
const CONTAINER_TIMEOUT: Duration = Duration::from_secs(30);

/// A server on the docker executor, with a docker CLI and a work dir.
struct Stratus {
    server: TestServer,
    docker: Docker,
    work: TempDir,
    outfiles: AtomicUsize,
    /// Image references the engine may have pulled (removed at the end).
    pulled: std::sync::Mutex<Vec<String>>,
    /// Declared last: removed after the server is gone.
    _data: TempDir,
}

impl Stratus {
    fn start(extra: &[&str]) -> Stratus {
        rust_function_bootstrap();
        let data = TempDir::with_prefix("stratus-lambda-docker-").expect("create data dir");
        let mut args = vec!["--executor", "docker"];
        args.extend_from_slice(extra);
        let server =
            TestServer::start_with(Path::new(env!("CARGO_BIN_EXE_stratus")), data.path(), &args);
        Stratus {
            server,
            docker: Docker::new(),
            work: TempDir::with_prefix("stratus-lambda-docker-work-").expect("create work dir"),
            outfiles: AtomicUsize::new(0),
            pulled: std::sync::Mutex::new(Vec::new()),
            _data: data,
        }
    }

    /// The value of the `io.stratus.server` label of this server's
    /// containers: SHA-256 of its data directory, first 16 hex digits.
    fn server_label(&self) -> String {
        let dir = self.server.data_dir().to_string_lossy().into_owned();
        format!("io.stratus.server={}", &sha256_hex(dir.as_bytes())[..16])
    }

    /// Ids of the containers carrying this server's label, running or not.
    #[track_caller]
    fn containers(&self) -> Vec<String> {
        let out = self.docker.ok(&[
            "ps",
            "-a",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label={}", self.server_label()),
        ]);
        out.stdout_str().lines().map(str::to_string).collect()
    }

    /// Polls until exactly `n` containers carry this server's label.
    #[track_caller]
    fn wait_containers(&self, n: usize) -> Vec<String> {
        let mut last = Vec::new();
        let ok = try_poll_until(CONTAINER_TIMEOUT, || {
            last = self.containers();
            (last.len() == n).then(|| last.clone())
        });
        ok.unwrap_or_else(|| {
            panic!(
                "expected {n} containers with {}, docker lists {last:?}\n{}",
                self.server_label(),
                self.server.stderr_tail()
            )
        })
    }

    #[track_caller]
    fn lambda(&self, args: &[&str]) -> Value {
        let mut all = vec!["lambda"];
        all.extend_from_slice(args);
        aws_json(&self.server, REGION, &all)
    }

    /// Everything the instances of function `name` logged so far (its log
    /// group's files under the data dir, one `<epoch ms>\t<line>` a line).
    fn function_log(&self, name: &str) -> String {
        let group = format!("/aws/lambda/{name}").replace('/', "%2F");
        let dir = self
            .server
            .data_dir()
            .join("logs")
            .join("000000000000")
            .join(REGION)
            .join(group);
        let mut log = String::new();
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            log.push_str(&fs::read_to_string(entry.path()).unwrap_or_default());
        }
        log
    }

    /// Builds the test function's image and pushes it to
    /// `localhost:PORT/REPO:latest` with skopeo; returns the manifest digest.
    #[track_caller]
    fn push_image(&self, repo: &str) -> String {
        aws_json(
            &self.server,
            REGION,
            &["ecr", "create-repository", "--repository-name", repo],
        );
        let image = OciImageBuilder::new()
            .layer([("bootstrap", rust_function_bootstrap())])
            .entrypoint(&["/bootstrap"])
            .write(&self.work.path().join("layout").join(repo), "latest");
        let dest = format!("docker://{}/{repo}:latest", self.server.registry_host());
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
        self.pulled.lock().expect("lock").push(format!(
            "127.0.0.1:{}/{repo}@{}",
            self.server.port(),
            image.manifest_digest
        ));
        image.manifest_digest
    }

    /// Creates function `name` from `repo:latest` and waits until it is
    /// `Active`.
    #[track_caller]
    fn create_active(&self, name: &str, repo: &str, extra: &[&str]) -> Value {
        let code = format!("ImageUri={}/{repo}:latest", self.server.registry_host());
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
        ];
        args.extend_from_slice(extra);
        let created = self.lambda(&args);
        assert_eq!(created["State"], "Pending", "{created}");
        poll_until(ACTIVATION_TIMEOUT, || {
            let c = self.lambda(&["get-function-configuration", "--function-name", name]);
            assert_ne!(c["State"], "Failed", "{c}\n{}", self.server.stderr_tail());
            (c["State"] == "Active" && c["LastUpdateStatus"] == "Successful").then_some(c)
        })
    }

    /// `aws lambda invoke --log-type Tail`: (FunctionError, payload, log).
    #[track_caller]
    fn invoke(&self, name: &str, payload: &Value) -> Invoked {
        let n = self.outfiles.fetch_add(1, Ordering::Relaxed);
        let outfile = self.work.path().join(format!("out-{n}.json"));
        let payload = payload.to_string();
        let out = self.lambda(&[
            "invoke",
            "--function-name",
            name,
            "--log-type",
            "Tail",
            "--payload",
            &payload,
            &outfile.to_string_lossy(),
        ]);
        assert_eq!(out["StatusCode"], 200, "{out}");
        let body = fs::read(&outfile).expect("read outfile");
        let log = out["LogResult"]
            .as_str()
            .map(|b| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .expect("LogResult is base64");
                String::from_utf8_lossy(&bytes).into_owned()
            })
            .unwrap_or_default();
        Invoked {
            function_error: out["FunctionError"].as_str().map(str::to_string),
            payload: serde_json::from_slice(&body).unwrap_or_else(|e| {
                panic!(
                    "payload is not JSON ({e}): {}",
                    String::from_utf8_lossy(&body)
                )
            }),
            log,
        }
    }
}

impl Drop for Stratus {
    /// Stops the server gracefully (it stops every instance), checks that
    /// no container of it is left, and removes the images it pulled.
    fn drop(&mut self) {
        if self.server.is_running() {
            let status = self.server.terminate();
            if !thread::panicking() {
                assert!(status.success(), "stratus exited with {status}");
            }
        }
        if !test_support::docker_enabled() {
            return;
        }
        let left = self.containers();
        for id in &left {
            let _ = self.docker.cmd(&["rm", "--force", id]);
        }
        let pulled = std::mem::take(&mut *self.pulled.lock().unwrap_or_else(|e| e.into_inner()));
        for image in pulled {
            let _ = self.docker.cmd(&["rmi", &image]);
        }
        if !left.is_empty() && !thread::panicking() {
            panic!(
                "containers left after a graceful stop: {left:?}\n{}",
                self.server.stderr_tail()
            );
        }
    }
}

#[derive(Debug)]
struct Invoked {
    function_error: Option<String>,
    payload: Value,
    log: String,
}

impl Invoked {
    #[track_caller]
    fn ok(&self) -> &Value {
        assert_eq!(self.function_error, None, "{self:?}");
        &self.payload
    }

    #[track_caller]
    fn unhandled(&self) -> &Value {
        assert_eq!(
            self.function_error.as_deref(),
            Some("Unhandled"),
            "{self:?}"
        );
        &self.payload
    }

    /// The `REPORT` line, which ends the tail.
    #[track_caller]
    fn report(&self) -> &str {
        let last = self.log.lines().last().unwrap_or_default();
        assert!(last.starts_with("REPORT RequestId: "), "{}", self.log);
        last
    }

    fn log_stream(&self) -> String {
        self.payload
            .pointer("/env/AWS_LAMBDA_LOG_STREAM_NAME")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no log stream in {}", self.payload))
            .to_string()
    }
}

/// `Max Memory Used: N MB` of a REPORT line.
fn max_memory_mb(report: &str) -> u64 {
    report
        .split('\t')
        .find_map(|f| f.strip_prefix("Max Memory Used: "))
        .and_then(|v| v.trim_end_matches(" MB").parse().ok())
        .unwrap_or_else(|| panic!("no Max Memory Used in {report:?}"))
}

fn echo(n: u64) -> Value {
    json!({"action": "echo", "n": n})
}

#[test]
fn an_image_function_runs_as_a_container() {
    require_docker!();
    let s = Stratus::start(&[]);
    s.push_image("app");
    s.create_active("f", "app", &["--environment", "Variables={USER_STAGE=dev}"]);

    let cold = s.invoke("f", &echo(1));
    let body = cold.ok();
    assert_eq!(body["echo"], echo(1), "{body}");
    assert_eq!(body["env"]["USER_STAGE"], "dev", "{body}");
    assert_eq!(body["env"]["AWS_LAMBDA_FUNCTION_NAME"], "f", "{body}");
    let runtime_api = body["env"]["AWS_LAMBDA_RUNTIME_API"]
        .as_str()
        .unwrap_or_default();
    assert!(runtime_api.starts_with("127.0.0.1:"), "{body}");
    assert!(cold.log.starts_with("START RequestId: "), "{}", cold.log);
    // The function's own line reaches its log stream. (The tail usually
    // has it too, but it waits only 10 ms of quiet for late output, and
    // the engine's attach stream can lag more than that on a busy machine.)
    let request_id = body["request_id"].as_str().unwrap_or_default().to_string();
    let wanted = format!("echo request {request_id}");
    poll_until(Duration::from_secs(10), || {
        s.function_log("f").contains(&wanted).then_some(())
    });
    assert!(cold.report().contains("Init Duration: "), "{}", cold.log);

    // One container, labelled, limited, read-only, on the host network.
    let ids = s.wait_containers(1);
    let inspect = s.docker.ok(&[
        "inspect",
        "--format",
        "{{.HostConfig.NetworkMode}} {{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} \
         {{.HostConfig.ReadonlyRootfs}} {{index .Config.Labels \"io.stratus.instance\"}} {{.Config.Entrypoint}}",
        &ids[0],
    ]);
    let fields: Vec<String> = inspect
        .stdout_str()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(
        fields[..4],
        ["host", "134217728", "134217728", "true"],
        "{fields:?}"
    );
    assert!(
        cold.log_stream().ends_with(&fields[4]),
        "instance label {} vs stream {}",
        fields[4],
        cold.log_stream()
    );
    assert_eq!(fields[5], "[/bootstrap]", "{fields:?}");

    // Warm: the same instance.
    let warm = s.invoke("f", &echo(2));
    assert_eq!(warm.ok()["echo"], echo(2));
    assert_eq!(warm.log_stream(), cold.log_stream());
    assert!(!warm.report().contains("Init Duration"), "{}", warm.log);

    // The handler's error.
    let failed = s.invoke("f", &json!({"action": "error"}));
    let doc = failed.unhandled();
    assert_eq!(
        doc["errorMessage"], "the test function failed on purpose",
        "{doc}"
    );
    failed.report();

    // Memory use comes from the engine's samples (about one a second).
    poll_until(Duration::from_secs(15), || {
        let r = s.invoke("f", &echo(3));
        r.ok();
        let mb = max_memory_mb(r.report());
        assert!(mb <= 128, "{}", r.log);
        (mb > 0).then_some(())
    });

    let deleted = s.lambda(&["delete-function", "--function-name", "f"]);
    assert_eq!(deleted, json!({"StatusCode": 204}));
    s.wait_containers(0);
}

#[test]
fn timeouts_crashes_and_oom_kills_replace_the_container() {
    require_docker!();
    let s = Stratus::start(&[]);
    s.push_image("app");
    s.create_active("f", "app", &["--timeout", "1", "--memory-size", "128"]);
    let first = s.invoke("f", &echo(1));
    let first_stream = first.log_stream();

    let timed_out = s.invoke("f", &json!({"action": "sleep", "ms": 5000}));
    let doc = timed_out.unhandled();
    let message = doc["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("Task timed out after 1.00 seconds"),
        "{doc}"
    );
    let second = s.invoke("f", &echo(2));
    let second_stream = second.log_stream();
    assert_ne!(
        first_stream, second_stream,
        "a timed-out instance was reused"
    );
    assert!(second.report().contains("Init Duration"), "{}", second.log);

    let exited = s.invoke("f", &json!({"action": "exit"}));
    let doc = exited.unhandled();
    assert_eq!(doc["errorType"], "Runtime.ExitError", "{doc}");
    assert!(
        doc["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("exit status 3"),
        "{doc}"
    );
    assert!(
        exited.log.contains("\nexiting mid-invocation\n"),
        "{}",
        exited.log
    );
    let third = s.invoke("f", &echo(3));
    let third_stream = third.log_stream();
    assert_ne!(second_stream, third_stream, "a crashed instance was reused");

    // The engine reports the OOM kill (cgroup memory limit, no swap).
    let oom = s.invoke("f", &json!({"action": "oom", "mb": 400}));
    let doc = oom.unhandled();
    assert_eq!(
        doc["errorType"], "Runtime.OutOfMemory",
        "{doc}\n{}",
        oom.log
    );
    let fourth = s.invoke("f", &echo(4));
    assert_ne!(
        third_stream,
        fourth.log_stream(),
        "an OOM-killed instance was reused"
    );
    s.wait_containers(1);
}

#[test]
fn a_restarted_server_removes_containers_a_killed_one_left() {
    require_docker!();
    let mut s = Stratus::start(&[]);
    s.push_image("app");
    s.create_active("f", "app", &[]);
    s.invoke("f", &echo(1)).ok();
    let left = s.wait_containers(1);

    s.server.kill9();
    // The killed server's container is still there...
    assert_eq!(s.containers(), left);
    // ... until the server starts again.
    s.server.restart();
    s.wait_containers(0);
    assert!(
        s.server.stderr().contains("removed a leftover container"),
        "{}",
        s.server.stderr_tail()
    );
    // The function still runs (the engine pulls from the new port).
    s.pulled.lock().expect("lock").push(format!(
        "127.0.0.1:{}/app@{}",
        s.server.port(),
        s.lambda(&["get-function-configuration", "--function-name", "f"])["CodeSha256"]
            .as_str()
            .map(|hex| format!("sha256:{hex}"))
            .unwrap_or_default()
    ));
    assert_eq!(s.invoke("f", &echo(2)).ok()["echo"], echo(2));
    s.wait_containers(1);
}

/// Without an engine the server still starts, says why docker cannot run
/// anything, and a function fails to activate with that reason.
#[test]
fn an_unreachable_engine_is_reported() {
    let s = Stratus::start(&["--docker-host", "unix:///nonexistent/docker.sock"]);
    s.push_image("app");
    let code = format!("ImageUri={}/app:latest", s.server.registry_host());
    s.lambda(&[
        "create-function",
        "--function-name",
        "f",
        "--package-type",
        "Image",
        "--code",
        &code,
        "--role",
        ROLE,
    ]);
    let c = poll_until(Duration::from_secs(30), || {
        let c = s.lambda(&["get-function-configuration", "--function-name", "f"]);
        (c["State"] == "Failed").then_some(c)
    });
    let reason = c["StateReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("cannot reach the Docker engine at unix:///nonexistent/docker.sock")
            && reason.contains("start Docker or choose --executor oci"),
        "{c}"
    );
    let stderr = s.server.stderr();
    assert!(stderr.contains("docker executor"), "{stderr}");
    assert!(
        stderr.contains("container-image functions cannot run: cannot reach the Docker engine"),
        "{stderr}"
    );
    let err = aws_err(
        &s.server,
        REGION,
        &["lambda", "invoke", "--function-name", "f", "/dev/null"],
    );
    assert!(
        err.contains("ResourceConflictException") || err.contains("Failed"),
        "{err}"
    );
}

#[test]
fn an_unknown_executor_is_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(["serve", "--listen", "127.0.0.1:0", "--executor", "podman"])
        .output()
        .expect("run stratus");
    assert!(!out.status.success());
    let stderr = out.stderr_str();
    assert!(
        stderr.contains("podman") && stderr.contains("oci") && stderr.contains("docker"),
        "{stderr}"
    );
}

/// The tutorial's Python image (`FROM public.ecr.aws/lambda/python:3.11`,
/// the stand-in `tests/images/python3.11/build.sh` builds, with
/// awslambdaric) pushed with `docker push` and run by the engine.
#[test]
fn the_python_tutorial_image_runs_on_docker() {
    require_docker!();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/images/python3.11/build.sh");
    test_support::run_command(
        &mut std::process::Command::new(&script),
        Duration::from_secs(1800),
        "bash, debootstrap (apt-get install debootstrap) and docker",
    )
    .assert_success(&script.display().to_string());
    let s = Stratus::start(&[]);
    aws_json(
        &s.server,
        REGION,
        &["ecr", "create-repository", "--repository-name", "py"],
    );
    let context = s.work.path().join("py");
    fs::create_dir(&context).expect("create build context");
    fs::write(
        context.join("app.py"),
        "import sys\ndef handler(event, context):\n    print('handling', event)\n    return {'python': sys.version_info[:2], 'event': event}\n",
    )
    .expect("write app.py");
    fs::write(
        context.join("Dockerfile"),
        "FROM public.ecr.aws/lambda/python:3.11\nCOPY app.py ${LAMBDA_TASK_ROOT}\nCMD [ \"app.handler\" ]\n",
    )
    .expect("write Dockerfile");
    let remote = format!("{}/py:latest", s.server.registry_host());
    s.docker.remove_on_drop(&remote);
    s.docker.ok(&[
        "build",
        "--pull=false",
        "--network=host",
        "-t",
        &remote,
        context.to_str().expect("utf-8 path"),
    ]);
    let pushed = s.docker.push(&remote).assert_success("docker push");
    let digest = Docker::pushed_digest(&pushed).expect("pushed digest");
    s.pulled
        .lock()
        .expect("lock")
        .push(format!("127.0.0.1:{}/py@{digest}", s.server.port()));

    s.create_active("py", "py", &[]);
    let r = s.invoke("py", &json!({"hello": "docker"}));
    assert_eq!(
        r.ok(),
        &json!({"python": [3, 11], "event": {"hello": "docker"}}),
        "{}",
        r.log
    );
    assert!(r.log.contains("handling {'hello': 'docker'}"), "{}", r.log);
    assert!(r.report().contains("Init Duration"), "{}", r.log);
    s.wait_containers(1);
}

/// With `--credentials` the registry requires a token: the engine pulls
/// with one the server mints for the function's account, here not the
/// default one (a 12-digit access key selects its own account).
#[test]
fn the_engine_pulls_with_a_token_for_the_functions_account() {
    require_docker!();
    const KEY: &str = "111122223333";
    const SECRET: &str = "docker-secret";
    let s = Stratus::start(&["--credentials", &format!("{KEY}:{SECRET}")]);
    let aws = |args: &[&str]| -> Value {
        let out = test_support::aws_with_credentials(&s.server, REGION, KEY, SECRET, args)
            .assert_success(&format!("aws {}", args.join(" ")));
        let text = out.stdout_str();
        if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        }
    };
    aws(&["ecr", "create-repository", "--repository-name", "private"]);
    let password = test_support::aws_with_credentials(
        &s.server,
        REGION,
        KEY,
        SECRET,
        &["ecr", "get-login-password"],
    )
    .assert_success("aws ecr get-login-password")
    .stdout_str();
    let creds = format!("AWS:{}", password.trim());
    let image = OciImageBuilder::new()
        .layer([("bootstrap", rust_function_bootstrap())])
        .entrypoint(&["/bootstrap"])
        .write(&s.work.path().join("layout-private"), "latest");
    let dest = format!("docker://{}/private:latest", s.server.registry_host());
    Skopeo::new()
        .copy_with(
            &image.oci_ref(),
            &dest,
            CopyOptions {
                preserve_digests: true,
                dest_creds: Some(&creds),
                ..CopyOptions::default()
            },
        )
        .assert_success(&format!("skopeo copy to {dest}"));
    s.pulled.lock().expect("lock").push(format!(
        "127.0.0.1:{}/private@{}",
        s.server.port(),
        image.manifest_digest
    ));

    let code = format!("ImageUri={}/private:latest", s.server.registry_host());
    let role = format!("arn:aws:iam::{KEY}:role/lambda-role");
    let created = aws(&[
        "lambda",
        "create-function",
        "--function-name",
        "p",
        "--package-type",
        "Image",
        "--code",
        &code,
        "--role",
        &role,
    ]);
    assert_eq!(
        created["FunctionArn"],
        format!("arn:aws:lambda:{REGION}:{KEY}:function:p").as_str(),
        "{created}"
    );
    poll_until(ACTIVATION_TIMEOUT, || {
        let c = aws(&[
            "lambda",
            "get-function-configuration",
            "--function-name",
            "p",
        ]);
        assert_ne!(c["State"], "Failed", "{c}\n{}", s.server.stderr_tail());
        (c["State"] == "Active").then_some(())
    });
    let outfile = s.work.path().join("private-out.json");
    let out = aws(&[
        "lambda",
        "invoke",
        "--function-name",
        "p",
        "--payload",
        r#"{"action":"echo","n":7}"#,
        &outfile.to_string_lossy(),
    ]);
    assert!(out.get("FunctionError").is_none(), "{out}");
    let body: Value = serde_json::from_slice(&fs::read(&outfile).expect("outfile")).expect("JSON");
    assert_eq!(body["echo"], json!({"action": "echo", "n": 7}), "{body}");
    s.wait_containers(1);
}

/// A zip function (`--runtime python3.11 --zip-file …`) on the docker
/// executor: its runtime's base image from the registry, its package
/// bind-mounted read-only at `/var/task`.
#[test]
fn a_zip_function_runs_on_docker_with_its_package_at_var_task() {
    require_docker!();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/images/python3.11/build.sh");
    test_support::run_command(
        &mut std::process::Command::new(&script),
        Duration::from_secs(1800),
        "bash, debootstrap (apt-get install debootstrap) and docker",
    )
    .assert_success(&script.display().to_string());
    let s = Stratus::start(&[]);
    aws_json(
        &s.server,
        REGION,
        &[
            "ecr",
            "create-repository",
            "--repository-name",
            "lambda/python",
        ],
    );
    let remote = format!("{}/lambda/python:3.11", s.server.registry_host());
    s.docker
        .tag("public.ecr.aws/lambda/python:3.11", &remote)
        .assert_success("docker tag");
    let pushed = s.docker.push(&remote).assert_success("docker push");
    let digest = Docker::pushed_digest(&pushed).expect("pushed digest");
    s.pulled.lock().expect("lock").push(format!(
        "127.0.0.1:{}/lambda/python@{digest}",
        s.server.port()
    ));

    let package = s.work.path().join("function.zip");
    let mut zip = zip::ZipWriter::new(fs::File::create(&package).expect("create zip"));
    zip.start_file(
        "app.py",
        zip::write::SimpleFileOptions::default().unix_permissions(0o644),
    )
    .expect("zip entry");
    std::io::Write::write_all(
        &mut zip,
        b"import os\ndef handler(event, context):\n    return {'files': sorted(os.listdir('/var/task')), 'event': event}\n",
    )
    .expect("write app.py");
    zip.finish().expect("finish zip");
    let zip_arg = format!("fileb://{}", package.display());
    s.lambda(&[
        "create-function",
        "--function-name",
        "zipped",
        "--runtime",
        "python3.11",
        "--handler",
        "app.handler",
        "--zip-file",
        &zip_arg,
        "--role",
        ROLE,
    ]);
    poll_until(ACTIVATION_TIMEOUT, || {
        let c = s.lambda(&["get-function-configuration", "--function-name", "zipped"]);
        assert_ne!(c["State"], "Failed", "{c}\n{}", s.server.stderr_tail());
        (c["State"] == "Active").then_some(())
    });
    let r = s.invoke("zipped", &json!({"zip": true}));
    assert_eq!(
        r.ok(),
        &json!({"files": ["app.py"], "event": {"zip": true}}),
        "{}",
        r.log
    );
    r.report();
    s.wait_containers(1);
}
