//! `switchyard verify`: compares source and target table by table. Both sides are read in
//! primary-key order (integer key columns by value, the others by their bytes: the "C"
//! collation on PostgreSQL, BINARY on SQLite; a PostgreSQL table with one integer key is
//! read in storage order first, which is key order after a sync, and again in key order
//! if it is not), normalised (see [`crate::sync::verify::normalize`]) and merged, so every differing
//! row is named with its key, column and both values; rows are grouped in ranges of
//! 10,000 keys to say where the differences are. Tables without a primary key are
//! compared as multisets.

use std::cmp::Ordering;
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;

use crate::backend::url::BackendUrl;
use crate::backend::url::PgTarget;
use crate::sync::copy::plan::{self, Opened};
use crate::sync::progress::{Progress, TableProgress};
use crate::sync::schema::{Table, q};
use crate::sync::source::sqlite as sqlite_read;
use crate::sync::{SyncError, pg_error, pgconn};
use copy_binary::Wire;
use normalize::{NULL, Norm};
use rows::{Chunk, RowRef, Rows, is_integer, key_shape, open_rows};

mod copy_binary;
mod copy_stream;
pub mod normalize;
mod pg_rows;
mod raw;
mod rows;
mod settle;

pub use settle::run as run_settled;

pub(super) const CHUNK: usize = 10_000;
/// Tables compared at once (each runs a source reader, a target reader and a merge).
const PARALLEL_TABLES: usize = 2;
/// Differences listed per table (all are counted).
const MAX_LISTED: usize = 100;
/// Differing keys kept per table for a second look (more: the first look stands).
pub(super) const MAX_KEYS: usize = 100_000;
/// Separates columns in a normalised row.
pub(super) const SEP: char = '\u{1f}';

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Difference {
    pub key: String,
    pub column: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    pub kind: &'static str,
}

impl Difference {
    /// A whole row on one side only.
    fn row(key: String, kind: &'static str) -> Self {
        Difference {
            key,
            column: None,
            source: None,
            target: None,
            kind,
        }
    }
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
    /// The key of every differing row (up to [`MAX_KEYS`]), to compare again once live
    /// sync has applied what it captured.
    #[serde(skip)]
    pub keys: Vec<String>,
    /// Rows that differed at this look but not at the one before: changes live sync had
    /// captured and not yet applied (they make the row counts differ).
    pub in_flight: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    pub identical: bool,
    pub tables: Vec<TableReport>,
    pub seconds: f64,
    /// Why the differences could not be looked at again (see [`settle`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn shown(v: &str) -> Option<String> {
    (v != NULL).then(|| v.to_string())
}

fn key_text(k: &str) -> String {
    format!("{:?}", k.split(SEP).collect::<Vec<_>>())
}

struct Tally<'a> {
    rep: &'a mut TableReport,
    last_bad_range: Option<u64>,
}

impl Tally<'_> {
    fn add(&mut self, range: u64, key: String, d: Option<Difference>) {
        self.rep.differences += 1;
        if self.rep.keys.len() < MAX_KEYS {
            self.rep.keys.push(key);
        }
        if self.last_bad_range != Some(range) {
            self.rep.ranges_with_differences += 1;
            self.last_bad_range = Some(range);
        }
        if let Some(d) = d.filter(|_| self.rep.listed.len() < MAX_LISTED) {
            self.rep.listed.push(d);
        }
    }
}

/// Columns whose values differ once both are in full canonical form.
fn column_diffs(t: &Table, key: &str, a: &str, b: &str, out: &mut Vec<Difference>) {
    for ((c, x), y) in t.columns.iter().zip(a.split(SEP)).zip(b.split(SEP)) {
        if x == y {
            continue;
        }
        let norm = Norm::of(&c.pg_type);
        let (cx, cy) = (normalize::canonical(x, norm), normalize::canonical(y, norm));
        if cx != cy {
            out.push(Difference {
                key: key_text(key),
                column: Some(c.name.clone()),
                source: shown(&normalize::display(&cx, &c.pg_type)),
                target: shown(&normalize::display(&cy, &c.pg_type)),
                kind: "value differs",
            });
        }
    }
}

