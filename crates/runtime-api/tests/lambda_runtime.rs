//! The Rust runtime client (`lambda_runtime` from crates.io) running an
//! in-process function against a real listener.
//!
//! `lambda_runtime` reads its endpoint and function settings from the
//! process environment, so this binary holds exactly one test.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use common::*;
use futures::stream;
use lambda_runtime::{
    service_fn, Error, FunctionResponse, LambdaEvent, MetadataPrelude, StreamResponse,
};
use runtime_api::{InstanceEvent, InvokeOutcome};
use serde_json::{json, Value};

const CLIENT_CONTEXT: &str = r#"{"client":{"installation_id":"i","app_title":"t","app_version_name":"1.0","app_version_code":"1","app_package_name":"p"},"custom":{"k":"v"},"env":{"locale":"en"}}"#;

type Chunks = stream::Iter<std::vec::IntoIter<Result<Bytes, Error>>>;

async fn handler(event: LambdaEvent<Value>) -> Result<FunctionResponse<Value, Chunks>, Error> {
    let (payload, context) = event.into_parts();
    if let Some(message) = payload.get("fail").and_then(Value::as_str) {
        return Err(message.to_owned().into());
    }
    if payload.get("stream").is_some() {
        let chunks: Vec<Result<Bytes, Error>> = vec![
            Ok(Bytes::from_static(b"hello ")),
            Ok(Bytes::from_static(b"stream")),
        ];
        return Ok(FunctionResponse::StreamingResponse(StreamResponse {
            metadata_prelude: MetadataPrelude::default(),
            stream: stream::iter(chunks),
        }));
    }
    Ok(FunctionResponse::BufferedResponse(json!({
        "event": payload,
        "request_id": context.request_id,
        "arn": context.invoked_function_arn,
        "deadline": context.deadline,
        "xray": context.xray_trace_id,
        "client_custom": context.client_context.map(|c| c.custom),
        "identity_id": context.identity.map(|i| i.identity_id),
    })))
}

#[tokio::test]
async fn rust_lambda_runtime_round_trips() {
    let (api, mut events) = bind().await;
    // The only test in this binary: nothing else reads the environment.
    std::env::set_var("AWS_LAMBDA_RUNTIME_API", api.addr().to_string());
    std::env::set_var("AWS_LAMBDA_FUNCTION_NAME", "demo");
    std::env::set_var("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST");
    std::env::set_var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128");
    std::env::remove_var("AWS_LAMBDA_MAX_CONCURRENCY");
    std::env::remove_var("AWS_LAMBDA_INITIALIZATION_TYPE");
    let runtime = tokio::spawn(lambda_runtime::run(service_fn(handler)));
    assert_eq!(next_event(&mut events).await, InstanceEvent::Ready);

    for n in 0..3 {
        let id = uuid::Uuid::new_v4().to_string();
        let mut invocation = invocation(&id, r#"{"n": 1}"#);
        invocation.deadline = UNIX_EPOCH + Duration::from_millis(4_102_444_800_000 + n);
        invocation.trace_id = Some(
            "Root=1-67750000-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1".into(),
        );
        // lambda_runtime needs every `client` field (a partial one ends its loop).
        invocation.client_context = Some(CLIENT_CONTEXT.into());
        invocation.cognito_identity =
            Some(r#"{"cognitoIdentityId":"cid","cognitoIdentityPoolId":"pool"}"#.into());
        let outcome = tokio::time::timeout(SOON, api.invoke(invocation))
            .await
            .unwrap();
        let Ok(InvokeOutcome::Response { body, .. }) = outcome else {
            panic!("unexpected {outcome:?}");
        };
        let result: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(result["event"], json!({"n": 1}));
        assert_eq!(result["request_id"], id.as_str());
        assert_eq!(result["arn"], format!("{ARN}:live"));
        assert_eq!(result["deadline"], 4_102_444_800_000 + n);
        assert_eq!(
            result["xray"],
            "Root=1-67750000-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1"
        );
        assert_eq!(result["client_custom"], json!({"k": "v"}));
        assert_eq!(result["identity_id"], "cid");

        // A handler error: `lambda-runtime-function-error-type: unhandled`.
        let id = uuid::Uuid::new_v4().to_string();
        let outcome = tokio::time::timeout(
            SOON,
            api.invoke(common::invocation(&id, r#"{"fail": "boom"}"#)),
        )
        .await
        .unwrap();
        let Ok(InvokeOutcome::FunctionError { error_type, body }) = outcome else {
            panic!("unexpected {outcome:?}");
        };
        assert_eq!(error_type, "Runtime.Unknown");
        let error: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error["errorMessage"], "boom");
        assert!(error["errorType"].is_string(), "{error}");
    }

    // A streamed response, buffered: prelude, eight NULs, then the body.
    let outcome = tokio::time::timeout(
        SOON,
        api.invoke(invocation("streamed", r#"{"stream": true}"#)),
    )
    .await
    .unwrap();
    let Ok(InvokeOutcome::Response { body, content_type }) = outcome else {
        panic!("unexpected {outcome:?}");
    };
    assert_eq!(
        content_type.as_deref(),
        Some("application/vnd.awslambda.http-integration-response")
    );
    let split = body
        .windows(8)
        .position(|w| w == [0u8; 8])
        .expect("prelude delimiter");
    let prelude: Value = serde_json::from_slice(&body[..split]).unwrap();
    assert_eq!(prelude["statusCode"], 200);
    assert_eq!(&body[split + 8..], b"hello stream");

    api.shutdown().await;
    // Losing its Runtime API ends the client's loop with an error.
    let ended = tokio::time::timeout(SOON, runtime).await.unwrap().unwrap();
    assert!(ended.is_err());
}
