//! Exact `numeric` arithmetic for the SQLite backend. SQLite computes `+ - * / %`, `sum`
//! and `avg` in floating point (`0.1 + 0.2` is `0.30000000000000004`, a quotient has at
//! most 17 digits, `7::numeric / 2` is 3); PostgreSQL computes numeric exactly, with a
//! result scale its operands fix (sum: the larger scale, product: the sum of the scales,
//! quotient: at least 16 significant digits). The functions registered here take decimal
//! text, integers or reals and give decimal text with PostgreSQL's scale; `sy_dec_num`
//! makes that a number again where SQLite compares, sorts or stores it. Which expressions
//! they replace is decided in [`super::decimal_rewrite`].

use std::str::FromStr;

use bigdecimal::{BigDecimal, RoundingMode, ToPrimitive, Zero};
use rusqlite::functions::{Aggregate, Context, FunctionFlags};
use rusqlite::types::Value;
use rusqlite::{Connection, Error};

/// PostgreSQL's `NUMERIC_MIN_SIG_DIGITS`: a quotient has at least this many significant
/// digits.
const MIN_SIG_DIGITS: i64 = 16;
/// PostgreSQL's `NUMERIC_MAX_DISPLAY_SCALE`.
const MAX_DISPLAY_SCALE: i64 = 1000;

/// A failure PostgreSQL reports with this SQLSTATE (`error.rs` reads the prefix back).
fn failure(code: &str, msg: impl std::fmt::Display) -> Error {
    Error::UserFunctionError(format!("{code}: {msg}").into())
}

/// A value as a decimal with its scale (digits after the point); None for NULL.
pub(super) fn decimal(v: Value) -> rusqlite::Result<Option<BigDecimal>> {
    let text = match v {
        Value::Null => return Ok(None),
        Value::Integer(i) => return Ok(Some(BigDecimal::from(i))),
        Value::Real(f) if f.is_finite() => format!("{f}"),
        Value::Real(f) => {
            return Err(failure(
                "0A000",
                format!("numeric value {f} is not supported by switchyard's SQLite backend"),
            ));
        }
        Value::Text(t) => t,
        Value::Blob(_) => {
            return Err(failure(
                "22P02",
                "invalid input syntax for type numeric: a binary value",
            ));
        }
    };
    let d = BigDecimal::from_str(text.trim()).map_err(|_| {
        failure(
            "22P02",
            format!("invalid input syntax for type numeric: \"{text}\""),
        )
    })?;
    Ok(Some(normal(d)))
}

/// `d` with a scale of at least 0 (`1e3` has scale -3: 1000 is shown without decimals).
fn normal(d: BigDecimal) -> BigDecimal {
    let scale = d.fractional_digit_count();
    if scale < 0 { d.with_scale(0) } else { d }
}

pub(super) fn text(d: &BigDecimal) -> String {
    d.to_plain_string()
}

/// PostgreSQL's base-10000 weight of the first non-zero digit group of `d`, and that
/// group (0 and 0 for zero).
fn weight_and_first(d: &BigDecimal) -> (i64, i64) {
    if d.is_zero() {
        return (0, 0);
    }
    let (int, exp) = d.abs().as_bigint_and_exponent();
    let digits = int.to_string();
    let n = digits.len() as i64;
    let power = n - 1 - exp;
    let weight = power.div_euclid(4);
    let count = (power - 4 * weight + 1) as usize;
    let mut first: String = digits.chars().take(count).collect();
    while first.len() < count {
        first.push('0');
    }
    (weight, first.parse().unwrap_or(0))
}

/// PostgreSQL's `select_div_scale`: the scale of `a / b`.
fn div_scale(a: &BigDecimal, b: &BigDecimal) -> i64 {
    let (w1, f1) = weight_and_first(a);
    let (w2, f2) = weight_and_first(b);
    let mut qweight = w1 - w2;
    if f1 <= f2 {
        qweight -= 1;
    }
    let rscale = (MIN_SIG_DIGITS - qweight * 4)
        .max(a.fractional_digit_count())
        .max(b.fractional_digit_count())
        .max(0);
    rscale.min(MAX_DISPLAY_SCALE)
}

/// `a / b` as PostgreSQL's numeric division gives it (rounded half away from zero).
pub fn divide(a: &BigDecimal, b: &BigDecimal) -> rusqlite::Result<BigDecimal> {
    if b.is_zero() {
        return Err(failure("22012", "division by zero"));
    }
    let scale = div_scale(a, b);
    // Enough significant digits for the scale asked, whatever the quotient's magnitude.
    let (w1, _) = weight_and_first(a);
    let (w2, _) = weight_and_first(b);
    let digits = (scale + 4 * (w1 - w2 + 2)).max(1) as u64 + 4;
    let q = a.with_prec(digits.max(a.digits())) / b;
    Ok(q.with_scale_round(scale, RoundingMode::HalfUp))
}

