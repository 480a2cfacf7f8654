//! Where `switchyard verify` gets its rows: each side is read on a task of its own
//! (PostgreSQL through COPY inside a read-only snapshot, SQLite on a blocking thread), in
//! primary-key order, normalised into chunks of one buffer each, and handed over a channel.

use tokio::sync::mpsc;

use super::backfill::Source;
use super::copy_stream::CopyReader;
use super::normalize::{self, Norm};
use super::schema::{Table, column_list, q};
use super::verify::{CHUNK, SEP};
use super::{SyncError, sqlite_read};

/// One row inside a chunk's buffer: its key (canonical) and its cheap form.
#[derive(Clone, Copy)]
pub(super) struct RowRef {
    pub(super) key: (u32, u32),
    pub(super) text: (u32, u32),
    pub(super) num: Option<i64>,
}

/// Normalised rows, stored in one buffer per chunk (no allocation per row or value).
#[derive(Default)]
pub(super) struct Chunk {
    pub(super) buf: String,
    pub(super) rows: Vec<RowRef>,
}

impl Chunk {
    /// An empty chunk with room for one like `prev`, so filling it never reallocates.
    pub(super) fn like(prev: &Chunk) -> Chunk {
        Chunk {
            buf: String::with_capacity(prev.buf.len() + prev.buf.len() / 8),
            rows: Vec::with_capacity(CHUNK),
        }
    }

    /// Hands this chunk over, leaving an empty one sized like it.
    pub(super) fn take(&mut self) -> Chunk {
        let next = Chunk::like(self);
        std::mem::replace(self, next)
    }

    pub(super) fn text(&self, r: &RowRef) -> &str {
        &self.buf[r.text.0 as usize..r.text.1 as usize]
    }

    pub(super) fn key(&self, r: &RowRef) -> &str {
        &self.buf[r.key.0 as usize..r.key.1 as usize]
    }

