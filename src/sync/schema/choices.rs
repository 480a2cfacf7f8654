//! The PostgreSQL types switchyard chooses beyond what a SQLite declared type says, when it
//! makes the schema itself: date-times become `timestamp with time zone` where the app
//! would have made them so (a Django database: Django's PostgreSQL backend makes every
//! `DateTimeField` one) or where the values say so (a UTC offset in any of them); a text
//! column held to JSON by a `CHECK (JSON_VALID(…))` (Django's `JSONField`) becomes `jsonb`;
//! the user states any column's type with `--type TABLE.COLUMN=TYPE`. Each choice is kept
//! with its reason, which the dry run prints. Naive date-times become the UTC instant.

use rusqlite::Connection;

use super::{Table, q};
use crate::sync::SyncError;

pub const TIMESTAMPTZ: &str = "timestamp with time zone";

/// Makes the SQLite date-time columns of `tables` `timestamp with time zone` where the app
/// or the data calls for it.
pub fn refine_timestamps(conn: &Connection, tables: &mut [Table]) -> Result<(), SyncError> {
    let django = tables.iter().any(|t| t.name == "django_migrations");
    for t in tables.iter_mut() {
        for c in t.columns.iter_mut().filter(|c| c.pg_type == "timestamp") {
            if django {
                c.pg_type = TIMESTAMPTZ.into();
                c.why = Some(
                    "a Django database (it has django_migrations), and Django's PostgreSQL backend makes every DateTimeField a timestamp with time zone; naive values are taken as UTC".into(),
                );
            } else if let Some(v) = offset_example(conn, &t.name, &c.name)? {
                c.pg_type = TIMESTAMPTZ.into();
                c.why = Some(format!(
                    "its values carry a UTC offset (e.g. {v:?}), kept as the instant each names; naive values are taken as UTC"
                ));
            }
        }
    }
    Ok(())
}

/// Makes text columns that a `CHECK (JSON_VALID(column))` holds to JSON `jsonb`: that is
/// how Django declares a `JSONField` on SQLite, and its PostgreSQL backend writes and reads
/// `jsonb` there.
pub fn refine_json(conn: &Connection, tables: &mut [Table]) -> Result<(), SyncError> {
    for t in tables.iter_mut() {
        let sql: String = conn
            .query_row(
                "SELECT coalesce(sql, '') FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [&t.name],
                |r| r.get(0),
            )
            .map_err(|e| SyncError::Source(format!("{}: {e}", t.name)))?;
        let sql = sql.to_ascii_lowercase().replace(' ', "");
        for c in t.columns.iter_mut().filter(|c| c.pg_type == "text") {
            let name = c.name.to_ascii_lowercase();
            let checked = [
                format!("json_valid(\"{name}\")"),
                format!("json_valid({name})"),
            ]
            .iter()
            .any(|f| sql.contains(f.as_str()));
            if checked {
                c.pg_type = "jsonb".into();
                c.why = Some(
                    "a CHECK (JSON_VALID(…)) holds it to JSON (Django's JSONField on SQLite), and jsonb is what the app's PostgreSQL backend writes and reads".into(),
                );
            }
        }
    }
    Ok(())
}

