//! The Lambda API (REST-JSON, 2015-03-31): control plane and Invoke, as
//! botocore's model shapes them. Errors leave through one exhaustive
//! mapping per domain error type.

use std::collections::BTreeMap;

use aws_protocol::error::AwsError;
use axum::body::Body;
use axum::response::Response;
use base64::Engine;
use bytes::Bytes;
use functions::{
    CreateFunction, FunctionConfig, FunctionError, ImageOverrides, InvokeError, InvokeRequest,
    UpdateConfiguration,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::aws::Caller;
use crate::App;

/// What a Lambda path addresses.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Functions,
    Function(String),
    Configuration(String),
    Code(String),
    Invocations(String),
    AccountSettings,
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn route(path: &str) -> Option<Route> {
    if path == "/2016-08-19/account-settings" || path == "/2016-08-19/account-settings/" {
        return Some(Route::AccountSettings);
    }
    let rest = path.strip_prefix("/2015-03-31/functions")?;
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Some(Route::Functions);
    }
    let mut parts = rest.splitn(2, '/');
    let name = decode(parts.next()?);
    Some(match parts.next() {
        None | Some("") => Route::Function(name),
        Some("configuration") => Route::Configuration(name),
        Some("code") => Route::Code(name),
        Some("invocations") => Route::Invocations(name),
        Some(_) => return None,
    })
}

/// Whether an unsigned request is for the Lambda API.
pub(crate) fn is_lambda_path(path: &str) -> bool {
    [
        "/2015-03-31/functions",
        "/2016-08-19/account-settings",
        "/2017-03-31/tags/",
        "/2017-10-31/functions/",
        "/2019-09-30/functions/",
        "/2019-09-25/functions/",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

pub(crate) fn function_error(e: FunctionError) -> AwsError {
    let (status, code) = match &e {
        FunctionError::NotFound(_) | FunctionError::Missing(_) => {
            (StatusCode::NOT_FOUND, "ResourceNotFoundException")
        }
        FunctionError::AlreadyExists(_) | FunctionError::Conflict(_) => {
            (StatusCode::CONFLICT, "ResourceConflictException")
        }
        FunctionError::InvalidParameter(_) => {
            (StatusCode::BAD_REQUEST, "InvalidParameterValueException")
        }
        FunctionError::Validation(_) => (StatusCode::BAD_REQUEST, "ValidationException"),
        FunctionError::PreconditionFailed(_) => (
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailedException",
        ),
        FunctionError::Internal(_) => {
            tracing::error!(error = %e, "lambda control plane error");
            (StatusCode::INTERNAL_SERVER_ERROR, "ServiceException")
        }
    };
    AwsError::new(status, code, e.to_string())
}

/// `Retry-After` of a `TooManyRequestsException`, in seconds.
const THROTTLE_RETRY_AFTER_S: &str = "1";

fn invoke_error(e: InvokeError) -> AwsError {
    let message = e.to_string();
    match e {
        InvokeError::NotFound(_) => {
            AwsError::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
        }
        InvokeError::NotReady(_) => {
            AwsError::new(StatusCode::CONFLICT, "ResourceConflictException", message)
        }
        InvokeError::InvalidParameter(_) => AwsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            message,
        ),
        InvokeError::InvalidContent(_) => AwsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            message,
        ),
        InvokeError::TooLarge { .. } => AwsError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            message,
        ),
        InvokeError::Throttled { reason } => AwsError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            message,
        )
        .with_extra("Reason", reason),
        InvokeError::Internal(_) => {
            tracing::error!(error = %message, "lambda invoke error");
            AwsError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceException",
                message,
            )
        }
    }
}

pub(crate) fn bad_body(e: impl std::fmt::Display) -> AwsError {
    AwsError::new(
        StatusCode::BAD_REQUEST,
        "InvalidRequestContentException",
        format!("Could not parse request body into json: {e}"),
    )
}

fn lm(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    aws_protocol::time::iso8601_millis(t)
}

/// `Code.ZipFile` (base64 in JSON), decoded.
fn zip_file(o: &serde_json::Map<String, Value>) -> Result<Option<bytes::Bytes>, AwsError> {
    use base64::Engine;
    match o.get("ZipFile") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map(|b| Some(bytes::Bytes::from(b)))
            .map_err(|_| {
                AwsError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameterValueException",
                    "Could not unzip uploaded file. Please check your file, then try to upload again.",
                )
            }),
        Some(_) => Err(type_error("ZipFile", "a base64-encoded blob")),
    }
}

