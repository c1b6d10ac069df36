//! One stream file: the line format and bounded readers over it.
//!
//! A line is `<timestamp ms>[:<ingestion ms>][\]\t<message>\n`. The
//! function pool writes `<ms>\t<message>`; PutLogEvents adds the ingestion
//! time and, for a message holding line breaks or backslashes, the `\`
//! flag meaning the message is escaped (`\\`, `\n`, `\r`). A trailing line
//! without its `\n` is still being written and is not read yet.
//!
//! Readers never hold more than one chunk and one (capped) line in
//! memory, and count the bytes they read so a caller can cap the work of
//! one request.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Bytes read per chunk.
const CHUNK: usize = 64 * 1024;
/// Longest message returned; longer lines are cut (AWS's event limit).
pub const MAX_MESSAGE: usize = 256 * 1024;

/// One event as stored, with where its line sits in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Byte offset of the line's first byte.
    pub offset: u64,
    /// Byte offset just past the line's `\n`.
    pub end: u64,
    pub timestamp: i64,
    pub ingestion_time: i64,
    pub message: String,
}

/// Parses a line (without its `\n`); `None` for a line not in the format.
pub(crate) fn parse_line(offset: u64, end: u64, line: &[u8]) -> Option<StoredEvent> {
    let tab = line.iter().position(|&b| b == b'\t')?;
    let header = std::str::from_utf8(&line[..tab]).ok()?;
    let (header, escaped) = match header.strip_suffix('\\') {
        Some(h) => (h, true),
        None => (header, false),
    };
    let (ts, ingestion) = match header.split_once(':') {
        Some((t, i)) => (t.parse().ok()?, i.parse().ok()?),
        None => {
            let t: i64 = header.parse().ok()?;
            (t, t)
        }
    };
    let raw = String::from_utf8_lossy(&line[tab + 1..]);
    let message = if escaped {
        unescape(&raw)
    } else {
        raw.into_owned()
    };
    Some(StoredEvent {
        offset,
        end,
        timestamp: ts,
        ingestion_time: ingestion,
        message,
    })
}

