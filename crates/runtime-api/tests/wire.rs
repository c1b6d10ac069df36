//! Every endpoint and error path of the Runtime API, driven with raw HTTP.

#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use common::*;
use runtime_api::{InstanceEvent, InvokeError, InvokeOutcome, RuntimeApiConfig, MAX_PAYLOAD_BYTES};

async fn soon<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(SOON, future)
        .await
        .expect("finished in time")
}

fn response(body: &'static [u8], content_type: &str) -> InvokeOutcome {
    InvokeOutcome::Response {
        body: Bytes::from_static(body),
        content_type: Some(content_type.to_owned()),
    }
}

#[tokio::test]
async fn next_delivers_the_event_with_every_header() {
    let (api, mut events) = bind().await;
    let addr = api.addr();
    let next = spawn_next(addr);
    assert_eq!(next_event(&mut events).await, InstanceEvent::Ready);

    let mut invocation = invocation("0f3c6a8e-1d5b-4c7e-9a55-3e2b1f0d9c11", "{\"orderId\": 42}");
    invocation.deadline = UNIX_EPOCH + Duration::from_millis(1_767_225_603_000);
    invocation.trace_id =
        Some("Root=1-67750000-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=0".into());
    invocation.client_context = Some(r#"{"custom":{"k":"v"}}"#.into());
    invocation.cognito_identity =
        Some(r#"{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}"#.into());

    let runtime = async {
        let event = joined(next).await;
        let answer = request(
            addr,
            "POST",
            &response_path("0f3c6a8e-1d5b-4c7e-9a55-3e2b1f0d9c11"),
            &[("Content-Type", "text/plain")],
            b"hello",
        )
        .await;
        (event, answer)
    };
    let (outcome, (event, answer)) =
        soon(async { tokio::join!(api.invoke(invocation), runtime) }).await;

    assert_eq!(event.status, 200);
    assert_eq!(event.body, b"{\"orderId\": 42}");
    let header = |name| event.header(name);
    assert_eq!(
        header("Lambda-Runtime-Aws-Request-Id"),
        Some("0f3c6a8e-1d5b-4c7e-9a55-3e2b1f0d9c11")
    );
    assert_eq!(header("Lambda-Runtime-Deadline-Ms"), Some("1767225603000"));
    assert_eq!(
        header("Lambda-Runtime-Invoked-Function-Arn"),
        Some(format!("{ARN}:live").as_str())
    );
    assert_eq!(
        header("Lambda-Runtime-Trace-Id"),
        Some("Root=1-67750000-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=0")
    );
    assert_eq!(
        header("Lambda-Runtime-Client-Context"),
        Some(r#"{"custom":{"k":"v"}}"#)
    );
    assert_eq!(
        header("Lambda-Runtime-Cognito-Identity"),
        Some(r#"{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}"#)
    );
    assert_eq!(header("Content-Type"), Some("application/json"));

    answer.assert_accepted();
    assert_eq!(outcome, Ok(response(b"hello", "text/plain")));
    api.shutdown().await;
}

#[tokio::test]
async fn optional_headers_are_omitted_and_the_function_arn_is_the_fallback() {
    let (api, _events) = bind().await;
    let addr = api.addr();
    let mut invocation = invocation("req-1", "raw bytes");
    invocation.invoked_function_arn = String::new();
    invocation.client_context = Some(String::new());
    invocation.content_type = Some("application/octet-stream".into());
    let runtime = async {
        let event = get_next(addr).await;
        request(addr, "POST", &response_path("req-1"), &[], b"")
            .await
            .assert_accepted();
        event
    };
    let (outcome, event) = soon(async { tokio::join!(api.invoke(invocation), runtime) }).await;
    assert_eq!(
        event.header("Lambda-Runtime-Invoked-Function-Arn"),
        Some(ARN)
    );
    assert_eq!(event.header("Lambda-Runtime-Trace-Id"), None);
    assert_eq!(event.header("Lambda-Runtime-Client-Context"), None);
    assert_eq!(event.header("Lambda-Runtime-Cognito-Identity"), None);
    assert_eq!(
        event.header("Content-Type"),
        Some("application/octet-stream")
    );
    assert_eq!(event.body, b"raw bytes");
    // No Content-Type on the response: none reported.
    assert_eq!(
        outcome,
        Ok(InvokeOutcome::Response {
            body: Bytes::new(),
            content_type: None
        })
    );
}

#[tokio::test]
async fn an_invocation_waits_for_the_runtime_to_poll() {
    let (api, mut events) = bind().await;
    let addr = api.addr();
    let runtime = async {
        // The invocation is queued before the runtime ever polls.
        tokio::task::yield_now().await;
        let event = get_next(addr).await;
        let id = event
            .header("Lambda-Runtime-Aws-Request-Id")
            .unwrap()
            .to_owned();
        request(
            addr,
            "POST",
            &response_path(&id),
            &[("content-type", "application/json")],
            b"{}",
        )
        .await
        .assert_accepted();
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("queued", "{}")), runtime) }).await;
    assert_eq!(outcome, Ok(response(b"{}", "application/json")));
    assert_eq!(next_event(&mut events).await, InstanceEvent::Ready);
}

#[tokio::test]
async fn ready_is_reported_once_and_invocations_run_one_after_another() {
    let (api, mut events) = bind().await;
    let addr = api.addr();
    let mut conn = Conn::open(addr).await;
    for n in 0..5 {
        let id = format!("req-{n}");
        let runtime = async {
            // Same keep-alive connection for every call, as libcurl does.
            let event = conn.request("GET", NEXT, &[], b"").await;
            assert_eq!(
                event.header("Lambda-Runtime-Aws-Request-Id"),
                Some(id.as_str())
            );
            conn.request("POST", &response_path(&id), &[], &event.body)
                .await
                .assert_accepted();
        };
        let (outcome, ()) =
            soon(async { tokio::join!(api.invoke(invocation(&id, "{\"n\":1}")), runtime) }).await;
        assert_eq!(
            outcome,
            Ok(InvokeOutcome::Response {
                body: Bytes::from_static(b"{\"n\":1}"),
                content_type: None
            })
        );
    }
    assert_eq!(next_event(&mut events).await, InstanceEvent::Ready);
    assert!(events.try_recv().is_err(), "Ready only once");
}

#[tokio::test]
async fn function_errors_pass_the_body_through_with_a_sanitised_type() {
    let (api, _events) = bind().await;
    let addr = api.addr();
    let python_body: &[u8] = br#"{"errorMessage": "boom", "errorType": "ValueError", "requestId": "e1", "stackTrace": ["  File \"/var/task/app.py\", line 3, in handler\n"]}"#;
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&str, Headers, &[u8], &str); 4] = [
        // awslambdaric: no error-type header at all.
        (
            "e1",
            &[("content-type", "application/json")],
            python_body,
            "Runtime.Unknown",
        ),
        // lambda_runtime: `unhandled`.
        (
            "e2",
            &[("lambda-runtime-function-error-type", "unhandled")],
            b"{\"errorType\":\"&str\",\"errorMessage\":\"boom\"}",
            "Runtime.Unknown",
        ),
        (
            "e3",
            &[("Lambda-Runtime-Function-Error-Type", "Function.MyError")],
            b"not even json",
            "Function.MyError",
        ),
        (
            "e4",
            &[("Lambda-Runtime-Function-Error-Type", "Function.x")],
            b"",
            "Function.Unknown",
        ),
    ];
    for (id, headers, body, expected_type) in cases {
        let runtime = async {
            get_next(addr).await;
            request(addr, "POST", &error_path(id), headers, body)
                .await
                .assert_accepted();
        };
        let (outcome, ()) =
            soon(async { tokio::join!(api.invoke(invocation(id, "{}")), runtime) }).await;
        assert_eq!(
            outcome,
            Ok(InvokeOutcome::FunctionError {
                error_type: expected_type.to_owned(),
                body: Bytes::copy_from_slice(body),
            }),
            "case {id}"
        );
    }
}