/// `FunctionConfiguration` as botocore's model names it.
pub(crate) fn configuration_json(c: &FunctionConfig, qualified: bool) -> Value {
    let mut v = json!({
        "FunctionName": c.name,
        "FunctionArn": if qualified { c.qualified_arn() } else { c.arn() },
        "Role": c.role,
        "CodeSize": c.code_size,
        "Description": c.description,
        "Timeout": c.timeout_s,
        "MemorySize": c.memory_mb,
        "LastModified": lm(c.last_modified_ms),
        "CodeSha256": c.code_sha256,
        "Version": c.version,
        "TracingConfig": {"Mode": c.tracing_mode},
        "RevisionId": c.revision_id,
        "State": c.state.as_str(),
        "PackageType": match c.package_type { functions::PackageType::Image => "Image", functions::PackageType::Zip => "Zip" },
        "Architectures": c.architectures,
        "EphemeralStorage": {"Size": c.ephemeral_mb},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": c.log_group()},
    });
    let o = v.as_object_mut().expect("object literal");
    if let Some(h) = &c.handler {
        o.insert("Handler".into(), json!(h));
    }
    if let Some(r) = &c.runtime {
        o.insert("Runtime".into(), json!(r));
    }
    if let Some(env) = &c.environment {
        o.insert("Environment".into(), json!({"Variables": env}));
    }
    if let Some(r) = &c.state_reason {
        o.insert("StateReason".into(), json!(r));
    }
    if let Some(r) = &c.state_reason_code {
        o.insert("StateReasonCode".into(), json!(r));
    }
    if let Some(s) = c.last_update_status {
        o.insert("LastUpdateStatus".into(), json!(s.as_str()));
    }
    if let Some(r) = &c.last_update_reason {
        o.insert("LastUpdateStatusReason".into(), json!(r));
    }
    if let Some(r) = &c.last_update_reason_code {
        o.insert("LastUpdateStatusReasonCode".into(), json!(r));
    }
    if !c.image_overrides.is_empty() {
        let mut ic = Map::new();
        if let Some(e) = &c.image_overrides.entry_point {
            ic.insert("EntryPoint".into(), json!(e));
        }
        if let Some(cmd) = &c.image_overrides.command {
            ic.insert("Command".into(), json!(cmd));
        }
        if let Some(w) = &c.image_overrides.working_directory {
            ic.insert("WorkingDirectory".into(), json!(w));
        }
        o.insert("ImageConfigResponse".into(), json!({"ImageConfig": ic}));
    }
    v
}

pub(crate) fn json_response(status: StatusCode, value: &Value, request_id: &str) -> Response {
    let mut r = Response::new(Body::from(value.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
    r
}

pub(crate) fn empty(status: StatusCode, request_id: &str) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(request_id) {
        r.headers_mut().insert("x-amzn-requestid", v);
    }
    r
}

pub(crate) fn parse_object(body: &[u8]) -> Result<Map<String, Value>, AwsError> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body).map_err(bad_body)? {
        Value::Object(o) => Ok(o),
        _ => Err(bad_body("expected a JSON object")),
    }
}

fn type_error(field: &str, want: &str) -> AwsError {
    bad_body(format!("{field} must be {want}"))
}

pub(crate) fn opt_str(o: &Map<String, Value>, k: &str) -> Result<Option<String>, AwsError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(type_error(k, "a string")),
    }
}

pub(crate) fn opt_i64(o: &Map<String, Value>, k: &str) -> Result<Option<i64>, AwsError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| type_error(k, "an integer")),
        Some(_) => Err(type_error(k, "an integer")),
    }
}

fn opt_strings(v: Option<&Value>, k: &str) -> Result<Option<Vec<String>>, AwsError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| {
                s.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| type_error(k, "a list of strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(type_error(k, "a list of strings")),
    }
}

pub(crate) fn string_map(
    v: Option<&Value>,
    k: &str,
) -> Result<Option<BTreeMap<String, String>>, AwsError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k2, v)| {
                v.as_str()
                    .map(|s| (k2.clone(), s.to_string()))
                    .ok_or_else(|| type_error(k, "a map of strings"))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map(Some),
        Some(_) => Err(type_error(k, "a map of strings")),
    }
}

fn image_overrides(o: &Map<String, Value>) -> Result<Option<ImageOverrides>, AwsError> {
    match o.get("ImageConfig") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(ic)) => Ok(Some(ImageOverrides {
            entry_point: opt_strings(ic.get("EntryPoint"), "ImageConfig.EntryPoint")?,
            command: opt_strings(ic.get("Command"), "ImageConfig.Command")?,
            working_directory: opt_str(ic, "WorkingDirectory")?,
        })),
        Some(_) => Err(type_error("ImageConfig", "an object")),
    }
}

