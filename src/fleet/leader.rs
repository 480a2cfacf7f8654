//! One live sync per fleet: the member that runs it holds the fleet's sync lease
//! (`sync_leader`, `sync_until` in the fleet's row), renewed with its heartbeat. A sync
//! is started (`ctl sync`) only by a member that can take the lease. When the leader's
//! lease runs out (killed, frozen, partitioned), another member takes the lease and
//! resumes the sync from its record in the databases — from the changelog cursor, and
//! since apply is idempotent and every apply round is fenced by the record's owner, a
//! leader that comes back cannot apply another round. `sync_leader` stays set while its
//! lease has run out, which is how the others know there is a sync to take over; a
//! stopped sync clears it.

use std::sync::Arc;

use super::Fleet;
use super::store::StoreError;
use crate::state::ProxyState;
use crate::sync::schema::lit;

/// Who holds the sync lease, as the store says.
pub enum Claim {
    /// This member holds it now.
    Held,
    /// Another member holds it, and its lease is current.
    Other(String),
}

impl Fleet {
    /// Takes the sync lease when it is free, expired, or already this member's.
    pub async fn claim_sync(&self) -> Result<Claim, StoreError> {
        let f = lit(self.name());
        let me = lit(&self.me.member);
        let sql = format!(
            "UPDATE switchyard.fleet SET sync_leader = {me}, sync_until = now() + interval '{} milliseconds'
             WHERE name = {f} AND (sync_leader IS NULL OR sync_leader = {me} OR sync_until < now())
             RETURNING 1",
            self.me.lease.as_millis()
        );
        if !self.coord.run(&sql).await?.is_empty() {
            return Ok(Claim::Held);
        }
        let row = self.coord.fleet_row().await?;
        Ok(Claim::Other(row.sync_leader.unwrap_or_default()))
    }

    /// Renews the lease; false when another member holds it now.
    async fn renew_sync(&self) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE switchyard.fleet SET sync_until = now() + interval '{} milliseconds'
             WHERE name = {} AND sync_leader = {} RETURNING 1",
            self.me.lease.as_millis(),
            lit(self.name()),
            lit(&self.me.member)
        );
        Ok(!self.store.run(&sql).await?.is_empty())
    }

    /// Gives the lease up: `stopped` (the sync was stopped) clears the leader too, so
    /// nobody takes it over; otherwise (shutting down) the lease ends now and another
    /// member resumes the sync at once.
    pub async fn release_sync(&self, stopped: bool) -> Result<(), StoreError> {
        let set = if stopped {
            "sync_leader = NULL, sync_until = NULL"
        } else {
            "sync_until = now() - interval '1 second'"
        };
        let sql = format!(
            "UPDATE switchyard.fleet SET {set} WHERE name = {} AND sync_leader = {}",
            lit(self.name()),
            lit(&self.me.member)
        );
        self.coord.run(&sql).await.map(|_| ())
    }
}

/// Whether a live sync runs in this process.
pub fn running_here(s: &ProxyState) -> bool {
    s.live.current().is_some_and(|l| l.running())
}

impl crate::sync::live::resume::SyncLease for Fleet {
    fn claim(&self) -> futures::future::BoxFuture<'_, bool> {
        Box::pin(async move {
            match self.claim_sync().await {
                Ok(Claim::Held) => true,
                Ok(Claim::Other(leader)) => {
                    tracing::info!(%leader, "the fleet's live sync runs on another member");
                    false
                }
                Err(e) => {
                    self.note_error(&e);
                    false
                }
            }
        })
    }

    fn release(&self) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.release_sync(false).await;
        })
    }
}

/// On each heartbeat: the leader renews its lease (and stops its sync if another member
/// took it over); a member sees an expired lease and takes the sync over.
pub async fn tend(fleet: &Arc<Fleet>, s: &Arc<ProxyState>) {
    if running_here(s) {
        match fleet.renew_sync().await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    "another member took the fleet's live sync over (this member's lease ran out); stopping it here"
                );
                if let Some(l) = s.live.current() {
                    l.stop();
                }
            }
            Err(e) => fleet.note_error(&e),
        }
        return;
    }
    let Some(row) = fleet.view().state else {
        return;
    };
    // A leader is named, but its lease ran out.
    let orphaned = row.sync_leader.is_none() && row.sync_named;
    if !orphaned {
        return;
    }
    tracing::warn!("the fleet's live sync leader is gone; taking the sync over");
    crate::sync::live::resume::take_over(crate::sync::live::resume::Context::of(s)).await;
    if running_here(s) {
        tracing::info!("this member now runs the fleet's live sync");
    }
}
