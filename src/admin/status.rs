//! The `/status` document: active backend, switch state, per-backend health and pools,
//! clients, the last switch and backoff state. Never contains a secret.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::backend::Backend;
use crate::backend::monitor::BackoffView;
use crate::router::switch::{SwitchRecord, SwitchState};
use crate::state::ProxyState;

#[derive(Serialize)]
pub struct PoolView {
    pub size: u32,
    pub idle: u32,
    pub active: u32,
    pub waiting: u64,
}

#[derive(Serialize)]
pub struct BackendView {
    pub url: String,
    pub up: bool,
    pub checked: bool,
    pub last_error: Option<String>,
    pub down_for_ms: Option<u64>,
    /// The mode in force (`auto` resolved).
    pub pooler: crate::config::PoolerMode,
    /// For `pooler = "auto"`: what was found and why (null until known).
    pub pooler_detected: Option<String>,
    pub pool: PoolView,
    pub backoff: BackoffView,
}

#[derive(Serialize)]
pub struct ClientsView {
    pub connected: i64,
    pub waiting: i64,
    pub in_transaction: usize,
}

#[derive(Serialize)]
pub struct StatusView {
    pub active: String,
    pub previous: Option<String>,
    pub state: SwitchState,
    pub paused: bool,
    pub clients: ClientsView,
    pub backends: BTreeMap<String, BackendView>,
    pub last_switch: Option<SwitchRecord>,
    pub switches: u64,
    pub live_sync: Option<crate::sync::live::LiveStatus>,
    /// A live sync recorded in the databases that is not running here, and why.
    pub live_sync_blocked: Option<crate::sync::live::slot::Blocked>,
    pub route: RouteView,
    /// This proxy's fleet (`[fleet]`): epoch, members, the switch in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<crate::fleet::FleetView>,
}

/// Where the route comes from and whether the config agrees.
#[derive(Serialize)]
pub struct RouteView {
    /// Switches committed so far.
    pub epoch: u64,
    /// The file the route is kept in (none: memory only).
    pub state_file: Option<String>,
    /// `routing.active` in the config.
    pub config_active: String,
    /// True when the config's `routing.active` differs from the active backend.
    pub config_disagrees: bool,
}

fn route_view(shared: &ProxyState) -> RouteView {
    let route = shared.switcher.route();
    let config_active = shared.resolved.active.clone();
    RouteView {
        epoch: route.epoch,
        state_file: shared
            .switcher
            .route_file()
            .map(|f| f.path.display().to_string()),
        config_disagrees: *shared.router.active().name != *config_active,
        config_active,
    }
}

/// One backend's view.
pub fn backend_view(b: &Backend) -> BackendView {
    let h = b.health();
    let s = b.pool.state();
    BackendView {
        url: b.display.clone(),
        up: h.up,
        checked: h.checked,
        last_error: h.last_error.clone(),
        down_for_ms: (!h.up).then(|| h.since.elapsed().as_millis() as u64),
        pooler: b.pooler(),
        pooler_detected: b.pooler_detection().1,
        pool: PoolView {
            size: b.pool_size,
            idle: s.idle_connections,
            active: s.connections - s.idle_connections,
            waiting: b.waiting(),
        },
        backoff: b.backoff(),
    }
}

/// The whole status document.
pub fn view(shared: &ProxyState) -> StatusView {
    let sw = &shared.switcher;
    StatusView {
        active: shared.router.active().name.to_string(),
        previous: sw.previous(),
        state: sw.state(),
        paused: shared.router.gate.is_paused(),
        clients: ClientsView {
            connected: shared.metrics.clients_current.get(),
            waiting: shared.metrics.clients_waiting.get(),
            in_transaction: shared.router.gate.inflight(),
        },
        backends: shared
            .router
            .backends()
            .iter()
            .map(|b| (b.name.to_string(), backend_view(b)))
            .collect(),
        last_switch: sw.last(),
        switches: sw.count(),
        live_sync: shared.live.current().map(|l| l.status()),
        live_sync_blocked: shared.live.blocked(),
        route: route_view(shared),
        fleet: shared.fleet.as_ref().map(|f| f.view()),
    }
}

pub async fn status(State(shared): State<Arc<ProxyState>>) -> Json<StatusView> {
    Json(view(&shared))
}
