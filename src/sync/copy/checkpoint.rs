//! Sync progress kept in the target, in switchyard's own schema: per source and table, the
//! last primary key copied and whether the table is done. Each batch's COPY and its
//! checkpoint commit in one transaction, so a resumed sync never copies a row twice.

use serde_json::Value as Json;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::sync::SyncError;
use crate::sync::schema::lit;

/// What the target remembers about one table.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub last_key: Option<Json>,
    pub rows: i64,
    pub done: bool,
}

pub const SETUP: &str = "CREATE SCHEMA IF NOT EXISTS switchyard; \
    CREATE TABLE IF NOT EXISTS switchyard.sync_progress (\
      source text NOT NULL, table_name text NOT NULL, last_key jsonb, rows_copied bigint NOT NULL DEFAULT 0, \
      done boolean NOT NULL DEFAULT false, updated_at timestamptz NOT NULL DEFAULT now(), \
      PRIMARY KEY (source, table_name))";

fn db(e: tokio_postgres::Error) -> SyncError {
    SyncError::Target(crate::sync::pg_error(&e))
}

pub async fn setup(c: &Client) -> Result<(), SyncError> {
    c.batch_execute(SETUP).await.map_err(db)
}

/// Reads the progress of `table` for `source`.
pub async fn read(c: &Client, source: &str, table: &str) -> Result<Option<Checkpoint>, SyncError> {
    let sql = format!(
        "SELECT last_key::text, rows_copied, done FROM switchyard.sync_progress WHERE source = {} AND table_name = {}",
        lit(source),
        lit(table)
    );
    for m in c.simple_query(&sql).await.map_err(db)? {
        if let SimpleQueryMessage::Row(r) = m {
            let last_key = r.get(0).and_then(|k| serde_json::from_str(k).ok());
            let rows = r.get(1).and_then(|n| n.parse().ok()).unwrap_or(0);
            let done = r.get(2) == Some("t");
            return Ok(Some(Checkpoint {
                last_key,
                rows,
                done,
            }));
        }
    }
    Ok(None)
}

/// The statement that records progress (run inside the batch's transaction).
pub fn record_sql(source: &str, table: &str, p: &Checkpoint) -> String {
    let key = p
        .last_key
        .as_ref()
        .map(|k| format!("{}::jsonb", lit(&k.to_string())))
        .unwrap_or_else(|| "NULL".into());
    format!(
        "INSERT INTO switchyard.sync_progress (source, table_name, last_key, rows_copied, done, updated_at) \
         VALUES ({}, {}, {key}, {}, {}, now()) ON CONFLICT (source, table_name) DO UPDATE SET \
         last_key = EXCLUDED.last_key, rows_copied = EXCLUDED.rows_copied, done = EXCLUDED.done, updated_at = now()",
        lit(source),
        lit(table),
        p.rows,
        p.done
    )
}

/// Forgets the progress of every table of `source` (a forced restart).
pub async fn reset(c: &Client, source: &str) -> Result<(), SyncError> {
    c.batch_execute(&format!(
        "DELETE FROM switchyard.sync_progress WHERE source = {}",
        lit(source)
    ))
    .await
    .map_err(db)
}
