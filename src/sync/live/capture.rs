//! Change capture by triggers: every INSERT, UPDATE and DELETE on a captured table appends
//! (table, primary key, operation) to a changelog on the same database — from every client,
//! not only the proxy's. On PostgreSQL the changelog is `switchyard.changelog` and writes
//! made by switchyard's own apply (marked with `SET LOCAL switchyard.applying = 'on'`) are
//! not captured; on SQLite it is `_switchyard_changelog`, and the apply removes its own
//! entries inside its write transaction (SQLite has one writer, so that is exact).

use rusqlite::Connection;
use tokio_postgres::Client;

use crate::sync::schema::{Table, lit, q};
use crate::sync::{SyncError, pg_error};

/// The PostgreSQL changelog and trigger function (idempotent).
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
DECLARE
  newk jsonb := '[]';
  oldk jsonb := '[]';
  i int;
BEGIN
  IF coalesce(current_setting('switchyard.applying', true), '') = 'on' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'TRUNCATE' THEN
    INSERT INTO switchyard.changelog (tbl, pk, op) VALUES (TG_TABLE_NAME, '[]', 'T');
    RETURN NULL;
  END IF;
  FOR i IN 0 .. TG_NARGS - 1 LOOP
    IF TG_OP <> 'DELETE' THEN newk := newk || jsonb_build_array(to_jsonb(NEW) -> TG_ARGV[i]); END IF;
    IF TG_OP <> 'INSERT' THEN oldk := oldk || jsonb_build_array(to_jsonb(OLD) -> TG_ARGV[i]); END IF;
  END LOOP;
  IF TG_OP = 'DELETE' THEN
    INSERT INTO switchyard.changelog (tbl, pk, op) VALUES (TG_TABLE_NAME, oldk, 'D');
  ELSE
    INSERT INTO switchyard.changelog (tbl, pk, op) VALUES (TG_TABLE_NAME, newk, left(TG_OP, 1));
    IF TG_OP = 'UPDATE' AND oldk <> newk THEN
      INSERT INTO switchyard.changelog (tbl, pk, op) VALUES (TG_TABLE_NAME, oldk, 'D');
    END IF;
  END IF;
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
    q(&format!("switchyard_capture_{table}"))
}

/// Installs capture on PostgreSQL tables (replacing earlier triggers of ours).
pub async fn install_pg(c: &Client, tables: &[Table]) -> Result<(), SyncError> {
    check_capturable(tables)?;
    let err = |e: tokio_postgres::Error| {
        SyncError::Source(format!("installing capture: {}", pg_error(&e)))
    };
    c.batch_execute(PG_SETUP).await.map_err(err)?;
    for t in tables {
        let args = t.pk.iter().map(|k| lit(k)).collect::<Vec<_>>().join(", ");
        let name = trigger_name(&t.name);
        let trunc = q(&format!("switchyard_truncate_{}", t.name));
        let sql = format!(
            "DROP TRIGGER IF EXISTS {name} ON public.{tbl}; \
             CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE ON public.{tbl} FOR EACH ROW EXECUTE FUNCTION switchyard.capture({args}); \
             DROP TRIGGER IF EXISTS {trunc} ON public.{tbl}; \
             CREATE TRIGGER {trunc} AFTER TRUNCATE ON public.{tbl} FOR EACH STATEMENT EXECUTE FUNCTION switchyard.capture()",
            tbl = q(&t.name)
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
            "DROP TRIGGER IF EXISTS {} ON public.{tbl}; DROP TRIGGER IF EXISTS {} ON public.{tbl}",
            trigger_name(&t.name),
            q(&format!("switchyard_truncate_{}", t.name)),
            tbl = q(&t.name)
        );
        c.batch_execute(&sql).await.map_err(err)?;
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
