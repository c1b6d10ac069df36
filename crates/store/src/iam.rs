//! Queries of IAM: roles, customer managed policies and their versions,
//! role↔policy attachments and inline role policies, per account.
//!
//! Names are matched without regard to case through the `*_key` columns
//! (the caller passes names as given; keys are lowercased here). Documents
//! and policy ARNs are opaque strings.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Store, StoreError};

/// One role as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct IamRoleRow {
    pub account: String,
    pub name: String,
    pub id: String,
    pub path: String,
    pub assume_role_policy: String,
    pub description: Option<String>,
    pub max_session_duration: i64,
    pub tags_json: String,
    pub created_at_ms: i64,
}

/// One customer managed policy as stored, with how many roles of its
/// account it is attached to.
#[derive(Debug, Clone, PartialEq)]
pub struct IamPolicyRow {
    pub account: String,
    pub name: String,
    pub id: String,
    pub path: String,
    pub arn: String,
    pub description: Option<String>,
    pub default_version: i64,
    pub tags_json: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub attachment_count: i64,
}

/// One version of a managed policy.
#[derive(Debug, Clone, PartialEq)]
pub struct IamPolicyVersionRow {
    pub version: i64,
    pub document: String,
    pub created_at_ms: i64,
}

/// Outcome of an insert bounded by a per-account quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IamInsert {
    Inserted,
    /// The name is taken (in any case).
    Exists,
    /// The account already holds the quota's number of entities.
    QuotaExceeded,
}

/// Outcome of deleting a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IamRoleDelete {
    Deleted,
    NotFound,
    /// Managed policies are still attached.
    HasAttachedPolicies,
    /// Inline policies still exist.
    HasInlinePolicies,
}

/// Outcome of deleting a managed policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IamPolicyDelete {
    Deleted,
    NotFound,
    /// Still attached to a role.
    Attached,
}

/// Outcome of a write to a role's attachments or inline policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IamRoleWrite {
    Done,
    RoleNotFound,
    /// Over the per-role quota (attachments) or aggregate size (inline).
    QuotaExceeded,
}

const ROLE_COLUMNS: &str = "account, name, id, path, assume_role_policy, description, max_session_duration, tags_json, created_at_ms";

const POLICY_COLUMNS: &str = "p.account, p.name, p.id, p.path, p.arn, p.description, p.default_version, p.tags_json, p.created_at_ms, p.updated_at_ms, \
     (SELECT COUNT(*) FROM iam_role_attachments a WHERE a.account = p.account AND a.policy_arn = p.arn) AS attachment_count";

fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn role_from_row(r: &AnyRow) -> Result<IamRoleRow, sqlx::Error> {
    Ok(IamRoleRow {
        account: r.try_get("account")?,
        name: r.try_get("name")?,
        id: r.try_get("id")?,
        path: r.try_get("path")?,
        assume_role_policy: r.try_get("assume_role_policy")?,
        description: r.try_get("description")?,
        max_session_duration: r.try_get("max_session_duration")?,
        tags_json: r.try_get("tags_json")?,
        created_at_ms: r.try_get("created_at_ms")?,
    })
}

fn policy_from_row(r: &AnyRow) -> Result<IamPolicyRow, sqlx::Error> {
    Ok(IamPolicyRow {
        account: r.try_get("account")?,
        name: r.try_get("name")?,
        id: r.try_get("id")?,
        path: r.try_get("path")?,
        arn: r.try_get("arn")?,
        description: r.try_get("description")?,
        default_version: r.try_get("default_version")?,
        tags_json: r.try_get("tags_json")?,
        created_at_ms: r.try_get("created_at_ms")?,
        updated_at_ms: r.try_get("updated_at_ms")?,
        attachment_count: r.try_get("attachment_count")?,
    })
}

