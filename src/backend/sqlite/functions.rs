//! PostgreSQL functions that applications, drivers and psql call, registered as SQLite
//! functions on every connection: `version()`, `current_schema()`, `current_setting()`,
//! `pg_backend_pid()`, `gen_random_uuid()`, `format_type()`, and the catalog helpers.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value;

use super::setvar::{SERVER_VERSION, Settings};
use super::types;

/// `start` (or the present moment) as the SQLite backend stores a `timestamptz`:
/// `YYYY-MM-DD HH:MM:SS.mmm+00`, as `strftime('%Y-%m-%d %H:%M:%f+00', 'now')` writes it.
fn now_text(start: Option<i64>) -> String {
    let us = start.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0)
    });
    let ms = us.div_euclid(1000);
    let whole = super::datetime::format_timestamp_micros(ms.div_euclid(1000) * 1_000_000);
    format!("{whole}.{:03}+00", ms.rem_euclid(1000))
}

/// The elements of an array kept as JSON or written as PostgreSQL's literal, and the
/// index of its first (1), or of an int2vector's text (`2 3`; 0).
fn array_items(text: &str) -> (Vec<serde_json::Value>, i64) {
    let t = text.trim_start();
    if t.starts_with('[') {
        (serde_json::from_str(t).unwrap_or_default(), 1)
    } else if t.starts_with('{') {
        let json = crate::sync::source::array::pg_text_to_json(t, "text").unwrap_or_default();
        (serde_json::from_str(&json).unwrap_or_default(), 1)
    } else {
        let numbers = t
            .split_whitespace()
            .map(|n| n.parse::<i64>().map(Into::into));
        (numbers.collect::<Result<_, _>>().unwrap_or_default(), 0)
    }
}

/// Element `i` of an array kept as JSON or written as PostgreSQL's literal (1-based), or
/// of an int2vector's text (`2 3`, 0-based); NULL outside it, as in PostgreSQL.
fn subscript(text: &str, i: i64) -> Value {
    let (items, base) = array_items(text);
    let item = usize::try_from(i - base).ok().and_then(|k| items.get(k));
    match item {
        None | Some(serde_json::Value::Null) => Value::Null,
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .map(Value::Integer)
            .unwrap_or_else(|| Value::Real(n.as_f64().unwrap_or_default())),
        Some(serde_json::Value::String(s)) => Value::Text(s.clone()),
        Some(serde_json::Value::Bool(b)) => Value::Integer(*b as i64),
        Some(other) => Value::Text(other.to_string()),
    }
}

