//! `POST /sync/start {"from": A, "to": B, "force": false}` and `POST /sync/stop`: live
//! sync between two configured backends inside the serving proxy. Starting installs the
//! sync as the switcher's hook, so a cutover between A and B carries the data with it.

use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{AppState, error};
use crate::state::ProxyState;
use crate::sync::SyncError;
use crate::sync::live::{LiveSpec, LiveSync, Phase, StartMode, record};

#[derive(Deserialize)]
pub struct StartReq {
    from: String,
    to: String,
    #[serde(default)]
    force: bool,
}

fn spec(shared: &ProxyState, req: &StartReq) -> Result<LiveSpec, String> {
    let url = |name: &str| {
        shared
            .router
            .get(name)
            .map(|b| b.config.effective_url())
            .ok_or_else(|| format!("no backend named {name:?}"))
    };
    if req.from == req.to {
        return Err("from and to must be different backends".into());
    }
    let active = shared.router.active();
    if *active.name != *req.from {
        return Err(format!(
            "live sync must start from the active backend ({}); {:?} is not active",
            active.name, req.from
        ));
    }
    Ok(LiveSpec {
        from_name: req.from.clone(),
        from_url: url(&req.from)?,
        to_name: req.to.clone(),
        to_url: url(&req.to)?,
        force: req.force,
        max_lag_rows: shared.switcher.config.max_lag_rows,
        batch: 10_000,
        parallel: 2,
    })
}

pub async fn start(
    axum::extract::State(shared): AppState,
    body: Option<Json<StartReq>>,
) -> Response {
    let Some(Json(req)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "body must be JSON: {\"from\": \"BACKEND\", \"to\": \"BACKEND\"}",
        );
    };
    let running = shared
        .live
        .current()
        .map(|l| l.status())
        .filter(|s| !matches!(s.phase, Phase::Stopped | Phase::Failed));
    if let Some(s) = running {
        return error(
            StatusCode::CONFLICT,
            format!("live sync {} -> {} is already {:?}", s.from, s.to, s.phase),
        );
    }
    let spec = match spec(&shared, &req) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let owner = record::owner_name(&shared.switcher.route().instance);
    match LiveSync::start(
        spec,
        shared.metrics.clone(),
        owner,
        StartMode::Fresh,
        &shared.lifecycle,
    )
    .await
    {
        Ok(live) => {
            let status = live.status();
            shared.live.set_running(live);
            (
                StatusCode::OK,
                Json(json!({ "ok": true, "live_sync": status })),
            )
                .into_response()
        }
        Err(e) => {
            let code = match e {
                SyncError::Connect { .. } => StatusCode::BAD_GATEWAY,
                _ => StatusCode::BAD_REQUEST,
            };
            error(code, e.to_string())
        }
    }
}

pub async fn stop(axum::extract::State(shared): AppState) -> Response {
    let live: Option<Arc<LiveSync>> = shared.live.current();
    match live {
        Some(l) => {
            // Let the last captured changes through before answering. A switch started
            // meanwhile is refused (the sync is no longer running, and the old side may
            // still hold captured changes).
            if !l.stop_and_wait(std::time::Duration::from_secs(30)).await {
                return error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "live sync did not finish applying its pending changes within 30 s; it stops after its current round",
                );
            }
            (
                StatusCode::OK,
                Json(json!({ "ok": true, "live_sync": l.status() })),
            )
                .into_response()
        }
        None => error(StatusCode::NOT_FOUND, "no live sync is running"),
    }
}
