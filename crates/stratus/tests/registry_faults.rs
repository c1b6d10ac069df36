//! The registry under bad input and faults, against the real binary over
//! raw HTTP and TCP (and skopeo where a real client pushes): wrong digests,
//! manifests naming missing blobs, uploads cut off mid-body, `kill -9`
//! mid-push, concurrent pushes sharing layers, the garbage collector beside
//! pushes in flight, malformed ECR JSON and a graceful shutdown.
//!
//! Disk checks read the blob store's layout under the data dir:
//! `blobs/blobs/sha256/<2 hex>/<hex>` for blobs, `blobs/uploads/<id>` for
//! upload sessions.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};
use tempfile::TempDir;
use test_support::{
    digest_of_file, poll_until, random_bytes, sha256_digest, BuiltImage, CopyOptions,
    OciImageBuilder, OutputExt, Skopeo, TestServer,
};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MIB: usize = 1 << 20;
/// How long the server may take to notice a client that went away.
const SETTLE: Duration = Duration::from_secs(20);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_stratus"))
}

/// A server on a data dir the test owns (it survives restarts and can be
/// inspected), creating repositories on first push, with the timed
/// collector off so that only the test runs it. Bind the pair as
/// `let (_data, server)`: the server must drop before its data dir.
fn start_server(extra: &[&str]) -> (TempDir, TestServer) {
    let data = TempDir::with_prefix("stratus-registry-faults-").expect("create data dir");
    let mut args = vec!["--auto-create-repositories", "--gc-interval-seconds", "0"];
    args.extend_from_slice(extra);
    let server = TestServer::start_with(bin(), data.path(), &args);
    (data, server)
}

/// A registry client for one run of the server (the port changes on
/// restart: make a new one).
struct Oci {
    http: Client,
    base: String,
}

impl Oci {
    fn at(server: &TestServer) -> Oci {
        let http = Client::builder()
            .timeout(Duration::from_secs(120))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Oci {
            http,
            base: server.endpoint(),
        }
    }

    /// `path` is absolute (`/v2/…`), as `Location` headers are.
    fn url(&self, path: &str) -> String {
        assert!(path.starts_with('/'), "not an absolute path: {path}");
        format!("{}{path}", self.base)
    }

    /// Opens an upload session; returns its `Location`.
    #[track_caller]
    fn start_upload(&self, repo: &str) -> String {
        let resp = self
            .http
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/")))
            .send()
            .expect("POST upload");
        let resp = expect_status(resp, 202);
        header(&resp, "location")
    }

    fn patch(&self, location: &str, start: usize, bytes: &[u8]) -> Response {
        self.http
            .patch(self.url(location))
            .header("content-type", "application/octet-stream")
            .header(
                "content-range",
                format!("{start}-{}", start + bytes.len() - 1),
            )
            .body(bytes.to_vec())
            .send()
            .expect("PATCH upload")
    }

    fn finish(&self, location: &str, digest: &str) -> Response {
        self.http
            .put(self.url(location))
            .query(&[("digest", digest)])
            .send()
            .expect("PUT upload")
    }

    fn upload_status(&self, location: &str) -> Response {
        self.http
            .get(self.url(location))
            .send()
            .expect("GET upload")
    }

