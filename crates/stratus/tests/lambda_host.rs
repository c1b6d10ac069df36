//! The `host` executor end to end: `stratus serve --executor host` and the
//! aws CLI. Zip functions run as plain local processes, with no base image:
//! a `provided.al2023` package's `bootstrap` (the Rust test function) and
//! a `python3.11` package through the locally installed `awslambdaric`.
//! Image functions end `Failed`. No process of a function outlives its
//! instance: timed out, deleted, or the server stopped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use tempfile::TempDir;
use test_support::{
    aws, aws_json, poll_until, try_poll_until, CopyOptions, OciImageBuilder, OutputExt, Skopeo,
    TestServer,
};

const REGION: &str = "us-east-1";
const ROLE: &str = "arn:aws:iam::000000000000:role/lambda-role";
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a killed process may take to disappear.
const GONE_TIMEOUT: Duration = Duration::from_secs(10);

/// A zip of `entries` (name, content, unix mode).
fn zip_of(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data, mode) in entries {
        let opts = zip::write::SimpleFileOptions::default().unix_permissions(*mode);
        w.start_file(*name, opts).expect("start zip entry");
        w.write_all(data).expect("write zip entry");
    }
    w.finish().expect("finish zip").into_inner()
}

struct Fixture {
    server: TestServer,
    /// The data dir, canonical (what the processes' paths start with).
    data: PathBuf,
    work: TempDir,
    _data: TempDir,
}

impl Fixture {
    fn start() -> Fixture {
        let data = TempDir::with_prefix("stratus-lambda-host-").expect("data dir");
        let server = TestServer::start_with(
            Path::new(env!("CARGO_BIN_EXE_stratus")),
            data.path(),
            &["--executor", "host", "--auto-create-repositories"],
        );
        Fixture {
            server,
            data: data.path().canonicalize().expect("canonical data dir"),
            work: TempDir::with_prefix("stratus-lambda-host-work-").expect("work dir"),
            _data: data,
        }
    }

    #[track_caller]
    fn lambda(&self, args: &[&str]) -> Value {
        let mut all = vec!["lambda"];
        all.extend_from_slice(args);
        aws_json(&self.server, REGION, &all)
    }

    /// Writes `bytes` to a file in the work dir; returns `fileb://PATH`.
    fn fileb(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.work.path().join(name);
        std::fs::write(&path, bytes).expect("write zip");
        format!("fileb://{}", path.display())
    }

    fn create_zip(&self, name: &str, runtime: &str, handler: &str, zip: &[u8], extra: &[&str]) {
        let zip_arg = self.fileb(&format!("{name}.zip"), zip);
        let mut args = vec![
            "create-function",
            "--function-name",
            name,
            "--runtime",
            runtime,
            "--handler",
            handler,
            "--zip-file",
            &zip_arg,
            "--role",
            ROLE,
        ];
        args.extend_from_slice(extra);
        let created = self.lambda(&args);
        assert_eq!(created["PackageType"], "Zip", "{created}");
    }

    /// Waits until `name` is Active or Failed (with its last update done).
    fn settled(&self, name: &str) -> Value {
        poll_until(SETTLE_TIMEOUT, || {
            let c = self.lambda(&["get-function-configuration", "--function-name", name]);
            let done = (c["State"] == "Active" || c["State"] == "Failed")
                && c["LastUpdateStatus"] != "InProgress";
            done.then_some(c)
        })
    }

    /// `aws lambda invoke --log-type Tail`; (the CLI's output, the
    /// function's payload, the decoded log tail).
    fn invoke(&self, name: &str, payload: &Value) -> (Value, Value, String) {
        let out = self.work.path().join("out.json");
        let payload = payload.to_string();
        let meta = self.lambda(&[
            "invoke",
            "--function-name",
            name,
            "--log-type",
            "Tail",
            "--payload",
            &payload,
            &out.to_string_lossy(),
        ]);
        let body = std::fs::read(&out).expect("outfile");
        let body = serde_json::from_slice(&body).expect("json payload");
        let tail = meta["LogResult"]
            .as_str()
            .map(|b| {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .expect("LogResult is base64");
                String::from_utf8_lossy(&bytes).into_owned()
            })
            .unwrap_or_default();
        (meta, body, tail)
    }

