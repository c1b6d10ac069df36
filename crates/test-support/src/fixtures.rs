//! Test functions the suites share.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::cmd::{run_command, OutputExt};

/// The `bootstrap` of the Rust test function (`tests/fixtures/rust-function`,
/// the official `lambda_runtime` crate), statically linked so that it runs
/// in an image built FROM scratch. Built once per test process (cargo's own
/// lock on the target dir serialises builds across processes).
pub fn rust_function_bootstrap() -> &'static [u8] {
    static BOOTSTRAP: OnceLock<Vec<u8>> = OnceLock::new();
    BOOTSTRAP.get_or_init(build_rust_function)
}

fn build_rust_function() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target_dir = root.join("target").join("fixtures");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", "x86_64-unknown-linux-gnu"])
        .arg("--manifest-path")
        .arg(root.join("tests/fixtures/rust-function/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        // Static, so that it runs in an image built FROM scratch.
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_BUILD_RUSTFLAGS");
    run_command(
        &mut cmd,
        Duration::from_secs(900),
        "install the Rust toolchain (rustup, cargo)",
    )
    .assert_success("cargo build the test function");
    let path = target_dir.join("x86_64-unknown-linux-gnu/release/bootstrap");
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
