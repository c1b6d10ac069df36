//! Log group and stream names: AWS's rules, and their encoding as file
//! names in the layout the function pool writes
//! (`<account>/<region>/<group>/<stream>.log`).

use crate::LogsError;

/// AWS's pattern for a log group name.
pub const GROUP_NAME_PATTERN: &str = r"[\.\-_/#A-Za-z0-9]+";
/// AWS's pattern for a log stream name.
pub const STREAM_NAME_PATTERN: &str = r"[^:*]*";
const MAX_NAME: usize = 512;
/// Longest file name the filesystems Stratus runs on accept.
const MAX_FILE_NAME: usize = 255;

fn validation(value: &str, field: &str, constraint: &str) -> LogsError {
    LogsError::InvalidParameter(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
    ))
}

/// Checks a log group name against AWS's length and pattern rules.
pub fn validate_group(name: &str, field: &str) -> Result<(), LogsError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(validation(
            name,
            field,
            "Member must have length less than or equal to 512 and greater than or equal to 1",
        ));
    }
    let ok = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/' | b'#'));
    if !ok {
        return Err(validation(
            name,
            field,
            &format!("Member must satisfy regular expression pattern: {GROUP_NAME_PATTERN}"),
        ));
    }
    fits_file_name(&encode(name), field)
}

/// Checks a log stream name against AWS's length and pattern rules.
pub fn validate_stream(name: &str, field: &str) -> Result<(), LogsError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(validation(
            name,
            field,
            "Member must have length less than or equal to 512 and greater than or equal to 1",
        ));
    }
    if name.contains([':', '*']) {
        return Err(validation(
            name,
            field,
            &format!("Member must satisfy regular expression pattern: {STREAM_NAME_PATTERN}"),
        ));
    }
    fits_file_name(&stream_file_name(name), field)
}

fn fits_file_name(file: &str, field: &str) -> Result<(), LogsError> {
    if file.len() > MAX_FILE_NAME {
        return Err(LogsError::InvalidParameter(format!(
            "the {field} is too long for Stratus' file layout: its file name would be {} bytes (at most {MAX_FILE_NAME}); use a shorter name",
            file.len()
        )));
    }
    Ok(())
}

/// The file-name form of a name: `%` and `/` percent-encoded exactly as
/// the function pool does it, NUL too, and a name of only dots encoded
/// whole so it can never mean "this" or "the parent" directory.
pub fn encode(name: &str) -> String {
    if !name.is_empty() && name.bytes().all(|b| b == b'.') {
        return "%2E".repeat(name.len());
    }
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            '\0' => out.push_str("%00"),
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`encode`]; `None` for a name that is not one of ours.
pub fn decode(file: &str) -> Option<String> {
    let bytes = file.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = file.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub(crate) fn stream_file_name(stream: &str) -> String {
    format!("{}.log", encode(stream))
}

/// Account and region become directory names: only the characters AWS
/// uses for them are allowed.
pub(crate) fn validate_scope(account: &str, region: &str) -> Result<(), LogsError> {
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if ok(account) && ok(region) {
        Ok(())
    } else {
        Err(LogsError::InvalidParameter(format!(
            "invalid account {account:?} or region {region:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_matches_the_pool() {
        for name in [
            "/aws/lambda/f",
            "a%b/c",
            "..",
            ".",
            "x.y",
            "2024/01/02/[$LATEST]ab",
        ] {
            assert_eq!(decode(&encode(name)).as_deref(), Some(name));
        }
        assert_eq!(encode("/aws/lambda/f"), "%2Faws%2Flambda%2Ff");
        assert_eq!(encode(".."), "%2E%2E");
        assert_eq!(decode("%zz"), None);
    }

    #[test]
    fn names_follow_aws_rules() {
        assert!(validate_group("/aws/lambda/my_fn-1.#", "logGroupName").is_ok());
        assert!(validate_group("", "logGroupName").is_err());
        assert!(validate_group("a b", "logGroupName").is_err());
        assert!(validate_group(&"a".repeat(513), "logGroupName").is_err());
        assert!(validate_stream("2024/01/01/[$LATEST]abc", "logStreamName").is_ok());
        assert!(validate_stream("a:b", "logStreamName").is_err());
        assert!(validate_stream("a*", "logStreamName").is_err());
        assert!(validate_scope("000000000000", "us-east-1").is_ok());
        assert!(validate_scope("000000000000", "../x").is_err());
    }
}