#[tokio::test]
async fn error_cause_documents_lose_their_cause() {
    let (api, _events) = bind().await;
    let addr = api.addr();
    let runtime =
        async {
            get_next(addr).await;
            request(
            addr,
            "POST",
            &error_path("c1"),
            &[
                ("Content-Type", "application/vnd.aws.lambda.error.cause+json"),
                ("Lambda-Runtime-Function-Error-Type", "Runtime.Custom"),
            ],
            br#"{"errorMessage":"m","errorType":"T","stackTrace":[],"errorCause":{"paths":[]}}"#,
        )
        .await
        .assert_accepted();
        };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("c1", "{}")), runtime) }).await;
    assert_eq!(
        outcome,
        Ok(InvokeOutcome::FunctionError {
            error_type: "Runtime.Custom".into(),
            body: Bytes::from_static(br#"{"errorMessage":"m","errorType":"T"}"#),
        })
    );
}

#[tokio::test]
async fn init_error_is_reported_cached_and_final() {
    let (api, mut events) = bind().await;
    let addr = api.addr();
    let body = br#"{"errorMessage": "Unable to import module 'nosuchmod': No module named 'nosuchmod'", "errorType": "Runtime.ImportModuleError", "requestId": "", "stackTrace": []}"#;
    let runtime = async {
        tokio::task::yield_now().await;
        request(
            addr,
            "POST",
            "/2018-06-01/runtime/init/error",
            &[(
                "Lambda-Runtime-Function-Error-Type",
                "Runtime.ImportModuleError",
            )],
            body,
        )
        .await
    };
    // An invocation queued while the runtime initialises gets the init error.
    let (outcome, answer) =
        soon(async { tokio::join!(api.invoke(invocation("first", "{}")), runtime) }).await;
    answer.assert_accepted();
    let expected = InvokeOutcome::InitError {
        error_type: "Runtime.ImportModuleError".into(),
        body: Bytes::from_static(body),
    };
    assert_eq!(outcome, Ok(expected.clone()));
    assert_eq!(
        next_event(&mut events).await,
        InstanceEvent::InitError {
            error_type: "Runtime.ImportModuleError".into(),
            body: Bytes::from_static(body),
        }
    );
    // Later invocations get the cached failure at once.
    assert_eq!(
        soon(api.invoke(invocation("second", "{}"))).await,
        Ok(expected)
    );
    // The runtime may not go on.
    let next = get_next(addr).await;
    next.assert_error(403, "InvalidStateTransition");
    assert_eq!(
        next.json()["errorMessage"],
        "State transition from InitError to Ready failed for runtime. Error: State transition is not allowed"
    );
    request(addr, "POST", "/2018-06-01/runtime/init/error", &[], b"{}")
        .await
        .assert_error(403, "InvalidStateTransition");
}

