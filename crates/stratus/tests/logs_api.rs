//! The CloudWatch Logs API, driven through the real `stratus` binary with
//! the real aws CLI v1 (and botocore from Python for the `tail --follow`
//! loop CLI v2 runs). Function logs are produced the way the function
//! pool writes them: files in `<data dir>/logs/<account>/<region>/…`,
//! written before and while the server runs, and with PutLogEvents.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use test_support::{aws_err, aws_json, TestServer};

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "000000000000";
const GROUP: &str = "/aws/lambda/my_lambda";
const STREAM: &str = "2026/01/02/[$LATEST]0123456789abcdef";
const DAY_MS: i64 = 86_400_000;

fn start() -> TestServer {
    TestServer::start(Path::new(env!("CARGO_BIN_EXE_stratus")))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

#[track_caller]
fn logs(server: &TestServer, args: &[&str]) -> Value {
    let mut all = vec!["logs"];
    all.extend_from_slice(args);
    aws_json(server, REGION, &all)
}

#[track_caller]
fn logs_err(server: &TestServer, args: &[&str]) -> String {
    let mut all = vec!["logs"];
    all.extend_from_slice(args);
    aws_err(server, REGION, &all)
}

#[track_caller]
fn assert_error(stderr: &str, code: &str, message: &str) {
    assert!(
        stderr.contains(&format!("({code})")),
        "expected {code} in:\n{stderr}"
    );
    assert!(
        stderr.contains(message),
        "expected message {message:?} in:\n{stderr}"
    );
}

/// The file the function pool writes for `group`/`stream`.
fn stream_file(data_dir: &Path, group: &str, stream: &str) -> PathBuf {
    let enc = |s: &str| s.replace('%', "%25").replace('/', "%2F");
    data_dir
        .join("logs")
        .join(ACCOUNT)
        .join(REGION)
        .join(enc(group))
        .join(format!("{}.log", enc(stream)))
}

/// Appends lines in the pool's format (`<ms>\t<message>`).
fn append(data_dir: &Path, group: &str, stream: &str, lines: &[(i64, String)]) {
    let path = stream_file(data_dir, group, stream);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("open stream file");
    for (ts, m) in lines {
        writeln!(f, "{ts}\t{m}").expect("append");
    }
}

fn messages(v: &Value) -> Vec<String> {
    v["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {v}"))
        .iter()
        .map(|e| e["message"].as_str().expect("message").to_string())
        .collect()
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[test]
fn function_log_files_are_groups_streams_and_events() {
    let server = start();
    let base = now_ms() - 60_000;
    let lines: Vec<(i64, String)> = (0..25).map(|i| (base + i, format!("line {i}"))).collect();
    append(server.data_dir(), GROUP, STREAM, &lines);
    append(
        server.data_dir(),
        GROUP,
        "2026/01/02/[$LATEST]ffff",
        &[(base + 100, "other".into())],
    );

    let groups = logs(&server, &["describe-log-groups"]);
    assert_eq!(groups["logGroups"][0]["logGroupName"], GROUP, "{groups}");
    assert_eq!(
        groups["logGroups"][0]["arn"],
        format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}:*")
    );
    assert!(groups["logGroups"][0].get("retentionInDays").is_none());
    let none = logs(
        &server,
        &[
            "describe-log-groups",
            "--log-group-name-prefix",
            "/aws/nope",
        ],
    );
    assert_eq!(none["logGroups"], serde_json::json!([]));

    let streams = logs(
        &server,
        &[
            "describe-log-streams",
            "--log-group-name",
            GROUP,
            "--order-by",
            "LastEventTime",
            "--descending",
        ],
    );
    let first = &streams["logStreams"][0];
    assert_eq!(
        first["logStreamName"], "2026/01/02/[$LATEST]ffff",
        "{streams}"
    );
    let ours = &streams["logStreams"][1];
    assert_eq!(ours["logStreamName"], STREAM);
    assert_eq!(ours["firstEventTimestamp"], base);
    assert_eq!(ours["lastEventTimestamp"], base + 24);
    assert_eq!(ours["storedBytes"], 0);
    assert!(ours["lastIngestionTime"].as_i64().is_some(), "{ours}");
    assert_eq!(
        ours["arn"],
        format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}:log-stream:{STREAM}")
    );
    let by_prefix = logs(
        &server,
        &[
            "describe-log-streams",
            "--log-group-name",
            GROUP,
            "--log-stream-name-prefix",
            "2026/01/02/[$LATEST]0",
        ],
    );
    assert_eq!(by_prefix["logStreams"].as_array().map(Vec::len), Some(1));

    // Default: the newest events.
    let get = |extra: &[&str]| {
        let mut args = vec![
            "get-log-events",
            "--log-group-name",
            GROUP,
            "--log-stream-name",
            STREAM,
        ];
        args.extend_from_slice(extra);
        logs(&server, &args)
    };
    let tail = get(&["--limit", "10"]);
    assert_eq!(messages(&tail).len(), 10);
    assert_eq!(messages(&tail)[0], "line 15");
    assert_eq!(tail["events"][0]["timestamp"], base + 15);

    // Forward from the head, until the same token comes back.
    let mut token: Option<String> = None;
    let mut seen = Vec::new();
    let mut same_token_at_end = false;
    for _ in 0..10 {
        let mut extra = vec!["--limit", "10", "--start-from-head"];
        if let Some(t) = &token {
            extra.extend_from_slice(&["--next-token", t]);
        }
        let page = get(&extra);
        seen.extend(messages(&page));
        let next = str_at(&page, "nextForwardToken").to_string();
        if token.as_deref() == Some(next.as_str()) {
            assert!(messages(&page).is_empty());
            same_token_at_end = true;
            break;
        }
        token = Some(next);
    }
    assert!(same_token_at_end, "the forward token never repeated");
    let expected: Vec<String> = (0..25).map(|i| format!("line {i}")).collect();
    assert_eq!(seen, expected);

    // Backward from the tail, until the same token comes back.
    let mut token = str_at(&tail, "nextBackwardToken").to_string();
    let mut older: Vec<String> = Vec::new();
    let mut same_token_at_end = false;
    for _ in 0..10 {
        let page = get(&["--limit", "10", "--next-token", &token]);
        older.splice(0..0, messages(&page));
        let next = str_at(&page, "nextBackwardToken").to_string();
        if next == token {
            same_token_at_end = true;
            break;
        }
        token = next;
    }
    assert!(same_token_at_end, "the backward token never repeated");
    assert_eq!(older, expected[..15].to_vec());

    // Time window (end exclusive) and the logGroupIdentifier form.
    let arn = format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{GROUP}");
    let window = logs(
        &server,
        &[
            "get-log-events",
            "--log-group-identifier",
            &arn,
            "--log-stream-name",
            STREAM,
            "--start-time",
            &(base + 3).to_string(),
            "--end-time",
            &(base + 6).to_string(),
            "--start-from-head",
        ],
    );
    assert_eq!(messages(&window), vec!["line 3", "line 4", "line 5"]);

    // Lines appended while the server runs are read.
    append(
        server.data_dir(),
        GROUP,
        STREAM,
        &[(base + 30, "appended".into())],
    );
    let page = get(&["--limit", "1"]);
    assert_eq!(messages(&page), vec!["appended"]);

    let err = logs_err(
        &server,
        &[
            "get-log-events",
            "--log-group-name",
            "/aws/lambda/nope",
            "--log-stream-name",
            STREAM,
        ],
    );
    assert_error(
        &err,
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    );
    let err = logs_err(
        &server,
        &[
            "get-log-events",
            "--log-group-name",
            GROUP,
            "--log-stream-name",
            "nope",
        ],
    );
    assert_error(
        &err,
        "ResourceNotFoundException",
        "The specified log stream does not exist.",
    );
    let err = logs_err(
        &server,
        &["describe-log-streams", "--log-group-name", "/nope"],
    );
    assert_error(
        &err,
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    );
}

