//! A whole `switchyard sync` run: read the source schema, decide per table (create, reuse an
//! empty table, resume, skip, refuse), copy with bounded parallelism, then add indexes,
//! constraints and foreign keys, advance sequences, and print a summary.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use tokio_postgres::{Client, SimpleQueryMessage};

use super::checkpoint::{self, Checkpoint};
use super::{adopt, foreign_keys, sequences};
use crate::backend::url::BackendUrl;
use crate::sync::choices::ColumnChoices;
use crate::sync::copy::backfill::{self, CopyOptions, TableOutcome};
use crate::sync::progress::Progress;
use crate::sync::schema::{self, Table, lit, q};
use crate::sync::schema::{postgres as pg_schema, sqlite as sqlite_schema};
use crate::sync::source::sqlite as sqlite_read;
use crate::sync::{SyncError, SyncOptions, pg_error, pgconn};

/// The result of a run.
#[derive(Debug, Default, serde::Serialize)]
pub struct Summary {
    pub tables: Vec<TableOutcome>,
    /// Foreign keys left NOT VALID for the caller to validate (`defer_foreign_keys`).
    #[serde(skip)]
    pub unvalidated: Vec<foreign_keys::Pending>,
    pub seconds: f64,
    pub rejected: usize,
    pub warnings: Vec<String>,
}

/// What to do with one table.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Create,
    ReuseEmpty,
    Resume(Checkpoint),
    Done,
}

/// A source, opened.
pub struct Opened {
    pub source: BackendUrl,
    pub id: String,
    pub tables: Vec<Table>,
}

/// Opens the source and reads its schema.
pub async fn open_source(url: &str) -> Result<Opened, SyncError> {
    match BackendUrl::parse(url).map_err(|e| SyncError::Usage(format!("--from: {e}")))? {
        BackendUrl::Sqlite(path) => {
            if !path.exists() {
                return Err(SyncError::Usage(format!(
                    "--from: {} does not exist",
                    path.display()
                )));
            }
            let p = path.clone();
            let tables = tokio::task::spawn_blocking(move || {
                let c = sqlite_read::open(&p)?;
                let mut tables = sqlite_schema::read_schema(&c)?;
                schema::choices::refine_timestamps(&c, &mut tables)?;
                schema::choices::refine_json(&c, &mut tables)?;
                Ok::<_, SyncError>(tables)
            })
            .await
            .map_err(|e| SyncError::Source(e.to_string()))??;
            let id = format!(
                "sqlite://{}",
                std::fs::canonicalize(&path)
                    .unwrap_or(path.clone())
                    .display()
            );
            Ok(Opened {
                source: BackendUrl::Sqlite(path),
                id,
                tables,
            })
        }
        BackendUrl::Postgres(t) => {
            let c = pgconn::connect(&t).await?;
            let tables = pg_schema::read_schema(&c).await?;
            Ok(Opened {
                id: t.to_string(),
                source: BackendUrl::Postgres(t),
                tables,
            })
        }
    }
}

/// Row count of a source table.
pub async fn source_count(source: &BackendUrl, table: &str) -> Result<i64, SyncError> {
    match source {
        BackendUrl::Sqlite(path) => {
            let (p, t) = (path.clone(), table.to_string());
            tokio::task::spawn_blocking(move || {
                sqlite_read::open(&p).and_then(|c| sqlite_read::count(&c, &t))
            })
            .await
            .map_err(|e| SyncError::Source(e.to_string()))?
        }
        BackendUrl::Postgres(pt) => {
            let c = pgconn::connect(pt).await?;
            scalar(&c, &format!("SELECT count(*) FROM public.{}", q(table)))
                .await
                .map(|s| s.parse().unwrap_or(0))
                .map_err(|e| SyncError::Source(e.to_string()))
        }
    }
}

