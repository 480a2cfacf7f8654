//! The fleet's shared state in its store database (`fleet.store`): one row per fleet
//! (`switchyard.fleet`: epoch, route, the switch in progress and its phase) and one per
//! member (`switchyard.fleet_members`: lease, the epoch it serves, its acknowledgement of
//! the last switch). Every statement is a plain `simple_query` in its own transaction, so
//! the store may sit behind a transaction pooler; time is the database's clock, so
//! members' clocks need not agree.
//!
//! The phase changes of a switch are conditional updates (`WHERE switch_id = … AND phase =
//! 'prepare'`), so of a coordinator's commit and a member's abort exactly one wins.

use std::time::Duration;

use tokio_postgres::SimpleQueryRow;

use super::conn::{Conn, Failure};

use crate::backend::url::PgTarget;
use crate::sync::schema::lit;

/// What can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("fleet store {addr}: {detail}")]
    Unreachable { addr: String, detail: String },
    #[error("fleet store {addr}: {detail}")]
    Query { addr: String, detail: String },
}

const SETUP: &str = "CREATE SCHEMA IF NOT EXISTS switchyard;
CREATE TABLE IF NOT EXISTS switchyard.fleet (
  name text PRIMARY KEY,
  epoch bigint NOT NULL,
  active text NOT NULL,
  previous text,
  switch_id bigint NOT NULL DEFAULT 0,
  kind text, source text, target text,
  phase text NOT NULL DEFAULT 'idle',
  coordinator text,
  expected text NOT NULL DEFAULT '',
  began_at timestamptz, deadline timestamptz, ended_at timestamptz,
  outcome text);
CREATE TABLE IF NOT EXISTS switchyard.fleet_members (
  fleet text NOT NULL, member text NOT NULL,
  admin text NOT NULL DEFAULT '', pid integer NOT NULL DEFAULT 0,
  joined_at timestamptz NOT NULL DEFAULT now(),
  heartbeat timestamptz NOT NULL DEFAULT now(),
  lease_until timestamptz NOT NULL,
  epoch bigint NOT NULL, active text NOT NULL,
  ack_switch bigint NOT NULL DEFAULT 0, ack_at timestamptz, ack_error text,
  done_switch bigint NOT NULL DEFAULT 0, done_at timestamptz,
  PRIMARY KEY (fleet, member));
ALTER TABLE switchyard.fleet ADD COLUMN IF NOT EXISTS sync_leader text;
ALTER TABLE switchyard.fleet ADD COLUMN IF NOT EXISTS sync_until timestamptz;
ALTER TABLE switchyard.fleet_members ADD COLUMN IF NOT EXISTS live_sync text;
CREATE TABLE IF NOT EXISTS switchyard.fleet_requests (
  id bigserial PRIMARY KEY, fleet text NOT NULL, kind text NOT NULL, target text,
  wait_ms bigint, requested_by text NOT NULL, requested_at timestamptz NOT NULL DEFAULT now(),
  taken_by text, status integer, answer text, answered_at timestamptz)";

/// The phase of the fleet's last (or current) switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Idle,
    Prepare,
    Committed,
    Aborted,
}

impl Phase {
    fn parse(s: &str) -> Phase {
        match s {
            "prepare" => Phase::Prepare,
            "committed" => Phase::Committed,
            "aborted" => Phase::Aborted,
            _ => Phase::Idle,
        }
    }
}

/// The fleet's row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FleetRow {
    pub epoch: u64,
    pub active: String,
    pub previous: Option<String>,
    pub switch_id: u64,
    pub kind: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    pub phase: Phase,
    pub coordinator: Option<String>,
    /// Members asked to acknowledge the switch.
    pub expected: Vec<String>,
    /// Milliseconds until the switch's deadline (negative: past it).
    pub deadline_in_ms: Option<f64>,
    pub outcome: Option<String>,
    /// The member that runs the fleet's live sync, while its lease holds.
    pub sync_leader: Option<String>,
    /// The fleet has a live sync (its leader's lease may have run out).
    pub sync_named: bool,
    /// Switches asked of members that wait for the sync leader to take them.
    pub requests: u64,
}

