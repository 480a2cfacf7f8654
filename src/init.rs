//! `switchyard init`: the guided first run. Asks for (or takes as flags) the app's local
//! database and the hosted PostgreSQL it is moving to, tests both connections, and writes
//! a commented config file. Passwords never reach the file: they are replaced by `${VAR}`
//! references and the command says which variables to export.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::backend::url::BackendUrl;
use crate::config::{Config, PoolerMode};

/// What `init` needs; unset fields are asked for unless `non_interactive`.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// The app's database today: sqlite://PATH or postgres://…
    #[arg(long)]
    pub local: Option<String>,
    /// The PostgreSQL to move to, e.g. Supabase's pooler connection string
    /// (postgres://postgres.REF:PASSWORD@aws-0-REGION.pooler.supabase.com:6543/postgres).
    #[arg(long)]
    pub remote: Option<String>,
    /// Where to write the config.
    #[arg(long, short, default_value = "switchyard.toml")]
    pub output: PathBuf,
    /// Address applications connect to.
    #[arg(long, env = "SWITCHYARD_LISTEN", default_value = "127.0.0.1:6432")]
    pub listen: String,
    /// Address of the admin API (status, metrics, cutover).
    #[arg(
        long,
        env = "SWITCHYARD_ADMIN_LISTEN",
        default_value = "127.0.0.1:9640"
    )]
    pub admin_listen: String,
    /// Require this user (password from ${SWITCHYARD_APP_PASSWORD}) instead of trusting
    /// loopback clients.
    #[arg(long)]
    pub app_user: Option<String>,
    /// Write the file without testing the connections.
    #[arg(long)]
    pub skip_checks: bool,
    /// Replace an existing file.
    #[arg(long)]
    pub force: bool,
    /// Ask nothing: take everything from the flags (for scripts).
    #[arg(long)]
    pub non_interactive: bool,
    /// Write no env file beside the config: the passwords must then be set in the
    /// environment switchyard runs in (the variables are listed).
    #[arg(long)]
    pub no_env_file: bool,
}

/// One backend as it goes into the file.
struct Backend {
    name: &'static str,
    url: String,
    pooler: PoolerMode,
    secret_var: Option<&'static str>,
}

/// Runs the guided setup; returns after the file is written.
pub async fn run(mut args: InitArgs) -> Result<()> {
    if args.output.exists() && !args.force {
        bail!(
            "{} already exists (use --force to replace it)",
            args.output.display()
        );
    }
    if !args.non_interactive {
        ask_missing(&mut args)?;
    }
    let local = args
        .local
        .clone()
        .unwrap_or_else(|| "sqlite://./switchyard.db".into());
    let mut local = backend("local", &local, "LOCAL_DB_PASSWORD")?;
    if let Some(path) = local.url.strip_prefix("sqlite://") {
        local.url = sqlite_url(Path::new(path), &args.output)?;
    }
    let remote = match &args.remote {
        Some(u) if !u.trim().is_empty() => {
            Some(backend("supabase", u.trim(), "SUPABASE_PASSWORD")?)
        }
        _ => None,
    };
    let mut secrets = Vec::new();
    for (b, raw) in [
        (Some(&local), args.local.as_deref()),
        (remote.as_ref(), args.remote.as_deref()),
    ] {
        let (Some(b), Some(raw)) = (b, raw) else {
            continue;
        };
        if !args.skip_checks {
            check_connection(b.name, raw).await?;
        }
        if let (Some(var), Some(pw)) = (b.secret_var, password_of(raw)) {
            secrets.push((var, pw));
        }
    }
    let env_file = (!secrets.is_empty() && !args.no_env_file).then(|| env_path(&args.output));
    if let Some(p) = env_file.as_ref().filter(|p| p.exists() && !args.force) {
        bail!("{} already exists (use --force to replace it)", p.display());
    }
    let env_name = env_file
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    let text = render(&args, &local, remote.as_ref(), env_name.as_deref());
    validate(&text, &secrets, &args)?;
    write_private(&args.output, &text)?;
    println!("wrote {}", args.output.display());
    if let Some(p) = &env_file {
        write_private(p, &env_text(&secrets))?;
        let vars: Vec<&str> = secrets.iter().map(|(v, _)| *v).collect();
        println!(
            "wrote {} (mode 0600): {}, the password from the URL you gave, which the config reads through env_file; nothing to export",
            p.display(),
            vars.join(", ")
        );
    } else if !secrets.is_empty() {
        println!("passwords are read from the environment; before `switchyard serve`, export:");
        for (var, _) in &secrets {
            println!(
                "  export {var}='…'   # the password from the URL you gave, as written there (percent-encoded)"
            );
        }
    }
    if args.app_user.is_some() {
        println!(
            "before `switchyard serve`, export SWITCHYARD_APP_PASSWORD='…'   # what your app will log in with"
        );
    }
    println!("next: switchyard check-config {}", args.output.display());
    Ok(())
}

