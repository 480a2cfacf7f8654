//! Which tables live sync changed, and when: every apply round records its tables in a
//! small log on the side it writes (`switchyard.touched`, `_switchyard_touched`), in its
//! own transaction, so `verify --since` can check only the tables changed since a given
//! point (after a target's crash, say) instead of every table.

use super::record::{first_text, sqlite_has};
use super::side::{Side, blocking, open_sqlite, pgerr, rows_of, sqlerr};
use crate::sync::SyncError;
use crate::sync::schema::lit;

/// Records, inside a PostgreSQL apply round, which tables it changed and when (what
/// `verify --since` reads): (table, changes) pairs.
pub fn pg_touched_sql(tables: &[(&str, usize)]) -> Option<String> {
    if tables.is_empty() {
        return None;
    }
    let values: Vec<String> = tables
        .iter()
        .map(|(t, n)| format!("({}, now(), {n})", lit(t)))
        .collect();
    Some(format!(
        "INSERT INTO switchyard.touched AS t (tbl, at, changes) VALUES {} \
         ON CONFLICT (tbl) DO UPDATE SET at = now(), changes = t.changes + EXCLUDED.changes",
        values.join(", ")
    ))
}

/// [`pg_touched_sql`] for a SQLite target (timestamps in UTC, as the SQLite backend
/// stores them).
pub fn sqlite_touched(
    tx: &rusqlite::Connection,
    tables: &[(&str, usize)],
) -> Result<(), SyncError> {
    for (t, n) in tables {
        tx.execute(
            "INSERT INTO _switchyard_touched (tbl, at, changes) VALUES (?1, strftime('%Y-%m-%d %H:%M:%f', 'now'), ?2) \
             ON CONFLICT (tbl) DO UPDATE SET at = excluded.at, changes = changes + excluded.changes",
            rusqlite::params![t, *n as i64],
        )
        .map_err(sqlerr)?;
    }
    Ok(())
}

/// A point in time for `verify --since`: a while ago, or a UTC timestamp.
#[derive(Debug, Clone, PartialEq)]
pub enum Since {
    Ago(std::time::Duration),
    /// `YYYY-MM-DD HH:MM[:SS[.fff]]`, in UTC.
    At(String),
}

impl Since {
    /// `10m`, `2h` (a while ago), or `2026-12-01T10:00:00Z` / `2026-12-01 10:00` (UTC).
    pub fn parse(s: &str) -> Result<Since, String> {
        if let Ok(d) = crate::config::parse_duration(s) {
            return Ok(Since::Ago(d));
        }
        let t = s.trim().replace('T', " ");
        let t = t
            .trim_end_matches('Z')
            .trim_end_matches("+00:00")
            .to_string();
        let digits = t.chars().filter(char::is_ascii_digit).count();
        let shape_ok = t.len() >= 16
            && t.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '-' | ':' | ' ' | '.'))
            && digits >= 12;
        if shape_ok {
            Ok(Since::At(t))
        } else {
            Err(format!(
                "--since {s:?}: give a duration (10m, 2h) or a UTC time (2026-12-01T10:00:00Z)"
            ))
        }
    }
}

/// The tables live sync changed on `side` since `since`, from its touched-tables log
/// (empty when the side has none).
pub async fn touched_since(side: &Side, since: &Since) -> Result<Vec<String>, SyncError> {
    match side {
        Side::Postgres(c) => {
            let at = match since {
                Since::Ago(d) => format!("now() - interval '{} milliseconds'", d.as_millis()),
                Since::At(t) => format!("{}::timestamptz", lit(&format!("{t}+00"))),
            };
            let sql = format!("SELECT tbl FROM switchyard.touched WHERE at >= {at} ORDER BY tbl");
            let exists = first_text(
                c,
                "SELECT (to_regclass('switchyard.touched') IS NOT NULL)::text",
            )
            .await?;
            if exists.as_deref() != Some("true") {
                return Ok(Vec::new());
            }
            Ok(rows_of(c.simple_query(&sql).await.map_err(pgerr)?)
                .into_iter()
                .filter_map(|r| r.into_iter().next().flatten())
                .collect())
        }
        Side::Sqlite(path) => {
            let (path, since) = (path.clone(), since.clone());
            blocking(move || {
                let c = open_sqlite(&path)?;
                if !sqlite_has(&c, "_switchyard_touched")? {
                    return Ok(Vec::new());
                }
                let at = match since {
                    Since::Ago(d) => c
                        .query_row(
                            "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now', ?1)",
                            [format!("-{} seconds", d.as_secs_f64())],
                            |r| r.get::<_, String>(0),
                        )
                        .map_err(sqlerr)?,
                    Since::At(t) => t,
                };
                let mut st = c
                    .prepare("SELECT tbl FROM _switchyard_touched WHERE at >= ?1 ORDER BY tbl")
                    .map_err(sqlerr)?;
                st.query_map([at], |r| r.get(0))
                    .map_err(sqlerr)?
                    .collect::<Result<Vec<String>, _>>()
                    .map_err(sqlerr)
            })
            .await
        }
    }
}

/// The tables live sync changed on either database since `since`, sorted.
pub async fn tables_since(
    from_url: &str,
    to_url: &str,
    since: &Since,
) -> Result<Vec<String>, SyncError> {
    let mut all = std::collections::BTreeSet::new();
    for (url, what) in [(from_url, "--from"), (to_url, "--to")] {
        let side = super::open_side(url, what).await?;
        all.extend(touched_since(&side, since).await?);
    }
    Ok(all.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_duration_or_a_utc_time() {
        assert_eq!(
            Since::parse("10m"),
            Ok(Since::Ago(std::time::Duration::from_secs(600)))
        );
        assert_eq!(
            Since::parse("2026-12-01T10:00:00Z"),
            Ok(Since::At("2026-12-01 10:00:00".into()))
        );
        assert_eq!(
            Since::parse("2026-12-01 10:00"),
            Ok(Since::At("2026-12-01 10:00".into()))
        );
        assert!(Since::parse("yesterday").is_err());
        assert!(Since::parse("1; DROP TABLE x").is_err());
    }
}
