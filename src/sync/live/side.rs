//! The two ends of a live sync and their changelogs: connecting, reading and trimming the
//! changelog, measuring the backlog, and installing or removing capture.

use std::path::PathBuf;

use serde_json::Value as Json;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::capture;
use crate::sync::schema::Table;
use crate::sync::{SyncError, pg_error};

/// One side of a live sync, connected.
pub enum Side {
    Sqlite(PathBuf),
    Postgres(Client),
}

/// A changelog entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub table: String,
    pub key: Json,
    pub op: String,
}

pub(super) fn pgerr(e: tokio_postgres::Error) -> SyncError {
    SyncError::Target(pg_error(&e))
}

pub(super) fn sqlerr(e: rusqlite::Error) -> SyncError {
    SyncError::Source(e.to_string())
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SyncError> + Send + 'static,
) -> Result<T, SyncError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SyncError::Source(e.to_string()))?
}

pub(super) fn open_sqlite(path: &std::path::Path) -> Result<rusqlite::Connection, SyncError> {
    let mut c = rusqlite::Connection::open(path).map_err(sqlerr)?;
    crate::backend::sqlite::busy::wait_10s(&mut c).map_err(sqlerr)?;
    Ok(c)
}

pub(super) fn rows_of(msgs: Vec<SimpleQueryMessage>) -> Vec<Vec<Option<String>>> {
    msgs.into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

/// Up to `limit` captured changes with an id above `after`, oldest first. Reading from a
/// cursor skips the dead entries left at the head of the changelog by earlier rounds.
pub async fn read_entries(side: &Side, limit: usize, after: i64) -> Result<Vec<Entry>, SyncError> {
    match side {
        Side::Postgres(c) => {
            // Qualified: a bare `ORDER BY id` would sort by the output column `id::text`,
            // as text ("10" before "9").
            let sql = format!(
                "SELECT c.id::text, c.tbl, c.pk::text, c.op::text FROM switchyard.changelog c WHERE c.id > {after} ORDER BY c.id LIMIT {limit}"
            );
            Ok(rows_of(c.simple_query(&sql).await.map_err(pgerr)?)
                .into_iter()
                .map(|r| Entry {
                    id: r[0].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0),
                    table: r[1].clone().unwrap_or_default(),
                    key: r[2]
                        .as_deref()
                        .and_then(|k| serde_json::from_str(k).ok())
                        .unwrap_or(Json::Null),
                    op: r[3].clone().unwrap_or_default(),
                })
                .collect())
        }
        Side::Sqlite(path) => {
            let path = path.clone();
            blocking(move || sqlite_entries(&open_sqlite(&path)?, limit, after)).await
        }
    }
}

/// [`read_entries`] on an open SQLite connection (inside the caller's read transaction).
pub(super) fn sqlite_entries(
    c: &rusqlite::Connection,
    limit: usize,
    after: i64,
) -> Result<Vec<Entry>, SyncError> {
    let mut s = c
        .prepare(
            "SELECT id, tbl, pk, op FROM _switchyard_changelog WHERE id > ?2 ORDER BY id LIMIT ?1",
        )
        .map_err(sqlerr)?;
    s.query_map([limit as i64, after], |r| {
        let k: String = r.get(2)?;
        Ok(Entry {
            id: r.get(0)?,
            table: r.get(1)?,
            key: serde_json::from_str(&k).unwrap_or(Json::Null),
            op: r.get(3)?,
        })
    })
    .map_err(sqlerr)?
    .collect::<Result<Vec<_>, _>>()
    .map_err(sqlerr)
}

/// (pending entries, age of the oldest in seconds) on a side.
pub async fn backlog(side: &Side) -> Result<(u64, f64), SyncError> {
    match side {
        Side::Postgres(c) => {
            let r = rows_of(
                c.simple_query("SELECT count(*)::text, coalesce(extract(epoch FROM clock_timestamp() - min(at)), 0)::text FROM switchyard.changelog")
                    .await
                    .map_err(pgerr)?,
            );
            let row = r.into_iter().next().unwrap_or_default();
            let n = row
                .first()
                .cloned()
                .flatten()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let age = row
                .get(1)
                .cloned()
                .flatten()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            Ok((n, age))
        }
        Side::Sqlite(path) => {
            let path = path.clone();
            blocking(move || {
                let c = open_sqlite(&path)?;
                c.query_row(
                    "SELECT count(*), coalesce((julianday('now') - julianday(min(at))) * 86400.0, 0) FROM _switchyard_changelog",
                    [],
                    |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, f64>(1)?)),
                )
                .map_err(sqlerr)
            })
            .await
        }
    }
}

/// The highest changelog id on a side (0 for an empty changelog).
pub async fn max_id(side: &Side) -> Result<i64, SyncError> {
    changelog_number(side, "SELECT coalesce(max(id), 0) FROM {changelog}").await
}

