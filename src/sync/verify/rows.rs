//! Where `switchyard verify` gets its rows: each side is read on a task of its own
//! (PostgreSQL through binary COPY inside a read-only snapshot, SQLite on a blocking
//! thread), in primary-key order or, where the caller allows, PostgreSQL's storage order
//! checked key by key, normalised into chunks of one buffer each, and handed over a channel.

use tokio::sync::mpsc;

use crate::backend::url::BackendUrl;
use crate::sync::SyncError;
use crate::sync::schema::{Table, column_list, q};
use crate::sync::source::sqlite as sqlite_read;
use crate::sync::source::sqlite_scan::Scan;
use crate::sync::verify::copy_binary::{self, Wire};
use crate::sync::verify::copy_stream::CopyReader;
use crate::sync::verify::normalize::{self, Norm};
use crate::sync::verify::raw::Enc;
use crate::sync::verify::{CHUNK, SEP};

/// Chunks the merge has emptied, going back to their reader to be filled again: reusing
/// buffers spares a page fault per 4 KB of rows read (a verify of 1.2 M rows: 20 000 page
/// faults before, 12 000 after).
pub(super) type Spare = std::sync::mpsc::Receiver<Chunk>;

/// One row inside a chunk's buffers: its key (canonical), and its cheap form or its raw
/// binary tuple (see [`super::raw`]; an empty range when the row has none).
#[derive(Clone, Copy)]
pub(super) struct RowRef {
    pub(super) key: (u32, u32),
    pub(super) text: (u32, u32),
    pub(super) raw: (u32, u32),
    pub(super) num: Option<i64>,
}

/// Normalised rows, stored in one buffer per chunk (no allocation per row or value), and
/// raw tuples in another.
#[derive(Default)]
pub(super) struct Chunk {
    pub(super) buf: String,
    pub(super) raw: Vec<u8>,
    pub(super) rows: Vec<RowRef>,
}

impl Chunk {
    /// An empty chunk with room for one like `prev`, so filling it never reallocates.
    pub(super) fn like(prev: &Chunk) -> Chunk {
        Chunk {
            buf: String::with_capacity(prev.buf.len() + prev.buf.len() / 8),
            raw: Vec::with_capacity(prev.raw.len() + prev.raw.len() / 8),
            rows: Vec::with_capacity(CHUNK),
        }
    }

    /// Hands this chunk over, leaving in its place an emptied one the merge gave back
    /// (`spare`), or a new one sized like it.
    pub(super) fn take(&mut self, spare: &Spare) -> Chunk {
        let next = spare.try_recv().unwrap_or_else(|_| Chunk::like(self));
        std::mem::replace(self, next)
    }

    pub(super) fn text(&self, r: &RowRef) -> &str {
        &self.buf[r.text.0 as usize..r.text.1 as usize]
    }

