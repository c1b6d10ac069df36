//! The ECR control API, driven through the real `stratus` binary with the
//! real aws CLI (and raw HTTP where the CLI cannot say what we need).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{json, Value};
use test_support::{aws_err, aws_json, sha256_digest, TestServer};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "000000000000";
const TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921.";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const NAME_PATTERN_MESSAGE: &str = r"Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*''";

fn start() -> TestServer {
    TestServer::start(Path::new(env!("CARGO_BIN_EXE_stratus")))
}

fn ecr(server: &TestServer, args: &[&str]) -> Value {
    let mut all = vec!["ecr"];
    all.extend_from_slice(args);
    aws_json(server, REGION, &all)
}

fn ecr_err(server: &TestServer, args: &[&str]) -> String {
    let mut all = vec!["ecr"];
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

fn create(server: &TestServer, name: &str) -> Value {
    ecr(server, &["create-repository", "--repository-name", name])["repository"].clone()
}

/// An OCI image index with no children: a manifest that needs no blobs,
/// made distinct by an annotation.
fn index(n: u32) -> String {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [],
        "annotations": {"n": n.to_string()},
    })
    .to_string()
}

/// PutImage; returns the image digest.
fn put(server: &TestServer, repo: &str, manifest: &str, tag: Option<&str>) -> String {
    let mut args = vec![
        "put-image",
        "--repository-name",
        repo,
        "--image-manifest",
        manifest,
    ];
    if let Some(tag) = tag {
        args.extend_from_slice(&["--image-tag", tag]);
    }
    let out = ecr(server, &args);
    let digest = out["image"]["imageId"]["imageDigest"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(digest, sha256_digest(manifest.as_bytes()), "{out}");
    digest
}

fn image_ids(value: &Value) -> Vec<(String, Option<String>)> {
    let mut ids: Vec<(String, Option<String>)> = value
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|id| {
            (
                id["imageDigest"].as_str().unwrap_or_default().to_string(),
                id["imageTag"].as_str().map(str::to_string),
            )
        })
        .collect();
    ids.sort();
    ids
}

fn names(repositories: &Value) -> Vec<String> {
    repositories
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|r| r["repositoryName"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A raw JSON 1.1 call: (status, parsed body).
fn raw_call(server: &TestServer, operation: &str, body: &str) -> (u16, Value) {
    let response = reqwest::blocking::Client::new()
        .post(server.url("/"))
        .header("X-Amz-Target", format!("{TARGET_PREFIX}{operation}"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .body(body.to_string())
        .send()
        .expect("send ECR request");
    let status = response.status().as_u16();
    let text = response.text().expect("read body");
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, value)
}

/// Pushes a blob through the registry API (`POST` an upload, `PUT` it
/// with its digest); returns the digest.
fn push_blob(server: &TestServer, repo: &str, bytes: &[u8]) -> String {
    let client = reqwest::blocking::Client::new();
    let started = client
        .post(server.url(&format!("/v2/{repo}/blobs/uploads/")))
        .send()
        .expect("start upload");
    assert_eq!(started.status().as_u16(), 202, "POST blobs/uploads/");
    let location = started
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("Location header")
        .to_string();
    let url = if location.starts_with("http") {
        location
    } else {
        server.url(&location)
    };
    let digest = sha256_digest(bytes);
    let sep = if url.contains('?') { '&' } else { '?' };
    let done = client
        .put(format!("{url}{sep}digest={digest}"))
        .header("Content-Type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .expect("finish upload");
    assert_eq!(done.status().as_u16(), 201, "PUT upload?digest=");
    digest
}

fn image_manifest(config: (&str, usize), layers: &[(&str, usize)]) -> String {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config.0,
            "size": config.1,
        },
        "layers": layers.iter().map(|(d, s)| json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": d,
            "size": s,
        })).collect::<Vec<_>>(),
    })
    .to_string()
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

// ----- repositories -------------------------------------------------------------

