//! Running a fleet switch from the member that was asked for it: the fleet's part of the
//! switch, as its [`Barrier`]. `begin` records the switch in the store in phase
//! `prepare` with the members that hold a lease; they pause, drain and acknowledge
//! ([`super::member`]). When all have, the data step runs and `commit` records the new
//! epoch and route — the commit point; members that see it swap and resume. A member
//! that does not acknowledge within half of `switch.max_pause`, or answers that it could
//! not drain, aborts the switch: everybody resumes on the old side.
//!
//! The fence ([`super::fence`]): its triggers go on both sides before anyone pauses; once
//! every member has acknowledged, the old side is fenced at the new epoch (waiting out
//! writers in flight there, such as direct connections) and the new side's fence is
//! lifted — before the data step, so the tail it applies is the last write the old side
//! takes. A switch abandoned after that puts both fences back.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::json;

use super::{Fleet, lock};
use crate::router::barrier::Barrier;
use crate::router::error::StepError;

/// The switch this member coordinates.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub id: u64,
    pub epoch: u64,
    pub expected: Vec<String>,
    pub began: Instant,
    /// When every member had acknowledged.
    pub acked: Option<Instant>,
    /// When the store recorded the commit.
    pub committed: Option<Instant>,
    /// Still to be committed or aborted.
    pub open: bool,
    pub from: String,
    pub to: String,
    /// The old side has been fenced by this switch.
    pub fenced: bool,
    /// The epoch the new side was fenced at before this switch lifted it.
    pub lifted: Option<u64>,
}

/// How often the coordinator reads the members' acknowledgements.
const ACK_POLL: Duration = Duration::from_millis(3);

/// How long the report waits for every member to serve again.
const RESUME_WAIT: Duration = Duration::from_secs(2);

fn fleet_err(e: impl std::fmt::Display) -> StepError {
    StepError::Fleet(e.to_string())
}

impl Fleet {
    fn ticket(&self) -> Option<Ticket> {
        lock(&self.ticket).clone()
    }

    async fn begin_switch(&self, kind: &str, from: &str, to: &str) -> Result<u64, StepError> {
        *lock(&self.ticket) = None;
        for side in [from, to] {
            self.side(side)
                .map_err(fleet_err)?
                .install()
                .await
                .map_err(|e| StepError::Fleet(format!("installing the fence: {e}")))?;
        }
        let bound = self.switch.max_pause.get();
        let row = self
            .coord
            .begin(&self.me.member, kind, from, to, bound, self.me.lease)
            .await
            .map_err(fleet_err)?;
        let Some(row) = row else {
            let now = self.coord.fleet_row().await.map_err(fleet_err)?;
            return Err(StepError::Fleet(if now.active != from {
                format!(
                    "the fleet's route is {:?} (epoch {}), not {from:?}; this member is catching up — retry in a moment",
                    now.active, now.epoch
                )
            } else {
                format!(
                    "fleet switch {} (by member {}) is still in progress; retry when it is over",
                    now.switch_id,
                    now.coordinator.unwrap_or_default()
                )
            }));
        };
        tracing::info!(switch = row.switch_id, kind, from, to, members = ?row.expected, "fleet switch: prepare");
        let epoch = row.epoch + 1;
        *lock(&self.ticket) = Some(Ticket {
            id: row.switch_id,
            epoch,
            expected: row.expected,
            began: Instant::now(),
            acked: None,
            committed: None,
            open: true,
            from: from.to_string(),
            to: to.to_string(),
            fenced: false,
            lifted: None,
        });
        Ok(epoch)
    }

