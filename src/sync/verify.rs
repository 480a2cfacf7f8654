//! `switchyard verify`: compares source and target table by table. Both sides are read in
//! primary-key order (PostgreSQL text keys under the "C" collation, which is SQLite's byte
//! order), normalised (see [`super::normalize`]) and merged, so every differing row is named
//! with its key, column and both values; rows are grouped in ranges of 10,000 keys to say
//! where the differences are. Tables without a primary key are compared as multisets.

use std::cmp::Ordering;
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::backfill::Source;
use super::normalize::{self, NULL, Norm};
use super::plan::{self, Opened};
use super::schema::{Table, column_list, q};
use super::{SyncError, pg_error, pgconn, sqlite_read};

const CHUNK: usize = 10_000;
/// Differences listed per table (all are counted).
const MAX_LISTED: usize = 100;
/// Separates columns in a normalised row.
const SEP: char = '\u{1f}';

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

/// One row inside a chunk's buffer: its key (canonical) and its cheap form.
#[derive(Clone, Copy)]
struct RowRef {
    key: (u32, u32),
    text: (u32, u32),
    num: Option<i64>,
}

/// Normalised rows, stored in one buffer per chunk (no allocation per row or value).
#[derive(Default)]
struct Chunk {
    buf: String,
    rows: Vec<RowRef>,
}

impl Chunk {
    fn text(&self, r: &RowRef) -> &str {
        &self.buf[r.text.0 as usize..r.text.1 as usize]
    }

    fn key(&self, r: &RowRef) -> &str {
        &self.buf[r.key.0 as usize..r.key.1 as usize]
    }

    /// Finishes the row whose fields start at `starts`: appends its canonical key.
    fn finish_row(&mut self, starts: &[usize], pk: &[usize], norms: &[Norm], numeric_key: bool) {
        let start = starts.first().copied().unwrap_or(self.buf.len());
        let end = self.buf.len();
        let field = |i: usize| -> (usize, usize) {
            let a = starts[i];
            let b = starts.get(i + 1).map(|n| n - SEP.len_utf8()).unwrap_or(end);
            (a, b)
        };
        let key_start = self.buf.len();
        for (n, &i) in pk.iter().enumerate() {
            if n > 0 {
                self.buf.push(SEP);
            }
            let (a, b) = field(i);
            if matches!(norms[i], Norm::Text) || numeric_key {
                self.buf.extend_from_within(a..b);
            } else {
                let c = normalize::canonical(&self.buf[a..b], norms[i]);
                self.buf.push_str(&c);
            }
        }
        let key_end = self.buf.len();
        let num = if numeric_key {
            self.buf[key_start..key_end].parse().ok()
        } else {
            None
        };
        self.rows.push(RowRef {
            key: (key_start as u32, key_end as u32),
            text: (start as u32, end as u32),
            num,
        });
    }
}

fn is_integer(pg_type: &str) -> bool {
    matches!(
        pg_type.split('(').next().unwrap_or("").trim(),
        "bigint" | "integer" | "smallint"
    )
}

/// Streams a SQLite table's normalised rows in key order.
fn sqlite_rows(path: std::path::PathBuf, t: Table, tx: mpsc::Sender<Result<Chunk, SyncError>>) {
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
        let norms: Vec<Norm> = t.columns.iter().map(|c| Norm::of(&c.pg_type)).collect();
        let (pk, numeric_key) = key_shape(&t);
        let mut rows = stmt
            .query([])
            .map_err(|e| SyncError::Source(e.to_string()))?;
        let mut chunk = Chunk::default();
        let mut starts = Vec::with_capacity(norms.len());
        while let Some(r) = rows.next().map_err(|e| SyncError::Source(e.to_string()))? {
            starts.clear();
            for (i, norm) in norms.iter().enumerate() {
                if i > 0 {
                    chunk.buf.push(SEP);
                }
                starts.push(chunk.buf.len());
                let v = r.get_ref(i).map_err(|e| SyncError::Source(e.to_string()))?;
                normalize::write_sqlite_cheap(&mut chunk.buf, v, *norm);
            }
            chunk.finish_row(&starts, &pk, &norms, numeric_key);
            if chunk.rows.len() == CHUNK
                && tx.blocking_send(Ok(std::mem::take(&mut chunk))).is_err()
            {
                return Ok(());
            }
        }
        if !chunk.rows.is_empty() {
            let _ = tx.blocking_send(Ok(chunk));
        }
        Ok(())
    };
    if let Err(e) = run() {
        let _ = tx.blocking_send(Err(e));
    }
}

