//! `GetFunction`'s `Code.Location` for zip functions: a URL on Stratus
//! that downloads the package, like Lambda's presigned S3 URL. The URL
//! carries its account, package and expiry, signed with the server's
//! secret, and works for ten minutes.

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use hmac::{Mac, SimpleHmac};
use http::{header, HeaderValue, StatusCode};
use sha2::Sha256;

use crate::App;

/// Path prefix of download URLs.
pub(crate) const PREFIX: &str = "/_stratus/code/";
/// How long a URL works.
const VALID_FOR_S: i64 = 600;

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn signature(secret: &[u8], account: &str, sha: &str, expires: i64) -> String {
    let mut mac = <SimpleHmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| <SimpleHmac<Sha256> as Mac>::new_from_slice(b"").expect("empty key"));
    mac.update(format!("{account}\n{sha}\n{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The download URL of package `sha` (hex SHA-256) of `account`, under
/// `base` (`http://host:port`).
pub(crate) fn url(app: &App, base: &str, account: &str, sha: &str) -> String {
    let expires = now_unix() + VALID_FOR_S;
    let sig = signature(&app.token_secret, account, sha, expires);
    format!("{base}{PREFIX}{account}/{sha}.zip?Expires={expires}&Signature={sig}")
}

fn text(status: StatusCode, message: &str) -> Response {
    let mut r = Response::new(Body::from(format!("{message}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Serves `GET /_stratus/code/{account}/{sha}.zip?Expires=…&Signature=…`.
pub(crate) async fn serve(app: &App, req: Request) -> Response {
    let path = req.uri().path().to_string();
    let Some((account, file)) = path
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('/'))
    else {
        return text(StatusCode::NOT_FOUND, "no such function package");
    };
    let sha = file.strip_suffix(".zip").unwrap_or("");
    let params: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let expires: Option<i64> = param("Expires").and_then(|e| e.parse().ok());
    let (Some(expires), Some(sig)) = (expires, param("Signature")) else {
        return text(
            StatusCode::FORBIDDEN,
            "this download URL is not signed: get a fresh one from `aws lambda get-function` (Code.Location)",
        );
    };
    let expected = signature(&app.token_secret, account, sha, expires);
    if !constant_time_eq(expected.as_bytes(), sig.as_bytes()) {
        return text(
            StatusCode::FORBIDDEN,
            "the signature of this download URL does not match: get a fresh one from `aws lambda get-function` (Code.Location)",
        );
    }
    if expires < now_unix() {
        return text(
            StatusCode::FORBIDDEN,
            "this download URL has expired (they work for 10 minutes): get a fresh one from `aws lambda get-function`",
        );
    }
    let Some(file) = app.functions.zip_path(sha) else {
        return text(StatusCode::NOT_FOUND, "no such function package");
    };
    match tokio::fs::File::open(&file).await {
        Ok(f) => {
            let stream = tokio_util::io::ReaderStream::new(f);
            let mut r = Response::new(Body::from_stream(stream));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            );
            r
        }
        Err(_) => text(
            StatusCode::NOT_FOUND,
            "the package is no longer stored on this server",
        ),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_account_package_and_expiry() {
        let s = signature(b"k", "000000000000", "ab", 10);
        assert_eq!(s.len(), 64);
        assert_eq!(s, signature(b"k", "000000000000", "ab", 10));
        assert_ne!(s, signature(b"k", "111111111111", "ab", 10));
        assert_ne!(s, signature(b"k", "000000000000", "ac", 10));
        assert_ne!(s, signature(b"k", "000000000000", "ab", 11));
        assert_ne!(s, signature(b"j", "000000000000", "ab", 10));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