async fn scalar(c: &Client, sql: &str) -> Result<String, SyncError> {
    for m in c
        .simple_query(sql)
        .await
        .map_err(|e| SyncError::Target(pg_error(&e)))?
    {
        if let SimpleQueryMessage::Row(r) = m {
            return Ok(r.get(0).unwrap_or_default().to_string());
        }
    }
    Ok(String::new())
}

/// Target columns of an existing table: (name, type).
async fn target_columns(
    c: &Client,
    table: &str,
) -> Result<Option<Vec<(String, String)>>, SyncError> {
    let sql = format!(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
         WHERE a.attrelid = to_regclass({}) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        lit(&format!("public.{}", q(table)))
    );
    let exists = scalar(
        c,
        &format!(
            "SELECT to_regclass({}) IS NOT NULL",
            lit(&format!("public.{}", q(table)))
        ),
    )
    .await?
        == "t";
    if !exists {
        return Ok(None);
    }
    let msgs = c
        .simple_query(&sql)
        .await
        .map_err(|e| SyncError::Target(pg_error(&e)))?;
    Ok(Some(
        msgs.into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some((r.get(0)?.to_string(), r.get(1)?.to_string())),
                _ => None,
            })
            .collect(),
    ))
}

/// Decides what to do with `t` on the target, refusing what would lose or duplicate data.
async fn decide(
    c: &Client,
    opts: &SyncOptions,
    source_id: &str,
    t: &Table,
) -> Result<Action, SyncError> {
    let progress = if opts.dry_run && !checkpoint_table_exists(c).await? {
        None
    } else {
        checkpoint::read(c, source_id, &t.name).await?
    };
    if target_columns(c, &t.name).await?.is_none() {
        return Ok(Action::Create);
    }
    // (Its columns are matched to the source's by `adopt`.)
    if opts.force {
        return Ok(Action::ReuseEmpty);
    }
    if let Some(p) = progress {
        if p.done {
            return Ok(Action::Done);
        }
        if !opts.resume {
            return Err(SyncError::Refused(format!(
                "a previous sync of {} stopped after {} rows; run again with --resume to continue or --force to start over",
                t.name, p.rows
            )));
        }
        return Ok(Action::Resume(p));
    }
    let has_rows = scalar(
        c,
        &format!("SELECT EXISTS (SELECT 1 FROM public.{})", q(&t.name)),
    )
    .await?
        == "t";
    if has_rows {
        return Err(SyncError::Refused(format!(
            "target table {} already has rows; pass --force to empty it and copy again",
            t.name
        )));
    }
    Ok(Action::ReuseEmpty)
}

async fn checkpoint_table_exists(c: &Client) -> Result<bool, SyncError> {
    Ok(scalar(
        c,
        "SELECT to_regclass('switchyard.sync_progress') IS NOT NULL",
    )
    .await?
        == "t")
}

fn tgt(e: tokio_postgres::Error) -> SyncError {
    SyncError::Target(pg_error(&e))
}

/// Applies the user's column choices to the source's tables: stated types, then columns
/// left out. A choice naming no source column is an error that names it.
pub fn apply_choices(tables: &mut [Table], choices: &ColumnChoices) -> Result<(), SyncError> {
    let bad = schema::choices::apply_types(tables, &choices.types);
    if !bad.is_empty() {
        return Err(SyncError::Usage(format!(
            "--type: expected TABLE.COLUMN=TYPE naming a source column: {}",
            bad.join(", ")
        )));
    }
    let unknown = adopt::exclude(tables, &choices.exclude_columns);
    if !unknown.is_empty() {
        return Err(SyncError::Usage(format!(
            "--exclude-column: no such source column (TABLE.COLUMN, not a key column): {}",
            unknown.join(", ")
        )));
    }
    Ok(())
}

