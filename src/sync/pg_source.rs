//! A PostgreSQL source: its tables read from the catalog (schema `public`), reproduced with
//! the same column types, defaults, primary keys, indexes, unique, check and foreign key
//! constraints; rows copied in primary-key batches as binary COPY, passed through without
//! decoding (source and target types are identical).

use bytes::{Buf, BytesMut};
use serde_json::Value as Json;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::schema::{Column, ForeignKey, Index, Table, column_list, lit, q};
use super::{SyncError, pg_error};

fn rows(msgs: Vec<SimpleQueryMessage>) -> Vec<Vec<Option<String>>> {
    msgs.into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

async fn query(c: &Client, sql: &str) -> Result<Vec<Vec<Option<String>>>, SyncError> {
    c.simple_query(sql)
        .await
        .map(rows)
        .map_err(|e| SyncError::Source(pg_error(&e)))
}

fn cell(r: &[Option<String>], i: usize) -> String {
    r.get(i).cloned().flatten().unwrap_or_default()
}

/// Every base table of schema `public`.
pub async fn read_tables(c: &Client) -> Result<Vec<Table>, SyncError> {
    let names = query(c, "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1").await?;
    let mut out = Vec::new();
    for r in names {
        out.push(read_table(c, &cell(&r, 0)).await?);
    }
    Ok(out)
}

async fn read_table(c: &Client, name: &str) -> Result<Table, SyncError> {
    let rel = lit(&format!("public.{}", q(name)));
    let cols = query(
        c,
        &format!(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity \
             FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE a.attrelid = {rel}::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
        ),
    )
    .await?;
    let columns = cols
        .iter()
        .map(|r| {
            let default = r.get(3).cloned().flatten();
            let serial = default
                .as_deref()
                .is_some_and(|d| d.starts_with("nextval("));
            let identity = serial || !cell(r, 4).is_empty();
            Column {
                name: cell(r, 0),
                source_type: cell(r, 1),
                pg_type: cell(r, 1),
                not_null: cell(r, 2) == "t",
                default: default.filter(|_| !identity),
                identity,
            }
        })
        .collect();
    let pk = query(
        c,
        &format!(
            "SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord) ON true \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indrelid = {rel}::regclass AND i.indisprimary ORDER BY k.ord"
        ),
    )
    .await?
    .iter()
    .map(|r| cell(r, 0))
    .collect();
    let indexes = query(
        c,
        &format!(
            "SELECT ic.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid \
             WHERE i.indrelid = {rel}::regclass AND NOT i.indisprimary \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint x WHERE x.conindid = i.indexrelid) ORDER BY 1"
        ),
    )
    .await?
    .iter()
    .map(|r| Index { name: cell(r, 0), columns: vec![], unique: false, definition: Some(cell(r, 1)) })
    .collect();
    let fks = query(
        c,
        &format!(
            "SELECT conname, pg_get_constraintdef(oid), contype, coalesce((SELECT relname FROM pg_class WHERE oid = confrelid), ''), {}, {} \
             FROM pg_constraint WHERE conrelid = {rel}::regclass AND contype IN ('u', 'f', 'c') ORDER BY contype DESC, conname",
            key_names("conkey", "conrelid"),
            key_names("confkey", "confrelid"),
        ),
    )
    .await?
    .iter()
    .map(|r| ForeignKey {
        name: cell(r, 0),
        // Referencing and referenced columns and table (foreign keys only): the live apply
        // and the backfill order tables by them, parents first.
        columns: split_names(&cell(r, 4)),
        ref_table: cell(r, 3),
        ref_columns: split_names(&cell(r, 5)),
        on_delete: String::new(),
        on_update: String::new(),
        definition: Some(cell(r, 1)),
    })
    .collect();
    let mut warnings = Vec::new();
    let pk: Vec<String> = pk;
    if pk.is_empty() {
        warnings.push(format!("{name}: no primary key; copied whole in one transaction, compared as a multiset, refused for live sync"));
    }
    Ok(Table {
        name: name.to_string(),
        columns,
        pk,
        indexes,
        fks,
        sequence_floor: None,
        warnings,
    })
}

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
    let cols = column_list(&t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
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
        super::pgconn::copy_out_in_tx(c, &copy).await
    } else {
        super::pgconn::copy_out_all(c, &copy).await
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

/// A constraint's columns (`conkey`/`confkey` of relation `rel`) by name, in key order,
/// separated by \x01 (a byte no sane column name holds); '' when there are none.
fn key_names(keys: &str, rel: &str) -> String {
    format!(
        "coalesce((SELECT string_agg(a.attname, E'\\x01' ORDER BY k.ord) FROM unnest({keys}) WITH ORDINALITY k(num, ord) \
         JOIN pg_attribute a ON a.attrelid = {rel} AND a.attnum = k.num), '')"
    )
}

fn split_names(s: &str) -> Vec<String> {
    s.split('\u{1}')
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}
