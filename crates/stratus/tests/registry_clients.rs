//! The registry through the clients people use, against the real binary:
//! the aws CLI for ECR (`create-repository`, `get-login-password`), the
//! docker CLI (`login`, `push`, `pull`; needs `STRATUS_TEST_DOCKER=1`) and
//! skopeo (OCI layouts in and out).

use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tempfile::TempDir;
use test_support::{
    aws, aws_json, aws_with_credentials, digest_of_file, require_docker, run_command, CopyOptions,
    Docker, OciImageBuilder, OutputExt, Skopeo, TestServer, DEFAULT_COMMAND_TIMEOUT,
};

const REGION: &str = "us-east-1";
const ACCESS_KEY_ID: &str = "AKIDSTRATUSTEST1";
const SECRET_ACCESS_KEY: &str = "stratus-test-secret-key";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_stratus"))
}

/// A server on a data dir the test owns, with `args`. Bind the pair as
/// `let (_data, server)`: the server must drop before its data dir.
fn start_server(args: &[&str]) -> (TempDir, TestServer) {
    let data = TempDir::with_prefix("stratus-registry-clients-").expect("create data dir");
    let server = TestServer::start_with(bin(), data.path(), args);
    (data, server)
}

/// Something no other test run builds: the process id and the time.
fn unique(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{what}-{}-{nanos}", std::process::id())
}

/// Builds a one-file image from scratch under a unique local tag; returns
/// (tag, image id).
fn build_image(docker: &Docker, what: &str) -> (String, String) {
    let tag = format!("stratus-test/{}:v1", unique(what));
    let content = format!("{}\n", unique(what));
    let id = docker.build_scratch_image(&tag, &[("/hello.txt", content.as_bytes())]);
    (tag, id)
}

/// `aws ecr get-login-password | docker login --username AWS
/// --password-stdin HOST`, with the password already fetched.
#[track_caller]
fn docker_login_stdin(docker: &Docker, host: &str, password: &str) -> Output {
    let dir = TempDir::new().expect("tmp");
    let file = dir.path().join("password");
    fs::write(&file, password).expect("write password");
    let template = docker.command();
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
        host,
    ])
    .arg(&file);
    run_command(&mut cmd, DEFAULT_COMMAND_TIMEOUT, "install docker")
}

#[track_caller]
fn login_password(out: Output) -> String {
    let out = out.assert_success("aws ecr get-login-password");
    let password = out.stdout_str().trim().to_string();
    assert!(!password.is_empty(), "empty login password");
    password
}

/// `RepoDigests` of a local image.
fn repo_digests(docker: &Docker, image: &str) -> Vec<String> {
    let out = docker
        .ok(&[
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            image,
        ])
        .stdout_str();
    serde_json::from_str(out.trim()).expect("RepoDigests JSON")
}

/// Removes every local name of the pushed image, pulls it back and checks
/// it is the image that was built.
#[track_caller]
fn rmi_and_pull(docker: &Docker, local: &str, remote: &str, id: &str, digest: &str) {
    docker.rmi(remote).assert_success("docker rmi remote tag");
    docker.rmi(local).assert_success("docker rmi local tag");
    assert_eq!(docker.image_id(id), None, "image {id} still present");
    docker.pull(remote).assert_success("docker pull");
    assert_eq!(docker.image_id(remote).as_deref(), Some(id));
    let repository = remote.rsplit_once(':').map(|(r, _)| r).unwrap_or(remote);
    let expected = format!("{repository}@{digest}");
    let digests = repo_digests(docker, remote);
    assert!(digests.contains(&expected), "{digests:?} lacks {expected}");
}

fn http_get(url: &str, auth: Option<(&str, &str)>) -> reqwest::blocking::Response {
    let mut req = reqwest::blocking::Client::new().get(url);
    if let Some((user, password)) = auth {
        req = req.basic_auth(user, Some(password));
    }
    req.send().expect("GET")
}