#[test]
fn create_describe_and_delete_repositories() {
    let server = start();
    let repo = create(&server, "team/app");
    assert_eq!(
        repo["repositoryArn"],
        json!(format!(
            "arn:aws:ecr:{REGION}:{ACCOUNT}:repository/team/app"
        ))
    );
    assert_eq!(repo["registryId"], json!(ACCOUNT));
    assert_eq!(repo["repositoryName"], json!("team/app"));
    assert_eq!(
        repo["repositoryUri"],
        json!(format!("localhost:{}/team/app", server.port()))
    );
    assert_eq!(repo["imageTagMutability"], json!("MUTABLE"));
    assert_eq!(
        repo["imageScanningConfiguration"],
        json!({"scanOnPush": false})
    );
    assert_eq!(
        repo["encryptionConfiguration"],
        json!({"encryptionType": "AES256"})
    );
    let created = repo["createdAt"].as_f64().expect("createdAt is a number");
    assert!((created - now_secs()).abs() < 120.0, "createdAt {created}");

    let err = ecr_err(
        &server,
        &["create-repository", "--repository-name", "team/app"],
    );
    assert_error(
        &err,
        "RepositoryAlreadyExistsException",
        &format!("The repository with name 'team/app' already exists in the registry with id '{ACCOUNT}'"),
    );

    for bad in [
        "Team/App", "a___b", "-ab", "ab-", "a//b", "a..b", "ab:1", "my repo",
    ] {
        // `=` keeps the CLI from reading "-ab" as an option.
        let arg = format!("--repository-name={bad}");
        let err = ecr_err(&server, &["create-repository", &arg]);
        assert_error(&err, "InvalidParameterException", NAME_PATTERN_MESSAGE);
    }
    let long = "a".repeat(257);
    let err = ecr_err(&server, &["create-repository", "--repository-name", &long]);
    assert_error(
        &err,
        "InvalidParameterException",
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'Member must have length less than or equal to 256'",
    );

    let custom = ecr(
        &server,
        &[
            "create-repository",
            "--repository-name",
            "team/locked",
            "--image-tag-mutability",
            "IMMUTABLE",
            "--image-scanning-configuration",
            "scanOnPush=true",
            "--encryption-configuration",
            "encryptionType=KMS,kmsKey=arn:aws:kms:us-east-1:000000000000:key/k1",
            "--tags",
            "Key=team,Value=payments",
        ],
    )["repository"]
        .clone();
    assert_eq!(custom["imageTagMutability"], json!("IMMUTABLE"));
    assert_eq!(
        custom["imageScanningConfiguration"],
        json!({"scanOnPush": true})
    );
    assert_eq!(
        custom["encryptionConfiguration"],
        json!({"encryptionType": "KMS", "kmsKey": "arn:aws:kms:us-east-1:000000000000:key/k1"})
    );
    let err = ecr_err(
        &server,
        &[
            "create-repository",
            "--repository-name",
            "team/odd",
            "--image-tag-mutability",
            "SOMETIMES",
        ],
    );
    assert_error(
        &err,
        "InvalidParameterException",
        "Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member must satisfy enum value set: [MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION]'",
    );

    let described = ecr(
        &server,
        &[
            "describe-repositories",
            "--repository-names",
            "team/app",
            "team/locked",
        ],
    );
    assert_eq!(
        names(&described["repositories"]),
        ["team/app", "team/locked"]
    );
    assert_eq!(described["repositories"][0], repo);

    let err = ecr_err(
        &server,
        &[
            "describe-repositories",
            "--repository-names",
            "team/app",
            "nope",
        ],
    );
    assert_error(
        &err,
        "RepositoryNotFoundException",
        &format!(
            "The repository with name 'nope' does not exist in the registry with id '{ACCOUNT}'"
        ),
    );
    let err = ecr_err(
        &server,
        &[
            "describe-repositories",
            "--repository-names",
            "team/app",
            "--page-size",
            "5",
        ],
    );
    assert_error(
        &err,
        "InvalidParameterException",
        "maxResults cannot be used when repositoryNames is specified",
    );

    let deleted = ecr(
        &server,
        &["delete-repository", "--repository-name", "team/app"],
    );
    assert_eq!(deleted["repository"], repo);
    let err = ecr_err(
        &server,
        &["delete-repository", "--repository-name", "team/app"],
    );
    assert_error(
        &err,
        "RepositoryNotFoundException",
        "'team/app' does not exist",
    );
    let all = ecr(&server, &["describe-repositories"]);
    assert_eq!(names(&all["repositories"]), ["team/locked"]);
}

