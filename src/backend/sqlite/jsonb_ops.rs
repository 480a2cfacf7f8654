//! PostgreSQL's jsonb operators on the SQLite backend, as SQL functions the rewrite calls
//! (`rewrite::jsonb_operator`): `?` (`sy_jsonb_exists`), `?|` / `?&`
//! (`sy_jsonb_exists_any` / `_all`), `@>` / `<@` (`sy_jsonb_contains`), `#>` / `#>>`
//! (`sy_jsonb_path` / `_text`), `#-` (`sy_jsonb_delete_path`), `jsonb - 'key'`
//! (`sy_jsonb_minus`) and `jsonb || jsonb` (`sy_jsonb_concat`). Semantics are PostgreSQL's (containment as documented under "jsonb
//! Containment and Existence"); a NULL operand gives NULL.

use rusqlite::Connection;
use rusqlite::functions::{Context, FunctionFlags};
use serde_json::Value as J;

fn det() -> FunctionFlags {
    FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC
}

fn json_arg(ctx: &Context<'_>, i: usize) -> rusqlite::Result<Option<J>> {
    let Some(text) = ctx.get::<Option<String>>(i)? else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        rusqlite::Error::UserFunctionError(
            format!("invalid input syntax for type json: {e}").into(),
        )
    })
}

/// A text[] operand (`sy_array`'s JSON list) as its strings.
fn keys(list: &J) -> Vec<String> {
    match list {
        J::Array(items) => items
            .iter()
            .map(|k| {
                k.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| k.to_string())
            })
            .collect(),
        other => vec![
            other
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| other.to_string()),
        ],
    }
}

/// `a ? key`: a top-level key of an object, a string element of an array, or the string.
pub fn exists(a: &J, key: &str) -> bool {
    match a {
        J::Object(m) => m.contains_key(key),
        J::Array(items) => items.iter().any(|i| i.as_str() == Some(key)),
        J::String(s) => s == key,
        _ => false,
    }
}

/// `a @> b`.
pub fn contains(a: &J, b: &J) -> bool {
    match (a, b) {
        // Only at the top level does an array contain a primitive.
        (J::Array(x), prim) if !matches!(prim, J::Object(_) | J::Array(_)) => {
            x.iter().any(|xv| same(xv, prim))
        }
        _ => contains_within(a, b),
    }
}

fn contains_within(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Object(x), J::Object(y)) => y
            .iter()
            .all(|(k, v)| x.get(k).is_some_and(|xv| contains_within(xv, v))),
        (J::Array(x), J::Array(y)) => y.iter().all(|v| {
            x.iter().any(|xv| match xv {
                J::Array(_) | J::Object(_) => contains_within(xv, v),
                _ => same(xv, v),
            })
        }),
        (x, y) => same(x, y),
    }
}

fn same(a: &J, b: &J) -> bool {
    a == b || numbers_equal(a, b)
}

fn numbers_equal(a: &J, b: &J) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => a.is_number() && b.is_number() && x == y,
        _ => false,
    }
}

/// `a #> path`.
pub fn path<'a>(a: &'a J, path: &[String]) -> Option<&'a J> {
    path.iter().try_fold(a, |v, step| match v {
        J::Object(m) => m.get(step),
        J::Array(items) => {
            let i: i64 = step.parse().ok()?;
            let i = if i < 0 { items.len() as i64 + i } else { i };
            items.get(usize::try_from(i).ok()?)
        }
        _ => None,
    })
}

/// `a #- path` (a copy without the element at `path`).
fn delete_path(a: &mut J, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = a;
    for step in parents {
        let next = match at {
            J::Object(m) => m.get_mut(step),
            J::Array(items) => step.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        };
        match next {
            Some(n) => at = n,
            None => return,
        }
    }
    match at {
        J::Object(m) => {
            m.remove(last);
        }
        J::Array(items) => {
            if let Ok(i) = last.parse::<usize>()
                && i < items.len()
            {
                items.remove(i);
            }
        }
        _ => {}
    }
}

/// `a || b` for jsonb: objects merged (the right's keys win), arrays joined, anything else
/// wrapped into an array first.
pub fn concat(a: J, b: J) -> J {
    match (a, b) {
        (J::Object(mut x), J::Object(y)) => {
            x.extend(y);
            J::Object(x)
        }
        (J::Array(mut x), J::Array(y)) => {
            x.extend(y);
            J::Array(x)
        }
        (J::Array(mut x), y) => {
            x.push(y);
            J::Array(x)
        }
        (x, J::Array(mut y)) => {
            y.insert(0, x);
            J::Array(y)
        }
        (x, y) => J::Array(vec![x, y]),
    }
}