#[tokio::test]
async fn init_error_after_the_first_next_is_refused() {
    let (api, mut events) = bind().await;
    let addr = api.addr();
    let waiting = spawn_next(addr);
    assert_eq!(next_event(&mut events).await, InstanceEvent::Ready);
    let answer = request(addr, "POST", "/2018-06-01/runtime/init/error", &[], b"{}").await;
    answer.assert_error(403, "InvalidStateTransition");
    assert_eq!(
        answer.json()["errorMessage"],
        "State transition from Ready to InitError failed for runtime. Error: State transition is not allowed"
    );
    // Still healthy: the waiting poller gets the next invocation.
    let runtime = async {
        joined(waiting).await;
        request(addr, "POST", &response_path("r"), &[], b"ok")
            .await
            .assert_accepted();
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("r", "{}")), runtime) }).await;
    assert!(matches!(outcome, Ok(InvokeOutcome::Response { .. })));
}

#[tokio::test]
async fn replies_out_of_turn_are_invalid_state_transitions() {
    let (api, mut events) = bind().await;
    let addr = api.addr();
    // Before the runtime ever polled.
    let answer = request(addr, "POST", &response_path("x"), &[], b"{}").await;
    answer.assert_error(403, "InvalidStateTransition");
    assert_eq!(
        answer.json()["errorMessage"],
        "State transition from Started to InvocationResponse failed for runtime. Error: State transition is not allowed"
    );
    // While it waits in `next` with nothing to run.
    let waiting = spawn_next(addr);
    assert_eq!(next_event(&mut events).await, InstanceEvent::Ready);
    let answer = request(addr, "POST", &error_path("x"), &[], b"{}").await;
    answer.assert_error(403, "InvalidStateTransition");
    assert_eq!(
        answer.json()["errorMessage"],
        "State transition from Ready to InvocationErrorResponse failed for runtime. Error: State transition is not allowed"
    );
    let runtime = async {
        joined(waiting).await;
        request(addr, "POST", &response_path("ok"), &[], b"1")
            .await
            .assert_accepted();
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("ok", "{}")), runtime) }).await;
    assert!(matches!(outcome, Ok(InvokeOutcome::Response { .. })));
}

