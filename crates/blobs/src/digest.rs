//! Content digests (`sha256:<64 lower-case hex>`).

use std::fmt;

/// A validated sha256 digest in OCI form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest {0:?} is not of the form algorithm:encoded")]
    Malformed(String),
    #[error("digest algorithm {0:?} is not supported (only sha256)")]
    UnsupportedAlgorithm(String),
    #[error("sha256 digest {0:?} must have 64 lower-case hex characters")]
    BadHex(String),
}

impl Digest {
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(DigestError::Malformed(truncate(s)));
        };
        if alg.is_empty()
            || hex.is_empty()
            || !alg
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
        {
            return Err(DigestError::Malformed(truncate(s)));
        }
        if alg != "sha256" {
            return Err(DigestError::UnsupportedAlgorithm(truncate(alg)));
        }
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::BadHex(truncate(s)));
        }
        Ok(Digest(s.to_string()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest(format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(bytes))
        ))
    }

    pub(crate) fn from_sha256(hash: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(hash)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hex part.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_and_rejects_invalid_digests() {
        let ok = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        assert_eq!(Digest::parse(ok).map(|d| d.hex().len()), Ok(64));
        assert_eq!(Digest::of(b"{}").as_str(), ok);
        for (bad, want) in [
            ("sha256", "Malformed"),
            (":abc", "Malformed"),
            ("SHA256:abc", "Malformed"),
            ("sha512:abc", "UnsupportedAlgorithm"),
            ("sha256:totallywrong", "BadHex"),
            (
                "sha256:44136FA355B3678A1146AD16F7E8649E94FB4FC21FE77E8310C060F61CAAFF8A",
                "BadHex",
            ),
            (
                "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8",
                "BadHex",
            ),
        ] {
            let err = Digest::parse(bad).expect_err(bad);
            assert!(format!("{err:?}").starts_with(want), "{bad}: {err:?}");
        }
    }
}
