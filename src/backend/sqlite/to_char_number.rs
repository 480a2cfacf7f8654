//! `to_char(number, pattern)` as PostgreSQL formats it (`formatting.c`'s NUM_ patterns):
//! `9` a digit (a blank where a leading zero would be), `0` a digit always, `.`/`D` the
//! decimal point, `,`/`G` a group separator (blank before the first digit), `FM` no
//! padding and no trailing zeros at `9`s, `S`, `MI`, `PL`, `SG`, `PR` the sign; other
//! characters and `"quoted text"` as they are. Without a sign pattern a place is kept for
//! `-` before the first digit. A number wider than the pattern is `#`s. The value is
//! rounded half away from zero to the pattern's decimals. `EEEE`, `RN`, `TH`, `V` and `L`
//! are refused by name.

use bigdecimal::{BigDecimal, RoundingMode, Signed, Zero};

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Nine,
    Zero,
    Point,
    Group,
    /// `S` (sign as + or -), `MI` (- or blank), `PL` (+ or blank), `SG` (+ or -).
    Sign(&'static str),
    Lit(String),
}

struct Pattern {
    toks: Vec<Tok>,
    fill: bool,
    brackets: bool,
}

fn parse(p: &str) -> Result<Pattern, String> {
    let mut toks = Vec::new();
    let (mut fill, mut brackets) = (false, false);
    let up = p.to_ascii_uppercase();
    let mut i = 0;
    let bytes = up.as_bytes();
    while i < bytes.len() {
        let rest = &up[i..];
        let n = if rest.starts_with("FM") {
            fill = true;
            2
        } else if rest.starts_with("PR") {
            brackets = true;
            2
        } else if let Some(s) = ["MI", "PL", "SG"].into_iter().find(|s| rest.starts_with(s)) {
            toks.push(Tok::Sign(s));
            2
        } else if ["EEEE", "RN", "TH", "V", "L"]
            .iter()
            .any(|s| rest.starts_with(s))
        {
            return Err(format!(
                "0A000: to_char pattern {rest:?} is not supported by switchyard's SQLite backend"
            ));
        } else if rest.starts_with('"') {
            // Quoted text up to the closing quote (or the end).
            let body = &p[i + 1..];
            let close = body.find('"').unwrap_or(body.len());
            toks.push(Tok::Lit(body[..close].to_string()));
            close + 2
        } else {
            let c = p[i..].chars().next().unwrap_or(' ');
            toks.push(match c.to_ascii_uppercase() {
                '9' => Tok::Nine,
                '0' => Tok::Zero,
                '.' | 'D' => Tok::Point,
                ',' | 'G' => Tok::Group,
                'S' => Tok::Sign("S"),
                _ => Tok::Lit(c.to_string()),
            });
            c.len_utf8()
        };
        i += n;
    }
    Ok(Pattern {
        toks,
        fill,
        brackets,
    })
}

