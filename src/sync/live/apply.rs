//! Applying captured changes from one side to the other. A round reads a batch of
//! changelog entries, re-reads the current source rows for their keys (so it does not
//! matter how many times or in which order a row changed), upserts the rows that exist and
//! deletes those that do not, in one target transaction, and only then removes exactly the
//! entries it read. Idempotent: a crash between the two steps just applies them again.

use std::collections::BTreeMap;

use bytes::{BufMut, BytesMut};
use futures::SinkExt;
use rusqlite::types::Value;
use serde_json::Value as Json;
use tokio_postgres::Client;

use super::side::{
    Entry, Side, blocking, delete_entries, open_sqlite, pgerr, read_entries, rows_of,
};
use super::sqlite_apply::{pg_text_to_sqlite, sqlite_fetch, sqlite_write};
use crate::sync::schema::{Table, column_list, lit, q};
use crate::sync::{SyncError, cast, pg_error};

/// The keys of one table touched by a batch, deduplicated; and whether it was truncated.
#[derive(Default)]
pub(super) struct Touched {
    pub(super) keys: Vec<Json>,
    pub(super) truncated: bool,
}

fn group(entries: &[Entry]) -> BTreeMap<String, Touched> {
    let mut by: BTreeMap<String, Touched> = BTreeMap::new();
    let mut seen: std::collections::HashSet<(&str, String)> = std::collections::HashSet::new();
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

/// `(a, b) IN ((…), (…))` with typed literals, for PostgreSQL.
fn pg_key_filter(t: &Table, keys: &[Json]) -> String {
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
    format!("({cols}) IN ({})", tuples.join(", "))
}

/// A key's text form: keys compare by it (a number on one side may be a string on the
/// other).
pub(super) fn key_text(k: &Json) -> String {
    key_parts(k).join("\u{1}")
}

/// A round read from `after`, and when it fails (a child whose parent committed late below
/// the cursor breaks a foreign key), the same round again from the start of the changelog.
/// Rounds are idempotent and applied in one target transaction, so the retry is safe.
pub async fn apply_round_from(
    from: &Side,
    to: &mut Side,
    tables: &[Table],
    limit: usize,
    after: i64,
) -> Result<(usize, i64), SyncError> {
    if after == 0 {
        return apply_round(from, to, tables, limit, 0).await;
    }
    match apply_round(from, to, tables, limit, after).await {
        Ok(r) => Ok(r),
        Err(e) => {
            tracing::debug!(error = %e, "round from the cursor failed; retrying from the start");
            apply_round(from, to, tables, limit, 0).await
        }
    }
}

/// Applies one batch of changes from `from` to `to`, read above id `after`. Returns how
/// many entries it applied and the highest id among them.
pub async fn apply_round(
    from: &Side,
    to: &mut Side,
    tables: &[Table],
    limit: usize,
    after: i64,
) -> Result<(usize, i64), SyncError> {
    let started = std::time::Instant::now();
    let entries = read_entries(from, limit, after).await?;
    let Some(last) = entries.last().map(|e| e.id) else {
        return Ok((0, after));
    };
    let read_ms = started.elapsed().as_secs_f64() * 1e3;
    let grouped = group(&entries);
    let ordered: Vec<&Table> = tables
        .iter()
        .filter(|t| grouped.contains_key(&t.name))
        .collect();
    match (from, to) {
        (_, Side::Postgres(dst)) => apply_to_pg(from, dst, &ordered, &grouped).await?,
        (Side::Postgres(src), Side::Sqlite(path)) => {
            let mut work = Vec::new();
            for t in &ordered {
                let touched = &grouped[&t.name];
                let cols =
                    column_list(&t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
                let rows = if touched.keys.is_empty() {
                    Vec::new()
                } else {
                    rows_of(
                        src.simple_query(&format!(
                            "SELECT {cols} FROM public.{} WHERE {}",
                            q(&t.name),
                            pg_key_filter(t, &touched.keys)
                        ))
                        .await
                        .map_err(pgerr)?,
                    )
                };
                let converted: Vec<Vec<Value>> = rows
                    .iter()
                    .map(|r| {
                        t.columns
                            .iter()
                            .zip(r)
                            .map(|(c, v)| pg_text_to_sqlite(v.as_deref(), &c.pg_type))
                            .collect()
                    })
                    .collect();
                work.push((
                    (*t).clone(),
                    Touched {
                        keys: touched.keys.clone(),
                        truncated: touched.truncated,
                    },
                    converted,
                ));
            }
            let path = path.clone();
            blocking(move || {
                let mut c = open_sqlite(&path)?;
                sqlite_write(&mut c, &work)
            })
            .await?;
        }
        (Side::Sqlite(_), Side::Sqlite(_)) => {
            return Err(SyncError::Usage(
                "live sync between two SQLite databases is not supported".into(),
            ));
        }
    }
    let applied_ms = started.elapsed().as_secs_f64() * 1e3;
    let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
    delete_entries(from, &ids).await?;
    tracing::debug!(
        after,
        first = entries.first().map(|e| e.id).unwrap_or(0),
        last,
        entries = entries.len(),
        read_ms,
        applied_ms,
        total_ms = started.elapsed().as_secs_f64() * 1e3,
        "live sync round"
    );
    Ok((entries.len(), last))
}

fn ctx(table: &str) -> impl Fn(tokio_postgres::Error) -> SyncError + '_ {
    move |e| SyncError::Target(format!("applying changes to {table}: {}", pg_error(&e)))
}

/// Upserts and deletes into PostgreSQL in one transaction marked as switchyard's own.
/// Upserts go parents first and deletes children first, so foreign keys hold throughout.
async fn apply_to_pg(
    from: &Side,
    dst: &mut Client,
    ordered: &[&Table],
    grouped: &BTreeMap<String, Touched>,
) -> Result<(), SyncError> {
    let tx = dst.transaction().await.map_err(pgerr)?;
    tx.batch_execute("SET LOCAL switchyard.applying = 'on'")
        .await
        .map_err(pgerr)?;

    for t in ordered {
        let touched = &grouped[&t.name];
        if touched.truncated {
            tx.batch_execute(&format!("TRUNCATE public.{} CASCADE", q(&t.name)))
                .await
                .map_err(ctx(&t.name))?;
        }
        if touched.keys.is_empty() {
            continue;
        }
        let tmp = q(&format!("_sy_{}", t.name));
        let names: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE {tmp} (LIKE public.{}) ON COMMIT DROP",
            q(&t.name)
        ))
        .await
        .map_err(ctx(&t.name))?;
        let data = fetch_copy(from, t, &touched.keys).await?;
        let sink = tx
            .copy_in::<_, bytes::Bytes>(&format!(
                "COPY {tmp} ({}) FROM STDIN (FORMAT binary)",
                column_list(&names)
            ))
            .await
            .map_err(ctx(&t.name))?;
        futures::pin_mut!(sink);
        sink.send(data).await.map_err(ctx(&t.name))?;
        sink.finish().await.map_err(ctx(&t.name))?;
        let updates: Vec<String> = names
            .iter()
            .filter(|n| !t.pk.contains(n))
            .map(|n| format!("{} = EXCLUDED.{}", q(n), q(n)))
            .collect();
        let conflict = if updates.is_empty() {
            "DO NOTHING".to_string()
        } else {
            format!("DO UPDATE SET {}", updates.join(", "))
        };
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
            let sql = format!(
                "COPY (SELECT {cols} FROM public.{} WHERE {}) TO STDOUT (FORMAT binary)",
                q(&t.name),
                pg_key_filter(t, keys)
            );
            let data = crate::sync::pgconn::copy_out_all(src, &sql)
                .await
                .map_err(|e| SyncError::Source(pg_error(&e)))?;
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
                        cast::put_field(&mut out, v, &col.pg_type).map_err(|reason| {
                            SyncError::BadValue {
                                table: t.name.clone(),
                                key: "(live)".into(),
                                column: col.name.clone(),
                                reason,
                            }
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