/// One of PostgreSQL's numeric operators.
#[derive(Clone, Copy)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// `a + b` with the larger scale (set, not left to the library, which drops a scale in
/// some shortcuts: `25.00 * 1` came back as 25).
fn add(a: &BigDecimal, b: &BigDecimal) -> BigDecimal {
    let scale = a.fractional_digit_count().max(b.fractional_digit_count());
    (a + b).with_scale(scale)
}

fn apply(op: Op, a: &BigDecimal, b: &BigDecimal) -> rusqlite::Result<BigDecimal> {
    let (sa, sb) = (a.fractional_digit_count(), b.fractional_digit_count());
    Ok(match op {
        Op::Add => add(a, b),
        Op::Sub => (a - b).with_scale(sa.max(sb)),
        Op::Mul => (a * b).with_scale(sa + sb),
        Op::Div => divide(a, b)?,
        Op::Mod => {
            if b.is_zero() {
                return Err(failure("22012", "division by zero"));
            }
            (a % b).with_scale(sa.max(sb))
        }
    })
}

fn binary(op: Op) -> impl Fn(&Context<'_>) -> rusqlite::Result<Option<String>> {
    move |ctx| {
        let (Some(a), Some(b)) = (decimal(ctx.get(0)?)?, decimal(ctx.get(1)?)?) else {
            return Ok(None);
        };
        apply(op, &a, &b).map(|r| Some(text(&r)))
    }
}

/// A decimal as the number SQLite compares and stores: an integer when it is whole and
/// fits, else the nearest double.
fn number(d: &BigDecimal) -> Value {
    if d.is_integer()
        && let Some(i) = d.to_i64()
    {
        return Value::Integer(i);
    }
    d.to_f64().map_or(Value::Null, Value::Real)
}

/// `d` as SQLite stores it, if it keeps it exactly: an integer, or a double that reads
/// back as the same number.
fn stored(d: &BigDecimal) -> Option<Value> {
    let v = number(d);
    let exact = match &v {
        Value::Integer(_) => true,
        Value::Real(f) => BigDecimal::from_str(&format!("{f}")).is_ok_and(|back| back == *d),
        _ => false,
    };
    exact.then_some(v)
}

/// `sum` over decimals: exact, with the largest scale of its inputs.
struct Sum;

impl Aggregate<Option<BigDecimal>, Option<String>> for Sum {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<Option<BigDecimal>> {
        Ok(None)
    }
    fn step(&self, ctx: &mut Context<'_>, acc: &mut Option<BigDecimal>) -> rusqlite::Result<()> {
        if let Some(d) = decimal(ctx.get(0)?)? {
            *acc = Some(match acc.take() {
                Some(s) => add(&s, &d),
                None => d,
            });
        }
        Ok(())
    }
    fn finalize(
        &self,
        _: &mut Context<'_>,
        acc: Option<Option<BigDecimal>>,
    ) -> rusqlite::Result<Option<String>> {
        Ok(acc.flatten().map(|d| text(&d)))
    }
}

/// `avg` over integers or decimals: the exact sum divided by the count, as PostgreSQL's
/// `numeric_avg` does.
struct Avg;

impl Aggregate<(BigDecimal, i64), Option<String>> for Avg {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<(BigDecimal, i64)> {
        Ok((BigDecimal::zero(), 0))
    }
    fn step(&self, ctx: &mut Context<'_>, acc: &mut (BigDecimal, i64)) -> rusqlite::Result<()> {
        if let Some(d) = decimal(ctx.get(0)?)? {
            acc.0 = add(&acc.0, &d);
            acc.1 += 1;
        }
        Ok(())
    }
    fn finalize(
        &self,
        _: &mut Context<'_>,
        acc: Option<(BigDecimal, i64)>,
    ) -> rusqlite::Result<Option<String>> {
        match acc {
            Some((sum, n)) if n > 0 => divide(&sum, &BigDecimal::from(n)).map(|d| Some(text(&d))),
            _ => Ok(None),
        }
    }
}

