//! A fleet: the sidecars of one app, switching as one (`[fleet]`). Their shared state —
//! members and leases, the epoch, the route, the switch in progress — lives in a
//! PostgreSQL database of theirs ([`store`]); no other coordinator is needed.
//!
//! - [`member`]: each member's loop: lease renewal, following the fleet's route, and
//!   taking part in switches other members run (pause, drain, acknowledge, swap).
//! - [`coordinate`]: the member that runs a switch (the one `POST /cutover` reached)
//!   drives it through the fleet as the switch's [`crate::router::barrier::Barrier`].
//! - [`fence`]: the old side refuses writes after a switch, in the database itself.
//! - [`finish`]: a switch whose coordinator died is finished (old side fenced) or aborted.
//! - [`leader`]: one member runs the fleet's live sync; another takes it over.
//! - [`requests`]: a switch asked of any member is run by the sync leader.
//! - [`metrics`]: the fleet's metrics.

pub mod conn;
pub mod coordinate;
pub mod fence;
pub mod finish;
pub mod leader;
pub mod member;
pub mod metrics;
pub mod requests;
pub mod store;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::config::fleet::FleetConfig;
use crate::config::{Resolved, SwitchConfig};
use crate::sync::SyncError;
use coordinate::Ticket;
use metrics::FleetMetrics;
use store::{FleetRow, Me, MemberRow, Store};

/// What `/status` shows of the fleet (as this member last read it).
#[derive(Debug, Clone, Serialize)]
pub struct FleetView {
    pub name: String,
    pub member: String,
    /// The store database (host and database name).
    pub store: String,
    pub store_up: bool,
    /// Why the store last failed, while it does.
    pub store_error: Option<String>,
    pub epoch: u64,
    /// The fleet's state row (route, switch in progress, its phase).
    pub state: Option<FleetRow>,
    pub members: Vec<MemberRow>,
    /// Each backend's fence (absent: not installed there, or not read yet).
    pub fences: BTreeMap<String, fence::FenceState>,
}

/// One member's view of its fleet, and its part in switches.
pub struct Fleet {
    pub me: Me,
    /// The member loop's connection.
    store: Store,
    /// The coordinator's own connection (a switch is not held up by the loop's polls).
    coord: Store,
    pub poll: Duration,
    pub switch: SwitchConfig,
    pub metrics: FleetMetrics,
    view: Mutex<FleetView>,
    /// The switch this member coordinates, while it runs and until the next one.
    ticket: Mutex<Option<Ticket>>,
    /// Every backend's database, for its fence.
    sides: BTreeMap<String, fence::FenceSide>,
    /// New transactions are held because a fence refused one of this member's writes;
    /// the member loop lets them go once it has read the fleet's route.
    fence_held: std::sync::atomic::AtomicBool,
    /// Wakes the member loop at once (a fence refusal).
    wake: tokio::sync::Notify,
    /// A failpoint for tests (`SWITCHYARD_FAILPOINT_FLEET_STALL_AFTER_FENCE_MS`): the
    /// coordinator waits this long between fencing the old side and committing, so a
    /// test can kill it there.
    stall_after_fence: Option<Duration>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// This machine's name (`HOSTNAME`, else `/etc/hostname`).
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "switchyard".into())
}

