//! PostgreSQL's regular expressions for the SQLite backend, with the `regex` crate: the
//! `~`, `~*`, `!~`, `!~*` operators (rewritten to `regexp(pattern, text)`),
//! `regexp_replace(text, pattern, replacement [, flags])` (`g` and `i`; `\1` and `&` in
//! the replacement) and `regexp_match(text, pattern [, flags])` (an array of the groups,
//! or of the whole match). PostgreSQL's advanced regular expressions and Rust's agree on
//! what applications write (classes, quantifiers, anchors, alternation, groups); a
//! pattern Rust cannot read (a back reference) fails with 2201B naming it. A pattern that
//! is the same for every row is compiled once per statement.

use std::sync::Arc;

use regex::{Regex, RegexBuilder};
use rusqlite::Connection;
use rusqlite::functions::{Context, FunctionFlags};

fn fail(m: String) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(m.into())
}

fn compile(pattern: &str, insensitive: bool) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .case_insensitive(insensitive)
        .build()
        .map_err(|e| {
            // The regex crate's message draws the pattern over several lines; its last
            // line says what is wrong.
            let text = e.to_string();
            let why = text.lines().last().unwrap_or_default();
            let why = why.strip_prefix("error: ").unwrap_or(why);
            format!("2201B: invalid regular expression: {why}")
        })
}

/// The compiled pattern of argument `at`, kept with the statement while it runs.
fn pattern(ctx: &Context<'_>, at: i32, insensitive: bool) -> rusqlite::Result<Arc<Regex>> {
    ctx.get_or_create_aux(
        at,
        |v| -> Result<Regex, Box<dyn std::error::Error + Send + Sync>> {
            let p = v.as_str().map_err(|e| e.to_string())?;
            Ok(compile(p, insensitive)?)
        },
    )
}

/// PostgreSQL's replacement text (`\1`, `&`, `\&`, `\\`) in the `regex` crate's words.
fn replacement(pg: &str) -> String {
    let mut out = String::with_capacity(pg.len());
    let mut chars = pg.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(d) if d.is_ascii_digit() => out.push_str(&format!("${{{d}}}")),
                Some('&') => out.push('&'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '&' => out.push_str("${0}"),
            '$' => out.push_str("$$"),
            other => out.push(other),
        }
    }
    out
}

/// What the flags argument asks: (global, case-insensitive).
fn flags(ctx: &Context<'_>, at: usize) -> rusqlite::Result<(bool, bool)> {
    if ctx.len() <= at {
        return Ok((false, false));
    }
    let f: String = ctx.get::<Option<String>>(at)?.unwrap_or_default();
    if let Some(bad) = f.chars().find(|c| !matches!(c, 'g' | 'i' | 'c')) {
        return Err(fail(format!(
            "22023: invalid regular expression option: \"{bad}\""
        )));
    }
    Ok((f.contains('g'), f.contains('i')))
}

/// An array of text as PostgreSQL writes it (`{a,"b c",NULL}`).
fn text_array(items: &[Option<&str>]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|i| match i {
            None => "NULL".to_string(),
            Some(s)
                if s.is_empty()
                    || s.eq_ignore_ascii_case("null")
                    || s.contains([',', '{', '}', '"', '\\', ' ']) =>
            {
                format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
            }
            Some(s) => s.to_string(),
        })
        .collect();
    format!("{{{}}}", quoted.join(","))
}

