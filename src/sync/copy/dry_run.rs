//! `switchyard sync --dry-run`: per table, its row count, what the run would do, the
//! warnings, every column whose type changes on the way (and why), and the DDL.

use super::plan::{Action, Opened, source_count};
use crate::sync::SyncError;
use crate::sync::schema;

pub async fn print_plan(opened: &Opened, actions: &[Action]) -> Result<(), SyncError> {
    println!(
        "sync plan from {} ({} tables, dry run: nothing is written)",
        opened.id,
        opened.tables.len()
    );
    for (t, a) in opened.tables.iter().zip(actions) {
        let rows = source_count(&opened.source, &t.name).await?;
        let what = match a {
            Action::Create => "create and copy".to_string(),
            Action::ReuseEmpty => "copy into the existing empty table".to_string(),
            Action::Resume(p) => format!("resume after {} rows", p.rows),
            Action::Done => "already copied".to_string(),
        };
        println!("\n-- {}: {rows} rows, {what}", t.name);
        for w in &t.warnings {
            println!("-- warning: {w}");
        }
        for c in &t.columns {
            if let Some(why) = type_change(&c.source_type, &c.pg_type) {
                println!(
                    "-- type: {}.{} {} -> {}: {why}",
                    t.name, c.name, c.source_type, c.pg_type
                );
            }
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
    Ok(())
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
