//! The 4xx sweep: malformed, unknown and out-of-range calls across every
//! AWS API Stratus speaks, from one table. Each row is sent as raw HTTP
//! (the aws CLI validates most of these before sending); the server must
//! answer with the 4xx status and the AWS error type the service uses —
//! `__type` for JSON 1.1, `x-amzn-ErrorType` for REST-JSON, `<Code>` for
//! the query protocol — never a 5xx, and must still answer afterwards.
//!
//! Requests carry an unverified SigV4 `Authorization` header whose scope
//! names the service (the server runs in development mode, where any
//! credentials are accepted; the scope routes the call).

use std::path::Path;
use std::time::Duration;

use reqwest::blocking::Client;
use test_support::TestServer;

const ECR: &str = "AmazonEC2ContainerRegistry_V20150921.";
const LOGS: &str = "Logs_20140328.";
const TRUST: &str = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22lambda.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";

/// The wire protocol of a row's service: where its error type is found.
#[derive(Debug, Clone, Copy)]
enum Proto {
    /// `X-Amz-Target: <prefix><op>`, body JSON, error in `__type`.
    Json11 {
        service: &'static str,
        prefix: &'static str,
    },
    /// Path and method, error in `x-amzn-ErrorType`.
    RestJson { service: &'static str },
    /// Form-encoded `Action=…`, error in `<Code>`.
    Query { service: &'static str },
}

/// One malformed call and what AWS answers to it.
struct Case {
    what: &'static str,
    proto: Proto,
    method: &'static str,
    /// The path (REST-JSON) or `X-Amz-Target` operation (JSON 1.1).
    target: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: Vec<u8>,
    status: u16,
    error_type: &'static str,
}

fn ecr(what: &'static str, op: &'static str, body: &str, error_type: &'static str) -> Case {
    Case {
        what,
        proto: Proto::Json11 {
            service: "ecr",
            prefix: ECR,
        },
        method: "POST",
        target: op,
        headers: &[],
        body: body.as_bytes().to_vec(),
        status: 400,
        error_type,
    }
}

fn lambda(
    what: &'static str,
    method: &'static str,
    path: &'static str,
    body: &str,
    status: u16,
    error_type: &'static str,
) -> Case {
    Case {
        what,
        proto: Proto::RestJson { service: "lambda" },
        method,
        target: path,
        headers: &[],
        body: body.as_bytes().to_vec(),
        status,
        error_type,
    }
}

fn sts(what: &'static str, method: &'static str, body: &str, error_type: &'static str) -> Case {
    Case {
        what,
        proto: Proto::Query { service: "sts" },
        method,
        target: "/",
        headers: &[],
        body: body.as_bytes().to_vec(),
        status: 400,
        error_type,
    }
}

fn iam(what: &'static str, body: &str, status: u16, error_type: &'static str) -> Case {
    Case {
        proto: Proto::Query { service: "iam" },
        status,
        ..sts(what, "POST", body, error_type)
    }
}

fn logs(what: &'static str, op: &'static str, body: &str, error_type: &'static str) -> Case {
    Case {
        proto: Proto::Json11 {
            service: "logs",
            prefix: LOGS,
        },
        ..ecr(what, op, body, error_type)
    }
}

fn long(n: usize) -> String {
    "a".repeat(n)
}

fn cases() -> Vec<Case> {
    let long_repo = format!(r#"{{"repositoryName":"{}"}}"#, long(257));
    let long_fn = format!(
        r#"{{"FunctionName":"{}","Role":"arn:aws:iam::000000000000:role/r","PackageType":"Image","Code":{{"ImageUri":"localhost/x:1"}}}}"#,
        long(65)
    );
    let long_description = format!(
        r#"{{"FunctionName":"f","Role":"arn:aws:iam::000000000000:role/r","PackageType":"Image","Code":{{"ImageUri":"localhost/x:1"}},"Description":"{}"}}"#,
        long(257)
    );
    let create = |extra: &str| {
        format!(
            r#"{{"FunctionName":"f","Role":"arn:aws:iam::000000000000:role/r","PackageType":"Image","Code":{{"ImageUri":"localhost/x:1"}}{extra}}}"#
        )
    };
    let mut cases = vec![
        // ----- ECR (JSON 1.1) -------------------------------------------
        ecr("unknown operation", "Nope", "{}", "UnknownOperationException"),
        ecr("no operation", "", "{}", "UnknownOperationException"),
        ecr("malformed JSON", "CreateRepository", r#"{"repositoryName":"#, "SerializationException"),
        ecr("a JSON array", "CreateRepository", "[]", "SerializationException"),
        ecr("a JSON string", "DescribeRepositories", r#""x""#, "SerializationException"),
        ecr("not UTF-8", "DescribeRepositories", "\u{0}\u{1}", "SerializationException"),
        ecr("a number for a string", "CreateRepository", r#"{"repositoryName":5}"#, "SerializationException"),
        ecr("a string for a number", "DescribeRepositories", r#"{"maxResults":"ten"}"#, "SerializationException"),
        ecr("an object for a list", "BatchDeleteImage", r#"{"repositoryName":"x","imageIds":{}}"#, "SerializationException"),
        ecr("a missing required member", "CreateRepository", "{}", "InvalidParameterException"),
        ecr("a missing required member", "BatchGetImage", r#"{"repositoryName":"x"}"#, "InvalidParameterException"),
        ecr("an oversized name", "CreateRepository", &long_repo, "InvalidParameterException"),
        ecr("a name off the pattern", "CreateRepository", r#"{"repositoryName":"UPPER"}"#, "InvalidParameterException"),
        ecr("a bad enum value", "CreateRepository", r#"{"repositoryName":"x","imageTagMutability":"SOMETIMES"}"#, "InvalidParameterException"),
        ecr("a bad enum value in a filter", "DescribeImages", r#"{"repositoryName":"x","filter":{"tagStatus":"MAYBE"}}"#, "InvalidParameterException"),
        ecr("maxResults out of range", "DescribeRepositories", r#"{"maxResults":5000}"#, "InvalidParameterException"),
        ecr("a bad registry id", "DescribeRepositories", r#"{"registryId":"12"}"#, "InvalidParameterException"),
        ecr("an unknown repository", "DescribeImages", r#"{"repositoryName":"nothing-here"}"#, "RepositoryNotFoundException"),
        ecr("a bad next token", "DescribeRepositories", r#"{"nextToken":"!!not-a-token"}"#, "InvalidParameterException"),
        Case {
            what: "a GET",
            method: "GET",
            body: Vec::new(),
            ..ecr("", "DescribeRepositories", "", "UnknownOperationException")
        },
        Case {
            what: "a body over the limit",
            body: vec![b' '; 9 * 1024 * 1024],
            status: 413,
            ..ecr("", "DescribeRepositories", "", "RequestEntityTooLargeException")
        },
        // ----- Lambda (REST-JSON) ---------------------------------------
        lambda("an unknown path", "GET", "/2015-03-31/nope", "", 404, "UnknownOperationException"),
        lambda("an unknown path under a function", "GET", "/2015-03-31/functions/f/nope", "", 404, "UnknownOperationException"),
        lambda("an unknown API version", "GET", "/2099-01-01/functions", "", 404, "UnknownOperationException"),
        lambda("a wrong method", "PATCH", "/2015-03-31/functions/f", "", 404, "UnknownOperationException"),
        lambda("a wrong method on the list", "DELETE", "/2015-03-31/functions", "", 404, "UnknownOperationException"),
        lambda("a wrong method on invocations", "GET", "/2015-03-31/functions/f/invocations", "", 404, "UnknownOperationException"),
        lambda("malformed JSON", "POST", "/2015-03-31/functions", r#"{"FunctionName":"#, 400, "InvalidRequestContentException"),
        lambda("a JSON array", "POST", "/2015-03-31/functions", "[]", 400, "InvalidRequestContentException"),
        lambda("not UTF-8", "POST", "/2015-03-31/functions", "\u{0}", 400, "InvalidRequestContentException"),
        lambda("a number for a string", "POST", "/2015-03-31/functions", r#"{"FunctionName":5}"#, 400, "InvalidRequestContentException"),
        lambda("a string for a number", "POST", "/2015-03-31/functions", &create(r#","MemorySize":"big""#), 400, "InvalidRequestContentException"),
        lambda("a string for an object", "POST", "/2015-03-31/functions", &create(r#","Environment":"x""#), 400, "InvalidRequestContentException"),
        lambda("a missing required member", "POST", "/2015-03-31/functions", "{}", 400, "ValidationException"),
        lambda("an oversized name", "POST", "/2015-03-31/functions", &long_fn, 400, "ValidationException"),
        lambda("an oversized description", "POST", "/2015-03-31/functions", &long_description, 400, "ValidationException"),
        lambda("a bad enum value", "POST", "/2015-03-31/functions", &create(r#","Architectures":["sparc"]"#), 400, "ValidationException"),
        lambda("memory out of range", "POST", "/2015-03-31/functions", &create(r#","MemorySize":1"#), 400, "ValidationException"),
        lambda("timeout out of range", "POST", "/2015-03-31/functions", &create(r#","Timeout":0"#), 400, "ValidationException"),
        lambda("an unknown function", "GET", "/2015-03-31/functions/nothing-here", "", 404, "ResourceNotFoundException"),
        lambda("an oversized name in the path", "GET", "/2015-03-31/functions/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "", 400, "ValidationException"),
        lambda("a name off the pattern in the path", "GET", "/2015-03-31/functions/a%20b", "", 400, "ValidationException"),
        lambda("MaxItems not a number", "GET", "/2015-03-31/functions?MaxItems=ten", "", 400, "ValidationException"),
        lambda("MaxItems out of range", "GET", "/2015-03-31/functions?MaxItems=0", "", 400, "ValidationException"),
        lambda("a string for a number (update)", "PUT", "/2015-03-31/functions/f/configuration", r#"{"Timeout":"x"}"#, 400, "InvalidRequestContentException"),
        lambda("a missing required member (concurrency)", "PUT", "/2017-10-31/functions/f/concurrency", "{}", 400, "ValidationException"),
        lambda("malformed JSON (alias)", "POST", "/2015-03-31/functions/f/aliases", "{", 400, "InvalidRequestContentException"),
        lambda("a number for a string (alias)", "POST", "/2015-03-31/functions/f/aliases", r#"{"Name":1,"FunctionVersion":"1"}"#, 400, "InvalidRequestContentException"),
        lambda("a bad ARN to tag", "GET", "/2017-03-31/tags/not-an-arn", "", 400, "ValidationException"),
        Case {
            what: "a bad invocation type",
            headers: &[("X-Amz-Invocation-Type", "Sometimes")],
            ..lambda("", "POST", "/2015-03-31/functions/f/invocations", "{}", 400, "ValidationException")
        },
        Case {
            what: "a bad log type",
            headers: &[("X-Amz-Log-Type", "Everything")],
            ..lambda("", "POST", "/2015-03-31/functions/f/invocations", "{}", 400, "ValidationException")
        },
        // ----- STS (query) ------------------------------------------------
        sts("an unknown action", "POST", "Action=Nope&Version=2011-06-15", "InvalidAction"),
        sts("an action Stratus does not serve", "POST", "Action=AssumeRole&Version=2011-06-15", "InvalidAction"),
        sts("no action", "POST", "Version=2011-06-15", "MissingAction"),
        sts("a malformed form", "POST", "%%%&&=", "MissingAction"),
        sts("not UTF-8", "POST", "Action=\u{0}", "InvalidAction"),
        // ----- IAM (query) -----------------------------------------------
        iam("an unknown action", "Action=Nope&Version=2010-05-08", 400, "InvalidAction"),
        iam("no action", "Version=2010-05-08", 400, "MissingAction"),
        iam("a missing required member", "Action=CreateRole&Version=2010-05-08&RoleName=r", 400, "ValidationError"),
        iam("an oversized name", &format!("Action=CreateRole&Version=2010-05-08&RoleName={}&AssumeRolePolicyDocument={TRUST}", long(65)), 400, "ValidationError"),
        iam("a name off the pattern", &format!("Action=CreateRole&Version=2010-05-08&RoleName=a%20b&AssumeRolePolicyDocument={TRUST}"), 400, "ValidationError"),
        iam("a malformed policy document", "Action=CreateRole&Version=2010-05-08&RoleName=r&AssumeRolePolicyDocument=%7B", 400, "MalformedPolicyDocument"),
        iam("a number out of range", "Action=ListRoles&Version=2010-05-08&MaxItems=0", 400, "ValidationError"),
        iam("not a number", "Action=ListRoles&Version=2010-05-08&MaxItems=ten", 400, "ValidationError"),
        iam("a bad enum value", "Action=ListPolicies&Version=2010-05-08&Scope=Everywhere", 400, "ValidationError"),
        iam("a bad ARN", "Action=GetPolicy&Version=2010-05-08&PolicyArn=not-an-arn", 400, "InvalidInput"),
        iam("an unknown role", "Action=GetRole&Version=2010-05-08&RoleName=nothing-here", 404, "NoSuchEntity"),
        // ----- CloudWatch Logs (JSON 1.1) --------------------------------
        logs("unknown operation", "Nope", "{}", "UnknownOperationException"),
        logs("malformed JSON", "CreateLogGroup", r#"{"logGroupName":"#, "SerializationException"),
        logs("a JSON array", "DescribeLogGroups", "[]", "SerializationException"),
        logs("a number for a string", "CreateLogGroup", r#"{"logGroupName":5}"#, "SerializationException"),
        logs("a string for a number", "DescribeLogGroups", r#"{"limit":"ten"}"#, "SerializationException"),
        logs("a missing required member", "CreateLogGroup", "{}", "InvalidParameterException"),
        logs("an oversized name", "CreateLogGroup", &format!(r#"{{"logGroupName":"{}"}}"#, long(513)), "InvalidParameterException"),
        logs("a limit out of range", "DescribeLogGroups", r#"{"limit":0}"#, "InvalidParameterException"),
        logs("an unknown group", "DescribeLogStreams", r#"{"logGroupName":"/nothing/here"}"#, "ResourceNotFoundException"),
        logs("a bad retention value", "PutRetentionPolicy", r#"{"logGroupName":"/g","retentionInDays":2}"#, "InvalidParameterException"),
        Case {
            what: "a GET",
            method: "GET",
            body: Vec::new(),
            ..logs("", "DescribeLogGroups", "", "UnknownOperationException")
        },
        // ----- a service Stratus does not serve -------------------------
        Case {
            what: "an unknown service",
            proto: Proto::RestJson { service: "s3" },
            method: "GET",
            target: "/bucket",
            headers: &[],
            body: Vec::new(),
            status: 400,
            error_type: "UnknownOperationException",
        },
        Case {
            what: "an unknown JSON 1.1 target",
            proto: Proto::Json11 {
                service: "dynamodb",
                prefix: "DynamoDB_20120810.",
            },
            method: "POST",
            target: "ListTables",
            headers: &[],
            body: b"{}".to_vec(),
            status: 400,
            error_type: "UnknownOperationException",
        },
    ];
    // Bytes no text form can carry.
    for case in &mut cases {
        if case.what == "not UTF-8" {
            case.body = vec![0xff, 0xfe, 0x80];
            if let Proto::Query { .. } = case.proto {
                case.body = b"Action=\xff\xfe".to_vec();
            }
        }
    }
    cases
}

fn authorization(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/{service}/aws4_request, \
         SignedHeaders=host, Signature={}",
        "0".repeat(64)
    )
}

/// The error type in a response, as botocore reads it: `__type` (after
/// any `#`), then `x-amzn-ErrorType` (before any `:`), then `<Code>`.
fn error_type(headers: &reqwest::header::HeaderMap, body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        if let Some(t) = v.get("__type").and_then(|t| t.as_str()) {
            return t.rsplit('#').next().unwrap_or(t).to_string();
        }
    }
    if let Some(t) = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
    {
        return t.split(':').next().unwrap_or(t).to_string();
    }
    if let Some((_, rest)) = body.split_once("<Code>") {
        if let Some((code, _)) = rest.split_once("</Code>") {
            return code.to_string();
        }
    }
    String::new()
}

#[test]
fn malformed_calls_get_aws_shaped_4xx_never_5xx() {
    let data = tempfile::TempDir::with_prefix("stratus-sweep-").expect("data dir");
    let server = TestServer::start_with(Path::new(env!("CARGO_BIN_EXE_stratus")), data.path(), &[]);
    // A fresh connection per call: after an oversized body the server
    // answers and closes its connection (it does not read the rest), and
    // the health probe must not reuse that one.
    let http = Client::builder()
        .timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(0)
        .build()
        .expect("http client");
    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        let (path, service) = match case.proto {
            Proto::Json11 { service, .. } | Proto::Query { service } => ("/", service),
            Proto::RestJson { service } => (case.target, service),
        };
        let method = reqwest::Method::from_bytes(case.method.as_bytes()).expect("method");
        let mut request = http
            .request(method, server.url(path))
            .header("Authorization", authorization(service))
            .body(case.body.clone());
        match case.proto {
            Proto::Json11 { prefix, .. } => {
                request = request
                    .header("Content-Type", "application/x-amz-json-1.1")
                    .header("X-Amz-Target", format!("{prefix}{}", case.target));
            }
            Proto::Query { .. } => {
                request = request.header("Content-Type", "application/x-www-form-urlencoded");
            }
            Proto::RestJson { .. } => {
                request = request.header("Content-Type", "application/json");
            }
        }
        for (name, value) in case.headers {
            request = request.header(*name, *value);
        }
        let label = format!(
            "{:?} {} {}: {}",
            case.proto, case.method, case.target, case.what
        );
        let response = match request.send() {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{label}: request failed: {e}"));
                continue;
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().unwrap_or_default();
        let got = error_type(&headers, &body);
        if status != case.status || got != case.error_type {
            failures.push(format!(
                "{label}: expected {} {}, got {status} {got:?}: {}",
                case.status,
                case.error_type,
                body.chars().take(300).collect::<String>()
            ));
        }
        // Still answering.
        let health = http.get(server.url("/_stratus/health")).send();
        if !matches!(&health, Ok(r) if r.status().is_success()) {
            failures.push(format!("{label}: the server stopped answering: {health:?}"));
            break;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} calls answered wrongly:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
