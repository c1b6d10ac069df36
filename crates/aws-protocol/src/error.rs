//! AWS error shapes for the three wire protocols Stratus speaks.
//!
//! One [`AwsError`] value renders into whichever protocol the API surface
//! uses, so handlers build the error once and the edge decides the shape.
//! The shapes follow what the SDKs parse: botocore's JSON parser reads the
//! code from `__type` (JSON 1.1) or from the `x-amzn-ErrorType` header
//! (REST-JSON), and the message from `message` or `Message`.

use std::fmt;

use http::{header, HeaderValue, Response, StatusCode};
use serde_json::{Map, Value};

/// The default XML namespace of Query-protocol errors (STS).
pub const STS_XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// The XML namespace of IAM's Query-protocol errors.
pub const IAM_XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// The header carrying the request id in every AWS response.
pub const REQUEST_ID_HEADER: &str = "x-amzn-RequestId";

/// The header REST-JSON services use to name the error code.
pub const ERROR_TYPE_HEADER: &str = "x-amzn-ErrorType";

/// The wire protocol an API surface speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `awsJson1_1`: ECR, CloudWatch Logs. Errors are `{"__type", "message"}`.
    Json11,
    /// `restJson1`: Lambda, API Gateway. Code in `x-amzn-ErrorType`.
    RestJson,
    /// `awsQuery`: STS, IAM. Errors are an XML `ErrorResponse`.
    Query,
}

/// An error as an AWS service reports it: a code, a message, an HTTP status
/// and whether the caller is at fault.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsError {
    /// The error code, e.g. `ResourceNotFoundException`.
    pub code: String,
    /// The human readable message.
    pub message: String,
    /// The HTTP status of the response.
    pub status: StatusCode,
    /// `true` for client errors (`Sender`/`User`), `false` for service faults.
    pub sender_fault: bool,
    /// Extra JSON members beside the message, e.g. Lambda's `Reason`.
    /// Ignored by the Query protocol.
    pub extra: Option<Map<String, Value>>,
}

impl AwsError {
    /// An error with an explicit status; the sender is at fault for 4xx.
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        AwsError {
            code: code.into(),
            message: message.into(),
            status,
            sender_fault: status.is_client_error(),
            extra: None,
        }
    }

    /// A 400 error caused by the caller.
    pub fn client(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A 500 `InternalFailure`, the code AWS's common errors use for an
    /// unexpected service fault. Services with a modelled fault (Lambda's
    /// `ServiceException`) override `code`.
    pub fn server(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            message,
        )
    }

    /// Adds an extra JSON member to the error body (JSON protocols only).
    /// `__type`, `Type`, `message` set by the renderer take precedence.
    pub fn with_extra(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra
            .get_or_insert_with(Map::new)
            .insert(key.into(), value.into());
        self
    }

    /// Renders the error for `protocol`. Query errors use the STS namespace;
    /// call [`AwsError::render_query`] for another one.
    pub fn render(&self, protocol: Protocol, request_id: &str) -> Response<Vec<u8>> {
        match protocol {
            Protocol::Json11 => {
                let mut body = self.extra.clone().unwrap_or_default();
                body.insert("__type".into(), Value::String(self.code.clone()));
                body.insert("message".into(), Value::String(self.message.clone()));
                self.response(
                    "application/x-amz-json-1.1",
                    request_id,
                    json_bytes(body),
                    false,
                )
            }
            Protocol::RestJson => {
                let mut body = self.extra.clone().unwrap_or_default();
                let kind = if self.sender_fault { "User" } else { "Service" };
                body.insert("Type".into(), Value::String(kind.into()));
                body.insert("message".into(), Value::String(self.message.clone()));
                self.response("application/json", request_id, json_bytes(body), true)
            }
            Protocol::Query => self.render_query(STS_XMLNS, request_id),
        }
    }

    /// Renders a Query-protocol (`awsQuery`) XML error in namespace `xmlns`.
    pub fn render_query(&self, xmlns: &str, request_id: &str) -> Response<Vec<u8>> {
        let kind = if self.sender_fault {
            "Sender"
        } else {
            "Receiver"
        };
        let body = format!(
            "<ErrorResponse xmlns=\"{}\"><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            xml_escape(xmlns),
            kind,
            xml_escape(&self.code),
            xml_escape(&self.message),
            xml_escape(request_id),
        );
        self.response("text/xml", request_id, body.into_bytes(), false)
    }

    fn response(
        &self,
        content_type: &'static str,
        request_id: &str,
        body: Vec<u8>,
        error_type_header: bool,
    ) -> Response<Vec<u8>> {
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert(REQUEST_ID_HEADER, value);
        }
        if error_type_header {
            if let Ok(value) = HeaderValue::from_str(&self.code) {
                headers.insert(ERROR_TYPE_HEADER, value);
            }
        }
        response
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AwsError {}

