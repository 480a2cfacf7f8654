//! Validation of a deserialized config: every check names the key it is about.

use std::collections::HashSet;
use std::net::SocketAddr;

use super::{AuthMethod, Config, ConfigError, Resolved};
use crate::backend::url::BackendUrl;

fn addr(key: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    s.parse().map_err(|_| {
        ConfigError::invalid(
            key,
            format!("{s:?} is not an IP:port address (e.g. 127.0.0.1:6432)"),
        )
    })
}

impl Config {
    /// Checks every section and resolves addresses and the active backend.
    pub fn validate(self) -> Result<Resolved, ConfigError> {
        let proxy_addr = addr("proxy.listen", &self.proxy.listen)?;
        let admin_addr = addr("admin.listen", &self.admin.listen)?;
        self.validate_proxy(proxy_addr)?;
        self.validate_users()?;
        self.validate_admin(admin_addr)?;
        self.validate_backends()?;
        self.validate_switch()?;
        self.validate_fleet()?;
        self.sync
            .choices()
            .check()
            .map_err(|e| ConfigError::invalid("sync", e))?;
        let active = self.resolve_active()?;
        let state_file = self.routing.state_file.clone();
        Ok(Resolved {
            config: self,
            proxy_addr,
            admin_addr,
            active,
            state_file,
        })
    }

    fn validate_switch(&self) -> Result<(), ConfigError> {
        let s = &self.switch;
        if s.max_pause.get() < std::time::Duration::from_millis(10) {
            return Err(ConfigError::invalid(
                "switch.max_pause",
                "must be at least 10ms (clients are held for at most this long during a switch)",
            ));
        }
        if s.drain_timeout.get() > s.max_pause.get() {
            return Err(ConfigError::invalid(
                "switch.drain_timeout",
                format!(
                    "{} is longer than switch.max_pause ({}): the drain happens inside the pause; raise max_pause or lower drain_timeout",
                    s.drain_timeout, s.max_pause
                ),
            ));
        }
        Ok(())
    }

    fn validate_proxy(&self, proxy_addr: SocketAddr) -> Result<(), ConfigError> {
        let p = &self.proxy;
        match (&p.tls_cert, &p.tls_key) {
            (Some(_), None) => {
                return Err(ConfigError::invalid(
                    "proxy.tls_key",
                    "tls_cert is set but tls_key is not",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    "proxy.tls_cert",
                    "tls_key is set but tls_cert is not",
                ));
            }
            (Some(c), Some(k)) => {
                for (key, path) in [("proxy.tls_cert", c), ("proxy.tls_key", k)] {
                    std::fs::metadata(path).map_err(|e| {
                        ConfigError::invalid(key, format!("cannot read {}: {e}", path.display()))
                    })?;
                }
            }
            (None, None) => {}
        }
        if p.max_client_connections == 0 {
            return Err(ConfigError::invalid(
                "proxy.max_client_connections",
                "must be at least 1",
            ));
        }
        if p.max_message_size > 1 << 30 {
            return Err(ConfigError::invalid(
                "proxy.max_message_size",
                "must be at most 1 GiB (1073741824 bytes)",
            ));
        }
        if p.max_message_size < 1024 {
            return Err(ConfigError::invalid(
                "proxy.max_message_size",
                "must be at least 1024 bytes",
            ));
        }
        if p.databases.iter().any(|d| d.is_empty()) {
            return Err(ConfigError::invalid(
                "proxy.databases",
                "a database name cannot be empty",
            ));
        }
        if p.login_timeout.get().is_zero() {
            return Err(ConfigError::invalid(
                "proxy.login_timeout",
                "must be more than 0 (a client needs time to log in)",
            ));
        }
        if self.users.is_empty() && !proxy_addr.ip().is_loopback() {
            return Err(ConfigError::invalid(
                "users",
                format!(
                    "proxy.listen {proxy_addr} is not loopback, so [[users]] with passwords are required"
                ),
            ));
        }
        Ok(())
    }

