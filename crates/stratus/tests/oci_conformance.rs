//! The four workflows of the OCI distribution-spec conformance suite
//! (v1.1.1, `conformance/0[1-4]_*_test.go`): Pull, Push, Content Discovery
//! and Content Management, ported to Rust and run against the real `stratus`
//! binary with raw HTTP, followed by the bad-input checks the suite leaves
//! to a registry's own tests.
//!
//! Each workflow runs on its own server, in the suite's order (setup,
//! checks, teardown) and with the suite's test data: config blobs whose
//! descriptors carry the optional `data` field and a field no spec defines,
//! the suite's gzip'd layer, a 42-byte blob pushed as one streamed PATCH and
//! another pushed in two chunks, and the referrers artifacts (typed by their
//! config, typed by `artifactType`, an index, one whose subject is never
//! pushed). Where the suite accepts several answers, the test pins the one
//! Stratus gives and says which the suite allows.
//!
//! Every response must carry `Docker-Distribution-API-Version:
//! registry/2.0`; [`Registry::send`] checks it on each one.

use std::io::Cursor;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use reqwest::blocking::{Body, Client, RequestBuilder};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use tempfile::TempDir;
use test_support::{random_bytes, sha256_digest, TestServer};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const OCI_EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
const OCTET_STREAM: &str = "application/octet-stream";

/// The suite's layer: `test.txt` ("you bothered to find out what was in
/// here. Congratulations!") in a gzip'd tarball.
const LAYER_BASE64: &str = "H4sIAAAAAAAAA+3OQQrCMBCF4a49xXgBSUnaHMCTRBptQRNpp6i3t0UEV7oqIv7fYgbmzeJpHHSjVy0\
     WZCa1c/MufWVe94N3RWlrZ72x3k/30nhbFWKWLPU0Dhp6keJ8im//PuU/6pZH2WVtYx8b0Sz7LjWSR5VLG6YRBumSzOlGtjkd+qD\
     jMWiX07Befbs7AAAAAAAAAAAAAAAAAPyzO34MnqoAKAAA";

/// The suite's tag for the manifest pushed by tag.
const TEST_TAG: &str = "tagtest0";
/// The suite's "nonexistent manifest": not even a valid tag.
const NONEXISTENT_MANIFEST: &str = ".INVALID_MANIFEST_NAME";
const ARTIFACT_TYPE_A: &str = "application/vnd.nhl.peanut.butter.bagel";
const ARTIFACT_TYPE_B: &str = "application/vnd.nba.strawberry.jam.croissant";
const ARTIFACT_TYPE_INDEX: &str = "application/vnd.food.stand";
const ANNOTATION_KEY: &str = "org.opencontainers.conformance.test";

/// The suite's list of spec error codes (`errorCodes` in `setup.go`); its
/// error check requires the first code of a 400 to be one of them.
const SPEC_ERROR_CODES: [&str; 15] = [
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "MANIFEST_UNVERIFIED",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "TAG_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
];

// ----- test data ------------------------------------------------------------

/// Content and its digest.
#[derive(Clone)]
struct Blob {
    content: Vec<u8>,
    digest: String,
}

impl Blob {
    fn new(content: impl Into<Vec<u8>>) -> Blob {
        let content = content.into();
        let digest = sha256_digest(&content);
        Blob { content, digest }
    }

    fn json(v: &Value) -> Blob {
        Blob::new(serde_json::to_vec_pretty(v).expect("serialize test JSON"))
    }

    fn len(&self) -> usize {
        self.content.len()
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A descriptor of `blob` as `media_type`.
fn descriptor(media_type: &str, blob: &Blob) -> Value {
    json!({"mediaType": media_type, "digest": blob.digest, "size": blob.len()})
}

/// The suite's image manifest: the config descriptor carries the optional
/// `data` field (the config itself, base64) and `newUnspecifiedField`,
/// which no spec defines; every layer descriptor has that field as `null`.
fn image_manifest(config: &Blob, layers: &[&Blob], with_media_type: bool) -> Blob {
    let mut m = json!({
        "schemaVersion": 2,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": config.digest,
            "size": config.len(),
            "data": b64(&config.content),
            "newUnspecifiedField": b64(b"hello world"),
        },
        "layers": layers
            .iter()
            .map(|l| {
                let mut d = descriptor(OCI_LAYER_GZIP, l);
                d["newUnspecifiedField"] = Value::Null;
                d
            })
            .collect::<Vec<_>>(),
    });
    if with_media_type {
        m["mediaType"] = json!(OCI_MANIFEST);
    }
    Blob::json(&m)
}

/// An artifact manifest with a `subject`.
fn artifact(
    artifact_type: Option<&str>,
    config: Value,
    layers: Vec<Value>,
    subject: &Blob,
    annotation: Option<&str>,
) -> Blob {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config,
        "layers": layers,
        "subject": descriptor(OCI_MANIFEST, subject),
    });
    if let Some(t) = artifact_type {
        m["artifactType"] = json!(t);
    }
    if let Some(a) = annotation {
        m["annotations"] = json!({ ANNOTATION_KEY: a });
    }
    Blob::json(&m)
}

/// The suite's `init()`: one config and one manifest per workflow slot
/// (0 pull, 1 push, 2 and 4 discovery, 3 management).
struct Data {
    configs: Vec<Blob>,
    layer: Blob,
    manifests: Vec<Blob>,
    /// A manifest with no layers and no `mediaType` (Content-Type names it).
    empty_layer_manifest: Blob,
    /// Pushed with one streamed PATCH.
    blob_a: Blob,
    /// Pushed in two chunks.
    blob_b: Blob,
}

impl Data {
    fn new() -> Data {
        let configs: Vec<Blob> = (0..5)
            .map(|i| {
                Blob::json(&json!({
                    "author": format!("stratus-conformance-{i}"),
                    "architecture": "amd64",
                    "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": []},
                }))
            })
            .collect();
        let layer = Blob::new(
            base64::engine::general_purpose::STANDARD
                .decode(LAYER_BASE64)
                .expect("decode the suite's layer"),
        );
        let manifests = configs
            .iter()
            .map(|c| image_manifest(c, &[&layer], true))
            .collect();
        let empty_layer_manifest = image_manifest(&configs[1], &[], false);
        Data {
            configs,
            layer,
            manifests,
            empty_layer_manifest,
            blob_a: Blob::new(random_bytes(1, 42)),
            blob_b: Blob::new(random_bytes(2, 42)),
        }
    }
}