/// Runs a sync. Prints the plan (and DDL) for a dry run.
pub async fn run(mut opts: SyncOptions) -> Result<Summary, SyncError> {
    let started = Instant::now();
    let target = pgconn::pg_target(&opts.to, "--to")?;
    let mut opened = open_source(&opts.from).await?;
    if !opts.tables.is_empty() {
        if let Some(missing) = opts
            .tables
            .iter()
            .find(|n| !opened.tables.iter().any(|t| &t.name == *n))
        {
            return Err(SyncError::Usage(format!(
                "--tables: the source has no table {missing:?}"
            )));
        }
        opened.tables.retain(|t| opts.tables.contains(&t.name));
    }
    apply_choices(&mut opened.tables, &opts.choices)?;
    schema::fk_order(&mut opened.tables);
    let mut client = pgconn::connect(&target).await?;
    let warnings: Vec<String> = opened
        .tables
        .iter()
        .flat_map(|t| t.warnings.clone())
        .collect();
    for w in &warnings {
        tracing::warn!("{w}");
    }
    if !opts.dry_run {
        checkpoint::setup(&client).await?;
        if opts.force {
            checkpoint::reset(&client, &opened.id).await?;
        }
    }
    let mut actions = Vec::new();
    for t in &opened.tables {
        actions.push(decide(&client, &opts, &opened.id, t).await?);
    }
    let adopted = adopt::adopt_existing(&client, &mut opened, &actions).await?;
    if adopted.ordered && opts.parallel > 1 {
        tracing::info!(
            "the target's own foreign keys hold during the copy: tables are copied one at a time, parents first"
        );
        opts.parallel = 1;
    }
    if opts.dry_run {
        super::dry_run::print_plan(&opened, &actions, &adopted.problems).await?;
        return Ok(Summary {
            warnings,
            ..Default::default()
        });
    }
    if !adopted.problems.is_empty() {
        return Err(SyncError::Refused(format!(
            "the target's existing tables cannot take the source's rows as they are (nothing was written):\n  {}",
            adopted.problems.join("\n  ")
        )));
    }
    prepare_tables(&client, &opened.tables, &actions, opts.force).await?;
    if opts.schema_only {
        for t in &opened.tables {
            create_indexes(&client, t).await?;
        }
        let pending = foreign_keys::add(&client, &opened.tables).await?;
        held(foreign_keys::validate(&target, pending, opts.parallel).await?)?;
        return Ok(Summary {
            warnings,
            seconds: started.elapsed().as_secs_f64(),
            ..Default::default()
        });
    }
    let rejects = Arc::new(Mutex::new(Vec::new()));
    let outcomes = copy_all(&target, &opened, &actions, &opts, rejects.clone()).await?;
    // Tables copied in this run got their indexes and statistics after their copy.
    for (t, a) in opened.tables.iter().zip(&actions) {
        if *a == Action::Done {
            create_indexes(&client, t).await?;
            analyze(&client, t).await?;
        }
    }
    let pending = foreign_keys::add(&client, &opened.tables).await?;
    // Before the keys are validated, so the target takes the app's INSERTs whatever
    // the validation finds.
    sequences::advance(&client, &opened.tables).await?;
    if opts.defer_foreign_keys {
        return Ok(Summary {
            tables: outcomes,
            unvalidated: pending,
            seconds: started.elapsed().as_secs_f64(),
            rejected: write_rejects(&opts, &rejects)?,
            warnings,
        });
    }
    let invalid = foreign_keys::validate(&target, pending, opts.parallel).await?;
    // Rejected rows are written even when a key does not hold (a rejected parent row
    // leaves its children orphaned).
    let rejected = write_rejects(&opts, &rejects)?;
    held(invalid)?;
    let _ = &mut client;
    Ok(Summary {
        tables: outcomes,
        seconds: started.elapsed().as_secs_f64(),
        rejected,
        warnings,
        ..Default::default()
    })
}

