//! Reading a SQLite table in primary-key order, batch by batch (keyset pagination, so a
//! batch costs the same at the end of a big table as at the start), converting each row
//! into PostgreSQL binary COPY format on a blocking thread. Batches go through a bounded
//! channel, so memory stays at a few batches whatever the table size.

use std::path::Path;

use bytes::{BufMut, BytesMut};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use serde_json::Value as Json;
use tokio::sync::mpsc;

use crate::sync::SyncError;
use crate::sync::schema::{Table, column_list, q};
use crate::sync::source::cast;

/// A row that could not be converted.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reject {
    pub table: String,
    pub key: Json,
    pub column: String,
    pub reason: String,
}

/// COPY rows ready to send.
#[derive(Debug, Default)]
pub struct Batch {
    pub payload: BytesMut,
    pub rows: usize,
    pub last_key: Option<Json>,
    pub rejects: Vec<Reject>,
}

pub fn key_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Integer(i) => Json::from(*i),
        Value::Real(f) => Json::from(*f),
        Value::Text(s) => Json::from(s.clone()),
        Value::Blob(b) => Json::from(b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
    }
}

fn json_value(j: &Json) -> Value {
    match j {
        Json::Number(n) if n.is_i64() => Value::Integer(n.as_i64().unwrap_or_default()),
        Json::Number(n) => Value::Real(n.as_f64().unwrap_or_default()),
        Json::String(s) => Value::Text(s.clone()),
        Json::Null => Value::Null,
        other => Value::Text(other.to_string()),
    }
}

/// Opens the source read-only.
pub fn open(path: &Path) -> Result<Connection, SyncError> {
    let mut c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| SyncError::Source(format!("{}: {e}", path.display())))?;
    crate::backend::sqlite::busy::wait_10s(&mut c).map_err(|e| SyncError::Source(e.to_string()))?;
    Ok(c)
}

/// Opens the source read-only for whole-table scans (verify): the first 256 MB of the file
/// are read through a memory map instead of a copy per page (~5% of a verify's time).
/// Mapped pages count in the process's RSS though they are the OS page cache, which is
/// why sync, whose memory is bounded by a target, does not map.
pub fn open_mapped(path: &Path) -> Result<Connection, SyncError> {
    let c = open(path)?;
    c.pragma_update(None, "mmap_size", 256i64 << 20)
        .map_err(|e| SyncError::Source(e.to_string()))?;
    Ok(c)
}

