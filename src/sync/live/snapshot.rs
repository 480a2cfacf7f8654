//! The read half of an apply round: a batch of changelog entries and the current source
//! rows for their keys, all read in one source snapshot (a REPEATABLE READ transaction on
//! PostgreSQL, one read transaction on SQLite). Reading the rows later than the entries
//! would let a round see a transaction's effect without its entries — an account already
//! deleted while the entries for its child rows (deleted by the same transaction) are not
//! in the batch — and delete the parent while the target still holds the children.

use std::collections::{BTreeMap, HashSet};

use bytes::{BufMut, Bytes, BytesMut};
use rusqlite::types::Value;
use serde_json::Value as Json;
use tokio_postgres::Client;

use super::side::{
    Entry, Side, blocking, open_sqlite, read_entries, rows_of, sqlerr, sqlite_entries,
};
use super::sqlite_apply::{pg_text_to_sqlite, sqlite_fetch};
use crate::sync::schema::{Table, column_list, lit, q};
use crate::sync::source::cast;
use crate::sync::{SyncError, pg_error};

/// The keys of one table touched by a batch, deduplicated; and whether it was truncated.
#[derive(Default)]
pub(super) struct Touched {
    pub(super) keys: Vec<Json>,
    pub(super) truncated: bool,
}

/// The current source rows of one touched table, in the form the target takes.
pub(super) enum Rows {
    /// A complete binary COPY stream, for a PostgreSQL target.
    Copy(Bytes),
    /// A text COPY stream, between two PostgreSQL sides whose column types differ (an
    /// app's schema on one of them): each side reads the other's text.
    CopyText(Bytes),
    /// SQLite values, for a SQLite target.
    Values(Vec<Vec<Value>>),
}

/// One table's part of a batch, tables in foreign-key order.
pub(super) struct Work {
    pub(super) table: Table,
    pub(super) touched: Touched,
    pub(super) rows: Rows,
}

/// What a round read: the entries (to remove once applied) and the rows to write.
pub(super) struct Batch {
    pub(super) entries: Vec<Entry>,
    pub(super) work: Vec<Work>,
}

fn group(entries: &[Entry]) -> BTreeMap<String, Touched> {
    let mut by: BTreeMap<String, Touched> = BTreeMap::new();
    let mut seen: HashSet<(&str, String)> = HashSet::new();
    for e in entries {
        let t = by.entry(e.table.clone()).or_default();
        if e.op == "T" {
            t.truncated = true;
        } else if seen.insert((e.table.as_str(), key_text(&e.key))) {
            t.keys.push(e.key.clone());
        }
    }
    by
}

fn key_parts(k: &Json) -> Vec<String> {
    match k {
        Json::Array(a) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect(),
        other => vec![other.to_string()],
    }
}

/// A key's text form: keys compare by it (a number on one side may be a string on the
/// other).
pub(super) fn key_text(k: &Json) -> String {
    key_parts(k).join("\u{1}")
}

/// Composite keys beyond which a filter lists them as a `VALUES` list: PostgreSQL expands
/// `(a, b) IN ((…), …)` into nested expressions and fails with "stack depth limit
/// exceeded" at about 8 000 of them (a round reads up to 10 000, a retry up to 200 000).
const ROW_LIST_MAX: usize = 1_000;

/// `(a, b) IN ((…), (…))` with typed literals, for PostgreSQL; `IN (VALUES …)` for a long
/// list of composite keys.
pub(super) fn pg_key_filter(t: &Table, keys: &[Json]) -> String {
    let cols = column_list(&t.pk);
    let tuples: Vec<String> = keys
        .iter()
        .map(|k| {
            let vals: Vec<String> =
                t.pk.iter()
                    .zip(key_parts(k))
                    .map(|(c, v)| {
                        format!(
                            "{}::{}",
                            lit(&v),
                            t.column(c).map(|c| c.pg_type.as_str()).unwrap_or("text")
                        )
                    })
                    .collect();
            format!("({})", vals.join(", "))
        })
        .collect();
    if t.pk.len() > 1 && keys.len() > ROW_LIST_MAX {
        format!("({cols}) IN (VALUES {})", tuples.join(", "))
    } else {
        format!("({cols}) IN ({})", tuples.join(", "))
    }
}

