//! Session state that must follow a client across pooled server connections: startup
//! parameters and `SET`s made outside a rolled-back transaction. Each is kept as a
//! replayable statement; a server connection records which ones it has applied, and the
//! difference is sent as one query when the client gets a server.

use std::collections::BTreeMap;

use super::sqlscan::Effect;

/// Parameter name (lower case) → statement that sets it.
pub type ParamMap = BTreeMap<String, String>;

/// Startup parameters that are not settings, or that the proxy handles itself.
const NOT_SETTINGS: [&str; 5] = ["user", "database", "replication", "options", "_pq_"];

/// Quotes a value as a SQL string literal.
pub fn quote_literal(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// Quotes a name as a SQL identifier.
pub fn quote_ident(v: &str) -> String {
    format!("\"{}\"", v.replace('"', "\"\""))
}

/// The replayable statement for one startup parameter.
pub fn set_statement(name: &str, value: &str) -> String {
    format!("SET {} TO {}", quote_ident(name), quote_literal(value))
}

/// Settings carried by a StartupMessage, including `-c name=value` inside `options`.
pub fn startup_settings(params: &[(String, String)]) -> ParamMap {
    let mut map = ParamMap::new();
    for (k, v) in params {
        if k == "options" {
            for (name, value) in parse_options(v) {
                map.insert(name.to_lowercase(), set_statement(&name, &value));
            }
        } else if !NOT_SETTINGS.iter().any(|n| k == n || k.starts_with("_pq_")) {
            map.insert(k.to_lowercase(), set_statement(k, v));
        }
    }
    map
}

/// Parses libpq `options`: `-c name=value` and `--name=value`, backslash-escaped spaces.
fn parse_options(s: &str) -> Vec<(String, String)> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let mut out = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let kv = if w == "-c" {
            it.next()
        } else {
            w.strip_prefix("--")
                .or_else(|| w.strip_prefix("-c"))
                .map(str::to_string)
        };
        if let Some((k, v)) = kv.as_deref().and_then(|kv| kv.split_once('=')) {
            out.push((k.replace('-', "_"), v.to_string()));
        }
    }
    out
}

/// Applies an effect to a parameter map.
pub fn apply(map: &mut ParamMap, effect: &Effect) {
    match effect {
        Effect::Set { name, stmt } => {
            map.insert(name.clone(), stmt.clone());
        }
        Effect::Reset { name } => {
            map.remove(name);
        }
        Effect::ResetAll => map.clear(),
    }
}

/// Appends to `sql` the statements that turn `applied` into `desired`, leaving out the
/// settings `skip` names (those followed another way).
pub fn diff_into(
    desired: &ParamMap,
    applied: &ParamMap,
    skip: impl Fn(&str) -> bool,
    sql: &mut String,
) {
    if desired == applied {
        return;
    }
    for name in applied.keys() {
        if !desired.contains_key(name) && !skip(name) {
            sql.push_str(&reset_statement(name));
            sql.push_str("; ");
        }
    }
    for (name, stmt) in desired {
        if applied.get(name) != Some(stmt) && !skip(name) {
            sql.push_str(stmt);
            sql.push_str("; ");
        }
    }
}

fn reset_statement(name: &str) -> String {
    match name {
        "session_authorization" => "RESET SESSION AUTHORIZATION".into(),
        "timezone" => "RESET timezone".into(),
        _ => format!("RESET {}", quote_ident(name)),
    }
}

/// A client's wanted settings plus those made inside the current transaction.
#[derive(Debug, Default, Clone)]
pub struct SessionParams {
    pub desired: ParamMap,
    pending: Vec<Effect>,
}

impl SessionParams {
    pub fn new(desired: ParamMap) -> Self {
        SessionParams {
            desired,
            pending: Vec::new(),
        }
    }

    /// Records an effect that succeeded; it becomes permanent when the transaction commits.
    pub fn record(&mut self, effect: Effect) {
        self.pending.push(effect);
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The transaction ended: keep its effects unless it rolled back. Returns them so the
    /// caller can mirror them on the server connection's applied map.
    pub fn finish_transaction(&mut self, rolled_back: bool) -> Vec<Effect> {
        let effects = std::mem::take(&mut self.pending);
        if rolled_back {
            return Vec::new();
        }
        for e in &effects {
            apply(&mut self.desired, e);
        }
        effects
    }

    pub fn reset_all(&mut self) {
        self.desired.clear();
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_params_become_statements() {
        let m = startup_settings(&[
            ("user".into(), "app".into()),
            ("application_name".into(), "it's".into()),
            (
                "options".into(),
                "-c search_path=a,b --statement-timeout=5s".into(),
            ),
        ]);
        assert_eq!(m["application_name"], "SET \"application_name\" TO 'it''s'");
        assert_eq!(m["search_path"], "SET \"search_path\" TO 'a,b'");
        assert_eq!(m["statement_timeout"], "SET \"statement_timeout\" TO '5s'");
        assert!(!m.contains_key("user"));
    }

    fn diff(desired: &ParamMap, applied: &ParamMap) -> Option<String> {
        let mut sql = String::new();
        diff_into(desired, applied, |_| false, &mut sql);
        (!sql.is_empty()).then_some(sql)
    }

    #[test]
    fn diff_sets_and_resets() {
        let mut desired = ParamMap::new();
        desired.insert("a".into(), "SET a TO 1".into());
        let mut applied = ParamMap::new();
        applied.insert("b".into(), "SET b TO 2".into());
        assert_eq!(
            diff(&desired, &applied).unwrap(),
            "RESET \"b\"; SET a TO 1; "
        );
        assert_eq!(diff(&desired, &desired.clone()), None);
    }

    #[test]
    fn rollback_discards_pending() {
        let mut p = SessionParams::default();
        p.record(Effect::Set {
            name: "x".into(),
            stmt: "SET x TO 1".into(),
        });
        assert!(p.finish_transaction(true).is_empty());
        assert!(p.desired.is_empty());
        p.record(Effect::Set {
            name: "x".into(),
            stmt: "SET x TO 1".into(),
        });
        assert_eq!(p.finish_transaction(false).len(), 1);
        assert_eq!(p.desired["x"], "SET x TO 1");
    }
}