/// The keyset query for a table: rows after the given key, in key order.
fn batch_sql(t: &Table, has_start: bool) -> String {
    let cols = column_list(&t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
    if t.pk.is_empty() {
        return format!("SELECT {cols} FROM {}", q(&t.name));
    }
    let pk = column_list(&t.pk);
    let placeholders: Vec<String> = (1..=t.pk.len()).map(|i| format!("?{i}")).collect();
    let filter = if has_start {
        format!("WHERE ({pk}) > ({}) ", placeholders.join(", "))
    } else {
        String::new()
    };
    let limit = if has_start { t.pk.len() + 1 } else { 1 };
    format!(
        "SELECT {cols} FROM {} {filter}ORDER BY {pk} LIMIT ?{limit}",
        q(&t.name)
    )
}

/// Reads `t` after `start` in batches of `batch_rows`, sending each into `tx`.
pub fn read_rows(
    path: &Path,
    t: &Table,
    start: Option<Json>,
    batch_rows: usize,
    skip_bad: bool,
    tx: mpsc::Sender<Result<Batch, SyncError>>,
) {
    let result = (|| -> Result<(), SyncError> {
        let conn = open(path)?;
        let types: Vec<&str> = t.columns.iter().map(|c| c.pg_type.as_str()).collect();
        let pk_pos = t.pk_positions();
        let mut last: Option<Vec<Value>> = start.map(|j| match j {
            Json::Array(a) => a.iter().map(json_value).collect(),
            other => vec![json_value(&other)],
        });
        loop {
            let sql = batch_sql(t, last.is_some());
            let mut stmt = conn
                .prepare_cached(&sql)
                .map_err(|e| SyncError::Source(format!("{}: {e}", t.name)))?;
            let mut params: Vec<Value> = last.clone().unwrap_or_default();
            if !t.pk.is_empty() {
                params.push(Value::Integer(batch_rows as i64));
            }
            let mut rows = stmt
                .query(rusqlite::params_from_iter(params.iter()))
                .map_err(|e| SyncError::Source(e.to_string()))?;
            let mut batch = Batch::default();
            let mut row_buf = BytesMut::new();
            let mut values: Vec<Value> = Vec::with_capacity(types.len());
            while let Some(row) = rows.next().map_err(|e| SyncError::Source(e.to_string()))? {
                values.clear();
                for i in 0..types.len() {
                    values.push(
                        row.get::<_, Value>(i)
                            .map_err(|e| SyncError::Source(e.to_string()))?,
                    );
                }
                let key = Json::Array(pk_pos.iter().map(|&i| key_json(&values[i])).collect());
                row_buf.clear();
                row_buf.put_i16(types.len() as i16);
                let mut bad = None;
                for (i, v) in values.iter().enumerate() {
                    if matches!(v, Value::Null) && t.columns[i].not_null {
                        // (An existing target column's NOT NULL, or SQLite's own, which a
                        // non-integer key does not enforce.)
                        bad = Some((
                            t.columns[i].name.clone(),
                            "NULL in a NOT NULL column".into(),
                        ));
                        break;
                    }
                    if let Err(reason) = cast::put_field(&mut row_buf, v, types[i]) {
                        bad = Some((t.columns[i].name.clone(), reason));
                        break;
                    }
                }
                match bad {
                    None => batch.payload.extend_from_slice(&row_buf),
                    Some((column, reason)) if skip_bad => batch.rejects.push(Reject {
                        table: t.name.clone(),
                        key: key.clone(),
                        column,
                        reason,
                    }),
                    Some((column, reason)) => {
                        return Err(SyncError::BadValue {
                            table: t.name.clone(),
                            key: key.to_string(),
                            column,
                            reason,
                        });
                    }
                }
                batch.rows += 1;
                batch.last_key = Some(key);
                if t.pk.is_empty() && batch.rows >= batch_rows {
                    let full = std::mem::take(&mut batch);
                    if tx.blocking_send(Ok(full)).is_err() {
                        return Ok(());
                    }
                }
            }
            let end = t.pk.is_empty() || batch.rows < batch_rows;
            if let Some(k) = &batch.last_key {
                last = Some(match k {
                    Json::Array(a) => a.iter().map(json_value).collect(),
                    other => vec![json_value(other)],
                });
            }
            if (batch.rows > 0 || !batch.rejects.is_empty()) && tx.blocking_send(Ok(batch)).is_err()
            {
                return Ok(());
            }
            if end {
                return Ok(());
            }
        }
    })();
    if let Err(e) = result {
        let _ = tx.blocking_send(Err(e));
    }
}

/// A quick guess at a table's row count, for progress: its largest rowid (one descent
/// of the B-tree, where `count(*)` reads every page; exact while ids are dense), or the
/// count for a table without rowids.
pub fn estimate(conn: &Connection, table: &str) -> Result<i64, SyncError> {
    let sql = format!("SELECT coalesce(max(rowid), 0) FROM {}", q(table));
    conn.query_row(&sql, [], |r| r.get(0))
        .or_else(|_| count(conn, table))
}

/// Row counts per table (for planning and the dry run).
pub fn count(conn: &Connection, table: &str) -> Result<i64, SyncError> {
    conn.query_row(&format!("SELECT count(*) FROM {}", q(table)), [], |r| {
        r.get(0)
    })
    .map_err(|e| SyncError::Source(format!("{table}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_estimates_come_from_the_rowid_or_a_count() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE dense (id INTEGER PRIMARY KEY, v);
             INSERT INTO dense (v) VALUES (1), (2), (3);
             CREATE TABLE empty (id INTEGER PRIMARY KEY);
             CREATE TABLE keyed (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
             INSERT INTO keyed VALUES ('a', 1), ('b', 2);
             CREATE TABLE \"odd\"\"name\" (rowid TEXT);
             INSERT INTO \"odd\"\"name\" VALUES ('x'), ('y');",
        )
        .unwrap();
        assert_eq!(estimate(&c, "dense").unwrap(), 3);
        assert_eq!(estimate(&c, "empty").unwrap(), 0);
        // No rowid, or a column that hides it: counted.
        assert_eq!(estimate(&c, "keyed").unwrap(), 2);
        assert_eq!(estimate(&c, "odd\"name").unwrap(), 2);
        assert!(estimate(&c, "missing").is_err());
    }
}