    /// Finishes the row whose fields start at `starts`: appends its canonical key.
    pub(super) fn finish_row(
        &mut self,
        starts: &[usize],
        pk: &[usize],
        norms: &[Norm],
        numeric_key: bool,
    ) {
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

pub(super) fn is_integer(pg_type: &str) -> bool {
    matches!(
        pg_type.split('(').next().unwrap_or("").trim(),
        "bigint" | "integer" | "smallint"
    )
}

/// Streams a SQLite table's normalised rows in key order.
pub(super) fn sqlite_rows(
    path: std::path::PathBuf,
    t: Table,
    tx: mpsc::Sender<Result<Chunk, SyncError>>,
) {
    let run = || -> Result<(), SyncError> {
        let conn = sqlite_read::open(&path)?;
        let cols = column_list(&t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
        let order = sqlite_order(&t);
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
            if chunk.rows.len() == CHUNK && tx.blocking_send(Ok(chunk.take())).is_err() {
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

/// SQLite's ORDER BY for a table's key: integer columns by value, the others by bytes
/// (BINARY, whatever collation the column declares), as the merge expects.
fn sqlite_order(t: &Table) -> String {
    let order: Vec<String> =
        t.pk.iter()
            .map(|k| match t.column(k) {
                Some(c) if is_integer(&c.pg_type) => q(k),
                _ => format!("{} COLLATE BINARY", q(k)),
            })
            .collect();
    if order.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {}", order.join(", "))
    }
}

pub(super) fn key_shape(t: &Table) -> (Vec<usize>, bool) {
    let pk = t.pk_positions();
    let numeric = pk.len() == 1 && is_integer(&t.columns[pk[0]].pg_type);
    (pk, numeric)
}

/// The query that reads a PostgreSQL table in key order, in one read-only snapshot (a
/// transaction also keeps it on one server behind a transaction pooler, and its settings
/// end with it rather than stay on a pooler's server).
fn pg_rows_sql(t: &Table, ordered: bool) -> String {
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
    let order = if order.is_empty() || !ordered {
        String::new()
    } else {
        format!(" ORDER BY {}", order.join(", "))
    };
    format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
         SET LOCAL TimeZone = 'UTC'; SET LOCAL extra_float_digits = 1; \
         COPY (SELECT {cols} FROM public.{}{order}) TO STDOUT; COMMIT",
        q(&t.name)
    )
}

/// Streams a PostgreSQL table's normalised rows in key order (COPY text format).
pub(super) async fn pg_rows(
    mut reader: CopyReader,
    t: Table,
    tx: mpsc::Sender<Result<Chunk, SyncError>>,
    target: bool,
) {
    let wrap = |e: String| {
        if target {
            SyncError::Target(e)
        } else {
            SyncError::Source(e)
        }
    };
    let norms: Vec<Norm> = t.columns.iter().map(|c| Norm::of(&c.pg_type)).collect();
    let (pk, numeric_key) = key_shape(&t);
    let mut lines = CopyLines {
        norms,
        pk,
        numeric_key,
        pending: Vec::new(),
        scratch: String::new(),
        starts: Vec::new(),
    };
    let mut chunk = Chunk::default();
    loop {
        match reader.next_batch(|data| lines.feed(data, &mut chunk)).await {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let _ = tx.send(Err(wrap(e))).await;
                return;
            }
        }
        if chunk.rows.len() >= CHUNK && tx.send(Ok(chunk.take())).await.is_err() {
            return reader.close().await;
        }
    }
    if !chunk.rows.is_empty() {
        let _ = tx.send(Ok(chunk)).await;
    }
    reader.close().await;
}

/// Turns COPY text data into normalised rows. PostgreSQL sends one row per CopyData
/// message, so rows are read straight from each message; only a row split across
/// messages is buffered.
struct CopyLines {
    norms: Vec<Norm>,
    pk: Vec<usize>,
    numeric_key: bool,
    pending: Vec<u8>,
    scratch: String,
    starts: Vec<usize>,
}

impl CopyLines {
    fn feed(&mut self, data: &[u8], chunk: &mut Chunk) {
        if self.pending.is_empty() {
            let used = self.lines(data, chunk);
            self.pending.extend_from_slice(&data[used..]);
        } else {
            self.pending.extend_from_slice(data);
            let pending = std::mem::take(&mut self.pending);
            let used = self.lines(&pending, chunk);
            self.pending = pending;
            self.pending.drain(..used);
        }
    }

    /// Handles every complete line of `data`; returns the bytes used.
    fn lines(&mut self, data: &[u8], chunk: &mut Chunk) -> usize {
        let mut start = 0;
        while let Some(nl) = memchr::memchr(b'\n', &data[start..]) {
            let bytes = &data[start..start + nl];
            start += nl + 1;
            let line = match std::str::from_utf8(bytes) {
                Ok(l) => std::borrow::Cow::Borrowed(l),
                Err(_) => String::from_utf8_lossy(bytes),
            };
            self.starts.clear();
            let (buf, starts, norms) = (&mut chunk.buf, &mut self.starts, &self.norms);
            normalize::for_each_copy_field(&line, &mut self.scratch, |i, f| {
                if i > 0 {
                    buf.push(SEP);
                }
                starts.push(buf.len());
                normalize::write_pg_cheap(buf, f, norms.get(i).copied().unwrap_or(Norm::Text));
            });
            chunk.finish_row(&self.starts, &self.pk, &self.norms, self.numeric_key);
        }
        start
    }
}

/// Rows of one side, one at a time.
pub(super) struct Rows {
    pub(super) rx: mpsc::Receiver<Result<Chunk, SyncError>>,
    pub(super) chunk: Chunk,
    pub(super) at: usize,
    pub(super) count: u64,
    /// Read without ORDER BY: every key must be above the last one, or the read stops.
    pub(super) unordered: bool,
    last: Option<i64>,
    /// The unordered read met a key out of order (and reported its end there).
    pub(super) disordered: bool,
}

impl Rows {
    /// Advances to the next row; false at the end (or where an unordered read turns out
    /// not to be in key order, which sets `disordered`).
    pub(super) async fn advance(&mut self) -> Result<bool, SyncError> {
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
        Ok(self.in_order())
    }

    /// For an unordered read, checks the current row's key is above the last one.
    pub(super) fn in_order(&mut self) -> bool {
        if !self.unordered {
            return true;
        }
        match self.chunk.rows[self.at].num {
            Some(n) if self.last.is_none_or(|l| n > l) => {
                self.last = Some(n);
                true
            }
            _ => {
                self.disordered = true;
                false
            }
        }
    }

    pub(super) fn row(&self) -> RowRef {
        self.chunk.rows[self.at]
    }
}

/// Starts reading one side of `t` (the target when `target` is given). With `fast`, a
/// PostgreSQL side with a single integer key is read without ORDER BY, in storage order,
/// which is key order after a sync; the caller must check `disordered`.
pub(super) async fn open_rows(
    source: &Source,
    t: &Table,
    target: Option<&crate::backend::url::PgTarget>,
    fast: bool,
) -> Result<Rows, SyncError> {
    let (tx, rx) = mpsc::channel(2);
    let mut unordered = false;
    match (target, source) {
        (Some(pt), _) | (None, Source::Postgres(pt)) => {
            unordered = fast && key_shape(t).1;
            let reader = CopyReader::start(pt, &pg_rows_sql(t, !unordered)).await?;
            tokio::spawn(pg_rows(reader, t.clone(), tx, target.is_some()));
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
        unordered,
        last: None,
        disordered: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_split_across_copy_messages_is_joined() {
        let mut lines = CopyLines {
            norms: vec![Norm::Text, Norm::Text],
            pk: vec![0],
            numeric_key: false,
            pending: Vec::new(),
            scratch: String::new(),
            starts: Vec::new(),
        };
        let mut chunk = Chunk::default();
        lines.feed(b"a\tb\nc\t", &mut chunk);
        assert_eq!(chunk.rows.len(), 1);
        lines.feed(b"d", &mut chunk);
        lines.feed(b"\\\\e\n", &mut chunk);
        let rows: Vec<(&str, &str)> = chunk
            .rows
            .iter()
            .map(|r| (chunk.key(r), chunk.text(r)))
            .collect();
        assert_eq!(rows, [("a", "a\u{1f}b"), ("c", "c\u{1f}d\\e")]);
        assert!(lines.pending.is_empty());
    }
}