#[tokio::test]
async fn unknown_request_ids_are_refused_and_the_right_one_still_works() {
    let (api, _events) = bind().await;
    let addr = api.addr();
    let runtime = async {
        get_next(addr).await;
        for path in [
            response_path("not-the-current-one"),
            error_path("not-the-current-one"),
            "/2018-06-01/runtime/invocation//response".to_owned(),
        ] {
            let answer = request(addr, "POST", &path, &[], b"{\"x\":1}").await;
            answer.assert_error(400, "InvalidRequestID");
            assert_eq!(answer.json()["errorMessage"], "Invalid request ID");
        }
        request(addr, "POST", &response_path("current"), &[], b"fine")
            .await
            .assert_accepted();
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("current", "{}")), runtime) }).await;
    assert_eq!(
        outcome,
        Ok(InvokeOutcome::Response {
            body: Bytes::from_static(b"fine"),
            content_type: None
        })
    );
}

#[tokio::test]
async fn posting_twice_is_refused() {
    let (api, _events) = bind().await;
    let addr = api.addr();
    let runtime = async {
        get_next(addr).await;
        request(addr, "POST", &response_path("once"), &[], b"first")
            .await
            .assert_accepted();
        // Before the runtime polls again: the state machine refuses.
        for path in [response_path("once"), error_path("once")] {
            let answer = request(addr, "POST", &path, &[], b"second").await;
            answer.assert_error(403, "InvalidStateTransition");
            assert!(answer.json()["errorMessage"]
                .as_str()
                .unwrap()
                .starts_with("State transition from RuntimeResponseSentState to "));
        }
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("once", "{}")), runtime) }).await;
    assert_eq!(
        outcome,
        Ok(InvokeOutcome::Response {
            body: Bytes::from_static(b"first"),
            content_type: None
        })
    );
    // Once a new invocation runs, the old id is merely unknown.
    let runtime = async {
        get_next(addr).await;
        request(addr, "POST", &response_path("once"), &[], b"late")
            .await
            .assert_error(400, "InvalidRequestID");
        request(addr, "POST", &response_path("twice"), &[], b"ok")
            .await
            .assert_accepted();
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("twice", "{}")), runtime) }).await;
    assert_eq!(
        outcome,
        Ok(InvokeOutcome::Response {
            body: Bytes::from_static(b"ok"),
            content_type: None
        })
    );
}

#[tokio::test]
async fn a_second_concurrent_next_is_refused_and_the_first_still_gets_the_event() {
    let (api, mut events) = bind().await;
    let addr = api.addr();
    let first = spawn_next(addr);
    // `Ready` is emitted as the first poller is registered.
    assert_eq!(next_event(&mut events).await, InstanceEvent::Ready);
    let second = get_next(addr).await;
    second.assert_error(403, "InvalidStateTransition");
    assert_eq!(
        second.json()["errorMessage"],
        "State transition from Ready to Ready failed for runtime. Error: Concurrent state modification"
    );
    let runtime = async {
        let event = joined(first).await;
        assert_eq!(event.header("Lambda-Runtime-Aws-Request-Id"), Some("only"));
        request(addr, "POST", &response_path("only"), &[], b"1")
            .await
            .assert_accepted();
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("only", "{}")), runtime) }).await;
    assert!(matches!(outcome, Ok(InvokeOutcome::Response { .. })));
}