/// Orders two rows' keys the way both sides read them: integer key columns by value,
/// the others by their bytes (the "C" collation on PostgreSQL, BINARY on SQLite).
/// `int_parts` says which key columns are integers.
fn key_order(int_parts: &[bool], a: &Chunk, ra: &RowRef, b: &Chunk, rb: &RowRef) -> Ordering {
    if let (Some(x), Some(y)) = (ra.num, rb.num) {
        return x.cmp(&y);
    }
    let (ka, kb) = (a.key(ra), b.key(rb));
    let parts = ka.split(SEP).zip(kb.split(SEP));
    for ((x, y), &int) in parts.zip(int_parts) {
        let order = match (int, x.parse::<i64>(), y.parse::<i64>()) {
            (true, Ok(p), Ok(q)) => p.cmp(&q),
            _ => x.as_bytes().cmp(y.as_bytes()),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

/// Compares one table with a primary key by merging both sides in key order.
/// None when a side read unordered turns out not to be in key order.
async fn compare_keyed(
    t: &Table,
    mut src: Rows,
    mut dst: Rows,
    wires: &[Wire],
    progress: &mut TableProgress,
) -> Result<Option<TableReport>, SyncError> {
    let mut rep = TableReport {
        table: t.name.clone(),
        ..Default::default()
    };
    let mut tally = Tally {
        rep: &mut rep,
        last_bad_range: None,
    };
    let (mut more_a, mut more_b) = (
        advance_first(&mut src).await?,
        advance_first(&mut dst).await?,
    );
    let int_parts: Vec<bool> = t
        .pk_positions()
        .iter()
        .map(|&i| is_integer(&t.columns[i].pg_type))
        .collect();
    let mut seen = 0u64;
    while more_a || more_b {
        if src.disordered || dst.disordered {
            return Ok(None);
        }
        let range = seen / CHUNK as u64;
        seen += 1;
        if seen.is_multiple_of(CHUNK as u64) {
            progress.inc(CHUNK as u64);
        }
        let order = match (more_a, more_b) {
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => key_order(&int_parts, &src.chunk, &src.row(), &dst.chunk, &dst.row()),
        };
        match order {
            Ordering::Less => {
                let k = key_text(&src.chunk.key(&src.row()));
                tally.add(
                    range,
                    k.clone(),
                    Some(Difference::row(k, "missing in target")),
                );
                more_a = src.advance().await?;
            }
            Ordering::Greater => {
                let k = key_text(&dst.chunk.key(&dst.row()));
                tally.add(range, k.clone(), Some(Difference::row(k, "only in target")));
                more_b = dst.advance().await?;
            }
            Ordering::Equal => {
                let (ra, rb) = (src.row(), dst.row());
                if !src.chunk.same(&ra, &dst.chunk, &rb) {
                    let (a, b) = (
                        src.chunk.text_form(&ra, wires),
                        dst.chunk.text_form(&rb, wires),
                    );
                    let mut diffs = Vec::new();
                    column_diffs(t, &src.chunk.key(&ra), &a, &b, &mut diffs);
                    if !diffs.is_empty() {
                        tally.add(range, diffs[0].key.clone(), None);
                        for d in diffs {
                            if tally.rep.listed.len() < MAX_LISTED {
                                tally.rep.listed.push(d);
                            }
                        }
                    }
                }
                more_a = src.advance().await?;
                more_b = dst.advance().await?;
            }
        }
    }
    progress.inc(seen % CHUNK as u64);
    rep.source_rows = src.count;
    rep.target_rows = dst.count;
    if src.disordered || dst.disordered {
        return Ok(None);
    }
    rep.ranges = rep.source_rows.max(rep.target_rows).div_ceil(CHUNK as u64);
    Ok(Some(rep))
}

/// The target's name and type (as `format_type` names it) for each of `t`'s columns,
/// `text` for one it lacks (reading it then fails with the server's message); None if
/// the table does not exist.
async fn target_types(
    probe: &tokio_postgres::Client,
    t: &Table,
) -> Result<Option<Vec<(String, String)>>, SyncError> {
    let sql = format!(
        "SELECT to_regclass('public.{0}') IS NOT NULL, a.attname, format_type(a.atttypid, a.atttypmod) \
         FROM (SELECT 1) one LEFT JOIN pg_attribute a ON a.attrelid = to_regclass('public.{0}') \
         AND a.attnum > 0 AND NOT a.attisdropped",
        q(&t.name).replace('\'', "''")
    );
    let mut exists = false;
    let mut found = std::collections::HashMap::new();
    for m in probe
        .simple_query(&sql)
        .await
        .map_err(|e| SyncError::Target(pg_error(&e)))?
    {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            exists = r.get(0) == Some("t");
            if let (Some(name), Some(ty)) = (r.get(1), r.get(2)) {
                found.insert(name.to_string(), ty.to_string());
            }
        }
    }
    Ok(exists.then(|| {
        t.columns
            .iter()
            .map(|c| {
                found
                    .remove(&c.name)
                    .map(|ty| (c.name.clone(), ty))
                    .or_else(|| same_but_case(&mut found, &c.name))
                    .unwrap_or_else(|| (c.name.clone(), "text".into()))
            })
            .collect()
    }))
}

/// The one target column whose name differs from `name` only in case (a SQLite source's
/// names ignore case; an app's migrations may have folded them).
fn same_but_case(
    found: &mut std::collections::HashMap<String, String>,
    name: &str,
) -> Option<(String, String)> {
    let mut same = found.keys().filter(|k| k.eq_ignore_ascii_case(name));
    let key = same.next()?.clone();
    if same.next().is_some() {
        return None;
    }
    found.remove(&key).map(|ty| (key, ty))
}

/// `t` as the target has it: each column under the target's name and compared by the
/// target's type (a `timestamptz` holds the UTC instant of a naive SQLite text; `20.00`
/// and `20` are one `numeric(10,2)`).
fn as_target(t: &Table, target: &[(String, String)]) -> (Table, Vec<String>) {
    let mut t = t.clone();
    for (c, (name, ty)) in t.columns.iter_mut().zip(target) {
        for k in &mut t.pk {
            if *k == c.name {
                k.clone_from(name);
            }
        }
        c.name.clone_from(name);
        c.pg_type.clone_from(ty);
    }
    (t, target.iter().map(|(_, ty)| ty.clone()).collect())
}

/// Compares one table: a keyed table is first read in storage order where that is
/// allowed, and again in key order if storage order turns out not to be key order.
async fn compare_table(
    t: &Table,
    source: &BackendUrl,
    target: &PgTarget,
    types: &[String],
    progress: &Progress,
    expected: u64,
) -> Result<TableReport, SyncError> {
    let target = Some((target, types));
    let mut tp = progress.table("verify", &t.name, expected);
    if t.pk.is_empty() {
        let src = open_rows(source, t, None, false, None).await?;
        let dst = open_rows(source, t, target, false, None).await?;
        let rep = compare_unkeyed(t, src, dst).await?;
        tp.inc(rep.source_rows);
        tp.finish();
        return Ok(rep);
    }
    let wires: Vec<Wire> = t
        .columns
        .iter()
        .zip(types)
        .map(|(c, ty)| Wire::of(Norm::of(&c.pg_type), ty))
        .collect();
    // Raw tuples from SQLite (see `raw`) where every column has an encoding.
    let encs = match source {
        BackendUrl::Sqlite(_) if key_shape(t).1 => raw::encodings(types, &wires),
        _ => None,
    };
    let raw = encs.as_deref();
    let src = open_rows(source, t, None, true, raw).await?;
    let dst = open_rows(source, t, target, true, raw).await?;
    if let Some(rep) = compare_keyed(t, src, dst, &wires, &mut tp).await? {
        tp.finish();
        return Ok(rep);
    }
    tracing::debug!(table = %t.name, "rows are not stored in key order; reading them again in key order");
    let mut tp = progress.table("verify", &t.name, expected);
    let src = open_rows(source, t, None, false, raw).await?;
    let dst = open_rows(source, t, target, false, raw).await?;
    let rep = compare_keyed(t, src, dst, &wires, &mut tp)
        .await?
        .ok_or_else(|| SyncError::Target(format!("table {}: key order was lost", t.name)))?;
    tp.finish();
    Ok(rep)
}

/// Rows `t` is expected to hold, for progress only: SQLite's largest rowid (see
/// [`sqlite_read::estimate`]), or the target's planner estimate for a PostgreSQL source
/// (0 when never analysed).
async fn expected_rows(source: &BackendUrl, probe: &tokio_postgres::Client, t: &Table) -> u64 {
    if let BackendUrl::Sqlite(path) = source {
        let (p, name) = (path.clone(), t.name.clone());
        let guess = tokio::task::spawn_blocking(move || {
            sqlite_read::open(&p).and_then(|c| sqlite_read::estimate(&c, &name))
        });
        return guess.await.ok().and_then(Result::ok).unwrap_or(0).max(0) as u64;
    }
    let sql = format!(
        "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = to_regclass('public.{}')",
        q(&t.name).replace('\'', "''")
    );
    let rows = probe.simple_query(&sql).await.unwrap_or_default();
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0)?.parse().ok(),
            _ => None,
        })
        .unwrap_or(0)
}