    /// Pushes `bytes` as one monolithic upload; returns the digest.
    #[track_caller]
    fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let resp = self
            .http
            .post(self.url(&format!("/v2/{repo}/blobs/uploads/")))
            .query(&[("digest", &digest)])
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .expect("POST monolithic upload");
        let resp = expect_status(resp, 201);
        assert_eq!(header(&resp, "docker-content-digest"), digest);
        digest
    }

    fn head_blob(&self, repo: &str, digest: &str) -> u16 {
        self.http
            .head(self.url(&format!("/v2/{repo}/blobs/{digest}")))
            .send()
            .expect("HEAD blob")
            .status()
            .as_u16()
    }

    /// GETs a blob and checks that its bytes hash to its digest.
    #[track_caller]
    fn check_blob(&self, repo: &str, digest: &str) {
        let resp = self
            .http
            .get(self.url(&format!("/v2/{repo}/blobs/{digest}")))
            .send()
            .expect("GET blob");
        let resp = expect_status(resp, 200);
        let body = resp.bytes().expect("blob body");
        assert_eq!(sha256_digest(&body), digest, "content of {repo}@{digest}");
    }

    fn put_manifest(&self, repo: &str, reference: &str, bytes: &[u8]) -> Response {
        self.http
            .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("content-type", OCI_MANIFEST)
            .body(bytes.to_vec())
            .send()
            .expect("PUT manifest")
    }

    fn get_manifest(&self, repo: &str, reference: &str) -> Response {
        self.http
            .get(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("accept", OCI_MANIFEST)
            .send()
            .expect("GET manifest")
    }

    /// Pushes an image's config and layers, then its manifest under `tag`.
    #[track_caller]
    fn push_image(&self, repo: &str, tag: &str, image: &BuiltImage) {
        self.push_blob(repo, &image.config_bytes);
        for digest in &image.layer_digests {
            self.push_blob(repo, &image.read_blob(digest));
        }
        let resp = expect_status(self.put_manifest(repo, tag, &image.manifest_bytes), 201);
        assert_eq!(
            header(&resp, "docker-content-digest"),
            image.manifest_digest
        );
    }

    /// Checks that `repo:tag` serves the image's manifest and blobs intact.
    #[track_caller]
    fn check_image(&self, repo: &str, tag: &str, image: &BuiltImage) {
        let resp = expect_status(self.get_manifest(repo, tag), 200);
        assert_eq!(
            resp.bytes().expect("manifest body").to_vec(),
            image.manifest_bytes,
            "manifest of {repo}:{tag}"
        );
        self.check_blob(repo, &image.config_digest);
        for digest in &image.layer_digests {
            self.check_blob(repo, digest);
        }
    }

    /// `POST /_stratus/gc[?query]`; returns the report.
    #[track_caller]
    fn gc(&self, query: &str) -> Value {
        let mut url = self.url("/_stratus/gc");
        if !query.is_empty() {
            url = format!("{url}?{query}");
        }
        let resp = expect_status(self.http.post(url).send().expect("POST gc"), 200);
        resp.json().expect("gc report is JSON")
    }
}

#[track_caller]
fn expect_status(resp: Response, status: u16) -> Response {
    let got = resp.status().as_u16();
    if got != status {
        let url = resp.url().to_string();
        let body = resp.text().unwrap_or_default();
        panic!("{url}: expected status {status}, got {got}: {body}");
    }
    resp
}

/// Asserts an OCI error (status and `errors[0].code`); returns its message.
#[track_caller]
fn expect_oci_error(resp: Response, status: u16, code: &str) -> String {
    let got = resp.status().as_u16();
    let body = resp.text().expect("error body");
    assert_eq!(got, status, "expected {status} {code}, got {got}: {body}");
    let v: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {body}"));
    assert_eq!(v["errors"][0]["code"], code, "{body}");
    v["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[track_caller]
fn header(resp: &Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header on {}", resp.url()))
        .to_str()
        .expect("ascii header")
        .to_string()
}

/// Bytes an upload holds, from its `Range: 0-<last>` header.
#[track_caller]
fn upload_len(resp: &Response) -> usize {
    let range = header(resp, "range");
    let last = range
        .strip_prefix("0-")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("bad Range header {range:?}"));
    last + 1
}

fn upload_id(location: &str) -> &str {
    location.rsplit('/').next().unwrap_or_default()
}

fn blobs_root(data_dir: &Path) -> PathBuf {
    data_dir.join("blobs").join("blobs").join("sha256")
}

fn uploads_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("blobs").join("uploads")
}

