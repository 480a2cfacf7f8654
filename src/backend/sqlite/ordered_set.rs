//! PostgreSQL's ordered-set aggregates on the SQLite backend: `percentile_cont(f)`,
//! `percentile_disc(f)` and `mode()` `WITHIN GROUP (ORDER BY x [DESC])`, which SQLite
//! has no syntax for. The call becomes `sy_ordered_set(kind, f, x, desc)`, an aggregate
//! that collects the group's non-NULL values, sorts them and picks as PostgreSQL does:
//! `percentile_cont` interpolates between the two nearest values (a double),
//! `percentile_disc` takes the first value at or past the fraction, `mode` the most
//! frequent value (the first in sort order among equals).

use std::cmp::Ordering;

use rusqlite::Connection;
use rusqlite::functions::{Aggregate, Context, FunctionFlags};
use rusqlite::types::Value;
use sqlparser::ast::{Expr, Function, FunctionArguments};

use super::rewrite::raw;

/// `percentile_cont(0.5) WITHIN GROUP (ORDER BY x)` as `sy_ordered_set(…)`; None for
/// other functions.
pub(super) fn rewrite(f: &Function) -> Option<Expr> {
    let name = f.name.to_string().to_lowercase();
    let kind = name.rsplit('.').next()?;
    if !matches!(kind, "percentile_cont" | "percentile_disc" | "mode") {
        return None;
    }
    let [order] = f.within_group.as_slice() else {
        return None;
    };
    let fraction = match &f.args {
        FunctionArguments::List(l) if l.args.len() == 1 => l.args[0].to_string(),
        _ => "NULL".to_string(),
    };
    let desc = order.options.to_string().contains("DESC") as i32;
    Some(raw(format!(
        "sy_ordered_set('{kind}', {fraction}, {}, {desc})",
        order.expr
    )))
}

fn compare(a: &Value, b: &Value) -> Ordering {
    let number = |v: &Value| match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Real(f) => Some(*f),
        _ => None,
    };
    match (number(a), number(b), a, b) {
        (Some(x), Some(y), _, _) => x.total_cmp(&y),
        (Some(_), None, _, _) => Ordering::Less,
        (None, Some(_), _, _) => Ordering::Greater,
        (_, _, Value::Text(x), Value::Text(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// The group's state: kind, fraction, descending, values.
type State = (String, Option<f64>, bool, Vec<Value>);

struct OrderedSet;

impl Aggregate<State, Value> for OrderedSet {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<State> {
        Ok((String::new(), None, false, Vec::new()))
    }

    fn step(&self, ctx: &mut Context<'_>, acc: &mut State) -> rusqlite::Result<()> {
        acc.0 = ctx.get(0)?;
        acc.1 = ctx.get(1)?;
        acc.2 = ctx.get::<i64>(3)? != 0;
        match ctx.get::<Value>(2)? {
            Value::Null => {}
            v => acc.3.push(v),
        }
        Ok(())
    }

    fn finalize(&self, _: &mut Context<'_>, acc: Option<State>) -> rusqlite::Result<Value> {
        let Some((kind, fraction, desc, mut values)) = acc else {
            return Ok(Value::Null);
        };
        if values.is_empty() {
            return Ok(Value::Null);
        }
        values.sort_by(compare);
        if desc {
            values.reverse();
        }
        if kind == "mode" {
            return Ok(mode(values));
        }
        let f = fraction.unwrap_or(0.5);
        if !(0.0..=1.0).contains(&f) {
            return Err(rusqlite::Error::UserFunctionError(
                format!("22003: percentile value {f} is not between 0 and 1").into(),
            ));
        }
        let n = values.len();
        if kind == "percentile_disc" {
            let at = ((f * n as f64).ceil() as usize).clamp(1, n) - 1;
            return Ok(values.swap_remove(at));
        }
        let pos = f * (n - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        let num = |v: &Value| match v {
            Value::Integer(i) => Ok(*i as f64),
            Value::Real(x) => Ok(*x),
            Value::Text(t) => t.trim().parse::<f64>().map_err(|_| {
                rusqlite::Error::UserFunctionError(
                    format!("22P02: invalid input syntax for type double precision: \"{t}\"")
                        .into(),
                )
            }),
            _ => Ok(0.0),
        };
        let (a, b) = (num(&values[lo])?, num(&values[hi])?);
        Ok(Value::Real(a + (b - a) * (pos - lo as f64)))
    }
}

/// The most frequent of sorted values; among equals, the first in order.
fn mode(values: Vec<Value>) -> Value {
    let mut best: Option<(usize, usize)> = None;
    let mut start = 0;
    for i in 1..=values.len() {
        if i == values.len() || compare(&values[i], &values[start]) != Ordering::Equal {
            if best.is_none_or(|(_, len)| i - start > len) {
                best = Some((start, i - start));
            }
            start = i;
        }
    }
    best.map_or(Value::Null, |(at, _)| values[at].clone())
}

/// Registers `sy_ordered_set`.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_aggregate_function("sy_ordered_set", 4, flags, OrderedSet)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values PostgreSQL 15 gave over 1, 2, 2, 10 (and NULL), to the last digit.
    #[test]
    fn ordered_set_aggregates_pick_as_postgresql_picks() {
        let c = Connection::open_in_memory().unwrap();
        register(&c).unwrap();
        c.execute_batch("CREATE TABLE v (x); INSERT INTO v VALUES (1), (2), (2), (10), (NULL)")
            .unwrap();
        let q = |sql: &str| -> Value { c.query_row(sql, [], |r| r.get(0)).unwrap() };
        assert_eq!(
            q("SELECT sy_ordered_set('percentile_cont', 0.5, x, 0) FROM v"),
            Value::Real(2.0)
        );
        assert_eq!(
            q("SELECT sy_ordered_set('percentile_cont', 0.9, x, 0) FROM v"),
            Value::Real(7.600000000000001)
        );
        assert_eq!(
            q("SELECT sy_ordered_set('percentile_cont', 0.25, x, 1) FROM v"),
            Value::Real(4.0)
        );
        assert_eq!(
            q("SELECT sy_ordered_set('percentile_disc', 0.5, x, 0) FROM v"),
            Value::Integer(2)
        );
        assert_eq!(
            q("SELECT sy_ordered_set('percentile_disc', 0.8, x, 0) FROM v"),
            Value::Integer(10)
        );
        assert_eq!(
            q("SELECT sy_ordered_set('mode', NULL, x, 0) FROM v"),
            Value::Integer(2)
        );
    }
}