/// Registers `regexp`, `regexp_replace` and `regexp_match`.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("regexp", 2, det, |ctx| {
        let Some(text) = ctx.get::<Option<String>>(1)? else {
            return Ok(None);
        };
        if ctx.get_raw(0).as_str_or_null()?.is_none() {
            return Ok(None);
        }
        Ok(Some(pattern(ctx, 0, false)?.is_match(&text)))
    })?;
    conn.create_scalar_function("regexp_replace", -1, det, |ctx| {
        let (global, insensitive) = flags(ctx, 3)?;
        let (Some(text), Some(p), Some(with)) = (
            ctx.get::<Option<String>>(0)?,
            ctx.get::<Option<String>>(1)?,
            ctx.get::<Option<String>>(2)?,
        ) else {
            return Ok(None);
        };
        let re = compile(&p, insensitive).map_err(fail)?;
        let with = replacement(&with);
        Ok(Some(if global {
            re.replace_all(&text, with.as_str()).into_owned()
        } else {
            re.replace(&text, with.as_str()).into_owned()
        }))
    })?;
    conn.create_scalar_function("regexp_match", -1, det, |ctx| {
        let (_, insensitive) = flags(ctx, 2)?;
        let (Some(text), Some(p)) = (ctx.get::<Option<String>>(0)?, ctx.get::<Option<String>>(1)?)
        else {
            return Ok(None);
        };
        let re = compile(&p, insensitive).map_err(fail)?;
        Ok(re.captures(&text).map(|c| {
            let groups: Vec<Option<&str>> = if c.len() > 1 {
                c.iter().skip(1).map(|g| g.map(|m| m.as_str())).collect()
            } else {
                vec![c.get(0).map(|m| m.as_str())]
            };
            text_array(&groups)
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers PostgreSQL 15 gave.
    #[test]
    fn regular_expressions_answer_as_postgresql_does() {
        let c = Connection::open_in_memory().unwrap();
        register(&c).unwrap();
        let one = |sql: &str| -> Option<String> {
            c.query_row(&format!("SELECT {sql}"), [], |r| {
                r.get::<_, Option<rusqlite::types::Value>>(0)
                    .map(|v| match v {
                        Some(rusqlite::types::Value::Text(s)) => Some(s),
                        Some(rusqlite::types::Value::Integer(n)) => Some(n.to_string()),
                        _ => None,
                    })
            })
            .unwrap()
        };
        let uuid = "'^[0-9a-f-]{36}$', '0cc175b9-c0f1-4a83-9c39-9e269772661a'";
        assert_eq!(one(&format!("regexp({uuid})")).as_deref(), Some("1"));
        assert_eq!(one("regexp('b+', 'abbc')").as_deref(), Some("1"));
        assert_eq!(one("regexp('^b', 'abc')").as_deref(), Some("0"));
        assert_eq!(
            one("regexp_replace('abc', 'b', 'x')").as_deref(),
            Some("axc")
        );
        assert_eq!(
            one("regexp_replace('aaa', 'a', 'b', 'g')").as_deref(),
            Some("bbb")
        );
        assert_eq!(
            one("regexp_replace('John Smith', '(\\w+) (\\w+)', '\\2, \\1')").as_deref(),
            Some("Smith, John")
        );
        assert_eq!(
            one("regexp_replace('ab', 'b', '[&]')").as_deref(),
            Some("a[b]")
        );
        assert_eq!(
            one("regexp_replace('AbA', 'a', '-', 'gi')").as_deref(),
            Some("-b-")
        );
        assert_eq!(
            one("regexp_match('foobarbequebaz', 'bar.*que')").as_deref(),
            Some("{barbeque}")
        );
        assert_eq!(
            one("regexp_match('foobarbequebaz', '(bar)(beque)')").as_deref(),
            Some("{bar,beque}")
        );
        assert_eq!(one("regexp_match('abc', 'x')"), None);
        assert!(
            c.query_row("SELECT regexp('(a)\\1', 'aa')", [], |r| r.get::<_, i64>(0))
                .is_err()
        );
        // psql's `\d name` patterns.
        assert_eq!(one("regexp('^(users)$', 'users')").as_deref(), Some("1"));
        assert_eq!(one("regexp('^(users)$', 'users2')").as_deref(), Some("0"));
        assert_eq!(one("regexp('^(us.*)$', 'users')").as_deref(), Some("1"));
    }
}
