//! PostgreSQL's binary `numeric` format, both ways, for the SQLite backend: clients such as
//! pgjdbc send numeric parameters and ask for numeric results in binary.

/// PostgreSQL's binary `numeric` for a plain decimal text (`-12.345`, `7`, `0.50`); None
/// for anything else (exponents, NaN are sent as text by the caller's error path).
pub fn numeric_binary(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let int = int.trim_start_matches('0');
    let dscale = frac.len() as i16;
    // Align on base-10000 groups around the decimal point.
    let lead = (4 - int.len() % 4) % 4;
    let mut all = "0".repeat(lead) + int;
    let int_groups = all.len() / 4;
    all.push_str(frac);
    all.push_str(&"0".repeat((4 - frac.len() % 4) % 4));
    let mut groups: Vec<i16> = all
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).ok()?.parse().ok())
        .collect::<Option<_>>()?;
    let mut weight = int_groups as i16 - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign: u16 = if neg && !groups.is_empty() { 0x4000 } else { 0 };
    let mut out = Vec::with_capacity(8 + groups.len() * 2);
    for w in [groups.len() as i16, weight, sign as i16, dscale] {
        out.extend_from_slice(&w.to_be_bytes());
    }
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    Some(out)
}

/// The decimal text of a binary `numeric`: ndigits, weight, sign, dscale, then base-10000
/// digits (big-endian i16 each), the first of them at 10000^weight.
pub fn numeric_text(b: &[u8]) -> Result<String, String> {
    let word = |i: usize| -> Result<i16, String> {
        b.get(i * 2..i * 2 + 2)
            .map(|w| i16::from_be_bytes([w[0], w[1]]))
            .ok_or_else(|| "binary numeric parameter is truncated".to_string())
    };
    let (ndigits, weight, sign, dscale) = (word(0)?, word(1)?, word(2)? as u16, word(3)?);
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        0x0000 | 0x4000 => {}
        _ => return Err("binary numeric parameter has an invalid sign".into()),
    }
    if !(0..=1000).contains(&ndigits) || !(0..=1000).contains(&dscale) {
        return Err("binary numeric parameter is out of range".into());
    }
    let digits: Vec<i16> = (0..ndigits as usize)
        .map(|i| word(4 + i))
        .collect::<Result<_, _>>()?;
    if digits.iter().any(|d| !(0..10_000).contains(d)) {
        return Err("binary numeric parameter has an invalid digit".into());
    }
    let digit = |pos: i32| -> i16 {
        // pos = exponent of 10000 counted from the first digit (weight) downwards.
        let i = weight as i32 - pos;
        if i >= 0 && (i as usize) < digits.len() {
            digits[i as usize]
        } else {
            0
        }
    };
    let mut int = String::new();
    for pos in (0..=(weight.max(0) as i32)).rev() {
        if int.is_empty() {
            if digit(pos) != 0 || pos == 0 {
                int = digit(pos).to_string();
            }
        } else {
            int.push_str(&format!("{:04}", digit(pos)));
        }
    }
    if weight < 0 {
        int = "0".into();
    }
    let mut frac = String::new();
    let mut pos = -1;
    while (frac.len() as i32) < dscale as i32 {
        frac.push_str(&format!("{:04}", digit(pos)));
        pos -= 1;
    }
    frac.truncate(dscale as usize);
    let neg = sign == 0x4000 && (int != "0" || frac.bytes().any(|c| c != b'0'));
    Ok(format!(
        "{}{int}{}{frac}",
        if neg { "-" } else { "" },
        if dscale > 0 { "." } else { "" }
    ))
}

