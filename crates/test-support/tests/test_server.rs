//! TestServer's own behaviour, against a stand-in for the stratus binary
//! (`fixtures/fake_stratus.py`) that keeps the binary's contract.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use tempfile::TempDir;
use test_support::TestServer;

const FAKE: &str = include_str!("fixtures/fake_stratus.py");

/// The stand-in, written to a temp dir with its exec bit set.
fn fake_bin() -> (TempDir, PathBuf) {
    let dir = TempDir::new().expect("tmp");
    let path = dir.path().join("fake-stratus");
    fs::write(&path, FAKE).expect("write fake");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    (dir, path)
}

fn health_body(server: &TestServer) -> String {
    let resp = reqwest::blocking::get(server.url("/_stratus/health")).expect("GET health");
    assert_eq!(resp.status(), 200);
    resp.text().expect("body")
}

fn panic_message(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("expected a panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn starts_answers_and_stops_cleanly() {
    let (_bin_dir, bin) = fake_bin();
    let mut server = TestServer::start(&bin);
    let port = server.port();
    assert_ne!(port, 0);
    assert_eq!(server.endpoint(), format!("http://127.0.0.1:{port}"));
    assert_eq!(server.registry_host(), format!("localhost:{port}"));
    assert_eq!(server.addr().to_string(), format!("127.0.0.1:{port}"));
    assert!(server.data_dir().is_dir());
    assert_eq!(health_body(&server), "1");
    assert!(server.is_running());
    assert!(server.pid().is_some());

    server.stop();
    assert!(!server.is_running());
    let stderr = server.stderr();
    assert!(stderr.contains("SIGTERM: shutting down"), "{stderr}");
    assert!(stderr.contains("bye"), "{stderr}");
}

#[test]
fn restarts_on_the_same_data_dir() {
    let (_bin_dir, bin) = fake_bin();
    let mut server = TestServer::start(&bin);
    let data_dir = server.data_dir().to_path_buf();
    server.restart(); // stops the running server first
    assert_eq!(server.data_dir(), data_dir);
    assert_eq!(health_body(&server), "2");

    server.kill9();
    assert!(!server.is_running());
    server.restart();
    assert_eq!(health_body(&server), "3");
    assert!(server.stderr().contains("=== test-support: start #3 ==="));
}

#[test]
fn start_with_uses_the_given_data_dir_and_args() {
    let (_bin_dir, bin) = fake_bin();
    let data = TempDir::new().expect("tmp");
    fs::write(data.path().join("starts"), "41").expect("seed");
    let mut server = TestServer::start_with(&bin, data.path(), &["--exit-code", "0"]);
    assert_eq!(server.data_dir(), data.path());
    assert_eq!(health_body(&server), "42");
    server.stop();
}

#[test]
fn harness_variables_do_not_reach_the_server() {
    let (_bin_dir, bin) = fake_bin();
    let mut server = TestServer::start(&bin);
    server.stop();
    assert!(server.stderr().contains("env STRATUS_TEST_DOCKER=unset"));
}

#[test]
fn an_early_exit_fails_with_the_stderr_tail() {
    let (_bin_dir, bin) = fake_bin();
    let data = TempDir::new().expect("tmp");
    let msg = panic_message(|| {
        TestServer::start_with(&bin, data.path(), &["--fail-early"]);
    });
    assert!(msg.contains("stratus did not start"), "{msg}");
    assert!(msg.contains("exit status: 3"), "{msg}");
    assert!(msg.contains("boom: cannot open the data dir"), "{msg}");
}

#[test]
fn stdout_must_start_with_the_ready_line() {
    let (_bin_dir, bin) = fake_bin();
    let data = TempDir::new().expect("tmp");
    let msg = panic_message(|| {
        TestServer::start_with(&bin, data.path(), &["--bad-line"]);
    });
    assert!(
        msg.contains("unexpected first stdout line \"hello, world\""),
        "{msg}"
    );
}

#[test]
fn an_unhealthy_server_fails_to_start() {
    let (_bin_dir, bin) = fake_bin();
    let data = TempDir::new().expect("tmp");
    let msg = panic_message(|| {
        TestServer::start_with(&bin, data.path(), &["--unhealthy"]);
    });
    assert!(
        msg.contains("GET /_stratus/health failed: status 503"),
        "{msg}"
    );
}

#[test]
fn a_failed_shutdown_is_reported() {
    let (_bin_dir, bin) = fake_bin();
    let data = TempDir::new().expect("tmp");
    let mut server = TestServer::start_with(&bin, data.path(), &["--exit-code", "7"]);
    let msg = panic_message(|| server.stop());
    assert!(
        msg.contains("exited with exit status: 7 after SIGTERM"),
        "{msg}"
    );
    assert!(msg.contains("SIGTERM: shutting down"), "{msg}");
}

#[test]
fn drop_kills_the_server() {
    let (_bin_dir, bin) = fake_bin();
    let server = TestServer::start(&bin);
    let pid = server.pid().expect("pid");
    drop(server);
    // The child was reaped, so its /proc entry is gone.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}