// ----- HTTP -------------------------------------------------------------------

/// A response, read whole.
struct Reply {
    what: String,
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    fn expect_status(&self, status: u16) -> &Reply {
        assert_eq!(
            self.status,
            status,
            "{} answered {} (want {status}); headers {:?}; body {}",
            self.what,
            self.status,
            self.headers,
            self.text()
        );
        self
    }

    #[track_caller]
    fn expect_header(&self, name: &str, value: &str) -> &Reply {
        assert_eq!(
            self.header(name),
            Some(value),
            "{}: header {name}; all headers {:?}",
            self.what,
            self.headers
        );
        self
    }

    #[track_caller]
    fn location(&self) -> String {
        match self.header("location") {
            Some(l) if !l.is_empty() => l.to_string(),
            _ => panic!("{}: no Location header in {:?}", self.what, self.headers),
        }
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {}", self.what, self.text()))
    }

    /// The `code` of each entry of the error envelope.
    #[track_caller]
    fn error_codes(&self) -> Vec<String> {
        let v = self.json();
        let errors = v["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no errors[] in {v}", self.what));
        assert!(!errors.is_empty(), "{}: empty errors[]", self.what);
        errors
            .iter()
            .map(|e| {
                e["code"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{}: error without a code: {e}", self.what))
                    .to_string()
            })
            .collect()
    }

    /// Asserts the status and the first error code of the envelope.
    #[track_caller]
    fn expect_error(&self, status: u16, code: &str) -> &Reply {
        self.expect_status(status);
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{}: error content type",
            self.what
        );
        let codes = self.error_codes();
        assert_eq!(codes[0], code, "{}: error codes {codes:?}", self.what);
        self
    }

    /// `tags` of a tag list.
    #[track_caller]
    fn tags(&self) -> Vec<String> {
        let v = self.json();
        v["tags"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no tags array in {v}", self.what))
            .iter()
            .map(|t| t.as_str().expect("tag is a string").to_string())
            .collect()
    }
}

/// A `stratus serve` and an HTTP client for its `/v2/` API.
struct Registry {
    server: TestServer,
    http: Client,
    /// The data dir; declared after the server so it outlives it.
    _data: TempDir,
}

impl Registry {
    /// A server that creates repositories on first push, as the suite
    /// expects of a registry it pushes to.
    fn start() -> Registry {
        Registry::start_with(&["--auto-create-repositories"])
    }

    fn start_with(args: &[&str]) -> Registry {
        let data = TempDir::with_prefix("stratus-oci-").expect("create data dir");
        let server =
            TestServer::start_with(Path::new(env!("CARGO_BIN_EXE_stratus")), data.path(), args);
        let http = Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .expect("build HTTP client");
        Registry {
            server,
            http,
            _data: data,
        }
    }

    /// A request to a path (`/v2/…`) or to a `Location` the server gave,
    /// relative or absolute, used verbatim.
    fn request(&self, method: Method, path_or_location: &str) -> RequestBuilder {
        let url = if path_or_location.starts_with('/') {
            self.server.url(path_or_location)
        } else {
            path_or_location.to_string()
        };
        self.http.request(method, url)
    }

    /// Sends, reads the whole reply and checks the API version header.
    #[track_caller]
    fn send(&self, rb: RequestBuilder) -> Reply {
        let req = rb.build().expect("build request");
        let what = format!("{} {}", req.method(), req.url());
        let resp = self
            .http
            .execute(req)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"))
            .to_vec();
        let reply = Reply {
            what,
            status,
            headers,
            body,
        };
        reply.expect_header("docker-distribution-api-version", "registry/2.0");
        reply
    }

    #[track_caller]
    fn call(&self, method: Method, path: &str) -> Reply {
        self.send(self.request(method, path))
    }

    /// `POST /v2/<name>/blobs/uploads/`: a new session, 202 with Location.
    #[track_caller]
    fn start_upload(&self, name: &str) -> Reply {
        let r = self.send(
            self.request(Method::POST, &format!("/v2/{name}/blobs/uploads/"))
                .header("content-length", "0"),
        );
        r.expect_status(202);
        let location = r.location();
        assert!(
            location.starts_with(&format!("/v2/{name}/blobs/uploads/")),
            "{}: Location {location}",
            r.what
        );
        if let Some(uuid) = r.header("docker-upload-uuid") {
            assert!(location.contains(uuid), "{location} names {uuid}");
        }
        r
    }

    /// The suite's "Populate registry with test blob": POST, then PUT the
    /// whole blob to the session with `?digest=`.
    #[track_caller]
    fn push_blob(&self, name: &str, blob: &Blob) {
        let location = self.start_upload(name).location();
        let r = self.send(
            self.request(Method::PUT, &with_digest(&location, &blob.digest))
                .header("content-type", OCTET_STREAM)
                .header("content-length", blob.len().to_string())
                .body(blob.content.clone()),
        );
        expect_blob_created(&r, name, &blob.digest);
    }

    #[track_caller]
    fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        content_type: &str,
        manifest: &Blob,
    ) -> Reply {
        self.send(
            self.request(Method::PUT, &format!("/v2/{name}/manifests/{reference}"))
                .header("content-type", content_type)
                .body(manifest.content.clone()),
        )
    }

    /// PUT that must succeed: 201 with the manifest's Location and digest.
    #[track_caller]
    fn push_manifest(
        &self,
        name: &str,
        reference: &str,
        content_type: &str,
        manifest: &Blob,
    ) -> Reply {
        let r = self.put_manifest(name, reference, content_type, manifest);
        r.expect_status(201)
            .expect_header(
                "location",
                &format!("/v2/{name}/manifests/{}", manifest.digest),
            )
            .expect_header("docker-content-digest", &manifest.digest);
        r
    }

    #[track_caller]
    fn tags(&self, name: &str, query: &str) -> Reply {
        let r = self.call(Method::GET, &format!("/v2/{name}/tags/list{query}"));
        r.expect_status(200)
            .expect_header("content-type", "application/json");
        assert_eq!(r.json()["name"], json!(name), "{}", r.what);
        r
    }

    #[track_caller]
    fn referrers(&self, name: &str, digest: &str, query: &str) -> (Reply, Vec<Value>) {
        let r = self.call(
            Method::GET,
            &format!("/v2/{name}/referrers/{digest}{query}"),
        );
        r.expect_status(200)
            .expect_header("content-type", OCI_INDEX);
        let index = r.json();
        assert_eq!(index["schemaVersion"], json!(2), "{index}");
        assert_eq!(index["mediaType"], json!(OCI_INDEX), "{index}");
        let manifests = index["manifests"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no manifests array: {index}", r.what))
            .clone();
        (r, manifests)
    }
}