fn json_bytes(body: Map<String, Value>) -> Vec<u8> {
    // Serialising a map of strings and JSON values cannot fail; fall back to
    // an empty object rather than panicking if it ever did.
    serde_json::to_vec(&Value::Object(body)).unwrap_or_else(|_| b"{}".to_vec())
}

/// Escapes text for XML element content and attribute values. Characters
/// XML 1.0 cannot represent become U+FFFD.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            '\t' | '\n' | '\r' => out.push(c),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        error: &AwsError,
        protocol: Protocol,
        status: u16,
        headers: &[(&str, &str)],
        body: &str,
    ) {
        let response = error.render(protocol, "9f8e7d6c-0000-4000-8000-000000000001");
        assert_eq!(response.status().as_u16(), status);
        for (name, value) in headers {
            assert_eq!(
                response.headers().get(*name).and_then(|v| v.to_str().ok()),
                Some(*value),
                "header {name}"
            );
        }
        assert_eq!(String::from_utf8_lossy(response.body()), body);
    }

    #[test]
    fn json11_shape() {
        check(
            &AwsError::client(
                "RepositoryNotFoundException",
                "The repository with name 'x' does not exist",
            ),
            Protocol::Json11,
            400,
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amzn-requestid", "9f8e7d6c-0000-4000-8000-000000000001"),
            ],
            r#"{"__type":"RepositoryNotFoundException","message":"The repository with name 'x' does not exist"}"#,
        );
        let response = AwsError::client("A", "b").render(Protocol::Json11, "r");
        assert!(response.headers().get(ERROR_TYPE_HEADER).is_none());
    }

    #[test]
    fn rest_json_shape_with_extra() {
        check(
            &AwsError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "Rate Exceeded.",
            )
            .with_extra(
                "Reason",
                "ReservedFunctionConcurrentInvocationLimitExceeded",
            )
            .with_extra("message", "ignored: the renderer's message wins"),
            Protocol::RestJson,
            429,
            &[
                ("content-type", "application/json"),
                ("x-amzn-errortype", "TooManyRequestsException"),
                ("x-amzn-requestid", "9f8e7d6c-0000-4000-8000-000000000001"),
            ],
            r#"{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}"#,
        );
    }

    #[test]
    fn rest_json_service_fault() {
        let mut error = AwsError::server("boom \"quoted\"");
        error.code = "ServiceException".into();
        check(
            &error,
            Protocol::RestJson,
            500,
            &[("x-amzn-errortype", "ServiceException")],
            r#"{"Type":"Service","message":"boom \"quoted\""}"#,
        );
    }

    #[test]
    fn query_shape() {
        check(
            &AwsError::new(
                StatusCode::FORBIDDEN,
                "InvalidClientTokenId",
                "The security token included in the request is invalid.",
            ),
            Protocol::Query,
            403,
            &[
                ("content-type", "text/xml"),
                ("x-amzn-requestid", "9f8e7d6c-0000-4000-8000-000000000001"),
            ],
            "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error><RequestId>9f8e7d6c-0000-4000-8000-000000000001</RequestId></ErrorResponse>",
        );
        let response = AwsError::server("a < b & c").render_query(IAM_XMLNS, "req-1");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            String::from_utf8_lossy(response.body()),
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>a &lt; b &amp; c</Message></Error><RequestId>req-1</RequestId></ErrorResponse>"
        );
    }

    #[test]
    fn constructors() {
        let e = AwsError::client("ValidationException", "bad");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.sender_fault);
        let e = AwsError::server("oops");
        assert_eq!(
            (e.code.as_str(), e.status, e.sender_fault),
            ("InternalFailure", StatusCode::INTERNAL_SERVER_ERROR, false)
        );
        assert_eq!(e.to_string(), "InternalFailure: oops");
    }

    #[test]
    fn escapes_xml() {
        assert_eq!(
            xml_escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;"
        );
        assert_eq!(xml_escape("plain ü\ttab"), "plain ü\ttab");
        assert_eq!(xml_escape("nul\u{0}bell\u{7}"), "nul\u{fffd}bell\u{fffd}");
    }

    #[test]
    fn unrepresentable_header_values_are_skipped() {
        let response = AwsError::client("Bad\nCode", "m").render(Protocol::RestJson, "id\r\n");
        assert!(response.headers().get(REQUEST_ID_HEADER).is_none());
        assert!(response.headers().get(ERROR_TYPE_HEADER).is_none());
    }
}
