//! Versioned schema migrations, embedded in the binary and applied in
//! order, each in its own transaction together with its version row.

use sqlx::{Executor, Row};

use crate::{Store, StoreError};

/// (version, SQL). Append only: a released migration is never edited.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_registry.sql")),
    (2, include_str!("../migrations/0002_functions.sql")),
    (3, include_str!("../migrations/0003_event_invoke.sql")),
    (4, include_str!("../migrations/0004_iam.sql")),
    (5, include_str!("../migrations/0005_logs.sql")),
    (6, include_str!("../migrations/0006_async_events.sql")),
];

pub(crate) async fn run(store: &Store) -> Result<(), StoreError> {
    let _w = store.writer().await;
    let pool = store.pool();
    // Every pending migration, and the table that records them, commit in
    // one transaction: one fsync on a fresh data directory, and a crash
    // mid-way leaves the schema as it was.
    let mut tx = pool.begin().await?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at_ms BIGINT NOT NULL)",
    )
    .await?;
    let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        .fetch_one(&mut *tx)
        .await?;
    let current: i64 = row.try_get("v")?;
    let known = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if current > known {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known,
        });
    }
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        let migration = |source| StoreError::Migration {
            version: *version,
            source,
        };
        for statement in split_statements(sql) {
            tx.execute(statement.as_str()).await.map_err(migration)?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at_ms) VALUES ($1, $2)")
            .bind(*version)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(migration)?;
        applied.push(*version);
    }
    tx.commit().await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "applied metadata schema migrations");
    }
    Ok(())
}

/// Splits a migration file into statements on `;` at line ends, dropping
/// `--` comments. Migrations contain no string literals with semicolons.
fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let line = line.split("--").next().unwrap_or("").trim_end();
        if line.trim().is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.ends_with(';') {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrations_apply_once_and_reopen_is_idempotent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("meta.db");
        let store = Store::open_sqlite(&path).await.expect("open");
        store.close().await;
        let store = Store::open_sqlite(&path).await.expect("reopen");
        let row = sqlx::query("SELECT COUNT(*) AS n FROM schema_migrations")
            .fetch_one(store.pool())
            .await
            .expect("count");
        let n: i64 = row.try_get("n").expect("n");
        assert_eq!(n, MIGRATIONS.len() as i64);
    }

    #[test]
    fn splits_statements_and_drops_comments() {
        let parts =
            split_statements("-- c\nCREATE TABLE a (x TEXT); -- t\n\nCREATE INDEX i ON a (x);\n");
        assert_eq!(parts.len(), 2);
        assert!(parts[0].starts_with("CREATE TABLE a"));
    }
}
