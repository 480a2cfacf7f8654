//! Configuration: the TOML file, `${VAR}` expansion from the environment, typed sections
//! with defaults, and validation that names the offending key.
//!
//! Loading is `parse → expand env → deserialize (unknown keys refused) → validate`.
//! The embedded default (no file) serves a local SQLite file.

pub mod ctl;
mod duration;
pub mod env;
pub mod fleet;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

pub use duration::{Dur, parse as parse_duration};

/// Everything that can be wrong with a configuration.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config is not valid TOML: {0}")]
    Syntax(String),
    #[error("{key}: {problem}")]
    Invalid { key: String, problem: String },
    #[error("{key}: environment variable {var} is not set")]
    MissingEnv { key: String, var: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// How the proxy authenticates a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    #[serde(rename = "scram-sha-256", alias = "scram-sha256")]
    ScramSha256,
    Md5,
    Trust,
}

/// Whether a PostgreSQL backend may move the proxy's connections between real sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PoolerMode {
    /// Behind a transaction-mode pooler (Supabase 6543, PgBouncer): nothing named survives
    /// a transaction, so prepared statements are re-parsed unnamed.
    Transaction,
    /// A direct server (or a session-mode pooler): statements are cached server-side and
    /// clients with session state may keep their server connection (pinning).
    None,
    /// Found out at the first connection (`backend::detect`): `none` for a server that
    /// keeps sessions, `transaction` otherwise; `transaction` until then.
    #[default]
    Auto,
}

impl PoolerMode {
    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            PoolerMode::Transaction => "transaction",
            PoolerMode::None => "none",
            PoolerMode::Auto => "auto",
        }
    }
}

/// TLS mode toward a backend, as libpq names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" | "allow" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    pub listen: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Default method for `[[users]]` that do not set their own.
    pub auth: AuthMethod,
    pub max_client_connections: usize,
    /// Largest single message accepted from a client, in bytes.
    pub max_message_size: usize,
    /// How long a client waits for a server connection before it gets an error.
    pub pool_wait_timeout: Dur,
    /// Threads serving clients; 0 means half the CPU cores (at least one), which leaves
    /// the rest to a database on the same host.
    pub worker_threads: usize,
    /// On SIGTERM/Ctrl-C: new transactions are held and those in flight get this long to
    /// finish before the process exits.
    pub shutdown_grace: Dur,
    /// A query whose server sends nothing for this long is cancelled, its server
    /// connection discarded, and the client told (57014). Off when unset.
    pub query_timeout: Option<Dur>,
    /// A client that keeps a transaction open without sending anything for this long is
    /// disconnected (25P03) and its transaction rolled back. Off when unset.
    pub idle_transaction_timeout: Option<Dur>,
    /// A client must finish its startup and authentication within this long, or its
    /// connection is closed (PostgreSQL's `authentication_timeout`).
    pub login_timeout: Dur,
    /// The database names clients may ask for. Unset: the database of every backend (a
    /// PostgreSQL URL's database, a SQLite file's name without its extension), so the
    /// name an app uses keeps working after a switch to another backend. `"*"` accepts
    /// any name (the embedded default does: it is a local playground).
    pub databases: Vec<String>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: "127.0.0.1:6432".into(),
            tls_cert: None,
            tls_key: None,
            auth: AuthMethod::ScramSha256,
            max_client_connections: 10_000,
            max_message_size: 64 << 20,
            pool_wait_timeout: Dur::secs(30),
            worker_threads: 0,
            shutdown_grace: Dur::secs(30),
            query_timeout: None,
            idle_transaction_timeout: None,
            login_timeout: Dur::secs(60),
            databases: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    /// Plain text, an md5 hash (`md5…`) or a SCRAM verifier (`SCRAM-SHA-256$…`).
    #[serde(default)]
    pub password: String,
    pub auth: Option<AuthMethod>,
    /// At most this many connections of this user at once (SQLSTATE 53300 beyond).
    pub max_connections: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub listen: String,
    pub token: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: "127.0.0.1:9640".into(),
            token: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    pub url: String,
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    #[serde(default)]
    pub min_idle: u32,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Dur,
    /// Overrides `sslmode` in the URL.
    pub sslmode: Option<SslMode>,
    /// CA bundle for verify-ca / verify-full (default: the system roots).
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub pooler: PoolerMode,
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: Dur,
    #[serde(default = "default_max_lifetime")]
    pub max_lifetime: Dur,
    /// Reconnect backoff: the first retry waits up to this long (full jitter)…
    #[serde(default = "default_backoff_base")]
    pub backoff_base: Dur,
    /// …and the wait doubles per failure up to this cap.
    #[serde(default = "default_backoff_cap")]
    pub backoff_cap: Dur,
    /// How often an idle, healthy backend is checked.
    #[serde(default = "default_health_interval")]
    pub health_interval: Dur,
    /// At most this many clients keep a server connection of their own between
    /// transactions, for session state (named prepared statements, LISTEN, temporary
    /// tables, session advisory locks, cursors WITH HOLD). Default: half of pool_size.
    /// Only on a backend that keeps sessions (`pooler = "none"`); 0 turns pinning off.
    pub max_pinned: Option<u32>,
    /// How a SQLite file is opened: not a config key (the embedded default creates its
    /// file; check-config only reads).
    #[serde(skip)]
    pub sqlite_open: SqliteOpen,
}

