//! AWS Signature Version 4: parsing and verifying signed requests.
//!
//! A signature covers a *canonical request* built from the request as the
//! client sent it, so [`verify`] needs the request head exactly as received
//! (path and query not rewritten) and the whole body.
//!
//! The canonical form follows the rules for every service except S3, which
//! Stratus does not serve:
//!
//! * **URI**: the path as sent (already percent-encoded by the client), with
//!   dot segments and empty segments removed, percent-encoded *again* with
//!   everything but `A-Za-z0-9-_.~/` escaped. botocore quotes
//!   `/functions/my%3Afn` to `/functions/my%253Afn`; the other SDKs agree.
//! * **Query**: each name and value percent-decoded, re-encoded with only the
//!   unreserved characters left bare, sorted by name then value. A second
//!   form, the raw pairs sorted as sent, is what botocore signs when it takes
//!   a query straight from a URL; both are accepted.
//! * **Headers**: the signed headers, lowercase, each value trimmed with inner
//!   runs of whitespace collapsed, repeated headers joined with `,`.
//! * **Payload**: the `x-amz-content-sha256` value when sent (checked against
//!   the body when it is a hash), else the SHA-256 of the body; presigned
//!   URLs may also sign `UNSIGNED-PAYLOAD`.
//!
//! Each accepted alternative is a form some client signs; a signature must
//! still match one canonical request built from the received bytes, so
//! accepting several forms does not let a signature cover another request.

use std::fmt;

use ::time::{Date, Duration, Month, OffsetDateTime, Time, UtcOffset};
use hmac::Mac;
use http::header::{AUTHORIZATION, DATE};
use http::request::Parts;
use http::{HeaderName, StatusCode};
use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use crate::error::{AwsError, Protocol};
use crate::mac::{hmac_sha256, sign};

/// The only signing algorithm SigV4 defines.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last element of every credential scope.
pub const TERMINATOR: &str = "aws4_request";
/// How far a header-signed request's date may be from the server's clock.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(15);
/// The longest `X-Amz-Expires` a presigned URL may ask for: one week.
pub const MAX_PRESIGNED_EXPIRES_SECONDS: u64 = 604_800;
/// The payload hash of requests that do not sign their body.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Unsigned, aws-chunked body with trailing checksums (botocore, S3 style).
const STREAMING_UNSIGNED_PAYLOAD_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
const CONTENT_SHA256: &str = "x-amz-content-sha256";
const AMZ_DATE: &str = "x-amz-date";

/// Characters left bare in canonical query names and values (RFC 3986
/// unreserved).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// Characters left bare in the canonical URI.
const UNRESERVED_AND_SLASH: &AsciiSet = &UNRESERVED.remove(b'/');

const SIGNATURE_MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
const INVALID_TOKEN_MESSAGE: &str = "The security token included in the request is invalid.";

/// The credential scope of a signature:
/// `<access key id>/<yyyymmdd>/<region>/<service>/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Credential {
    pub access_key_id: String,
    /// `yyyymmdd`.
    pub date: String,
    pub region: String,
    pub service: String,
}

impl Credential {
    /// The scope without the access key: `yyyymmdd/region/service/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/{TERMINATOR}",
            self.date, self.region, self.service
        )
    }

    fn parse(value: &str) -> Result<Credential, SigV4Error> {
        let malformed = || SigV4Error::MalformedCredential(value.to_owned());
        let mut elements = value.split('/');
        let mut next = || elements.next().ok_or_else(malformed);
        let (access_key_id, date, region, service, terminator) =
            (next()?, next()?, next()?, next()?, next()?);
        if elements.next().is_some() {
            return Err(malformed());
        }
        if access_key_id.is_empty()
            || region.is_empty()
            || service.is_empty()
            || date.len() != 8
            || !date.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(malformed());
        }
        if terminator != TERMINATOR {
            return Err(SigV4Error::BadTerminator(terminator.to_owned()));
        }
        Ok(Credential {
            access_key_id: access_key_id.to_owned(),
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
        })
    }
}

