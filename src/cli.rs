//! The command line: `serve`, `check-config`, `init`, `sync`, `verify` and `ctl`.
//! Errors are reported here with `anyhow` context; the layers below use typed errors.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::app::App;
use crate::backend::url::BackendUrl;
use crate::config::{Config, Resolved};
use crate::metrics::Metrics;

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "PostgreSQL wire-protocol sidecar that moves apps between databases without downtime"
)]
pub struct Cli {
    /// Log lines as text (coloured on a terminal only) or one JSON object per line
    /// (default: `[log] format` of the config, else text).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<crate::logging::LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (with no --config: serve ./switchyard.db over the PostgreSQL protocol).
    Serve {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate a config file and print what switchyard would do with it.
    CheckConfig { file: PathBuf },
    /// Guided first run: ask for the local and the hosted database, test both, write a
    /// commented config file.
    Init(crate::init::InitArgs),
    /// Copy schema and data from a source (sqlite://PATH or postgres://…) into PostgreSQL.
    Sync {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// Only these tables (comma separated).
        #[arg(long, value_delimiter = ',')]
        tables: Vec<String>,
        #[arg(long, default_value_t = 20_000)]
        batch_rows: usize,
        /// Tables copied at once.
        #[arg(long, default_value_t = 2)]
        parallel: usize,
        /// Connect, plan and print row counts and DDL; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Create the tables, indexes and constraints only.
        #[arg(long)]
        schema_only: bool,
        /// Empty existing target tables and start over.
        #[arg(long)]
        force: bool,
        /// Continue an interrupted sync from its checkpoints.
        #[arg(long)]
        resume: bool,
        /// Write rows that cannot be converted to this file (JSON lines) and go on.
        #[arg(long, value_name = "FILE")]
        skip_bad_rows: Option<PathBuf>,
        /// Keep going after the copy: capture changes on --from and apply them to --to
        /// until Ctrl-C (inside a proxy, use `switchyard ctl sync A B` instead).
        #[arg(long, conflicts_with_all = ["dry_run", "schema_only", "finish"])]
        live: bool,
        /// Remove live sync's triggers and changelogs from both sides.
        #[arg(long, conflicts_with_all = ["dry_run", "schema_only"])]
        finish: bool,
    },
    /// Compare source and target row by row. Exit 0 = identical, 1 = differences, 2 = could not run.
    Verify {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long, value_delimiter = ',')]
        tables: Vec<String>,
        /// Only the tables live sync changed since then: a duration (10m, 2h) or a UTC
        /// time (2026-12-01T10:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Control a running proxy through its admin API.
    Ctl {
        /// Admin API base URL (default: admin.listen of --config, else http://127.0.0.1:9640).
        #[arg(long, env = "SWITCHYARD_ADMIN_URL")]
        admin: Option<String>,
        /// Read the admin address and token from this config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Bearer token (default: admin.token of --config).
        #[arg(long, env = "SWITCHYARD_ADMIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Print the raw JSON answer.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        command: crate::ctl::CtlCommand,
    },
}

