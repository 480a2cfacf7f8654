//! A PostgreSQL source's schema: its tables read from the catalog (schema `public`), to be
//! reproduced with the same column types, defaults, primary keys, indexes, unique, check
//! and foreign key constraints.

use tokio_postgres::{Client, SimpleQueryMessage};

use super::{Column, ForeignKey, Index, Table, lit, q};
use crate::sync::{SyncError, pg_error};

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

pub(crate) async fn query(c: &Client, sql: &str) -> Result<Vec<Vec<Option<String>>>, SyncError> {
    c.simple_query(sql)
        .await
        .map(rows)
        .map_err(|e| SyncError::Source(pg_error(&e)))
}

fn cell(r: &[Option<String>], i: usize) -> String {
    r.get(i).cloned().flatten().unwrap_or_default()
}

/// Every base table of schema `public`.
pub async fn read_schema(c: &Client) -> Result<Vec<Table>, SyncError> {
    let names = query(c, "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1").await?;
    let mut out = Vec::new();
    for r in names {
        out.push(read_table_schema(c, &cell(&r, 0)).await?);
    }
    Ok(out)
}

async fn read_table_schema(c: &Client, name: &str) -> Result<Table, SyncError> {
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
                why: None,
                enum_type: None,
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