/// Every blob file on disk, as `sha256:<file name>`; checks that each
/// file's content matches its name.
#[track_caller]
fn blob_files(data_dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&blobs_root(data_dir), &mut paths);
    let mut digests: Vec<String> = paths
        .iter()
        .map(|path| {
            let name = path.file_name().expect("name").to_string_lossy();
            let digest = format!("sha256:{name}");
            assert_eq!(digest_of_file(path), digest, "{}", path.display());
            digest
        })
        .collect();
    digests.sort();
    digests
}

/// Upload session files: (id, length).
fn upload_files(data_dir: &Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = fs::read_dir(uploads_dir(data_dir))
        .expect("read uploads dir")
        .map(|e| {
            let e = e.expect("dir entry");
            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
            (e.file_name().to_string_lossy().into_owned(), len)
        })
        .collect();
    out.sort();
    out
}

fn upload_file_len(data_dir: &Path, id: &str) -> Option<u64> {
    fs::metadata(uploads_dir(data_dir).join(id))
        .ok()
        .map(|m| m.len())
}

/// Starts `PATCH location` announcing `announced` bytes from `start`, and
/// sends only `part` of them. The stream stays open until dropped.
fn partial_patch(
    addr: SocketAddr,
    location: &str,
    start: usize,
    announced: usize,
    part: &[u8],
) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_write_timeout(Some(Duration::from_secs(60)))
        .expect("write timeout");
    let head = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {announced}\r\nContent-Range: {start}-{}\r\n\r\n",
        start + announced - 1
    );
    stream.write_all(head.as_bytes()).expect("send head");
    stream.write_all(part).expect("send part of the body");
    stream.flush().expect("flush");
    stream
}

/// An image of a small file layer and a random layer; `seed` varies both.
fn small_image(dir: &Path, seed: u64) -> BuiltImage {
    OciImageBuilder::new()
        .layer([("app/id.txt", format!("image {seed}\n").into_bytes())])
        .random_layer(seed, 64 << 10)
        .cmd(&["/app/run"])
        .write(dir, "v1")
}

#[test]
fn wrong_digest_on_upload_is_refused_and_nothing_is_stored() {
    let (_data, server) = start_server(&[]);
    let oci = Oci::at(&server);
    let repo = "faults/digest";
    let content = random_bytes(11, 300_000);
    let actual = sha256_digest(&content);
    let claimed = sha256_digest(b"not the uploaded bytes");
    let before = blob_files(server.data_dir());

    // Chunked: the PATCH is accepted, the PUT naming another digest is not.
    let location = oci.start_upload(repo);
    let resp = expect_status(oci.patch(&location, 0, &content), 202);
    assert_eq!(upload_len(&resp), content.len());
    let msg = expect_oci_error(oci.finish(&location, &claimed), 400, "DIGEST_INVALID");
    assert!(msg.contains(&actual) && msg.contains(&claimed), "{msg}");
    // The session is over and its bytes are gone.
    expect_oci_error(oci.upload_status(&location), 404, "BLOB_UPLOAD_UNKNOWN");

    // Monolithic: the whole body in the POST.
    let resp = oci
        .http
        .post(oci.url(&format!("/v2/{repo}/blobs/uploads/")))
        .query(&[("digest", &claimed)])
        .body(content.clone())
        .send()
        .expect("POST monolithic");
    expect_oci_error(resp, 400, "DIGEST_INVALID");

    for digest in [&claimed, &actual] {
        assert_eq!(oci.head_blob(repo, digest), 404, "{digest} is visible");
    }
    assert_eq!(blob_files(server.data_dir()), before);
    assert_eq!(upload_files(server.data_dir()), vec![]);

    // The right digest still goes through.
    assert_eq!(oci.push_blob(repo, &content), actual);
    assert_eq!(oci.head_blob(repo, &actual), 200);
    let mut expected = before;
    expected.push(actual);
    expected.sort();
    assert_eq!(blob_files(server.data_dir()), expected);
}

