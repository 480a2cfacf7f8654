//! Readers for the message bodies the proxy inspects. Bodies are borrowed, never copied.

use thiserror::Error;

/// A body that does not have the shape its tag promises.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("malformed {what} message: {problem}")]
pub struct Malformed {
    pub what: &'static str,
    pub problem: &'static str,
}

fn malformed(what: &'static str, problem: &'static str) -> Malformed {
    Malformed { what, problem }
}

/// Position of the first NUL. Portal and statement names are mostly empty or short, and a
/// plain scan of the first bytes costs a fraction of memchr's setup on them; longer strings
/// (query texts) go to memchr. Under pgbench -M extended the relay looks for eight NULs per
/// transaction, which took ~370 instructions through memchr (callgrind).
pub fn nul_at(buf: &[u8]) -> Option<usize> {
    const SHORT: usize = 16;
    let head = &buf[..buf.len().min(SHORT)];
    match head.iter().position(|&b| b == 0) {
        Some(i) => Some(i),
        None if buf.len() > SHORT => memchr::memchr(0, &buf[SHORT..]).map(|i| i + SHORT),
        None => None,
    }
}

/// Splits a NUL-terminated string off the front of `buf`.
pub fn cstr<'a>(buf: &'a [u8], what: &'static str) -> Result<(&'a [u8], &'a [u8]), Malformed> {
    match nul_at(buf) {
        Some(i) => Ok((&buf[..i], &buf[i + 1..])),
        None => Err(malformed(what, "missing string terminator")),
    }
}

/// A Parse message: statement name, then the rest of the body (query, types) verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseMsg<'a> {
    pub name: &'a [u8],
    /// Query text, NUL, parameter type count and OIDs: exactly as the client sent them.
    pub rest: &'a [u8],
    pub query: &'a [u8],
}

pub fn parse_msg(body: &[u8]) -> Result<ParseMsg<'_>, Malformed> {
    let (name, rest) = cstr(body, "Parse")?;
    let (query, types) = cstr(rest, "Parse")?;
    if types.len() < 2 {
        return Err(malformed("Parse", "missing parameter type count"));
    }
    let n = i16::from_be_bytes([types[0], types[1]]);
    if n < 0 || types.len() != 2 + 4 * n as usize {
        return Err(malformed(
            "Parse",
            "parameter type count does not match the body",
        ));
    }
    Ok(ParseMsg { name, rest, query })
}

/// The statement-naming part of a Bind: portal, statement, the rest verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindMsg<'a> {
    pub portal: &'a [u8],
    pub statement: &'a [u8],
    /// Formats, parameters and result formats, untouched.
    pub rest: &'a [u8],
}

pub fn bind_msg(body: &[u8]) -> Result<BindMsg<'_>, Malformed> {
    let (portal, after) = cstr(body, "Bind")?;
    let (statement, rest) = cstr(after, "Bind")?;
    Ok(BindMsg {
        portal,
        statement,
        rest,
    })
}

/// Bind's portal field with its terminator, used when rewriting the statement name.
pub fn bind_head(body: &[u8]) -> &[u8] {
    match nul_at(body) {
        Some(i) => &body[..=i],
        None => body,
    }
}

/// Describe or Close: a kind byte (`S` statement, `P` portal) and a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetMsg<'a> {
    pub kind: u8,
    pub name: &'a [u8],
}

pub fn target_msg<'a>(body: &'a [u8], what: &'static str) -> Result<TargetMsg<'a>, Malformed> {
    let Some((&kind, rest)) = body.split_first() else {
        return Err(malformed(what, "empty body"));
    };
    if kind != b'S' && kind != b'P' {
        return Err(malformed(what, "target must be 'S' or 'P'"));
    }
    let (name, tail) = cstr(rest, what)?;
    if !tail.is_empty() {
        return Err(malformed(what, "trailing bytes"));
    }
    Ok(TargetMsg { kind, name })
}

/// Query text of a simple Query message.
pub fn query_text(body: &[u8]) -> Result<&[u8], Malformed> {
    let (text, tail) = cstr(body, "Query")?;
    if !tail.is_empty() {
        return Err(malformed("Query", "trailing bytes"));
    }
    Ok(text)
}

