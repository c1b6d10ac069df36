//! Splits a byte stream into bounded lines.

/// Accumulates bytes of one stream and yields its lines without their
/// newline; a line longer than `max` comes out in pieces of at most `max`
/// bytes, not cut inside a UTF-8 character where avoidable.
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
    max: usize,
}

impl LineSplitter {
    pub(crate) fn new(max: usize) -> LineSplitter {
        LineSplitter {
            pending: Vec::new(),
            max: max.max(4),
        }
    }

    /// Takes `data` and returns the complete lines (and over-long pieces)
    /// it finished.
    pub(crate) fn push(&mut self, mut data: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            self.pending.extend_from_slice(&data[..pos]);
            data = &data[pos + 1..];
            let line = std::mem::take(&mut self.pending);
            self.split_into(&line, &mut out);
        }
        self.pending.extend_from_slice(data);
        while self.pending.len() > self.max {
            let cut = utf8_cut(&self.pending[..self.max]);
            out.push(String::from_utf8_lossy(&self.pending[..cut]).into_owned());
            self.pending.drain(..cut);
        }
        out
    }

    /// What is left once the stream has ended.
    pub(crate) fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.split_into(&line, &mut out);
        }
        out
    }

    fn split_into(&self, mut line: &[u8], out: &mut Vec<String>) {
        while line.len() > self.max {
            let cut = utf8_cut(&line[..self.max]);
            out.push(String::from_utf8_lossy(&line[..cut]).into_owned());
            line = &line[cut..];
        }
        out.push(String::from_utf8_lossy(line).into_owned());
    }
}

/// Where to cut `window` so a trailing incomplete UTF-8 character moves to
/// the next piece.
fn utf8_cut(window: &[u8]) -> usize {
    match std::str::from_utf8(window) {
        Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => e.valid_up_to(),
        _ => window.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(chunks: &[&[u8]], max: usize, expected: &[&str]) {
        let mut s = LineSplitter::new(max);
        let mut got = Vec::new();
        for c in chunks {
            got.extend(s.push(c));
        }
        got.extend(s.finish());
        assert_eq!(got, expected, "{chunks:?} max {max}");
    }

    #[test]
    fn splits_lines_across_chunks_and_bounds_them() {
        check(&[b"a\nbb\n\nlast"], 100, &["a", "bb", "", "last"]);
        check(&[b"ab", b"c\nd", b"e\n"], 100, &["abc", "de"]);
        check(&[b"abcdefghij\nxy\n"], 4, &["abcd", "efgh", "ij", "xy"]);
        check(&[b"abcdefghij"], 4, &["abcd", "efgh", "ij"]);
        // "é" is two bytes; it is not cut in half.
        check(&["abcé\n".as_bytes()], 4, &["abc", "é"]);
        check(&[b""], 4, &[]);
        // Invalid UTF-8 is replaced, not dropped.
        check(&[b"a\xffb\n"], 100, &["a\u{fffd}b"]);
    }
}