/// The signature a request carries, from its `Authorization` header or its
/// presigned query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequestAuth {
    pub credential: Credential,
    /// Lowercase header names, in the order the client listed them.
    pub signed_headers: Vec<String>,
    /// Hex, as sent.
    pub signature: String,
    /// `true` when the signature came from the query string.
    pub presigned: bool,
    /// The request time in ISO 8601 basic format (`20261128T015317Z`).
    /// Parsing fills it from `X-Amz-Date` for presigned URLs only; [`verify`]
    /// fills it from the `X-Amz-Date` or `Date` header.
    pub amz_date: Option<String>,
}

/// Why a request's signature was refused. [`SigV4Error::to_aws_error`] turns
/// it into the error AWS would return.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("request carries neither an authorization header nor a presigned query")]
    MissingAuthentication,
    #[error("unsupported signing algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("signature lacks its {0} component")]
    MissingComponent(&'static str),
    #[error("malformed signature: {0}")]
    Malformed(String),
    #[error("malformed credential scope {0:?}")]
    MalformedCredential(String),
    #[error("credential scope ends in {0:?} instead of aws4_request")]
    BadTerminator(String),
    #[error("request has neither an x-amz-date nor a date header")]
    MissingDate,
    #[error("request date {0:?} is not in iso 8601 basic format")]
    InvalidDate(String),
    #[error("credential scope date {scope} does not match request date {request}")]
    ScopeDateMismatch { scope: String, request: String },
    #[error("host is not among the signed headers")]
    HostNotSigned,
    #[error("presigned x-amz-expires {0:?} is not a number of seconds up to one week")]
    InvalidExpires(String),
    #[error("unsupported x-amz-content-sha256 value {0:?}")]
    UnsupportedPayload(String),
    #[error("x-amz-content-sha256 does not match the body")]
    PayloadHashMismatch,
    #[error("unknown access key id {0:?}")]
    UnknownAccessKey(String),
    #[error("signature does not match")]
    SignatureMismatch,
    #[error("request time {} is more than 15 minutes from server time {}", basic(.signed), basic(.now))]
    RequestTimeTooSkewed {
        signed: OffsetDateTime,
        now: OffsetDateTime,
    },
    #[error("presigned request signed at {} for {expires_seconds}s has expired at {}", basic(.signed), basic(.now))]
    Expired {
        signed: OffsetDateTime,
        expires_seconds: u64,
        now: OffsetDateTime,
    },
}

impl SigV4Error {
    /// The error a JSON service (ECR, Lambda, API Gateway, Logs) returns.
    pub fn to_aws_error(&self) -> AwsError {
        self.to_aws_error_for(Protocol::Json11)
    }