fn key_shape(t: &Table) -> (Vec<usize>, bool) {
    let pk = t.pk_positions();
    let numeric = pk.len() == 1 && is_integer(&t.columns[pk[0]].pg_type);
    (pk, numeric)
}

/// Streams a PostgreSQL table's normalised rows in key order (COPY text format).
async fn pg_rows(c: Client, t: Table, tx: mpsc::Sender<Result<Chunk, SyncError>>, target: bool) {
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
        // A transaction keeps tokio-postgres's named COPY statement on one server behind
        // a transaction pooler, and gives the whole read one snapshot.
        c.simple_query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(wrap)?;
        let stream = c.copy_out(&sql).await.map_err(wrap)?;
        futures::pin_mut!(stream);
        let norms: Vec<Norm> = t.columns.iter().map(|c| Norm::of(&c.pg_type)).collect();
        let (pk, numeric_key) = key_shape(&t);
        let mut pending: Vec<u8> = Vec::new();
        let mut chunk = Chunk::default();
        let mut scratch = String::new();
        let mut starts = Vec::with_capacity(norms.len());
        while let Some(data) = stream.next().await {
            pending.extend_from_slice(&data.map_err(wrap)?);
            let mut start = 0;
            while let Some(nl) = memchr::memchr(b'\n', &pending[start..]) {
                let bytes = &pending[start..start + nl];
                let line = match std::str::from_utf8(bytes) {
                    Ok(l) => std::borrow::Cow::Borrowed(l),
                    Err(_) => String::from_utf8_lossy(bytes),
                };
                start += nl + 1;
                starts.clear();
                let buf = &mut chunk.buf;
                normalize::for_each_copy_field(&line, &mut scratch, |i, f| {
                    if i > 0 {
                        buf.push(SEP);
                    }
                    starts.push(buf.len());
                    normalize::write_pg_cheap(buf, f, norms.get(i).copied().unwrap_or(Norm::Text));
                });
                chunk.finish_row(&starts, &pk, &norms, numeric_key);
                if chunk.rows.len() == CHUNK
                    && tx.send(Ok(std::mem::take(&mut chunk))).await.is_err()
                {
                    return Ok(());
                }
            }
            pending.drain(..start);
        }
        if !chunk.rows.is_empty() {
            let _ = tx.send(Ok(chunk)).await;
        }
        Ok::<(), SyncError>(())
    };
    if let Err(e) = run.await {
        let _ = tx.send(Err(e)).await;
    }
    let _ = c.simple_query("COMMIT").await;
}

/// Rows of one side, one at a time.
struct Rows {
    rx: mpsc::Receiver<Result<Chunk, SyncError>>,
    chunk: Chunk,
    at: usize,
    count: u64,
}

impl Rows {
    /// Advances to the next row; false at the end.
    async fn advance(&mut self) -> Result<bool, SyncError> {
        self.at += 1;
        while self.at >= self.chunk.rows.len() {
            match self.rx.recv().await {
                Some(c) => {
                    self.chunk = c?;
                    self.at = 0;
                }
                None => return Ok(false),
            }
        }
        self.count += 1;
        Ok(true)
    }

    fn row(&self) -> RowRef {
        self.chunk.rows[self.at]
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
            c.batch_execute("SET TimeZone = 'UTC'; SET extra_float_digits = 1")
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
        chunk: Chunk::default(),
        at: 0,
        count: 0,
    })
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
    fn add(&mut self, range: u64, d: Option<Difference>) {
        self.rep.differences += 1;
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
                source: shown(x),
                target: shown(y),
                kind: "value differs",
            });
        }
    }
}

