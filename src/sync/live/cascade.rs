//! The delete half of an apply round on a PostgreSQL target, for a round that a foreign key
//! refused: rows whose keys the round touched and the source snapshot no longer has are
//! deleted together with the target rows that still reference them, down every level of
//! foreign keys.
//!
//! Why that is safe: in the source snapshot no row references a row that is gone (the
//! source keeps its foreign keys), so a target row that does is stale — deleted or re-pointed
//! on the source by a change whose changelog entry the round did not read (it committed
//! late, below the cursor, or lies beyond the round's limit). That entry is still pending,
//! so a later round re-reads the row and writes it back if it still exists. Without this,
//! such a round fails until one batch holds every pending entry, which under sustained
//! writes may never happen.

use tokio_postgres::Transaction;

use super::apply::ctx;
use super::snapshot::{Work, pg_key_filter};
use crate::sync::SyncError;
use crate::sync::schema::{ForeignKey, Table, column_list, derived_name, q};

/// Rounds of following a table's references to itself (a tree of rows) before giving up.
const SELF_DEPTH: usize = 1000;

/// A foreign key whose columns are known on both sides.
fn is_usable(f: &ForeignKey) -> bool {
    !f.columns.is_empty() && f.columns.len() == f.ref_columns.len()
}

fn gone_table(t: &Table) -> String {
    q(&derived_name("_sy_gone_", &t.name))
}

/// The temporary table holding `t`'s rows of a round's snapshot.
pub(super) fn snapshot_table(t: &Table) -> String {
    q(&derived_name("_sy_", &t.name))
}

/// Deletes, bottom-up, the touched rows the snapshot lacks and every target row that
/// references them. `tables` is every synced table in foreign-key order (parents first);
/// `work` holds the round's touched tables, whose snapshot rows are in `_sy_<table>`.
pub(super) async fn delete_gone(
    tx: &Transaction<'_>,
    work: &[Work],
    tables: &[Table],
) -> Result<(), SyncError> {
    let mut gone: Vec<&Table> = Vec::new();
    for t in tables {
        let touched = work
            .iter()
            .find(|w| w.table.name == t.name && !w.touched.keys.is_empty());
        if collect(tx, t, touched, &gone).await.map_err(ctx(&t.name))? {
            gone.push(t);
        }
    }
    for t in gone.iter().rev() {
        let pk = column_list(&t.pk);
        tx.execute(
            &format!(
                "DELETE FROM public.{} WHERE ({pk}) IN (SELECT {pk} FROM {})",
                q(&t.name),
                gone_table(t)
            ),
            &[],
        )
        .await
        .map_err(ctx(&t.name))?;
    }
    Ok(())
}

/// Fills `_sy_gone_<t>` with the rows of `t` to delete; false when there are none to look
/// for (the table was not touched and references no table with rows going).
async fn collect(
    tx: &Transaction<'_>,
    t: &Table,
    touched: Option<&Work>,
    gone: &[&Table],
) -> Result<bool, tokio_postgres::Error> {
    let pk = column_list(&t.pk);
    let mut parts = Vec::new();
    let keep = match touched {
        Some(w) => {
            parts.push(pg_key_filter(t, &w.touched.keys));
            format!(
                " AND ({pk}) NOT IN (SELECT {pk} FROM {})",
                snapshot_table(t)
            )
        }
        None => String::new(),
    };
    for f in t.fks.iter().filter(|f| is_usable(f)) {
        if let Some(parent) = gone.iter().find(|g| g.name == f.ref_table) {
            parts.push(format!(
                "({}) IN (SELECT {} FROM {})",
                column_list(&f.columns),
                column_list(&f.ref_columns),
                gone_table(parent)
            ));
        }
    }
    if parts.is_empty() {
        return Ok(false);
    }
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE {g} ON COMMIT DROP AS SELECT * FROM public.{t} WHERE ({parts}){keep}",
        g = gone_table(t),
        t = q(&t.name),
        parts = parts.join(" OR "),
    ))
    .await?;
    // Rows below a gone row in a tree within the table go too, by any of its references
    // to itself.
    let below: Vec<String> = t
        .fks
        .iter()
        .filter(|f| f.ref_table == t.name && is_usable(f))
        .map(|f| {
            format!(
                "({}) IN (SELECT {} FROM {})",
                column_list(&f.columns),
                column_list(&f.ref_columns),
                gone_table(t)
            )
        })
        .collect();
    if below.is_empty() {
        return Ok(true);
    }
    let grow = format!(
        "INSERT INTO {g} SELECT * FROM public.{t} WHERE ({below}) AND ({pk}) NOT IN (SELECT {pk} FROM {g}){keep}",
        g = gone_table(t),
        t = q(&t.name),
        below = below.join(" OR "),
    );
    for _ in 0..SELF_DEPTH {
        if tx.execute(&grow, &[]).await? == 0 {
            break;
        }
    }
    Ok(true)
}