/// Registers the `sy_dec*` functions.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    for (name, op) in [
        ("sy_dec_add", Op::Add),
        ("sy_dec_sub", Op::Sub),
        ("sy_dec_mul", Op::Mul),
        ("sy_dec_div", Op::Div),
        ("sy_dec_mod", Op::Mod),
    ] {
        conn.create_scalar_function(name, 2, det, binary(op))?;
    }
    // `x::numeric(p, s)` / a numeric(p, s) column's value: decimal text at scale s (NULL:
    // the value's own).
    conn.create_scalar_function("sy_dec", 2, det, |ctx| {
        let Some(d) = decimal(ctx.get(0)?)? else {
            return Ok(None);
        };
        Ok(Some(text(&match ctx.get::<Option<i64>>(1)? {
            Some(s) => d.with_scale_round(s, RoundingMode::HalfUp),
            None => d,
        })))
    })?;
    // `trunc(numeric, n)`: cut toward zero at scale n (a negative n: whole tens, hundreds).
    for name in ["sy_dec_trunc", "trunc"] {
        conn.create_scalar_function(name, 2, det, |ctx| {
            let (Some(d), Some(s)) = (decimal(ctx.get(0)?)?, ctx.get::<Option<i64>>(1)?) else {
                return Ok(None);
            };
            let cut = d.with_scale_round(s, RoundingMode::Down);
            Ok(Some(text(&if s < 0 { cut.with_scale(0) } else { cut })))
        })?;
    }
    conn.create_scalar_function("sy_dec_neg", 1, det, |ctx| {
        Ok(decimal(ctx.get(0)?)?.map(|d| text(&-d)))
    })?;
    conn.create_scalar_function("sy_dec_num", 1, det, |ctx| {
        Ok(decimal(ctx.get(0)?)?.map_or(Value::Null, |d| number(&d)))
    })?;
    // A value written into a numeric column: refused when SQLite would not keep it exactly
    // (it holds a number as a 64-bit integer or a double), never stored rounded.
    conn.create_scalar_function("sy_dec_store", 1, det, |ctx| {
        let Some(d) = decimal(ctx.get(0)?)? else {
            return Ok(Value::Null);
        };
        stored(&d).ok_or_else(|| {
            failure(
                "22003",
                format!(
                    "numeric value {} has more significant digits than switchyard's SQLite backend stores exactly (15)",
                    text(&d)
                ),
            )
        })
    })?;
    // A float made text where PostgreSQL would print it (`50`, not SQLite's `50.0`).
    conn.create_scalar_function("sy_float_text", 1, det, |ctx| {
        Ok(match ctx.get::<Value>(0)? {
            Value::Real(f) => Value::Text(super::types::float_text(f)),
            other => other,
        })
    })?;
    conn.create_aggregate_function("sy_dec_sum", 1, det, Sum)?;
    conn.create_aggregate_function("sy_dec_avg", 1, det, Avg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calc(op: Op, a: &str, b: &str) -> String {
        let d = |s: &str| decimal(Value::Text(s.into())).unwrap().unwrap();
        text(&apply(op, &d(a), &d(b)).unwrap())
    }

    #[test]
    fn arithmetic_has_postgres_scales() {
        assert_eq!(calc(Op::Add, "0.1", "0.2"), "0.3");
        assert_eq!(calc(Op::Add, "2.10", "0.20"), "2.30");
        assert_eq!(calc(Op::Sub, "1", "0.50"), "0.50");
        assert_eq!(calc(Op::Mul, "2328.60", "3"), "6985.80");
        assert_eq!(calc(Op::Mul, "1.5", "2.25"), "3.375");
        assert_eq!(calc(Op::Mul, "25.00", "1"), "25.00");
        assert_eq!(calc(Op::Mul, "1", "25.00"), "25.00");
        assert_eq!(calc(Op::Add, "25.00", "0"), "25.00");
        assert_eq!(calc(Op::Div, "2328.60", "3"), "776.2000000000000000");
        assert_eq!(calc(Op::Div, "0.10", "3"), "0.03333333333333333333");
        assert_eq!(calc(Op::Div, "1", "3.0"), "0.33333333333333333333");
        assert_eq!(calc(Op::Div, "10.0", "4"), "2.5000000000000000");
        assert_eq!(calc(Op::Div, "7", "2"), "3.5000000000000000");
        assert_eq!(calc(Op::Div, "2353.70", "3"), "784.5666666666666667");
        assert_eq!(calc(Op::Div, "-2", "3"), "-0.66666666666666666667");
        assert_eq!(
            calc(Op::Div, "123456789012345678", "7"),
            "17636684144620811"
        );
        assert_eq!(calc(Op::Div, "1e3", "8"), "125.0000000000000000");
        assert_eq!(calc(Op::Div, "0", "7"), "0.00000000000000000000");
        assert_eq!(calc(Op::Mod, "5.5", "2"), "1.5");
        assert_eq!(calc(Op::Mod, "-7", "3"), "-1");
    }

    #[test]
    fn division_by_zero_and_bad_input_are_postgres_errors() {
        let d = |s: &str| decimal(Value::Text(s.into())).unwrap().unwrap();
        let err = apply(Op::Div, &d("1"), &d("0")).unwrap_err().to_string();
        assert!(err.contains("22012: division by zero"), "{err}");
        let err = decimal(Value::Text("abc".into())).unwrap_err().to_string();
        assert!(
            err.contains("22P02: invalid input syntax for type numeric: \"abc\""),
            "{err}"
        );
    }

    #[test]
    fn reals_read_as_their_shortest_text() {
        let d = decimal(Value::Real(2328.6)).unwrap().unwrap();
        assert_eq!(text(&d), "2328.6");
        assert_eq!(number(&d), Value::Real(2328.6));
        assert_eq!(
            number(&BigDecimal::from_str("2.00").unwrap()),
            Value::Integer(2)
        );
    }
}