/// A value of `table.column` written with a UTC offset (`…+02:00`, `…-0500`, `…Z`), if any.
fn offset_example(
    conn: &Connection,
    table: &str,
    column: &str,
) -> Result<Option<String>, SyncError> {
    let col = q(column);
    let sql = format!(
        "SELECT {col} FROM {} WHERE typeof({col}) = 'text' AND ({col} GLOB '*:[0-9][0-9]*[+-][0-9][0-9]:[0-9][0-9]' \
         OR {col} GLOB '*:[0-9][0-9]*[+-][0-9][0-9][0-9][0-9]' OR {col} GLOB '*:[0-9][0-9]*[+-][0-9][0-9]' \
         OR {col} GLOB '*:[0-9][0-9]*Z') LIMIT 1",
        q(table)
    );
    match conn.query_row(&sql, [], |r| r.get::<_, String>(0)) {
        Ok(v) => Ok(Some(v)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(SyncError::Source(format!("{table}.{column}: {e}"))),
    }
}

/// Applies the user's `TABLE.COLUMN=TYPE` choices. Returns those naming no source column
/// or written otherwise.
pub fn apply_types(tables: &mut [Table], types: &[String]) -> Vec<String> {
    let mut bad = Vec::new();
    for spec in types {
        let parsed = spec
            .split_once('=')
            .and_then(|(col, ty)| Some((col.split_once('.')?, ty.trim())))
            .filter(|(_, ty)| !ty.is_empty());
        let Some(((table, column), ty)) = parsed else {
            bad.push(spec.clone());
            continue;
        };
        let found = tables
            .iter_mut()
            .find(|t| t.name == table)
            .and_then(|t| t.columns.iter_mut().find(|c| c.name == column));
        match found {
            Some(c) => {
                c.pg_type = canonical_type(ty);
                c.why = Some("set by --type or [sync.types]".into());
            }
            None => bad.push(spec.clone()),
        }
    }
    bad
}

/// A PostgreSQL type as `format_type` spells it, which the copy writes by: `timestamptz`
/// is `timestamp with time zone`, `int4` is `integer`, and so on.
fn canonical_type(ty: &str) -> String {
    let l = ty.trim().to_ascii_lowercase();
    let (base, args) = match l.find('(') {
        Some(i) => (l[..i].trim(), &l[i..]),
        None => (l.as_str(), ""),
    };
    let base = match base {
        "timestamptz" => TIMESTAMPTZ,
        "int" | "int4" => "integer",
        "int8" => "bigint",
        "int2" => "smallint",
        "float8" => "double precision",
        "float4" => "real",
        "bool" => "boolean",
        "decimal" => "numeric",
        "varchar" => "character varying",
        other => other,
    };
    format!("{base}{args}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables(conn: &Connection) -> Vec<Table> {
        super::super::sqlite::read_schema(conn).unwrap()
    }

    #[test]
    fn offsets_in_the_values_or_a_django_database_make_timestamptz() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE a (id INTEGER PRIMARY KEY, naive DATETIME, aware DATETIME, day DATE);
             INSERT INTO a VALUES (1, '2024-05-06 07:08:09', '2024-05-06 07:08:09', '2024-05-06'),
                                  (2, '2024-05-06 10:00:00.5', '2024-05-06 09:08:09+02:00', '2024-05-07');",
        )
        .unwrap();
        let mut t = tables(&c);
        refine_timestamps(&c, &mut t).unwrap();
        let ty = |n: &str| {
            t[0].columns
                .iter()
                .find(|c| c.name == n)
                .unwrap()
                .pg_type
                .clone()
        };
        assert_eq!(ty("naive"), "timestamp");
        assert_eq!(ty("aware"), TIMESTAMPTZ);
        assert_eq!(ty("day"), "date");
        c.execute_batch(
            "CREATE TABLE django_migrations (id INTEGER PRIMARY KEY, applied DATETIME)",
        )
        .unwrap();
        let mut t = tables(&c);
        refine_timestamps(&c, &mut t).unwrap();
        assert!(
            t.iter()
                .flat_map(|t| &t.columns)
                .all(|c| c.pg_type != "timestamp")
        );
        assert!(t[0].columns[1].why.as_deref().unwrap().contains("Django"));
    }

    #[test]
    fn a_json_valid_check_makes_jsonb() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE o (id INTEGER PRIMARY KEY, data text NOT NULL CHECK ((JSON_VALID(\"data\") OR \"data\" IS NULL)), note text)",
        )
        .unwrap();
        let mut t = tables(&c);
        refine_json(&c, &mut t).unwrap();
        assert_eq!(t[0].columns[1].pg_type, "jsonb");
        assert_eq!(t[0].columns[2].pg_type, "text");
    }

    #[test]
    fn the_user_states_a_column_s_type() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE a (id INTEGER PRIMARY KEY, at DATETIME)")
            .unwrap();
        let mut t = tables(&c);
        let bad = apply_types(
            &mut t,
            &["a.at=TIMESTAMPTZ".into(), "a.nope=text".into(), "x".into()],
        );
        assert_eq!(bad, ["a.nope=text", "x"]);
        assert_eq!(t[0].columns[1].pg_type, TIMESTAMPTZ);
        assert_eq!(canonical_type("VARCHAR(20)"), "character varying(20)");
        assert_eq!(canonical_type("int"), "integer");
        assert_eq!(
            t[0].columns[1].why.as_deref(),
            Some("set by --type or [sync.types]")
        );
    }
}
