//! The calls whose answer depends on the PostgreSQL type of a value (`value_types.rs`):
//! `pg_typeof(x)` becomes the type's name as a constant, and the JSON-building calls —
//! `json_build_object`, `json_build_array`, `json_agg`, `json_object_agg`, `to_json` and
//! their `jsonb` forms — become the builders of `json_values.rs`. Each value becomes
//! `sy_json_value(x, kind, flags)`, its kind from the statement: a `jsonb`/`json`
//! column, cast or operator result, a nested builder (JSON already), a boolean column,
//! literal or comparison (`true`, not SQLite's 1), an array column (its stored JSON is
//! PostgreSQL's `to_json` of it), a `numeric(p, s)` column (with its scale: `2.50`), a
//! timestamp, timestamptz (in the session's zone) or interval (ISO 8601 or PostgreSQL's
//! interval text, as JSON has them); anything else by what SQLite holds.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName, Query, Statement,
    Value, VisitMut, VisitorMut,
};

use super::coerce::Schema;
use super::decimal_rewrite::{call, name_of};
use super::types;
use super::value_types::Typer;

struct Build<'a> {
    typer: Typer<'a>,
}

/// The builder a PostgreSQL JSON function becomes, and which of its arguments are values
/// (the rest are keys): every one, every second from the second, or the last.
fn builder(name: &str) -> Option<(&'static str, Values)> {
    Some(match name {
        "json_build_object" => ("sy_json_object", Values::Odd),
        "jsonb_build_object" => ("sy_jsonb_object", Values::Odd),
        "json_build_array" => ("sy_json_array", Values::All),
        "jsonb_build_array" => ("sy_jsonb_array", Values::All),
        "json_agg" => ("sy_json_agg", Values::All),
        "jsonb_agg" => ("sy_jsonb_agg", Values::All),
        "json_object_agg" => ("sy_json_object_agg", Values::Odd),
        "jsonb_object_agg" => ("sy_jsonb_object_agg", Values::Odd),
        "to_json" => ("", Values::All),
        "to_jsonb" => ("", Values::All),
        _ => return None,
    })
}

#[derive(Clone, Copy)]
enum Values {
    All,
    Odd,
}

fn text(s: &str) -> Expr {
    Expr::value(Value::SingleQuotedString(s.into()))
}

impl Build<'_> {
    /// `e` as the argument of `sy_json_value`, and its kind.
    fn value(&mut self, e: &Expr) -> (Expr, &'static str) {
        if let Expr::Function(f) = e
            && name_of(f).starts_with("sy_json")
        {
            return (e.clone(), "json");
        }
        if let Some((_, types::NUMERIC, Some(s))) = self.typer.column(e) {
            let scale = Expr::value(Value::Number(s.to_string(), false));
            return (call("sy_dec", vec![e.clone(), scale]), "number");
        }
        let kind = match self.typer.type_of(e) {
            Some(types::TIMESTAMPTZ) => {
                return (call("sy_tz_text", vec![e.clone()]), "timestamptz");
            }
            Some(types::TIMESTAMP) => "timestamp",
            Some(types::INTERVAL) => "interval",
            Some(types::JSONB) => "jsonb",
            Some(types::JSON) => "json",
            Some(types::BOOL) => "bool",
            Some(t) if super::arrays::element_of(t).is_some() => "array",
            _ => "auto",
        };
        (e.clone(), kind)
    }

    /// `e` as `sy_json_value(e, kind, flags)` (flags: see `json_values.rs`); its kind.
    fn wrap(&mut self, e: &mut Expr, flags: i32) -> &'static str {
        let (inner, kind) = self.value(e);
        let flag = Expr::value(Value::Number(flags.to_string(), false));
        *e = call("sy_json_value", vec![inner, text(kind), flag]);
        kind
    }

    fn rebuild(&mut self, e: &mut Expr) {
        let Expr::Function(f) = e else { return };
        let name = name_of(f);
        if name == "pg_typeof"
            && let Some(arg) = super::infer_functions::nth_arg(f, 0)
            && let Some(constant) = self.typer.type_name_of(arg)
        {
            *e = constant;
            return;
        }
        let Some((target, values)) = builder(&name) else {
            return;
        };
        let FunctionArguments::List(list) = &mut f.args else {
            return;
        };
        let flags = match name.as_str() {
            "to_json" => 2,
            "to_jsonb" => 3,
            _ => 0,
        };
        let mut arrays = false;
        for (i, arg) in list.args.iter_mut().enumerate() {
            let FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) = arg else {
                continue;
            };
            if matches!(values, Values::Odd) && i % 2 == 0 {
                continue;
            }
            arrays |= self.wrap(x, flags) == "array";
        }
        if target.is_empty() {
            // to_json(x) is the value's JSON itself.
            if let [FunctionArg::Unnamed(FunctionArgExpr::Expr(x))] = list.args.as_slice() {
                *e = x.clone();
            }
            return;
        }
        let target = if target == "sy_json_agg" && arrays {
            "sy_json_agg_arrays"
        } else {
            target
        };
        f.name = ObjectName::from(vec![Ident::new(target)]);
    }
}

