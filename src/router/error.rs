//! What can go wrong with a switch, typed: a request that cannot start one
//! ([`SwitchError`]), the step at which a switch that started was abandoned
//! ([`StepError`], kept in the switch record with a stable `failure` name for machines),
//! and what the data hook reports ([`HookError`]). The admin API maps them to status
//! codes in one place (`admin::errors`).

use thiserror::Error;

use crate::config::Dur;

/// A switch request that could not start.
#[derive(Debug, Error)]
pub enum SwitchError {
    #[error("a switch or a manual pause is already in progress")]
    Busy,
    #[error("no backend named {0:?}")]
    Unknown(String),
    #[error("backend {0:?} is already active")]
    AlreadyActive(String),
    #[error("nothing to roll back to: no switch has happened yet")]
    NoPrevious,
    #[error("not paused")]
    NotPaused,
    /// The switch task itself failed (a panic).
    #[error("the switch task failed: {0}")]
    Task(String),
}

/// What the data step of a switch ([`super::hook::SwitchHook`]) reports.
#[derive(Debug, Clone, Error)]
pub enum HookError {
    /// A condition for the switch does not hold (live sync not streaming, lagging,
    /// blocked, captured changes left behind); nothing was paused or changed.
    #[error("{0}")]
    Refused(String),
    /// The data step failed while it ran.
    #[error("{0}")]
    Failed(String),
}

/// Why a switch that started was abandoned (before the swap: clients resumed on the old
/// backend).
#[derive(Debug, Clone, Error)]
pub enum StepError {
    #[error("preflight of {backend:?} failed: {reason}")]
    Preflight { backend: String, reason: String },
    #[error("preflight of {backend:?} timed out after {after}")]
    PreflightTimeout { backend: String, after: Dur },
    #[error(
        "{count} transaction(s) on {backend:?} open longer than switch.drain_timeout ({bound}){waited}; nobody was paused. Oldest: {oldest}. Retry when it is done, or ask to wait for it (ctl cutover --wait 30s)"
    )]
    OldTransactions {
        backend: String,
        count: usize,
        bound: Dur,
        /// " (waited 3.0 s)" when asked to wait.
        waited: String,
        oldest: String,
    },
    #[error(
        "{in_flight} transaction(s) still running on {backend:?} after drain_timeout {bound}; staying on {backend:?}"
    )]
    DrainTimeout {
        backend: String,
        in_flight: usize,
        bound: Dur,
    },
    #[error(
        "the switch took longer than switch.max_pause ({bound}) while {during}; it was abandoned before the swap and clients resumed on {backend:?}"
    )]
    MaxPause {
        backend: String,
        bound: Dur,
        during: &'static str,
    },
    #[error("{0}")]
    Refused(String),
    #[error("data sync before the swap failed: {0}")]
    Hook(String),
    #[error("cannot record the new route, so the switch is abandoned: {0}")]
    RouteFile(String),
    /// The fleet did not prepare or commit (a member did not acknowledge, the store
    /// could not be reached, another switch runs).
    #[error("{0}")]
    Fleet(String),
}

impl StepError {
    /// A stable name for the failure, for scripts and alerts.
    pub fn kind(&self) -> &'static str {
        match self {
            StepError::Preflight { .. } => "preflight",
            StepError::PreflightTimeout { .. } => "preflight_timeout",
            StepError::OldTransactions { .. } => "old_transactions",
            StepError::DrainTimeout { .. } => "drain_timeout",
            StepError::MaxPause { .. } => "max_pause",
            StepError::Refused(_) => "refused",
            StepError::Hook(_) => "data_sync",
            StepError::RouteFile(_) => "route_file",
            StepError::Fleet(_) => "fleet",
        }
    }
}

impl From<HookError> for StepError {
    fn from(e: HookError) -> Self {
        match e {
            HookError::Refused(m) => StepError::Refused(m),
            HookError::Failed(m) => StepError::Hook(m),
        }
    }
}
