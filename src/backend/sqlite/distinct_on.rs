//! `SELECT DISTINCT ON (keys) …` for the SQLite backend (Django's `.distinct(fields)`,
//! "the latest row of each group"): the first row of each group of `keys` in the query's
//! ORDER BY, as PostgreSQL keeps it. SQLite has no DISTINCT ON, so the query becomes
//!
//! ```sql
//! SELECT _sy_c0 AS "a", … FROM (SELECT a AS _sy_c0, …,
//!     row_number() OVER (PARTITION BY keys ORDER BY order) AS _sy_rn, o AS _sy_o0, …
//!   FROM … WHERE … GROUP BY …) AS _sy_d
//! WHERE _sy_rn = 1 ORDER BY _sy_o0 … LIMIT … OFFSET …
//! ```
//!
//! A key or ORDER BY item that is a position (`1`) or an output name stands for that
//! result column, as in PostgreSQL. A `*` in the SELECT list is refused (its columns
//! cannot be named here).

use sqlparser::ast::{Distinct, Expr, OrderByKind, Query, SelectItem, SetExpr, Statement, Value};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::translate::TranslateError;

/// A result column: its expression and the name the client sees.
struct Item {
    expr: Expr,
    name: String,
}

fn items(projection: &[SelectItem]) -> Option<Vec<Item>> {
    projection
        .iter()
        .map(|p| match p {
            SelectItem::ExprWithAlias { expr, alias } => Some(Item {
                expr: expr.clone(),
                name: alias.value.clone(),
            }),
            SelectItem::UnnamedExpr(e) => Some(Item {
                expr: e.clone(),
                name: match e {
                    Expr::Identifier(i) => i.value.clone(),
                    Expr::CompoundIdentifier(p) => p.last()?.value.clone(),
                    other => {
                        super::rewrite::pg_column_name(other).unwrap_or_else(|| "?column?".into())
                    }
                },
            }),
            _ => None,
        })
        .collect()
}

/// `e` with a position or an output name replaced by that result column's expression.
fn resolved(e: &Expr, items: &[Item]) -> Expr {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n
                .parse::<usize>()
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| items.get(i))
                .map_or_else(|| e.clone(), |it| it.expr.clone()),
            _ => e.clone(),
        },
        Expr::Identifier(i) => items
            .iter()
            .find(|it| {
                it.name == i.value && !matches!(&it.expr, Expr::Identifier(x) if x.value == i.value)
            })
            .map_or_else(|| e.clone(), |it| it.expr.clone()),
        other => other.clone(),
    }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Rewrites `q` if its SELECT says DISTINCT ON (see the module doc).
pub fn rewrite(q: &mut Query) -> Result<(), TranslateError> {
    let SetExpr::Select(s) = q.body.as_mut() else {
        return Ok(());
    };
    let Some(Distinct::On(keys)) = s.distinct.clone() else {
        return Ok(());
    };
    let refused = || TranslateError::Refused("SELECT DISTINCT ON with * in its SELECT list".into());
    let items = items(&s.projection).ok_or_else(refused)?;
    let order: Vec<(Expr, String)> = match q.order_by.as_ref().map(|o| &o.kind) {
        Some(OrderByKind::Expressions(list)) => list
            .iter()
            .map(|o| (resolved(&o.expr, &items), o.options.to_string()))
            .collect(),
        _ => Vec::new(),
    };
    let keys: Vec<String> = keys
        .iter()
        .map(|k| resolved(k, &items).to_string())
        .collect();
    let window_order = if order.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = order.iter().map(|(e, o)| format!("{e}{o}")).collect();
        format!(" ORDER BY {}", list.join(", "))
    };
    let mut inner = s.as_ref().clone();
    inner.distinct = None;
    let mut projection: Vec<String> = items
        .iter()
        .enumerate()
        .map(|(i, it)| format!("{} AS _sy_c{i}", it.expr))
        .collect();
    projection.push(format!(
        "row_number() OVER (PARTITION BY {}{window_order}) AS _sy_rn",
        keys.join(", ")
    ));
    projection.extend(
        order
            .iter()
            .enumerate()
            .map(|(j, (e, _))| format!("{e} AS _sy_o{j}")),
    );
    inner.projection = Vec::new();
    let inner_text =
        inner
            .to_string()
            .replacen("SELECT ", &format!("SELECT {} ", projection.join(", ")), 1);
    let outer_cols: Vec<String> = items
        .iter()
        .enumerate()
        .map(|(i, it)| format!("_sy_c{i} AS {}", quoted(&it.name)))
        .collect();
    let outer_order: Vec<String> = order
        .iter()
        .enumerate()
        .map(|(j, (_, o))| format!("_sy_o{j}{o}"))
        .collect();
    let mut sql = format!(
        "SELECT {} FROM ({inner_text}) AS _sy_d WHERE _sy_rn = 1",
        outer_cols.join(", ")
    );
    if !outer_order.is_empty() {
        sql.push_str(&format!(" ORDER BY {}", outer_order.join(", ")));
    }
    if let Some(limit) = &q.limit_clause {
        sql.push_str(&format!("{limit}"));
    }
    let parsed = Parser::parse_sql(&PostgreSqlDialect {}, &sql)
        .map_err(|e| TranslateError::Syntax(e.to_string()))?;
    let Some(Statement::Query(new)) = parsed.into_iter().next() else {
        return Err(refused());
    };
    let with = q.with.take();
    *q = *new;
    q.with = with;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::translate::translate;

    #[test]
    fn distinct_on_keeps_the_first_row_of_each_group() {
        let t = translate("SELECT DISTINCT ON (grp) grp, name FROM t ORDER BY grp, name DESC")
            .unwrap()
            .remove(0);
        assert!(t.sql.contains(
                "row_number() OVER (PARTITION BY grp ORDER BY grp NULLS LAST, name DESC NULLS FIRST)"
            ), "{}", t.sql);
        assert!(
            t.sql
                .contains("WHERE _sy_rn = 1 ORDER BY _sy_o0 NULLS LAST, _sy_o1 DESC NULLS FIRST"),
            "{}",
            t.sql
        );
        assert!(translate("SELECT DISTINCT ON (a) * FROM t").is_err());
    }
}