#[test]
fn filter_log_events_interleaves_pages_and_matches_patterns() {
    let server = start();
    let base = now_ms() - 60_000;
    append(
        server.data_dir(),
        GROUP,
        "a",
        &[
            (base + 1, "START RequestId: 1".into()),
            (base + 4, "ERROR db timeout".into()),
            (base + 5, "REPORT RequestId: 1 Duration: 2.00 ms".into()),
        ],
    );
    append(
        server.data_dir(),
        GROUP,
        "b",
        &[
            (base + 2, "START RequestId: 2".into()),
            (base + 3, "WARN slow cache".into()),
            (base + 6, "REPORT RequestId: 2 Duration: 3.00 ms".into()),
        ],
    );
    let filter = |extra: &[&str]| {
        let mut args = vec!["filter-log-events", "--log-group-name", GROUP];
        args.extend_from_slice(extra);
        logs(&server, &args)
    };
    let all = filter(&[]);
    let stamps: Vec<i64> = all["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["timestamp"].as_i64().expect("ts"))
        .collect();
    assert_eq!(stamps, (1..=6).map(|i| base + i).collect::<Vec<_>>());
    assert_eq!(all["events"][0]["logStreamName"], "a");
    let ids: std::collections::HashSet<&str> = all["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["eventId"].as_str().expect("eventId"))
        .collect();
    assert_eq!(ids.len(), 6);

    // The CLI follows nextToken; pages of 2 give the same events.
    let paged = filter(&["--page-size", "2"]);
    assert_eq!(paged["events"], all["events"]);

    assert_eq!(
        messages(&filter(&["--filter-pattern", "REPORT"])),
        vec![
            "REPORT RequestId: 1 Duration: 2.00 ms",
            "REPORT RequestId: 2 Duration: 3.00 ms"
        ]
    );
    assert_eq!(
        messages(&filter(&["--filter-pattern", "?ERROR ?WARN"])),
        vec!["WARN slow cache", "ERROR db timeout"]
    );
    assert_eq!(
        messages(&filter(&["--filter-pattern", "\"db timeout\""])),
        vec!["ERROR db timeout"]
    );
    assert_eq!(
        messages(&filter(&["--filter-pattern", "START \"RequestId: 2\""])),
        vec!["START RequestId: 2"]
    );
    assert_eq!(
        messages(&filter(&[
            "--log-stream-names",
            "b",
            "--start-time",
            &(base + 3).to_string(),
            "--end-time",
            &(base + 6).to_string(),
        ])),
        vec!["WARN slow cache", "REPORT RequestId: 2 Duration: 3.00 ms"]
    );
    assert_eq!(
        messages(&filter(&[
            "--log-stream-name-prefix",
            "a",
            "--filter-pattern",
            "START"
        ])),
        vec!["START RequestId: 1"]
    );

    let err = logs_err(
        &server,
        &[
            "filter-log-events",
            "--log-group-name",
            GROUP,
            "--filter-pattern",
            "{ $.level = \"error\" }",
        ],
    );
    assert_error(&err, "InvalidParameterException", "JSON patterns");
    let err = logs_err(
        &server,
        &["filter-log-events", "--log-group-name", "/aws/lambda/none"],
    );
    assert_error(
        &err,
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    );
    let err = logs_err(
        &server,
        &[
            "filter-log-events",
            "--log-group-name",
            GROUP,
            "--log-stream-names",
            "a",
            "--log-stream-name-prefix",
            "a",
        ],
    );
    assert_error(&err, "InvalidParameterException", "LogStreamNames");
}

#[test]
fn groups_streams_and_put_log_events() {
    let server = start();
    logs(
        &server,
        &["create-log-group", "--log-group-name", "app/logs"],
    );
    let err = logs_err(
        &server,
        &["create-log-group", "--log-group-name", "app/logs"],
    );
    assert_error(&err, "ResourceAlreadyExistsException", "already exists");
    let err = logs_err(
        &server,
        &["create-log-group", "--log-group-name", "bad name!"],
    );
    assert_error(
        &err,
        "InvalidParameterException",
        "Member must satisfy regular expression pattern",
    );
    logs(
        &server,
        &[
            "create-log-stream",
            "--log-group-name",
            "app/logs",
            "--log-stream-name",
            "s1",
        ],
    );
    let err = logs_err(
        &server,
        &[
            "create-log-stream",
            "--log-group-name",
            "app/logs",
            "--log-stream-name",
            "bad:name",
        ],
    );
    assert_error(&err, "InvalidParameterException", "logStreamName");
    let err = logs_err(
        &server,
        &[
            "create-log-stream",
            "--log-group-name",
            "nope",
            "--log-stream-name",
            "s1",
        ],
    );
    assert_error(
        &err,
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    );

    let now = now_ms();
    let events = format!(
        r#"[{{"timestamp": {}, "message": "first"}}, {{"timestamp": {}, "message": "multi\nline"}}]"#,
        now - 10,
        now
    );
    let put = logs(
        &server,
        &[
            "put-log-events",
            "--log-group-name",
            "app/logs",
            "--log-stream-name",
            "s1",
            "--log-events",
            &events,
        ],
    );
    assert!(put["nextSequenceToken"].as_str().is_some(), "{put}");
    assert!(put.get("rejectedLogEventsInfo").is_none(), "{put}");
    let got = logs(
        &server,
        &[
            "get-log-events",
            "--log-group-name",
            "app/logs",
            "--log-stream-name",
            "s1",
            "--start-from-head",
        ],
    );
    assert_eq!(messages(&got), vec!["first", "multi\nline"]);
    assert_eq!(got["events"][1]["timestamp"], now);

    let unordered = format!(
        r#"[{{"timestamp": {now}, "message": "b"}}, {{"timestamp": {}, "message": "a"}}]"#,
        now - 5
    );
    let err = logs_err(
        &server,
        &[
            "put-log-events",
            "--log-group-name",
            "app/logs",
            "--log-stream-name",
            "s1",
            "--log-events",
            &unordered,
        ],
    );
    assert_error(&err, "InvalidParameterException", "chronological order");
    let err = logs_err(
        &server,
        &[
            "put-log-events",
            "--log-group-name",
            "app/logs",
            "--log-stream-name",
            "nope",
            "--log-events",
            &format!(r#"[{{"timestamp": {now}, "message": "x"}}]"#),
        ],
    );
    assert_error(
        &err,
        "ResourceNotFoundException",
        "The specified log stream does not exist.",
    );
    let future = logs(
        &server,
        &[
            "put-log-events",
            "--log-group-name",
            "app/logs",
            "--log-stream-name",
            "s1",
            "--log-events",
            &format!(
                r#"[{{"timestamp": {now}, "message": "ok"}}, {{"timestamp": {}, "message": "late"}}]"#,
                now + 3 * 3_600_000
            ),
        ],
    );
    assert_eq!(
        future["rejectedLogEventsInfo"]["tooNewLogEventStartIndex"], 1,
        "{future}"
    );

    logs(
        &server,
        &[
            "delete-log-stream",
            "--log-group-name",
            "app/logs",
            "--log-stream-name",
            "s1",
        ],
    );
    let err = logs_err(
        &server,
        &[
            "delete-log-stream",
            "--log-group-name",
            "app/logs",
            "--log-stream-name",
            "s1",
        ],
    );
    assert_error(
        &err,
        "ResourceNotFoundException",
        "The specified log stream does not exist.",
    );
    logs(
        &server,
        &["delete-log-group", "--log-group-name", "app/logs"],
    );
    let groups = logs(&server, &["describe-log-groups"]);
    assert_eq!(groups["logGroups"], serde_json::json!([]));
}

#[test]
fn retention_hides_old_events_and_survives_a_restart() {
    let mut server = start();
    let now = now_ms();
    append(
        server.data_dir(),
        GROUP,
        STREAM,
        &[(now - 3 * DAY_MS, "old".into()), (now - 1000, "new".into())],
    );
    let get = |server: &TestServer| {
        messages(&logs(
            server,
            &[
                "get-log-events",
                "--log-group-name",
                GROUP,
                "--log-stream-name",
                STREAM,
                "--start-from-head",
            ],
        ))
    };
    assert_eq!(get(&server), vec!["old", "new"]);
    let err = logs_err(
        &server,
        &[
            "put-retention-policy",
            "--log-group-name",
            GROUP,
            "--retention-in-days",
            "2",
        ],
    );
    assert_error(
        &err,
        "InvalidParameterException",
        "1 validation error detected: Value '2' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]",
    );
    let err = logs_err(
        &server,
        &[
            "put-retention-policy",
            "--log-group-name",
            "/nope",
            "--retention-in-days",
            "1",
        ],
    );
    assert_error(
        &err,
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    );
    logs(
        &server,
        &[
            "put-retention-policy",
            "--log-group-name",
            GROUP,
            "--retention-in-days",
            "1",
        ],
    );
    assert_eq!(get(&server), vec!["new"]);
    let filtered = logs(&server, &["filter-log-events", "--log-group-name", GROUP]);
    assert_eq!(messages(&filtered), vec!["new"]);
    let groups = logs(&server, &["describe-log-groups"]);
    assert_eq!(groups["logGroups"][0]["retentionInDays"], 1, "{groups}");

    server.restart();
    let groups = logs(&server, &["describe-log-groups"]);
    assert_eq!(groups["logGroups"][0]["retentionInDays"], 1, "{groups}");
    assert_eq!(get(&server), vec!["new"]);

    logs(
        &server,
        &["delete-retention-policy", "--log-group-name", GROUP],
    );
    assert_eq!(get(&server), vec!["old", "new"]);
    let groups = logs(&server, &["describe-log-groups"]);
    assert!(groups["logGroups"][0].get("retentionInDays").is_none());
}

#[test]
fn malformed_requests_get_aws_shaped_errors() {
    let server = start();
    let client = reqwest::blocking::Client::new();
    let send = |target: &str, body: &str| {
        let r = client
            .post(server.url("/"))
            .header("X-Amz-Target", format!("Logs_20140328.{target}"))
            .header("Content-Type", "application/x-amz-json-1.1")
            .body(body.to_string())
            .send()
            .expect("send");
        let status = r.status().as_u16();
        let v: Value = r.json().expect("json error body");
        (status, v)
    };
    let (status, v) = send("DescribeLogGroups", "{not json");
    assert_eq!(status, 400);
    assert!(
        v["__type"]
            .as_str()
            .expect("type")
            .ends_with("SerializationException"),
        "{v}"
    );
    let (status, v) = send("DescribeLogStreams", r#"{"logGroupName": 5}"#);
    assert_eq!(status, 400);
    assert!(
        v["__type"]
            .as_str()
            .expect("type")
            .ends_with("SerializationException"),
        "{v}"
    );
    let (status, v) = send("DescribeLogGroups", "[]");
    assert_eq!(status, 400);
    assert!(
        v["__type"]
            .as_str()
            .expect("type")
            .ends_with("SerializationException"),
        "{v}"
    );
    let (status, v) = send("StartQuery", "{}");
    assert_eq!(status, 400);
    assert!(
        v["__type"]
            .as_str()
            .expect("type")
            .ends_with("UnknownOperationException"),
        "{v}"
    );
    let (status, v) = send(
        "GetLogEvents",
        r#"{"logGroupName": "g", "logStreamName": "s", "nextToken": "zz"}"#,
    );
    assert_eq!(status, 400, "{v}");
    let (status, v) = send("DescribeLogGroups", r#"{"limit": 51}"#);
    assert_eq!(status, 400);
    assert!(
        v["__type"]
            .as_str()
            .expect("type")
            .ends_with("InvalidParameterException"),
        "{v}"
    );
    let (status, _) = send("DescribeLogGroups", "{}");
    assert_eq!(status, 200);
}

/// The loop `aws logs tail --follow` (CLI v2) runs, in botocore:
/// FilterLogEvents from `startTime`, following `nextToken`, then again
/// from the newest timestamp seen, skipping event ids already printed.
const FOLLOW_SCRIPT: &str = r#"
import sys, time, botocore.session
endpoint, group, want, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
client = botocore.session.get_session().create_client(
    "logs", region_name="us-east-1", endpoint_url=endpoint,
    aws_access_key_id="test", aws_secret_access_key="test")
seen, printed = set(), 0
kwargs = {"logGroupName": group, "startTime": start, "interleaved": True}
deadline = time.time() + 60
print("polling", flush=True)
while printed < want and time.time() < deadline:
    r = client.filter_log_events(**kwargs)
    for e in r["events"]:
        if e["eventId"] in seen:
            continue
        seen.add(e["eventId"])
        printed += 1
        print("EVENT " + e["logStreamName"] + " " + e["message"], flush=True)
        kwargs["startTime"] = max(kwargs["startTime"], e["timestamp"])
    if "nextToken" in r:
        kwargs["nextToken"] = r["nextToken"]
    else:
        kwargs.pop("nextToken", None)
        time.sleep(0.2)
print("done", printed, flush=True)
"#;

#[test]
fn a_follow_loop_sees_new_lines_once() {
    let server = start();
    let start_ms = now_ms() - 1000;
    append(
        server.data_dir(),
        GROUP,
        STREAM,
        &[
            (start_ms + 1, "before 0".into()),
            (start_ms + 1, "before 1".into()),
        ],
    );
    let script = tempfile::NamedTempFile::new().expect("script file");
    fs::write(script.path(), FOLLOW_SCRIPT).expect("write script");
    let mut child = Command::new("python3")
        .arg(script.path())
        .args([&server.endpoint(), GROUP, "6", &start_ms.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 with botocore");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "polling");
    // New lines in the same stream (same timestamp as the last one seen:
    // the loop must not lose or repeat them), and a new stream.
    let mut lines = Vec::new();
    for _ in 0..2 {
        line.clear();
        out.read_line(&mut line).expect("read");
        lines.push(line.trim().to_string());
    }
    append(
        server.data_dir(),
        GROUP,
        STREAM,
        &[
            (start_ms + 1, "after 0".into()),
            (now_ms(), "after 1".into()),
        ],
    );
    append(
        server.data_dir(),
        GROUP,
        "2026/01/02/[$LATEST]beef",
        &[(now_ms(), "new stream".into())],
    );
    append(
        server.data_dir(),
        GROUP,
        STREAM,
        &[(now_ms(), "after 2".into())],
    );
    // The script ends by itself once it printed 6 events (or after 60 s).
    for l in out.lines() {
        lines.push(l.expect("read").trim().to_string());
    }
    let status = child.wait().expect("wait");
    assert!(status.success());
    assert_eq!(
        lines.last().map(String::as_str),
        Some("done 6"),
        "{lines:?}"
    );
    let events: Vec<&String> = lines.iter().filter(|l| l.starts_with("EVENT")).collect();
    assert_eq!(events.len(), 6, "{lines:?}");
    for want in [
        "before 0",
        "before 1",
        "after 0",
        "after 1",
        "after 2",
        "new stream",
    ] {
        assert_eq!(
            events.iter().filter(|l| l.ends_with(want)).count(),
            1,
            "{want} in {lines:?}"
        );
    }
}

/// End to end: a real function (the Rust test function, run by runc)
/// is invoked, and its `REPORT` line is found with filter-log-events.
#[test]
fn a_real_functions_report_line_is_found() {
    use test_support::{CopyOptions, OciImageBuilder, OutputExt, Skopeo};
    let bootstrap = test_support::rust_function_bootstrap();
    let server = start();
    let work = tempfile::tempdir().expect("work dir");
    aws_json(
        &server,
        REGION,
        &["ecr", "create-repository", "--repository-name", "logfn"],
    );
    let image = OciImageBuilder::new()
        .layer([("bootstrap", bootstrap)])
        .entrypoint(&["/bootstrap"])
        .write(&work.path().join("layout"), "v1");
    let uri = format!("{}/logfn:v1", server.registry_host());
    Skopeo::new()
        .copy_with(
            &image.oci_ref(),
            &format!("docker://{uri}"),
            CopyOptions {
                preserve_digests: true,
                ..CopyOptions::default()
            },
        )
        .assert_success("skopeo copy");
    aws_json(
        &server,
        REGION,
        &[
            "lambda",
            "create-function",
            "--function-name",
            "logfn",
            "--package-type",
            "Image",
            "--code",
            &format!("ImageUri={uri}"),
            "--role",
            "arn:aws:iam::000000000000:role/lambda-role",
        ],
    );
    aws_json(
        &server,
        REGION,
        &[
            "lambda",
            "wait",
            "function-active-v2",
            "--function-name",
            "logfn",
        ],
    );
    let out = work.path().join("out.json");
    aws_json(
        &server,
        REGION,
        &[
            "lambda",
            "invoke",
            "--function-name",
            "logfn",
            "--payload",
            "{}",
            &out.to_string_lossy(),
        ],
    );
    let found = test_support::poll_until(std::time::Duration::from_secs(30), || {
        let v = logs(
            &server,
            &[
                "filter-log-events",
                "--log-group-name",
                "/aws/lambda/logfn",
                "--filter-pattern",
                "REPORT",
            ],
        );
        let m = messages(&v);
        (!m.is_empty()).then_some(m)
    });
    assert!(
        found[0].starts_with("REPORT RequestId: ") && found[0].contains("Billed Duration"),
        "{found:?}"
    );
}