    /// The error a service speaking `protocol` returns. JSON services use
    /// the `…Exception` codes (`InvalidSignatureException`); Query services
    /// (STS, IAM) the bare ones (`SignatureDoesNotMatch`).
    pub fn to_aws_error_for(&self, protocol: Protocol) -> AwsError {
        use SigV4Error::*;
        #[derive(Clone, Copy)]
        enum Kind {
            Missing,
            Incomplete,
            Invalid,
            UnknownKey,
        }
        let (kind, message) = match self {
            MissingAuthentication => (Kind::Missing, "Missing Authentication Token".to_owned()),
            UnsupportedAlgorithm(algorithm) => (
                Kind::Incomplete,
                format!("Unsupported AWS 'algorithm': '{algorithm}'."),
            ),
            MissingComponent(name) if name.starts_with("X-Amz-") => (
                Kind::Incomplete,
                format!("AWS query-string parameters must include '{name}'. Re-examine the query-string parameters."),
            ),
            MissingComponent(name) => (
                Kind::Incomplete,
                format!("Authorization header requires '{name}' parameter."),
            ),
            Malformed(detail) => (
                Kind::Incomplete,
                format!("Authorization is malformed: {detail}."),
            ),
            MalformedCredential(credential) => (
                Kind::Incomplete,
                format!("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"),
            ),
            BadTerminator(terminator) => (
                Kind::Incomplete,
                format!("Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."),
            ),
            MissingDate => (
                Kind::Incomplete,
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".to_owned(),
            ),
            InvalidDate(date) => (
                Kind::Incomplete,
                format!("Date must be in ISO-8601 'basic format'. Got '{date}'. See http://en.wikipedia.org/wiki/ISO_8601"),
            ),
            ScopeDateMismatch { scope, request } => (
                Kind::Invalid,
                format!(
                    "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope}' != '{}', from '{request}'.",
                    request.get(..8).unwrap_or(request)
                ),
            ),
            HostNotSigned => (
                Kind::Incomplete,
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
            ),
            InvalidExpires(value) => (
                Kind::Incomplete,
                format!("X-Amz-Expires must be a whole number of seconds between 0 and {MAX_PRESIGNED_EXPIRES_SECONDS}, got '{value}'."),
            ),
            UnsupportedPayload(value) => (
                Kind::Incomplete,
                format!("Unsupported 'x-amz-content-sha256' value '{value}': sign the payload or send UNSIGNED-PAYLOAD."),
            ),
            PayloadHashMismatch => (
                Kind::Invalid,
                "The provided 'x-amz-content-sha256' header does not match what was computed.".to_owned(),
            ),
            UnknownAccessKey(_) => (Kind::UnknownKey, INVALID_TOKEN_MESSAGE.to_owned()),
            SignatureMismatch => (Kind::Invalid, SIGNATURE_MISMATCH_MESSAGE.to_owned()),
            RequestTimeTooSkewed { signed, now } => (Kind::Invalid, skew_message(*signed, *now)),
            Expired {
                signed,
                expires_seconds,
                now,
            } => {
                let earliest = i64::try_from(*expires_seconds)
                    .ok()
                    .and_then(|s| now.checked_sub(Duration::seconds(s)))
                    .unwrap_or(*now);
                (
                    Kind::Invalid,
                    format!(
                        "Signature expired: {} is now earlier than {} ({} - {expires_seconds} sec.)",
                        basic(signed),
                        basic(&earliest),
                        basic(now)
                    ),
                )
            }
        };
        let query = protocol == Protocol::Query;
        let (status, code) = match (kind, query) {
            (Kind::Missing, false) => {
                (StatusCode::FORBIDDEN, "MissingAuthenticationTokenException")
            }
            (Kind::Missing, true) => (StatusCode::FORBIDDEN, "MissingAuthenticationToken"),
            (Kind::Incomplete, false) => (StatusCode::BAD_REQUEST, "IncompleteSignatureException"),
            (Kind::Incomplete, true) => (StatusCode::BAD_REQUEST, "IncompleteSignature"),
            (Kind::Invalid, false) => (StatusCode::FORBIDDEN, "InvalidSignatureException"),
            (Kind::Invalid, true) => (StatusCode::FORBIDDEN, "SignatureDoesNotMatch"),
            (Kind::UnknownKey, false) => (StatusCode::FORBIDDEN, "UnrecognizedClientException"),
            (Kind::UnknownKey, true) => (StatusCode::FORBIDDEN, "InvalidClientTokenId"),
        };
        AwsError::new(status, code, message)
    }
}

fn skew_message(signed: OffsetDateTime, now: OffsetDateTime) -> String {
    if signed < now {
        let bound = now.checked_sub(MAX_CLOCK_SKEW).unwrap_or(now);
        format!(
            "Signature expired: {} is now earlier than {} ({} - 15 min.)",
            basic(&signed),
            basic(&bound),
            basic(&now)
        )
    } else {
        let bound = now.checked_add(MAX_CLOCK_SKEW).unwrap_or(now);
        format!(
            "Signature not yet current: {} is still later than {} ({} + 15 min.)",
            basic(&signed),
            basic(&bound),
            basic(&now)
        )
    }
}

