use super::*;
use std::io::Write;

const ACCOUNT: &str = "000000000000";
const REGION: &str = "us-east-1";
const GROUP: &str = "/aws/lambda/f";

fn store() -> (tempfile::TempDir, LogStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LogStore::new(dir.path().join("logs"));
    (dir, store)
}

/// Writes pool-format lines (`<ms>\t<msg>`) to a stream file.
fn write_pool_lines(store: &LogStore, group: &str, stream: &str, lines: &[(i64, &str)]) {
    let dir = store
        .root()
        .join(ACCOUNT)
        .join(REGION)
        .join(names::encode(group));
    fs::create_dir_all(&dir).expect("mkdir");
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(names::stream_file_name(stream)))
        .expect("open");
    for (ts, m) in lines {
        writeln!(f, "{ts}\t{m}").expect("write");
    }
}

fn messages(events: &[StoredEvent]) -> Vec<String> {
    events.iter().map(|e| e.message.clone()).collect()
}

#[test]
fn groups_and_streams_from_the_pool_layout() {
    let (_d, s) = store();
    assert!(s.list_groups(ACCOUNT, REGION).expect("list").is_empty());
    write_pool_lines(
        &s,
        GROUP,
        "2024/01/01/[$LATEST]aa",
        &[(10, "START"), (20, "END")],
    );
    let groups = s.list_groups(ACCOUNT, REGION).expect("list");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].name, GROUP);
    let streams = s.list_streams(ACCOUNT, REGION, GROUP).expect("streams");
    assert_eq!(streams[0].name, "2024/01/01/[$LATEST]aa");
    assert_eq!(streams[0].first_event_timestamp, Some(10));
    assert_eq!(streams[0].last_event_timestamp, Some(20));
    assert!(matches!(
        s.list_streams(ACCOUNT, REGION, "/nope"),
        Err(LogsError::GroupNotFound)
    ));
    assert!(matches!(
        s.list_groups(ACCOUNT, "../..").map(|_| ()),
        Err(LogsError::InvalidParameter(_))
    ));
}

#[test]
fn create_delete_and_conflicts() {
    let (_d, s) = store();
    s.create_group(ACCOUNT, REGION, "g").expect("create");
    assert!(matches!(
        s.create_group(ACCOUNT, REGION, "g"),
        Err(LogsError::GroupExists)
    ));
    assert!(matches!(
        s.create_stream(ACCOUNT, REGION, "nope", "s"),
        Err(LogsError::GroupNotFound)
    ));
    s.create_stream(ACCOUNT, REGION, "g", "s").expect("stream");
    assert!(matches!(
        s.create_stream(ACCOUNT, REGION, "g", "s"),
        Err(LogsError::StreamExists)
    ));
    let info = s.stream_info(ACCOUNT, REGION, "g", "s").expect("info");
    assert_eq!(info.first_event_timestamp, None);
    s.delete_stream(ACCOUNT, REGION, "g", "s")
        .expect("delete stream");
    assert!(matches!(
        s.delete_stream(ACCOUNT, REGION, "g", "s"),
        Err(LogsError::StreamNotFound)
    ));
    s.create_group(ACCOUNT, REGION, "..")
        .expect("dots are a valid group name");
    assert_eq!(
        s.list_groups(ACCOUNT, REGION)
            .expect("list")
            .iter()
            .map(|g| g.name.as_str())
            .collect::<Vec<_>>(),
        vec!["..", "g"]
    );
    s.delete_group(ACCOUNT, REGION, "g").expect("delete group");
    assert!(matches!(
        s.delete_group(ACCOUNT, REGION, "g"),
        Err(LogsError::GroupNotFound)
    ));
}