#[test]
fn describe_repositories_paginates() {
    let server = start();
    let mut expected: Vec<String> = (1..=7).map(|i| format!("repo-{i}")).collect();
    for name in &expected {
        create(&server, name);
    }
    expected.sort();

    // The CLI follows nextToken itself: 4 pages of 2.
    let all = ecr(&server, &["describe-repositories", "--page-size", "2"]);
    assert_eq!(names(&all["repositories"]), expected);
    assert!(all.get("NextToken").is_none(), "{all}");

    // --max-items stops early and hands out a token to continue from.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for round in 0..10 {
        let mut args = vec![
            "describe-repositories",
            "--max-items",
            "3",
            "--page-size",
            "2",
        ];
        if let Some(t) = &token {
            args.extend_from_slice(&["--starting-token", t]);
        }
        let page = ecr(&server, &args);
        let got = names(&page["repositories"]);
        assert!(got.len() <= 3, "round {round}: {page}");
        seen.extend(got);
        match page.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, expected);

    // Raw calls: the page size, the token, and a token that is not ours.
    let (status, first) = raw_call(&server, "DescribeRepositories", r#"{"maxResults":5}"#);
    assert_eq!(status, 200, "{first}");
    assert_eq!(names(&first["repositories"]), expected[..5]);
    let token = first["nextToken"].as_str().expect("nextToken").to_string();
    let (_, second) = raw_call(
        &server,
        "DescribeRepositories",
        &json!({"maxResults": 5, "nextToken": token}).to_string(),
    );
    assert_eq!(names(&second["repositories"]), expected[5..]);
    assert!(second.get("nextToken").is_none(), "{second}");
    let (status, err) = raw_call(
        &server,
        "DescribeRepositories",
        r#"{"nextToken":"not-a-token"}"#,
    );
    assert_eq!(
        (status, err["__type"].as_str()),
        (400, Some("InvalidParameterException"))
    );
    let (status, err) = raw_call(&server, "DescribeRepositories", r#"{"maxResults":1001}"#);
    assert_eq!(
        (status, err["__type"].as_str()),
        (400, Some("InvalidParameterException"))
    );
}

#[test]
fn repositories_are_separate_per_region() {
    let server = start();
    let east = aws_json(
        &server,
        "us-east-1",
        &["ecr", "create-repository", "--repository-name", "shared"],
    );
    let west = aws_json(
        &server,
        "eu-west-1",
        &["ecr", "create-repository", "--repository-name", "shared"],
    );
    aws_json(
        &server,
        "eu-west-1",
        &["ecr", "create-repository", "--repository-name", "west-only"],
    );
    assert_eq!(
        east["repository"]["repositoryArn"],
        json!(format!("arn:aws:ecr:us-east-1:{ACCOUNT}:repository/shared"))
    );
    assert_eq!(
        west["repository"]["repositoryArn"],
        json!(format!("arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/shared"))
    );
    let east_all = aws_json(&server, "us-east-1", &["ecr", "describe-repositories"]);
    assert_eq!(names(&east_all["repositories"]), ["shared"]);
    let west_all = aws_json(&server, "eu-west-1", &["ecr", "describe-repositories"]);
    assert_eq!(names(&west_all["repositories"]), ["shared", "west-only"]);
    let err = aws_err(
        &server,
        "us-east-1",
        &[
            "ecr",
            "describe-repositories",
            "--repository-names",
            "west-only",
        ],
    );
    assert_error(&err, "RepositoryNotFoundException", "'west-only'");
    aws_json(
        &server,
        "eu-west-1",
        &["ecr", "delete-repository", "--repository-name", "shared"],
    );
    let east_all = aws_json(&server, "us-east-1", &["ecr", "describe-repositories"]);
    assert_eq!(names(&east_all["repositories"]), ["shared"]);
}

#[test]
fn force_delete_removes_a_repository_with_images() {
    let server = start();
    create(&server, "full");
    put(&server, "full", &index(1), Some("v1"));
    let err = ecr_err(&server, &["delete-repository", "--repository-name", "full"]);
    assert_error(
        &err,
        "RepositoryNotEmptyException",
        &format!("The repository with name 'full' in registry with id '{ACCOUNT}' cannot be deleted because it still contains images"),
    );
    let deleted = ecr(
        &server,
        &["delete-repository", "--repository-name", "full", "--force"],
    );
    assert_eq!(deleted["repository"]["repositoryName"], json!("full"));
    // Gone with its images: a new repository of that name starts empty.
    create(&server, "full");
    let listed = ecr(&server, &["list-images", "--repository-name", "full"]);
    assert_eq!(listed["imageIds"], json!([]));
}

// ----- images ---------------------------------------------------------------------

#[test]
fn put_image_with_pushed_blobs() {
    let server = start();
    create(&server, "app");
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"not really a tarball, but a blob all the same";
    let config_digest = push_blob(&server, "app", config);
    let layer_digest = push_blob(&server, "app", layer);
    let manifest = image_manifest(
        (&config_digest, config.len()),
        &[(&layer_digest, layer.len())],
    );

    let out = ecr(
        &server,
        &[
            "put-image",
            "--repository-name",
            "app",
            "--image-tag",
            "v1",
            "--image-manifest",
            &manifest,
        ],
    );
    let digest = sha256_digest(manifest.as_bytes());
    assert_eq!(
        out,
        json!({"image": {
            "registryId": ACCOUNT,
            "repositoryName": "app",
            "imageId": {"imageDigest": digest, "imageTag": "v1"},
            "imageManifest": manifest,
            "imageManifestMediaType": OCI_MANIFEST,
        }})
    );
    let err = ecr_err(
        &server,
        &[
            "put-image",
            "--repository-name",
            "app",
            "--image-tag",
            "v1",
            "--image-manifest",
            &manifest,
        ],
    );
    assert_error(
        &err,
        "ImageAlreadyExistsException",
        &format!("Image with digest '{digest}' and tag 'v1' already exists in the repository with name 'app' in registry with id '{ACCOUNT}'"),
    );
    // The same manifest under a second tag, with its digest given.
    put_with_digest(&server, "app", &manifest, "v2", &digest);

    let details = ecr(&server, &["describe-images", "--repository-name", "app"]);
    let detail = &details["imageDetails"][0];
    assert_eq!(details["imageDetails"].as_array().map(Vec::len), Some(1));
    assert_eq!(detail["imageDigest"], json!(digest));
    assert_eq!(detail["imageTags"], json!(["v1", "v2"]));
    assert_eq!(detail["imageSizeInBytes"], json!(layer.len()));
    assert_eq!(detail["imageManifestMediaType"], json!(OCI_MANIFEST));
    assert_eq!(
        detail["artifactMediaType"],
        json!("application/vnd.oci.image.config.v1+json")
    );
    let pushed = detail["imagePushedAt"].as_f64().expect("imagePushedAt");
    assert!(
        (pushed - now_secs()).abs() < 120.0,
        "imagePushedAt {pushed}"
    );
    assert!(detail.get("lastRecordedPullTime").is_none(), "{detail}");

    // BatchGetImage hands back the exact bytes and records the pull.
    let got = ecr(
        &server,
        &[
            "batch-get-image",
            "--repository-name",
            "app",
            "--image-ids",
            "imageTag=v1",
        ],
    );
    assert_eq!(got["images"][0]["imageManifest"], json!(manifest));
    assert_eq!(got["failures"], json!([]));
    let details = ecr(&server, &["describe-images", "--repository-name", "app"]);
    assert!(
        details["imageDetails"][0]["lastRecordedPullTime"].is_f64(),
        "{details}"
    );

    let layers = ecr(
        &server,
        &[
            "batch-check-layer-availability",
            "--repository-name",
            "app",
            "--layer-digests",
            &layer_digest,
            &sha256_digest(b"absent"),
            "not-a-digest",
        ],
    );
    assert_eq!(
        layers["layers"],
        json!([
            {"layerDigest": layer_digest, "layerAvailability": "AVAILABLE", "layerSize": layer.len()},
            {"layerDigest": sha256_digest(b"absent"), "layerAvailability": "UNAVAILABLE"},
        ])
    );
    assert_eq!(
        layers["failures"][0]["failureCode"],
        json!("InvalidLayerDigest")
    );

    // A manifest naming a blob that was never pushed.
    let missing = sha256_digest(b"never pushed");
    let orphan = image_manifest((&config_digest, config.len()), &[(&missing, 12)]);
    let err = ecr_err(
        &server,
        &[
            "put-image",
            "--repository-name",
            "app",
            "--image-tag",
            "v3",
            "--image-manifest",
            &orphan,
        ],
    );
    assert_error(&err, "LayersNotFoundException", &missing);

    // A digest that is not the manifest's.
    let err = ecr_err(
        &server,
        &[
            "put-image",
            "--repository-name",
            "app",
            "--image-manifest",
            &image_manifest((&config_digest, config.len()), &[]),
            "--image-digest",
            &sha256_digest(b"something else"),
        ],
    );
    assert_error(
        &err,
        "ImageDigestDoesNotMatchException",
        &sha256_digest(b"something else"),
    );

    // An index over the image, and one over an image that is not there.
    let list = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest, "size": manifest.len()}],
    })
    .to_string();
    let list_digest = put(&server, "app", &list, Some("multi"));
    let dangling = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": missing, "size": 10}],
    })
    .to_string();
    let err = ecr_err(
        &server,
        &[
            "put-image",
            "--repository-name",
            "app",
            "--image-tag",
            "bad",
            "--image-manifest",
            &dangling,
        ],
    );
    assert_error(&err, "ReferencedImagesNotFoundException", &missing);

    // The index's child cannot go while the index is there.
    let deleted = ecr(
        &server,
        &[
            "batch-delete-image",
            "--repository-name",
            "app",
            "--image-ids",
            &format!("imageDigest={digest}"),
        ],
    );
    assert_eq!(deleted["imageIds"], json!([]));
    assert_eq!(
        deleted["failures"][0]["failureCode"],
        json!("ImageReferencedByManifestList")
    );
    // Both in one request: the index goes first, then the child.
    let deleted = ecr(
        &server,
        &[
            "batch-delete-image",
            "--repository-name",
            "app",
            "--image-ids",
            &format!("imageDigest={digest}"),
            &format!("imageDigest={list_digest}"),
        ],
    );
    assert_eq!(deleted["failures"], json!([]), "{deleted}");
    let mut want = vec![
        (digest.clone(), Some("v1".to_string())),
        (digest.clone(), Some("v2".to_string())),
        (list_digest.clone(), Some("multi".to_string())),
    ];
    want.sort();
    assert_eq!(image_ids(&deleted["imageIds"]), want);
}

