//! The AWS API surface: identifies the service a request addresses,
//! authenticates it (SigV4 when credentials are configured), works out the
//! caller's account and region, and hands the operation to the service's
//! module. Every error leaves here in the service's own wire shape.

use aws_protocol::error::{AwsError, Protocol};
use aws_protocol::{ids, sigv4};
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{header, HeaderValue, StatusCode};

use crate::hosts::{self, HostTarget};
use crate::{ecr, iam, lambda, logs, sts, App};

/// Largest request body an AWS API call may carry (ECR's PutImage holds a
/// 4 MiB manifest as a JSON string).
const MAX_API_BODY: usize = 8 * 1024 * 1024;

/// Lambda's limit on a CreateFunction/UpdateFunctionCode request (a 50 MB
/// zip, base64-encoded, in JSON).
const MAX_LAMBDA_CODE_BODY: usize = 70_167_211;

const ECR_TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921.";

/// An AWS service Stratus serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Ecr,
    Iam,
    Lambda,
    Logs,
    Sts,
    /// Signed for a service Stratus does not serve (yet).
    Unknown,
}

/// Who is calling, in which account and region.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub account: String,
    pub region: String,
    pub access_key_id: Option<String>,
    pub request_id: String,
}

pub(crate) fn service_of(req: &Request) -> Option<Service> {
    if let Some(target) = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        if target.starts_with(ECR_TARGET_PREFIX) {
            return Some(Service::Ecr);
        }
        if target.starts_with(logs::TARGET_PREFIX) {
            return Some(Service::Logs);
        }
        return Some(Service::Unknown);
    }
    let (parts, _) = clone_parts(req);
    let Some(scope) = sigv4::scope_of(&parts) else {
        // Unsigned calls name their service by host
        // (`lambda.us-east-1.amazonaws.com`) or, for Lambda, by path
        // (curl, the console).
        if let HostTarget::AwsApi { service, .. } = hosts::target_of(req.headers(), req.uri()) {
            return Some(service_named(&service));
        }
        return lambda::is_lambda_path(req.uri().path()).then_some(Service::Lambda);
    };
    Some(service_named(&scope.service))
}

/// The service a SigV4 scope or an endpoint host names.
fn service_named(name: &str) -> Service {
    match name {
        "ecr" => Service::Ecr,
        "lambda" => Service::Lambda,
        "logs" => Service::Logs,
        "iam" => Service::Iam,
        "sts" => Service::Sts,
        _ => Service::Unknown,
    }
}

/// The request head without the body (for header-only inspection).
fn clone_parts(req: &Request) -> (http::request::Parts, ()) {
    let mut builder = http::Request::builder()
        .method(req.method().clone())
        .uri(req.uri().clone())
        .version(req.version());
    if let Some(h) = builder.headers_mut() {
        *h = req.headers().clone();
    }
    let (parts, _) = builder.body(()).unwrap_or_default().into_parts();
    (parts, ())
}

fn protocol_of(service: Service) -> Protocol {
    match service {
        Service::Ecr | Service::Logs => Protocol::Json11,
        Service::Lambda => Protocol::RestJson,
        Service::Sts | Service::Iam => Protocol::Query,
        Service::Unknown => Protocol::RestJson,
    }
}

pub(crate) fn error_response(err: &AwsError, service: Service, request_id: &str) -> Response {
    let rendered = match service {
        Service::Sts => err.render_query("https://sts.amazonaws.com/doc/2011-06-15/", request_id),
        Service::Iam => err.render_query(aws_protocol::error::IAM_XMLNS, request_id),
        _ => err.render(protocol_of(service), request_id),
    };
    let (parts, body) = rendered.into_parts();
    Response::from_parts(parts, Body::from(body))
}

