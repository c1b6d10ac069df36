//! Policy documents: the grammar IAM checks before it stores one, their
//! size as IAM counts it, and whether a trust policy lets Lambda assume
//! the role.

use serde_json::{Map, Value};

use crate::IamError;

/// Which kind of document is checked: a role's trust (assume-role) policy
/// names principals and no resources; an identity policy (managed or
/// inline) names resources and no principals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentKind {
    Trust,
    Identity,
}

/// The wire limit of any policy document member.
const MAX_DOCUMENT_CHARS: usize = 131_072;

const STATEMENT_KEYS: &[&str] = &[
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

/// A document's size as IAM counts it against its quotas: characters,
/// white space excluded.
pub fn policy_size(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

fn malformed(message: &str) -> IamError {
    IamError::MalformedPolicyDocument(message.to_string())
}

/// Checks `document` (already URL-decoded) the way IAM does before storing
/// it: the member's length and character set, valid JSON, and the policy
/// grammar. Quotas on size are the caller's, as they differ per use.
pub fn validate_document(document: &str, kind: DocumentKind) -> Result<(), IamError> {
    let member = match kind {
        DocumentKind::Trust => "assumeRolePolicyDocument",
        DocumentKind::Identity => "policyDocument",
    };
    let chars = document.chars().count();
    if chars == 0 || chars > MAX_DOCUMENT_CHARS {
        let rule = if chars == 0 {
            "Member must have length greater than or equal to 1".to_string()
        } else {
            format!("Member must have length less than or equal to {MAX_DOCUMENT_CHARS}")
        };
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: {rule}"
        )));
    }
    if !document
        .chars()
        .all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}'))
    {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"
        )));
    }
    let value: Value = serde_json::from_str(document)
        .map_err(|_| malformed("This policy contains invalid Json"))?;
    let Value::Object(top) = value else {
        return Err(malformed("Syntax errors in policy."));
    };
    for k in top.keys() {
        if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
            return Err(malformed("Syntax errors in policy."));
        }
    }
    match top.get("Version") {
        None => {}
        Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
        Some(_) => return Err(malformed("The policy failed legacy parsing")),
    }
    let statements: Vec<&Map<String, Value>> = match top.get("Statement") {
        Some(Value::Object(s)) => vec![s],
        Some(Value::Array(list)) if !list.is_empty() => list
            .iter()
            .map(|s| {
                s.as_object()
                    .ok_or_else(|| malformed("Syntax errors in policy."))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(malformed("Syntax errors in policy.")),
    };
    for s in statements {
        validate_statement(s, kind)?;
    }
    Ok(())
}

fn validate_statement(s: &Map<String, Value>, kind: DocumentKind) -> Result<(), IamError> {
    if s.keys().any(|k| !STATEMENT_KEYS.contains(&k.as_str())) {
        return Err(malformed("Syntax errors in policy."));
    }
    match s.get("Effect") {
        Some(Value::String(e)) if e == "Allow" || e == "Deny" => {}
        Some(Value::String(e)) => return Err(malformed(&format!("Invalid effect: {e}"))),
        _ => return Err(malformed("Syntax errors in policy.")),
    }
    if let Some(sid) = s.get("Sid") {
        if !sid.is_string() {
            return Err(malformed("Syntax errors in policy."));
        }
    }
    let actions = match (s.get("Action"), s.get("NotAction")) {
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return Err(malformed("Policy statement must contain actions.")),
        (Some(_), Some(_)) => return Err(malformed("Syntax errors in policy.")),
    };
    for action in string_or_list(actions)? {
        let vendor_ok = action == "*"
            || action
                .split_once(':')
                .is_some_and(|(vendor, name)| !vendor.is_empty() && !name.is_empty());
        if !vendor_ok {
            return Err(malformed(
                "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
            ));
        }
    }
    let has_principal = s.contains_key("Principal") || s.contains_key("NotPrincipal");
    let has_resource = s.contains_key("Resource") || s.contains_key("NotResource");
    for key in ["Resource", "NotResource"] {
        if let Some(r) = s.get(key) {
            string_or_list(r)?;
        }
    }
    match kind {
        DocumentKind::Identity => {
            if has_principal {
                return Err(malformed("Policy document should not specify a principal."));
            }
            if !has_resource {
                return Err(malformed("Policy statement must contain resources."));
            }
        }
        DocumentKind::Trust => {
            if has_resource {
                return Err(malformed("Has prohibited field Resource"));
            }
            if !has_principal {
                return Err(malformed("Missing required field Principal"));
            }
        }
    }
    if let Some(c) = s.get("Condition") {
        if !c.is_object() {
            return Err(malformed("Syntax errors in policy."));
        }
    }
    Ok(())
}

/// A member that is a string or a non-empty list of strings.
fn string_or_list(v: &Value) -> Result<Vec<&str>, IamError> {
    match v {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(list) if !list.is_empty() => list
            .iter()
            .map(|x| {
                x.as_str()
                    .ok_or_else(|| malformed("Syntax errors in policy."))
            })
            .collect(),
        _ => Err(malformed("Syntax errors in policy.")),
    }
}

/// Whether a trust policy lets Lambda assume the role: a statement with
/// `Effect: Allow`, an `Action` naming `sts:AssumeRole` (or `sts:*`, `*`),
/// as a string or in a list, and a `Principal` whose `Service` is, or
/// lists, `lambda.amazonaws.com`.
pub fn trusts_lambda(assume_role_policy: &str) -> bool {
    let Ok(Value::Object(top)) = serde_json::from_str::<Value>(assume_role_policy) else {
        return false;
    };
    let statements: Vec<&Value> = match top.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => return false,
    };
    statements.into_iter().any(|s| {
        let allow = s.get("Effect").and_then(Value::as_str) == Some("Allow");
        let action = s.get("Action").is_some_and(|a| {
            strings(a).iter().any(|x| {
                *x == "*"
                    || x.eq_ignore_ascii_case("sts:AssumeRole")
                    || x.eq_ignore_ascii_case("sts:*")
            })
        });
        let lambda = s
            .get("Principal")
            .and_then(|p| p.get("Service"))
            .is_some_and(|svc| strings(svc).contains(&"lambda.amazonaws.com"));
        allow && action && lambda
    })
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    const IDENTITY: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["logs:PutLogEvents"],"Resource":"*"}}"#;

    #[track_caller]
    fn check(document: &str, kind: DocumentKind, expected: Result<(), &str>) {
        let got = validate_document(document, kind).map_err(|e| e.to_string());
        assert_eq!(got, expected.map_err(String::from), "{document}");
    }

    #[test]
    fn validates_documents() {
        use DocumentKind::{Identity, Trust};
        check(TRUST, Trust, Ok(()));
        check(IDENTITY, Identity, Ok(()));
        check("{nope", Identity, Err("This policy contains invalid Json"));
        check("[]", Identity, Err("Syntax errors in policy."));
        check(
            r#"{"Version":"2012-10-17"}"#,
            Identity,
            Err("Syntax errors in policy."),
        );
        check(
            r#"{"Version":"1999","Statement":[]}"#,
            Identity,
            Err("The policy failed legacy parsing"),
        );
        check(
            r#"{"Statement":{"Effect":"Maybe","Action":"s3:*","Resource":"*"}}"#,
            Identity,
            Err("Invalid effect: Maybe"),
        );
        check(
            r#"{"Statement":{"Effect":"Allow","Resource":"*"}}"#,
            Identity,
            Err("Policy statement must contain actions."),
        );
        check(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*"}}"#,
            Identity,
            Err("Policy statement must contain resources."),
        );
        check(
            r#"{"Statement":{"Effect":"Allow","Action":"GetObject","Resource":"*"}}"#,
            Identity,
            Err("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."),
        );
        check(
            TRUST,
            Identity,
            Err("Policy document should not specify a principal."),
        );
        check(IDENTITY, Trust, Err("Has prohibited field Resource"));
        check(
            r#"{"Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}}"#,
            Trust,
            Err("Missing required field Principal"),
        );
        check(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Bogus":1}}"#,
            Identity,
            Err("Syntax errors in policy."),
        );
        assert!(matches!(
            validate_document("", Identity),
            Err(IamError::Validation(_))
        ));
        assert!(matches!(
            validate_document("{\"a\":\"\u{2603}\"}", Identity),
            Err(IamError::Validation(_))
        ));
        assert!(matches!(
            validate_document(&" ".repeat(MAX_DOCUMENT_CHARS + 1), Identity),
            Err(IamError::Validation(_))
        ));
    }

    #[test]
    fn sizes_ignore_white_space() {
        assert_eq!(policy_size("{ \"a\" :\n 1 }"), 7);
    }

    #[test]
    fn recognises_lambda_trust() {
        for (doc, expected) in [
            (TRUST, true),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com","lambda.amazonaws.com"]},"Action":["sts:TagSession","sts:AssumeRole"]}}"#,
                true,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:*"}]}"#,
                true,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"*"}]}"#,
                true,
            ),
            (
                r#"{"Statement":[{"Effect":"Deny","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
                false,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
                false,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:TagSession"}]}"#,
                false,
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
                false,
            ),
            ("not json", false),
            ("{}", false),
        ] {
            assert_eq!(trusts_lambda(doc), expected, "{doc}");
        }
    }
}