/// `location` with `?digest=` (or `&digest=`) appended.
fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

#[track_caller]
fn expect_blob_created(r: &Reply, name: &str, digest: &str) {
    r.expect_status(201)
        .expect_header("location", &format!("/v2/{name}/blobs/{digest}"))
        .expect_header("docker-content-digest", digest);
}

/// GET of a blob that must be there with exactly `blob`'s bytes.
#[track_caller]
fn expect_blob(reg: &Registry, name: &str, blob: &Blob) {
    let r = reg.call(Method::GET, &format!("/v2/{name}/blobs/{}", blob.digest));
    r.expect_status(200)
        .expect_header("docker-content-digest", &blob.digest)
        .expect_header("content-length", &blob.len().to_string());
    assert!(r.body == blob.content, "{}: wrong bytes", r.what);
}

// ----- 1. Pull ------------------------------------------------------------------

#[test]
fn pull_workflow() {
    let reg = Registry::start();
    let d = Data::new();
    let name = "conformance/pull";
    let dummy = Blob::new("hello world").digest;

    // Setup: two configs and the layer by POST + PUT, manifest[0] by tag,
    // manifest[1] by digest.
    reg.push_blob(name, &d.configs[0]);
    reg.push_blob(name, &d.configs[1]);
    reg.push_blob(name, &d.layer);
    reg.push_manifest(name, TEST_TAG, OCI_MANIFEST, &d.manifests[0]);
    reg.push_manifest(name, &d.manifests[1].digest, OCI_MANIFEST, &d.manifests[1]);

    // Pull blobs.
    reg.call(Method::HEAD, &format!("/v2/{name}/blobs/{dummy}"))
        .expect_status(404);
    let r = reg.call(
        Method::HEAD,
        &format!("/v2/{name}/blobs/{}", d.configs[0].digest),
    );
    r.expect_status(200)
        .expect_header("docker-content-digest", &d.configs[0].digest)
        .expect_header("content-length", &d.configs[0].len().to_string());
    assert!(r.body.is_empty(), "HEAD has no body");
    reg.call(Method::GET, &format!("/v2/{name}/blobs/{dummy}"))
        .expect_error(404, "BLOB_UNKNOWN");
    expect_blob(&reg, name, &d.configs[0]);
    let r = reg.call(Method::GET, &format!("/v2/{name}/blobs/{}", d.layer.digest));
    r.expect_status(200)
        .expect_header("content-type", OCTET_STREAM);
    assert!(r.body == d.layer.content);

    // A Range GET of a blob (SHOULD in B.3): 206 with Content-Range.
    let len = d.layer.len();
    let r = reg.send(
        reg.request(Method::GET, &format!("/v2/{name}/blobs/{}", d.layer.digest))
            .header("range", "bytes=10-19"),
    );
    r.expect_status(206)
        .expect_header("content-range", &format!("bytes 10-19/{len}"))
        .expect_header("content-length", "10");
    assert!(r.body == d.layer.content[10..20]);
    let r = reg.send(
        reg.request(Method::GET, &format!("/v2/{name}/blobs/{}", d.layer.digest))
            .header("range", "bytes=-5"),
    );
    r.expect_status(206).expect_header(
        "content-range",
        &format!("bytes {}-{}/{len}", len - 5, len - 1),
    );
    assert!(r.body == d.layer.content[len - 5..]);

    // Pull manifests.
    reg.call(
        Method::HEAD,
        &format!("/v2/{name}/manifests/{NONEXISTENT_MANIFEST}"),
    )
    .expect_status(404);
    for (reference, m) in [
        (d.manifests[0].digest.as_str(), &d.manifests[0]),
        (d.manifests[1].digest.as_str(), &d.manifests[1]),
        (TEST_TAG, &d.manifests[0]),
    ] {
        let path = format!("/v2/{name}/manifests/{reference}");
        for method in [Method::HEAD, Method::GET] {
            let r = reg.send(
                reg.request(method.clone(), &path)
                    .header("accept", OCI_MANIFEST),
            );
            r.expect_status(200)
                .expect_header("docker-content-digest", &m.digest)
                .expect_header("content-type", OCI_MANIFEST)
                .expect_header("content-length", &m.len().to_string());
            if method == Method::GET {
                assert!(r.body == m.content, "{}: not the bytes pushed", r.what);
            } else {
                assert!(r.body.is_empty(), "{}: HEAD has no body", r.what);
            }
        }
    }
    reg.call(
        Method::GET,
        &format!("/v2/{name}/manifests/{NONEXISTENT_MANIFEST}"),
    )
    .expect_error(404, "MANIFEST_UNKNOWN");
    reg.call(Method::GET, &format!("/v2/{name}/manifests/nosuchtag"))
        .expect_error(404, "MANIFEST_UNKNOWN");
    reg.call(Method::GET, &format!("/v2/{name}/manifests/{dummy}"))
        .expect_error(404, "MANIFEST_UNKNOWN");
    // Another repository, never pushed to.
    reg.call(Method::GET, "/v2/conformance/nothing/manifests/latest")
        .expect_error(404, "NAME_UNKNOWN");
    reg.call(
        Method::GET,
        &format!("/v2/conformance/nothing/blobs/{}", d.layer.digest),
    )
    .expect_error(404, "NAME_UNKNOWN");

    // Error codes: a GET of `sha256:totallywrong` (with a body, as the
    // suite sends it) is a 404, or a 400 whose first code is a spec code.
    let r = reg.send(
        reg.request(
            Method::GET,
            &format!("/v2/{name}/manifests/sha256:totallywrong"),
        )
        .header("content-type", OCI_MANIFEST)
        .body("blablabla"),
    );
    assert!(
        r.status == 400 || r.status == 404,
        "{}: {} {}",
        r.what,
        r.status,
        r.text()
    );
    if r.status == 400 {
        let codes = r.error_codes();
        assert!(SPEC_ERROR_CODES.contains(&codes[0].as_str()), "{codes:?}");
    }
    // Stratus's answer: the digest is malformed.
    r.expect_error(400, "DIGEST_INVALID");

    // Teardown, manifests before blobs (the suite's default).
    for m in &d.manifests[..2] {
        reg.call(
            Method::DELETE,
            &format!("/v2/{name}/manifests/{}", m.digest),
        )
        .expect_status(202);
    }
    for b in [&d.configs[0], &d.configs[1], &d.layer] {
        reg.call(Method::DELETE, &format!("/v2/{name}/blobs/{}", b.digest))
            .expect_status(202);
    }
    reg.call(Method::GET, &format!("/v2/{name}/manifests/{TEST_TAG}"))
        .expect_error(404, "MANIFEST_UNKNOWN");
}

