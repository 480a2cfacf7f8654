//! Which table column types a result column that SQLite cannot type (an aggregate, a
//! date shifted by an interval, `col || …`, a catalog view's computed column, a CTE's
//! `*`): the [`Source`]s `catalog::source_types` resolves against the schema when the
//! statement is described.

use sqlparser::ast::{BinaryOperator, Expr, Query, SelectItem, SetExpr, Statement, Value};

use super::infer::{column_ref, is_interval, last_ident};
use super::infer_functions::nth_arg;
use super::scope::Scope;

/// A result column whose type SQLite cannot tell but PostgreSQL takes from one column: an
/// aggregate or function of it (`max(created)`, `sum(total)`), resolved against the
/// schema when the statement is described (`catalog::source_types`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub func: String,
    pub table: Option<String>,
    pub column: String,
}

/// The [`Source`] of each top-level result column (None where there is none). In a
/// query of the catalog (`catalog`), a plain column is a source too: a catalog view's
/// computed column has no declared type, and is typed by name.
pub fn result_sources(stmt: &Statement, catalog: bool) -> Vec<Option<Source>> {
    let Statement::Query(q) = stmt else {
        return Vec::new();
    };
    let SetExpr::Select(s) = q.body.as_ref() else {
        return Vec::new();
    };
    let scope = Scope::of(s);
    let unnested = unnested_columns(s);
    let mut sources = Vec::new();
    for item in &s.projection {
        match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                sources.push(source(e, &scope, catalog).or_else(|| element_of(e, &unnested)));
            }
            SelectItem::Wildcard(_) if catalog => match cte_columns(q, s) {
                Some(names) => sources.extend(names.into_iter().map(|column| {
                    Some(Source {
                        func: String::new(),
                        table: None,
                        column,
                    })
                })),
                None => return sources,
            },
            // Columns after a `*` are not where the items say.
            _ => return sources,
        }
    }
    sources
}

/// A FROM `unnest(t.col) [AS] a[(x)]`'s column: (its names, the array's table and column).
type Unnested = (Vec<String>, Option<String>, String);

/// The columns of FROM's `unnest` calls over one array column each.
fn unnested_columns(s: &sqlparser::ast::Select) -> Vec<Unnested> {
    use sqlparser::ast::TableFactor;
    let factors = s
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
    factors
        .filter_map(|f| match f {
            TableFactor::UNNEST {
                alias: Some(alias),
                array_exprs,
                ..
            } if array_exprs.len() == 1 => {
                let (table, column) = column_ref(&array_exprs[0])?;
                let a = alias.name.value.clone();
                let col = alias
                    .columns
                    .first()
                    .map_or_else(|| a.clone(), |c| c.name.value.clone());
                Some((vec![a, col], table, column))
            }
            _ => None,
        })
        .collect()
}

/// A result column that is an `unnest` column in FROM (`SELECT n FROM t, unnest(t.nums)
/// n`): typed by the array column's element type.
fn element_of(e: &Expr, unnested: &[Unnested]) -> Option<Source> {
    let name = match e {
        Expr::Identifier(i) => i.value.clone(),
        Expr::CompoundIdentifier(p) if p.len() == 2 => p[1].value.clone(),
        _ => return None,
    };
    let (_, table, column) = unnested.iter().find(|u| u.0.contains(&name))?;
    Some(Source {
        func: "unnest".into(),
        table: table.clone(),
        column: column.clone(),
    })
}

/// The column names a `*` stands for when the query reads one CTE that names its
/// columns (`WITH RECURSIVE tree(oid, name, …) AS (…) SELECT * FROM tree`, as asyncpg's
/// type introspection does).
fn cte_columns(q: &Query, s: &sqlparser::ast::Select) -> Option<Vec<String>> {
    let [from] = s.from.as_slice() else {
        return None;
    };
    if !from.joins.is_empty() {
        return None;
    }
    let sqlparser::ast::TableFactor::Table { name, .. } = &from.relation else {
        return None;
    };
    let name = last_ident(name)?;
    let cte = q
        .with
        .as_ref()?
        .cte_tables
        .iter()
        .find(|c| c.alias.name.value == name)?;
    let names: Vec<String> = cte
        .alias
        .columns
        .iter()
        .map(|c| c.name.value.clone())
        .collect();
    (!names.is_empty()).then_some(names)
}

/// A column moved by an interval (`at + interval '1 day'`: "interval") or by a whole
/// number of days (`day - 1`: "days"), typed by the column (see `catalog::source_types`).
fn shifted_source(e: &Expr, scope: &Scope<'_>) -> Option<Source> {
    let Expr::BinaryOp {
        left,
        op: BinaryOperator::Plus | BinaryOperator::Minus,
        right,
    } = e
    else {
        return None;
    };
    let whole = |e: &Expr| matches!(e, Expr::Value(v) if matches!(&v.value, Value::Number(n, _) if !n.contains(['.', 'e', 'E'])));
    let (column, func) = if is_interval(right) {
        (left, "interval")
    } else if is_interval(left) {
        (right, "interval")
    } else if whole(right) {
        (left, "days")
    } else {
        return None;
    };
    let column = match scope.resolve(column) {
        Some((inner, _)) => inner,
        None => column,
    };
    let (table, column) = column_ref(column)?;
    Some(Source {
        func: func.to_string(),
        table,
        column,
    })
}

fn source(e: &Expr, scope: &Scope<'_>, catalog: bool) -> Option<Source> {
    if let Some((inner, sc)) = scope.resolve(e) {
        return source(inner, &sc, catalog);
    }
    if catalog && let Some((table, column)) = column_ref(e) {
        return Some(Source {
            func: String::new(),
            table,
            column,
        });
    }
    if let Some(s) = shifted_source(e, scope) {
        return Some(s);
    }
    if let Expr::AtTimeZone { timestamp, .. } = e
        && let Some((table, column)) = column_ref(timestamp)
    {
        return Some(Source {
            func: "at time zone".into(),
            table,
            column,
        });
    }
    // `col || …`: an array when the column is one (see `catalog::source_types`).
    if let Expr::BinaryOp {
        left,
        op: BinaryOperator::StringConcat,
        right,
    } = e
        && let Some((table, column)) = column_ref(left).or_else(|| column_ref(right))
    {
        return Some(Source {
            func: "||".into(),
            table,
            column,
        });
    }
    let Expr::Function(f) = e else { return None };
    let name = f.name.to_string().to_lowercase();
    let func = name.rsplit('.').next().unwrap_or(&name).to_string();
    // The argument whose column types the result (date_trunc's is its second).
    let at = match func.as_str() {
        "max" | "min" | "sum" | "coalesce" | "greatest" | "least" | "nullif" | "array_agg"
        | "array_append" | "array_cat" | "array_remove" | "unnest" | "lag" | "lead"
        | "first_value" | "last_value" | "nth_value" => 0,
        "date_trunc" => 1,
        _ => return None,
    };
    let arg = nth_arg(f, at)?;
    let arg = match scope.resolve(arg) {
        Some((inner, _)) => inner,
        None => arg,
    };
    let (table, column) = column_ref(arg)?;
    Some(Source {
        func,
        table,
        column,
    })
}
