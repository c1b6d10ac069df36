//! The queue of accepted asynchronous invocations.
//!
//! These writes take the writer lock but leave the store's generation
//! alone: queue rows are not part of any function's configuration, so
//! they must not invalidate what invokes keep in memory.

use sqlx::Row;

use crate::{Store, StoreError};

/// One accepted `Event` invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncEventRow {
    /// The request id the caller was given.
    pub id: String,
    pub account: String,
    pub region: String,
    /// The function name or ARN as invoked.
    pub function_ref: String,
    pub qualifier: Option<String>,
    pub payload: String,
    pub client_context: Option<String>,
    pub received_ms: i64,
}

impl Store {
    /// Records an accepted event (once per id).
    pub async fn async_event_insert(&self, e: &AsyncEventRow) -> Result<(), StoreError> {
        let _w = self.write_lock.lock().await;
        sqlx::query(
            "INSERT INTO async_events (id, account, region, function_ref, qualifier, payload, client_context, received_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&e.id)
        .bind(&e.account)
        .bind(&e.region)
        .bind(&e.function_ref)
        .bind(&e.qualifier)
        .bind(&e.payload)
        .bind(&e.client_context)
        .bind(e.received_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Forgets a finished (or dropped) event.
    pub async fn async_event_delete(&self, id: &str) -> Result<(), StoreError> {
        let _w = self.write_lock.lock().await;
        sqlx::query("DELETE FROM async_events WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Every event not finished yet, oldest first.
    pub async fn async_events_all(&self) -> Result<Vec<AsyncEventRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, account, region, function_ref, qualifier, payload, client_context, received_ms
             FROM async_events ORDER BY received_ms, id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AsyncEventRow {
                    id: r.try_get("id")?,
                    account: r.try_get("account")?,
                    region: r.try_get("region")?,
                    function_ref: r.try_get("function_ref")?,
                    qualifier: r.try_get("qualifier")?,
                    payload: r.try_get("payload")?,
                    client_context: r.try_get("client_context")?,
                    received_ms: r.try_get("received_ms")?,
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
    async fn events_are_kept_until_deleted_without_touching_the_generation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.db");
        let store = Store::open_sqlite(&path).await.expect("open");
        let e = AsyncEventRow {
            id: "r-1".into(),
            account: "000000000000".into(),
            region: "us-east-1".into(),
            function_ref: "f".into(),
            qualifier: None,
            payload: "{}".into(),
            client_context: None,
            received_ms: 5,
        };
        let before = store.generation();
        store.async_event_insert(&e).await.expect("insert");
        store.async_event_insert(&e).await.expect("again: no-op");
        assert_eq!(store.generation(), before);
        drop(store);
        let store = Store::open_sqlite(&path).await.expect("reopen");
        assert_eq!(store.async_events_all().await.expect("all"), vec![e]);
        store.async_event_delete("r-1").await.expect("delete");
        assert!(store.async_events_all().await.expect("all").is_empty());
    }
}