// ----- 2. Push ------------------------------------------------------------------

#[test]
fn push_workflow() {
    let reg = Registry::start();
    let d = Data::new();
    let name = "conformance/push";
    let cross = "conformance/crossmount";
    let dummy = Blob::new("hello world").digest;

    // Blob Upload Streamed: one PATCH without Content-Range (sent with
    // Transfer-Encoding: chunked, as docker does), then an empty PUT.
    let location = reg.start_upload(name).location();
    let r = reg.send(
        reg.request(Method::PATCH, &location)
            .header("content-type", OCTET_STREAM)
            .body(Body::new(Cursor::new(d.blob_a.content.clone()))),
    );
    r.expect_status(202)
        .expect_header("range", &format!("0-{}", d.blob_a.len() - 1));
    let r = reg.send(
        reg.request(Method::PUT, &with_digest(&r.location(), &d.blob_a.digest))
            .header("content-type", OCTET_STREAM)
            .header("content-length", "0"),
    );
    expect_blob_created(&r, name, &d.blob_a.digest);
    expect_blob(&reg, name, &d.blob_a);

    // Blob Upload Monolithic.
    reg.call(Method::GET, &format!("/v2/{name}/blobs/{dummy}"))
        .expect_error(404, "BLOB_UNKNOWN");
    // POST with ?digest= and the blob: the suite accepts 201 or 202 (then
    // the blob must be 404); Stratus completes the upload: 201.
    let r = reg.send(
        reg.request(
            Method::POST,
            &format!("/v2/{name}/blobs/uploads/?digest={}", d.configs[1].digest),
        )
        .header("content-type", OCTET_STREAM)
        .header("content-length", d.configs[1].len().to_string())
        .body(d.configs[1].content.clone()),
    );
    expect_blob_created(&r, name, &d.configs[1].digest);
    expect_blob(&reg, name, &d.configs[1]);
    // POST, then PUT with the whole blob (again: the same blob twice is fine).
    reg.push_blob(name, &d.configs[1]);
    expect_blob(&reg, name, &d.configs[1]);
    reg.push_blob(name, &d.layer);
    expect_blob(&reg, name, &d.layer);

    // Blob Upload Chunked: chunk 1 is bytes 0..=21, chunk 2 the rest.
    let b = &d.blob_b;
    let half = b.len() / 2 + 1;
    let (chunk1, chunk2) = (&b.content[..half], &b.content[half..]);
    let range1 = format!("0-{}", half - 1);
    let range2 = format!("{half}-{}", b.len() - 1);
    let patch = |location: &str, chunk: &[u8], range: &str| {
        reg.send(
            reg.request(Method::PATCH, location)
                .header("content-type", OCTET_STREAM)
                .header("content-length", chunk.len().to_string())
                .header("content-range", range)
                .body(chunk.to_vec()),
        )
    };
    // Out of order: chunk 2 first.
    let r = reg.start_upload(name);
    assert_eq!(
        r.header("oci-chunk-min-length"),
        None,
        "Stratus has no minimum chunk size"
    );
    let r = patch(&r.location(), chunk2, &range2);
    r.expect_status(416);
    assert!(SPEC_ERROR_CODES.contains(&r.error_codes()[0].as_str()));
    // In order, re-using the POST's Location throughout as the suite does.
    let first = reg.start_upload(name).location();
    let r = patch(&first, chunk1, &range1);
    r.expect_status(202).expect_header("range", &range1);
    assert!(!r.location().is_empty());
    patch(&first, chunk1, &range1).expect_status(416);
    let r = reg.call(Method::GET, &first);
    r.expect_status(204).expect_header("range", &range1);
    let status_location = r.location();
    let r = patch(&status_location, chunk2, &range2);
    r.expect_status(202)
        .expect_header("range", &format!("0-{}", b.len() - 1));
    let r = reg.send(
        reg.request(Method::PUT, &with_digest(&r.location(), &b.digest))
            .header("content-type", OCTET_STREAM)
            .header("content-length", "0"),
    );
    expect_blob_created(&r, name, &b.digest);
    expect_blob(&reg, name, b);
    // The closing PUT may carry the last chunk.
    let c = Blob::new(random_bytes(3, 42));
    let location = reg.start_upload(name).location();
    patch(&location, &c.content[..half], &range1).expect_status(202);
    let r = reg.send(
        reg.request(Method::PUT, &with_digest(&location, &c.digest))
            .header("content-type", OCTET_STREAM)
            .header("content-length", (c.len() - half).to_string())
            .header("content-range", &range2)
            .body(c.content[half..].to_vec()),
    );
    expect_blob_created(&r, name, &c.digest);
    expect_blob(&reg, name, &c);
    // A finished session is gone.
    reg.call(Method::GET, &location)
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    // Beyond the suite: a 3 MiB blob in three 1 MiB chunks, and the empty
    // blob (no PATCH, an empty closing PUT).
    let big = Blob::new(random_bytes(4, 3 << 20));
    let location = reg.start_upload(name).location();
    for (i, chunk) in big.content.chunks(1 << 20).enumerate() {
        let start = i << 20;
        let r = patch(
            &location,
            chunk,
            &format!("{start}-{}", start + chunk.len() - 1),
        );
        r.expect_status(202)
            .expect_header("range", &format!("0-{}", start + chunk.len() - 1));
    }
    let r = reg.send(
        reg.request(Method::PUT, &with_digest(&location, &big.digest))
            .header("content-length", "0"),
    );
    expect_blob_created(&r, name, &big.digest);
    expect_blob(&reg, name, &big);
    let nothing = Blob::new(Vec::new());
    reg.push_blob(name, &nothing);
    expect_blob(&reg, name, &nothing);

    // Cross-Repository Blob Mount.
    // Without `from`: a plain upload session.
    let r = reg.call(
        Method::POST,
        &format!("/v2/{cross}/blobs/uploads/?mount={dummy}"),
    );
    r.expect_status(202);
    assert!(r
        .location()
        .starts_with(&format!("/v2/{cross}/blobs/uploads/")));
    // From the repository that has the blob: 201 (the suite allows 202).
    let r = reg.call(
        Method::POST,
        &format!(
            "/v2/{cross}/blobs/uploads/?mount={}&from={name}",
            d.blob_a.digest
        ),
    );
    expect_blob_created(&r, cross, &d.blob_a.digest);
    let r = reg.call(Method::GET, &r.location());
    r.expect_status(200);
    assert!(r.body == d.blob_a.content);
    // A blob the source does not have: 202 and a session in the target.
    let r = reg.call(
        Method::POST,
        &format!("/v2/{cross}/blobs/uploads/?mount={dummy}&from={name}"),
    );
    r.expect_status(202);
    let session = r.location();
    assert!(session.starts_with(&format!("/v2/{cross}/blobs/uploads/")));
    reg.call(Method::GET, &session).expect_status(204);
    // Without `from` again, for a blob now in the target: Stratus does no
    // automatic content discovery (OCI_AUTOMATIC_CROSSMOUNT=0): 202.
    reg.call(
        Method::POST,
        &format!("/v2/{cross}/blobs/uploads/?mount={}", d.blob_a.digest),
    )
    .expect_status(202);
    // Mounting never leaks into a repository that was not named.
    reg.call(
        Method::GET,
        &format!("/v2/{cross}/blobs/{}", d.layer.digest),
    )
    .expect_error(404, "BLOB_UNKNOWN");

    // Manifest Upload.
    reg.call(
        Method::GET,
        &format!("/v2/{name}/manifests/{NONEXISTENT_MANIFEST}"),
    )
    .expect_status(404);
    for i in 0..4 {
        reg.push_manifest(name, &format!("test{i}"), OCI_MANIFEST, &d.manifests[1]);
    }
    // No layers, no mediaType in the body: Content-Type names the type.
    let empty = &d.empty_layer_manifest;
    reg.push_manifest(name, "emptylayer", OCI_MANIFEST, empty);
    let r = reg.call(
        Method::GET,
        &format!("/v2/{name}/manifests/{}", empty.digest),
    );
    r.expect_status(200)
        .expect_header("content-type", OCI_MANIFEST);
    assert!(r.body == empty.content);
    let r = reg.send(
        reg.request(
            Method::GET,
            &format!("/v2/{name}/manifests/{}", d.manifests[1].digest),
        )
        .header("accept", OCI_MANIFEST),
    );
    r.expect_status(200);
    assert!(r.body == d.manifests[1].content);
    assert_eq!(
        reg.tags(name, "").tags(),
        ["emptylayer", "test0", "test1", "test2", "test3"]
    );

    // Teardown.
    for m in [&d.manifests[1], empty] {
        reg.call(
            Method::DELETE,
            &format!("/v2/{name}/manifests/{}", m.digest),
        )
        .expect_status(202);
    }
    for blob in [&d.configs[1], &d.layer] {
        reg.call(Method::DELETE, &format!("/v2/{name}/blobs/{}", blob.digest))
            .expect_status(202);
    }
}

