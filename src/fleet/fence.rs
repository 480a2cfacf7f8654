//! The fence: after a fleet switch, the database the fleet left refuses writes from every
//! session that is not part of the switch — stale members, direct connections, cron jobs.
//!
//! The fenced side's tables in `public` carry a statement-level trigger
//! (`switchyard_fence`) that, in the writer's own transaction, takes the transaction's id
//! and then reads `switchyard.fenced_at` — a sequence, so its value is seen at once by
//! every snapshot, even a repeatable-read one that began before the fence. Non-zero means
//! fenced (the fleet epoch at which it was), and the statement fails with SQLSTATE 25006
//! (`read_only_sql_transaction`) and a message that names the fence and the epoch.
//! Fencing sets the sequence and then waits until every transaction that held an id at
//! that moment has ended, so nothing commits on the old side after the fence: a writer
//! that read the sequence before it was set already had its id (and is waited for), one
//! that takes its id later reads the fence. Reads are not refused. switchyard's own sync
//! passes (its apply marks itself with `switchyard.applying = on`, its copy connects as
//! `application_name = switchyard-sync`): it keeps the old side in step so a rollback
//! loses nothing.
//!
//! The triggers cost each write statement a function call (about 13% of pgbench TPC-B's
//! throughput measured on the database directly), so the side the fleet serves does not
//! keep them: they are made on both sides before a switch pauses anyone (one table at a
//! time, each waiting at most 50 ms for its lock, so writers are never queued for long),
//! and taken off the new active side once the switch is over.

use std::time::Duration;

use super::conn::{Conn, Failure};

use crate::backend::url::PgTarget;

/// How long making or dropping one table's trigger may wait for its lock (writers queue
/// behind it meanwhile), and how often it is tried.
const LOCK_WAIT: &str = "50ms";
const LOCK_TRIES: usize = 20;

/// How often the fence looks whether the transactions it waits for have ended.
const WAIT_POLL: Duration = Duration::from_millis(2);

const SETUP: &str = "CREATE SCHEMA IF NOT EXISTS switchyard;
CREATE SEQUENCE IF NOT EXISTS switchyard.fenced_at MINVALUE 0 START 0;
CREATE SEQUENCE IF NOT EXISTS switchyard.fence_refusals MINVALUE 0 START 1;
CREATE OR REPLACE FUNCTION switchyard.fence_check() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE e bigint;
BEGIN
  IF current_setting('switchyard.applying', true) = 'on'
     OR current_setting('application_name') = 'switchyard-sync' THEN RETURN NULL; END IF;
  PERFORM txid_current();
  SELECT last_value INTO e FROM switchyard.fenced_at;
  IF e > 0 THEN
    PERFORM nextval('switchyard.fence_refusals');
    RAISE EXCEPTION 'switchyard fence: database \"%\" was fenced at fleet epoch %; writes go to the fleet''s active database now', current_database(), e
      USING ERRCODE = '25006',
            HINT = 'Retry the transaction: through switchyard it goes to the active database. A client connected directly must connect to the active one (switchyard ctl fleet shows it).';
  END IF;
  RETURN NULL;
END
$fn$";

/// Tables in `public` with (`EXISTS`) or without (`NOT EXISTS`) the fence trigger.
fn tables(with: bool) -> String {
    format!(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
           AND {} EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND g.tgname = 'switchyard_fence')",
        if with { "" } else { "NOT" }
    )
}

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
        self.run(SETUP).await?;
        let ddl = "CREATE TRIGGER switchyard_fence BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.{} FOR EACH STATEMENT EXECUTE FUNCTION switchyard.fence_check()";
        // 42710: made meanwhile by another member's switch.
        self.each_table(false, ddl, "42710", LOCK_TRIES).await
    }

    /// Takes the triggers off (the side the fleet serves now): its writers stop paying
    /// for the check. A table whose lock cannot be had keeps its trigger (it only costs).
    pub async fn remove(&self) -> Result<(), FenceError> {
        let ddl = "DROP TRIGGER IF EXISTS switchyard_fence ON public.{}";
        self.each_table(true, ddl, "", 3).await
    }

    /// Runs `ddl` (`{}` the table) on each table with or without the trigger, one table
    /// per transaction, waiting briefly for each lock and trying again.
    async fn each_table(
        &self,
        with: bool,
        ddl: &str,
        ignore: &str,
        tries: usize,
    ) -> Result<(), FenceError> {
        let list = self.conn.run(&tables(with)).await.unwrap_or_default();
        for r in list {
            let table = crate::sync::schema::q(r.get(0).unwrap_or_default());
            let sql = format!(
                "BEGIN; SET LOCAL lock_timeout = '{LOCK_WAIT}'; {}; COMMIT",
                ddl.replace("{}", &table)
            );
            for attempt in 1..=tries {
                match self.run(&sql).await {
                    Ok(_) => break,
                    Err(e) if !ignore.is_empty() && e.detail.contains(ignore) => break,
                    Err(e) if e.detail.contains("55P03") && attempt < tries => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) if e.detail.contains("55P03") => {
                        let who = self.writers(None).await;
                        return Err(FenceError {
                            detail: format!(
                                "the fence's trigger on table {table} could not take the table's lock in {tries} tries: transactions hold it; nobody was paused, retry when they are done. Open: {who}"
                            ),
                            ..e
                        });
                    }
                    Err(e) => {
                        return Err(FenceError {
                            detail: format!("table {table}: {}", e.detail),
                            ..e
                        });
                    }
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

    /// Fences at `epoch`, then waits (up to `wait`) until every transaction that had
    /// taken an id by then has ended; past `wait` the error names them. `epoch` 0 lifts
    /// the fence.
    pub async fn set(&self, epoch: u64, wait: Duration) -> Result<(), FenceError> {
        let sql = format!(
            "SELECT setval('switchyard.fenced_at', {epoch}); SELECT txid_snapshot_xmax(txid_current_snapshot())"
        );
        let xmax = self.run(&sql).await?.unwrap_or_default();
        if epoch == 0 {
            return Ok(());
        }
        let done = format!("SELECT txid_snapshot_xmin(txid_current_snapshot()) >= {xmax}");
        let until = std::time::Instant::now() + wait;
        loop {
            if self.run(&done).await?.as_deref() == Some("t") {
                return Ok(());
            }
            if std::time::Instant::now() >= until {
                return Err(self.blocked(&xmax, wait).await);
            }
            tokio::time::sleep(WAIT_POLL).await;
        }
    }

    /// Open transactions that have written (older than `xmax`, when given), by pid,
    /// state, age and query.
    async fn writers(&self, xmax: Option<&str>) -> String {
        let older = xmax
            .map(|x| format!(" AND backend_xid::text::bigint < {x}"))
            .unwrap_or_default();
        let sql = format!(
            "SELECT string_agg(format('pid %s (%s for %s s): %s', pid, state,
                 round(extract(epoch FROM now() - xact_start)), left(query, 80)), '; ')
             FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid(){older}"
        );
        self.run(&sql).await.ok().flatten().unwrap_or_default()
    }

    /// The transactions a fence waited for in vain.
    async fn blocked(&self, xmax: &str, wait: Duration) -> FenceError {
        let who = self.writers(Some(xmax)).await;
        FenceError {
            addr: format!("backend {:?}", self.backend),
            detail: format!(
                "transactions that write there were still open after {} ms, so the fence could not be made final; nothing was switched. Open: {who}",
                wait.as_millis()
            ),
        }
    }
}
