//! The AWS tutorial "Deploy Python Lambda functions with container images"
//! against the real binary, step for step, with the real clients: a
//! Dockerfile `FROM public.ecr.aws/lambda/python:3.11`, `docker build`,
//! `aws ecr create-repository`, `aws ecr get-login-password | docker
//! login`, `docker push`, `aws lambda create-function --package-type
//! Image`, `aws lambda wait function-active-v2`, `aws lambda invoke
//! --log-type Tail`. Needs `STRATUS_TEST_DOCKER=1`.
//!
//! No public registry is contacted: the base image is Stratus' stand-in
//! (Debian 12's Python 3.11 + awslambdaric + the AWS entrypoint logic),
//! built or loaded from its cache by `tests/images/python3.11/build.sh`
//! once per test process. The server runs the function under runc (its
//! `oci` executor) with the image's ENTRYPOINT, CMD, ENV and WORKDIR.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::Value;
use tempfile::TempDir;
use test_support::{
    aws, aws_json, poll_until, require_docker, run_command, Docker, OutputExt, TestServer,
    DEFAULT_COMMAND_TIMEOUT,
};

const BASE_IMAGE: &str = "public.ecr.aws/lambda/python:3.11";
const REGION: &str = "ap-northeast-2";
const ACCOUNT: &str = "000000000000";
const ROLE: &str = "arn:aws:iam::000000000000:role/lambda-role";
/// A cold build of the base image takes a few minutes; another test
/// process may hold the build lock for as long.
const BASE_BUILD_TIMEOUT: Duration = Duration::from_secs(1800);

/// The tutorial's handler, verbatim.
const TUTORIAL_APP: &str = r#"import sys
def handler(event, context):
    return 'Hello from AWS Lambda using Python' + sys.version + '!'
"#;

/// The tutorial's Dockerfile, verbatim.
const TUTORIAL_DOCKERFILE: &str = r#"FROM public.ecr.aws/lambda/python:3.11

# Copy function code
COPY app.py ${LAMBDA_TASK_ROOT}

# Set the CMD to your handler (could also be done as a parameter override outside of the Dockerfile)
CMD [ "app.handler" ]
"#;

/// The handler the issue names: an API Gateway-style response.
const HELLO_APP: &str = r#"import json

def handler(event, context):
    return {
        "statusCode": 200,
        "body": json.dumps({"text": "Hello from Lambda!"}),
    }
"#;

/// A handler that raises.
const RAISING_APP: &str = r#"def handler(event, context):
    fail(event.get("why", "no reason"))

def fail(why):
    raise ValueError("it went wrong: " + why)
"#;

// ----- the base image -------------------------------------------------------

/// Builds the stand-in base image (or finds it cached) once per test
/// process; `build.sh` locks against other processes itself.
fn base_image() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script = repo_root().join("tests/images/python3.11/build.sh");
        let started = Instant::now();
        let out = run_command(
            &mut Command::new(&script),
            BASE_BUILD_TIMEOUT,
            "bash, debootstrap (apt-get install debootstrap) and docker",
        )
        .assert_success(&script.display().to_string());
        eprint!("{}{}", out.stdout_str(), out.stderr_str());
        eprintln!("base image ready after {:.1?}", started.elapsed());
    });
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

// ----- a server and the tutorial's steps -------------------------------------

/// A server, a docker CLI logged in to its registry and a directory for
/// build contexts and invoke output.
struct Tutorial {
    server: TestServer,
    docker: Docker,
    work: TempDir,
    /// Declared last: removed after the server is gone.
    _data: TempDir,
}

impl Tutorial {
    /// Starts a server; `aws ecr create-repository --repository-name
    /// REPO`; `aws ecr get-login-password | docker login`.
    fn start(repo: &str) -> Tutorial {
        base_image();
        let data = TempDir::with_prefix("stratus-python-tutorial-").expect("create data dir");
        let server =
            TestServer::start_with(Path::new(env!("CARGO_BIN_EXE_stratus")), data.path(), &[]);
        let t = Tutorial {
            server,
            docker: Docker::new(),
            work: TempDir::with_prefix("stratus-python-work-").expect("create work dir"),
            _data: data,
        };
        let created = t.aws_json(&["ecr", "create-repository", "--repository-name", repo]);
        assert_eq!(
            created["repository"]["repositoryUri"],
            t.local_uri(repo).as_str(),
            "{created}"
        );
        let password = aws(&t.server, REGION, &["ecr", "get-login-password"])
            .assert_success("aws ecr get-login-password")
            .stdout_str();
        t.docker_login_stdin(password.trim())
            .assert_success("docker login --password-stdin");
        t
    }

