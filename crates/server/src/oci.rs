//! The OCI distribution API (v1.1) under `/v2/`, as docker, skopeo,
//! containerd and the conformance suite speak it. Names may contain `/`,
//! so a path is routed by its suffix. Errors leave in the spec's
//! `{"errors":[…]}` envelope through one exhaustive mapping.

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use blobs::{BodyStream, Digest};
use futures::{StreamExt, TryStreamExt};
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use registry::manifest::{MAX_MANIFEST_BYTES, OCI_INDEX};
use registry::{Reference, RegistryError, RepositoryRow};

use crate::auth::{self, Denied, RegistryIdentity};
use crate::App;

/// What a `/v2/…` path addresses.
#[derive(Debug, PartialEq, Eq)]
enum Route<'a> {
    Base,
    Manifest { name: &'a str, reference: &'a str },
    Blob { name: &'a str, digest: &'a str },
    UploadStart { name: &'a str },
    Upload { name: &'a str, id: &'a str },
    Tags { name: &'a str },
    Referrers { name: &'a str, digest: &'a str },
}

fn route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags { name });
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Route::UploadStart { name });
    }
    // `<name>/<kind>/<last>` where <last> has no '/'.
    let (head, last) = rest.rsplit_once('/')?;
    let (name, kind) = head.rsplit_once('/')?;
    match kind {
        "manifests" => Some(Route::Manifest {
            name,
            reference: last,
        }),
        "blobs" => Some(Route::Blob { name, digest: last }),
        "referrers" => Some(Route::Referrers { name, digest: last }),
        "uploads" => name
            .strip_suffix("/blobs")
            .map(|name| Route::Upload { name, id: last }),
        _ => None,
    }
}

/// An error in the OCI envelope.
struct OciError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Extra headers (e.g. `Range` on a 416).
    headers: Vec<(header::HeaderName, String)>,
}

impl OciError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> OciError {
        OciError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }
}

impl From<RegistryError> for OciError {
    fn from(e: RegistryError) -> OciError {
        use StatusCode as S;
        let message = e.to_string();
        let (status, code) = match &e {
            RegistryError::RepositoryNotFound { .. } => (S::NOT_FOUND, "NAME_UNKNOWN"),
            RegistryError::InvalidRepositoryName(_) => (S::BAD_REQUEST, "NAME_INVALID"),
            RegistryError::RepositoryAlreadyExists { .. }
            | RegistryError::RepositoryNotEmpty { .. }
            | RegistryError::InvalidParameter(_)
            | RegistryError::LifecyclePolicyNotFound { .. }
            | RegistryError::RepositoryPolicyNotFound { .. } => (S::BAD_REQUEST, "UNSUPPORTED"),
            RegistryError::InvalidTag(_) | RegistryError::TagImmutable { .. } => {
                (S::BAD_REQUEST, "TAG_INVALID")
            }
            RegistryError::DigestInvalid(_) | RegistryError::DigestMismatch { .. } => {
                (S::BAD_REQUEST, "DIGEST_INVALID")
            }
            RegistryError::ManifestUnknown { .. } => (S::NOT_FOUND, "MANIFEST_UNKNOWN"),
            RegistryError::ManifestInvalid(_) => (S::BAD_REQUEST, "MANIFEST_INVALID"),
            RegistryError::ManifestTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "SIZE_INVALID"),
            RegistryError::ManifestBlobUnknown(_)
            | RegistryError::ReferencedManifestsUnknown(_) => {
                (S::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
            }
            RegistryError::BlobUnknown(_) => (S::NOT_FOUND, "BLOB_UNKNOWN"),
            RegistryError::UploadUnknown(_) => (S::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
            RegistryError::UploadBusy(_) => (S::CONFLICT, "BLOB_UPLOAD_INVALID"),
            RegistryError::RangeInvalid { current, .. } => {
                let mut err =
                    OciError::new(S::RANGE_NOT_SATISFIABLE, "BLOB_UPLOAD_INVALID", message);
                err.headers.push((header::RANGE, range_value(*current)));
                return err;
            }
            RegistryError::RangeNotSatisfiable(_) => (S::RANGE_NOT_SATISFIABLE, "RANGE_INVALID"),
            RegistryError::BlobTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "SIZE_INVALID"),
            RegistryError::BodyFailed(_) => (S::BAD_REQUEST, "BLOB_UPLOAD_INVALID"),
            RegistryError::Internal(_) => {
                tracing::error!(error = %e, "registry storage error");
                (S::INTERNAL_SERVER_ERROR, "UNKNOWN")
            }
        };
        OciError::new(status, code, message)
    }
}

