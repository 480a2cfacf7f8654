//! A PostgreSQL source's rows: copied in primary-key batches as binary COPY, passed
//! through without decoding (source and target types are identical).

use bytes::{Buf, BytesMut};
use serde_json::Value as Json;
use tokio_postgres::Client;

use crate::sync::schema::postgres::query;
use crate::sync::schema::{Table, column_list, lit, q};
use crate::sync::{SyncError, pg_error};

/// `(a, b)` and `ROW('1'::bigint, 'x'::text)` for a key stored as a JSON array of texts.
fn key_row(t: &Table, key: &Json) -> String {
    let vals: Vec<String> = match key {
        Json::Array(a) => a
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect(),
        other => vec![
            other
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| other.to_string()),
        ],
    };
    let typed: Vec<String> =
        t.pk.iter()
            .zip(vals.iter())
            .map(|(k, v)| {
                format!(
                    "{}::{}",
                    lit(v),
                    t.column(k).map(|c| c.pg_type.as_str()).unwrap_or("text")
                )
            })
            .collect();
    format!("ROW({})", typed.join(", "))
}

/// One PostgreSQL batch: a complete binary COPY stream and the last key in it.
pub struct PgBatch {
    pub data: BytesMut,
    pub rows: usize,
    pub last_key: Option<Json>,
    pub last: bool,
}

/// Copies the next batch of `t` after `after` out of the source. With `in_tx` the caller
/// holds a transaction open (a shared snapshot) and the batch is read inside it; otherwise
/// the batch is a read-only transaction of its own.
pub async fn next_batch(
    c: &Client,
    t: &Table,
    after: Option<&Json>,
    batch_rows: usize,
    in_tx: bool,
) -> Result<PgBatch, SyncError> {
    // A column going into an existing target column of another type (an app's schema) is
    // read as that type, so the binary COPY fits it (and a value that cannot be converted
    // is the server's error, naming the type).
    let cols = t
        .columns
        .iter()
        .map(|c| {
            if c.source_type == c.pg_type {
                q(&c.name)
            } else {
                format!("{}::{}", q(&c.name), c.pg_type)
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    let pk = column_list(&t.pk);
    let src = |e: tokio_postgres::Error| SyncError::Source(pg_error(&e));
    let lower = after.map(|k| format!("ROW({pk}) > {}", key_row(t, k)));
    let (select, last_key, last) = if t.pk.is_empty() {
        (
            format!("SELECT {cols} FROM public.{}", q(&t.name)),
            None,
            true,
        )
    } else {
        let texts: Vec<String> = t.pk.iter().map(|k| format!("{}::text", q(k))).collect();
        let bound_sql = format!(
            "SELECT {} FROM public.{} {} ORDER BY {pk} OFFSET {} LIMIT 1",
            texts.join(", "),
            q(&t.name),
            lower
                .as_ref()
                .map(|l| format!("WHERE {l}"))
                .unwrap_or_default(),
            batch_rows.saturating_sub(1)
        );
        let bound = query(c, &bound_sql).await?.into_iter().next();
        let mut conds: Vec<String> = lower.into_iter().collect();
        let key = bound.map(|r| {
            Json::Array(
                r.into_iter()
                    .map(|v| Json::from(v.unwrap_or_default()))
                    .collect(),
            )
        });
        if let Some(k) = &key {
            conds.push(format!("ROW({pk}) <= {}", key_row(t, k)));
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let is_last = key.is_none();
        (
            format!(
                "SELECT {cols} FROM public.{} {filter} ORDER BY {pk}",
                q(&t.name)
            ),
            key,
            is_last,
        )
    };
    let copy = format!("COPY ({select}) TO STDOUT (FORMAT binary)");
    let data = if in_tx {
        crate::sync::pgconn::copy_out_in_tx(c, &copy).await
    } else {
        crate::sync::pgconn::copy_out_all(c, &copy).await
    }
    .map_err(src)?;
    let rows = count_tuples(&data);
    let last_key = match (last_key, last) {
        (Some(k), _) => Some(k),
        (None, _) if rows > 0 && !t.pk.is_empty() => {
            // The final batch: its last key is the table's maximum.
            let texts: Vec<String> = t.pk.iter().map(|k| format!("{}::text", q(k))).collect();
            let sql = format!(
                "SELECT {} FROM public.{} ORDER BY {pk} DESC LIMIT 1",
                texts.join(", "),
                q(&t.name)
            );
            query(c, &sql).await?.into_iter().next().map(|r| {
                Json::Array(
                    r.into_iter()
                        .map(|v| Json::from(v.unwrap_or_default()))
                        .collect(),
                )
            })
        }
        _ => None,
    };
    Ok(PgBatch {
        data,
        rows,
        last_key,
        last,
    })
}

/// Counts the tuples of a binary COPY stream.
pub fn count_tuples(data: &[u8]) -> usize {
    let mut b = data;
    if b.len() < 19 {
        return 0;
    }
    b.advance(11 + 4);
    let ext = b.get_i32() as usize;
    b.advance(ext.min(b.len()));
    let mut n = 0;
    while b.len() >= 2 {
        let fields = b.get_i16();
        if fields < 0 {
            break;
        }
        for _ in 0..fields {
            let len = b.get_i32();
            if len > 0 {
                b.advance((len as usize).min(b.len()));
            }
        }
        n += 1;
    }
    n
}
