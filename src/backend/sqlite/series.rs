//! `generate_series(start, stop, interval)` in FROM for the SQLite backend: timestamps
//! from `start` to `stop` by a step of calendar time, as PostgreSQL gives them (a date or
//! timestamptz start makes timestamptz values; a timestamp start, timestamps). SQLite's
//! `generate_series` counts integers only, so the series is a recursive CTE over
//! `sy_ts_add` (see `interval.rs`); the values are the backend's canonical text, which
//! sorts as time.

use sqlparser::ast::{FunctionArg, FunctionArgExpr, TableAlias, TableFactor};

/// The series `tf` names, if it is `generate_series` with an interval step.
pub fn timestamps(tf: &TableFactor) -> Option<TableFactor> {
    let (func, args, alias) = super::from_functions::call_of(tf)?;
    if func != "generate_series" || args.args.len() != 3 {
        return None;
    }
    let arg = |i: usize| match &args.args[i] {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.to_string()),
        _ => None,
    };
    let (start, stop, step) = (arg(0)?, arg(1)?, arg(2)?);
    // By now the step is the rewritten interval (`sy_interval('1 day')`).
    if !step.starts_with("sy_interval(") {
        return None;
    }
    // A timestamp start keeps timestamps; anything else is read as a timestamptz.
    let canonical = if start.starts_with("sy_timestamp(") {
        "sy_timestamp"
    } else {
        "sy_timestamptz"
    };
    let column = alias
        .map(|a| {
            a.columns
                .first()
                .map_or_else(|| a.name.value.clone(), |c| c.name.value.clone())
        })
        .unwrap_or_else(|| "generate_series".into());
    let sql = format!(
        "(WITH RECURSIVE _sy_gs(v) AS (SELECT {canonical}({start}) UNION ALL \
         SELECT sy_ts_add(v, {step}, 1) FROM _sy_gs WHERE sy_ts_add(v, {step}, 1) <= {canonical}({stop})) \
         SELECT v AS \"{}\" FROM _sy_gs)",
        column.replace('"', "\"\"")
    );
    let alias = alias.map(|a| TableAlias {
        columns: Vec::new(),
        ..a.clone()
    });
    Some(super::rewrite_ops::raw_table(sql, alias))
}
