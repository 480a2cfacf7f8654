//! Applying captured changes from one side to the other. A round reads a batch of
//! changelog entries, re-reads the current source rows for their keys (so it does not
//! matter how many times or in which order a row changed), upserts the rows that exist and
//! deletes those that do not, in one target transaction, and only then removes exactly the
//! entries it read. Idempotent: a crash between the two steps just applies them again.
//!
//! The target's transaction commits with `synchronous_commit = on` whatever the target's
//! own setting, so an entry is removed only once its change is durable there; and it
//! carries the owner's fence ([`super::record`]), so a process that lost the sync to
//! another cannot commit a round.

use futures::SinkExt;
use tokio_postgres::Client;

use super::side::{Side, blocking, delete_entries, open_sqlite, pgerr};
use super::snapshot::{self, Rows, Work, pg_key_filter};
use super::sqlite_apply::sqlite_write;
use crate::sync::schema::{Table, column_list, q};
use crate::sync::{SyncError, pg_error};

/// The most entries one round reads when it retries with a larger batch.
const MAX_ROUND_ENTRIES: usize = 200_000;

/// A round read from `after`, retried when a constraint on the target refuses it. That
/// means the round read part of a change and not the rest: entries below the cursor that
/// committed late (a child whose parent is not there yet), or entries beyond its limit while
/// the rows it read already show their effect (a parent deleted whose children's deletes
/// come later). On a PostgreSQL target the first retry deletes the target rows that still
/// reference rows the snapshot no longer has ([`super::cascade`]), which settles the second
/// kind whatever the backlog. Then the retry reads from the start of the changelog, then
/// with a limit eight times larger up to [`MAX_ROUND_ENTRIES`]. Rounds are idempotent and
/// applied in one target transaction, so retrying is safe; a batch that holds every pending
/// entry, read in one snapshot, leaves the target equal to that snapshot and cannot break a
/// constraint the source keeps.
pub async fn apply_round_from(
    from: &Side,
    to: &mut Side,
    tables: &[Table],
    limit: usize,
    after: i64,
    fence: Option<&str>,
) -> Result<(usize, i64), SyncError> {
    let (mut after, mut limit, mut cascade) = (after, limit, false);
    loop {
        match apply_round(from, to, tables, limit, after, cascade, fence).await {
            Err(SyncError::Constraint(e)) if !cascade && matches!(to, Side::Postgres(_)) => {
                tracing::debug!(error = %e, after, limit, "round refused by a constraint; deleting stale referencing rows with it");
                cascade = true;
            }
            Err(SyncError::Constraint(e)) if after > 0 || limit < MAX_ROUND_ENTRIES => {
                tracing::debug!(error = %e, after, limit, "round refused by a constraint; reading more of the changelog");
                if after > 0 {
                    after = 0;
                } else {
                    limit = limit.saturating_mul(8).min(MAX_ROUND_ENTRIES);
                }
            }
            other => return other,
        }
    }
}

/// Applies one batch of changes from `from` to `to`, read above id `after`. Returns how
/// many entries it applied and the highest id among them. With `cascade` (a PostgreSQL
/// target), target rows that reference rows the snapshot no longer has are deleted too
/// (see [`super::cascade`]). With `fence` (the owner's name), the round commits only while
/// that owner holds the sync on the target.
pub async fn apply_round(
    from: &Side,
    to: &mut Side,
    tables: &[Table],
    limit: usize,
    after: i64,
    cascade: bool,
    fence: Option<&str>,
) -> Result<(usize, i64), SyncError> {
    let started = std::time::Instant::now();
    let to_pg = matches!(to, Side::Postgres(_));
    tracing::trace!(after, limit, "round: reading the source snapshot");
    let snapshot::Batch { entries, work } =
        snapshot::read(from, to_pg, tables, limit, after).await?;
    let Some(last) = entries.last().map(|e| e.id) else {
        return Ok((0, after));
    };
    let read_ms = started.elapsed().as_secs_f64() * 1e3;
    tracing::trace!(entries = entries.len(), "round: applying to the target");
    match to {
        Side::Postgres(dst) => apply_to_pg(dst, &work, cascade.then_some(tables), fence).await?,
        Side::Sqlite(path) => {
            let (path, fence) = (path.clone(), fence.map(str::to_string));
            blocking(move || sqlite_write(&mut open_sqlite(&path)?, &work, fence.as_deref()))
                .await?;
        }
    }
    let applied_ms = started.elapsed().as_secs_f64() * 1e3;
    let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
    tracing::trace!("round: removing the applied entries");
    delete_entries(from, &ids).await?;
    tracing::debug!(
        after,
        first = entries.first().map(|e| e.id).unwrap_or(0),
        last,
        entries = entries.len(),
        read_ms,
        applied_ms,
        total_ms = started.elapsed().as_secs_f64() * 1e3,
        "live sync round"
    );
    Ok((entries.len(), last))
}

/// (table, keys changed) of every table a round touches.
pub(super) fn touched_counts(work: &[Work]) -> Vec<(&str, usize)> {
    work.iter()
        .filter(|w| w.touched.truncated || !w.touched.keys.is_empty())
        .map(|w| (w.table.name.as_str(), w.touched.keys.len().max(1)))
        .collect()
}