#[test]
fn docker_push_and_pull_through_an_ecr_repository() {
    require_docker!();
    let (_data, server) = start_server(&[]);
    let created = aws_json(
        &server,
        REGION,
        &["ecr", "create-repository", "--repository-name", "my_lambda"],
    );
    let uri = created["repository"]["repositoryUri"]
        .as_str()
        .expect("repositoryUri")
        .to_string();
    assert_eq!(uri, format!("localhost:{}/my_lambda", server.port()));

    let docker = Docker::new();
    let password = login_password(aws(&server, REGION, &["ecr", "get-login-password"]));
    docker_login_stdin(&docker, &server.registry_host(), &password)
        .assert_success("docker login --password-stdin");

    let (local, id) = build_image(&docker, "push-pull");
    let remote = format!("{uri}:latest");
    docker.tag(&local, &remote).assert_success("docker tag");
    let push = docker.push(&remote).assert_success("docker push");
    let digest = Docker::pushed_digest(&push).expect("push prints the digest");

    let images = aws_json(
        &server,
        REGION,
        &["ecr", "describe-images", "--repository-name", "my_lambda"],
    );
    let details = &images["imageDetails"][0];
    assert_eq!(details["imageDigest"], digest.as_str(), "{images}");
    assert_eq!(details["imageTags"], serde_json::json!(["latest"]));

    rmi_and_pull(&docker, &local, &remote, &id, &digest);
}

#[test]
fn docker_push_to_a_missing_repository_is_name_unknown_unless_auto_created() {
    require_docker!();
    let docker = Docker::new();
    let (local, id) = build_image(&docker, "missing-repo");

    let (_data, server) = start_server(&[]);
    let remote = format!("{}/not_created:v1", server.registry_host());
    docker.tag(&local, &remote).assert_success("docker tag");
    let out = docker.push(&remote).assert_failure("docker push");
    let said = format!("{}{}", out.stdout_str(), out.stderr_str());
    assert!(said.to_lowercase().contains("name unknown"), "{said}");
    assert!(said.contains("not_created"), "{said}");
    let repos = aws_json(&server, REGION, &["ecr", "describe-repositories"]);
    assert_eq!(repos["repositories"], serde_json::json!([]), "{repos}");
    docker.rmi(&remote).assert_success("docker rmi");

    let (_data2, auto) = start_server(&["--auto-create-repositories"]);
    let remote = format!("{}/not_created:v1", auto.registry_host());
    docker.tag(&local, &remote).assert_success("docker tag");
    let push = docker.push(&remote).assert_success("docker push");
    let digest = Docker::pushed_digest(&push).expect("push prints the digest");
    let repos = aws_json(&auto, REGION, &["ecr", "describe-repositories"]);
    assert_eq!(repos["repositories"][0]["repositoryName"], "not_created");
    assert_eq!(
        repos["repositories"][0]["repositoryUri"],
        format!("{}/not_created", auto.registry_host())
    );
    rmi_and_pull(&docker, &local, &remote, &id, &digest);
}

#[test]
fn with_credentials_the_registry_wants_the_ecr_login() {
    require_docker!();
    let creds = format!("{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}");
    let (_data, server) = start_server(&["--credentials", &creds]);
    let host = server.registry_host();
    let aws_ok = |args: &[&str]| {
        aws_with_credentials(&server, REGION, ACCESS_KEY_ID, SECRET_ACCESS_KEY, args)
    };

    // Anonymous requests get a Basic challenge.
    let resp = http_get(&server.url("/v2/"), None);
    assert_eq!(resp.status(), 401);
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .expect("WWW-Authenticate")
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(challenge.starts_with("Basic "), "{challenge}");
    assert!(challenge.contains("realm="), "{challenge}");

    // The aws CLI with other credentials is refused; with the server's works.
    let out = aws(
        &server,
        REGION,
        &["ecr", "create-repository", "--repository-name", "my_lambda"],
    )
    .assert_failure("aws ecr create-repository with unknown credentials");
    assert!(
        out.stderr_str().contains("UnrecognizedClientException"),
        "{}",
        out.stderr_str()
    );
    let out = aws_ok(&["ecr", "create-repository", "--repository-name", "my_lambda"])
        .assert_success("aws ecr create-repository");
    let created: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let uri = created["repository"]["repositoryUri"]
        .as_str()
        .expect("repositoryUri")
        .to_string();
    let password = login_password(aws_ok(&["ecr", "get-login-password"]));
    assert_eq!(
        http_get(&server.url("/v2/"), Some(("AWS", &password))).status(),
        200
    );
    assert_eq!(
        http_get(&server.url("/v2/"), Some(("AWS", "not-the-token"))).status(),
        401
    );

    // docker login: a wrong password fails, the token works.
    let docker = Docker::new();
    let out = docker_login_stdin(&docker, &host, "not-the-token")
        .assert_failure("docker login with a wrong password");
    assert!(
        out.stderr_str().to_lowercase().contains("unauthorized")
            || out.stderr_str().contains("401"),
        "{}",
        out.stderr_str()
    );
    let (local, id) = build_image(&docker, "auth");
    let remote = format!("{uri}:v1");
    docker.tag(&local, &remote).assert_success("docker tag");
    docker
        .push(&remote)
        .assert_failure("docker push before a successful login");
    docker_login_stdin(&docker, &host, &password).assert_success("docker login");
    let push = docker.push(&remote).assert_success("docker push");
    let digest = Docker::pushed_digest(&push).expect("push prints the digest");

    // Someone without the login cannot pull.
    let stranger = Docker::new();
    stranger
        .pull(&remote)
        .assert_failure("docker pull without a login");

    rmi_and_pull(&docker, &local, &remote, &id, &digest);
}

