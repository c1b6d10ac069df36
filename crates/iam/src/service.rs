//! IAM operations over the store, with IAM's quotas and messages.

use std::sync::Arc;

use serde_json::{json, Value};
use store::{
    IamInsert, IamPolicyDelete, IamPolicyRow, IamRoleDelete, IamRoleRow, IamRoleWrite, Store,
};

use crate::document::{policy_size, trusts_lambda, validate_document, DocumentKind};
use crate::managed::{self, AwsManagedPolicy, AWS_MANAGED_CREATED_MS};
use crate::names::{
    parse_policy_arn, parse_role_arn, policy_id, role_id, validate_path, validate_path_prefix,
    validate_policy_name, validate_policy_path, validate_role_name,
};
use crate::IamError;

/// Roles per account (IAM's default quota).
const MAX_ROLES: i64 = 1000;
/// Customer managed policies per account (IAM's default quota).
const MAX_POLICIES: i64 = 1500;
/// Managed policies attached to one role (IAM's default quota).
const MAX_ATTACHED_PER_ROLE: i64 = 10;
/// A trust policy's size, white space excluded.
const MAX_TRUST_SIZE: usize = 2048;
/// A managed policy version's size, white space excluded.
const MAX_MANAGED_SIZE: usize = 6144;
/// All inline policies of one role together, white space excluded.
pub const MAX_INLINE_BYTES: usize = 10240;
const MAX_TAGS: usize = 50;
const DEFAULT_MAX_ITEMS: i64 = 100;

/// A resource tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A role as IAM describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub name: String,
    pub id: String,
    pub path: String,
    pub arn: String,
    pub created_at_ms: i64,
    /// The trust policy, as given (not URL-encoded).
    pub assume_role_policy: String,
    pub description: Option<String>,
    pub max_session_duration: i64,
    pub tags: Vec<Tag>,
}

/// A managed policy (customer or AWS) as IAM describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    pub id: String,
    pub path: String,
    pub arn: String,
    pub default_version: i64,
    pub attachment_count: i64,
    pub description: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub tags: Vec<Tag>,
}

/// One version of a managed policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyVersion {
    pub version: i64,
    pub document: String,
    pub is_default: bool,
    pub created_at_ms: i64,
}

impl PolicyVersion {
    pub fn version_id(&self) -> String {
        format!("v{}", self.version)
    }
}

/// CreateRole's input.
#[derive(Debug, Clone, Default)]
pub struct NewRole {
    pub name: String,
    pub path: Option<String>,
    pub assume_role_policy: String,
    pub description: Option<String>,
    pub max_session_duration: Option<i64>,
    pub tags: Vec<Tag>,
}

/// CreatePolicy's input.
#[derive(Debug, Clone, Default)]
pub struct NewPolicy {
    pub name: String,
    pub path: Option<String>,
    pub document: String,
    pub description: Option<String>,
    pub tags: Vec<Tag>,
}

/// Which managed policies ListPolicies returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Aws,
    Local,
}

/// One page of a listing; `marker` is set when more items follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub marker: Option<String>,
}

/// The IAM service of one server.
#[derive(Clone)]
pub struct Iam {
    store: Arc<Store>,
}

fn role_arn(account: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role{path}{name}")
}

fn policy_arn(account: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:policy{path}{name}")
}

fn role_not_found(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The role with name {name} cannot be found."))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn tags_json(tags: &[Tag]) -> String {
    Value::Array(
        tags.iter()
            .map(|t| json!({"Key": t.key, "Value": t.value}))
            .collect(),
    )
    .to_string()
}

fn tags_from_json(s: &str) -> Vec<Tag> {
    let Ok(Value::Array(list)) = serde_json::from_str::<Value>(s) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|t| {
            Some(Tag {
                key: t.get("Key")?.as_str()?.to_string(),
                value: t.get("Value")?.as_str()?.to_string(),
            })
        })
        .collect()
}

