//! Unit tests of `decimal_rewrite.rs`: the SQL its rewrite makes of numeric arithmetic.

use super::*;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

fn sql(s: &str) -> (String, Vec<bool>) {
    let schema = |t: &str| match t {
        "p" => vec![
            ("price".to_string(), types::NUMERIC, Some(2)),
            ("q".into(), types::INT4, None),
            ("w".into(), types::FLOAT8, None),
        ],
        _ => Vec::new(),
    };
    let mut stmt = Parser::parse_sql(&PostgreSqlDialect {}, s)
        .unwrap()
        .remove(0);
    let shown = rewrite(&mut stmt, &["p".to_string()], &schema);
    (stmt.to_string(), shown)
}

#[test]
fn numeric_arithmetic_becomes_exact_calls() {
    assert_eq!(
        sql("SELECT price * q, price / 3 AS third FROM p WHERE price + 0.1 > 2 ORDER BY third"),
        (
            "SELECT sy_dec_mul(sy_dec(price, 2), q) AS \"?column?\", sy_dec_div(sy_dec(price, 2), 3) AS third FROM p WHERE sy_dec_num(sy_dec_add(sy_dec(price, 2), '0.1')) > 2 ORDER BY sy_dec_num(sy_dec_div(sy_dec(price, 2), 3))".into(),
            vec![true, true]
        )
    );
    assert_eq!(
        sql("SELECT 2.10 + 0.20, (1 + 2) * 3, 7::numeric / 2, w * 1.5, avg(q), sum(q)"),
        (
            "SELECT sy_dec_add('2.10', '0.20') AS \"?column?\", (1 + 2) * 3 AS \"?column?\", sy_dec_div(sy_dec(7, NULL), 2) AS \"?column?\", w * 1.5 AS \"?column?\", sy_dec_avg(q) AS \"avg\", sum(q) AS \"sum\"".into(),
            vec![true, false, true, false, true, false]
        )
    );
    assert_eq!(
        sql("SELECT price::text || (price * 2) || w, concat_ws('|', price / 3, q) FROM p").0,
        "SELECT sy_dec(price, 2)::TEXT || sy_dec_mul(sy_dec(price, 2), 2) || sy_float_text(w) AS \"?column?\", concat_ws('|', sy_dec_div(sy_dec(price, 2), 3), q) AS \"concat_ws\" FROM p"
    );
    assert_eq!(
        sql("UPDATE p SET price = price * -1.5 RETURNING price - 1, -price").0,
        "UPDATE p SET price = sy_dec_num(sy_dec_mul(sy_dec(price, 2), '-1.5')) RETURNING sy_dec_sub(sy_dec(price, 2), 1) AS \"?column?\", sy_dec_neg(sy_dec(price, 2)) AS \"?column?\""
    );
}
