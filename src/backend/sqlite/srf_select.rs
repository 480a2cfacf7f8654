//! Set-returning functions in the SELECT list for the SQLite backend: `SELECT id,
//! unnest(tags) FROM t` gives a row per element, as PostgreSQL does; SQLite has no such
//! functions in an expression. The call moves to FROM (`FROM t, unnest(t.tags) AS
//! _sy_srf0(v)`, which `lateral.rs` and `json_srf.rs` then rewrite) and its item reads
//! the new FROM item's column under the name PostgreSQL gives it. One such function per
//! SELECT, outside GROUP BY: PostgreSQL runs several in lockstep, which a join would not
//! (several `unnest`s and `generate_subscripts` over arrays are
//! `rewrite_ops::set_returning_projection`'s, which joins them by position).

use sqlparser::ast::{Expr, Ident, Query, SelectItem, SetExpr, TableWithJoins};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::translate::TranslateError;

const FUNCTIONS: &[&str] = &[
    "unnest",
    "generate_series",
    "jsonb_array_elements",
    "jsonb_array_elements_text",
    "json_array_elements",
    "json_array_elements_text",
    "jsonb_object_keys",
    "json_object_keys",
];

fn set_returning(e: &Expr) -> bool {
    match e {
        Expr::Nested(inner) => set_returning(inner),
        Expr::Function(f) => {
            let name = f.name.to_string().to_lowercase();
            FUNCTIONS.contains(&name.rsplit('.').next().unwrap_or(""))
        }
        _ => false,
    }
}

fn item_expr(item: &SelectItem) -> Option<&Expr> {
    match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    }
}

/// A FROM item of `call` named `alias`, with one column `v`.
fn from_item(call: &Expr, alias: &str) -> Option<TableWithJoins> {
    let sql = format!("SELECT 1 FROM {call} AS {alias}(v)");
    let stmt = Parser::parse_sql(&PostgreSqlDialect {}, &sql).ok()?.pop()?;
    let sqlparser::ast::Statement::Query(q) = stmt else {
        return None;
    };
    let SetExpr::Select(s) = *q.body else {
        return None;
    };
    s.from.into_iter().next()
}

/// Moves the set-returning function of `q`'s SELECT list, if any, to its FROM.
pub(super) fn rewrite(q: &mut Query) -> Result<(), TranslateError> {
    let SetExpr::Select(s) = q.body.as_mut() else {
        return Ok(());
    };
    let found: Vec<usize> = s
        .projection
        .iter()
        .enumerate()
        .filter(|(_, i)| item_expr(i).is_some_and(set_returning))
        .map(|(n, _)| n)
        .collect();
    // Several run side by side over arrays (`unnest(indkey), generate_subscripts(indkey,
    // 1)`, as reflection queries ask): `rewrite_ops::set_returning_projection`'s.
    let side_by_side = s.projection.iter().any(|i| {
        item_expr(i).is_some_and(|e| {
            matches!(e, Expr::Function(f) if f.name.to_string().to_lowercase().ends_with("generate_subscripts"))
        })
    });
    let [at] = found.as_slice() else {
        return Ok(());
    };
    if side_by_side {
        return Ok(());
    }
    if !matches!(&s.group_by, sqlparser::ast::GroupByExpr::Expressions(g, _) if g.is_empty()) {
        return Err(TranslateError::Refused(
            "a set-returning function in the SELECT list of a grouped query".into(),
        ));
    }
    super::column_names::name_query(q);
    let SetExpr::Select(s) = q.body.as_mut() else {
        return Ok(());
    };
    let alias = format!("_sy_srf{}", s.from.len());
    let Some(call) = item_expr(&s.projection[*at]).cloned() else {
        return Ok(());
    };
    let Some(table) = from_item(&call, &alias) else {
        return Ok(());
    };
    let column = Expr::CompoundIdentifier(vec![Ident::new(alias), Ident::new("v")]);
    s.projection[*at] = match &s.projection[*at] {
        SelectItem::ExprWithAlias { alias, .. } => SelectItem::ExprWithAlias {
            expr: column,
            alias: alias.clone(),
        },
        _ => SelectItem::UnnamedExpr(column),
    };
    s.from.push(table);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::translate::translate;

    #[test]
    fn the_function_moves_to_from() {
        let t = translate("SELECT id, unnest(tags) FROM t WHERE id > 1").unwrap();
        assert!(
            t[0].sql.contains("AS \"unnest\" FROM t, json_each"),
            "{}",
            t[0].sql
        );
        let t = translate("SELECT generate_series(1, 3) AS n").unwrap();
        assert!(t[0].sql.contains("AS n FROM"), "{}", t[0].sql);
        let e = translate("SELECT generate_series(1, 2) FROM t GROUP BY 1").unwrap_err();
        assert!(e.to_string().contains("grouped query"), "{e}");
    }
}