/// Name and value of a ParameterStatus.
pub fn parameter_status(body: &[u8]) -> Result<(&str, &str), Malformed> {
    let (name, rest) = cstr(body, "ParameterStatus")?;
    let (value, _) = cstr(rest, "ParameterStatus")?;
    let name = std::str::from_utf8(name).map_err(|_| malformed("ParameterStatus", "not UTF-8"))?;
    let value =
        std::str::from_utf8(value).map_err(|_| malformed("ParameterStatus", "not UTF-8"))?;
    Ok((name, value))
}

/// A NotificationResponse: the sending server process and the channel.
pub struct Notification<'a> {
    pub pid: u32,
    pub channel: &'a str,
}

pub fn notification(body: &[u8]) -> Result<Notification<'_>, Malformed> {
    let Some((pid, rest)) = body.split_first_chunk::<4>() else {
        return Err(malformed("NotificationResponse", "too short"));
    };
    let (channel, _) = cstr(rest, "NotificationResponse")?;
    let channel =
        std::str::from_utf8(channel).map_err(|_| malformed("NotificationResponse", "not UTF-8"))?;
    Ok(Notification {
        pid: u32::from_be_bytes(*pid),
        channel,
    })
}

/// Command tag of a CommandComplete.
pub fn command_tag(body: &[u8]) -> &[u8] {
    match nul_at(body) {
        Some(i) => &body[..i],
        None => body,
    }
}

/// True when an ErrorResponse body has severity FATAL or PANIC (the server will close).
pub fn is_fatal(body: &[u8]) -> bool {
    let mut rest = body;
    while let Some((&field, after)) = rest.split_first() {
        if field == 0 {
            break;
        }
        let Ok((value, next)) = cstr(after, "ErrorResponse") else {
            break;
        };
        if field == b'V' || field == b'S' {
            return value == b"FATAL" || value == b"PANIC";
        }
        rest = next;
    }
    false
}

/// Code and message of an ErrorResponse/NoticeResponse body (for logs and decisions).
pub fn error_fields(body: &[u8]) -> (String, String) {
    let mut code = String::new();
    let mut message = String::new();
    let mut rest = body;
    while let Some((&field, after)) = rest.split_first() {
        if field == 0 {
            break;
        }
        let Ok((value, next)) = cstr(after, "ErrorResponse") else {
            break;
        };
        match field {
            b'C' => code = String::from_utf8_lossy(value).into_owned(),
            b'M' => message = String::from_utf8_lossy(value).into_owned(),
            _ => {}
        }
        rest = next;
    }
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_found_on_both_sides_of_the_short_scan() {
        for len in [0usize, 1, 15, 16, 17, 40, 200] {
            let mut buf = vec![b'a'; len];
            buf.push(0);
            buf.extend_from_slice(b"tail\0");
            assert_eq!(nul_at(&buf), Some(len), "NUL at {len}");
            assert_eq!(nul_at(&buf[..len]), None, "no NUL in {len} bytes");
        }
    }

    #[test]
    fn parse_message_fields() {
        let body = b"s1\0select $1\0\0\x01\0\0\0\x17";
        let p = parse_msg(body).unwrap();
        assert_eq!(p.name, b"s1");
        assert_eq!(p.query, b"select $1");
        assert_eq!(p.rest, b"select $1\0\0\x01\0\0\0\x17");
        assert!(parse_msg(b"s1\0select\0\0\x02\0\0\0\x17").is_err());
        assert!(parse_msg(b"s1\0select\0\xff\xff").is_err());
        assert!(parse_msg(b"s1").is_err());
    }

    #[test]
    fn bind_and_targets() {
        let b = bind_msg(b"p\0s\0\0\0\0\0\0\0").unwrap();
        assert_eq!((b.portal, b.statement), (&b"p"[..], &b"s"[..]));
        assert_eq!(bind_head(b"p\0s\0"), b"p\0");
        let t = target_msg(b"Sname\0", "Describe").unwrap();
        assert_eq!((t.kind, t.name), (b'S', &b"name"[..]));
        assert!(target_msg(b"Xname\0", "Describe").is_err());
        assert!(target_msg(b"", "Describe").is_err());
    }

    #[test]
    fn error_fields_are_read() {
        let (c, m) = error_fields(b"SERROR\0C42P01\0Mno table\0\0");
        assert_eq!((c.as_str(), m.as_str()), ("42P01", "no table"));
    }
}
