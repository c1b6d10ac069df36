//! Test harness for Stratus.
//!
//! Integration tests drive the real `stratus` binary with real clients:
//!
//! - [`TestServer`] runs `stratus serve` on port 0 with a temporary data dir;
//! - [`aws`], [`aws_json`] and [`aws_err`] run the real AWS CLI against it;
//! - [`Docker`] and [`Skopeo`] wrap the docker and skopeo CLIs, each with its
//!   own credentials directory so logins never leak between tests;
//! - [`OciImageBuilder`] writes OCI image layouts from Rust, deterministically;
//! - [`poll_until`] replaces sleeps as a way to wait for something.
//!
//! Everything here panics on failure with a message that says what to look
//! at (the server's stderr, the client's stderr): these are test helpers.
//!
//! Suites that need the Docker engine are gated by `STRATUS_TEST_DOCKER=1`
//! (see [`docker_enabled`]); `.ci/run` always sets it. The AWS CLI and
//! skopeo are required tools: `scripts/install-deps.sh` installs them.

mod aws;
mod cmd;
mod docker;
mod fixtures;
mod oci_layout;
mod poll;
mod server;
mod skopeo;

pub use aws::{aws, aws_at, aws_err, aws_json, aws_with_credentials};
pub use cmd::{run_command, OutputExt, DEFAULT_COMMAND_TIMEOUT};
pub use docker::{docker_enabled, Docker, DOCKER_ENV};
pub use fixtures::rust_function_bootstrap;
pub use oci_layout::{
    digest_of_file, random_bytes, sha256_digest, sha256_hex, BuiltImage, OciImageBuilder,
};
pub use poll::{poll_until, try_poll_until};
pub use server::TestServer;
pub use skopeo::{skopeo_copy, CopyOptions, Skopeo};

/// Returns early from a test (with a note on stderr) unless the Docker
/// suites are enabled with `STRATUS_TEST_DOCKER=1`.
#[macro_export]
macro_rules! require_docker {
    () => {
        if !$crate::docker_enabled() {
            eprintln!(
                "skipping: needs the Docker engine; set {}=1 (as .ci/run does)",
                $crate::DOCKER_ENV
            );
            return;
        }
    };
}