/// Formats a time as ISO 8601 basic, `20261128T015317Z`.
fn basic(t: &OffsetDateTime) -> impl fmt::Display {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses an `Authorization` header value:
/// `AWS4-HMAC-SHA256 Credential=AKID/20261128/us-east-1/ecr/aws4_request,
/// SignedHeaders=host;x-amz-date, Signature=…`. Components may be separated
/// by commas, whitespace or both and come in any order; unknown components
/// are ignored.
pub fn parse_authorization_header(value: &str) -> Result<SignedRequestAuth, SigV4Error> {
    let value = value.trim();
    if value.is_empty() {
        return Err(SigV4Error::Malformed(
            "authorization header is empty".into(),
        ));
    }
    let separator = |c: char| c == ',' || c.is_ascii_whitespace();
    let (algorithm, rest) = value.split_at(value.find(separator).unwrap_or(value.len()));
    if !algorithm.eq_ignore_ascii_case(ALGORITHM) {
        return Err(SigV4Error::UnsupportedAlgorithm(algorithm.to_owned()));
    }
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for item in rest.split(separator).filter(|item| !item.is_empty()) {
        let Some((key, value)) = item.split_once('=') else {
            return Err(SigV4Error::Malformed(format!(
                "authorization component {item:?} is not a key=value pair"
            )));
        };
        let slot = if key.eq_ignore_ascii_case("Credential") {
            &mut credential
        } else if key.eq_ignore_ascii_case("SignedHeaders") {
            &mut signed_headers
        } else if key.eq_ignore_ascii_case("Signature") {
            &mut signature
        } else {
            continue;
        };
        if slot.replace(value).is_some() {
            return Err(SigV4Error::Malformed(format!(
                "authorization component {key} appears twice"
            )));
        }
    }
    build_auth(
        credential.ok_or(SigV4Error::MissingComponent("Credential"))?,
        signed_headers.ok_or(SigV4Error::MissingComponent("SignedHeaders"))?,
        signature.ok_or(SigV4Error::MissingComponent("Signature"))?,
        false,
        None,
    )
}

fn build_auth(
    credential: &str,
    signed_headers: &str,
    signature: &str,
    presigned: bool,
    amz_date: Option<String>,
) -> Result<SignedRequestAuth, SigV4Error> {
    let credential = Credential::parse(credential)?;
    let signed_headers: Vec<String> = signed_headers
        .split(';')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    if signed_headers.iter().any(String::is_empty) {
        return Err(SigV4Error::Malformed(
            "signed headers list has an empty name".into(),
        ));
    }
    if signature.is_empty() {
        return Err(SigV4Error::Malformed("signature is empty".into()));
    }
    Ok(SignedRequestAuth {
        credential,
        signed_headers,
        signature: signature.to_owned(),
        presigned,
        amz_date,
    })
}

/// The SigV4 parameters of a presigned query, plus its `X-Amz-Expires`.
struct Presigned {
    auth: SignedRequestAuth,
    expires: Option<String>,
}

/// Parses a presigned query (`X-Amz-Algorithm=AWS4-HMAC-SHA256&
/// X-Amz-Credential=…&X-Amz-SignedHeaders=…&X-Amz-Signature=…&X-Amz-Date=…`).
/// `None` when the query carries none of `X-Amz-Algorithm`,
/// `X-Amz-Credential` and `X-Amz-Signature`, i.e. is not presigned at all.
pub fn parse_presigned_query(query: &str) -> Option<Result<SignedRequestAuth, SigV4Error>> {
    parse_presigned(query).map(|result| result.map(|presigned| presigned.auth))
}

fn parse_presigned(query: &str) -> Option<Result<Presigned, SigV4Error>> {
    let mut algorithm = None;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    let mut date = None;
    let mut expires = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match key {
            "X-Amz-Algorithm" => &mut algorithm,
            "X-Amz-Credential" => &mut credential,
            "X-Amz-SignedHeaders" => &mut signed_headers,
            "X-Amz-Signature" => &mut signature,
            "X-Amz-Date" => &mut date,
            "X-Amz-Expires" => &mut expires,
            _ => continue,
        };
        // The first occurrence wins; a repeated parameter still takes part
        // in the canonical query, so the signature covers it.
        if slot.is_none() {
            *slot = Some(value);
        }
    }
    if algorithm.is_none() && credential.is_none() && signature.is_none() {
        return None;
    }
    let decode = |name: &'static str, value: Option<&str>| -> Result<String, SigV4Error> {
        let value = value.ok_or(SigV4Error::MissingComponent(name))?;
        percent_decode_str(value)
            .decode_utf8()
            .map(|v| v.into_owned())
            .map_err(|_| SigV4Error::Malformed(format!("{name} is not utf-8")))
    };
    let result = (|| {
        let algorithm = decode("X-Amz-Algorithm", algorithm)?;
        if algorithm != ALGORITHM {
            return Err(SigV4Error::UnsupportedAlgorithm(algorithm));
        }
        let credential = decode("X-Amz-Credential", credential)?;
        let signed_headers = decode("X-Amz-SignedHeaders", signed_headers)?;
        let signature = decode("X-Amz-Signature", signature)?;
        let date = decode("X-Amz-Date", date)?;
        let expires = expires
            .map(|value| decode("X-Amz-Expires", Some(value)))
            .transpose()?;
        let auth = build_auth(&credential, &signed_headers, &signature, true, Some(date))?;
        Ok(Presigned { auth, expires })
    })();
    Some(result)
}