impl Store {
    /// Inserts a role unless its name is taken or the account already has
    /// `max_roles` roles.
    pub async fn iam_role_insert(
        &self,
        role: &IamRoleRow,
        max_roles: i64,
    ) -> Result<IamInsert, StoreError> {
        let _w = self.writer().await;
        let mut tx = self.pool().begin().await?;
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM iam_roles WHERE account = $1")
            .bind(&role.account)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if count >= max_roles {
            return Ok(IamInsert::QuotaExceeded);
        }
        let done = sqlx::query(
            "INSERT INTO iam_roles (account, name_key, name, id, path, assume_role_policy, description, max_session_duration, tags_json, created_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (account, name_key) DO NOTHING",
        )
        .bind(&role.account)
        .bind(key(&role.name))
        .bind(&role.name)
        .bind(&role.id)
        .bind(&role.path)
        .bind(&role.assume_role_policy)
        .bind(&role.description)
        .bind(role.max_session_duration)
        .bind(&role.tags_json)
        .bind(role.created_at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(if done.rows_affected() == 1 {
            IamInsert::Inserted
        } else {
            IamInsert::Exists
        })
    }

    pub async fn iam_role_get(
        &self,
        account: &str,
        name: &str,
    ) -> Result<Option<IamRoleRow>, StoreError> {
        let sql =
            format!("SELECT {ROLE_COLUMNS} FROM iam_roles WHERE account = $1 AND name_key = $2");
        let row = sqlx::query(&sql)
            .bind(account)
            .bind(key(name))
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(role_from_row).transpose()?)
    }

