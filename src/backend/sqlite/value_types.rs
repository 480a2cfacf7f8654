//! The PostgreSQL type of a value in one statement, as far as the statement and the
//! schema tell: the shape of the expression (`infer.rs`), a table column's declared type
//! (a `numeric(p, s)` with its scale), `max`/`min` of a column, a catalog view's boolean
//! (SQLite's schema has it as an integer). Used where an answer depends on the type of a
//! value rather than on what SQLite holds: JSON building (`json_build.rs`) and
//! `pg_typeof(x)`, which becomes the type's name as a constant.

use sqlparser::ast::{BinaryOperator as B, Expr, Value};

use super::coerce::{Col, Schema};
use super::scope::Scope;
use super::types;

/// The schema of one statement's tables, looked up once at the first column.
pub struct Typer<'a> {
    tables: &'a [String],
    schema: Schema<'a>,
    cols: Option<Vec<Col>>,
}

impl<'a> Typer<'a> {
    pub fn new(tables: &'a [String], schema: Schema<'a>) -> Self {
        Typer {
            tables,
            schema,
            cols: None,
        }
    }

    /// The table column `e` names (a name typed differently in two tables: none).
    pub fn column(&mut self, e: &Expr) -> Option<Col> {
        let name = match e {
            Expr::Identifier(i) => &i.value,
            Expr::CompoundIdentifier(p) => &p.last()?.value,
            Expr::Nested(inner) => return self.column(inner),
            _ => return None,
        };
        let (tables, schema) = (self.tables, self.schema);
        let cols = self
            .cols
            .get_or_insert_with(|| super::coerce::columns_typed(tables, schema, |_| true));
        cols.iter()
            .find(|c| c.0.eq_ignore_ascii_case(name))
            .cloned()
    }

    /// The type of `e`, if the statement tells.
    pub fn type_of(&mut self, e: &Expr) -> Option<u32> {
        let catalog_bool = match e {
            Expr::Identifier(i) => super::rewrite_ops::is_catalog_bool(&i.value),
            Expr::CompoundIdentifier(p) => p
                .last()
                .is_some_and(|i| super::rewrite_ops::is_catalog_bool(&i.value)),
            _ => false,
        };
        // A catalog view's boolean reads as an integer column in SQLite's schema.
        if catalog_bool {
            return Some(types::BOOL);
        }
        if let Some(t) = self.aggregate_of_column(e) {
            return Some(t);
        }
        if let Expr::BinaryOp { left, op, right } = e
            && matches!(op, B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo)
            && let (Some(l), Some(r)) = (self.type_of(left), self.type_of(right))
            && let Some(t) = super::infer_functions::arithmetic(l, r)
        {
            return Some(t);
        }
        super::infer::expr_type_in(e, &Scope::default()).or_else(|| self.column(e).map(|c| c.1))
    }

    /// `max(col)` / `min(col)`: the column's type; `sum(col)` widened as PostgreSQL
    /// widens it (int2/int4 → bigint, bigint → numeric).
    fn aggregate_of_column(&mut self, e: &Expr) -> Option<u32> {
        let Expr::Function(f) = e else { return None };
        let name = f.name.0.last()?.as_ident()?.value.to_lowercase();
        let arg = super::infer_functions::nth_arg(f, 0)?;
        let t = self.column(arg)?.1;
        match (name.as_str(), t) {
            ("max" | "min", _) => Some(t),
            ("sum", types::INT2 | types::INT4) => Some(types::INT8),
            ("sum", types::INT8) => Some(types::NUMERIC),
            ("sum", _) => Some(t),
            _ => None,
        }
    }

    /// `pg_typeof(e)` as the constant PostgreSQL would answer (None: not evident).
    pub fn type_name_of(&mut self, e: &Expr) -> Option<Expr> {
        let name = match e {
            // An untyped literal is of type unknown until something gives it one.
            Expr::Value(v) if matches!(v.value, Value::Null | Value::SingleQuotedString(_)) => {
                "unknown".to_string()
            }
            _ => {
                let t = self.type_of(e)?;
                match super::arrays::element_of(t) {
                    Some(el) => format!("{}[]", types::type_name(el)),
                    None => types::type_name(t).to_string(),
                }
            }
        };
        Some(Expr::value(Value::SingleQuotedString(name)))
    }
}
