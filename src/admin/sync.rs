//! `POST /sync/start {"from": A, "to": B, "force": false, "exclude_columns": ["T.C"],
//! "types": ["T.C=TYPE"]}` and `POST /sync/stop`: live sync between two configured
//! backends inside the serving proxy. Starting installs the sync as the switcher's hook,
//! so a cutover between A and B carries the data with it. The column choices add to the
//! config's `[sync]` section and are kept in the sync's record.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::errors::ApiError;
use crate::state::ProxyState;
use crate::sync::choices::ColumnChoices;
use crate::sync::live::{LiveSpec, LiveSync, Phase, StartMode, record};

#[derive(Deserialize)]
pub struct StartReq {
    from: String,
    to: String,
    #[serde(default)]
    force: bool,
    #[serde(flatten)]
    choices: ColumnChoices,
}

fn spec(shared: &ProxyState, req: &StartReq) -> Result<LiveSpec, ApiError> {
    let url = |name: &str| {
        shared
            .router
            .get(name)
            .map(|b| b.config.effective_url())
            .ok_or_else(|| ApiError::BadRequest(format!("no backend named {name:?}")))
    };
    if req.from == req.to {
        return Err(ApiError::BadRequest(
            "from and to must be different backends".into(),
        ));
    }
    let active = shared.router.active();
    if *active.name != *req.from {
        return Err(ApiError::BadRequest(format!(
            "live sync must start from the active backend ({}); {:?} is not active",
            active.name, req.from
        )));
    }
    let choices = shared.resolved.config.sync.choices().merged(&req.choices);
    choices.check().map_err(ApiError::BadRequest)?;
    Ok(LiveSpec {
        from_name: req.from.clone(),
        from_url: url(&req.from)?,
        to_name: req.to.clone(),
        to_url: url(&req.to)?,
        force: req.force,
        max_lag_rows: shared.switcher.config.max_lag_rows,
        batch: 10_000,
        parallel: 2,
        choices,
    })
}

pub async fn start(
    axum::extract::State(shared): AppState,
    body: Option<Json<StartReq>>,
) -> Result<Response, ApiError> {
    let Some(Json(req)) = body else {
        return Err(ApiError::BadRequest(
            "body must be JSON: {\"from\": \"BACKEND\", \"to\": \"BACKEND\"}".into(),
        ));
    };
    let running = shared
        .live
        .current()
        .map(|l| l.status())
        .filter(|s| !matches!(s.phase, Phase::Stopped | Phase::Failed));
    if let Some(s) = running {
        return Err(ApiError::LiveSyncState(format!(
            "live sync {} -> {} is already {:?}",
            s.from, s.to, s.phase
        )));
    }
    let spec = spec(&shared, &req)?;
    if let Some(f) = &shared.fleet {
        claim(f).await?;
    }
    let owner = record::owner_name(&shared.switcher.route().instance);
    let live = LiveSync::start(
        spec,
        shared.metrics.clone(),
        owner,
        StartMode::Fresh,
        &shared.lifecycle,
    )
    .await;
    let live = match live {
        Ok(l) => l,
        Err(e) => {
            if let Some(f) = &shared.fleet {
                let _ = f.release_sync(true).await;
            }
            return Err(e.into());
        }
    };
    let status = live.status();
    shared.live.set_running(live);
    Ok(Json(json!({ "ok": true, "live_sync": status })).into_response())
}

/// In a fleet, one member runs the live sync: this one, if it can take the sync lease.
async fn claim(f: &crate::fleet::Fleet) -> Result<(), ApiError> {
    use crate::fleet::leader::Claim;
    match f.claim_sync().await {
        Ok(Claim::Held) => Ok(()),
        Ok(Claim::Other(leader)) => Err(ApiError::LiveSyncState(format!(
            "the fleet's live sync runs on member {leader}; it carries every member's writes (stop it there first to start another)"
        ))),
        Err(e) => Err(ApiError::LiveSyncState(format!(
            "cannot take the fleet's sync lease: {e}"
        ))),
    }
}

pub async fn stop(axum::extract::State(shared): AppState) -> Result<Response, ApiError> {
    let live = shared.live.current().ok_or(ApiError::NoLiveSync)?;
    // Let the last captured changes through before answering. A switch started meanwhile
    // is refused (the sync is no longer running, and the old side may still hold captured
    // changes).
    if !live.stop_and_wait(std::time::Duration::from_secs(30)).await {
        return Err(ApiError::StopTimeout);
    }
    if let Some(f) = &shared.fleet
        && let Err(e) = f.release_sync(true).await
    {
        tracing::warn!(error = %e, "live sync stopped, but the fleet's sync lease could not be cleared; it runs out by itself");
    }
    Ok(Json(json!({ "ok": true, "live_sync": live.status() })).into_response())
}