/// The credential scope a request claims, from its `Authorization` header
/// or presigned query; `None` when absent or malformed. Checks nothing: it
/// lets the edge route a request by service before verifying it.
pub fn scope_of(parts: &Parts) -> Option<Credential> {
    if let Some(value) = parts.headers.get(AUTHORIZATION) {
        let value = value.to_str().ok()?;
        return parse_authorization_header(value)
            .ok()
            .map(|auth| auth.credential);
    }
    parse_presigned_query(parts.uri.query()?)?
        .ok()
        .map(|auth| auth.credential)
}

/// Verifies the SigV4 signature of a request against `secret_access_key`.
/// `parts` must be the request head as received and `body` its complete
/// body. The access key id is not checked; use [`verify_with`] to look the
/// secret up by it.
pub fn verify(
    parts: &Parts,
    body: &[u8],
    secret_access_key: &str,
    now: OffsetDateTime,
) -> Result<SignedRequestAuth, SigV4Error> {
    verify_with(parts, body, now, |_| Some(secret_access_key.to_owned()))
}

/// Verifies the SigV4 signature of a request, asking `secret_for` for the
/// secret of the credential it claims. `None` from `secret_for` fails with
/// [`SigV4Error::UnknownAccessKey`].
///
/// Checks, in order: the signature's syntax, the request date and its match
/// with the credential scope, that `host` is signed, the clock (15 minutes
/// of skew; presigned URLs until `X-Amz-Date + X-Amz-Expires`), the payload
/// hash, the access key, then the signature itself in constant time.
pub fn verify_with<F>(
    parts: &Parts,
    body: &[u8],
    now: OffsetDateTime,
    secret_for: F,
) -> Result<SignedRequestAuth, SigV4Error>
where
    F: FnOnce(&Credential) -> Option<String>,
{
    let query = parts.uri.query().unwrap_or("");
    let (mut auth, expires) = match parts.headers.get(AUTHORIZATION) {
        Some(value) => {
            let value = value.to_str().map_err(|_| {
                SigV4Error::Malformed("authorization header is not visible ascii".into())
            })?;
            (parse_authorization_header(value)?, None)
        }
        None => match parse_presigned(query) {
            Some(presigned) => {
                let Presigned { auth, expires } = presigned?;
                let expires = expires.ok_or(SigV4Error::MissingComponent("X-Amz-Expires"))?;
                (auth, Some(expires))
            }
            None => return Err(SigV4Error::MissingAuthentication),
        },
    };

    let amz_date = match auth.amz_date.take() {
        Some(date) => date,
        None => header_date(parts)?,
    };
    let signed_at = parse_basic(&amz_date)?;
    if amz_date.get(..8) != Some(auth.credential.date.as_str()) {
        return Err(SigV4Error::ScopeDateMismatch {
            scope: auth.credential.date.clone(),
            request: amz_date,
        });
    }
    if !auth.signed_headers.iter().any(|name| name == "host") {
        return Err(SigV4Error::HostNotSigned);
    }

    let ahead = signed_at - now;
    if ahead > MAX_CLOCK_SKEW {
        return Err(SigV4Error::RequestTimeTooSkewed {
            signed: signed_at,
            now,
        });
    }
    match &expires {
        None if -ahead > MAX_CLOCK_SKEW => {
            return Err(SigV4Error::RequestTimeTooSkewed {
                signed: signed_at,
                now,
            });
        }
        None => {}
        Some(expires) => {
            let seconds = expires
                .parse::<u64>()
                .ok()
                .filter(|s| *s <= MAX_PRESIGNED_EXPIRES_SECONDS)
                .ok_or_else(|| SigV4Error::InvalidExpires(expires.clone()))?;
            // Bounded by a week above, so the cast cannot wrap.
            if -ahead > Duration::seconds(seconds as i64) {
                return Err(SigV4Error::Expired {
                    signed: signed_at,
                    expires_seconds: seconds,
                    now,
                });
            }
        }
    }

    let payloads = payload_candidates(parts, body, auth.presigned)?;

    let secret = secret_for(&auth.credential)
        .ok_or_else(|| SigV4Error::UnknownAccessKey(auth.credential.access_key_id.clone()))?;
    let signing_key = signing_key(&secret, &auth.credential);
    let Ok(provided) = hex::decode(&auth.signature) else {
        return Err(SigV4Error::SignatureMismatch);
    };

    let method = parts.method.as_str();
    let headers = canonical_headers(parts, &auth.signed_headers);
    let signed_headers = auth.signed_headers.join(";");
    let scope = auth.credential.scope();
    for path in path_candidates(parts.uri.path()) {
        for query in query_candidates(query, auth.presigned) {
            for payload in &payloads {
                let mut request = Vec::with_capacity(
                    method.len() + path.len() + query.len() + headers.len() + 128,
                );
                for piece in [
                    method.as_bytes(),
                    path.as_bytes(),
                    query.as_bytes(),
                    &headers,
                ] {
                    request.extend_from_slice(piece);
                    request.push(b'\n');
                }
                request.extend_from_slice(signed_headers.as_bytes());
                request.push(b'\n');
                request.extend_from_slice(payload.as_bytes());
                let string_to_sign = format!(
                    "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
                    hex::encode(Sha256::digest(&request))
                );
                let mut mac = hmac_sha256(&signing_key);
                mac.update(string_to_sign.as_bytes());
                if mac.verify_slice(&provided).is_ok() {
                    auth.amz_date = Some(amz_date);
                    return Ok(auth);
                }
            }
        }
    }
    Err(SigV4Error::SignatureMismatch)
}

