//! A deliberately tiny HTTP/1.1 client that writes raw bytes, so tests can
//! send exactly what a (possibly broken) runtime client would.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use runtime_api::{InstanceEvent, Invocation, RuntimeApi, RuntimeApiConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

pub const ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:demo";
/// Generous bound for things that happen at once on loopback.
pub const SOON: Duration = Duration::from_secs(10);
pub const NEXT: &str = "/2018-06-01/runtime/invocation/next";

pub async fn bind() -> (RuntimeApi, mpsc::Receiver<InstanceEvent>) {
    bind_with(RuntimeApiConfig::new(ARN)).await
}

pub async fn bind_with(config: RuntimeApiConfig) -> (RuntimeApi, mpsc::Receiver<InstanceEvent>) {
    RuntimeApi::bind(config).await.expect("bind")
}

pub fn invocation(request_id: &str, payload: &'static str) -> Invocation {
    Invocation {
        request_id: request_id.to_owned(),
        payload: Bytes::from_static(payload.as_bytes()),
        deadline: SystemTime::now() + Duration::from_secs(30),
        invoked_function_arn: format!("{ARN}:live"),
        trace_id: None,
        client_context: None,
        cognito_identity: None,
        content_type: None,
    }
}

pub fn response_path(request_id: &str) -> String {
    format!("/2018-06-01/runtime/invocation/{request_id}/response")
}

pub fn error_path(request_id: &str) -> String {
    format!("/2018-06-01/runtime/invocation/{request_id}/error")
}

pub async fn next_event(events: &mut mpsc::Receiver<InstanceEvent>) -> InstanceEvent {
    tokio::time::timeout(SOON, events.recv())
        .await
        .expect("an instance event in time")
        .expect("event channel open")
}

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts a Runtime API error answer.
    pub fn assert_error(&self, status: u16, error_type: &str) {
        assert_eq!(self.status, status, "{self:?} ({})", self.text());
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(self.json()["errorType"], error_type, "{}", self.text());
    }

    pub fn assert_accepted(&self) {
        assert_eq!(self.status, 202, "{self:?} ({})", self.text());
        assert_eq!(self.text(), "{\"status\":\"OK\"}\n");
    }
}

/// One connection that can carry several requests (keep-alive).
pub struct Conn {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        Conn {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buffer: Vec::new(),
        }
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Writes what the peer accepts; false if it stopped reading.
    pub async fn try_write(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok()
    }

    pub async fn shutdown_write(&mut self) {
        self.stream.shutdown().await.expect("shutdown");
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> RawResponse {
        self.write(&encode(method, path, headers, body)).await;
        self.read_response().await.expect("a response")
    }

    /// Reads one response; `None` when the server closed the connection first.
    pub async fn read_response(&mut self) -> Option<RawResponse> {
        let head_end = loop {
            if let Some(at) = find(&self.buffer, b"\r\n\r\n") {
                break at;
            }
            if !self.fill().await {
                return None;
            }
        };
        let head = String::from_utf8(self.buffer[..head_end].to_vec()).expect("ascii head");
        self.buffer.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line.split_once(':').expect("header line");
                (name.trim().to_owned(), value.trim().to_owned())
            })
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().expect("content-length"))
            .expect("server responses carry content-length");
        while self.buffer.len() < length {
            if !self.fill().await {
                return None;
            }
        }
        let body = self.buffer.drain(..length).collect();
        Some(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// True once the server closed the connection (EOF or reset).
    pub async fn is_closed(&mut self) -> bool {
        !self.fill().await
    }

    async fn fill(&mut self) -> bool {
        // Straight into the heap buffer: a big array here would sit in
        // every future that awaits this one.
        self.buffer.reserve(64 * 1024);
        matches!(self.stream.read_buf(&mut self.buffer).await, Ok(n) if n > 0)
    }
}

pub fn encode(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && *v == "chunked");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !chunked && (method != "GET" || !body.is_empty()) {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// One request on a fresh connection.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    Conn::open(addr)
        .await
        .request(method, path, headers, body)
        .await
}

pub async fn get_next(addr: SocketAddr) -> RawResponse {
    request(addr, "GET", NEXT, &[], b"").await
}

/// `GET …/next` in the background.
pub fn spawn_next(addr: SocketAddr) -> tokio::task::JoinHandle<RawResponse> {
    tokio::spawn(get_next(addr))
}

pub async fn joined<T>(handle: tokio::task::JoinHandle<T>) -> T {
    tokio::time::timeout(SOON, handle)
        .await
        .expect("task finished in time")
        .expect("task did not panic")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