/// One member as the store knows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberRow {
    pub member: String,
    pub admin: String,
    pub pid: u32,
    /// Its lease has not run out.
    pub alive: bool,
    pub heartbeat_age_s: f64,
    pub epoch: u64,
    pub active: String,
    pub ack_switch: u64,
    /// Milliseconds from the switch's start to this member's acknowledgement.
    pub ack_ms: Option<f64>,
    pub ack_error: Option<String>,
    pub done_switch: u64,
    /// Milliseconds from the switch's start to this member serving again.
    pub done_ms: Option<f64>,
    /// The live sync this member runs: direction, phase and lag.
    pub live_sync: Option<String>,
}

/// A member's own facts, written with its heartbeat.
#[derive(Debug, Clone)]
pub struct Me {
    pub member: String,
    pub admin: String,
    pub lease: Duration,
}

/// The fleet's store.
pub struct Store {
    conn: Conn,
    pub fleet: String,
}

fn interval(d: Duration) -> String {
    format!("interval '{} milliseconds'", d.as_millis())
}

fn text(r: &SimpleQueryRow, i: usize) -> Option<String> {
    r.get(i).map(str::to_string)
}

fn num<T: std::str::FromStr>(r: &SimpleQueryRow, i: usize) -> Option<T> {
    r.get(i).and_then(|s| s.parse().ok())
}

impl Store {
    pub fn new(target: PgTarget, fleet: &str) -> Store {
        Store {
            conn: Conn::new(target),
            fleet: fleet.to_string(),
        }
    }

    /// Where the store is, for messages.
    pub fn addr(&self) -> String {
        self.conn.addr()
    }

    /// Runs `sql` on the store.
    pub async fn run(&self, sql: &str) -> Result<Vec<SimpleQueryRow>, StoreError> {
        self.conn.run(sql).await.map_err(|f| match f {
            Failure::Unreachable(detail) => StoreError::Unreachable {
                addr: self.addr(),
                detail,
            },
            Failure::Refused(detail) => StoreError::Query {
                addr: self.addr(),
                detail,
            },
        })
    }

    /// Creates the tables (idempotent; members starting together may race, so a
    /// duplicate-object error is taken as done).
    pub async fn setup(&self) -> Result<(), StoreError> {
        match self.run(SETUP).await {
            Err(StoreError::Query { detail, .. })
                if detail.contains("23505") || detail.contains("42P07") =>
            {
                self.run(SETUP).await.map(|_| ())
            }
            r => r.map(|_| ()),
        }
    }

    /// Joins (or rejoins) the fleet: the fleet's row is created with this member's route
    /// when there is none; the member's row gets a fresh lease. Returns the fleet's row.
    pub async fn join(&self, me: &Me, epoch: u64, active: &str) -> Result<FleetRow, StoreError> {
        let f = lit(&self.fleet);
        let sql = format!(
            "INSERT INTO switchyard.fleet (name, epoch, active) VALUES ({f}, {epoch}, {a}) ON CONFLICT DO NOTHING;
             INSERT INTO switchyard.fleet_members (fleet, member, admin, pid, lease_until, epoch, active)
               VALUES ({f}, {m}, {adm}, {pid}, now() + {lease}, {epoch}, {a})
               ON CONFLICT (fleet, member) DO UPDATE SET admin = EXCLUDED.admin, pid = EXCLUDED.pid,
                 joined_at = now(), heartbeat = now(), lease_until = EXCLUDED.lease_until,
                 epoch = EXCLUDED.epoch, active = EXCLUDED.active",
            a = lit(active),
            m = lit(&me.member),
            adm = lit(&me.admin),
            pid = std::process::id(),
            lease = interval(me.lease),
        );
        self.run(&sql).await?;
        self.fleet_row().await
    }

