//! Sequences across a switch: before the new side takes writes, every identity/serial
//! sequence there is moved past both its own largest id and the old side's sequence, so an
//! INSERT after cutover (or after rollback) never reuses an id the old side handed out.

use super::side::{Side, blocking, open_sqlite, pgerr, rows_of, sqlerr};
use crate::sync::SyncError;
use crate::sync::schema::{Table, lit, q};

/// (table, column) of every identity column.
fn identity_columns(tables: &[Table]) -> Vec<(&Table, &str)> {
    tables
        .iter()
        .flat_map(|t| {
            t.columns
                .iter()
                .filter(|c| c.identity)
                .map(move |c| (t, c.name.as_str()))
        })
        .collect()
}

/// The highest id each identity column's sequence has handed out on `side`.
async fn last_values(side: &Side, tables: &[Table]) -> Result<Vec<i64>, SyncError> {
    let cols = identity_columns(tables);
    if cols.is_empty() {
        return Ok(Vec::new());
    }
    match side {
        Side::Postgres(c) => {
            let exprs: Vec<String> = cols
                .iter()
                .map(|(t, col)| {
                    format!(
                        "coalesce(pg_sequence_last_value(pg_get_serial_sequence({}, {})::regclass), 0)::text",
                        lit(&format!("public.{}", q(&t.name))),
                        lit(col)
                    )
                })
                .collect();
            let rows = rows_of(
                c.simple_query(&format!("SELECT {}", exprs.join(", ")))
                    .await
                    .map_err(pgerr)?,
            );
            let row = rows.into_iter().next().unwrap_or_default();
            Ok(row
                .into_iter()
                .map(|v| v.and_then(|v| v.parse().ok()).unwrap_or(0))
                .collect())
        }
        Side::Sqlite(path) => {
            let path = path.clone();
            let names: Vec<String> = cols.iter().map(|(t, _)| t.name.clone()).collect();
            blocking(move || {
                let c = open_sqlite(&path)?;
                let has_seq: bool = c
                    .query_row(
                        "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'sqlite_sequence'",
                        [],
                        |r| r.get(0),
                    )
                    .map_err(sqlerr)?;
                names
                    .iter()
                    .map(|n| {
                        if !has_seq {
                            return Ok(0);
                        }
                        c.query_row(
                            "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = ?1",
                            [n],
                            |r| r.get(0),
                        )
                        .map_err(sqlerr)
                    })
                    .collect()
            })
            .await
        }
    }
}

/// Moves `to`'s sequences past its own rows and past `from`'s sequences.
pub async fn carry(from: &Side, to: &Side, tables: &[Table]) -> Result<usize, SyncError> {
    let floors = last_values(from, tables).await?;
    let cols = identity_columns(tables);
    if cols.is_empty() {
        return Ok(0);
    }
    match to {
        Side::Postgres(c) => {
            let stmts: Vec<String> = cols
                .iter()
                .zip(&floors)
                .map(|((t, col), floor)| {
                    format!(
                        "SELECT setval(s, v, true) FROM (SELECT pg_get_serial_sequence({}, {}) AS s, \
                         GREATEST((SELECT coalesce(max({}), 0) FROM public.{}), {floor}, 1) AS v) x WHERE s IS NOT NULL",
                        lit(&format!("public.{}", q(&t.name))),
                        lit(col),
                        q(col),
                        q(&t.name)
                    )
                })
                .collect();
            c.batch_execute(&stmts.join("; ")).await.map_err(|e| {
                SyncError::Target(format!(
                    "advancing sequences: {}",
                    crate::sync::pg_error(&e)
                ))
            })?;
        }
        Side::Sqlite(path) => {
            let path = path.clone();
            let work: Vec<(String, i64)> = cols
                .iter()
                .zip(&floors)
                .map(|((t, _), f)| (t.name.clone(), *f))
                .collect();
            blocking(move || {
                let c = open_sqlite(&path)?;
                for (name, floor) in &work {
                    // Only AUTOINCREMENT tables have a row; rowid tables use max(rowid) + 1.
                    let _ = c.execute(
                        "UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = ?2",
                        rusqlite::params![floor, name],
                    );
                }
                Ok(())
            })
            .await?;
        }
    }
    Ok(cols.len())
}