/// Moves a fresh Rows onto its first row.
async fn advance_first(r: &mut Rows) -> Result<bool, SyncError> {
    r.at = usize::MAX;
    r.set_chunk(Chunk::default());
    match r.rx.recv().await {
        Some(c) => {
            r.set_chunk(c?);
            r.at = 0;
            if r.chunk.rows.is_empty() {
                return Ok(false);
            }
            r.count = 1;
            Ok(r.in_order())
        }
        None => Ok(false),
    }
}

/// Compares a table without a primary key as a multiset of rows.
async fn compare_unkeyed(
    t: &Table,
    mut src: Rows,
    mut dst: Rows,
) -> Result<TableReport, SyncError> {
    let mut xs: Vec<String> = Vec::new();
    let mut ys: Vec<String> = Vec::new();
    for (rows, out) in [(&mut src, &mut xs), (&mut dst, &mut ys)] {
        let mut more = advance_first(rows).await?;
        while more {
            out.push(rows.chunk.text(&rows.row()).to_string());
            more = rows.advance().await?;
        }
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
    let mut tally = Tally {
        rep: &mut rep,
        last_bad_range: None,
    };
    let (mut i, mut j) = (0, 0);
    while i < xs.len() || j < ys.len() {
        let order = match (xs.get(i), ys.get(j)) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Equal => {
                i += 1;
                j += 1;
            }
            Ordering::Less => {
                let k = key_text(&xs[i]);
                tally.add(
                    0,
                    k.clone(),
                    Some(Difference::row(k, "row missing in target")),
                );
                i += 1;
            }
            Ordering::Greater => {
                let k = key_text(&ys[j]);
                tally.add(0, k.clone(), Some(Difference::row(k, "row only in target")));
                j += 1;
            }
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
    let progress = Progress::new();
    let jobs = all.iter().enumerate().map(|(i, t)| {
        let (probe, source, target, progress) = (&probe, &source, &target, &progress);
        let job = async move {
            let Some(target_cols) = target_types(probe, t).await? else {
                return Ok(TableReport {
                    table: t.name.clone(),
                    error: Some("missing in target".into()),
                    differences: 1,
                    ..Default::default()
                });
            };
            let (t, types) = as_target(t, &target_cols);
            let expected = expected_rows(source, probe, &t).await;
            compare_table(&t, source, target, &types, progress, expected).await
        };
        async move { (i, job.await) }
    });
    // Unordered, so a large table does not hold back the start of the next ones.
    let mut results: Vec<(usize, Result<TableReport, SyncError>)> = futures::stream::iter(jobs)
        .buffer_unordered(PARALLEL_TABLES)
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    let mut report = Report {
        identical: true,
        ..Default::default()
    };
    for (_, rep) in results {
        let rep = rep?;
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
        let verdict = if t.differences == 0 && t.in_flight > 0 {
            format!(
                "identical ({} row(s) were changing while read: equal once live sync applied the change)",
                t.in_flight
            )
        } else if t.differences == 0 {
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
    if let Some(n) = &r.note {
        out.push_str(&format!("note: {n}\n"));
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
