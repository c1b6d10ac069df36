//! IAM's wire: the Query protocol (form-encoded `Action=…&Version=2010-05-08`
//! in, XML in namespace `https://iam.amazonaws.com/doc/2010-05-08/` out),
//! member names and list encodings as botocore's `iam/2010-05-08` model
//! spells them. Policy documents arrive URL-encoded inside the form and go
//! back URL-encoded, as IAM returns them. The operations themselves live
//! in the `iam` crate; this module parses, renders and maps errors.
//!
//! Also home of strict IAM's check on a function's role, which the Lambda
//! surface calls.

use std::collections::HashMap;
use std::fmt::Write as _;

use aws_protocol::error::{xml_escape, AwsError, IAM_XMLNS};
use http::StatusCode;
use iam::{Iam, IamError, NewPolicy, NewRole, Page, Policy, PolicyVersion, Role, Scope, Tag};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::aws::Caller;
use crate::App;

const VERSION: &str = "2010-05-08";

/// Characters left as they are when a document is URL-encoded (RFC 3986
/// unreserved).
const DOCUMENT_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Most `Tags.member.N` entries read from one request (IAM allows 50; one
/// more is read so the quota error can be reported).
const MAX_TAG_MEMBERS: usize = 51;

/// The one error→wire mapping of IAM.
fn iam_error(e: IamError) -> AwsError {
    let (status, code) = match &e {
        IamError::Validation(_) => (StatusCode::BAD_REQUEST, "ValidationError"),
        IamError::InvalidInput(_) => (StatusCode::BAD_REQUEST, "InvalidInput"),
        IamError::MalformedPolicyDocument(_) => {
            (StatusCode::BAD_REQUEST, "MalformedPolicyDocument")
        }
        IamError::NoSuchEntity(_) => (StatusCode::NOT_FOUND, "NoSuchEntity"),
        IamError::EntityAlreadyExists(_) => (StatusCode::CONFLICT, "EntityAlreadyExists"),
        IamError::DeleteConflict(_) => (StatusCode::CONFLICT, "DeleteConflict"),
        IamError::LimitExceeded(_) => (StatusCode::CONFLICT, "LimitExceeded"),
        IamError::Internal(_) => {
            tracing::error!(error = %e, "iam store error");
            (StatusCode::INTERNAL_SERVER_ERROR, "ServiceFailure")
        }
    };
    AwsError::new(status, code, e.to_string())
}

/// With strict IAM on, the role a function names must exist in the
/// caller's account and trust `lambda.amazonaws.com`. Malformed ARNs are
/// left to the functions crate, which reports them as Lambda does.
pub(crate) async fn check_function_role(
    app: &App,
    account: &str,
    role: &str,
) -> Result<(), AwsError> {
    if !app.config.strict_iam || !functions::model::is_valid_role_arn(role) {
        return Ok(());
    }
    let assumable = Iam::new(app.store.clone())
        .lambda_can_assume(account, role)
        .await
        .map_err(iam_error)?;
    if assumable {
        Ok(())
    } else {
        Err(AwsError::client(
            "InvalidParameterValueException",
            "The role defined for the function cannot be assumed by Lambda.",
        ))
    }
}

/// The decoded form of one request; the first of repeated keys counts.
struct Params(HashMap<String, String>);

impl Params {
    fn parse(form: &[u8]) -> Params {
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(form) {
            map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Params(map)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A required member; `member` is its name in validation messages.
    fn required(&self, key: &str, member: &str) -> Result<&str, AwsError> {
        self.get(key).ok_or_else(|| {
            AwsError::client(
                "ValidationError",
                format!("1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"),
            )
        })
    }

    fn int(&self, key: &str, member: &str) -> Result<Option<i64>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
                AwsError::client(
                    "ValidationError",
                    format!("1 validation error detected: Value '{v}' at '{member}' failed to satisfy constraint: Member must be an integer"),
                )
            }),
        }
    }

    fn bool(&self, key: &str, member: &str) -> Result<bool, AwsError> {
        match self.get(key) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(AwsError::client(
                "ValidationError",
                format!("1 validation error detected: Value '{v}' at '{member}' failed to satisfy constraint: Member must be a boolean"),
            )),
        }
    }

    /// `Tags.member.N.Key` / `.Value`, N from 1 until the first gap.
    fn tags(&self) -> Vec<Tag> {
        (1..=MAX_TAG_MEMBERS)
            .map_while(|n| {
                let key = self.get(&format!("Tags.member.{n}.Key"))?;
                let value = self
                    .get(&format!("Tags.member.{n}.Value"))
                    .unwrap_or_default();
                Some(Tag {
                    key: key.to_string(),
                    value: value.to_string(),
                })
            })
            .collect()
    }
}

