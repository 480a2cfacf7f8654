//! Arrays between SQLite and PostgreSQL. SQLite has no array type: an app (and
//! switchyard's own SQLite backend) keeps one as JSON text (`[1, 2]`), sometimes as
//! PostgreSQL's literal (`{1,2}`). Both are read into one tree, which the copy writes as
//! PostgreSQL's binary array (each element by the element type's rules), verify compares
//! element by element, and live sync's apply into SQLite writes back as JSON.

use bytes::{BufMut, BytesMut};
use rusqlite::types::Value;

/// One array, or one element of it.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Leaf(Value),
    List(Vec<Node>),
}

/// The element type of an array type (`character varying(20)[]` → `character
/// varying(20)`); None for a type that is not an array.
pub fn element_type(pg_type: &str) -> Option<&str> {
    let t = pg_type.trim();
    let mut elem = t.strip_suffix("[]")?;
    while let Some(inner) = elem.strip_suffix("[]") {
        elem = inner;
    }
    Some(elem.trim())
}

/// Reads a SQLite value holding an array: JSON text or a PostgreSQL array literal.
pub fn parse(v: &Value) -> Result<Node, String> {
    let text = match v {
        Value::Text(t) => t.as_str(),
        Value::Blob(b) => std::str::from_utf8(b).map_err(|_| "not an array")?,
        _ => return Err("not an array (a JSON array or a PostgreSQL array literal is)".into()),
    };
    parse_text(text)
}

/// [`parse`] for text.
pub fn parse_text(text: &str) -> Result<Node, String> {
    let t = text.trim();
    if t.starts_with('[') {
        let json: serde_json::Value =
            serde_json::from_str(t).map_err(|e| format!("not a JSON array ({e})"))?;
        return Ok(from_json(json));
    }
    if t.starts_with('{') {
        let mut p = Literal {
            s: t.as_bytes(),
            at: 0,
        };
        let node = p.list()?;
        if p.at != t.len() {
            return Err("text after the array's closing brace".into());
        }
        return Ok(node);
    }
    Err("not an array (a JSON array or a PostgreSQL array literal is)".into())
}

fn from_json(j: serde_json::Value) -> Node {
    use serde_json::Value as J;
    match j {
        J::Null => Node::Null,
        J::Array(items) => Node::List(items.into_iter().map(from_json).collect()),
        J::Number(n) => Node::Leaf(match n.as_i64() {
            Some(i) => Value::Integer(i),
            // The digits as written (a float would round a long decimal).
            None => Value::Text(n.to_string()),
        }),
        J::String(s) => Node::Leaf(Value::Text(s)),
        J::Bool(b) => Node::Leaf(Value::Text(b.to_string())),
        object => Node::Leaf(Value::Text(object.to_string())),
    }
}

/// PostgreSQL's array literal: `{a,"b c",NULL,{1,2}}`.
struct Literal<'a> {
    s: &'a [u8],
    at: usize,
}

impl Literal<'_> {
    fn skip_space(&mut self) {
        while self.at < self.s.len() && self.s[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn list(&mut self) -> Result<Node, String> {
        self.at += 1; // '{'
        let mut items = Vec::new();
        self.skip_space();
        if self.s.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Ok(Node::List(items));
        }
        loop {
            self.skip_space();
            items.push(match self.s.get(self.at) {
                Some(b'{') => self.list()?,
                Some(b'"') => Node::Leaf(Value::Text(self.quoted()?)),
                Some(_) => self.bare()?,
                None => return Err("unterminated array literal".into()),
            });
            self.skip_space();
            match self.s.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Node::List(items));
                }
                _ => return Err("malformed array literal (expected , or })".into()),
            }
        }
    }

    fn quoted(&mut self) -> Result<String, String> {
        self.at += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.at) {
            self.at += 1;
            match c {
                b'\\' => {
                    out.push(*self.s.get(self.at).ok_or("unterminated quoted element")?);
                    self.at += 1;
                }
                b'"' => return String::from_utf8(out).map_err(|_| "not UTF-8".into()),
                c => out.push(c),
            }
        }
        Err("unterminated quoted element".into())
    }

    fn bare(&mut self) -> Result<Node, String> {
        let start = self.at;
        while let Some(&c) = self.s.get(self.at) {
            if c == b',' || c == b'}' {
                break;
            }
            if c == b'{' || c == b'"' {
                return Err("malformed array literal (unquoted { or \")".into());
            }
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.at])
            .map_err(|_| "not UTF-8")?
            .trim();
        Ok(if text.eq_ignore_ascii_case("null") {
            Node::Null
        } else {
            Node::Leaf(Value::Text(text.to_string()))
        })
    }
}

