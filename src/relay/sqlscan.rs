//! The statement classifier the relay needs: which statements change session settings
//! (`SET`, `RESET`, `DISCARD ALL`, `DEALLOCATE`) and which leave state on the server
//! session that the proxy does not replay ([`Kept`]: `LISTEN`, SQL `PREPARE`/`EXECUTE`,
//! `WITH HOLD` cursors, session advisory locks, temporary tables, `set_config(…, false)`).
//! It reads [`super::lexer`] tokens, so a word inside a string literal, quoted identifier,
//! dollar quote or comment never matches. It does not parse SQL; it looks at statement
//! heads and a few function calls.

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
    /// `LISTEN channel`, `UNLISTEN channel` or `UNLISTEN *` alone.
    Listen(ListenOp),
    /// SQL `PREPARE name rest` alone; `rest` is what follows the name
    /// (`[(types)] AS statement`).
    SqlPrepare { name: String, rest: String },
    /// SQL `EXECUTE name [(args)]` alone; `at` is where the name is in the text.
    SqlExecute { name: String, at: (usize, usize) },
}

/// A change to the channels a client listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenOp {
    Listen(String),
    Unlisten(String),
    UnlistenAll,
}

impl ListenOp {
    /// The command tag PostgreSQL answers it with.
    pub fn tag(&self) -> &'static str {
        match self {
            ListenOp::Listen(_) => "LISTEN",
            ListenOp::Unlisten(_) | ListenOp::UnlistenAll => "UNLISTEN",
        }
    }
}

/// Session state a statement leaves on the server connection that the proxy does not
/// carry to another one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    Listen,
    /// SQL `PREPARE` (and `EXECUTE`, which needs one).
    Prepare,
    HoldCursor,
    AdvisoryLock,
    TempTable,
    /// `set_config(name, value, false)`: a setting changed without `SET`.
    SetConfig,
}

impl Kept {
    /// Why it cannot work when each transaction may run on another server session, and
    /// what to do instead; None for state that is only cleaned up, never refused.
    pub fn refusal(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            Kept::Listen => (
                "LISTEN is not supported through switchyard's transaction pooling",
                "LISTEN needs a dedicated session: connect to the database directly for notifications",
            ),
            Kept::Prepare => (
                "SQL PREPARE and EXECUTE are not supported through switchyard's transaction pooling",
                "use your driver's protocol-level prepared statements, which switchyard keeps working",
            ),
            Kept::HoldCursor => (
                "cursors WITH HOLD are not supported through switchyard's transaction pooling",
                "use a cursor without HOLD inside a transaction",
            ),
            Kept::AdvisoryLock => (
                "session-level advisory locks are not supported through switchyard's transaction pooling",
                "use pg_advisory_xact_lock, which is released at the end of the transaction",
            ),
            Kept::TempTable | Kept::SetConfig => return None,
        })
    }
}

/// The classification of one Query or Parse text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classified {
    pub special: Special,
    pub effects: Vec<Effect>,
    /// The first statement that leaves state the proxy does not replay.
    pub kept: Option<Kept>,
    /// It sends a notification (`NOTIFY`, `pg_notify`).
    pub notifies: bool,
}

impl Classified {
    const PLAIN: Classified = Classified {
        special: Special::None,
        effects: Vec::new(),
        kept: None,
        notifies: false,
    };
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
    notifies: bool,
    config: ConfigCall,
}

/// Where the scan is in a `set_config(…)` call: its third argument decides whether the
/// change is local to the transaction (`true`) or lasts for the session.
#[derive(Clone, Copy, Default)]
struct ConfigCall {
    /// The word `set_config` was just seen.
    named: bool,
    /// Parenthesis depth inside the call's arguments (0: not in one).
    depth: u8,
    /// The last token at depth 1 was `true`.
    last_true: bool,
    /// A call that changes the setting for the session was seen.
    session: bool,
}

impl ConfigCall {
    fn push(&mut self, sql: &[u8], t: &Tok) {
        let text = t.text(sql);
        let punct = |c: u8| t.kind == Kind::Punct && text == [c];
        if self.depth > 0 {
            if punct(b'(') {
                self.depth = self.depth.saturating_add(1);
                self.last_true = false;
            } else if punct(b')') {
                self.depth -= 1;
                if self.depth == 0 && !self.last_true {
                    self.session = true;
                }
                self.last_true = false;
            } else if self.depth == 1 {
                self.last_true = is_true(text);
            }
            return;
        }
        if self.named && punct(b'(') {
            self.depth = 1;
            self.last_true = false;
        }
        self.named = t.kind == Kind::Word && text.eq_ignore_ascii_case(b"set_config");
    }

    /// True when the statement changed a setting for the session (an unfinished call
    /// counts: the server would reject it, but nothing is lost by assuming the worst).
    fn session(&self) -> bool {
        self.session || self.depth > 0
    }
}

fn is_true(text: &[u8]) -> bool {
    text.eq_ignore_ascii_case(b"true")
        || text.eq_ignore_ascii_case(b"'true'")
        || text.eq_ignore_ascii_case(b"'t'")
        || text.eq_ignore_ascii_case(b"'on'")
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
            notifies: false,
            config: ConfigCall {
                named: false,
                depth: 0,
                last_true: false,
                session: false,
            },
        }
    }

    fn push(&mut self, sql: &[u8], t: Tok) {
        if self.n < HEAD {
            self.head[self.n] = t;
            self.n += 1;
        }
        self.total += 1;
        self.end = t.end;
        self.config.push(sql, &t);
        if t.kind == Kind::Word {
            let w = word(sql, &t);
            self.with_hold |= self.prev_with && w.eq_ignore_ascii_case(b"hold");
            self.prev_with = w.eq_ignore_ascii_case(b"with");
            self.advisory |= w.len() >= 16
                && ADVISORY
                    .iter()
                    .any(|a| w.eq_ignore_ascii_case(a.as_bytes()));
            self.notifies |= w.eq_ignore_ascii_case(b"pg_notify")
                || (self.n == 1 && w.eq_ignore_ascii_case(b"notify"));
        } else {
            self.prev_with = false;
        }
    }

    fn toks(&self) -> &[Tok] {
        &self.head[..self.n]
    }
}