/// `value` formatted by `pattern`.
pub fn format(value: &BigDecimal, pattern: &str) -> Result<String, String> {
    let p = parse(pattern)?;
    let point = p.toks.iter().position(|t| *t == Tok::Point);
    let int_toks = &p.toks[..point.unwrap_or(p.toks.len())];
    let frac_toks: &[Tok] = point.map_or(&[], |at| &p.toks[at + 1..]);
    let int_n = int_toks.iter().filter(|t| is_digit(t)).count();
    let frac_n = frac_toks.iter().filter(|t| is_digit(t)).count();
    let rounded = value.with_scale_round(frac_n as i64, RoundingMode::HalfUp);
    let negative = rounded.is_negative() && !rounded.is_zero();
    let digits = rounded.abs().to_string();
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((&digits, ""));
    let int_part = if int_part == "0" { "" } else { int_part };
    // Too wide: every digit place `#`, the signs where they would be.
    let over = int_part.len() > int_n;
    let (int_part, frac_part) = if over {
        ("#".repeat(int_n), "#".repeat(frac_n))
    } else {
        (int_part.to_string(), format!("{frac_part:0<frac_n$}"))
    };
    let frac: Vec<char> = frac_part.chars().collect();
    let keep = if p.fill && !over {
        trimmed(frac_toks, &frac)
    } else {
        frac_n
    };
    // A zero in fill mode prints its 0 (`FM9.99` of 0 is `0.`).
    let int_part = if p.fill && int_part.is_empty() && keep == 0 && int_n > 0 {
        "0".to_string()
    } else {
        int_part
    };
    let anchored = anchored_sign(&p, negative);
    let first_zero = int_toks
        .iter()
        .filter(|t| is_digit(t))
        .position(|t| *t == Tok::Zero)
        .unwrap_or(int_n);
    let start = first_zero.min(int_n - int_part.len());
    // A value below one prints its 0 at the last integer place when there are no
    // decimals to show instead (`999` of 0 is `   0`, `999.99` of 0 is `    .00`).
    let start = if start == int_n && frac_n == 0 && int_n > 0 {
        int_n - 1
    } else {
        start
    };
    let mut out = String::new();
    let mut k = 0;
    let mut printed = false;
    let mut seen_digit = false;
    for t in int_toks {
        match t {
            Tok::Nine | Tok::Zero => {
                seen_digit = true;
                if k >= start {
                    if !printed {
                        out.push_str(&anchored);
                    }
                    // A place before the value's digits is a forced zero.
                    let digit = (k + int_part.len())
                        .checked_sub(int_n)
                        .and_then(|at| int_part.as_bytes().get(at));
                    out.push(digit.map_or('0', |b| *b as char));
                    printed = true;
                } else if !p.fill {
                    out.push(' ');
                }
                k += 1;
            }
            Tok::Group if printed => out.push(','),
            Tok::Group if !p.fill => out.push(' '),
            Tok::Group => {}
            Tok::Sign(s) if seen_digit || *s != "S" => out.push_str(sign(s, negative, p.fill)),
            Tok::Sign(_) => {}
            Tok::Lit(l) => out.push_str(l),
            Tok::Point => {}
        }
    }
    if !printed {
        out.push_str(&anchored);
    }
    if point.is_some() {
        out.push('.');
        let mut j = 0;
        for t in frac_toks {
            match t {
                Tok::Nine | Tok::Zero => {
                    if j < keep {
                        out.push(frac[j]);
                    } else if !p.fill {
                        out.push(' ');
                    }
                    j += 1;
                }
                Tok::Group => out.push(','),
                Tok::Sign(s) => out.push_str(sign(s, negative, p.fill)),
                Tok::Lit(l) => out.push_str(l),
                Tok::Point => out.push('.'),
            }
        }
    }
    if p.brackets {
        out.push_str(match (negative, p.fill) {
            (true, _) => ">",
            (false, true) => "",
            (false, false) => " ",
        });
    }
    Ok(out)
}

fn is_digit(t: &Tok) -> bool {
    matches!(t, Tok::Nine | Tok::Zero)
}

/// How many decimals FM keeps: trailing zeros at `9` places go (a `0` place keeps its
/// zero and every digit before it).
fn trimmed(frac_toks: &[Tok], frac: &[char]) -> usize {
    let places: Vec<&Tok> = frac_toks.iter().filter(|t| is_digit(t)).collect();
    let mut keep = frac.len();
    while keep > 0 && frac[keep - 1] == '0' && *places[keep - 1] == Tok::Nine {
        keep -= 1;
    }
    keep
}

/// The sign written just before the first digit: PostgreSQL's place for `-` when the
/// pattern has no sign of its own, an `S` written before the digits (anchored to them),
/// or `PR`'s `<`. Any other sign pattern but `PL` is written where it stands and takes
/// the place away.
fn anchored_sign(p: &Pattern, negative: bool) -> String {
    let first_digit = p.toks.iter().position(is_digit).unwrap_or(p.toks.len());
    if p.toks[..first_digit].contains(&Tok::Sign("S")) {
        return sign("S", negative, p.fill).to_string();
    }
    if p.toks
        .iter()
        .any(|t| matches!(t, Tok::Sign(s) if *s != "PL"))
    {
        return String::new();
    }
    let minus = if p.brackets { "<" } else { "-" };
    match (negative, p.fill) {
        (true, _) => minus,
        (false, true) => "",
        (false, false) => " ",
    }
    .to_string()
}

fn sign(s: &str, negative: bool, fill: bool) -> &'static str {
    match (s, negative) {
        ("S" | "SG", true) | ("MI", true) => "-",
        ("S" | "SG", false) | ("PL", false) => "+",
        _ if fill => "",
        _ => " ",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: &str, p: &str) -> String {
        format(&v.parse().unwrap(), p).unwrap()
    }

    /// What PostgreSQL 15 printed.
    #[test]
    fn formats_as_postgresql() {
        assert_eq!(f("1234.5", "9999.99"), " 1234.50");
        assert_eq!(f("-1234.5", "FM9,999.99"), "-1,234.5");
        assert_eq!(f("0", "FM9999.99"), "0.");
        assert_eq!(f("0.5", "0.99"), " 0.50");
        assert_eq!(f("-1", "9999PR"), "   <1>");
        assert_eq!(f("12", "S9999"), "  +12");
        assert_eq!(f("-7", "MI9999"), "-   7");
        assert_eq!(f("1234567.891", "9,999.99"), " #,###.##");
        assert_eq!(f("5", "0000"), " 0005");
        assert!(format(&"1".parse().unwrap(), "9EEEE").is_err());
    }
}