#[tokio::test]
async fn a_poller_whose_connection_died_is_replaced() {
    let (api, mut events) = bind().await;
    let addr = api.addr();
    let mut dead = Conn::open(addr).await;
    dead.write(&encode("GET", NEXT, &[], b"")).await;
    assert_eq!(next_event(&mut events).await, InstanceEvent::Ready);
    drop(dead);
    // The server notices the closed connection; poll until a new `next` is taken.
    let deadline = tokio::time::Instant::now() + SOON;
    let live = loop {
        let mut conn = Conn::open(addr).await;
        conn.write(&encode("GET", NEXT, &[], b"")).await;
        let refused = tokio::time::timeout(Duration::from_millis(100), conn.read_response()).await;
        match refused {
            // Still refused as concurrent: try again.
            Ok(Some(answer)) => answer.assert_error(403, "InvalidStateTransition"),
            Ok(None) => panic!("connection closed"),
            // Waiting: this poller was accepted.
            Err(_) => break conn,
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "dead poller never replaced"
        );
    };
    let mut live = live;
    let runtime = async {
        let event = live.read_response().await.expect("event");
        assert_eq!(event.header("Lambda-Runtime-Aws-Request-Id"), Some("after"));
        live.request("POST", &response_path("after"), &[], b"1")
            .await
            .assert_accepted();
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("after", "{}")), runtime) }).await;
    assert!(matches!(outcome, Ok(InvokeOutcome::Response { .. })));
}

#[tokio::test]
async fn a_repeated_next_while_running_redelivers_the_same_event() {
    let (api, _events) = bind().await;
    let addr = api.addr();
    let runtime = async {
        let first = get_next(addr).await;
        let again = get_next(addr).await;
        assert_eq!(first.status, 200);
        assert_eq!(again.status, 200);
        assert_eq!(
            first.header("Lambda-Runtime-Aws-Request-Id"),
            again.header("Lambda-Runtime-Aws-Request-Id")
        );
        assert_eq!(
            first.header("Lambda-Runtime-Deadline-Ms"),
            again.header("Lambda-Runtime-Deadline-Ms")
        );
        assert_eq!(first.body, again.body);
        request(addr, "POST", &response_path("dup"), &[], b"1")
            .await
            .assert_accepted();
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("dup", "{\"a\":1}")), runtime) }).await;
    assert!(matches!(outcome, Ok(InvokeOutcome::Response { .. })));
}

#[tokio::test]
async fn oversized_responses_get_413_and_response_too_large() {
    let mut config = RuntimeApiConfig::new(ARN);
    config.max_response_bytes = 1024;
    config.max_error_bytes = 512;
    let (api, _events) = bind_with(config).await;
    let addr = api.addr();
    let big = vec![b'x'; 4096];
    for (path, limit) in [(response_path("big"), 1024), (error_path("big"), 512)] {
        let runtime = async {
            get_next(addr).await;
            let answer = request(addr, "POST", &path, &[], &big).await;
            answer.assert_error(413, "RequestEntityTooLarge");
            assert_eq!(
                answer.json()["errorMessage"],
                format!("Exceeded maximum allowed payload size ({limit} bytes).")
            );
        };
        let (outcome, ()) =
            soon(async { tokio::join!(api.invoke(invocation("big", "{}")), runtime) }).await;
        assert_eq!(
            outcome,
            Ok(InvokeOutcome::ResponseTooLarge { size: 4096, limit })
        );
    }
    // A body of exactly the limit is fine, chunked or not.
    let exact = vec![b'y'; 1024];
    let runtime = async {
        get_next(addr).await;
        let mut conn = Conn::open(addr).await;
        let mut raw = encode(
            "POST",
            &response_path("exact"),
            &[("Transfer-Encoding", "chunked")],
            b"",
        );
        raw.extend_from_slice(b"400\r\n");
        raw.extend_from_slice(&exact);
        raw.extend_from_slice(b"\r\n0\r\n\r\n");
        conn.write(&raw).await;
        conn.read_response()
            .await
            .expect("answer")
            .assert_accepted();
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("exact", "{}")), runtime) }).await;
    assert_eq!(
        outcome,
        Ok(InvokeOutcome::Response {
            body: Bytes::from(exact.clone()),
            content_type: None
        })
    );
}