    /// A row's canonical key; a raw row's integer key is only written out here, when
    /// a difference is reported or compared with a non-integer key.
    pub(super) fn key(&self, r: &RowRef) -> std::borrow::Cow<'_, str> {
        match r.num {
            Some(n) if r.key.0 == r.key.1 => n.to_string().into(),
            _ => self.buf[r.key.0 as usize..r.key.1 as usize].into(),
        }
    }

    fn raw(&self, r: &RowRef) -> Option<&[u8]> {
        (r.raw.0 < r.raw.1).then(|| &self.raw[r.raw.0 as usize..r.raw.1 as usize])
    }

    /// Whether two rows are the same at a glance: equal raw tuples or equal cheap forms.
    pub(super) fn same(&self, r: &RowRef, other: &Chunk, o: &RowRef) -> bool {
        match (self.raw(r), other.raw(o)) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.text(r) == other.text(o),
            _ => false,
        }
    }

    /// A row's cheap form, decoded from its raw tuple (sent as `wires`) if it has one.
    pub(super) fn text_form(&self, r: &RowRef, wires: &[Wire]) -> std::borrow::Cow<'_, str> {
        let Some(raw) = self.raw(r) else {
            return self.text(r).into();
        };
        let mut out = String::new();
        for (i, (f, w)) in crate::sync::verify::raw::fields(raw)
            .unwrap_or_default()
            .into_iter()
            .zip(wires)
            .enumerate()
        {
            if i > 0 {
                out.push(SEP);
            }
            if !copy_binary::write_value(&mut out, f, *w) {
                out.push_str("(malformed)");
            }
        }
        out.into()
    }

    /// Adds a row whose raw tuple starts at `start` in `raw`, with integer key `key`
    /// (kept as a number only; see [`Chunk::key`]).
    pub(super) fn push_raw(&mut self, start: usize, key: i64) {
        let at = self.buf.len() as u32;
        self.rows.push(RowRef {
            key: (at, at),
            text: (at, at),
            raw: (start as u32, self.raw.len() as u32),
            num: Some(key),
        });
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
        let (key_start, key_end) = match *pk {
            // A single key column already in its canonical form: the key is that field.
            [i] if numeric_key || matches!(norms[i], Norm::Text) => field(i),
            _ => {
                let key_start = self.buf.len();
                for (n, &i) in pk.iter().enumerate() {
                    if n > 0 {
                        self.buf.push(SEP);
                    }
                    let (a, b) = field(i);
                    if matches!(norms[i], Norm::Text) {
                        self.buf.extend_from_within(a..b);
                    } else {
                        let c = normalize::canonical(&self.buf[a..b], norms[i]);
                        self.buf.push_str(&c);
                    }
                }
                (key_start, self.buf.len())
            }
        };
        let num = if numeric_key {
            self.buf[key_start..key_end].parse().ok()
        } else {
            None
        };
        self.rows.push(RowRef {
            key: (key_start as u32, key_end as u32),
            text: (start as u32, end as u32),
            raw: (0, 0),
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
    encs: Option<Vec<Enc>>,
    tx: mpsc::Sender<Result<Chunk, SyncError>>,
    spare: Spare,
) {
    let run = || -> Result<(), SyncError> {
        let conn = sqlite_read::open_mapped(&path)?;
        let cols = column_list(&t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
        // BINARY whatever collation a column declares.
        let order = order_by(&t, |c| format!("{c} COLLATE BINARY"));
        let sql = format!("SELECT {cols} FROM {}{order}", q(&t.name));
        let mut rows = Scan::new(&conn, &sql).map_err(SyncError::Source)?;
        let norms: Vec<Norm> = t.columns.iter().map(|c| Norm::of(&c.pg_type)).collect();
        let (pk, numeric_key) = key_shape(&t);
        let mut chunk = Chunk::default();
        let mut starts = Vec::with_capacity(norms.len());
        while rows.step().map_err(SyncError::Source)? {
            let raw = encs.as_ref().is_some_and(|encs| {
                crate::sync::verify::raw::raw_row(&mut chunk, &rows, encs, pk[0])
            });
            if !raw {
                starts.clear();
                for (i, norm) in norms.iter().enumerate() {
                    if i > 0 {
                        chunk.buf.push(SEP);
                    }
                    starts.push(chunk.buf.len());
                    normalize::write_sqlite_cheap(&mut chunk.buf, rows.value(i), *norm);
                }
                chunk.finish_row(&starts, &pk, &norms, numeric_key);
            }
            if chunk.rows.len() == CHUNK && tx.blocking_send(Ok(chunk.take(&spare))).is_err() {
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

/// The ORDER BY for a table's key the merge expects: integer columns by value, the others
/// by bytes, as `by_bytes` writes that for a quoted column (empty without a key).
pub(super) fn order_by(t: &Table, by_bytes: impl Fn(&str) -> String) -> String {
    let order: Vec<String> =
        t.pk.iter()
            .map(|k| match t.column(k) {
                Some(c) if is_integer(&c.pg_type) => q(k),
                _ => by_bytes(&q(k)),
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

/// Rows of one side, one at a time.
pub(super) struct Rows {
    pub(super) rx: mpsc::Receiver<Result<Chunk, SyncError>>,
    pub(super) chunk: Chunk,
    /// Where emptied chunks go back to the reader.
    back: std::sync::mpsc::Sender<Chunk>,
    pub(super) at: usize,
    pub(super) count: u64,
    /// Read without ORDER BY: every key must be above the last one, or the read stops.
    unordered: bool,
    last: Option<i64>,
    /// The unordered read met a key out of order (and reported its end there).
    pub(super) disordered: bool,
}

impl Rows {
    fn new(
        rx: mpsc::Receiver<Result<Chunk, SyncError>>,
        back: std::sync::mpsc::Sender<Chunk>,
        unordered: bool,
    ) -> Rows {
        Rows {
            rx,
            chunk: Chunk::default(),
            back,
            at: 0,
            count: 0,
            unordered,
            last: None,
            disordered: false,
        }
    }

    /// Advances to the next row; false at the end (or where an unordered read turns out
    /// not to be in key order, which sets `disordered`).
    pub(super) async fn advance(&mut self) -> Result<bool, SyncError> {
        self.at += 1;
        while self.at >= self.chunk.rows.len() {
            match self.rx.recv().await {
                Some(c) => {
                    self.set_chunk(c?);
                    self.at = 0;
                }
                None => return Ok(false),
            }
        }
        self.count += 1;
        Ok(self.in_order())
    }

    /// Makes `c` the current chunk, giving the finished one back to the reader.
    pub(super) fn set_chunk(&mut self, c: Chunk) {
        let mut done = std::mem::replace(&mut self.chunk, c);
        if done.rows.capacity() > 0 {
            done.buf.clear();
            done.raw.clear();
            done.rows.clear();
            let _ = self.back.send(done);
        }
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
    source: &BackendUrl,
    t: &Table,
    target: Option<(&crate::backend::url::PgTarget, &[String])>,
    fast: bool,
    raw: Option<&[Enc]>,
) -> Result<Rows, SyncError> {
    let (tx, rx) = mpsc::channel(2);
    let (back, spare) = std::sync::mpsc::channel();
    let (pt, types): (_, Vec<String>) = match (target, source) {
        (Some((pt, types)), _) => (pt, types.to_vec()),
        (None, BackendUrl::Postgres(pt)) => {
            (pt, t.columns.iter().map(|c| c.pg_type.clone()).collect())
        }
        (None, BackendUrl::Sqlite(path)) => {
            let (p, tt, encs) = (path.clone(), t.clone(), raw.map(<[Enc]>::to_vec));
            tokio::task::spawn_blocking(move || sqlite_rows(p, tt, encs, tx, spare));
            return Ok(Rows::new(rx, back, false));
        }
    };
    let unordered = fast && key_shape(t).1;
    let wires: Vec<Wire> = t
        .columns
        .iter()
        .zip(&types)
        .map(|(c, ty)| Wire::of(Norm::of(&c.pg_type), ty))
        .collect();
    let sql = super::pg_rows::pg_rows_sql(t, !unordered, &wires, &types);
    let reader = CopyReader::start(pt, &sql).await?;
    let raw = raw.is_some();
    let target = target.is_some();
    crate::lifecycle::spawn_owned(super::pg_rows::pg_rows(
        reader,
        t.clone(),
        wires,
        raw,
        tx,
        spare,
        target,
    ));
    Ok(Rows::new(rx, back, unordered))
}