/// `text` (a decimal: `25`, `2328.6`, `1.005`, `-0.5`, `1e3`) with exactly `scale`
/// decimals, rounded half away from zero as PostgreSQL rounds into `numeric(p, s)`; None
/// for what is not a decimal (`NaN`, words).
pub fn with_scale(text: &str, scale: usize) -> Option<String> {
    let t = text.trim();
    if t.contains(['e', 'E']) {
        let f: f64 = t.parse().ok()?;
        return f.is_finite().then(|| format!("{f:.scale$}"));
    }
    let (neg, digits) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // All the digits as one integer string, cut (or padded) to `scale` decimals.
    let mut all: Vec<u8> = int.bytes().chain(frac.bytes().take(scale)).collect();
    all.extend(std::iter::repeat_n(b'0', scale.saturating_sub(frac.len())));
    if frac.as_bytes().get(scale).is_some_and(|&d| d >= b'5') {
        let mut i = all.len();
        loop {
            if i == 0 {
                all.insert(0, b'1');
                break;
            }
            i -= 1;
            if all[i] == b'9' {
                all[i] = b'0';
            } else {
                all[i] += 1;
                break;
            }
        }
    }
    let split = all.len() - scale;
    let int_part = std::str::from_utf8(&all[..split])
        .ok()?
        .trim_start_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let frac_part = std::str::from_utf8(&all[split..]).ok()?;
    let zero = all.iter().all(|&d| d == b'0');
    let sign = if neg && !zero { "-" } else { "" };
    Some(if scale == 0 {
        format!("{sign}{int_part}")
    } else {
        format!("{sign}{int_part}.{frac_part}")
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_take_the_column_s_scale() {
        use super::with_scale;
        assert_eq!(with_scale("25", 2).as_deref(), Some("25.00"));
        assert_eq!(with_scale("2328.6", 2).as_deref(), Some("2328.60"));
        assert_eq!(with_scale("1.005", 2).as_deref(), Some("1.01"));
        assert_eq!(with_scale("9.995", 2).as_deref(), Some("10.00"));
        assert_eq!(with_scale("-0.004", 2).as_deref(), Some("0.00"));
        assert_eq!(with_scale("-12.345", 1).as_deref(), Some("-12.3"));
        assert_eq!(with_scale(".5", 0).as_deref(), Some("1"));
        assert_eq!(with_scale("1e3", 2).as_deref(), Some("1000.00"));
        assert_eq!(with_scale("NaN", 2), None);
    }

    use super::*;

    fn numeric(ndigits: i16, weight: i16, sign: u16, dscale: i16, digits: &[i16]) -> String {
        let mut b = Vec::new();
        for w in [ndigits, weight, sign as i16, dscale].iter().chain(digits) {
            b.extend_from_slice(&w.to_be_bytes());
        }
        numeric_text(&b).unwrap()
    }

    #[test]
    fn binary_numeric_becomes_decimal_text() {
        assert_eq!(numeric(1, -1, 0, 2, &[5000]), "0.50");
        assert_eq!(numeric(2, 0, 0x4000, 3, &[12, 3450]), "-12.345");
        assert_eq!(numeric(2, 1, 0, 0, &[1, 2]), "10002");
        assert_eq!(numeric(1, 2, 0, 0, &[7]), "700000000");
        assert_eq!(numeric(0, 0, 0, 0, &[]), "0");
        assert_eq!(numeric(1, -1, 0, 6, &[42]), "0.004200");
        assert_eq!(numeric(1, -2, 0, 8, &[42]), "0.00000042");
        assert_eq!(numeric(0, 0, 0xC000, 0, &[]), "NaN");
        assert!(numeric_text(&[0, 1]).is_err());
    }

    #[test]
    fn decimal_text_round_trips_through_binary_numeric() {
        for t in [
            "0.50",
            "-12.345",
            "10002",
            "700000000",
            "0",
            "0.004200",
            "123456789.0001",
            "-0.5",
        ] {
            let b = numeric_binary(t).unwrap();
            assert_eq!(numeric_text(&b).unwrap(), t, "{t}");
        }
        assert!(numeric_binary("1e5").is_none());
        assert!(numeric_binary("abc").is_none());
    }
}