/// The env file beside the config: `switchyard.toml` → `switchyard.env`.
fn env_path(config: &Path) -> PathBuf {
    config.with_extension("env")
}

/// `NAME='value'` lines (systemd's EnvironmentFile form, which `env_file` reads too). The
/// value is the password as written in the URL (percent-encoded), as the URL in the config
/// takes it back.
fn env_text(secrets: &[(&str, String)]) -> String {
    let mut s = String::from(
        "# Passwords for the ${VAR} references of the config, written by `switchyard init`.\n\
         # As written in the database URL (percent-encoded: %40 for @). Keep this file 0600.\n",
    );
    for (var, pw) in secrets {
        s.push_str(&format!("{var}='{}'\n", pw.replace('\'', "%27")));
    }
    s
}

fn ask_missing(args: &mut InitArgs) -> Result<()> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock();
    if args.local.is_none() {
        let a = ask(
            &mut lines,
            "Your app's database today (sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB)",
            "sqlite://./switchyard.db",
        )?;
        args.local = Some(a);
    }
    if args.remote.is_none() {
        let a = ask(
            &mut lines,
            "The Supabase (or other PostgreSQL) connection string to move to — Supabase: Project \
             Settings → Database → Transaction pooler, port 6543 (empty: none yet)",
            "",
        )?;
        args.remote = Some(a);
    }
    Ok(())
}

fn ask(lines: &mut impl BufRead, question: &str, default: &str) -> Result<String> {
    let mut err = std::io::stderr();
    if default.is_empty() {
        write!(err, "{question}:\n> ")?;
    } else {
        write!(err, "{question}\n[{default}] > ")?;
    }
    err.flush()?;
    let mut line = String::new();
    if lines.read_line(&mut line)? == 0 {
        bail!("no answer on standard input (use --non-interactive with flags in scripts)");
    }
    let line = line.trim();
    Ok(if line.is_empty() {
        default.into()
    } else {
        line.into()
    })
}

/// Parses `url`, infers the pooler mode and moves its password into `${var}`.
fn backend(name: &'static str, url: &str, var: &'static str) -> Result<Backend> {
    let parsed = BackendUrl::parse(url).map_err(|e| anyhow::anyhow!("{name} database URL: {e}"))?;
    let BackendUrl::Postgres(t) = &parsed else {
        return Ok(Backend {
            name,
            url: url.into(),
            pooler: PoolerMode::None,
            secret_var: None,
        });
    };
    let port = t.host.port();
    let host = parsed.redacted();
    if host.contains("pooler.supabase.com") && !t.user.contains('.') {
        bail!(
            "{name}: Supabase's pooler needs the user written as postgres.PROJECTREF \
             (got {:?}); copy the string from Project Settings → Database",
            t.user
        );
    }
    // 5432 is a PostgreSQL server itself; anything else may be a pooler (Supabase's is
    // on 6543), and "transaction" is safe behind a pooler and in front of a server alike.
    let pooler = if port != 5432 {
        PoolerMode::Transaction
    } else {
        PoolerMode::None
    };
    let (url, secret_var) = match password_of(url) {
        Some(pw) => (
            url.replacen(&format!(":{pw}@"), &format!(":${{{var}}}@"), 1),
            Some(var),
        ),
        None => (url.into(), None),
    };
    Ok(Backend {
        name,
        url,
        pooler,
        secret_var,
    })
}

