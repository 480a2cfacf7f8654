//! What a column reference stands for when it names a derived table's column
//! (`FROM (SELECT array_agg(x) AS elements …) AS cols` … `cols.elements`): the expression
//! behind it, with that subquery's own scope, so result types can be inferred through
//! subqueries as PostgreSQL knows them (catalog reflection queries nest three deep).

use sqlparser::ast::{Expr, Select, SelectItem, SetExpr, TableFactor};

/// The derived tables of one SELECT's FROM, by alias.
#[derive(Default)]
pub struct Scope<'a> {
    derived: Vec<(String, &'a Select)>,
}

impl<'a> Scope<'a> {
    /// The scope of `s`'s FROM clause (joins included).
    pub fn of(s: &'a Select) -> Scope<'a> {
        let mut derived = Vec::new();
        for t in &s.from {
            for f in std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)) {
                if let TableFactor::Derived {
                    subquery,
                    alias: Some(alias),
                    ..
                } = f
                    && let SetExpr::Select(inner) = subquery.body.as_ref()
                {
                    derived.push((alias.name.value.to_lowercase(), inner.as_ref()));
                }
            }
        }
        Scope { derived }
    }

    /// The expression a derived table's column stands for, and its scope.
    pub fn resolve(&self, e: &Expr) -> Option<(&'a Expr, Scope<'a>)> {
        let (table, column) = match e {
            Expr::Identifier(i) => (None, i.value.to_lowercase()),
            Expr::CompoundIdentifier(p) if p.len() >= 2 => (
                Some(p[p.len() - 2].value.to_lowercase()),
                p[p.len() - 1].value.to_lowercase(),
            ),
            _ => return None,
        };
        self.derived
            .iter()
            .filter(|(alias, _)| table.as_ref().is_none_or(|t| t == alias))
            .find_map(|(_, s)| item(s, &column).map(|e| (e, Scope::of(s))))
    }
}

/// The projection expression of `s` named `column`.
fn item<'a>(s: &'a Select, column: &str) -> Option<&'a Expr> {
    s.projection.iter().find_map(|i| match i {
        SelectItem::ExprWithAlias { expr, alias } if alias.value.eq_ignore_ascii_case(column) => {
            Some(expr)
        }
        SelectItem::UnnamedExpr(e) => match e {
            Expr::Identifier(x) if x.value.eq_ignore_ascii_case(column) => Some(e),
            Expr::CompoundIdentifier(p)
                if p.last()
                    .is_some_and(|x| x.value.eq_ignore_ascii_case(column)) =>
            {
                Some(e)
            }
            _ => None,
        },
        _ => None,
    })
}