/// Statement heads the classifier cares about.
const INTERESTING: [&str; 11] = [
    "create",
    "set",
    "reset",
    "listen",
    "unlisten",
    "notify",
    "prepare",
    "execute",
    "declare",
    "discard",
    "deallocate",
];

/// A fast check for the common case: a single statement whose first word is not one the
/// classifier cares about and that calls no advisory-lock function and no `set_config`.
/// False means "look closer", never "interesting".
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
            || (i >= 3
                && rest[i - 3..i].eq_ignore_ascii_case(b"set")
                && rest
                    .get(i + 1..i + 7)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"config")))
            || (i >= 2
                && rest[i - 2..i].eq_ignore_ascii_case(b"pg")
                && rest
                    .get(i + 1..i + 7)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"notify")))
    })
}

/// Classifies a statement text. Cheap enough to run on every query: one pass, no allocation
/// unless the text changes session state.
pub fn classify(sql: &[u8]) -> Classified {
    if obviously_plain(sql) {
        return Classified::PLAIN;
    }
    let mut effects = Vec::new();
    let mut kept = None;
    let mut notifies = false;
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
            kept = kept.or_else(|| kept_state(sql, &cur));
            notifies |= cur.notifies;
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
    Classified {
        special,
        effects,
        kept,
        notifies,
    }
}

/// The session state a statement leaves behind that the proxy does not replay.
fn kept_state(sql: &[u8], st: &Stmt) -> Option<Kept> {
    let s = st.toks();
    let head = s.first();
    if is(sql, head, "listen") {
        return Some(Kept::Listen);
    }
    if (is(sql, head, "prepare") && !is(sql, s.get(1), "transaction")) || is(sql, head, "execute") {
        return Some(Kept::Prepare);
    }
    if is(sql, head, "declare") && st.with_hold {
        return Some(Kept::HoldCursor);
    }
    if st.advisory {
        return Some(Kept::AdvisoryLock);
    }
    if is(sql, head, "create") {
        // CREATE [OR REPLACE] [GLOBAL | LOCAL] {TEMP | TEMPORARY} {TABLE | VIEW | SEQUENCE}
        for t in s[1..].iter().take(4) {
            if is(sql, Some(t), "temp") || is(sql, Some(t), "temporary") {
                return Some(Kept::TempTable);
            }
            if ["table", "view", "sequence", "unlogged"]
                .iter()
                .any(|w| is(sql, Some(t), w))
            {
                break;
            }
        }
    }
    st.config.session().then_some(Kept::SetConfig)
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
            [t] => {
                if let Some(name) = ident(sql, t) {
                    return Special::Deallocate(Some(name));
                }
            }
            _ => {}
        }
    }
    if let Some(special) = sql_prepared(sql, st) {
        return special;
    }
    let (Some(head), [t]) = (s.first(), s.get(1..).unwrap_or_default()) else {
        return Special::None;
    };
    if st.total != 2 {
        return Special::None;
    }
    if is(sql, Some(head), "unlisten") && t.kind == Kind::Punct && word(sql, t) == b"*" {
        return Special::Listen(ListenOp::UnlistenAll);
    }
    match ident(sql, t) {
        Some(channel) if is(sql, Some(head), "listen") => {
            Special::Listen(ListenOp::Listen(channel))
        }
        Some(channel) if is(sql, Some(head), "unlisten") => {
            Special::Listen(ListenOp::Unlisten(channel))
        }
        _ => Special::None,
    }
}

/// SQL `PREPARE name … AS …` and `EXECUTE name …`.
fn sql_prepared(sql: &[u8], st: &Stmt) -> Option<Special> {
    let s = st.toks();
    let (prepare, execute) = (is(sql, s.first(), "prepare"), is(sql, s.first(), "execute"));
    if !prepare && !execute {
        return None;
    }
    let name_tok = s.get(1)?;
    let name = ident(sql, name_tok)?;
    if prepare && !is(sql, Some(name_tok), "transaction") {
        let rest = s.get(2)?;
        let text = &sql[rest.start as usize..st.end as usize];
        return Some(Special::SqlPrepare {
            name,
            rest: String::from_utf8_lossy(text).into_owned(),
        });
    }
    if execute {
        return Some(Special::SqlExecute {
            name,
            at: (name_tok.start as usize, name_tok.end as usize),
        });
    }
    None
}

/// An identifier as the server names it: folded to lower case unless quoted.
fn ident(sql: &[u8], t: &Tok) -> Option<String> {
    match t.kind {
        Kind::Word => Some(String::from_utf8_lossy(word(sql, t)).to_lowercase()),
        Kind::Quoted => {
            // (An unterminated quote runs to the end of the text: no closing quote.)
            let q = word(sql, t);
            let q = q.strip_prefix(b"\"").unwrap_or(q);
            let q = q.strip_suffix(b"\"").unwrap_or(q);
            Some(String::from_utf8_lossy(q).replace("\"\"", "\""))
        }
        _ => None,
    }
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
#[path = "sqlscan_tests.rs"]
mod tests;
