//! PostgreSQL's sequence functions over SQLite's AUTOINCREMENT counters
//! (`sqlite_sequence`): `setval(name, value [, is_called])` — what Django's `loaddata` and
//! `sqlsequencereset` send after inserting rows with their ids — and `nextval(name)`. A
//! serial column's sequence is named as PostgreSQL names it, `TABLE_COLUMN_seq`
//! (`pg_get_serial_sequence`); a statement calling them takes the write lock
//! (`Rewriter::moves_sequences`).

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;

/// The text inside the comment that names a serial key's sequence in its table's
/// definition (`/* sequence t_id_seq */`, written when the table is made).
pub fn mark(seq: &str) -> String {
    format!(" sequence {} ", seq.replace("*/", ""))
}

/// The sequence name a table's definition keeps, if it has one.
pub fn marked(sql: &str) -> Option<String> {
    let at = sql.find("/* sequence ")? + "/* sequence ".len();
    let end = sql[at..].find(" */")? + at;
    Some(sql[at..end].to_string())
}

/// Puts the sequence name `old` (a table's definition) keeps back into `new`, the same
/// definition printed again after an edit (the parser drops comments): after AUTOINCREMENT.
pub fn keep_mark(old: &str, new: &mut String) {
    if let Some(seq) = marked(old)
        && let Some(at) = new
            .find(" AUTOINCREMENT")
            .map(|i| i + " AUTOINCREMENT".len())
    {
        new.insert_str(at, &format!(" /*{}*/", mark(&seq)));
    }
}

/// The name of the sequence behind `table`'s serial key `column`: the one kept in its
/// definition, else PostgreSQL's `TABLE_COLUMN_seq` (tables made before names were kept).
pub fn name_of(conn: &Connection, table: &str, column: &str) -> String {
    conn.query_row(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get::<_, Option<String>>(0),
    )
    .ok()
    .flatten()
    .and_then(|sql| marked(&sql))
    .unwrap_or_else(|| format!("{table}_{column}_seq"))
}

/// The AUTOINCREMENT table a sequence name stands for: the table whose definition keeps
/// that name, else the longest table name `T` with the name `[schema.]T_COLUMN_seq`.
fn table_of(conn: &Connection, seq: &str) -> Option<String> {
    let name = super::typmod::relname(seq);
    if let Ok(t) = conn.query_row(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND instr(sql, ?1) > 0",
        [format!("/*{}*/", mark(&name))],
        |r| r.get::<_, String>(0),
    ) {
        return Some(t);
    }
    let stem = name.strip_suffix("_seq")?;
    let mut st = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .ok()?;
    let tables: Vec<String> = st
        .query_map([], |r| r.get(0))
        .ok()?
        .filter_map(Result::ok)
        .collect();
    tables
        .into_iter()
        .filter(|t| {
            stem.len() > t.len() + 1
                && stem.starts_with(t.as_str())
                && stem.as_bytes()[t.len()] == b'_'
        })
        .max_by_key(String::len)
}

fn set(conn: &Connection, table: &str, last: i64) -> rusqlite::Result<()> {
    let n = conn.execute(
        "UPDATE sqlite_sequence SET seq = ?2 WHERE name = ?1",
        rusqlite::params![table, last],
    )?;
    if n == 0 {
        conn.execute(
            "INSERT INTO sqlite_sequence (name, seq) VALUES (?1, ?2)",
            rusqlite::params![table, last],
        )?;
    }
    Ok(())
}

fn no_sequence(seq: &str) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(
        format!("relation \"{seq}\" does not exist (switchyard's SQLite backend has a sequence for each AUTOINCREMENT key, named TABLE_COLUMN_seq)").into(),
    )
}

/// Registers `setval` and `nextval`.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8;
    // `sy_seq_name(definition, table, column)`: [`name_of`] for the catalog's views.
    conn.create_scalar_function(
        "sy_seq_name",
        3,
        flags | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let sql = ctx.get::<Option<String>>(0)?.unwrap_or_default();
            let (t, c): (String, String) = (ctx.get(1)?, ctx.get(2)?);
            Ok(marked(&sql).unwrap_or_else(|| format!("{t}_{c}_seq")))
        },
    )?;
    conn.create_scalar_function("setval", -1, flags, |ctx| {
        let seq: String = ctx.get(0)?;
        let value: i64 = ctx.get(1)?;
        let called = if ctx.len() > 2 {
            ctx.get::<Option<bool>>(2)?.unwrap_or(true)
        } else {
            true
        };
        // SAFETY: the handle is this function's own connection, used on its thread while
        // the calling statement (which holds the write lock) runs.
        let conn = unsafe { ctx.get_connection()? };
        let table = table_of(&conn, &seq).ok_or_else(|| no_sequence(&seq))?;
        set(&conn, &table, if called { value } else { value - 1 })?;
        Ok(value)
    })?;
    conn.create_scalar_function("nextval", 1, flags, |ctx| {
        let seq: String = ctx.get(0)?;
        // SAFETY: as for setval.
        let conn = unsafe { ctx.get_connection()? };
        let table = table_of(&conn, &seq).ok_or_else(|| no_sequence(&seq))?;
        let last: i64 = conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = ?1",
                [&table],
                |r| r.get(0),
            )
            .unwrap_or(0);
        set(&conn, &table, last + 1)?;
        Ok(last + 1)
    })?;
    Ok(())
}
