//! Queries of the Lambda control plane: functions, published versions and
//! aliases. Configurations are opaque JSON documents here.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Store, StoreError};

/// One function as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionRow {
    pub id: String,
    pub account: String,
    pub region: String,
    pub name: String,
    pub created_at_ms: i64,
    pub latest_json: String,
    pub next_version: i64,
    pub reserved_concurrency: Option<i64>,
    pub tags_json: String,
    pub policy_json: Option<String>,
    pub event_invoke_json: Option<String>,
}

const COLUMNS: &str = "id, account, region, name, created_at_ms, latest_json, next_version, reserved_concurrency, tags_json, policy_json, event_invoke_json";

fn from_row(r: &AnyRow) -> Result<FunctionRow, sqlx::Error> {
    Ok(FunctionRow {
        id: r.try_get("id")?,
        account: r.try_get("account")?,
        region: r.try_get("region")?,
        name: r.try_get("name")?,
        created_at_ms: r.try_get("created_at_ms")?,
        latest_json: r.try_get("latest_json")?,
        next_version: r.try_get("next_version")?,
        reserved_concurrency: r.try_get("reserved_concurrency")?,
        tags_json: r.try_get("tags_json")?,
        policy_json: r.try_get("policy_json")?,
        event_invoke_json: r.try_get("event_invoke_json")?,
    })
}