#[test]
fn get_events_pages_forward_and_backward_with_the_same_token_at_the_ends() {
    let (_d, s) = store();
    let lines: Vec<(i64, String)> = (0..25).map(|i| (1000 + i, format!("m{i}"))).collect();
    let refs: Vec<(i64, &str)> = lines.iter().map(|(t, m)| (*t, m.as_str())).collect();
    write_pool_lines(&s, GROUP, "s", &refs);
    let get = |q: GetEvents| s.get_events(ACCOUNT, REGION, GROUP, "s", &q).expect("get");
    // Default: the newest events.
    let tail = get(GetEvents {
        limit: Some(10),
        ..Default::default()
    });
    assert_eq!(
        messages(&tail.events).first().map(String::as_str),
        Some("m15")
    );
    assert_eq!(tail.events.len(), 10);
    // Forward from the head, page by page, until the token repeats.
    let mut token = None;
    let mut seen = Vec::new();
    for _ in 0..10 {
        let page = get(GetEvents {
            limit: Some(10),
            start_from_head: true,
            token,
            ..Default::default()
        });
        seen.extend(messages(&page.events));
        if token == Some(page.next_forward) {
            assert!(page.events.is_empty());
            break;
        }
        token = Some(page.next_forward);
    }
    assert_eq!(seen.len(), 25);
    assert_eq!(seen[24], "m24");
    // Backward from the tail until the token repeats.
    let mut token = Some(tail.next_backward);
    let mut older = Vec::new();
    for _ in 0..10 {
        let page = get(GetEvents {
            limit: Some(10),
            token,
            ..Default::default()
        });
        older.splice(0..0, messages(&page.events));
        if token == Some(page.next_backward) {
            break;
        }
        token = Some(page.next_backward);
    }
    assert_eq!(older.len(), 15);
    assert_eq!(older[0], "m0");
    // Time window: start inclusive, end exclusive.
    let w = get(GetEvents {
        start_time: Some(1003),
        end_time: Some(1006),
        start_from_head: true,
        ..Default::default()
    });
    assert_eq!(messages(&w.events), vec!["m3", "m4", "m5"]);
    // Retention cut-off.
    let r = get(GetEvents {
        not_before: Some(1020),
        ..Default::default()
    });
    assert_eq!(r.events.len(), 5);
    assert!(matches!(
        s.get_events(ACCOUNT, REGION, GROUP, "nope", &GetEvents::default()),
        Err(LogsError::StreamNotFound)
    ));
}

