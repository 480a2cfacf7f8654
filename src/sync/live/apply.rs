//! Applying captured changes from one side to the other. A round reads a batch of
//! changelog entries, re-reads the current source rows for their keys (so it does not
//! matter how many times or in which order a row changed), upserts the rows that exist and
//! deletes those that do not, in one target transaction, and only then removes exactly the
//! entries it read. Idempotent: a crash between the two steps just applies them again.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::{BufMut, BytesMut};
use futures::{SinkExt, StreamExt};
use rusqlite::types::Value;
use serde_json::Value as Json;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::capture;
use crate::sync::schema::{Table, column_list, lit, q};
use crate::sync::{SyncError, cast, pg_error};

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

pub(super) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, SyncError> + Send + 'static) -> Result<T, SyncError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| SyncError::Source(e.to_string()))?
}

pub(super) fn open_sqlite(path: &std::path::Path) -> Result<rusqlite::Connection, SyncError> {
    let c = rusqlite::Connection::open(path).map_err(sqlerr)?;
    c.busy_timeout(std::time::Duration::from_secs(10)).map_err(sqlerr)?;
    Ok(c)
}

pub(super) fn rows_of(msgs: Vec<SimpleQueryMessage>) -> Vec<Vec<Option<String>>> {
    msgs.into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
            _ => None,
        })
        .collect()
}

/// Pending entries (oldest first), at most `limit`.
pub async fn read_entries(side: &Side, limit: usize) -> Result<Vec<Entry>, SyncError> {
    match side {
        Side::Postgres(c) => {
            let sql = format!("SELECT id::text, tbl, pk::text, op::text FROM switchyard.changelog ORDER BY id LIMIT {limit}");
            Ok(rows_of(c.simple_query(&sql).await.map_err(pgerr)?)
                .into_iter()
                .map(|r| Entry {
                    id: r[0].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0),
                    table: r[1].clone().unwrap_or_default(),
                    key: r[2].as_deref().and_then(|k| serde_json::from_str(k).ok()).unwrap_or(Json::Null),
                    op: r[3].clone().unwrap_or_default(),
                })
                .collect())
        }
        Side::Sqlite(path) => {
            let path = path.clone();
            blocking(move || {
                let c = open_sqlite(&path)?;
                let mut s = c.prepare("SELECT id, tbl, pk, op FROM _switchyard_changelog ORDER BY id LIMIT ?1").map_err(sqlerr)?;
                let out = s
                    .query_map([limit as i64], |r| {
                        let k: String = r.get(2)?;
                        Ok(Entry { id: r.get(0)?, table: r.get(1)?, key: serde_json::from_str(&k).unwrap_or(Json::Null), op: r.get(3)? })
                    })
                    .map_err(sqlerr)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(sqlerr)?;
                Ok(out)
            })
            .await
        }
    }
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
            let n = row.first().cloned().flatten().and_then(|v| v.parse().ok()).unwrap_or(0);
            let age = row.get(1).cloned().flatten().and_then(|v| v.parse().ok()).unwrap_or(0.0);
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

/// Removes exactly the entries that were applied.
pub async fn delete_entries(side: &Side, ids: &[i64]) -> Result<(), SyncError> {
    if ids.is_empty() {
        return Ok(());
    }
    let list = ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    match side {
        Side::Postgres(c) => c.batch_execute(&format!("DELETE FROM switchyard.changelog WHERE id = ANY('{{{list}}}'::bigint[])")).await.map_err(pgerr),
        Side::Sqlite(path) => {
            let path = path.clone();
            blocking(move || {
                let c = open_sqlite(&path)?;
                c.execute(&format!("DELETE FROM _switchyard_changelog WHERE id IN ({list})"), []).map_err(sqlerr)?;
                Ok(())
            })
            .await
        }
    }
}

/// The keys of one table touched by a batch, deduplicated; and whether it was truncated.
#[derive(Default)]
struct Touched {
    keys: Vec<Json>,
    truncated: bool,
}

fn group(entries: &[Entry]) -> BTreeMap<String, Touched> {
    let mut by: BTreeMap<String, Touched> = BTreeMap::new();
    for e in entries {
        let t = by.entry(e.table.clone()).or_default();
        if e.op == "T" {
            t.truncated = true;
        } else if !t.keys.contains(&e.key) {
            t.keys.push(e.key.clone());
        }
    }
    by
}

fn key_parts(k: &Json) -> Vec<String> {
    match k {
        Json::Array(a) => a.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect(),
        other => vec![other.to_string()],
    }
}