/// The request time from `X-Amz-Date`, else from `Date`, as ISO 8601 basic.
fn header_date(parts: &Parts) -> Result<String, SigV4Error> {
    if let Some(value) = parts.headers.get(AMZ_DATE) {
        let value = value.to_str().unwrap_or_default().trim();
        return Ok(value.to_owned());
    }
    let value = parts.headers.get(DATE).ok_or(SigV4Error::MissingDate)?;
    let text = value.to_str().unwrap_or_default();
    parse_http_date(text)
        .map(|t| basic(&t).to_string())
        .ok_or_else(|| SigV4Error::InvalidDate(text.to_owned()))
}

/// Parses `yyyymmddThhmmssZ`.
fn parse_basic(value: &str) -> Result<OffsetDateTime, SigV4Error> {
    let invalid = || SigV4Error::InvalidDate(value.to_owned());
    let b = value.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return Err(invalid());
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u32, |acc, d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let parsed = (|| {
        let year = i32::try_from(number(0..4)?).ok()?;
        let month = Month::try_from(u8::try_from(number(4..6)?).ok()?).ok()?;
        let day = u8::try_from(number(6..8)?).ok()?;
        let hour = u8::try_from(number(9..11)?).ok()?;
        let minute = u8::try_from(number(11..13)?).ok()?;
        let second = u8::try_from(number(13..15)?).ok()?;
        let date = Date::from_calendar_date(year, month, day).ok()?;
        let time = Time::from_hms(hour, minute, second).ok()?;
        Some(date.with_time(time).assume_utc())
    })();
    parsed.ok_or_else(invalid)
}

