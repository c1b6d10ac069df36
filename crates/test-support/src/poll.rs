//! Waiting for a condition without sleeping for a guessed time.

use std::thread;
use std::time::{Duration, Instant};

const FIRST_INTERVAL: Duration = Duration::from_millis(10);
const MAX_INTERVAL: Duration = Duration::from_millis(200);

/// Calls `f` until it returns `Some`, at growing intervals (10 ms up to
/// 200 ms), for at most `timeout`; `f` is always called at least once and
/// once more at the deadline. Returns `None` if the deadline passed.
pub fn try_poll_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    let mut interval = FIRST_INTERVAL;
    loop {
        if let Some(value) = f() {
            return Some(value);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::sleep(interval.min(deadline - now));
        interval = (interval * 2).min(MAX_INTERVAL);
    }
}

/// Like [`try_poll_until`] but panics when the deadline passes.
#[track_caller]
pub fn poll_until<T>(timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
    match try_poll_until(timeout, f) {
        Some(value) => value,
        None => panic!("condition not met within {timeout:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_first_value() {
        let mut calls = 0;
        let got = poll_until(Duration::from_secs(5), || {
            calls += 1;
            (calls == 3).then_some(calls)
        });
        assert_eq!(got, 3);
    }

    #[test]
    fn gives_up_at_the_deadline() {
        let start = Instant::now();
        let got: Option<()> = try_poll_until(Duration::from_millis(100), || None);
        assert!(got.is_none());
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
    }

    #[test]
    #[should_panic(expected = "condition not met")]
    fn poll_until_panics_on_timeout() {
        poll_until(Duration::from_millis(20), || None::<()>);
    }
}