    /// Acknowledges for this member, then waits for the others.
    async fn wait_acks(&self) -> Result<(), StepError> {
        let t = self
            .ticket()
            .ok_or_else(|| fleet_err("no fleet switch begun"))?;
        self.coord
            .ack(&self.me.member, t.id, None)
            .await
            .map_err(fleet_err)?;
        let deadline = t.began + self.switch.max_pause.get() / 2;
        loop {
            let members = self.coord.members().await.map_err(fleet_err)?;
            let mut missing = Vec::new();
            for name in &t.expected {
                match members.iter().find(|m| &m.member == name) {
                    Some(m) if m.ack_switch == t.id => {
                        if let Some(e) = &m.ack_error {
                            return Err(StepError::Fleet(format!(
                                "member {name} could not pause: {e}"
                            )));
                        }
                    }
                    Some(m) => missing.push(format!(
                        "{name} (last heartbeat {:.1} s ago)",
                        m.heartbeat_age_s
                    )),
                    // Left the fleet (shut down cleanly): it serves nobody now.
                    None => {}
                }
            }
            if missing.is_empty() {
                let now = Instant::now();
                self.metrics
                    .phase_seconds
                    .with_label_values(&["prepare"])
                    .observe((now - t.began).as_secs_f64());
                if let Some(t) = lock(&self.ticket).as_mut() {
                    t.acked = Some(now);
                }
                return self.fence(&t).await;
            }
            if Instant::now() >= deadline {
                return Err(StepError::Fleet(format!(
                    "member(s) {} did not acknowledge within {} ms (half of switch.max_pause); every member resumes on the old side",
                    missing.join(", "),
                    (self.switch.max_pause.get() / 2).as_millis()
                )));
            }
            tokio::time::sleep(ACK_POLL).await;
        }
    }

    /// Fences the old side at the switch's epoch and lifts the new side's fence.
    async fn fence(&self, t: &Ticket) -> Result<(), StepError> {
        let failed = |e: super::fence::FenceError| StepError::Fleet(format!("fencing: {e}"));
        let (from, to) = (
            self.side(&t.from).map_err(failed)?,
            self.side(&t.to).map_err(failed)?,
        );
        let lifted = to.fenced_at().await.map_err(failed)?;
        if let Some(t) = lock(&self.ticket).as_mut() {
            t.fenced = true;
        }
        from.set(t.epoch, self.switch.drain_timeout.get())
            .await
            .map_err(failed)?;
        if let Some(t) = lock(&self.ticket).as_mut() {
            t.lifted = lifted;
        }
        if lifted.is_some() {
            to.set(0, self.switch.drain_timeout.get())
                .await
                .map_err(failed)?;
        }
        tracing::info!(switch = t.id, epoch = t.epoch, fenced = %t.from, lifted = %t.to, "fleet switch: old side fenced");
        if let Some(stall) = self.stall_after_fence {
            tracing::warn!(
                ms = stall.as_millis() as u64,
                "failpoint: stalling between the fence and the commit"
            );
            tokio::time::sleep(stall).await;
        }
        Ok(())
    }

    /// Puts the fences back as they were before an abandoned switch.
    async fn unfence(&self, t: &Ticket) {
        let wait = self.switch.drain_timeout.get();
        if t.fenced
            && let Ok(from) = self.side(&t.from)
            && let Err(e) = from.set(0, wait).await
        {
            tracing::error!(error = %e, backend = %t.from, "could not lift the fence of an abandoned switch; lift it with another switch back to it, or by hand: SELECT setval('switchyard.fenced_at', 0)");
        }
        if let (Some(epoch), Ok(to)) = (t.lifted, self.side(&t.to))
            && let Err(e) = to.set(epoch, wait).await
        {
            tracing::error!(error = %e, backend = %t.to, "could not put the fence back on the inactive side");
        }
    }

    async fn commit_switch(&self) -> Result<u64, StepError> {
        let t = self
            .ticket()
            .ok_or_else(|| fleet_err("no fleet switch begun"))?;
        let committed = match self.coord.commit(t.id).await {
            Ok(Some(e)) => Some(e),
            // Not in prepare any more, or the answer was lost: the row says whether it
            // was committed (by this call, or by a member that finished it).
            r => {
                let row = self.coord.fleet_row().await.map_err(|e| match r {
                    Err(first) => fleet_err(first),
                    Ok(_) => fleet_err(e),
                })?;
                (row.switch_id == t.id && row.phase == super::store::Phase::Committed)
                    .then_some(row.epoch)
            }
        };
        let Some(epoch) = committed else {
            let row = self.coord.fleet_row().await.ok();
            return Err(StepError::Fleet(format!(
                "fleet switch {} was aborted before its commit: {}",
                t.id,
                row.and_then(|r| r.outcome).unwrap_or_default()
            )));
        };
        let now = Instant::now();
        if let Some(t) = lock(&self.ticket).as_mut() {
            t.committed = Some(now);
            t.open = false;
            t.epoch = epoch;
        }
        self.metrics
            .phase_seconds
            .with_label_values(&["commit"])
            .observe((now - t.acked.unwrap_or(now)).as_secs_f64());
        self.metrics
            .switches
            .with_label_values(&["coordinator", "committed"])
            .inc();
        tracing::info!(switch = t.id, epoch, "fleet switch: committed");
        Ok(epoch)
    }

