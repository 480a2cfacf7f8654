//! CREATE TABLE from PostgreSQL (ORMs' `create_all`, migrations) into SQLite: column types
//! are normalised to names SQLite accepts and that map back to the same PostgreSQL type,
//! SERIAL/BIGSERIAL/IDENTITY/`DEFAULT nextval(…)` primary keys become
//! `INTEGER PRIMARY KEY AUTOINCREMENT` (the only auto-incrementing column SQLite has),
//! and expression defaults get the parentheses SQLite requires.

use sqlparser::ast::{
    ColumnDef, ColumnOption, CreateTable, DataType, Expr, Ident, ObjectName, ObjectNamePart,
    TableConstraint,
};
use sqlparser::tokenizer::Token;

use super::translate::TranslateError;
use super::types;

/// The declared type SQLite will store for a PostgreSQL type OID.
fn decl_for(oid: u32) -> &'static str {
    match oid {
        types::BOOL => "BOOLEAN",
        types::INT2 => "SMALLINT",
        types::INT4 => "INTEGER",
        types::INT8 => "BIGINT",
        types::FLOAT4 => "REAL",
        types::FLOAT8 => "DOUBLE PRECISION",
        types::NUMERIC => "NUMERIC",
        types::VARCHAR => "VARCHAR",
        types::BPCHAR => "CHAR",
        types::BYTEA => "BYTEA",
        types::DATE => "DATE",
        types::TIME => "TIME",
        types::TIMESTAMP => "TIMESTAMP",
        types::TIMESTAMPTZ => "TIMESTAMPTZ",
        types::JSON => "JSON",
        types::JSONB => "JSONB",
        types::UUID => "UUID",
        // Kept as PostgreSQL prints it (`sy_interval`), never a bare number.
        types::INTERVAL => "INTERVAL",
        _ => "TEXT",
    }
}

