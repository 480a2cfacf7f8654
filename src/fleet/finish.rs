//! A switch its coordinator left behind (killed, frozen, partitioned) while every member
//! waits in prepare. Past the switch's deadline by a lease, a waiting member decides by
//! the old side's fence, which the coordinator sets only once every member acknowledged:
//!
//! - not fenced at the switch's epoch: nothing irreversible happened; the switch is
//!   aborted and everyone resumes on the old side;
//! - fenced: the old side already refuses writes, so the switch is finished forward. With
//!   no live sync, the member commits it in the store. With one, the member that takes the
//!   sync lease resumes the sync from its record, applies the changelog's tail (the fence
//!   makes it final), carries sequences, records the reversed direction and commits.
//!
//! The commit and the abort are both conditional updates of the same row, so however many
//! members get here, the switch ends one way. A finish that cannot complete (the sync does
//! not resume) falls back to the abort, which lifts the fence: the old side holds every
//! write, since nobody wrote to the new side while all members were paused.

use std::time::Duration;

use super::Fleet;
use super::leader::{Claim, running_here};
use super::store::FleetRow;
use crate::state::ProxyState;

/// How long a finishing member waits for the resumed sync to stream.
const STREAMING_WAIT: Duration = Duration::from_secs(30);

/// What a late member did.
#[derive(Debug, PartialEq, Eq)]
pub enum Late {
    /// It ended the switch (committed or aborted it), or tried to; read the row again.
    Acted,
    /// Another member is finishing it; wait.
    Waiting,
}

/// Decides a switch left in prepare past its deadline (see the module doc). `give_up`:
/// finishing has been tried long enough; abort instead.
pub async fn settle(fleet: &Fleet, s: &ProxyState, row: &FleetRow, give_up: bool) -> Late {
    let epoch = row.epoch + 1;
    let source = row.source.as_deref().unwrap_or_default();
    let fenced = match fleet.side(source) {
        Ok(side) => side.fenced_at().await.ok().flatten() == Some(epoch),
        Err(_) => false,
    };
    if !fenced || give_up {
        abort(fleet, row).await;
        return Late::Acted;
    }
    if !row.sync_named {
        if let Ok(Some(e)) = fleet.store.commit(row.switch_id).await {
            tracing::warn!(
                switch = row.switch_id,
                epoch = e,
                "finished a fleet switch its coordinator left after fencing the old side"
            );
        }
        return Late::Acted;
    }
    finish_with_sync(fleet, s, row, epoch).await
}

async fn abort(fleet: &Fleet, row: &FleetRow) {
    let why = format!(
        "member {} gave up waiting for coordinator {} to commit",
        fleet.me.member,
        row.coordinator.as_deref().unwrap_or_default()
    );
    if let Ok(true) = fleet.store.abort(row.switch_id, &why).await {
        tracing::warn!(switch = row.switch_id, "{why}; switch aborted");
        super::member::lift_abandoned_fence(fleet, row).await;
    }
}

async fn finish_with_sync(fleet: &Fleet, s: &ProxyState, row: &FleetRow, epoch: u64) -> Late {
    if !running_here(s) {
        match fleet.claim_sync().await {
            Ok(Claim::Held) => {}
            _ => return Late::Waiting,
        }
        tracing::warn!(
            switch = row.switch_id,
            "the coordinator of a fenced fleet switch is gone; taking the live sync over to finish it"
        );
        crate::sync::live::resume::take_over(crate::sync::live::resume::Context::of(s)).await;
    }
    let Some(live) = s.live.current() else {
        return Late::Waiting;
    };
    let until = std::time::Instant::now() + STREAMING_WAIT;
    while live.status().phase != crate::sync::live::Phase::Streaming {
        if std::time::Instant::now() >= until || !live.running() {
            return Late::Waiting;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (source, target) = (
        row.source.as_deref().unwrap_or_default(),
        row.target.as_deref().unwrap_or_default(),
    );
    if live.direction() != (source, target) {
        return Late::Waiting;
    }
    if let Err(e) = live.finish_switch(epoch).await {
        tracing::error!(error = %e, "finishing a fleet switch: the data step failed");
        live.end_finished_switch(epoch, false);
        return Late::Waiting;
    }
    let committed = matches!(fleet.store.commit(row.switch_id).await, Ok(Some(_)));
    live.end_finished_switch(epoch, committed);
    if committed {
        tracing::warn!(
            switch = row.switch_id,
            epoch,
            "finished a fleet switch its coordinator left after fencing the old side"
        );
    }
    Late::Acted
}
