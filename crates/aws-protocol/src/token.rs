//! Registry passwords handed out by ECR `GetAuthorizationToken`.
//!
//! A password is `base64url(claims JSON) "." base64url(HMAC-SHA256)`, both
//! without padding. The alphabet has no `:`, because clients split the
//! decoded `AWS:<password>` token at the first colon.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::Mac;
use serde::{Deserialize, Serialize};

use crate::mac::{hmac_sha256, HmacSha256};

/// What a registry password vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// The account whose registry the password opens.
    pub account: String,
    /// The region the token was issued in.
    pub region: String,
    /// Expiry, in seconds since the epoch.
    pub expires_at: i64,
}

/// Why a registry password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("registry token is malformed")]
    Malformed,
    #[error("registry token signature does not match")]
    BadSignature,
    #[error("registry token expired at {expires_at}")]
    Expired { expires_at: i64 },
}

/// Mints a password for `account`'s registry, valid until `expires_at_unix`.
pub fn mint(secret: &[u8], account: &str, region: &str, expires_at_unix: i64) -> String {
    let claims = TokenClaims {
        account: account.to_owned(),
        region: region.to_owned(),
        expires_at: expires_at_unix,
    };
    // Serialising a struct of strings and an integer cannot fail.
    let json = serde_json::to_vec(&claims).unwrap_or_default();
    let payload = URL_SAFE_NO_PAD.encode(json);
    let signature =
        URL_SAFE_NO_PAD.encode(sign(secret, payload.as_bytes()).finalize().into_bytes());
    format!("{payload}.{signature}")
}

/// Checks a password's signature and expiry and returns its claims.
/// A token is valid while `now_unix < expires_at`.
pub fn verify(secret: &[u8], password: &str, now_unix: i64) -> Result<TokenClaims, TokenError> {
    let (payload, signature) = password.split_once('.').ok_or(TokenError::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed)?;
    sign(secret, payload.as_bytes())
        .verify_slice(&signature)
        .map_err(|_| TokenError::BadSignature)?;
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let claims: TokenClaims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if now_unix >= claims.expires_at {
        return Err(TokenError::Expired {
            expires_at: claims.expires_at,
        });
    }
    Ok(claims)
}

fn sign(secret: &[u8], payload: &[u8]) -> HmacSha256 {
    let mut mac = hmac_sha256(secret);
    mac.update(payload);
    mac
}

/// Decodes an HTTP `Authorization: Basic base64(user:pass)` value into user
/// and password, splitting at the first `:` (passwords may hold colons).
pub fn parse_basic_auth(header_value: &str) -> Option<(String, String)> {
    let value = header_value.trim();
    let (scheme, credentials) = value.split_once(|c: char| c.is_ascii_whitespace())?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let credentials = credentials.trim();
    let decoded = STANDARD
        .decode(credentials)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(credentials))
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"registry-token-secret";
    const NOW: i64 = 1_795_830_797;

    #[test]
    fn mint_then_verify() {
        let password = mint(SECRET, "123456789012", "ap-northeast-2", NOW + 43_200);
        assert!(!password.contains(':'));
        assert_eq!(
            verify(SECRET, &password, NOW),
            Ok(TokenClaims {
                account: "123456789012".into(),
                region: "ap-northeast-2".into(),
                expires_at: NOW + 43_200,
            })
        );
        // The aws CLI's view: base64("AWS:" + password), split at the first ':'.
        let token = STANDARD.encode(format!("AWS:{password}"));
        assert_eq!(
            parse_basic_auth(&format!("Basic {token}")),
            Some(("AWS".into(), password))
        );
    }

    #[test]
    fn no_colon_even_for_odd_claims() {
        for account in ["a:b", "::::", "\u{ff}\u{fe}", ""] {
            assert!(!mint(SECRET, account, "r:1", i64::MIN).contains(':'));
        }
    }

    #[test]
    fn expired_tokens_are_refused() {
        let password = mint(SECRET, "000000000000", "us-east-1", NOW);
        assert_eq!(
            verify(SECRET, &password, NOW),
            Err(TokenError::Expired { expires_at: NOW })
        );
        assert!(verify(SECRET, &password, NOW - 1).is_ok());
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let password = mint(SECRET, "000000000000", "us-east-1", NOW + 60);
        assert_eq!(
            verify(b"another secret", &password, NOW),
            Err(TokenError::BadSignature)
        );
        // Claims for another account, glued to the original signature.
        let (_, signature) = password.split_once('.').unwrap_or_default();
        let forged = URL_SAFE_NO_PAD
            .encode(br#"{"account":"123456789012","region":"us-east-1","expires_at":9999999999}"#);
        assert_eq!(
            verify(SECRET, &format!("{forged}.{signature}"), NOW),
            Err(TokenError::BadSignature)
        );
        // Every single-character change is caught.
        for i in 0..password.len() {
            let mut bytes = password.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap_or_default();
            if tampered != password {
                assert!(verify(SECRET, &tampered, NOW).is_err(), "position {i}");
            }
        }
        for garbage in ["", ".", "abc", "a.b.c", "!!!.###", "e30.e30"] {
            assert!(verify(SECRET, garbage, NOW).is_err(), "{garbage:?}");
        }
    }

    #[test]
    fn basic_auth() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("Basic QVdTOnNlY3JldA==", Some(("AWS", "secret"))),
            ("basic   QVdTOnNlY3JldA==  ", Some(("AWS", "secret"))),
            // base64("AWS:pa:ss:word")
            ("Basic QVdTOnBhOnNzOndvcmQ=", Some(("AWS", "pa:ss:word"))),
            // unpadded base64("user:") -> empty password
            ("Basic dXNlcjo", Some(("user", ""))),
            ("Bearer QVdTOnNlY3JldA==", None),
            ("Basic", None),
            ("Basic !!!!", None),
            // base64("nocolon")
            ("Basic bm9jb2xvbg==", None),
            ("", None),
        ];
        for (input, expected) in cases {
            let expected = expected.map(|(u, p)| (u.to_owned(), p.to_owned()));
            assert_eq!(parse_basic_auth(input), expected, "{input:?}");
        }
    }
}