impl VisitorMut for Build<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        // Result columns are named from what the client wrote, before it is rewritten.
        super::column_names::name_query(q);
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        self.rebuild(e);
        ControlFlow::Continue(())
    }
}

/// Rewrites `stmt`'s JSON-building calls (see the module's doc).
pub fn rewrite(stmt: &mut Statement, tables: &[String], schema: Schema<'_>) {
    let mut b = Build {
        typer: Typer::new(tables, schema),
    };
    let _ = stmt.visit(&mut b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn sql(s: &str) -> String {
        let schema = |t: &str| match t {
            "t" => vec![
                ("j".to_string(), types::JSONB, None),
                ("flag".into(), types::BOOL, None),
                ("price".into(), types::NUMERIC, Some(2)),
                (
                    "tags".into(),
                    super::super::arrays::array_of(types::TEXT),
                    None,
                ),
            ],
            _ => Vec::new(),
        };
        let mut stmt = Parser::parse_sql(&PostgreSqlDialect {}, s)
            .unwrap()
            .remove(0);
        rewrite(&mut stmt, &["t".to_string()], &schema);
        stmt.to_string()
    }

    #[test]
    fn values_are_wrapped_by_kind() {
        assert_eq!(
            sql("SELECT json_build_object('cycle', pg_sequence.seqcycle) FROM pg_sequence"),
            "SELECT sy_json_object('cycle', sy_json_value(pg_sequence.seqcycle, 'bool', 0)) AS \"json_build_object\" FROM pg_sequence"
        );
        assert_eq!(
            sql(
                "SELECT json_build_object('j', j, 'f', flag, 'p', price, 'n', json_build_array(1, a > 2)) FROM t"
            ),
            "SELECT sy_json_object('j', sy_json_value(j, 'jsonb', 0), 'f', sy_json_value(flag, 'bool', 0), \
             'p', sy_json_value(sy_dec(price, 2), 'number', 0), 'n', sy_json_value(sy_json_array(\
             sy_json_value(1, 'auto', 0), sy_json_value(a > 2, 'bool', 0)), 'json', 0)) AS \"json_build_object\" FROM t"
        );
        assert_eq!(
            sql(
                "SELECT json_agg(tags ORDER BY price), to_jsonb(j), jsonb_object_agg(k, flag) FROM t"
            ),
            "SELECT sy_json_agg_arrays(sy_json_value(tags, 'array', 0) ORDER BY price) AS \"json_agg\", \
             sy_json_value(j, 'jsonb', 3) AS \"to_jsonb\", sy_jsonb_object_agg(k, sy_json_value(flag, 'bool', 0)) AS \"jsonb_object_agg\" FROM t"
        );
    }
}
