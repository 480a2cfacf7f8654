//! After a copy, every identity/serial sequence of the target is set past the largest id
//! copied (and past SQLite's `sqlite_sequence`), so the application's next INSERT never
//! collides with a copied row.

use tokio_postgres::Client;

use crate::sync::schema::{Table, lit, q};
use crate::sync::{SyncError, pg_error};

/// The statement that advances the sequence of `t.col`, or None if it has none.
pub fn advance_sql(t: &Table, col: &str) -> String {
    let floor = t.sequence_floor.unwrap_or(0);
    format!(
        "SELECT setval(s, v, v >= 1) FROM (SELECT pg_get_serial_sequence({}, {}) AS s, \
         GREATEST((SELECT COALESCE(max({}), 0) FROM {}), {floor}, 1) AS v) x WHERE s IS NOT NULL",
        lit(&format!("public.{}", q(&t.name))),
        lit(col),
        q(col),
        q(&t.name)
    )
}

/// Advances every identity column's sequence of `tables`.
pub async fn advance(c: &Client, tables: &[Table]) -> Result<usize, SyncError> {
    let mut n = 0;
    for t in tables {
        for col in t.columns.iter().filter(|c| c.identity) {
            c.batch_execute(&advance_sql(t, &col.name))
                .await
                .map_err(|e| {
                    SyncError::Target(format!(
                        "advancing the sequence of {}.{}: {}",
                        t.name,
                        col.name,
                        pg_error(&e)
                    ))
                })?;
            n += 1;
        }
    }
    Ok(n)
}