/// Parses the command line, builds the runtime (worker threads from the config when
/// serving) and runs the command. Returns the process exit code.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Only the thread count and log format here; `serve` loads (and reports on) the file
    // itself.
    let file = match &cli.command {
        Command::Serve { config: Some(p) } => Config::load(p).ok(),
        _ => None,
    };
    crate::logging::init(
        cli.log_format
            .or(file.as_ref().map(|r| r.config.log.format))
            .unwrap_or_default(),
    );
    let workers = file.map(|r| r.config.proxy.workers()).unwrap_or(1);
    // One worker: a current-thread runtime has no work-stealing overhead at all.
    let rt = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("switchyard")
            .enable_all()
            .build()
    };
    let result = match rt {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => Err(anyhow::anyhow!("cannot start the runtime: {e}")),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchyard: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve { config } => serve(config).await,
        Command::CheckConfig { file } => check_config(&file).await,
        Command::Init(args) => crate::init::run(args).await,
        Command::Sync {
            from,
            to,
            tables,
            batch_rows,
            parallel,
            dry_run,
            schema_only,
            force,
            resume,
            skip_bad_rows,
            live,
            finish,
        } => {
            if finish {
                return finish_live(&from, &to).await;
            }
            if live {
                return run_live(from, to, force, parallel).await;
            }
            let opts = crate::sync::SyncOptions {
                from,
                to,
                tables,
                batch_rows,
                parallel,
                dry_run,
                schema_only,
                force,
                resume,
                skip_bad_rows,
                defer_foreign_keys: false,
                rows_copied: None,
            };
            let summary = crate::sync::copy::plan::run(opts.clone()).await?;
            if !opts.dry_run && !opts.schema_only {
                print!("{}", crate::sync::copy::plan::render_summary(&summary));
            }
            Ok(())
        }
        Command::Verify {
            from,
            to,
            tables,
            since,
            json,
        } => {
            let tables = match since {
                None => tables,
                Some(s) => match verify_since(&from, &to, &s, tables).await {
                    Ok(Some(t)) => t,
                    Ok(None) => std::process::exit(0),
                    Err(e) => {
                        eprintln!("switchyard verify: {e}");
                        std::process::exit(2);
                    }
                },
            };
            let report = match crate::sync::verify::run(&from, &to, &tables).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("switchyard verify: {e}");
                    std::process::exit(2);
                }
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", crate::sync::verify::render(&report));
            }
            std::process::exit(if report.identical { 0 } else { 1 });
        }
        Command::Ctl {
            admin,
            config,
            token,
            json,
            command,
        } => {
            let resolved = config.as_ref().map(|p| load(Some(p))).transpose()?;
            let base = admin
                .or_else(|| {
                    resolved
                        .as_ref()
                        .map(|r| format!("http://{}", r.admin_addr))
                })
                .unwrap_or_else(|| "http://127.0.0.1:9640".into());
            let token = token.or_else(|| resolved.and_then(|r| r.config.admin.token));
            crate::ctl::run(&crate::ctl::Target { base, token }, command, json).await
        }
    }
}

/// The tables `verify --since` compares; `None` (after saying so) when live sync changed
/// none of them since then.
async fn verify_since(
    from: &str,
    to: &str,
    since: &str,
    asked: Vec<String>,
) -> Result<Option<Vec<String>>> {
    use crate::sync::live::touched::{Since, tables_since};
    let since_at = Since::parse(since).map_err(|e| anyhow::anyhow!(e))?;
    let mut tables = tables_since(from, to, &since_at).await?;
    if !asked.is_empty() {
        tables.retain(|t| asked.contains(t));
    }
    if tables.is_empty() {
        println!("verify: live sync changed no table since {since}; nothing to compare");
        return Ok(None);
    }
    println!(
        "verify: {} table(s) changed by live sync since {since}: {}",
        tables.len(),
        tables.join(", ")
    );
    Ok(Some(tables))
}

async fn finish_live(from: &str, to: &str) -> Result<()> {
    let tables = crate::sync::live::finish(from, to).await?;
    println!(
        "live sync finished: capture triggers and changelogs removed from both sides ({tables} tables)"
    );
    Ok(())
}

