//! Session settings of the SQLite backend: `SET`/`SHOW`/`RESET`, the values a PostgreSQL
//! server reports at login, and which of them are reported again when they change; a
//! session's SET and SHOW.

use std::collections::BTreeMap;

use bytes::BytesMut;
use sqlparser::ast::{ContextModifier, Expr, Set, Value};

use super::error::PgError;
use super::exec::{self, Column};
use super::translate::Kind;
use crate::protocol::build;

/// The PostgreSQL version the SQLite backend presents itself as.
pub const SERVER_VERSION: &str = "15.0";

/// Settings PostgreSQL reports with ParameterStatus (GUC_REPORT).
pub const REPORTED: [&str; 11] = [
    "application_name",
    "client_encoding",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "integer_datetimes",
    "is_superuser",
    "server_encoding",
    "server_version",
    "session_authorization",
    "standard_conforming_strings",
];

/// A session's settings, keyed by lower-case name, with their display names.
#[derive(Debug, Clone)]
pub struct Settings {
    values: BTreeMap<String, (String, String)>,
    /// When the current transaction began (microseconds since 1970): what `now()` answers,
    /// as PostgreSQL's does, all through the transaction.
    pub transaction_start: Option<i64>,
    /// `TimeZone` as a zone (None: UTC), see `zone.rs`.
    pub zone: super::zone::Zone,
}

impl Default for Settings {
    fn default() -> Self {
        let mut s = Settings {
            values: BTreeMap::new(),
            transaction_start: None,
            zone: None,
        };
        for (k, v) in [
            ("application_name", ""),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("IntervalStyle", "postgres"),
            ("TimeZone", "UTC"),
            ("integer_datetimes", "on"),
            ("is_superuser", "on"),
            ("server_encoding", "UTF8"),
            ("server_version", SERVER_VERSION),
            ("session_authorization", "postgres"),
            ("standard_conforming_strings", "on"),
            ("search_path", "\"$user\", public"),
            ("transaction_isolation", "read committed"),
            ("default_transaction_isolation", "read committed"),
            ("max_identifier_length", "63"),
            ("statement_timeout", "0"),
            ("lock_timeout", "0"),
            ("extra_float_digits", "1"),
            ("datestyle", "ISO, MDY"),
        ] {
            s.set(k, v);
        }
        s
    }
}

impl Settings {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(&name.to_lowercase())
            .map(|(_, v)| v.as_str())
    }

    /// Whether `value` is one `name` can take (the error PostgreSQL gives if not).
    pub fn check(name: &str, value: &str) -> Result<(), String> {
        if name.eq_ignore_ascii_case("timezone") {
            super::zone::parse(value)?;
        }
        Ok(())
    }

    /// Sets a value; returns the display name if the setting is reported to clients.
    pub fn set(&mut self, name: &str, value: &str) -> Option<&'static str> {
        let key = name.to_lowercase();
        if key == "timezone" {
            self.zone = super::zone::parse(value).unwrap_or(None);
        }
        let display = REPORTED
            .iter()
            .find(|r| r.eq_ignore_ascii_case(name))
            .copied();
        let value = match key.as_str() {
            "timezone" if value.eq_ignore_ascii_case("utc") => "UTC".to_string(),
            "client_encoding" => value.to_uppercase().replace('-', ""),
            _ => value.to_string(),
        };
        self.values
            .insert(key, (display.unwrap_or(name).to_string(), value));
        display
    }

    pub fn reset(&mut self, name: &str) -> Option<&'static str> {
        let default = Settings::default();
        match default.values.get(&name.to_lowercase()) {
            Some((_, v)) => {
                let v = v.clone();
                self.set(name, &v)
            }
            None => {
                self.values.remove(&name.to_lowercase());
                None
            }
        }
    }

    /// The (name, value) pairs a server sends at login.
    pub fn reported(&self) -> Vec<(&'static str, String)> {
        REPORTED
            .iter()
            .map(|r| (*r, self.get(r).unwrap_or_default().to_string()))
            .collect()
    }
}

fn expr_value(e: &Expr) -> String {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    }
}

