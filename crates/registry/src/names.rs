//! Grammar of repository names, tags and references (OCI distribution
//! spec §B.1, which ECR shares).

use blobs::Digest;

/// ECR's limits on a repository name.
pub const MAX_REPOSITORY_NAME: usize = 256;
pub const MIN_REPOSITORY_NAME: usize = 2;

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
pub fn is_valid_repository_name(name: &str) -> bool {
    if name.len() < MIN_REPOSITORY_NAME || name.len() > MAX_REPOSITORY_NAME {
        return false;
    }
    name.split('/').all(is_valid_component)
}

fn is_valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // a separator run: ".", "_", "__" or "-+", followed by alnum
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
pub fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    /// Parses a reference from a URL path segment or an API field.
    pub fn parse(s: &str) -> Result<Reference, crate::RegistryError> {
        if s.contains(':') {
            Digest::parse(s)
                .map(Reference::Digest)
                .map_err(|e| crate::RegistryError::DigestInvalid(e.to_string()))
        } else if is_valid_tag(s) {
            Ok(Reference::Tag(s.to_string()))
        } else {
            Err(crate::RegistryError::InvalidTag(
                s.chars().take(300).collect(),
            ))
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Tag(t) => f.write_str(t),
            Reference::Digest(d) => write!(f, "{d}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_the_oci_grammar() {
        for ok in [
            "my_lambda",
            "team/app",
            "a.b",
            "a__b",
            "a---b",
            "ab",
            "x1/y2/z3",
            "my-app.v2",
        ] {
            assert!(is_valid_repository_name(ok), "{ok} should be valid");
        }
        let long = "a".repeat(257);
        for bad in [
            "a",
            "My_Lambda",
            "-ab",
            "ab-",
            "a___b",
            "a..b",
            "a/",
            "/a",
            "a//b",
            "a b",
            "a_.b",
            "ab:1",
            &long,
        ] {
            assert!(!is_valid_repository_name(bad), "{bad} should be invalid");
        }
    }

    #[test]
    fn tags_follow_the_grammar() {
        assert!(is_valid_tag("latest"));
        assert!(is_valid_tag("_v1.2-rc"));
        assert!(!is_valid_tag(".v1"));
        assert!(!is_valid_tag(""));
        assert!(!is_valid_tag(&"a".repeat(129)));
        assert!(matches!(
            Reference::parse("sha256:abc"),
            Err(crate::RegistryError::DigestInvalid(_))
        ));
    }
}
