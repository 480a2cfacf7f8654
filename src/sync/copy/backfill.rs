//! Copying one table into the target: batches of binary COPY, each committed together
//! with its checkpoint. Tables without a primary key are copied whole in one transaction.

use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use futures::SinkExt;
use tokio_postgres::Client;

use super::checkpoint::{self, Checkpoint};
use crate::backend::url::BackendUrl;
use crate::sync::progress::TableProgress;
use crate::sync::schema::{Table, column_list, q};
use crate::sync::source::sqlite::{self, Reject};
use crate::sync::source::{cast, postgres as pg_rows};
use crate::sync::{SyncError, pg_error};

/// How a table's copy went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableOutcome {
    pub table: String,
    pub rows: i64,
    pub rejected: usize,
    pub seconds: f64,
}

pub struct CopyOptions {
    pub batch_rows: usize,
    /// A snapshot exported by a PostgreSQL source (`pg_export_snapshot()`): every table
    /// is read in it, so the copy is one consistent state of the source.
    pub snapshot: Option<String>,

    pub skip_bad_rows: bool,
    pub source_id: String,
    pub rejects: Arc<Mutex<Vec<Reject>>>,
}

fn tgt(e: tokio_postgres::Error) -> SyncError {
    SyncError::Target(pg_error(&e))
}

fn copy_sql(t: &Table) -> String {
    let cols = column_list(&t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
    format!("COPY {} ({cols}) FROM STDIN (FORMAT binary)", q(&t.name))
}

/// Sends one complete binary COPY stream inside the open transaction.
async fn send_copy(
    tx: &tokio_postgres::Transaction<'_>,
    t: &Table,
    data: bytes::Bytes,
) -> Result<u64, SyncError> {
    let sink = tx
        .copy_in::<_, bytes::Bytes>(&copy_sql(t))
        .await
        .map_err(tgt)?;
    futures::pin_mut!(sink);
    sink.send(data).await.map_err(tgt)?;
    sink.finish()
        .await
        .map_err(|e| SyncError::Target(format!("table {}: {}", t.name, pg_error(&e))))
}

fn framed(rows: BytesMut) -> bytes::Bytes {
    let mut data = BytesMut::with_capacity(rows.len() + 21);
    cast::copy_header(&mut data);
    data.extend_from_slice(&rows);
    cast::copy_trailer(&mut data);
    data.freeze()
}

/// Copies `t` from `source` into `target`, continuing from `start` if given.
pub async fn copy_table(
    target: &mut Client,
    source: &BackendUrl,
    t: &Table,
    start: Option<Checkpoint>,
    opts: &CopyOptions,
    progress: &mut TableProgress,
) -> Result<TableOutcome, SyncError> {
    let mut rows = start.as_ref().map(|p| p.rows).unwrap_or(0);
    progress.inc(rows.max(0) as u64);
    let rejected_before = opts.rejects.lock().map(|r| r.len()).unwrap_or(0);
    if t.pk.is_empty() {
        rows = copy_whole(target, source, t, opts, progress).await?;
    } else {
        let after = start.and_then(|p| p.last_key);
        rows = match source {
            BackendUrl::Sqlite(path) => {
                copy_sqlite_batches(target, path, t, after, rows, opts, progress).await?
            }
            BackendUrl::Postgres(pt) => {
                copy_pg_batches(target, pt, t, after, rows, opts, progress).await?
            }
        };
    }
    progress.finish();
    let rejected = opts.rejects.lock().map(|r| r.len()).unwrap_or(0) - rejected_before;
    Ok(TableOutcome {
        table: t.name.clone(),
        rows,
        rejected,
        seconds: progress.elapsed().as_secs_f64(),
    })
}

async fn copy_sqlite_batches(
    target: &mut Client,
    path: &std::path::Path,
    t: &Table,
    after: Option<serde_json::Value>,
    mut rows: i64,
    opts: &CopyOptions,
    progress: &mut TableProgress,
) -> Result<i64, SyncError> {
    let (tx_batches, mut rx) = tokio::sync::mpsc::channel(2);
    let (path, table, batch_rows, skip) = (
        path.to_path_buf(),
        t.clone(),
        opts.batch_rows,
        opts.skip_bad_rows,
    );
    let reader = tokio::task::spawn_blocking(move || {
        sqlite::read_rows(&path, &table, after, batch_rows, skip, tx_batches)
    });
    while let Some(batch) = rx.recv().await {
        let batch = batch?;
        let copied = (batch.rows - batch.rejects.len()) as i64;
        rows += copied;
        if let Ok(mut r) = opts.rejects.lock() {
            r.extend(batch.rejects);
        }
        let cp = Checkpoint {
            last_key: batch.last_key,
            rows,
            done: false,
        };
        let tx = target.transaction().await.map_err(tgt)?;
        if copied > 0 {
            send_copy(&tx, t, framed(batch.payload)).await?;
        }
        tx.batch_execute(&checkpoint::record_sql(&opts.source_id, &t.name, &cp))
            .await
            .map_err(tgt)?;
        tx.commit().await.map_err(tgt)?;
        progress.inc(batch.rows as u64);
    }
    reader
        .await
        .map_err(|e| SyncError::Source(format!("reader of {} failed: {e}", t.name)))?;
    mark_done(target, opts, t, rows).await?;
    Ok(rows)
}

async fn copy_pg_batches(
    target: &mut Client,
    pt: &crate::backend::url::PgTarget,
    t: &Table,
    mut after: Option<serde_json::Value>,
    mut rows: i64,
    opts: &CopyOptions,
    progress: &mut TableProgress,
) -> Result<i64, SyncError> {
    let src = crate::sync::pgconn::connect(pt).await?;
    let in_tx = begin_snapshot(&src, opts.snapshot.as_deref()).await?;
    loop {
        let b = pg_rows::next_batch(&src, t, after.as_ref(), opts.batch_rows, in_tx).await?;
        rows += b.rows as i64;
        let cp = Checkpoint {
            last_key: b.last_key.clone(),
            rows,
            done: false,
        };
        let tx = target.transaction().await.map_err(tgt)?;
        if b.rows > 0 {
            send_copy(&tx, t, b.data.freeze()).await?;
        }
        tx.batch_execute(&checkpoint::record_sql(&opts.source_id, &t.name, &cp))
            .await
            .map_err(tgt)?;
        tx.commit().await.map_err(tgt)?;
        progress.inc(b.rows as u64);
        if b.last || b.rows == 0 {
            break;
        }
        after = b.last_key;
    }
    end_snapshot(&src, in_tx).await?;
    mark_done(target, opts, t, rows).await?;
    Ok(rows)
}

/// Starts a read-only transaction in the shared snapshot, if there is one. Returns
/// whether a transaction is open.
async fn begin_snapshot(src: &Client, snapshot: Option<&str>) -> Result<bool, SyncError> {
    let Some(id) = snapshot else {
        return Ok(false);
    };
    src.batch_execute(&format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}",
        crate::sync::schema::lit(id)
    ))
    .await
    .map_err(|e| SyncError::Source(format!("importing the copy's snapshot: {}", pg_error(&e))))?;
    Ok(true)
}