/// The touched tables in `tables`' (foreign-key) order, each with its keys.
fn touched_tables(tables: &[Table], entries: &[Entry]) -> Vec<(Table, Touched)> {
    let mut grouped = group(entries);
    tables
        .iter()
        .filter_map(|t| grouped.remove(&t.name).map(|g| (t.clone(), g)))
        .collect()
}

/// Reads up to `limit` entries above `after` and the rows they point at, in one snapshot.
/// `to_pg` says which form the rows take.
pub(super) async fn read(
    from: &Side,
    to_pg: bool,
    tables: &[Table],
    limit: usize,
    after: i64,
) -> Result<Batch, SyncError> {
    match from {
        Side::Postgres(src) => {
            let srcerr = |e: tokio_postgres::Error| SyncError::Source(pg_error(&e));
            src.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await
                .map_err(srcerr)?;
            let read = read_pg(from, src, to_pg, tables, limit, after).await;
            let end = if read.is_ok() { "COMMIT" } else { "ROLLBACK" };
            let ended = src.batch_execute(end).await.map_err(srcerr);
            let batch = read?;
            ended?;
            Ok(batch)
        }
        Side::Sqlite(_) if !to_pg => Err(SyncError::Usage(
            "live sync between two SQLite databases is not supported".into(),
        )),
        Side::Sqlite(path) => {
            let (path, tables) = (path.clone(), tables.to_vec());
            blocking(move || {
                let mut c = open_sqlite(&path)?;
                let tx = c.transaction().map_err(sqlerr)?;
                let entries = sqlite_entries(&tx, limit, after)?;
                let mut work = Vec::new();
                for (table, touched) in touched_tables(&tables, &entries) {
                    let rows = if touched.keys.is_empty() {
                        Vec::new()
                    } else {
                        sqlite_fetch(&tx, &table, &touched.keys)?
                    };
                    let rows = Rows::Copy(sqlite_copy(&table, &rows)?);
                    work.push(Work {
                        table,
                        touched,
                        rows,
                    });
                }
                tx.commit().map_err(sqlerr)?;
                Ok(Batch { entries, work })
            })
            .await
        }
    }
}

async fn read_pg(
    from: &Side,
    src: &Client,
    to_pg: bool,
    tables: &[Table],
    limit: usize,
    after: i64,
) -> Result<Batch, SyncError> {
    let entries = read_entries(from, limit, after).await?;
    let mut work = Vec::new();
    for (table, touched) in touched_tables(tables, &entries) {
        let cols = column_list(
            &table
                .columns
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>(),
        );
        let select = if touched.keys.is_empty() {
            format!("SELECT {cols} FROM public.{} WHERE false", q(&table.name))
        } else {
            format!(
                "SELECT {cols} FROM public.{} WHERE {}",
                q(&table.name),
                pg_key_filter(&table, &touched.keys)
            )
        };
        let rows = if to_pg {
            let text = table.columns.iter().any(|c| c.source_type != c.pg_type);
            let format = if text { "text" } else { "binary" };
            let data = crate::sync::pgconn::copy_out_in_tx(
                src,
                &format!("COPY ({select}) TO STDOUT (FORMAT {format})"),
            )
            .await
            .map_err(|e| SyncError::Source(pg_error(&e)))?
            .freeze();
            if text {
                Rows::CopyText(data)
            } else {
                Rows::Copy(data)
            }
        } else {
            let text = rows_of(
                src.simple_query(&select)
                    .await
                    .map_err(|e| SyncError::Source(pg_error(&e)))?,
            );
            Rows::Values(
                text.iter()
                    .map(|r| {
                        table
                            .columns
                            .iter()
                            .zip(r)
                            .map(|(c, v)| pg_text_to_sqlite(v.as_deref(), &c.pg_type))
                            .collect()
                    })
                    .collect(),
            )
        };
        work.push(Work {
            table,
            touched,
            rows,
        });
    }
    Ok(Batch { entries, work })
}

/// SQLite rows as a complete binary COPY stream for `t`.
fn sqlite_copy(t: &Table, rows: &[Vec<Value>]) -> Result<Bytes, SyncError> {
    let mut out = BytesMut::new();
    cast::copy_header(&mut out);
    for r in rows {
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
}
