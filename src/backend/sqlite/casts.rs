//! Casts for the SQLite backend: `x::type` becomes a cast SQLite knows (INTEGER, REAL,
//! NUMERIC, TEXT, BLOB), a JSON array (array types), a catalog lookup (`::regclass`), a
//! 0/1 boolean, or the value itself (types SQLite has no name for).

use sqlparser::ast::{CastKind, DataType, Expr, Ident, ObjectName, ObjectNamePart, Value};

use super::rewrite::raw;

/// What a cast to a PostgreSQL type becomes on SQLite.
enum CastTarget {
    Keep(&'static str),
    Drop,
    Bool,
    /// An array type: the value becomes the JSON array SQLite keeps (`sy_array`), its
    /// elements read as this element type (numbers stay numbers).
    Array(&'static str),
    /// `'name'::regclass`: the catalog's OID of the relation of that name.
    RegClass,
    /// A timestamp type: the value in its canonical stored form (`coerce.rs`), so a
    /// literal with an offset compares and reads as the instant it is.
    Timestamp(&'static str),
    /// A type with PostgreSQL's input rules (`input.rs`): `'abc'::int` is an error
    /// (SQLite's CAST makes it 0), `10.5::int` rounds to 11 (SQLite's truncates), a
    /// timestamp `::time` is its time of day; SQLite's own CAST in a table's definition.
    Input(&'static str, &'static str),
}

fn cast_target(t: &DataType) -> CastTarget {
    let name = t.to_string().to_lowercase();
    if name.ends_with(']') || matches!(t, DataType::Array(_)) {
        let elem = name.split('[').next().unwrap_or("").trim();
        let elem = elem.strip_prefix("pg_catalog.").unwrap_or(elem);
        let elem = super::types::oid_for_decltype(elem);
        return CastTarget::Array(super::types::type_name(elem));
    }
    let base = name.split(['(', '[']).next().unwrap_or("").trim();
    let base = base.strip_prefix("pg_catalog.").unwrap_or(base);
    match base {
        "int" | "integer" | "int4" => CastTarget::Input("sy_int4", "INTEGER"),
        "int2" | "smallint" => CastTarget::Input("sy_int2", "INTEGER"),
        "int8" | "bigint" => CastTarget::Input("sy_int8", "INTEGER"),
        "oid" => CastTarget::Keep("INTEGER"),
        "real" | "float4" | "float8" | "float" | "double precision" | "double" => {
            CastTarget::Input("sy_float8", "REAL")
        }
        "numeric" | "decimal" => CastTarget::Keep("NUMERIC"),
        "text" | "varchar" | "character varying" | "char" | "character" | "bpchar" | "name"
        | "citext" => CastTarget::Keep("TEXT"),
        "bytea" => CastTarget::Keep("BLOB"),
        "bool" | "boolean" => CastTarget::Bool,
        "regclass" => CastTarget::RegClass,
        "timestamptz" | "timestamp with time zone" => CastTarget::Timestamp("sy_timestamptz"),
        "timestamp" | "timestamp without time zone" => CastTarget::Timestamp("sy_timestamp"),
        "date" => CastTarget::Timestamp("sy_date"),
        "time" | "time without time zone" => CastTarget::Input("sy_time", "TEXT"),
        _ => CastTarget::Drop,
    }
}

/// A cast as SQLite takes it: a type SQLite has, a JSON array for an array type, a
/// lookup for `::regclass`, 0/1 for booleans; other types are dropped (the value kept).
/// `ddl`: the cast is part of a table's definition, where a date stays the text it is
/// (any SQLite client can then evaluate the definition).
pub(super) fn rewrite_cast(expr: &mut Expr, ddl: bool) {
    let Expr::Cast {
        kind,
        expr: inner,
        data_type,
        ..
    } = expr
    else {
        return;
    };
    if matches!(kind, CastKind::TryCast | CastKind::SafeCast) {
        return;
    }
    let target = match cast_target(data_type) {
        CastTarget::Timestamp("sy_date") if ddl => {
            *expr = Expr::Nested(Box::new(std::mem::replace(inner.as_mut(), raw("NULL"))));
            return;
        }
        CastTarget::Keep(t) | CastTarget::Input(_, t) if ddl => t,
        CastTarget::Keep(t) => t,
        CastTarget::Input(f, _) => {
            *expr = raw(format!("{f}({inner})"));
            return;
        }
        CastTarget::Drop => {
            *expr = Expr::Nested(Box::new(std::mem::replace(inner.as_mut(), raw("NULL"))));
            return;
        }
        CastTarget::Array(elem) => {
            *expr = raw(format!("sy_array({inner}, '{elem}')"));
            return;
        }
        CastTarget::Timestamp(f) => {
            *expr = raw(format!("{f}({inner})"));
            return;
        }
        // An OID written as text ('16436'::regclass, as psql sends it) is that OID.
        CastTarget::RegClass
            if matches!(inner.as_ref(), Expr::Value(v)
                if matches!(&v.value, Value::SingleQuotedString(s)
                    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))) =>
        {
            let Expr::Value(v) = inner.as_ref() else {
                return;
            };
            let Value::SingleQuotedString(s) = &v.value else {
                return;
            };
            *expr = raw(s.clone());
            return;
        }
        CastTarget::RegClass if matches!(inner.as_ref(), Expr::Value(_)) => {
            *expr = raw(format!(
                "(SELECT oid FROM pg_class WHERE relname = sy_relname({inner}))"
            ));
            return;
        }
        CastTarget::RegClass => {
            // An OID stays one; a name (a parameter, a column of text) is looked up.
            *expr = raw(format!(
                "(CASE WHEN typeof({inner}) = 'integer' THEN {inner} ELSE (SELECT oid FROM pg_class WHERE relname = sy_relname({inner})) END)"
            ));
            return;
        }
        CastTarget::Bool => {
            let e = inner.to_string();
            *expr = raw(format!(
                "(CASE WHEN lower(CAST({e} AS TEXT)) IN ('t','true','1','yes','on','y') THEN 1 WHEN {e} IS NULL THEN NULL ELSE 0 END)"
            ));
            return;
        }
    };
    *kind = CastKind::Cast;
    *data_type = DataType::Custom(
        ObjectName(vec![ObjectNamePart::Identifier(Ident::new(target))]),
        vec![],
    );
}
