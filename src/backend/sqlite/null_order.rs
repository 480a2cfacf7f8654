//! Where NULLs sort: PostgreSQL takes NULL as larger than every value (last when
//! ascending, first when descending); SQLite as smaller. Every ORDER BY that does not say
//! NULLS FIRST or LAST — a query's, a window's, an ordered aggregate's — is given
//! PostgreSQL's explicitly (SQLite reads NULLS FIRST/LAST since 3.30, and still walks an
//! index for it).

use sqlparser::ast::{
    Function, FunctionArgumentClause, FunctionArguments, OrderByExpr, OrderByKind, OrderBySort,
    Query, WindowType,
};

fn explicit(list: &mut [OrderByExpr]) {
    for o in list {
        if o.options.nulls_first.is_none() {
            o.options.nulls_first = Some(matches!(o.options.sort, Some(OrderBySort::Desc)));
        }
    }
}

/// The query's own ORDER BY.
pub fn query(q: &mut Query) {
    if let Some(ob) = &mut q.order_by
        && let OrderByKind::Expressions(list) = &mut ob.kind
    {
        explicit(list);
    }
}

/// A window's ORDER BY and an aggregate's (`string_agg(x, ',' ORDER BY y)`).
pub fn function(f: &mut Function) {
    if let Some(WindowType::WindowSpec(spec)) = &mut f.over {
        explicit(&mut spec.order_by);
    }
    if let FunctionArguments::List(l) = &mut f.args {
        for c in &mut l.clauses {
            if let FunctionArgumentClause::OrderBy(list) = c {
                explicit(list);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::translate::translate;

    #[test]
    fn nulls_sort_as_in_postgresql() {
        let t = translate(
            "SELECT a, row_number() OVER (ORDER BY b DESC) FROM t ORDER BY a, b DESC, c NULLS FIRST",
        )
        .unwrap()
        .remove(0);
        assert!(
            t.sql
                .contains("ORDER BY a NULLS LAST, b DESC NULLS FIRST, c NULLS FIRST"),
            "{}",
            t.sql
        );
        assert!(
            t.sql.contains("OVER (ORDER BY b DESC NULLS FIRST)"),
            "{}",
            t.sql
        );
    }
}
