//! IAM through the real `stratus` binary with the real aws CLI: roles,
//! customer and AWS managed policies, attachments, inline policies, paging,
//! persistence across a restart, and `--strict-iam` on a function's role.

use std::path::Path;

use serde_json::{json, Value};
use tempfile::TempDir;
use test_support::{
    aws_err, aws_json, CopyOptions, OciImageBuilder, OutputExt, Skopeo, TestServer,
};

/// IAM is global; the CLI signs it in us-east-1 whatever the region.
const REGION: &str = "eu-west-1";
const ACCOUNT: &str = "000000000000";
const BASIC: &str = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole";
const STRICT_MESSAGE: &str = "The role defined for the function cannot be assumed by Lambda.";

fn trust(service: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
        }],
    })
    .to_string()
}

fn s3_read() -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::bucket/*"}],
    })
    .to_string()
}

fn start() -> TestServer {
    TestServer::start(Path::new(env!("CARGO_BIN_EXE_stratus")))
}

#[track_caller]
fn iam(server: &TestServer, args: &[&str]) -> Value {
    let mut all = vec!["iam"];
    all.extend_from_slice(args);
    aws_json(server, REGION, &all)
}

#[track_caller]
fn iam_err(server: &TestServer, args: &[&str]) -> String {
    let mut all = vec!["iam"];
    all.extend_from_slice(args);
    aws_err(server, REGION, &all)
}

#[track_caller]
fn assert_error(stderr: &str, code: &str, message: &str) {
    assert!(
        stderr.contains(&format!("({code})")),
        "expected {code} in:\n{stderr}"
    );
    assert!(
        stderr.contains(message),
        "expected message {message:?} in:\n{stderr}"
    );
}

#[track_caller]
fn create_role(server: &TestServer, name: &str, trust_doc: &str) -> Value {
    iam(
        server,
        &[
            "create-role",
            "--role-name",
            name,
            "--assume-role-policy-document",
            trust_doc,
        ],
    )["Role"]
        .clone()
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x[key].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn role_policy_attach_inline_and_delete() {
    let server = start();
    let role = iam(
        &server,
        &[
            "create-role",
            "--role-name",
            "lambda-ex",
            "--path",
            "/service-role/",
            "--assume-role-policy-document",
            &trust("lambda.amazonaws.com"),
            "--description",
            "execution role",
            "--tags",
            "Key=team,Value=core",
        ],
    )["Role"]
        .clone();
    assert_eq!(
        role["Arn"],
        format!("arn:aws:iam::{ACCOUNT}:role/service-role/lambda-ex")
    );
    let id = role["RoleId"].as_str().expect("RoleId");
    assert!(id.starts_with("AROA") && id.len() == 21, "{id}");
    // The CLI decodes the URL-encoded document back into JSON.
    assert_eq!(
        role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "lambda.amazonaws.com"
    );
    let got = iam(&server, &["get-role", "--role-name", "LAMBDA-EX"])["Role"].clone();
    assert_eq!(got["RoleId"], role["RoleId"]);
    assert_eq!(got["Description"], "execution role");
    assert_eq!(got["Tags"], json!([{"Key": "team", "Value": "core"}]));
    assert_eq!(got["MaxSessionDuration"], 3600);

    let policy = iam(
        &server,
        &[
            "create-policy",
            "--policy-name",
            "read-bucket",
            "--policy-document",
            &s3_read(),
        ],
    )["Policy"]
        .clone();
    let policy_arn = policy["Arn"].as_str().expect("Arn").to_string();
    assert_eq!(
        policy_arn,
        format!("arn:aws:iam::{ACCOUNT}:policy/read-bucket")
    );
    assert_eq!(policy["DefaultVersionId"], "v1");
    assert!(policy["PolicyId"]
        .as_str()
        .is_some_and(|p| p.starts_with("ANPA") && p.len() == 21));

    for arn in [policy_arn.as_str(), BASIC] {
        iam(
            &server,
            &[
                "attach-role-policy",
                "--role-name",
                "lambda-ex",
                "--policy-arn",
                arn,
            ],
        );
    }
    let attached = iam(
        &server,
        &["list-attached-role-policies", "--role-name", "lambda-ex"],
    );
    assert_eq!(
        names(&attached["AttachedPolicies"], "PolicyArn"),
        vec![BASIC.to_string(), policy_arn.clone()]
    );
    assert_eq!(
        iam(&server, &["get-policy", "--policy-arn", &policy_arn])["Policy"]["AttachmentCount"],
        1
    );
    let only_attached = iam(
        &server,
        &["list-policies", "--scope", "Local", "--only-attached"],
    );
    assert_eq!(
        names(&only_attached["Policies"], "PolicyName"),
        vec!["read-bucket"]
    );
    let version = iam(
        &server,
        &[
            "get-policy-version",
            "--policy-arn",
            &policy_arn,
            "--version-id",
            "v1",
        ],
    )["PolicyVersion"]
        .clone();
    assert_eq!(version["IsDefaultVersion"], true);
    assert_eq!(
        version["Document"]["Statement"][0]["Resource"],
        "arn:aws:s3:::bucket/*"
    );
    let versions = iam(
        &server,
        &["list-policy-versions", "--policy-arn", &policy_arn],
    );
    assert_eq!(names(&versions["Versions"], "VersionId"), vec!["v1"]);

    let inline = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}],
    })
    .to_string();
    iam(
        &server,
        &[
            "put-role-policy",
            "--role-name",
            "lambda-ex",
            "--policy-name",
            "ddb",
            "--policy-document",
            &inline,
        ],
    );
    let got = iam(
        &server,
        &[
            "get-role-policy",
            "--role-name",
            "lambda-ex",
            "--policy-name",
            "ddb",
        ],
    );
    assert_eq!(got["RoleName"], "lambda-ex");
    assert_eq!(
        got["PolicyDocument"]["Statement"][0]["Action"],
        "dynamodb:GetItem"
    );
    assert_eq!(
        iam(&server, &["list-role-policies", "--role-name", "lambda-ex"])["PolicyNames"],
        json!(["ddb"])
    );

    assert_error(
        &iam_err(&server, &["delete-policy", "--policy-arn", &policy_arn]),
        "DeleteConflict",
        "Cannot delete a policy attached to entities.",
    );
    assert_error(
        &iam_err(&server, &["delete-role", "--role-name", "lambda-ex"]),
        "DeleteConflict",
        "Cannot delete entity, must detach all policies first.",
    );
    for arn in [policy_arn.as_str(), BASIC] {
        iam(
            &server,
            &[
                "detach-role-policy",
                "--role-name",
                "lambda-ex",
                "--policy-arn",
                arn,
            ],
        );
    }
    assert_error(
        &iam_err(
            &server,
            &[
                "detach-role-policy",
                "--role-name",
                "lambda-ex",
                "--policy-arn",
                BASIC,
            ],
        ),
        "NoSuchEntity",
        &format!("Policy {BASIC} was not found."),
    );
    assert_error(
        &iam_err(&server, &["delete-role", "--role-name", "lambda-ex"]),
        "DeleteConflict",
        "Cannot delete entity, must delete policies first.",
    );
    iam(
        &server,
        &[
            "delete-role-policy",
            "--role-name",
            "lambda-ex",
            "--policy-name",
            "ddb",
        ],
    );
    iam(&server, &["delete-role", "--role-name", "lambda-ex"]);
    assert_error(
        &iam_err(&server, &["get-role", "--role-name", "lambda-ex"]),
        "NoSuchEntity",
        "The role with name lambda-ex cannot be found.",
    );
    iam(&server, &["delete-policy", "--policy-arn", &policy_arn]);
    assert_error(
        &iam_err(&server, &["get-policy", "--policy-arn", &policy_arn]),
        "NoSuchEntity",
        &format!("Policy {policy_arn} was not found."),
    );
}

#[test]
fn aws_managed_policies_resolve_by_arn() {
    let server = start();
    let policy = iam(&server, &["get-policy", "--policy-arn", BASIC])["Policy"].clone();
    assert_eq!(policy["PolicyName"], "AWSLambdaBasicExecutionRole");
    assert_eq!(policy["Path"], "/service-role/");
    assert_eq!(policy["DefaultVersionId"], "v1");
    assert_eq!(policy["AttachmentCount"], 0);
    let document = iam(
        &server,
        &[
            "get-policy-version",
            "--policy-arn",
            BASIC,
            "--version-id",
            "v1",
        ],
    )["PolicyVersion"]["Document"]
        .clone();
    assert_eq!(
        document["Statement"][0]["Action"],
        json!([
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents"
        ])
    );
    let aws = iam(&server, &["list-policies", "--scope", "AWS"]);
    let listed = names(&aws["Policies"], "PolicyName");
    for name in [
        "AWSLambdaBasicExecutionRole",
        "AWSLambdaVPCAccessExecutionRole",
        "AWSLambdaExecute",
        "AWSLambda_FullAccess",
        "AWSLambda_ReadOnlyAccess",
        "AWSLambdaRole",
        "AWSXRayDaemonWriteAccess",
        "AmazonS3ReadOnlyAccess",
        "AmazonDynamoDBFullAccess",
        "AWSLambdaDynamoDBExecutionRole",
        "AWSLambdaSQSQueueExecutionRole",
        "AWSLambdaKinesisExecutionRole",
    ] {
        assert!(listed.iter().any(|l| l == name), "{name} in {listed:?}");
    }
    assert_eq!(
        iam(&server, &["list-policies", "--scope", "Local"])["Policies"],
        json!([])
    );
    assert_error(
        &iam_err(
            &server,
            &[
                "get-policy",
                "--policy-arn",
                "arn:aws:iam::aws:policy/NoSuchManagedPolicy",
            ],
        ),
        "NoSuchEntity",
        "Policy arn:aws:iam::aws:policy/NoSuchManagedPolicy was not found.",
    );
}

#[test]
fn errors_carry_iam_codes_and_messages() {
    let server = start();
    create_role(&server, "dup", &trust("lambda.amazonaws.com"));
    let err = iam_err(
        &server,
        &[
            "create-role",
            "--role-name",
            "DUP",
            "--assume-role-policy-document",
            &trust("lambda.amazonaws.com"),
        ],
    );
    assert_error(
        &err,
        "EntityAlreadyExists",
        "Role with name DUP already exists.",
    );
    assert_error(
        &iam_err(
            &server,
            &[
                "create-role",
                "--role-name",
                "bad",
                "--assume-role-policy-document",
                "{not json",
            ],
        ),
        "MalformedPolicyDocument",
        "This policy contains invalid Json",
    );
    assert_error(
        &iam_err(
            &server,
            &[
                "create-role",
                "--role-name",
                "bad",
                "--assume-role-policy-document",
                &s3_read(),
            ],
        ),
        "MalformedPolicyDocument",
        "Has prohibited field Resource",
    );
    assert_error(
        &iam_err(
            &server,
            &[
                "create-policy",
                "--policy-name",
                "p",
                "--policy-document",
                &trust("lambda.amazonaws.com"),
            ],
        ),
        "MalformedPolicyDocument",
        "Policy document should not specify a principal.",
    );
    let huge = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": format!("s3:{}", "x".repeat(7000)), "Resource": "*"}],
    })
    .to_string();
    assert_error(
        &iam_err(
            &server,
            &[
                "create-policy",
                "--policy-name",
                "p",
                "--policy-document",
                &huge,
            ],
        ),
        "LimitExceeded",
        "Cannot exceed quota for PolicySize: 6144",
    );
    assert_error(
        &iam_err(&server, &["get-role", "--role-name", "missing"]),
        "NoSuchEntity",
        "The role with name missing cannot be found.",
    );
    assert_error(
        &iam_err(
            &server,
            &[
                "attach-role-policy",
                "--role-name",
                "dup",
                "--policy-arn",
                "arn:aws:iam::000000000000:policy/missing",
            ],
        ),
        "NoSuchEntity",
        "Policy arn:aws:iam::000000000000:policy/missing does not exist or is not attachable.",
    );
    assert_error(
        &iam_err(
            &server,
            &[
                "get-policy",
                "--policy-arn",
                "arn:aws:s3:::bucket/not-a-policy",
            ],
        ),
        "InvalidInput",
        "ARN arn:aws:s3:::bucket/not-a-policy is not valid.",
    );
    assert_error(
        &iam_err(
            &server,
            &[
                "get-role-policy",
                "--role-name",
                "dup",
                "--policy-name",
                "none",
            ],
        ),
        "NoSuchEntity",
        "The role policy with name none cannot be found.",
    );
    // The CLI checks lengths itself; a pattern violation reaches the server.
    assert_error(
        &iam_err(&server, &["get-role", "--role-name", "no spaces"]),
        "ValidationError",
        "failed to satisfy constraint: Member must satisfy regular expression pattern",
    );
    iam(
        &server,
        &[
            "create-policy",
            "--policy-name",
            "once",
            "--policy-document",
            &s3_read(),
        ],
    );
    assert_error(
        &iam_err(
            &server,
            &[
                "create-policy",
                "--policy-name",
                "ONCE",
                "--policy-document",
                &s3_read(),
            ],
        ),
        "EntityAlreadyExists",
        "A policy called ONCE already exists. Duplicate names are not allowed.",
    );
}

#[test]
fn list_roles_pages_and_filters_by_path() {
    let server = start();
    let mut expected = Vec::new();
    for i in 0..7 {
        let name = format!("role-{i}");
        let path = if i % 2 == 0 { "/even/" } else { "/odd/" };
        iam(
            &server,
            &[
                "create-role",
                "--role-name",
                &name,
                "--path",
                path,
                "--assume-role-policy-document",
                &trust("lambda.amazonaws.com"),
            ],
        );
        expected.push(name);
    }
    // One CLI page of 3, then the rest from its NextToken.
    let first = iam(&server, &["list-roles", "--max-items", "3"]);
    assert_eq!(names(&first["Roles"], "RoleName"), expected[..3].to_vec());
    let token = first["NextToken"].as_str().expect("NextToken").to_string();
    let rest = iam(&server, &["list-roles", "--starting-token", &token]);
    assert_eq!(names(&rest["Roles"], "RoleName"), expected[3..].to_vec());
    assert!(rest.get("NextToken").is_none(), "{rest}");
    // Server pages of 2 (MaxItems=2, following Marker) stitched by the CLI.
    let all = iam(&server, &["list-roles", "--page-size", "2"]);
    assert_eq!(names(&all["Roles"], "RoleName"), expected);
    let even = iam(&server, &["list-roles", "--path-prefix", "/even/"]);
    assert_eq!(
        names(&even["Roles"], "RoleName"),
        vec!["role-0", "role-2", "role-4", "role-6"]
    );
}

#[test]
fn roles_survive_a_restart() {
    let data = TempDir::with_prefix("stratus-iam-").expect("data dir");
    let mut server =
        TestServer::start_with(Path::new(env!("CARGO_BIN_EXE_stratus")), data.path(), &[]);
    let role = create_role(&server, "kept", &trust("lambda.amazonaws.com"));
    iam(
        &server,
        &[
            "attach-role-policy",
            "--role-name",
            "kept",
            "--policy-arn",
            BASIC,
        ],
    );
    server.restart();
    let got = iam(&server, &["get-role", "--role-name", "kept"])["Role"].clone();
    assert_eq!(got["RoleId"], role["RoleId"]);
    assert_eq!(got["CreateDate"], role["CreateDate"]);
    let attached = iam(
        &server,
        &["list-attached-role-policies", "--role-name", "kept"],
    );
    assert_eq!(
        names(&attached["AttachedPolicies"], "PolicyArn"),
        vec![BASIC.to_string()]
    );
    server.stop();
}

/// Pushes a minimal image (never run here) and returns its URI.
fn push_image(server: &TestServer, work: &Path, repo: &str) -> String {
    aws_json(
        server,
        REGION,
        &["ecr", "create-repository", "--repository-name", repo],
    );
    let image = OciImageBuilder::new()
        .layer([("bootstrap", b"#!/bin/sh\n".as_slice())])
        .entrypoint(&["/bootstrap"])
        .write(&work.join(repo), "v1");
    let uri = format!("{}/{repo}:v1", server.registry_host());
    Skopeo::new()
        .copy_with(
            &image.oci_ref(),
            &format!("docker://{uri}"),
            CopyOptions {
                preserve_digests: true,
                ..CopyOptions::default()
            },
        )
        .assert_success("skopeo copy");
    uri
}

fn create_function_args<'a>(name: &'a str, role: &'a str, code: &'a str) -> Vec<&'a str> {
    vec![
        "lambda",
        "create-function",
        "--function-name",
        name,
        "--package-type",
        "Image",
        "--code",
        code,
        "--role",
        role,
    ]
}

#[test]
fn strict_iam_requires_an_existing_role_that_trusts_lambda() {
    let data = TempDir::with_prefix("stratus-iam-strict-").expect("data dir");
    let work = TempDir::with_prefix("stratus-iam-work-").expect("work dir");
    let server = TestServer::start_with(
        Path::new(env!("CARGO_BIN_EXE_stratus")),
        data.path(),
        &["--strict-iam"],
    );
    let uri = push_image(&server, work.path(), "strict-fn");
    let code = format!("ImageUri={uri}");
    create_role(&server, "ec2-only", &trust("ec2.amazonaws.com"));
    create_role(&server, "fn-role", &trust("lambda.amazonaws.com"));

    for role in [
        format!("arn:aws:iam::{ACCOUNT}:role/made-up"),
        format!("arn:aws:iam::{ACCOUNT}:role/ec2-only"),
        // The right name in another account, or under another path.
        "arn:aws:iam::123456789012:role/fn-role".to_string(),
        format!("arn:aws:iam::{ACCOUNT}:role/other/fn-role"),
    ] {
        let err = aws_err(&server, REGION, &create_function_args("f", &role, &code));
        assert_error(&err, "InvalidParameterValueException", STRICT_MESSAGE);
    }
    let good = format!("arn:aws:iam::{ACCOUNT}:role/fn-role");
    let created = aws_json(&server, REGION, &create_function_args("f", &good, &code));
    assert_eq!(created["Role"], good);

    let bad = format!("arn:aws:iam::{ACCOUNT}:role/ec2-only");
    let err = aws_err(
        &server,
        REGION,
        &[
            "lambda",
            "update-function-configuration",
            "--function-name",
            "f",
            "--role",
            &bad,
        ],
    );
    assert_error(&err, "InvalidParameterValueException", STRICT_MESSAGE);
    // Trust is read at each call: once ec2-only trusts Lambda, it is accepted.
    iam(
        &server,
        &[
            "update-assume-role-policy",
            "--role-name",
            "ec2-only",
            "--policy-document",
            &trust("lambda.amazonaws.com"),
        ],
    );
    let updated = aws_json(
        &server,
        REGION,
        &[
            "lambda",
            "update-function-configuration",
            "--function-name",
            "f",
            "--role",
            &bad,
        ],
    );
    assert_eq!(updated["Role"], bad);
}

#[test]
fn without_strict_iam_any_well_formed_role_is_accepted() {
    let server = start();
    let work = TempDir::with_prefix("stratus-iam-work-").expect("work dir");
    let uri = push_image(&server, work.path(), "lenient-fn");
    let code = format!("ImageUri={uri}");
    let role = format!("arn:aws:iam::{ACCOUNT}:role/made-up");
    let created = aws_json(&server, REGION, &create_function_args("g", &role, &code));
    assert_eq!(created["Role"], role);
}
