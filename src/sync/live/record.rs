//! The durable state of a live sync, kept in both databases beside their changelogs, so a
//! restarted proxy (or another process) finds it and carries on: which two databases, the
//! direction changes flow in, the phase, the switch epoch of the last direction change,
//! and which process applies (owner and heartbeat).
//!
//! Each database also gets an identity of its own (a random id stored in it), so the two
//! sides are recognised by what they are, not by the URL a config uses to reach them.
//!
//! The owner is also a fence: every apply round updates the record on the side it writes
//! to, inside its own transaction, `WHERE owner = me`. A process that took over the sync
//! changes the owner there first, so a process that lost it cannot commit another round.

use rusqlite::OptionalExtension;
use serde::Serialize;
use tokio_postgres::Client;

use super::side::{Side, blocking, open_sqlite, pgerr, rows_of, sqlerr};
use crate::sync::SyncError;
use crate::sync::choices::ColumnChoices;
use crate::sync::schema::lit;

/// Where a live sync is, as stored (the `Phase` of a running sync, minus the in-memory
/// ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredPhase {
    /// Capture installed on the source, tables being copied.
    Backfilling,
    /// Copy done, capture on both sides, changes applied continuously.
    Streaming,
    /// Stopped by the operator (`ctl sync-stop`); capture may still be installed.
    Stopped,
}

impl StoredPhase {
    fn as_str(self) -> &'static str {
        match self {
            StoredPhase::Backfilling => "backfilling",
            StoredPhase::Streaming => "streaming",
            StoredPhase::Stopped => "stopped",
        }
    }

    fn parse(s: &str) -> StoredPhase {
        match s {
            "backfilling" => StoredPhase::Backfilling,
            "streaming" => StoredPhase::Streaming,
            _ => StoredPhase::Stopped,
        }
    }

    /// A sync in this phase should be running.
    pub fn active(self) -> bool {
        self != StoredPhase::Stopped
    }
}

/// One live sync's durable state (the same row on both sides).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// Backend names when the sync started (for messages; sides are matched by id).
    pub from_name: String,
    pub to_name: String,
    /// Database identities of the side the sync started from and the other one.
    pub from_db: String,
    pub to_db: String,
    /// True while changes flow from `from` to `to`.
    pub forward: bool,
    pub phase: StoredPhase,
    /// The copy finished once (capture has been on both sides since): starting again
    /// needs no copy.
    pub copied: bool,
    /// The switch epoch of the last change of direction (0: never switched).
    pub epoch: u64,
    /// The process that applies changes.
    pub owner: String,
    /// Seconds since the owner last wrote the record, by the database's clock.
    #[serde(skip)]
    pub heartbeat_age: f64,
    /// The columns left out and typed by the user when the sync started.
    pub choices: ColumnChoices,
}

