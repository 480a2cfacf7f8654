//! Array parameters on the SQLite backend. SQLite keeps arrays as JSON (`["a","b"]`); a
//! parameter cast to an array type (`$1::varchar[]`, as Django's UNNEST bulk inserts and
//! `= ANY($1)` send them) is described with the array's type OID, so drivers send an array,
//! which arrives as PostgreSQL's text literal (read by `sy_array`) or its binary form
//! (turned into JSON here).

use rusqlite::types::Value;

use super::types;

/// (element OID, array OID) for the element types switchyard reads.
const ARRAYS: [(u32, u32); 22] = [
    (types::BOOL, 1000),
    (types::BYTEA, 1001),
    (types::INT2, 1005),
    (types::INT4, 1007),
    (types::TEXT, 1009),
    (types::BPCHAR, 1014),
    (types::VARCHAR, 1015),
    (types::INT8, 1016),
    (types::FLOAT4, 1021),
    (types::FLOAT8, 1022),
    (types::TIMESTAMP, 1115),
    (types::DATE, 1182),
    (types::TIME, 1183),
    (types::TIMESTAMPTZ, 1185),
    (types::NUMERIC, 1231),
    (types::UUID, 2951),
    (types::JSON, 199),
    (types::JSONB, 3807),
    (types::OID, 1028),
    (types::NAME, 1003),
    (types::CHAR, 1002),
    (types::INTERVAL, 1187),
];

/// The array type of an element type (text[] for one switchyard does not know).
pub fn array_of(elem: u32) -> u32 {
    array_type(elem).unwrap_or(1009)
}

/// The array type of an element type switchyard reads, if it is one.
pub fn array_type(elem: u32) -> Option<u32> {
    ARRAYS.iter().find(|(e, _)| *e == elem).map(|(_, a)| *a)
}

/// The element type of an array type.
pub fn element_of(array: u32) -> Option<u32> {
    ARRAYS.iter().find(|(_, a)| *a == array).map(|(e, _)| *e)
}

fn i32_at(b: &[u8], at: usize) -> Result<i32, String> {
    b.get(at..at + 4)
        .map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| "truncated binary array".to_string())
}

/// A binary array parameter as JSON text (nested for more than one dimension).
pub fn from_binary(b: &[u8], elem: u32) -> Result<Value, String> {
    let ndim = i32_at(b, 0)?.max(0) as usize;
    let mut at = 12;
    let mut dims = Vec::with_capacity(ndim);
    for _ in 0..ndim {
        dims.push(i32_at(b, at)?.max(0) as usize);
        at += 8;
    }
    let total: usize = if ndim == 0 { 0 } else { dims.iter().product() };
    let mut items = Vec::with_capacity(total);
    for _ in 0..total {
        let len = i32_at(b, at)?;
        at += 4;
        if len < 0 {
            items.push(serde_json::Value::Null);
            continue;
        }
        let bytes = b
            .get(at..at + len as usize)
            .ok_or("truncated binary array element")?;
        at += len as usize;
        items.push(json(types::param_from_binary(bytes, elem)?));
    }
    Ok(Value::Text(nest(items, &dims).to_string()))
}

/// A JSON array (as SQLite keeps arrays) in PostgreSQL's text form; other text as it is.
pub fn json_to_literal(text: &str) -> String {
    // Already PostgreSQL's literal (a column default `'{}'`, a file written before arrays
    // were kept as JSON).
    if text.trim_start().starts_with('{') {
        return text.to_string();
    }
    crate::sync::source::array::json_to_pg_literal(text).unwrap_or_else(|| text.to_string())
}