/// A name as PostgreSQL quotes it in what it prints (plain when lower case, digits and
/// underscores; quoted otherwise).
pub fn quote_ident(s: &str) -> String {
    let plain = s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain && !s.starts_with(|c: char| c.is_ascii_digit()) {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

fn det() -> FunctionFlags {
    FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC
}

fn volatile() -> FunctionFlags {
    FunctionFlags::SQLITE_UTF8
}

fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Registers every function on `conn`.
pub fn register(
    conn: &Connection,
    settings: Arc<Mutex<Settings>>,
    pid: u32,
    db_name: String,
) -> rusqlite::Result<()> {
    let version = format!(
        "PostgreSQL {SERVER_VERSION} (switchyard SQLite backend, SQLite {}) on x86_64-pc-linux-gnu",
        rusqlite::version()
    );
    conn.create_scalar_function("version", 0, det(), move |_| Ok(version.clone()))?;
    let s = settings.clone();
    conn.create_scalar_function("sy_now", 0, volatile(), move |_| {
        let start = s
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .transaction_start;
        Ok(now_text(start))
    })?;
    conn.create_scalar_function("current_schema", 0, det(), |_| Ok("public"))?;
    conn.create_scalar_function("current_database", 0, det(), move |_| Ok(db_name.clone()))?;
    for name in ["current_user", "session_user", "current_role", "user"] {
        conn.create_scalar_function(name, 0, det(), |_| Ok("postgres"))?;
    }
    // `pg_typeof` of what the statement does not type (see `value_types.rs`): by what
    // SQLite holds.
    conn.create_scalar_function("pg_typeof", 1, det(), |ctx| {
        Ok(match ctx.get_raw(0) {
            rusqlite::types::ValueRef::Null => "unknown",
            rusqlite::types::ValueRef::Integer(_) => "integer",
            rusqlite::types::ValueRef::Real(_) => "double precision",
            rusqlite::types::ValueRef::Text(_) => "text",
            rusqlite::types::ValueRef::Blob(_) => "bytea",
        })
    })?;
    conn.create_scalar_function("pg_backend_pid", 0, det(), move |_| Ok(pid as i64))?;
    conn.create_scalar_function("gen_random_uuid", 0, volatile(), |_| Ok(uuid_v4()))?;
    conn.create_scalar_function("uuid_generate_v4", 0, volatile(), |_| Ok(uuid_v4()))?;
    let s = settings.clone();
    conn.create_scalar_function("current_setting", -1, volatile(), move |ctx| {
        let name: String = ctx.get(0)?;
        let value = s
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
            .map(str::to_string);
        Ok(value)
    })?;
    let s = settings.clone();
    conn.create_scalar_function("set_config", 3, volatile(), move |ctx| {
        let name: String = ctx.get(0)?;
        let mut settings = s.lock().unwrap_or_else(|e| e.into_inner());
        // A NULL value resets the setting, as on PostgreSQL (asyncpg restores `jit` so).
        let Some(value) = ctx.get::<Option<String>>(1)? else {
            settings.reset(&name);
            return Ok(settings.get(&name).map(str::to_string));
        };
        Settings::check(&name, &value)
            .map_err(|m| rusqlite::Error::UserFunctionError(format!("22023: {m}").into()))?;
        settings.set(&name, &value);
        Ok(Some(value))
    })?;
    // A divisor, or PostgreSQL's error when it is zero (SQLite's `x / 0` is NULL).
    conn.create_scalar_function("sy_nonzero", 1, det(), |ctx| {
        let v: Value = ctx.get(0)?;
        match v {
            Value::Integer(0) => Err(rusqlite::Error::UserFunctionError(
                "22012: division by zero".into(),
            )),
            Value::Real(0.0) => Err(rusqlite::Error::UserFunctionError(
                "22012: division by zero".into(),
            )),
            other => Ok(other),
        }
    })?;
    conn.create_scalar_function("pg_type_oid", 1, det(), |ctx| {
        let decl: Option<String> = ctx.get(0)?;
        Ok(types::oid_for_decltype(decl.as_deref().unwrap_or("")) as i64)
    })?;
    // The oid of a type known here by name, else NULL (psycopg's TypeInfo.fetch asks for
    // hstore this way, and must hear that there is none).
    conn.create_scalar_function("to_regtype", 1, det(), |ctx| {
        let name: Option<String> = ctx.get(0)?;
        let name = name.unwrap_or_default();
        let oid = types::oid_for_decltype(&name);
        let known = oid != types::TEXT || name.trim().eq_ignore_ascii_case("text");
        Ok(known.then_some(oid as i64))
    })?;
    for (name, n, v) in [
        ("pg_table_is_visible", 1, Value::Integer(1)),
        ("pg_type_is_visible", 1, Value::Integer(1)),
        ("pg_collation_is_visible", 1, Value::Integer(1)),
        ("pg_function_is_visible", 1, Value::Integer(1)),
        ("has_table_privilege", -1, Value::Integer(1)),
        ("has_schema_privilege", -1, Value::Integer(1)),
        ("has_database_privilege", -1, Value::Integer(1)),
        ("pg_is_in_recovery", 0, Value::Integer(0)),
        ("pg_get_userbyid", 1, Value::Text("postgres".into())),
        ("pg_encoding_to_char", 1, Value::Text("UTF8".into())),
        ("obj_description", -1, Value::Null),
        ("col_description", 2, Value::Null),
        ("shobj_description", 2, Value::Null),
        ("pg_relation_size", -1, Value::Integer(0)),
        ("pg_total_relation_size", 1, Value::Integer(0)),
        ("pg_relation_is_publishable", 1, Value::Integer(0)),
        ("pg_get_statisticsobjdef_columns", 1, Value::Null),
        // pg_trigger has no rows: no trigger of the application is shown.
        ("pg_get_triggerdef", -1, Value::Null),
        ("array_upper", 2, Value::Null),
    ] {
        conn.create_scalar_function(name, n, det(), move |_| Ok(v.clone()))?;
    }
    super::jsonb_ops::register(conn)?;
    super::typmod::register(conn)?;
    super::defaults::register(conn)?;
    super::coerce::register(conn, settings.clone())?;
    super::interval::register(conn, settings.clone())?;
    super::date_functions::register(conn, settings.clone())?;
    super::to_char::register(conn, settings.clone())?;
    super::decimal::register(conn)?;
    super::decimal_spread::register(conn)?;
    super::input::register(conn)?;
    super::ordered_set::register(conn)?;
    super::constraints::register(conn)?;
    super::sequences::register(conn)?;
    // An array value as the JSON array SQLite keeps: PostgreSQL's literal (`{a,"b c"}`,
    // what drivers send for an array parameter) or JSON already; a second argument names
    // the element type (`integer`: numbers kept as JSON numbers).
    conn.create_scalar_function("sy_array", -1, det(), |ctx| {
        let elem = if ctx.len() > 1 {
            ctx.get::<Option<String>>(1)?
                .unwrap_or_else(|| "text".into())
        } else {
            "text".into()
        };
        let Some(text) = ctx.get::<Option<String>>(0)? else {
            return Ok(None);
        };
        let t = text.trim_start();
        if t.starts_with('[') {
            return Ok(Some(text));
        }
        if !t.starts_with('{') {
            // int2vector / oidvector text (`pg_index.indkey`): numbers split by spaces.
            let items: Vec<&str> = t.split_whitespace().collect();
            if items.iter().all(|i| i.parse::<i64>().is_ok()) {
                return Ok(Some(format!("[{}]", items.join(","))));
            }
        }
        crate::sync::source::array::pg_text_to_json(&text, &elem)
            .map(Some)
            .ok_or_else(|| {
                rusqlite::Error::UserFunctionError(
                    format!("malformed array literal: \"{text}\"").into(),
                )
            })
    })?;
    // `a[i]`: an array's element (1-based), or an int2vector's (`indkey[0]`, 0-based).
    conn.create_scalar_function("sy_subscript", 2, det(), |ctx| {
        let (Some(text), Some(i)) = (ctx.get::<Option<String>>(0)?, ctx.get::<Option<i64>>(1)?)
        else {
            return Ok(Value::Null);
        };
        Ok(subscript(&text, i))
    })?;
    // The positions 0, 1, … of the longest of its arrays, as a JSON array (for `json_each`
    // in place of an UNNEST of columns: see `lateral.rs`).
    conn.create_scalar_function("sy_positions", -1, det(), |ctx| {
        let mut longest = 0;
        for i in 0..ctx.len() {
            if let Some(text) = ctx.get::<Option<String>>(i)? {
                longest = longest.max(array_items(&text).0.len());
            }
        }
        let positions: Vec<String> = (0..longest).map(|p| p.to_string()).collect();
        Ok(format!("[{}]", positions.join(",")))
    })?;
    conn.create_scalar_function("array_to_string", -1, det(), |ctx| {
        let arr: Option<String> = ctx.get(0)?;
        let sep: String = ctx.get(1)?;
        let items: Vec<serde_json::Value> = arr
            .and_then(|a| serde_json::from_str(&a).ok())
            .unwrap_or_default();
        Ok(items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect::<Vec<_>>()
            .join(&sep))
    })?;
    conn.create_scalar_function("pg_get_expr", -1, det(), |ctx| {
        let expr: Option<String> = ctx.get(0)?;
        Ok(expr)
    })?;
    super::indexdef::register(conn)?;
    super::opclass::register(conn)?;
    super::pg_functions::register(conn)?;
    super::regex_functions::register(conn)?;
    super::array_functions::register(conn)?;
    super::json_srf::register(conn)?;
    super::json_values::register(conn)?;
    // A table without partitions is its own only ancestor.
    conn.create_scalar_function("pg_partition_ancestors", 1, det(), |ctx| {
        Ok(match ctx.get::<Value>(0)? {
            Value::Integer(i) => Some(i),
            Value::Text(t) => t.trim().parse::<i64>().ok(),
            _ => None,
        })
    })?;
    conn.create_scalar_function("quote_ident", 1, det(), |ctx| {
        Ok(quote_ident(&ctx.get::<String>(0)?))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_answer() {
        let c = Connection::open_in_memory().unwrap();
        register(
            &c,
            Arc::new(Mutex::new(Settings::default())),
            42,
            "app".into(),
        )
        .unwrap();
        let v: String = c.query_row("SELECT version()", [], |r| r.get(0)).unwrap();
        assert!(v.starts_with("PostgreSQL 15.0"));
        let tz: String = c
            .query_row("SELECT current_setting('TimeZone')", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tz, "UTC");
        let u: String = c
            .query_row("SELECT gen_random_uuid()", [], |r| r.get(0))
            .unwrap();
        assert_eq!(u.len(), 36);
        let pid: i64 = c
            .query_row("SELECT pg_backend_pid()", [], |r| r.get(0))
            .unwrap();
        assert_eq!(pid, 42);
    }
}
