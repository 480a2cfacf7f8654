//! Running one translated statement on SQLite and writing what PostgreSQL would send:
//! RowDescription (types from declared column types, translation hints or the first row),
//! DataRows in text or binary format, and the command tag.

use bytes::{BufMut, BytesMut};
use rusqlite::types::Value;

use super::error::{PgError, from_sqlite};
use super::translate::Kind;
use super::types;
use crate::protocol::{be, build};

/// One result column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub oid: u32,
    /// A `numeric(p, s)` column's scale: values are shown with exactly `s` decimals, as
    /// PostgreSQL stores them (SQLite keeps `25.00` as the number 25).
    pub scale: Option<usize>,
    /// The type modifier a table's column has (`varchar(150)`: 154), as RowDescription
    /// carries it (drivers read lengths and precisions from it); -1 otherwise.
    pub typmod: i32,
    /// The table (its catalog OID) and column number a result column reads, as
    /// RowDescription carries them (pgjdbc asks the catalog for nullability, the table's
    /// name and serial-ness by them); 0 and 0 for a computed column.
    pub origin: (u32, i16),
}

impl Column {
    pub fn new(name: impl Into<String>, oid: u32) -> Self {
        Column {
            name: name.into(),
            oid,
            scale: None,
            typmod: -1,
            origin: (0, 0),
        }
    }
}

/// The scale of a declared `numeric(p, s)` / `decimal(p, s)`.
pub(super) fn declared_scale(decl: &str) -> Option<usize> {
    let d = decl.trim().to_ascii_lowercase();
    let (base, args) = d.split_once('(')?;
    if !matches!(base.trim(), "numeric" | "decimal") {
        return None;
    }
    let mut parts = args.trim_end_matches(')').split(',');
    let _precision = parts.next()?;
    parts.next()?.trim().parse().ok()
}

/// The format code for column `i` from a Bind's result format list.
pub fn format_of(formats: &[i16], i: usize) -> i16 {
    match formats.len() {
        0 => 0,
        1 => formats[0],
        _ => formats.get(i).copied().unwrap_or(0),
    }
}

/// Boolean columns of the emulated catalog (stored as 0/1, shown as t/f).
pub(super) const CATALOG_BOOLS: [&str; 24] = [
    "attnotnull",
    "attisdropped",
    "atthasdef",
    "relhasindex",
    "relhasrules",
    "relhastriggers",
    "relrowsecurity",
    "relforcerowsecurity",
    "relispartition",
    "indisunique",
    "indisprimary",
    "indisclustered",
    "indisvalid",
    "indisready",
    "indislive",
    "rolsuper",
    "rolinherit",
    "rolcreaterole",
    "rolcreatedb",
    "rolcanlogin",
    "rolreplication",
    "rolbypassrls",
    "datistemplate",
    "datallowconn",
];

/// Looks up a PostgreSQL type remembered for (table, column), e.g. BIGSERIAL stored as INTEGER.
pub type Overrides<'a> = &'a dyn Fn(&str, &str) -> Option<u32>;

/// Looks up a (table, column)'s catalog OID and column number (see [`Column::origin`]).
pub type Origins<'a> = &'a dyn Fn(&str, &str) -> Option<(u32, i16)>;

/// Result columns of a prepared statement, typed without executing it. `default_table`
/// is the table of an INSERT/UPDATE/DELETE … RETURNING.
pub fn describe(
    stmt: &rusqlite::Statement<'_>,
    hints: &[Option<u32>],
    typed: &[Option<(u32, Option<usize>)>],
    overrides: Overrides<'_>,
    origins: Origins<'_>,
    default_table: Option<&str>,
) -> Vec<Column> {
    let decls: Vec<Option<String>> = stmt
        .columns()
        .map(|c| c.decl_type().map(str::to_string))
        .collect();
    stmt.columns_with_metadata()
        .enumerate()
        .map(|(i, c)| Column {
            name: c.name().to_string(),
            origin: c
                .table_name()
                .zip(c.origin_name())
                .and_then(|(t, col)| origins(t, col))
                .unwrap_or((0, 0)),
            typmod: match (typed.get(i).copied().flatten(), decls[i].as_deref()) {
                (None, Some(d)) if c.table_name().is_some() => super::typmod::of_decl(d) as i32,
                _ => -1,
            },
            scale: match (typed.get(i).copied().flatten(), decls[i].as_deref()) {
                (Some(t), _) => t.1,
                (None, Some(d)) => declared_scale(d),
                (None, None) => None,
            },
            // Types resolved from the schema (`catalog::source_types`) come first: a
            // catalog view's column has SQLite's guess as its declared type.
            oid: typed
                .get(i)
                .copied()
                .flatten()
                .map(|t| t.0)
                .or_else(|| {
                    decls[i].as_deref().map(|d| {
                        let table = c.table_name().or(default_table);
                        let origin = c.origin_name().unwrap_or(c.name());
                        match table {
                            Some(t) if d.eq_ignore_ascii_case("integer") => {
                                overrides(t, origin).unwrap_or(types::INT4)
                            }
                            // An array column is kept as JSON; its declared type is
                            // remembered beside it.
                            Some(t) if d.eq_ignore_ascii_case("json") => overrides(t, origin)
                                .filter(|o| super::arrays::element_of(*o).is_some())
                                .unwrap_or(types::JSON),
                            _ => types::oid_for_decltype(d),
                        }
                    })
                })
                .or_else(|| hints.get(i).copied().flatten())
                .or_else(|| CATALOG_BOOLS.contains(&c.name()).then_some(types::BOOL))
                .unwrap_or(types::TEXT),
        })
        .collect()
}

