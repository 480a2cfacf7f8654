//! Backend URLs: `postgres://user:pass@host:port/db?sslmode=…` and `sqlite://PATH`,
//! parsed once into typed targets. Display forms never contain the password.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::SslMode;

/// Where a PostgreSQL server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgHost {
    Tcp {
        host: String,
        port: u16,
    },
    /// A Unix socket directory (`?host=/run/postgresql`); the socket is `.s.PGSQL.<port>`.
    Unix {
        dir: PathBuf,
        port: u16,
    },
}

impl PgHost {
    /// The port: of the TCP address, or in the Unix socket's name.
    pub fn port(&self) -> u16 {
        match self {
            PgHost::Tcp { port, .. } | PgHost::Unix { port, .. } => *port,
        }
    }

    /// True for Unix sockets and loopback addresses, where TLS verification is not needed.
    pub fn is_local(&self) -> bool {
        match self {
            PgHost::Unix { .. } => true,
            PgHost::Tcp { host, .. } => {
                host == "localhost"
                    || host
                        .trim_matches(|c| c == '[' || c == ']')
                        .parse::<IpAddr>()
                        .map(|ip| ip.is_loopback())
                        .unwrap_or(false)
            }
        }
    }
}

impl fmt::Display for PgHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgHost::Tcp { host, port } => write!(f, "{host}:{port}"),
            PgHost::Unix { dir, port } => write!(f, "{}/.s.PGSQL.{port}", dir.display()),
        }
    }
}

/// Everything needed to open a connection to a PostgreSQL server.
#[derive(Clone, PartialEq, Eq)]
pub struct PgTarget {
    pub host: PgHost,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
    pub sslmode: SslMode,
    pub ca_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// Extra startup parameters from the URL (application_name, options).
    pub startup: Vec<(String, String)>,
}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgTarget({self})")
    }
}

impl fmt::Display for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pw = if self.password.is_some() { ":***" } else { "" };
        write!(
            f,
            "postgres://{}{pw}@{}/{}",
            self.user, self.host, self.database
        )
    }
}

/// A parsed backend URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendUrl {
    Postgres(PgTarget),
    Sqlite(PathBuf),
}

impl BackendUrl {
    /// Parses a backend URL. The error says what is wrong without echoing the password.
    pub fn parse(s: &str) -> Result<BackendUrl, String> {
        if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite URL needs a file path: sqlite://./app.db".into());
            }
            return Ok(BackendUrl::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return parse_pg(s).map(BackendUrl::Postgres);
        }
        Err("URL must start with postgres://, postgresql:// or sqlite://".into())
    }

    /// A URL as written, options included, with its password replaced by `***`.
    pub fn masked(raw: &str) -> String {
        if raw.starts_with("sqlite://") {
            return raw.to_string();
        }
        match url::Url::parse(raw) {
            Ok(mut u) => {
                if u.password().is_some() {
                    let _ = u.set_password(Some("***"));
                }
                u.to_string()
            }
            Err(_) => "(not a valid URL)".to_string(),
        }
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        match self {
            BackendUrl::Postgres(t) => t.to_string(),
            BackendUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
        }
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn parse_pg(s: &str) -> Result<PgTarget, String> {
    let url = url::Url::parse(s).map_err(|e| format!("not a valid URL ({e})"))?;
    let user = decode(url.username());
    if user.is_empty() {
        return Err("URL has no user name (postgres://USER:PASSWORD@HOST/DB)".into());
    }
    let password = url.password().map(decode);
    let port = url.port().unwrap_or(5432);
    let database = match url.path().trim_start_matches('/') {
        "" => user.clone(),
        db => decode(db),
    };
    let mut host = url.host_str().map(|h| PgHost::Tcp {
        host: decode(h),
        port,
    });
    let mut sslmode = None;
    let mut ca_file = None;
    let mut connect_timeout = Duration::from_secs(5);
    let mut startup = Vec::new();
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "sslmode" => {
                sslmode = Some(SslMode::parse(&v).ok_or_else(|| {
                    format!(
                        "sslmode={v} is not one of disable, prefer, require, verify-ca, verify-full"
                    )
                })?)
            }
            "sslrootcert" => ca_file = Some(PathBuf::from(v.as_ref())),
            "host" if v.starts_with('/') => {
                host = Some(PgHost::Unix {
                    dir: PathBuf::from(v.as_ref()),
                    port,
                })
            }
            "host" => {
                host = Some(PgHost::Tcp {
                    host: v.into_owned(),
                    port,
                })
            }
            "connect_timeout" => {
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("connect_timeout={v} is not a number of seconds"))?;
                connect_timeout = Duration::from_secs(secs);
            }
            "application_name" | "options" => startup.push((k.into_owned(), v.into_owned())),
            other => return Err(format!("unsupported URL parameter {other:?}")),
        }
    }
    let host = host.ok_or("URL has no host")?;
    let sslmode = sslmode.unwrap_or(if host.is_local() {
        SslMode::Prefer
    } else {
        SslMode::VerifyFull
    });
    Ok(PgTarget {
        host,
        user,
        password,
        database,
        sslmode,
        ca_file,
        connect_timeout,
        startup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_url() {
        let u = BackendUrl::parse("postgres://app:p%40ss@127.0.0.1:5433/appdb?sslmode=require")
            .unwrap();
        let BackendUrl::Postgres(t) = u else { panic!() };
        assert_eq!(t.user, "app");
        assert_eq!(t.password.as_deref(), Some("p@ss"));
        assert_eq!(t.database, "appdb");
        assert_eq!(t.sslmode, SslMode::Require);
        assert_eq!(
            t.host,
            PgHost::Tcp {
                host: "127.0.0.1".into(),
                port: 5433
            }
        );
        assert!(!t.to_string().contains("p@ss"));
    }

    #[test]
    fn defaults_depend_on_locality() {
        let BackendUrl::Postgres(t) = BackendUrl::parse("postgres://u@db.example.com/x").unwrap()
        else {
            panic!()
        };
        assert_eq!(t.sslmode, SslMode::VerifyFull);
        let BackendUrl::Postgres(t) = BackendUrl::parse("postgres://u@localhost/x").unwrap() else {
            panic!()
        };
        assert_eq!(t.sslmode, SslMode::Prefer);
        let BackendUrl::Postgres(t) =
            BackendUrl::parse("postgres://u@x/db?host=/tmp/sock&sslmode=disable").unwrap()
        else {
            panic!()
        };
        assert!(matches!(t.host, PgHost::Unix { .. }));
    }

    #[test]
    fn bad_urls() {
        assert!(BackendUrl::parse("mysql://x").is_err());
        assert!(BackendUrl::parse("postgres://host/db").is_err());
        assert!(BackendUrl::parse("postgres://u@h/db?sslmode=maybe").is_err());
        assert!(BackendUrl::parse("postgres://u@h/db?frobnicate=1").is_err());
        assert!(BackendUrl::parse("sqlite://").is_err());
        assert_eq!(
            BackendUrl::parse("sqlite://./a.db").unwrap(),
            BackendUrl::Sqlite(PathBuf::from("./a.db"))
        );
    }
}
