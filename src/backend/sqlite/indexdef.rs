//! `pg_get_indexdef(oid [, column [, pretty]])` for the SQLite backend: an index's
//! definition as PostgreSQL prints it (`CREATE UNIQUE INDEX t_a_key ON public.t USING
//! btree (a, b DESC)`), for SQLite's own indexes and for the indexes PostgreSQL would
//! have behind a primary key or UNIQUE constraint ([`super::constraints`]). psql's `\d`
//! shows the part after USING; with a column number, the function names that column.

use rusqlite::{Connection, OptionalExtension};

use super::functions::quote_ident;

/// An index's table, whether it is unique, and its columns (with DESC where so).
struct Index {
    name: String,
    table: String,
    unique: bool,
    columns: Vec<String>,
    /// Each column's operator class, where one was given.
    opclasses: Vec<Option<String>>,
}

/// The comment that keeps an operator class in a SQLite index's definition (see
/// `rewrite.rs`).
pub fn opclass_mark(opclass: &str) -> String {
    format!("/* opclass {} */", opclass.replace("*/", ""))
}

/// The operator classes of an index's columns, in order, from its definition's marks.
pub(super) fn opclasses(sql: &str) -> Vec<Option<String>> {
    // The column list: from the first parenthesis after ON, split at its top-level commas.
    let lower = sql.to_lowercase();
    let Some(on) = lower.find(" on ") else {
        return Vec::new();
    };
    let Some(open) = sql[on..].find('(').map(|i| on + i) else {
        return Vec::new();
    };
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, open + 1);
    for (i, ch) in sql[open..].char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    parts.push(&sql[start..open + i]);
                    break;
                }
            }
            ',' if depth == 1 => {
                parts.push(&sql[start..open + i]);
                start = open + i + 1;
            }
            _ => {}
        }
    }
    parts
        .iter()
        .map(|p| {
            let at = p.find("/* opclass ")? + "/* opclass ".len();
            let end = p[at..].find("*/")? + at;
            Some(p[at..end].trim().to_string())
        })
        .collect()
}

/// An index SQLite has, by the catalog's OID (16384 + its sqlite_schema rowid).
fn sqlite_index(conn: &Connection, oid: i64) -> rusqlite::Result<Option<Index>> {
    let Some((name, table, sql)) = conn
        .query_row(
            "SELECT name, tbl_name, sql FROM sqlite_schema WHERE type = 'index' AND rowid = ?1",
            [oid - 16384],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            },
        )
        .optional()?
    else {
        return Ok(None);
    };
    let unique: bool = conn
        .query_row(
            "SELECT \"unique\" FROM pragma_index_list(?1) WHERE name = ?2",
            [&table, &name],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(false);
    let mut st = conn.prepare(
        "SELECT name, \"desc\" FROM pragma_index_xinfo(?1) WHERE key = 1 ORDER BY seqno",
    )?;
    let columns = st
        .query_map([&name], |r| {
            let col: Option<String> = r.get(0)?;
            let desc: bool = r.get(1)?;
            let col = col.map_or_else(|| "expression".to_string(), |c| quote_ident(&c));
            Ok(if desc { format!("{col} DESC") } else { col })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Some(Index {
        name,
        table,
        unique,
        columns,
        opclasses: sql.as_deref().map(opclasses).unwrap_or_default(),
    }))
}

/// The index behind a primary key or UNIQUE constraint, by its OID.
fn constraint_index(conn: &Connection, oid: i64) -> rusqlite::Result<Option<Index>> {
    let Some((name, conrelid, conkey)) = conn
        .query_row(
            "SELECT conname, conrelid, conkey FROM temp._sy_constraints WHERE conindid = ?1 AND contype IN ('p', 'u')",
            [oid],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )
        .optional()?
    else {
        return Ok(None);
    };
    let table: String = conn.query_row(
        "SELECT name FROM sqlite_schema WHERE rowid = ?1",
        [conrelid - 16384],
        |r| r.get(0),
    )?;
    let attnums: Vec<i64> = serde_json::from_str(&conkey).unwrap_or_default();
    let mut st = conn.prepare("SELECT name FROM pragma_table_info(?1) WHERE cid = ?2")?;
    let mut columns = Vec::new();
    for n in attnums {
        let col: String = st.query_row(rusqlite::params![table, n - 1], |r| r.get(0))?;
        columns.push(quote_ident(&col));
    }
    Ok(Some(Index {
        name,
        table,
        unique: true,
        columns,
        opclasses: Vec::new(),
    }))
}

fn definition(conn: &Connection, oid: i64, column: i64) -> rusqlite::Result<Option<String>> {
    let index = match constraint_index(conn, oid)? {
        Some(i) => Some(i),
        None => sqlite_index(conn, oid)?,
    };
    let Some(i) = index else { return Ok(None) };
    if column > 0 {
        return Ok(i.columns.get(column as usize - 1).cloned());
    }
    Ok(Some(format!(
        "CREATE {}INDEX {} ON public.{} USING btree ({})",
        if i.unique { "UNIQUE " } else { "" },
        quote_ident(&i.name),
        quote_ident(&i.table),
        i.columns
            .iter()
            .enumerate()
            .map(|(n, c)| match i.opclasses.get(n).cloned().flatten() {
                // PostgreSQL prints the class between the column and DESC.
                Some(op) => match c.strip_suffix(" DESC") {
                    Some(col) => format!("{col} {op} DESC"),
                    None => format!("{c} {op}"),
                },
                None => c.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// Registers `pg_get_indexdef`.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let flags = rusqlite::functions::FunctionFlags::SQLITE_UTF8;
    conn.create_scalar_function("pg_get_indexdef", -1, flags, |ctx| {
        let Some(oid) = ctx.get::<Option<i64>>(0)? else {
            return Ok(None);
        };
        let column = if ctx.len() > 1 {
            ctx.get::<Option<i64>>(1)?.unwrap_or(0)
        } else {
            0
        };
        // SAFETY: the handle is this function's own connection, used on its thread for
        // lookups while the calling statement runs.
        let conn = unsafe { ctx.get_connection()? };
        definition(&conn, oid, column)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn operator_classes_are_read_from_their_marks() {
        let sql = "CREATE INDEX \"u_like\" ON \"u\" (username /* opclass varchar_pattern_ops */, lower(b), c /* opclass text_pattern_ops */ DESC)";
        assert_eq!(
            super::opclasses(sql),
            vec![
                Some("varchar_pattern_ops".into()),
                None,
                Some("text_pattern_ops".into())
            ]
        );
        assert!(super::opclasses("CREATE INDEX x ON t (a)")[0].is_none());
    }
}
