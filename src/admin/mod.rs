//! The admin HTTP API (axum): liveness, readiness, status, Prometheus metrics, and the
//! mutating endpoints (cutover, rollback, pause, resume, live sync start/stop), which are POST-only and need
//! `Authorization: Bearer TOKEN` when a token is configured (compared in constant time).
//!
//! - [`status`]: the `/status` document.
//! - [`sync`]: starting and stopping live sync.
//! - [`errors`]: every error it answers with, and its status code.

pub mod errors;
pub mod status;
pub mod sync;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

use crate::router::switch::{SwitchError, SwitchOptions, SwitchRecord};
use crate::state::ProxyState;
use errors::ApiError;

type AppState = State<Arc<ProxyState>>;

/// The admin router. Every mutating route sits behind [`require_token`], which runs
/// before anything of the request (body, content type) is read.
pub fn router(shared: Arc<ProxyState>) -> axum::Router {
    let mutating = axum::Router::new()
        .route("/cutover", post(cutover))
        .route("/rollback", post(rollback))
        .route("/pause", post(pause))
        .route("/resume", post(resume))
        .route("/sync/start", post(sync::start))
        .route("/sync/stop", post(sync::stop))
        .route("/reload", post(reload))
        .route_layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            require_token,
        ));
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status::status))
        .route("/metrics", get(metrics))
        .route("/fleet", get(fleet))
        .merge(mutating)
        .with_state(shared)
}

/// Answers 401 unless the request carries the admin token (when one is configured).
async fn require_token(
    State(shared): AppState,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match authorize(&shared, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(r) => r,
    }
}

/// Serves the admin API until the proxy shuts down.
pub async fn serve(listener: TcpListener, shared: Arc<ProxyState>) {
    let stop = shared.lifecycle.token().cancelled_owned();
    let app = router(shared);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(error = %e, "admin API stopped");
    }
}

/// Checks the bearer token of a mutating request.
#[allow(clippy::result_large_err)]
fn authorize(shared: &ProxyState, headers: &HeaderMap) -> Result<(), Response> {
    let Some(token) = shared
        .resolved
        .config
        .admin
        .token
        .as_deref()
        .filter(|t| !t.is_empty())
    else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        Ok(())
    } else {
        shared
            .metrics
            .count_error(crate::metrics::ErrorKind::AdminAuth);
        Err(ApiError::Unauthorized.into_response())
    }
}

async fn healthz() -> Response {
    Json(json!({ "ok": true })).into_response()
}

async fn readyz(State(shared): AppState) -> Response {
    let active = shared.router.active();
    let h = active.health();
    if let Some(b) = shared.live.blocked() {
        let reason = format!(
            "live sync {} -> {} recorded in the databases is not running: {}",
            b.from, b.to, b.reason
        );
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "active": &*active.name, "reason": reason })),
        )
            .into_response();
    }
    if h.checked && h.up {
        Json(json!({ "ready": true, "active": &*active.name })).into_response()
    } else {
        let reason = if !h.checked {
            "not checked yet".to_string()
        } else {
            h.last_error.unwrap_or_default()
        };
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "active": &*active.name, "reason": reason })),
        )
            .into_response()
    }
}

async fn metrics(State(shared): AppState) -> Response {
    shared.refresh_gauges();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render(),
    )
        .into_response()
}

/// A switch's answer: its record (200 when it happened, 503 when it was abandoned and the
/// app stayed where it was), or why it could not start.
fn switch_response(r: Result<SwitchRecord, SwitchError>) -> Result<Response, ApiError> {
    let rec = r?;
    let status = if rec.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, Json(rec)).into_response())
}

#[derive(Deserialize)]
struct CutoverReq {
    to: String,
    /// Wait this long (`"30s"`) for transactions open longer than the drain bound to
    /// finish, instead of refusing at once.
    wait: Option<String>,
}

#[derive(Deserialize, Default)]
struct RollbackReq {
    wait: Option<String>,
}

fn switch_options(wait: Option<&str>) -> Result<SwitchOptions, ApiError> {
    let wait = wait
        .map(crate::config::parse_duration)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("wait: {e}")))?;
    Ok(SwitchOptions { wait })
}