    /// Roles whose path starts with `path_prefix`, ordered by name, after
    /// the name key `after`.
    pub async fn iam_role_list(
        &self,
        account: &str,
        path_prefix: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<IamRoleRow>, StoreError> {
        let sql = format!(
            "SELECT {ROLE_COLUMNS} FROM iam_roles WHERE account = $1 AND substr(path, 1, length($2)) = $2 AND name_key > $3 ORDER BY name_key LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(account)
            .bind(path_prefix)
            .bind(key(after))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(role_from_row).collect::<Result<_, _>>()?)
    }

    /// Replaces a role's trust policy; `false` if the role does not exist.
    pub async fn iam_role_set_trust(
        &self,
        account: &str,
        name: &str,
        document: &str,
    ) -> Result<bool, StoreError> {
        let _w = self.writer().await;
        let done = sqlx::query(
            "UPDATE iam_roles SET assume_role_policy = $3 WHERE account = $1 AND name_key = $2",
        )
        .bind(account)
        .bind(key(name))
        .bind(document)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a role that has no attached and no inline policies.
    pub async fn iam_role_delete(
        &self,
        account: &str,
        name: &str,
    ) -> Result<IamRoleDelete, StoreError> {
        let _w = self.writer().await;
        let mut tx = self.pool().begin().await?;
        let k = key(name);
        for (table, outcome) in [
            ("iam_role_attachments", IamRoleDelete::HasAttachedPolicies),
            ("iam_role_inline_policies", IamRoleDelete::HasInlinePolicies),
        ] {
            let n: i64 = sqlx::query(&format!(
                "SELECT COUNT(*) AS n FROM {table} WHERE account = $1 AND role_key = $2"
            ))
            .bind(account)
            .bind(&k)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            if n > 0 {
                return Ok(outcome);
            }
        }
        let done = sqlx::query("DELETE FROM iam_roles WHERE account = $1 AND name_key = $2")
            .bind(account)
            .bind(&k)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(if done.rows_affected() == 1 {
            IamRoleDelete::Deleted
        } else {
            IamRoleDelete::NotFound
        })
    }

    /// Inserts a customer managed policy with its first version (the
    /// default) unless the name is taken or the account holds
    /// `max_policies` policies. `attachment_count` is ignored.
    pub async fn iam_policy_insert(
        &self,
        policy: &IamPolicyRow,
        document: &str,
        max_policies: i64,
    ) -> Result<IamInsert, StoreError> {
        let _w = self.writer().await;
        let mut tx = self.pool().begin().await?;
        let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM iam_policies WHERE account = $1")
            .bind(&policy.account)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        if count >= max_policies {
            return Ok(IamInsert::QuotaExceeded);
        }
        let k = key(&policy.name);
        let done = sqlx::query(
            "INSERT INTO iam_policies (account, name_key, name, id, path, arn, description, default_version, tags_json, created_at_ms, updated_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (account, name_key) DO NOTHING",
        )
        .bind(&policy.account)
        .bind(&k)
        .bind(&policy.name)
        .bind(&policy.id)
        .bind(&policy.path)
        .bind(&policy.arn)
        .bind(&policy.description)
        .bind(policy.default_version)
        .bind(&policy.tags_json)
        .bind(policy.created_at_ms)
        .bind(policy.updated_at_ms)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(IamInsert::Exists);
        }
        sqlx::query(
            "INSERT INTO iam_policy_versions (account, policy_key, version, document, created_at_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&policy.account)
        .bind(&k)
        .bind(policy.default_version)
        .bind(document)
        .bind(policy.created_at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(IamInsert::Inserted)
    }

    pub async fn iam_policy_get(
        &self,
        account: &str,
        name: &str,
    ) -> Result<Option<IamPolicyRow>, StoreError> {
        let sql = format!(
            "SELECT {POLICY_COLUMNS} FROM iam_policies p WHERE p.account = $1 AND p.name_key = $2"
        );
        let row = sqlx::query(&sql)
            .bind(account)
            .bind(key(name))
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(policy_from_row).transpose()?)
    }

    /// Every customer managed policy of `account` (bounded by the
    /// per-account quota), ordered by name.
    pub async fn iam_policy_all(&self, account: &str) -> Result<Vec<IamPolicyRow>, StoreError> {
        let sql = format!(
            "SELECT {POLICY_COLUMNS} FROM iam_policies p WHERE p.account = $1 ORDER BY p.name_key"
        );
        let rows = sqlx::query(&sql)
            .bind(account)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(policy_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn iam_policy_versions(
        &self,
        account: &str,
        name: &str,
    ) -> Result<Vec<IamPolicyVersionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, document, created_at_ms FROM iam_policy_versions WHERE account = $1 AND policy_key = $2 ORDER BY version DESC",
        )
        .bind(account)
        .bind(key(name))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IamPolicyVersionRow {
                    version: r.try_get("version")?,
                    document: r.try_get("document")?,
                    created_at_ms: r.try_get("created_at_ms")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Deletes a customer managed policy (named `name`, with `arn`) and its
    /// versions unless it is attached.
    pub async fn iam_policy_delete(
        &self,
        account: &str,
        name: &str,
        arn: &str,
    ) -> Result<IamPolicyDelete, StoreError> {
        let _w = self.writer().await;
        let mut tx = self.pool().begin().await?;
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM iam_role_attachments WHERE account = $1 AND policy_arn = $2",
        )
        .bind(account)
        .bind(arn)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if n > 0 {
            return Ok(IamPolicyDelete::Attached);
        }
        let k = key(name);
        let done = sqlx::query("DELETE FROM iam_policies WHERE account = $1 AND name_key = $2")
            .bind(account)
            .bind(&k)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM iam_policy_versions WHERE account = $1 AND policy_key = $2")
            .bind(account)
            .bind(&k)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(if done.rows_affected() == 1 {
            IamPolicyDelete::Deleted
        } else {
            IamPolicyDelete::NotFound
        })
    }

    /// How many roles of `account` have `policy_arn` attached.
    pub async fn iam_attachment_count(
        &self,
        account: &str,
        policy_arn: &str,
    ) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM iam_role_attachments WHERE account = $1 AND policy_arn = $2",
        )
        .bind(account)
        .bind(policy_arn)
        .fetch_one(self.pool())
        .await?
        .try_get("n")?;
        Ok(n)
    }

    /// Attaches `policy_arn` to a role (idempotent) unless the role has
    /// `max_per_role` attachments already.
    pub async fn iam_attach(
        &self,
        account: &str,
        role: &str,
        policy_arn: &str,
        max_per_role: i64,
        now_ms: i64,
    ) -> Result<IamRoleWrite, StoreError> {
        let _w = self.writer().await;
        let mut tx = self.pool().begin().await?;
        let k = key(role);
        if !role_exists(&mut tx, account, &k).await? {
            return Ok(IamRoleWrite::RoleNotFound);
        }
        let rows = sqlx::query(
            "SELECT policy_arn FROM iam_role_attachments WHERE account = $1 AND role_key = $2",
        )
        .bind(account)
        .bind(&k)
        .fetch_all(&mut *tx)
        .await?;
        let attached: Vec<String> = rows
            .iter()
            .map(|r| r.try_get("policy_arn"))
            .collect::<Result<_, _>>()?;
        if attached.iter().any(|a| a == policy_arn) {
            return Ok(IamRoleWrite::Done);
        }
        if attached.len() as i64 >= max_per_role {
            return Ok(IamRoleWrite::QuotaExceeded);
        }
        sqlx::query(
            "INSERT INTO iam_role_attachments (account, role_key, policy_arn, attached_at_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(account)
        .bind(&k)
        .bind(policy_arn)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(IamRoleWrite::Done)
    }

    /// Detaches `policy_arn` from a role; `false` if it was not attached.
    pub async fn iam_detach(
        &self,
        account: &str,
        role: &str,
        policy_arn: &str,
    ) -> Result<bool, StoreError> {
        let _w = self.writer().await;
        let done = sqlx::query(
            "DELETE FROM iam_role_attachments WHERE account = $1 AND role_key = $2 AND policy_arn = $3",
        )
        .bind(account)
        .bind(key(role))
        .bind(policy_arn)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The policy ARNs attached to a role, in attachment order.
    pub async fn iam_attached(&self, account: &str, role: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT policy_arn FROM iam_role_attachments WHERE account = $1 AND role_key = $2 ORDER BY attached_at_ms, policy_arn",
        )
        .bind(account)
        .bind(key(role))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("policy_arn"))
            .collect::<Result<_, _>>()?)
    }