/// The sizes of each dimension; an error when the lists are not rectangular (PostgreSQL
/// arrays are).
pub fn dims(node: &Node) -> Result<Vec<usize>, String> {
    let mut dims = Vec::new();
    let mut level = vec![node];
    while let Some(Node::List(first)) = level.first() {
        let len = first.len();
        if len == 0 && !dims.is_empty() {
            return Err("an empty inner array (PostgreSQL arrays are rectangular)".into());
        }
        if len == 0 {
            break;
        }
        let mut next = Vec::new();
        for n in &level {
            match n {
                Node::List(items) if items.len() == len => next.extend(items.iter()),
                _ => {
                    return Err(
                        "inner arrays of different sizes (PostgreSQL arrays are rectangular)"
                            .into(),
                    );
                }
            }
        }
        dims.push(len);
        let lists = next.iter().filter(|n| matches!(n, Node::List(_))).count();
        if lists != 0 && lists != next.len() {
            return Err("elements mixed with inner arrays".into());
        }
        level = next;
    }
    Ok(dims)
}

/// The elements in storage order (row-major).
pub fn leaves(node: &Node) -> Vec<&Node> {
    match node {
        Node::List(items) => items.iter().flat_map(leaves).collect(),
        other => vec![other],
    }
}

/// The type OID PostgreSQL's binary array names its elements by.
fn element_oid(elem: &str) -> Option<u32> {
    let base = elem.split('(').next().unwrap_or(elem).trim();
    Some(match base {
        "boolean" => 16,
        "bytea" => 17,
        "bigint" => 20,
        "smallint" => 21,
        "integer" => 23,
        "text" => 25,
        "json" => 114,
        "real" => 700,
        "double precision" => 701,
        "character" | "char" => 1042,
        "character varying" | "varchar" => 1043,
        "date" => 1082,
        "time" | "time without time zone" => 1083,
        "timestamp" | "timestamp without time zone" => 1114,
        "timestamp with time zone" => 1184,
        "numeric" => 1700,
        "uuid" => 2950,
        "jsonb" => 3802,
        _ => return None,
    })
}

/// Writes `v` as PostgreSQL's binary array of `elem` (the field's body, without its
/// length). `put` writes one element as a whole field.
pub fn encode(
    out: &mut BytesMut,
    v: &Value,
    elem: &str,
    put: impl Fn(&mut BytesMut, &Value, &str) -> Result<(), String>,
) -> Result<(), String> {
    let oid =
        element_oid(elem).ok_or_else(|| format!("switchyard cannot write arrays of {elem}"))?;
    let node = parse(v)?;
    let dims = dims(&node)?;
    let leaves = leaves(&node);
    out.put_i32(dims.len() as i32);
    out.put_i32(leaves.iter().any(|l| matches!(l, Node::Null)) as i32);
    out.put_u32(oid);
    for d in &dims {
        out.put_i32(*d as i32);
        out.put_i32(1);
    }
    if dims.is_empty() {
        return Ok(());
    }
    for leaf in leaves {
        match leaf {
            Node::Leaf(v) => put(out, v, elem)?,
            _ => put(out, &Value::Null, elem)?,
        }
    }
    Ok(())
}

/// A PostgreSQL array's text as the JSON SQLite keeps (numbers and booleans as JSON's
/// own for those element types, everything else as strings).
pub fn pg_text_to_json(text: &str, elem: &str) -> Option<String> {
    let node = parse_text(text).ok()?;
    let base = elem.split('(').next().unwrap_or(elem).trim();
    Some(to_json(&node, base).to_string())
}

