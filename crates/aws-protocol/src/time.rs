//! Timestamp formats on the AWS wire.

use ::time::format_description::well_known::Rfc3339;
use ::time::macros::format_description;
use ::time::{OffsetDateTime, UtcOffset};

/// Seconds since the epoch with a fraction, the JSON number ECR and
/// CloudWatch Logs use for timestamps (`1795485197.123`).
pub fn epoch_seconds_f64(t: OffsetDateTime) -> f64 {
    // Milliseconds keep the value exact in an f64's 53 bits and match the
    // precision AWS returns.
    (t.unix_timestamp_nanos() / 1_000_000) as f64 / 1000.0
}

/// Lambda's `LastModified` format: UTC, milliseconds, `+0000` offset, as
/// in `2026-11-28T01:53:17.123+0000`.
pub fn iso8601_millis(t: OffsetDateTime) -> String {
    let format = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000"
    );
    t.to_offset(UtcOffset::UTC)
        .format(format)
        .unwrap_or_default()
}

/// RFC 3339 in UTC with a `Z` suffix, e.g. `2026-11-28T01:53:17.123Z`
/// (fraction only when non-zero).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::time::macros::datetime;

    #[test]
    fn formats() {
        let t = datetime!(2026-11-28 01:53:17.123456 UTC);
        assert_eq!(epoch_seconds_f64(t), 1_795_830_797.123);
        assert_eq!(iso8601_millis(t), "2026-11-28T01:53:17.123+0000");
        assert_eq!(rfc3339(t), "2026-11-28T01:53:17.123456Z");

        let t = datetime!(2026-11-28 10:53:17 +09:00);
        assert_eq!(epoch_seconds_f64(t), 1_795_830_797.0);
        assert_eq!(iso8601_millis(t), "2026-11-28T01:53:17.000+0000");
        assert_eq!(rfc3339(t), "2026-11-28T01:53:17Z");

        let t = datetime!(1969-12-31 23:59:59.5 UTC);
        assert_eq!(epoch_seconds_f64(t), -0.5);
    }
}