    /// Creates or replaces an inline policy of a role, unless the role's
    /// inline policies would then measure more than `max_total_size`
    /// (sizes as the caller measured them).
    pub async fn iam_inline_put(
        &self,
        account: &str,
        role: &str,
        name: &str,
        document: &str,
        size: i64,
        max_total_size: i64,
    ) -> Result<IamRoleWrite, StoreError> {
        let _w = self.writer().await;
        let mut tx = self.pool().begin().await?;
        let k = key(role);
        if !role_exists(&mut tx, account, &k).await? {
            return Ok(IamRoleWrite::RoleNotFound);
        }
        let others: i64 = sqlx::query(
            "SELECT COALESCE(SUM(size), 0) AS n FROM iam_role_inline_policies WHERE account = $1 AND role_key = $2 AND name <> $3",
        )
        .bind(account)
        .bind(&k)
        .bind(name)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if others + size > max_total_size {
            return Ok(IamRoleWrite::QuotaExceeded);
        }
        sqlx::query(
            "INSERT INTO iam_role_inline_policies (account, role_key, name, document, size) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (account, role_key, name) DO UPDATE SET document = excluded.document, size = excluded.size",
        )
        .bind(account)
        .bind(&k)
        .bind(name)
        .bind(document)
        .bind(size)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(IamRoleWrite::Done)
    }