const PG_SETUP: &str = "CREATE SCHEMA IF NOT EXISTS switchyard;
CREATE TABLE IF NOT EXISTS switchyard.db_identity (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  id text NOT NULL);
CREATE TABLE IF NOT EXISTS switchyard.live_sync (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  from_name text NOT NULL, to_name text NOT NULL, from_db text NOT NULL, to_db text NOT NULL,
  forward boolean NOT NULL, phase text NOT NULL, copied boolean NOT NULL, epoch bigint NOT NULL, owner text NOT NULL,
  heartbeat timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
ALTER TABLE switchyard.live_sync ADD COLUMN IF NOT EXISTS choices text NOT NULL DEFAULT '{}';
CREATE TABLE IF NOT EXISTS switchyard.touched (
  tbl text PRIMARY KEY, at timestamptz NOT NULL, changes bigint NOT NULL)";

const SQLITE_SETUP: &str = "CREATE TABLE IF NOT EXISTS _switchyard_identity (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1), id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS _switchyard_live_sync (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  from_name TEXT NOT NULL, to_name TEXT NOT NULL, from_db TEXT NOT NULL, to_db TEXT NOT NULL,
  forward INTEGER NOT NULL, phase TEXT NOT NULL, copied INTEGER NOT NULL, epoch INTEGER NOT NULL, owner TEXT NOT NULL,
  heartbeat REAL NOT NULL DEFAULT (julianday('now')), updated_at REAL NOT NULL DEFAULT (julianday('now')),
  choices TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS _switchyard_touched (
  tbl TEXT PRIMARY KEY, at TEXT NOT NULL, changes INTEGER NOT NULL)";

fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The side's identity, created on first use.
pub async fn identity(side: &Side) -> Result<String, SyncError> {
    match side {
        Side::Postgres(c) => {
            c.batch_execute(PG_SETUP).await.map_err(pgerr)?;
            let sql = format!(
                "INSERT INTO switchyard.db_identity (id) VALUES ({}) ON CONFLICT DO NOTHING; \
                 SELECT id FROM switchyard.db_identity",
                lit(&new_id())
            );
            first_text(c, &sql).await?.ok_or_else(|| {
                SyncError::Target("switchyard.db_identity is empty after insert".into())
            })
        }
        Side::Sqlite(path) => {
            let path = path.clone();
            blocking(move || {
                let c = open_sqlite(&path)?;
                c.execute_batch(SQLITE_SETUP).map_err(sqlerr)?;
                if !sqlite_has_choices(&c)? {
                    // A record table made before choices were kept.
                    c.execute_batch(
                        "ALTER TABLE _switchyard_live_sync ADD COLUMN choices TEXT NOT NULL DEFAULT '{}'",
                    )
                    .map_err(sqlerr)?;
                }
                c.execute(
                    "INSERT OR IGNORE INTO _switchyard_identity (singleton, id) VALUES (1, ?1)",
                    [new_id()],
                )
                .map_err(sqlerr)?;
                c.query_row("SELECT id FROM _switchyard_identity", [], |r| r.get(0))
                    .map_err(sqlerr)
            })
            .await
        }
    }
}

fn sqlite_has_choices(c: &rusqlite::Connection) -> Result<bool, SyncError> {
    c.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info('_switchyard_live_sync') WHERE name = 'choices'",
        [],
        |r| r.get(0),
    )
    .map_err(sqlerr)
}

pub(super) async fn first_text(c: &Client, sql: &str) -> Result<Option<String>, SyncError> {
    Ok(rows_of(c.simple_query(sql).await.map_err(pgerr)?)
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next().flatten()))
}

/// What a database holds: its identity and a live sync record, when it has them. Reads
/// only; nothing is created.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub identity: Option<String>,
    pub record: Option<Record>,
    /// A changelog exists (capture was installed at some point).
    pub changelog: bool,
    /// Entries in the changelog.
    pub pending: u64,
}

const PG_FIND: &str = "SELECT (SELECT id FROM switchyard.db_identity), \
    l.from_name, l.to_name, l.from_db, l.to_db, l.forward::text, l.phase, l.epoch::text, l.owner, \
    extract(epoch FROM now() - l.heartbeat)::text, l.copied::text, to_jsonb(l) ->> 'choices' \
    FROM (SELECT 1) one LEFT JOIN switchyard.live_sync l ON true";

/// Reads what `side` holds.
pub async fn find(side: &Side) -> Result<Found, SyncError> {
    match side {
        Side::Postgres(c) => find_pg(c).await,
        Side::Sqlite(path) => {
            let path = path.clone();
            blocking(move || find_sqlite(&open_sqlite(&path)?)).await
        }
    }
}

async fn find_pg(c: &Client) -> Result<Found, SyncError> {
    let tables = rows_of(
        c.simple_query(
            "SELECT (to_regclass('switchyard.live_sync') IS NOT NULL)::text, \
             (to_regclass('switchyard.changelog') IS NOT NULL)::text",
        )
        .await
        .map_err(pgerr)?,
    );
    let flag = |i: usize| tables.first().and_then(|r| r[i].as_deref()) == Some("true");
    let mut found = Found {
        changelog: flag(1),
        ..Found::default()
    };
    if found.changelog {
        found.pending = first_text(c, "SELECT count(*)::text FROM switchyard.changelog")
            .await?
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
    }
    if !flag(0) {
        return Ok(found);
    }
    let row = rows_of(c.simple_query(PG_FIND).await.map_err(pgerr)?)
        .into_iter()
        .next()
        .unwrap_or_default();
    let get = |i: usize| row.get(i).cloned().flatten();
    found.identity = get(0);
    if let (Some(from_name), Some(to_name), Some(from_db), Some(to_db)) =
        (get(1), get(2), get(3), get(4))
    {
        found.record = Some(Record {
            from_name,
            to_name,
            from_db,
            to_db,
            forward: get(5).as_deref() == Some("true"),
            phase: StoredPhase::parse(&get(6).unwrap_or_default()),
            epoch: get(7).and_then(|e| e.parse().ok()).unwrap_or(0),
            owner: get(8).unwrap_or_default(),
            heartbeat_age: get(9).and_then(|a| a.parse().ok()).unwrap_or(f64::MAX),
            copied: get(10).as_deref() == Some("true"),
            choices: ColumnChoices::from_json(&get(11).unwrap_or_default()),
        });
    }
    Ok(found)
}

