//! Regions and accounts kept apart, with the real aws CLI: the same ECR
//! repository name and the same Lambda function name in `us-east-1` and
//! `eu-west-1` are two resources whose ARNs carry their region, and an
//! access key id of 12 digits works in that account, which sees none of
//! the default account's resources.
//!
//! The functions are never invoked: their image is a one-layer stand-in
//! (a `/bootstrap` that is never run), pushed with skopeo.

use std::path::Path;

use serde_json::Value;
use tempfile::TempDir;
use test_support::{
    aws_err, aws_json, aws_with_credentials, OciImageBuilder, OutputExt, Skopeo, TestServer,
};

const ACCOUNT: &str = "000000000000";
const OTHER_ACCOUNT: &str = "111111111111";
const US: &str = "us-east-1";
const EU: &str = "eu-west-1";
const ROLE: &str = "arn:aws:iam::000000000000:role/lambda-role";

struct Stratus {
    server: TestServer,
    work: TempDir,
    _data: TempDir,
}

impl Stratus {
    fn start() -> Stratus {
        let data = TempDir::with_prefix("stratus-regions-").expect("data dir");
        let server = TestServer::start_with(
            Path::new(env!("CARGO_BIN_EXE_stratus")),
            data.path(),
            &["--region", US],
        );
        Stratus {
            server,
            work: TempDir::with_prefix("stratus-regions-work-").expect("work dir"),
            _data: data,
        }
    }

    #[track_caller]
    fn aws(&self, region: &str, args: &[&str]) -> Value {
        aws_json(&self.server, region, args)
    }

    /// `aws ARGS…` as the account of access key `111111111111`.
    #[track_caller]
    fn aws_other(&self, region: &str, args: &[&str]) -> Value {
        let what = format!("aws {} (as {OTHER_ACCOUNT})", args.join(" "));
        let out = aws_with_credentials(&self.server, region, OTHER_ACCOUNT, "secret", args)
            .assert_success(&what);
        let stdout = out.stdout_str();
        if stdout.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {stdout}"))
    }

    /// Pushes a one-layer image to `localhost:PORT/REPO:TAG` (the
    /// default account's repository in the default region).
    #[track_caller]
    fn push_image(&self, repo: &str, tag: &str) {
        let layout = self.work.path().join(repo);
        let image = OciImageBuilder::new()
            .layer([("bootstrap", b"#!/bin/sh\nexit 1\n".as_slice())])
            .entrypoint(&["/bootstrap"])
            .write(&layout, tag);
        let dest = format!("docker://{}/{repo}:{tag}", self.server.registry_host());
        Skopeo::new()
            .copy(&image.oci_ref(), &dest)
            .assert_success(&format!("skopeo copy to {dest}"));
    }
}

fn strings<'a>(v: &'a Value, list: &str, field: &str) -> Vec<&'a str> {
    v[list]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x[field].as_str()).collect())
        .unwrap_or_default()
}

#[test]
fn the_same_repository_name_in_two_regions_is_two_repositories() {
    let s = Stratus::start();
    for region in [US, EU] {
        let repo = &s.aws(
            region,
            &["ecr", "create-repository", "--repository-name", "app"],
        )["repository"];
        assert_eq!(
            repo["repositoryArn"],
            format!("arn:aws:ecr:{region}:{ACCOUNT}:repository/app").as_str(),
            "{repo}"
        );
    }
    // Created again in either region: it exists there.
    let err = aws_err(
        &s.server,
        EU,
        &["ecr", "create-repository", "--repository-name", "app"],
    );
    assert!(err.contains("RepositoryAlreadyExistsException"), "{err}");

    // Different settings per region.
    s.aws(
        EU,
        &[
            "ecr",
            "put-image-tag-mutability",
            "--repository-name",
            "app",
            "--image-tag-mutability",
            "IMMUTABLE",
        ],
    );
    for (region, mutability) in [(US, "MUTABLE"), (EU, "IMMUTABLE")] {
        let listed = s.aws(region, &["ecr", "describe-repositories"]);
        assert_eq!(
            strings(&listed, "repositories", "repositoryArn"),
            [format!("arn:aws:ecr:{region}:{ACCOUNT}:repository/app")],
            "{region}: {listed}"
        );
        assert_eq!(
            listed["repositories"][0]["imageTagMutability"], mutability,
            "{region}"
        );
    }

    // Deleting one leaves the other.
    s.aws(
        EU,
        &["ecr", "delete-repository", "--repository-name", "app"],
    );
    let err = aws_err(
        &s.server,
        EU,
        &["ecr", "describe-repositories", "--repository-names", "app"],
    );
    assert!(err.contains("RepositoryNotFoundException"), "{err}");
    let listed = s.aws(
        US,
        &["ecr", "describe-repositories", "--repository-names", "app"],
    );
    assert_eq!(strings(&listed, "repositories", "repositoryName"), ["app"]);
}