pub(crate) async fn handle(app: &App, service: Service, req: Request) -> Response {
    let request_id = ids::request_id();
    let (parts, body) = req.into_parts();
    // Lambda takes zip packages inline (base64 in JSON): its code
    // operations accept AWS's larger request limit.
    let code_upload = service == Service::Lambda
        && ((parts.method == http::Method::POST
            && parts.uri.path().trim_end_matches('/') == "/2015-03-31/functions")
            || (parts.method == http::Method::PUT && parts.uri.path().ends_with("/code")));
    let limit = if code_upload {
        MAX_LAMBDA_CODE_BODY
    } else {
        MAX_API_BODY
    };
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            let err = match service {
                Service::Lambda if code_upload => AwsError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLargeException",
                    format!("Request must be smaller than {MAX_LAMBDA_CODE_BODY} bytes for the {} operation", if parts.method == http::Method::PUT { "UpdateFunctionCode" } else { "CreateFunction" }),
                ),
                Service::Lambda => AwsError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestTooLargeException",
                    "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
                ),
                _ => AwsError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestEntityTooLargeException",
                    format!("request body exceeds the {MAX_API_BODY}-byte limit of this API"),
                ),
            };
            return error_response(&err, service, &request_id);
        }
    };
    let caller = match authenticate(app, &parts, &body, &request_id) {
        Ok(c) => c,
        Err(e) => return error_response(&e, service, &request_id),
    };
    // JSON 1.1 operations are POSTs to `/`; anything else names none.
    if protocol_of(service) == Protocol::Json11 && parts.method != http::Method::POST {
        let err = AwsError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!(
                "{} is not an operation of this API; JSON 1.1 operations are sent as POST / with an X-Amz-Target header",
                parts.method
            ),
        );
        return error_response(&err, service, &request_id);
    }
    let span = tracing::debug_span!("aws", service = ?service, account = %caller.account, region = %caller.region, request_id = %request_id);
    let _enter = span.enter();
    match service {
        Service::Ecr => {
            let op = parts
                .headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .and_then(|t| t.strip_prefix(ECR_TARGET_PREFIX))
                .unwrap_or("")
                .to_string();
            drop(_enter);
            match ecr::handle(app, &caller, &op, &body).await {
                Ok(value) => json_response(&value, "application/x-amz-json-1.1", &request_id),
                Err(e) => error_response(&e, service, &request_id),
            }
        }
        Service::Logs => {
            let op = parts
                .headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .and_then(|t| t.strip_prefix(logs::TARGET_PREFIX))
                .unwrap_or("")
                .to_string();
            drop(_enter);
            match logs::handle(app, &caller, &op, &body).await {
                Ok(value) => json_response(&value, "application/x-amz-json-1.1", &request_id),
                Err(e) => error_response(&e, service, &request_id),
            }
        }
        Service::Lambda => {
            drop(_enter);
            let path = parts.uri.path().to_string();
            match lambda::handle(
                app,
                &caller,
                &parts.method,
                &path,
                parts.uri.query(),
                &parts.headers,
                body,
            )
            .await
            {
                Ok(r) => r,
                Err(e) => error_response(&e, service, &request_id),
            }
        }
        Service::Sts => {
            drop(_enter);
            let form = if body.is_empty() {
                parts.uri.query().unwrap_or("").as_bytes().to_vec()
            } else {
                body.to_vec()
            };
            match sts::handle(&caller, &form) {
                Ok(xml) => xml_response(xml, &request_id),
                Err(e) => error_response(&e, service, &request_id),
            }
        }
        Service::Iam => {
            drop(_enter);
            let form = if body.is_empty() {
                parts.uri.query().unwrap_or("").as_bytes().to_vec()
            } else {
                body.to_vec()
            };
            match iam::handle(app, &caller, &form).await {
                Ok(xml) => xml_response(xml, &request_id),
                Err(e) => error_response(&e, service, &request_id),
            }
        }
        Service::Unknown => {
            let name = sigv4::scope_of(&parts)
                .map(|s| s.service)
                .unwrap_or_else(|| {
                    parts
                        .headers
                        .get("x-amz-target")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("unknown")
                        .to_string()
                });
            let err = AwsError::new(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                format!("Stratus does not serve the AWS service or operation {name:?}"),
            );
            error_response(&err, service, &request_id)
        }
    }
}

/// Verifies the signature when credentials are configured and works out
/// the caller's account (an access key id of 12 digits selects that
/// account) and region (from the credential scope).
fn authenticate(
    app: &App,
    parts: &http::request::Parts,
    body: &[u8],
    request_id: &str,
) -> Result<Caller, AwsError> {
    let scope = sigv4::scope_of(parts);
    if !app.config.credentials.is_empty() {
        let Some(scope) = &scope else {
            return Err(AwsError::new(
                StatusCode::FORBIDDEN,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ));
        };
        let Some(cred) = app
            .config
            .credentials
            .iter()
            .find(|c| c.access_key_id == scope.access_key_id)
        else {
            return Err(AwsError::new(
                StatusCode::FORBIDDEN,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            ));
        };
        sigv4::verify(
            parts,
            body,
            &cred.secret_access_key,
            time::OffsetDateTime::now_utc(),
        )
        .map_err(|e| e.to_aws_error())?;
    }
    let (akid, region) = match scope {
        Some(s) => (Some(s.access_key_id), s.region),
        // Unsigned: the region of the endpoint host, if it names one.
        None => match hosts::target_of(&parts.headers, &parts.uri) {
            HostTarget::AwsApi {
                region: Some(region),
                ..
            } => (None, region),
            _ => (None, app.config.region.clone()),
        },
    };
    let account = match &akid {
        Some(k) => ids::account_for_access_key(k, &app.config.account_id),
        None => app.config.account_id.clone(),
    };
    Ok(Caller {
        account,
        region,
        access_key_id: akid,
        request_id: request_id.to_string(),
    })
}

fn json_response(
    value: &serde_json::Value,
    content_type: &'static str,
    request_id: &str,
) -> Response {
    let mut r = Response::new(Body::from(value.to_string()));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    r
}

fn xml_response(xml: String, request_id: &str) -> Response {
    let mut r = Response::new(Body::from(xml));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    r
}