// ----- 3. Content Discovery ----------------------------------------------------------

#[test]
fn content_discovery_workflow() {
    let reg = Registry::start();
    let d = Data::new();
    let name = "conformance/discovery";
    let dummy = Blob::new("hello world").digest;

    // Setup: four tags on manifest[2].
    reg.push_blob(name, &d.configs[2]);
    reg.push_blob(name, &d.layer);
    for i in 0..4 {
        reg.push_manifest(name, &format!("test{i}"), OCI_MANIFEST, &d.manifests[2]);
    }

    // References setup, in the suite's order: some referrers are pushed
    // before their subject (manifest[4]), one names a subject (manifest[3])
    // that is never pushed.
    let empty_json = Blob::new("{}");
    assert_eq!(empty_json.digest, OCI_EMPTY_DIGEST);
    let empty_desc = descriptor(OCI_EMPTY, &empty_json);
    let ref_blob_a = Blob::new("NHL Peanut Butter on my NHL bagel");
    let ref_blob_b = Blob::new("NBA Strawberry Jam on my NBA croissant");
    let subject = &d.manifests[4];
    let a_config = artifact(
        None,
        descriptor(ARTIFACT_TYPE_A, &ref_blob_a),
        vec![empty_desc.clone()],
        subject,
        Some("test config a"),
    );
    let b_config = artifact(
        None,
        descriptor(ARTIFACT_TYPE_B, &ref_blob_b),
        vec![empty_desc.clone()],
        subject,
        Some("test config b"),
    );
    let a_layer = artifact(
        Some(ARTIFACT_TYPE_A),
        empty_desc.clone(),
        vec![descriptor(ARTIFACT_TYPE_A, &ref_blob_a)],
        subject,
        Some("test layer a"),
    );
    let b_layer = artifact(
        Some(ARTIFACT_TYPE_B),
        empty_desc.clone(),
        vec![descriptor(ARTIFACT_TYPE_B, &ref_blob_b)],
        subject,
        Some("test layer b"),
    );
    let c_layer = artifact(
        Some(ARTIFACT_TYPE_B),
        empty_desc.clone(),
        vec![descriptor(ARTIFACT_TYPE_B, &ref_blob_b)],
        &d.manifests[3],
        None,
    );
    let index = Blob::json(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "artifactType": ARTIFACT_TYPE_INDEX,
        "manifests": [descriptor(OCI_MANIFEST, &a_config), descriptor(OCI_MANIFEST, &a_layer)],
        "subject": descriptor(OCI_MANIFEST, subject),
        "annotations": { ANNOTATION_KEY: "test index" },
    }));
    let push_referrer = |m: &Blob, content_type: &str, subject: &Blob| {
        reg.push_manifest(name, &m.digest, content_type, m)
            .expect_header("oci-subject", &subject.digest);
    };
    reg.push_blob(name, &empty_json);
    reg.push_blob(name, &ref_blob_a);
    push_referrer(&a_config, OCI_MANIFEST, subject);
    push_referrer(&a_layer, OCI_MANIFEST, subject);
    push_referrer(&index, OCI_INDEX, subject);
    reg.push_blob(name, &d.configs[4]);
    reg.push_blob(name, &d.layer);
    reg.push_manifest(name, TEST_TAG, OCI_MANIFEST, subject);
    reg.push_blob(name, &ref_blob_b);
    push_referrer(&b_config, OCI_MANIFEST, subject);
    push_referrer(&b_layer, OCI_MANIFEST, subject);
    push_referrer(&c_layer, OCI_MANIFEST, &d.manifests[3]);
    // A manifest without a subject gets no OCI-Subject.
    let r = reg.push_manifest(name, "test0", OCI_MANIFEST, &d.manifests[2]);
    assert_eq!(r.header("oci-subject"), None);

    // Listing tags: lexical order; `n` limits, `last` starts after, `Link`
    // points to the next page while there is one.
    let all = ["tagtest0", "test0", "test1", "test2", "test3"];
    assert_eq!(reg.tags(name, "").tags(), all);
    let r = reg.tags(name, "?n=2");
    assert_eq!(r.tags(), ["tagtest0", "test0"]);
    let next = r
        .header("link")
        .unwrap_or_else(|| panic!("no Link with more tags left: {:?}", r.headers))
        .to_string();
    assert_eq!(
        next,
        format!("</v2/{name}/tags/list?n=2&last=test0>; rel=\"next\"")
    );
    let next_path = next
        .strip_prefix('<')
        .and_then(|s| s.split_once('>'))
        .map(|(path, _)| path)
        .expect("Link target");
    let r = reg.call(Method::GET, next_path);
    r.expect_status(200);
    assert_eq!(r.tags(), ["test1", "test2"]);
    assert!(r.header("link").is_some(), "one tag is left");
    let r = reg.tags(name, "?n=2&last=test2");
    assert_eq!(r.tags(), ["test3"]);
    assert_eq!(r.header("link"), None, "no page after the last");
    let r = reg.tags(name, "?n=5");
    assert_eq!(r.tags(), all);
    assert_eq!(r.header("link"), None);
    let r = reg.tags(name, "?last=test1");
    assert_eq!(r.tags(), ["test2", "test3"]);
    let r = reg.tags(name, "?n=0");
    assert_eq!(r.tags(), Vec::<String>::new());
    assert_eq!(r.header("link"), None);
    reg.call(Method::GET, "/v2/conformance/nothing/tags/list")
        .expect_error(404, "NAME_UNKNOWN");

    // Listing referrers. A digest nothing refers to: 200, empty index.
    let (_, manifests) = reg.referrers(name, &dummy, "");
    assert!(manifests.is_empty(), "{manifests:?}");
    // manifest[4]: five referrers, each with its artifactType and
    // annotations.
    let expected = [
        (&a_config, OCI_MANIFEST, ARTIFACT_TYPE_A, "test config a"),
        (&b_config, OCI_MANIFEST, ARTIFACT_TYPE_B, "test config b"),
        (&a_layer, OCI_MANIFEST, ARTIFACT_TYPE_A, "test layer a"),
        (&b_layer, OCI_MANIFEST, ARTIFACT_TYPE_B, "test layer b"),
        (&index, OCI_INDEX, ARTIFACT_TYPE_INDEX, "test index"),
    ];
    let check = |manifests: &[Value], want: &[usize]| {
        let mut got: Vec<&str> = manifests
            .iter()
            .map(|m| m["digest"].as_str().expect("descriptor digest"))
            .collect();
        got.sort_unstable();
        let mut want_digests: Vec<&str> = want
            .iter()
            .map(|&i| expected[i].0.digest.as_str())
            .collect();
        want_digests.sort_unstable();
        assert_eq!(got, want_digests, "{manifests:#?}");
        for m in manifests {
            let (blob, media_type, artifact_type, annotation) = expected
                .iter()
                .find(|e| m["digest"] == json!(e.0.digest))
                .expect("an expected referrer");
            assert_eq!(m["mediaType"], json!(media_type), "{m}");
            assert_eq!(m["size"], json!(blob.len()), "{m}");
            assert_eq!(m["artifactType"], json!(artifact_type), "{m}");
            assert_eq!(
                m["annotations"],
                json!({ ANNOTATION_KEY: annotation }),
                "{m}"
            );
        }
    };
    let (r, manifests) = reg.referrers(name, &subject.digest, "");
    assert_eq!(r.header("oci-filters-applied"), None);
    check(&manifests, &[0, 1, 2, 3, 4]);
    // Filtered by artifactType: the config-typed and the layer-typed A.
    let (r, manifests) = reg.referrers(
        name,
        &subject.digest,
        &format!("?artifactType={ARTIFACT_TYPE_A}"),
    );
    r.expect_header("oci-filters-applied", "artifactType");
    check(&manifests, &[0, 2]);
    let (r, manifests) = reg.referrers(
        name,
        &subject.digest,
        &format!("?artifactType={ARTIFACT_TYPE_INDEX}"),
    );
    r.expect_header("oci-filters-applied", "artifactType");
    check(&manifests, &[4]);
    // A subject that was never pushed still lists its referrer.
    let (_, manifests) = reg.referrers(name, &d.manifests[3].digest, "");
    assert_eq!(manifests.len(), 1, "{manifests:?}");
    assert_eq!(manifests[0]["digest"], json!(c_layer.digest));
    assert_eq!(manifests[0]["artifactType"], json!(ARTIFACT_TYPE_B));
    assert_eq!(manifests[0].get("annotations"), None, "{}", manifests[0]);
    // A malformed digest is a 400.
    reg.call(
        Method::GET,
        &format!("/v2/{name}/referrers/sha256:totallywrong"),
    )
    .expect_error(400, "DIGEST_INVALID");

    // Teardown: manifests (and so their tags), then blobs.
    for m in [
        &index,
        &d.manifests[2],
        subject,
        &a_config,
        &a_layer,
        &b_config,
        &b_layer,
        &c_layer,
    ] {
        reg.call(
            Method::DELETE,
            &format!("/v2/{name}/manifests/{}", m.digest),
        )
        .expect_status(202);
    }
    assert_eq!(reg.tags(name, "").tags(), Vec::<String>::new());
    let (_, manifests) = reg.referrers(name, &subject.digest, "");
    assert!(manifests.is_empty(), "{manifests:?}");
    for b in [
        &d.configs[2],
        &d.layer,
        &d.configs[4],
        &ref_blob_a,
        &ref_blob_b,
        &empty_json,
    ] {
        reg.call(Method::DELETE, &format!("/v2/{name}/blobs/{}", b.digest))
            .expect_status(202);
    }
}