async fn prepare_tables(
    c: &Client,
    tables: &[Table],
    actions: &[Action],
    force: bool,
) -> Result<(), SyncError> {
    for (t, a) in tables.iter().zip(actions) {
        match a {
            Action::Create => c
                .batch_execute(&schema::create_table(t))
                .await
                .map_err(|e| SyncError::Target(format!("creating {}: {}", t.name, pg_error(&e))))?,
            Action::ReuseEmpty if force => c
                .batch_execute(&format!("TRUNCATE {} CASCADE", q(&t.name)))
                .await
                .map_err(tgt)?,
            _ => {}
        }
    }
    Ok(())
}

async fn copy_all(
    target: &crate::backend::url::PgTarget,
    opened: &Opened,
    actions: &[Action],
    opts: &SyncOptions,
    rejects: Arc<Mutex<Vec<sqlite_read::Reject>>>,
) -> Result<Vec<TableOutcome>, SyncError> {
    let progress = Arc::new(Progress::new());
    // Held until every table is read: the copy connections import its snapshot.
    let exported = export_snapshot(&opened.source).await?;
    let snapshot = exported.as_ref().map(|(_, id)| id.clone());
    let totals = count_all(opened, actions, opts).await?;
    let jobs = opened
        .tables
        .iter()
        .zip(actions.iter())
        .filter(|(_, a)| **a != Action::Done)
        .zip(totals)
        .map(|((t, a), total)| {
            let copy_opts = CopyOptions {
                batch_rows: opts.batch_rows,
                snapshot: snapshot.clone(),
                skip_bad_rows: opts.skip_bad_rows.is_some(),
                source_id: opened.id.clone(),
                rejects: rejects.clone(),
            };
            let start = match a {
                Action::Resume(p) => Some(p.clone()),
                _ => None,
            };
            let (progress, source) = (progress.clone(), opened.source.clone());
            let tally = opts.tally.clone();
            async move {
                let mut tp = progress.table("copy", &t.name, total);
                tp.count_into(tally);
                let mut client = pgconn::connect(target).await?;
                let outcome =
                    backfill::copy_table(&mut client, &source, t, start, &copy_opts, &mut tp)
                        .await?;
                // Indexes and statistics now, while the other tables still copy, so the
                // end of the run holds only the foreign keys.
                let built = Instant::now();
                create_indexes(&client, t).await?;
                analyze(&client, t).await?;
                tracing::info!(
                    table = %t.name,
                    seconds = built.elapsed().as_secs_f64(),
                    "indexes built and statistics gathered"
                );
                Ok(outcome)
            }
        })
        // Collected so the stream's type holds no closure lifetimes (the run is spawned).
        .collect::<Vec<_>>();
    let results: Vec<Result<TableOutcome, SyncError>> = futures::stream::iter(jobs)
        .buffered(opts.parallel.max(1))
        .collect()
        .await;
    if let Some((c, _)) = exported {
        let _ = c.batch_execute("COMMIT").await;
    }
    results.into_iter().collect()
}

/// The source's row count of each table still to copy (in plan order), counted before
/// any copying so that the totals (and the estimate of time left) hold from the start.
async fn count_all(
    opened: &Opened,
    actions: &[Action],
    opts: &SyncOptions,
) -> Result<Vec<u64>, SyncError> {
    let todo: Vec<&Table> = opened
        .tables
        .iter()
        .zip(actions)
        .filter(|(_, a)| **a != Action::Done)
        .map(|(t, _)| t)
        .collect();
    // Owned futures, collected: the stream's type then holds no closure lifetimes (the
    // run is spawned).
    let counts: Vec<_> = todo
        .iter()
        .map(|t| {
            let (source, name) = (opened.source.clone(), t.name.clone());
            async move { source_count(&source, &name).await.map(|n| n.max(0) as u64) }
        })
        .collect();
    let counts: Vec<u64> = futures::stream::iter(counts)
        .buffered(opts.parallel.max(1))
        .try_collect()
        .await?;
    if let Some(tally) = &opts.tally {
        tally
            .tables_total
            .store(opened.tables.len() as u64, Ordering::Relaxed);
        let done = (opened.tables.len() - todo.len()) as u64;
        tally.tables_done.store(done, Ordering::Relaxed);
        tally
            .rows_total
            .store(counts.iter().sum(), Ordering::Relaxed);
    }
    Ok(counts)
}