#[test]
fn filter_interleaves_streams_pages_and_matches_patterns() {
    let (_d, s) = store();
    write_pool_lines(
        &s,
        GROUP,
        "a",
        &[(1, "a ERROR one"), (4, "a INFO"), (5, "a WARN")],
    );
    write_pool_lines(
        &s,
        GROUP,
        "b",
        &[(2, "b INFO"), (3, "b ERROR two"), (6, "b REPORT x")],
    );
    let all = s
        .filter_events(ACCOUNT, REGION, GROUP, &FilterEvents::default())
        .expect("filter");
    let order: Vec<i64> = all.events.iter().map(|e| e.event.timestamp).collect();
    assert_eq!(order, vec![1, 2, 3, 4, 5, 6]);
    assert!(all.next_token.is_none());
    let ids: std::collections::HashSet<_> = all.events.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(ids.len(), 6);
    // Paging with a limit returns everything once, in order.
    let mut token = None;
    let mut paged = Vec::new();
    loop {
        let page = s
            .filter_events(
                ACCOUNT,
                REGION,
                GROUP,
                &FilterEvents {
                    limit: Some(2),
                    token: token.clone(),
                    ..Default::default()
                },
            )
            .expect("page");
        paged.extend(page.events.iter().map(|e| e.event_id.clone()));
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(
        paged,
        all.events
            .iter()
            .map(|e| e.event_id.clone())
            .collect::<Vec<_>>()
    );
    let errors = s
        .filter_events(
            ACCOUNT,
            REGION,
            GROUP,
            &FilterEvents {
                pattern: FilterPattern::parse("?ERROR ?WARN").expect("p"),
                ..Default::default()
            },
        )
        .expect("filter");
    assert_eq!(errors.events.len(), 3);
    let b_only = s
        .filter_events(
            ACCOUNT,
            REGION,
            GROUP,
            &FilterEvents {
                streams: StreamSelect::Prefix("b".into()),
                start_time: Some(3),
                end_time: Some(6),
                ..Default::default()
            },
        )
        .expect("filter");
    let msgs: Vec<_> = b_only
        .events
        .iter()
        .map(|e| e.event.message.as_str())
        .collect();
    assert_eq!(msgs, vec!["b ERROR two", "b REPORT x"]);
    assert!(s
        .filter_events(
            ACCOUNT,
            REGION,
            GROUP,
            &FilterEvents {
                token: Some("garbage!".into()),
                ..Default::default()
            }
        )
        .is_err());
}

#[test]
fn put_events_validates_and_round_trips() {
    let (_d, s) = store();
    s.create_group(ACCOUNT, REGION, "g").expect("group");
    s.create_stream(ACCOUNT, REGION, "g", "s").expect("stream");
    let now = now_ms();
    let ev = |t: i64, m: &str| InputEvent {
        timestamp: t,
        message: m.into(),
    };
    let out = s
        .put_events(
            ACCOUNT,
            REGION,
            "g",
            "s",
            &[ev(now - 1, "one\ntwo"), ev(now, "three")],
            None,
        )
        .expect("put");
    assert_eq!(out.too_new_start, None);
    let page = s
        .get_events(
            ACCOUNT,
            REGION,
            "g",
            "s",
            &GetEvents {
                start_from_head: true,
                ..Default::default()
            },
        )
        .expect("get");
    assert_eq!(messages(&page.events), vec!["one\ntwo", "three"]);
    assert!(matches!(
        s.put_events(ACCOUNT, REGION, "g", "s", &[ev(now, "b"), ev(now - 5, "a")], None),
        Err(LogsError::InvalidParameter(m)) if m.contains("chronological")
    ));
    assert!(matches!(
        s.put_events(ACCOUNT, REGION, "g", "s", &[ev(now - 2 * DAY_MS, "a"), ev(now, "b")], None),
        Err(LogsError::InvalidParameter(m)) if m.contains("24 hours")
    ));
    let big = "x".repeat(600_000);
    assert!(s
        .put_events(
            ACCOUNT,
            REGION,
            "g",
            "s",
            &[ev(now, &big), ev(now, &big)],
            None
        )
        .is_err());
    let out = s.put_events(
        ACCOUNT,
        REGION,
        "g",
        "s",
        &[
            ev(now - 20 * DAY_MS, "old"),
            ev(now - 20 * DAY_MS + 1, "old2"),
        ],
        None,
    );
    assert!(out.is_ok());
    let out = s
        .put_events(
            ACCOUNT,
            REGION,
            "g",
            "s",
            &[ev(now - DAY_MS - 3_600_000, "x"), ev(now - 7_200_000, "y")],
            Some(1),
        )
        .expect("put");
    assert_eq!(out.expired_end, Some(1));
    let out = s
        .put_events(
            ACCOUNT,
            REGION,
            "g",
            "s",
            &[ev(now, "z"), ev(now + 3 * 3_600_000, "future")],
            None,
        )
        .expect("put");
    assert_eq!(out.too_new_start, Some(1));
    assert!(matches!(
        s.put_events(ACCOUNT, REGION, "g", "nope", &[ev(now, "a")], None),
        Err(LogsError::StreamNotFound)
    ));
}

#[test]
fn sweep_deletes_whole_files_past_retention() {
    let (_d, s) = store();
    let now = now_ms();
    write_pool_lines(&s, GROUP, "old", &[(now - 10 * DAY_MS, "old")]);
    write_pool_lines(
        &s,
        GROUP,
        "new",
        &[(now - 10 * DAY_MS, "old"), (now + 7_200_000, "new")],
    );
    // The files were just written: their mtime protects them...
    assert_eq!(
        s.sweep_group(ACCOUNT, REGION, GROUP, 1, now)
            .expect("sweep"),
        0
    );
    // ...until the clock moves past the retention.
    let later = now + DAY_MS + 3_600_000;
    assert_eq!(
        s.sweep_group(ACCOUNT, REGION, GROUP, 1, later)
            .expect("sweep"),
        1
    );
    let names: Vec<_> = s
        .list_streams(ACCOUNT, REGION, GROUP)
        .expect("list")
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, vec!["new"]);
    assert_eq!(
        s.sweep_group(ACCOUNT, REGION, "/missing", 1, now)
            .expect("sweep"),
        0
    );
}