/// How a SQLite backend's file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteOpen {
    /// It must exist: a configured path that is wrong must not serve an empty database.
    #[default]
    Existing,
    /// Made if missing (the embedded default only).
    Create,
    /// Read only, changing nothing (check-config).
    Check,
}

impl BackendConfig {
    /// `max_pinned`, with its default.
    pub fn pin_limit(&self) -> u32 {
        self.max_pinned.unwrap_or(self.pool_size / 2)
    }

    /// The URL with this backend's `sslmode` and `ca_file` overrides folded in, for the
    /// proxy's own connections (live sync) that take a URL.
    pub fn effective_url(&self) -> String {
        if self.url.starts_with("sqlite://") {
            return self.url.clone();
        }
        let mut url = self.url.clone();
        let mut add = |k: &str, v: &str| {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(k);
            url.push('=');
            url.push_str(
                &percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            );
        };
        if let Some(mode) = self.sslmode {
            add("sslmode", mode.as_str());
        }
        if let Some(ca) = &self.ca_file {
            add("sslrootcert", &ca.display().to_string());
        }
        url
    }
}

fn default_pool_size() -> u32 {
    20
}
fn default_connect_timeout() -> Dur {
    Dur::secs(5)
}
fn default_idle_timeout() -> Dur {
    Dur::secs(600)
}
fn default_max_lifetime() -> Dur {
    Dur::secs(3600)
}
fn default_backoff_base() -> Dur {
    Dur::millis(100)
}
fn default_backoff_cap() -> Dur {
    Dur::secs(10)
}
fn default_health_interval() -> Dur {
    Dur::secs(5)
}

/// How switches (cutover, rollback) behave.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SwitchConfig {
    /// How long in-flight transactions may take to finish before a switch gives up.
    pub drain_timeout: Dur,
    /// Server connections opened on the target before pausing (capped at its pool size).
    pub prewarm: u32,
    /// How long preflight may take (connecting to and checking the target).
    pub preflight_timeout: Dur,
    /// A switch to or from a live-sync side is refused while more captured changes than
    /// this are pending (so the catch-up inside the pause stays short).
    pub max_lag_rows: u64,
    /// The longest clients are held by a switch (drain and catch-up included). Past it the
    /// switch gives up before the swap and clients resume on the old backend.
    pub max_pause: Dur,
}