fn to_json(node: &Node, base: &str) -> serde_json::Value {
    use serde_json::Value as J;
    match node {
        Node::Null => J::Null,
        Node::List(items) => J::Array(items.iter().map(|n| to_json(n, base)).collect()),
        Node::Leaf(v) => {
            let text = match v {
                Value::Text(t) => t.clone(),
                Value::Integer(i) => i.to_string(),
                other => format!("{other:?}"),
            };
            let number = || {
                serde_json::from_str::<serde_json::Number>(&text)
                    .ok()
                    .map(J::Number)
            };
            match base {
                "bigint" | "integer" | "smallint" | "oid" | "numeric" | "real"
                | "double precision" => number().unwrap_or(J::String(text)),
                "boolean" => J::Bool(text == "t" || text == "true"),
                "json" | "jsonb" => serde_json::from_str(&text).unwrap_or(J::String(text)),
                _ => J::String(text),
            }
        }
    }
}

/// A JSON list of strings and nulls (verify's canonical array) as PostgreSQL prints an
/// array: `{a,"b c",NULL}`.
pub fn json_to_pg_literal(text: &str) -> Option<String> {
    fn put(out: &mut String, j: &serde_json::Value) {
        match j {
            serde_json::Value::Array(items) => {
                out.push('{');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    put(out, item);
                }
                out.push('}');
            }
            serde_json::Value::Null => out.push_str("NULL"),
            serde_json::Value::String(s) => quote(out, s),
            other => quote(out, &other.to_string()),
        }
    }
    fn quote(out: &mut String, s: &str) {
        let plain = !s.is_empty()
            && !s.eq_ignore_ascii_case("null")
            && !s
                .chars()
                .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_whitespace());
        if plain {
            return out.push_str(s);
        }
        out.push('"');
        for c in s.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    let j: serde_json::Value = serde_json::from_str(text).ok()?;
    let mut out = String::new();
    put(&mut out, &j);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn json_and_postgresql_literals_read_the_same() {
        let json = parse(&text("[1, null, \"a b\"]")).unwrap();
        let lit = parse(&text("{1,NULL,\"a b\"}")).unwrap();
        assert_eq!(leaves(&json).len(), 3);
        assert_eq!(leaves(&lit)[2], &Node::Leaf(text("a b")));
        assert_eq!(leaves(&json)[1], &Node::Null);
        assert_eq!(leaves(&lit)[1], &Node::Null);
        let nested = parse(&text("{{1,2},{3,4}}")).unwrap();
        assert_eq!(dims(&nested).unwrap(), vec![2, 2]);
        assert_eq!(
            dims(&parse(&text("[]")).unwrap()).unwrap(),
            Vec::<usize>::new()
        );
        let q = parse(&text(r#"{"x\"y","a\\b", plain }"#)).unwrap();
        assert_eq!(leaves(&q)[0], &Node::Leaf(text("x\"y")));
        assert_eq!(leaves(&q)[1], &Node::Leaf(text("a\\b")));
        assert_eq!(leaves(&q)[2], &Node::Leaf(text("plain")));
    }

    #[test]
    fn what_is_not_an_array_is_named() {
        assert!(parse(&text("1,2")).unwrap_err().contains("not an array"));
        assert!(
            parse(&Value::Integer(3))
                .unwrap_err()
                .contains("not an array")
        );
        let ragged = parse(&text("[[1,2],[3]]")).unwrap();
        assert!(dims(&ragged).unwrap_err().contains("rectangular"));
        assert!(parse(&text("{1,2")).is_err());
        assert!(parse(&text("[1,")).unwrap_err().contains("JSON"));
    }

    #[test]
    fn element_types_and_json_back() {
        assert_eq!(
            element_type("character varying(20)[]"),
            Some("character varying(20)")
        );
        assert_eq!(element_type("integer[][]"), Some("integer"));
        assert_eq!(element_type("integer"), None);
        assert_eq!(
            pg_text_to_json("{1,NULL,3}", "integer").as_deref(),
            Some("[1,null,3]")
        );
        assert_eq!(
            pg_text_to_json("{t,f}", "boolean").as_deref(),
            Some("[true,false]")
        );
        assert_eq!(
            pg_text_to_json("{\"a,b\",c}", "text").as_deref(),
            Some("[\"a,b\",\"c\"]")
        );
        assert_eq!(
            json_to_pg_literal(r#"[["a b",null],["NULL","x\"y"]]"#).as_deref(),
            Some(r#"{{"a b",NULL},{"NULL","x\"y"}}"#)
        );
    }
}