#[test]
fn malformed_digest_on_monolithic_upload_leaves_no_session() {
    let (_data, server) = start_server(&[]);
    let oci = Oci::at(&server);
    let repo = "faults/bad-digest";
    for bad in ["sha256:nothex", "md5:0123", "sha256"] {
        let resp = oci
            .http
            .post(oci.url(&format!("/v2/{repo}/blobs/uploads/")))
            .query(&[("digest", bad)])
            .body(b"some bytes".to_vec())
            .send()
            .expect("POST monolithic");
        expect_oci_error(resp, 400, "DIGEST_INVALID");
    }
    // The client never learnt a session id: none may be left behind.
    assert_eq!(upload_files(server.data_dir()), vec![]);
    assert_eq!(blob_files(server.data_dir()), Vec::<String>::new());
}

/// `stratus_http_requests_total{surface="registry",status="4xx"}`.
fn registry_4xx_answered(server: &TestServer) -> u64 {
    let text = reqwest::blocking::get(server.url("/_stratus/metrics"))
        .expect("GET metrics")
        .text()
        .expect("metrics body");
    text.lines()
        .find_map(|line| {
            line.strip_prefix(r#"stratus_http_requests_total{surface="registry",status="4xx"} "#)
        })
        .and_then(|n| n.trim().parse().ok())
        .expect("registry 4xx counter in the metrics")
}

#[test]
fn monolithic_upload_cut_off_mid_body_leaves_no_session() {
    let (_data, server) = start_server(&[]);
    let repo = "faults/monolithic";
    let content = random_bytes(31, 2 * MIB);
    let digest = sha256_digest(&content);
    let answered = registry_4xx_answered(&server);

    // POST ?digest= announcing the whole blob, half of it sent, hang up.
    let mut stream = TcpStream::connect(server.addr()).expect("connect");
    let head = format!(
        "POST /v2/{repo}/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        server.addr(),
        content.len()
    );
    stream.write_all(head.as_bytes()).expect("send head");
    stream
        .write_all(&content[..content.len() / 2])
        .expect("send half the body");
    stream.shutdown(Shutdown::Both).expect("shutdown");
    drop(stream);

    // Once the server has answered the cut-off request (the client is gone,
    // but the answer is counted), no trace of it may be left.
    poll_until(SETTLE, || {
        (registry_4xx_answered(&server) > answered).then_some(())
    });
    let oci = Oci::at(&server);
    assert_eq!(oci.head_blob(repo, &digest), 404);
    assert_eq!(blob_files(server.data_dir()), Vec::<String>::new());
    assert_eq!(
        upload_files(server.data_dir()),
        vec![],
        "the client never learnt the session id, so nobody can resume or cancel it"
    );
}

#[test]
fn manifest_naming_a_missing_blob_is_manifest_blob_unknown() {
    let (_data, server) = start_server(&[]);
    let oci = Oci::at(&server);
    let layout = TempDir::new().expect("tmp");
    let repo = "faults/manifest";
    let image = small_image(layout.path(), 1);
    let missing = &image.layer_digests[1];

    oci.push_blob(repo, &image.config_bytes);
    oci.push_blob(repo, &image.read_blob(&image.layer_digests[0]));
    let msg = expect_oci_error(
        oci.put_manifest(repo, "v1", &image.manifest_bytes),
        400,
        "MANIFEST_BLOB_UNKNOWN",
    );
    assert!(msg.contains(missing.as_str()), "{msg}");
    for reference in ["v1", image.manifest_digest.as_str()] {
        expect_oci_error(oci.get_manifest(repo, reference), 404, "MANIFEST_UNKNOWN");
    }
    // A blob of another repository does not count either.
    oci.push_blob("faults/elsewhere", &image.read_blob(missing));
    expect_oci_error(
        oci.put_manifest(repo, "v1", &image.manifest_bytes),
        400,
        "MANIFEST_BLOB_UNKNOWN",
    );

    oci.push_blob(repo, &image.read_blob(missing));
    let resp = expect_status(oci.put_manifest(repo, "v1", &image.manifest_bytes), 201);
    assert_eq!(
        header(&resp, "docker-content-digest"),
        image.manifest_digest
    );
    oci.check_image(repo, "v1", &image);
}

#[test]
fn upload_cut_off_mid_body_leaves_no_partial_blob_and_can_resume_or_be_abandoned() {
    let (_data, server) = start_server(&[]);
    let data_dir = server.data_dir().to_path_buf();
    let oci = Oci::at(&server);
    let repo = "faults/interrupted";
    let first = random_bytes(21, MIB);
    let rest = random_bytes(22, 3 * MIB);
    let whole: Vec<u8> = [first.as_slice(), rest.as_slice()].concat();
    let digest = sha256_digest(&whole);
    let before = blob_files(&data_dir);

    let location = oci.start_upload(repo);
    let resp = expect_status(oci.patch(&location, 0, &first), 202);
    assert_eq!(upload_len(&resp), first.len());

    // Announce the rest, send a third of it (past one write chunk of the
    // server), hang up.
    let stream = partial_patch(
        server.addr(),
        &location,
        first.len(),
        rest.len(),
        &rest[..rest.len() / 3 + 4096],
    );
    stream.shutdown(Shutdown::Both).expect("shutdown");
    drop(stream);

    // Resuming from the pre-PATCH offset works once the server has rolled
    // the cut-off request back (until then the session is busy: 409).
    let resumed = poll_until(SETTLE, || {
        let resp = oci.patch(&location, first.len(), &rest);
        match resp.status().as_u16() {
            409 => None,
            _ => Some(resp),
        }
    });
    // Before the resume, nothing partial was visible: the upload was at
    // the pre-PATCH offset (else the resume would be a 416) and no blob
    // appeared.
    let resumed = expect_status(resumed, 202);
    assert_eq!(upload_len(&resumed), whole.len());
    assert_eq!(blob_files(&data_dir), before);
    assert_eq!(oci.head_blob(repo, &digest), 404);
    let resp = expect_status(oci.upload_status(&location), 204);
    assert_eq!(upload_len(&resp), whole.len());
    assert_eq!(
        upload_file_len(&data_dir, upload_id(&location)),
        Some(whole.len() as u64)
    );
    expect_status(oci.finish(&location, &digest), 201);
    oci.check_blob(repo, &digest);

    // Another session cut off the same way, then abandoned by its client.
    let location = oci.start_upload(repo);
    expect_status(oci.patch(&location, 0, &first), 202);
    let stream = partial_patch(
        server.addr(),
        &location,
        first.len(),
        rest.len(),
        &rest[..MIB],
    );
    stream.shutdown(Shutdown::Both).expect("shutdown");
    drop(stream);
    let resp = expect_status(oci.upload_status(&location), 204);
    assert_eq!(
        upload_len(&resp),
        first.len(),
        "offset before the cut-off PATCH"
    );
    let deleted = oci
        .http
        .delete(oci.url(&location))
        .send()
        .expect("DELETE upload");
    expect_status(deleted, 204);
    expect_oci_error(oci.upload_status(&location), 404, "BLOB_UPLOAD_UNKNOWN");
    poll_until(SETTLE, || upload_files(&data_dir).is_empty().then_some(()));
    let mut expected = before;
    expected.push(digest);
    expected.sort();
    assert_eq!(blob_files(&data_dir), expected);
}

#[test]
fn kill9_mid_push_keeps_acknowledged_images_and_exposes_no_partial_blob() {
    let (_data, mut server) = start_server(&[]);
    let data_dir = server.data_dir().to_path_buf();
    let layouts = TempDir::new().expect("tmp");
    let skopeo = Skopeo::new();
    let preserve = CopyOptions {
        preserve_digests: true,
        ..CopyOptions::default()
    };

    // Two images pushed and acknowledged by a real client.
    let images: Vec<(String, BuiltImage)> = (0..2)
        .map(|i| {
            let image = small_image(&layouts.path().join(format!("img{i}")), 100 + i);
            let repo = format!("crash/app{i}");
            let dest = format!("docker://{}/{repo}:v1", server.registry_host());
            skopeo
                .copy_with(&image.oci_ref(), &dest, preserve)
                .assert_success("skopeo copy to the registry");
            (repo, image)
        })
        .collect();
    let acknowledged = blob_files(&data_dir);
    assert_eq!(acknowledged.len(), 6, "{acknowledged:?}");

    // A 64 MiB layer, killed with 40 MiB sent and at least 16 MiB on disk;
    // and another session with some bytes, which its client will abandon.
    let big = random_bytes(77, 64 * MIB);
    let big_digest = sha256_digest(&big);
    let oci = Oci::at(&server);
    let abandoned = oci.start_upload("crash/big");
    expect_status(oci.patch(&abandoned, 0, &big[..MIB]), 202);
    let location = oci.start_upload("crash/big");
    let stream = partial_patch(server.addr(), &location, 0, big.len(), &big[..40 * MIB]);
    let id = upload_id(&location).to_string();
    poll_until(Duration::from_secs(60), || {
        upload_file_len(&data_dir, &id)
            .filter(|len| *len >= 16 * MIB as u64)
            .map(|_| ())
    });
    server.kill9();
    drop(stream);
    // What a crash between creating a session's file and recording the
    // session would leave.
    let orphan = uploads_dir(&data_dir).join("0c0ffee0-dead-4bad-8bad-000000000000");
    fs::write(&orphan, b"orphaned bytes").expect("write orphan upload");

    server.restart();
    let oci = Oci::at(&server);

    // Every acknowledged image is intact, by raw GET and through skopeo.
    for (i, (repo, image)) in images.iter().enumerate() {
        oci.check_image(repo, "v1", image);
        let back = layouts.path().join(format!("back{i}"));
        skopeo
            .copy_with(
                &format!("docker://{}/{repo}:v1", server.registry_host()),
                &format!("oci:{}:v1", back.display()),
                preserve,
            )
            .assert_success("skopeo copy from the registry");
        let index: Value =
            serde_json::from_slice(&fs::read(back.join("index.json")).expect("index.json"))
                .expect("index is JSON");
        assert_eq!(index["manifests"][0]["digest"], image.manifest_digest);
        for digest in image.layer_digests.iter().chain([&image.config_digest]) {
            let hex = digest.trim_start_matches("sha256:");
            assert_eq!(
                digest_of_file(&back.join("blobs/sha256").join(hex)),
                *digest
            );
        }
    }

    // The partial layer is not a blob, on the wire or on disk.
    assert_eq!(oci.head_blob("crash/big", &big_digest), 404);
    assert_eq!(blob_files(&data_dir), acknowledged);
    // Restart recovery removed the orphaned file.
    assert!(
        !orphan.exists(),
        "orphaned upload file survived the restart"
    );

    // The interrupted session resumes from what reached the disk, or is
    // gone with its file.
    let status = oci.upload_status(&location);
    match status.status().as_u16() {
        204 => {
            let len = upload_len(&status);
            assert!(
                (16 * MIB..=40 * MIB).contains(&len),
                "upload holds {len} bytes"
            );
            assert_eq!(upload_file_len(&data_dir, &id), Some(len as u64));
            let resp = expect_status(oci.patch(&location, len, &big[len..]), 202);
            assert_eq!(upload_len(&resp), big.len());
            expect_status(oci.finish(&location, &big_digest), 201);
            oci.check_blob("crash/big", &big_digest);
        }
        404 => assert_eq!(upload_file_len(&data_dir, &id), None),
        other => panic!(
            "upload status after restart: {other}: {}",
            status.text().unwrap_or_default()
        ),
    }
    // The abandoned session is cancelled by its client (or already gone).
    let resp = oci
        .http
        .delete(oci.url(&abandoned))
        .send()
        .expect("DELETE upload");
    assert!(
        [204, 404].contains(&resp.status().as_u16()),
        "DELETE abandoned upload: {}",
        resp.status()
    );
    assert_eq!(upload_files(&data_dir), vec![]);
}

#[test]
fn concurrent_pushes_sharing_base_layers_store_each_blob_once() {
    let (_data, server) = start_server(&[]);
    let data_dir = server.data_dir().to_path_buf();
    let layouts = TempDir::new().expect("tmp");
    let images: Vec<BuiltImage> = (0..8u64)
        .map(|i| {
            OciImageBuilder::new()
                .random_layer(1, 768 << 10)
                .random_layer(2, 256 << 10)
                .layer([("app/id.txt", format!("app {i}\n").into_bytes())])
                .cmd(&["/app/run"])
                .write(&layouts.path().join(format!("app{i}")), "v1")
        })
        .collect();
    let base: Vec<String> = images[0].layer_digests[..2].to_vec();
    for image in &images {
        assert_eq!(image.layer_digests[..2], base[..]);
    }

    let host = server.registry_host();
    let outputs: Vec<_> = thread::scope(|s| {
        let handles: Vec<_> = images
            .iter()
            .enumerate()
            .map(|(i, image)| {
                let dest = format!("docker://{host}/conc/app{i}:v1");
                s.spawn(move || {
                    Skopeo::new().copy_with(
                        &image.oci_ref(),
                        &dest,
                        CopyOptions {
                            preserve_digests: true,
                            ..CopyOptions::default()
                        },
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("push thread"))
            .collect()
    });
    for (i, out) in outputs.into_iter().enumerate() {
        out.assert_success(&format!("skopeo copy of app{i}"));
    }

    let oci = Oci::at(&server);
    for (i, image) in images.iter().enumerate() {
        let repo = format!("conc/app{i}");
        oci.check_image(&repo, "v1", image);
    }
    let mut expected: BTreeSet<String> = base.iter().cloned().collect();
    for image in &images {
        expected.insert(image.config_digest.clone());
        expected.insert(image.layer_digests[2].clone());
    }
    assert_eq!(expected.len(), 2 + 8 + 8);
    let on_disk = blob_files(&data_dir);
    assert_eq!(
        on_disk,
        expected.into_iter().collect::<Vec<_>>(),
        "blob files on disk"
    );
    assert_eq!(upload_files(&data_dir), vec![]);
}

#[test]
fn gc_collects_an_unreferenced_blob_and_keeps_referenced_ones() {
    let (_data, server) = start_server(&[]);
    let data_dir = server.data_dir().to_path_buf();
    let oci = Oci::at(&server);
    let layout = TempDir::new().expect("tmp");
    let image = small_image(layout.path(), 7);
    oci.push_image("gc/app", "v1", &image);
    let lone = random_bytes(5, 100_000);
    let lone_digest = oci.push_blob("gc/app", &lone);
    assert_eq!(blob_files(&data_dir).len(), 4);

    // Grace 0 takes links older than now; a run in the millisecond of the
    // upload itself may find nothing yet.
    let report = poll_until(Duration::from_secs(5), || {
        let report = oci.gc("grace_seconds=0");
        (report["blobs_deleted"] != 0).then_some(report)
    });
    assert_eq!(
        report,
        json!({"blobs_deleted": 1, "bytes_freed": lone.len(), "links_dropped": 1, "uploads_expired": 0})
    );
    assert_eq!(oci.head_blob("gc/app", &lone_digest), 404);
    let mut kept: Vec<String> = image
        .layer_digests
        .iter()
        .chain([&image.config_digest])
        .cloned()
        .collect();
    kept.sort();
    assert_eq!(blob_files(&data_dir), kept);
    oci.check_image("gc/app", "v1", &image);
    let inspected = Skopeo::new().inspect(
        &format!("docker://{}/gc/app:v1", server.registry_host()),
        None,
    );
    assert_eq!(inspected["Digest"], image.manifest_digest);

    // Nothing more to collect.
    assert_eq!(
        oci.gc("grace_seconds=0"),
        json!({"blobs_deleted": 0, "bytes_freed": 0, "links_dropped": 0, "uploads_expired": 0})
    );
}

#[test]
fn gc_with_a_grace_period_does_not_break_a_push_in_flight() {
    let (_data, server) = start_server(&[]);
    let oci = Oci::at(&server);
    let layout = TempDir::new().expect("tmp");
    let repo = "gc/in-flight";
    let image = small_image(layout.path(), 9);
    let nothing =
        json!({"blobs_deleted": 0, "bytes_freed": 0, "links_dropped": 0, "uploads_expired": 0});

    // Config and first layer uploaded, second layer half way, no manifest.
    oci.push_blob(repo, &image.config_bytes);
    oci.push_blob(repo, &image.read_blob(&image.layer_digests[0]));
    let layer = image.read_blob(&image.layer_digests[1]);
    let half = layer.len() / 2;
    let location = oci.start_upload(repo);
    expect_status(oci.patch(&location, 0, &layer[..half]), 202);

    // The collector with its default grace, and with a long one.
    assert_eq!(oci.gc(""), nothing);
    assert_eq!(oci.gc("grace_seconds=86400"), nothing);

    let resp = expect_status(oci.patch(&location, half, &layer[half..]), 202);
    assert_eq!(upload_len(&resp), layer.len());
    expect_status(oci.finish(&location, &image.layer_digests[1]), 201);
    assert_eq!(oci.gc(""), nothing);
    let resp = expect_status(oci.put_manifest(repo, "v1", &image.manifest_bytes), 201);
    assert_eq!(
        header(&resp, "docker-content-digest"),
        image.manifest_digest
    );
    oci.check_image(repo, "v1", &image);

    // Once the manifest is in, even grace 0 keeps every blob.
    assert_eq!(oci.gc("grace_seconds=0"), nothing);
    oci.check_image(repo, "v1", &image);
}

#[test]
fn ecr_malformed_json_is_an_aws_error_not_a_panic() {
    let (_data, server) = start_server(&[]);
    let http = Client::new();
    for (operation, body) in [
        ("CreateRepository", "{bad"),
        ("DescribeRepositories", "{bad"),
        ("CreateRepository", "[1, 2]"),
        ("CreateRepository", "{\"repositoryName\": 5}"),
    ] {
        let resp = http
            .post(server.url("/"))
            .header(
                "x-amz-target",
                format!("AmazonEC2ContainerRegistry_V20150921.{operation}"),
            )
            .header("content-type", "application/x-amz-json-1.1")
            .body(body)
            .send()
            .expect("POST ECR");
        let status = resp.status().as_u16();
        assert!(
            resp.headers().contains_key("x-amzn-requestid"),
            "{operation} {body}: no request id"
        );
        let text = resp.text().expect("body");
        assert_eq!(status, 400, "{operation} {body}: {text}");
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{operation} {body}: not JSON ({e}): {text}"));
        let kind = v["__type"].as_str().unwrap_or_default();
        assert!(
            kind.ends_with("SerializationException"),
            "{operation} {body}: {text}"
        );
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{text}"
        );
    }
    let health = http
        .get(server.url("/_stratus/health"))
        .send()
        .expect("health");
    assert_eq!(health.status(), 200);
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
}

#[test]
fn sigterm_exits_zero_even_with_a_stalled_upload_and_keeps_the_data() {
    let (_data, mut server) = start_server(&["--shutdown-grace-seconds", "2"]);
    let layout = TempDir::new().expect("tmp");
    let image = small_image(layout.path(), 3);
    let oci = Oci::at(&server);
    oci.push_image("term/app", "v1", &image);

    // A client stalled mid-body: the server may wait for it only as long
    // as its shutdown grace.
    let location = oci.start_upload("term/app");
    let stream = partial_patch(server.addr(), &location, 0, 4 * MIB, &[7u8; 1000]);
    drop(oci);
    server.stop();
    drop(stream);
    let stderr = server.stderr();
    assert!(!stderr.contains("panicked"), "{stderr}");

    server.restart();
    Oci::at(&server).check_image("term/app", "v1", &image);
    server.stop();
}