/// The PostgreSQL type name without modifiers: `timestamp(6) with time zone` → `timestamp with time zone`.
pub fn base_type(dt: &DataType) -> String {
    let s = dt.to_string().to_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut depth = 0;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn custom(name: &str) -> DataType {
    DataType::Custom(
        ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        vec![],
    )
}

fn is_nextval(e: &Expr) -> bool {
    matches!(e, Expr::Function(f) if f.name.to_string().to_lowercase().ends_with("nextval"))
}

fn is_literal(e: &Expr) -> bool {
    matches!(e, Expr::Value(_))
        || matches!(e, Expr::UnaryOp { expr, .. } if matches!(expr.as_ref(), Expr::Value(_)))
}

/// Rewrites a CREATE TABLE in place. Returns the (table, column, PostgreSQL type) pairs
/// whose type SQLite's declared type cannot carry (BIGSERIAL stored as INTEGER).
pub fn rewrite_create_table(
    ct: &mut CreateTable,
) -> Result<Vec<(String, String, String)>, TranslateError> {
    let table = ct
        .name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.clone())
        .unwrap_or_default();
    let table_pk: Vec<String> = ct
        .constraints
        .iter()
        .find_map(|c| match c {
            TableConstraint::PrimaryKey(pk) => Some(
                pk.columns
                    .iter()
                    .map(|c| c.to_string().trim_matches('"').to_string())
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default();
    let mut remembered = Vec::new();
    let mut moved_pk = false;
    for col in &mut ct.columns {
        let in_table_pk = table_pk.len() == 1 && table_pk[0] == col.name.value;
        moved_pk |= rewrite_column(&table, col, in_table_pk, &mut remembered)?;
    }
    if moved_pk {
        // The key's name, if it had one, goes with it onto the column.
        let named = ct.constraints.iter().find_map(|c| match c {
            TableConstraint::PrimaryKey(p) => p.name.clone(),
            _ => None,
        });
        ct.constraints
            .retain(|c| !matches!(c, TableConstraint::PrimaryKey(_)));
        if let Some(name) = named {
            for o in ct.columns.iter_mut().flat_map(|c| c.options.iter_mut()) {
                if matches!(&o.option, ColumnOption::DialectSpecific(t)
                    if t.first().is_some_and(|k| k.to_string().eq_ignore_ascii_case("primary")))
                {
                    o.name = Some(name.clone());
                }
            }
        }
    }
    name_constraints(&table, ct);
    ct.unlogged = false;
    Ok(remembered)
}

/// Writes PostgreSQL's names into the definition for keys, UNIQUE constraints and foreign
/// keys that have none (`t_pkey`, `t_a_key`, `t_a_b_fkey`): PostgreSQL names them when the
/// table is made and keeps the names through renames, and so does the definition SQLite
/// keeps (the catalog reads them from it).
fn name_constraints(table: &str, ct: &mut CreateTable) {
    use sqlparser::ast::Ident;
    let unquoted = |s: String| s.trim_matches('"').to_string();
    for c in &mut ct.constraints {
        match c {
            TableConstraint::PrimaryKey(p) if p.name.is_none() => {
                p.name = Some(Ident::new(format!("{table}_pkey")));
            }
            TableConstraint::Unique(u) if u.name.is_none() => {
                let cols: Vec<String> = u
                    .columns
                    .iter()
                    .map(|c| unquoted(c.column.expr.to_string()))
                    .collect();
                u.name = Some(Ident::new(format!("{table}_{}_key", cols.join("_"))));
            }
            TableConstraint::ForeignKey(f) if f.name.is_none() => {
                let cols: Vec<String> = f.columns.iter().map(|c| c.value.clone()).collect();
                f.name = Some(Ident::new(format!("{table}_{}_fkey", cols.join("_"))));
            }
            _ => {}
        }
    }
    for col in &mut ct.columns {
        let column = col.name.value.clone();
        for o in &mut col.options {
            if o.name.is_some() {
                continue;
            }
            let name = match &o.option {
                ColumnOption::PrimaryKey(_) => format!("{table}_pkey"),
                ColumnOption::DialectSpecific(t)
                    if t.first()
                        .is_some_and(|k| k.to_string().eq_ignore_ascii_case("primary")) =>
                {
                    format!("{table}_pkey")
                }
                ColumnOption::Unique(_) => format!("{table}_{column}_key"),
                ColumnOption::ForeignKey(_) => format!("{table}_{column}_fkey"),
                _ => continue,
            };
            o.name = Some(Ident::new(name));
        }
    }
}

/// One column of a CREATE TABLE (or ADD COLUMN) for SQLite: SERIAL/IDENTITY as
/// AUTOINCREMENT (only as the single-column key, `in_table_pk` when the table's PRIMARY
/// KEY names it), the declared type SQLite keeps (with a CHECK for varchar(n)), types it
/// cannot keep added to `remembered`. True when the key moved onto the column.
pub fn rewrite_column(
    table: &str,
    col: &mut ColumnDef,
    in_table_pk: bool,
    remembered: &mut Vec<(String, String, String)>,
) -> Result<bool, TranslateError> {
    let pg_type = base_type(&col.data_type);
    let serial = matches!(
        pg_type.as_str(),
        "serial" | "bigserial" | "smallserial" | "serial4" | "serial8" | "serial2"
    );
    let identity = col.options.iter().any(|o| {
        matches!(
            o.option,
            ColumnOption::Generated { .. } | ColumnOption::Identity(_)
        )
    });
    // GENERATED … AS IDENTITY: 'a' (ALWAYS) or 'd' (BY DEFAULT), as pg_attribute says.
    let identity_kind = col.options.iter().find_map(|o| match &o.option {
        ColumnOption::Generated {
            generated_as,
            generation_expr: None,
            ..
        } => Some(
            if matches!(generated_as, sqlparser::ast::GeneratedAs::Always) {
                'a'
            } else {
                'd'
            },
        ),
        ColumnOption::Identity(_) => Some('d'),
        _ => None,
    });
    let nextval = col
        .options
        .iter()
        .any(|o| matches!(&o.option, ColumnOption::Default(e) if is_nextval(e)));
    let inline_pk = col
        .options
        .iter()
        .any(|o| matches!(o.option, ColumnOption::PrimaryKey(_)));
    let is_pk = inline_pk || in_table_pk;
    if serial || identity || nextval {
        if !is_pk {
            return Err(TranslateError::Refused(format!(
                "an auto-incrementing column ({}) that is not the table's single-column primary key",
                col.name.value
            )));
        }
        col.options.retain(|o| {
            !matches!(
                &o.option,
                ColumnOption::PrimaryKey(_)
                    | ColumnOption::Generated { .. }
                    | ColumnOption::Identity(_)
            ) && !matches!(&o.option, ColumnOption::Default(e) if is_nextval(e))
        });
        let mut keywords = ["PRIMARY", "KEY", "AUTOINCREMENT"]
            .map(Token::make_keyword)
            .to_vec();
        // The sequence's name as PostgreSQL makes it, kept in the definition (a comment
        // SQLite keeps through renames, as PostgreSQL keeps the name): see `sequences.rs`.
        keywords.push(Token::Whitespace(
            sqlparser::tokenizer::Whitespace::MultiLineComment(super::sequences::mark(&format!(
                "{table}_{}_seq",
                col.name.value
            ))),
        ));
        col.options.insert(
            0,
            sqlparser::ast::ColumnOptionDef {
                name: None,
                option: ColumnOption::DialectSpecific(keywords),
            },
        );
        let intended = match pg_type.as_str() {
            "bigserial" | "serial8" | "bigint" | "int8" => "bigint",
            "smallserial" | "serial2" | "smallint" | "int2" => "smallint",
            _ => "integer",
        };
        if intended != "integer" {
            remembered.push((
                table.to_string(),
                col.name.value.clone(),
                intended.to_string(),
            ));
        }
        if let Some(kind) = identity_kind {
            remembered.push((
                table.to_string(),
                col.name.value.clone(),
                format!("{}{kind}", super::defaults::IDENTITY),
            ));
        }
        col.data_type = custom("INTEGER");
        return Ok(!inline_pk);
    }
    let is_array = pg_type.ends_with("[]") || pg_type.starts_with("array");
    col.data_type = if is_array {
        // With the element's size (`varchar(20)[]`), as reflection reads it.
        let full = col.data_type.to_string().to_lowercase();
        let remember = if full.ends_with("[]") {
            full
        } else {
            pg_type.clone()
        };
        remembered.push((table.to_string(), col.name.value.clone(), remember));
        custom("JSON")
    } else {
        let oid = types::oid_for_decltype(&pg_type);
        let full = col.data_type.to_string();
        match full.find('(') {
            // numeric(p, s) keeps its precision and scale in the declared type (SQLite
            // reads the affinity from the name): results are shown with that scale.
            Some(i) if oid == types::NUMERIC => {
                custom(&format!("NUMERIC{}", full[i..].replace(' ', "")))
            }
            Some(_) if matches!(pg_type.as_str(), "varchar" | "character varying") => {
                match varchar_limit(&full) {
                    Some(n) => {
                        col.options.push(varchar_check(&col.name, n));
                        custom(&format!("VARCHAR({n})"))
                    }
                    None => custom(decl_for(oid)),
                }
            }
            _ => {
                if oid == types::TEXT && !matches!(pg_type.as_str(), "text" | "clob" | "citext") {
                    // A type SQLite has no name for (an enum, inet, interval): kept, so
                    // an enum's CHECK can be added once the table exists.
                    remembered.push((table.to_string(), col.name.value.clone(), pg_type.clone()));
                }
                custom(decl_for(oid))
            }
        }
    };
    for o in &mut col.options {
        if let ColumnOption::Default(e) = &mut o.option
            && !is_literal(e)
            && !matches!(e, Expr::Nested(_))
        {
            *e = Expr::Nested(Box::new(e.clone()));
        }
    }
    col.options.retain(|o| {
        !matches!(
            o.option,
            ColumnOption::Collation(_) | ColumnOption::Comment(_)
        )
    });
    Ok(false)
}

/// The prefix of the CHECK that holds a `varchar(n)` column to n characters; a failure
/// of it is PostgreSQL's 22001 (see `error.rs`).
pub const VARCHAR_CHECK: &str = "sy_varchar_";

/// The `n` of `varchar(n)`.
fn varchar_limit(full: &str) -> Option<usize> {
    full.split_once('(')?
        .1
        .trim_end_matches(')')
        .trim()
        .parse()
        .ok()
}

/// `CONSTRAINT sy_varchar_N CHECK (length(col) <= N)`: SQLite does not enforce declared
/// lengths, PostgreSQL does.
fn varchar_check(col: &Ident, n: usize) -> sqlparser::ast::ColumnOptionDef {
    let expr = super::rewrite::raw(format!("length({col}) <= {n}"));
    sqlparser::ast::ColumnOptionDef {
        name: None,
        option: ColumnOption::Check(sqlparser::ast::CheckConstraint {
            name: Some(Ident::new(format!("{VARCHAR_CHECK}{n}"))),
            expr: Box::new(expr),
            no_inherit: false,
            enforced: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::translate::translate;

    fn sql(s: &str) -> String {
        translate(s).unwrap().remove(0).sql
    }

    #[test]
    fn serial_and_identity_become_autoincrement() {
        assert_eq!(
            sql(
                "CREATE TABLE public.users (id SERIAL PRIMARY KEY, name VARCHAR(80) NOT NULL, created_at TIMESTAMP WITH TIME ZONE DEFAULT now())"
            ),
            "CREATE TABLE users (id INTEGER CONSTRAINT users_pkey PRIMARY KEY AUTOINCREMENT /* sequence users_id_seq */, name VARCHAR(80) NOT NULL CONSTRAINT sy_varchar_80 CHECK (length(name) <= 80), created_at TIMESTAMPTZ DEFAULT (strftime('%Y-%m-%d %H:%M:%f+00', 'now')))"
        );
        let t = translate("CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY, x BOOLEAN DEFAULT false, PRIMARY KEY (id))").unwrap().remove(0);
        assert_eq!(
            t.sql,
            "CREATE TABLE t (id INTEGER CONSTRAINT t_pkey PRIMARY KEY AUTOINCREMENT /* sequence t_id_seq */, x BOOLEAN DEFAULT false)"
        );
        assert_eq!(
            t.column_types,
            vec![
                ("t".to_string(), "id".to_string(), "bigint".to_string()),
                ("t".to_string(), "id".to_string(), "identity:d".to_string())
            ]
        );
        assert_eq!(
            sql(
                "CREATE TABLE s (id integer DEFAULT nextval('s_id_seq'::regclass) NOT NULL PRIMARY KEY)"
            ),
            "CREATE TABLE s (id INTEGER CONSTRAINT s_pkey PRIMARY KEY AUTOINCREMENT /* sequence s_id_seq */ NOT NULL)"
        );
    }

    #[test]
    fn types_are_normalised() {
        assert_eq!(
            sql(
                "CREATE TABLE t (a numeric(10,2), b double precision, c jsonb, d uuid, e timestamp(6) without time zone, f text[])"
            ),
            "CREATE TABLE t (a NUMERIC(10,2), b DOUBLE PRECISION, c JSONB, d UUID, e TIMESTAMP, f JSON)"
        );
    }

    #[test]
    fn serial_that_is_not_the_key_is_refused() {
        let e = translate("CREATE TABLE t (id int primary key, n serial)").unwrap_err();
        assert!(
            e.to_string()
                .contains("not the table's single-column primary key"),
            "{e}"
        );
    }
}
