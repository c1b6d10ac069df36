//! CloudWatch Logs over the function log files.
//!
//! The function pool writes one file per log stream,
//! `<root>/<account>/<region>/<group>/<stream>.log` (names encoded by
//! [`names::encode`]), one event per line (see [`file`]). This crate reads
//! that layout back as log groups, streams and events, with the paging,
//! filtering and retention semantics of the CloudWatch Logs API, and
//! writes to it for CreateLogGroup/CreateLogStream/PutLogEvents.
//!
//! What it deliberately does not know: the wire (field names, tokens are
//! strings it makes and parses), where retention settings are stored (the
//! caller passes the cut-off), and anything about functions beyond the
//! layout.
//!
//! Bounded work: files are read in 64 KiB chunks, never whole; one call
//! reads at most [`MAX_SCAN_BYTES`] and returns a token to continue.
//! A file is appended by one writer at a time (the pool's log writer, or
//! PutLogEvents under this store's lock); a reader ignores a last line
//! still being written.

pub mod file;
pub mod names;
pub mod pattern;

use std::collections::{BTreeMap, BinaryHeap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

pub use file::StoredEvent;
pub use pattern::FilterPattern;

/// Most bytes one read call scans before it returns with a token.
pub const MAX_SCAN_BYTES: u64 = 64 * 1024 * 1024;
/// Most bytes of events one response carries (AWS's 1 MB).
pub const MAX_RESPONSE_BYTES: usize = 1_048_576;
/// Bytes AWS counts per event on top of its message.
pub const EVENT_OVERHEAD: usize = 26;
/// Most events one GetLogEvents/FilterLogEvents returns (and the default).
pub const MAX_EVENTS: usize = 10_000;
/// Most streams one FilterLogEvents call reads at once; the rest follow
/// in later pages.
pub const MAX_FILTER_STREAMS: usize = 256;
const DAY_MS: i64 = 86_400_000;

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error("The specified log group does not exist.")]
    GroupNotFound,
    #[error("The specified log stream does not exist.")]
    StreamNotFound,
    #[error("The specified log group already exists")]
    GroupExists,
    #[error("The specified log stream already exists")]
    StreamExists,
    #[error("{0}")]
    InvalidParameter(String),
    #[error("log storage error: {0}")]
    Io(#[from] io::Error),
}

/// A log group as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub name: String,
    pub creation_time: i64,
}

/// A log stream as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub name: String,
    pub creation_time: i64,
    pub first_event_timestamp: Option<i64>,
    pub last_event_timestamp: Option<i64>,
    pub last_ingestion_time: Option<i64>,
    /// Bytes in the file; doubles as the upload sequence token.
    pub size: u64,
}

/// Where a GetLogEvents page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventToken {
    /// Events starting at or after this offset.
    Forward(u64),
    /// Events ending at or before this offset.
    Backward(u64),
}

impl EventToken {
    /// `f/<offset>` or `b/<offset>`.
    pub fn parse(token: &str) -> Option<EventToken> {
        let (dir, n) = token.split_once('/')?;
        let n: u64 = n.parse().ok()?;
        match dir {
            "f" => Some(EventToken::Forward(n)),
            "b" => Some(EventToken::Backward(n)),
            _ => None,
        }
    }

    pub fn render(&self) -> String {
        match self {
            EventToken::Forward(n) => format!("f/{n:020}"),
            EventToken::Backward(n) => format!("b/{n:020}"),
        }
    }
}

