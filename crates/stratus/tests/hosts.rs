//! AWS host names in `Host`, sent to the edge port over raw HTTP (no
//! `/etc/hosts` entries: the connection goes to 127.0.0.1, the `Host`
//! header names the AWS endpoint), and `--url-style`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use test_support::{aws_json, TestServer};

const ACCOUNT: &str = "000000000000";
const ECR_TARGET: &str = "AmazonEC2ContainerRegistry_V20150921.";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn start(args: &[&str]) -> (TestServer, tempfile::TempDir) {
    let data = tempfile::TempDir::with_prefix("stratus-hosts-").expect("data dir");
    let server =
        TestServer::start_with(Path::new(env!("CARGO_BIN_EXE_stratus")), data.path(), args);
    (server, data)
}

/// A response read off a raw HTTP/1.1 connection.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// Sends one request to the server's port with `Host: host` and the
/// given extra headers; reads the whole response (`Connection: close`).
#[track_caller]
fn send(
    server: &TestServer,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Raw {
    let mut stream = TcpStream::connect(server.addr()).expect("connect to stratus");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set timeout");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {text:?}"));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Raw {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// An unverified SigV4 header whose scope names `region` and `service`.
fn scope(region: &str, service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=test/20250101/{region}/{service}/aws4_request, \
         SignedHeaders=host, Signature={}",
        "0".repeat(64)
    )
}

/// An empty OCI index, made distinct by an annotation: a manifest that
/// needs no blobs.
fn index(label: &str) -> String {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [],
        "annotations": {"label": label},
    })
    .to_string()
}

fn create_repository(server: &TestServer, region: &str, name: &str) -> Value {
    aws_json(
        server,
        region,
        &["ecr", "create-repository", "--repository-name", name],
    )["repository"]
        .clone()
}

#[test]
fn gateway_and_function_url_hosts_answer_like_aws_for_unknown_ids() {
    let (server, _data) = start(&[]);
    for (host, path) in [
        ("abc123.execute-api.us-east-1.amazonaws.com", "/prod/hello"),
        ("abc123.execute-api.us-east-1.amazonaws.com:4566", "/"),
        ("abc123.execute-api.localhost", "/prod/v2/x"),
        // Paths other surfaces own are the API's on its host.
        ("abc123.execute-api.eu-west-1.amazonaws.com", "/v2/"),
        (
            "abc123.execute-api.eu-west-1.amazonaws.com",
            "/2015-03-31/functions",
        ),
    ] {
        let r = send(&server, "GET", host, path, &[], "");
        assert_eq!(r.status, 403, "{host}{path}: {r:?}");
        assert_eq!(r.json(), json!({"message": "Forbidden"}), "{host}{path}");
        assert_eq!(r.header("x-amzn-errortype"), Some("ForbiddenException"));
    }
    for (method, host) in [
        ("GET", "a1b2c3d4.lambda-url.us-east-1.on.aws"),
        ("POST", "a1b2c3d4.lambda-url.eu-west-1.localhost:4566"),
    ] {
        let r = send(&server, method, host, "/", &[], "{}");
        assert_eq!(r.status, 403, "{host}: {r:?}");
        assert_eq!(r.json(), json!({"Message": "Forbidden"}), "{host}");
    }
    // The plain host keeps its routing.
    let r = send(&server, "GET", "127.0.0.1", "/_stratus/health", &[], "");
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn an_ecr_host_pins_the_registry_region_and_account() {
    let (server, _data) = start(&[]);
    create_repository(&server, "eu-west-1", "app");
    create_repository(&server, "us-east-1", "app");
    create_repository(&server, "us-east-1", "only-us");
    let eu = format!("{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com");
    let us = format!(
        "{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com:{}",
        server.port()
    );

    // A push through each host lands in that region's repository.
    for (host, tag) in [(&eu, "eu"), (&us, "us")] {
        let r = send(
            &server,
            "PUT",
            host,
            &format!("/v2/app/manifests/{tag}"),
            &[("Content-Type", OCI_INDEX)],
            &index(tag),
        );
        assert_eq!(r.status, 201, "push via {host}: {r:?}");
    }
    for (host, tag) in [(&eu, "eu"), (&us, "us")] {
        let r = send(&server, "GET", host, "/v2/app/tags/list", &[], "");
        assert_eq!(r.status, 200, "{host}: {r:?}");
        assert_eq!(r.json()["tags"], json!([tag]), "{host}");
    }
    for (region, tag) in [("eu-west-1", "eu"), ("us-east-1", "us")] {
        let images = aws_json(
            &server,
            region,
            &["ecr", "list-images", "--repository-name", "app"],
        );
        let tags: Vec<&str> = images["imageIds"]
            .as_array()
            .map(|ids| ids.iter().filter_map(|i| i["imageTag"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(tags, [tag], "{region}: {images}");
    }

    // Only that region: a repository elsewhere is unknown there.
    let r = send(&server, "GET", &eu, "/v2/only-us/tags/list", &[], "");
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.json()["errors"][0]["code"], "NAME_UNKNOWN", "{r:?}");
    // Another account's registry holds none of these.
    let other = "111111111111.dkr.ecr.eu-west-1.amazonaws.com";
    let r = send(&server, "GET", other, "/v2/app/tags/list", &[], "");
    assert_eq!(r.status, 404, "{r:?}");
}

#[test]
fn with_auth_on_a_token_of_another_account_is_denied_on_an_ecr_host() {
    let (server, _data) = start(&["--credentials", "111111111111:secret"]);
    let out = test_support::aws_with_credentials(
        &server,
        "eu-west-1",
        "111111111111",
        "secret",
        &["ecr", "get-login-password"],
    );
    assert!(out.status.success(), "{out:?}");
    let password = String::from_utf8_lossy(&out.stdout).trim().to_string();
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("AWS:{password}"))
    );
    let own = "111111111111.dkr.ecr.eu-west-1.amazonaws.com";
    let r = send(
        &server,
        "GET",
        own,
        "/v2/",
        &[("Authorization", &basic)],
        "",
    );
    assert_eq!(r.status, 200, "{r:?}");
    let foreign = format!("{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com");
    let r = send(
        &server,
        "GET",
        &foreign,
        "/v2/",
        &[("Authorization", &basic)],
        "",
    );
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json()["errors"][0]["code"], "DENIED", "{r:?}");
}

