//! A forward-only scan of one SQLite query, for verify's per-value hot loop. rusqlite
//! reads a value with three or four C calls (column count, type, value, length), each
//! entering and leaving the connection's API state; here one `sqlite3_column_value` per
//! value is followed by plain reads of that value, which halves the cost of reading a
//! row (measured: a quarter of a verify's SQLite-side time went to rusqlite's reads).
//! This is the project's only `unsafe` code; it is kept to these few calls.

use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::ptr;

use rusqlite::Connection;
use rusqlite::ffi;
use rusqlite::types::ValueRef;

/// A prepared statement being stepped through. It borrows the connection, so it cannot
/// outlive it, and a row's values borrow the scan, so they cannot outlive the step.
pub struct Scan<'c> {
    stmt: *mut ffi::sqlite3_stmt,
    db: *mut ffi::sqlite3,
    columns: usize,
    /// Stepped past the last row (stepping again would restart the query).
    done: bool,
    _conn: PhantomData<&'c Connection>,
}

/// The connection's last error message.
fn errmsg(db: *mut ffi::sqlite3) -> String {
    // SAFETY: `db` is an open connection; sqlite3_errmsg always returns a valid C string
    // owned by the connection, copied out before any other call on it.
    unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }
        .to_string_lossy()
        .into_owned()
}

impl<'c> Scan<'c> {
    /// Prepares `sql` (one statement) on `conn`.
    pub fn new(conn: &'c Connection, sql: &str) -> Result<Scan<'c>, String> {
        let len = c_int::try_from(sql.len()).map_err(|_| "query too long".to_string())?;
        let mut stmt = ptr::null_mut();
        // SAFETY: the handle is only used while `conn` is borrowed (the PhantomData), on
        // this thread (Connection is not Sync); `sql` outlives the call, its length is
        // given, and `stmt` receives either a statement or null.
        let (db, rc) = unsafe {
            let db = conn.handle();
            let rc =
                ffi::sqlite3_prepare_v2(db, sql.as_ptr().cast(), len, &mut stmt, ptr::null_mut());
            (db, rc)
        };
        if rc != ffi::SQLITE_OK || stmt.is_null() {
            return Err(errmsg(db));
        }
        // SAFETY: `stmt` is a valid prepared statement.
        let columns = unsafe { ffi::sqlite3_column_count(stmt) }.max(0) as usize;
        Ok(Scan {
            stmt,
            db,
            columns,
            done: false,
            _conn: PhantomData,
        })
    }

    /// Moves to the next row; false after the last.
    pub fn step(&mut self) -> Result<bool, String> {
        if self.done {
            return Ok(false);
        }
        // SAFETY: `stmt` is valid until drop; no value of the previous row is borrowed
        // (values borrow `self`, and this takes it mutably).
        match unsafe { ffi::sqlite3_step(self.stmt) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => {
                self.done = true;
                Ok(false)
            }
            _ => {
                self.done = true;
                Err(errmsg(self.db))
            }
        }
    }

    /// Column `i` of the current row (call only after `step` returned true); Null for a
    /// column past the last.
    pub fn value(&self, i: usize) -> ValueRef<'_> {
        if i >= self.columns {
            return ValueRef::Null;
        }
        // SAFETY: `i` is a column of `stmt`, which is on a row. The value and the bytes
        // it points to stay valid until the next step or the finalize, both of which
        // need `&mut self` while the returned ValueRef borrows `&self`. Each text or blob
        // pointer is read before its length, as SQLite's documentation requires.
        unsafe {
            let v = ffi::sqlite3_column_value(self.stmt, i as c_int);
            match ffi::sqlite3_value_type(v) {
                ffi::SQLITE_INTEGER => ValueRef::Integer(ffi::sqlite3_value_int64(v)),
                ffi::SQLITE_FLOAT => ValueRef::Real(ffi::sqlite3_value_double(v)),
                ffi::SQLITE_TEXT => {
                    let p = ffi::sqlite3_value_text(v);
                    let n = ffi::sqlite3_value_bytes(v).max(0) as usize;
                    if p.is_null() {
                        ValueRef::Text(b"")
                    } else {
                        ValueRef::Text(std::slice::from_raw_parts(p, n))
                    }
                }
                ffi::SQLITE_BLOB => {
                    let p = ffi::sqlite3_value_blob(v).cast::<u8>();
                    let n = ffi::sqlite3_value_bytes(v).max(0) as usize;
                    if p.is_null() || n == 0 {
                        ValueRef::Blob(b"")
                    } else {
                        ValueRef::Blob(std::slice::from_raw_parts(p, n))
                    }
                }
                _ => ValueRef::Null,
            }
        }
    }
}

impl Drop for Scan<'_> {
    fn drop(&mut self) {
        // SAFETY: `stmt` came from sqlite3_prepare_v2 and is finalized exactly once.
        unsafe {
            ffi::sqlite3_finalize(self.stmt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_reads_every_storage_class_like_rusqlite() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE t (a, b, c, d, e);
             INSERT INTO t VALUES (1, 2.5, 'x€', x'00ff', NULL), (-9, 0.0, '', x'', 'y');",
        )
        .unwrap();
        let mut scan = Scan::new(&c, "SELECT a, b, c, d, e FROM t ORDER BY rowid").unwrap();
        let mut stmt = c
            .prepare("SELECT a, b, c, d, e FROM t ORDER BY rowid")
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut n = 0;
        while scan.step().unwrap() {
            let r = rows.next().unwrap().unwrap();
            for i in 0..5 {
                assert_eq!(scan.value(i), r.get_ref(i).unwrap(), "row {n} column {i}");
            }
            assert_eq!(scan.value(5), ValueRef::Null);
            n += 1;
        }
        assert_eq!(n, 2);
        assert!(rows.next().unwrap().is_none());
        assert!(!scan.step().unwrap(), "a finished scan stays finished");
    }

    #[test]
    fn a_bad_query_names_the_problem() {
        let c = Connection::open_in_memory().unwrap();
        let e = Scan::new(&c, "SELECT nope FROM missing").err().unwrap();
        assert!(e.contains("missing"), "{e}");
    }
}