    /// Live processes (not the server) whose working directory or command
    /// line is under the data dir: the function instances.
    fn instance_processes(&self) -> Vec<String> {
        let server = self.server.pid();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if Some(pid) == server || pid == std::process::id() {
                continue;
            }
            let dir = entry.path();
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            if stat.is_empty() || zombie {
                continue;
            }
            let cmdline = std::fs::read(dir.join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default();
            let cwd = std::fs::read_link(dir.join("cwd")).unwrap_or_default();
            if cwd.starts_with(&self.data) || cmdline.contains(self.data.to_str().expect("utf-8")) {
                found.push(format!("{pid}: {cmdline} (in {})", cwd.display()));
            }
        }
        found
    }

    /// Asserts that no instance process is left (within a short bound: a
    /// killed process takes a moment to go).
    #[track_caller]
    fn assert_no_instance_processes(&self, after: &str) {
        let left = try_poll_until(GONE_TIMEOUT, || {
            let left = self.instance_processes();
            left.is_empty().then_some(())
        });
        assert!(
            left.is_some(),
            "processes left after {after}: {:?}",
            self.instance_processes()
        );
    }
}

#[test]
fn a_provided_bootstrap_runs_as_a_local_process() {
    let mut f = Fixture::start();
    let zip = zip_of(&[("bootstrap", test_support::rust_function_bootstrap(), 0o755)]);
    f.create_zip(
        "native",
        "provided.al2023",
        "bootstrap",
        &zip,
        &["--timeout", "1"],
    );
    // Active with no base image in the registry.
    let active = f.settled("native");
    assert_eq!(active["State"], "Active", "{active}");
    assert!(
        f.server.stderr().contains("no isolation, no memory limit"),
        "the server says what the host executor is"
    );

    // Echo, cold: the REPORT line with an Init Duration, and the package
    // directory as LAMBDA_TASK_ROOT.
    let (meta, body, tail) = f.invoke("native", &json!({"action": "echo", "n": 1}));
    assert_eq!(meta["StatusCode"], 200, "{meta}");
    assert!(meta.get("FunctionError").is_none(), "{meta} {body}");
    assert_eq!(body["echo"]["n"], 1, "{body}");
    let root = body["env"]["LAMBDA_TASK_ROOT"].as_str().unwrap_or_default();
    assert!(Path::new(root).starts_with(&f.data), "{root}");
    assert!(Path::new(root).join("bootstrap").is_file(), "{root}");
    assert!(tail.contains("REPORT RequestId:"), "{tail}");
    assert!(tail.contains("Init Duration:"), "{tail}");
    assert!(tail.contains("Max Memory Used:"), "{tail}");
    let running = f.instance_processes();
    assert_eq!(running.len(), 1, "{running:?}");
    assert!(running[0].contains("/bootstrap"), "{running:?}");

    // A function error is data.
    let (meta, body, _) = f.invoke("native", &json!({"action": "error"}));
    assert_eq!(meta["FunctionError"], "Unhandled", "{meta}");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("failed on purpose"),
        "{body}"
    );

    // A timeout kills the instance: its process is gone.
    let (meta, body, tail) = f.invoke("native", &json!({"action": "sleep", "ms": 5000}));
    assert_eq!(meta["FunctionError"], "Unhandled", "{meta}");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("Task timed out after 1.00 seconds"),
        "{body}"
    );
    assert!(tail.contains("REPORT RequestId:"), "{tail}");
    f.assert_no_instance_processes("a timeout");

    // A crash is Runtime.ExitError.
    let (meta, body, _) = f.invoke("native", &json!({"action": "exit"}));
    assert_eq!(meta["FunctionError"], "Unhandled", "{meta}");
    assert_eq!(body["errorType"], "Runtime.ExitError", "{body}");

    // A new instance after the crash; deleting the function ends it.
    let (_, body, _) = f.invoke("native", &json!({"action": "echo", "n": 2}));
    assert_eq!(body["echo"]["n"], 2, "{body}");
    assert_eq!(f.instance_processes().len(), 1);
    f.lambda(&["delete-function", "--function-name", "native"]);
    f.assert_no_instance_processes("delete-function");

    // A package without an executable bootstrap says so.
    let bad = zip_of(&[("bootstrap", b"#!/bin/sh\n", 0o644)]);
    f.create_zip("nobootstrap", "provided.al2023", "bootstrap", &bad, &[]);
    assert_eq!(f.settled("nobootstrap")["State"], "Active");
    let out = aws(
        &f.server,
        REGION,
        &[
            "lambda",
            "invoke",
            "--function-name",
            "nobootstrap",
            &f.work.path().join("bad.json").to_string_lossy(),
        ],
    );
    let said = format!(
        "{}{}",
        out.stdout_str(),
        std::fs::read_to_string(f.work.path().join("bad.json")).unwrap_or_default()
    ) + &out.stderr_str();
    assert!(
        said.contains("the package has no executable bootstrap at its root"),
        "{said}"
    );

    // Stopping the server stops its instances.
    f.create_zip("again", "provided.al2023", "bootstrap", &zip, &[]);
    assert_eq!(f.settled("again")["State"], "Active");
    let (_, body, _) = f.invoke("again", &json!({"action": "echo", "n": 3}));
    assert_eq!(body["echo"]["n"], 3, "{body}");
    assert_eq!(f.instance_processes().len(), 1);
    f.server.stop();
    f.assert_no_instance_processes("the server stopped");
}