    /// Renews this member's lease and says what it serves (and the live sync it runs);
    /// rejoins if its row is gone.
    pub async fn heartbeat(
        &self,
        me: &Me,
        epoch: u64,
        active: &str,
        live_sync: Option<&str>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE switchyard.fleet_members SET heartbeat = now(), lease_until = now() + {lease}, epoch = {epoch}, active = {a},
                live_sync = {ls}
             WHERE fleet = {f} AND member = {m} RETURNING 1",
            ls = live_sync.map(lit).unwrap_or_else(|| "NULL".into()),
            lease = interval(me.lease),
            a = lit(active),
            f = lit(&self.fleet),
            m = lit(&me.member),
        );
        if self.run(&sql).await?.is_empty() {
            self.join(me, epoch, active).await?;
        }
        Ok(())
    }

    /// Leaves the fleet (a clean shutdown): the others stop waiting for this member.
    pub async fn leave(&self, member: &str) -> Result<(), StoreError> {
        let sql = format!(
            "DELETE FROM switchyard.fleet_members WHERE fleet = {} AND member = {}",
            lit(&self.fleet),
            lit(member)
        );
        self.run(&sql).await.map(|_| ())
    }

    /// The fleet's row.
    pub async fn fleet_row(&self) -> Result<FleetRow, StoreError> {
        let sql = format!(
            "SELECT epoch, active, previous, switch_id, kind, source, target, phase, coordinator, expected,
                    extract(epoch FROM deadline - clock_timestamp()) * 1000, outcome,
                    CASE WHEN sync_until > now() THEN sync_leader END, sync_leader IS NOT NULL,
                    (SELECT count(*) FROM switchyard.fleet_requests q WHERE q.fleet = f.name
                       AND q.taken_by IS NULL AND q.requested_at > now() - interval '{ttl} seconds')
             FROM switchyard.fleet f WHERE name = {}",
            lit(&self.fleet),
            ttl = super::requests::REQUEST_TTL_SECS,
        );
        let rows = self.run(&sql).await?;
        let r = rows.first().ok_or_else(|| StoreError::Query {
            addr: self.addr(),
            detail: format!("fleet {:?} has no row (removed by hand?)", self.fleet),
        })?;
        Ok(FleetRow {
            epoch: num(r, 0).unwrap_or(0),
            active: text(r, 1).unwrap_or_default(),
            previous: text(r, 2),
            switch_id: num(r, 3).unwrap_or(0),
            kind: text(r, 4),
            source: text(r, 5),
            target: text(r, 6),
            phase: Phase::parse(r.get(7).unwrap_or("")),
            coordinator: text(r, 8),
            expected: r
                .get(9)
                .unwrap_or("")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            deadline_in_ms: num(r, 10),
            outcome: text(r, 11),
            sync_leader: text(r, 12),
            sync_named: r.get(13) == Some("t"),
            requests: num(r, 14).unwrap_or(0),
        })
    }

    /// Every member the store knows, by name.
    pub async fn members(&self) -> Result<Vec<MemberRow>, StoreError> {
        let sql = format!(
            "SELECT m.member, m.admin, m.pid, m.lease_until > now(), extract(epoch FROM now() - m.heartbeat),
                    m.epoch, m.active, m.ack_switch,
                    CASE WHEN m.ack_switch = f.switch_id THEN extract(epoch FROM m.ack_at - f.began_at) * 1000 END,
                    CASE WHEN m.ack_switch = f.switch_id THEN m.ack_error END,
                    m.done_switch,
                    CASE WHEN m.done_switch = f.switch_id THEN extract(epoch FROM m.done_at - f.began_at) * 1000 END,
                    m.live_sync
             FROM switchyard.fleet_members m JOIN switchyard.fleet f ON f.name = m.fleet
             WHERE m.fleet = {} ORDER BY m.member",
            lit(&self.fleet)
        );
        Ok(self
            .run(&sql)
            .await?
            .iter()
            .map(|r| MemberRow {
                member: text(r, 0).unwrap_or_default(),
                admin: text(r, 1).unwrap_or_default(),
                pid: num(r, 2).unwrap_or(0),
                alive: r.get(3) == Some("t"),
                heartbeat_age_s: num(r, 4).unwrap_or(f64::MAX),
                epoch: num(r, 5).unwrap_or(0),
                active: text(r, 6).unwrap_or_default(),
                ack_switch: num(r, 7).unwrap_or(0),
                ack_ms: num(r, 8),
                ack_error: text(r, 9),
                done_switch: num(r, 10).unwrap_or(0),
                done_ms: num(r, 11),
                live_sync: text(r, 12),
            })
            .collect())
    }

    /// Starts a switch from `source` to `target` if none is in progress (one whose
    /// deadline passed more than `stale` ago counts as over) and the fleet is on `source`.
    /// Every member with a live lease is expected to acknowledge. `None`: refused (the
    /// fleet's row says why).
    pub async fn begin(
        &self,
        coordinator: &str,
        kind: &str,
        source: &str,
        target: &str,
        bound: Duration,
        stale: Duration,
    ) -> Result<Option<FleetRow>, StoreError> {
        let f = lit(&self.fleet);
        let sql = format!(
            "UPDATE switchyard.fleet SET switch_id = switch_id + 1, phase = 'prepare', kind = {k},
                source = {s}, target = {t}, coordinator = {c}, began_at = clock_timestamp(),
                deadline = clock_timestamp() + {bound}, ended_at = NULL, outcome = NULL,
                expected = coalesce((SELECT string_agg(member, ',' ORDER BY member) FROM switchyard.fleet_members
                                     WHERE fleet = {f} AND lease_until > now()), '')
             WHERE name = {f} AND active = {s}
               AND (phase <> 'prepare' OR deadline < clock_timestamp() - {stale})
             RETURNING switch_id",
            k = lit(kind),
            s = lit(source),
            t = lit(target),
            c = lit(coordinator),
            bound = interval(bound),
            stale = interval(stale),
        );
        if self.run(&sql).await?.is_empty() {
            return Ok(None);
        }
        self.fleet_row().await.map(Some)
    }

    /// A member's answer to switch `id`: drained and paused (`error` None), or why not.
    pub async fn ack(&self, member: &str, id: u64, error: Option<&str>) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE switchyard.fleet_members SET ack_switch = {id}, ack_at = clock_timestamp(), ack_error = {e}
             WHERE fleet = {f} AND member = {m}",
            e = error.map(lit).unwrap_or_else(|| "NULL".into()),
            f = lit(&self.fleet),
            m = lit(member),
        );
        self.run(&sql).await.map(|_| ())
    }

    /// A member serves again after switch `id` (on whichever side it ended).
    pub async fn done(
        &self,
        member: &str,
        id: u64,
        epoch: u64,
        active: &str,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE switchyard.fleet_members SET done_switch = {id}, done_at = clock_timestamp(), epoch = {epoch}, active = {a}
             WHERE fleet = {f} AND member = {m}",
            a = lit(active),
            f = lit(&self.fleet),
            m = lit(member),
        );
        self.run(&sql).await.map(|_| ())
    }

    /// Commits switch `id`: the fleet's route becomes its target and the epoch goes up.
    /// Returns the new epoch, or `None` when the switch is no longer in prepare (a
    /// member aborted it).
    pub async fn commit(&self, id: u64) -> Result<Option<u64>, StoreError> {
        let sql = format!(
            "UPDATE switchyard.fleet SET phase = 'committed', epoch = epoch + 1, previous = active,
                active = target, ended_at = clock_timestamp(), outcome = 'committed'
             WHERE name = {} AND switch_id = {id} AND phase = 'prepare' RETURNING epoch",
            lit(&self.fleet)
        );
        Ok(self.run(&sql).await?.first().and_then(|r| num(r, 0)))
    }

    /// Aborts switch `id` if it is still in prepare; true when this call aborted it.
    pub async fn abort(&self, id: u64, why: &str) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE switchyard.fleet SET phase = 'aborted', ended_at = clock_timestamp(), outcome = {}
             WHERE name = {} AND switch_id = {id} AND phase = 'prepare' RETURNING 1",
            lit(why),
            lit(&self.fleet)
        );
        Ok(!self.run(&sql).await?.is_empty())
    }
}