type OciResult = Result<Response, OciError>;

fn range_value(len: u64) -> String {
    format!("0-{}", len.saturating_sub(1))
}

fn finish(mut r: Response) -> Response {
    r.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    r
}

fn error_response(app: &App, e: OciError) -> Response {
    let body = serde_json::json!({"errors": [{"code": e.code, "message": e.message, "detail": serde_json::Value::Null}]});
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = e.status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for (name, value) in e.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    if e.status == StatusCode::UNAUTHORIZED {
        let realm = format!(
            "Basic realm=\"http://localhost:{}/\",service=\"ecr.amazonaws.com\"",
            app.port
        );
        if let Ok(v) = HeaderValue::from_str(&realm) {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
    }
    finish(r)
}

pub(crate) async fn handle(app: &App, req: Request) -> Response {
    let identity =
        match auth::registry_identity(app, req.headers()) {
            Ok(i) => i,
            Err(Denied::Unauthorized(why)) => {
                return error_response(
                    app,
                    OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", why),
                )
            }
            Err(Denied::WrongAccount) => return error_response(
                app,
                OciError::new(
                    StatusCode::FORBIDDEN,
                    "DENIED",
                    "the registry token belongs to another account than the registry host names",
                ),
            ),
        };
    match dispatch(app, &identity, req).await {
        Ok(r) => finish(r),
        Err(e) => error_response(app, e),
    }
}

async fn dispatch(app: &App, id: &RegistryIdentity, req: Request) -> OciResult {
    let path = req.uri().path().to_string();
    let Some(route) = route(&path) else {
        return Err(OciError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("no registry endpoint at {path}"),
        ));
    };
    let method = req.method().clone();
    let query = query_pairs(req.uri().query());
    match (route, &method) {
        (Route::Base, &Method::GET | &Method::HEAD) => {
            Ok(json_response(StatusCode::OK, "{}".into()))
        }
        (Route::Manifest { name, reference }, &Method::GET | &Method::HEAD) => {
            let repo = repo(app, id, name, false).await?;
            get_manifest(app, &repo, reference, method == Method::HEAD).await
        }
        (Route::Manifest { name, reference }, &Method::PUT) => {
            let repo = repo(app, id, name, true).await?;
            put_manifest(app, &repo, reference, req).await
        }
        (Route::Manifest { name, reference }, &Method::DELETE) => {
            let repo = repo(app, id, name, false).await?;
            match existing_reference(&repo, reference)? {
                Reference::Digest(d) => app.registry.delete_manifest(&repo, &d).await?,
                Reference::Tag(t) => {
                    app.registry.delete_tag(&repo, &t, false).await?;
                }
            }
            Ok(empty(StatusCode::ACCEPTED))
        }
        (Route::Blob { name, digest }, &Method::GET | &Method::HEAD) => {
            let repo = repo(app, id, name, false).await?;
            get_blob(app, &repo, digest, method == Method::HEAD, req.headers()).await
        }
        (Route::Blob { name, digest }, &Method::DELETE) => {
            let repo = repo(app, id, name, false).await?;
            app.registry
                .delete_blob(&repo, &parse_digest(digest)?)
                .await?;
            Ok(empty(StatusCode::ACCEPTED))
        }
        (Route::UploadStart { name }, &Method::POST) => {
            let repo = repo(app, id, name, true).await?;
            start_upload(app, &repo, &query, req).await
        }
        (Route::Upload { name, id: upload }, &Method::GET) => {
            let repo = repo(app, id, name, false).await?;
            let len = app.registry.upload_status(&repo, upload).await?;
            Ok(upload_response(
                StatusCode::NO_CONTENT,
                &repo.name,
                upload,
                len,
            ))
        }
        (Route::Upload { name, id: upload }, &Method::PATCH) => {
            let repo = repo(app, id, name, true).await?;
            let start = content_range_start(req.headers())?;
            let body = body_stream(app, req.into_body());
            let len = app
                .registry
                .upload_append(&repo, upload, start, body)
                .await?;
            Ok(upload_response(
                StatusCode::ACCEPTED,
                &repo.name,
                upload,
                len,
            ))
        }
        (Route::Upload { name, id: upload }, &Method::PUT) => {
            let repo = repo(app, id, name, true).await?;
            let digest = query_digest(&query)?;
            let last = if has_body(req.headers()) {
                let start = content_range_start(req.headers())?;
                Some((start, body_stream(app, req.into_body())))
            } else {
                None
            };
            app.registry
                .upload_finish(&repo, upload, &digest, last)
                .await?;
            Ok(blob_created(&repo.name, &digest))
        }
        (Route::Upload { name, id: upload }, &Method::DELETE) => {
            let repo = repo(app, id, name, false).await?;
            app.registry.upload_cancel(&repo, upload).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (Route::Tags { name }, &Method::GET) => {
            let repo = repo(app, id, name, false).await?;
            tags_list(app, &repo, &query).await
        }
        (Route::Referrers { name, digest }, &Method::GET) => {
            let repo = repo(app, id, name, false).await?;
            referrers(app, &repo, digest, &query).await
        }
        (_, m) => Err(OciError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            format!("{m} is not supported on {path}"),
        )),
    }
}