// ----- 4. Content Management ---------------------------------------------------------

#[test]
fn content_management_workflow() {
    // No auto-creation here: the repository is created the ECR way first.
    let reg = Registry::start_with(&[]);
    let d = Data::new();
    let name = "conformance/management";
    reg.call(Method::POST, &format!("/v2/{name}/blobs/uploads/"))
        .expect_error(404, "NAME_UNKNOWN");
    let created = reg
        .http
        .post(reg.server.url("/"))
        .header(
            "x-amz-target",
            "AmazonEC2ContainerRegistry_V20150921.CreateRepository",
        )
        .header("content-type", "application/x-amz-json-1.1")
        .body(json!({ "repositoryName": name }).to_string())
        .send()
        .expect("CreateRepository");
    let status = created.status();
    let body = created.text().expect("CreateRepository body");
    assert_eq!(status, 200, "CreateRepository: {body}");
    let body: Value = serde_json::from_str(&body).expect("CreateRepository JSON");
    assert_eq!(body["repository"]["repositoryName"], json!(name), "{body}");

    // Setup.
    let config = &d.configs[3];
    let manifest = &d.manifests[3];
    reg.push_blob(name, config);
    reg.push_blob(name, &d.layer);
    reg.push_manifest(name, TEST_TAG, OCI_MANIFEST, manifest);
    let num_tags = reg.tags(name, "").tags().len();
    assert_eq!(num_tags, 1);

    // Manifest delete: the tag (202; the suite also allows 400 UNSUPPORTED
    // or 405), then the manifest by digest (202; 404 allowed if the tag
    // delete took it along — in Stratus it does not).
    reg.call(Method::DELETE, &format!("/v2/{name}/manifests/{TEST_TAG}"))
        .expect_status(202);
    reg.call(Method::GET, &format!("/v2/{name}/manifests/{TEST_TAG}"))
        .expect_error(404, "MANIFEST_UNKNOWN");
    reg.call(
        Method::GET,
        &format!("/v2/{name}/manifests/{}", manifest.digest),
    )
    .expect_status(200);
    reg.call(
        Method::DELETE,
        &format!("/v2/{name}/manifests/{}", manifest.digest),
    )
    .expect_status(202);
    reg.call(
        Method::GET,
        &format!("/v2/{name}/manifests/{}", manifest.digest),
    )
    .expect_error(404, "MANIFEST_UNKNOWN");
    assert_eq!(reg.tags(name, "").tags().len(), num_tags - 1);

    // Deleting a manifest by digest takes every tag on it along.
    reg.push_manifest(name, "keep-a", OCI_MANIFEST, manifest);
    reg.push_manifest(name, "keep-b", OCI_MANIFEST, manifest);
    assert_eq!(reg.tags(name, "").tags(), ["keep-a", "keep-b"]);
    reg.call(
        Method::DELETE,
        &format!("/v2/{name}/manifests/{}", manifest.digest),
    )
    .expect_status(202);
    assert_eq!(reg.tags(name, "").tags(), Vec::<String>::new());
    reg.call(Method::GET, &format!("/v2/{name}/manifests/keep-a"))
        .expect_error(404, "MANIFEST_UNKNOWN");
    reg.call(
        Method::DELETE,
        &format!("/v2/{name}/manifests/{}", manifest.digest),
    )
    .expect_error(404, "MANIFEST_UNKNOWN");
    reg.call(Method::DELETE, &format!("/v2/{name}/manifests/keep-a"))
        .expect_error(404, "MANIFEST_UNKNOWN");
    reg.call(
        Method::DELETE,
        &format!("/v2/{name}/manifests/{NONEXISTENT_MANIFEST}"),
    )
    .expect_error(404, "MANIFEST_UNKNOWN");

    // Blob delete: 202, then 404 on GET and on a second DELETE.
    for b in [config, &d.layer] {
        let path = format!("/v2/{name}/blobs/{}", b.digest);
        reg.call(Method::DELETE, &path).expect_status(202);
        reg.call(Method::GET, &path)
            .expect_error(404, "BLOB_UNKNOWN");
        reg.call(Method::HEAD, &path).expect_status(404);
        reg.call(Method::DELETE, &path)
            .expect_error(404, "BLOB_UNKNOWN");
    }
    // With its blobs gone, the manifest cannot be pushed again.
    reg.put_manifest(name, TEST_TAG, OCI_MANIFEST, manifest)
        .expect_error(400, "MANIFEST_BLOB_UNKNOWN");

    // Deletes in a repository that does not exist.
    reg.call(
        Method::DELETE,
        &format!("/v2/conformance/nothing/manifests/{}", manifest.digest),
    )
    .expect_error(404, "NAME_UNKNOWN");
    reg.call(
        Method::DELETE,
        &format!("/v2/conformance/nothing/blobs/{}", config.digest),
    )
    .expect_error(404, "NAME_UNKNOWN");
}

