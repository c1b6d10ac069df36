//! Zip functions end to end, against the real `stratus` binary and the
//! aws CLI: `create-function --runtime provided.al2023 --handler bootstrap
//! --zip-file fileb://fn.zip` with the Rust test function as the package's
//! `bootstrap`, on a base image pushed to the built-in registry as
//! `lambda/provided:al2023` (a stand-in built by the test: the package's
//! static `bootstrap` needs nothing from it).
//!
//! The python3.11 runtime with `app.handler` is covered, with the python
//! base image stand-in, in `lambda_python_tutorial.rs` (it needs Docker to
//! build that image).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::Digest as _;
use tempfile::TempDir;
use test_support::{
    aws_err, aws_json, poll_until, CopyOptions, OciImageBuilder, OutputExt, Skopeo, TestServer,
};

const REGION: &str = "us-east-1";
const ROLE: &str = "arn:aws:iam::000000000000:role/lambda-role";
const ACTIVATION_TIMEOUT: Duration = Duration::from_secs(60);

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
    work: TempDir,
    _data: TempDir,
}

impl Fixture {
    fn start() -> Fixture {
        test_support::rust_function_bootstrap();
        let data = TempDir::with_prefix("stratus-lambda-zip-").expect("data dir");
        let server = TestServer::start_with(
            Path::new(env!("CARGO_BIN_EXE_stratus")),
            data.path(),
            &["--auto-create-repositories"],
        );
        Fixture {
            server,
            work: TempDir::with_prefix("stratus-lambda-zip-work-").expect("work dir"),
            _data: data,
        }
    }

    #[track_caller]
    fn lambda(&self, args: &[&str]) -> Value {
        let mut all = vec!["lambda"];
        all.extend_from_slice(args);
        aws_json(&self.server, REGION, &all)
    }

    #[track_caller]
    fn lambda_err(&self, args: &[&str]) -> String {
        let mut all = vec!["lambda"];
        all.extend_from_slice(args);
        aws_err(&self.server, REGION, &all)
    }

    /// Writes `bytes` to a file in the work dir; returns `fileb://PATH`.
    fn fileb(&self, name: &str, bytes: &[u8]) -> String {
        let path: PathBuf = self.work.path().join(name);
        std::fs::write(&path, bytes).expect("write zip");
        format!("fileb://{}", path.display())
    }

    /// Pushes a minimal base image as `lambda/provided:al2023`.
    fn push_provided_base(&self) {
        let image = OciImageBuilder::new()
            .layer([("etc/os-release", b"NAME=stand-in\n".as_slice())])
            .entrypoint(&["/lambda-entrypoint.sh"])
            .write(&self.work.path().join("base"), "al2023");
        let dest = format!(
            "docker://{}/lambda/provided:al2023",
            self.server.registry_host()
        );
        Skopeo::new()
            .copy_with(
                &image.oci_ref(),
                &dest,
                CopyOptions {
                    preserve_digests: true,
                    ..CopyOptions::default()
                },
            )
            .assert_success("skopeo copy the base image");
    }

    fn configuration(&self, name: &str) -> Value {
        self.lambda(&["get-function-configuration", "--function-name", name])
    }

    /// Waits until `name` is Active or Failed (with its last update done).
    fn settled(&self, name: &str) -> Value {
        poll_until(ACTIVATION_TIMEOUT, || {
            let c = self.configuration(name);
            let done = (c["State"] == "Active" || c["State"] == "Failed")
                && c["LastUpdateStatus"] != "InProgress";
            done.then_some(c)
        })
    }

    /// `aws lambda invoke`; (the CLI's output, the function's payload).
    fn invoke(&self, name: &str, payload: &Value) -> (Value, Value) {
        let out = self.work.path().join("out.json");
        let payload = payload.to_string();
        let meta = self.lambda(&[
            "invoke",
            "--function-name",
            name,
            "--payload",
            &payload,
            &out.to_string_lossy(),
        ]);
        let body = std::fs::read(&out).expect("outfile");
        (meta, serde_json::from_slice(&body).expect("json payload"))
    }
}

