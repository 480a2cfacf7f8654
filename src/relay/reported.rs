//! The settings a server reports with ParameterStatus (`client_encoding`, `DateStyle`,
//! `TimeZone`, `application_name`, …) as one client has been told them. PostgreSQL reports
//! every change of these, however it was made (`SET`, `set_config`, `RESET`, a rollback),
//! so comparing what the client was told with what a server connection last reported is
//! exact: the difference is what must be set before that connection serves this client.

use std::collections::BTreeMap;

use super::params::{quote_ident, quote_literal};
use crate::protocol::parse;

/// Reported settings that describe the server or follow from others; never set directly.
const DERIVED: [&str; 6] = [
    "server_version",
    "server_encoding",
    "integer_datetimes",
    "is_superuser",
    "in_hot_standby",
    "role",
];

/// Name (as the server spells it) → value, as told to one client.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reported(pub BTreeMap<String, String>);

impl Reported {
    /// Records a ParameterStatus body the client is being sent.
    pub fn note(&mut self, body: &[u8]) {
        if let Ok((k, v)) = parse::parameter_status(body) {
            match self.0.get_mut(k) {
                Some(old) if old == v => {}
                Some(old) => v.clone_into(old),
                None => {
                    self.0.insert(k.to_string(), v.to_string());
                }
            }
        }
    }

    /// True when `name` (lower case) is a reported setting the client can change: the
    /// proxy follows it through what the server reports, not through the statements that
    /// set it.
    pub fn follows(&self, name: &str) -> bool {
        self.0.keys().any(|k| k.eq_ignore_ascii_case(name))
            && !DERIVED.iter().any(|d| d.eq_ignore_ascii_case(name))
    }

    /// Appends to `sql` the statements that make a server which last reported `server`
    /// (and reported `baseline` when it was new) report what this client was told.
    /// Settings the server does not report are left alone.
    pub fn sync_statements(
        &self,
        server: &BTreeMap<String, String>,
        baseline: &BTreeMap<String, String>,
        sql: &mut String,
    ) {
        if &self.0 == server {
            return;
        }
        for (name, want) in &self.0 {
            let Some(has) = server.get(name) else {
                continue;
            };
            if has == want || DERIVED.iter().any(|d| d.eq_ignore_ascii_case(name)) {
                continue;
            }
            if name.eq_ignore_ascii_case("session_authorization") {
                if baseline.get(name) == Some(want) {
                    sql.push_str("RESET SESSION AUTHORIZATION; ");
                } else {
                    sql.push_str(&format!(
                        "SET SESSION AUTHORIZATION {}; ",
                        quote_literal(want)
                    ));
                }
                continue;
            }
            sql.push_str(&format!(
                "SET {} TO {}; ",
                quote_ident(name),
                quote_literal(want)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn differences_become_statements() {
        let seen = Reported(map(&[
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("is_superuser", "off"),
            ("session_authorization", "app"),
        ]));
        let server = map(&[
            ("client_encoding", "SQL_ASCII"),
            ("DateStyle", "ISO, MDY"),
            ("is_superuser", "on"),
            ("session_authorization", "admin"),
        ]);
        let baseline = map(&[("session_authorization", "app")]);
        let mut sql = String::new();
        seen.sync_statements(&server, &baseline, &mut sql);
        assert_eq!(
            sql,
            "SET \"client_encoding\" TO 'UTF8'; RESET SESSION AUTHORIZATION; "
        );
        let mut none = String::new();
        seen.sync_statements(&seen.0, &baseline, &mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn follows_reported_settable_names() {
        let seen = Reported(map(&[("TimeZone", "UTC"), ("server_version", "15")]));
        assert!(seen.follows("timezone"));
        assert!(!seen.follows("server_version"));
        assert!(!seen.follows("search_path"));
    }
}