/// `(a, b) IN ((…), (…))` with typed literals, for PostgreSQL.
fn pg_key_filter(t: &Table, keys: &[Json]) -> String {
    let cols = column_list(&t.pk);
    let tuples: Vec<String> = keys
        .iter()
        .map(|k| {
            let vals: Vec<String> = t
                .pk
                .iter()
                .zip(key_parts(k))
                .map(|(c, v)| format!("{}::{}", lit(&v), t.column(c).map(|c| c.pg_type.as_str()).unwrap_or("text")))
                .collect();
            format!("({})", vals.join(", "))
        })
        .collect();
    format!("({cols}) IN ({})", tuples.join(", "))
}

fn json_to_sqlite(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Integer(*b as i64),
        Json::Number(n) if n.is_i64() => Value::Integer(n.as_i64().unwrap_or_default()),
        Json::Number(n) => Value::Real(n.as_f64().unwrap_or_default()),
        Json::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    }
}

/// Current rows of `t` for `keys`, read from a SQLite side.
fn sqlite_fetch(c: &rusqlite::Connection, t: &Table, keys: &[Json]) -> Result<Vec<Vec<Value>>, SyncError> {
    let cols = column_list(&t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
    let n = t.pk.len();
    let mut params = Vec::new();
    let tuples: Vec<String> = keys
        .iter()
        .map(|k| {
            let vals: Vec<Json> = match k {
                Json::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            let ph: Vec<String> = (0..n).map(|i| format!("?{}", params.len() + i + 1)).collect();
            params.extend(vals.iter().map(json_to_sqlite));
            format!("({})", ph.join(", "))
        })
        .collect();
    let sql = format!("SELECT {cols} FROM {} WHERE ({}) IN (VALUES {})", q(&t.name), column_list(&t.pk), tuples.join(", "));
    let mut s = c.prepare(&sql).map_err(sqlerr)?;
    let rows = s
        .query_map(rusqlite::params_from_iter(params.iter()), |r| (0..t.columns.len()).map(|i| r.get::<_, Value>(i)).collect::<Result<Vec<_>, _>>())
        .map_err(sqlerr)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sqlerr)?;
    Ok(rows)
}

/// A PostgreSQL text value as SQLite stores it (see the storage rules in backend::sqlite::types).
fn pg_text_to_sqlite(v: Option<&str>, pg_type: &str) -> Value {
    let Some(s) = v else { return Value::Null };
    match pg_type.split('(').next().unwrap_or("").trim() {
        "boolean" => Value::Integer((s == "t" || s == "true") as i64),
        "bigint" | "integer" | "smallint" => s.parse().map(Value::Integer).unwrap_or_else(|_| Value::Text(s.into())),
        "double precision" | "real" => s.parse().map(Value::Real).unwrap_or_else(|_| Value::Text(s.into())),
        "bytea" => {
            let h = s.strip_prefix("\\x").unwrap_or(s);
            Value::Blob((0..h.len() / 2).filter_map(|i| u8::from_str_radix(&h[i * 2..i * 2 + 2], 16).ok()).collect())
        }
        "timestamp" => Value::Text(s.trim_end_matches("+00").to_string()),
        _ => Value::Text(s.to_string()),
    }
}

/// Upserts and deletes into a SQLite side inside one write transaction, removing the
/// changelog entries its own writes created.
fn sqlite_write(c: &mut rusqlite::Connection, work: &[(Table, Touched, Vec<Vec<Value>>)]) -> Result<(), SyncError> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sqlerr)?;
    tx.execute_batch("PRAGMA defer_foreign_keys = ON").map_err(sqlerr)?;
    let mark: i64 = tx.query_row("SELECT coalesce(max(id), 0) FROM _switchyard_changelog", [], |r| r.get(0)).unwrap_or(0);
    let mut absent: Vec<(&Table, Vec<Json>)> = Vec::new();
    for (t, touched, rows) in work {
        if touched.truncated {
            tx.execute(&format!("DELETE FROM {}", q(&t.name)), []).map_err(sqlerr)?;
        }
        let names: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
        let updates: Vec<String> = names.iter().filter(|n| !t.pk.contains(n)).map(|n| format!("{} = excluded.{}", q(n), q(n))).collect();
        let conflict = if updates.is_empty() { "DO NOTHING".to_string() } else { format!("DO UPDATE SET {}", updates.join(", ")) };
        let ph: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        let sql = format!("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) {conflict}", q(&t.name), column_list(&names), ph.join(", "), column_list(&t.pk));
        let mut ins = tx.prepare(&sql).map_err(sqlerr)?;
        let pk_pos = t.pk_positions();
        let mut present: Vec<Json> = Vec::new();
        for r in rows {
            ins.execute(rusqlite::params_from_iter(r.iter())).map_err(sqlerr)?;
            present.push(Json::Array(pk_pos.iter().map(|&i| crate::sync::sqlite_read::key_json(&r[i])).collect()));
        }
        drop(ins);
        let gone: Vec<Json> = touched.keys.iter().filter(|k| !present.iter().any(|p| same_key(p, k))).cloned().collect();
        absent.push((t, gone));
    }
    for (t, gone) in absent.iter().rev() {
        let del_sql = format!("DELETE FROM {} WHERE ({}) = ({})", q(&t.name), column_list(&t.pk), (1..=t.pk.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", "));
        for k in gone {
            let vals: Vec<Value> = match k {
                Json::Array(a) => a.iter().map(json_to_sqlite).collect(),
                other => vec![json_to_sqlite(other)],
            };
            tx.execute(&del_sql, rusqlite::params_from_iter(vals.iter())).map_err(sqlerr)?;
        }
    }
    tx.execute("DELETE FROM _switchyard_changelog WHERE id > ?1", [mark]).map_err(sqlerr)?;
    tx.commit().map_err(sqlerr)
}