/// `sync --live`: the same live sync as inside a proxy, printing its lag until Ctrl-C.
async fn run_live(from: String, to: String, force: bool, parallel: usize) -> Result<()> {
    let name = |u: &str| {
        BackendUrl::parse(u)
            .map(|b| b.redacted())
            .unwrap_or_default()
    };
    let spec = crate::sync::live::LiveSpec {
        from_name: name(&from),
        from_url: from,
        to_name: name(&to),
        to_url: to,
        force,
        max_lag_rows: u64::MAX,
        batch: 10_000,
        parallel,
    };
    let metrics = Metrics::new(prometheus::Registry::new());
    // The same command run again (after Ctrl-C or a crash) is the same instance, and
    // takes the sync over at once.
    let instance = format!(
        "cli-{:016x}",
        std::hash::BuildHasher::hash_one(
            &foldhash::fast::FixedState::with_seed(0),
            (&spec.from_url, &spec.to_url)
        )
    );
    let owner = crate::sync::live::record::owner_name(&instance);
    let lifecycle = crate::lifecycle::Lifecycle::new();
    let live = crate::sync::live::LiveSync::start(
        spec,
        metrics,
        owner,
        crate::sync::live::StartMode::Fresh,
        &lifecycle,
    )
    .await?;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                let s = live.status();
                println!(
                    "live sync: {:?}, pending {} (oldest {:.1} s), applied {}, backfilled {} rows{}",
                    s.phase, s.pending_changes, s.oldest_change_seconds, s.applied_total, s.backfilled_rows,
                    s.last_error.map(|e| format!(", last error: {e}")).unwrap_or_default()
                );
                if s.phase == crate::sync::live::Phase::Failed {
                    anyhow::bail!("live sync failed");
                }
            }
        }
    }
    println!("stopping: applying the changes captured so far…");
    if !live.stop_and_wait(std::time::Duration::from_secs(30)).await {
        eprintln!("changes were still pending after 30 s; the rest is applied on the next --live");
    }
    println!(
        "live sync stopped; capture stays installed (resume with --live, remove with --finish)"
    );
    Ok(())
}

fn load(path: Option<&PathBuf>) -> Result<Resolved> {
    match path {
        Some(p) => {
            warn_if_exposed(p);
            Config::load(p).with_context(|| format!("invalid config {}", p.display()))
        }
        None => Ok(Config::embedded_default("./switchyard.db")),
    }
}

