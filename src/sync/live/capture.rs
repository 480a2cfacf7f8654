//! Change capture by triggers: every INSERT, UPDATE and DELETE on a captured table appends
//! (table, primary key, operation) to a changelog on the same database — from every client,
//! not only the proxy's. On PostgreSQL the changelog is `switchyard.changelog` and writes
//! made by switchyard's own apply (marked with `SET LOCAL switchyard.applying = 'on'`) are
//! not captured; on SQLite it is `_switchyard_changelog`, and the apply removes its own
//! entries inside its write transaction (SQLite has one writer, so that is exact).

use rusqlite::Connection;
use tokio_postgres::Client;

use crate::sync::schema::{Table, derived_name, lit, q};
use crate::sync::{SyncError, pg_error};

/// The PostgreSQL changelog and the TRUNCATE trigger function (idempotent); row triggers
/// get a function per table ([`pg_row_function`]).
pub const PG_SETUP: &str = r#"
CREATE SCHEMA IF NOT EXISTS switchyard;
CREATE TABLE IF NOT EXISTS switchyard.changelog (
  id bigserial PRIMARY KEY,
  tbl text NOT NULL,
  pk jsonb NOT NULL,
  op "char" NOT NULL,
  at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE OR REPLACE FUNCTION switchyard.capture() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF current_setting('switchyard.applying', true) = 'on' THEN RETURN NULL; END IF;
  INSERT INTO switchyard.changelog (tbl, pk, op) VALUES (TG_TABLE_NAME, '[]', 'T');
  RETURN NULL;
END
$fn$;
"#;

/// The SQLite changelog (idempotent).
pub const SQLITE_SETUP: &str = "CREATE TABLE IF NOT EXISTS _switchyard_changelog (\
    id INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, pk TEXT NOT NULL, op TEXT NOT NULL, \
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')))";

/// Refuses tables that cannot be captured.
pub fn check_capturable(tables: &[Table]) -> Result<(), SyncError> {
    let without: Vec<&str> = tables
        .iter()
        .filter(|t| t.pk.is_empty())
        .map(|t| t.name.as_str())
        .collect();
    if without.is_empty() {
        Ok(())
    } else {
        Err(SyncError::Refused(format!(
            "live sync needs a primary key on every table; these have none: {} (add one, or sync them with --tables excluded)",
            without.join(", ")
        )))
    }
}

fn trigger_name(table: &str) -> String {
    q(&derived_name("switchyard_capture_", table))
}

fn truncate_trigger_name(table: &str) -> String {
    q(&derived_name("switchyard_truncate_", table))
}

/// The table's capture function: one per table, so its name must not be cut into
/// another table's (see [`derived_name`]).
fn function_name(table: &str) -> String {
    format!("switchyard.{}", q(&derived_name("capture_", table)))
}

/// A row trigger function for one table, with its key columns referenced directly (much
/// cheaper per row than a generic function converting the whole row to JSON).
fn pg_row_function(t: &Table) -> String {
    let key = |row: &str| {
        let cols: Vec<String> = t.pk.iter().map(|k| format!("{row}.{}", q(k))).collect();
        (
            format!("jsonb_build_array({})", cols.join(", ")),
            format!("ROW({})", cols.join(", ")),
        )
    };
    let ((new, new_row), (old, old_row)) = (key("NEW"), key("OLD"));
    let log = |k: &str, op: &str| {
        format!(
            "INSERT INTO switchyard.changelog (tbl, pk, op) VALUES ({}, {k}, '{op}');",
            lit(&t.name)
        )
    };
    format!(
        "CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF current_setting('switchyard.applying', true) = 'on' THEN RETURN NULL; END IF;
  IF TG_OP = 'INSERT' THEN {ins}
  ELSIF TG_OP = 'UPDATE' THEN {upd}
    IF {old_row} IS DISTINCT FROM {new_row} THEN {moved} END IF;
  ELSE {del}
  END IF;
  RETURN NULL;
END
$fn$",
        name = function_name(&t.name),
        ins = log(&new, "I"),
        upd = log(&new, "U"),
        moved = log(&old, "D"),
        del = log(&old, "D"),
    )
}

/// Installs capture on PostgreSQL tables (replacing earlier triggers of ours).
pub async fn install_pg(c: &Client, tables: &[Table]) -> Result<(), SyncError> {
    check_capturable(tables)?;
    let err = |e: tokio_postgres::Error| {
        SyncError::Source(format!("installing capture: {}", pg_error(&e)))
    };
    c.batch_execute(PG_SETUP).await.map_err(err)?;
    for t in tables {
        c.batch_execute(&pg_row_function(t)).await.map_err(err)?;
        let name = trigger_name(&t.name);
        let trunc = truncate_trigger_name(&t.name);
        let sql = format!(
            "DROP TRIGGER IF EXISTS {name} ON public.{tbl}; \
             CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE ON public.{tbl} FOR EACH ROW EXECUTE FUNCTION {func}(); \
             DROP TRIGGER IF EXISTS {trunc} ON public.{tbl}; \
             CREATE TRIGGER {trunc} AFTER TRUNCATE ON public.{tbl} FOR EACH STATEMENT EXECUTE FUNCTION switchyard.capture()",
            tbl = q(&t.name),
            func = function_name(&t.name),
        );
        c.batch_execute(&sql).await.map_err(err)?;
    }
    Ok(())
}

/// Removes our triggers, function and changelog from a PostgreSQL database.
pub async fn remove_pg(c: &Client, tables: &[Table]) -> Result<(), SyncError> {
    let err =
        |e: tokio_postgres::Error| SyncError::Source(format!("removing capture: {}", pg_error(&e)));
    for t in tables {
        let sql = format!(
            "DROP TRIGGER IF EXISTS {} ON public.{tbl}; DROP TRIGGER IF EXISTS {} ON public.{tbl}; DROP FUNCTION IF EXISTS {}() CASCADE",
            trigger_name(&t.name),
            truncate_trigger_name(&t.name),
            function_name(&t.name),
            tbl = q(&t.name)
        );
        c.batch_execute(&sql).await.map_err(err)?;
        // Before names were derived, a long table's function had the server's cut name.
        let legacy = format!("switchyard.{}", q(&format!("capture_{}", t.name)));
        if legacy != function_name(&t.name) {
            c.batch_execute(&format!("DROP FUNCTION IF EXISTS {legacy}() CASCADE"))
                .await
                .map_err(err)?;
        }
    }
    c.batch_execute("DROP FUNCTION IF EXISTS switchyard.capture() CASCADE; DROP TABLE IF EXISTS switchyard.changelog").await.map_err(err)
}

fn sqlite_key(row: &str, t: &Table) -> String {
    let cols: Vec<String> = t.pk.iter().map(|k| format!("{row}.{}", q(k))).collect();
    format!("json_array({})", cols.join(", "))
}

/// Installs capture on SQLite tables.
pub fn install_sqlite(c: &Connection, tables: &[Table]) -> Result<(), SyncError> {
    check_capturable(tables)?;
    let err = |e: rusqlite::Error| SyncError::Source(format!("installing capture: {e}"));
    c.execute_batch(SQLITE_SETUP).map_err(err)?;
    for t in tables {
        let (tbl, name) = (q(&t.name), lit(&t.name));
        let (new, old) = (sqlite_key("NEW", t), sqlite_key("OLD", t));
        let sql = format!(
            "DROP TRIGGER IF EXISTS {ins}; DROP TRIGGER IF EXISTS {upd}; DROP TRIGGER IF EXISTS {del};
             CREATE TRIGGER {ins} AFTER INSERT ON {tbl} BEGIN INSERT INTO _switchyard_changelog (tbl, pk, op) VALUES ({name}, {new}, 'I'); END;
             CREATE TRIGGER {upd} AFTER UPDATE ON {tbl} BEGIN
               INSERT INTO _switchyard_changelog (tbl, pk, op) VALUES ({name}, {new}, 'U');
               INSERT INTO _switchyard_changelog (tbl, pk, op) SELECT {name}, {old}, 'D' WHERE {old} IS NOT {new};
             END;
             CREATE TRIGGER {del} AFTER DELETE ON {tbl} BEGIN INSERT INTO _switchyard_changelog (tbl, pk, op) VALUES ({name}, {old}, 'D'); END;",
            ins = q(&format!("_switchyard_ins_{}", t.name)),
            upd = q(&format!("_switchyard_upd_{}", t.name)),
            del = q(&format!("_switchyard_del_{}", t.name)),
        );
        c.execute_batch(&sql).map_err(err)?;
    }
    Ok(())
}

/// Removes our triggers and changelog from a SQLite database.
pub fn remove_sqlite(c: &Connection, tables: &[Table]) -> Result<(), SyncError> {
    let err = |e: rusqlite::Error| SyncError::Source(format!("removing capture: {e}"));
    for t in tables {
        for kind in ["ins", "upd", "del"] {
            c.execute_batch(&format!(
                "DROP TRIGGER IF EXISTS {}",
                q(&format!("_switchyard_{kind}_{}", t.name))
            ))
            .map_err(err)?;
        }
    }
    c.execute_batch("DROP TABLE IF EXISTS _switchyard_changelog")
        .map_err(err)
}
