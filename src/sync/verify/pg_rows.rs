//! Reading one PostgreSQL table for `switchyard verify`: the binary COPY query (in key
//! order or storage order, inside a read-only snapshot) and the task that turns its
//! tuples into normalised rows, chunk by chunk, for [`super::rows::Rows`].

use tokio::sync::mpsc;

use super::rows::{Chunk, Spare, key_shape, order_by};
use crate::sync::SyncError;
use crate::sync::schema::{Table, q};
use crate::sync::verify::copy_binary::{self, Tuples, Wire};
use crate::sync::verify::copy_stream::CopyReader;
use crate::sync::verify::normalize::Norm;
use crate::sync::verify::{CHUNK, SEP};

/// The query that reads a PostgreSQL table in binary, in key order unless `ordered` is
/// false, in one read-only snapshot (a transaction also keeps it on one server behind a
/// transaction pooler, and its settings end with it rather than stay on a pooler's
/// server). Columns without a binary decoding are cast to text on the server.
pub(super) fn pg_rows_sql(t: &Table, ordered: bool, wires: &[Wire], types: &[String]) -> String {
    let cols: Vec<String> = t
        .columns
        .iter()
        .zip(wires.iter().zip(types))
        .map(|(c, (w, ty))| {
            if w.needs_cast(ty) {
                format!("{}::text", q(&c.name))
            } else {
                q(&c.name)
            }
        })
        .collect();
    let cast = wires.iter().zip(types).any(|(w, ty)| w.needs_cast(ty));
    let from = if ordered || cast {
        let order = if ordered {
            order_by(t, |c| format!("{c}::text COLLATE \"C\""))
        } else {
            String::new()
        };
        format!(
            "(SELECT {} FROM public.{}{order})",
            cols.join(", "),
            q(&t.name)
        )
    } else {
        // A plain table COPY skips the executor's projection (~4% of the server's time).
        format!("public.{} ({})", q(&t.name), cols.join(", "))
    };
    format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
         SET LOCAL TimeZone = 'UTC'; SET LOCAL extra_float_digits = 1; \
         SET LOCAL client_encoding = 'UTF8'; \
         COPY {from} TO STDOUT (FORMAT binary); COMMIT"
    )
}

/// Streams a PostgreSQL table's normalised rows (binary COPY).
pub(super) async fn pg_rows(
    mut reader: CopyReader,
    t: Table,
    wires: Vec<Wire>,
    raw: bool,
    tx: mpsc::Sender<Result<Chunk, SyncError>>,
    spare: Spare,
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
    let mut rows = BinaryRows {
        norms,
        wires,
        pk,
        numeric_key,
        tuples: Tuples::default(),
        starts: Vec::new(),
        raw,
        bad: None,
    };
    let mut chunk = Chunk::default();
    loop {
        let batch = reader.next_batch(|data| rows.feed(data, &mut chunk)).await;
        let batch = batch.and_then(|more| match rows.bad.take() {
            Some(e) => Err(e),
            None if !more && rows.tuples.incomplete() => {
                Err("binary COPY data ends mid-row".into())
            }
            None => Ok(more),
        });
        match batch {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let _ = tx.send(Err(wrap(e))).await;
                return reader.close().await;
            }
        }
        if chunk.rows.len() >= CHUNK && tx.send(Ok(chunk.take(&spare))).await.is_err() {
            return reader.close().await;
        }
    }
    if !chunk.rows.is_empty() {
        let _ = tx.send(Ok(chunk)).await;
    }
    reader.close().await;
}

/// Turns binary COPY data into normalised rows.
struct BinaryRows {
    norms: Vec<Norm>,
    wires: Vec<Wire>,
    pk: Vec<usize>,
    numeric_key: bool,
    tuples: Tuples,
    starts: Vec<usize>,
    /// Rows are kept as raw tuples (the source is encoded the same way).
    raw: bool,
    /// The first malformed input met, reported after the batch.
    bad: Option<String>,
}