async fn repo(
    app: &App,
    id: &RegistryIdentity,
    name: &str,
    for_push: bool,
) -> Result<RepositoryRow, OciError> {
    match app.registry.resolve(&id.account, id.region.as_deref(), name, for_push).await {
        Ok(r) => Ok(r),
        Err(RegistryError::RepositoryNotFound { name, account }) => Err(OciError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!(
                "repository '{name}' does not exist in the registry with id '{account}'; create it with `aws ecr create-repository --repository-name {name}` (or start stratus with --auto-create-repositories)"
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.map(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    })
    .unwrap_or_default()
}

fn query_get<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn parse_digest(s: &str) -> Result<Digest, OciError> {
    Digest::parse(s)
        .map_err(|e| OciError::new(StatusCode::BAD_REQUEST, "DIGEST_INVALID", e.to_string()))
}

fn query_digest(q: &[(String, String)]) -> Result<Digest, OciError> {
    let d = query_get(q, "digest").ok_or_else(|| {
        OciError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "the digest query parameter is required to complete an upload",
        )
    })?;
    parse_digest(d)
}

fn has_body(h: &HeaderMap) -> bool {
    let length = h
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match length {
        Some(n) => n > 0,
        None => h.contains_key(header::TRANSFER_ENCODING),
    }
}

/// `Content-Range: <start>-<end>` (also tolerating a `bytes ` prefix and a
/// `/total` suffix) → the chunk's first byte.
fn content_range_start(h: &HeaderMap) -> Result<Option<u64>, OciError> {
    let Some(v) = h.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = || {
        OciError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "BLOB_UPLOAD_INVALID",
            "Content-Range must be <start>-<end>",
        )
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = s.strip_prefix("bytes").map(str::trim_start).unwrap_or(s);
    let s = s.trim_start_matches('=').split('/').next().unwrap_or("");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    if b < a {
        return Err(bad());
    }
    Ok(Some(a))
}

fn body_stream(app: &App, body: Body) -> BodyStream {
    let metrics = app.metrics.clone();
    body.into_data_stream()
        .inspect_ok(move |chunk| {
            metrics
                .blob_bytes_received
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        })
        .map_err(|e| -> blobs::BodyError { Box::new(e) })
        .boxed()
}

fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn set(r: &mut Response, name: impl header::IntoHeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

fn upload_response(status: StatusCode, name: &str, id: &str, len: u64) -> Response {
    let mut r = empty(status);
    set(
        &mut r,
        header::LOCATION,
        &format!("/v2/{name}/blobs/uploads/{id}"),
    );
    set(&mut r, header::RANGE, &range_value(len));
    set(&mut r, "docker-upload-uuid", id);
    r
}

fn blob_created(name: &str, digest: &Digest) -> Response {
    let mut r = empty(StatusCode::CREATED);
    set(
        &mut r,
        header::LOCATION,
        &format!("/v2/{name}/blobs/{digest}"),
    );
    set(&mut r, "docker-content-digest", digest.as_str());
    r
}

async fn start_upload(
    app: &App,
    repo: &RepositoryRow,
    query: &[(String, String)],
    req: Request,
) -> OciResult {
    if let (Some(mount), Some(from)) = (query_get(query, "mount"), query_get(query, "from")) {
        let digest = parse_digest(mount)?;
        if app
            .registry
            .mount_blob(repo, &digest, from)
            .await?
            .is_some()
        {
            return Ok(blob_created(&repo.name, &digest));
        }
    }
    let monolithic = query_get(query, "digest").map(parse_digest).transpose()?;
    let id = app.registry.upload_start(repo).await?;
    if let Some(digest) = monolithic {
        // Monolithic upload: the whole blob is the POST body. The client
        // never learns this session's id, so a failure must not leave it.
        let body = body_stream(app, req.into_body());
        if let Err(e) = app
            .registry
            .upload_finish(repo, &id, &digest, Some((None, body)))
            .await
        {
            if let Err(cancel) = app.registry.upload_cancel(repo, &id).await {
                tracing::debug!(error = %cancel, "upload session already gone");
            }
            return Err(e.into());
        }
        return Ok(blob_created(&repo.name, &digest));
    }
    Ok(upload_response(StatusCode::ACCEPTED, &repo.name, &id, 0))
}

/// A reference a GET, HEAD or DELETE names. What the tag grammar forbids
/// can name no manifest, so it is unknown (404 `MANIFEST_UNKNOWN`, as the
/// conformance suite expects of `.INVALID_MANIFEST_NAME`); a malformed
/// digest stays a 400 `DIGEST_INVALID`, and a push under a bad tag a 400
/// `TAG_INVALID`.
fn existing_reference(repo: &RepositoryRow, reference: &str) -> Result<Reference, OciError> {
    match Reference::parse(reference) {
        Ok(r) => Ok(r),
        Err(RegistryError::InvalidTag(tag)) => Err(RegistryError::ManifestUnknown {
            repository: repo.name.clone(),
            reference: tag,
        }
        .into()),
        Err(e) => Err(e.into()),
    }
}

async fn get_manifest(app: &App, repo: &RepositoryRow, reference: &str, head: bool) -> OciResult {
    let reference = existing_reference(repo, reference)?;
    let m = app.registry.manifest(repo, &reference).await?;
    let len = m.content.len();
    let mut r = if head {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(m.content))
    };
    set(&mut r, header::CONTENT_TYPE, &m.media_type);
    set(&mut r, header::CONTENT_LENGTH, &len.to_string());
    set(&mut r, "docker-content-digest", &m.digest);
    set(&mut r, header::ETAG, &format!("\"{}\"", m.digest));
    if !head {
        // Best effort, off the response path: ECR's lastRecordedPullTime.
        let store_repo = repo.clone();
        let digest = m.digest.clone();
        let registry = app.registry.clone();
        tokio::spawn(async move {
            if let Err(e) = registry.record_pull(&store_repo, &digest).await {
                tracing::debug!(error = %e, "could not record pull time");
            }
        });
    }
    Ok(r)
}

async fn put_manifest(app: &App, repo: &RepositoryRow, reference: &str, req: Request) -> OciResult {
    let reference = Reference::parse(reference)?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = axum::body::to_bytes(req.into_body(), MAX_MANIFEST_BYTES)
        .await
        .map_err(|_| {
            OciError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                format!("manifest exceeds the {MAX_MANIFEST_BYTES}-byte limit"),
            )
        })?;
    let (tag, expected) = match &reference {
        Reference::Tag(t) => (Some(t.as_str()), None),
        Reference::Digest(d) => (None, Some(d)),
    };
    let put = app
        .registry
        .put_manifest(repo, tag, expected, &bytes, content_type.as_deref())
        .await?;
    let mut r = empty(StatusCode::CREATED);
    set(
        &mut r,
        header::LOCATION,
        &format!("/v2/{}/manifests/{}", repo.name, put.digest),
    );
    set(&mut r, "docker-content-digest", put.digest.as_str());
    if let Some(subject) = &put.subject {
        set(&mut r, "oci-subject", subject);
    }
    Ok(r)
}