#[test]
fn a_python_zip_function_runs_on_the_local_python() {
    let probe = Command::new("python3")
        .args(["-c", "import awslambdaric"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "skipped: `python3 -c 'import awslambdaric'` fails here; `pip install awslambdaric` (scripts/install-deps.sh) to run this test"
        );
        return;
    }
    let mut f = Fixture::start();
    let app = b"import os\n\ndef handler(event, context):\n    print('task root', os.environ['LAMBDA_TASK_ROOT'], 'cwd', os.getcwd())\n    return {\"statusCode\": 200, \"body\": \"hi\"}\n";
    let zip = zip_of(&[("app.py", app, 0o644)]);
    f.create_zip("py", "python3.11", "app.handler", &zip, &[]);
    let active = f.settled("py");
    assert_eq!(active["State"], "Active", "{active}");

    let (meta, body, tail) = f.invoke("py", &json!({"hello": "world"}));
    assert_eq!(meta["StatusCode"], 200, "{meta}");
    assert!(meta.get("FunctionError").is_none(), "{meta} {body} {tail}");
    assert_eq!(body, json!({"statusCode": 200, "body": "hi"}));
    let data = f.data.to_str().expect("utf-8");
    assert!(tail.contains(&format!("task root {data}")), "{tail}");
    assert!(tail.contains(&format!("cwd {data}")), "{tail}");
    assert!(tail.contains("REPORT RequestId:"), "{tail}");
    let running = f.instance_processes();
    assert_eq!(running.len(), 1, "{running:?}");
    assert!(
        running[0].contains("awslambdaric app.handler"),
        "{running:?}"
    );

    // A handler that is not there is the runtime's own error.
    f.create_zip("pymissing", "python3.11", "nope.handler", &zip, &[]);
    assert_eq!(f.settled("pymissing")["State"], "Active");
    let (meta, body, _) = f.invoke("pymissing", &json!({}));
    assert_eq!(meta["FunctionError"], "Unhandled", "{meta}");
    assert!(
        body["errorType"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Runtime."),
        "{body}"
    );

    f.server.stop();
    f.assert_no_instance_processes("the server stopped");
}

#[test]
fn image_functions_fail_on_the_host_executor() {
    let f = Fixture::start();
    let image = OciImageBuilder::new()
        .layer([("bootstrap", b"#!/bin/sh\n".as_slice())])
        .entrypoint(&["/bootstrap"])
        .write(&f.work.path().join("img"), "1");
    let dest = format!("docker://{}/imgfn:1", f.server.registry_host());
    Skopeo::new()
        .copy_with(
            &image.oci_ref(),
            &dest,
            CopyOptions {
                preserve_digests: true,
                ..CopyOptions::default()
            },
        )
        .assert_success("skopeo copy the image");
    let uri = format!("ImageUri={}/imgfn:1", f.server.registry_host());
    let created = f.lambda(&[
        "create-function",
        "--function-name",
        "imgfn",
        "--package-type",
        "Image",
        "--code",
        &uri,
        "--role",
        ROLE,
    ]);
    assert_eq!(created["PackageType"], "Image", "{created}");
    let failed = f.settled("imgfn");
    assert_eq!(failed["State"], "Failed", "{failed}");
    let reason = failed["StateReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("host executor") && reason.contains("--executor oci or docker"),
        "{reason}"
    );
}