/// The URL to write for the app's SQLite file: the file must exist (switchyard does not
/// make an empty one for a configured backend), and a relative path is written relative to
/// the config file's directory, which is where `serve` will look for it.
fn sqlite_url(path: &Path, output: &Path) -> Result<String> {
    let full = std::fs::canonicalize(path).map_err(|_| {
        anyhow::anyhow!(
            "local: SQLite file {} does not exist (full path {}); give the path of your app's \
             database file (switchyard does not make an empty one for a configured backend)",
            path.display(),
            std::path::absolute(path)
                .unwrap_or_else(|_| path.to_path_buf())
                .display()
        )
    })?;
    let dir = output
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    Ok(match full.strip_prefix(&dir) {
        Ok(rel) => format!("sqlite://./{}", rel.display()),
        Err(_) => format!("sqlite://{}", full.display()),
    })
}

/// The password part of a postgres URL, exactly as written (still percent-encoded).
fn password_of(url: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    u.password().filter(|p| !p.is_empty()).map(str::to_string)
}

async fn check_connection(name: &str, url: &str) -> Result<()> {
    match BackendUrl::parse(url).map_err(|e| anyhow::anyhow!("{name} database URL: {e}"))? {
        BackendUrl::Sqlite(path) => {
            if path.exists() {
                rusqlite::Connection::open(&path)
                    .and_then(|c| {
                        c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                            r.get::<_, i64>(0)
                        })
                    })
                    .with_context(|| format!("{name}: cannot read {}", path.display()))?;
                println!("{name}: SQLite file {} opened", path.display());
            }
        }
        BackendUrl::Postgres(t) => {
            let c = crate::sync::pgconn::connect(&t)
                .await
                .with_context(|| format!("{name}: cannot connect"))?;
            let rows = c
                .simple_query("SELECT current_setting('server_version'), current_setting('port')")
                .await
                .with_context(|| format!("{name}: connected but cannot query"))?;
            let row = rows.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some((
                    r.get(0).unwrap_or_default().to_string(),
                    r.get(1).unwrap_or_default().to_string(),
                )),
                _ => None,
            });
            let (version, server_port) = row.unwrap_or_default();
            println!("{name}: connected to PostgreSQL {version} as {}", t.user);
            println!("{name}: {}", pooler_guess(&t, &server_port));
        }
    }
    Ok(())
}

/// What `pooler = "auto"` will find, as far as one connection can tell: a server whose
/// own port is not the one connected to sits behind something (a pooler).
fn pooler_guess(t: &crate::backend::url::PgTarget, server_port: &str) -> String {
    let port = t.host.port();
    if server_port == port.to_string() {
        format!(
            "the server listens on {port} itself: pooler \"auto\" will check it keeps sessions and then run it as \"none\""
        )
    } else {
        format!(
            "the server's own port is {server_port}, not {port}: a pooler is in between, so pooler \"auto\" will run it as \"transaction\""
        )
    }
}