/// `Range: bytes=a-b`, `bytes=a-`, `bytes=-n` → inclusive range.
fn parse_range(h: &HeaderMap, size: u64) -> Option<Result<(u64, u64), OciError>> {
    let v = h.get(header::RANGE)?.to_str().ok()?;
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // multiple ranges: serve the whole blob
    }
    let (a, b) = spec.split_once('-')?;
    let unsatisfiable = || {
        Err(OciError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "RANGE_INVALID",
            format!("range {spec} is outside the blob of {size} bytes"),
        ))
    };
    let range = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 || size == 0 {
                return Some(unsatisfiable());
            }
            (size.saturating_sub(n), size - 1)
        }
        (a, "") => (a.parse().ok()?, size.saturating_sub(1)),
        (a, b) => {
            let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
            (a, b.min(size.saturating_sub(1)))
        }
    };
    if range.0 > range.1 || range.0 >= size {
        return Some(unsatisfiable());
    }
    Some(Ok(range))
}

async fn get_blob(
    app: &App,
    repo: &RepositoryRow,
    digest: &str,
    head: bool,
    headers: &HeaderMap,
) -> OciResult {
    let digest = parse_digest(digest)?;
    let size = app
        .registry
        .blob_size(repo, &digest)
        .await?
        .ok_or_else(|| RegistryError::BlobUnknown(digest.to_string()))?;
    let range = match parse_range(headers, size) {
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => {
            let mut e = e;
            e.headers
                .push((header::CONTENT_RANGE, format!("bytes */{size}")));
            return Err(e);
        }
        None => None,
    };
    let mut r = if head {
        Response::new(Body::empty())
    } else {
        let read = app.registry.blob_read(repo, &digest, range).await?;
        let metrics = app.metrics.clone();
        let stream = read.stream.inspect(move |chunk| {
            if let Ok(c) = chunk {
                metrics
                    .blob_bytes_sent
                    .fetch_add(c.len() as u64, Ordering::Relaxed);
            }
        });
        Response::new(Body::from_stream(stream))
    };
    let len = match range {
        Some((a, b)) => {
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            set(
                &mut r,
                header::CONTENT_RANGE,
                &format!("bytes {a}-{b}/{size}"),
            );
            b - a + 1
        }
        None => size,
    };
    set(&mut r, header::CONTENT_LENGTH, &len.to_string());
    set(&mut r, header::CONTENT_TYPE, "application/octet-stream");
    set(&mut r, header::ACCEPT_RANGES, "bytes");
    set(&mut r, "docker-content-digest", digest.as_str());
    set(&mut r, header::ETAG, &format!("\"{digest}\""));
    Ok(r)
}