    fn validate_users(&self) -> Result<(), ConfigError> {
        let mut seen = HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            if u.name.is_empty() {
                return Err(ConfigError::invalid(
                    format!("users[{i}].name"),
                    "must not be empty",
                ));
            }
            if !seen.insert(u.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("users[{i}].name"),
                    format!("user {:?} is listed twice", u.name),
                ));
            }
            let method = u.auth.unwrap_or(self.proxy.auth);
            if method != AuthMethod::Trust && u.password.is_empty() {
                return Err(ConfigError::invalid(
                    format!("users[{i}].password"),
                    format!(
                        "user {:?} has no password (set one, or auth = \"trust\")",
                        u.name
                    ),
                ));
            }
            if method == AuthMethod::Md5 && u.password.starts_with("SCRAM-SHA-256$") {
                return Err(ConfigError::invalid(
                    format!("users[{i}].password"),
                    "a SCRAM verifier cannot be used with md5 authentication",
                ));
            }
            if method == AuthMethod::ScramSha256 && is_md5_hash(&u.password) {
                return Err(ConfigError::invalid(
                    format!("users[{i}].password"),
                    "an md5 hash cannot be used with SCRAM authentication",
                ));
            }
        }
        Ok(())
    }

    fn validate_admin(&self, admin_addr: SocketAddr) -> Result<(), ConfigError> {
        let token_empty = self.admin.token.as_deref().is_none_or(str::is_empty);
        if !admin_addr.ip().is_loopback() && token_empty {
            return Err(ConfigError::invalid(
                "admin.token",
                format!("admin.listen {admin_addr} is not loopback, so a token is required"),
            ));
        }
        Ok(())
    }

    fn validate_backends(&self) -> Result<(), ConfigError> {
        if self.backends.is_empty() {
            return Err(ConfigError::invalid(
                "backends",
                "at least one [backends.NAME] is required",
            ));
        }
        for (name, b) in &self.backends {
            let key = |k: &str| format!("backends.{name}.{k}");
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(ConfigError::invalid(
                    format!("backends.{name}"),
                    "names may use letters, digits, '_' and '-'",
                ));
            }
            BackendUrl::parse(&b.url).map_err(|e| ConfigError::invalid(key("url"), e))?;
            if b.pool_size == 0 || b.pool_size > 10_000 {
                return Err(ConfigError::invalid(
                    key("pool_size"),
                    "must be between 1 and 10000",
                ));
            }
            if b.max_pinned.is_some_and(|m| m >= b.pool_size) {
                return Err(ConfigError::invalid(
                    key("max_pinned"),
                    "must be less than pool_size (pinned clients would leave no connection for the others)",
                ));
            }
            if b.min_idle > b.pool_size {
                return Err(ConfigError::invalid(
                    key("min_idle"),
                    "must not exceed pool_size",
                ));
            }
            if b.connect_timeout.get().is_zero() {
                return Err(ConfigError::invalid(
                    key("connect_timeout"),
                    "must be positive",
                ));
            }
            if b.backoff_base.get().is_zero() || b.backoff_cap.get() < b.backoff_base.get() {
                return Err(ConfigError::invalid(
                    key("backoff_cap"),
                    "backoff_base must be positive and backoff_cap at least backoff_base",
                ));
            }
            if b.health_interval.get() < std::time::Duration::from_millis(100) {
                return Err(ConfigError::invalid(
                    key("health_interval"),
                    "must be at least 100ms",
                ));
            }
            if let Some(ca) = &b.ca_file {
                std::fs::metadata(ca).map_err(|e| {
                    ConfigError::invalid(
                        key("ca_file"),
                        format!("cannot read {}: {e}", ca.display()),
                    )
                })?;
            }
        }
        Ok(())
    }

    fn resolve_active(&self) -> Result<String, ConfigError> {
        match &self.routing.active {
            Some(name) if self.backends.contains_key(name) => Ok(name.clone()),
            Some(name) => Err(ConfigError::invalid(
                "routing.active",
                format!(
                    "no backend named {name:?} (known: {})",
                    self.backend_names()
                ),
            )),
            None if self.backends.len() == 1 => {
                Ok(self.backends.keys().next().cloned().unwrap_or_default())
            }
            None => Err(ConfigError::invalid(
                "routing.active",
                format!(
                    "several backends are configured ({}); say which one is active",
                    self.backend_names()
                ),
            )),
        }
    }

    fn backend_names(&self) -> String {
        self.backends.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// True for a stored md5 password hash (`md5` and 32 hex digits).
pub fn is_md5_hash(s: &str) -> bool {
    s.len() == 35 && s.starts_with("md5") && s[3..].chars().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(text: &str) -> Result<Resolved, ConfigError> {
        let env = HashMap::from([("PW".to_string(), "secret".to_string())]);
        Config::from_toml(text, &env)
    }

    const GOOD: &str = r#"
        [proxy]
        listen = "127.0.0.1:7000"
        [[users]]
        name = "app"
        password = "${PW}"
        [backends.local]
        url = "postgres://app:x@127.0.0.1:5432/app"
        pool_size = 5
        connect_timeout = "2s"
    "#;

    #[test]
    fn good_config_resolves() {
        let r = load(GOOD).unwrap();
        assert_eq!(r.active, "local");
        assert_eq!(r.proxy_addr.port(), 7000);
        assert_eq!(r.config.users[0].password, "secret");
        assert_eq!(r.config.backends["local"].pool_size, 5);
    }

    fn err_of(text: &str) -> String {
        load(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_key() {
        let e = err_of(&GOOD.replace("pool_size = 5", "pool_sise = 5"));
        assert!(
            e.contains("backends.local") && e.contains("pool_sise"),
            "{e}"
        );
        let e = err_of(&GOOD.replace("postgres://app:x@127.0.0.1:5432/app", "nope://"));
        assert!(e.starts_with("backends.local.url"), "{e}");
        let e = err_of(&GOOD.replace("${PW}", "${MISSING}"));
        assert!(
            e.contains("users[0].password") && e.contains("MISSING"),
            "{e}"
        );
        let e = err_of(&GOOD.replace("password = \"${PW}\"", ""));
        assert!(e.starts_with("users[0].password"), "{e}");
        let e = err_of(&GOOD.replace("127.0.0.1:7000", "localhost"));
        assert!(e.starts_with("proxy.listen"), "{e}");
        let e = err_of(&GOOD.replace("\"2s\"", "\"2 fortnights\""));
        assert!(e.contains("connect_timeout"), "{e}");
        let e = err_of(&format!("{GOOD}\n[routing]\nactive = \"other\""));
        assert!(e.starts_with("routing.active"), "{e}");
        let e = err_of(&format!("{GOOD}\n[admin]\nlisten = \"0.0.0.0:9640\""));
        assert!(e.starts_with("admin.token"), "{e}");
        let e = err_of("[proxy]\nlisten = 3");
        assert!(e.contains("proxy.listen"), "{e}");
    }

    #[test]
    fn non_loopback_needs_users() {
        let e = err_of("[proxy]\nlisten = \"0.0.0.0:6432\"\n[backends.a]\nurl = \"sqlite://a.db\"");
        assert!(e.starts_with("users"), "{e}");
    }

    #[test]
    fn embedded_default_is_sqlite() {
        let r = Config::embedded_default("./switchyard.db");
        assert_eq!(r.active, "local");
        assert!(r.config.backends["local"].url.starts_with("sqlite://"));
        assert_eq!(r.proxy_addr.to_string(), "127.0.0.1:6432");
        assert_eq!(r.admin_addr.to_string(), "127.0.0.1:9640");
    }
}