pub(super) fn sqlite_has(c: &rusqlite::Connection, table: &str) -> Result<bool, SyncError> {
    c.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get(0),
    )
    .map_err(sqlerr)
}

fn find_sqlite(c: &rusqlite::Connection) -> Result<Found, SyncError> {
    let mut found = Found {
        changelog: sqlite_has(c, "_switchyard_changelog")?,
        ..Found::default()
    };
    if found.changelog {
        found.pending = c
            .query_row("SELECT count(*) FROM _switchyard_changelog", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(sqlerr)? as u64;
    }
    if sqlite_has(c, "_switchyard_identity")? {
        found.identity = c
            .query_row("SELECT id FROM _switchyard_identity", [], |r| r.get(0))
            .optional()
            .map_err(sqlerr)?;
    }
    if sqlite_has(c, "_switchyard_live_sync")? {
        let choices = if sqlite_has_choices(c)? {
            "choices"
        } else {
            "'{}'"
        };
        found.record = c
            .query_row(
                &format!(
                    "SELECT from_name, to_name, from_db, to_db, forward, phase, epoch, owner, \
                     (julianday('now') - heartbeat) * 86400.0, copied, {choices} FROM _switchyard_live_sync"
                ),
                [],
                |r| {
                    Ok(Record {
                        from_name: r.get(0)?,
                        to_name: r.get(1)?,
                        from_db: r.get(2)?,
                        to_db: r.get(3)?,
                        forward: r.get::<_, i64>(4)? != 0,
                        phase: StoredPhase::parse(&r.get::<_, String>(5)?),
                        epoch: r.get::<_, i64>(6)? as u64,
                        owner: r.get(7)?,
                        heartbeat_age: r.get(8)?,
                        copied: r.get::<_, i64>(9)? != 0,
                        choices: ColumnChoices::from_json(&r.get::<_, String>(10)?),
                    })
                },
            )
            .optional()
            .map_err(sqlerr)?;
    }
    Ok(found)
}

/// Writes `rec` on `side`, replacing what was there (the tables are made by
/// [`identity`], which a sync asks each side first). With `expect_owner`, only if the
/// stored owner is that one (or there is no record): false when another owner holds it.
pub async fn store(
    side: &Side,
    rec: &Record,
    expect_owner: Option<&str>,
) -> Result<bool, SyncError> {
    match side {
        Side::Postgres(c) => {
            let guard = expect_owner
                .map(|o| format!(" WHERE l.owner = {}", lit(o)))
                .unwrap_or_default();
            let sql = format!(
                "INSERT INTO switchyard.live_sync AS l (from_name, to_name, from_db, to_db, forward, phase, copied, epoch, owner, choices) \
                 VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}) ON CONFLICT (singleton) DO UPDATE SET \
                 from_name = EXCLUDED.from_name, to_name = EXCLUDED.to_name, from_db = EXCLUDED.from_db, \
                 to_db = EXCLUDED.to_db, forward = EXCLUDED.forward, phase = EXCLUDED.phase, copied = EXCLUDED.copied, \
                 epoch = EXCLUDED.epoch, owner = EXCLUDED.owner, choices = EXCLUDED.choices, \
                 heartbeat = now(), updated_at = now(){guard}",
                lit(&rec.from_name),
                lit(&rec.to_name),
                lit(&rec.from_db),
                lit(&rec.to_db),
                rec.forward,
                lit(rec.phase.as_str()),
                rec.copied,
                rec.epoch,
                lit(&rec.owner),
                lit(&rec.choices.to_json()),
            );
            Ok(affected(&c.simple_query(&sql).await.map_err(pgerr)?) > 0)
        }
        Side::Sqlite(path) => {
            let (path, rec, expect) = (path.clone(), rec.clone(), expect_owner.map(str::to_string));
            blocking(move || {
                let c = open_sqlite(&path)?;
                let guard = if expect.is_some() {
                    " WHERE _switchyard_live_sync.owner = ?11"
                } else {
                    ""
                };
                let sql = format!(
                    "INSERT INTO _switchyard_live_sync (singleton, from_name, to_name, from_db, to_db, forward, phase, epoch, owner, copied, choices) \
                     VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (singleton) DO UPDATE SET \
                     from_name = excluded.from_name, to_name = excluded.to_name, from_db = excluded.from_db, \
                     to_db = excluded.to_db, forward = excluded.forward, phase = excluded.phase, \
                     epoch = excluded.epoch, owner = excluded.owner, copied = excluded.copied, choices = excluded.choices, \
                     heartbeat = julianday('now'), updated_at = julianday('now'){guard}"
                );
                let mut params: Vec<rusqlite::types::Value> = vec![
                    rec.from_name.into(),
                    rec.to_name.into(),
                    rec.from_db.into(),
                    rec.to_db.into(),
                    (rec.forward as i64).into(),
                    rec.phase.as_str().to_string().into(),
                    (rec.epoch as i64).into(),
                    rec.owner.into(),
                    (rec.copied as i64).into(),
                    rec.choices.to_json().into(),
                ];
                if let Some(o) = expect {
                    params.push(o.into());
                }
                let n = c
                    .execute(&sql, rusqlite::params_from_iter(params))
                    .map_err(sqlerr)?;
                Ok(n > 0)
            })
            .await
        }
    }
}

/// Rows a simple query's last command affected.
pub(super) fn affected(msgs: &[tokio_postgres::SimpleQueryMessage]) -> u64 {
    msgs.iter()
        .rev()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .unwrap_or(0)
}

/// The fence run inside an apply round's PostgreSQL transaction: touches the record only
/// if `owner` still holds it. The round must not commit when it affects no row.
pub fn pg_fence_sql(owner: &str) -> String {
    format!(
        "UPDATE switchyard.live_sync SET heartbeat = now() WHERE owner = {}",
        lit(owner)
    )
}

/// [`pg_fence_sql`] for a SQLite target, run inside its write transaction.
pub fn sqlite_fence(tx: &rusqlite::Connection, owner: &str) -> Result<bool, SyncError> {
    let n = tx
        .execute(
            "UPDATE _switchyard_live_sync SET heartbeat = julianday('now') WHERE owner = ?1",
            [owner],
        )
        .map_err(sqlerr)?;
    Ok(n > 0)
}

/// The error when the fence finds another owner.
pub fn fenced(owner: &str) -> SyncError {
    SyncError::Fenced(owner.to_string())
}

/// Removes the record, the touched-tables log and the identity from a side
/// (`sync --finish`).
pub async fn remove(side: &Side) -> Result<(), SyncError> {
    match side {
        Side::Postgres(c) => c
            .batch_execute(
                "DROP TABLE IF EXISTS switchyard.live_sync, switchyard.touched, switchyard.db_identity",
            )
            .await
            .map_err(pgerr),
        Side::Sqlite(path) => {
            let path = path.clone();
            blocking(move || {
                open_sqlite(&path)?
                    .execute_batch(
                        "DROP TABLE IF EXISTS _switchyard_live_sync; DROP TABLE IF EXISTS _switchyard_touched; \
                         DROP TABLE IF EXISTS _switchyard_identity",
                    )
                    .map_err(sqlerr)
            })
            .await
        }
    }
}

/// A name for this process as an owner: the instance (stable across restarts when the
/// proxy has a state file), the host and the pid.
pub fn owner_name(instance: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!("{instance}/{host}/{}", std::process::id())
}

/// The instance part of an owner name.
pub fn owner_instance(owner: &str) -> &str {
    owner.split('/').next().unwrap_or(owner)
}