pub fn row_description(out: &mut BytesMut, cols: &[Column], formats: &[i16]) {
    build::message(out, be::ROW_DESCRIPTION, |b| {
        b.put_i16(cols.len() as i16);
        for (i, c) in cols.iter().enumerate() {
            build::cstr(b, c.name.as_bytes());
            b.put_u32(c.origin.0);
            b.put_i16(c.origin.1);
            b.put_u32(c.oid);
            b.put_i16(types::type_len(c.oid));
            b.put_i32(c.typmod);
            b.put_i16(format_of(formats, i));
        }
    });
}

/// Writes one DataRow.
pub fn data_row(
    out: &mut BytesMut,
    values: &[Value],
    cols: &[Column],
    formats: &[i16],
    zone: &super::zone::Zone,
) -> Result<(), PgError> {
    let at = out.len();
    out.put_u8(be::DATA_ROW);
    out.put_i32(0);
    out.put_i16(values.len() as i16);
    for (i, v) in values.iter().enumerate() {
        let oid = cols.get(i).map(|c| c.oid).unwrap_or(types::TEXT);
        if matches!(v, Value::Null) {
            out.put_i32(-1);
            continue;
        }
        // A timestamptz in text is shown in the session's zone (UTC needs nothing).
        let zoned = match zone {
            Some(z) if oid == types::TIMESTAMPTZ && format_of(formats, i) != 1 => {
                super::zone::shown(v, z)
            }
            _ => None,
        };
        let scaled;
        let v = match cols.get(i).and_then(|c| c.scale) {
            Some(s) if oid == types::NUMERIC && !matches!(v, Value::Blob(_)) => {
                let text = types::to_text(v, oid).unwrap_or_default();
                scaled = super::numeric::with_scale(&text, s).map(Value::Text);
                scaled.as_ref().unwrap_or(v)
            }
            _ => v,
        };
        let len_at = out.len();
        out.put_i32(0);
        if format_of(formats, i) == 1 {
            if !types::put_binary(out, v, oid) {
                // Leave no half-written DataRow in front of the error.
                out.truncate(at);
                return Err(PgError::new(
                    crate::protocol::sqlstate::FEATURE_NOT_SUPPORTED,
                    format!(
                        "binary format for type {} is not supported by the SQLite backend",
                        types::type_name(oid)
                    ),
                ));
            }
        } else if let Some(text) = zoned.or_else(|| types::to_text(v, oid)) {
            out.put_slice(text.as_bytes());
        }
        let len = (out.len() - len_at - 4) as i32;
        out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
    }
    let len = (out.len() - at - 1) as i32;
    out[at + 1..at + 5].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn owned(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef as R;
    match v {
        R::Null => Value::Null,
        R::Integer(i) => Value::Integer(i),
        R::Real(f) => Value::Real(f),
        R::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        R::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// The command tag for a statement that affected `n` rows.
pub fn tag(kind: &Kind, n: usize) -> String {
    match kind {
        Kind::Query { .. } => format!("SELECT {n}"),
        Kind::Insert => format!("INSERT 0 {n}"),
        Kind::Update => format!("UPDATE {n}"),
        Kind::Delete => format!("DELETE {n}"),
        Kind::Other { tag, .. } => tag.clone(),
        _ => String::new(),
    }
}

/// What to send for the rows of one execution.
pub struct Output<'a> {
    pub out: &'a mut BytesMut,
    /// Send RowDescription first (simple query); extended Execute does not.
    pub describe: bool,
    pub formats: &'a [i16],
    /// Types decided by an earlier Describe, if any.
    pub columns: Option<&'a [Column]>,
    pub hints: &'a [Option<u32>],
    /// Types (and numeric scales) resolved from the schema (`catalog::source_types`).
    pub typed: &'a [Option<(u32, Option<usize>)>],
    /// The session's `TimeZone`: timestamptz values are shown in it.
    pub zone: &'a super::zone::Zone,
    /// Where result columns come from (see [`Column::origin`]).
    pub origins: Origins<'a>,
}

/// Runs a prepared statement with its parameters and writes rows and CommandComplete.
pub fn run(
    stmt: &mut rusqlite::Statement<'_>,
    params: &[Value],
    kind: &Kind,
    o: Output<'_>,
    overrides: Overrides<'_>,
    table: Option<&str>,
) -> Result<(), PgError> {
    stmt.clear_bindings();
    for (i, p) in params.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, p)
            .map_err(|e| from_sqlite(&e))?;
    }
    if stmt.column_count() == 0 {
        let n = stmt.raw_execute().map_err(|e| from_sqlite(&e))?;
        build::command_complete(o.out, &tag(kind, n));
        return Ok(());
    }
    let mut cols: Vec<Column> = match o.columns {
        Some(c) => c.to_vec(),
        None => describe(stmt, o.hints, o.typed, overrides, o.origins, table),
    };
    let undeclared: Vec<bool> = stmt.columns().map(|c| c.decl_type().is_none()).collect();
    let ncols = stmt.column_count();
    let mut rows = stmt.raw_query();
    let mut n = 0usize;
    let mut values: Vec<Value> = Vec::with_capacity(ncols);
    let mut described = !o.describe;
    while let Some(row) = rows.next().map_err(|e| from_sqlite(&e))? {
        values.clear();
        for i in 0..ncols {
            values.push(row.get_ref(i).map(owned).map_err(|e| from_sqlite(&e))?);
        }
        if !described {
            infer_from_row(&mut cols, &values, &undeclared, o.hints, o.typed);
            row_description(o.out, &cols, o.formats);
            described = true;
        }
        data_row(o.out, &values, &cols, o.formats, o.zone)?;
        n += 1;
    }
    if !described {
        row_description(o.out, &cols, o.formats);
    }
    build::command_complete(o.out, &tag(kind, n));
    Ok(())
}