fn validate_tags(tags: &[Tag]) -> Result<(), IamError> {
    if tags.len() > MAX_TAGS {
        return Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for TagsPerRole: {MAX_TAGS}"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for t in tags {
        let key_len = t.key.chars().count();
        if key_len == 0 || key_len > 128 || t.value.chars().count() > 256 {
            return Err(IamError::Validation(format!(
                "1 validation error detected: Value '{}' at 'tags.member.key' failed to satisfy constraint: Member must have length between 1 and 128, and values at most 256",
                t.key
            )));
        }
        if !seen.insert(t.key.to_lowercase()) {
            return Err(IamError::InvalidInput(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.".into(),
            ));
        }
    }
    Ok(())
}

fn validate_description(d: Option<&str>) -> Result<(), IamError> {
    if let Some(d) = d {
        if d.chars().count() > 1000 {
            return Err(IamError::Validation(
                "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000".into(),
            ));
        }
    }
    Ok(())
}

/// MaxItems: 1–1000, 100 when absent.
fn max_items(max: Option<i64>) -> Result<usize, IamError> {
    let m = max.unwrap_or(DEFAULT_MAX_ITEMS);
    if !(1..=1000).contains(&m) {
        let rule = if m < 1 {
            "Member must have value greater than or equal to 1"
        } else {
            "Member must have value less than or equal to 1000"
        };
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value '{m}' at 'maxItems' failed to satisfy constraint: {rule}"
        )));
    }
    Ok(m as usize)
}

/// Pages a sorted list by `key`: items after `marker`, at most `max`.
fn page<T>(items: Vec<T>, key: impl Fn(&T) -> String, marker: Option<&str>, max: usize) -> Page<T> {
    let mut rest: Vec<T> = match marker {
        Some(m) => {
            let m = m.to_ascii_lowercase();
            items.into_iter().filter(|i| key(i) > m).collect()
        }
        None => items,
    };
    let marker = if rest.len() > max {
        rest.truncate(max);
        rest.last().map(&key)
    } else {
        None
    };
    Page {
        items: rest,
        marker,
    }
}

fn check_size(document: &str, max: usize, quota: &str) -> Result<usize, IamError> {
    let size = policy_size(document);
    if size > max {
        return Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for {quota}: {max}"
        )));
    }
    Ok(size)
}

fn role_from(row: IamRoleRow) -> Role {
    Role {
        arn: role_arn(&row.account, &row.path, &row.name),
        tags: tags_from_json(&row.tags_json),
        name: row.name,
        id: row.id,
        path: row.path,
        created_at_ms: row.created_at_ms,
        assume_role_policy: row.assume_role_policy,
        description: row.description,
        max_session_duration: row.max_session_duration,
    }
}

fn policy_from(row: IamPolicyRow) -> Policy {
    Policy {
        tags: tags_from_json(&row.tags_json),
        name: row.name,
        id: row.id,
        path: row.path,
        arn: row.arn,
        default_version: row.default_version,
        attachment_count: row.attachment_count,
        description: row.description,
        created_at_ms: row.created_at_ms,
        updated_at_ms: row.updated_at_ms,
    }
}

fn aws_policy(p: &AwsManagedPolicy, attachment_count: i64) -> Policy {
    let arn = p.arn();
    Policy {
        id: policy_id(Some(&arn)),
        name: p.name.to_string(),
        path: p.path.to_string(),
        arn,
        default_version: 1,
        attachment_count,
        description: Some(p.description.to_string()),
        created_at_ms: AWS_MANAGED_CREATED_MS,
        updated_at_ms: AWS_MANAGED_CREATED_MS,
        tags: Vec::new(),
    }
}

/// A managed policy an ARN resolved to.
enum Resolved {
    Aws(&'static AwsManagedPolicy),
    Customer(IamPolicyRow),
}

impl Iam {
    pub fn new(store: Arc<Store>) -> Iam {
        Iam { store }
    }

