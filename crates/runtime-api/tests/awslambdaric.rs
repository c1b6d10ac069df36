//! The official Python runtime interface client (`awslambdaric` from PyPI,
//! listed in `requirements-test.txt`) against a real listener.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::*;
use runtime_api::{InstanceEvent, InvokeOutcome, RuntimeApi, MAX_PAYLOAD_BYTES};
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// Python start-up plus importing awslambdaric can take a while on a busy machine.
const STARTUP: Duration = Duration::from_secs(60);

const HANDLER: &str = r#"
import os

def handler(event, context):
    if "raise" in event:
        raise ValueError(event["raise"])
    if "big" in event:
        return "x" * event["big"]
    cc = context.client_context
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "client_custom": cc.custom if cc else None,
        "identity_id": context.identity.cognito_identity_id if context.identity else None,
    }
"#;

fn require_awslambdaric() {
    let importable = std::process::Command::new("python3")
        .args(["-c", "import awslambdaric"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        importable,
        "python3 cannot import awslambdaric: pip install awslambdaric \
         (crates/runtime-api/requirements-test.txt)"
    );
}

struct Instance {
    child: Child,
    dir: TempDir,
}

impl Instance {
    /// `python3 -m awslambdaric <handler>` with `handler.py` in its cwd.
    fn spawn(api: &RuntimeApi, handler: &str) -> Instance {
        require_awslambdaric();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("handler.py"), HANDLER).unwrap();
        let log = std::fs::File::create(dir.path().join("log.txt")).unwrap();
        let child = Command::new("python3")
            .args(["-m", "awslambdaric", handler])
            .current_dir(dir.path())
            .env("PYTHONPATH", dir.path())
            .env("AWS_LAMBDA_RUNTIME_API", api.addr().to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "demo")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env_remove("AWS_LAMBDA_MAX_CONCURRENCY")
            .env_remove("AWS_EXECUTION_ENV")
            .env_remove("_X_AMZN_TRACE_ID")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn python3");
        Instance { child, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log.txt")).unwrap_or_default()
    }

    async fn exit_code(&mut self) -> Option<i32> {
        let status = tokio::time::timeout(SOON, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("runtime did not exit; log:\n{}", self.log()))
            .unwrap();
        status.code()
    }
}

async fn ready(
    events: &mut tokio::sync::mpsc::Receiver<InstanceEvent>,
    instance: &Instance,
) -> InstanceEvent {
    match tokio::time::timeout(STARTUP, events.recv()).await {
        Ok(Some(event)) => event,
        _ => panic!("no instance event; runtime log:\n{}", instance.log()),
    }
}

fn json(body: &Bytes) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

#[tokio::test]
async fn python_results_errors_and_context_round_trip() {
    let (api, mut events) = bind().await;
    let mut instance = Instance::spawn(&api, "handler.handler");
    assert_eq!(
        ready(&mut events, &instance).await,
        InstanceEvent::Ready,
        "{}",
        instance.log()
    );

    for n in 0..3 {
        let id = uuid::Uuid::new_v4().to_string();
        let mut invocation = invocation(&id, r#"{"name": "stratus", "n": 1}"#);
        invocation.deadline = SystemTime::now() + Duration::from_secs(30);
        invocation.trace_id = Some(format!(
            "Root=1-67750000-0123456789abcdef0123456{n};Parent=0123456789abcdef;Sampled=0"
        ));
        invocation.client_context = Some(r#"{"custom":{"k":"v"},"env":{},"client":{}}"#.into());
        invocation.cognito_identity =
            Some(r#"{"cognitoIdentityId":"cid","cognitoIdentityPoolId":"pool"}"#.into());
        let outcome = soon_or_log(api.invoke(invocation), &instance).await;
        let Ok(InvokeOutcome::Response { body, content_type }) = outcome else {
            panic!("unexpected {outcome:?}; log:\n{}", instance.log());
        };
        assert_eq!(content_type.as_deref(), Some("application/json"));
        let result = json(&body);
        assert_eq!(
            result["event"],
            serde_json::json!({"name": "stratus", "n": 1})
        );
        assert_eq!(result["request_id"], id.as_str());
        assert_eq!(result["arn"], format!("{ARN}:live"));
        let remaining = result["remaining_ms"].as_i64().unwrap();
        assert!((1..=30_000).contains(&remaining), "remaining {remaining}");
        assert_eq!(
            result["trace"],
            format!("Root=1-67750000-0123456789abcdef0123456{n};Parent=0123456789abcdef;Sampled=0")
        );
        assert_eq!(result["client_custom"], serde_json::json!({"k": "v"}));
        assert_eq!(result["identity_id"], "cid");

        // A raised exception, as awslambdaric formats it.
        let id = uuid::Uuid::new_v4().to_string();
        let outcome = soon_or_log(
            api.invoke(common::invocation(&id, r#"{"raise": "boom"}"#)),
            &instance,
        )
        .await;
        let Ok(InvokeOutcome::FunctionError { error_type, body }) = outcome else {
            panic!("unexpected {outcome:?}; log:\n{}", instance.log());
        };
        // awslambdaric sends no Lambda-Runtime-Function-Error-Type header.
        assert_eq!(error_type, "Runtime.Unknown");
        let error = json(&body);
        assert_eq!(error["errorType"], "ValueError");
        assert_eq!(error["errorMessage"], "boom");
        assert_eq!(error["requestId"], id.as_str());
        let trace = error["stackTrace"].as_array().expect("stackTrace array");
        assert!(
            trace
                .iter()
                .any(|line| line.as_str().unwrap().contains("handler.py")),
            "{error}"
        );
    }

    // Too large: 413 for the runtime (which then crashes, as it does on AWS),
    // ResponseTooLarge for the caller.
    let id = uuid::Uuid::new_v4().to_string();
    let payload = format!(r#"{{"big": {MAX_PAYLOAD_BYTES}}}"#);
    let mut big = common::invocation(&id, "{}");
    big.payload = Bytes::from(payload);
    let outcome = soon_or_log(api.invoke(big), &instance).await;
    // `json.dumps` adds the two quotes.
    assert_eq!(
        outcome,
        Ok(InvokeOutcome::ResponseTooLarge {
            size: MAX_PAYLOAD_BYTES + 2,
            limit: MAX_PAYLOAD_BYTES
        }),
        "log:\n{}",
        instance.log()
    );
    assert_ne!(instance.exit_code().await, Some(0));
    api.shutdown().await;
}

#[tokio::test]
async fn python_import_failure_is_an_init_error() {
    let (api, mut events) = bind().await;
    let mut instance = Instance::spawn(&api, "nosuchmod.handler");
    // The invocation waits for init, which fails.
    let outcome = tokio::time::timeout(STARTUP, api.invoke(invocation("first", "{}")))
        .await
        .unwrap_or_else(|_| panic!("no outcome; log:\n{}", instance.log()));
    let Ok(InvokeOutcome::InitError { error_type, body }) = outcome else {
        panic!("unexpected {outcome:?}; log:\n{}", instance.log());
    };
    assert_eq!(error_type, "Runtime.ImportModuleError");
    let error = json(&body);
    assert_eq!(error["errorType"], "Runtime.ImportModuleError");
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .contains("nosuchmod"),
        "{error}"
    );
    assert_eq!(
        ready(&mut events, &instance).await,
        InstanceEvent::InitError {
            error_type: "Runtime.ImportModuleError".into(),
            body: body.clone()
        }
    );
    assert_eq!(
        instance.exit_code().await,
        Some(1),
        "log:\n{}",
        instance.log()
    );
}

async fn soon_or_log<F: std::future::Future>(future: F, instance: &Instance) -> F::Output {
    match tokio::time::timeout(STARTUP, future).await {
        Ok(output) => output,
        Err(_) => panic!("no outcome in time; runtime log:\n{}", instance.log()),
    }
}