pub(super) fn ctx(table: &str) -> impl Fn(tokio_postgres::Error) -> SyncError + '_ {
    use tokio_postgres::error::SqlState;
    move |e| {
        let msg = format!("applying changes to {table}: {}", pg_error(&e));
        match e.code() {
            Some(c)
                if *c == SqlState::FOREIGN_KEY_VIOLATION || *c == SqlState::UNIQUE_VIOLATION =>
            {
                SyncError::Constraint(msg)
            }
            _ => SyncError::Target(msg),
        }
    }
}

/// Upserts and deletes into PostgreSQL in one transaction marked as switchyard's own.
/// Upserts go parents first and deletes children first, so foreign keys hold throughout.
/// With `cascade` (every synced table, in foreign-key order) the deletes follow the
/// target's references down (see [`super::cascade`]).
async fn apply_to_pg(
    dst: &mut Client,
    work: &[Work],
    cascade: Option<&[Table]>,
    fence: Option<&str>,
) -> Result<(), SyncError> {
    tracing::trace!("apply: begin");
    let tx = dst.transaction().await.map_err(pgerr)?;
    match apply_in_tx(&tx, work, cascade, fence).await {
        Ok(()) => tx.commit().await.map_err(pgerr),
        Err(e) => {
            // Rolled back here, answered, before anything else is sent: left to the
            // transaction's drop, the ROLLBACK went out unanswered and the next round's
            // BEGIN behind it through PgBouncer (transaction mode) sometimes got no answer.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

async fn apply_in_tx(
    tx: &tokio_postgres::Transaction<'_>,
    work: &[Work],
    cascade: Option<&[Table]>,
    fence: Option<&str>,
) -> Result<(), SyncError> {
    tracing::trace!("apply: settings");
    tx.batch_execute("SET LOCAL switchyard.applying = 'on'; SET LOCAL synchronous_commit = on")
        .await
        .map_err(pgerr)?;
    if let Some(owner) = fence {
        let done = tx
            .simple_query(&super::record::pg_fence_sql(owner))
            .await
            .map_err(pgerr)?;
        if super::record::affected(&done) == 0 {
            return Err(super::record::fenced(owner));
        }
        if let Some(sql) = super::touched::pg_touched_sql(&touched_counts(work)) {
            tx.batch_execute(&sql).await.map_err(pgerr)?;
        }
    }
    for w in work {
        let t = &w.table;
        if w.touched.truncated {
            tx.batch_execute(&format!("TRUNCATE public.{} CASCADE", q(&t.name)))
                .await
                .map_err(ctx(&t.name))?;
        }
        let (data, format) = match &w.rows {
            Rows::Copy(data) => (data, "binary"),
            Rows::CopyText(data) => (data, "text"),
            Rows::Values(_) => {
                return Err(SyncError::Target(format!(
                    "applying changes to {}: rows not read as COPY",
                    t.name
                )));
            }
        };
        if w.touched.keys.is_empty() {
            continue;
        }
        let tmp = super::cascade::snapshot_table(t);
        let names: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
        tracing::trace!(table = %t.name, "apply: temp table");
        // With the defaults: a target column the source lacks (an app's schema) is
        // NOT NULL with a default, and COPY leaves it out.
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE {tmp} (LIKE public.{} INCLUDING DEFAULTS) ON COMMIT DROP",
            q(&t.name)
        ))
        .await
        .map_err(ctx(&t.name))?;
        let sink = tx
            .copy_in::<_, bytes::Bytes>(&format!(
                "COPY {tmp} ({}) FROM STDIN (FORMAT {format})",
                column_list(&names)
            ))
            .await
            .map_err(ctx(&t.name))?;
        futures::pin_mut!(sink);
        tracing::trace!(table = %t.name, "apply: copy");
        sink.send(data.clone()).await.map_err(ctx(&t.name))?;
        sink.finish().await.map_err(ctx(&t.name))?;
        let updates: Vec<String> = names
            .iter()
            .filter(|n| !t.pk.contains(n))
            .map(|n| format!("{} = EXCLUDED.{}", q(n), q(n)))
            .collect();
        let conflict = if updates.is_empty() {
            "DO NOTHING".to_string()
        } else {
            format!("DO UPDATE SET {}", updates.join(", "))
        };
        let cols = column_list(&names);
        tracing::trace!(table = %t.name, "apply: upsert");
        tx.batch_execute(&format!(
            "INSERT INTO public.{tbl} ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM {tmp} ON CONFLICT ({pk}) {conflict}",
            tbl = q(&t.name),
            pk = column_list(&t.pk),
        ))
        .await
        .map_err(ctx(&t.name))?;
    }
    if let Some(tables) = cascade {
        return super::cascade::delete_gone(tx, work, tables).await;
    }
    for w in work.iter().rev() {
        let t = &w.table;
        if w.touched.keys.is_empty() {
            continue;
        }
        tx.batch_execute(&format!(
            "DELETE FROM public.{tbl} WHERE {filter} AND ({pk}) NOT IN (SELECT {pk} FROM {tmp})",
            tbl = q(&t.name),
            pk = column_list(&t.pk),
            filter = pg_key_filter(t, &w.touched.keys),
            tmp = super::cascade::snapshot_table(t),
        ))
        .await
        .map_err(ctx(&t.name))?;
    }
    Ok(())
}
