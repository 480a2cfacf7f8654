//! A small SQL lexer and the statement classifier the relay needs: which statements change
//! session state (`SET`, `RESET`, `DISCARD ALL`, `DEALLOCATE`) and which cannot work under
//! transaction pooling (`LISTEN`, SQL `PREPARE`/`EXECUTE`, `WITH HOLD` cursors, session
//! advisory locks). It skips string literals, quoted identifiers, dollar quotes and comments,
//! so a word inside data never matches. It does not parse SQL; it looks at statement heads.

/// A token: its kind and its byte range in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tok {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Word,
    Quoted,
    Literal,
    Semicolon,
    Punct,
}

/// Splits SQL into tokens. Unterminated quotes or comments end the text.
pub fn tokens(sql: &[u8]) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < sql.len() {
        let c = sql[i];
        let start = i;
        let kind = match c {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => {
                i += 1;
                continue;
            }
            b'-' if sql.get(i + 1) == Some(&b'-') => {
                i = memchr::memchr(b'\n', &sql[i..]).map_or(sql.len(), |n| i + n + 1);
                continue;
            }
            b'/' if sql.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(sql, i);
                continue;
            }
            b'\'' => {
                i = skip_quoted(sql, i, b'\'');
                Kind::Literal
            }
            b'"' => {
                i = skip_quoted(sql, i, b'"');
                Kind::Quoted
            }
            b'$' if dollar_tag(sql, i).is_some() => {
                i = skip_dollar(sql, i);
                Kind::Literal
            }
            b';' => {
                i += 1;
                Kind::Semicolon
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                while i < sql.len() && is_word_byte(sql[i]) {
                    i += 1;
                }
                Kind::Word
            }
            c if c.is_ascii_digit() => {
                while i < sql.len() && (sql[i].is_ascii_alphanumeric() || sql[i] == b'.') {
                    i += 1;
                }
                Kind::Literal
            }
            _ => {
                i += 1;
                Kind::Punct
            }
        };
        out.push(Tok {
            kind,
            start,
            end: i,
        });
    }
    out
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn skip_block_comment(sql: &[u8], mut i: usize) -> usize {
    let mut depth = 0;
    while i < sql.len() {
        if sql[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if sql[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    sql.len()
}

fn skip_quoted(sql: &[u8], mut i: usize, q: u8) -> usize {
    i += 1;
    while i < sql.len() {
        if sql[i] == q {
            if sql.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    sql.len()
}

/// The `$tag$` opening at `i`, if there is one.
fn dollar_tag(sql: &[u8], i: usize) -> Option<&[u8]> {
    let rest = &sql[i + 1..];
    let end = rest.iter().position(|&b| b == b'$')?;
    let tag = &rest[..end];
    let ok = tag
        .iter()
        .enumerate()
        .all(|(n, &b)| b.is_ascii_alphabetic() || b == b'_' || (n > 0 && b.is_ascii_digit()));
    ok.then_some(&sql[i..i + end + 2])
}

fn skip_dollar(sql: &[u8], i: usize) -> usize {
    let Some(tag) = dollar_tag(sql, i) else {
        return i + 1;
    };
    let body = i + tag.len();
    match memchr::memmem::find(&sql[body..], tag) {
        Some(n) => body + n + tag.len(),
        None => sql.len(),
    }
}

/// A change to session state made by a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// `name` (lower case) set by the statement text `stmt`, replayable verbatim.
    Set { name: String, stmt: String },
    Reset { name: String },
    ResetAll,
}

/// What the relay must do with a statement text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Special {
    /// Forward it.
    None,
    /// `DISCARD ALL` alone: clears prepared statements and session settings.
    DiscardAll,
    /// `DEALLOCATE [PREPARE] name` or `DEALLOCATE ALL` (None) alone.
    Deallocate(Option<String>),
    /// Cannot work under transaction pooling: refuse with this explanation.
    Refuse { what: &'static str, hint: &'static str },
}

/// The classification of one Query or Parse text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub special: Special,
    pub effects: Vec<Effect>,
}

fn word<'a>(sql: &'a [u8], t: &Tok) -> &'a [u8] {
    &sql[t.start..t.end]
}

fn is(sql: &[u8], t: Option<&Tok>, w: &str) -> bool {
    t.is_some_and(|t| t.kind == Kind::Word && word(sql, t).eq_ignore_ascii_case(w.as_bytes()))
}

const ADVISORY: [&str; 4] = [
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
];

