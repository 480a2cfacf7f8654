//! Every error the admin API answers with, and its HTTP status, in one place: a JSON body
//! `{"ok": false, "error": "…"}` whose message says what to do.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use thiserror::Error;

use crate::reload::ReloadError;
use crate::router::switch::SwitchError;
use crate::sync::SyncError;

#[derive(Debug, Error)]
pub enum ApiError {
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// The request itself is wrong (a missing body, a bad duration).
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Switch(#[from] SwitchError),
    #[error(transparent)]
    Reload(#[from] ReloadError),
    /// Starting live sync failed.
    #[error(transparent)]
    LiveSync(#[from] SyncError),
    /// A live sync is already running, or none is.
    #[error("{0}")]
    LiveSyncState(String),
    #[error("no live sync is running")]
    NoLiveSync,
    /// What was asked for does not exist here.
    #[error("{0}")]
    NotFound(String),
    #[error(
        "live sync did not finish applying its pending changes within 30 s; it stops after its current round"
    )]
    StopTimeout,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Switch(SwitchError::Busy | SwitchError::NotPaused) => StatusCode::CONFLICT,
            ApiError::Switch(SwitchError::Unknown(_)) => StatusCode::NOT_FOUND,
            ApiError::Switch(SwitchError::Task(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Switch(_) => StatusCode::BAD_REQUEST,
            ApiError::Reload(_) => StatusCode::BAD_REQUEST,
            ApiError::LiveSync(SyncError::Connect { .. }) => StatusCode::BAD_GATEWAY,
            ApiError::LiveSync(_) => StatusCode::BAD_REQUEST,
            ApiError::LiveSyncState(_) => StatusCode::CONFLICT,
            ApiError::NoLiveSync => StatusCode::NOT_FOUND,
            ApiError::StopTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status(),
            Json(json!({ "ok": false, "error": self.to_string() })),
        )
            .into_response()
    }
}