    #[track_caller]
    fn aws_json(&self, args: &[&str]) -> Value {
        aws_json(&self.server, REGION, args)
    }

    /// `localhost:PORT/REPO`.
    fn local_uri(&self, repo: &str) -> String {
        format!("{}/{repo}", self.server.registry_host())
    }

    /// `… | docker login --username AWS --password-stdin localhost:PORT`.
    #[track_caller]
    fn docker_login_stdin(&self, password: &str) -> Output {
        let file = self.work.path().join("password");
        fs::write(&file, password).expect("write password");
        let template = self.docker.command();
        let mut cmd = Command::new("sh");
        for (key, value) in template.get_envs() {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        cmd.args([
            "-c",
            r#"exec docker login --username AWS --password-stdin "$1" < "$2""#,
            "sh",
            &self.server.registry_host(),
        ])
        .arg(&file);
        run_command(&mut cmd, DEFAULT_COMMAND_TIMEOUT, "install docker")
    }

    /// Writes `app.py` and `Dockerfile` into a fresh context and runs
    /// `docker build --platform linux/amd64 -t TAG .` (classic builder,
    /// never pulling); returns TAG, removed when the test ends.
    #[track_caller]
    fn build(&self, name: &str, app: &str, dockerfile: &str) -> String {
        let context = self.work.path().join(name);
        fs::create_dir(&context).expect("create build context");
        fs::write(context.join("app.py"), app).expect("write app.py");
        fs::write(context.join("Dockerfile"), dockerfile).expect("write Dockerfile");
        let tag = format!("stratus-test/{}:test", unique(name));
        self.docker.remove_on_drop(&tag);
        self.docker.ok(&[
            "build",
            "--pull=false",
            "--network=host",
            "--platform",
            "linux/amd64",
            "-t",
            &tag,
            context.to_str().expect("utf-8 path"),
        ]);
        tag
    }

    /// `docker tag LOCAL localhost:PORT/REPO:TAG` and `docker push` it;
    /// returns the pushed reference.
    #[track_caller]
    fn push(&self, local: &str, repo: &str, tag: &str) -> String {
        let remote = format!("{}:{tag}", self.local_uri(repo));
        self.docker.tag(local, &remote).assert_success("docker tag");
        self.docker
            .push(&remote)
            .assert_success(&format!("docker push {remote}"));
        remote
    }

    /// `aws lambda create-function … --package-type Image` then `aws lambda
    /// wait function-active-v2`; returns the configuration after the wait.
    #[track_caller]
    fn create_function(&self, name: &str, image_uri: &str) -> Value {
        let code = format!("ImageUri={image_uri}");
        let created = self.aws_json(&[
            "lambda",
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
        ]);
        assert_eq!(created["PackageType"], "Image", "{created}");
        self.aws_json(&[
            "lambda",
            "wait",
            "function-active-v2",
            "--function-name",
            name,
        ]);
        let config = self.aws_json(&[
            "lambda",
            "get-function-configuration",
            "--function-name",
            name,
        ]);
        assert_eq!(config["State"], "Active", "{config}");
        config
    }

    /// `aws lambda invoke --function-name NAME --log-type Tail OUTFILE`.
    #[track_caller]
    fn invoke(&self, name: &str, payload: Option<&str>) -> Invoked {
        let outfile = self.work.path().join(format!("{}.json", unique(name)));
        let outfile_arg = outfile.to_str().expect("utf-8 path");
        let mut args = vec!["lambda", "invoke", "--function-name", name];
        if let Some(payload) = payload {
            args.extend(["--payload", payload]);
        }
        args.extend(["--log-type", "Tail", outfile_arg]);
        let out = self.aws_json(&args);
        let payload = fs::read_to_string(&outfile)
            .unwrap_or_else(|e| panic!("read {}: {e}", outfile.display()));
        let log = out["LogResult"]
            .as_str()
            .map(|b64| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap_or_else(|e| panic!("LogResult is not base64 ({e}): {b64}"));
                String::from_utf8_lossy(&bytes).into_owned()
            })
            .unwrap_or_else(|| panic!("no LogResult: {out}"));
        Invoked {
            status: out["StatusCode"].as_u64(),
            function_error: out["FunctionError"].as_str().map(str::to_string),
            payload,
            log,
        }
    }