fn environment(o: &Map<String, Value>) -> Result<Option<BTreeMap<String, String>>, AwsError> {
    match o.get("Environment") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(e)) => Ok(Some(
            string_map(e.get("Variables"), "Environment.Variables")?.unwrap_or_default(),
        )),
        Some(_) => Err(type_error("Environment", "an object")),
    }
}

fn ephemeral(o: &Map<String, Value>) -> Result<Option<i64>, AwsError> {
    match o.get("EphemeralStorage") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(e)) => opt_i64(e, "Size"),
        Some(_) => Err(type_error("EphemeralStorage", "an object")),
    }
}

fn qualifier(query: Option<&str>) -> Option<String> {
    query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "Qualifier")
            .map(|(_, v)| v.into_owned())
    })
}

/// A list operation's `MaxItems` query parameter: 1 to 10000, 50 when
/// absent.
pub(crate) fn max_items(query: Option<&str>) -> Result<i64, AwsError> {
    let Some(raw) = query_value(query, "MaxItems") else {
        return Ok(50);
    };
    match raw.parse::<i64>() {
        Ok(n) if (1..=10_000).contains(&n) => Ok(n),
        _ => Err(AwsError::new(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            format!("1 validation error detected: Value '{raw}' at 'maxItems' failed to satisfy constraint: Member must be a number between 1 and 10000"),
        )),
    }
}

/// `Description` is at most 256 characters.
fn check_description(description: Option<&str>) -> Result<(), AwsError> {
    match description {
        Some(d) if d.chars().count() > 256 => Err(AwsError::new(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 256",
        )),
        _ => Ok(()),
    }
}

pub(crate) fn query_value(query: Option<&str>, key: &str) -> Option<String> {
    query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    })
}

fn name_and_qualifier(
    raw: &str,
    query: Option<&str>,
) -> Result<(String, Option<String>), AwsError> {
    let (name, q) = functions::parse_function_ref(raw).map_err(function_error)?;
    match (q, qualifier(query)) {
        (Some(a), Some(b)) if a != b => Err(AwsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            "The derived qualifier from the function name does not match the specified qualifier.",
        )),
        (a, b) => Ok((name, a.or(b))),
    }
}

