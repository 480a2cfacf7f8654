//! `stddev`, `stddev_samp`, `stddev_pop`, `variance`, `var_samp`, `var_pop` for the
//! SQLite backend, which has none of them. Of integers and numerics they are exact, as
//! PostgreSQL's `numeric_stddev_internal` computes them: `(N·Σx² − (Σx)²) / (N·(N−1))`
//! (or `N·N` for the population forms) divided at numeric division's scale, its square
//! root at the same scale; of floats, a double. One value has no sample spread (NULL).

use bigdecimal::{BigDecimal, RoundingMode, Zero};
use rusqlite::Connection;
use rusqlite::functions::{Aggregate, Context, FunctionFlags};

use super::decimal::{decimal, divide, text};

/// Which of the six: a square root or not, the sample or the population.
#[derive(Clone, Copy)]
struct Spread {
    root: bool,
    sample: bool,
}

/// (N, Σx, Σx²).
type Sums = (i64, BigDecimal, BigDecimal);

impl Spread {
    fn of(&self, (n, sum, sum2): &Sums) -> rusqlite::Result<Option<BigDecimal>> {
        if *n == 0 || (self.sample && *n == 1) {
            return Ok(None);
        }
        let n_dec = BigDecimal::from(*n);
        let scale = sum.fractional_digit_count() * 2;
        let numerator = (&n_dec * sum2 - sum * sum).with_scale(scale);
        if numerator <= BigDecimal::zero() {
            return Ok(Some(BigDecimal::zero()));
        }
        let denominator = if self.sample {
            &n_dec * BigDecimal::from(n - 1)
        } else {
            &n_dec * &n_dec
        };
        let variance = divide(&numerator, &denominator)?;
        if !self.root {
            return Ok(Some(variance));
        }
        let scale = variance.fractional_digit_count();
        Ok(variance
            .sqrt()
            .map(|r| r.with_scale_round(scale, RoundingMode::HalfUp)))
    }
}

impl Aggregate<Sums, Option<String>> for Spread {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<Sums> {
        Ok((0, BigDecimal::zero(), BigDecimal::zero()))
    }

    fn step(&self, ctx: &mut Context<'_>, acc: &mut Sums) -> rusqlite::Result<()> {
        if let Some(x) = decimal(ctx.get(0)?)? {
            acc.0 += 1;
            let scale = x.fractional_digit_count();
            acc.1 = (&acc.1 + &x).with_scale(acc.1.fractional_digit_count().max(scale));
            let sq = (&x * &x).with_scale(scale * 2);
            acc.2 = (&acc.2 + &sq).with_scale(acc.2.fractional_digit_count().max(scale * 2));
        }
        Ok(())
    }

    fn finalize(&self, _: &mut Context<'_>, acc: Option<Sums>) -> rusqlite::Result<Option<String>> {
        match acc {
            Some(sums) => Ok(self.of(&sums)?.map(|d| text(&d))),
            None => Ok(None),
        }
    }
}

/// The same over doubles, as PostgreSQL's `float8_accum` computes it (Youngs and Cramer:
/// N, Σx and the running sum of squared differences).
struct FloatSpread(Spread);

impl Aggregate<(i64, f64, f64), Option<f64>> for FloatSpread {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<(i64, f64, f64)> {
        Ok((0, 0.0, 0.0))
    }

    fn step(&self, ctx: &mut Context<'_>, acc: &mut (i64, f64, f64)) -> rusqlite::Result<()> {
        if let Some(x) = ctx.get::<Option<f64>>(0)? {
            let before = acc.0 as f64;
            acc.0 += 1;
            acc.1 += x;
            if before > 0.0 {
                let n = acc.0 as f64;
                let tmp = x * n - acc.1;
                acc.2 += tmp * tmp / (n * before);
            }
        }
        Ok(())
    }

    fn finalize(
        &self,
        _: &mut Context<'_>,
        acc: Option<(i64, f64, f64)>,
    ) -> rusqlite::Result<Option<f64>> {
        let Some((n, _, m2)) = acc else {
            return Ok(None);
        };
        if n == 0 || (self.0.sample && n == 1) {
            return Ok(None);
        }
        let v = m2 / if self.0.sample { n - 1 } else { n } as f64;
        Ok(Some(if self.0.root { v.sqrt() } else { v }))
    }
}

/// The six names and what they compute.
const NAMES: [(&str, bool, bool); 6] = [
    ("stddev", true, true),
    ("stddev_samp", true, true),
    ("stddev_pop", true, false),
    ("variance", false, true),
    ("var_samp", false, true),
    ("var_pop", false, false),
];

/// Whether `name` is one of them (`decimal_rewrite.rs` makes the exact ones
/// `sy_dec_<name>`).
pub fn is_spread(name: &str) -> bool {
    NAMES.iter().any(|(n, _, _)| *n == name)
}

/// Registers each as a float aggregate and `sy_dec_<name>` as the exact one.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    for (name, root, sample) in NAMES {
        let s = Spread { root, sample };
        conn.create_aggregate_function(format!("sy_dec_{name}").as_str(), 1, det, s)?;
        conn.create_aggregate_function(name, 1, det, FloatSpread(s))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(values: &[&str], root: bool, sample: bool) -> Option<String> {
        let mut sums: Sums = (0, BigDecimal::zero(), BigDecimal::zero());
        for v in values {
            let x: BigDecimal = v.parse().unwrap();
            let scale = x.fractional_digit_count();
            sums.0 += 1;
            sums.1 = (&sums.1 + &x).with_scale(sums.1.fractional_digit_count().max(scale));
            sums.2 = (&sums.2 + (&x * &x).with_scale(scale * 2))
                .with_scale(sums.2.fractional_digit_count().max(scale * 2));
        }
        Spread { root, sample }.of(&sums).unwrap().map(|d| text(&d))
    }

    /// What PostgreSQL 15 answered over the same values.
    #[test]
    fn exact_as_postgresql() {
        assert_eq!(
            spread(&["1", "2", "5"], true, true).as_deref(),
            Some("2.0816659994661327")
        );
        assert_eq!(
            spread(&["1", "2", "5"], false, true).as_deref(),
            Some("4.3333333333333333")
        );
        assert_eq!(spread(&["1"], true, true), None);
        assert_eq!(spread(&["3", "3"], true, true).as_deref(), Some("0"));
    }
}