impl Default for SwitchConfig {
    fn default() -> Self {
        SwitchConfig {
            drain_timeout: Dur::secs(1),
            prewarm: 4,
            preflight_timeout: Dur::secs(10),
            max_lag_rows: 10_000,
            max_pause: Dur::secs(2),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    pub active: Option<String>,
    /// Where the route is kept across restarts (see `router::route_file`).
    pub state_file: Option<PathBuf>,
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A file of `NAME=value` lines (systemd's EnvironmentFile form) that `${NAME}`
    /// references are taken from when the environment lacks them; relative to the
    /// config file. `init` writes the passwords there.
    #[serde(default)]
    pub env_file: Option<PathBuf>,
    #[serde(default)]
    pub proxy: ProxyConfig,
    #[serde(default)]
    pub users: Vec<UserConfig>,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub backends: BTreeMap<String, BackendConfig>,
    #[serde(default)]
    pub routing: RoutingConfig,
    #[serde(default)]
    pub switch: SwitchConfig,
    #[serde(default)]
    pub sync: SyncConfig,
    #[serde(default)]
    pub log: LogConfig,
    /// `[fleet]`: this sidecar is one of several that switch as one.
    #[serde(default)]
    pub fleet: Option<fleet::FleetConfig>,
}

/// `[sync]`: column choices for every sync this config starts (`ctl sync`, and `switchyard
/// sync --config`): `exclude_columns = ["events.legacy"]` and a `[sync.types]` table of
/// `"events.at" = "timestamptz"`. A command's own flags add to them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncConfig {
    #[serde(default)]
    pub exclude_columns: Vec<String>,
    #[serde(default)]
    pub types: BTreeMap<String, String>,
}

impl SyncConfig {
    /// The section as column choices.
    pub fn choices(&self) -> crate::sync::choices::ColumnChoices {
        crate::sync::choices::ColumnChoices {
            exclude_columns: self.exclude_columns.clone(),
            types: self.types.iter().map(|(c, t)| format!("{c}={t}")).collect(),
        }
    }
}

/// `[log]`: the form of log lines (`format = "text"` or `"json"`).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: crate::logging::LogFormat,
}

/// A validated configuration with its resolved addresses and active backend.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub config: Config,
    pub proxy_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    /// `routing.active` (where a proxy with no switch behind it starts).
    pub active: String,
    /// The route file, resolved; `None` keeps the route in memory only (a config given
    /// as text, as tests do, without `routing.state_file`).
    pub state_file: Option<PathBuf>,
}

impl Resolved {
    /// The database names clients may ask for (see `proxy.databases`), in config order
    /// and without repeats.
    pub fn database_names(&self) -> Vec<String> {
        let proxy = &self.config.proxy;
        let names: Vec<String> = if proxy.databases.is_empty() {
            let urls = self.config.backends.values();
            urls.filter_map(|b| backend_database(&b.url)).collect()
        } else {
            proxy.databases.clone()
        };
        let mut unique = Vec::with_capacity(names.len());
        for name in names {
            if !unique.contains(&name) {
                unique.push(name);
            }
        }
        unique
    }
}

/// The database a backend URL serves: a PostgreSQL URL's database, a SQLite file's name
/// without its extension.
fn backend_database(url: &str) -> Option<String> {
    use crate::backend::url::BackendUrl;
    match BackendUrl::parse(url).ok()? {
        BackendUrl::Postgres(t) => Some(t.database),
        BackendUrl::Sqlite(path) => Some(path.file_stem()?.to_string_lossy().into_owned()),
    }
}

impl ProxyConfig {
    /// The number of runtime worker threads to use.
    pub fn workers(&self) -> usize {
        if self.worker_threads > 0 {
            return self.worker_threads;
        }
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        (cores / 2).max(1)
    }
}

