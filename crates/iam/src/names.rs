//! Names, paths, ARNs and ids as IAM spells and checks them.

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::IamError;

/// Alphabet of IAM unique ids after their four-letter prefix.
const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Length of a unique id (`AROA` + 17).
const ID_LEN: usize = 21;

fn constraint(value: &str, member: &str, rule: &str) -> IamError {
    IamError::Validation(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {rule}"
    ))
}

/// `[\w+=,.@-]+` with `\w` as ASCII word characters.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

fn validate_name(name: &str, member: &str, max: usize) -> Result<(), IamError> {
    if name.is_empty() {
        return Err(constraint(
            name,
            member,
            "Member must have length greater than or equal to 1",
        ));
    }
    if name.chars().count() > max {
        return Err(constraint(
            name,
            member,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    if !name.chars().all(is_name_char) {
        return Err(constraint(
            name,
            member,
            "Member must satisfy regular expression pattern: [\\w+=,.@-]+",
        ));
    }
    Ok(())
}

/// A role name: 1–64 characters of `[\w+=,.@-]`.
pub fn validate_role_name(name: &str) -> Result<(), IamError> {
    validate_name(name, "roleName", 64)
}

/// A managed or inline policy name: 1–128 characters of `[\w+=,.@-]`.
pub fn validate_policy_name(name: &str) -> Result<(), IamError> {
    validate_name(name, "policyName", 128)
}

fn path_length(path: &str, member: &str) -> Result<(), IamError> {
    if path.is_empty() {
        return Err(constraint(
            path,
            member,
            "Member must have length greater than or equal to 1",
        ));
    }
    if path.len() > 512 {
        return Err(constraint(
            path,
            member,
            "Member must have length less than or equal to 512",
        ));
    }
    Ok(())
}

const PATH_MESSAGE: &str = "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.";

/// A role path: `/` or `/…/` of printable ASCII, at most 512 characters.
pub fn validate_path(path: &str) -> Result<(), IamError> {
    path_length(path, "path")?;
    let ok = path == "/"
        || (path.len() >= 3
            && path.starts_with('/')
            && path.ends_with('/')
            && path.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    if ok {
        Ok(())
    } else {
        Err(IamError::Validation(PATH_MESSAGE.into()))
    }
}

/// A managed policy path: `((/[A-Za-z0-9.,+@=_-]+)*)/`.
pub fn validate_policy_path(path: &str) -> Result<(), IamError> {
    path_length(path, "path")?;
    let inner = path.strip_suffix('/').unwrap_or("x");
    let ok = inner.is_empty()
        || (inner.starts_with('/')
            && inner[1..].split('/').all(|seg| {
                !seg.is_empty()
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".,+@=_-".contains(c))
            }));
    if ok {
        Ok(())
    } else {
        Err(IamError::Validation(PATH_MESSAGE.into()))
    }
}

/// A `PathPrefix` filter: `/` followed by printable ASCII.
pub fn validate_path_prefix(prefix: &str) -> Result<(), IamError> {
    path_length(prefix, "pathPrefix")?;
    if prefix.starts_with('/') && prefix.bytes().all(|b| (0x21..=0x7f).contains(&b)) {
        Ok(())
    } else {
        Err(constraint(
            prefix,
            "pathPrefix",
            "Member must satisfy regular expression pattern: \\u002F[\\u0021-\\u007F]*",
        ))
    }
}

fn random_id(prefix: &str) -> String {
    let mut rng = rand::thread_rng();
    let mut id = String::with_capacity(ID_LEN);
    id.push_str(prefix);
    while id.len() < ID_LEN {
        id.push(char::from(ID_ALPHABET[rng.gen_range(0..ID_ALPHABET.len())]));
    }
    id
}

/// A fresh role id, `AROA` and 17 upper-case letters and digits.
pub fn role_id() -> String {
    random_id("AROA")
}

/// A policy id, `ANPA` and 17 upper-case letters and digits: random, or
/// derived from `seed` (the AWS managed policies keep theirs stable).
pub fn policy_id(seed: Option<&str>) -> String {
    let Some(seed) = seed else {
        return random_id("ANPA");
    };
    let digest = Sha256::digest(seed.as_bytes());
    let mut id = String::from("ANPA");
    for b in digest.iter().take(ID_LEN - 4) {
        id.push(char::from(ID_ALPHABET[usize::from(*b) % ID_ALPHABET.len()]));
    }
    id
}

/// A role ARN taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    pub account: String,
    pub path: String,
    pub name: String,
}

/// A managed policy ARN taken apart; `account` is `aws` for AWS managed
/// policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyArn {
    pub account: String,
    pub path: String,
    pub name: String,
}

/// `arn:PARTITION:iam::ACCOUNT:KIND/PATH/NAME` → (account, path, name).
fn parse_arn<'a>(arn: &'a str, kind: &str) -> Option<(&'a str, String, &'a str)> {
    let mut parts = arn.splitn(6, ':');
    let (arn_, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if arn_ != "arn" || !partition.starts_with("aws") || service != "iam" || !region.is_empty() {
        return None;
    }
    let rest = resource.strip_prefix(kind)?;
    let rest = rest.strip_prefix('/')?;
    let (path, name) = match rest.rsplit_once('/') {
        Some((p, n)) => (format!("/{p}/"), n),
        None => ("/".to_string(), rest),
    };
    if name.is_empty() || path.contains("//") {
        return None;
    }
    Some((account, path, name))
}

/// Parses a role ARN (`arn:aws:iam::123456789012:role/path/name`).
pub fn parse_role_arn(arn: &str) -> Option<RoleArn> {
    let (account, path, name) = parse_arn(arn, "role")?;
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then(|| RoleArn {
        account: account.to_string(),
        path,
        name: name.to_string(),
    })
}

/// Parses a managed policy ARN; a malformed one is IAM's `InvalidInput`.
pub fn parse_policy_arn(arn: &str) -> Result<PolicyArn, IamError> {
    let invalid = || IamError::InvalidInput(format!("ARN {arn} is not valid."));
    let (account, path, name) = parse_arn(arn, "policy").ok_or_else(invalid)?;
    let account_ok =
        account == "aws" || (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()));
    if !account_ok || validate_policy_name(name).is_err() {
        return Err(invalid());
    }
    Ok(PolicyArn {
        account: account.to_string(),
        path,
        name: name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_and_policy_names() {
        for (name, ok) in [
            ("lambda-role", true),
            ("a", true),
            ("A_b+c=d,e.f@g-h", true),
            (&"r".repeat(64), true),
            (&"r".repeat(65), false),
            ("", false),
            ("has space", false),
            ("slash/no", false),
            ("é", false),
        ] {
            assert_eq!(validate_role_name(name).is_ok(), ok, "{name:?}");
        }
        assert!(validate_policy_name(&"p".repeat(128)).is_ok());
        let err = validate_policy_name(&"p".repeat(129)).expect_err("too long");
        assert!(err
            .to_string()
            .ends_with("Member must have length less than or equal to 128"));
        assert_eq!(
            validate_role_name("a b").expect_err("pattern").to_string(),
            "1 validation error detected: Value 'a b' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        );
    }

    #[test]
    fn paths() {
        for (path, ok) in [
            ("/", true),
            ("/service-role/", true),
            ("/a/b/", true),
            ("", false),
            ("a/", false),
            ("/a", false),
            ("//", false),
            ("/a b/", false),
        ] {
            assert_eq!(validate_path(path).is_ok(), ok, "{path:?}");
        }
        assert!(validate_path(&format!("/{}/", "x".repeat(510))).is_ok());
        assert!(validate_path(&format!("/{}/", "x".repeat(511))).is_err());
        for (path, ok) in [
            ("/", true),
            ("/x/y/", true),
            ("/x//", false),
            ("/x!/", false),
        ] {
            assert_eq!(validate_policy_path(path).is_ok(), ok, "{path:?}");
        }
        assert!(validate_path_prefix("/ser").is_ok());
        assert!(validate_path_prefix("ser").is_err());
    }

    #[test]
    fn ids_have_aws_shape() {
        for id in [role_id(), policy_id(None), policy_id(Some("seed"))] {
            assert_eq!(id.len(), 21, "{id}");
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        }
        assert!(role_id().starts_with("AROA"));
        assert!(policy_id(None).starts_with("ANPA"));
        assert_eq!(policy_id(Some("x")), policy_id(Some("x")));
        assert_ne!(role_id(), role_id());
    }

    #[test]
    fn arns() {
        assert_eq!(
            parse_role_arn("arn:aws:iam::123456789012:role/service-role/my-role"),
            Some(RoleArn {
                account: "123456789012".into(),
                path: "/service-role/".into(),
                name: "my-role".into()
            })
        );
        assert_eq!(
            parse_role_arn("arn:aws:iam::000000000000:role/r").map(|r| r.path),
            Some("/".into())
        );
        for bad in [
            "arn:aws:iam::0000:role/r",
            "arn:aws:iam::000000000000:user/r",
            "arn:aws:iam::000000000000:role/",
            "arn:aws:s3::000000000000:role/r",
            "role/r",
        ] {
            assert_eq!(parse_role_arn(bad), None, "{bad}");
        }
        let p =
            parse_policy_arn("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
                .expect("managed");
        assert_eq!(
            (p.account.as_str(), p.path.as_str(), p.name.as_str()),
            ("aws", "/service-role/", "AWSLambdaBasicExecutionRole")
        );
        assert_eq!(
            parse_policy_arn("nope").expect_err("bad"),
            IamError::InvalidInput("ARN nope is not valid.".into())
        );
    }
}