    async fn abort_switch(&self, why: &str) {
        let Some(t) = self.ticket().filter(|t| t.open) else {
            return;
        };
        if let Some(t) = lock(&self.ticket).as_mut() {
            t.open = false;
        }
        self.metrics
            .switches
            .with_label_values(&["coordinator", "aborted"])
            .inc();
        match self.coord.abort(t.id, why).await {
            Ok(true) => {
                tracing::warn!(switch = t.id, why, "fleet switch: aborted");
                self.unfence(&t).await;
                if let Ok(side) = self.side(&t.from) {
                    let _ = side.remove().await;
                }
            }
            // Ended already: a member aborted it (fences are put back as before) or
            // finished it (the fence stays: the fleet moved on).
            Ok(false) => {
                let row = self.coord.fleet_row().await;
                if row.is_ok_and(|r| r.switch_id == t.id && r.phase == super::store::Phase::Aborted)
                {
                    self.unfence(&t).await;
                }
            }
            // The members give up by themselves past the deadline, and lift the fence.
            Err(e) => {
                tracing::error!(switch = t.id, error = %e, "fleet switch: could not record the abort")
            }
        }
    }

    /// Each member's acknowledgement and return to serving, and the phase times.
    async fn switch_report(&self) -> Option<serde_json::Value> {
        let t = self.ticket()?;
        let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        let mut members = Vec::new();
        if let Some(c) = t.committed {
            let active = self.coord.fleet_row().await.ok().map(|r| r.active);
            let _ = self
                .coord
                .done(&self.me.member, t.id, t.epoch, &active.unwrap_or_default())
                .await;
            let until = Instant::now() + RESUME_WAIT;
            while let Ok(m) = self.coord.members().await {
                members = m;
                let all = t.expected.iter().all(|e| {
                    members
                        .iter()
                        .any(|m| &m.member == e && m.done_switch == t.id)
                });
                if all || Instant::now() >= until {
                    break;
                }
                tokio::time::sleep(ACK_POLL).await;
            }
            self.metrics
                .phase_seconds
                .with_label_values(&["resume"])
                .observe(c.elapsed().as_secs_f64());
        } else {
            members = self.coord.members().await.unwrap_or_default();
        }
        if t.committed.is_some()
            && let Ok(side) = self.side(&t.to)
            && let Err(e) = side.remove().await
        {
            tracing::warn!(error = %e, "the fence's triggers stay on the active side (each write pays a check)");
        }
        let members: Vec<_> = members
            .iter()
            .filter(|m| t.expected.contains(&m.member))
            .map(|m| {
                json!({
                    "member": m.member,
                    "ack_ms": (m.ack_switch == t.id).then_some(m.ack_ms).flatten(),
                    "ack_error": (m.ack_switch == t.id).then(|| m.ack_error.clone()).flatten(),
                    "resumed_ms": (m.done_switch == t.id).then_some(m.done_ms).flatten(),
                })
            })
            .collect();
        // First member paused (this one, right after `begin`) to last member serving.
        let fleet_pause = members
            .iter()
            .filter_map(|m| m["resumed_ms"].as_f64())
            .fold(None, |a: Option<f64>, x| Some(a.map_or(x, |a| a.max(x))));
        Some(json!({
            "switch_id": t.id,
            "fleet_pause_ms": fleet_pause,
            "epoch": t.epoch,
            "committed": t.committed.is_some(),
            "prepare_ms": t.acked.map(|a| ms(a - t.began)),
            "commit_ms": t.committed.zip(t.acked).map(|(c, a)| ms(c - a)),
            "members": members,
        }))
    }
}

impl Barrier for Fleet {
    fn begin<'a>(
        &'a self,
        kind: &'static str,
        from: &'a str,
        to: &'a str,
    ) -> BoxFuture<'a, Result<u64, StepError>> {
        Box::pin(self.begin_switch(kind, from, to))
    }

    fn await_acks(&self) -> BoxFuture<'_, Result<(), StepError>> {
        Box::pin(self.wait_acks())
    }

    fn commit(&self) -> BoxFuture<'_, Result<u64, StepError>> {
        Box::pin(self.commit_switch())
    }

    fn abort<'a>(&'a self, why: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.abort_switch(why))
    }

    fn report(&self) -> BoxFuture<'_, Option<serde_json::Value>> {
        Box::pin(self.switch_report())
    }
}
