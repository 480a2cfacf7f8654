//! The SQLite end of an apply: reading current rows by key as SQLite values, converting
//! PostgreSQL text values by the SQLite backend's storage rules, and writing a batch in one
//! `BEGIN IMMEDIATE` transaction that also removes the changelog entries its own writes
//! triggered (SQLite has a single writer, so everything above the mark is ours).

use rusqlite::types::Value;
use serde_json::Value as Json;

use super::side::sqlerr;
use super::snapshot::{Rows, Work, key_text};
use crate::sync::SyncError;
use crate::sync::schema::{Table, column_list, q};

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

/// Keys per SELECT when reading rows by key: SQLite allows 32 766 bound parameters per
/// statement, and a batch holds up to 10 000 keys of any width.
const KEYS_PER_SELECT: usize = 500;

/// Current rows of `t` for `keys`, read from a SQLite side.
pub(super) fn sqlite_fetch(
    c: &rusqlite::Connection,
    t: &Table,
    keys: &[Json],
) -> Result<Vec<Vec<Value>>, SyncError> {
    let mut rows = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(KEYS_PER_SELECT) {
        fetch_chunk(c, t, chunk, &mut rows)?;
    }
    Ok(rows)
}

fn fetch_chunk(
    c: &rusqlite::Connection,
    t: &Table,
    keys: &[Json],
    out: &mut Vec<Vec<Value>>,
) -> Result<(), SyncError> {
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
            let ph: Vec<String> = (0..n)
                .map(|i| format!("?{}", params.len() + i + 1))
                .collect();
            params.extend(vals.iter().map(json_to_sqlite));
            format!("({})", ph.join(", "))
        })
        .collect();
    let sql = format!(
        "SELECT {cols} FROM {} WHERE ({}) IN (VALUES {})",
        q(&t.name),
        column_list(&t.pk),
        tuples.join(", ")
    );
    let mut s = c.prepare(&sql).map_err(sqlerr)?;
    let rows = s
        .query_map(rusqlite::params_from_iter(params.iter()), |r| {
            (0..t.columns.len())
                .map(|i| r.get::<_, Value>(i))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(sqlerr)?;
    for r in rows {
        out.push(r.map_err(sqlerr)?);
    }
    Ok(())
}

/// A PostgreSQL text value as SQLite stores it (see the storage rules in backend::sqlite::types).
pub(super) fn pg_text_to_sqlite(v: Option<&str>, pg_type: &str) -> Value {
    let Some(s) = v else { return Value::Null };
    if let Some(elem) = crate::sync::source::array::element_type(pg_type) {
        // SQLite keeps arrays as JSON (as switchyard's SQLite backend does).
        return Value::Text(
            crate::sync::source::array::pg_text_to_json(s, elem).unwrap_or_else(|| s.into()),
        );
    }
    match pg_type.split('(').next().unwrap_or("").trim() {
        "boolean" => Value::Integer((s == "t" || s == "true") as i64),
        "bigint" | "integer" | "smallint" => s
            .parse()
            .map(Value::Integer)
            .unwrap_or_else(|_| Value::Text(s.into())),
        "double precision" | "real" => s
            .parse()
            .map(Value::Real)
            .unwrap_or_else(|_| Value::Text(s.into())),
        "bytea" => {
            let h = s.strip_prefix("\\x").unwrap_or(s);
            Value::Blob(
                (0..h.len() / 2)
                    .filter_map(|i| u8::from_str_radix(&h[i * 2..i * 2 + 2], 16).ok())
                    .collect(),
            )
        }
        // The session is in UTC: a timestamptz's text ends in +00.
        "timestamp" | "timestamp without time zone" | "timestamp with time zone" => {
            Value::Text(s.trim_end_matches("+00").to_string())
        }
        _ => Value::Text(s.to_string()),
    }
}

/// A write error on a SQLite target; constraint failures (a foreign key at commit, a
/// unique key) are [`SyncError::Constraint`], which the round retries with more entries.
fn write_err(e: rusqlite::Error) -> SyncError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => {
            SyncError::Constraint(format!("applying changes to SQLite: {e}"))
        }
        _ => SyncError::Target(format!("applying changes to SQLite: {e}")),
    }
}

