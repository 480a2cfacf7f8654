//! The columns of a set-returning function in FROM as PostgreSQL names and types them,
//! before the statement is rewritten: `generate_series(1, 3)` has one `integer` column
//! named by the alias's column list, else the alias, else `generate_series`;
//! `jsonb_array_elements(x)` a `jsonb` column `value`; `jsonb_each(x)` `key text, value
//! jsonb`; the `_text` forms text. Describe answers with these types (SQLite's own
//! functions declare none), so asyncpg and binary psycopg read `1`, not `'1'`.

use sqlparser::ast::{FunctionArg, FunctionArgExpr, TableAlias, TableFactor, TableFunctionArgs};

use super::infer::expr_type_in;
use super::scope::Scope;
use super::types;

/// A column's name (lower case) and type, if evident.
pub type TypedColumn = (String, Option<u32>);

/// One FROM function: the name its columns are qualified by, and each column's name
/// (lower case) and type — its `width` columns, then other names they answer to.
pub struct FromFunction {
    pub alias: String,
    pub columns: Vec<TypedColumn>,
    pub width: usize,
}

/// A function call in FROM: its name (lower case, without a schema), arguments and alias.
pub fn call_of(tf: &TableFactor) -> Option<(String, &TableFunctionArgs, Option<&TableAlias>)> {
    let TableFactor::Table {
        name,
        args: Some(args),
        alias,
        ..
    } = tf
    else {
        return None;
    };
    let func = name.0.last()?.as_ident()?.value.to_lowercase();
    Some((func, args, alias.as_ref()))
}

/// The columns of `tf` if it is one of the functions above.
pub fn columns_of(tf: &TableFactor) -> Option<FromFunction> {
    let (func, args, alias) = call_of(tf)?;
    let arg_types: Vec<Option<u32>> = args
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => expr_type_in(e, &Scope::default()),
            _ => None,
        })
        .collect();
    let own: Vec<(&str, Option<u32>)> = match func.as_str() {
        "generate_series" => vec![("generate_series", series_type(&arg_types))],
        "jsonb_array_elements" => vec![("value", Some(types::JSONB))],
        "json_array_elements" => vec![("value", Some(types::JSON))],
        "jsonb_array_elements_text" | "json_array_elements_text" => {
            vec![("value", Some(types::TEXT))]
        }
        "jsonb_each" => vec![("key", Some(types::TEXT)), ("value", Some(types::JSONB))],
        "jsonb_each_text" | "json_each_text" => {
            vec![("key", Some(types::TEXT)), ("value", Some(types::TEXT))]
        }
        "jsonb_object_keys" | "json_object_keys" => vec![(func.as_str(), Some(types::TEXT))],
        _ => return None,
    };
    let given = alias.map(|a| a.name.value.to_lowercase());
    let listed: Vec<String> = alias
        .map(|a| {
            a.columns
                .iter()
                .map(|c| c.name.value.to_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let mut columns: Vec<TypedColumn> = own
        .iter()
        .enumerate()
        .map(|(i, (n, t))| (listed.get(i).cloned().unwrap_or_else(|| n.to_string()), *t))
        .collect();
    let width = columns.len();
    // A function of one column (PostgreSQL's scalar-returning ones) names it after the
    // alias; `jsonb_array_elements(x) e` answers to both `e` and `value`.
    if let (Some(a), true) = (&given, listed.is_empty()) {
        match func.as_str() {
            "generate_series" | "jsonb_object_keys" | "json_object_keys" => {
                columns[0].0 = a.clone()
            }
            _ if columns.len() == 1 => columns.push((a.clone(), columns[0].1)),
            _ => {}
        }
    }
    Some(FromFunction {
        alias: given.unwrap_or(func),
        columns,
        width,
    })
}

/// `generate_series`'s type from its arguments': integers the widest of them, a numeric
/// start numeric, timestamps with an interval step as the start (a date start makes
/// timestamptz). Arguments that are columns are not known here: integer arguments beside
/// them are taken as the series' type.
fn series_type(args: &[Option<u32>]) -> Option<u32> {
    let known: Vec<u32> = args.iter().flatten().copied().collect();
    let first = args.first().copied().flatten()?;
    if args.get(2).copied().flatten() == Some(types::INTERVAL) {
        return Some(match first {
            types::TIMESTAMP => types::TIMESTAMP,
            _ => types::TIMESTAMPTZ,
        });
    }
    known.into_iter().try_fold(types::INT4, |acc, t| match t {
        types::INT2 | types::INT4 | types::INT8 | types::NUMERIC => {
            super::infer_functions::arithmetic(acc, t)
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::ast::{SetExpr, Statement};
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn from(sql: &str) -> Option<(String, Vec<TypedColumn>)> {
        let Statement::Query(q) = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
        else {
            panic!()
        };
        let SetExpr::Select(s) = *q.body else {
            panic!()
        };
        columns_of(&s.from[0].relation).map(|f| (f.alias, f.columns))
    }

    /// Names and types PostgreSQL 15's `\gdesc` gave for the same FROM items.
    #[test]
    fn named_and_typed_as_postgresql() {
        let one = |n: &str, t| vec![(n.to_string(), Some(t))];
        assert_eq!(
            from("SELECT * FROM generate_series(1, 3)"),
            Some((
                "generate_series".into(),
                one("generate_series", types::INT4)
            ))
        );
        assert_eq!(
            from("SELECT * FROM generate_series(1, 3::bigint) g")
                .unwrap()
                .1,
            one("g", types::INT8)
        );
        assert_eq!(
            from("SELECT * FROM generate_series(0.5, 3) AS s(v)")
                .unwrap()
                .1,
            one("v", types::NUMERIC)
        );
        assert_eq!(
            from("SELECT * FROM generate_series('2024-01-01'::date, '2024-02-01', interval '1 day') d")
                .unwrap()
                .1,
            one("d", types::TIMESTAMPTZ)
        );
        let e = from("SELECT * FROM jsonb_each('{}') AS e").unwrap();
        assert_eq!(e.0, "e");
        assert_eq!(
            e.1,
            vec![
                ("key".to_string(), Some(types::TEXT)),
                ("value".to_string(), Some(types::JSONB))
            ]
        );
        assert_eq!(
            from("SELECT * FROM jsonb_array_elements('[]') x")
                .unwrap()
                .1,
            vec![
                ("value".to_string(), Some(types::JSONB)),
                ("x".to_string(), Some(types::JSONB))
            ]
        );
        assert_eq!(from("SELECT * FROM t"), None);
    }
}
