//! A member's loop. Every `fleet.poll` it reads the fleet's row; every fifth of
//! `fleet.lease` it renews its lease (and refreshes the members list). It follows the
//! fleet's route — a member that missed a commit (stopped, partitioned, restarted) swaps
//! to the recorded route as soon as it reads it — and takes part in switches other
//! members run: pause new transactions, drain, acknowledge, then wait for the outcome
//! (committed: swap; aborted: resume where it was). A member that waits past the
//! switch's deadline by a lease aborts the switch itself (a conditional update, so a
//! commit that got there first wins and is followed instead).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Fleet;
use super::store::{FleetRow, Phase};
use crate::router::switch::SwitchState;
use crate::state::ProxyState;

/// How long joining may take at start-up before the proxy serves anyway (and keeps
/// trying in the loop).
const JOIN_LIMIT: Duration = Duration::from_secs(5);

/// Joins the fleet at start-up and takes its route, before anyone is served.
pub async fn join(fleet: &Fleet, s: &ProxyState) {
    let joined = tokio::time::timeout(JOIN_LIMIT, async {
        fleet.store.setup().await?;
        let route = s.switcher.route();
        fleet
            .store
            .join(&fleet.me, route.epoch, &route.active)
            .await
    })
    .await;
    match joined {
        Ok(Ok(row)) => {
            tracing::info!(fleet = fleet.name(), member = %fleet.me.member, epoch = row.epoch, active = %row.active, "joined the fleet");
            fleet.note_row(&row);
            follow_route(fleet, s, &row);
        }
        Ok(Err(e)) => fleet.note_error(&e),
        Err(_) => fleet.note_error(&super::store::StoreError::Unreachable {
            addr: fleet.store.addr(),
            detail: format!("no answer within {} s", JOIN_LIMIT.as_secs()),
        }),
    }
}

/// Runs until shutdown; then leaves the fleet.
pub async fn run(fleet: Arc<Fleet>, s: Arc<ProxyState>) {
    let stop = s.lifecycle.token();
    let beat = fleet.me.lease / 5;
    let mut last_beat: Option<Instant> = None;
    // On a task of its own: a side that does not answer must not hold up the polls.
    s.lifecycle.spawn(watch_fences(fleet.clone(), stop.clone()));
    let mut handled = fleet.view().state.map(|r| r.switch_id).unwrap_or(0);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(fleet.poll) => {}
            _ = fleet.wake.notified() => {}
            _ = stop.cancelled() => break,
        }
        if last_beat.is_none_or(|t| t.elapsed() >= beat) {
            last_beat = Some(Instant::now());
            heartbeat(&fleet, &s).await;
            super::leader::tend(&fleet, &s).await;
        }

        let row = match fleet.store.fleet_row().await {
            Ok(r) => r,
            Err(e) => {
                fleet.note_error(&e);
                fleet.release_fence_hold(&s);
                continue;
            }
        };
        fleet.note_row(&row);
        if row.requests > 0 {
            super::requests::serve(&fleet, &s).await;
        }
        let mine = row.coordinator.as_deref() == Some(fleet.me.member.as_str());
        if row.phase == Phase::Prepare
            && row.switch_id > handled
            && !mine
            && row.expected.contains(&fleet.me.member)
            && row.deadline_in_ms.is_some_and(|d| d > 0.0)
        {
            handled = row.switch_id;
            take_part(&fleet, &s, &row).await;
            fleet.release_fence_hold(&s);
            continue;
        }
        if row.phase != Phase::Prepare {
            follow_route(&fleet, &s, &row);
        }
        fleet.release_fence_hold(&s);
    }
    // Shutting down: another member resumes the sync at once.
    let _ = tokio::time::timeout(Duration::from_secs(1), fleet.release_sync(false)).await;
    let gone = tokio::time::timeout(Duration::from_secs(1), fleet.store.leave(&fleet.me.member));
    if let Ok(Ok(())) = gone.await {
        tracing::info!(member = %fleet.me.member, "left the fleet");
    }
}

/// Reads every backend's fence once per lease.
async fn watch_fences(fleet: Arc<Fleet>, stop: tokio_util::sync::CancellationToken) {
    loop {
        fleet.read_fences().await;
        tokio::select! {
            _ = tokio::time::sleep(fleet.me.lease) => {}
            _ = stop.cancelled() => return,
        }
    }
}

async fn heartbeat(fleet: &Fleet, s: &ProxyState) {
    let route = s.switcher.route();
    let live = s.live.current().filter(|l| l.running()).map(|l| {
        let st = l.status();
        format!(
            "{} -> {} {}, {} pending (oldest {:.1} s)",
            st.source,
            st.target,
            format!("{:?}", st.phase).to_lowercase(),
            st.pending_changes,
            st.oldest_change_seconds
        )
    });
    let r = async {
        fleet
            .store
            .heartbeat(&fleet.me, route.epoch, &route.active, live.as_deref())
            .await?;
        fleet.store.members().await
    };
    match r.await {
        Ok(members) => fleet.note_members(members),
        Err(e) => fleet.note_error(&e),
    }
}

/// Takes the fleet's route when it differs from this member's (a commit this member
/// did not see). Not while a switch runs here: that switch records the route itself.
fn follow_route(fleet: &Fleet, s: &ProxyState, row: &FleetRow) {
    let route = s.switcher.route();
    if row.active.is_empty() || (row.active == route.active && row.epoch == route.epoch) {
        return;
    }
    let Ok(_hold) = s.switcher.try_hold() else {
        return;
    };
    if s.router.get(&row.active).is_none() {
        tracing::error!(fleet = fleet.name(), active = %row.active, "the fleet's route names a backend this member's config lacks; staying where it is");
        return;
    }
    if let Err(e) = s.switcher.adopt_route(&row.active, row.epoch) {
        tracing::error!(error = %e, "cannot record the fleet's route in the route file");
    }
    if *s.router.active().name != row.active {
        s.router.swap_to(&row.active);
        tracing::warn!(fleet = fleet.name(), epoch = row.epoch, active = %row.active, "moved to the fleet's route (a switch this member missed)");
    }
    s.metrics.route_epoch.set(row.epoch as i64);
}

