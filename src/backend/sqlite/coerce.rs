//! Timestamps written as PostgreSQL stores them. PostgreSQL reads a value written into a
//! `timestamptz` column as an instant (`'2024-05-06 07:08:09+02'` is 05:08:09 UTC) and
//! one written into a `timestamp` column without its offset; SQLite keeps whatever text
//! it is given, so comparisons, `::text` and sorting would see the text as written. A
//! constant or parameter an INSERT or UPDATE writes into such a column is passed through
//! `sy_timestamptz`/`sy_timestamp` (registered here), which store the canonical form
//! (`YYYY-MM-DD HH:MM:SS[.ffffff]+00`, resp. without the offset).

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value as SqlValue;
use sqlparser::ast::{
    Assignment, AssignmentTarget, Expr, Insert, OnConflictAction, OnInsert, SetExpr, Statement,
    TableFactor, TableObject, Update, Value,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::types;

/// A column's name, PostgreSQL type and, for `numeric(p, s)`, scale.
pub type Col = (String, u32, Option<usize>);

/// A table's columns and their PostgreSQL types, by the table's name.
pub type Schema<'a> = &'a dyn Fn(&str) -> Vec<Col>;

/// A [`Schema`] that knows no table (translation without a database).
pub fn no_schema(_: &str) -> Vec<Col> {
    Vec::new()
}

/// The columns of `table` on `conn`, typed by their declared types (an array column,
/// which SQLite declares JSON, by the array type switchyard remembers for it).
pub fn columns_of(conn: &Connection, table: &str) -> Vec<Col> {
    let Ok(mut st) = conn.prepare_cached(
        "SELECT p.name, p.type, (SELECT s.pg_type FROM _switchyard_columns s \
         WHERE s.tbl = ?1 AND s.col = p.name AND s.pg_type LIKE '%[]') FROM pragma_table_info(?1) p",
    ) else {
        return Vec::new();
    };
    st.query_map([table], |r| {
        let decl: String = r.get::<_, Option<String>>(1)?.unwrap_or_default();
        let scale = super::exec::declared_scale(&decl);
        let oid = match r.get::<_, Option<String>>(2)? {
            Some(array) => {
                super::arrays::array_of(types::oid_for_decltype(array.trim_end_matches("[]")))
            }
            None => types::oid_for_decltype(&decl),
        };
        Ok((r.get::<_, String>(0)?, oid, scale))
    })
    .map(|rows| rows.filter_map(Result::ok).collect())
    .unwrap_or_default()
}

/// The columns of `tables` whose type `keep` takes, by name (lower case, once each), with
/// their type; a name typed differently in two of the tables is left out (ambiguous).
pub fn columns_typed(
    tables: &[String],
    schema: Schema<'_>,
    keep: impl Fn(u32) -> bool,
) -> Vec<Col> {
    let cols: Vec<Col> = tables.iter().flat_map(|t| schema(t)).collect();
    let mut out: Vec<Col> = cols
        .iter()
        .filter(|(n, ty, s)| {
            keep(*ty)
                && cols
                    .iter()
                    .all(|(m, t, z)| !m.eq_ignore_ascii_case(n) || (t, z) == (ty, s))
        })
        .map(|(n, ty, s)| (n.to_lowercase(), *ty, *s))
        .collect();
    out.dedup();
    out
}

fn column_type(e: &Expr, cols: &[Col]) -> Option<u32> {
    let name = match e {
        Expr::Identifier(i) => &i.value,
        Expr::CompoundIdentifier(p) => &p.last()?.value,
        Expr::Nested(inner) => return column_type(inner, cols),
        _ => return None,
    };
    type_of(cols, name)
}

/// A constant or parameter compared with a timestamp column of `tables` (`=`, `<`, …,
/// `BETWEEN`, `IN`) is read as that column's type first, so `t > '… 10:00:00+05'` compares
/// instants, as PostgreSQL does, not text.
pub fn comparisons(stmt: &mut Statement, tables: &[String], schema: Schema<'_>) {
    use sqlparser::ast::BinaryOperator as B;
    let mut cols: Option<Vec<Col>> = None;
    let _ = sqlparser::ast::visit_expressions_mut(stmt, |e| {
        let is_cmp = |op: &B| matches!(op, B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq);
        // Only what compares a constant or parameter costs a look at the tables.
        let interesting = match e {
            Expr::BinaryOp { op, left, right } => is_cmp(op) && (constant(left) || constant(right)),
            Expr::Between { low, high, .. } => constant(low) || constant(high),
            Expr::InList { list, .. } => list.iter().any(constant),
            _ => false,
        };
        if !interesting {
            return std::ops::ControlFlow::<()>::Continue(());
        }
        let cols =
            cols.get_or_insert_with(|| columns_typed(tables, schema, |ty| wrapper(ty).is_some()));
        match e {
            Expr::BinaryOp { left, right, .. } => {
                if let Some(ty) = column_type(left, cols) {
                    wrap(right, Some(ty));
                } else if let Some(ty) = column_type(right, cols) {
                    wrap(left, Some(ty));
                }
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                let ty = column_type(expr, cols);
                wrap(low, ty);
                wrap(high, ty);
            }
            Expr::InList { expr, list, .. } => {
                let ty = column_type(expr, cols);
                list.iter_mut().for_each(|v| wrap(v, ty));
            }
            _ => {}
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

/// Wraps what `stmt` writes into timestamp, numeric(p, s) and array columns.
pub fn writes(stmt: &mut Statement, schema: Schema<'_>) {
    match stmt {
        Statement::Insert(ins) => insert(ins, schema),
        Statement::Update(u) => update(u, schema),
        _ => {}
    }
}

fn last_part(name: &sqlparser::ast::ObjectName) -> String {
    super::translate::ident_name(name)
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_string()
}

fn type_of(cols: &[Col], name: &str) -> Option<u32> {
    cols.iter()
        .find(|(c, _, _)| c.eq_ignore_ascii_case(name))
        .map(|c| c.1)
}

fn insert(ins: &mut Insert, schema: Schema<'_>) {
    let TableObject::TableName(name) = &ins.table else {
        return;
    };
    let cols = schema(&last_part(name));
    if !cols.iter().any(coerced) {
        return;
    }
    let targets: Vec<Option<&Col>> = if ins.columns.is_empty() {
        cols.iter().map(Some).collect()
    } else {
        ins.columns
            .iter()
            .map(|c| column(&cols, &c.to_string().replace('"', "")))
            .collect()
    };
    if let Some(SetExpr::Values(v)) = ins.source.as_mut().map(|q| q.body.as_mut()) {
        for row in &mut v.rows {
            for (e, col) in row.iter_mut().zip(&targets) {
                written(e, *col);
            }
        }
    }
    if let Some(OnInsert::OnConflict(c)) = &mut ins.on
        && let OnConflictAction::DoUpdate(d) = &mut c.action
    {
        assignments(&mut d.assignments, &cols);
    }
}

fn update(u: &mut Update, schema: Schema<'_>) {
    let TableFactor::Table { name, .. } = &u.table.relation else {
        return;
    };
    let cols = schema(&last_part(name));
    assignments(&mut u.assignments, &cols);
}

fn assignments(list: &mut [Assignment], cols: &[Col]) {
    for a in list {
        if let AssignmentTarget::ColumnName(n) = &a.target {
            written(&mut a.value, column(cols, &last_part(n)));
        }
    }
}

/// Whether what is written into `c` is changed on the way: timestamps made canonical,
/// numeric(p, s) values rounded to s decimals (PostgreSQL stores `1.005` in a
/// numeric(10,2) as 1.01).
fn coerced(c: &Col) -> bool {
    wrapper(c.1).is_some() || c.1 == types::NUMERIC
}

fn column<'c>(cols: &'c [Col], name: &str) -> Option<&'c Col> {
    cols.iter().find(|c| c.0.eq_ignore_ascii_case(name))
}

/// A value written into `col`, as PostgreSQL would store it.
fn written(e: &mut Expr, col: Option<&Col>) {
    match col {
        Some((_, types::NUMERIC, scale)) => stored(e, *scale),
        Some(c) => wrap(e, Some(c.1)),
        None => {}
    }
}

/// `e` as a numeric column stores it: rounded to `scale` decimals, and refused rather
/// than rounded where SQLite cannot hold it exactly (`sy_dec_store`). A number literal
/// goes in as its text, before SQLite reads it as a double. NULL and DEFAULT stay.
fn stored(e: &mut Expr, scale: Option<usize>) {
    let keep = match e {
        Expr::Value(v) => matches!(v.value, Value::Null),
        Expr::Identifier(i) => i.value.eq_ignore_ascii_case("default"),
        _ => false,
    };
    if keep {
        return;
    }
    let dialect = PostgreSqlDialect {};
    if let Ok(wrapped) = Parser::new(&dialect)
        .try_with_sql(&match scale {
            Some(scale) => format!("sy_dec_store(sy_dec(NULL, {scale}))"),
            None => "sy_dec_store(NULL)".to_string(),
        })
        .and_then(|mut p| p.parse_expr())
    {
        let mut wrapped = wrapped;
        // The NULL placeholder is replaced by `e` itself (not re-parsed: its parameters
        // and casts stay as the rest of the translation expects them).
        let value = match &*e {
            Expr::Value(v) if matches!(v.value, Value::Number(..)) => {
                let Value::Number(n, _) = &v.value else {
                    return;
                };
                Expr::Value(Value::SingleQuotedString(n.clone()).into())
            }
            other => other.clone(),
        };
        let _ = sqlparser::ast::visit_expressions_mut(&mut wrapped, |x| {
            if matches!(x, Expr::Value(v) if matches!(v.value, Value::Null)) {
                *x = value.clone();
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        *e = wrapped;
    }
}

fn wrapper(ty: u32) -> Option<&'static str> {
    match ty {
        types::TIMESTAMPTZ => Some("sy_timestamptz"),
        types::TIMESTAMP => Some("sy_timestamp"),
        // PostgreSQL's input rules (`input.rs`): 'abc' is no integer.
        types::INT2 => Some("sy_int2"),
        types::INT4 => Some("sy_int4"),
        types::INT8 => Some("sy_int8"),
        types::BOOL => Some("sy_bool"),
        types::FLOAT8 | types::FLOAT4 => Some("sy_float8"),
        types::UUID => Some("sy_uuid"),
        types::DATE => Some("sy_date"),
        // Stored as PostgreSQL prints it ('1 day 2 hours' → '1 day 02:00:00').
        types::INTERVAL => Some("sy_interval"),
        // An array literal (`'{x,y}'`) stored as the JSON array parameters are stored as.
        t if super::arrays::element_of(t).is_some() => Some("sy_array"),
        _ => None,
    }
}

/// A string constant or a parameter.
fn constant(e: &Expr) -> bool {
    matches!(e, Expr::Value(v)
        if matches!(v.value, Value::SingleQuotedString(_) | Value::Placeholder(_)))
}

/// A string constant or a parameter written into (or compared with) a column of a type
/// with input rules of its own, wrapped in the function that applies them.
fn wrap(e: &mut Expr, ty: Option<u32>) {
    let Some(f) = ty.and_then(wrapper) else {
        return;
    };
    // A fraction written into an integer column is rounded (`1.5` → 2) and a number out of
    // its range refused, as PostgreSQL does.
    let limit = match f {
        "sy_int2" => i16::MAX.into(),
        "sy_int4" => i32::MAX.into(),
        _ => i64::MAX,
    };
    let unfit = f.starts_with("sy_int")
        && matches!(e, Expr::Value(v) if matches!(&v.value, Value::Number(n, _)
            if n.parse::<i64>().map_or(true, |i| i > limit || i < -limit - 1)));
    if !constant(e) && !unfit {
        return;
    }
    // An array's element type keeps numbers numbers (`3 = ANY(nums)` compares them).
    let elem = ty
        .and_then(super::arrays::element_of)
        .map(|t| format!(", '{}'", types::type_name(t)))
        .unwrap_or_default();
    let dialect = PostgreSqlDialect {};
    if let Ok(wrapped) = Parser::new(&dialect)
        .try_with_sql(&format!("{f}({e}{elem})"))
        .and_then(|mut p| p.parse_expr())
    {
        *e = wrapped;
    }
}

/// The canonical stored text of a timestamp (`tz`: in UTC with `+00`); anything it cannot
/// read (`infinity`, a number) is kept as given.
fn canonical(v: SqlValue, tz: bool) -> SqlValue {
    let SqlValue::Text(s) = &v else { return v };
    types::canonical_timestamp(s, tz).map_or(v, SqlValue::Text)
}

/// A timestamptz written without an offset is wall-clock time in the session's zone.
fn canonical_in(v: SqlValue, zone: &super::zone::Zone) -> SqlValue {
    if let (SqlValue::Text(s), Some(z)) = (&v, zone) {
        let t = s.trim().replacen('T', " ", 1);
        if !t.ends_with(['Z', 'z'])
            && !types::has_offset(&t)
            && let Some(us) = super::datetime::parse_timestamp_micros(&t)
        {
            let utc = super::zone::to_utc(us, z);
            return SqlValue::Text(format!(
                "{}+00",
                super::datetime::format_timestamp_micros(utc)
            ));
        }
    }
    canonical(v, true)
}

/// Registers `sy_timestamptz` (reading the session's `TimeZone` from `settings`) and
/// `sy_timestamp`.
pub fn register(
    conn: &Connection,
    settings: std::sync::Arc<std::sync::Mutex<super::setvar::Settings>>,
) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    // The answer follows `SET TimeZone`, which no statement changes while it runs: still
    // deterministic for SQLite, which may then use it where a schema needs that.
    // A timestamptz made text inside SQL (`t::text`, `'at ' || t`): in the session's zone.
    let s = settings.clone();
    conn.create_scalar_function("sy_tz_text", 1, det, move |ctx| {
        let v = ctx.get::<SqlValue>(0)?;
        let zone = s.lock().unwrap_or_else(|e| e.into_inner()).zone.clone();
        Ok(
            match zone.as_ref().and_then(|z| super::zone::shown(&v, z)) {
                Some(t) => SqlValue::Text(t),
                None => v,
            },
        )
    })?;
    conn.create_scalar_function("sy_timestamptz", 1, det, move |ctx| {
        let v = ctx.get::<SqlValue>(0)?;
        let zone = settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .zone
            .clone();
        Ok(canonical_in(v, &zone))
    })?;
    conn.create_scalar_function("sy_timestamp", 1, det, |ctx| {
        Ok(canonical(ctx.get::<SqlValue>(0)?, false))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_stored_canonical() {
        let tz = |s: &str| canonical(SqlValue::Text(s.into()), true);
        let plain = |s: &str| canonical(SqlValue::Text(s.into()), false);
        assert_eq!(
            tz("2024-05-06 07:08:09+02"),
            SqlValue::Text("2024-05-06 05:08:09+00".into())
        );
        assert_eq!(
            tz("2024-05-06T07:08:09.5-05:30"),
            SqlValue::Text("2024-05-06 12:38:09.5+00".into())
        );
        assert_eq!(
            tz("2024-05-06"),
            SqlValue::Text("2024-05-06 00:00:00+00".into())
        );
        assert_eq!(tz("infinity"), SqlValue::Text("infinity".into()));
        assert_eq!(
            plain("2024-05-06 07:08:09+02"),
            SqlValue::Text("2024-05-06 07:08:09".into())
        );
        assert_eq!(
            plain("2024-05-06"),
            SqlValue::Text("2024-05-06 00:00:00".into())
        );
    }

    #[test]
    fn constants_and_parameters_written_into_typed_columns_are_wrapped() {
        let schema = |t: &str| match t {
            "ev" => vec![
                ("id".to_string(), types::INT4, None),
                ("at".into(), types::TIMESTAMPTZ, None),
                ("amount".into(), types::NUMERIC, Some(2)),
            ],
            _ => Vec::new(),
        };
        let sql = |s: &str| {
            let mut stmt = Parser::parse_sql(&PostgreSqlDialect {}, s)
                .unwrap()
                .remove(0);
            writes(&mut stmt, &schema);
            stmt.to_string()
        };
        assert_eq!(
            sql("INSERT INTO ev VALUES (1, '2024-05-06 07:08:09+02')"),
            "INSERT INTO ev VALUES (1, sy_timestamptz('2024-05-06 07:08:09+02'))"
        );
        assert_eq!(
            sql("INSERT INTO ev (at, id) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET at = $1"),
            "INSERT INTO ev (at, id) VALUES (sy_timestamptz($1), sy_int4($2)) ON CONFLICT(id) DO UPDATE SET at = sy_timestamptz($1)"
        );
        assert_eq!(
            sql("UPDATE ev SET at = now(), id = 2 WHERE at < '2024-01-01'"),
            "UPDATE ev SET at = now(), id = 2 WHERE at < '2024-01-01'"
        );
        assert_eq!(
            sql("INSERT INTO ev (id, amount) VALUES (1, 1.005), (2, NULL)"),
            "INSERT INTO ev (id, amount) VALUES (1, sy_dec_store(sy_dec('1.005', 2))), (2, NULL)"
        );
        assert_eq!(
            sql("UPDATE ev SET amount = amount * $1"),
            "UPDATE ev SET amount = sy_dec_store(sy_dec(amount * $1, 2))"
        );
        assert_eq!(
            sql("INSERT INTO other VALUES ('x')"),
            "INSERT INTO other VALUES ('x')"
        );
        let compared = |s: &str| {
            let mut stmt = Parser::parse_sql(&PostgreSqlDialect {}, s)
                .unwrap()
                .remove(0);
            comparisons(&mut stmt, &["ev".to_string()], &schema);
            stmt.to_string()
        };
        assert_eq!(
            compared(
                "SELECT id FROM ev WHERE $1 <= ev.at AND id = '3' AND at IN ('2024-01-01', $2)"
            ),
            "SELECT id FROM ev WHERE sy_timestamptz($1) <= ev.at AND id = sy_int4('3') AND at IN (sy_timestamptz('2024-01-01'), sy_timestamptz($2))"
        );
    }
}
