//! Applying captured changes from one side to the other. A round reads a batch of
//! changelog entries, re-reads the current source rows for their keys (so it does not
//! matter how many times or in which order a row changed), upserts the rows that exist and
//! deletes those that do not, in one target transaction, and only then removes exactly the
//! entries it read. Idempotent: a crash between the two steps just applies them again.

use futures::SinkExt;
use tokio_postgres::Client;

use super::side::{Side, blocking, delete_entries, open_sqlite, pgerr};
use super::snapshot::{self, Rows, Work, pg_key_filter};
use super::sqlite_apply::sqlite_write;
use crate::sync::schema::{Table, column_list, q};
use crate::sync::{SyncError, pg_error};

/// A round read from `after`, and when it fails (a child whose parent committed late below
/// the cursor breaks a foreign key), the same round again from the start of the changelog.
/// Rounds are idempotent and applied in one target transaction, so the retry is safe.
pub async fn apply_round_from(
    from: &Side,
    to: &mut Side,
    tables: &[Table],
    limit: usize,
    after: i64,
) -> Result<(usize, i64), SyncError> {
    if after == 0 {
        return apply_round(from, to, tables, limit, 0).await;
    }
    match apply_round(from, to, tables, limit, after).await {
        Ok(r) => Ok(r),
        Err(e) => {
            tracing::debug!(error = %e, "round from the cursor failed; retrying from the start");
            apply_round(from, to, tables, limit, 0).await
        }
    }
}

/// Applies one batch of changes from `from` to `to`, read above id `after`. Returns how
/// many entries it applied and the highest id among them.
pub async fn apply_round(
    from: &Side,
    to: &mut Side,
    tables: &[Table],
    limit: usize,
    after: i64,
) -> Result<(usize, i64), SyncError> {
    let started = std::time::Instant::now();
    let to_pg = matches!(to, Side::Postgres(_));
    let snapshot::Batch { entries, work } =
        snapshot::read(from, to_pg, tables, limit, after).await?;
    let Some(last) = entries.last().map(|e| e.id) else {
        return Ok((0, after));
    };
    let read_ms = started.elapsed().as_secs_f64() * 1e3;
    match to {
        Side::Postgres(dst) => apply_to_pg(dst, &work).await?,
        Side::Sqlite(path) => {
            let path = path.clone();
            blocking(move || sqlite_write(&mut open_sqlite(&path)?, &work)).await?;
        }
    }
    let applied_ms = started.elapsed().as_secs_f64() * 1e3;
    let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
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

fn ctx(table: &str) -> impl Fn(tokio_postgres::Error) -> SyncError + '_ {
    move |e| SyncError::Target(format!("applying changes to {table}: {}", pg_error(&e)))
}

/// Upserts and deletes into PostgreSQL in one transaction marked as switchyard's own.
/// Upserts go parents first and deletes children first, so foreign keys hold throughout.
async fn apply_to_pg(dst: &mut Client, work: &[Work]) -> Result<(), SyncError> {
    let tx = dst.transaction().await.map_err(pgerr)?;
    tx.batch_execute("SET LOCAL switchyard.applying = 'on'")
        .await
        .map_err(pgerr)?;
    for w in work {
        let t = &w.table;
        if w.touched.truncated {
            tx.batch_execute(&format!("TRUNCATE public.{} CASCADE", q(&t.name)))
                .await
                .map_err(ctx(&t.name))?;
        }
        let Rows::Copy(data) = &w.rows else {
            return Err(SyncError::Target(format!(
                "applying changes to {}: rows not read as COPY",
                t.name
            )));
        };
        if w.touched.keys.is_empty() {
            continue;
        }
        let tmp = q(&format!("_sy_{}", t.name));
        let names: Vec<String> = t.columns.iter().map(|c| c.name.clone()).collect();
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE {tmp} (LIKE public.{}) ON COMMIT DROP",
            q(&t.name)
        ))
        .await
        .map_err(ctx(&t.name))?;
        let sink = tx
            .copy_in::<_, bytes::Bytes>(&format!(
                "COPY {tmp} ({}) FROM STDIN (FORMAT binary)",
                column_list(&names)
            ))
            .await
            .map_err(ctx(&t.name))?;
        futures::pin_mut!(sink);
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
        tx.batch_execute(&format!(
            "INSERT INTO public.{tbl} ({cols}) OVERRIDING SYSTEM VALUE SELECT {cols} FROM {tmp} ON CONFLICT ({pk}) {conflict}",
            tbl = q(&t.name),
            pk = column_list(&t.pk),
        ))
        .await
        .map_err(ctx(&t.name))?;
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
            tmp = q(&format!("_sy_{}", t.name)),
        ))
        .await
        .map_err(ctx(&t.name))?;
    }
    tx.commit().await.map_err(pgerr)
}