/// Checks the text as `check-config` would, with the given secrets in the environment.
fn validate(text: &str, secrets: &[(&str, String)], args: &InitArgs) -> Result<()> {
    let mut env: std::collections::HashMap<String, String> = secrets
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    if args.app_user.is_some() {
        env.insert("SWITCHYARD_APP_PASSWORD".into(), "placeholder".into());
    }
    Config::from_toml(text, &env).context("the generated config does not validate (a bug)")?;
    Ok(())
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

fn render(
    args: &InitArgs,
    local: &Backend,
    remote: Option<&Backend>,
    env_file: Option<&str>,
) -> String {
    let mut s = String::from(
        "# switchyard config written by `switchyard init`.\n\
         # Check it with: switchyard check-config FILE. Every value may use ${VAR}.\n\n",
    );
    if let Some(name) = env_file {
        s.push_str(&format!(
            "# ${{VAR}} values missing from the environment are read from this file (beside\n\
             # this one, mode 0600): the passwords init was given.\nenv_file = {name:?}\n\n"
        ));
    }
    s.push_str(&format!(
        "[proxy]\n# Where your app connects (any PostgreSQL driver).\nlisten = {:?}\n\n",
        args.listen
    ));
    match &args.app_user {
        Some(u) => s.push_str(&format!(
            "# Who may connect to the proxy (SCRAM-SHA-256).\n[[users]]\nname = {u:?}\n\
             password = \"${{SWITCHYARD_APP_PASSWORD}}\"\n\n"
        )),
        None => s.push_str(
            "# No [[users]]: clients on loopback are trusted. To require a password:\n\
             # [[users]]\n# name = \"app\"\n# password = \"${SWITCHYARD_APP_PASSWORD}\"\n\n",
        ),
    }
    s.push_str(&format!(
        "[admin]\n# /status, /metrics, /cutover, /rollback, /sync/start. Off loopback it needs a token.\n\
         listen = {:?}\n# token = \"${{SWITCHYARD_ADMIN_TOKEN}}\"\n\n",
        args.admin_listen
    ));
    s.push_str(&backend_section(local, "The app's database today."));
    match remote {
        Some(r) => s.push_str(&backend_section(r, "Where the app is moving.")),
        None => s.push_str(
            "# Where the app is moving (Supabase: the transaction pooler string, port 6543).\n\
             # [backends.supabase]\n# url = \"postgres://postgres.REF:${SUPABASE_PASSWORD}@aws-0-REGION.pooler.supabase.com:6543/postgres\"\n\
             # sslmode = \"require\"\n# pooler = \"transaction\"\n\n",
        ),
    }
    s.push_str(
        "[routing]\n# The backend new transactions go to until the first switch; `switchyard ctl cutover NAME`\n\
         # changes it, and the route is then kept in NAME.state.json beside this file\n\
         # (routing.state_file), so a restart comes up where the last switch left it.\n\
         active = \"local\"\n\n\
         [switch]\n# In-flight transactions get this long to finish before a switch gives up; one open\n\
         # longer than this makes a cutover refuse to start, naming it.\n\
         drain_timeout = \"1s\"\n# The longest a switch holds clients; past it, it gives up and resumes them.\n\
         max_pause = \"2s\"\n# Refuse a cutover while live sync has more pending changes than this.\n\
         max_lag_rows = 10000\n",
    );
    s
}

fn backend_section(b: &Backend, what: &str) -> String {
    let mut s = format!("# {what}\n[backends.{}]\nurl = {:?}\n", b.name, b.url);
    if !b.url.starts_with("sqlite://") {
        let pooler = match b.pooler {
            PoolerMode::Transaction => {
                "\"auto\"   # found out at start; expect \"transaction\" (a pooler's port: statements re-prepared per use)"
            }
            _ => {
                "\"auto\"   # found out at start; expect \"none\" (a server itself: statements cached, session features kept)"
            }
        };
        s.push_str(&format!("pooler = {pooler}\npool_size = 20\n"));
        if b.url.contains("supabase.co") && !b.url.contains("sslmode=") {
            s.push_str("sslmode = \"require\"\n");
        }
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_become_variables_and_6543_means_a_pooler() {
        let b = backend(
            "supabase",
            "postgres://postgres.abc:s3cr%40t@aws-0-eu.pooler.supabase.com:6543/postgres",
            "SUPABASE_PASSWORD",
        )
        .unwrap();
        assert_eq!(
            b.url,
            "postgres://postgres.abc:${SUPABASE_PASSWORD}@aws-0-eu.pooler.supabase.com:6543/postgres"
        );
        assert_eq!(b.pooler, PoolerMode::Transaction);
        assert_eq!(b.secret_var, Some("SUPABASE_PASSWORD"));
    }

    #[test]
    fn supabase_pooler_without_project_ref_is_refused() {
        let e = backend(
            "supabase",
            "postgres://postgres:pw@aws-0-eu.pooler.supabase.com:6543/postgres",
            "SUPABASE_PASSWORD",
        )
        .err()
        .unwrap();
        assert!(format!("{e:#}").contains("postgres.PROJECTREF"), "{e:#}");
    }
}