/// Entries with an id up to `id` still waiting in a side's changelog (0 once live sync
/// has applied everything captured up to then).
pub async fn pending_up_to(side: &Side, id: i64) -> Result<u64, SyncError> {
    let sql = format!("SELECT count(*) FROM {{changelog}} WHERE id <= {id}");
    Ok(changelog_number(side, &sql).await?.max(0) as u64)
}

/// The one integer `sql` answers about a side's changelog (named `{changelog}` in it).
async fn changelog_number(side: &Side, sql: &str) -> Result<i64, SyncError> {
    match side {
        Side::Postgres(c) => {
            let sql = sql.replace("{changelog}", "switchyard.changelog");
            Ok(super::record::first_text(c, &sql)
                .await?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0))
        }
        Side::Sqlite(path) => {
            let (path, sql) = (
                path.clone(),
                sql.replace("{changelog}", "_switchyard_changelog"),
            );
            blocking(move || {
                open_sqlite(&path)?
                    .query_row(&sql, [], |r| r.get(0))
                    .map_err(sqlerr)
            })
            .await
        }
    }
}

/// Removes exactly the entries that were applied.
pub async fn delete_entries(side: &Side, ids: &[i64]) -> Result<(), SyncError> {
    if ids.is_empty() {
        return Ok(());
    }
    let list = ids
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    match side {
        Side::Postgres(c) => c
            .batch_execute(&format!(
                "DELETE FROM switchyard.changelog WHERE id = ANY('{{{list}}}'::bigint[])"
            ))
            .await
            .map_err(pgerr),
        Side::Sqlite(path) => {
            let path = path.clone();
            blocking(move || {
                let c = open_sqlite(&path)?;
                c.execute(
                    &format!("DELETE FROM _switchyard_changelog WHERE id IN ({list})"),
                    [],
                )
                .map_err(sqlerr)?;
                Ok(())
            })
            .await
        }
    }
}

/// Installs capture on a side.
pub async fn install(side: &Side, tables: &[Table]) -> Result<(), SyncError> {
    match side {
        Side::Postgres(c) => capture::install_pg(c, tables).await,
        Side::Sqlite(path) => {
            let (path, tables) = (path.clone(), tables.to_vec());
            blocking(move || capture::install_sqlite(&open_sqlite(&path)?, &tables)).await
        }
    }
}

/// Removes capture from a side.
pub async fn remove(side: &Side, tables: &[Table]) -> Result<(), SyncError> {
    match side {
        Side::Postgres(c) => capture::remove_pg(c, tables).await,
        Side::Sqlite(path) => {
            let (path, tables) = (path.clone(), tables.to_vec());
            blocking(move || capture::remove_sqlite(&open_sqlite(&path)?, &tables)).await
        }
    }
}

/// Whether capture was installed on a side earlier (a live sync to resume).
pub async fn capture_installed(side: &Side) -> Result<bool, SyncError> {
    match side {
        Side::Postgres(c) => {
            let r = rows_of(
                c.simple_query("SELECT (to_regclass('switchyard.changelog') IS NOT NULL)::text")
                    .await
                    .map_err(pgerr)?,
            );
            Ok(r.first()
                .and_then(|r| r.first().cloned().flatten())
                .as_deref()
                == Some("true"))
        }
        Side::Sqlite(path) => {
            let path = path.clone();
            blocking(move || {
                let c = open_sqlite(&path)?;
                c.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_switchyard_changelog'", [], |r| r.get::<_, i64>(0))
                    .map(|n| n > 0)
                    .map_err(sqlerr)
            })
            .await
        }
    }
}

/// What switchyard still keeps on a side once live sync is finished, and how to remove
/// it (None: nothing). PostgreSQL keeps the schema `switchyard` (the copy's checkpoints,
/// the database identity, `verify --since`'s log); SQLite keeps `_switchyard_columns`,
/// `_switchyard_enums` and `_switchyard_identity_columns`, the SQLite backend's record of
/// column types, enum labels and identity keys,
/// needed while switchyard serves the file.
pub async fn leftovers(side: &Side) -> Result<Option<String>, SyncError> {
    let Side::Postgres(c) = side else {
        return Ok(None);
    };
    let names = rows_of(
        c.simple_query(
            "SELECT string_agg(c.relname, ', ' ORDER BY c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'switchyard' AND c.relkind IN ('r', 'p')",
        )
        .await
        .map_err(pgerr)?,
    )
    .first()
    .and_then(|r| r.first().cloned().flatten());
    Ok(names.map(|n| {
        let what: Vec<&str> = n
            .split(", ")
            .map(|t| match t {
                "sync_progress" => "sync_progress: the copy's checkpoints",
                "db_identity" => "db_identity: this database's identity",
                "touched" => "touched: the log `verify --since` reads",
                other => other,
            })
            .collect();
        format!(
            "schema \"switchyard\" ({}). Nothing needs it once you will not resume a copy or run `verify --since` again; to remove it: DROP SCHEMA switchyard CASCADE;",
            what.join("; ")
        )
    }))
}