impl BinaryRows {
    fn feed(&mut self, data: &[u8], chunk: &mut Chunk) {
        if self.bad.is_some() {
            return;
        }
        let (wires, starts, bad) = (&self.wires, &mut self.starts, &mut self.bad);
        let (norms, pk, numeric_key) = (&self.norms, &self.pk, self.numeric_key);
        let raw = self.raw;
        let fed = self.tuples.feed(data, |tuple, fields| {
            if raw {
                return crate::sync::verify::raw::raw_tuple(
                    chunk,
                    tuple,
                    fields,
                    wires.len(),
                    pk[0],
                    bad,
                );
            }
            starts.clear();
            for (i, (f, w)) in fields.iter().zip(wires).enumerate() {
                if i > 0 {
                    chunk.buf.push(SEP);
                }
                starts.push(chunk.buf.len());
                let value = f.map(|(a, b)| &tuple[a..b]);
                if !copy_binary::write_value(&mut chunk.buf, value, *w) && bad.is_none() {
                    *bad = Some(format!("malformed {w:?} value in binary COPY data"));
                }
            }
            if fields.len() != wires.len() && bad.is_none() {
                *bad = Some(format!(
                    "binary COPY row with {} of {} columns",
                    fields.len(),
                    wires.len()
                ));
            }
            chunk.finish_row(starts, pk, norms, numeric_key);
        });
        if let Err(e) = fed {
            self.bad.get_or_insert(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::verify::normalize::NULL;

    /// A binary COPY stream: header, the given tuples, trailer.
    fn stream(tuples: &[&[Option<&[u8]>]]) -> Vec<u8> {
        let mut out = b"PGCOPY\n\xff\r\n\0".to_vec();
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        for t in tuples {
            out.extend_from_slice(&(t.len() as i16).to_be_bytes());
            for f in t.iter() {
                match f {
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(v) => {
                        out.extend_from_slice(&(v.len() as i32).to_be_bytes());
                        out.extend_from_slice(v);
                    }
                }
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    fn rows(wires: Vec<Wire>, pk: Vec<usize>, numeric_key: bool) -> BinaryRows {
        BinaryRows {
            norms: vec![Norm::Text; wires.len()],
            wires,
            pk,
            numeric_key,
            tuples: Tuples::default(),
            starts: Vec::new(),
            raw: false,
            bad: None,
        }
    }

    #[test]
    fn rows_split_anywhere_across_copy_messages_are_joined() {
        let one = 7i64.to_be_bytes();
        let two = (-12i64).to_be_bytes();
        let data = stream(&[&[Some(&one), Some(b"a\tb")], &[Some(&two), None]]);
        for cut in 0..data.len() {
            let mut r = rows(vec![Wire::Int, Wire::Text], vec![0], true);
            let mut chunk = Chunk::default();
            r.feed(&data[..cut], &mut chunk);
            r.feed(&data[cut..], &mut chunk);
            assert!(r.bad.is_none(), "{:?}", r.bad);
            let got: Vec<(String, &str)> = chunk
                .rows
                .iter()
                .map(|x| (chunk.key(x).into_owned(), chunk.text(x)))
                .collect();
            let null = format!("-12\u{1f}{NULL}");
            assert_eq!(
                got,
                [
                    ("7".to_string(), "7\u{1f}a\tb"),
                    ("-12".to_string(), null.as_str())
                ],
                "cut at {cut}"
            );
            assert_eq!(chunk.rows[1].num, Some(-12));
        }
    }

    #[test]
    fn malformed_binary_data_is_reported() {
        let mut r = rows(vec![Wire::Int], vec![0], true);
        let mut chunk = Chunk::default();
        r.feed(&stream(&[&[Some(b"abc")]]), &mut chunk);
        assert!(
            r.bad.as_deref().unwrap().contains("malformed Int"),
            "{:?}",
            r.bad
        );
        let mut r = rows(vec![Wire::Int], vec![0], true);
        r.feed(b"COPY text\n", &mut chunk);
        assert!(
            r.bad.as_deref().unwrap().contains("signature"),
            "{:?}",
            r.bad
        );
    }
}