#[test]
fn unsigned_calls_take_service_and_region_from_an_api_host_signed_ones_from_the_scope() {
    let (server, _data) = start(&[]);
    create_repository(&server, "eu-west-1", "in-eu");
    create_repository(&server, "us-east-1", "in-us");
    let describe = |host: &str, auth: Option<String>| {
        let target = format!("{ECR_TARGET}DescribeRepositories");
        let mut headers = vec![
            ("X-Amz-Target", target.as_str()),
            ("Content-Type", "application/x-amz-json-1.1"),
        ];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        let r = send(&server, "POST", host, "/", &headers, "{}");
        assert_eq!(r.status, 200, "{host}: {r:?}");
        let names: Vec<String> = r.json()["repositories"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["repositoryName"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        names
    };
    assert_eq!(describe("api.ecr.eu-west-1.amazonaws.com", None), ["in-eu"]);
    assert_eq!(describe("ecr.us-east-1.amazonaws.com:443", None), ["in-us"]);
    // The scope wins over the host.
    assert_eq!(
        describe(
            "api.ecr.eu-west-1.amazonaws.com",
            Some(scope("us-east-1", "ecr"))
        ),
        ["in-us"]
    );

    // Lambda by host, unsigned: the region is the host's.
    let r = send(
        &server,
        "GET",
        "lambda.eu-west-1.amazonaws.com",
        "/2015-03-31/functions/nothing-here",
        &[],
        "",
    );
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("ResourceNotFoundException")
    );
    assert!(
        r.body.contains(":eu-west-1:"),
        "the message names the function's ARN in eu-west-1: {r:?}"
    );

    // STS on its global endpoint, unsigned.
    let r = send(
        &server,
        "POST",
        "sts.amazonaws.com",
        "/",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "Action=GetCallerIdentity&Version=2011-06-15",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.body.contains(&format!("<Account>{ACCOUNT}</Account>")),
        "{r:?}"
    );

    // A service Stratus does not serve, by host: an AWS-shaped 4xx.
    let r = send(&server, "GET", "s3.us-east-1.amazonaws.com", "/", &[], "");
    assert!((400..500).contains(&r.status), "{r:?}");
}

#[test]
fn url_style_chooses_the_form_of_returned_urls() {
    let (local, _d1) = start(&[]);
    let repo = create_repository(&local, "eu-west-1", "team/app");
    assert_eq!(
        repo["repositoryUri"],
        json!(format!("localhost:{}/team/app", local.port()))
    );
    let token = aws_json(&local, "eu-west-1", &["ecr", "get-authorization-token"]);
    assert_eq!(
        token["authorizationData"][0]["proxyEndpoint"],
        json!(format!("http://localhost:{}", local.port()))
    );

    let (aws_style, _d2) = start(&["--url-style", "aws"]);
    let port = aws_style.port();
    let repo = create_repository(&aws_style, "eu-west-1", "team/app");
    let host = format!("{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com:{port}");
    assert_eq!(repo["repositoryUri"], json!(format!("{host}/team/app")));
    let token = aws_json(&aws_style, "eu-west-1", &["ecr", "get-authorization-token"]);
    assert_eq!(
        token["authorizationData"][0]["proxyEndpoint"],
        json!(format!("http://{host}"))
    );
    // The URI handed out addresses that repository when used as Host.
    let r = send(&aws_style, "GET", &host, "/v2/team/app/tags/list", &[], "");
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn a_bad_url_style_is_refused_at_startup() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(["serve", "--listen", "127.0.0.1:0", "--url-style", "dns"])
        .output()
        .expect("run stratus");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("url style") || stderr.contains("url-style"),
        "{stderr}"
    );
}
