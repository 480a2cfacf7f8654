//! Rewrites of PostgreSQL constructs into SQLite calls, kept apart from the tree walk in
//! [`super::rewrite`]: `UNNEST(…)` in FROM, and the jsonb operators (`?`, `?|`, `?&`,
//! `@>`, `<@`, `#>`, `#>>`, `#-`, `- 'key'`) as the functions of [`super::jsonb_ops`].

use sqlparser::ast::{
    BinaryOperator, Expr, FunctionArguments, Ident, ObjectName, ObjectNamePart, Select, SelectItem,
    TableFactor, TableWithJoins, Value,
};

use super::rewrite::raw;

/// `unnest(a)` and `generate_subscripts(a, 1)` in a SELECT list (PostgreSQL's
/// set-returning functions, as catalog queries use them over `conkey` and `indkey`): one
/// `json_each` over each array joined into FROM (SQLite's table-valued functions see the
/// tables before them), its `value` and `key + 1` in their place.
pub fn set_returning_projection(s: &mut Select) {
    let mut arrays: Vec<String> = Vec::new();
    for item in &mut s.projection {
        let (SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }) = item else {
            continue;
        };
        // `(information_schema._pg_expandarray(a)).n` / `.x` (pgjdbc's key and index
        // columns): the position or the element; the bare call stands for its element.
        let mut field = None;
        if let Expr::CompoundFieldAccess { root, access_chain } = e
            && let Expr::Nested(inner) = root.as_ref()
            && matches!(inner.as_ref(), Expr::Function(_))
            && let [sqlparser::ast::AccessExpr::Dot(Expr::Identifier(f))] = access_chain.as_slice()
        {
            field = Some(f.value.to_lowercase());
            let call = inner.as_ref().clone();
            *e = call;
        }
        let Expr::Function(f) = e else { continue };
        let Some(name) = f.name.0.last().and_then(|p| p.as_ident()) else {
            continue;
        };
        let FunctionArguments::List(l) = &f.args else {
            continue;
        };
        let column = if name.value.eq_ignore_ascii_case("unnest") && l.args.len() == 1 {
            "value"
        } else if name.value.eq_ignore_ascii_case("generate_subscripts") {
            "key + 1"
        } else if name.value.eq_ignore_ascii_case("_pg_expandarray") && l.args.len() == 1 {
            match field.as_deref() {
                Some("n") => "key + 1",
                _ => "value",
            }
        } else {
            continue;
        };
        let Some(first) = l.args.first().map(|a| a.to_string()) else {
            continue;
        };
        let i = match arrays.iter().position(|a| *a == first) {
            Some(i) => i,
            None => {
                arrays.push(first);
                arrays.len() - 1
            }
        };
        *e = raw(format!("(_sy_srf{i}.{column})"));
    }
    if arrays.is_empty() {
        return;
    }
    // Side by side, as PostgreSQL runs several in one SELECT list (the shorter padded
    // with NULLs): the first drives, the others are joined by position.
    let each = |i: usize, a: &str| {
        raw_table(
            format!("json_each(sy_array({a}))"),
            Some(sqlparser::ast::TableAlias {
                explicit: true,
                name: Ident::new(format!("_sy_srf{i}")),
                columns: Vec::new(),
                at: None,
            }),
        )
    };
    let joins = arrays
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, a)| sqlparser::ast::Join {
            relation: each(i, a),
            global: false,
            join_operator: sqlparser::ast::JoinOperator::LeftOuter(
                sqlparser::ast::JoinConstraint::On(raw(format!("_sy_srf{i}.key = _sy_srf0.key"))),
            ),
        })
        .collect();
    s.from.push(TableWithJoins {
        relation: each(0, &arrays[0]),
        joins,
    });
}

/// `(t.keys).x`: the element of a `_pg_expandarray` row, which the rewrite above leaves as
/// the element itself (pgjdbc reads its keys so).
pub fn expanded_element(e: &Expr) -> Option<Expr> {
    let Expr::CompoundFieldAccess { root, access_chain } = e else {
        return None;
    };
    let Expr::Nested(inner) = root.as_ref() else {
        return None;
    };
    match (inner.as_ref(), access_chain.as_slice()) {
        (
            Expr::Identifier(_) | Expr::CompoundIdentifier(_),
            [sqlparser::ast::AccessExpr::Dot(Expr::Identifier(f))],
        ) if f.value.eq_ignore_ascii_case("x") => Some(inner.as_ref().clone()),
        _ => None,
    }
}

/// `a[i]` (and `a[i][j]`, `t.a[i]`) as `sy_subscript` calls; None for slices and other
/// accesses.
pub fn subscript(root: &Expr, chain: &[sqlparser::ast::AccessExpr]) -> Option<Expr> {
    use sqlparser::ast::{AccessExpr, Subscript};
    let mut out = root.to_string();
    let mut subscripts = 0;
    for access in chain {
        match access {
            // `t.col[1]` parses as `t` then `.col` then `[1]`.
            AccessExpr::Dot(name) if subscripts == 0 => out = format!("{out}.{name}"),
            AccessExpr::Subscript(Subscript::Index { index }) => {
                subscripts += 1;
                out = format!("sy_subscript({out}, {index})");
            }
            _ => return None,
        }
    }
    (subscripts > 0).then(|| raw(out))
}