fn put_with_digest(server: &TestServer, repo: &str, manifest: &str, tag: &str, digest: &str) {
    let out = ecr(
        server,
        &[
            "put-image",
            "--repository-name",
            repo,
            "--image-tag",
            tag,
            "--image-manifest",
            manifest,
            "--image-digest",
            digest,
        ],
    );
    assert_eq!(
        out["image"]["imageId"],
        json!({"imageDigest": digest, "imageTag": tag})
    );
}

#[test]
fn list_describe_get_and_delete_images() {
    let server = start();
    create(&server, "imgs");
    // a: tags v1, latest; b: tag v2; c: untagged; d: untagged (tag moved away).
    let a = put(&server, "imgs", &index(1), Some("v1"));
    put(&server, "imgs", &index(1), Some("latest"));
    let b = put(&server, "imgs", &index(2), Some("v2"));
    let c = put(&server, "imgs", &index(3), None);
    let d = put(&server, "imgs", &index(4), Some("moving"));
    let e = put(&server, "imgs", &index(5), Some("moving"));

    let all = ecr(&server, &["list-images", "--repository-name", "imgs"]);
    let mut expected = vec![
        (a.clone(), Some("latest".to_string())),
        (a.clone(), Some("v1".to_string())),
        (b.clone(), Some("v2".to_string())),
        (c.clone(), None),
        (d.clone(), None),
        (e.clone(), Some("moving".to_string())),
    ];
    expected.sort();
    assert_eq!(image_ids(&all["imageIds"]), expected);

    let tagged = ecr(
        &server,
        &[
            "list-images",
            "--repository-name",
            "imgs",
            "--filter",
            "tagStatus=TAGGED",
        ],
    );
    assert_eq!(image_ids(&tagged["imageIds"]).len(), 4);
    let untagged = ecr(
        &server,
        &[
            "list-images",
            "--repository-name",
            "imgs",
            "--filter",
            "tagStatus=UNTAGGED",
        ],
    );
    let mut want = vec![(c.clone(), None), (d.clone(), None)];
    want.sort();
    assert_eq!(image_ids(&untagged["imageIds"]), want);

    // Pages of one entry: an image with two tags spans two pages.
    let paged = ecr(
        &server,
        &[
            "list-images",
            "--repository-name",
            "imgs",
            "--page-size",
            "1",
        ],
    );
    assert_eq!(image_ids(&paged["imageIds"]), expected);
    let mut collected = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let mut args = vec![
            "list-images",
            "--repository-name",
            "imgs",
            "--max-items",
            "4",
            "--page-size",
            "3",
        ];
        if let Some(t) = &token {
            args.extend_from_slice(&["--starting-token", t]);
        }
        let page = ecr(&server, &args);
        collected.extend(image_ids(&page["imageIds"]));
        match page.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    collected.sort();
    assert_eq!(collected, expected);

    // DescribeImages: one detail per image, by id or all of them.
    let details = ecr(&server, &["describe-images", "--repository-name", "imgs"]);
    assert_eq!(details["imageDetails"].as_array().map(Vec::len), Some(5));
    let by_tag = ecr(
        &server,
        &[
            "describe-images",
            "--repository-name",
            "imgs",
            "--image-ids",
            "imageTag=latest",
        ],
    );
    assert_eq!(by_tag["imageDetails"][0]["imageDigest"], json!(a));
    assert_eq!(
        by_tag["imageDetails"][0]["imageTags"],
        json!(["latest", "v1"])
    );
    assert_eq!(
        by_tag["imageDetails"][0]["imageManifestMediaType"],
        json!(OCI_INDEX)
    );
    let untagged_detail = ecr(
        &server,
        &[
            "describe-images",
            "--repository-name",
            "imgs",
            "--image-ids",
            &format!("imageDigest={c}"),
        ],
    );
    assert!(untagged_detail["imageDetails"][0]
        .get("imageTags")
        .is_none());
    let paged = ecr(
        &server,
        &[
            "describe-images",
            "--repository-name",
            "imgs",
            "--page-size",
            "2",
        ],
    );
    assert_eq!(paged["imageDetails"].as_array().map(Vec::len), Some(5));
    let err = ecr_err(
        &server,
        &[
            "describe-images",
            "--repository-name",
            "imgs",
            "--image-ids",
            "imageTag=nope",
        ],
    );
    assert_error(
        &err,
        "ImageNotFoundException",
        &format!("The image with imageId {{imageDigest:'null', imageTag:'nope'}} does not exist within the repository with name 'imgs' in the registry with id '{ACCOUNT}'"),
    );
    let err = ecr_err(&server, &["describe-images", "--repository-name", "nope"]);
    assert_error(&err, "RepositoryNotFoundException", "'nope'");

    // BatchGetImage: by digest once per tag; failures, not exceptions.
    let got = ecr(
        &server,
        &[
            "batch-get-image",
            "--repository-name",
            "imgs",
            "--image-ids",
            &format!("imageDigest={a}"),
            "imageTag=nope",
            "imageDigest=invalid_digest",
            &format!("imageTag=v2,imageDigest={a}"),
            &format!("imageTag=nope,imageDigest={a}"),
        ],
    );
    let returned: Vec<Value> = got["images"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|i| i["imageId"].clone())
        .collect();
    assert_eq!(
        image_ids(&Value::Array(returned)),
        vec![
            (a.clone(), Some("latest".to_string())),
            (a.clone(), Some("v1".to_string()))
        ]
    );
    assert_eq!(got["images"][0]["imageManifest"], json!(index(1)));
    assert_eq!(
        got["failures"],
        json!([
            {"imageId": {"imageTag": "nope"}, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"},
            {"imageId": {"imageDigest": "invalid_digest"}, "failureCode": "InvalidImageDigest",
             "failureReason": "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'"},
            {"imageId": {"imageDigest": a, "imageTag": "v2"}, "failureCode": "ImageTagDoesNotMatchDigest",
             "failureReason": "Invalid request parameters: given tag does not map to the given digest"},
            {"imageId": {"imageDigest": a, "imageTag": "nope"}, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"},
        ])
    );
    let (_, raw) = raw_call(
        &server,
        "BatchGetImage",
        r#"{"repositoryName":"imgs","imageIds":[{}]}"#,
    );
    assert_eq!(
        raw["failures"],
        json!([{"imageId": {}, "failureCode": "MissingDigestAndTag",
                "failureReason": "Invalid request parameters: both tag and digest cannot be null"}])
    );
    let filtered = ecr(
        &server,
        &[
            "batch-get-image",
            "--repository-name",
            "imgs",
            "--image-ids",
            "imageTag=v2",
            "--accepted-media-types",
            OCI_MANIFEST,
        ],
    );
    assert_eq!(filtered["images"], json!([]));
    assert_eq!(
        filtered["failures"][0]["imageId"],
        json!({"imageTag": "v2"})
    );

    // BatchDeleteImage by tag: the image stays while it has another tag.
    let deleted = ecr(
        &server,
        &[
            "batch-delete-image",
            "--repository-name",
            "imgs",
            "--image-ids",
            "imageTag=v1",
        ],
    );
    assert_eq!(
        deleted,
        json!({"imageIds": [{"imageDigest": a, "imageTag": "v1"}], "failures": []})
    );
    // ...and goes with its last one.
    ecr(
        &server,
        &[
            "batch-delete-image",
            "--repository-name",
            "imgs",
            "--image-ids",
            "imageTag=latest",
        ],
    );
    let err = ecr_err(
        &server,
        &[
            "describe-images",
            "--repository-name",
            "imgs",
            "--image-ids",
            &format!("imageDigest={a}"),
        ],
    );
    assert_error(&err, "ImageNotFoundException", &a);
    // By digest, with the same image also named by tag: deleted once.
    let deleted = ecr(
        &server,
        &[
            "batch-delete-image",
            "--repository-name",
            "imgs",
            "--image-ids",
            &format!("imageDigest={b}"),
            "imageTag=v2",
            &format!("imageDigest={c}"),
            "imageTag=gone",
        ],
    );
    assert_eq!(image_ids(&deleted["imageIds"]), {
        let mut v = vec![(b.clone(), Some("v2".to_string())), (c.clone(), None)];
        v.sort();
        v
    });
    assert_eq!(
        deleted["failures"],
        json!([{"imageId": {"imageTag": "gone"}, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"}])
    );
    let left = ecr(&server, &["list-images", "--repository-name", "imgs"]);
    let mut want = vec![(d.clone(), None), (e.clone(), Some("moving".to_string()))];
    want.sort();
    assert_eq!(image_ids(&left["imageIds"]), want);
}

#[test]
fn immutable_repositories_refuse_to_move_tags() {
    let server = start();
    ecr(
        &server,
        &[
            "create-repository",
            "--repository-name",
            "locked",
            "--image-tag-mutability",
            "IMMUTABLE",
        ],
    );
    let first = put(&server, "locked", &index(1), Some("v1"));
    let err = ecr_err(
        &server,
        &[
            "put-image",
            "--repository-name",
            "locked",
            "--image-tag",
            "v1",
            "--image-manifest",
            &index(2),
        ],
    );
    assert_error(
        &err,
        "ImageTagAlreadyExistsException",
        "The image tag 'v1' already exists in the 'locked' repository and cannot be overwritten because the repository is immutable.",
    );
    let err = ecr_err(
        &server,
        &[
            "put-image",
            "--repository-name",
            "locked",
            "--image-tag",
            "v1",
            "--image-manifest",
            &index(1),
        ],
    );
    assert_error(&err, "ImageAlreadyExistsException", &first);
    // New tags are fine, also on an existing image.
    put(&server, "locked", &index(1), Some("v1.0"));
    put(&server, "locked", &index(2), Some("v2"));

    let out = ecr(
        &server,
        &[
            "put-image-tag-mutability",
            "--repository-name",
            "locked",
            "--image-tag-mutability",
            "MUTABLE",
        ],
    );
    assert_eq!(
        out,
        json!({"registryId": ACCOUNT, "repositoryName": "locked", "imageTagMutability": "MUTABLE"})
    );
    let moved = put(&server, "locked", &index(2), Some("v1"));
    let got = ecr(
        &server,
        &[
            "batch-get-image",
            "--repository-name",
            "locked",
            "--image-ids",
            "imageTag=v1",
        ],
    );
    assert_eq!(got["images"][0]["imageId"]["imageDigest"], json!(moved));
    let repo = ecr(
        &server,
        &["describe-repositories", "--repository-names", "locked"],
    );
    assert_eq!(
        repo["repositories"][0]["imageTagMutability"],
        json!("MUTABLE")
    );

    let out = ecr(
        &server,
        &[
            "put-image-tag-mutability",
            "--repository-name",
            "locked",
            "--image-tag-mutability",
            "IMMUTABLE_WITH_EXCLUSION",
            "--image-tag-mutability-exclusion-filters",
            "filterType=WILDCARD,filter=latest*",
        ],
    );
    assert_eq!(
        out["imageTagMutabilityExclusionFilters"],
        json!([{"filterType": "WILDCARD", "filter": "latest*"}])
    );
    let err = ecr_err(
        &server,
        &[
            "put-image-tag-mutability",
            "--repository-name",
            "locked",
            "--image-tag-mutability",
            "IMMUTABLE_WITH_EXCLUSION",
        ],
    );
    assert_error(
        &err,
        "InvalidParameterException",
        "imageTagMutabilityExclusionFilters",
    );
}

// ----- logins, policies, tags ---------------------------------------------------------

#[test]
fn login_password_and_authorization_token() {
    let server = start();
    let out = test_support::aws(&server, REGION, &["ecr", "get-login-password"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let password = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!password.is_empty());
    assert!(!password.contains(':'), "{password}");

    let data = ecr(&server, &["get-authorization-token"])["authorizationData"].clone();
    assert_eq!(data.as_array().map(Vec::len), Some(1));
    let token = data[0]["authorizationToken"].as_str().expect("token");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .expect("token is base64");
    let decoded = String::from_utf8(decoded).expect("token is UTF-8");
    let (user, token_password) = decoded.split_once(':').expect("user:password");
    assert_eq!(user, "AWS");
    assert!(!token_password.contains(':'));
    // Both are registry tokens of the same shape: claims "." signature.
    assert_eq!(token_password.matches('.').count(), 1, "{token_password}");
    assert_eq!(password.matches('.').count(), 1, "{password}");
    assert_eq!(
        data[0]["proxyEndpoint"],
        json!(format!("http://localhost:{}", server.port()))
    );
    let expires = data[0]["expiresAt"].as_f64().expect("expiresAt");
    let hours = (expires - now_secs()) / 3600.0;
    assert!((11.9..=12.1).contains(&hours), "expires in {hours} h");

    // The token opens the registry, as `docker login` would use it.
    let status = reqwest::blocking::Client::new()
        .get(server.url("/v2/"))
        .header("Authorization", format!("Basic {token}"))
        .send()
        .expect("GET /v2/")
        .status();
    assert_eq!(status.as_u16(), 200);
}

#[test]
fn lifecycle_policies() {
    let server = start();
    create(&server, "aging");
    let err = ecr_err(
        &server,
        &["get-lifecycle-policy", "--repository-name", "aging"],
    );
    assert_error(
        &err,
        "LifecyclePolicyNotFoundException",
        &format!("Lifecycle policy does not exist for the repository with name 'aging' in the registry with id '{ACCOUNT}'"),
    );
    let policy = json!({"rules": [
        {"rulePriority": 1, "description": "drop untagged after 7 days",
         "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
         "action": {"type": "expire"}},
        {"rulePriority": 2, "description": "keep 20 release images",
         "selection": {"tagStatus": "tagged", "tagPatternList": ["v*"], "countType": "imageCountMoreThan", "countNumber": 20},
         "action": {"type": "expire"}},
    ]})
    .to_string();
    let put = ecr(
        &server,
        &[
            "put-lifecycle-policy",
            "--repository-name",
            "aging",
            "--lifecycle-policy-text",
            &policy,
        ],
    );
    assert_eq!(
        put,
        json!({"registryId": ACCOUNT, "repositoryName": "aging", "lifecyclePolicyText": policy})
    );
    let got = ecr(
        &server,
        &["get-lifecycle-policy", "--repository-name", "aging"],
    );
    assert_eq!(got["lifecyclePolicyText"], json!(policy));

    let bad = json!({"rules": [
        {"rulePriority": 1, "description": "a rule without an action is not a rule at all, however long it is",
         "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}},
    ]})
    .to_string();
    let err = ecr_err(
        &server,
        &[
            "put-lifecycle-policy",
            "--repository-name",
            "aging",
            "--lifecycle-policy-text",
            &bad,
        ],
    );
    assert_error(
        &err,
        "InvalidParameterException",
        r#"Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: object has missing required properties (["action"])'"#,
    );
    let not_json = format!("{{{}", "x".repeat(120));
    let err = ecr_err(
        &server,
        &[
            "put-lifecycle-policy",
            "--repository-name",
            "aging",
            "--lifecycle-policy-text",
            &not_json,
        ],
    );
    assert_error(
        &err,
        "InvalidParameterException",
        "Could not map policyString into LifecyclePolicy.",
    );

    let deleted = ecr(
        &server,
        &["delete-lifecycle-policy", "--repository-name", "aging"],
    );
    assert_eq!(deleted["lifecyclePolicyText"], json!(policy));
    let err = ecr_err(
        &server,
        &["delete-lifecycle-policy", "--repository-name", "aging"],
    );
    assert_error(&err, "LifecyclePolicyNotFoundException", "'aging'");
    let err = ecr_err(
        &server,
        &["get-lifecycle-policy", "--repository-name", "nope"],
    );
    assert_error(&err, "RepositoryNotFoundException", "'nope'");
}

#[test]
fn repository_policies_tags_and_settings() {
    let server = start();
    let repo = create(&server, "tagged");
    let arn = repo["repositoryArn"].as_str().expect("arn").to_string();

    ecr(
        &server,
        &[
            "tag-resource",
            "--resource-arn",
            &arn,
            "--tags",
            "Key=team,Value=a",
            "Key=env,Value=dev",
        ],
    );
    ecr(
        &server,
        &[
            "tag-resource",
            "--resource-arn",
            &arn,
            "--tags",
            "Key=team,Value=b",
        ],
    );
    let tags = ecr(&server, &["list-tags-for-resource", "--resource-arn", &arn]);
    assert_eq!(
        tags,
        json!({"tags": [{"Key": "team", "Value": "b"}, {"Key": "env", "Value": "dev"}]})
    );
    ecr(
        &server,
        &[
            "untag-resource",
            "--resource-arn",
            &arn,
            "--tag-keys",
            "team",
        ],
    );
    let tags = ecr(&server, &["list-tags-for-resource", "--resource-arn", &arn]);
    assert_eq!(tags, json!({"tags": [{"Key": "env", "Value": "dev"}]}));
    let err = ecr_err(
        &server,
        &[
            "list-tags-for-resource",
            "--resource-arn",
            &format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/nope"),
        ],
    );
    assert_error(&err, "RepositoryNotFoundException", "'nope'");
    let err = ecr_err(
        &server,
        &["list-tags-for-resource", "--resource-arn", "not-an-arn"],
    );
    assert_error(&err, "InvalidParameterException", "resourceArn");

    let err = ecr_err(
        &server,
        &["get-repository-policy", "--repository-name", "tagged"],
    );
    assert_error(
        &err,
        "RepositoryPolicyNotFoundException",
        &format!("Repository policy does not exist for the repository with name 'tagged' in the registry with id '{ACCOUNT}'"),
    );
    let policy = json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "pull", "Effect": "Allow", "Principal": "*",
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]})
    .to_string();
    let set = ecr(
        &server,
        &[
            "set-repository-policy",
            "--repository-name",
            "tagged",
            "--policy-text",
            &policy,
        ],
    );
    assert_eq!(
        set,
        json!({"registryId": ACCOUNT, "repositoryName": "tagged", "policyText": policy})
    );
    let got = ecr(
        &server,
        &["get-repository-policy", "--repository-name", "tagged"],
    );
    assert_eq!(got["policyText"], json!(policy));
    let err = ecr_err(
        &server,
        &[
            "set-repository-policy",
            "--repository-name",
            "tagged",
            "--policy-text",
            "{\"nope\": 1}",
        ],
    );
    assert_error(
        &err,
        "InvalidParameterException",
        "Invalid repository policy provided",
    );
    ecr(
        &server,
        &["delete-repository-policy", "--repository-name", "tagged"],
    );
    let err = ecr_err(
        &server,
        &["delete-repository-policy", "--repository-name", "tagged"],
    );
    assert_error(&err, "RepositoryPolicyNotFoundException", "'tagged'");

    let scan = ecr(
        &server,
        &[
            "put-image-scanning-configuration",
            "--repository-name",
            "tagged",
            "--image-scanning-configuration",
            "scanOnPush=true",
        ],
    );
    assert_eq!(
        scan,
        json!({"registryId": ACCOUNT, "repositoryName": "tagged", "imageScanningConfiguration": {"scanOnPush": true}})
    );
    let described = ecr(
        &server,
        &["describe-repositories", "--repository-names", "tagged"],
    );
    assert_eq!(
        described["repositories"][0]["imageScanningConfiguration"],
        json!({"scanOnPush": true})
    );
    let registry = ecr(&server, &["describe-registry"]);
    assert_eq!(
        registry,
        json!({"registryId": ACCOUNT, "replicationConfiguration": {"rules": []}})
    );
}

// ----- the wire -------------------------------------------------------------------

#[test]
fn malformed_requests_get_aws_errors() {
    let server = start();
    let (status, body) = raw_call(&server, "CreateRepository", "{not json");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["__type"], json!("SerializationException"));

    for wrong in [
        r#"{"repositoryName": 5}"#,
        r#"{"repositoryName": ["x"]}"#,
        r#"{"repositoryName": "ok", "tags": {"Key": "a"}}"#,
        "[]",
    ] {
        let (status, body) = raw_call(&server, "CreateRepository", wrong);
        assert_eq!(status, 400, "{wrong}: {body}");
        assert_eq!(body["__type"], json!("SerializationException"), "{wrong}");
    }
    let (status, body) = raw_call(
        &server,
        "DeleteRepository",
        r#"{"repositoryName": "x", "force": "yes"}"#,
    );
    assert_eq!(
        (status, body["__type"].clone()),
        (400, json!("SerializationException"))
    );

    let (status, body) = raw_call(&server, "CreateRepository", "{}");
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"__type": "InvalidParameterException",
               "message": "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'Member must not be null'"})
    );
    let (status, body) = raw_call(
        &server,
        "BatchGetImage",
        r#"{"repositoryName": "xy", "imageIds": []}"#,
    );
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        json!("Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must have length greater than or equal to 1'")
    );
    let (status, body) = raw_call(&server, "DescribeRepositories", r#"{"registryId": "123"}"#);
    assert_eq!(
        (status, body["__type"].clone()),
        (400, json!("InvalidParameterException"))
    );

    let (status, body) = raw_call(&server, "FlyToTheMoon", "{}");
    assert_eq!(
        (status, body["__type"].clone()),
        (400, json!("UnknownOperationException"))
    );

    // Whatever the body, every operation answers with a client error or
    // success, never a server error.
    create(&server, "zz");
    let everything = json!({
        "repositoryName": "zz", "registryId": ACCOUNT,
        "imageIds": [{"imageDigest": "x"}, {}, {"imageTag": "t", "imageDigest": "sha256:00"}],
        "layerDigests": ["", "sha256:00"], "resourceArn": format!("arn:aws:ecr:{REGION}:{ACCOUNT}:repository/zz"),
        "tags": [], "tagKeys": [], "lifecyclePolicyText": "x", "policyText": "x",
        "imageManifest": "x", "imageTag": "", "nextToken": "", "maxResults": 0,
        "filter": {"tagStatus": "ANY"}, "imageTagMutability": "MUTABLE",
        "imageScanningConfiguration": {}, "acceptedMediaTypes": [],
    })
    .to_string();
    for operation in [
        "CreateRepository",
        "DescribeRepositories",
        "DeleteRepository",
        "ListImages",
        "DescribeImages",
        "BatchGetImage",
        "BatchDeleteImage",
        "PutImage",
        "BatchCheckLayerAvailability",
        "GetAuthorizationToken",
        "PutLifecyclePolicy",
        "GetLifecyclePolicy",
        "DeleteLifecyclePolicy",
        "SetRepositoryPolicy",
        "GetRepositoryPolicy",
        "DeleteRepositoryPolicy",
        "PutImageTagMutability",
        "PutImageScanningConfiguration",
        "TagResource",
        "UntagResource",
        "ListTagsForResource",
        "DescribeRegistry",
    ] {
        for body in [
            "{}",
            "{not json",
            r#"{"repositoryName": 5}"#,
            "null",
            &everything,
        ] {
            let (status, answer) = raw_call(&server, operation, body);
            assert!(status < 500, "{operation} {body}: {status} {answer}");
            if status >= 400 {
                assert!(answer["__type"].is_string(), "{operation} {body}: {answer}");
                assert!(
                    answer["message"].is_string(),
                    "{operation} {body}: {answer}"
                );
            }
        }
    }

    // An empty body is an empty input, as botocore would send `{}`.
    let (status, body) = raw_call(&server, "DescribeRepositories", "");
    assert_eq!((status, body), (200, json!({"repositories": []})));
}