/// Most tags one page lists when the client sets no `n`.
const MAX_TAGS_PAGE: i64 = 10_000;

async fn tags_list(app: &App, repo: &RepositoryRow, query: &[(String, String)]) -> OciResult {
    let n = match query_get(query, "n") {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            OciError::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                format!("n={v} is not a non-negative integer"),
            )
        })?),
    };
    let last = query_get(query, "last");
    let limit = n.unwrap_or(MAX_TAGS_PAGE).min(MAX_TAGS_PAGE);
    let tags = if limit == 0 {
        Vec::new()
    } else {
        app.registry.tags_list(repo, last, limit + 1).await?
    };
    let more = tags.len() as i64 > limit;
    let tags: Vec<String> = tags.into_iter().take(limit as usize).collect();
    let body = serde_json::json!({"name": repo.name, "tags": tags});
    let mut r = json_response(StatusCode::OK, body.to_string());
    if more {
        if let Some(last) = tags.last() {
            let last: String = url::form_urlencoded::byte_serialize(last.as_bytes()).collect();
            set(
                &mut r,
                header::LINK,
                &format!(
                    "</v2/{}/tags/list?n={limit}&last={last}>; rel=\"next\"",
                    repo.name
                ),
            );
        }
    }
    Ok(r)
}

async fn referrers(
    app: &App,
    repo: &RepositoryRow,
    digest: &str,
    query: &[(String, String)],
) -> OciResult {
    let digest = parse_digest(digest)?;
    let filter = query_get(query, "artifactType");
    let mut manifests = Vec::new();
    for m in app.registry.referrers(repo, &digest).await? {
        if filter.is_some_and(|f| m.artifact_type.as_deref() != Some(f)) {
            continue;
        }
        let mut d = serde_json::json!({
            "mediaType": m.media_type,
            "digest": m.digest,
            "size": m.content.len(),
        });
        if let Some(t) = &m.artifact_type {
            d["artifactType"] = serde_json::json!(t);
        }
        if let Some(a) = m
            .annotations_json
            .as_deref()
            .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
        {
            d["annotations"] = a;
        }
        manifests.push(d);
    }
    let body =
        serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
    let mut r = json_response(StatusCode::OK, body.to_string());
    set(&mut r, header::CONTENT_TYPE, OCI_INDEX);
    if filter.is_some() {
        set(&mut r, "oci-filters-applied", "artifactType");
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_suffix_with_slashes_in_names() {
        assert_eq!(route("/v2/"), Some(Route::Base));
        assert_eq!(route("/v2"), Some(Route::Base));
        assert_eq!(
            route("/v2/team/app/manifests/latest"),
            Some(Route::Manifest {
                name: "team/app",
                reference: "latest"
            })
        );
        assert_eq!(
            route("/v2/a/blobs/x/blobs/sha256:ab"),
            Some(Route::Blob {
                name: "a/blobs/x",
                digest: "sha256:ab"
            })
        );
        assert_eq!(
            route("/v2/a/b/blobs/uploads/"),
            Some(Route::UploadStart { name: "a/b" })
        );
        assert_eq!(
            route("/v2/a/b/blobs/uploads/123-abc"),
            Some(Route::Upload {
                name: "a/b",
                id: "123-abc"
            })
        );
        assert_eq!(
            route("/v2/a/b/tags/list"),
            Some(Route::Tags { name: "a/b" })
        );
        assert_eq!(
            route("/v2/a/referrers/sha256:1"),
            Some(Route::Referrers {
                name: "a",
                digest: "sha256:1"
            })
        );
        assert_eq!(route("/v2/a/unknown/x"), None);
    }

    #[test]
    fn parses_ranges() {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_static("bytes=2-5"));
        assert!(matches!(parse_range(&h, 10), Some(Ok((2, 5)))));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=-3"));
        assert!(matches!(parse_range(&h, 10), Some(Ok((7, 9)))));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=8-"));
        assert!(matches!(parse_range(&h, 10), Some(Ok((8, 9)))));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=10-12"));
        assert!(matches!(parse_range(&h, 10), Some(Err(_))));
        let mut c = HeaderMap::new();
        c.insert(header::CONTENT_RANGE, HeaderValue::from_static("0-99"));
        assert!(matches!(content_range_start(&c), Ok(Some(0))));
        c.insert(header::CONTENT_RANGE, HeaderValue::from_static("9-1"));
        assert!(content_range_start(&c).is_err());
    }
}
