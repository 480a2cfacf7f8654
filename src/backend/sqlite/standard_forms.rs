//! The SQL standard's function syntax that SQLite does not read, as the calls it has:
//! `POSITION(a IN b)` → `instr(b, a)`, `SUBSTRING(x FROM a FOR b)` → `substr(x, a, b)`,
//! `EXTRACT(field FROM x)` → `sy_date_part('field', x)` (see `date_functions.rs`), and
//! typed literals (`DATE '2024-05-06'`, `TIMESTAMP '…'`) as the casts they are,
//! `CURRENT_ROLE` and `x AT TIME ZONE z` as the calls they are, and
//! `x SIMILAR TO 'pattern'` as the regular expression PostgreSQL makes of it.

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
        Expr::SimilarTo {
            negated,
            expr,
            pattern,
            escape_char: None,
        } => {
            let Expr::Value(v) = pattern.as_ref() else {
                return None;
            };
            let sqlparser::ast::Value::SingleQuotedString(p) = &v.value else {
                return None;
            };
            let re = similar_to_regex(p).replace('\'', "''");
            let not = if *negated { "NOT " } else { "" };
            raw(format!("({not}regexp('{re}', {expr}))"))
        }
        Expr::TypedString(t) => {
            use sqlparser::ast::{DataType, TimezoneInfo as Tz};
            let f = match &t.data_type {
                DataType::Date => "sy_date",
                DataType::Timestamp(_, Tz::WithTimeZone | Tz::Tz) => "sy_timestamptz",
                DataType::Timestamp(_, _) => "sy_timestamp",
                // A time of day is kept as the text it is.
                DataType::Time(_, _) => return Some(raw(t.value.to_string())),
                _ => return None,
            };
            raw(format!("{f}({})", t.value))
        }
        // `ts AT TIME ZONE 'zone'` (see `date_functions.rs`).
        Expr::AtTimeZone {
            timestamp,
            time_zone,
        } => raw(format!("sy_at_zone({timestamp}, {time_zone})")),
        // CURRENT_ROLE, which the SQL parser reads as a column name.
        Expr::Identifier(i)
            if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("current_role") =>
        {
            raw("current_role()")
        }
        _ => return None,
    })
}

/// `EXTRACT(field FROM x)` as PostgreSQL's numeric: `sy_extract`'s decimal text with the
/// field's scale, made a number where SQLite compares it (see `decimal_rewrite.rs`).
pub fn exact_extract(e: &Expr) -> Expr {
    let Expr::Extract { field, expr, .. } = e else {
        return e.clone();
    };
    use super::decimal_rewrite::call;
    let name = field.to_string().to_lowercase().replace('\'', "");
    let unit = Expr::value(sqlparser::ast::Value::SingleQuotedString(name));
    call(
        "sy_dec_num",
        vec![call("sy_extract", vec![unit, *expr.clone()])],
    )
}

/// A SIMILAR TO pattern as a regular expression (PostgreSQL's `similar_to_escape`): `%`
/// any text, `_` any character, `\` escapes, the rest of SQL's regular expressions as
/// they are, anchored at both ends.
fn similar_to_regex(p: &str) -> String {
    let mut out = String::from("^(?:");
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '\\' => match chars.next() {
                Some(n) => out.push_str(&regex::escape(&n.to_string())),
                None => out.push_str("\\\\"),
            },
            '.' | '^' | '$' => {
                out.push('\\');
                out.push(c);
            }
            other => out.push(other),
        }
    }
    out.push_str(")$");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn similar_to_patterns_become_anchored_regular_expressions() {
        assert_eq!(super::similar_to_regex("a%"), "^(?:a.*)$");
        assert_eq!(super::similar_to_regex("(b|c)_.x"), "^(?:(b|c).\\.x)$");
        assert_eq!(super::similar_to_regex("100\\%"), "^(?:100%)$");
    }
}