/// Classifies a statement text. Cheap enough to run on every simple query.
pub fn classify(sql: &[u8]) -> Classified {
    let toks = tokens(sql);
    let stmts: Vec<&[Tok]> = toks
        .split(|t| t.kind == Kind::Semicolon)
        .filter(|s| !s.is_empty())
        .collect();
    let mut effects = Vec::new();
    for s in &stmts {
        if let Some(refusal) = refusal(sql, s) {
            return Classified {
                special: refusal,
                effects: Vec::new(),
            };
        }
        if let Some(e) = set_effect(sql, s) {
            effects.push(e);
        }
    }
    let special = match stmts.as_slice() {
        [one] => single_special(sql, one),
        _ => Special::None,
    };
    Classified { special, effects }
}

fn refusal(sql: &[u8], s: &[Tok]) -> Option<Special> {
    if is(sql, s.first(), "listen") {
        return Some(Special::Refuse {
            what: "LISTEN is not supported through switchyard's transaction pooling",
            hint: "LISTEN needs a dedicated session: connect to the database directly for notifications",
        });
    }
    if is(sql, s.first(), "prepare") && !is(sql, s.get(1), "transaction") {
        return Some(Special::Refuse {
            what: "SQL PREPARE is not supported through switchyard's transaction pooling",
            hint: "use your driver's protocol-level prepared statements, which switchyard keeps working",
        });
    }
    if is(sql, s.first(), "execute") {
        return Some(Special::Refuse {
            what: "SQL EXECUTE of a prepared statement is not supported through switchyard's transaction pooling",
            hint: "use your driver's protocol-level prepared statements, which switchyard keeps working",
        });
    }
    if is(sql, s.first(), "declare")
        && s.windows(2).any(|w| is(sql, Some(&w[0]), "with") && is(sql, Some(&w[1]), "hold"))
    {
        return Some(Special::Refuse {
            what: "cursors WITH HOLD are not supported through switchyard's transaction pooling",
            hint: "use a cursor without HOLD inside a transaction",
        });
    }
    let advisory = s.iter().any(|t| {
        t.kind == Kind::Word && ADVISORY.iter().any(|a| word(sql, t).eq_ignore_ascii_case(a.as_bytes()))
    });
    advisory.then_some(Special::Refuse {
        what: "session-level advisory locks are not supported through switchyard's transaction pooling",
        hint: "use pg_advisory_xact_lock, which is released at the end of the transaction",
    })
}

fn single_special(sql: &[u8], s: &[Tok]) -> Special {
    if is(sql, s.first(), "discard") && is(sql, s.get(1), "all") && s.len() == 2 {
        return Special::DiscardAll;
    }
    if is(sql, s.first(), "deallocate") {
        let rest = if is(sql, s.get(1), "prepare") { &s[2..] } else { &s[1..] };
        match rest {
            [t] if is(sql, Some(t), "all") => return Special::Deallocate(None),
            [t] if t.kind == Kind::Word => {
                return Special::Deallocate(Some(
                    String::from_utf8_lossy(word(sql, t)).to_lowercase(),
                ));
            }
            [t] if t.kind == Kind::Quoted => {
                let q = word(sql, t);
                let inner = String::from_utf8_lossy(&q[1..q.len().saturating_sub(1)]);
                return Special::Deallocate(Some(inner.replace("\"\"", "\"")));
            }
            _ => {}
        }
    }
    Special::None
}

fn text(sql: &[u8], s: &[Tok]) -> String {
    let (a, b) = (s[0].start, s[s.len() - 1].end);
    String::from_utf8_lossy(&sql[a..b]).into_owned()
}

/// The session-state change a statement makes, if it is a session-level SET or RESET.
fn set_effect(sql: &[u8], s: &[Tok]) -> Option<Effect> {
    if is(sql, s.first(), "reset") {
        return match s.get(1..)? {
            [t] if is(sql, Some(t), "all") => Some(Effect::ResetAll),
            rest if !rest.is_empty() => Some(Effect::Reset {
                name: param_name(sql, rest)?,
            }),
            _ => None,
        };
    }
    if !is(sql, s.first(), "set") {
        return None;
    }
    let mut rest = &s[1..];
    if is(sql, rest.first(), "local") || is(sql, rest.first(), "transaction") {
        return None;
    }
    if is(sql, rest.first(), "session") {
        if is(sql, rest.get(1), "characteristics") {
            return None;
        }
        if !is(sql, rest.get(1), "authorization") {
            rest = &rest[1..];
        }
    }
    let name = param_name(sql, rest)?;
    Some(Effect::Set {
        name,
        stmt: text(sql, s),
    })
}

