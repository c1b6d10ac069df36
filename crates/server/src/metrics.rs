//! Platform metrics, exported in the Prometheus text format at
//! `/_stratus/metrics`. Label sets are fixed enums, so cardinality is
//! bounded.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Which surface answered a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Registry,
    AwsApi,
    Admin,
    Other,
}

impl Surface {
    const ALL: [Surface; 4] = [
        Surface::Registry,
        Surface::AwsApi,
        Surface::Admin,
        Surface::Other,
    ];

    fn label(self) -> &'static str {
        match self {
            Surface::Registry => "registry",
            Surface::AwsApi => "aws_api",
            Surface::Admin => "admin",
            Surface::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Status classes counted per surface.
const CLASSES: [&str; 3] = ["2xx_3xx", "4xx", "5xx"];

#[derive(Default)]
pub struct Metrics {
    requests: [[AtomicU64; 3]; 4],
    pub blob_bytes_received: AtomicU64,
    pub blob_bytes_sent: AtomicU64,
    pub gc_runs: AtomicU64,
    pub gc_blobs_deleted: AtomicU64,
    pub gc_bytes_freed: AtomicU64,
}

impl Metrics {
    pub fn record(&self, surface: Surface, status: u16) {
        let class = match status {
            500.. => 2,
            400..=499 => 1,
            _ => 0,
        };
        self.requests[surface.index()][class].fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP stratus_http_requests_total HTTP requests answered, by surface and status class.\n");
        out.push_str("# TYPE stratus_http_requests_total counter\n");
        for s in Surface::ALL {
            for (i, class) in CLASSES.iter().enumerate() {
                let n = self.requests[s.index()][i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "stratus_http_requests_total{{surface=\"{}\",status=\"{class}\"}} {n}",
                    s.label()
                );
            }
        }
        for (name, help, v) in [
            (
                "stratus_registry_blob_bytes_received_total",
                "Blob bytes received by uploads.",
                &self.blob_bytes_received,
            ),
            (
                "stratus_registry_blob_bytes_sent_total",
                "Blob bytes served to pulls.",
                &self.blob_bytes_sent,
            ),
            (
                "stratus_registry_gc_runs_total",
                "Garbage collector runs.",
                &self.gc_runs,
            ),
            (
                "stratus_registry_gc_blobs_deleted_total",
                "Blobs freed by the garbage collector.",
                &self.gc_blobs_deleted,
            ),
            (
                "stratus_registry_gc_bytes_freed_total",
                "Bytes freed by the garbage collector.",
                &self.gc_bytes_freed,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_per_surface_and_class() {
        let m = Metrics::default();
        m.record(Surface::Registry, 201);
        m.record(Surface::Registry, 404);
        m.record(Surface::AwsApi, 500);
        let text = m.render();
        assert!(
            text.contains("stratus_http_requests_total{surface=\"registry\",status=\"2xx_3xx\"} 1")
        );
        assert!(text.contains("stratus_http_requests_total{surface=\"registry\",status=\"4xx\"} 1"));
        assert!(text.contains("stratus_http_requests_total{surface=\"aws_api\",status=\"5xx\"} 1"));
    }
}
