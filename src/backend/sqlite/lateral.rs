//! `UNNEST(…)` over columns of the tables before it in FROM (`FROM pg_index i,
//! unnest(i.indkey, i.indoption) WITH ORDINALITY koi(key, option, arridx)`, as Django's
//! introspection sends it). SQLite lets only a table-valued function see the tables
//! before it, so the UNNEST becomes `json_each` over the positions of the arrays, and
//! each of its columns an element lookup by that position: in the SELECT's `*`, and
//! wherever the SELECT names the column. (UNNEST of parameters and constants is
//! [`super::rewrite_ops::unnest`]'s.) JSON set-returning functions in FROM go the same
//! way (see `json_srf.rs`).

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, Ident, ObjectName, ObjectNamePart, Query, Select, SelectItem, SetExpr, TableAlias,
    TableFactor, WildcardAdditionalOptions,
};

use super::rewrite::raw;

/// One rewritten UNNEST (or JSON set-returning function, see `json_srf.rs`): its alias
/// and its columns as (name, expression) — the first `width` of them what `*` stands for,
/// the rest other names they answer to.
pub(super) struct Unnested {
    pub(super) alias: String,
    pub(super) columns: Vec<(String, String)>,
    pub(super) width: usize,
}

pub(super) fn reads_columns(e: &Expr) -> bool {
    let mut found = false;
    let _ = sqlparser::ast::visit_expressions(e, |x| {
        found |= matches!(x, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
        ControlFlow::<()>::Continue(())
    });
    found
}

/// Replaces a lateral UNNEST in `tf` (the `n`th of its SELECT) and describes it.
fn replace(tf: &mut TableFactor, n: usize) -> Option<Unnested> {
    let TableFactor::UNNEST {
        alias,
        array_exprs,
        with_ordinality,
        ..
    } = tf
    else {
        return super::json_srf::replace(tf, n);
    };
    if !array_exprs.iter().any(reads_columns) {
        return None;
    }
    let (alias, array_exprs, with_ordinality) =
        (alias.clone(), array_exprs.clone(), *with_ordinality);
    let name = alias
        .as_ref()
        .map_or_else(|| format!("_sy_unnest{n}"), |a| a.name.value.clone());
    let named = |i: usize| match &alias {
        Some(a) if !a.columns.is_empty() => a.columns.get(i).map(|c| c.name.value.clone()),
        Some(a) if array_exprs.len() == 1 && i == 0 => Some(a.name.value.clone()),
        _ => None,
    };
    let mut columns: Vec<(String, String)> = array_exprs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let col = named(i).unwrap_or_else(|| "unnest".into());
            (
                col,
                format!(
                    "json_extract(sy_array({}), '$[' || {name}.value || ']')",
                    super::rewrite::fragment(e)
                ),
            )
        })
        .collect();
    if with_ordinality {
        let col = named(array_exprs.len()).unwrap_or_else(|| "ordinality".into());
        columns.push((col, format!("({name}.value + 1)")));
    }
    let args: Vec<String> = array_exprs.iter().map(super::rewrite::fragment).collect();
    let alias = TableAlias {
        explicit: true,
        name: Ident::new(name.clone()),
        columns: Vec::new(),
        at: None,
    };
    *tf = super::rewrite_ops::raw_table(
        format!("json_each(sy_positions({}))", args.join(", ")),
        Some(alias),
    );
    Some(Unnested {
        alias: name,
        width: columns.len(),
        columns,
    })
}

/// The columns SQLite's `json_each` has besides the ones a rewrite names.
const JSON_EACH_COLUMNS: &[&str] = &[
    "key", "value", "type", "atom", "id", "parent", "fullkey", "path", "json", "root",
];

/// The name a FROM item's columns go by (`t.*`).
fn qualifier(tf: &TableFactor) -> Option<String> {
    match tf {
        TableFactor::Table { name, alias, .. } => Some(
            alias
                .as_ref()
                .map_or_else(|| name.to_string(), |a| a.name.to_string()),
        ),
        TableFactor::Derived { alias, .. } | TableFactor::Function { alias, .. } => {
            alias.as_ref().map(|a| a.name.to_string())
        }
        _ => None,
    }
}