    // ----- roles ---------------------------------------------------------

    pub async fn create_role(&self, account: &str, new: NewRole) -> Result<Role, IamError> {
        validate_role_name(&new.name)?;
        let path = new.path.unwrap_or_else(|| "/".into());
        validate_path(&path)?;
        validate_description(new.description.as_deref())?;
        validate_tags(&new.tags)?;
        let max_session_duration = new.max_session_duration.unwrap_or(3600);
        if !(3600..=43200).contains(&max_session_duration) {
            return Err(IamError::Validation(format!(
                "1 validation error detected: Value '{max_session_duration}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200"
            )));
        }
        validate_document(&new.assume_role_policy, DocumentKind::Trust)?;
        check_size(&new.assume_role_policy, MAX_TRUST_SIZE, "ACLSizePerRole")?;
        let row = IamRoleRow {
            account: account.to_string(),
            name: new.name,
            id: role_id(),
            path,
            assume_role_policy: new.assume_role_policy,
            description: new.description,
            max_session_duration,
            tags_json: tags_json(&new.tags),
            created_at_ms: now_ms(),
        };
        match self.store.iam_role_insert(&row, MAX_ROLES).await? {
            IamInsert::Inserted => Ok(role_from(row)),
            IamInsert::Exists => Err(IamError::EntityAlreadyExists(format!(
                "Role with name {} already exists.",
                row.name
            ))),
            IamInsert::QuotaExceeded => Err(IamError::LimitExceeded(format!(
                "Cannot exceed quota for RolesPerAccount: {MAX_ROLES}"
            ))),
        }
    }

    pub async fn get_role(&self, account: &str, name: &str) -> Result<Role, IamError> {
        validate_role_name(name)?;
        self.store
            .iam_role_get(account, name)
            .await?
            .map(role_from)
            .ok_or_else(|| role_not_found(name))
    }

    pub async fn list_roles(
        &self,
        account: &str,
        path_prefix: Option<&str>,
        marker: Option<&str>,
        max: Option<i64>,
    ) -> Result<Page<Role>, IamError> {
        let prefix = path_prefix.unwrap_or("/");
        validate_path_prefix(prefix)?;
        let max = max_items(max)?;
        let mut rows = self
            .store
            .iam_role_list(account, prefix, marker.unwrap_or(""), max as i64 + 1)
            .await?;
        let marker = if rows.len() > max {
            rows.truncate(max);
            rows.last().map(|r| r.name.to_ascii_lowercase())
        } else {
            None
        };
        Ok(Page {
            items: rows.into_iter().map(role_from).collect(),
            marker,
        })
    }

    pub async fn update_assume_role_policy(
        &self,
        account: &str,
        name: &str,
        document: &str,
    ) -> Result<(), IamError> {
        validate_role_name(name)?;
        validate_document(document, DocumentKind::Trust)?;
        check_size(document, MAX_TRUST_SIZE, "ACLSizePerRole")?;
        if self
            .store
            .iam_role_set_trust(account, name, document)
            .await?
        {
            Ok(())
        } else {
            Err(role_not_found(name))
        }
    }

