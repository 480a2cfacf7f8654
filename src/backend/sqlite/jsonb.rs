//! `jsonb` values as PostgreSQL prints them: SQLite keeps the JSON text as written, while
//! PostgreSQL's `jsonb` stores it parsed — object keys ordered (shorter keys first, then by
//! their bytes), the last of duplicate keys kept, `": "` and `", "` between items, strings
//! re-escaped, numbers kept as written (exponents expanded). Text that is not JSON is
//! returned unchanged.

use std::fmt::Write;

/// `text` parsed as one JSON value with nothing after it.
fn parse_whole(text: &str) -> Option<Json> {
    let mut p = Parser {
        s: text.as_bytes(),
        at: 0,
    };
    let v = p.value()?;
    p.ws();
    (p.at == p.s.len()).then_some(v)
}

/// `text` in PostgreSQL's `jsonb` output form (None: not JSON).
pub fn normalize(text: &str) -> Option<String> {
    let v = parse_whole(text)?;
    let mut out = String::with_capacity(text.len());
    write_value(&mut out, &v);
    Some(out)
}

/// `text` as PostgreSQL's `jsonb_pretty` prints it: four spaces a level, every item on
/// its own line, an empty object or array over two lines (None: not JSON).
pub fn pretty(text: &str) -> Option<String> {
    let v = parse_whole(text)?;
    let mut out = String::with_capacity(text.len() * 2);
    write_pretty(&mut out, &v, 0);
    Some(out)
}

fn write_pretty(out: &mut String, v: &Json, depth: usize) {
    let pad = |out: &mut String, d: usize| {
        out.push('\n');
        out.push_str(&" ".repeat(4 * d));
    };
    match v {
        Json::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                out.push_str(if i > 0 { "," } else { "" });
                pad(out, depth + 1);
                write_pretty(out, x, depth + 1);
            }
            pad(out, depth);
            out.push(']');
        }
        Json::Object(items) => {
            out.push('{');
            for (i, (k, x)) in items.iter().enumerate() {
                out.push_str(if i > 0 { "," } else { "" });
                pad(out, depth + 1);
                write_string(out, k);
                out.push_str(": ");
                write_pretty(out, x, depth + 1);
            }
            pad(out, depth);
            out.push('}');
        }
        scalar => write_value(out, scalar),
    }
}

enum Json {
    Null,
    Bool(bool),
    Number(String),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.at).is_some_and(|b| b" \t\r\n".contains(b)) {
            self.at += 1;
        }
    }

    fn eat(&mut self, word: &[u8]) -> bool {
        let ok = self.s[self.at..].starts_with(word);
        if ok {
            self.at += word.len();
        }
        ok
    }

    fn value(&mut self) -> Option<Json> {
        self.ws();
        match *self.s.get(self.at)? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string().map(Json::Str),
            b'n' if self.eat(b"null") => Some(Json::Null),
            b't' if self.eat(b"true") => Some(Json::Bool(true)),
            b'f' if self.eat(b"false") => Some(Json::Bool(false)),
            _ => self.number(),
        }
    }

    fn object(&mut self) -> Option<Json> {
        self.at += 1;
        let mut items: Vec<(String, Json)> = Vec::new();
        self.ws();
        if self.eat(b"}") {
            return Some(Json::Object(items));
        }
        loop {
            self.ws();
            let k = self.string()?;
            self.ws();
            if !self.eat(b":") {
                return None;
            }
            let v = self.value()?;
            items.retain(|(old, _)| *old != k);
            items.push((k, v));
            self.ws();
            if self.eat(b"}") {
                break;
            }
            if !self.eat(b",") {
                return None;
            }
        }
        items.sort_by(|(a, _), (b, _)| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
        Some(Json::Object(items))
    }

    fn array(&mut self) -> Option<Json> {
        self.at += 1;
        let mut items = Vec::new();
        self.ws();
        if self.eat(b"]") {
            return Some(Json::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.ws();
            if self.eat(b"]") {
                return Some(Json::Array(items));
            }
            if !self.eat(b",") {
                return None;
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        let start = self.at;
        let rest = self.s.get(start..)?;
        let mut i = 1;
        loop {
            match *rest.get(i)? {
                b'"' => break,
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
        self.at = start + i + 1;
        serde_json::from_slice(&rest[..=i]).ok()
    }

    fn number(&mut self) -> Option<Json> {
        let start = self.at;
        while self
            .s
            .get(self.at)
            .is_some_and(|b| b.is_ascii_digit() || b"+-.eE".contains(b))
        {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.at]).ok()?;
        let f: f64 = text.parse().ok()?;
        if !f.is_finite() {
            return None;
        }
        Some(Json::Number(if text.contains(['e', 'E']) {
            format!("{f}")
        } else {
            text.to_string()
        }))
    }
}

fn write_value(out: &mut String, v: &Json) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(n),
        Json::Str(s) => write_string(out, s),
        Json::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, x);
            }
            out.push(']');
        }
        Json::Object(items) => {
            out.push('{');
            for (i, (k, x)) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, k);
                out.push_str(": ");
                write_value(out, x);
            }
            out.push('}');
        }
    }
}

/// A string as PostgreSQL escapes it: `"` and `\`, the named control characters, the
/// other control characters as `\u00XX`; everything else as it is.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::{normalize, pretty};

    /// What PostgreSQL 15's `jsonb_pretty` printed.
    #[test]
    fn pretty_as_postgresql_prints_it() {
        assert_eq!(
            pretty(r#"{"b":[1,{"x":null}],"a":1,"c":{},"d":[]}"#).unwrap(),
            "{\n    \"a\": 1,\n    \"b\": [\n        1,\n        {\n            \"x\": null\n        }\n    ],\n    \"c\": {\n    },\n    \"d\": [\n    ]\n}"
        );
        assert_eq!(pretty("3").unwrap(), "3");
        assert_eq!(pretty("[]").unwrap(), "[\n]");
    }

    #[test]
    fn printed_as_postgresql_prints_jsonb() {
        let n = |s: &str| normalize(s).unwrap();
        assert_eq!(
            n(r#"{"zeta":1,"a":[1,2.50,{"bb":true,"b":null}],"a":"last"}"#),
            r#"{"a": "last", "zeta": 1}"#
        );
        assert_eq!(
            n(r#"{"b": 1, "aa": 2, "a": 3}"#),
            r#"{"a": 3, "b": 1, "aa": 2}"#
        );
        assert_eq!(
            n(r#"[1e2, -0.50, "caf\u00e9 \"x\"\n\/"]"#),
            r#"[100, -0.50, "café \"x\"\n/"]"#
        );
        assert_eq!(n(" 42 "), "42");
        assert!(normalize("{not json").is_none());
        assert!(normalize("[1,]").is_none());
    }
}
