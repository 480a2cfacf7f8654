//! `switchyard sync --dry-run`: per table, its row count, what the run would do, the
//! warnings, every column whose type changes on the way (and why), and the DDL. Into an
//! existing table: each column's target type, and everything the real run would refuse
//! (missing columns, values that do not fit), each named with an example key.

use super::plan::{Action, Opened, source_count};
use crate::backend::url::BackendUrl;
use crate::sync::SyncError;
use crate::sync::schema::{self, Table};
use crate::sync::source::sqlite as sqlite_read;

/// Prints the plan; returns an error (after printing everything) when the real run
/// would refuse: `problems` with the existing target tables, or source values that do
/// not fit the target's types.
pub async fn print_plan(
    opened: &Opened,
    actions: &[Action],
    problems: &[String],
) -> Result<(), SyncError> {
    println!(
        "sync plan from {} ({} tables, dry run: nothing is written)",
        opened.id,
        opened.tables.len()
    );
    let mut refused = problems.len();
    for (t, a) in opened.tables.iter().zip(actions) {
        let rows = source_count(&opened.source, &t.name).await?;
        let what = match a {
            Action::Create => "create and copy".to_string(),
            Action::ReuseEmpty => {
                "copy into the existing empty table, as its columns are".to_string()
            }
            Action::Resume(p) => format!("resume after {} rows", p.rows),
            Action::Done => "already copied".to_string(),
        };
        println!("\n-- {}: {rows} rows, {what}", t.name);
        for w in &t.warnings {
            println!("-- warning: {w}");
        }
        let existing = *a != Action::Create;
        for c in &t.columns {
            if existing {
                if let Some(why) = &c.why {
                    println!(
                        "-- column: {}.{} {} -> {} ({why})",
                        t.name, c.name, c.source_type, c.pg_type
                    );
                } else if !c.source_type.eq_ignore_ascii_case(&c.pg_type) {
                    println!(
                        "-- column: {}.{} {} -> {} (the target's type)",
                        t.name, c.name, c.source_type, c.pg_type
                    );
                }
            } else if let Some(why) = c
                .why
                .as_deref()
                .or_else(|| type_change(&c.source_type, &c.pg_type))
            {
                println!(
                    "-- type: {}.{} {} -> {}: {why}",
                    t.name, c.name, c.source_type, c.pg_type
                );
            }
        }
        for p in problems
            .iter()
            .filter(|p| p.starts_with(&format!("{}.", t.name)))
        {
            println!("-- REFUSED: {p}");
        }
        if existing && let BackendUrl::Sqlite(path) = &opened.source {
            refused += print_misfits(path, t).await?;
        }
        if *a == Action::Create {
            println!("{};", schema::create_table(t));
        }
        for s in schema::create_indexes(t)
            .into_iter()
            .chain(schema::add_foreign_keys(t))
        {
            println!("{s};");
        }
    }
    if refused > 0 {
        return Err(SyncError::Refused(format!(
            "{refused} problem(s) above (-- REFUSED); the real run would stop on them before writing a row"
        )));
    }
    Ok(())
}

/// Reads every row of a SQLite table as the copy would, into the target's types, and
/// prints per column the first value that does not fit (with its key) and how many do
/// not. Returns the number of columns with such values.
async fn print_misfits(path: &std::path::Path, t: &Table) -> Result<usize, SyncError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let (p, table) = (path.to_path_buf(), t.clone());
    let reader = tokio::task::spawn_blocking(move || {
        sqlite_read::read_rows(&p, &table, None, 20_000, true, tx)
    });
    let mut per_column: Vec<(String, sqlite_read::Reject, u64)> = Vec::new();
    while let Some(batch) = rx.recv().await {
        for r in batch?.rejects {
            match per_column.iter_mut().find(|(c, _, _)| *c == r.column) {
                Some((_, _, n)) => *n += 1,
                None => per_column.push((r.column.clone(), r, 1)),
            }
        }
    }
    reader
        .await
        .map_err(|e| SyncError::Source(format!("reading {}: {e}", t.name)))?;
    for (column, first, n) in &per_column {
        let types = t
            .columns
            .iter()
            .find(|c| c.name == *column)
            .map(|c| format!(" ({} -> {})", c.source_type, c.pg_type))
            .unwrap_or_default();
        println!(
            "-- REFUSED: {}.{column}{types}: {} row(s) do not fit, first at key {}: {} (fix them in the source, change the target column, or pass --skip-bad-rows FILE to copy the others)",
            t.name, n, first.key, first.reason
        );
    }
    Ok(per_column.len())
}

/// Why a SQLite declared type becomes the PostgreSQL type it does (None: the same type,
/// or a synonym of it).
pub fn type_change(declared: &str, pg_type: &str) -> Option<&'static str> {
    let d = declared.trim().to_ascii_lowercase();
    let base = d.split('(').next().unwrap_or("").trim();
    let same = d == pg_type
        || matches!(
            (base, pg_type.split('(').next().unwrap_or("")),
            ("decimal", "numeric")
                | ("bool", "boolean")
                | ("int8", "bigint")
                | ("character varying", "varchar")
        );
    if same {
        return None;
    }
    Some(match pg_type.split('(').next().unwrap_or("") {
        "bigint" => {
            "SQLite stores every integer in 64 bits, so a 32-bit integer could not hold every value it may hold"
        }
        "jsonb" => {
            "PostgreSQL's binary JSON: indexable and compared by value (key order and spacing are not kept, as with every ORM's JSON column on PostgreSQL)"
        }
        "timestamp" => {
            "SQLite's DATETIME has no time zone: values are copied as written, without one"
        }
        "double precision" => "SQLite's REAL is an 8-byte float",
        "bytea" => "PostgreSQL's type for bytes",
        "varchar" => {
            "a length SQLite never enforced; PostgreSQL will (longer values are refused by the copy, naming the row)"
        }
        "text" if base.is_empty() => "no declared type: values are copied as their text",
        "text" if base.contains("char") => "no length declared, so none to enforce",
        "text" => "no PostgreSQL type of that name: values are copied as their text",
        "smallint" => "PostgreSQL's 2-byte integer",
        _ => "the PostgreSQL type of that name",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_change_says_why_and_synonyms_are_not_changes() {
        assert!(
            type_change("INTEGER", "bigint")
                .unwrap()
                .contains("64 bits")
        );
        assert!(
            type_change("JSON", "jsonb")
                .unwrap()
                .contains("binary JSON")
        );
        assert!(
            type_change("DATETIME", "timestamp")
                .unwrap()
                .contains("time zone")
        );
        assert_eq!(type_change("DECIMAL(10,2)", "numeric(10,2)"), None);
        assert_eq!(type_change("text", "text"), None);
        assert_eq!(type_change("BOOLEAN", "boolean"), None);
        assert_eq!(type_change("bigint", "bigint"), None);
        assert!(
            type_change("", "text")
                .unwrap()
                .contains("no declared type")
        );
    }
}