#[tokio::test]
async fn lambdas_own_limit_is_six_mib_plus_slack() {
    let (api, _events) = bind().await;
    let addr = api.addr();
    let too_big = vec![b'z'; MAX_PAYLOAD_BYTES + 1];
    let runtime = async {
        get_next(addr).await;
        let answer = request(addr, "POST", &response_path("huge"), &[], &too_big).await;
        answer.assert_error(413, "RequestEntityTooLarge");
        assert_eq!(
            answer.json()["errorMessage"],
            "Exceeded maximum allowed payload size (6291556 bytes)."
        );
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("huge", "{}")), runtime) }).await;
    assert_eq!(
        outcome,
        Ok(InvokeOutcome::ResponseTooLarge {
            size: MAX_PAYLOAD_BYTES + 1,
            limit: 6_291_556
        })
    );
    // Exactly the limit passes.
    let max = vec![b'z'; MAX_PAYLOAD_BYTES];
    let runtime = async {
        get_next(addr).await;
        request(addr, "POST", &response_path("max"), &[], &max)
            .await
            .assert_accepted();
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("max", "{}")), runtime) }).await;
    match outcome {
        Ok(InvokeOutcome::Response { body, .. }) => assert_eq!(body.len(), MAX_PAYLOAD_BYTES),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn an_invalid_response_mode_fails_the_invocation() {
    let (api, _events) = bind().await;
    let addr = api.addr();
    let runtime = async {
        get_next(addr).await;
        request(
            addr,
            "POST",
            &response_path("mode"),
            &[("Lambda-Runtime-Function-Response-Mode", "buffered")],
            b"{}",
        )
        .await
        .assert_error(400, "InvalidFunctionResponseMode");
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("mode", "{}")), runtime) }).await;
    let Ok(InvokeOutcome::FunctionError { error_type, body }) = outcome else {
        panic!("unexpected {outcome:?}");
    };
    assert_eq!(error_type, "Runtime.InvalidResponseModeHeader");
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["errorType"], "Runtime.InvalidResponseModeHeader");
    assert!(body["errorMessage"]
        .as_str()
        .unwrap()
        .starts_with("RequestId: mode Error: "));
}

fn chunked_post(
    path: &str,
    content_type: &str,
    chunks: &[&[u8]],
    trailers: &[(&str, &str)],
) -> Vec<u8> {
    let mut raw = encode(
        "POST",
        path,
        &[
            ("Lambda-Runtime-Function-Response-Mode", "streaming"),
            ("Transfer-Encoding", "chunked"),
            ("Content-Type", content_type),
            (
                "Trailer",
                "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
            ),
        ],
        b"",
    );
    for chunk in chunks {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n");
    for (name, value) in trailers {
        raw.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    raw
}

#[tokio::test]
async fn streamed_responses_are_buffered_and_error_trailers_fail_them() {
    let (api, _events) = bind().await;
    let addr = api.addr();
    let runtime = async {
        get_next(addr).await;
        let mut conn = Conn::open(addr).await;
        conn.write(&chunked_post(
            &response_path("s1"),
            "text/plain",
            &[b"hello ", b"streaming ", b"world"],
            &[],
        ))
        .await;
        conn.read_response()
            .await
            .expect("answer")
            .assert_accepted();
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("s1", "{}")), runtime) }).await;
    assert_eq!(
        outcome,
        Ok(response(b"hello streaming world", "text/plain"))
    );

    let error = br#"{"errorType":"Error","errorMessage":"mid-stream","trace":[]}"#;
    let encoded = base64::engine::general_purpose::STANDARD.encode(error);
    let runtime = async {
        get_next(addr).await;
        let mut conn = Conn::open(addr).await;
        conn.write(&chunked_post(
            &response_path("s2"),
            "application/octet-stream",
            &[b"partial"],
            &[
                ("Lambda-Runtime-Function-Error-Type", "Runtime.StreamError"),
                ("Lambda-Runtime-Function-Error-Body", &encoded),
            ],
        ))
        .await;
        conn.read_response()
            .await
            .expect("answer")
            .assert_accepted();
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("s2", "{}")), runtime) }).await;
    assert_eq!(
        outcome,
        Ok(InvokeOutcome::FunctionError {
            error_type: "Runtime.StreamError".into(),
            body: Bytes::from_static(error),
        })
    );
}

