//! The real AWS CLI, pointed at a [`TestServer`].

use std::fs;
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

use crate::cmd::{run_command, OutputExt, DEFAULT_COMMAND_TIMEOUT};
use crate::TestServer;

const INSTALL_HINT: &str = "install the AWS CLI: `pip install awscli` (scripts/install-deps.sh)";

/// Variables that would let the developer's own AWS setup leak into a test.
const SCRUBBED_ENV: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CA_BUNDLE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_ENDPOINT_URL_LAMBDA",
    "AWS_ENDPOINT_URL_ECR",
    "AWS_ENDPOINT_URL_API_GATEWAY",
    "AWS_ENDPOINT_URL_APIGATEWAYV2",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
];

/// Runs `aws --output json ARGS…` against `server` in `region`.
#[track_caller]
pub fn aws(server: &TestServer, region: &str, args: &[&str]) -> Output {
    aws_at(&server.endpoint(), region, args)
}

/// Runs `aws --output json ARGS…` against `endpoint` in `region`.
///
/// The CLI sees only what the test gives it: `AWS_ENDPOINT_URL`, access key
/// `test`/`test`, `AWS_DEFAULT_REGION`, empty config and credentials files,
/// no pager, no instance metadata lookups, and a single attempt per call
/// (`AWS_MAX_ATTEMPTS=1`, so that a server error is not hidden by retries).
#[track_caller]
pub fn aws_at(endpoint: &str, region: &str, args: &[&str]) -> Output {
    run_aws(endpoint, region, ("test", "test"), args)
}

/// Like [`aws`], signing with the access key `access_key_id` and
/// `secret_access_key` instead of `test`/`test`: for a server started with
/// `--credentials ID:SECRET`, which checks signatures.
#[track_caller]
pub fn aws_with_credentials(
    server: &TestServer,
    region: &str,
    access_key_id: &str,
    secret_access_key: &str,
    args: &[&str],
) -> Output {
    run_aws(
        &server.endpoint(),
        region,
        (access_key_id, secret_access_key),
        args,
    )
}

#[track_caller]
fn run_aws(endpoint: &str, region: &str, (key_id, secret): (&str, &str), args: &[&str]) -> Output {
    let home = TempDir::with_prefix("stratus-aws-").expect("create temp dir");
    let config = home.path().join("config");
    let credentials = home.path().join("credentials");
    fs::write(&config, "").expect("write aws config");
    fs::write(&credentials, "").expect("write aws credentials");

    let mut cmd = Command::new("aws");
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    cmd.args(["--output", "json"])
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_DEFAULT_REGION", region)
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .env("AWS_PAGER", "")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_RETRY_MODE", "standard")
        .current_dir(home.path());
    run_command(&mut cmd, DEFAULT_COMMAND_TIMEOUT, INSTALL_HINT)
}

/// Runs [`aws`], asserts success (showing stderr otherwise) and parses
/// stdout as JSON; empty stdout (commands that print nothing) is `Null`.
#[track_caller]
pub fn aws_json(server: &TestServer, region: &str, args: &[&str]) -> Value {
    let what = format!("aws {}", args.join(" "));
    let out = aws(server, region, args).assert_success(&what);
    parse_json_stdout(&what, &out)
}

/// Runs [`aws`], asserts failure (showing stdout otherwise) and returns
/// stderr, where the CLI names the error code and message.
#[track_caller]
pub fn aws_err(server: &TestServer, region: &str, args: &[&str]) -> String {
    let what = format!("aws {}", args.join(" "));
    aws(server, region, args).assert_failure(&what).stderr_str()
}

#[track_caller]
fn parse_json_stdout(what: &str, out: &Output) -> Value {
    let stdout = out.stdout_str();
    if stdout.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("`{what}` printed invalid JSON ({e}):\n{stdout}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::ExitStatus;

    fn output(stdout: &str) -> Output {
        Output {
            status: ExitStatus::default(),
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
        }
    }

    #[test]
    fn empty_stdout_is_null() {
        assert_eq!(parse_json_stdout("aws x", &output("")), Value::Null);
        assert_eq!(parse_json_stdout("aws x", &output("\n")), Value::Null);
        assert_eq!(
            parse_json_stdout("aws x", &output("{\"A\": 1}\n")),
            serde_json::json!({"A": 1})
        );
    }

    #[test]
    #[should_panic(expected = "`aws x` printed invalid JSON")]
    fn invalid_json_is_reported() {
        parse_json_stdout("aws x", &output("nope"));
    }
}