/// The parameter a SET/RESET names (`TIME ZONE` → timezone, `ROLE`, `SESSION AUTHORIZATION`).
fn param_name(sql: &[u8], rest: &[Tok]) -> Option<String> {
    let first = rest.first()?;
    if is(sql, Some(first), "time") && is(sql, rest.get(1), "zone") {
        return Some("timezone".into());
    }
    if is(sql, Some(first), "session") && is(sql, rest.get(1), "authorization") {
        return Some("session_authorization".into());
    }
    if is(sql, Some(first), "names") {
        return Some("client_encoding".into());
    }
    let mut name = match first.kind {
        Kind::Word => String::from_utf8_lossy(word(sql, first)).to_lowercase(),
        Kind::Quoted => {
            let q = word(sql, first);
            String::from_utf8_lossy(&q[1..q.len().saturating_sub(1)]).to_lowercase()
        }
        _ => return None,
    };
    // Custom settings are written `prefix.name`.
    let mut i = 1;
    while rest.get(i).is_some_and(|t| word(sql, t) == b".") && rest.get(i + 1).is_some() {
        name.push('.');
        name.push_str(&String::from_utf8_lossy(word(sql, &rest[i + 1])).to_lowercase());
        i += 2;
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(sql: &str) -> Classified {
        classify(sql.as_bytes())
    }

    #[test]
    fn set_statements_are_tracked() {
        let e = c("SET search_path TO app, public;").effects;
        assert_eq!(
            e,
            vec![Effect::Set {
                name: "search_path".into(),
                stmt: "SET search_path TO app, public".into()
            }]
        );
        assert!(matches!(&c("set session TimeZone = 'UTC'").effects[0], Effect::Set { name, .. } if name == "timezone"));
        assert!(matches!(&c("SET TIME ZONE 'UTC'").effects[0], Effect::Set { name, .. } if name == "timezone"));
        assert!(matches!(&c("SET myapp.tenant = '7'").effects[0], Effect::Set { name, .. } if name == "myapp.tenant"));
        assert!(c("SET LOCAL search_path TO x").effects.is_empty());
        assert!(c("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE").effects.is_empty());
        assert_eq!(c("RESET ALL").effects, vec![Effect::ResetAll]);
        assert_eq!(
            c("reset statement_timeout").effects,
            vec![Effect::Reset {
                name: "statement_timeout".into()
            }]
        );
        assert!(c("SELECT 'SET x = 1'").effects.is_empty());
    }

    #[test]
    fn refusals() {
        assert!(matches!(c("LISTEN chan").special, Special::Refuse { .. }));
        assert!(matches!(c("select 1; listen x").special, Special::Refuse { .. }));
        assert!(matches!(c("PREPARE p AS SELECT 1").special, Special::Refuse { .. }));
        assert!(matches!(c("EXECUTE p").special, Special::Refuse { .. }));
        assert!(matches!(c("DECLARE c CURSOR WITH HOLD FOR SELECT 1").special, Special::Refuse { .. }));
        assert!(matches!(c("SELECT pg_advisory_lock(1)").special, Special::Refuse { .. }));
        assert_eq!(c("SELECT pg_advisory_xact_lock(1)").special, Special::None);
        assert_eq!(c("SELECT 'listen' , $$ pg_advisory_lock $$").special, Special::None);
        assert_eq!(c("-- LISTEN x\nSELECT 1").special, Special::None);
        assert_eq!(c("/* LISTEN /* nested */ x */ SELECT 1").special, Special::None);
        assert_eq!(c("UNLISTEN *").special, Special::None);
        assert_eq!(c("PREPARE TRANSACTION 'x'").special, Special::None);
    }

    #[test]
    fn discard_and_deallocate() {
        assert_eq!(c("DISCARD ALL").special, Special::DiscardAll);
        assert_eq!(c("discard all;").special, Special::DiscardAll);
        assert_eq!(c("DEALLOCATE ALL").special, Special::Deallocate(None));
        assert_eq!(c("DEALLOCATE PREPARE s1").special, Special::Deallocate(Some("s1".into())));
        assert_eq!(c("DEALLOCATE \"S1\"").special, Special::Deallocate(Some("S1".into())));
        assert_eq!(c("DISCARD ALL; SELECT 1").special, Special::None);
    }

    #[test]
    fn lexer_survives_garbage() {
        for s in ["'", "\"", "$a$", "/*", "--", "$$ x", "'it''s'", "\u{1F600};;"] {
            let _ = c(s);
        }
        assert_eq!(tokens(b"a'b''c'd").len(), 3);
    }
}
