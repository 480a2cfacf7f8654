//! `switchyard verify`: compares source and target table by table. Both sides are read in
//! primary-key order (PostgreSQL text keys under the "C" collation, which is SQLite's byte
//! order), normalised (see [`super::normalize`]) and merged, so every differing row is named
//! with its key, column and both values; rows are grouped in ranges of 10,000 keys to say
//! where the differences are. Tables without a primary key are compared as multisets.

use std::cmp::Ordering;
use std::time::Instant;

use futures::StreamExt;
use rusqlite::types::Value;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::backfill::Source;
use super::normalize::{self, NULL};
use super::plan::{self, Opened};
use super::schema::{Table, column_list, q};
use super::{SyncError, pg_error, pgconn, sqlite_read};

const CHUNK: usize = 10_000;
/// Differences listed per table (all are counted).
const MAX_LISTED: usize = 100;

/// One normalised row: key values, all values.
type Row = (Vec<String>, Vec<String>);

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Difference {
    pub key: String,
    pub column: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    pub kind: &'static str,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct TableReport {
    pub table: String,
    pub source_rows: u64,
    pub target_rows: u64,
    pub ranges: u64,
    pub ranges_with_differences: u64,
    pub differences: u64,
    pub listed: Vec<Difference>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub identical: bool,
    pub tables: Vec<TableReport>,
    pub seconds: f64,
}

fn shown(v: &str) -> Option<String> {
    (v != NULL).then(|| v.to_string())
}