/// A JSON array value in PostgreSQL's binary array form, elements as `elem`; false when
/// the value is no array or an element cannot be written. An array kept as PostgreSQL's
/// literal (`{a,b}`, as files written before arrays were stored as JSON hold them) is read
/// as that literal.
pub fn put_binary(out: &mut bytes::BytesMut, v: &Value, elem: u32) -> bool {
    use bytes::BufMut;
    let Value::Text(text) = v else { return false };
    let json = if text.trim_start().starts_with('{') {
        match crate::sync::source::array::pg_text_to_json(text, super::types::type_name(elem)) {
            Some(j) => j,
            None => return false,
        }
    } else {
        text.clone()
    };
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(&json)
    else {
        return false;
    };
    out.put_i32(if items.is_empty() { 0 } else { 1 });
    out.put_i32(items.iter().any(|i| i.is_null()) as i32);
    out.put_u32(elem);
    if items.is_empty() {
        return true;
    }
    out.put_i32(items.len() as i32);
    out.put_i32(1);
    for item in items {
        let value = match item {
            serde_json::Value::Null => {
                out.put_i32(-1);
                continue;
            }
            serde_json::Value::Bool(b) => Value::Integer(b as i64),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Integer(i),
                None => Value::Real(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => Value::Text(s),
            other => Value::Text(other.to_string()),
        };
        let at = out.len();
        out.put_i32(0);
        if !types::put_binary(out, &value, elem) {
            return false;
        }
        let len = (out.len() - at - 4) as i32;
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
    true
}

fn json(v: Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Integer(i) => i.into(),
        Value::Real(f) => f.into(),
        Value::Text(t) => t.into(),
        Value::Blob(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("\\x{hex}").into()
        }
    }
}

/// Flat elements into nested lists of the given dimensions.
fn nest(items: Vec<serde_json::Value>, dims: &[usize]) -> serde_json::Value {
    match dims {
        [] | [_] => serde_json::Value::Array(items),
        [_, rest @ ..] => {
            let inner: usize = rest.iter().product();
            let mut it = items.into_iter();
            let lists = (0..items_len(dims))
                .map(|_| nest(it.by_ref().take(inner).collect(), rest))
                .collect();
            serde_json::Value::Array(lists)
        }
    }
}

fn items_len(dims: &[usize]) -> usize {
    dims.first().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(elem: u32, dims: &[i32], items: &[Option<&[u8]>]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend((dims.len() as i32).to_be_bytes());
        b.extend(0i32.to_be_bytes());
        b.extend(elem.to_be_bytes());
        for d in dims {
            b.extend(d.to_be_bytes());
            b.extend(1i32.to_be_bytes());
        }
        for i in items {
            match i {
                None => b.extend((-1i32).to_be_bytes()),
                Some(x) => {
                    b.extend((x.len() as i32).to_be_bytes());
                    b.extend(*x);
                }
            }
        }
        b
    }

    #[test]
    fn binary_arrays_become_json() {
        let one = 1i32.to_be_bytes();
        let two = 2i32.to_be_bytes();
        let b = binary(types::INT4, &[3], &[Some(&one), None, Some(&two)]);
        assert_eq!(
            from_binary(&b, types::INT4).unwrap(),
            Value::Text("[1,null,2]".into())
        );
        let b = binary(types::TEXT, &[2, 1], &[Some(b"a"), Some(b"b \"q\"")]);
        assert_eq!(
            from_binary(&b, types::TEXT).unwrap(),
            Value::Text(r#"[["a"],["b \"q\""]]"#.into())
        );
        assert_eq!(
            from_binary(&binary(types::INT4, &[], &[]), types::INT4).unwrap(),
            Value::Text("[]".into())
        );
        assert!(from_binary(&[0, 0], types::INT4).is_err());
        assert_eq!(
            (array_of(types::VARCHAR), element_of(1007)),
            (1015, Some(types::INT4))
        );
    }

    /// An array kept as JSON and one kept as PostgreSQL's literal are written alike.
    #[test]
    fn literal_and_json_arrays_go_out_in_the_same_binary_form() {
        let (mut a, mut b) = (bytes::BytesMut::new(), bytes::BytesMut::new());
        assert!(put_binary(
            &mut a,
            &Value::Text("[1,2]".into()),
            types::INT4
        ));
        assert!(put_binary(
            &mut b,
            &Value::Text("{1,2}".into()),
            types::INT4
        ));
        assert_eq!(a, b);
        assert!(!put_binary(&mut b, &Value::Text("{1,".into()), types::INT4));
    }
}