    pub async fn delete_role(&self, account: &str, name: &str) -> Result<(), IamError> {
        validate_role_name(name)?;
        match self.store.iam_role_delete(account, name).await? {
            IamRoleDelete::Deleted => Ok(()),
            IamRoleDelete::NotFound => Err(role_not_found(name)),
            IamRoleDelete::HasAttachedPolicies => Err(IamError::DeleteConflict(
                "Cannot delete entity, must detach all policies first.".into(),
            )),
            IamRoleDelete::HasInlinePolicies => Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete policies first.".into(),
            )),
        }
    }

    /// Whether the role `role_arn` names exists in `account` and trusts
    /// `lambda.amazonaws.com` (strict IAM's check for a function's role).
    pub async fn lambda_can_assume(&self, account: &str, role_arn: &str) -> Result<bool, IamError> {
        let Some(arn) = parse_role_arn(role_arn) else {
            return Ok(false);
        };
        if arn.account != account || validate_role_name(&arn.name).is_err() {
            return Ok(false);
        }
        Ok(match self.store.iam_role_get(account, &arn.name).await? {
            Some(role) => role.path == arn.path && trusts_lambda(&role.assume_role_policy),
            None => false,
        })
    }

    // ----- managed policies ---------------------------------------------

    pub async fn create_policy(&self, account: &str, new: NewPolicy) -> Result<Policy, IamError> {
        validate_policy_name(&new.name)?;
        let path = new.path.unwrap_or_else(|| "/".into());
        validate_policy_path(&path)?;
        validate_description(new.description.as_deref())?;
        validate_tags(&new.tags)?;
        validate_document(&new.document, DocumentKind::Identity)?;
        check_size(&new.document, MAX_MANAGED_SIZE, "PolicySize")?;
        let now = now_ms();
        let row = IamPolicyRow {
            account: account.to_string(),
            arn: policy_arn(account, &path, &new.name),
            name: new.name,
            id: policy_id(None),
            path,
            description: new.description,
            default_version: 1,
            tags_json: tags_json(&new.tags),
            created_at_ms: now,
            updated_at_ms: now,
            attachment_count: 0,
        };
        match self
            .store
            .iam_policy_insert(&row, &new.document, MAX_POLICIES)
            .await?
        {
            IamInsert::Inserted => Ok(policy_from(row)),
            IamInsert::Exists => Err(IamError::EntityAlreadyExists(format!(
                "A policy called {} already exists. Duplicate names are not allowed.",
                row.name
            ))),
            IamInsert::QuotaExceeded => Err(IamError::LimitExceeded(format!(
                "Cannot exceed quota for PoliciesPerAccount: {MAX_POLICIES}"
            ))),
        }
    }

    /// Resolves a managed policy ARN visible to `account`; `None` when
    /// nothing answers to it.
    async fn resolve(&self, account: &str, arn: &str) -> Result<Option<Resolved>, IamError> {
        let parsed = parse_policy_arn(arn)?;
        if parsed.account == "aws" {
            return Ok(managed::find(&parsed.path, &parsed.name).map(Resolved::Aws));
        }
        if parsed.account != account {
            return Ok(None);
        }
        Ok(self
            .store
            .iam_policy_get(account, &parsed.name)
            .await?
            .filter(|p| p.arn == arn)
            .map(Resolved::Customer))
    }

    fn policy_not_found(arn: &str) -> IamError {
        IamError::NoSuchEntity(format!("Policy {arn} was not found."))
    }

    pub async fn get_policy(&self, account: &str, arn: &str) -> Result<Policy, IamError> {
        match self.resolve(account, arn).await? {
            Some(Resolved::Aws(p)) => {
                let count = self.store.iam_attachment_count(account, arn).await?;
                Ok(aws_policy(p, count))
            }
            Some(Resolved::Customer(row)) => Ok(policy_from(row)),
            None => Err(Self::policy_not_found(arn)),
        }
    }

    pub async fn list_policy_versions(
        &self,
        account: &str,
        arn: &str,
    ) -> Result<Vec<PolicyVersion>, IamError> {
        match self.resolve(account, arn).await? {
            Some(Resolved::Aws(p)) => Ok(vec![PolicyVersion {
                version: 1,
                document: p.document.to_string(),
                is_default: true,
                created_at_ms: AWS_MANAGED_CREATED_MS,
            }]),
            Some(Resolved::Customer(row)) => Ok(self
                .store
                .iam_policy_versions(account, &row.name)
                .await?
                .into_iter()
                .map(|v| PolicyVersion {
                    is_default: v.version == row.default_version,
                    version: v.version,
                    document: v.document,
                    created_at_ms: v.created_at_ms,
                })
                .collect()),
            None => Err(Self::policy_not_found(arn)),
        }
    }

    pub async fn get_policy_version(
        &self,
        account: &str,
        arn: &str,
        version_id: &str,
    ) -> Result<PolicyVersion, IamError> {
        let number = version_id
            .strip_prefix('v')
            .filter(|n| !n.starts_with('0'))
            .and_then(|n| n.parse::<i64>().ok())
            .ok_or_else(|| {
                IamError::Validation(format!(
                    "1 validation error detected: Value '{version_id}' at 'versionId' failed to satisfy constraint: Member must satisfy regular expression pattern: v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?"
                ))
            })?;
        self.list_policy_versions(account, arn)
            .await?
            .into_iter()
            .find(|v| v.version == number)
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!(
                    "Policy {arn} version {version_id} does not exist or is not attachable."
                ))
            })
    }

    pub async fn list_policies(
        &self,
        account: &str,
        scope: Scope,
        only_attached: bool,
        path_prefix: Option<&str>,
        marker: Option<&str>,
        max: Option<i64>,
    ) -> Result<Page<Policy>, IamError> {
        let prefix = path_prefix.unwrap_or("/");
        validate_path_prefix(prefix)?;
        let max = max_items(max)?;
        let mut all = Vec::new();
        if scope != Scope::Local {
            for p in managed::aws_managed_policies() {
                let count = self.store.iam_attachment_count(account, &p.arn()).await?;
                all.push(aws_policy(p, count));
            }
        }
        if scope != Scope::Aws {
            all.extend(
                self.store
                    .iam_policy_all(account)
                    .await?
                    .into_iter()
                    .map(policy_from),
            );
        }
        all.retain(|p| p.path.starts_with(prefix) && (!only_attached || p.attachment_count > 0));
        all.sort_by_key(|p| p.name.to_ascii_lowercase());
        Ok(page(all, |p| p.name.to_ascii_lowercase(), marker, max))
    }

    pub async fn delete_policy(&self, account: &str, arn: &str) -> Result<(), IamError> {
        match self.resolve(account, arn).await? {
            None => Err(Self::policy_not_found(arn)),
            Some(Resolved::Aws(_)) => Err(IamError::InvalidInput(format!(
                "Policy {arn} is an AWS managed policy and cannot be deleted; detach it from your roles instead."
            ))),
            Some(Resolved::Customer(row)) => {
                match self.store.iam_policy_delete(account, &row.name, arn).await? {
                    IamPolicyDelete::Deleted => Ok(()),
                    IamPolicyDelete::NotFound => Err(Self::policy_not_found(arn)),
                    IamPolicyDelete::Attached => Err(IamError::DeleteConflict(
                        "Cannot delete a policy attached to entities.".into(),
                    )),
                }
            }
        }
    }

    // ----- attachments ---------------------------------------------------

    pub async fn attach_role_policy(
        &self,
        account: &str,
        role: &str,
        arn: &str,
    ) -> Result<(), IamError> {
        validate_role_name(role)?;
        if self.resolve(account, arn).await?.is_none() {
            return Err(IamError::NoSuchEntity(format!(
                "Policy {arn} does not exist or is not attachable."
            )));
        }
        match self
            .store
            .iam_attach(account, role, arn, MAX_ATTACHED_PER_ROLE, now_ms())
            .await?
        {
            IamRoleWrite::Done => Ok(()),
            IamRoleWrite::RoleNotFound => Err(role_not_found(role)),
            IamRoleWrite::QuotaExceeded => Err(IamError::LimitExceeded(format!(
                "Cannot exceed quota for PoliciesPerRole: {MAX_ATTACHED_PER_ROLE}"
            ))),
        }
    }

    pub async fn detach_role_policy(
        &self,
        account: &str,
        role: &str,
        arn: &str,
    ) -> Result<(), IamError> {
        validate_role_name(role)?;
        parse_policy_arn(arn)?;
        if self.store.iam_role_get(account, role).await?.is_none() {
            return Err(role_not_found(role));
        }
        if self.store.iam_detach(account, role, arn).await? {
            Ok(())
        } else {
            Err(Self::policy_not_found(arn))
        }
    }

    /// (policy name, ARN) of each managed policy attached to a role.
    pub async fn list_attached_role_policies(
        &self,
        account: &str,
        role: &str,
        path_prefix: Option<&str>,
        marker: Option<&str>,
        max: Option<i64>,
    ) -> Result<Page<(String, String)>, IamError> {
        validate_role_name(role)?;
        let prefix = path_prefix.unwrap_or("/");
        validate_path_prefix(prefix)?;
        let max = max_items(max)?;
        if self.store.iam_role_get(account, role).await?.is_none() {
            return Err(role_not_found(role));
        }
        let mut attached: Vec<(String, String)> = self
            .store
            .iam_attached(account, role)
            .await?
            .into_iter()
            .filter_map(|arn| {
                let p = parse_policy_arn(&arn).ok()?;
                p.path.starts_with(prefix).then_some((p.name, arn))
            })
            .collect();
        attached.sort_by_key(|(name, _)| name.to_ascii_lowercase());
        Ok(page(attached, |(n, _)| n.to_ascii_lowercase(), marker, max))
    }

    // ----- inline policies ---------------------------------------------

    pub async fn put_role_policy(
        &self,
        account: &str,
        role: &str,
        name: &str,
        document: &str,
    ) -> Result<(), IamError> {
        validate_role_name(role)?;
        validate_policy_name(name)?;
        validate_document(document, DocumentKind::Identity)?;
        let size = policy_size(document) as i64;
        match self
            .store
            .iam_inline_put(account, role, name, document, size, MAX_INLINE_BYTES as i64)
            .await?
        {
            IamRoleWrite::Done => Ok(()),
            IamRoleWrite::RoleNotFound => Err(role_not_found(role)),
            IamRoleWrite::QuotaExceeded => Err(IamError::LimitExceeded(format!(
                "Maximum policy size of {MAX_INLINE_BYTES} bytes exceeded for role {role}"
            ))),
        }
    }

    pub async fn get_role_policy(
        &self,
        account: &str,
        role: &str,
        name: &str,
    ) -> Result<String, IamError> {
        validate_role_name(role)?;
        validate_policy_name(name)?;
        if self.store.iam_role_get(account, role).await?.is_none() {
            return Err(role_not_found(role));
        }
        self.store
            .iam_inline_get(account, role, name)
            .await?
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!("The role policy with name {name} cannot be found."))
            })
    }

    pub async fn list_role_policies(
        &self,
        account: &str,
        role: &str,
        marker: Option<&str>,
        max: Option<i64>,
    ) -> Result<Page<String>, IamError> {
        validate_role_name(role)?;
        let max = max_items(max)?;
        if self.store.iam_role_get(account, role).await?.is_none() {
            return Err(role_not_found(role));
        }
        let mut names = self.store.iam_inline_list(account, role).await?;
        names.sort_by_key(|n| n.to_ascii_lowercase());
        Ok(page(names, |n| n.to_ascii_lowercase(), marker, max))
    }

    pub async fn delete_role_policy(
        &self,
        account: &str,
        role: &str,
        name: &str,
    ) -> Result<(), IamError> {
        validate_role_name(role)?;
        validate_policy_name(name)?;
        if self.store.iam_role_get(account, role).await?.is_none() {
            return Err(role_not_found(role));
        }
        if self.store.iam_inline_delete(account, role, name).await? {
            Ok(())
        } else {
            Err(IamError::NoSuchEntity(format!(
                "The role policy with name {name} cannot be found."
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    const ACCT: &str = "123456789012";

    async fn iam() -> (Iam, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_sqlite(&dir.path().join("m.db"))
            .await
            .expect("open");
        (Iam::new(Arc::new(store)), dir)
    }

    #[tokio::test]
    async fn strict_check_needs_an_existing_trusting_role_in_the_account() {
        let (iam, _dir) = iam().await;
        iam.create_role(
            ACCT,
            NewRole {
                name: "fn-role".into(),
                path: Some("/service-role/".into()),
                assume_role_policy: TRUST.into(),
                ..NewRole::default()
            },
        )
        .await
        .expect("create");
        for (arn, expected) in [
            ("arn:aws:iam::123456789012:role/service-role/fn-role", true),
            ("arn:aws:iam::123456789012:role/service-role/FN-ROLE", true),
            ("arn:aws:iam::123456789012:role/fn-role", false),
            ("arn:aws:iam::000000000000:role/service-role/fn-role", false),
            ("arn:aws:iam::123456789012:role/service-role/other", false),
        ] {
            assert_eq!(
                iam.lambda_can_assume(ACCT, arn).await.expect("check"),
                expected,
                "{arn}"
            );
        }
        iam.update_assume_role_policy(
            ACCT,
            "fn-role",
            &TRUST.replace("lambda.amazonaws.com", "ec2.amazonaws.com"),
        )
        .await
        .expect("update");
        assert!(!iam
            .lambda_can_assume(ACCT, "arn:aws:iam::123456789012:role/service-role/fn-role")
            .await
            .expect("check"));
    }

    #[tokio::test]
    async fn sizes_are_checked_against_iam_quotas() {
        let (iam, _dir) = iam().await;
        let padded = TRUST.replace("sts:AssumeRole", &format!("sts:{}", "A".repeat(2048)));
        let err = iam
            .create_role(
                ACCT,
                NewRole {
                    name: "r".into(),
                    assume_role_policy: padded,
                    ..NewRole::default()
                },
            )
            .await
            .expect_err("too big");
        assert_eq!(
            err,
            IamError::LimitExceeded("Cannot exceed quota for ACLSizePerRole: 2048".into())
        );
        let big = format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"s3:{}","Resource":"*"}}}}"#,
            "x".repeat(6144)
        );
        let err = iam
            .create_policy(
                ACCT,
                NewPolicy {
                    name: "p".into(),
                    document: big,
                    ..NewPolicy::default()
                },
            )
            .await
            .expect_err("too big");
        assert_eq!(
            err,
            IamError::LimitExceeded("Cannot exceed quota for PolicySize: 6144".into())
        );
    }

    #[tokio::test]
    async fn lists_page_with_markers() {
        let (iam, _dir) = iam().await;
        let all = iam
            .list_policies(ACCT, Scope::Aws, false, None, None, Some(5))
            .await
            .expect("list");
        assert_eq!(all.items.len(), 5);
        let mut names: Vec<String> = all.items.iter().map(|p| p.name.clone()).collect();
        let mut marker = all.marker.clone();
        while let Some(m) = marker {
            let next = iam
                .list_policies(ACCT, Scope::Aws, false, None, Some(&m), Some(5))
                .await
                .expect("next");
            names.extend(next.items.iter().map(|p| p.name.clone()));
            marker = next.marker;
        }
        assert_eq!(names.len(), 12);
        let mut sorted = names.clone();
        sorted.sort_by_key(|n| n.to_ascii_lowercase());
        assert_eq!(names, sorted);
        let local = iam
            .list_policies(ACCT, Scope::Local, false, None, None, None)
            .await
            .expect("local");
        assert!(local.items.is_empty());
        assert!(matches!(
            iam.list_policies(ACCT, Scope::All, false, None, None, Some(0))
                .await,
            Err(IamError::Validation(_))
        ));
    }
}
