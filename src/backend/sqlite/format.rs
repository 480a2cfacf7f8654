//! PostgreSQL's `format(fmt, args…)` (`%s`, `%I`, `%L`, `%%`, positions as `%2$s`, a
//! width as `%-10s`), `quote_literal` and `quote_nullable` for the SQLite backend. SQLite's
//! own `format` is C's printf, which prints nothing for `%L` or `%I`: `format('%s is %L',
//! 'x', 'y')` read `x is ` without an error.

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value;

/// A value as `format`'s `%s` prints it (NULL: nothing).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Integer(n) => Some(n.to_string()),
        Value::Real(f) => Some(f.to_string()),
        Value::Text(s) => Some(s.clone()),
        Value::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
    }
}

/// PostgreSQL's `quote_literal`: `'a''b'`, `E'a\\b'` when there is a backslash.
pub fn quote_literal(s: &str) -> String {
    let body = s.replace('\'', "''");
    if s.contains('\\') {
        format!("E'{}'", body.replace('\\', "\\\\"))
    } else {
        format!("'{body}'")
    }
}

/// Formats `fmt` with `args` as PostgreSQL's `format` does.
pub fn format(fmt: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    let mut next = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        // %[position$][-][width]type
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || d == '$' || d == '-' {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let kind = chars
            .next()
            .ok_or("22023: unterminated format() type specifier")?;
        let (position, rest) = match spec.split_once('$') {
            Some((p, rest)) => (
                Some(
                    p.parse::<usize>()
                        .map_err(|_| "22023: invalid format position")?,
                ),
                rest,
            ),
            None => (None, spec.as_str()),
        };
        let left = rest.starts_with('-');
        let width: usize = rest.trim_start_matches('-').parse().unwrap_or(0);
        let at = match position {
            Some(0) => {
                return Err(
                    "22023: format specifies argument 0, but arguments are numbered from 1".into(),
                );
            }
            Some(p) => p - 1,
            None => next,
        };
        next = at + 1;
        let arg = args
            .get(at)
            .ok_or("22023: too few arguments for format()")?;
        let piece = match kind {
            's' => text(arg).unwrap_or_default(),
            'I' => super::functions::quote_ident(
                &text(arg).ok_or("22004: null values cannot be formatted as an SQL identifier")?,
            ),
            'L' => text(arg).map_or("NULL".into(), |s| quote_literal(&s)),
            other => {
                return Err(format!(
                    "22023: unrecognized format() type specifier \"{other}\""
                ));
            }
        };
        let pad = width.saturating_sub(piece.chars().count());
        if left {
            out.push_str(&piece);
            out.push_str(&" ".repeat(pad));
        } else {
            out.push_str(&" ".repeat(pad));
            out.push_str(&piece);
        }
    }
    Ok(out)
}

/// Registers `format`, `quote_literal` and `quote_nullable`.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("format", -1, det, |ctx| {
        let Some(fmt) = ctx.get::<Option<String>>(0)? else {
            return Ok(None);
        };
        let args = (1..ctx.len())
            .map(|i| ctx.get::<Value>(i))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        format(&fmt, &args)
            .map(Some)
            .map_err(|m| rusqlite::Error::UserFunctionError(m.into()))
    })?;
    conn.create_scalar_function("quote_literal", 1, det, |ctx| {
        Ok(text(&ctx.get::<Value>(0)?).map(|s| quote_literal(&s)))
    })?;
    conn.create_scalar_function("quote_nullable", 1, det, |ctx| {
        Ok(text(&ctx.get::<Value>(0)?).map_or("NULL".into(), |s| quote_literal(&s)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers PostgreSQL 15 gave.
    #[test]
    fn format_answers_as_postgresql_does() {
        let t = |s: &str| Value::Text(s.into());
        assert_eq!(format("%s is %L", &[t("x"), t("y")]).unwrap(), "x is 'y'");
        assert_eq!(format("%I.%I", &[t("A"), t("b")]).unwrap(), "\"A\".b");
        assert_eq!(format("%L", &[Value::Null]).unwrap(), "NULL");
        assert_eq!(format("[%s]", &[Value::Null]).unwrap(), "[]");
        assert_eq!(format("%2$s %1$s", &[t("a"), t("b")]).unwrap(), "b a");
        assert_eq!(
            format("|%-5s|%5s|", &[t("a"), t("b")]).unwrap(),
            "|a    |    b|"
        );
        assert_eq!(format("100%%", &[]).unwrap(), "100%");
        assert_eq!(
            format("%s %s", &[Value::Integer(1), t("x")]).unwrap(),
            "1 x"
        );
        assert!(format("%s %s", &[t("a")]).unwrap_err().starts_with("22023"));
        assert!(
            format("%I", &[Value::Null])
                .unwrap_err()
                .starts_with("22004")
        );
        assert_eq!(quote_literal("a'b"), "'a''b'");
        assert_eq!(quote_literal("a\\b"), "E'a\\\\b'");
    }
}
