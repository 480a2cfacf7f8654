//! The fence: after a fleet switch, the database the fleet left refuses writes from every
//! session that is not part of the switch — stale members, direct connections, cron jobs.
//!
//! Every table in `public` gets a statement-level trigger (`switchyard_fence`) that, in
//! the writer's own transaction, takes a shared advisory lock and reads
//! `switchyard.fenced_at` — a sequence, so its value is seen at once by every snapshot,
//! even a repeatable-read one that began before the fence. Non-zero means fenced (the
//! fleet epoch at which it was), and the statement fails with SQLSTATE 25006
//! (`read_only_sql_transaction`) and a message that names the fence and the epoch.
//! Fencing takes the same advisory lock exclusively, so it waits for writers in flight to
//! finish and nothing commits on the old side after it. Reads are not refused. switchyard's
//! own sync passes (its apply marks itself with `switchyard.applying = on`, its copy
//! connects as `application_name = switchyard-sync`): it keeps the old side in step so a
//! rollback loses nothing.
//!
//! Triggers are installed on both sides before a switch pauses anyone; a table created
//! after a switch gets its trigger at the next one.

use std::time::Duration;

use super::conn::{Conn, Failure};

use crate::backend::url::PgTarget;

/// The advisory lock key writers share and the fence takes alone ("SYFENCE").
const LOCK_KEY: i64 = 0x0053_5946_454E_4345;

fn setup_sql() -> String {
    format!(
        "CREATE SCHEMA IF NOT EXISTS switchyard;
CREATE SEQUENCE IF NOT EXISTS switchyard.fenced_at MINVALUE 0 START 0;
CREATE SEQUENCE IF NOT EXISTS switchyard.fence_refusals MINVALUE 0 START 1;
CREATE OR REPLACE FUNCTION switchyard.fence_check() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE e bigint;
BEGIN
  IF current_setting('switchyard.applying', true) = 'on'
     OR current_setting('application_name') = 'switchyard-sync' THEN RETURN NULL; END IF;
  PERFORM pg_advisory_xact_lock_shared({LOCK_KEY});
  SELECT last_value INTO e FROM switchyard.fenced_at;
  IF e > 0 THEN
    PERFORM nextval('switchyard.fence_refusals');
    RAISE EXCEPTION 'switchyard fence: database \"%\" was fenced at fleet epoch %; writes go to the fleet''s active database now', current_database(), e
      USING ERRCODE = '25006',
            HINT = 'Retry the transaction: through switchyard it goes to the active database. A client connected directly must connect to the active one (switchyard ctl fleet shows it).';
  END IF;
  RETURN NULL;
END
$fn$"
    )
}

/// Tables in `public` without the fence trigger.
const MISSING: &str = "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
   AND NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND g.tgname = 'switchyard_fence')";

#[derive(Debug, thiserror::Error)]
#[error("fence on {addr}: {detail}")]
pub struct FenceError {
    pub addr: String,
    pub detail: String,
}

/// One data database, for its fence.
pub struct FenceSide {
    pub backend: String,
    conn: Conn,
}

/// A side's fence as its database holds it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FenceState {
    /// The fleet epoch it was fenced at (`None`: not fenced).
    pub fenced_at: Option<u64>,
    /// Writes the fence has refused there, ever.
    pub refused: u64,
}

impl FenceSide {
    pub fn new(backend: &str, target: PgTarget) -> FenceSide {
        FenceSide {
            backend: backend.to_string(),
            conn: Conn::new(target),
        }
    }

    async fn run(&self, sql: &str) -> Result<Option<String>, FenceError> {
        let rows = self.conn.run(sql).await.map_err(|f| FenceError {
            addr: format!("backend {:?}", self.backend),
            detail: match f {
                Failure::Unreachable(d) | Failure::Refused(d) => d,
            },
        })?;
        Ok(rows.first().and_then(|r| r.get(0)).map(str::to_string))
    }

    /// Installs the fence function, its sequence and the tables' triggers (idempotent).
    /// Each trigger is made in a transaction of its own, holding one table's lock at a
    /// time, so writers busy on several tables cannot deadlock with it.
    pub async fn install(&self) -> Result<(), FenceError> {
        self.run(&setup_sql()).await?;
        let missing = self.conn.run(MISSING).await.unwrap_or_default();
        for r in missing {
            let table = crate::sync::schema::q(r.get(0).unwrap_or_default());
            let sql = format!(
                "BEGIN; SET LOCAL lock_timeout = '2s'; CREATE TRIGGER switchyard_fence BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.{table} FOR EACH STATEMENT EXECUTE FUNCTION switchyard.fence_check(); COMMIT"
            );
            match self.run(&sql).await {
                // Made meanwhile by another member's switch.
                Err(e) if e.detail.contains("42710") => {}
                r => {
                    r?;
                }
            }
        }
        Ok(())
    }

    /// The epoch this database was fenced at (`None`: not fenced).
    pub async fn fenced_at(&self) -> Result<Option<u64>, FenceError> {
        let v = self
            .run("SELECT last_value FROM switchyard.fenced_at")
            .await?;
        Ok(v.and_then(|v| v.parse().ok()).filter(|e| *e > 0))
    }

    /// The fence and its refusals (`None`: no fence installed here yet).
    pub async fn state(&self) -> Result<Option<FenceState>, FenceError> {
        let v = self
            .run(
                "SELECT CASE WHEN to_regclass('switchyard.fence_refusals') IS NOT NULL THEN
                   (SELECT last_value FROM switchyard.fenced_at) || ' ' || (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM switchyard.fence_refusals) END",
            )
            .await?;
        Ok(v.map(|v| {
            let mut it = v.split(' ').map(|n| n.parse::<u64>().unwrap_or(0));
            let (at, refused) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
            FenceState {
                fenced_at: (at > 0).then_some(at),
                refused,
            }
        }))
    }

    /// Fences at `epoch`: waits (up to `wait`) for writers in flight, then refuses every
    /// later write. `epoch` 0 lifts the fence.
    pub async fn set(&self, epoch: u64, wait: Duration) -> Result<(), FenceError> {
        let ms = wait.as_millis().max(1);
        let sql = format!(
            "BEGIN; SET LOCAL lock_timeout = '{ms}ms'; SELECT pg_advisory_xact_lock({LOCK_KEY});
             SELECT setval('switchyard.fenced_at', {epoch}); COMMIT"
        );
        self.run(&sql).await.map(|_| ())
    }
}
