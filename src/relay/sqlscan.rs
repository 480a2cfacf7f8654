//! The statement classifier the relay needs: which statements change
//! session state (`SET`, `RESET`, `DISCARD ALL`, `DEALLOCATE`) and which cannot work under
//! transaction pooling (`LISTEN`, SQL `PREPARE`/`EXECUTE`, `WITH HOLD` cursors, session
//! advisory locks). It reads [`super::lexer`] tokens, so a word inside a string literal,
//! quoted identifier, dollar quote or comment never matches. It does not parse SQL; it
//! looks at statement heads.

pub use super::lexer::{Kind, Lexer, Tok, tokens};

/// A change to session state made by a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// `name` (lower case) set by the statement text `stmt`, replayable verbatim.
    Set {
        name: String,
        stmt: String,
    },
    Reset {
        name: String,
    },
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
    Refuse {
        what: &'static str,
        hint: &'static str,
    },
}

/// The classification of one Query or Parse text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub special: Special,
    pub effects: Vec<Effect>,
}

fn word<'a>(sql: &'a [u8], t: &Tok) -> &'a [u8] {
    t.text(sql)
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

/// How many leading tokens of a statement the classifier looks at.
const HEAD: usize = 8;

/// What the classifier keeps of one statement while scanning it.
#[derive(Clone, Copy)]
struct Stmt {
    head: [Tok; HEAD],
    n: usize,
    total: usize,
    end: u32,
    prev_with: bool,
    with_hold: bool,
    advisory: bool,
}

const NO_TOK: Tok = Tok {
    kind: Kind::Punct,
    start: 0,
    end: 0,
};

impl Stmt {
    fn new() -> Self {
        Stmt {
            head: [NO_TOK; HEAD],
            n: 0,
            total: 0,
            end: 0,
            prev_with: false,
            with_hold: false,
            advisory: false,
        }
    }

    fn push(&mut self, sql: &[u8], t: Tok) {
        if self.n < HEAD {
            self.head[self.n] = t;
            self.n += 1;
        }
        self.total += 1;
        self.end = t.end;
        if t.kind == Kind::Word {
            let w = word(sql, &t);
            self.with_hold |= self.prev_with && w.eq_ignore_ascii_case(b"hold");
            self.prev_with = w.eq_ignore_ascii_case(b"with");
            self.advisory |= w.len() >= 16
                && ADVISORY
                    .iter()
                    .any(|a| w.eq_ignore_ascii_case(a.as_bytes()));
        } else {
            self.prev_with = false;
        }
    }

    fn toks(&self) -> &[Tok] {
        &self.head[..self.n]
    }
}

/// Statement heads the classifier cares about.
const INTERESTING: [&str; 8] = [
    "set",
    "reset",
    "listen",
    "prepare",
    "execute",
    "declare",
    "discard",
    "deallocate",
];

/// A fast check for the common case: a single statement whose first word is not one the
/// classifier cares about and that calls no advisory-lock function. False means "look
/// closer", never "interesting".
fn obviously_plain(sql: &[u8]) -> bool {
    let mut end = sql.len();
    while end > 0 && (sql[end - 1].is_ascii_whitespace() || sql[end - 1] == b';') {
        end -= 1;
    }
    let sql = &sql[..end];
    let start = sql
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(sql.len());
    let rest = &sql[start..];
    let wlen = rest
        .iter()
        .position(|b| !b.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    if wlen == 0 || memchr::memchr(b';', rest).is_some() {
        return false;
    }
    let first = &rest[..wlen];
    if INTERESTING
        .iter()
        .any(|k| first.eq_ignore_ascii_case(k.as_bytes()))
    {
        return false;
    }
    !memchr::memchr_iter(b'_', rest).any(|i| {
        rest.get(i + 1..i + 10)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"advisory_"))
    })
}

/// Classifies a statement text. Cheap enough to run on every query: one pass, no allocation
/// unless the text changes session state.
pub fn classify(sql: &[u8]) -> Classified {
    if obviously_plain(sql) {
        return Classified {
            special: Special::None,
            effects: Vec::new(),
        };
    }
    let mut effects = Vec::new();
    let mut stmts = 0;
    let mut first = Stmt::new();
    let mut cur = Stmt::new();
    let mut lexer = Lexer::new(sql);
    loop {
        let t = lexer.next();
        match t {
            Some(t) if t.kind != Kind::Semicolon => {
                cur.push(sql, t);
                continue;
            }
            _ => {}
        }
        if cur.total > 0 {
            if let Some(refusal) = refusal(sql, &cur) {
                return Classified {
                    special: refusal,
                    effects: Vec::new(),
                };
            }
            if let Some(e) = set_effect(sql, &cur) {
                effects.push(e);
            }
            if stmts == 0 {
                first = cur;
            }
            stmts += 1;
            cur = Stmt::new();
        }
        if t.is_none() {
            break;
        }
    }
    let special = if stmts == 1 {
        single_special(sql, &first)
    } else {
        Special::None
    };
    Classified { special, effects }
}