/// A GetLogEvents request.
#[derive(Debug, Clone, Default)]
pub struct GetEvents {
    /// Inclusive.
    pub start_time: Option<i64>,
    /// Exclusive.
    pub end_time: Option<i64>,
    pub limit: Option<usize>,
    pub start_from_head: bool,
    pub token: Option<EventToken>,
    /// Events older than this (retention) are never returned.
    pub not_before: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsPage {
    pub events: Vec<StoredEvent>,
    pub next_forward: EventToken,
    pub next_backward: EventToken,
}

/// Which streams FilterLogEvents reads.
#[derive(Debug, Clone, Default)]
pub enum StreamSelect {
    #[default]
    All,
    Names(Vec<String>),
    Prefix(String),
}

/// A FilterLogEvents request.
#[derive(Debug, Clone, Default)]
pub struct FilterEvents {
    pub streams: StreamSelect,
    /// Inclusive.
    pub start_time: Option<i64>,
    /// Inclusive.
    pub end_time: Option<i64>,
    pub pattern: FilterPattern,
    pub limit: Option<usize>,
    pub token: Option<String>,
    pub not_before: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilteredEvent {
    pub stream: String,
    /// Stable and unique within the group: the stream and the line's offset.
    pub event_id: String,
    pub event: StoredEvent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterPage {
    pub events: Vec<FilteredEvent>,
    /// The streams read, and whether each was read to its end.
    pub searched: Vec<(String, bool)>,
    pub next_token: Option<String>,
}

/// One event of a PutLogEvents batch.
#[derive(Debug, Clone)]
pub struct InputEvent {
    pub timestamp: i64,
    pub message: String,
}

/// What PutLogEvents did not store, as AWS reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOutcome {
    pub next_sequence_token: String,
    pub too_new_start: Option<usize>,
    pub too_old_end: Option<usize>,
    pub expired_end: Option<usize>,
}

/// The log store over one root directory.
pub struct LogStore {
    root: PathBuf,
    /// Serialises PutLogEvents appends (one writer per file at a time).
    write: Mutex<()>,
}

/// Milliseconds since the epoch now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn ms_of(t: io::Result<SystemTime>) -> Option<i64> {
    t.ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
}

/// The oldest timestamp a group with this retention still shows.
pub fn retention_cutoff(retention_days: Option<i64>, now_ms: i64) -> Option<i64> {
    retention_days.map(|d| now_ms - d * DAY_MS)
}

fn not_found_as(e: io::Error, err: LogsError) -> LogsError {
    if e.kind() == io::ErrorKind::NotFound {
        err
    } else {
        LogsError::Io(e)
    }
}

/// A stable event id: 56 digits (AWS's length) from the stream and offset.
fn event_id(stream: &str, offset: u64) -> String {
    // FNV-1a, 64 bits: stable across builds and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in stream.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:020}{offset:036}")
}

impl LogStore {
    pub fn new(root: PathBuf) -> LogStore {
        LogStore {
            root,
            write: Mutex::new(()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn scope_dir(&self, account: &str, region: &str) -> Result<PathBuf, LogsError> {
        names::validate_scope(account, region)?;
        Ok(self.root.join(account).join(region))
    }

    fn group_dir(&self, account: &str, region: &str, group: &str) -> Result<PathBuf, LogsError> {
        Ok(self.scope_dir(account, region)?.join(names::encode(group)))
    }

    /// The group's directory, which must exist.
    fn existing_group(
        &self,
        account: &str,
        region: &str,
        group: &str,
    ) -> Result<PathBuf, LogsError> {
        let dir = self.group_dir(account, region, group)?;
        match fs::metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(dir),
            Ok(_) => Err(LogsError::GroupNotFound),
            Err(e) => Err(not_found_as(e, LogsError::GroupNotFound)),
        }
    }

    fn stream_path(
        &self,
        account: &str,
        region: &str,
        group: &str,
        stream: &str,
    ) -> Result<PathBuf, LogsError> {
        let dir = self.existing_group(account, region, group)?;
        Ok(dir.join(names::stream_file_name(stream)))
    }

    fn open_stream(
        &self,
        account: &str,
        region: &str,
        group: &str,
        stream: &str,
    ) -> Result<File, LogsError> {
        let path = self.stream_path(account, region, group, stream)?;
        File::open(path).map_err(|e| not_found_as(e, LogsError::StreamNotFound))
    }

    // ----- groups -----------------------------------------------------------

    /// Every group of the account and region, sorted by name.
    pub fn list_groups(&self, account: &str, region: &str) -> Result<Vec<GroupInfo>, LogsError> {
        let dir = self.scope_dir(account, region)?;
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().and_then(names::decode) else {
                continue;
            };
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_dir() {
                continue;
            }
            let creation_time = ms_of(meta.created())
                .or_else(|| ms_of(meta.modified()))
                .unwrap_or(0);
            out.push(GroupInfo {
                name,
                creation_time,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn group_exists(
        &self,
        account: &str,
        region: &str,
        group: &str,
    ) -> Result<bool, LogsError> {
        match self.existing_group(account, region, group) {
            Ok(_) => Ok(true),
            Err(LogsError::GroupNotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn create_group(&self, account: &str, region: &str, group: &str) -> Result<(), LogsError> {
        names::validate_group(group, "logGroupName")?;
        let scope = self.scope_dir(account, region)?;
        fs::create_dir_all(&scope)?;
        match fs::create_dir(scope.join(names::encode(group))) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(LogsError::GroupExists),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the group and every stream in it.
    pub fn delete_group(&self, account: &str, region: &str, group: &str) -> Result<(), LogsError> {
        let dir = self.existing_group(account, region, group)?;
        fs::remove_dir_all(dir).map_err(|e| not_found_as(e, LogsError::GroupNotFound))
    }

    // ----- streams ----------------------------------------------------------

    /// Every stream of the group, sorted by name, with its metadata.
    pub fn list_streams(
        &self,
        account: &str,
        region: &str,
        group: &str,
    ) -> Result<Vec<StreamInfo>, LogsError> {
        let mut out = Vec::new();
        for (name, path) in self.stream_files(account, region, group)? {
            match stream_info(&name, &path) {
                Ok(info) => out.push(info),
                // Deleted meanwhile.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    /// Names and paths of the group's stream files, sorted by name.
    fn stream_files(
        &self,
        account: &str,
        region: &str,
        group: &str,
    ) -> Result<Vec<(String, PathBuf)>, LogsError> {
        let dir = self.existing_group(account, region, group)?;
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| not_found_as(e, LogsError::GroupNotFound))? {
            let entry = entry?;
            let file_name = entry.file_name();
            let Some(name) = file_name
                .to_str()
                .and_then(|f| f.strip_suffix(".log"))
                .and_then(names::decode)
            else {
                continue;
            };
            out.push((name, entry.path()));
        }
        out.sort();
        Ok(out)
    }

    pub fn stream_info(
        &self,
        account: &str,
        region: &str,
        group: &str,
        stream: &str,
    ) -> Result<StreamInfo, LogsError> {
        let path = self.stream_path(account, region, group, stream)?;
        stream_info(stream, &path).map_err(|e| not_found_as(e, LogsError::StreamNotFound))
    }

    pub fn create_stream(
        &self,
        account: &str,
        region: &str,
        group: &str,
        stream: &str,
    ) -> Result<(), LogsError> {
        names::validate_stream(stream, "logStreamName")?;
        let path = self.stream_path(account, region, group, stream)?;
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(LogsError::StreamExists),
            Err(e) => Err(not_found_as(e, LogsError::GroupNotFound)),
        }
    }

    pub fn delete_stream(
        &self,
        account: &str,
        region: &str,
        group: &str,
        stream: &str,
    ) -> Result<(), LogsError> {
        let path = self.stream_path(account, region, group, stream)?;
        fs::remove_file(path).map_err(|e| not_found_as(e, LogsError::StreamNotFound))
    }

    // ----- events -----------------------------------------------------------

    /// GetLogEvents: a page of one stream's events, oldest first, with
    /// tokens for the pages after and before it. At either end the token
    /// given is returned again.
    pub fn get_events(
        &self,
        account: &str,
        region: &str,
        group: &str,
        stream: &str,
        q: &GetEvents,
    ) -> Result<EventsPage, LogsError> {
        let file = self.open_stream(account, region, group, stream)?;
        let limit = q.limit.unwrap_or(MAX_EVENTS).clamp(1, MAX_EVENTS);
        let start = match (q.start_time, q.not_before) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let in_range = |e: &StoredEvent| {
            start.is_none_or(|s| e.timestamp >= s) && q.end_time.is_none_or(|t| e.timestamp < t)
        };
        let forward_from = match q.token {
            Some(EventToken::Forward(n)) => Some(n),
            Some(EventToken::Backward(_)) => None,
            None if q.start_from_head => Some(0),
            None => None,
        };
        if let Some(from) = forward_from {
            let from = from.min(file.metadata()?.len());
            let mut reader = file::ForwardReader::new(file, from);
            let mut events = Vec::new();
            let mut bytes = 0usize;
            let mut pos = from;
            while events.len() < limit && reader.read_bytes < MAX_SCAN_BYTES {
                let Some(e) = reader.next_event()? else { break };
                if in_range(&e) {
                    let size = e.message.len() + EVENT_OVERHEAD;
                    if bytes + size > MAX_RESPONSE_BYTES && !events.is_empty() {
                        break;
                    }
                    bytes += size;
                    events.push(e);
                }
                pos = reader.pos;
            }
            let back = events.first().map_or(from, |e| e.offset);
            return Ok(EventsPage {
                events,
                next_forward: EventToken::Forward(pos),
                next_backward: EventToken::Backward(back),
            });
        }
        let before = match q.token {
            Some(EventToken::Backward(n)) => n,
            _ => u64::MAX,
        };
        let mut reader = file::BackwardReader::new(file, before)?;
        let from = reader.pos;
        let mut events = Vec::new();
        let mut bytes = 0usize;
        let mut pos = from;
        while events.len() < limit && reader.read_bytes < MAX_SCAN_BYTES {
            let Some(e) = reader.prev_event()? else { break };
            if in_range(&e) {
                let size = e.message.len() + EVENT_OVERHEAD;
                if bytes + size > MAX_RESPONSE_BYTES && !events.is_empty() {
                    break;
                }
                bytes += size;
                events.push(e);
            }
            pos = reader.pos;
        }
        events.reverse();
        let forward = events.last().map_or(from, |e| e.end);
        let backward = pos;
        Ok(EventsPage {
            events,
            next_forward: EventToken::Forward(forward),
            next_backward: EventToken::Backward(backward),
        })
    }

    /// FilterLogEvents: events of several streams interleaved by
    /// timestamp. `next_token` is `None` once every stream was read to its
    /// end.
    pub fn filter_events(
        &self,
        account: &str,
        region: &str,
        group: &str,
        q: &FilterEvents,
    ) -> Result<FilterPage, LogsError> {
        let limit = q.limit.unwrap_or(MAX_EVENTS).clamp(1, MAX_EVENTS);
        let start = match (q.start_time, q.not_before) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let end = q.end_time;
        let in_range = |ts: i64| start.is_none_or(|s| ts >= s) && end.is_none_or(|t| ts <= t);
        let cursor = FilterCursor::decode(q.token.as_deref())?;
        let mut candidates = self.stream_files(account, region, group)?;
        match &q.streams {
            StreamSelect::All => {}
            StreamSelect::Names(wanted) => candidates.retain(|(n, _)| wanted.contains(n)),
            StreamSelect::Prefix(p) => candidates.retain(|(n, _)| n.starts_with(p.as_str())),
        }
        // Streams the cursor says are done are skipped; the rest are
        // opened up to the per-call limit.
        let mut streams: Vec<StreamCursor> = Vec::new();
        let mut later: Vec<(String, u64)> = Vec::new();
        let mut done: Vec<(String, u64)> = Vec::new();
        let mut scanned = 0u64;
        for (name, path) in candidates {
            let offset = cursor.offsets.get(&name).copied();
            if cursor.done.contains(&name) {
                continue;
            }
            if streams.len() >= MAX_FILTER_STREAMS {
                later.push((name, offset.unwrap_or(0)));
                continue;
            }
            let Ok(file) = File::open(&path) else {
                continue;
            };
            let len = file.metadata()?.len();
            // Skip a stream whose newest event is older than the range.
            if let Some(s) = start {
                let mut back = file::BackwardReader::new(file.try_clone()?, len)?;
                let last = back.prev_event()?;
                scanned += back.read_bytes;
                if last.is_none_or(|e| e.timestamp < s) {
                    done.push((name, back.pos.max(offset.unwrap_or(0))));
                    continue;
                }
            }
            streams.push(StreamCursor {
                name,
                reader: file::ForwardReader::new(file, offset.unwrap_or(0).min(len)),
                pending: None,
                eof: false,
            });
        }
        let mut heap = BinaryHeap::new();
        for (i, s) in streams.iter_mut().enumerate() {
            if let Some(e) = s.advance(&in_range)? {
                heap.push(std::cmp::Reverse((e.timestamp, i, e.offset)));
            }
        }
        let mut events = Vec::new();
        let mut bytes = 0usize;
        while let Some(std::cmp::Reverse((_, i, _))) = heap.pop() {
            let total: u64 = scanned + streams.iter().map(|s| s.reader.read_bytes).sum::<u64>();
            if events.len() >= limit || total >= MAX_SCAN_BYTES {
                // Its pending event starts the next page.
                break;
            }
            let s = &mut streams[i];
            let Some(e) = s.pending.take() else { continue };
            if q.pattern.matches(&e.message) {
                let size = e.message.len() + EVENT_OVERHEAD;
                if bytes + size > MAX_RESPONSE_BYTES && !events.is_empty() {
                    s.pending = Some(e);
                    break;
                }
                bytes += size;
                events.push(FilteredEvent {
                    stream: s.name.clone(),
                    event_id: event_id(&s.name, e.offset),
                    event: e,
                });
            }
            if let Some(next) = s.advance(&in_range)? {
                heap.push(std::cmp::Reverse((next.timestamp, i, next.offset)));
            }
        }
        let mut next = FilterCursor::default();
        let mut searched = Vec::new();
        let mut more = !later.is_empty();
        for s in &streams {
            let complete = s.eof && s.pending.is_none();
            let at = s.pending.as_ref().map_or(s.reader.pos, |e| e.offset);
            searched.push((s.name.clone(), complete));
            if complete {
                next.done.push(s.name.clone());
            } else {
                more = true;
                next.offsets.insert(s.name.clone(), at);
            }
        }
        for (name, _) in done {
            searched.push((name.clone(), true));
            next.done.push(name);
        }
        next.done.extend(cursor.done.iter().cloned());
        for (name, at) in later {
            if at > 0 {
                next.offsets.insert(name, at);
            }
        }
        Ok(FilterPage {
            events,
            searched,
            next_token: more.then(|| next.encode()),
        })
    }

    /// PutLogEvents: validates the batch as AWS does and appends the
    /// events it accepts to the stream.
    pub fn put_events(
        &self,
        account: &str,
        region: &str,
        group: &str,
        stream: &str,
        events: &[InputEvent],
        retention_days: Option<i64>,
    ) -> Result<PutOutcome, LogsError> {
        if events.is_empty() || events.len() > MAX_EVENTS {
            return Err(LogsError::InvalidParameter(format!(
                "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length less than or equal to {MAX_EVENTS} and greater than or equal to 1"
            )));
        }
        let size: usize = events
            .iter()
            .map(|e| e.message.len() + EVENT_OVERHEAD)
            .sum();
        if size > MAX_RESPONSE_BYTES {
            return Err(LogsError::InvalidParameter(format!(
                "Log events in a single PutLogEvents request total {size} bytes; the batch must be at most {MAX_RESPONSE_BYTES} bytes (each event counts its UTF-8 message plus {EVENT_OVERHEAD} bytes)"
            )));
        }
        if let Some(i) = events.iter().position(|e| e.message.is_empty()) {
            return Err(LogsError::InvalidParameter(format!(
                "1 validation error detected: Value '' at 'logEvents.{}.member.message' failed to satisfy constraint: Member must have length greater than or equal to 1",
                i + 1
            )));
        }
        if events.windows(2).any(|w| w[1].timestamp < w[0].timestamp) {
            return Err(LogsError::InvalidParameter(
                "Log events in a single PutLogEvents request must be in chronological order."
                    .into(),
            ));
        }
        let (first, last) = (events[0].timestamp, events[events.len() - 1].timestamp);
        if last - first > DAY_MS {
            return Err(LogsError::InvalidParameter(
                "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.".into(),
            ));
        }
        let path = self.stream_path(account, region, group, stream)?;
        let now = now_ms();
        let too_old = now - 14 * DAY_MS;
        let expired = retention_cutoff(retention_days, now);
        let too_new = now + 2 * 3_600_000;
        let mut outcome = PutOutcome::default();
        let mut lines = String::new();
        for (i, e) in events.iter().enumerate() {
            if e.timestamp > too_new {
                outcome.too_new_start.get_or_insert(i);
                continue;
            }
            if expired.is_some_and(|c| e.timestamp < c) {
                outcome.expired_end = Some(i + 1);
                continue;
            }
            if e.timestamp < too_old {
                outcome.too_old_end = Some(i + 1);
                continue;
            }
            lines.push_str(&file::format_line(e.timestamp, now, &e.message));
        }
        let _w = self
            .write
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| not_found_as(e, LogsError::StreamNotFound))?;
        f.write_all(lines.as_bytes())?;
        let len = f.metadata()?.len();
        outcome.next_sequence_token = sequence_token(len);
        Ok(outcome)
    }

    /// Deletes stream files of `group` whose newest event is older than
    /// `retention_days` (whole files only). Returns how many went.
    pub fn sweep_group(
        &self,
        account: &str,
        region: &str,
        group: &str,
        retention_days: i64,
        now_ms: i64,
    ) -> Result<usize, LogsError> {
        let cutoff = now_ms - retention_days * DAY_MS;
        let files = match self.stream_files(account, region, group) {
            Ok(f) => f,
            Err(LogsError::GroupNotFound) => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut deleted = 0;
        for (_, path) in files {
            let Ok(file) = File::open(&path) else {
                continue;
            };
            // A file still being written to recently is kept.
            let modified = ms_of(file.metadata()?.modified()).unwrap_or(now_ms);
            if modified >= cutoff {
                continue;
            }
            let mut back = file::BackwardReader::new(file, u64::MAX)?;
            let last = back.prev_event()?;
            if last.is_none_or(|e| e.timestamp < cutoff) && fs::remove_file(&path).is_ok() {
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

/// AWS's sequence tokens are long digit strings; ours is the file length.
pub fn sequence_token(len: u64) -> String {
    format!("{len:056}")
}

fn stream_info(name: &str, path: &Path) -> io::Result<StreamInfo> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    let mut fw = file::ForwardReader::new(file.try_clone()?, 0);
    let first = fw.next_event()?;
    let mut bw = file::BackwardReader::new(file, meta.len())?;
    let last = bw.prev_event()?;
    let modified = ms_of(meta.modified());
    Ok(StreamInfo {
        name: name.to_string(),
        creation_time: ms_of(meta.created()).or(modified).unwrap_or(0),
        first_event_timestamp: first.map(|e| e.timestamp),
        last_event_timestamp: last.as_ref().map(|e| e.timestamp),
        last_ingestion_time: last.map(|e| e.ingestion_time.max(modified.unwrap_or(0))),
        size: meta.len(),
    })
}

struct StreamCursor {
    name: String,
    reader: file::ForwardReader,
    pending: Option<StoredEvent>,
    eof: bool,
}

impl StreamCursor {
    /// Reads up to the next event in range; it becomes `pending`.
    fn advance(&mut self, in_range: &impl Fn(i64) -> bool) -> io::Result<Option<&StoredEvent>> {
        let budget = self.reader.read_bytes + MAX_SCAN_BYTES / 4;
        while self.reader.read_bytes < budget {
            match self.reader.next_event()? {
                None => {
                    self.eof = true;
                    return Ok(None);
                }
                Some(e) if in_range(e.timestamp) => {
                    self.pending = Some(e);
                    return Ok(self.pending.as_ref());
                }
                Some(_) => {}
            }
        }
        Ok(None)
    }
}

/// FilterLogEvents' `nextToken`: where each stream stands.
#[derive(Debug, Default, Serialize, Deserialize)]
struct FilterCursor {
    #[serde(rename = "o", default)]
    offsets: BTreeMap<String, u64>,
    #[serde(rename = "d", default)]
    done: Vec<String>,
}

impl FilterCursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(token: Option<&str>) -> Result<FilterCursor, LogsError> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(FilterCursor::default());
        };
        URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                LogsError::InvalidParameter("The specified nextToken is invalid.".into())
            })
    }
}

#[cfg(test)]
mod tests;
