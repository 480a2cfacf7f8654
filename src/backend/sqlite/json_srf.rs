//! PostgreSQL's JSON set-returning functions in FROM for the SQLite backend:
//! `jsonb_each`, `jsonb_each_text`, `jsonb_array_elements`, `jsonb_array_elements_text`,
//! `jsonb_object_keys` (and their `json_` forms but `json_each`, which is SQLite's own
//! name). Each becomes SQLite's `json_each` over the same argument — which may read the
//! tables before it, as PostgreSQL's implicit LATERAL does — and its columns lookups of
//! `json_each`'s key, value and type, named as PostgreSQL names them (`key`/`value`, or
//! the alias for a single column: `FROM t, jsonb_object_keys(t.meta) k` has column `k`).
//! `lateral.rs` rewrites the references; `sy_json_item` gives a value as jsonb text
//! (`{"a": 1}`, as PostgreSQL prints it) or as text (a string without its quotes).

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value;
use sqlparser::ast::{FunctionArg, FunctionArgExpr, Ident, TableAlias, TableFactor};

use super::lateral::Unnested;

enum Shape {
    Each,
    Elements,
    Keys,
}

/// Replaces a JSON set-returning function in `tf` (the `n`th FROM item).
pub(super) fn replace(tf: &mut TableFactor, n: usize) -> Option<Unnested> {
    let (func, args, alias) = super::from_functions::call_of(tf)?;
    if func == "generate_series" {
        return series(tf, n);
    }
    let (shape, text) = match func.as_str() {
        "jsonb_each" => (Shape::Each, false),
        "jsonb_each_text" | "json_each_text" => (Shape::Each, true),
        "jsonb_array_elements" | "json_array_elements" => (Shape::Elements, false),
        "jsonb_array_elements_text" | "json_array_elements_text" => (Shape::Elements, true),
        "jsonb_object_keys" | "json_object_keys" => (Shape::Keys, true),
        _ => return None,
    };
    if args.args.len() != 1 {
        return None;
    }
    let arg = match &args.args[0] {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => super::rewrite::fragment(e),
        other => other.to_string(),
    };
    let given = alias.map(|a| a.name.value.clone());
    let table = given.clone().unwrap_or_else(|| format!("_sy_json{n}"));
    let value = format!("sy_json_item({table}.value, {table}.type, {})", text as i32);
    let key = format!("{table}.key");
    // Columns the alias names (`AS e(k, v)`) take the place of PostgreSQL's own names.
    let named: Vec<String> = alias
        .map(|a| a.columns.iter().map(|c| c.name.value.clone()).collect())
        .unwrap_or_default();
    let name = |i: usize, own: &str| named.get(i).cloned().unwrap_or_else(|| own.to_string());
    let mut columns = match shape {
        Shape::Each => vec![(name(0, "key"), key), (name(1, "value"), value)],
        Shape::Elements => vec![(name(0, "value"), value)],
        Shape::Keys => vec![(name(0, given.as_deref().unwrap_or(&func)), key)],
    };
    let width = columns.len();
    // A single column is also named by the alias (`jsonb_array_elements(x) e` has `e`).
    if let (Shape::Elements, Some(a), true) = (&shape, &given, named.is_empty()) {
        let e = columns[0].1.clone();
        columns.push((a.clone(), e));
    }
    let alias = TableAlias {
        explicit: true,
        name: Ident::new(table.clone()),
        columns: Vec::new(),
        at: None,
    };
    *tf = super::rewrite_ops::raw_table(format!("json_each({arg})"), Some(alias));
    Some(Unnested {
        alias: table,
        columns,
        width,
    })
}

/// `generate_series(…)` over columns of the tables before it (`FROM t, generate_series(1,
/// t.n) g`): SQLite's own table-valued function, which sees them; its column `value` is
/// named by the alias's column or by the alias. (One over constants is rewritten where
/// the other FROM functions are, in `rewrite.rs`.)
fn series(tf: &mut TableFactor, n: usize) -> Option<Unnested> {
    let TableFactor::Table {
        args: Some(args),
        alias,
        ..
    } = tf
    else {
        return None;
    };
    let reads = |a: &FunctionArg| matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) if super::lateral::reads_columns(e));
    if !args.args.iter().any(reads) {
        return None;
    }
    let given = alias.as_ref().map(|a| a.name.value.clone());
    let table = given.clone().unwrap_or_else(|| format!("_sy_series{n}"));
    let column = alias
        .as_ref()
        .and_then(|a| a.columns.first())
        .map(|c| c.name.value.clone())
        .or(given)
        .unwrap_or_else(|| "generate_series".into());
    let call: Vec<String> = args
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => super::rewrite::fragment(e),
            other => other.to_string(),
        })
        .collect();
    let alias = TableAlias {
        explicit: true,
        name: Ident::new(table.clone()),
        columns: Vec::new(),
        at: None,
    };
    let sql = format!("generate_series({})", call.join(", "));
    *tf = super::rewrite_ops::raw_table(sql, Some(alias));
    Some(Unnested {
        columns: vec![(column, format!("{table}.value"))],
        alias: table,
        width: 1,
    })
}

/// A `json_each` value of JSON type `ty` as jsonb text, or as text when `text`.
fn item(value: Value, ty: &str, text: bool) -> Value {
    match (ty, value) {
        ("null", _) if text => Value::Null,
        ("null", _) => Value::Text("null".into()),
        ("true", _) => Value::Text("true".into()),
        ("false", _) => Value::Text("false".into()),
        ("object" | "array", Value::Text(s)) => {
            Value::Text(super::jsonb::normalize(&s).unwrap_or(s))
        }
        ("text", Value::Text(s)) if !text => Value::Text(serde_json::Value::String(s).to_string()),
        (_, Value::Integer(n)) => Value::Text(n.to_string()),
        (_, Value::Real(f)) => Value::Text(f.to_string()),
        (_, other) => other,
    }
}

/// Registers `sy_json_item(value, type, as_text)`.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("sy_json_item", 3, det, |ctx| {
        let ty = ctx.get::<Option<String>>(1)?.unwrap_or_default();
        Ok(item(ctx.get(0)?, &ty, ctx.get::<i64>(2)? != 0))
    })
}
