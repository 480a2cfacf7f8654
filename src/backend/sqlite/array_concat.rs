//! `||` over arrays for the SQLite backend. PostgreSQL's `||` joins two arrays, or
//! appends or prepends an element, when one operand is an array; SQLite's `||` would join
//! the arrays' JSON texts (`["a","b"]["z"]`). An operand is an array when it is
//! `ARRAY[…]`, a cast to an array type, an array column of the statement's tables, or an
//! array function's result; the operator becomes `array_cat`, `array_append` or
//! `array_prepend` (`array_functions.rs`). A string literal beside an array is an array
//! literal, as PostgreSQL reads it.

use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, DataType, Expr, Query, Statement, Value, VisitMut, VisitorMut,
};

use super::coerce::{Col, Schema};
use super::decimal_rewrite::call;

struct Rewrite<'a> {
    tables: &'a [String],
    schema: Schema<'a>,
    /// The tables' array columns, looked up at first need.
    cols: Option<Vec<Col>>,
}

fn is_array_type(t: &DataType) -> bool {
    matches!(t, DataType::Array(_)) || t.to_string().ends_with(']')
}

impl Rewrite<'_> {
    fn array_column(&mut self, name: &str) -> bool {
        let (tables, schema) = (self.tables, self.schema);
        let cols = self.cols.get_or_insert_with(|| {
            super::coerce::columns_typed(tables, schema, |ty| {
                super::arrays::element_of(ty).is_some()
            })
        });
        cols.iter().any(|c| c.0.eq_ignore_ascii_case(name))
    }

    fn is_array(&mut self, e: &Expr) -> bool {
        match e {
            Expr::Nested(inner) => self.is_array(inner),
            Expr::Array(_) => true,
            Expr::Cast { data_type, .. } => is_array_type(data_type),
            Expr::Identifier(i) => self.array_column(&i.value),
            Expr::CompoundIdentifier(p) => p.last().is_some_and(|i| self.array_column(&i.value)),
            Expr::Function(f) => {
                let name = f.name.to_string().to_lowercase();
                matches!(
                    name.rsplit('.').next().unwrap_or(""),
                    "array_append"
                        | "array_prepend"
                        | "array_cat"
                        | "array_remove"
                        | "string_to_array"
                        | "array_agg"
                )
            }
            _ => false,
        }
    }
}

fn literal(e: &Expr) -> bool {
    matches!(e, Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)))
}

impl VisitorMut for Rewrite<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        // Result columns are named from what the client wrote, before it is rewritten.
        super::column_names::name_query(q);
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::BinaryOp {
            left,
            op: BinaryOperator::StringConcat,
            right,
        } = expr
        else {
            return ControlFlow::Continue(());
        };
        let (l, r) = (self.is_array(left), self.is_array(right));
        let func = match (l, r) {
            (false, false) => return ControlFlow::Continue(()),
            (true, true) => "array_cat",
            (true, false) if literal(right) => "array_cat",
            (false, true) if literal(left) => "array_cat",
            (true, false) => "array_append",
            (false, true) => "array_prepend",
        };
        let args = vec![(**left).clone(), (**right).clone()];
        *expr = call(func, args);
        ControlFlow::Continue(())
    }
}

/// Rewrites `||` over arrays in `stmt` (see the module's description).
pub fn rewrite(stmt: &mut Statement, tables: &[String], schema: Schema<'_>) {
    let mut r = Rewrite {
        tables,
        schema,
        cols: None,
    };
    let _ = stmt.visit(&mut r);
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn rewritten(sql: &str) -> String {
        let schema = |t: &str| -> Vec<Col> {
            if t == "t" {
                vec![("tags".into(), 1009, None), ("name".into(), 25, None)]
            } else {
                Vec::new()
            }
        };
        let mut stmt = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        rewrite(&mut stmt, &["t".to_string()], &schema);
        stmt.to_string()
    }

    #[test]
    fn arrays_join_and_strings_do_not() {
        assert_eq!(
            rewritten(
                "SELECT tags || ARRAY['z'] a, tags || 'q' b, '{x}' || tags c, name || 'x' d FROM t"
            ),
            "SELECT array_cat(tags, ARRAY['z']) AS a, array_cat(tags, 'q') AS b, array_cat('{x}', tags) AS c, name || 'x' AS d FROM t"
        );
        assert_eq!(
            rewritten("SELECT name || tags AS a, ARRAY[1]::int[] || 2 AS b FROM t"),
            "SELECT array_prepend(name, tags) AS a, array_append(ARRAY[1]::INT[], 2) AS b FROM t"
        );
    }
}
