//! The SQL standard's function syntax that SQLite does not read, as the calls it has:
//! `POSITION(a IN b)` → `instr(b, a)`, `SUBSTRING(x FROM a FOR b)` → `substr(x, a, b)`,
//! `EXTRACT(field FROM x)` → `sy_date_part('field', x)` (see `date_functions.rs`), and
//! typed literals (`DATE '2024-05-06'`, `TIMESTAMP '…'`) as the casts they are.

use sqlparser::ast::Expr;

use super::rewrite::raw;

/// `e` as a function call SQLite runs, where it is one of the forms above.
pub fn call_form(e: &Expr) -> Option<Expr> {
    Some(match e {
        Expr::Position { expr, r#in } => raw(format!("instr({in}, {expr})", r#in = r#in)),
        Expr::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            let from = substring_from
                .as_ref()
                .map_or("1".to_string(), |f| f.to_string());
            match substring_for {
                Some(n) => raw(format!("substr({expr}, {from}, {n})")),
                None => raw(format!("substr({expr}, {from})")),
            }
        }
        Expr::Extract { field, expr, .. } => {
            let name = field.to_string().to_lowercase().replace('\'', "");
            raw(format!("sy_date_part('{name}', {expr})"))
        }
        Expr::TypedString(t) => {
            use sqlparser::ast::{DataType, TimezoneInfo as Tz};
            let f = match &t.data_type {
                DataType::Date => "sy_date",
                DataType::Timestamp(_, Tz::WithTimeZone | Tz::Tz) => "sy_timestamptz",
                DataType::Timestamp(_, _) => "sy_timestamp",
                _ => return None,
            };
            raw(format!("{f}({})", t.value))
        }
        _ => return None,
    })
}