/// A warning when a config file holds a secret written out (not a `${VAR}` reference) and
/// other users of the machine may read it.
pub fn secret_exposure(path: &Path, text: &str) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        if mode & 0o004 == 0 {
            return None;
        }
        let literal = |key: &str, v: &toml::Value| match v {
            toml::Value::String(s) if key == "password" || key == "token" => {
                !s.is_empty() && !s.starts_with("${")
            }
            toml::Value::String(s) if key == "url" => s
                .split_once("://")
                .and_then(|(_, rest)| rest.split_once('@'))
                .and_then(|(auth, _)| auth.split_once(':'))
                .is_some_and(|(_, pw)| !pw.is_empty() && !pw.starts_with("${")),
            _ => false,
        };
        let value: toml::Value = toml::from_str(text).ok()?;
        if any_secret(&value, "", &literal) {
            return Some(format!(
                "{} holds a password or token and is readable by every user (mode {:o}); chmod 600 it, or move the secrets to ${{VAR}} references",
                path.display(),
                mode & 0o777
            ));
        }
    }
    None
}

fn any_secret(v: &toml::Value, key: &str, literal: &dyn Fn(&str, &toml::Value) -> bool) -> bool {
    match v {
        toml::Value::Table(t) => t.iter().any(|(k, v)| any_secret(v, k, literal)),
        toml::Value::Array(a) => a.iter().any(|v| any_secret(v, key, literal)),
        other => literal(key, other),
    }
}

impl Config {
    /// Reads, expands and validates a config file.
    pub fn load(path: &Path) -> Result<Resolved, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        let file_vars = env::env_file_of(&text, dir)?;
        let mut r = Self::from_toml(&text, &env::Layered(&env::ProcessEnv, file_vars))?;
        for b in r.config.backends.values_mut() {
            b.url = relative_to(dir, &b.url);
        }
        r.state_file = Some(match &r.config.routing.state_file {
            Some(p) => dir.join(p),
            None => crate::router::route_file::default_path(
                path,
                std::env::var("STATE_DIRECTORY").ok().as_deref(),
            ),
        });
        Ok(r)
    }

    /// Parses, expands and validates config text.
    pub fn from_toml(text: &str, env: &dyn env::EnvSource) -> Result<Resolved, ConfigError> {
        let mut value: toml::Value = toml::from_str(text)
            .map_err(|e| ConfigError::Syntax(e.to_string().trim_end().replace('\n', " ")))?;
        env::expand_value(&mut value, "", env)?;
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::invalid(
                if key == "." { "config".into() } else { key },
                e.into_inner().to_string(),
            )
        })?;
        config.validate()
    }

    /// The embedded default: a local SQLite file (made if missing), proxy and admin on
    /// loopback.
    pub fn embedded_default(db_path: &str) -> Resolved {
        let mut config = Config::default();
        config.backends.insert(
            "local".into(),
            BackendConfig {
                url: format!("sqlite://{db_path}"),
                pool_size: default_pool_size(),
                min_idle: 0,
                connect_timeout: default_connect_timeout(),
                sslmode: None,
                ca_file: None,
                pooler: PoolerMode::None,
                idle_timeout: default_idle_timeout(),
                max_lifetime: default_max_lifetime(),
                backoff_base: default_backoff_base(),
                backoff_cap: default_backoff_cap(),
                health_interval: default_health_interval(),
                max_pinned: None,
                sqlite_open: SqliteOpen::Create,
            },
        );
        config.routing.active = Some("local".into());
        config.proxy.databases = vec!["*".into()];
        let mut r = config
            .validate()
            .expect("the embedded default config is valid");
        let dir = Path::new(db_path).parent().unwrap_or(Path::new("."));
        r.state_file = Some(dir.join("switchyard.state.json"));
        r
    }
}

/// A SQLite URL's relative path is taken from the config file's directory (as the route
/// file's is), not from wherever `serve` was started; other URLs are returned as they are.
fn relative_to(dir: &Path, url: &str) -> String {
    match url.strip_prefix("sqlite://") {
        Some(p) if !p.is_empty() && Path::new(p).is_relative() && !dir.as_os_str().is_empty() => {
            format!("sqlite://{}", dir.join(p).display())
        }
        _ => url.to_string(),
    }
}
