//! Operator classes for the SQLite backend's catalog: the btree classes PostgreSQL has
//! for the types the backend stores (with PostgreSQL's OIDs, which stay put across
//! releases), the rows `pg_opclass` shows, and `sy_indclass`, which gives `pg_index.indclass`
//! each index column's class: the one written in CREATE INDEX (kept in the index's
//! definition, see `indexdef.rs`) or the default for the column's type. SQLAlchemy reads
//! them to reflect `postgresql_ops`.

use rusqlite::Connection;

use super::types::{
    BOOL, BPCHAR, BYTEA, DATE, FLOAT4, FLOAT8, INT2, INT4, INT8, JSONB, NAME, NUMERIC, OID, TEXT,
    TIME, TIMESTAMP, TIMESTAMPTZ, UUID, VARCHAR,
};

/// (OID, name, default, the type it is for), as PostgreSQL 15's `pg_opclass` has them
/// for btree.
const CLASSES: &[(u32, &str, bool, u32)] = &[
    (1978, "int4_ops", true, INT4),
    (1979, "int2_ops", true, INT2),
    (1981, "oid_ops", true, OID),
    (3122, "date_ops", true, DATE),
    (3123, "float8_ops", true, FLOAT8),
    (3124, "int8_ops", true, INT8),
    (3125, "numeric_ops", true, NUMERIC),
    (3126, "text_ops", true, TEXT),
    (3127, "timestamptz_ops", true, TIMESTAMPTZ),
    (3128, "timestamp_ops", true, TIMESTAMP),
    (4217, "text_pattern_ops", false, TEXT),
    (4218, "varchar_pattern_ops", false, TEXT),
    (4219, "bpchar_pattern_ops", false, BPCHAR),
    (10003, "bool_ops", true, BOOL),
    (10004, "bpchar_ops", true, BPCHAR),
    (10006, "bytea_ops", true, BYTEA),
    (10012, "float4_ops", true, FLOAT4),
    (10028, "name_ops", true, NAME),
    (10038, "time_ops", true, TIME),
    (10044, "varchar_ops", false, TEXT),
    (10065, "uuid_ops", true, UUID),
    (10088, "jsonb_ops", true, JSONB),
];

/// The `pg_opclass` view over [`CLASSES`].
pub fn view() -> String {
    let rows: Vec<String> = CLASSES
        .iter()
        .map(|(oid, name, default, ty)| {
            format!(
                "SELECT {oid} AS oid, '{name}' AS opcname, 403 AS opcmethod, 11 AS opcnamespace, \
                 {} AS opcdefault, {ty} AS opcintype, 0 AS opcfamily",
                *default as i32
            )
        })
        .collect();
    format!("pg_opclass AS {}", rows.join(" UNION ALL "))
}

/// The class an index column has: `written` (by name) or the default for `type_oid`
/// (varchar's is text's, as in PostgreSQL); 0 when neither is known.
fn class_of(written: Option<&str>, type_oid: u32) -> u32 {
    if let Some(name) = written {
        return CLASSES
            .iter()
            .find(|c| c.1.eq_ignore_ascii_case(name))
            .map_or(0, |c| c.0);
    }
    let ty = if type_oid == VARCHAR { TEXT } else { type_oid };
    CLASSES.iter().find(|c| c.2 && c.3 == ty).map_or(0, |c| c.0)
}

/// Registers `sy_indclass(index_sql, seqno, type_oid)`: the class of the index's column
/// at `seqno` (from 0).
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let flags = rusqlite::functions::FunctionFlags::SQLITE_UTF8
        | rusqlite::functions::FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("sy_indclass", 3, flags, |ctx| {
        let sql = ctx.get::<Option<String>>(0)?.unwrap_or_default();
        let seqno = ctx.get::<Option<i64>>(1)?.unwrap_or(0);
        let type_oid = ctx.get::<Option<i64>>(2)?.unwrap_or(0);
        let written = super::indexdef::opclasses(&sql)
            .into_iter()
            .nth(seqno.max(0) as usize)
            .flatten();
        Ok(class_of(written.as_deref(), type_oid as u32) as i64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_get_the_written_class_or_their_types_default() {
        assert_eq!(class_of(Some("varchar_pattern_ops"), VARCHAR), 4218);
        assert_eq!(class_of(Some("text_pattern_ops"), TEXT), 4217);
        assert_eq!(class_of(None, VARCHAR), 3126);
        assert_eq!(class_of(None, INT4), 1978);
        assert_eq!(class_of(None, 999_999), 0);
        let c = Connection::open_in_memory().unwrap();
        register(&c).unwrap();
        let sql =
            "CREATE INDEX \"u_like\" ON \"u\" (a, username /* opclass varchar_pattern_ops */)";
        let got: (i64, i64) = c
            .query_row(
                "SELECT sy_indclass(?1, 0, 23), sy_indclass(?1, 1, 1043)",
                [sql],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(got, (1978, 4218));
        let n: i64 = c
            .query_row(
                &format!(
                    "SELECT count(*) FROM (SELECT * FROM ({}) WHERE NOT opcdefault)",
                    view().replacen("pg_opclass AS ", "", 1)
                ),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 4);
    }
}
