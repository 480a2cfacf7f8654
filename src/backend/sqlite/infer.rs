//! Type inference the SQLite backend needs to answer Describe like PostgreSQL: the types
//! of result expressions (`count(*)` is bigint, `a = b` is boolean, `x::int` is integer),
//! and the types of `$n` parameters from what they are compared with or assigned to
//! (`WHERE id = $1`, `INSERT INTO t (a, b) VALUES ($1, $2)`, `SET x = $1`, `LIMIT $1`).

use std::ops::ControlFlow;

use sqlparser::ast::{
    AssignmentTarget, BinaryOperator, Expr, ObjectName, Query, SelectItem, SetExpr, Statement,
    TableObject, Value, Visit,
};

pub use super::infer_sources::{Source, result_sources};

use super::ddl::base_type;
use super::infer_functions::{arithmetic, function_type};
use super::scope::Scope;
use super::types;

/// Where a parameter's type comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamHint {
    /// The type of a column (table if known).
    Column {
        table: Option<String>,
        column: String,
    },
    Fixed(u32),
    /// The element type of an array column (`$1 = ANY(tags)`).
    ElementOf {
        table: Option<String>,
        column: String,
    },
    /// An array of a column's type (`id = ANY($1)`).
    ArrayOf {
        table: Option<String>,
        column: String,
    },
}

fn placeholder(e: &Expr) -> Option<usize> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Placeholder(p) => p.strip_prefix('$').and_then(|n| n.parse().ok()),
            _ => None,
        },
        Expr::Nested(inner) => placeholder(inner),
        _ => None,
    }
}

pub(super) fn column_ref(e: &Expr) -> Option<(Option<String>, String)> {
    match e {
        Expr::Identifier(i) => Some((None, i.value.clone())),
        Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
            let col = parts.last()?.value.clone();
            Some((Some(parts[parts.len() - 2].value.clone()), col))
        }
        Expr::Nested(inner) => column_ref(inner),
        _ => None,
    }
}

pub(super) fn last_ident(o: &ObjectName) -> Option<String> {
    o.0.last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.clone())
}

/// Parameter hints of a statement, by parameter number.
pub fn param_hints(stmt: &Statement) -> Vec<(usize, ParamHint)> {
    let mut hints = Vec::new();
    let _ = stmt.visit(&mut ExprHints(&mut hints));
    match stmt {
        Statement::Insert(ins) => {
            let table = match &ins.table {
                TableObject::TableName(n) => last_ident(n),
                _ => None,
            };
            if let Some(SetExpr::Values(values)) = ins.source.as_ref().map(|q| q.body.as_ref()) {
                for row in &values.rows {
                    for (i, e) in row.content.iter().enumerate() {
                        if let (Some(n), Some(col)) =
                            (placeholder(e), ins.columns.get(i).and_then(last_ident))
                        {
                            hints.push((
                                n,
                                ParamHint::Column {
                                    table: table.clone(),
                                    column: col,
                                },
                            ));
                        }
                    }
                }
            }
        }
        Statement::Update(up) => {
            let table = match &up.table.relation {
                sqlparser::ast::TableFactor::Table { name, .. } => last_ident(name),
                _ => None,
            };
            for a in &up.assignments {
                if let (AssignmentTarget::ColumnName(c), Some(n)) =
                    (&a.target, placeholder(&a.value))
                    && let Some(col) = last_ident(c)
                {
                    hints.push((
                        n,
                        ParamHint::Column {
                            table: table.clone(),
                            column: col,
                        },
                    ));
                }
            }
        }
        _ => {}
    }
    hints
}

struct ExprHints<'a>(&'a mut Vec<(usize, ParamHint)>);