/// Parses an RFC 7231 / RFC 2822 date: `Sat, 28 Nov 2026 01:53:17 GMT`, with
/// the weekday optional and the zone `GMT`, `UT`, `UTC`, `Z` or `±hhmm`
/// (botocore sends `-0000`).
fn parse_http_date(value: &str) -> Option<OffsetDateTime> {
    let mut tokens = value.split_ascii_whitespace().peekable();
    if tokens.peek()?.ends_with(',') {
        tokens.next();
    }
    let day: u8 = tokens.next()?.parse().ok()?;
    let month = match tokens.next()?.to_ascii_lowercase().as_str() {
        "jan" => Month::January,
        "feb" => Month::February,
        "mar" => Month::March,
        "apr" => Month::April,
        "may" => Month::May,
        "jun" => Month::June,
        "jul" => Month::July,
        "aug" => Month::August,
        "sep" => Month::September,
        "oct" => Month::October,
        "nov" => Month::November,
        "dec" => Month::December,
        _ => return None,
    };
    let year: i32 = tokens.next()?.parse().ok()?;
    let mut clock = tokens.next()?.split(':');
    let mut field = || -> Option<u8> { clock.next()?.parse().ok() };
    let time = Time::from_hms(field()?, field()?, field()?).ok()?;
    let offset = match tokens.next()? {
        "GMT" | "UT" | "UTC" | "Z" => UtcOffset::UTC,
        zone => {
            let (sign, digits) = match zone.as_bytes().first()? {
                b'+' => (1, zone.get(1..)?),
                b'-' => (-1, zone.get(1..)?),
                _ => return None,
            };
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let hours: i8 = digits.get(..2)?.parse().ok()?;
            let minutes: i8 = digits.get(2..)?.parse().ok()?;
            UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()?
        }
    };
    if tokens.next().is_some() {
        return None;
    }
    let date = Date::from_calendar_date(year, month, day).ok()?;
    Some(date.with_time(time).assume_offset(offset))
}

/// The payload hashes the signature may cover.
fn payload_candidates(
    parts: &Parts,
    body: &[u8],
    presigned: bool,
) -> Result<Vec<String>, SigV4Error> {
    let Some(declared) = parts.headers.get(CONTENT_SHA256) else {
        let mut candidates = vec![hex::encode(Sha256::digest(body))];
        if presigned {
            candidates.push(UNSIGNED_PAYLOAD.to_owned());
        }
        return Ok(candidates);
    };
    let declared = declared.to_str().unwrap_or_default().trim();
    if declared == UNSIGNED_PAYLOAD || declared == STREAMING_UNSIGNED_PAYLOAD_TRAILER {
        return Ok(vec![declared.to_owned()]);
    }
    if declared.len() == 64 && declared.bytes().all(|b| b.is_ascii_hexdigit()) {
        if !declared.eq_ignore_ascii_case(&hex::encode(Sha256::digest(body))) {
            return Err(SigV4Error::PayloadHashMismatch);
        }
        return Ok(vec![declared.to_owned()]);
    }
    Err(SigV4Error::UnsupportedPayload(declared.to_owned()))
}

