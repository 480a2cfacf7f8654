//! The names PostgreSQL gives result columns that the query does not name: a function's
//! name (`count(*)` → `count`), a cast's column or type (`x::text` → `x`, `1::int` →
//! `int4`), `CASE` → `case`, `tags[1]` → `tags`, anything else `?column?`. SQLite would
//! name them by their text, so the translation names them explicitly.

use sqlparser::ast::{Expr, Ident};

use super::translate::ident_name;

/// Names unnamed result expressions the way PostgreSQL does (`count(*)` → `count`,
/// `x::text` → `x`, `1` → `?column?`), since SQLite would name them by their text.
pub(super) fn name_columns(items: &mut [sqlparser::ast::SelectItem]) {
    use sqlparser::ast::SelectItem;
    for item in items.iter_mut() {
        if let SelectItem::UnnamedExpr(e) = item
            && let Some(name) = pg_column_name(e)
        {
            let alias = Ident::with_quote('"', name);
            *item = SelectItem::ExprWithAlias {
                expr: e.clone(),
                alias,
            };
        }
    }
}

/// Names the unnamed result columns of `q`'s own SELECT (see [`name_columns`]): the
/// rewrites call it before they change what the client wrote.
pub(super) fn name_query(q: &mut sqlparser::ast::Query) {
    if let sqlparser::ast::SetExpr::Select(s) = q.body.as_mut() {
        name_columns(&mut s.projection);
    }
}

pub(super) fn pg_column_name(e: &Expr) -> Option<String> {
    Some(match e {
        Expr::Identifier(i)
            if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("current_role") =>
        {
            "current_role".into()
        }
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => return None,
        Expr::Function(f) => ident_name(&f.name)
            .rsplit('.')
            .next()
            .unwrap_or("?column?")
            .to_lowercase(),
        Expr::Cast {
            expr, data_type, ..
        } => match pg_column_name(expr) {
            None => match expr.as_ref() {
                Expr::Identifier(i) => i.value.clone(),
                Expr::CompoundIdentifier(p) => {
                    p.last().map(|i| i.value.clone()).unwrap_or_default()
                }
                _ => return None,
            },
            // A cast of a cast is named by the outer type, as PostgreSQL names it.
            Some(n) if n != "?column?" && !matches!(expr.as_ref(), Expr::Cast { .. }) => n,
            Some(_) => {
                // An array type is named by its element type (`'{a}'::text[]` → `text`).
                let t = super::ddl::base_type(data_type);
                let t = t.trim_end_matches("[]").to_string();
                match super::types::oid_for_decltype(&t) {
                    super::types::INT4 => "int4".into(),
                    super::types::INT8 => "int8".into(),
                    super::types::INT2 => "int2".into(),
                    super::types::BOOL => "bool".into(),
                    super::types::FLOAT8 => "float8".into(),
                    super::types::FLOAT4 => "float4".into(),
                    _ => t
                        .split_whitespace()
                        .next()
                        .unwrap_or("?column?")
                        .to_string(),
                }
            }
        },
        Expr::Nested(inner) => {
            return pg_column_name(inner)
                .or_else(|| Some("?column?".into()))
                .filter(|_| {
                    !matches!(
                        inner.as_ref(),
                        Expr::Identifier(_) | Expr::CompoundIdentifier(_)
                    )
                });
        }
        Expr::Case { .. } => "case".into(),
        Expr::AtTimeZone { .. } => "timezone".into(),
        Expr::Array(_) => "array".into(),
        Expr::Interval(_) => "interval".into(),
        // `tags[1]` is named by its column, as in PostgreSQL.
        Expr::CompoundFieldAccess { root, .. } => match root.as_ref() {
            Expr::Identifier(i) => i.value.clone(),
            Expr::CompoundIdentifier(p) => p.last().map(|i| i.value.clone())?,
            // `(array_agg(x))[1]` is named by the function.
            other => pg_column_name(other).unwrap_or_else(|| "?column?".into()),
        },
        Expr::Ceil { .. } => "ceil".into(),
        Expr::Floor { .. } => "floor".into(),
        Expr::Position { .. } => "position".into(),
        Expr::Substring {
            shorthand: true, ..
        } => "substr".into(),
        Expr::Substring { .. } => "substring".into(),
        Expr::Extract { .. } => "extract".into(),
        // `NOT EXISTS (…)` is an expression over `exists`, unnamed.
        Expr::Exists { negated: false, .. } => "exists".into(),
        Expr::Trim { trim_where, .. } => match trim_where {
            Some(sqlparser::ast::TrimWhereField::Leading) => "ltrim",
            Some(sqlparser::ast::TrimWhereField::Trailing) => "rtrim",
            _ => "btrim",
        }
        .into(),
        // `DATE '…'`, `TIME '…'`, `TIMESTAMP '…'`: the type's short name.
        Expr::TypedString(t) => {
            use sqlparser::ast::{DataType, TimezoneInfo as Tz};
            match &t.data_type {
                DataType::Date => "date",
                DataType::Time(_, Tz::WithTimeZone | Tz::Tz) => "timetz",
                DataType::Time(_, _) => "time",
                DataType::Timestamp(_, Tz::WithTimeZone | Tz::Tz) => "timestamptz",
                DataType::Timestamp(_, _) => "timestamp",
                _ => "?column?",
            }
            .into()
        }
        _ => "?column?".into(),
    })
}