impl sqlparser::ast::Visitor for ExprHints<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if let Some(sqlparser::ast::LimitClause::LimitOffset { limit, offset, .. }) =
            &q.limit_clause
        {
            for e in limit.iter().chain(offset.iter().map(|o| &o.value)) {
                if let Some(n) = placeholder(e) {
                    self.0.push((n, ParamHint::Fixed(types::INT8)));
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        match e {
            Expr::BinaryOp { left, op, right } if is_comparison(op) => {
                for (p, other) in [(left, right), (right, left)] {
                    if let (Some(n), Some((table, column))) = (placeholder(p), column_ref(other)) {
                        self.0.push((n, ParamHint::Column { table, column }));
                    }
                }
            }
            Expr::AnyOp { left, right, .. } | Expr::AllOp { left, right, .. } => {
                if let (Some(n), Some((table, column))) = (placeholder(left), column_ref(right)) {
                    self.0.push((n, ParamHint::ElementOf { table, column }));
                }
                if let (Some(n), Some((table, column))) = (placeholder(right), column_ref(left)) {
                    self.0.push((n, ParamHint::ArrayOf { table, column }));
                }
            }
            Expr::InList { expr, list, .. } => {
                if let Some((table, column)) = column_ref(expr) {
                    for n in list.iter().filter_map(placeholder) {
                        self.0.push((
                            n,
                            ParamHint::Column {
                                table: table.clone(),
                                column: column.clone(),
                            },
                        ));
                    }
                }
            }
            Expr::Cast {
                expr, data_type, ..
            } => {
                if let Some(n) = placeholder(expr) {
                    // An array cast asks the driver for an array (see `arrays`).
                    let t = base_type(data_type);
                    let oid = match t.strip_suffix("[]") {
                        Some(elem) => super::arrays::array_of(types::oid_for_decltype(elem)),
                        None => types::oid_for_decltype(&t),
                    };
                    self.0.push((n, ParamHint::Fixed(oid)));
                }
            }
            Expr::Like { pattern, .. } | Expr::ILike { pattern, .. } => {
                if let Some(n) = placeholder(pattern) {
                    self.0.push((n, ParamHint::Fixed(types::TEXT)));
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

fn is_comparison(op: &BinaryOperator) -> bool {
    use BinaryOperator as B;
    matches!(op, B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq)
}

/// The array type of `ARRAY[…]` or of a cast to an array type.
fn array_of(e: &Expr) -> Option<u32> {
    match e {
        Expr::Nested(inner) => array_of(inner),
        Expr::Array(_) | Expr::Cast { .. } => {
            expr_type_in(e, &Scope::default()).filter(|t| super::arrays::element_of(*t).is_some())
        }
        _ => None,
    }
}

/// Whether `e` is an interval: a literal or a cast to one.
pub(super) fn is_interval(e: &Expr) -> bool {
    match e {
        Expr::Nested(inner) => is_interval(inner),
        Expr::Interval(_) => true,
        Expr::Cast { data_type, .. } => {
            matches!(data_type, sqlparser::ast::DataType::Interval { .. })
        }
        _ => false,
    }
}

/// Result type hints for the top-level projection of a query (None = decide later).
pub fn result_hints(stmt: &Statement) -> Vec<Option<u32>> {
    let Statement::Query(q) = stmt else {
        return returning_hints(stmt);
    };
    match q.body.as_ref() {
        SetExpr::Select(s) => {
            let scope = Scope::of(s);
            match (&s.projection[..], scope.only_function()) {
                ([SelectItem::Wildcard(_)], Some(cols)) => cols.iter().map(|c| c.1).collect(),
                _ => s.projection.iter().map(|i| item_hint(i, &scope)).collect(),
            }
        }
        _ => Vec::new(),
    }
}

fn returning_hints(stmt: &Statement) -> Vec<Option<u32>> {
    let items = match stmt {
        Statement::Insert(i) => i.returning.as_ref(),
        Statement::Update(u) => u.returning.as_ref(),
        Statement::Delete(d) => d.returning.as_ref(),
        _ => None,
    };
    items
        .map(|v| v.iter().map(|i| item_hint(i, &Scope::default())).collect())
        .unwrap_or_default()
}

fn item_hint(item: &SelectItem, scope: &Scope<'_>) -> Option<u32> {
    match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
            expr_type_in(e, scope)
        }
        _ => None,
    }
}

/// The type PostgreSQL would give an expression, where it is evident from its shape,
/// seeing through the derived tables of `scope`.
pub(super) fn expr_type_in(e: &Expr, scope: &Scope<'_>) -> Option<u32> {
    use BinaryOperator as B;
    if let Some((inner, sc)) = scope.resolve(e) {
        return expr_type_in(inner, &sc);
    }
    if let Some(t) = scope.function_column(e) {
        return t;
    }
    let expr_type = |e: &Expr| expr_type_in(e, scope);
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) if n.contains(['.', 'e', 'E']) => Some(types::NUMERIC),
            Value::Number(n, _) => Some(if n.parse::<i32>().is_ok() {
                types::INT4
            } else {
                types::INT8
            }),
            Value::SingleQuotedString(_)
            | Value::EscapedStringLiteral(_)
            | Value::DollarQuotedString(_) => Some(types::TEXT),
            Value::Boolean(_) => Some(types::BOOL),
            _ => None,
        },
        Expr::Cast { data_type, .. } => Some(types::oid_for_decltype(&base_type(data_type))),
        Expr::Interval(_) => Some(types::INTERVAL),
        // ARRAY[…]: an array of its first element's type (text[] when not evident).
        Expr::Array(a) => Some(super::arrays::array_of(
            a.elem.first().and_then(expr_type).unwrap_or(types::TEXT),
        )),
        Expr::Extract { .. } => Some(types::NUMERIC),
        // A timestamptz's wall-clock time is a timestamp, and the other way round (a
        // column's type is looked up later: `infer_sources.rs`).
        Expr::AtTimeZone { timestamp, .. } => match expr_type(timestamp)? {
            types::TIMESTAMPTZ => Some(types::TIMESTAMP),
            _ => Some(types::TIMESTAMPTZ),
        },
        Expr::Ceil { expr, .. } | Expr::Floor { expr, .. } => expr_type(expr),
        Expr::Position { .. } => Some(types::INT4),
        Expr::Substring { .. } => Some(types::TEXT),
        Expr::Nested(inner) => expr_type(inner),
        Expr::BinaryOp { op, left, right } => match op {
            B::Eq
            | B::NotEq
            | B::Lt
            | B::LtEq
            | B::Gt
            | B::GtEq
            | B::And
            | B::Or
            | B::PGRegexMatch
            | B::PGRegexIMatch
            | B::PGRegexNotMatch
            | B::PGRegexNotIMatch => Some(types::BOOL),
            B::PGExp => Some(types::FLOAT8),
            B::StringConcat
                if super::rewrite_ops::is_jsonb_cast(left)
                    || super::rewrite_ops::is_jsonb_cast(right) =>
            {
                Some(types::JSONB)
            }
            // An array joined with another or with an element (`array_concat.rs`).
            B::StringConcat if array_of(left).or_else(|| array_of(right)).is_some() => {
                array_of(left).or_else(|| array_of(right))
            }
            B::StringConcat | B::HashLongArrow | B::LongArrow => Some(types::TEXT),
            B::Question | B::QuestionPipe | B::QuestionAnd | B::AtArrow | B::ArrowAt => {
                Some(types::BOOL)
            }
            B::HashArrow | B::HashMinus | B::Arrow => Some(types::JSONB),
            // jsonb - 'key' (a number minus a string is no arithmetic).
            B::Minus if matches!(right.as_ref(), Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_))) => {
                Some(types::JSONB)
            }
            B::Plus | B::Minus if is_interval(left) || is_interval(right) => {
                let other = if is_interval(right) { left } else { right };
                match expr_type(other)? {
                    types::DATE => Some(types::TIMESTAMP),
                    t => Some(t),
                }
            }
            B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo => {
                match (op, expr_type(left)?, expr_type(right)?) {
                    (B::Minus, types::DATE, types::DATE) => Some(types::INT4),
                    (
                        B::Minus,
                        types::TIMESTAMP | types::TIMESTAMPTZ,
                        types::TIMESTAMP | types::TIMESTAMPTZ,
                    ) => Some(types::INTERVAL),
                    (B::Plus | B::Minus, types::DATE, types::INT4) => Some(types::DATE),
                    (_, l, r) => arithmetic(l, r),
                }
            }
            _ => None,
        },
        Expr::UnaryOp {
            op: sqlparser::ast::UnaryOperator::Not,
            ..
        } => Some(types::BOOL),
        Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsNotTrue(_)
        | Expr::IsNotFalse(_) => Some(types::BOOL),
        Expr::InList { .. }
        | Expr::AnyOp { .. }
        | Expr::AllOp { .. }
        | Expr::InSubquery { .. }
        | Expr::Between { .. }
        | Expr::Exists { .. } => Some(types::BOOL),
        Expr::Like { .. }
        | Expr::ILike { .. }
        | Expr::SimilarTo { .. }
        | Expr::IsDistinctFrom(..)
        | Expr::IsNotDistinctFrom(..) => Some(types::BOOL),
        Expr::Function(f) => function_type(f, scope),
        // CASE: the type of its first result that has an evident one.
        Expr::Case {
            conditions,
            else_result,
            ..
        } => conditions
            .iter()
            .map(|w| &w.result)
            .chain(else_result.as_deref())
            .find_map(expr_type),
        // A scalar subquery of a call, a cast or a constant: its type (a column of the
        // subquery's own tables is not looked up in this scope).
        Expr::Subquery(q) => match q.body.as_ref() {
            sqlparser::ast::SetExpr::Select(s) => match s.projection.first() {
                Some(
                    sqlparser::ast::SelectItem::UnnamedExpr(e)
                    | sqlparser::ast::SelectItem::ExprWithAlias { expr: e, .. },
                ) if matches!(e, Expr::Function(_) | Expr::Cast { .. } | Expr::Value(_)) => {
                    expr_type(e)
                }
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    fn stmt(sql: &str) -> Statement {
        Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn result_types() {
        let h = result_hints(&stmt(
            "SELECT count(*), a = b, x::int, 1, 'a', name, now(), coalesce(1, 2) FROM t",
        ));
        assert_eq!(
            h,
            vec![
                Some(types::INT8),
                Some(types::BOOL),
                Some(types::INT4),
                Some(types::INT4),
                Some(types::TEXT),
                None,
                Some(types::TIMESTAMPTZ),
                Some(types::INT4)
            ]
        );
        assert_eq!(
            result_hints(&stmt("INSERT INTO t (a) VALUES (1) RETURNING id, id > 1")),
            vec![None, Some(types::BOOL)]
        );
    }

    #[test]
    fn parameter_sources() {
        let col = |t: Option<&str>, c: &str| ParamHint::Column {
            table: t.map(str::to_string),
            column: c.to_string(),
        };
        let h = param_hints(&stmt(
            "SELECT * FROM t WHERE id = $1 AND t.name LIKE $2 LIMIT $3",
        ));
        assert!(h.contains(&(1, col(None, "id"))));
        assert!(h.contains(&(2, ParamHint::Fixed(types::TEXT))));
        assert!(h.contains(&(3, ParamHint::Fixed(types::INT8))));
        let h = param_hints(&stmt("INSERT INTO users (name, age) VALUES ($1, $2)"));
        assert_eq!(
            h,
            vec![
                (1, col(Some("users"), "name")),
                (2, col(Some("users"), "age"))
            ]
        );
        let h = param_hints(&stmt("UPDATE users SET age = $1 WHERE id = $2"));
        assert!(h.contains(&(1, col(Some("users"), "age"))));
        assert!(h.contains(&(2, col(None, "id"))));
        assert_eq!(
            param_hints(&stmt("SELECT $1::bigint")),
            vec![(1, ParamHint::Fixed(types::INT8))]
        );
    }
}