/// Keys compare by their text forms (a number from one side may be a string on the other).
fn same_key(a: &Json, b: &Json) -> bool {
    key_parts(a) == key_parts(b)
}

/// Applies one batch of changes from `from` to `to`. Returns how many entries it applied.
pub async fn apply_round(from: &Side, to: &mut Side, tables: &[Table], limit: usize) -> Result<usize, SyncError> {
    let entries = read_entries(from, limit).await?;
    if entries.is_empty() {
        return Ok(0);
    }
    let grouped = group(&entries);
    let ordered: Vec<&Table> = tables.iter().filter(|t| grouped.contains_key(&t.name)).collect();
    match (from, to) {
        (_, Side::Postgres(dst)) => apply_to_pg(from, dst, &ordered, &grouped).await?,
        (Side::Postgres(src), Side::Sqlite(path)) => {
            let mut work = Vec::new();
            for t in &ordered {
                let touched = &grouped[&t.name];
                let cols = column_list(&t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
                let rows = if touched.keys.is_empty() {
                    Vec::new()
                } else {
                    rows_of(src.simple_query(&format!("SELECT {cols} FROM public.{} WHERE {}", q(&t.name), pg_key_filter(t, &touched.keys))).await.map_err(pgerr)?)
                };
                let converted: Vec<Vec<Value>> =
                    rows.iter().map(|r| t.columns.iter().zip(r).map(|(c, v)| pg_text_to_sqlite(v.as_deref(), &c.pg_type)).collect()).collect();
                work.push(((*t).clone(), Touched { keys: touched.keys.clone(), truncated: touched.truncated }, converted));
            }
            let path = path.clone();
            blocking(move || {
                let mut c = open_sqlite(&path)?;
                sqlite_write(&mut c, &work)
            })
            .await?;
        }
        (Side::Sqlite(_), Side::Sqlite(_)) => return Err(SyncError::Usage("live sync between two SQLite databases is not supported".into())),
    }
    let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
    delete_entries(from, &ids).await?;
    Ok(entries.len())
}

fn ctx(table: &str) -> impl Fn(tokio_postgres::Error) -> SyncError + '_ {
    move |e| SyncError::Target(format!("applying changes to {table}: {}", pg_error(&e)))
}