#[test]
fn the_same_function_name_in_two_regions_is_two_functions() {
    let s = Stratus::start();
    s.aws(
        US,
        &["ecr", "create-repository", "--repository-name", "img"],
    );
    s.push_image("img", "latest");
    let uri = format!("{}/img:latest", s.server.registry_host());
    let code = format!("ImageUri={uri}");
    for (region, memory) in [(US, "256"), (EU, "512")] {
        let created = s.aws(
            region,
            &[
                "lambda",
                "create-function",
                "--function-name",
                "f",
                "--package-type",
                "Image",
                "--code",
                &code,
                "--role",
                ROLE,
                "--memory-size",
                memory,
            ],
        );
        assert_eq!(
            created["FunctionArn"],
            format!("arn:aws:lambda:{region}:{ACCOUNT}:function:f").as_str(),
            "{created}"
        );
    }
    for (region, memory) in [(US, 256), (EU, 512)] {
        let got = s.aws(region, &["lambda", "get-function", "--function-name", "f"]);
        let c = &got["Configuration"];
        assert_eq!(
            c["FunctionArn"],
            format!("arn:aws:lambda:{region}:{ACCOUNT}:function:f").as_str()
        );
        assert_eq!(c["MemorySize"], memory, "{region}: {c}");
        let listed = s.aws(region, &["lambda", "list-functions"]);
        assert_eq!(
            strings(&listed, "Functions", "FunctionArn"),
            [format!("arn:aws:lambda:{region}:{ACCOUNT}:function:f")],
            "{region}: {listed}"
        );
    }
    // Tags go to the function the ARN names.
    let eu_arn = format!("arn:aws:lambda:{EU}:{ACCOUNT}:function:f");
    s.aws(
        EU,
        &[
            "lambda",
            "tag-resource",
            "--resource",
            &eu_arn,
            "--tags",
            "where=eu",
        ],
    );
    let tags = s.aws(EU, &["lambda", "list-tags", "--resource", &eu_arn]);
    assert_eq!(tags["Tags"]["where"], "eu", "{tags}");
    let us_arn = format!("arn:aws:lambda:{US}:{ACCOUNT}:function:f");
    let tags = s.aws(US, &["lambda", "list-tags", "--resource", &us_arn]);
    assert!(tags["Tags"].get("where").is_none(), "{tags}");

    // Deleting one leaves the other.
    s.aws(EU, &["lambda", "delete-function", "--function-name", "f"]);
    let err = aws_err(
        &s.server,
        EU,
        &["lambda", "get-function", "--function-name", "f"],
    );
    assert!(err.contains("ResourceNotFoundException"), "{err}");
    let got = s.aws(US, &["lambda", "get-function", "--function-name", "f"]);
    assert_eq!(got["Configuration"]["FunctionArn"], us_arn.as_str());
}

#[test]
fn a_12_digit_access_key_works_in_its_own_account() {
    let s = Stratus::start();
    s.aws(
        US,
        &["ecr", "create-repository", "--repository-name", "img"],
    );
    s.push_image("img", "latest");
    let code = format!("ImageUri={}/img:latest", s.server.registry_host());
    s.aws(
        US,
        &[
            "lambda",
            "create-function",
            "--function-name",
            "f",
            "--package-type",
            "Image",
            "--code",
            &code,
            "--role",
            ROLE,
        ],
    );

    let me = s.aws_other(US, &["sts", "get-caller-identity"]);
    assert_eq!(me["Account"], OTHER_ACCOUNT, "{me}");
    // None of the default account's resources are visible.
    let listed = s.aws_other(US, &["lambda", "list-functions"]);
    assert_eq!(listed["Functions"], serde_json::json!([]), "{listed}");
    let listed = s.aws_other(US, &["ecr", "describe-repositories"]);
    assert_eq!(listed["repositories"], serde_json::json!([]), "{listed}");
    let out = aws_with_credentials(
        &s.server,
        US,
        OTHER_ACCOUNT,
        "secret",
        &["lambda", "get-function", "--function-name", "f"],
    );
    let err = out
        .assert_failure("get-function in another account")
        .stderr_str();
    assert!(err.contains("ResourceNotFoundException"), "{err}");

    // The same names are free there, and carry that account.
    let repo = &s.aws_other(
        US,
        &["ecr", "create-repository", "--repository-name", "img"],
    )["repository"];
    assert_eq!(repo["registryId"], OTHER_ACCOUNT, "{repo}");
    assert_eq!(
        repo["repositoryArn"],
        format!("arn:aws:ecr:{US}:{OTHER_ACCOUNT}:repository/img").as_str()
    );
    // The default account still sees only its own.
    let listed = s.aws(US, &["ecr", "describe-repositories"]);
    assert_eq!(
        strings(&listed, "repositories", "registryId"),
        [ACCOUNT],
        "{listed}"
    );
}