/// Upserts and deletes into a SQLite side inside one write transaction, removing the
/// changelog entries its own writes created.
///
/// Foreign keys are not enforced while applying. The SQLite side receives changes only
/// while it is inactive (after a cutover from it), from a PostgreSQL source that keeps its
/// foreign keys; a round may see a parent deleted before it reads its children's deletes
/// (see [`super::cascade`]), and would be refused at commit until one batch held every
/// pending entry. Left unchecked, the stale children stay until their pending entries are
/// applied — before any switch back, whose catch-up applies everything.
pub(super) fn sqlite_write(
    c: &mut rusqlite::Connection,
    work: &[Work],
    fence: Option<&str>,
) -> Result<(), SyncError> {
    c.execute_batch("PRAGMA foreign_keys = OFF")
        .map_err(write_err)?;
    let tx = c
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(write_err)?;
    if let Some(owner) = fence
        && !super::record::sqlite_fence(&tx, owner)?
    {
        return Err(super::record::fenced(owner));
    }
    if fence.is_some() {
        super::touched::sqlite_touched(&tx, &super::apply::touched_counts(work))?;
    }
    let mark: i64 = tx
        .query_row(
            "SELECT coalesce(max(id), 0) FROM _switchyard_changelog",
            [],
            |r| r.get(0),
        )
        .unwrap_or(0);
    let mut absent: Vec<(&Table, Vec<Json>)> = Vec::new();
    for w in work {
        let (t, touched) = (&w.table, &w.touched);
        let Rows::Values(rows) = &w.rows else {
            return Err(SyncError::Target(format!(
                "applying changes to {}: rows not read as SQLite values",
                t.name
            )));
        };
        if touched.truncated {
            tx.execute(&format!("DELETE FROM {}", q(&t.name)), [])
                .map_err(write_err)?;
        }
        let names: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
        let updates: Vec<String> = names
            .iter()
            .filter(|n| !t.pk.contains(n))
            .map(|n| format!("{} = excluded.{}", q(n), q(n)))
            .collect();
        let conflict = if updates.is_empty() {
            "DO NOTHING".to_string()
        } else {
            format!("DO UPDATE SET {}", updates.join(", "))
        };
        let ph: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) {conflict}",
            q(&t.name),
            column_list(&names),
            ph.join(", "),
            column_list(&t.pk)
        );
        let mut ins = tx.prepare(&sql).map_err(write_err)?;
        let pk_pos = t.pk_positions();
        let mut present = std::collections::HashSet::new();
        for r in rows {
            ins.execute(rusqlite::params_from_iter(r.iter()))
                .map_err(write_err)?;
            present.insert(key_text(&Json::Array(
                pk_pos
                    .iter()
                    .map(|&i| crate::sync::source::sqlite::key_json(&r[i]))
                    .collect(),
            )));
        }
        drop(ins);
        let gone: Vec<Json> = touched
            .keys
            .iter()
            .filter(|k| !present.contains(&key_text(k)))
            .cloned()
            .collect();
        absent.push((t, gone));
    }
    for (t, gone) in absent.iter().rev() {
        let del_sql = format!(
            "DELETE FROM {} WHERE ({}) = ({})",
            q(&t.name),
            column_list(&t.pk),
            (1..=t.pk.len())
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for k in gone {
            let vals: Vec<Value> = match k {
                Json::Array(a) => a.iter().map(json_to_sqlite).collect(),
                other => vec![json_to_sqlite(other)],
            };
            tx.execute(&del_sql, rusqlite::params_from_iter(vals.iter()))
                .map_err(write_err)?;
        }
    }
    tx.execute("DELETE FROM _switchyard_changelog WHERE id > ?1", [mark])
        .map_err(write_err)?;
    tx.commit().map_err(write_err)
}