async fn end_snapshot(src: &Client, in_tx: bool) -> Result<(), SyncError> {
    if in_tx {
        src.batch_execute("COMMIT")
            .await
            .map_err(|e| SyncError::Source(pg_error(&e)))?;
    }
    Ok(())
}

/// A table without a primary key: everything in one transaction, after emptying it.
async fn copy_whole(
    target: &mut Client,
    source: &BackendUrl,
    t: &Table,
    opts: &CopyOptions,
    progress: &mut TableProgress,
) -> Result<i64, SyncError> {
    let tx = target.transaction().await.map_err(tgt)?;
    tx.batch_execute(&format!("TRUNCATE {}", q(&t.name)))
        .await
        .map_err(tgt)?;
    let mut rows = 0i64;
    match source {
        BackendUrl::Sqlite(path) => {
            let (tx_batches, mut rx) = tokio::sync::mpsc::channel(2);
            let (path, table, batch_rows, skip) =
                (path.clone(), t.clone(), opts.batch_rows, opts.skip_bad_rows);
            let reader = tokio::task::spawn_blocking(move || {
                sqlite::read_rows(&path, &table, None, batch_rows, skip, tx_batches)
            });
            while let Some(batch) = rx.recv().await {
                let batch = batch?;
                rows += (batch.rows - batch.rejects.len()) as i64;
                progress.inc(batch.rows as u64);
                if let Ok(mut r) = opts.rejects.lock() {
                    r.extend(batch.rejects);
                }
                send_copy(&tx, t, framed(batch.payload)).await?;
            }
            reader
                .await
                .map_err(|e| SyncError::Source(format!("reader of {} failed: {e}", t.name)))?;
        }
        BackendUrl::Postgres(pt) => {
            let src = crate::sync::pgconn::connect(pt).await?;
            let in_tx = begin_snapshot(&src, opts.snapshot.as_deref()).await?;
            let b = pg_rows::next_batch(&src, t, None, usize::MAX, in_tx).await?;
            end_snapshot(&src, in_tx).await?;
            rows = b.rows as i64;
            progress.inc(b.rows as u64);
            send_copy(&tx, t, b.data.freeze()).await?;
        }
    }
    let cp = Checkpoint {
        last_key: None,
        rows,
        done: true,
    };
    tx.batch_execute(&checkpoint::record_sql(&opts.source_id, &t.name, &cp))
        .await
        .map_err(tgt)?;
    tx.commit().await.map_err(tgt)?;
    Ok(rows)
}

async fn mark_done(
    target: &Client,
    opts: &CopyOptions,
    t: &Table,
    rows: i64,
) -> Result<(), SyncError> {
    let last = checkpoint::read(target, &opts.source_id, &t.name)
        .await?
        .and_then(|p| p.last_key);
    let cp = Checkpoint {
        last_key: last,
        rows,
        done: true,
    };
    target
        .batch_execute(&checkpoint::record_sql(&opts.source_id, &t.name, &cp))
        .await
        .map_err(tgt)
}