#[test]
fn docker_pull_still_works_after_gc_with_no_grace() {
    require_docker!();
    let (_data, server) = start_server(&["--auto-create-repositories"]);
    let docker = Docker::new();
    let (local, id) = build_image(&docker, "gc");
    let remote = format!("{}/gc/app:v1", server.registry_host());
    docker.tag(&local, &remote).assert_success("docker tag");
    let push = docker.push(&remote).assert_success("docker push");
    let digest = Docker::pushed_digest(&push).expect("push prints the digest");

    let resp = reqwest::blocking::Client::new()
        .post(server.url("/_stratus/gc?grace_seconds=0"))
        .send()
        .expect("POST gc");
    assert_eq!(resp.status(), 200);
    let report: Value = resp.json().expect("report");
    assert_eq!(report["blobs_deleted"], 0, "{report}");
    assert_eq!(report["links_dropped"], 0, "{report}");

    rmi_and_pull(&docker, &local, &remote, &id, &digest);
}

#[test]
fn skopeo_copies_an_oci_layout_to_the_registry_and_back() {
    let (_data, server) = start_server(&[]);
    aws_json(
        &server,
        REGION,
        &[
            "ecr",
            "create-repository",
            "--repository-name",
            "team/skopeo",
        ],
    );
    let layouts = TempDir::new().expect("tmp");
    let image = OciImageBuilder::new()
        .layer([("bootstrap", b"#!/bin/sh\necho hi\n".to_vec())])
        .random_layer(42, 200_000)
        .cmd(&["handler.run"])
        .env("STAGE", "test")
        .write(&layouts.path().join("src"), "v1");
    let remote = format!("docker://{}/team/skopeo:v1", server.registry_host());
    let skopeo = Skopeo::new();
    let preserve = CopyOptions {
        preserve_digests: true,
        ..CopyOptions::default()
    };
    skopeo
        .copy_with(&image.oci_ref(), &remote, preserve)
        .assert_success("skopeo copy to the registry");

    let inspected = skopeo.inspect(&remote, None);
    assert_eq!(inspected["Digest"], image.manifest_digest, "{inspected}");
    assert_eq!(
        inspected["RepoTags"],
        serde_json::json!(["v1"]),
        "{inspected}"
    );
    assert_eq!(
        inspected["Layers"],
        serde_json::json!(image.layer_digests),
        "{inspected}"
    );
    assert_eq!(skopeo.raw_manifest(&remote, None), image.manifest_bytes);

    let back = layouts.path().join("back");
    skopeo
        .copy_with(&remote, &format!("oci:{}:v1", back.display()), preserve)
        .assert_success("skopeo copy from the registry");
    let index: Value =
        serde_json::from_slice(&fs::read(back.join("index.json")).expect("index.json"))
            .expect("index is JSON");
    assert_eq!(index["manifests"][0]["digest"], image.manifest_digest);
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
    for digest in image
        .layer_digests
        .iter()
        .chain([&image.config_digest, &image.manifest_digest])
    {
        let path = back
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        assert_eq!(digest_of_file(&path), *digest);
    }
}

#[test]
fn sts_get_caller_identity_names_the_account() {
    let (_dir, server) = start_server(&[]);
    let me = aws_json(&server, "ap-northeast-2", &["sts", "get-caller-identity"]);
    assert_eq!(me["Account"], "000000000000", "{me}");
    assert_eq!(me["Arn"], "arn:aws:iam::000000000000:root", "{me}");
    assert_eq!(me["UserId"], "test", "{me}");
    // An access key id of 12 digits selects that account.
    let other = aws_with_credentials(
        &server,
        "eu-west-1",
        "123456789012",
        "secret",
        &["sts", "get-caller-identity", "--output", "json"],
    );
    let other: Value = serde_json::from_slice(&other.stdout).expect("sts answer is JSON");
    assert_eq!(other["Account"], "123456789012", "{other}");
}
