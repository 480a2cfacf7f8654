//! What a live sync reports in `/status` and through `sync --live`: phase, direction, lag
//! and the last catch-up done inside a switch.

use serde::Serialize;

use super::LiveSpec;
use crate::sync::choices::ColumnChoices;
use crate::sync::progress::CopyProgress;

/// Where a live sync is. The number is the `switchyard_sync_phase` metric value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Starting = 0,
    Capturing = 1,
    Backfilling = 2,
    Streaming = 3,
    Stopped = 4,
    Failed = 5,
}

/// The catch-up done inside the last switch's pause.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CatchUp {
    pub from: String,
    pub to: String,
    /// Changelog entries pending when the pause began (all applied before the swap).
    pub entries: u64,
    pub apply_ms: f64,
    pub sequences: usize,
}

/// The `/status` view of a live sync.
#[derive(Debug, Clone, Serialize)]
pub struct LiveStatus {
    pub from: String,
    pub to: String,
    /// Changes flow from `source` to `target` now (reversed after a cutover).
    pub source: String,
    pub target: String,
    pub phase: Phase,
    pub tables: usize,
    pub backfilled_rows: u64,
    /// The initial copy's progress (kept once done; None when a resumed sync needed none).
    pub copy: Option<CopyProgress>,
    /// Changelog entries on the source not yet applied.
    pub pending_changes: u64,
    /// Age of the oldest pending change.
    pub oldest_change_seconds: f64,
    pub applied_total: u64,
    /// Writes that reached the target (the inactive side) directly, not through the
    /// active one. They are kept and carried over at the next switch.
    pub inactive_side_writes: u64,
    pub last_catch_up: Option<CatchUp>,
    pub last_error: Option<String>,
    /// Taken over from the record in the databases (after a restart or a crash).
    pub resumed: bool,
    /// The process applying changes (instance/host/pid).
    pub owner: String,
    /// Foreign keys the copy left NOT VALID, validated once the changes captured during
    /// the copy are applied.
    pub unvalidated_foreign_keys: Vec<String>,
    /// Source columns left out and column types the user chose.
    #[serde(skip_serializing_if = "ColumnChoices::is_empty")]
    pub choices: ColumnChoices,
}

impl LiveStatus {
    pub fn new(spec: &LiveSpec, tables: usize) -> Self {
        LiveStatus {
            from: spec.from_name.clone(),
            to: spec.to_name.clone(),
            source: spec.from_name.clone(),
            target: spec.to_name.clone(),
            phase: Phase::Starting,
            tables,
            backfilled_rows: 0,
            copy: None,
            pending_changes: 0,
            oldest_change_seconds: 0.0,
            applied_total: 0,
            inactive_side_writes: 0,
            last_catch_up: None,
            last_error: None,
            resumed: false,
            owner: String::new(),
            unvalidated_foreign_keys: Vec::new(),
            choices: spec.choices.clone(),
        }
    }
}