impl Store {
    /// Inserts a function; `Ok(false)` when the name is taken.
    pub async fn function_insert(&self, f: &FunctionRow) -> Result<bool, StoreError> {
        let _w = self.writer().await;
        let done = sqlx::query(
            "INSERT INTO functions (id, account, region, name, created_at_ms, latest_json, next_version, reserved_concurrency, tags_json, policy_json)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (account, region, name) DO NOTHING",
        )
        .bind(&f.id)
        .bind(&f.account)
        .bind(&f.region)
        .bind(&f.name)
        .bind(f.created_at_ms)
        .bind(&f.latest_json)
        .bind(f.next_version)
        .bind(f.reserved_concurrency)
        .bind(&f.tags_json)
        .bind(&f.policy_json)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn function_get(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<FunctionRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM functions WHERE account = $1 AND region = $2 AND name = $3"
        );
        let row = sqlx::query(&sql)
            .bind(account)
            .bind(region)
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(from_row).transpose()?)
    }

    pub async fn function_list(
        &self,
        account: &str,
        region: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<FunctionRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM functions WHERE account = $1 AND region = $2 AND name > $3 ORDER BY name LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(account)
            .bind(region)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Every function (for recovery at start-up).
    pub async fn function_all(&self) -> Result<Vec<FunctionRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM functions ORDER BY account, region, name");
        let rows = sqlx::query(&sql).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
    }

    /// Rewrites a function's mutable columns; `false` if it is gone.
    pub async fn function_update(&self, f: &FunctionRow) -> Result<bool, StoreError> {
        let _w = self.writer().await;
        let done = sqlx::query(
            "UPDATE functions SET latest_json = $2, next_version = $3, reserved_concurrency = $4, tags_json = $5, policy_json = $6, event_invoke_json = $7 WHERE id = $1",
        )
        .bind(&f.id)
        .bind(&f.latest_json)
        .bind(f.next_version)
        .bind(f.reserved_concurrency)
        .bind(&f.tags_json)
        .bind(&f.policy_json)
        .bind(&f.event_invoke_json)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a function with its versions and aliases.
    pub async fn function_delete(&self, id: &str) -> Result<bool, StoreError> {
        let _w = self.writer().await;
        let mut tx = self.pool().begin().await?;
        for table in ["function_versions", "function_aliases"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE function_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query("DELETE FROM functions WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores a published version and advances the function's counter, in
    /// one transaction.
    pub async fn function_publish(
        &self,
        f: &FunctionRow,
        version: i64,
        config_json: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let _w = self.writer().await;
        let mut tx = self.pool().begin().await?;
        sqlx::query("INSERT INTO function_versions (function_id, version, config_json, created_at_ms) VALUES ($1, $2, $3, $4)")
            .bind(&f.id)
            .bind(version)
            .bind(config_json)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE functions SET next_version = $2, latest_json = $3 WHERE id = $1")
            .bind(&f.id)
            .bind(version + 1)
            .bind(&f.latest_json)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn function_version_get(
        &self,
        function_id: &str,
        version: i64,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT config_json FROM function_versions WHERE function_id = $1 AND version = $2",
        )
        .bind(function_id)
        .bind(version)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get("config_json")).transpose()?)
    }

    /// Published versions in order, strictly after `after`.
    pub async fn function_versions(
        &self,
        function_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, config_json FROM function_versions WHERE function_id = $1 AND version > $2 ORDER BY version LIMIT $3",
        )
        .bind(function_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.try_get("version")?, r.try_get("config_json")?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    pub async fn function_version_delete(
        &self,
        function_id: &str,
        version: i64,
    ) -> Result<bool, StoreError> {
        let _w = self.writer().await;
        let done =
            sqlx::query("DELETE FROM function_versions WHERE function_id = $1 AND version = $2")
                .bind(function_id)
                .bind(version)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Inserts (`create`) or replaces an alias; with `create`, `Ok(false)`
    /// when it exists.
    pub async fn alias_put(
        &self,
        function_id: &str,
        name: &str,
        config_json: &str,
        create: bool,
    ) -> Result<bool, StoreError> {
        let _w = self.writer().await;
        let sql = if create {
            "INSERT INTO function_aliases (function_id, name, config_json) VALUES ($1, $2, $3) ON CONFLICT (function_id, name) DO NOTHING"
        } else {
            "UPDATE function_aliases SET config_json = $3 WHERE function_id = $1 AND name = $2"
        };
        let done = sqlx::query(sql)
            .bind(function_id)
            .bind(name)
            .bind(config_json)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn alias_get(
        &self,
        function_id: &str,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT config_json FROM function_aliases WHERE function_id = $1 AND name = $2",
        )
        .bind(function_id)
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get("config_json")).transpose()?)
    }

    pub async fn alias_list(&self, function_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, config_json FROM function_aliases WHERE function_id = $1 ORDER BY name",
        )
        .bind(function_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("config_json")?)))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    pub async fn alias_delete(&self, function_id: &str, name: &str) -> Result<bool, StoreError> {
        let _w = self.writer().await;
        let done = sqlx::query("DELETE FROM function_aliases WHERE function_id = $1 AND name = $2")
            .bind(function_id)
            .bind(name)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn functions_versions_and_aliases_round_trip() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = Store::open_sqlite(&dir.path().join("m.db"))
            .await
            .expect("open");
        let mut f = FunctionRow {
            id: "f1".into(),
            account: "000000000000".into(),
            region: "us-east-1".into(),
            name: "demo".into(),
            created_at_ms: 1,
            latest_json: "{}".into(),
            next_version: 1,
            reserved_concurrency: None,
            tags_json: "{}".into(),
            policy_json: None,
            event_invoke_json: None,
        };
        assert!(s.function_insert(&f).await.expect("insert"));
        assert!(!s.function_insert(&f).await.expect("dup"));
        f.latest_json = "{\"v\":1}".into();
        s.function_publish(&f, 1, "{\"published\":1}", 2)
            .await
            .expect("publish");
        let got = s
            .function_get("000000000000", "us-east-1", "demo")
            .await
            .expect("get")
            .expect("some");
        assert_eq!(got.next_version, 2);
        assert_eq!(
            s.function_versions("f1", 0, 10)
                .await
                .expect("versions")
                .len(),
            1
        );
        assert!(s.alias_put("f1", "live", "{}", true).await.expect("alias"));
        assert!(!s
            .alias_put("f1", "live", "{}", true)
            .await
            .expect("alias dup"));
        assert!(s.function_delete("f1").await.expect("delete"));
        assert!(s
            .alias_get("f1", "live")
            .await
            .expect("alias get")
            .is_none());
    }
}