fn b64_sha256(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

#[test]
fn a_provided_runtime_zip_function_runs_its_bootstrap() {
    let mut f = Fixture::start();
    let zip = zip_of(&[("bootstrap", test_support::rust_function_bootstrap(), 0o755)]);
    let zip_arg = f.fileb("fn.zip", &zip);

    // The base image is not there yet: created, then Failed with a reason
    // that says what to push.
    let created = f.lambda(&[
        "create-function",
        "--function-name",
        "zipped",
        "--runtime",
        "provided.al2023",
        "--handler",
        "bootstrap",
        "--zip-file",
        &zip_arg,
        "--role",
        ROLE,
    ]);
    assert_eq!(created["PackageType"], "Zip", "{created}");
    assert_eq!(created["Runtime"], "provided.al2023");
    assert_eq!(created["Handler"], "bootstrap");
    assert_eq!(created["CodeSha256"], b64_sha256(&zip));
    assert_eq!(created["CodeSize"], zip.len() as u64);
    let failed = f.settled("zipped");
    assert_eq!(failed["State"], "Failed", "{failed}");
    let reason = failed["StateReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("docker push") && reason.contains("lambda/provided:al2023"),
        "{reason}"
    );

    // Pushed, and the code updated: Active, and it runs.
    f.push_provided_base();
    f.lambda(&[
        "update-function-code",
        "--function-name",
        "zipped",
        "--zip-file",
        &zip_arg,
    ]);
    let active = f.settled("zipped");
    assert_eq!(active["State"], "Active", "{active}");
    assert_eq!(active["LastUpdateStatus"], "Successful", "{active}");
    let (meta, body) = f.invoke("zipped", &json!({"action": "echo", "n": 7}));
    assert_eq!(meta["StatusCode"], 200, "{meta}");
    assert!(meta.get("FunctionError").is_none(), "{meta} {body}");
    assert_eq!(body["echo"]["n"], 7, "{body}");

    // Code.Location downloads the very package; a tampered URL does not.
    let got = f.lambda(&["get-function", "--function-name", "zipped"]);
    assert_eq!(got["Code"]["RepositoryType"], "S3", "{got}");
    let location = got["Code"]["Location"].as_str().expect("Location");
    let http = reqwest::blocking::Client::new();
    let downloaded = http.get(location).send().expect("download");
    assert_eq!(downloaded.status().as_u16(), 200);
    assert_eq!(downloaded.bytes().expect("body").as_ref(), zip.as_slice());
    let tampered = location.replace("Signature=", "Signature=0");
    let refused = http.get(&tampered).send().expect("download");
    assert_eq!(refused.status().as_u16(), 403);

    // A new package reaches new invocations; the old hash is gone.
    let zip2 = zip_of(&[
        ("bootstrap", test_support::rust_function_bootstrap(), 0o755),
        ("extra.txt", b"v2", 0o644),
    ]);
    let zip2_arg = f.fileb("fn2.zip", &zip2);
    let updated = f.lambda(&[
        "update-function-code",
        "--function-name",
        "zipped",
        "--zip-file",
        &zip2_arg,
    ]);
    assert_eq!(updated["CodeSha256"], b64_sha256(&zip2));
    assert_eq!(f.settled("zipped")["State"], "Active");
    let (_, body) = f.invoke("zipped", &json!({"action": "echo", "n": 8}));
    assert_eq!(body["echo"]["n"], 8, "{body}");

    // Kept across a restart.
    f.server.restart();
    let c = f.configuration("zipped");
    assert_eq!(c["CodeSha256"], b64_sha256(&zip2));
    let (_, body) = f.invoke("zipped", &json!({"action": "echo", "n": 9}));
    assert_eq!(body["echo"]["n"], 9, "{body}");
}

#[test]
fn bad_zip_functions_are_refused() {
    let f = Fixture::start();
    let good = f.fileb("good.zip", &zip_of(&[("bootstrap", b"#!/bin/sh\n", 0o755)]));
    let create = |extra: &[&str]| {
        let mut args = vec!["create-function", "--function-name", "bad", "--role", ROLE];
        args.extend_from_slice(extra);
        f.lambda_err(&args)
    };
    let slip = f.fileb("slip.zip", &zip_of(&[("../../etc/evil", b"x", 0o644)]));
    let err = create(&[
        "--runtime",
        "provided.al2023",
        "--handler",
        "x",
        "--zip-file",
        &slip,
    ]);
    assert!(err.contains("InvalidParameterValueException"), "{err}");
    assert!(err.contains("outside the package"), "{err}");

    // The CLI itself refuses a file that is not a zip: raw HTTP.
    let garbage = base64::engine::general_purpose::STANDARD.encode(b"this is not a zip file");
    let r = reqwest::blocking::Client::new()
        .post(f.server.url("/2015-03-31/functions"))
        .json(
            &json!({"FunctionName": "bad", "Role": ROLE, "Runtime": "provided.al2023",
                      "Handler": "x", "Code": {"ZipFile": garbage}}),
        )
        .send()
        .expect("create");
    assert_eq!(r.status().as_u16(), 400);
    let err = r.text().expect("body");
    assert!(err.contains("Could not unzip uploaded file"), "{err}");

    let err = create(&["--handler", "x", "--zip-file", &good]);
    assert!(err.contains("Runtime and Handler are mandatory"), "{err}");
    let err = create(&[
        "--runtime",
        "cobol85",
        "--handler",
        "x",
        "--zip-file",
        &good,
    ]);
    assert!(err.contains("InvalidParameterValueException"), "{err}");
    assert!(err.contains("python3.11"), "lists the runtimes: {err}");
    let err = create(&[
        "--runtime",
        "provided.al2023",
        "--handler",
        "x",
        "--code",
        "{}",
    ]);
    assert!(
        err.contains("Please provide a source for function code"),
        "{err}"
    );

    // Beyond Lambda's request limit for CreateFunction (a 50 MB zip,
    // base64, in JSON): refused before it is read whole.
    let huge = format!(
        r#"{{"FunctionName":"bad","Role":"{ROLE}","Runtime":"provided.al2023","Handler":"x","Code":{{"ZipFile":"{}"}}}}"#,
        "A".repeat(71 * 1024 * 1024)
    );
    let r = reqwest::blocking::Client::new()
        .post(f.server.url("/2015-03-31/functions"))
        .body(huge)
        .send()
        .expect("create");
    assert_eq!(r.status().as_u16(), 413);
    let err = r.text().expect("body");
    assert!(
        err.contains(
            "Request must be smaller than 70167211 bytes for the CreateFunction operation"
        ),
        "{err}"
    );

    // Nothing was created by any of these.
    let listed = f.lambda(&["list-functions"]);
    assert_eq!(listed["Functions"], json!([]), "{listed}");

    // An image function takes no zip.
    let err = f.lambda_err(&[
        "create-function",
        "--function-name",
        "img",
        "--package-type",
        "Image",
        "--code",
        &format!("ImageUri={}/x:1", f.server.registry_host()),
        "--runtime",
        "python3.11",
        "--role",
        ROLE,
    ]);
    assert!(err.contains("InvalidParameterValueException"), "{err}");
}

#[test]
fn a_function_picks_its_executor_with_a_tag() {
    let f = Fixture::start();
    let zip = zip_of(&[("bootstrap", test_support::rust_function_bootstrap(), 0o755)]);
    let zip_arg = f.fileb("fn.zip", &zip);
    let create = |name: &str, tag: &str| {
        f.lambda(&[
            "create-function",
            "--function-name",
            name,
            "--runtime",
            "provided.al2023",
            "--handler",
            "bootstrap",
            "--zip-file",
            &zip_arg,
            "--role",
            ROLE,
            "--tags",
            tag,
        ])
    };
    // The server's default is oci, and no base image was pushed: only the
    // host executor can make this function Active.
    create("local", "stratus:executor=host");
    let c = f.settled("local");
    assert_eq!(c["State"], "Active", "{c}");
    let (_, body) = f.invoke("local", &json!({"action": "echo", "n": 1}));
    assert_eq!(body["echo"]["n"], 1, "{body}");
    let root = body["env"]["LAMBDA_TASK_ROOT"].as_str().unwrap_or_default();
    assert_ne!(root, "/var/task", "ran as a local process: {body}");
    assert!(root.starts_with('/'), "{body}");

    // The server said which executors a tag can pick here.
    let said = poll_until(Duration::from_secs(30), || {
        let log = f.server.stderr();
        (log.contains("executor host is usable") && log.contains("executor docker is"))
            .then_some(log)
    });
    assert!(
        said.contains("function instances run on the oci executor"),
        "{said}"
    );

    create("nowhere", "stratus:executor=vm");
    let c = f.settled("nowhere");
    assert_eq!(c["State"], "Failed", "{c}");
    let reason = c["StateReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("\"vm\"") && reason.contains("docker, host, oci"),
        "{reason}"
    );
}