/// `x::regclass` in the outermost SELECT list shows the relation's name, as PostgreSQL
/// prints a regclass (psql's `\\d` names the tables that reference this one so);
/// elsewhere a regclass stays the OID it compares as.
pub fn regclass_names(q: &mut sqlparser::ast::Query) {
    let sqlparser::ast::SetExpr::Select(s) = q.body.as_mut() else {
        return;
    };
    for item in &mut s.projection {
        let (e, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.clone())),
            _ => continue,
        };
        let Expr::Cast {
            expr: inner,
            data_type,
            ..
        } = e
        else {
            continue;
        };
        if !data_type.to_string().to_lowercase().ends_with("regclass")
            || matches!(inner.as_ref(), Expr::Value(_))
        {
            continue;
        }
        let name = alias.unwrap_or_else(|| match inner.as_ref() {
            Expr::Identifier(i) => i.clone(),
            Expr::CompoundIdentifier(p) => {
                p.last().cloned().unwrap_or_else(|| Ident::new("regclass"))
            }
            _ => Ident::new("regclass"),
        });
        *item = SelectItem::ExprWithAlias {
            expr: raw(format!(
                "(SELECT relname FROM pg_class WHERE oid = {inner})"
            )),
            alias: name,
        };
    }
}

/// `x::regclass::text` (x not a constant): the relation's name, as PostgreSQL prints a
/// regclass (SQLAlchemy's identity reflection asks `pg_get_serial_sequence` so).
pub fn regclass_text(e: &Expr) -> Option<Expr> {
    let Expr::Cast {
        expr: inner,
        data_type,
        ..
    } = e
    else {
        return None;
    };
    let Expr::Cast {
        expr: rel,
        data_type: inner_type,
        ..
    } = inner.as_ref()
    else {
        return None;
    };
    let is =
        |t: &sqlparser::ast::DataType, name: &str| t.to_string().to_lowercase().ends_with(name);
    // (Seen before the walk drops a schema prefix: `pg_catalog.t.c` is `t.c`.)
    let rel = match rel.as_ref() {
        Expr::Identifier(i) => i.to_string(),
        Expr::CompoundIdentifier(p) => {
            let keep = p.len().saturating_sub(2);
            p[keep..]
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(".")
        }
        _ => return None,
    };
    (is(data_type, "text") && is(inner_type, "regclass"))
        .then(|| raw(format!("(SELECT relname FROM pg_class WHERE oid = {rel})")))
}

/// Whether a catalog view's column `name` is a boolean (kept as 0/1).
pub(super) fn is_catalog_bool(name: &str) -> bool {
    name == "seqcycle" || super::exec::CATALOG_BOOLS.contains(&name)
}

/// The marker `pre_visit_expr` puts on a jsonb `||`.
pub const JSONB_CONCAT: &str = "sy_jsonb_concat";

/// `x::jsonb` or `x::json`.
pub fn is_jsonb_cast(e: &Expr) -> bool {
    matches!(e, Expr::Cast { data_type, .. }
        if matches!(data_type.to_string().to_lowercase().as_str(), "jsonb" | "json"))
}

/// Whether `left op right` is a jsonb operator (`-` only with a string key on the right:
/// PostgreSQL would refuse a number minus a string).
pub fn is_jsonb(op: &BinaryOperator, right: &Expr) -> bool {
    use BinaryOperator as B;
    match op {
        B::Question
        | B::QuestionPipe
        | B::QuestionAnd
        | B::AtArrow
        | B::ArrowAt
        | B::HashArrow
        | B::HashLongArrow
        | B::HashMinus => true,
        B::Minus => matches!(
            right,
            Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_))
        ),
        B::Custom(c) => c == JSONB_CONCAT,
        _ => false,
    }
}

/// `left op right` as the SQL function that computes it.
pub fn jsonb_operator(left: &Expr, op: &BinaryOperator, right: &Expr) -> Expr {
    use BinaryOperator as B;
    let call = match op {
        B::Question => format!("sy_jsonb_exists({left}, {right})"),
        B::QuestionPipe => format!("sy_jsonb_exists_any({left}, sy_array({right}))"),
        B::QuestionAnd => format!("sy_jsonb_exists_all({left}, sy_array({right}))"),
        B::AtArrow => format!("sy_jsonb_contains({left}, {right})"),
        B::ArrowAt => format!("sy_jsonb_contains({right}, {left})"),
        B::HashArrow => format!("sy_jsonb_path({left}, sy_array({right}))"),
        B::HashLongArrow => format!("sy_jsonb_path_text({left}, sy_array({right}))"),
        B::HashMinus => format!("sy_jsonb_delete_path({left}, sy_array({right}))"),
        B::Custom(_) => format!("sy_jsonb_concat({left}, {right})"),
        _ => format!("sy_jsonb_minus({left}, {right})"),
    };
    raw(call)
}