    pub async fn iam_inline_get(
        &self,
        account: &str,
        role: &str,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT document FROM iam_role_inline_policies WHERE account = $1 AND role_key = $2 AND name = $3",
        )
        .bind(account)
        .bind(key(role))
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get("document")).transpose()?)
    }

    /// The names of a role's inline policies, sorted.
    pub async fn iam_inline_list(
        &self,
        account: &str,
        role: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT name FROM iam_role_inline_policies WHERE account = $1 AND role_key = $2 ORDER BY name",
        )
        .bind(account)
        .bind(key(role))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get("name"))
            .collect::<Result<_, _>>()?)
    }

    pub async fn iam_inline_delete(
        &self,
        account: &str,
        role: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let _w = self.writer().await;
        let done = sqlx::query(
            "DELETE FROM iam_role_inline_policies WHERE account = $1 AND role_key = $2 AND name = $3",
        )
        .bind(account)
        .bind(key(role))
        .bind(name)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

async fn role_exists(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    account: &str,
    role_key: &str,
) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT 1 AS one FROM iam_roles WHERE account = $1 AND name_key = $2")
        .bind(account)
        .bind(role_key)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str) -> IamRoleRow {
        IamRoleRow {
            account: "000000000000".into(),
            name: name.into(),
            id: format!("AROA{name}"),
            path: "/".into(),
            assume_role_policy: "{}".into(),
            description: None,
            max_session_duration: 3600,
            tags_json: "[]".into(),
            created_at_ms: 1,
        }
    }

    #[tokio::test]
    async fn roles_attachments_and_inline_policies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_sqlite(&dir.path().join("m.db"))
            .await
            .expect("open");
        let acct = "000000000000";
        assert_eq!(
            store
                .iam_role_insert(&role("Web"), 2)
                .await
                .expect("insert"),
            IamInsert::Inserted
        );
        assert_eq!(
            store.iam_role_insert(&role("web"), 2).await.expect("dup"),
            IamInsert::Exists
        );
        store.iam_role_insert(&role("b"), 2).await.expect("b");
        assert_eq!(
            store.iam_role_insert(&role("c"), 2).await.expect("quota"),
            IamInsert::QuotaExceeded
        );
        assert_eq!(
            store
                .iam_role_get(acct, "WEB")
                .await
                .expect("get")
                .map(|r| r.name),
            Some("Web".to_string())
        );
        let page = store.iam_role_list(acct, "/", "b", 10).await.expect("list");
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].name, "Web");

        let arn = "arn:aws:iam::aws:policy/X";
        assert_eq!(
            store
                .iam_attach(acct, "web", arn, 1, 5)
                .await
                .expect("attach"),
            IamRoleWrite::Done
        );
        assert_eq!(
            store
                .iam_attach(acct, "web", arn, 1, 6)
                .await
                .expect("again"),
            IamRoleWrite::Done
        );
        assert_eq!(
            store
                .iam_attach(acct, "web", "arn:other", 1, 6)
                .await
                .expect("quota"),
            IamRoleWrite::QuotaExceeded
        );
        assert_eq!(
            store
                .iam_attach(acct, "nope", arn, 1, 6)
                .await
                .expect("no role"),
            IamRoleWrite::RoleNotFound
        );
        assert_eq!(store.iam_attachment_count(acct, arn).await.expect("n"), 1);
        assert_eq!(
            store.iam_role_delete(acct, "web").await.expect("delete"),
            IamRoleDelete::HasAttachedPolicies
        );
        assert!(store.iam_detach(acct, "web", arn).await.expect("detach"));
        assert_eq!(
            store
                .iam_inline_put(acct, "web", "p", "{}", 8, 10)
                .await
                .expect("put"),
            IamRoleWrite::Done
        );
        assert_eq!(
            store
                .iam_inline_put(acct, "web", "q", "{}", 3, 10)
                .await
                .expect("too big"),
            IamRoleWrite::QuotaExceeded
        );
        // Replacing a policy does not count its old size.
        assert_eq!(
            store
                .iam_inline_put(acct, "web", "p", "{ }", 10, 10)
                .await
                .expect("replace"),
            IamRoleWrite::Done
        );
        assert_eq!(
            store.iam_inline_list(acct, "web").await.expect("names"),
            vec!["p".to_string()]
        );
        assert_eq!(
            store.iam_role_delete(acct, "web").await.expect("delete"),
            IamRoleDelete::HasInlinePolicies
        );
        assert!(store
            .iam_inline_delete(acct, "web", "p")
            .await
            .expect("del"));
        assert_eq!(
            store.iam_role_delete(acct, "web").await.expect("delete"),
            IamRoleDelete::Deleted
        );
        assert_eq!(
            store.iam_role_delete(acct, "web").await.expect("gone"),
            IamRoleDelete::NotFound
        );
    }
}