/// Upserts and deletes into PostgreSQL in one transaction marked as switchyard's own.
/// Upserts go parents first and deletes children first, so foreign keys hold throughout.
async fn apply_to_pg(from: &Side, dst: &mut Client, ordered: &[&Table], grouped: &BTreeMap<String, Touched>) -> Result<(), SyncError> {
    let tx = dst.transaction().await.map_err(pgerr)?;
    tx.batch_execute("SET LOCAL switchyard.applying = 'on'").await.map_err(pgerr)?;

    for t in ordered {
        let touched = &grouped[&t.name];
        if touched.truncated {
            tx.batch_execute(&format!("TRUNCATE public.{} CASCADE", q(&t.name))).await.map_err(ctx(&t.name))?;
        }
        if touched.keys.is_empty() {
            continue;
        }
        let tmp = q(&format!("_sy_{}", t.name));
        let names: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
        tx.batch_execute(&format!("CREATE TEMP TABLE {tmp} (LIKE public.{}) ON COMMIT DROP", q(&t.name))).await.map_err(ctx(&t.name))?;
        let data = fetch_copy(from, t, &touched.keys).await?;
        let sink = tx.copy_in::<_, bytes::Bytes>(&format!("COPY {tmp} ({}) FROM STDIN (FORMAT binary)", column_list(&names))).await.map_err(ctx(&t.name))?;
        futures::pin_mut!(sink);
        sink.send(data).await.map_err(ctx(&t.name))?;
        sink.finish().await.map_err(ctx(&t.name))?;
        let updates: Vec<String> = names.iter().filter(|n| !t.pk.contains(n)).map(|n| format!("{} = EXCLUDED.{}", q(n), q(n))).collect();
        let conflict = if updates.is_empty() { "DO NOTHING".to_string() } else { format!("DO UPDATE SET {}", updates.join(", ")) };
        let cols = column_list(&names);
        tx.batch_execute(&format!(
            "INSERT INTO public.{tbl} ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM {tmp} ON CONFLICT ({pk}) {conflict}",
            tbl = q(&t.name),
            pk = column_list(&t.pk),
        ))
        .await
        .map_err(ctx(&t.name))?;
    }
    for t in ordered.iter().rev() {
        let touched = &grouped[&t.name];
        if touched.keys.is_empty() {
            continue;
        }
        tx.batch_execute(&format!(
            "DELETE FROM public.{tbl} WHERE {filter} AND ({pk}) NOT IN (SELECT {pk} FROM {tmp})",
            tbl = q(&t.name),
            pk = column_list(&t.pk),
            filter = pg_key_filter(t, &touched.keys),
            tmp = q(&format!("_sy_{}", t.name)),
        ))
        .await
        .map_err(ctx(&t.name))?;
    }
    tx.commit().await.map_err(pgerr)
}

/// The current source rows for `keys`, as a complete binary COPY stream.
async fn fetch_copy(from: &Side, t: &Table, keys: &[Json]) -> Result<bytes::Bytes, SyncError> {
    match from {
        Side::Postgres(src) => {
            let cols = column_list(&t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
            let sql = format!("COPY (SELECT {cols} FROM public.{} WHERE {}) TO STDOUT (FORMAT binary)", q(&t.name), pg_key_filter(t, keys));
            let stream = src.copy_out(&sql).await.map_err(|e| SyncError::Source(pg_error(&e)))?;
            futures::pin_mut!(stream);
            let mut data = BytesMut::new();
            while let Some(chunk) = stream.next().await {
                data.extend_from_slice(&chunk.map_err(|e| SyncError::Source(pg_error(&e)))?);
            }
            Ok(data.freeze())
        }
        Side::Sqlite(path) => {
            let (path, t, keys) = (path.clone(), t.clone(), keys.to_vec());
            blocking(move || {
                let c = open_sqlite(&path)?;
                let rows = sqlite_fetch(&c, &t, &keys)?;
                let mut out = BytesMut::new();
                cast::copy_header(&mut out);
                for r in &rows {
                    out.put_i16(t.columns.len() as i16);
                    for (v, col) in r.iter().zip(&t.columns) {
                        cast::put_field(&mut out, v, &col.pg_type).map_err(|reason| SyncError::BadValue {
                            table: t.name.clone(),
                            key: "(live)".into(),
                            column: col.name.clone(),
                            reason,
                        })?;
                    }
                }
                cast::copy_trailer(&mut out);
                Ok(out.freeze())
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

/// Empties a side's changelog (writes there before it became the source are not carried).
pub async fn clear(side: &Side) -> Result<(), SyncError> {
    match side {
        Side::Postgres(c) => c.batch_execute("DELETE FROM switchyard.changelog").await.map_err(pgerr),
        Side::Sqlite(path) => {
            let path = path.clone();
            blocking(move || {
                open_sqlite(&path)?.execute("DELETE FROM _switchyard_changelog", []).map_err(sqlerr)?;
                Ok(())
            })
            .await
        }
    }
}

/// Whether capture was installed on a side earlier (a live sync to resume).
pub async fn capture_installed(side: &Side) -> Result<bool, SyncError> {
    match side {
        Side::Postgres(c) => {
            let r = rows_of(c.simple_query("SELECT (to_regclass('switchyard.changelog') IS NOT NULL)::text").await.map_err(pgerr)?);
            Ok(r.first().and_then(|r| r.first().cloned().flatten()).as_deref() == Some("true"))
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