/// `UNNEST(a, b, …)` in FROM: the arrays' elements side by side (a shorter one padded
/// with NULLs, as PostgreSQL does), in order, through SQLite's `json_each` over the JSON
/// arrays `sy_array` makes of PostgreSQL's literals. Columns are named as PostgreSQL
/// names them: the alias's column list, else the alias for one array, else `unnest`;
/// `WITH ORDINALITY` adds the position (from 1) after them.
pub fn unnest(tf: &sqlparser::ast::TableFactor) -> sqlparser::ast::TableFactor {
    let sqlparser::ast::TableFactor::UNNEST {
        alias,
        array_exprs,
        with_ordinality,
        ..
    } = tf
    else {
        return tf.clone();
    };
    let name = |i: usize| {
        match alias {
            Some(a) if !a.columns.is_empty() => a.columns.get(i).map(|c| c.name.value.clone()),
            Some(a) if array_exprs.len() == 1 => Some(a.name.value.clone()),
            _ => None,
        }
        .unwrap_or_else(|| "unnest".into())
    };
    let mut cols = Vec::new();
    let mut from = String::new();
    // The longest array drives the rows; each element is looked up by position.
    let lengths: Vec<String> = array_exprs
        .iter()
        .map(|e| format!("json_array_length(sy_array({e}))"))
        .collect();
    let driver = if lengths.len() == 1 {
        lengths[0].clone()
    } else {
        format!("max({})", lengths.join(", "))
    };
    for (i, e) in array_exprs.iter().enumerate() {
        cols.push(format!(
            "json_extract(sy_array({e}), '$[' || _sy_n.i || ']') AS \"{}\"",
            name(i).replace('"', "\"\"")
        ));
    }
    if *with_ordinality {
        let n = array_exprs.len();
        let named = alias.as_ref().and_then(|a| a.columns.get(n));
        let ord = named.map_or("ordinality".to_string(), |c| c.name.value.clone());
        cols.push(format!("_sy_n.i + 1 AS \"{}\"", ord.replace('"', "\"\"")));
    }
    from.push_str(&format!(
        "(WITH RECURSIVE _sy_n(i) AS (SELECT 0 WHERE {driver} > 0 UNION ALL SELECT i + 1 FROM _sy_n WHERE i + 1 < {driver}) SELECT {} FROM _sy_n)",
        cols.join(", ")
    ));
    let alias = alias.clone().map(|mut a| {
        a.columns.clear();
        a
    });
    raw_table(from, alias)
}

/// `pg_partition_ancestors(rel) [WITH ORDINALITY] a (relid, depth)` in FROM (psql's
/// `\\d` asks it of a table's triggers): a table without partitions is its only
/// ancestor, at depth 1.
pub fn partition_ancestors(tf: &TableFactor) -> Option<TableFactor> {
    let TableFactor::Table {
        name,
        args: Some(args),
        alias,
        with_ordinality,
        ..
    } = tf
    else {
        return None;
    };
    if !name
        .to_string()
        .to_lowercase()
        .ends_with("pg_partition_ancestors")
    {
        return None;
    }
    let rel = args.args.first()?.to_string();
    let col = |i: usize, default: &str| {
        alias
            .as_ref()
            .and_then(|a| a.columns.get(i))
            .map_or(default.to_string(), |c| c.name.value.clone())
    };
    let mut cols = vec![format!(
        "({rel}) AS \"{}\"",
        col(0, "pg_partition_ancestors")
    )];
    if *with_ordinality {
        cols.push(format!("1 AS \"{}\"", col(1, "ordinality")));
    }
    let alias = alias.clone().map(|mut a| {
        a.columns.clear();
        a
    });
    Some(raw_table(format!("(SELECT {})", cols.join(", ")), alias))
}

/// A FROM item that is SQL text (a subquery or a table-valued call) under `alias`.
pub(super) fn raw_table(sql: String, alias: Option<sqlparser::ast::TableAlias>) -> TableFactor {
    TableFactor::Table {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident {
            value: sql,
            quote_style: None,
            span: sqlparser::tokenizer::Span::empty(),
        })]),
        alias,
        args: None,
        with_hints: Vec::new(),
        version: None,
        with_ordinality: false,
        partitions: Vec::new(),
        json_path: None,
        sample: None,
        index_hints: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::translate::translate;

    #[test]
    fn subscripts_become_element_lookups() {
        let t = translate(
            "SELECT a1.attname FROM pg_constraint con LEFT JOIN pg_attribute a1 ON a1.attnum = con.conkey[1] WHERE x[2][3] = 1",
        )
        .unwrap()
        .remove(0);
        assert!(
            t.sql.contains("a1.attnum = sy_subscript(con.conkey, 1)"),
            "{}",
            t.sql
        );
        assert!(
            t.sql.contains("sy_subscript(sy_subscript(x, 2), 3) = 1"),
            "{}",
            t.sql
        );
    }
}
