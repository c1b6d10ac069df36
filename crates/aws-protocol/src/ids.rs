//! Identifiers in the shapes AWS hands out: request ids, API ids, accounts.

use rand::Rng;

/// The account every request belongs to unless its access key names another.
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";

/// A fresh request id: a lowercase hyphenated UUID v4, as AWS returns in
/// `x-amzn-RequestId`.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// `len` random characters from `a-z0-9`, the alphabet of API Gateway ids.
pub fn random_alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// Whether `s` is an AWS account id: exactly 12 ASCII digits.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The account an access key id selects: an id of exactly 12 digits names
/// that account (the convention LocalStack and moto follow); any other id
/// falls back to `default`.
pub fn account_for_access_key(akid: &str, default: &str) -> String {
    if is_account_id(akid) {
        akid.to_owned()
    } else {
        default.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_lowercase_uuids() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id, id.to_lowercase());
        let parsed = uuid::Uuid::parse_str(&id).map(|u| u.get_version_num());
        assert_eq!(parsed.ok(), Some(4));
        assert_ne!(request_id(), id);
    }

    #[test]
    fn random_alnum_uses_its_alphabet() {
        assert_eq!(random_alnum(0), "");
        let id = random_alnum(10);
        assert_eq!(id.len(), 10);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    }

    #[test]
    fn account_ids() {
        for (input, ok) in [
            ("000000000000", true),
            ("123456789012", true),
            ("12345678901", false),
            ("1234567890123", false),
            ("12345678901a", false),
            ("１２３４５６７８９０１２", false),
            ("", false),
        ] {
            assert_eq!(is_account_id(input), ok, "{input:?}");
        }
    }

    #[test]
    fn access_keys_select_accounts() {
        for (akid, expected) in [
            ("123456789012", "123456789012"),
            ("AKIAIOSFODNN7EXAMPLE", DEFAULT_ACCOUNT_ID),
            ("test", DEFAULT_ACCOUNT_ID),
            ("0123456789012", DEFAULT_ACCOUNT_ID),
        ] {
            assert_eq!(account_for_access_key(akid, DEFAULT_ACCOUNT_ID), expected);
        }
    }
}