impl Fleet {
    /// Builds the fleet member from a config with `[fleet]` (validated: the store is a
    /// PostgreSQL backend).
    pub fn new(
        cfg: &FleetConfig,
        resolved: &Resolved,
        registry: &prometheus::Registry,
    ) -> Result<Fleet, SyncError> {
        let backend = &resolved.config.backends[&cfg.store];
        let target = crate::sync::pgconn::pg_target(&backend.effective_url(), "fleet.store")?;
        let member = cfg
            .member
            .clone()
            .unwrap_or_else(|| format!("{}:{}", hostname(), resolved.proxy_addr.port()));
        let me = Me {
            member: member.clone(),
            admin: resolved.admin_addr.to_string(),
            lease: cfg.lease.get(),
        };
        let store = Store::new(target.clone(), &cfg.name);
        let mut sides = BTreeMap::new();
        for (name, b) in &resolved.config.backends {
            let t = crate::sync::pgconn::pg_target(&b.effective_url(), "fleet")?;
            sides.insert(name.clone(), fence::FenceSide::new(name, t));
        }
        let view = FleetView {
            name: cfg.name.clone(),
            member,
            store: store.addr(),
            store_up: false,
            store_error: None,
            epoch: 0,
            state: None,
            members: Vec::new(),
            fences: BTreeMap::new(),
        };
        Ok(Fleet {
            me,
            coord: Store::new(target, &cfg.name),
            store,
            poll: cfg.poll.get(),
            switch: resolved.config.switch.clone(),
            metrics: FleetMetrics::new(registry),
            view: Mutex::new(view),
            ticket: Mutex::new(None),
            sides,
            fence_held: Default::default(),
            wake: tokio::sync::Notify::new(),
            stall_after_fence: std::env::var("SWITCHYARD_FAILPOINT_FLEET_STALL_AFTER_FENCE_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis),
        })
    }

    /// A fence refused one of this member's writes: it serves a database its fleet has
    /// left (it missed a switch). New transactions wait while the member reads the
    /// fleet's route at once, so each client sees at most the one refusal it already
    /// had. Not during a switch or a manual pause (they own the gate then).
    pub fn fence_hit(&self, s: &crate::state::ProxyState) {
        use std::sync::atomic::Ordering;
        let serving = s.switcher.state() == crate::router::switch::SwitchState::Serving;
        if serving && !s.switcher.manually_paused() && !self.fence_held.swap(true, Ordering::SeqCst)
        {
            s.router.gate.pause();
            tracing::warn!(member = %self.me.member, "a fence refused a write: this member serves a database its fleet left; new transactions wait while it reads the fleet's route");
        }
        self.wake.notify_one();
    }

    /// Lets transactions held by [`Self::fence_hit`] go (the route has been read, or the
    /// store cannot be: the fence goes on refusing then, and says what to do).
    pub fn release_fence_hold(&self, s: &crate::state::ProxyState) {
        use std::sync::atomic::Ordering;
        if self.fence_held.swap(false, Ordering::SeqCst)
            && s.switcher.state() == crate::router::switch::SwitchState::Serving
            && !s.switcher.manually_paused()
        {
            s.router.gate.resume();
        }
    }

    /// The fence of backend `name`'s database.
    pub fn side(&self, name: &str) -> Result<&fence::FenceSide, fence::FenceError> {
        self.sides.get(name).ok_or_else(|| fence::FenceError {
            addr: format!("backend {name:?}"),
            detail: "not in this member's config".into(),
        })
    }

    pub fn name(&self) -> &str {
        &self.store.fleet
    }

    /// The last view, for `/status`.
    pub fn view(&self) -> FleetView {
        lock(&self.view).clone()
    }

    /// Asks the store now (for `/fleet` and `ctl fleet`).
    pub async fn fresh_view(&self) -> FleetView {
        self.read_fences().await;
        let row = self.coord.fleet_row().await;
        let members = self.coord.members().await;
        match (row, members) {
            (Ok(row), Ok(members)) => {
                self.note_row(&row);
                self.note_members(members);
            }
            (Err(e), _) | (_, Err(e)) => self.note_error(&e),
        }
        self.view()
    }

    fn note_row(&self, row: &FleetRow) {
        self.metrics.store_up.set(1);
        self.metrics.epoch.set(row.epoch as i64);
        let mut v = lock(&self.view);
        v.store_up = true;
        v.store_error = None;
        v.epoch = row.epoch;
        v.state = Some(row.clone());
    }

    fn note_members(&self, members: Vec<MemberRow>) {
        let alive = members.iter().filter(|m| m.alive).count();
        let m = &self.metrics.members;
        m.with_label_values(&["alive"]).set(alive as i64);
        m.with_label_values(&["gone"])
            .set((members.len() - alive) as i64);
        lock(&self.view).members = members;
    }

    /// Reads every backend's fence (for `/status`, `ctl fleet` and the metrics).
    pub async fn read_fences(&self) {
        for (name, side) in &self.sides {
            match side.state().await {
                Ok(Some(st)) => {
                    let m = &self.metrics;
                    m.fenced_epoch
                        .with_label_values(&[name])
                        .set(st.fenced_at.unwrap_or(0) as i64);
                    m.fenced_refused
                        .with_label_values(&[name])
                        .set(st.refused as i64);
                    lock(&self.view).fences.insert(name.clone(), st);
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "cannot read a backend's fence"),
            }
        }
    }

    fn note_error(&self, e: &store::StoreError) {
        self.metrics.store_up.set(0);
        let mut v = lock(&self.view);
        if v.store_up || v.store_error.is_none() {
            tracing::warn!(error = %e, "fleet store unreachable");
        }
        v.store_up = false;
        v.store_error = Some(e.to_string());
    }
}
