//! Foreign keys after the data. Each is first added `NOT VALID` (instant: no row is read,
//! and rows written from then on are checked), then validated, several at once on
//! connections of their own (validating reads the whole child table, and checks of
//! different tables do not block each other). A key whose validation fails — a SQLite
//! source holding rows that point at missing parents, since SQLite enforces foreign keys
//! only when asked — stays `NOT VALID` and is reported with the offending key, after the
//! rest of the run (sequences, statistics) is done.

use futures::StreamExt;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::backend::url::PgTarget;
use crate::sync::schema::{self, Table, lit, q};
use crate::sync::{SyncError, pg_error, pgconn};

/// A foreign key that still has to be validated.
#[derive(Debug, Clone)]
pub struct Pending {
    pub table: String,
    pub name: String,
}

/// Whether the constraint exists on `table`, and if so whether it is validated.
async fn state(c: &Client, table: &str, name: &str) -> Result<Option<bool>, SyncError> {
    let sql = format!(
        "SELECT convalidated FROM pg_constraint WHERE conname = {} AND conrelid = to_regclass({})",
        lit(name),
        lit(&format!("public.{}", q(table)))
    );
    let rows = c
        .simple_query(&sql)
        .await
        .map_err(|e| SyncError::Target(pg_error(&e)))?;
    Ok(rows.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0).map(|v| v == "t"),
        _ => None,
    }))
}

/// Adds every missing foreign key of `tables` as NOT VALID; returns those to validate
/// (new ones, and ones an earlier run left unvalidated). A key the source itself holds
/// NOT VALID is reproduced as such and not validated.
pub async fn add(c: &Client, tables: &[Table]) -> Result<Vec<Pending>, SyncError> {
    let mut pending = Vec::new();
    for t in tables {
        for (fk, sql) in t.fks.iter().zip(schema::add_foreign_keys(t)) {
            let unvalidated_in_source = sql.trim_end().ends_with("NOT VALID");
            match state(c, &t.name, &fk.name).await? {
                Some(true) => continue,
                Some(false) => {}
                None => {
                    let sql = if unvalidated_in_source {
                        sql
                    } else {
                        format!("{sql} NOT VALID")
                    };
                    c.batch_execute(&sql).await.map_err(|e| {
                        SyncError::Target(format!(
                            "constraint {} on {}: {}",
                            fk.name,
                            t.name,
                            pg_error(&e)
                        ))
                    })?;
                }
            }
            if !unvalidated_in_source {
                pending.push(Pending {
                    table: t.name.clone(),
                    name: fk.name.clone(),
                });
            }
        }
    }
    Ok(pending)
}

/// Validates the pending keys, `parallel` at once; returns one message per key that does
/// not hold (naming an offending key), or an error if the target cannot be reached.
pub async fn validate(
    target: &PgTarget,
    pending: Vec<Pending>,
    parallel: usize,
) -> Result<Vec<String>, SyncError> {
    let results: Vec<Result<Option<(Pending, String)>, SyncError>> =
        futures::stream::iter(pending.into_iter().map(|p| validate_one(target, p)))
            .buffer_unordered(parallel.max(1))
            .collect()
            .await;
    let mut failed = Vec::new();
    for r in results {
        if let Some((_, m)) = r? {
            failed.push(m);
        }
    }
    failed.sort();
    Ok(failed)
}

/// Validates the keys one after the other; returns those that do not hold yet, each with
/// the reason.
pub async fn validate_each(
    target: &PgTarget,
    pending: Vec<Pending>,
) -> Result<Vec<(Pending, String)>, SyncError> {
    let mut left = Vec::new();
    for p in pending {
        if let Some(failed) = validate_one(target, p).await? {
            left.push(failed);
        }
    }
    Ok(left)
}

/// `VALIDATE CONSTRAINT` on a connection of its own: `None` when the key holds.
async fn validate_one(
    target: &PgTarget,
    p: Pending,
) -> Result<Option<(Pending, String)>, SyncError> {
    let c = pgconn::connect(target).await?;
    let started = std::time::Instant::now();
    let sql = format!(
        "ALTER TABLE {} VALIDATE CONSTRAINT {}",
        q(&p.table),
        q(&p.name)
    );
    match c.batch_execute(&sql).await {
        Ok(()) => {
            tracing::info!(
                table = %p.table,
                constraint = %p.name,
                seconds = started.elapsed().as_secs_f64(),
                "foreign key validated"
            );
            Ok(None)
        }
        Err(e) if e.as_db_error().is_some_and(|d| d.code().code() == "23503") => {
            let detail = e.as_db_error().and_then(|d| d.detail()).unwrap_or("");
            let msg = format!(
                "foreign key {} on {} does not hold: {}: {detail} It is kept NOT VALID \
                 (rows written from now on are checked); fix or delete those rows, then \
                 run ALTER TABLE {} VALIDATE CONSTRAINT {} (or sync again)",
                q(&p.name),
                q(&p.table),
                pg_error(&e),
                q(&p.table),
                q(&p.name)
            );
            Ok(Some((p, msg)))
        }
        Err(e) => Err(SyncError::Target(format!(
            "validating {} on {}: {}",
            p.name,
            p.table,
            pg_error(&e)
        ))),
    }
}