fn refusal(sql: &[u8], st: &Stmt) -> Option<Special> {
    let s = st.toks();
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
    if is(sql, s.first(), "declare") && st.with_hold {
        return Some(Special::Refuse {
            what: "cursors WITH HOLD are not supported through switchyard's transaction pooling",
            hint: "use a cursor without HOLD inside a transaction",
        });
    }
    st.advisory.then_some(Special::Refuse {
        what: "session-level advisory locks are not supported through switchyard's transaction pooling",
        hint: "use pg_advisory_xact_lock, which is released at the end of the transaction",
    })
}

fn single_special(sql: &[u8], st: &Stmt) -> Special {
    let s = st.toks();
    if is(sql, s.first(), "discard") && is(sql, s.get(1), "all") && st.total == 2 {
        return Special::DiscardAll;
    }
    if is(sql, s.first(), "deallocate") {
        let rest = if is(sql, s.get(1), "prepare") {
            &s[2..]
        } else {
            &s[1..]
        };
        if st.total > s.len() {
            return Special::None;
        }
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

fn text(sql: &[u8], st: &Stmt) -> String {
    String::from_utf8_lossy(&sql[st.head[0].start as usize..st.end as usize]).into_owned()
}

/// The session-state change a statement makes, if it is a session-level SET or RESET.
fn set_effect(sql: &[u8], st: &Stmt) -> Option<Effect> {
    let s = st.toks();
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
        stmt: text(sql, st),
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
        assert!(
            matches!(&c("set session TimeZone = 'UTC'").effects[0], Effect::Set { name, .. } if name == "timezone")
        );
        assert!(
            matches!(&c("SET TIME ZONE 'UTC'").effects[0], Effect::Set { name, .. } if name == "timezone")
        );
        assert!(
            matches!(&c("SET myapp.tenant = '7'").effects[0], Effect::Set { name, .. } if name == "myapp.tenant")
        );
        assert!(c("SET LOCAL search_path TO x").effects.is_empty());
        assert!(
            c("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                .effects
                .is_empty()
        );
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
        assert!(matches!(
            c("select 1; listen x").special,
            Special::Refuse { .. }
        ));
        assert!(matches!(
            c("PREPARE p AS SELECT 1").special,
            Special::Refuse { .. }
        ));
        assert!(matches!(c("EXECUTE p").special, Special::Refuse { .. }));
        assert!(matches!(
            c("DECLARE c CURSOR WITH HOLD FOR SELECT 1").special,
            Special::Refuse { .. }
        ));
        assert!(matches!(
            c("SELECT pg_advisory_lock(1)").special,
            Special::Refuse { .. }
        ));
        assert_eq!(c("SELECT pg_advisory_xact_lock(1)").special, Special::None);
        assert_eq!(
            c("SELECT 'listen' , $$ pg_advisory_lock $$").special,
            Special::None
        );
        assert_eq!(c("-- LISTEN x\nSELECT 1").special, Special::None);
        assert_eq!(
            c("/* LISTEN /* nested */ x */ SELECT 1").special,
            Special::None
        );
        assert_eq!(c("UNLISTEN *").special, Special::None);
        assert_eq!(c("PREPARE TRANSACTION 'x'").special, Special::None);
    }

    #[test]
    fn discard_and_deallocate() {
        assert_eq!(c("DISCARD ALL").special, Special::DiscardAll);
        assert_eq!(c("discard all;").special, Special::DiscardAll);
        assert_eq!(c("DEALLOCATE ALL").special, Special::Deallocate(None));
        assert_eq!(
            c("DEALLOCATE PREPARE s1").special,
            Special::Deallocate(Some("s1".into()))
        );
        assert_eq!(
            c("DEALLOCATE \"S1\"").special,
            Special::Deallocate(Some("S1".into()))
        );
        assert_eq!(c("DISCARD ALL; SELECT 1").special, Special::None);
    }

    #[test]
    fn fast_path_agrees_with_the_lexer() {
        assert!(obviously_plain(
            b"SELECT abalance FROM pgbench_accounts WHERE aid = $1;"
        ));
        assert!(obviously_plain(b"  insert into t values (1) ;\n"));
        for s in [
            "SET x = 1",
            "select pg_advisory_lock(1)",
            "SELECT PG_TRY_ADVISORY_LOCK(1)",
            "select 1; select 2",
            "/* c */ LISTEN x",
            "-- c\nLISTEN x",
            "(select 1)",
            "listen x",
            "Deallocate all",
            "",
        ] {
            assert!(!obviously_plain(s.as_bytes()), "{s}");
        }
        for s in [
            "SELECT 1",
            "update t set a = 1",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "COMMIT",
        ] {
            assert!(obviously_plain(s.as_bytes()), "{s}");
            assert_eq!(
                classify(s.as_bytes()),
                Classified {
                    special: Special::None,
                    effects: vec![]
                }
            );
        }
    }

    #[test]
    fn lexer_survives_garbage() {
        for s in [
            "'",
            "\"",
            "$a$",
            "/*",
            "--",
            "$$ x",
            "'it''s'",
            "\u{1F600};;",
        ] {
            let _ = c(s);
        }
        assert_eq!(tokens(b"a'b''c'd").len(), 3);
    }
}
