//! Switches asked of a member that does not run the fleet's live sync: the data step of a
//! switch (the changelog's tail, sequences, the sync's direction) belongs to the member
//! that runs the sync, so the request goes to it through the store
//! (`switchyard.fleet_requests`); it runs the switch as coordinator and writes the answer,
//! which the asking member returns as its own. No member needs to reach another's admin
//! API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Fleet;
use crate::router::switch::{SwitchError, SwitchOptions};
use crate::state::ProxyState;
use crate::sync::schema::lit;

/// How often the asking member looks for the answer.
const ANSWER_POLL: Duration = Duration::from_millis(10);

/// A request older than this is not taken (its asker has given up).
pub const REQUEST_TTL_SECS: u64 = 30;

struct Request {
    id: i64,
    kind: String,
    target: Option<String>,
    wait: Option<Duration>,
}

impl Fleet {
    /// Where a switch asked here must run: here (`Ok(None)`: no live sync, or it runs
    /// here), on the sync leader (`Ok(Some(member))`), or nowhere yet (`Err`: the fleet
    /// has a sync whose member is gone and nobody has taken it over — a switch now would
    /// leave its data step undone).
    pub fn forward_to(&self, s: &ProxyState) -> Result<Option<String>, String> {
        if s.live.current().is_some_and(|l| l.running()) {
            return Ok(None);
        }
        let Some(row) = self.view().state else {
            return Ok(None);
        };
        match row.sync_leader {
            Some(l) if l != self.me.member => Ok(Some(l)),
            Some(_) => Ok(None),
            None if row.sync_named => Err(format!(
                "the fleet's live sync has no running member (its lease ran out); another member takes it over within fleet.lease ({} s): retry then",
                self.me.lease.as_secs()
            )),
            None => Ok(None),
        }
    }

    /// Asks the sync leader to run a switch (`kind` `cutover` to `target`, or
    /// `rollback`) and waits for its answer: (HTTP status, body).
    pub async fn forward(
        &self,
        kind: &str,
        target: Option<&str>,
        wait: Option<Duration>,
    ) -> (u16, Value) {
        let sql = format!(
            "INSERT INTO switchyard.fleet_requests (fleet, kind, target, wait_ms, requested_by)
             VALUES ({}, {}, {}, {}, {}) RETURNING id",
            lit(self.name()),
            lit(kind),
            target.map(lit).unwrap_or_else(|| "NULL".into()),
            wait.map(|w| w.as_millis().to_string())
                .unwrap_or_else(|| "NULL".into()),
            lit(&self.me.member)
        );
        let failed = |e: String| (503, json!({ "ok": false, "error": e }));
        let id = match self.coord.run(&sql).await {
            Ok(rows) => rows.first().and_then(|r| r.get(0)?.parse::<i64>().ok()),
            Err(e) => return failed(format!("cannot pass the switch to the sync leader: {e}")),
        };
        let Some(id) = id else {
            return failed("the fleet store did not return the request's id".into());
        };
        let c = &self.switch;
        let limit = c.preflight_timeout.get()
            + c.max_pause.get() * 2
            + wait.unwrap_or_default()
            + self.me.lease * 2;
        let until = Instant::now() + limit;
        let ask = format!(
            "SELECT taken_by, status, answer FROM switchyard.fleet_requests WHERE id = {id}"
        );
        let mut taken = None;
        while Instant::now() < until {
            tokio::time::sleep(ANSWER_POLL).await;
            let Ok(rows) = self.coord.run(&ask).await else {
                continue;
            };
            let Some(r) = rows.first() else { continue };
            taken = r.get(0).map(str::to_string).or(taken);
            if let (Some(status), Some(answer)) = (r.get(1), r.get(2)) {
                let body = serde_json::from_str(answer).unwrap_or(Value::Null);
                return (status.parse().unwrap_or(500), body);
            }
        }
        failed(match taken {
            Some(m) => format!(
                "the sync leader {m} took the switch but did not answer within {} s; see its /status and ctl fleet",
                limit.as_secs()
            ),
            None => format!(
                "no member took the switch within {} s (the fleet's live sync leader is gone?); see ctl fleet",
                limit.as_secs()
            ),
        })
    }

    async fn take_request(&self) -> Option<Request> {
        let f = lit(self.name());
        let sql = format!(
            "DELETE FROM switchyard.fleet_requests WHERE fleet = {f} AND requested_at < now() - interval '1 hour';
             UPDATE switchyard.fleet_requests SET taken_by = {me}
             WHERE id = (SELECT min(id) FROM switchyard.fleet_requests
                         WHERE fleet = {f} AND taken_by IS NULL
                           AND requested_at > now() - interval '{REQUEST_TTL_SECS} seconds')
               AND taken_by IS NULL
             RETURNING id, kind, target, wait_ms",
            me = lit(&self.me.member)
        );
        let rows = self.store.run(&sql).await.ok()?;
        let r = rows.first()?;
        Some(Request {
            id: r.get(0)?.parse().ok()?,
            kind: r.get(1)?.to_string(),
            target: r.get(2).map(str::to_string),
            wait: r
                .get(3)
                .and_then(|w| w.parse().ok())
                .map(Duration::from_millis),
        })
    }

    async fn answer(&self, id: i64, status: u16, body: &Value) {
        let sql = format!(
            "UPDATE switchyard.fleet_requests SET status = {status}, answer = {}, answered_at = now() WHERE id = {id}",
            lit(&body.to_string())
        );
        if let Err(e) = self.coord.run(&sql).await {
            tracing::error!(error = %e, request = id, "could not answer a forwarded switch");
        }
    }
}

/// On the sync leader's poll: takes a switch another member was asked for and runs it on
/// its own task.
pub async fn serve(fleet: &Arc<Fleet>, s: &Arc<ProxyState>) {
    if !s.live.current().is_some_and(|l| l.running()) {
        return;
    }
    let Some(req) = fleet.take_request().await else {
        return;
    };
    tracing::info!(request = req.id, kind = %req.kind, target = ?req.target, "running a switch another member was asked for");
    let (fleet, s) = (fleet.clone(), s.clone());
    s.lifecycle.clone().spawn(async move {
        let opts = SwitchOptions { wait: req.wait };
        let result = match (req.kind.as_str(), &req.target) {
            ("cutover", Some(to)) => s.switcher.cutover(&s.router, &s.metrics, to, opts).await,
            _ => s.switcher.rollback(&s.router, &s.metrics, opts).await,
        };
        let (status, body) = match result {
            Ok(rec) => (
                if rec.ok { 200 } else { 503 },
                serde_json::to_value(&rec).unwrap_or(Value::Null),
            ),
            Err(e) => {
                let status = match e {
                    SwitchError::Busy => 409,
                    SwitchError::Unknown(_) => 404,
                    _ => 400,
                };
                (status, json!({ "ok": false, "error": e.to_string() }))
            }
        };
        fleet.answer(req.id, status, &body).await;
    });
}
