//! Queries of the CloudWatch Logs settings: the retention of each log
//! group. Log events themselves live in files, not here.

use sqlx::Row;

use crate::{Store, StoreError};

/// A log group's retention, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRetentionRow {
    pub account: String,
    pub region: String,
    pub log_group: String,
    pub retention_days: i64,
}

impl Store {
    /// The retention in days of one log group, if one is set.
    pub async fn log_retention_get(
        &self,
        account: &str,
        region: &str,
        log_group: &str,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT retention_days FROM log_group_settings WHERE account = $1 AND region = $2 AND log_group = $3",
        )
        .bind(account)
        .bind(region)
        .bind(log_group)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(r) => r.try_get::<Option<i64>, _>("retention_days")?,
            None => None,
        })
    }

    /// Sets (`Some`) or clears (`None`) a log group's retention.
    pub async fn log_retention_set(
        &self,
        account: &str,
        region: &str,
        log_group: &str,
        retention_days: Option<i64>,
    ) -> Result<(), StoreError> {
        let _w = self.writer().await;
        match retention_days {
            Some(days) => {
                sqlx::query(
                    "INSERT INTO log_group_settings (account, region, log_group, retention_days) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (account, region, log_group) DO UPDATE SET retention_days = excluded.retention_days",
                )
                .bind(account)
                .bind(region)
                .bind(log_group)
                .bind(days)
                .execute(self.pool())
                .await?;
            }
            None => {
                sqlx::query(
                    "DELETE FROM log_group_settings WHERE account = $1 AND region = $2 AND log_group = $3",
                )
                .bind(account)
                .bind(region)
                .bind(log_group)
                .execute(self.pool())
                .await?;
            }
        }
        Ok(())
    }

    /// Every log group with a retention (for the sweeper and listings).
    pub async fn log_retention_all(&self) -> Result<Vec<LogRetentionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT account, region, log_group, retention_days FROM log_group_settings WHERE retention_days IS NOT NULL ORDER BY account, region, log_group",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LogRetentionRow {
                    account: r.try_get("account")?,
                    region: r.try_get("region")?,
                    log_group: r.try_get("log_group")?,
                    retention_days: r.try_get("retention_days")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retention_set_get_clear() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_sqlite(&dir.path().join("m.db"))
            .await
            .expect("open");
        let get = || store.log_retention_get("a", "r", "/g");
        assert_eq!(get().await.expect("get"), None);
        store
            .log_retention_set("a", "r", "/g", Some(7))
            .await
            .expect("set");
        store
            .log_retention_set("a", "r", "/g", Some(1))
            .await
            .expect("update");
        assert_eq!(get().await.expect("get"), Some(1));
        let all = store.log_retention_all().await.expect("all");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].retention_days, 1);
        store
            .log_retention_set("a", "r", "/g", None)
            .await
            .expect("clear");
        assert_eq!(get().await.expect("get"), None);
    }
}
