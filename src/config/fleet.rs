//! `[fleet]`: sidecars that serve one app and switch as one. `name` names the fleet and
//! `store` the backend whose PostgreSQL database holds its shared state (members and
//! leases, the epoch, the route). Checked here: the store is a PostgreSQL backend of this
//! config, and no backend is a SQLite file (a file serves one machine; a fleet spans
//! several).

use serde::Deserialize;

use super::{Config, ConfigError, Dur};
use crate::backend::url::BackendUrl;

/// The `[fleet]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// The fleet's name: every sidecar of one app uses the same one.
    pub name: String,
    /// The backend (by name) whose database keeps the fleet's state.
    pub store: String,
    /// This member's name in the fleet; by default `HOSTNAME:PORT` (the proxy's port).
    #[serde(default)]
    pub member: Option<String>,
    /// A member not heard from for this long is gone (its lease expired).
    #[serde(default = "default_lease")]
    pub lease: Dur,
    /// How often a member reads the fleet's state (how soon it sees a switch begin).
    #[serde(default = "default_poll")]
    pub poll: Dur,
}

fn default_lease() -> Dur {
    Dur::secs(5)
}

fn default_poll() -> Dur {
    Dur::millis(20)
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

impl Config {
    /// Checks `[fleet]` (when present) against the backends.
    pub(super) fn validate_fleet(&self) -> Result<(), ConfigError> {
        let Some(f) = &self.fleet else {
            return Ok(());
        };
        if !valid_name(&f.name) {
            return Err(ConfigError::invalid(
                "fleet.name",
                "must be 1 to 63 letters, digits, '_', '-', '.' or ':'",
            ));
        }
        if let Some(m) = &f.member
            && !valid_name(m)
        {
            return Err(ConfigError::invalid(
                "fleet.member",
                "must be 1 to 63 letters, digits, '_', '-', '.' or ':'",
            ));
        }
        let Some(store) = self.backends.get(&f.store) else {
            return Err(ConfigError::invalid(
                "fleet.store",
                format!(
                    "{:?} is not a backend of this config (backends: {})",
                    f.store,
                    self.backends.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        };
        let sqlite: Vec<&str> = self
            .backends
            .iter()
            .filter(|(_, b)| matches!(BackendUrl::parse(&b.url), Ok(BackendUrl::Sqlite(_))))
            .map(|(n, _)| n.as_str())
            .collect();
        if !sqlite.is_empty() {
            let key = if sqlite.contains(&f.store.as_str()) {
                "fleet.store"
            } else {
                "fleet"
            };
            return Err(ConfigError::invalid(
                key,
                format!(
                    "a fleet cannot use SQLite backends ({}): a SQLite file serves one machine, while a fleet's members run on several; use PostgreSQL backends, or remove [fleet] to run a single sidecar",
                    sqlite.join(", ")
                ),
            ));
        }
        debug_assert!(store.url.starts_with("postgres"));
        if f.poll.get() < std::time::Duration::from_millis(5) || f.poll.get() > f.lease.get() / 2 {
            return Err(ConfigError::invalid(
                "fleet.poll",
                "must be at least 5ms and at most half of fleet.lease",
            ));
        }
        if f.lease.get() < std::time::Duration::from_secs(1) {
            return Err(ConfigError::invalid("fleet.lease", "must be at least 1s"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    fn err_of(text: &str) -> String {
        let cfg: super::Config = toml::from_str(text).unwrap();
        cfg.validate().unwrap_err().to_string()
    }

    const PG: &str = "[routing]\nactive = \"a\"\n[backends.a]\nurl = \"postgres://u@127.0.0.1:5432/db\"\n[backends.b]\nurl = \"postgres://u@127.0.0.1:5433/db\"\n";

    #[test]
    fn a_fleet_needs_a_postgres_store_and_no_sqlite_backend() {
        let ok: super::Config =
            toml::from_str(&format!("{PG}[fleet]\nname = \"shop\"\nstore = \"a\"\n")).unwrap();
        let r = ok.validate().unwrap();
        assert_eq!(r.config.fleet.unwrap().poll.get().as_millis(), 20);
        let e = err_of(&format!("{PG}[fleet]\nname = \"shop\"\nstore = \"c\"\n"));
        assert!(
            e.contains("fleet.store") && e.contains("not a backend"),
            "{e}"
        );
        let e = err_of(
            "[backends.local]\nurl = \"sqlite://app.db\"\n[fleet]\nname = \"shop\"\nstore = \"local\"\n",
        );
        assert!(e.contains("fleet.store") && e.contains("SQLite"), "{e}");
        let e = err_of(&format!(
            "{PG}[backends.c]\nurl = \"sqlite://c.db\"\n[fleet]\nname = \"shop\"\nstore = \"a\"\n"
        ));
        assert!(e.contains("SQLite backends (c)"), "{e}");
        let e = err_of(&format!("{PG}[fleet]\nname = \"a b\"\nstore = \"a\"\n"));
        assert!(e.contains("fleet.name"), "{e}");
        let e = err_of(&format!(
            "{PG}[fleet]\nname = \"x\"\nstore = \"a\"\npoll = \"4s\"\n"
        ));
        assert!(e.contains("fleet.poll"), "{e}");
    }
}