async fn cutover(
    State(shared): AppState,
    body: Option<Json<CutoverReq>>,
) -> Result<Response, ApiError> {
    let Some(Json(req)) = body else {
        return Err(ApiError::BadRequest(
            "body must be JSON: {\"to\": \"BACKEND\"} (optionally \"wait\": \"30s\")".into(),
        ));
    };
    let opts = switch_options(req.wait.as_deref())?;
    if let Some(r) = forwarded(&shared, "cutover", Some(&req.to), opts).await {
        return Ok(r);
    }
    switch_response(
        detached(shared, move |s| async move {
            s.switcher
                .cutover(&s.router, &s.metrics, &req.to, opts)
                .await
        })
        .await,
    )
}

/// In a fleet whose live sync runs on another member, the switch is that member's to run
/// (it owns the data step): the request goes there through the fleet's store.
async fn forwarded(
    shared: &Arc<ProxyState>,
    kind: &str,
    to: Option<&str>,
    opts: SwitchOptions,
) -> Option<Response> {
    let fleet = shared.fleet.as_ref()?;
    let leader = match fleet.forward_to(shared) {
        Ok(leader) => leader?,
        Err(why) => {
            let body = serde_json::json!({ "ok": false, "error": why });
            return Some((StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response());
        }
    };
    tracing::info!(%leader, kind, "switch passed to the member that runs the fleet's live sync");
    let (status, body) = fleet.forward(kind, to, opts.wait).await;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Some((status, Json(body)).into_response())
}

/// Runs a switch on its own task: if the admin client hangs up mid-switch (Ctrl-C on
/// `ctl cutover`, an HTTP timeout), hyper drops this handler, and a switch dropped inside
/// its pause would leave every client held. On its own task it always runs to its end.
async fn detached<F, Fut>(shared: Arc<ProxyState>, f: F) -> Result<SwitchRecord, SwitchError>
where
    F: FnOnce(Arc<ProxyState>) -> Fut,
    Fut: std::future::Future<Output = Result<SwitchRecord, SwitchError>> + Send + 'static,
{
    let lifecycle = shared.lifecycle.clone();
    lifecycle
        .spawn(f(shared))
        .await
        .unwrap_or_else(|e| Err(SwitchError::Task(e.to_string())))
}

async fn rollback(
    State(shared): AppState,
    body: Option<Json<RollbackReq>>,
) -> Result<Response, ApiError> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let opts = switch_options(req.wait.as_deref())?;
    if let Some(r) = forwarded(&shared, "rollback", None, opts).await {
        return Ok(r);
    }
    switch_response(
        detached(shared, move |s| async move {
            s.switcher.rollback(&s.router, &s.metrics, opts).await
        })
        .await,
    )
}

#[derive(Deserialize, Default)]
struct PauseReq {
    timeout_ms: Option<u64>,
}

async fn pause(
    State(shared): AppState,
    body: Option<Json<PauseReq>>,
) -> Result<Response, ApiError> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let timeout = req.timeout_ms.map(Duration::from_millis);
    shared
        .switcher
        .pause(&shared.router, &shared.metrics, timeout)?;
    Ok(Json(json!({ "ok": true, "paused": true, "timeout_ms": req.timeout_ms })).into_response())
}

/// The fleet as its store knows it now (404 without `[fleet]`).
async fn fleet(State(shared): AppState) -> Result<Response, ApiError> {
    let Some(f) = &shared.fleet else {
        return Err(ApiError::NotFound(
            "this proxy is not a fleet member (no [fleet] in its config)".into(),
        ));
    };
    Ok(Json(f.fresh_view().await).into_response())
}

async fn reload(State(shared): AppState) -> Result<Response, ApiError> {
    let report = crate::reload::reload(&shared)?;
    Ok(Json(json!({ "ok": true, "reload": report })).into_response())
}

async fn resume(State(shared): AppState) -> Result<Response, ApiError> {
    let held = shared.switcher.resume(&shared.router, &shared.metrics)?;
    Ok(
        Json(json!({ "ok": true, "paused": false, "held_ms": held.as_millis() as u64 }))
            .into_response(),
    )
}