    /// Ids of the containers in the server's runc state.
    fn containers(&self) -> Vec<String> {
        let root = self.server.data_dir().join("oci").join("runtime");
        if !root.exists() {
            return Vec::new();
        }
        Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["list", "-q"])
            .output()
            .map(|out| out.stdout_str().lines().map(str::to_string).collect())
            .unwrap_or_default()
    }
}

impl Drop for Tutorial {
    /// Stops the server gracefully (it stops its instances) and checks
    /// that no container is left; after a failure, removes any that are.
    fn drop(&mut self) {
        if self.server.is_running() {
            let status = self.server.terminate();
            if !thread::panicking() {
                assert!(status.success(), "stratus exited with {status}");
            }
        }
        let left = self.containers();
        let root = self.server.data_dir().join("oci").join("runtime");
        for id in &left {
            let _ = Command::new("runc")
                .arg("--root")
                .arg(&root)
                .args(["delete", "--force", id])
                .output();
        }
        if !left.is_empty() && !thread::panicking() {
            panic!(
                "containers left after a graceful stop: {left:?}\n{}",
                self.server.stderr_tail()
            );
        }
    }
}

/// What `aws lambda invoke --log-type Tail` printed and wrote.
#[derive(Debug)]
struct Invoked {
    status: Option<u64>,
    function_error: Option<String>,
    /// The outfile.
    payload: String,
    /// `LogResult`, decoded.
    log: String,
}

impl Invoked {
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.payload)
            .unwrap_or_else(|e| panic!("payload is not JSON ({e}): {self:#?}"))
    }

    /// Asserts success; the payload.
    #[track_caller]
    fn ok(&self) -> Value {
        assert_eq!(self.status, Some(200), "{self:#?}");
        assert_eq!(self.function_error, None, "the function failed: {self:#?}");
        self.json()
    }

    /// Asserts an `Unhandled` function error; the error document.
    #[track_caller]
    fn unhandled(&self) -> Value {
        assert_eq!(self.status, Some(200), "{self:#?}");
        assert_eq!(
            self.function_error.as_deref(),
            Some("Unhandled"),
            "{self:#?}"
        );
        self.json()
    }

    /// Checks the platform lines (`START`, `END`, `REPORT`) of the tail
    /// and returns the `Init Duration` in ms, if the REPORT has one.
    #[track_caller]
    fn check_platform_lines(&self) -> Option<f64> {
        let lines: Vec<&str> = self.log.lines().collect();
        let start = lines
            .iter()
            .find_map(|l| l.strip_prefix("START RequestId: "))
            .unwrap_or_else(|| panic!("no START line:\n{}", self.log));
        let (request_id, version) = start
            .split_once(" Version: ")
            .unwrap_or_else(|| panic!("no Version in START:\n{}", self.log));
        assert_eq!(version, "$LATEST", "{}", self.log);
        let n = lines.len();
        assert!(n >= 3, "log too short:\n{}", self.log);
        assert_eq!(
            lines[n - 2],
            format!("END RequestId: {request_id}"),
            "{}",
            self.log
        );
        let report = lines[n - 1]
            .strip_prefix(&format!("REPORT RequestId: {request_id}\t"))
            .unwrap_or_else(|| panic!("no REPORT for {request_id} at the end:\n{}", self.log));
        for field in ["Duration: ", "Billed Duration: ", "Memory Size: 128 MB"] {
            assert!(
                report.contains(field),
                "no {field:?} in REPORT:\n{}",
                self.log
            );
        }
        report.split('\t').find_map(|f| {
            let ms = f.strip_prefix("Init Duration: ")?.strip_suffix(" ms")?;
            Some(
                ms.parse()
                    .unwrap_or_else(|e| panic!("Init Duration {ms:?}: {e}")),
            )
        })
    }
}

/// Something no other test run uses: the name, the process id and the time.
fn unique(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{what}-{}-{nanos}", std::process::id())
}