// ----- bad input -------------------------------------------------------------------

#[test]
fn bad_input_gets_spec_error_codes() {
    let reg = Registry::start();
    let d = Data::new();
    let name = "conformance/errors";

    // The base route.
    let r = reg.call(Method::GET, "/v2/");
    r.expect_status(200);

    // A PUT whose digest does not match the bytes: DIGEST_INVALID, and
    // neither digest is retrievable afterwards.
    let wrong = Blob::new("not what is uploaded").digest;
    let location = reg.start_upload(name).location();
    reg.send(
        reg.request(Method::PUT, &with_digest(&location, &wrong))
            .header("content-type", OCTET_STREAM)
            .body(d.blob_a.content.clone()),
    )
    .expect_error(400, "DIGEST_INVALID");
    for digest in [&wrong, &d.blob_a.digest] {
        reg.call(Method::GET, &format!("/v2/{name}/blobs/{digest}"))
            .expect_error(404, "BLOB_UNKNOWN");
        reg.call(Method::HEAD, &format!("/v2/{name}/blobs/{digest}"))
            .expect_status(404);
    }
    // The same through a streamed PATCH and an empty closing PUT.
    let location = reg.start_upload(name).location();
    reg.send(
        reg.request(Method::PATCH, &location)
            .header("content-type", OCTET_STREAM)
            .body(d.blob_a.content.clone()),
    )
    .expect_status(202);
    reg.send(
        reg.request(Method::PUT, &with_digest(&location, &wrong))
            .header("content-length", "0"),
    )
    .expect_error(400, "DIGEST_INVALID");
    reg.call(
        Method::GET,
        &format!("/v2/{name}/blobs/{}", d.blob_a.digest),
    )
    .expect_error(404, "BLOB_UNKNOWN");
    // And through a single POST with ?digest=.
    reg.send(
        reg.request(
            Method::POST,
            &format!("/v2/{name}/blobs/uploads/?digest={wrong}"),
        )
        .header("content-type", OCTET_STREAM)
        .body(d.blob_a.content.clone()),
    )
    .expect_error(400, "DIGEST_INVALID");
    reg.call(
        Method::GET,
        &format!("/v2/{name}/blobs/{}", d.blob_a.digest),
    )
    .expect_error(404, "BLOB_UNKNOWN");
    // A malformed digest, and none at all.
    for query in ["?digest=sha256:totallywrong", "?digest=md5:abc", ""] {
        let location = reg.start_upload(name).location();
        reg.send(
            reg.request(Method::PUT, &format!("{location}{query}"))
                .body(d.blob_a.content.clone()),
        )
        .expect_error(400, "DIGEST_INVALID");
    }
    reg.call(
        Method::GET,
        &format!("/v2/{name}/blobs/sha256:totallywrong"),
    )
    .expect_error(400, "DIGEST_INVALID");

    // Upload sessions that do not exist.
    let unknown = format!("/v2/{name}/blobs/uploads/6b3e2d1c-0f4a-4c55-9c2b-1d2e3f4a5b6c");
    reg.call(Method::GET, &unknown)
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.send(reg.request(Method::PATCH, &unknown).body(vec![1, 2, 3]))
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");
    reg.send(reg.request(Method::PUT, &with_digest(&unknown, &d.blob_a.digest)))
        .expect_error(404, "BLOB_UPLOAD_UNKNOWN");

    // A manifest naming a blob the repository does not have.
    reg.push_blob(name, &d.configs[0]);
    reg.put_manifest(name, "missing-layer", OCI_MANIFEST, &d.manifests[0])
        .expect_error(400, "MANIFEST_BLOB_UNKNOWN");
    reg.call(Method::GET, &format!("/v2/{name}/manifests/missing-layer"))
        .expect_error(404, "MANIFEST_UNKNOWN");
    reg.call(
        Method::GET,
        &format!("/v2/{name}/manifests/{}", d.manifests[0].digest),
    )
    .expect_error(404, "MANIFEST_UNKNOWN");
    // An index naming a manifest the repository does not have.
    let index = Blob::json(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor(OCI_MANIFEST, &d.manifests[0])],
    }));
    reg.put_manifest(name, "missing-child", OCI_INDEX, &index)
        .expect_error(400, "MANIFEST_BLOB_UNKNOWN");

    // Malformed manifests.
    for body in [
        "blablabla".to_string(),
        "[]".to_string(),
        r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#
            .to_string(),
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"sha256:nothex","size":2}},"layers":[]}}"#
        ),
    ] {
        reg.put_manifest(name, "broken", OCI_MANIFEST, &Blob::new(body))
            .expect_error(400, "MANIFEST_INVALID");
    }
    // A body whose mediaType disagrees with Content-Type.
    reg.push_blob(name, &d.layer);
    reg.put_manifest(name, "mismatch", OCI_INDEX, &d.manifests[0])
        .expect_error(400, "MANIFEST_INVALID");
    // Put by a digest that is not the body's.
    reg.put_manifest(name, &d.manifests[1].digest, OCI_MANIFEST, &d.manifests[0])
        .expect_error(400, "DIGEST_INVALID");
    // Put under a tag the grammar forbids.
    reg.put_manifest(name, NONEXISTENT_MANIFEST, OCI_MANIFEST, &d.manifests[0])
        .expect_error(400, "TAG_INVALID");
    assert_eq!(reg.tags(name, "").tags(), Vec::<String>::new());
    // The manifest itself is fine.
    reg.push_manifest(name, "good", OCI_MANIFEST, &d.manifests[0]);

    // Repository names outside the grammar, on every kind of route.
    for bad in ["Upper/app", "a..b", "-lead", "x", "trailing-", "a//b"] {
        for (method, path) in [
            (Method::GET, format!("/v2/{bad}/manifests/latest")),
            (Method::GET, format!("/v2/{bad}/tags/list")),
            (Method::POST, format!("/v2/{bad}/blobs/uploads/")),
            (
                Method::GET,
                format!("/v2/{bad}/blobs/{}", d.configs[0].digest),
            ),
        ] {
            reg.call(method, &path).expect_error(400, "NAME_INVALID");
        }
    }

    // A Range outside the blob.
    let len = d.layer.len();
    let r = reg.send(
        reg.request(Method::GET, &format!("/v2/{name}/blobs/{}", d.layer.digest))
            .header("range", format!("bytes={len}-{}", len + 10)),
    );
    r.expect_status(416)
        .expect_header("content-range", &format!("bytes */{len}"));

    // A method a route does not have.
    reg.call(Method::POST, &format!("/v2/{name}/manifests/good"))
        .expect_error(405, "UNSUPPORTED");
    // A path under /v2/ that is no endpoint.
    reg.call(Method::GET, &format!("/v2/{name}/nothing/here"))
        .expect_status(404);
}