fn key_order(a: &Chunk, ra: &RowRef, b: &Chunk, rb: &RowRef) -> Ordering {
    match (ra.num, rb.num) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.key(ra).as_bytes().cmp(b.key(rb).as_bytes()),
    }
}

/// Compares one table with a primary key by merging both sides in key order.
async fn compare_keyed(t: &Table, mut src: Rows, mut dst: Rows) -> Result<TableReport, SyncError> {
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
    let mut seen = 0u64;
    while more_a || more_b {
        let range = seen / CHUNK as u64;
        seen += 1;
        let order = match (more_a, more_b) {
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            _ => key_order(&src.chunk, &src.row(), &dst.chunk, &dst.row()),
        };
        match order {
            Ordering::Less => {
                let k = key_text(src.chunk.key(&src.row()));
                tally.add(
                    range,
                    Some(Difference {
                        key: k,
                        column: None,
                        source: None,
                        target: None,
                        kind: "missing in target",
                    }),
                );
                more_a = src.advance().await?;
            }
            Ordering::Greater => {
                let k = key_text(dst.chunk.key(&dst.row()));
                tally.add(
                    range,
                    Some(Difference {
                        key: k,
                        column: None,
                        source: None,
                        target: None,
                        kind: "only in target",
                    }),
                );
                more_b = dst.advance().await?;
            }
            Ordering::Equal => {
                let (ra, rb) = (src.row(), dst.row());
                if src.chunk.text(&ra) != dst.chunk.text(&rb) {
                    let mut diffs = Vec::new();
                    column_diffs(
                        t,
                        src.chunk.key(&ra),
                        src.chunk.text(&ra),
                        dst.chunk.text(&rb),
                        &mut diffs,
                    );
                    if !diffs.is_empty() {
                        tally.add(range, None);
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
    rep.source_rows = src.count;
    rep.target_rows = dst.count;
    rep.ranges = rep.source_rows.max(rep.target_rows).div_ceil(CHUNK as u64);
    Ok(rep)
}

/// Moves a fresh Rows onto its first row.
async fn advance_first(r: &mut Rows) -> Result<bool, SyncError> {
    r.at = usize::MAX;
    r.chunk = Chunk::default();
    match r.rx.recv().await {
        Some(c) => {
            r.chunk = c?;
            r.at = 0;
            if r.chunk.rows.is_empty() {
                return Ok(false);
            }
            r.count = 1;
            Ok(true)
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
                tally.add(
                    0,
                    Some(Difference {
                        key: key_text(&xs[i]),
                        column: None,
                        source: None,
                        target: None,
                        kind: "row missing in target",
                    }),
                );
                i += 1;
            }
            Ordering::Greater => {
                tally.add(
                    0,
                    Some(Difference {
                        key: key_text(&ys[j]),
                        column: None,
                        source: None,
                        target: None,
                        kind: "row only in target",
                    }),
                );
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
    let jobs = all.iter().map(|t| {
        let (probe, source, target) = (&probe, &source, &target);
        async move {
            let exists = probe
                .simple_query(&format!("SELECT to_regclass('public.{}')::text", q(&t.name).replace('\'', "''")))
                .await
                .map_err(|e| SyncError::Target(pg_error(&e)))?
                .into_iter()
                .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0).is_some()));
            if !exists {
                return Ok(TableReport { table: t.name.clone(), error: Some("missing in target".into()), differences: 1, ..Default::default() });
            }
            let src = open_rows(source, t, None).await?;
            let dst = open_rows(source, t, Some(target)).await?;
            if t.pk.is_empty() { compare_unkeyed(t, src, dst).await } else { compare_keyed(t, src, dst).await }
        }
    });
    let results: Vec<Result<TableReport, SyncError>> =
        futures::stream::iter(jobs).buffered(2).collect().await;
    let mut report = Report {
        identical: true,
        ..Default::default()
    };
    for rep in results {
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