/// The line for an event written by PutLogEvents.
pub(crate) fn format_line(timestamp: i64, ingestion: i64, message: &str) -> String {
    if message.contains(['\n', '\r', '\\']) {
        let mut escaped = String::with_capacity(message.len() + 8);
        for c in message.chars() {
            match c {
                '\\' => escaped.push_str("\\\\"),
                '\n' => escaped.push_str("\\n"),
                '\r' => escaped.push_str("\\r"),
                c => escaped.push(c),
            }
        }
        format!("{timestamp}:{ingestion}\\\t{escaped}\n")
    } else {
        format!("{timestamp}:{ingestion}\t{message}\n")
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Reads complete lines forward from an offset.
pub(crate) struct ForwardReader {
    file: File,
    /// Offset of the next unread line.
    pub pos: u64,
    buf: Vec<u8>,
    /// `buf[head..]` is unread; `buf` starts at file offset `buf_at`.
    head: usize,
    buf_at: u64,
    /// Bytes read from the file so far.
    pub read_bytes: u64,
}

impl ForwardReader {
    pub(crate) fn new(file: File, pos: u64) -> ForwardReader {
        ForwardReader {
            file,
            pos,
            buf: Vec::new(),
            head: 0,
            buf_at: pos,
            read_bytes: 0,
        }
    }

    fn fill(&mut self) -> io::Result<bool> {
        self.buf.drain(..self.head);
        self.buf_at += self.head as u64;
        self.head = 0;
        let old = self.buf.len();
        self.buf.resize(old + CHUNK, 0);
        let n = self
            .file
            .read_at(&mut self.buf[old..], self.buf_at + old as u64)?;
        self.buf.truncate(old + n);
        self.read_bytes += n as u64;
        Ok(n > 0)
    }

    /// The next complete line as `(offset, end, bytes without \n)`, its
    /// bytes cut at [`MAX_MESSAGE`] plus header room. `None` at the end
    /// (an unfinished last line stays unread).
    pub(crate) fn next_line(&mut self) -> io::Result<Option<(u64, u64, Vec<u8>)>> {
        let start = self.pos;
        let cap = MAX_MESSAGE + 64;
        let mut line: Vec<u8> = Vec::new();
        let mut scanned = 0usize;
        loop {
            if let Some(i) = self.buf[self.head..].iter().position(|&b| b == b'\n') {
                let take = i.min(cap.saturating_sub(line.len()));
                line.extend_from_slice(&self.buf[self.head..self.head + take]);
                scanned += i + 1;
                self.head += i + 1;
                self.pos = start + scanned as u64;
                return Ok(Some((start, self.pos, line)));
            }
            let avail = self.buf.len() - self.head;
            let take = avail.min(cap.saturating_sub(line.len()));
            line.extend_from_slice(&self.buf[self.head..self.head + take]);
            scanned += avail;
            self.head = self.buf.len();
            if !self.fill()? {
                // Unfinished line: come back to it next time.
                self.buf.clear();
                self.head = 0;
                self.buf_at = start;
                self.pos = start;
                return Ok(None);
            }
        }
    }

    /// The next event in the file (lines not in the format are skipped).
    pub(crate) fn next_event(&mut self) -> io::Result<Option<StoredEvent>> {
        while let Some((start, end, line)) = self.next_line()? {
            if let Some(e) = parse_line(start, end, &line) {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }
}

/// Reads complete lines backward from an offset (a line boundary).
pub(crate) struct BackwardReader {
    file: File,
    /// Offset just past the next line to return (it ends with `\n` at pos-1).
    pub pos: u64,
    chunk: Vec<u8>,
    chunk_at: u64,
    pub read_bytes: u64,
}

impl BackwardReader {
    /// A reader starting at `before`, moved back to just after the last
    /// complete line that ends at or before it.
    pub(crate) fn new(file: File, before: u64) -> io::Result<BackwardReader> {
        let len = file.metadata()?.len();
        let mut r = BackwardReader {
            file,
            pos: 0,
            chunk: Vec::new(),
            chunk_at: 0,
            read_bytes: 0,
        };
        r.pos = r.prev_newline(before.min(len))?.map_or(0, |p| p + 1);
        Ok(r)
    }

    /// Position of the last `\n` before `before`.
    fn prev_newline(&mut self, mut before: u64) -> io::Result<Option<u64>> {
        while before > 0 {
            let in_chunk = before > self.chunk_at
                && before <= self.chunk_at + self.chunk.len() as u64
                && !self.chunk.is_empty();
            if !in_chunk {
                let start = before.saturating_sub(CHUNK as u64);
                self.chunk.resize((before - start) as usize, 0);
                self.file.read_exact_at(&mut self.chunk, start)?;
                self.read_bytes += self.chunk.len() as u64;
                self.chunk_at = start;
            }
            let upto = (before - self.chunk_at) as usize;
            if let Some(i) = self.chunk[..upto].iter().rposition(|&b| b == b'\n') {
                return Ok(Some(self.chunk_at + i as u64));
            }
            before = self.chunk_at;
        }
        Ok(None)
    }

    /// The previous complete line as `(offset, end, bytes without \n)`.
    pub(crate) fn prev_line(&mut self) -> io::Result<Option<(u64, u64, Vec<u8>)>> {
        if self.pos == 0 {
            return Ok(None);
        }
        let end = self.pos;
        let start = self.prev_newline(end - 1)?.map_or(0, |p| p + 1);
        let len = ((end - 1 - start) as usize).min(MAX_MESSAGE + 64);
        let mut line = vec![0u8; len];
        self.file.read_exact_at(&mut line, start)?;
        self.read_bytes += len as u64;
        self.pos = start;
        Ok(Some((start, end, line)))
    }

    pub(crate) fn prev_event(&mut self) -> io::Result<Option<StoredEvent>> {
        while let Some((start, end, line)) = self.prev_line()? {
            if let Some(e) = parse_line(start, end, &line) {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }
}

/// Reads a whole small file (used only by tests).
#[cfg(test)]
pub(crate) fn read_all(path: &std::path::Path) -> String {
    use std::io::Read;
    let mut s = String::new();
    File::open(path)
        .and_then(|mut f| f.read_to_string(&mut s))
        .expect("read");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(content: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.log");
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(content))
            .expect("write");
        (dir, path)
    }

    #[test]
    fn lines_parse_in_both_formats() {
        let e = parse_line(0, 10, b"123\thello\tworld").expect("pool line");
        assert_eq!(
            (e.timestamp, e.ingestion_time, e.message.as_str()),
            (123, 123, "hello\tworld")
        );
        let line = format_line(5, 7, "a\nb\\c");
        let e = parse_line(0, 0, line.trim_end_matches('\n').as_bytes()).expect("escaped");
        assert_eq!(
            (e.timestamp, e.ingestion_time, e.message.as_str()),
            (5, 7, "a\nb\\c")
        );
        assert!(parse_line(0, 0, b"no tab").is_none());
        assert!(parse_line(0, 0, b"x\tnot a number").is_none());
    }

    #[test]
    fn readers_skip_the_unfinished_last_line_and_agree() {
        let mut content = Vec::new();
        for i in 0..5000 {
            content.extend_from_slice(format!("{i}\tline {i} {}\n", "x".repeat(i % 97)).as_bytes());
        }
        content.extend_from_slice(b"9999\tunfinished");
        let (_d, path) = file_with(&content);
        let mut fw = ForwardReader::new(File::open(&path).expect("open"), 0);
        let mut forward = Vec::new();
        while let Some(e) = fw.next_event().expect("read") {
            forward.push(e);
        }
        assert_eq!(forward.len(), 5000);
        assert_eq!(fw.pos as usize, content.len() - "9999\tunfinished".len());
        let mut bw = BackwardReader::new(File::open(&path).expect("open"), u64::MAX).expect("open");
        let mut backward = Vec::new();
        while let Some(e) = bw.prev_event().expect("read") {
            backward.push(e);
        }
        backward.reverse();
        assert_eq!(forward, backward);
        assert_eq!(
            forward[4999].message,
            format!("line 4999 {}", "x".repeat(4999 % 97))
        );
    }

    #[test]
    fn long_lines_are_cut_not_buffered_whole() {
        let mut content = format!("1\t{}\n", "y".repeat(MAX_MESSAGE * 3)).into_bytes();
        content.extend_from_slice(b"2\tshort\n");
        let (_d, path) = file_with(&content);
        let mut fw = ForwardReader::new(File::open(&path).expect("open"), 0);
        let first = fw.next_event().expect("read").expect("event");
        assert!(first.message.len() <= MAX_MESSAGE + 64);
        assert_eq!(
            fw.next_event().expect("read").expect("event").message,
            "short"
        );
        let mut bw = BackwardReader::new(File::open(&path).expect("open"), u64::MAX).expect("open");
        assert_eq!(
            bw.prev_event().expect("read").expect("event").message,
            "short"
        );
        assert_eq!(bw.prev_event().expect("read").expect("event").offset, 0);
        let _ = read_all(&path);
    }
}