/// The text `#>>` and `->>` give: a string unquoted, anything else as JSON text.
fn as_text(v: &J) -> Option<String> {
    match v {
        J::Null => None,
        J::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Registers the functions on a connection.
pub fn register(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function("sy_jsonb_exists", 2, det(), |ctx| {
        let (Some(a), Some(k)) = (json_arg(ctx, 0)?, ctx.get::<Option<String>>(1)?) else {
            return Ok(None);
        };
        Ok(Some(exists(&a, &k)))
    })?;
    for (name, all) in [
        ("sy_jsonb_exists_any", false),
        ("sy_jsonb_exists_all", true),
    ] {
        conn.create_scalar_function(name, 2, det(), move |ctx| {
            let (Some(a), Some(list)) = (json_arg(ctx, 0)?, json_arg(ctx, 1)?) else {
                return Ok(None);
            };
            let ks = keys(&list);
            Ok(Some(if all {
                ks.iter().all(|k| exists(&a, k))
            } else {
                ks.iter().any(|k| exists(&a, k))
            }))
        })?;
    }
    conn.create_scalar_function("sy_jsonb_contains", 2, det(), |ctx| {
        let (Some(a), Some(b)) = (json_arg(ctx, 0)?, json_arg(ctx, 1)?) else {
            return Ok(None);
        };
        Ok(Some(contains(&a, &b)))
    })?;
    for (name, text) in [("sy_jsonb_path", false), ("sy_jsonb_path_text", true)] {
        conn.create_scalar_function(name, 2, det(), move |ctx| {
            let (Some(a), Some(p)) = (json_arg(ctx, 0)?, json_arg(ctx, 1)?) else {
                return Ok(None);
            };
            let found = path(&a, &keys(&p));
            Ok(match (found, text) {
                (None, _) => None,
                (Some(v), true) => as_text(v),
                (Some(v), false) => Some(v.to_string()),
            })
        })?;
    }
    conn.create_scalar_function("sy_jsonb_delete_path", 2, det(), |ctx| {
        let (Some(mut a), Some(p)) = (json_arg(ctx, 0)?, json_arg(ctx, 1)?) else {
            return Ok(None);
        };
        delete_path(&mut a, &keys(&p));
        Ok(Some(a.to_string()))
    })?;
    conn.create_scalar_function("sy_jsonb_concat", 2, det(), |ctx| {
        let (Some(a), Some(b)) = (json_arg(ctx, 0)?, json_arg(ctx, 1)?) else {
            return Ok(None);
        };
        Ok(Some(concat(a, b).to_string()))
    })?;
    conn.create_scalar_function("sy_jsonb_minus", 2, det(), |ctx| {
        let (Some(mut a), Some(k)) = (json_arg(ctx, 0)?, ctx.get::<Option<String>>(1)?) else {
            return Ok(None);
        };
        match &mut a {
            J::Object(m) => {
                m.remove(&k);
            }
            J::Array(items) => items.retain(|i| i.as_str() != Some(k.as_str())),
            _ => {}
        }
        Ok(Some(a.to_string()))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containment_and_existence_as_postgresql_documents_them() {
        let doc =
            json!({"product": "PostgreSQL", "version": 9.4, "tags": ["a", "b"], "n": {"x": 1}});
        assert!(contains(&doc, &json!({"version": 9.4})));
        assert!(contains(&doc, &json!({"tags": ["b"]})));
        assert!(!contains(&doc, &json!({"tags": "b"})));
        assert!(contains(&doc, &json!({"n": {}})));
        assert!(!contains(&doc, &json!({"n": {"x": 2}})));
        assert!(contains(&json!([1, 2, [1, 3]]), &json!([[1, 3]])));
        assert!(contains(&json!([1, 2, 3]), &json!([3, 1])));
        assert!(contains(&json!(["foo", "bar"]), &json!("foo")));
        assert!(!contains(&json!({"a": 1}), &json!([{"a": 1}])));
        assert!(contains(&json!([1.0]), &json!([1])));
        assert!(exists(&json!({"a": 1}), "a"));
        assert!(exists(&json!(["a", "b"]), "b"));
        assert!(!exists(&json!([1]), "1"));
        assert!(exists(&json!("a"), "a"));
    }

    #[test]
    fn concatenation_merges_objects_and_joins_arrays() {
        assert_eq!(
            concat(json!({"a": 1, "b": 2}), json!({"b": 3})),
            json!({"a": 1, "b": 3})
        );
        assert_eq!(concat(json!([1]), json!([2, 3])), json!([1, 2, 3]));
        assert_eq!(concat(json!([1]), json!(2)), json!([1, 2]));
        assert_eq!(concat(json!({"a": 1}), json!([2])), json!([{"a": 1}, 2]));
    }

    #[test]
    fn paths_reach_into_objects_and_arrays() {
        let doc = json!({"a": {"b": [10, 20, {"c": "x"}]}});
        let p = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(path(&doc, &p(&["a", "b", "1"])), Some(&json!(20)));
        assert_eq!(path(&doc, &p(&["a", "b", "-1", "c"])), Some(&json!("x")));
        assert_eq!(path(&doc, &p(&["a", "z"])), None);
        let mut d = doc.clone();
        delete_path(&mut d, &p(&["a", "b", "0"]));
        assert_eq!(d, json!({"a": {"b": [20, {"c": "x"}]}}));
    }
}