/// For a PostgreSQL source: a read-only REPEATABLE READ transaction whose snapshot every
/// copy connection imports, so all tables are copied as of one moment (a child row never
/// refers to a parent the copy of the parent table did not see). The connection must stay
/// open, in its transaction, until the copy is done.
async fn export_snapshot(source: &BackendUrl) -> Result<Option<(Client, String)>, SyncError> {
    let BackendUrl::Postgres(pt) = source else {
        return Ok(None);
    };
    let c = pgconn::connect(pt).await?;
    let sql = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT pg_export_snapshot()";
    match c.simple_query(sql).await {
        Ok(msgs) => {
            let id = msgs.into_iter().find_map(|m| match m {
                SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            });
            tracing::debug!(snapshot = ?id, "copying every table in one exported snapshot");
            Ok(id.map(|id| (c, id)))
        }
        Err(e) => {
            tracing::warn!(error = %pg_error(&e), "the source cannot export a snapshot; each table is copied in a snapshot of its own");
            Ok(None)
        }
    }
}

/// An error listing the foreign keys that do not hold, if any.
fn held(failed: Vec<String>) -> Result<(), SyncError> {
    if failed.is_empty() {
        Ok(())
    } else {
        Err(SyncError::Target(failed.join("\n")))
    }
}

/// A table's indexes and unique constraints, skipping those that already exist.
async fn create_indexes(c: &Client, t: &Table) -> Result<(), SyncError> {
    for sql in schema::create_indexes(t) {
        let sql = if sql.contains(" IF NOT EXISTS ") {
            sql
        } else {
            sql.replacen("INDEX ", "INDEX IF NOT EXISTS ", 1)
        };
        c.batch_execute(&sql)
            .await
            .map_err(|e| SyncError::Target(format!("index on {}: {}", t.name, pg_error(&e))))?;
    }
    Ok(())
}

/// Planner statistics for a copied table, so the app's first queries plan well.
async fn analyze(c: &Client, t: &Table) -> Result<(), SyncError> {
    c.batch_execute(&format!("ANALYZE public.{}", q(&t.name)))
        .await
        .map_err(|e| SyncError::Target(format!("analyze {}: {}", t.name, pg_error(&e))))
}

fn write_rejects(
    opts: &SyncOptions,
    rejects: &Arc<Mutex<Vec<sqlite_read::Reject>>>,
) -> Result<usize, SyncError> {
    let list = rejects.lock().map(|r| r.clone()).unwrap_or_default();
    if let Some(path) = &opts.skip_bad_rows {
        let mut text = String::new();
        for r in &list {
            text.push_str(&serde_json::to_string(r).unwrap_or_default());
            text.push('\n');
        }
        std::fs::write(path, text)?;
    }
    Ok(list.len())
}

/// The summary table printed at the end of a sync.
pub fn render_summary(s: &Summary) -> String {
    let mut out = format!(
        "{:<32} {:>12} {:>9} {:>12}\n",
        "table", "rows", "seconds", "rows/s"
    );
    let mut total = 0i64;
    for t in &s.tables {
        total += t.rows;
        out.push_str(&format!(
            "{:<32} {:>12} {:>9.2} {:>12.0}\n",
            t.table,
            t.rows,
            t.seconds,
            t.rows as f64 / t.seconds.max(1e-6)
        ));
    }
    out.push_str(&format!(
        "{:<32} {:>12} {:>9.2} {:>12.0}\n",
        "total",
        total,
        s.seconds,
        total as f64 / s.seconds.max(1e-6)
    ));
    if s.rejected > 0 {
        out.push_str(&format!(
            "{} row(s) could not be converted and were written to the reject file\n",
            s.rejected
        ));
    }
    out
}