/// Classifies a SET statement.
pub fn classify_set(set: &Set) -> Kind {
    match set {
        Set::SingleAssignment {
            scope,
            variable,
            values,
            ..
        } => {
            let name = variable.to_string().trim_matches('"').to_lowercase();
            let value = values.iter().map(expr_value).collect::<Vec<_>>().join(", ");
            let value = (!value.eq_ignore_ascii_case("default")).then_some(value);
            Kind::Set {
                name,
                value,
                local: matches!(scope, Some(ContextModifier::Local)),
            }
        }
        Set::SetTimeZone { local, value } => Kind::Set {
            name: "timezone".into(),
            value: Some(expr_value(value)),
            local: *local,
        },
        Set::SetNames { charset_name, .. } => Kind::Set {
            name: "client_encoding".into(),
            value: Some(charset_name.value.clone()),
            local: false,
        },
        Set::SetRole { role_name, .. } => Kind::Set {
            name: "role".into(),
            value: role_name.as_ref().map(|r| r.value.clone()),
            local: false,
        },
        // SET TRANSACTION ISOLATION LEVEL … (this transaction) and SET SESSION
        // CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL … (the session's default).
        Set::SetTransaction { modes, session, .. } => match modes.iter().find_map(|m| match m {
            sqlparser::ast::TransactionMode::IsolationLevel(l) => {
                Some(super::isolation::Isolation::from_sql(l))
            }
            _ => None,
        }) {
            Some(level) => Kind::Set {
                name: if *session {
                    "default_transaction_isolation".into()
                } else {
                    "transaction_isolation".into()
                },
                value: Some(level.as_str().into()),
                local: !*session,
            },
            None => Kind::Other {
                tag: "SET".into(),
                writes: false,
            },
        },
        _ => Kind::Other {
            tag: "SET".into(),
            writes: false,
        },
    }
}

/// SET and SHOW of the session's settings.
impl super::session::Session {
    /// The session's `TimeZone` (see `zone.rs`).
    pub(super) fn zone(&self) -> super::zone::Zone {
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .zone
            .clone()
    }

    pub(super) fn set(
        &mut self,
        name: &str,
        value: Option<&str>,
        out: &mut BytesMut,
    ) -> Result<(), PgError> {
        if let Some(v) = value {
            Settings::check(name, v).map_err(|m| PgError::new("22023", m))?;
        }
        let mut s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        let reported = match value {
            Some(v) => s.set(name, v),
            None if name == "all" => {
                *s = Default::default();
                None
            }
            None => s.reset(name),
        };
        if let Some(display) = reported {
            let v = s.get(display).unwrap_or_default().to_string();
            build::parameter_status(out, display, &v);
        }
        build::command_complete(out, "SET");
        Ok(())
    }

    pub(super) fn show(
        &mut self,
        name: &str,
        out: &mut BytesMut,
        describe: bool,
    ) -> Result<(), PgError> {
        let value = self
            .settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(str::to_string);
        let Some(value) = value else {
            return Err(PgError::new(
                "42704",
                format!("unrecognized configuration parameter \"{name}\""),
            ));
        };
        let col = [Column::new(name, super::types::TEXT)];
        if describe {
            exec::row_description(out, &col, &[]);
        }
        exec::data_row(
            out,
            &[rusqlite::types::Value::Text(value)],
            &col,
            &[],
            &None,
        )?;
        build::command_complete(out, "SHOW");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::sqlite::translate::translate;

    #[test]
    fn set_statements() {
        let k = translate("SET search_path TO app, public")
            .unwrap()
            .remove(0)
            .kind;
        assert_eq!(
            k,
            Kind::Set {
                name: "search_path".into(),
                value: Some("app, public".into()),
                local: false
            }
        );
        let k = translate("SET TIME ZONE 'UTC'").unwrap().remove(0).kind;
        assert_eq!(
            k,
            Kind::Set {
                name: "timezone".into(),
                value: Some("UTC".into()),
                local: false
            }
        );
        let k = translate("SET LOCAL statement_timeout = 0")
            .unwrap()
            .remove(0)
            .kind;
        assert!(matches!(k, Kind::Set { local: true, .. }));
        let k = translate("SET application_name = DEFAULT")
            .unwrap()
            .remove(0)
            .kind;
        assert!(matches!(k, Kind::Set { value: None, .. }));
    }

    #[test]
    fn reported_names_keep_their_case() {
        let mut s = Settings::default();
        assert_eq!(s.set("datestyle", "ISO"), Some("DateStyle"));
        assert_eq!(s.get("DATESTYLE"), Some("ISO"));
        assert_eq!(s.set("search_path", "x"), None);
        assert_eq!(s.reported().len(), REPORTED.len());
    }
}
