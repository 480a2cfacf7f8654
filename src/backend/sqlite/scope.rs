//! What a column reference stands for when it names a derived table's column
//! (`FROM (SELECT array_agg(x) AS elements …) AS cols` … `cols.elements`): the expression
//! behind it, with that subquery's own scope, so result types can be inferred through
//! subqueries as PostgreSQL knows them (catalog reflection queries nest three deep); or
//! a set-returning function's column in FROM (`from_functions.rs`), with its type.

use sqlparser::ast::{Expr, Select, SelectItem, SetExpr, TableFactor};

use super::from_functions::{FromFunction, columns_of};

/// The derived tables of one SELECT's FROM, by alias.
#[derive(Default)]
pub struct Scope<'a> {
    derived: Vec<(String, &'a Select)>,
    functions: Vec<FromFunction>,
}

impl<'a> Scope<'a> {
    /// The scope of `s`'s FROM clause (joins included).
    pub fn of(s: &'a Select) -> Scope<'a> {
        let mut derived = Vec::new();
        let mut functions = Vec::new();
        for t in &s.from {
            for f in std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)) {
                functions.extend(columns_of(f));
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
        Scope { derived, functions }
    }

    /// The type of a FROM function's column `e` names (Some(None): one whose type is not
    /// evident).
    pub fn function_column(&self, e: &Expr) -> Option<Option<u32>> {
        let (table, column) = parts(e)?;
        self.functions
            .iter()
            .filter(|f| table.as_ref().is_none_or(|t| *t == f.alias))
            .find_map(|f| f.columns.iter().find(|c| c.0 == column).map(|c| c.1))
    }

    /// The columns of `*` when FROM is a single function and nothing else.
    pub fn only_function(&self) -> Option<&[(String, Option<u32>)]> {
        match (&self.functions[..], self.derived.is_empty()) {
            ([f], true) => Some(&f.columns[..f.width]),
            _ => None,
        }
    }

    /// The expression a derived table's column stands for, and its scope.
    pub fn resolve(&self, e: &Expr) -> Option<(&'a Expr, Scope<'a>)> {
        let (table, column) = parts(e)?;
        self.derived
            .iter()
            .filter(|(alias, _)| table.as_ref().is_none_or(|t| t == alias))
            .find_map(|(_, s)| item(s, &column).map(|e| (e, Scope::of(s))))
    }
}

/// A column reference's (table, column), lower case.
fn parts(e: &Expr) -> Option<(Option<String>, String)> {
    match e {
        Expr::Identifier(i) => Some((None, i.value.to_lowercase())),
        Expr::CompoundIdentifier(p) if p.len() >= 2 => Some((
            Some(p[p.len() - 2].value.to_lowercase()),
            p[p.len() - 1].value.to_lowercase(),
        )),
        _ => None,
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