/// Compares keys: integers numerically, everything else byte-wise.
fn key_cmp(a: &[String], b: &[String], numeric: &[bool]) -> Ordering {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let o = if numeric.get(i) == Some(&true) {
            match (x.parse::<i128>(), y.parse::<i128>()) {
                (Ok(p), Ok(q)) => p.cmp(&q),
                _ => x.as_bytes().cmp(y.as_bytes()),
            }
        } else {
            x.as_bytes().cmp(y.as_bytes())
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn is_integer(pg_type: &str) -> bool {
    matches!(
        pg_type.split('(').next().unwrap_or("").trim(),
        "bigint" | "integer" | "smallint"
    )
}

/// Streams a SQLite table's normalised rows in key order.
fn sqlite_rows(path: std::path::PathBuf, t: Table, tx: mpsc::Sender<Result<Vec<Row>, SyncError>>) {
    let run = || -> Result<(), SyncError> {
        let conn = sqlite_read::open(&path)?;
        let cols = column_list(&t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
        let order = if t.pk.is_empty() {
            String::new()
        } else {
            format!(" ORDER BY {}", column_list(&t.pk))
        };
        let mut stmt = conn
            .prepare(&format!("SELECT {cols} FROM {}{order}", q(&t.name)))
            .map_err(|e| SyncError::Source(e.to_string()))?;
        let pk = t.pk_positions();
        let mut rows = stmt
            .query([])
            .map_err(|e| SyncError::Source(e.to_string()))?;
        let mut chunk = Vec::with_capacity(CHUNK);
        while let Some(r) = rows.next().map_err(|e| SyncError::Source(e.to_string()))? {
            let vals: Vec<String> = t
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    r.get::<_, Value>(i)
                        .map(|v| normalize::from_sqlite(&v, &c.pg_type))
                })
                .collect::<Result<_, _>>()
                .map_err(|e| SyncError::Source(e.to_string()))?;
            chunk.push((pk.iter().map(|&i| vals[i].clone()).collect(), vals));
            if chunk.len() == CHUNK && tx.blocking_send(Ok(std::mem::take(&mut chunk))).is_err() {
                return Ok(());
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(Ok(chunk));
        }
        Ok(())
    };
    if let Err(e) = run() {
        let _ = tx.blocking_send(Err(e));
    }
}

/// Streams a PostgreSQL table's normalised rows in key order (COPY text format).
async fn pg_rows(c: Client, t: Table, tx: mpsc::Sender<Result<Vec<Row>, SyncError>>, target: bool) {
    let wrap = |e: tokio_postgres::Error| {
        if target {
            SyncError::Target(pg_error(&e))
        } else {
            SyncError::Source(pg_error(&e))
        }
    };
    let run = async {
        let cols = column_list(&t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
        let order: Vec<String> =
            t.pk.iter()
                .map(|k| {
                    if t.column(k).is_some_and(|c| is_integer(&c.pg_type)) {
                        q(k)
                    } else {
                        format!("{}::text COLLATE \"C\"", q(k))
                    }
                })
                .collect();
        let order = if order.is_empty() {
            String::new()
        } else {
            format!(" ORDER BY {}", order.join(", "))
        };
        let sql = format!(
            "COPY (SELECT {cols} FROM public.{}{order}) TO STDOUT",
            q(&t.name)
        );
        let stream = c.copy_out(&sql).await.map_err(wrap)?;
        futures::pin_mut!(stream);
        let pk = t.pk_positions();
        let mut pending = Vec::new();
        let mut chunk = Vec::with_capacity(CHUNK);
        while let Some(data) = stream.next().await {
            pending.extend_from_slice(&data.map_err(wrap)?);
            let mut start = 0;
            while let Some(nl) = memchr::memchr(b'\n', &pending[start..]) {
                let line = String::from_utf8_lossy(&pending[start..start + nl]).into_owned();
                start += nl + 1;
                let fields = normalize::copy_text_fields(&line);
                let vals: Vec<String> = t
                    .columns
                    .iter()
                    .zip(fields.iter())
                    .map(|(c, f)| normalize::from_pg_text(f.as_deref(), &c.pg_type))
                    .collect();
                chunk.push((pk.iter().map(|&i| vals[i].clone()).collect(), vals));
                if chunk.len() == CHUNK && tx.send(Ok(std::mem::take(&mut chunk))).await.is_err() {
                    return Ok(());
                }
            }
            pending.drain(..start);
        }
        if !chunk.is_empty() {
            let _ = tx.send(Ok(chunk)).await;
        }
        Ok::<(), SyncError>(())
    };
    if let Err(e) = run.await {
        let _ = tx.send(Err(e)).await;
    }
}

/// A row source that yields one row at a time from chunks.
struct Rows {
    rx: mpsc::Receiver<Result<Vec<Row>, SyncError>>,
    buf: std::vec::IntoIter<Row>,
    count: u64,
}

impl Rows {
    async fn next(&mut self) -> Result<Option<Row>, SyncError> {
        loop {
            if let Some(r) = self.buf.next() {
                self.count += 1;
                return Ok(Some(r));
            }
            match self.rx.recv().await {
                Some(chunk) => self.buf = chunk?.into_iter(),
                None => return Ok(None),
            }
        }
    }
}

async fn open_rows(
    source: &Source,
    t: &Table,
    target: Option<&crate::backend::url::PgTarget>,
) -> Result<Rows, SyncError> {
    let (tx, rx) = mpsc::channel(2);
    match (target, source) {
        (Some(pt), _) | (None, Source::Postgres(pt)) => {
            let c = pgconn::connect(pt).await?;
            c.batch_execute("SET TimeZone = 'UTC'")
                .await
                .map_err(|e| SyncError::Target(pg_error(&e)))?;
            tokio::spawn(pg_rows(c, t.clone(), tx, target.is_some()));
        }
        (None, Source::Sqlite(path)) => {
            let (p, tt) = (path.clone(), t.clone());
            tokio::task::spawn_blocking(move || sqlite_rows(p, tt, tx));
        }
    }
    Ok(Rows {
        rx,
        buf: Vec::new().into_iter(),
        count: 0,
    })
}

fn record(rep: &mut TableReport, d: Difference, range: u64, last_bad_range: &mut Option<u64>) {
    rep.differences += 1;
    if *last_bad_range != Some(range) {
        rep.ranges_with_differences += 1;
        *last_bad_range = Some(range);
    }
    if rep.listed.len() < MAX_LISTED {
        rep.listed.push(d);
    }
}

/// Compares one table with a primary key by merging both sides in key order.
async fn compare_keyed(t: &Table, mut src: Rows, mut dst: Rows) -> Result<TableReport, SyncError> {
    let numeric: Vec<bool> =
        t.pk.iter()
            .map(|k| t.column(k).is_some_and(|c| is_integer(&c.pg_type)))
            .collect();
    let mut rep = TableReport {
        table: t.name.clone(),
        ..Default::default()
    };
    let (mut a, mut b) = (src.next().await?, dst.next().await?);
    let mut last_bad = None;
    let mut seen = 0u64;
    loop {
        let range = seen / CHUNK as u64;
        seen += 1;
        match (a.take(), b.take()) {
            (None, None) => break,
            (Some(x), None) => {
                record(
                    &mut rep,
                    Difference {
                        key: format!("{:?}", x.0),
                        column: None,
                        source: None,
                        target: None,
                        kind: "missing in target",
                    },
                    range,
                    &mut last_bad,
                );
                a = src.next().await?;
            }
            (None, Some(y)) => {
                record(
                    &mut rep,
                    Difference {
                        key: format!("{:?}", y.0),
                        column: None,
                        source: None,
                        target: None,
                        kind: "only in target",
                    },
                    range,
                    &mut last_bad,
                );
                b = dst.next().await?;
            }
            (Some(x), Some(y)) => match key_cmp(&x.0, &y.0, &numeric) {
                Ordering::Less => {
                    record(
                        &mut rep,
                        Difference {
                            key: format!("{:?}", x.0),
                            column: None,
                            source: None,
                            target: None,
                            kind: "missing in target",
                        },
                        range,
                        &mut last_bad,
                    );
                    a = src.next().await?;
                    b = Some(y);
                }
                Ordering::Greater => {
                    record(
                        &mut rep,
                        Difference {
                            key: format!("{:?}", y.0),
                            column: None,
                            source: None,
                            target: None,
                            kind: "only in target",
                        },
                        range,
                        &mut last_bad,
                    );
                    a = Some(x);
                    b = dst.next().await?;
                }
                Ordering::Equal => {
                    for (i, c) in t.columns.iter().enumerate() {
                        if x.1[i] != y.1[i] {
                            let d = Difference {
                                key: format!("{:?}", x.0),
                                column: Some(c.name.clone()),
                                source: shown(&x.1[i]),
                                target: shown(&y.1[i]),
                                kind: "value differs",
                            };
                            record(&mut rep, d, range, &mut last_bad);
                        }
                    }
                    a = src.next().await?;
                    b = dst.next().await?;
                }
            },
        }
    }
    rep.source_rows = src.count;
    rep.target_rows = dst.count;
    rep.ranges = rep.source_rows.max(rep.target_rows).div_ceil(CHUNK as u64);
    Ok(rep)
}

/// Compares a table without a primary key as a multiset of rows.
async fn compare_unkeyed(
    t: &Table,
    mut src: Rows,
    mut dst: Rows,
) -> Result<TableReport, SyncError> {
    let mut xs = Vec::new();
    while let Some(r) = src.next().await? {
        xs.push(r.1);
    }
    let mut ys = Vec::new();
    while let Some(r) = dst.next().await? {
        ys.push(r.1);
    }
    let mut rep = TableReport {
        table: t.name.clone(),
        source_rows: xs.len() as u64,
        target_rows: ys.len() as u64,
        ranges: 1,
        ..Default::default()
    };
    xs.sort();
    ys.sort();
    let (mut i, mut j, mut last_bad) = (0, 0, None);
    while i < xs.len() || j < ys.len() {
        match (xs.get(i), ys.get(j)) {
            (Some(x), Some(y)) if x == y => {
                i += 1;
                j += 1;
            }
            (Some(x), y) if y.is_none() || x < y.unwrap_or(x) => {
                record(
                    &mut rep,
                    Difference {
                        key: format!("{x:?}"),
                        column: None,
                        source: None,
                        target: None,
                        kind: "row missing in target",
                    },
                    0,
                    &mut last_bad,
                );
                i += 1;
            }
            (_, Some(y)) => {
                record(
                    &mut rep,
                    Difference {
                        key: format!("{y:?}"),
                        column: None,
                        source: None,
                        target: None,
                        kind: "row only in target",
                    },
                    0,
                    &mut last_bad,
                );
                j += 1;
            }
            _ => break,
        }
    }
    Ok(rep)
}

/// Runs a verify over every table of the source (or `tables`).
pub async fn run(from: &str, to: &str, tables: &[String]) -> Result<Report, SyncError> {
    let started = Instant::now();
    let target = pgconn::pg_target(to, "--to")?;
    let Opened {
        source,
        tables: mut all,
        ..
    } = plan::open_source(from).await?;
    if !tables.is_empty() {
        all.retain(|t| tables.contains(&t.name));
    }
    let probe = pgconn::connect(&target).await?;
    let mut report = Report {
        identical: true,
        ..Default::default()
    };
    for t in &all {
        let exists = probe
            .simple_query(&format!(
                "SELECT to_regclass('public.{}')::text",
                q(&t.name).replace('\'', "''")
            ))
            .await
            .map_err(|e| SyncError::Target(pg_error(&e)))?
            .into_iter()
            .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0).is_some()));
        let rep = if !exists {
            TableReport {
                table: t.name.clone(),
                error: Some("missing in target".into()),
                differences: 1,
                ..Default::default()
            }
        } else {
            let src = open_rows(&source, t, None).await?;
            let dst = open_rows(&source, t, Some(&target)).await?;
            if t.pk.is_empty() {
                compare_unkeyed(t, src, dst).await?
            } else {
                compare_keyed(t, src, dst).await?
            }
        };
        report.identical &= rep.differences == 0;
        report.tables.push(rep);
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The human-readable report.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    for t in &r.tables {
        if let Some(e) = &t.error {
            out.push_str(&format!("table {}: {e}\n", t.table));
            continue;
        }
        let verdict = if t.differences == 0 {
            "identical".to_string()
        } else {
            format!(
                "{} difference(s) in {} of {} range(s)",
                t.differences, t.ranges_with_differences, t.ranges
            )
        };
        out.push_str(&format!(
            "table {}: {} rows in source, {} in target: {verdict}\n",
            t.table, t.source_rows, t.target_rows
        ));
        for d in &t.listed {
            match &d.column {
                Some(c) => out.push_str(&format!(
                    "  key {} column {c:?}: source {} target {}\n",
                    d.key,
                    d.source
                        .as_deref()
                        .map(|s| format!("{s:?}"))
                        .unwrap_or_else(|| "NULL".into()),
                    d.target
                        .as_deref()
                        .map(|s| format!("{s:?}"))
                        .unwrap_or_else(|| "NULL".into())
                )),
                None => out.push_str(&format!("  key {}: {}\n", d.key, d.kind)),
            }
        }
        if t.differences as usize > t.listed.len() {
            out.push_str(&format!(
                "  … and {} more\n",
                t.differences as usize - t.listed.len()
            ));
        }
    }
    let bad = r.tables.iter().filter(|t| t.differences > 0).count();
    out.push_str(&if r.identical {
        format!(
            "verify: {} table(s) identical ({:.2} s)\n",
            r.tables.len(),
            r.seconds
        )
    } else {
        format!(
            "verify: differences in {bad} of {} table(s) ({:.2} s)\n",
            r.tables.len(),
            r.seconds
        )
    });
    out
}