fn encode_document(document: &str) -> String {
    utf8_percent_encode(document, DOCUMENT_ENCODE).to_string()
}

fn date(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    aws_protocol::time::rfc3339(t)
}

/// `<name>escaped text</name>`.
fn el(out: &mut String, name: &str, text: &str) {
    let _ = write!(out, "<{name}>{}</{name}>", xml_escape(text));
}

fn tags_xml(out: &mut String, tags: &[Tag]) {
    if tags.is_empty() {
        return;
    }
    out.push_str("<Tags>");
    for t in tags {
        out.push_str("<member>");
        el(out, "Key", &t.key);
        el(out, "Value", &t.value);
        out.push_str("</member>");
    }
    out.push_str("</Tags>");
}

fn role_xml(out: &mut String, r: &Role, with_tags: bool) {
    el(out, "Path", &r.path);
    el(out, "RoleName", &r.name);
    el(out, "RoleId", &r.id);
    el(out, "Arn", &r.arn);
    el(out, "CreateDate", &date(r.created_at_ms));
    el(
        out,
        "AssumeRolePolicyDocument",
        &encode_document(&r.assume_role_policy),
    );
    if let Some(d) = &r.description {
        el(out, "Description", d);
    }
    el(
        out,
        "MaxSessionDuration",
        &r.max_session_duration.to_string(),
    );
    if with_tags {
        tags_xml(out, &r.tags);
    }
}

fn policy_xml(out: &mut String, p: &Policy) {
    el(out, "PolicyName", &p.name);
    el(out, "PolicyId", &p.id);
    el(out, "Arn", &p.arn);
    el(out, "Path", &p.path);
    el(out, "DefaultVersionId", &format!("v{}", p.default_version));
    el(out, "AttachmentCount", &p.attachment_count.to_string());
    el(out, "PermissionsBoundaryUsageCount", "0");
    el(out, "IsAttachable", "true");
    if let Some(d) = &p.description {
        el(out, "Description", d);
    }
    el(out, "CreateDate", &date(p.created_at_ms));
    el(out, "UpdateDate", &date(p.updated_at_ms));
    tags_xml(out, &p.tags);
}

fn version_xml(out: &mut String, v: &PolicyVersion) {
    el(out, "Document", &encode_document(&v.document));
    el(out, "VersionId", &v.version_id());
    el(
        out,
        "IsDefaultVersion",
        if v.is_default { "true" } else { "false" },
    );
    el(out, "CreateDate", &date(v.created_at_ms));
}

/// `<Name><member>…</member>…</Name><IsTruncated/>[<Marker/>]`.
fn page_xml<T>(out: &mut String, name: &str, page: &Page<T>, item: impl Fn(&mut String, &T)) {
    let _ = write!(out, "<{name}>");
    for i in &page.items {
        out.push_str("<member>");
        item(out, i);
        out.push_str("</member>");
    }
    let _ = write!(out, "</{name}>");
    el(
        out,
        "IsTruncated",
        if page.marker.is_some() {
            "true"
        } else {
            "false"
        },
    );
    if let Some(m) = &page.marker {
        el(out, "Marker", m);
    }
}

/// The response envelope; `result` is `None` for operations without output.
fn envelope(action: &str, result: Option<String>, request_id: &str) -> String {
    let mut out = format!("<{action}Response xmlns=\"{IAM_XMLNS}\">");
    if let Some(r) = result {
        let _ = write!(out, "<{action}Result>{r}</{action}Result>");
    }
    let _ = write!(
        out,
        "<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        xml_escape(request_id)
    );
    out
}

pub(crate) async fn handle(app: &App, caller: &Caller, form: &[u8]) -> Result<String, AwsError> {
    let params = Params::parse(form);
    let action = params
        .get("Action")
        .ok_or_else(|| AwsError::client("MissingAction", "Missing Action"))?
        .to_string();
    if let Some(v) = params.get("Version") {
        if v != VERSION {
            return Err(AwsError::client(
                "InvalidAction",
                format!("Could not find operation {action} for version {v}"),
            ));
        }
    }
    let iam = Iam::new(app.store.clone());
    let result = operation(&iam, &caller.account, &action, &params).await?;
    Ok(envelope(&action, result, &caller.request_id))
}

