//! Booleans made text as PostgreSQL makes them. SQLite keeps a boolean as 0 or 1, so
//! `flag::text`, `CAST(flag AS varchar)` and `flag || 'x'` would read `1`, `0`, `1x`
//! where PostgreSQL reads `true`, `false`, `truex`. A boolean operand there — a column
//! declared boolean in a table the statement reads (and no other type of that name
//! there), a boolean literal, a comparison — becomes `CASE WHEN e THEN 'true' WHEN NOT e
//! THEN 'false' END` before the rest of the translation.

use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, DataType, Expr, Ident, Query, SelectItem, SetExpr, Statement, UnaryOperator,
    Value, VisitMut, VisitorMut,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::coerce::Schema;
use super::types::BOOL;

/// Column names declared boolean in `tables` (and not another type in any of them).
fn bool_columns(tables: &[String], schema: Schema<'_>) -> Vec<String> {
    super::coerce::columns_typed(tables, schema, |ty| ty == BOOL)
        .into_iter()
        .map(|(n, _, _)| n)
        .collect()
}

fn is_text(t: &DataType) -> bool {
    let name = t.to_string().to_lowercase();
    let base = name.split('(').next().unwrap_or("").trim();
    matches!(
        base,
        "text" | "varchar" | "character varying" | "char" | "character" | "bpchar"
    )
}

/// Whether `e` is a boolean PostgreSQL would write as `true`/`false`.
fn is_bool(e: &Expr, cols: &[String]) -> bool {
    use BinaryOperator as B;
    match e {
        Expr::Value(v) => matches!(v.value, Value::Boolean(_)),
        Expr::Identifier(i) => cols.contains(&i.value.to_lowercase()),
        Expr::CompoundIdentifier(parts) => parts
            .last()
            .is_some_and(|i| cols.contains(&i.value.to_lowercase())),
        Expr::Nested(inner) => is_bool(inner, cols),
        Expr::BinaryOp { op, .. } => matches!(
            op,
            B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq | B::And | B::Or
        ),
        Expr::UnaryOp { op, .. } => *op == UnaryOperator::Not,
        Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::InList { .. }
        | Expr::Between { .. }
        | Expr::Like { .. }
        | Expr::ILike { .. }
        | Expr::Exists { .. } => true,
        _ => false,
    }
}

/// `e` as PostgreSQL's text of a boolean: `true`/`false` made text by a cast or `||`,
/// `t`/`f` by its output function (`concat`, `format`).
fn as_text(e: &Expr, short: bool) -> Option<Expr> {
    let (t, f) = if short { ("t", "f") } else { ("true", "false") };
    let sql = format!("(CASE WHEN {e} THEN '{t}' WHEN NOT ({e}) THEN '{f}' END)");
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&sql)
        .ok()?
        .parse_expr()
        .ok()
}

fn wrap(e: &mut Expr, cols: &[String]) {
    wrap_as(e, cols, false)
}

fn wrap_as(e: &mut Expr, cols: &[String], short: bool) {
    if is_bool(e, cols)
        && let Some(t) = as_text(e, short)
    {
        *e = t;
    }
}

/// Rewrites one expression node (its operands, not the node itself).
fn rewrite_node(e: &mut Expr, cols: &[String]) {
    match e {
        Expr::Cast {
            expr, data_type, ..
        } if is_text(data_type) => wrap(expr, cols),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::StringConcat,
            right,
        } => {
            wrap(left, cols);
            wrap(right, cols);
        }
        Expr::Function(f) if prints(f) => {
            if let sqlparser::ast::FunctionArguments::List(l) = &mut f.args {
                for a in &mut l.args {
                    if let sqlparser::ast::FunctionArg::Unnamed(
                        sqlparser::ast::FunctionArgExpr::Expr(x),
                    ) = a
                    {
                        wrap_as(x, cols, true);
                    }
                }
            }
        }
        _ => {}
    }
}

