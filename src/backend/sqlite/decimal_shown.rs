//! The result columns of a statement whose numeric arithmetic `decimal_rewrite.rs`
//! rewrote: they keep the decimal text (PostgreSQL's `numeric` with its scale, `6985.80`)
//! instead of the number SQLite compares, and ORDER BY a position or name of one of them
//! sorts by its number.

use sqlparser::ast::{Expr, OrderByKind, Query, SelectItem, SetExpr, Statement, Value};

use super::decimal_rewrite::unwrapped;

/// Unwraps the decimal result columns of `stmt` (a query or a write's RETURNING); says
/// which they are.
pub fn shown_columns(stmt: &mut Statement) -> Vec<bool> {
    match stmt {
        Statement::Query(q) => shown_query(q),
        Statement::Insert(i) => i.returning.as_mut().map(|r| shown(r)),
        Statement::Update(u) => u.returning.as_mut().map(|r| shown(r)),
        Statement::Delete(d) => d.returning.as_mut().map(|r| shown(r)),
        _ => None,
    }
    .unwrap_or_default()
}

/// Result columns keep the decimal text; ORDER BY a position or name of one of them sorts
/// by its number.
fn shown_query(q: &mut Query) -> Option<Vec<bool>> {
    let SetExpr::Select(s) = q.body.as_mut() else {
        return None;
    };
    let before = s.projection.clone();
    let flags = shown(&mut s.projection);
    if let Some(ob) = &mut q.order_by
        && let OrderByKind::Expressions(list) = &mut ob.kind
    {
        for o in list {
            let i = match &o.expr {
                Expr::Value(v) => match &v.value {
                    Value::Number(n, _) => n.parse::<usize>().ok().and_then(|n| n.checked_sub(1)),
                    _ => None,
                },
                Expr::Identifier(id) => before.iter().position(|item| {
                    matches!(item, SelectItem::ExprWithAlias { alias, .. }
                        if alias.value.eq_ignore_ascii_case(&id.value))
                }),
                _ => None,
            };
            if let Some(i) = i.filter(|i| flags.get(*i) == Some(&true))
                && let Some(SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr)) =
                    before.get(i)
            {
                o.expr = expr.clone();
            }
        }
    }
    Some(flags)
}

fn shown(items: &mut [SelectItem]) -> Vec<bool> {
    items
        .iter_mut()
        .map(|item| {
            let (SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) = item
            else {
                return false;
            };
            match unwrapped(e).cloned() {
                Some(inner) => {
                    *e = inner;
                    true
                }
                None => false,
            }
        })
        .collect()
}