async fn operation(
    iam: &Iam,
    acct: &str,
    action: &str,
    p: &Params,
) -> Result<Option<String>, AwsError> {
    let mut out = String::new();
    match action {
        "CreateRole" => {
            let role = iam
                .create_role(
                    acct,
                    NewRole {
                        name: p.required("RoleName", "roleName")?.to_string(),
                        path: p.get("Path").map(String::from),
                        assume_role_policy: p
                            .required("AssumeRolePolicyDocument", "assumeRolePolicyDocument")?
                            .to_string(),
                        description: p.get("Description").map(String::from),
                        max_session_duration: p.int("MaxSessionDuration", "maxSessionDuration")?,
                        tags: p.tags(),
                    },
                )
                .await
                .map_err(iam_error)?;
            out.push_str("<Role>");
            role_xml(&mut out, &role, true);
            out.push_str("</Role>");
        }
        "GetRole" => {
            let role = iam
                .get_role(acct, p.required("RoleName", "roleName")?)
                .await
                .map_err(iam_error)?;
            out.push_str("<Role>");
            role_xml(&mut out, &role, true);
            out.push_str("</Role>");
        }
        "ListRoles" => {
            let page = iam
                .list_roles(
                    acct,
                    p.get("PathPrefix"),
                    p.get("Marker"),
                    p.int("MaxItems", "maxItems")?,
                )
                .await
                .map_err(iam_error)?;
            page_xml(&mut out, "Roles", &page, |o, r| role_xml(o, r, false));
        }
        "UpdateAssumeRolePolicy" => {
            iam.update_assume_role_policy(
                acct,
                p.required("RoleName", "roleName")?,
                p.required("PolicyDocument", "policyDocument")?,
            )
            .await
            .map_err(iam_error)?;
            return Ok(None);
        }
        "DeleteRole" => {
            iam.delete_role(acct, p.required("RoleName", "roleName")?)
                .await
                .map_err(iam_error)?;
            return Ok(None);
        }
        "CreatePolicy" => {
            let policy = iam
                .create_policy(
                    acct,
                    NewPolicy {
                        name: p.required("PolicyName", "policyName")?.to_string(),
                        path: p.get("Path").map(String::from),
                        document: p.required("PolicyDocument", "policyDocument")?.to_string(),
                        description: p.get("Description").map(String::from),
                        tags: p.tags(),
                    },
                )
                .await
                .map_err(iam_error)?;
            out.push_str("<Policy>");
            policy_xml(&mut out, &policy);
            out.push_str("</Policy>");
        }
        "GetPolicy" => {
            let policy = iam
                .get_policy(acct, p.required("PolicyArn", "policyArn")?)
                .await
                .map_err(iam_error)?;
            out.push_str("<Policy>");
            policy_xml(&mut out, &policy);
            out.push_str("</Policy>");
        }
        "GetPolicyVersion" => {
            let v = iam
                .get_policy_version(
                    acct,
                    p.required("PolicyArn", "policyArn")?,
                    p.required("VersionId", "versionId")?,
                )
                .await
                .map_err(iam_error)?;
            out.push_str("<PolicyVersion>");
            version_xml(&mut out, &v);
            out.push_str("</PolicyVersion>");
        }
        "ListPolicyVersions" => {
            let versions = iam
                .list_policy_versions(acct, p.required("PolicyArn", "policyArn")?)
                .await
                .map_err(iam_error)?;
            let page = Page {
                items: versions,
                marker: None,
            };
            page_xml(&mut out, "Versions", &page, version_xml);
        }
        "ListPolicies" => {
            let scope = match p.get("Scope") {
                None | Some("All") => Scope::All,
                Some("AWS") => Scope::Aws,
                Some("Local") => Scope::Local,
                Some(other) => {
                    return Err(AwsError::client(
                        "ValidationError",
                        format!("1 validation error detected: Value '{other}' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]"),
                    ))
                }
            };
            let page = iam
                .list_policies(
                    acct,
                    scope,
                    p.bool("OnlyAttached", "onlyAttached")?,
                    p.get("PathPrefix"),
                    p.get("Marker"),
                    p.int("MaxItems", "maxItems")?,
                )
                .await
                .map_err(iam_error)?;
            page_xml(&mut out, "Policies", &page, policy_xml);
        }
        "DeletePolicy" => {
            iam.delete_policy(acct, p.required("PolicyArn", "policyArn")?)
                .await
                .map_err(iam_error)?;
            return Ok(None);
        }
        "AttachRolePolicy" | "DetachRolePolicy" => {
            let role = p.required("RoleName", "roleName")?;
            let arn = p.required("PolicyArn", "policyArn")?;
            if action == "AttachRolePolicy" {
                iam.attach_role_policy(acct, role, arn).await
            } else {
                iam.detach_role_policy(acct, role, arn).await
            }
            .map_err(iam_error)?;
            return Ok(None);
        }
        "ListAttachedRolePolicies" => {
            let page = iam
                .list_attached_role_policies(
                    acct,
                    p.required("RoleName", "roleName")?,
                    p.get("PathPrefix"),
                    p.get("Marker"),
                    p.int("MaxItems", "maxItems")?,
                )
                .await
                .map_err(iam_error)?;
            page_xml(&mut out, "AttachedPolicies", &page, |o, (name, arn)| {
                el(o, "PolicyName", name);
                el(o, "PolicyArn", arn);
            });
        }
        "PutRolePolicy" => {
            iam.put_role_policy(
                acct,
                p.required("RoleName", "roleName")?,
                p.required("PolicyName", "policyName")?,
                p.required("PolicyDocument", "policyDocument")?,
            )
            .await
            .map_err(iam_error)?;
            return Ok(None);
        }
        "GetRolePolicy" => {
            let role = p.required("RoleName", "roleName")?;
            let name = p.required("PolicyName", "policyName")?;
            let document = iam
                .get_role_policy(acct, role, name)
                .await
                .map_err(iam_error)?;
            el(&mut out, "RoleName", role);
            el(&mut out, "PolicyName", name);
            el(&mut out, "PolicyDocument", &encode_document(&document));
        }
        "ListRolePolicies" => {
            let page = iam
                .list_role_policies(
                    acct,
                    p.required("RoleName", "roleName")?,
                    p.get("Marker"),
                    p.int("MaxItems", "maxItems")?,
                )
                .await
                .map_err(iam_error)?;
            page_xml(&mut out, "PolicyNames", &page, |o, n| {
                o.push_str(&xml_escape(n))
            });
        }
        "DeleteRolePolicy" => {
            iam.delete_role_policy(
                acct,
                p.required("RoleName", "roleName")?,
                p.required("PolicyName", "policyName")?,
            )
            .await
            .map_err(iam_error)?;
            return Ok(None);
        }
        other => {
            return Err(AwsError::client(
                "InvalidAction",
                format!("Could not find operation {other} for version {VERSION}"),
            ))
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_url_encoded_as_iam_returns_them() {
        assert_eq!(
            encode_document(r#"{"Action": "s3:*"}"#),
            "%7B%22Action%22%3A%20%22s3%3A%2A%22%7D"
        );
    }

    #[test]
    fn envelopes_and_pages() {
        let mut out = String::new();
        page_xml(
            &mut out,
            "PolicyNames",
            &Page {
                items: vec!["a<b".to_string()],
                marker: Some("a".into()),
            },
            |o, n| o.push_str(&xml_escape(n)),
        );
        assert_eq!(
            out,
            "<PolicyNames><member>a&lt;b</member></PolicyNames><IsTruncated>true</IsTruncated><Marker>a</Marker>"
        );
        assert_eq!(
            envelope("DeleteRole", None, "r-1"),
            format!("<DeleteRoleResponse xmlns=\"{IAM_XMLNS}\"><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></DeleteRoleResponse>")
        );
    }

    #[test]
    fn reads_tags_until_the_first_gap() {
        let p = Params::parse(
            b"Tags.member.1.Key=a&Tags.member.1.Value=1&Tags.member.2.Key=b&Tags.member.4.Key=d&Tags.member.1.Key=z",
        );
        let tags = p.tags();
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].key, "a");
        assert_eq!(tags[1].key, "b");
        assert_eq!(tags[1].value, "");
    }
}