/// Lets held transactions in when dropped (also if this task is cut short).
struct Resume<'a>(&'a crate::router::gate::Gate);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        self.0.resume();
    }
}

/// Pauses, drains, acknowledges switch `row.switch_id`, and follows its outcome.
async fn take_part(fleet: &Fleet, s: &ProxyState, row: &FleetRow) {
    let id = row.switch_id;
    let Ok(_hold) = s.switcher.try_hold() else {
        let why = "a switch or a manual pause is in progress on this member";
        let _ = fleet.store.ack(&fleet.me.member, id, Some(why)).await;
        return;
    };
    let seen = Instant::now();
    s.switcher.set_state(SwitchState::Pausing, &s.metrics);
    s.router.gate.pause();
    let resume = Resume(&s.router.gate);
    s.switcher.set_state(SwitchState::Draining, &s.metrics);
    let drained = s
        .router
        .gate
        .wait_drained(fleet.switch.drain_timeout.get())
        .await;
    let error = (!drained).then(|| {
        format!(
            "{} transaction(s) still running after switch.drain_timeout ({})",
            s.router.gate.inflight(),
            fleet.switch.drain_timeout
        )
    });
    let acked = fleet
        .store
        .ack(&fleet.me.member, id, error.as_deref())
        .await;
    fleet
        .metrics
        .ack_seconds
        .observe(seen.elapsed().as_secs_f64());
    if let Err(e) = &acked {
        fleet.note_error(e);
    }
    s.switcher.set_state(SwitchState::Syncing, &s.metrics);
    let outcome = await_outcome(fleet, s, id, seen).await;
    if let Some(row) = &outcome {
        if row.phase == Phase::Committed && row.switch_id == id {
            if let Err(e) = s.switcher.persist_route(&row.active, row.epoch).await {
                tracing::error!(error = %e, "fleet switch committed, but the route file could not be written");
            }
            s.router.swap_to(&row.active);
            s.metrics.route_epoch.set(row.epoch as i64);
            s.switcher.set_state(SwitchState::Swapped, &s.metrics);
        }
        fleet.note_row(row);
    }
    drop(resume);
    s.switcher.set_state(SwitchState::Serving, &s.metrics);
    s.metrics
        .pause_seconds
        .observe(seen.elapsed().as_secs_f64());
    let committed = outcome
        .as_ref()
        .is_some_and(|r| r.phase == Phase::Committed && r.switch_id == id);
    fleet
        .metrics
        .switches
        .with_label_values(&["member", if committed { "committed" } else { "aborted" }])
        .inc();
    let route = s.switcher.route();
    let _ = fleet
        .store
        .done(&fleet.me.member, id, route.epoch, &route.active)
        .await;
    tracing::info!(switch = id, committed, active = %route.active, epoch = route.epoch, paused_ms = seen.elapsed().as_millis() as u64, "fleet switch: took part");
}

/// A coordinator that died after fencing the old side leaves it fenced; the member that
/// aborted its switch lifts that fence (only one fenced at this switch's epoch).
pub(super) async fn lift_abandoned_fence(fleet: &Fleet, row: &FleetRow) {
    let Some(source) = row.source.as_deref() else {
        return;
    };
    let Ok(side) = fleet.side(source) else {
        return;
    };
    match side.fenced_at().await {
        Ok(Some(e)) if e == row.epoch + 1 => {
            match side.set(0, fleet.switch.drain_timeout.get()).await {
                Ok(()) => tracing::warn!(
                    backend = source,
                    "lifted the fence an abandoned switch left"
                ),
                Err(e) => {
                    tracing::error!(error = %e, "could not lift the fence an abandoned switch left")
                }
            }
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "could not read the fence of the old side"),
    }
}

/// Waits for switch `id` to be committed or aborted. Past its deadline by a lease, the
/// coordinator is taken for gone and the switch is finished or aborted ([`super::finish`]). `None`: the store could not be read for that
/// long — the member resumes where it was (see the runbook).
async fn await_outcome(fleet: &Fleet, s: &ProxyState, id: u64, seen: Instant) -> Option<FleetRow> {
    let give_up = seen + fleet.switch.max_pause.get() + fleet.me.lease * 2;
    let step = (fleet.poll / 4).max(Duration::from_millis(2));
    loop {
        match fleet.store.fleet_row().await {
            Ok(row) if row.switch_id != id || row.phase != Phase::Prepare => return Some(row),
            Ok(row) => {
                // Past the deadline by a lease: the coordinator is gone (see `finish`);
                // past it by three, finishing has had its chance.
                let past = -row.deadline_in_ms.unwrap_or(0.0);
                let lease = fleet.me.lease.as_millis() as f64;
                if past > lease {
                    super::finish::settle(fleet, s, &row, past > 3.0 * lease).await;
                }
            }
            Err(e) => {
                fleet.note_error(&e);
                if Instant::now() >= give_up {
                    tracing::error!(
                        switch = id,
                        "fleet store unreachable while waiting for a switch's outcome; resuming on the current route"
                    );
                    return None;
                }
            }
        }
        tokio::time::sleep(step).await;
    }
}