async fn serve(config: Option<PathBuf>) -> Result<()> {
    let resolved = load(config.as_ref())?;
    let metrics = Metrics::new(prometheus::Registry::new());
    let app = App::build(resolved.clone(), metrics).context("cannot start")?;
    let listener = app.bind_proxy().await?;
    let admin = app.bind_admin().await?;
    let addr = resolved.proxy_addr;
    let route = app.state.switcher.route();
    let active = &*app.state.router.active().name;
    if *active != *resolved.active {
        eprintln!(
            "switchyard: WARNING: the config says routing.active = {:?}, but the last switch (#{}) left the app on {active:?}, as recorded in {}; serving {active:?}. Edit routing.active to match, or switch with `switchyard ctl cutover`.",
            resolved.active,
            route.epoch,
            resolved
                .state_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    tracing::info!(%addr, backend = %active, epoch = route.epoch, "switchyard is listening");
    println!(
        "switchyard: serving backend \"{active}\" on {addr}, admin API on http://{}",
        resolved.admin_addr
    );
    let databases = resolved.database_names();
    let database = databases
        .iter()
        .find(|d| *d != "*")
        .map_or("app", String::as_str);
    println!(
        "  connect with: psql \"postgres://{}@{addr}/{database}\"",
        first_user(&resolved)
    );
    let state = app.state.clone();
    if let Some(p) = &config {
        let _ = state.config_path.set(p.clone());
    }
    let lifecycle = app.lifecycle();
    state.lifecycle.spawn(reload_on_sighup(state.clone()));
    let stop = lifecycle.clone();
    lifecycle.spawn(async move {
        tokio::select! {
            _ = shutdown_signal() => stop.shutdown(),
            _ = stop.stopped() => {}
        }
    });
    // Stops accepting at the signal, holds new transactions, lets those in flight finish
    // (bounded by proxy.shutdown_grace) and tells every client why it is closed.
    app.run(listener, Some(admin)).await;
    Ok(())
}

fn first_user(r: &Resolved) -> String {
    r.config
        .users
        .first()
        .map(|u| u.name.clone())
        .unwrap_or_else(|| "postgres".into())
}

/// SIGHUP re-reads the config (like `POST /reload`); a bad file is reported and ignored.
async fn reload_on_sighup(shared: std::sync::Arc<crate::state::ProxyState>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        loop {
            tokio::select! {
                got = hup.recv() => if got.is_none() { return },
                _ = shared.lifecycle.stopped() => return,
            }
            match crate::reload::reload(&shared) {
                Ok(r) => {
                    tracing::info!(added = ?r.added, changed = ?r.changed, removed = ?r.removed, "SIGHUP: config reloaded")
                }
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: config not reloaded; the old one stays")
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = shared;
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Where the route comes from, as check-config prints it; an error when the route file
/// cannot be read or its directory written.
fn describe_route(r: &Resolved) -> Result<String> {
    use crate::router::route_file::RouteFile;
    let Some(path) = &r.state_file else {
        return Ok(format!(
            "routing.active = {:?} (kept in memory only)",
            r.active
        ));
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let probe = dir.join(format!(".switchyard-check-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .with_context(|| {
            format!(
                "routing.state_file {}: its directory is not writable (set routing.state_file to a writable path)",
                path.display()
            )
        })?;
    Ok(match RouteFile::new(path).load()? {
        Some(s) if s.epoch > 0 && s.active != r.active => format!(
            "{:?} after {} switch(es), from {} — the config's routing.active = {:?} DISAGREES (a restart serves {:?})",
            s.active,
            s.epoch,
            path.display(),
            r.active,
            s.active
        ),
        Some(s) if s.epoch > 0 => format!(
            "{:?} after {} switch(es), from {}",
            s.active,
            s.epoch,
            path.display()
        ),
        _ => format!(
            "routing.active = {:?} (no switch yet; after one the route is kept in {})",
            r.active,
            path.display()
        ),
    })
}

/// Warns when the config file holds a written-out secret and others may read it.
fn warn_if_exposed(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    if let Some(w) = crate::config::secret_exposure(path, &text) {
        tracing::warn!("{w}");
        eprintln!("warning: {w}");
    }
}

async fn check_config(file: &std::path::Path) -> Result<()> {
    warn_if_exposed(file);
    let r = Config::load(file).with_context(|| format!("invalid config {}", file.display()))?;
    let metrics = Metrics::new(prometheus::Registry::new());
    // Checking creates nothing: the route file is read, not made.
    let mut unfiled = r.clone();
    unfiled.state_file = None;
    App::build(unfiled, metrics).context("config is valid but switchyard could not use it")?;
    let route = describe_route(&r)?;
    for (key, addr) in [
        ("proxy.listen", r.proxy_addr),
        ("admin.listen", r.admin_addr),
    ] {
        match std::net::TcpListener::bind(addr) {
            Ok(_) => {}
            // A running switchyard holds its own ports: checking an edited config while
            // it serves must work.
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => println!(
                "note: {key} {addr} is in use now (by a running switchyard, or by something else that would stop `serve`)"
            ),
            Err(e) => anyhow::bail!("{key}: cannot listen on {addr}: {e}"),
        }
    }
    let c = &r.config;
    println!("config {} is valid", file.display());
    println!(
        "  proxy:    listen {} (TLS {})",
        r.proxy_addr,
        if c.proxy.tls_cert.is_some() {
            "on"
        } else {
            "off"
        }
    );
    if c.users.is_empty() {
        println!("  users:    none: clients on loopback are trusted");
    } else {
        for u in &c.users {
            println!(
                "  user:     {} ({:?})",
                u.name,
                u.auth.unwrap_or(c.proxy.auth)
            );
        }
    }
    println!(
        "  admin:    listen {} (token {})",
        r.admin_addr,
        if c.admin.token.is_some() {
            "set"
        } else {
            "not set"
        }
    );
    println!("  route:    {route}");
    let active_now = r
        .state_file
        .as_ref()
        .and_then(|p| {
            crate::router::route_file::RouteFile::new(p)
                .load()
                .ok()
                .flatten()
        })
        .filter(|s| s.epoch > 0)
        .map(|s| s.active)
        .unwrap_or_else(|| r.active.clone());
    for (name, b) in &c.backends {
        let url = BackendUrl::parse(&b.url)
            .map(|u| u.redacted())
            .unwrap_or_default();
        let active = if *name == active_now {
            "  <- active"
        } else {
            ""
        };
        if b.url.starts_with("sqlite://") {
            println!("  backend:  {name} = {url}{active}");
        } else {
            println!(
                "  backend:  {name} = {url} (pool {}, pooler {}){active}",
                b.pool_size,
                b.pooler.as_str()
            );
        }
    }
    Ok(())
}