#[tokio::test]
async fn a_truncated_reply_fails_the_invocation_and_the_listener_stays_healthy() {
    let (api, _events) = bind().await;
    let addr = api.addr();
    let runtime = async {
        get_next(addr).await;
        let mut conn = Conn::open(addr).await;
        // Declares 100 bytes, sends 10, then hangs up its sending side.
        let raw = format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789",
            response_path("cut")
        );
        conn.write(raw.as_bytes()).await;
        conn.shutdown_write().await;
        conn.read_response()
            .await
            .expect("an answer")
            .assert_error(400, "TruncatedHTTPRequest");
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("cut", "{}")), runtime) }).await;
    let Ok(InvokeOutcome::FunctionError { error_type, .. }) = outcome else {
        panic!("unexpected {outcome:?}");
    };
    assert_eq!(error_type, "Runtime.TruncatedResponse");
    assert_healthy(&api, "after-cut").await;
}

/// One full invocation round trip on fresh connections.
async fn assert_healthy(api: &runtime_api::RuntimeApi, id: &str) {
    let addr = api.addr();
    let runtime = async {
        let event = get_next(addr).await;
        assert_eq!(event.header("Lambda-Runtime-Aws-Request-Id"), Some(id));
        request(addr, "POST", &response_path(id), &[], b"alive")
            .await
            .assert_accepted();
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation(id, "{}")), runtime) }).await;
    assert_eq!(
        outcome,
        Ok(InvokeOutcome::Response {
            body: Bytes::from_static(b"alive"),
            content_type: None
        })
    );
}

#[tokio::test]
async fn garbage_gets_http_errors_and_the_listener_stays_healthy() {
    let (api, _events) = bind().await;
    let addr = api.addr();
    let garbage: [&[u8]; 5] = [
        b"GARBAGE\r\n\r\n",
        b"\x00\x01\x02\x03\xff\xfe\r\n\r\n",
        b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
        b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nBad Header\r\n\r\n",
    ];
    for raw in garbage {
        let mut conn = Conn::open(addr).await;
        conn.write(raw).await;
        conn.shutdown_write().await;
        let answer = soon(conn.read_response()).await.expect("an answer");
        assert_eq!(answer.status, 400, "{raw:?} got {answer:?}");
    }
    // A header section beyond the read buffer: 431.
    let mut conn = Conn::open(addr).await;
    let huge = "a".repeat(3 * 1024 * 1024);
    let raw = format!("GET /2018-06-01/ping HTTP/1.1\r\nX-Huge: {huge}\r\n\r\n");
    // The server stops reading once it has answered, and may reset the
    // connection before the answer is read.
    let _ = conn.try_write(raw.as_bytes()).await;
    if let Some(answer) = soon(conn.read_response()).await {
        assert_eq!(answer.status, 431);
    }
    assert_healthy(&api, "after-garbage").await;
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let (api, _events) = bind().await;
    let addr = api.addr();
    let ping = request(addr, "GET", "/2018-06-01/ping", &[], b"").await;
    assert_eq!((ping.status, ping.text().as_str()), (200, "pong"));
    for path in [
        "/",
        "/2018-06-01/runtime/restore/next",
        "/2020-01-01/extension/event/next",
        "/2018-06-01/runtime/invocation/a/b/response",
        "/2015-03-31/functions/function/invocations",
    ] {
        let answer = request(addr, "GET", path, &[], b"").await;
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(answer.text(), "404 page not found\n");
    }
    for (method, path) in [
        ("POST", NEXT.to_owned()),
        ("PUT", NEXT.to_owned()),
        ("GET", response_path("x")),
        ("DELETE", error_path("x")),
        ("GET", "/2018-06-01/runtime/init/error".to_owned()),
    ] {
        let answer = request(addr, method, &path, &[], b"").await;
        assert_eq!(answer.status, 405, "{method} {path}");
    }
    assert_healthy(&api, "after-404").await;
}

#[tokio::test]
async fn a_dropped_invoke_abandons_a_delivered_invocation() {
    let (api, _events) = bind().await;
    let addr = api.addr();
    let next = spawn_next(addr);
    {
        let invoke = api.invoke(invocation("abandoned", "{}"));
        tokio::pin!(invoke);
        // Drive the invocation until the runtime has it, then give up on it
        // (what the pool's timeout does).
        tokio::select! {
            event = next => {
                assert_eq!(event.unwrap().header("Lambda-Runtime-Aws-Request-Id"), Some("abandoned"));
            }
            outcome = &mut invoke => panic!("unexpected outcome {outcome:?}"),
        }
    }
    // The late reply gets the documented error ...
    request(addr, "POST", &response_path("abandoned"), &[], b"late")
        .await
        .assert_error(400, "InvalidRequestID");
    // ... and the instance takes the next invocation once its runtime polls.
    assert_healthy(&api, "next-one").await;
}

