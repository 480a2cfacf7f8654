//! verify while the app writes and live sync runs: a first look sees rows changed a
//! moment ago on one side and not yet on the other. Those are changes in flight, and live
//! sync's changelog holds them. So differences are looked at again once live sync has
//! applied everything captured up to the end of the previous look (its cursor has passed
//! that point), and only those seen at every look are reported: a real difference stays,
//! a change in flight does not (it would have to be in flight again, on the same row, at
//! each look).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::{MAX_KEYS, Report, TableReport};
use crate::sync::SyncError;
use crate::sync::live::record;
use crate::sync::live::side::{self, Side};

/// Looks after the first.
const ROUNDS: usize = 3;
/// How long to wait, in all, for live sync to apply what it captured.
const CATCH_UP: Duration = Duration::from_secs(30);

/// [`super::run`], then the differences looked at again while a live sync between the
/// two sides applies its changelog.
pub async fn run(from: &str, to: &str, tables: &[String]) -> Result<Report, SyncError> {
    let mut report = super::run(from, to, tables).await?;
    if report.identical {
        return Ok(report);
    }
    let sides = capturing_sides(from, to).await?;
    if sides.is_empty() {
        return Ok(report);
    }
    let started = Instant::now();
    let deadline = started + CATCH_UP;
    for round in 1..=ROUNDS {
        let again: Vec<String> = report
            .tables
            .iter()
            .filter(|t| t.differences > 0 && t.error.is_none() && t.keys.len() < MAX_KEYS)
            .map(|t| t.table.clone())
            .collect();
        if again.is_empty() {
            break;
        }
        if !caught_up(&sides, deadline).await? {
            report.note = Some(format!(
                "live sync did not apply the changes captured before this check within {} s; the differences are as seen",
                CATCH_UP.as_secs()
            ));
            break;
        }
        tracing::debug!(round, tables = ?again, "looking again at the differences once live sync applied what it captured");
        let next = super::run(from, to, &again).await?;
        for t in next.tables {
            if let Some(old) = report.tables.iter_mut().find(|o| o.table == t.table) {
                *old = keep_persisting(old, t);
            }
        }
        report.identical = report.tables.iter().all(|t| t.differences == 0);
        if report.identical {
            break;
        }
    }
    report.seconds += started.elapsed().as_secs_f64();
    Ok(report)
}

/// The later look at a table, keeping only the differences the earlier one saw too.
fn keep_persisting(earlier: &TableReport, mut later: TableReport) -> TableReport {
    if later.keys.len() >= MAX_KEYS {
        return later;
    }
    let seen: HashSet<&str> = earlier.keys.iter().map(String::as_str).collect();
    let before = later.keys.len();
    later.keys.retain(|k| seen.contains(k.as_str()));
    later.in_flight = (before - later.keys.len()) as u64;
    later.listed.retain(|d| seen.contains(d.key.as_str()));
    later.differences = later.keys.len() as u64;
    later.ranges_with_differences = later.ranges_with_differences.min(later.differences);
    later
}

/// The side a running live sync applies changes from, if it is one of these two (None:
/// no live sync runs between them, so nothing is in flight). Only its changelog drains:
/// writes captured on the other side (not through the proxy) wait for the next switch.
async fn capturing_sides(from: &str, to: &str) -> Result<Vec<Side>, SyncError> {
    for (url, what) in [(from, "--from"), (to, "--to")] {
        let s = crate::sync::live::open_side(url, what).await?;
        let found = record::find(&s).await?;
        let Some(rec) = found.record.filter(|r| r.phase.active()) else {
            continue;
        };
        let source = if rec.forward { rec.from_db } else { rec.to_db };
        if found.changelog && found.identity.as_deref() == Some(source.as_str()) {
            return Ok(vec![s]);
        }
    }
    Ok(Vec::new())
}

/// Waits until every change captured so far on `sides` is applied (false at `deadline`).
async fn caught_up(sides: &[Side], deadline: Instant) -> Result<bool, SyncError> {
    let mut marks = Vec::new();
    for s in sides {
        marks.push(side::max_id(s).await?);
    }
    loop {
        let mut left = 0;
        for (s, &m) in sides.iter().zip(&marks) {
            left += side::pending_up_to(s, m).await?;
        }
        if left == 0 {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::verify::Difference;

    fn rep(keys: &[&str]) -> TableReport {
        TableReport {
            table: "t".into(),
            differences: keys.len() as u64,
            ranges_with_differences: 1,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            listed: keys
                .iter()
                .map(|k| Difference {
                    key: k.to_string(),
                    column: None,
                    source: None,
                    target: None,
                    kind: "missing in target",
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn only_differences_seen_at_both_looks_remain() {
        let kept = keep_persisting(&rep(&["[\"1\"]", "[\"2\"]"]), rep(&["[\"2\"]", "[\"3\"]"]));
        assert_eq!(kept.keys, ["[\"2\"]"]);
        assert_eq!(kept.differences, 1);
        assert_eq!(kept.listed.len(), 1);
        assert_eq!(kept.in_flight, 1);
        let gone = keep_persisting(&rep(&["[\"1\"]"]), rep(&["[\"3\"]"]));
        assert_eq!((gone.differences, gone.ranges_with_differences), (0, 0));
    }
}
