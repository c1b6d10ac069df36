//! The aws CLI helpers, against the stand-in server's sliver of Lambda.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::json;
use tempfile::TempDir;
use test_support::{aws, aws_err, aws_json, TestServer};

const FAKE: &str = include_str!("fixtures/fake_stratus.py");

fn start_fake() -> (TempDir, TestServer) {
    let dir = TempDir::new().expect("tmp");
    let bin = dir.path().join("fake-stratus");
    fs::write(&bin, FAKE).expect("write fake");
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).expect("chmod");
    let server = TestServer::start(&bin);
    (dir, server)
}

#[test]
fn aws_json_parses_the_answer_and_signs_for_the_region() {
    let (_dir, mut server) = start_fake();
    let functions = aws_json(&server, "eu-west-3", &["lambda", "list-functions"]);
    assert_eq!(functions, json!({ "Functions": [] }));
    server.stop();
    let stderr = server.stderr();
    assert!(
        stderr.contains("Credential=test/") && stderr.contains("/eu-west-3/lambda/aws4_request"),
        "{stderr}"
    );
}

#[test]
fn aws_err_returns_the_error() {
    let (_dir, server) = start_fake();
    let stderr = aws_err(
        &server,
        "us-east-1",
        &["lambda", "get-function", "--function-name", "nope"],
    );
    assert!(stderr.contains("(ResourceNotFoundException)"), "{stderr}");
    assert!(stderr.contains("Function not found: nope"), "{stderr}");
    let out = aws(
        &server,
        "us-east-1",
        &["lambda", "get-function", "--function-name", "nope"],
    );
    assert!(!out.status.success());
}

#[test]
#[should_panic(expected = "expected to fail")]
fn aws_err_panics_on_success() {
    let (_dir, server) = start_fake();
    aws_err(&server, "us-east-1", &["lambda", "list-functions"]);
}