/// Rewrites the lateral UNNESTs of `q`'s SELECT, if any, and what names their columns
/// (in the SELECT and in the query's ORDER BY).
pub fn rewrite(q: &mut Query) {
    let SetExpr::Select(s) = q.body.as_mut() else {
        return;
    };
    let done = rewrite_select(s);
    if done.is_empty() {
        return;
    }
    // json_each has columns of its own (id, key, type, …): a bare name that is one of
    // them means the first table's column, as it did before the rewrite.
    let first = s
        .from
        .first()
        .filter(|t| {
            !done
                .iter()
                .any(|u| Some(&u.alias) == qualifier(&t.relation).as_ref())
        })
        .and_then(|t| qualifier(&t.relation));
    let lookup = |parts: &[&str]| -> Option<String> {
        done.iter().find_map(|u| {
            let col = match parts {
                [q, c] if q.eq_ignore_ascii_case(&u.alias) => *c,
                [c] => *c,
                _ => return None,
            };
            u.columns
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(col))
                .map(|(_, e)| e.clone())
        })
    };
    // A result column that names one of them keeps that name.
    if let SetExpr::Select(s) = q.body.as_mut() {
        for item in &mut s.projection {
            let name = match item {
                SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(i.value.clone()),
                SelectItem::UnnamedExpr(Expr::CompoundIdentifier(p)) => {
                    p.last().map(|i| i.value.clone())
                }
                _ => None,
            };
            if let (Some(name), SelectItem::UnnamedExpr(e)) = (name, &*item) {
                *item = SelectItem::ExprWithAlias {
                    expr: e.clone(),
                    alias: Ident::with_quote('"', name),
                };
            }
        }
    }
    let _ = sqlparser::ast::visit_expressions_mut(q, |e| {
        let found = match e {
            Expr::Identifier(i) => lookup(&[i.value.as_str()]).or_else(|| {
                let own = JSON_EACH_COLUMNS.contains(&i.value.to_lowercase().as_str());
                first
                    .as_ref()
                    .filter(|_| own)
                    .map(|t| format!("{t}.{}", super::functions::quote_ident(&i.value)))
            }),
            Expr::CompoundIdentifier(p) => {
                let parts: Vec<&str> = p.iter().map(|i| i.value.as_str()).collect();
                lookup(&parts)
            }
            _ => None,
        };
        if let Some(text) = found {
            *e = raw(text);
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Replaces the lateral UNNESTs in `s`'s FROM and its `*`; returns what they became.
fn rewrite_select(s: &mut Select) -> Vec<Unnested> {
    let mut done: Vec<Unnested> = Vec::new();
    let mut expandable = true;
    let mut wildcard: Vec<SelectItem> = Vec::new();
    let factors = s.from.iter_mut().flat_map(|t| {
        std::iter::once(&mut t.relation).chain(t.joins.iter_mut().map(|j| &mut j.relation))
    });
    for (i, tf) in factors.enumerate() {
        match replace(tf, i) {
            Some(u) => {
                wildcard.extend(u.columns[..u.width].iter().map(|(c, e)| {
                    SelectItem::ExprWithAlias {
                        expr: raw(e.clone()),
                        alias: Ident::with_quote('"', c.clone()),
                    }
                }));
                done.push(u);
            }
            None => match qualifier(tf) {
                Some(q) => wildcard.push(SelectItem::QualifiedWildcard(
                    sqlparser::ast::SelectItemQualifiedWildcardKind::ObjectName(ObjectName(vec![
                        ObjectNamePart::Identifier(Ident::new(q)),
                    ])),
                    WildcardAdditionalOptions::default(),
                )),
                // A FROM item `*` cannot be spelt out for: `*` stays as it is.
                None => expandable = false,
            },
        }
    }
    if done.is_empty() {
        return done;
    }
    if expandable
        && s.projection
            .iter()
            .any(|p| matches!(p, SelectItem::Wildcard(_)))
    {
        s.projection = s
            .projection
            .drain(..)
            .flat_map(|p| match p {
                SelectItem::Wildcard(_) => wildcard.clone(),
                other => vec![other],
            })
            .collect();
    }
    done
}

#[cfg(test)]
mod tests {
    use super::super::translate::translate;

    #[test]
    fn an_unnest_of_columns_before_it_becomes_a_lookup_by_position() {
        let t = translate(
            "SELECT * FROM pg_index i, unnest(i.indkey, i.indoption) WITH ORDINALITY koi(key, option, arridx) WHERE koi.key > 0",
        )
        .unwrap()
        .remove(0);
        assert!(
            t.sql
                .contains("FROM pg_index i, json_each(sy_positions(i.indkey, i.indoption)) AS koi"),
            "{}",
            t.sql
        );
        assert!(
            t.sql.contains(
                "SELECT i.*, json_extract(sy_array(i.indkey), '$[' || koi.value || ']') AS \"key\""
            ),
            "{}",
            t.sql
        );
        assert!(t.sql.contains("(koi.value + 1) AS \"arridx\""), "{}", t.sql);
        assert!(
            t.sql
                .contains("WHERE json_extract(sy_array(i.indkey), '$[' || koi.value || ']') > 0"),
            "{}",
            t.sql
        );
    }
}