/// `concat`, `concat_ws`, `format`: print their arguments with their output functions.
fn prints(f: &sqlparser::ast::Function) -> bool {
    let name = f.name.to_string().to_lowercase();
    matches!(
        name.rsplit('.').next().unwrap_or_default(),
        "concat" | "concat_ws" | "format"
    )
}

/// Rewrites every node of `e`; true when something changed.
fn rewrite_expr(e: &mut Expr, cols: &[String]) -> bool {
    let before = e.clone();
    let _ = sqlparser::ast::visit_expressions_mut(e, |n| {
        rewrite_node(n, cols);
        ControlFlow::<()>::Continue(())
    });
    *e != before
}

/// Names the result columns it changes as PostgreSQL names the expressions as written
/// (`flag::text` is `flag`, not `case`).
struct Items<'a> {
    cols: &'a [String],
}

impl VisitorMut for Items<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        let SetExpr::Select(select) = q.body.as_mut() else {
            return ControlFlow::Continue(());
        };
        for item in select.projection.iter_mut() {
            let SelectItem::UnnamedExpr(e) = item else {
                continue;
            };
            let original = e.clone();
            if rewrite_expr(e, self.cols)
                && let Some(name) = super::rewrite::pg_column_name(&original)
            {
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: Ident::with_quote('"', name),
                };
            }
        }
        ControlFlow::Continue(())
    }
}

/// Rewrites the booleans `stmt` makes text (see the module doc); `tables` are the tables
/// it reads.
pub fn rewrite(stmt: &mut Statement, tables: &[String], schema: Schema<'_>) {
    let mut found = false;
    let _ = sqlparser::ast::visit_expressions(stmt, |e| {
        found |= matches!(e, Expr::Cast { data_type, .. } if is_text(data_type))
            || matches!(e, Expr::Function(f) if prints(f))
            || matches!(
                e,
                Expr::BinaryOp {
                    op: BinaryOperator::StringConcat,
                    ..
                }
            );
        ControlFlow::<()>::Continue(())
    });
    if !found {
        return;
    }
    let cols = bool_columns(tables, schema);
    let _ = stmt.visit(&mut Items { cols: &cols });
    let _ = sqlparser::ast::visit_expressions_mut(stmt, |e| {
        rewrite_node(e, &cols);
        ControlFlow::<()>::Continue(())
    });
}

#[cfg(test)]
mod tests {
    fn schema(t: &str) -> Vec<super::super::coerce::Col> {
        match t {
            "t" => vec![("flag".into(), 16, None), ("name".into(), 25, None)],
            "u" => vec![("flag".into(), 23, None), ("ok".into(), 16, None)],
            _ => Vec::new(),
        }
    }

    fn rewritten(sql: &str, tables: &[&str]) -> String {
        let dialect = sqlparser::dialect::PostgreSqlDialect {};
        let mut stmt = sqlparser::parser::Parser::parse_sql(&dialect, sql)
            .unwrap()
            .remove(0);
        let tables: Vec<String> = tables.iter().map(|s| s.to_string()).collect();
        super::rewrite(&mut stmt, &tables, &schema);
        stmt.to_string()
    }

    #[test]
    fn boolean_columns_and_expressions_become_true_and_false() {
        let s = rewritten("SELECT flag::text, name || flag, name::text FROM t", &["t"]);
        assert!(s.contains("END)::TEXT AS \"flag\""), "{s}");
        assert!(
            s.contains("(CASE WHEN flag THEN 'true' WHEN NOT (flag) THEN 'false' END)::TEXT"),
            "{s}"
        );
        assert!(s.contains("name || (CASE WHEN flag"), "{s}");
        assert!(s.contains("name::TEXT"), "{s}");
        let s = rewritten("SELECT (1 = 1)::varchar, true::text", &[]);
        assert_eq!(s.matches("CASE WHEN").count(), 2, "{s}");
        // `flag` is an integer in u: a name with two types is left alone.
        let s = rewritten(
            "SELECT flag::text, ok::text FROM t JOIN u ON true",
            &["t", "u"],
        );
        assert!(s.contains("flag::TEXT"), "{s}");
        assert!(s.contains("CASE WHEN ok THEN"), "{s}");
    }
}