#[tokio::test]
async fn a_dropped_invoke_abandons_a_queued_invocation() {
    let (api, _events) = bind().await;
    let addr = api.addr();
    let timed_out = tokio::time::timeout(
        Duration::from_millis(20),
        api.invoke(invocation("never-polled", "{}")),
    )
    .await;
    assert!(timed_out.is_err());
    // Nothing is delivered for it; the next invocation is.
    assert_healthy(&api, "delivered").await;
    // A late reply for the queued one is just an unknown id.
    let runtime = async {
        get_next(addr).await;
        request(addr, "POST", &response_path("never-polled"), &[], b"x")
            .await
            .assert_error(400, "InvalidRequestID");
        request(addr, "POST", &error_path("last"), &[], b"{}")
            .await
            .assert_accepted();
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("last", "{}")), runtime) }).await;
    assert!(matches!(outcome, Ok(InvokeOutcome::FunctionError { .. })));
}

#[tokio::test]
async fn a_second_concurrent_invoke_is_refused() {
    let (api, _events) = bind().await;
    let addr = api.addr();
    let runtime = async {
        let event = get_next(addr).await;
        assert_eq!(event.header("Lambda-Runtime-Aws-Request-Id"), Some("one"));
        // While `one` runs, another invoke is a caller bug.
        let second = api.invoke(invocation("two", "{}")).await;
        assert_eq!(
            second,
            Err(InvokeError::Busy {
                request_id: "one".into()
            })
        );
        request(addr, "POST", &response_path("one"), &[], b"1")
            .await
            .assert_accepted();
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("one", "{}")), runtime) }).await;
    assert!(matches!(outcome, Ok(InvokeOutcome::Response { .. })));
    // Free again.
    assert_healthy(&api, "three").await;
}

#[tokio::test]
async fn invalid_invocations_are_refused_before_delivery() {
    let (api, _events) = bind().await;
    let mut bad = invocation("a b", "{}");
    assert!(matches!(
        api.invoke(bad.clone()).await,
        Err(InvokeError::InvalidInvocation {
            field: "request_id",
            ..
        })
    ));
    bad.request_id = "fine".into();
    bad.cognito_identity = Some("line\nbreak".into());
    assert!(matches!(
        api.invoke(bad).await,
        Err(InvokeError::InvalidInvocation {
            field: "cognito_identity",
            ..
        })
    ));
    assert_healthy(&api, "fine").await;
}

#[tokio::test]
async fn shutdown_releases_the_poller_and_closes_the_listener() {
    let (api, mut events) = bind().await;
    let addr = api.addr();
    let mut conn = Conn::open(addr).await;
    conn.write(&encode("GET", NEXT, &[], b"")).await;
    assert_eq!(next_event(&mut events).await, InstanceEvent::Ready);
    soon(api.shutdown()).await;
    // Either a 500 made it out before the connection closed, or it closed.
    if let Some(answer) = soon(conn.read_response()).await {
        answer.assert_error(500, "InternalServerError");
    }
    assert!(soon(conn.is_closed()).await);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn a_megabyte_x_ray_error_cause_header_is_accepted() {
    // awslambdaric sends causes below 1 MiB as a header.
    let (api, _events) = bind().await;
    let addr = api.addr();
    let cause = format!(
        r#"{{"working_directory":"/var/task","exceptions":[{{"message":"{}"}}],"paths":[]}}"#,
        "m".repeat(1024 * 1024 - 100)
    );
    let runtime = async {
        get_next(addr).await;
        request(
            addr,
            "POST",
            &error_path("xray"),
            &[
                ("content-type", "application/json"),
                ("lambda-runtime-function-xray-error-cause", &cause),
            ],
            b"{\"errorType\":\"E\",\"errorMessage\":\"m\"}",
        )
        .await
        .assert_accepted();
    };
    let (outcome, ()) =
        soon(async { tokio::join!(api.invoke(invocation("xray", "{}")), runtime) }).await;
    assert!(matches!(outcome, Ok(InvokeOutcome::FunctionError { .. })));
}
