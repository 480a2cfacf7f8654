//! The result types of function calls for the SQLite backend's type inference
//! (`infer.rs`): `count` is bigint, `now()` timestamptz, `date_trunc` the type of what it
//! truncates, and so on, as PostgreSQL's catalog gives them; and how numeric operands
//! widen in arithmetic.

use sqlparser::ast::{Expr, FunctionArguments};

use super::infer::expr_type_in;
use super::scope::Scope;
use super::types;

/// The type of `a op b` for numeric operands: the wider of the two, as PostgreSQL promotes.
pub(super) fn arithmetic(a: u32, b: u32) -> Option<u32> {
    let rank = |t: u32| match t {
        types::INT2 => Some(1),
        types::INT4 => Some(2),
        types::INT8 => Some(3),
        types::NUMERIC => Some(4),
        types::FLOAT4 => Some(5),
        types::FLOAT8 => Some(6),
        _ => None,
    };
    Some(if rank(a)? >= rank(b)? { a } else { b })
}

/// The `n`th (from 0) plain argument of `f`.
pub(super) fn nth_arg(f: &sqlparser::ast::Function, n: usize) -> Option<&Expr> {
    let FunctionArguments::List(l) = &f.args else {
        return None;
    };
    match l.args.get(n)? {
        sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Expr(e)) => Some(e),
        _ => None,
    }
}

pub(super) fn function_type(f: &sqlparser::ast::Function, scope: &Scope<'_>) -> Option<u32> {
    let expr_type = |e: &Expr| expr_type_in(e, scope);
    let name = f.name.to_string().to_lowercase();
    let name = name.rsplit('.').next().unwrap_or(&name);
    Some(match name {
        "count" => types::INT8,
        "sum" | "avg" | "round" => types::NUMERIC,
        "length" | "char_length" | "character_length" | "octet_length" | "pg_backend_pid"
        | "strpos" | "position" => types::INT4,
        "now"
        | "current_timestamp"
        | "transaction_timestamp"
        | "statement_timestamp"
        | "clock_timestamp" => types::TIMESTAMPTZ,
        "localtimestamp" => types::TIMESTAMP,
        "current_date" | "make_date" => types::DATE,
        "to_timestamp" => types::TIMESTAMPTZ,
        "decode" | "sha256" => types::BYTEA,
        // The spread of floats (of integers and numerics it is numeric: `decimal_spread.rs`).
        "date_part" | "percentile_cont" | "stddev" | "stddev_samp" | "stddev_pop" | "variance"
        | "var_samp" | "var_pop" => types::FLOAT8,
        // The type of what is truncated; a date is truncated as a timestamptz.
        "date_trunc" => match nth_arg(f, 1).and_then(expr_type)? {
            types::DATE => types::TIMESTAMPTZ,
            t => t,
        },
        "random" | "sqrt" | "power" | "pi" | "ln" | "exp" => types::FLOAT8,
        "ascii" | "array_length" | "cardinality" | "array_position" | "array_upper"
        | "array_lower" => types::INT4,
        "string_to_array" => super::arrays::array_of(types::TEXT),
        // Set-returning functions (in the SELECT list, see `srf_select.rs`).
        "unnest" => nth_arg(f, 0)
            .and_then(expr_type)
            .and_then(super::arrays::element_of)?,
        "generate_series" => match nth_arg(f, 0).and_then(expr_type)? {
            types::DATE => types::TIMESTAMPTZ,
            t => t,
        },
        "jsonb_array_elements" => types::JSONB,
        "json_array_elements" => types::JSON,
        "jsonb_array_elements_text"
        | "json_array_elements_text"
        | "jsonb_object_keys"
        | "json_object_keys" => types::TEXT,
        "gen_random_uuid" | "uuid_generate_v4" => types::UUID,
        "bool_and"
        | "bool_or"
        | "every"
        | "has_table_privilege"
        | "pg_table_is_visible"
        | "pg_is_in_recovery"
        | "starts_with" => types::BOOL,
        "lower" | "upper" | "concat" | "concat_ws" | "substr" | "substring" | "trim" | "btrim"
        | "ltrim" | "rtrim" | "replace" | "string_agg" | "version" | "current_schema"
        | "current_database" | "current_user" | "session_user" | "user" | "current_setting"
        | "format_type" | "md5" | "to_char" | "left" | "right" | "lpad" | "rpad" | "repeat"
        | "split_part" | "initcap" | "reverse" | "chr" | "translate" | "encode" => types::TEXT,
        // An array of its argument's type (text[] when that is not evident; a column's
        // type is resolved by `catalog::source_types`).
        "array_agg" => {
            let FunctionArguments::List(l) = &f.args else {
                return None;
            };
            let elem = l.args.first().and_then(|a| match a {
                sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Expr(e)) => {
                    expr_type(e)
                }
                _ => None,
            });
            super::arrays::array_of(elem.unwrap_or(types::TEXT))
        }
        // ARRAY(SELECT x …): an array of x's type (text[] when that is not evident).
        "array" => {
            let elem = match &f.args {
                FunctionArguments::Subquery(q) => match q.body.as_ref() {
                    sqlparser::ast::SetExpr::Select(s) => {
                        s.projection.first().and_then(|p| match p {
                            sqlparser::ast::SelectItem::UnnamedExpr(e)
                            | sqlparser::ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                                expr_type(e)
                            }
                            _ => None,
                        })
                    }
                    _ => None,
                },
                _ => None,
            };
            super::arrays::array_of(elem.unwrap_or(types::TEXT))
        }
        "json_build_object" | "json_agg" | "to_json" | "json_build_array" | "json_object_agg" => {
            types::JSON
        }
        "jsonb_build_object" | "jsonb_agg" | "to_jsonb" | "jsonb_build_array"
        | "jsonb_object_agg" => types::JSONB,
        "coalesce" | "nullif" | "greatest" | "least" | "max" | "min" => {
            let FunctionArguments::List(l) = &f.args else {
                return None;
            };
            l.args.iter().find_map(|a| match a {
                sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Expr(e)) => {
                    expr_type(e)
                }
                _ => None,
            })?
        }
        _ => return None,
    })
}