/// Columns without a declared type or a hint take the type of their first value.
pub(super) fn infer_from_row(
    cols: &mut [Column],
    values: &[Value],
    undeclared: &[bool],
    hints: &[Option<u32>],
    typed: &[Option<(u32, Option<usize>)>],
) {
    for (i, c) in cols.iter_mut().enumerate() {
        if undeclared.get(i) == Some(&true)
            && hints.get(i).copied().flatten().is_none()
            && typed.get(i).copied().flatten().is_none()
            && c.oid != types::BOOL
            && let Some(v) = values.get(i)
        {
            c.oid = types::oid_for_value(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_tags() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (id INTEGER, ok BOOLEAN, at TIMESTAMPTZ); INSERT INTO t VALUES (1, 1, '2024-01-01 00:00:00'), (2, 0, NULL)").unwrap();
        let mut st = c
            .prepare("SELECT id, ok, at, id * 2 FROM t ORDER BY id")
            .unwrap();
        let mut out = BytesMut::new();
        run(
            &mut st,
            &[],
            &Kind::Query { locks: false },
            Output {
                out: &mut out,
                describe: true,
                formats: &[],
                columns: None,
                hints: &[],
                typed: &[],
                zone: &None,
                origins: &|_, _| None,
            },
            &|_, _| None,
            None,
        )
        .unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("SELECT 2"), "{text}");
        assert!(text.contains("2024-01-01 00:00:00+00"), "{text}");
        assert!(text.contains("\0\0\0\x01t"), "{text}");
        let cols = describe(&st, &[], &[], &|_, _| None, &|_, _| None, None);
        assert_eq!(
            cols.iter().map(|c| c.oid).collect::<Vec<_>>(),
            vec![types::INT4, types::BOOL, types::TIMESTAMPTZ, types::TEXT]
        );
        let mut st = c.prepare("UPDATE t SET ok = 1").unwrap();
        let mut out = BytesMut::new();
        run(
            &mut st,
            &[],
            &Kind::Update,
            Output {
                out: &mut out,
                describe: true,
                formats: &[],
                columns: None,
                hints: &[],
                typed: &[],
                zone: &None,
                origins: &|_, _| None,
            },
            &|_, _| None,
            None,
        )
        .unwrap();
        assert!(String::from_utf8_lossy(&out).contains("UPDATE 2"));
    }
}
