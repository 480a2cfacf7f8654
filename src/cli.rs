//! The command line: `serve`, `check-config`, `init`, `sync`, `verify` and `ctl`.
//! Errors are reported here with `anyhow` context; the layers below use typed errors.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::app::App;
use crate::backend::url::BackendUrl;
use crate::config::{Config, Resolved};
use crate::metrics::Metrics;
use crate::sync::choices::ColumnChoices;

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
    /// Copy schema and data once from a source (sqlite://PATH or postgres://…) into
    /// PostgreSQL, standalone (no proxy involved). Inside a running proxy, live sync is
    /// `switchyard ctl sync A B`; `--finish` here removes what live sync installed.
    Sync {
        /// The source: sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB.
        #[arg(long)]
        from: String,
        /// The target, a PostgreSQL URL.
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
        /// Leave out this source column (TABLE.COLUMN, repeatable): for a column the
        /// existing target table does not have.
        #[arg(long, value_name = "TABLE.COLUMN")]
        exclude_column: Vec<String>,
        /// The PostgreSQL type of a column switchyard makes (TABLE.COLUMN=TYPE,
        /// repeatable), e.g. events.at=timestamptz.
        #[arg(long = "type", value_name = "TABLE.COLUMN=TYPE")]
        types: Vec<String>,
        /// Take column choices from this config's [sync] section (exclude_columns,
        /// [sync.types]) as `ctl sync` does; the flags above add to them.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        /// Keep going after the copy: capture changes on --from and apply them to --to
        /// until Ctrl-C (inside a proxy, use `switchyard ctl sync A B` instead).
        #[arg(long, conflicts_with_all = ["dry_run", "schema_only", "finish"])]
        live: bool,
        /// The end of a move, after `ctl sync-stop`: remove live sync's triggers and
        /// changelogs from both sides (says what it leaves and how to remove that).
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
        Command::CheckConfig { file } => crate::check_config::run(&file).await,
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
            exclude_column,
            types,
            config,
            live,
            finish,
        } => {
            if finish {
                return finish_live(&from, &to).await;
            }
            let flags = ColumnChoices {
                exclude_columns: exclude_column,
                types,
            };
            let choices = match &config {
                Some(path) => crate::config::ctl::sync_of(path)?.choices().merged(&flags),
                None => flags,
            };
            choices.check().map_err(|e| anyhow::anyhow!(e))?;
            if live {
                return run_live(from, to, force, parallel, choices).await;
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
                choices,
                defer_foreign_keys: false,
                tally: None,
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
            let report = match crate::sync::verify::run_settled(&from, &to, &tables).await {
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
            // Only [admin] is read: ctl needs no backend password.
            let section = config
                .as_ref()
                .map(|p| {
                    crate::config::ctl::admin_of(p)
                        .with_context(|| format!("invalid config {}", p.display()))
                })
                .transpose()?;
            let base = admin
                .or_else(|| section.as_ref().map(|a| format!("http://{}", a.listen)))
                .unwrap_or_else(|| "http://127.0.0.1:9640".into());
            let token = token.or_else(|| section.and_then(|a| a.token));
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
    let done = crate::sync::live::finish(from, to).await?;
    println!(
        "live sync finished: capture triggers and changelogs removed from both sides ({} tables)",
        done.tables
    );
    for (what, left) in done.left {
        println!("  left on the {what} database: {left}");
    }
    Ok(())
}

/// `sync --live`: the same live sync as inside a proxy, printing its lag until Ctrl-C.
async fn run_live(
    from: String,
    to: String,
    force: bool,
    parallel: usize,
    choices: ColumnChoices,
) -> Result<()> {
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
        choices,
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
                print!("{}", crate::ctl::render::render_live(&serde_json::to_value(&s)?));
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
            crate::check_config::warn_if_exposed(p);
            Config::load(p).with_context(|| format!("invalid config {}", p.display()))
        }
        None => {
            let path = "./switchyard.db";
            if !std::path::Path::new(path).exists() {
                let here = std::env::current_dir().unwrap_or_default();
                println!(
                    "no config given: {path} (in {}) does not exist; it is made now, an empty SQLite database (WAL mode: keep its -wal and -shm files with it)",
                    here.display()
                );
            }
            Ok(Config::embedded_default(path))
        }
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
    // postgresql://, which every driver and ORM takes (SQLAlchemy refuses postgres://).
    println!(
        "  connect with: psql \"postgresql://{}@{addr}/{database}\"",
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
