//! Where in the statement an error is, as PostgreSQL says it (the ErrorResponse's `P`
//! field, a 1-based character position, from which psql prints `LINE 1: …` and a caret
//! and drivers show the spot): the name of the missing column, relation or function, or
//! the token the parser stopped at. Syntax errors are worded as PostgreSQL words them
//! (`syntax error at or near "selec"`), not as the SQL parser's message with a line and
//! column.

use super::error::PgError;

/// Gives `e` a position in `sql` (and a syntax error PostgreSQL's wording), when it has
/// none and the message names something the statement contains.
pub fn locate(mut e: PgError, sql: &str) -> PgError {
    if e.position.is_some() {
        return e;
    }
    if let Some(rest) = e.message.strip_prefix("sql parser error: ") {
        let (message, position) = syntax(rest, sql);
        e.message = message;
        e.position = position;
        return e;
    }
    // A literal PostgreSQL could not read as its type: where the literal is.
    if let Some(value) = e
        .message
        .strip_prefix("invalid input syntax for type ")
        .and_then(|r| r.split_once(": \""))
        .and_then(|(_, v)| v.strip_suffix('"'))
    {
        let literal = format!("'{}'", value.replace('\'', "''"));
        e.position = sql
            .find(&literal)
            .map(|at| sql[..at].chars().count() as u32 + 1);
        return e;
    }
    // Only what PostgreSQL points at: a name the statement uses that is not there.
    if !e.message.ends_with(" does not exist") && !e.message.ends_with(" is ambiguous") {
        return e;
    }
    let quoted = |prefix: &str| {
        e.message
            .strip_prefix(prefix)
            .and_then(|r| r.split('"').next())
            .map(str::to_string)
    };
    let name = quoted("column \"")
        .or_else(|| quoted("relation \""))
        .or_else(|| quoted("column reference \""))
        .or_else(|| {
            // `column t.c does not exist`, `function f does not exist`
            ["column ", "function "].iter().find_map(|p| {
                e.message
                    .strip_prefix(p)
                    .and_then(|r| r.strip_suffix(" does not exist"))
                    .map(|n| n.split('(').next().unwrap_or(n).to_string())
            })
        });
    e.position = name.and_then(|n| find_word(sql, &n));
    e
}

/// PostgreSQL's wording and position for the SQL parser's `Expected: …, found: X at Line:
/// L, Column: C`.
fn syntax(rest: &str, sql: &str) -> (String, Option<u32>) {
    let Some((_, found)) = rest.rsplit_once("found: ") else {
        return (format!("syntax error: {rest}"), None);
    };
    let (found, at) = found.split_once(" at Line: ").unwrap_or((found, ""));
    if found == "EOF" {
        return (
            "syntax error at end of input".into(),
            Some(sql.trim_end().chars().count() as u32 + 1),
        );
    }
    let mut parts = at.split(", Column: ");
    let line: usize = parts
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    let column: usize = parts
        .next()
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or(0);
    let before: usize = sql
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(|l| l.chars().count())
        .sum();
    // The parser's column can be past the token (`  FROM e1` reads column 8): the token
    // is the last of its spelling at or before it.
    let reported = (line > 0 && column > 0).then_some((before + column) as u32);
    let position = reported.and_then(|r| {
        occurrences(sql, found)
            .into_iter()
            .rfind(|&p| p <= r)
            .or(Some(r))
    });
    (format!("syntax error at or near \"{found}\""), position)
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// The 1-based character position of `word` standing alone in `sql` (any case, outside
/// string literals), or of its last part when it is qualified and not written so.
fn find_word(sql: &str, word: &str) -> Option<u32> {
    occurrences(sql, word).first().copied().or_else(|| {
        word.rsplit_once('.')
            .and_then(|(_, last)| find_word(sql, last))
    })
}

/// Every 1-based character position of `word` standing alone in `sql`.
fn occurrences(sql: &str, word: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let chars: Vec<char> = sql.chars().collect();
    let target: Vec<char> = word.to_lowercase().chars().collect();
    let mut in_string = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            in_string = !in_string;
        } else if !in_string {
            let start = if c == '"' { i + 1 } else { i };
            let fits = chars.len() >= start + target.len()
                && chars[start..start + target.len()]
                    .iter()
                    .zip(&target)
                    .all(|(a, b)| a.to_lowercase().eq(std::iter::once(*b)));
            let before_ok = i == 0 || !ident_char(chars[i - 1]) && chars[i - 1] != '.';
            let after = chars.get(start + target.len()).copied();
            let after_ok = after.is_none_or(|a| !ident_char(a) && (c != '"' || a == '"'));
            if fits && before_ok && after_ok && !target.is_empty() {
                found.push(i as u32 + 1);
            }
        }
        i += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(code: &'static str, message: &str, sql: &str) -> (String, Option<u32>) {
        let e = locate(PgError::new(code, message), sql);
        (e.message, e.position)
    }

    /// Positions PostgreSQL 15 gave for the same statements.
    #[test]
    fn errors_point_where_postgresql_points() {
        let col = "column \"nosuch\" does not exist";
        assert_eq!(at("42703", col, "select nosuch from js").1, Some(8));
        assert_eq!(
            at("42703", col, "select 'nosuch', NoSuch from js").1,
            Some(18)
        );
        assert_eq!(at("42703", col, "select \"nosuch\" from js").1, Some(8));
        let rel = "relation \"nosuch\" does not exist";
        assert_eq!(at("42P01", rel, "select * from nosuch").1, Some(15));
        let qualified = "column js.nosuch does not exist";
        assert_eq!(
            at("42703", qualified, "select js.nosuch from js").1,
            Some(8)
        );
        let f = "function nofunc(integer) does not exist";
        assert_eq!(at("42883", f, "select nofunc(1)").1, Some(8));
        assert_eq!(
            at(
                "42601",
                "sql parser error: Expected: an SQL statement, found: selec at Line: 1, Column: 1",
                "selec 1"
            ),
            ("syntax error at or near \"selec\"".into(), Some(1))
        );
        assert_eq!(
            at(
                "42601",
                "sql parser error: Expected: an expression, found: FROM at Line: 2, Column: 8",
                "select 1,\n  from t"
            )
            .1,
            Some(13)
        );
        assert_eq!(
            at(
                "42601",
                "sql parser error: Expected: an expression, found: EOF",
                "select 1 +"
            ),
            ("syntax error at end of input".into(), Some(11))
        );
        assert_eq!(at("42703", col, "select x from js").1, None);
        let bad = "invalid input syntax for type integer: \"abc\"";
        assert_eq!(
            at("22P02", bad, "insert into t values (1, 'abc')").1,
            Some(26)
        );
        assert_eq!(at("22P02", bad, "insert into t values ($1)").1, None);
        let nulls = "column \"x\" of relation \"n\" contains null values";
        assert_eq!(
            at("23502", nulls, "alter table n add primary key (x)").1,
            None
        );
    }
}