/// `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn signing_key(secret: &str, credential: &Credential) -> [u8; 32] {
    let date = sign(
        format!("AWS4{secret}").as_bytes(),
        credential.date.as_bytes(),
    );
    let region = sign(&date, credential.region.as_bytes());
    let service = sign(&region, credential.service.as_bytes());
    sign(&service, TERMINATOR.as_bytes())
}

/// `name:value` lines, each ending in `\n`, for the signed headers in the
/// order the client listed them.
fn canonical_headers(parts: &Parts, signed: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for name in signed {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut values: Vec<&[u8]> = match HeaderName::from_bytes(name.as_bytes()) {
            Ok(header) => parts
                .headers
                .get_all(header)
                .iter()
                .map(|value| value.as_bytes())
                .collect(),
            Err(_) => Vec::new(),
        };
        // HTTP/2 carries the host as the :authority pseudo-header.
        if values.is_empty() && name == "host" {
            if let Some(authority) = parts.uri.authority() {
                values.push(authority.as_str().as_bytes());
            }
        }
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let words = value
                .split(|b| b.is_ascii_whitespace())
                .filter(|word| !word.is_empty());
            for (j, word) in words.enumerate() {
                if j > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(word);
            }
        }
        out.push(b'\n');
    }
    out
}

/// Canonical URIs: the normalised path first, then the path exactly as sent
/// for signers that skip normalisation.
fn path_candidates(raw: &str) -> Vec<String> {
    let raw = if raw.is_empty() { "/" } else { raw };
    let encode = |path: &str| percent_encode(path.as_bytes(), UNRESERVED_AND_SLASH).to_string();
    let normalized = encode(&remove_dot_segments(raw));
    let as_sent = encode(raw);
    if normalized == as_sent {
        vec![normalized]
    } else {
        vec![normalized, as_sent]
    }
}

/// RFC 3986 dot-segment removal that also drops empty segments, as AWS
/// (and botocore's `remove_dot_segments`) normalise paths.
fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                output.pop();
            }
            segment => output.push(segment),
        }
    }
    let mut result = String::with_capacity(path.len());
    if path.starts_with('/') {
        result.push('/');
    }
    result.push_str(&output.join("/"));
    if path.ends_with('/') && !output.is_empty() {
        result.push('/');
    }
    result
}

/// Canonical query strings: re-encoded and sorted per the SigV4 rules, then
/// (if different) the raw pairs sorted as botocore does for URL queries.
/// `X-Amz-Signature` is left out of presigned queries.
fn query_candidates(query: &str, presigned: bool) -> Vec<String> {
    let keep = |key: &str| !(presigned && key == "X-Amz-Signature");

    let mut encoded: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .map(|(key, value)| {
            let reencode = |s: &str| {
                let bytes: Vec<u8> = percent_decode_str(s).collect();
                percent_encode(&bytes, UNRESERVED).to_string()
            };
            (reencode(key), reencode(value))
        })
        .filter(|(key, _)| keep(key))
        .collect();
    encoded.sort();
    let canonical = join_pairs(encoded.iter().map(|(k, v)| (k.as_str(), v.as_str())));

    let mut raw: Vec<(&str, &str)> = if query.is_empty() {
        Vec::new()
    } else {
        query
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .filter(|(key, _)| keep(key))
            .collect()
    };
    raw.sort();
    let as_sent = join_pairs(raw.into_iter());

    if canonical == as_sent {
        vec![canonical]
    } else {
        vec![canonical, as_sent]
    }
}

fn join_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (i, (key, value)) in pairs.enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    out
}

#[cfg(test)]
mod tests;