/// The tutorial's Dockerfile with another handler in its CMD.
fn dockerfile_with_cmd(handler: &str) -> String {
    TUTORIAL_DOCKERFILE.replace(
        r#"CMD [ "app.handler" ]"#,
        &format!(r#"CMD [ "{handler}" ]"#),
    )
}

// ----- tests -----------------------------------------------------------------

/// The tutorial from `docker build` to `aws lambda invoke`, with the
/// handler returning an API Gateway-style response; the same image by its
/// ECR-style URI; the tutorial's own handler, verbatim; and last the
/// tutorial's invoke exactly, without a payload.
#[test]
fn the_tutorial_deploys_and_invokes_a_python_image() {
    require_docker!();
    let t = Tutorial::start("my_lambda");
    let local = t.build("docker-image", HELLO_APP, TUTORIAL_DOCKERFILE);
    let config = t
        .docker
        .ok(&["image", "inspect", "--format", "{{json .Config}}", &local])
        .stdout_str();
    let config: Value = serde_json::from_str(config.trim()).expect("image config JSON");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/lambda-entrypoint.sh"])
    );
    assert_eq!(config["Cmd"], serde_json::json!(["app.handler"]));
    assert_eq!(config["WorkingDir"], "/var/task");

    let pushed = t.push(&local, "my_lambda", "latest");
    let created = t.create_function("my_lambda", &pushed);
    assert_eq!(created["PackageType"], "Image", "{created}");

    let first = t.invoke("my_lambda", Some("{}"));
    let payload = first.ok();
    assert_eq!(payload["statusCode"], 200, "{first:#?}");
    let body: Value = serde_json::from_str(payload["body"].as_str().expect("body is a string"))
        .expect("body is JSON");
    assert_eq!(body, serde_json::json!({"text": "Hello from Lambda!"}));
    // json.dumps' spacing: the bytes are Python's.
    assert_eq!(payload["body"], r#"{"text": "Hello from Lambda!"}"#);
    let init_ms = first.check_platform_lines();
    assert!(
        init_ms.is_some_and(|ms| ms > 0.0),
        "a cold start reports its Init Duration:\n{}",
        first.log
    );
    let warm = t.invoke("my_lambda", Some(r#"{"warm": true}"#));
    assert_eq!(warm.ok(), payload);
    assert_eq!(warm.check_platform_lines(), None, "{}", warm.log);

    // The ECR form of the same image.
    let ecr_uri = format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/my_lambda:latest");
    let config = t.create_function("my_lambda_ecr", &ecr_uri);
    let got = t.aws_json(&["lambda", "get-function", "--function-name", "my_lambda_ecr"]);
    assert_eq!(got["Code"]["ImageUri"], ecr_uri.as_str(), "{got}");
    assert_eq!(
        got["Configuration"]["CodeSha256"], config["CodeSha256"],
        "{got}"
    );
    assert_eq!(t.invoke("my_lambda_ecr", None).ok(), payload);

    // The tutorial's own app.py: the interpreter is Debian 12's 3.11.
    let local = t.build("tutorial-app", TUTORIAL_APP, TUTORIAL_DOCKERFILE);
    let pushed = t.push(&local, "my_lambda", "tutorial");
    t.create_function("tutorial", &pushed);
    let said = t.invoke("tutorial", None).ok();
    let said = said.as_str().unwrap_or_else(|| panic!("{said}"));
    assert!(
        said.starts_with("Hello from AWS Lambda using Python3.11.") && said.ends_with('!'),
        "{said}"
    );

    // The tutorial's invoke has no payload: Lambda hands the function `{}`
    // (awslambdaric cannot unmarshal an empty event).
    let exact = t.invoke("my_lambda", None);
    assert_eq!(exact.ok(), payload, "{exact:#?}");
}

/// A handler that raises and a CMD naming a module that does not exist
/// come back as `Unhandled` function errors in awslambdaric's shape.
#[test]
fn python_errors_come_back_as_unhandled() {
    require_docker!();
    let t = Tutorial::start("my_lambda");

    let local = t.build("raising", RAISING_APP, TUTORIAL_DOCKERFILE);
    let pushed = t.push(&local, "my_lambda", "raising");
    t.create_function("raising", &pushed);
    let raised = t.invoke("raising", Some(r#"{"why": "on purpose"}"#));
    let error = raised.unhandled();
    assert_eq!(error["errorType"], "ValueError", "{raised:#?}");
    assert_eq!(
        error["errorMessage"], "it went wrong: on purpose",
        "{raised:#?}"
    );
    assert!(error["requestId"].is_string(), "{raised:#?}");
    let trace: Vec<&str> = error["stackTrace"]
        .as_array()
        .unwrap_or_else(|| panic!("no stackTrace: {raised:#?}"))
        .iter()
        .map(|f| f.as_str().expect("stack frames are strings"))
        .collect();
    assert!(
        trace
            .iter()
            .any(|f| f.contains(r#"File "/var/task/app.py""#) && f.contains("in fail")),
        "{trace:#?}"
    );
    assert!(
        raised
            .log
            .contains("[ERROR] ValueError: it went wrong: on purpose"),
        "awslambdaric logs the error:\n{}",
        raised.log
    );
    raised.check_platform_lines();

    let local = t.build("no-module", HELLO_APP, &dockerfile_with_cmd("nope.handler"));
    let pushed = t.push(&local, "my_lambda", "no-module");
    t.create_function("no-module", &pushed);
    let failed = t.invoke("no-module", None);
    let error = failed.unhandled();
    assert_eq!(
        error["errorType"], "Runtime.ImportModuleError",
        "{failed:#?}"
    );
    assert_eq!(
        error["errorMessage"], "Unable to import module 'nope': No module named 'nope'",
        "{failed:#?}"
    );
    assert!(
        failed
            .log
            .contains("Runtime.ImportModuleError: Unable to import module 'nope'"),
        "{}",
        failed.log
    );
}

/// The entrypoint's rules, run directly: exactly one argument (else 142),
/// and without a Runtime API it needs the emulator, which the stand-in
/// does not bundle.
#[test]
fn the_base_image_entrypoint_follows_the_aws_script() {
    require_docker!();
    base_image();
    let docker = Docker::new();
    let out = docker.run(&[BASE_IMAGE, "a", "b"]);
    assert_eq!(out.status.code(), Some(142), "{}", out.stderr_str());
    assert_eq!(
        out.stderr_str(),
        "entrypoint requires the handler name to be the first argument\n"
    );
    let out = docker.run(&[BASE_IMAGE]);
    assert_eq!(out.status.code(), Some(142), "{}", out.stderr_str());

    let out = docker.run(&[BASE_IMAGE, "app.handler"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr_str());
    assert!(
        out.stderr_str()
            .contains("does not bundle the Runtime Interface Emulator"),
        "{}",
        out.stderr_str()
    );

    // The layout the tutorial relies on.
    let out = docker
        .run(&[
            "--entrypoint",
            "/bin/sh",
            BASE_IMAGE,
            "-c",
            "pwd; echo $LAMBDA_TASK_ROOT $LAMBDA_RUNTIME_DIR; test -x /var/runtime/bootstrap \
             && python3 --version",
        ])
        .assert_success("docker run sh -c");
    assert_eq!(
        out.stdout_str().lines().take(2).collect::<Vec<_>>(),
        ["/var/task", "/var/task /var/runtime"]
    );
    assert!(
        out.stdout_str().contains("Python 3.11."),
        "{}",
        out.stdout_str()
    );
}

/// The tutorial's "first method": a zip with `app.py`, `--runtime
/// python3.11 --handler app.handler --zip-file fileb://…`, on the base
/// image pushed as `lambda/python:3.11` (the StateReason of a function
/// created before that push says how).
#[test]
fn a_python_zip_function_runs_on_the_pushed_base_image() {
    require_docker!();
    let t = Tutorial::start("lambda/python");
    let package = t.work.path().join("function.zip");
    let mut zip = zip::ZipWriter::new(fs::File::create(&package).expect("create zip"));
    zip.start_file(
        "app.py",
        zip::write::SimpleFileOptions::default().unix_permissions(0o644),
    )
    .expect("zip entry");
    std::io::Write::write_all(&mut zip, HELLO_APP.as_bytes()).expect("write app.py");
    zip.finish().expect("finish zip");
    let zip_arg = format!("fileb://{}", package.display());
    let create = |name: &str| {
        t.aws_json(&[
            "lambda",
            "create-function",
            "--function-name",
            name,
            "--runtime",
            "python3.11",
            "--handler",
            "app.handler",
            "--zip-file",
            &zip_arg,
            "--role",
            ROLE,
        ])
    };
    let configuration = |name: &str| {
        poll_until(Duration::from_secs(60), || {
            let c = t.aws_json(&[
                "lambda",
                "get-function-configuration",
                "--function-name",
                name,
            ]);
            (c["State"] != "Pending" && c["LastUpdateStatus"] != "InProgress").then_some(c)
        })
    };

    create("too_early");
    let failed = configuration("too_early");
    assert_eq!(failed["State"], "Failed", "{failed}");
    let reason = failed["StateReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("docker push") && reason.contains("lambda/python:3.11"),
        "{reason}"
    );

    // What the reason says: the base image, tagged into the registry.
    t.push(BASE_IMAGE, "lambda/python", "3.11");
    let created = create("zipped");
    assert_eq!(created["PackageType"], "Zip", "{created}");
    assert_eq!(configuration("zipped")["State"], "Active");
    let first = t.invoke("zipped", Some("{}"));
    let payload = first.ok();
    assert_eq!(payload["statusCode"], 200, "{first:#?}");
    assert_eq!(payload["body"], r#"{"text": "Hello from Lambda!"}"#);
    assert!(first.check_platform_lines().is_some(), "{}", first.log);
}