pub(crate) async fn handle(
    app: &App,
    caller: &Caller,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, AwsError> {
    let rid = caller.request_id.as_str();
    let Some(route) = route(path) else {
        return crate::lambda_more::handle(app, caller, method, path, query, &body).await;
    };
    let f = &app.functions;
    let (acct, region) = (caller.account.as_str(), caller.region.as_str());
    match (method, route) {
        (&Method::POST, Route::Functions) => {
            let o = parse_object(&body)?;
            // Every member's JSON type is checked before any constraint,
            // as AWS deserializes the whole body first.
            let code = match o.get("Code") {
                Some(Value::Object(c)) => Some(c.clone()),
                None | Some(Value::Null) => None,
                Some(_) => return Err(type_error("Code", "an object")),
            };
            let no_code = serde_json::Map::new();
            let code_members = code.as_ref().unwrap_or(&no_code);
            let req = CreateFunction {
                name: opt_str(&o, "FunctionName")?.unwrap_or_default(),
                role: opt_str(&o, "Role")?.unwrap_or_default(),
                package_type: opt_str(&o, "PackageType")?,
                image_uri: opt_str(code_members, "ImageUri")?,
                zip_file: zip_file(code_members)?,
                has_s3: code_members.contains_key("S3Bucket") || code_members.contains_key("S3Key"),
                handler: opt_str(&o, "Handler")?,
                runtime: opt_str(&o, "Runtime")?,
                description: opt_str(&o, "Description")?,
                timeout_s: opt_i64(&o, "Timeout")?,
                memory_mb: opt_i64(&o, "MemorySize")?,
                ephemeral_mb: ephemeral(&o)?,
                environment: environment(&o)?,
                image_overrides: image_overrides(&o)?,
                architectures: opt_strings(o.get("Architectures"), "Architectures")?,
                publish: o.get("Publish").and_then(Value::as_bool).unwrap_or(false),
                tags: string_map(o.get("Tags"), "Tags")?.unwrap_or_default(),
            };
            if code.is_none() {
                return Err(AwsError::new(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    "1 validation error detected: Value null at 'code' failed to satisfy constraint: Member must not be null",
                ));
            }
            check_description(req.description.as_deref())?;
            crate::iam::check_function_role(app, acct, &req.role).await?;
            let c = f.create(acct, region, req).await.map_err(function_error)?;
            Ok(json_response(
                StatusCode::CREATED,
                &configuration_json(&c, false),
                rid,
            ))
        }
        (&Method::GET, Route::Functions) => {
            let max = max_items(query)?;
            let marker = query_value(query, "Marker").filter(|m| !m.is_empty());
            let (list, next) = f
                .list(acct, region, marker.as_deref(), max)
                .await
                .map_err(function_error)?;
            let mut v = json!({"Functions": list.iter().map(|c| configuration_json(c, false)).collect::<Vec<_>>()});
            if let Some(n) = next {
                v["NextMarker"] = json!(n);
            }
            Ok(json_response(StatusCode::OK, &v, rid))
        }
        (&Method::GET, Route::Function(raw)) => {
            let (name, q) = name_and_qualifier(&raw, query)?;
            let (c, tags, concurrency) = f
                .get(acct, region, &name, q.as_deref())
                .await
                .map_err(function_error)?;
            let code = match (&c.package_type, &c.code.zip_sha256) {
                (functions::PackageType::Zip, Some(sha)) => json!({
                    "RepositoryType": "S3",
                    "Location": crate::code_location::url(
                        app,
                        &format!("http://localhost:{}", app.port),
                        acct,
                        sha,
                    ),
                }),
                _ => json!({
                    "RepositoryType": "ECR",
                    "ImageUri": c.code.image_uri,
                    "ResolvedImageUri": crate::lambda_images::resolved_image_uri(
                        &c.code.image_uri,
                        &c.code.repository,
                        &c.code.digest,
                        &crate::hosts::public_host(
                            app.config.url_style,
                            app.port,
                            crate::hosts::Endpoint::Registry {
                                account: acct,
                                region,
                            },
                        ),
                    ),
                }),
            };
            let mut v = json!({
                "Configuration": configuration_json(&c, q.is_some()),
                "Code": code,
            });
            if !tags.is_empty() {
                v["Tags"] = json!(tags);
            }
            if let Some(r) = concurrency {
                v["Concurrency"] = json!({"ReservedConcurrentExecutions": r});
            }
            Ok(json_response(StatusCode::OK, &v, rid))
        }
        (&Method::DELETE, Route::Function(raw)) => {
            let (name, q) = name_and_qualifier(&raw, query)?;
            f.delete(acct, region, &name, q.as_deref())
                .await
                .map_err(function_error)?;
            Ok(empty(StatusCode::NO_CONTENT, rid))
        }
        (&Method::GET, Route::Configuration(raw)) => {
            let (name, q) = name_and_qualifier(&raw, query)?;
            let (c, _, _) = f
                .get(acct, region, &name, q.as_deref())
                .await
                .map_err(function_error)?;
            Ok(json_response(
                StatusCode::OK,
                &configuration_json(&c, q.is_some()),
                rid,
            ))
        }
        (&Method::PUT, Route::Configuration(raw)) => {
            let (name, _) = name_and_qualifier(&raw, None)?;
            let o = parse_object(&body)?;
            let u = UpdateConfiguration {
                role: opt_str(&o, "Role")?,
                handler: opt_str(&o, "Handler")?,
                description: opt_str(&o, "Description")?,
                timeout_s: opt_i64(&o, "Timeout")?,
                memory_mb: opt_i64(&o, "MemorySize")?,
                ephemeral_mb: ephemeral(&o)?,
                environment: environment(&o)?,
                image_overrides: image_overrides(&o)?,
                revision_id: opt_str(&o, "RevisionId")?,
            };
            check_description(u.description.as_deref())?;
            if let Some(role) = &u.role {
                crate::iam::check_function_role(app, acct, role).await?;
            }
            let c = f
                .update_configuration(acct, region, &name, u)
                .await
                .map_err(function_error)?;
            Ok(json_response(
                StatusCode::OK,
                &configuration_json(&c, false),
                rid,
            ))
        }
        (&Method::PUT, Route::Code(raw)) => {
            let (name, _) = name_and_qualifier(&raw, None)?;
            let o = parse_object(&body)?;
            let c = f
                .update_code(
                    acct,
                    region,
                    &name,
                    functions::CodeUpdate {
                        image_uri: opt_str(&o, "ImageUri")?,
                        zip_file: zip_file(&o)?,
                        has_s3: o.contains_key("S3Bucket") || o.contains_key("S3Key"),
                    },
                    opt_str(&o, "RevisionId")?,
                )
                .await
                .map_err(function_error)?;
            Ok(json_response(
                StatusCode::OK,
                &configuration_json(&c, false),
                rid,
            ))
        }
        (&Method::POST, Route::Invocations(raw)) => {
            let header = |k: &str| {
                headers
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let invocation_type =
                header("x-amz-invocation-type").unwrap_or_else(|| "RequestResponse".into());
            if !matches!(
                invocation_type.as_str(),
                "RequestResponse" | "Event" | "DryRun"
            ) {
                return Err(AwsError::new(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    format!("1 validation error detected: Value '{invocation_type}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"),
                ));
            }
            let tail_log = match header("x-amz-log-type").as_deref() {
                None | Some("None") => false,
                Some("Tail") => true,
                Some(other) => {
                    return Err(AwsError::new(
                        StatusCode::BAD_REQUEST,
                        "ValidationException",
                        format!("1 validation error detected: Value '{other}' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [Tail, None]"),
                    ))
                }
            };
            let client_context = match header("x-amz-client-context") {
                None => None,
                Some(b64) => {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(b64.as_bytes())
                        .map_err(|_| {
                            AwsError::new(
                                StatusCode::BAD_REQUEST,
                                "InvalidRequestContentException",
                                "Client context must be a valid Base64-encoded JSON object.",
                            )
                        })?;
                    Some(String::from_utf8_lossy(&raw).into_owned())
                }
            };
            let req = InvokeRequest {
                account: caller.account.clone(),
                region: caller.region.clone(),
                function: raw,
                qualifier: qualifier(query),
                payload: body,
                invocation_type,
                tail_log,
                client_context,
                request_id: caller.request_id.clone(),
            };
            let result = match f.invoke(req).await {
                Ok(result) => result,
                // Throttles tell the client when to come back.
                Err(e @ InvokeError::Throttled { .. }) => {
                    let mut r = crate::aws::error_response(
                        &invoke_error(e),
                        crate::aws::Service::Lambda,
                        rid,
                    );
                    r.headers_mut().insert(
                        http::header::RETRY_AFTER,
                        HeaderValue::from_static(THROTTLE_RETRY_AFTER_S),
                    );
                    return Ok(r);
                }
                Err(e) => return Err(invoke_error(e)),
            };
            let mut r = Response::new(Body::from(result.payload));
            *r.status_mut() = StatusCode::from_u16(result.status).unwrap_or(StatusCode::OK);
            let h = r.headers_mut();
            h.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Ok(v) = HeaderValue::from_str(rid) {
                h.insert("x-amzn-requestid", v);
            }
            if let Ok(v) = HeaderValue::from_str(&result.executed_version) {
                h.insert("x-amz-executed-version", v);
            }
            if let Some(fe) = result
                .function_error
                .as_deref()
                .and_then(|e| HeaderValue::from_str(e).ok())
            {
                h.insert("x-amz-function-error", fe);
            }
            if let Some(tail) = result.log_tail {
                let b64 = base64::engine::general_purpose::STANDARD.encode(tail.as_bytes());
                if let Ok(v) = HeaderValue::from_str(&b64) {
                    h.insert("x-amz-log-result", v);
                }
            }
            Ok(r)
        }
        (&Method::GET, Route::AccountSettings) => Ok(json_response(
            StatusCode::OK,
            &json!({
                "AccountLimit": {"TotalCodeSize": 80530636800u64, "CodeSizeUnzipped": 262144000, "CodeSizeZipped": 52428800,
                                 "ConcurrentExecutions": app.config.account_concurrency, "UnreservedConcurrentExecutions": app.config.account_concurrency},
                "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0},
            }),
            rid,
        )),
        (m, r) => Err(AwsError::new(
            StatusCode::NOT_FOUND,
            "UnknownOperationException",
            format!("Stratus does not serve {m} on {r:?} yet"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_lambda_paths() {
        assert_eq!(route("/2015-03-31/functions/"), Some(Route::Functions));
        assert_eq!(route("/2015-03-31/functions"), Some(Route::Functions));
        assert_eq!(
            route("/2015-03-31/functions/demo"),
            Some(Route::Function("demo".into()))
        );
        assert_eq!(
            route("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Ademo/invocations"),
            Some(Route::Invocations("arn:aws:lambda:us-east-1:000000000000:function:demo".into()))
        );
        assert_eq!(
            route("/2015-03-31/functions/demo/configuration"),
            Some(Route::Configuration("demo".into()))
        );
        assert_eq!(route("/2015-03-31/functions/demo/bogus"), None);
    }
}
