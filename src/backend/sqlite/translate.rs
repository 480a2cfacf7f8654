//! PostgreSQL SQL → SQLite SQL, on a parsed tree (sqlparser, PostgreSQL dialect).
//!
//! Each statement is parsed, classified (what the session must do with it and which
//! command tag it produces), rewritten (placeholders, casts, ILIKE, IS DISTINCT FROM,
//! `= ANY(ARRAY[…])`, function names, `public.`/`pg_catalog.` prefixes, FOR UPDATE,
//! OFFSET without LIMIT, SERIAL/IDENTITY/nextval DDL) and printed back. What cannot be
//! translated is refused with a [`Refused`] error naming the construct (SQLSTATE 0A000).
//! The rewriting itself is in [`super::rewrite`].

use std::ops::ControlFlow;

use sqlparser::ast::{AlterTableOperation, ObjectName, ObjectNamePart, Statement, VisitMut};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use thiserror::Error;

use super::alter::Alter;
use super::ddl;
use super::enums::TypeOp;
use super::infer::{self, ParamHint};
use super::rewrite::Rewriter;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TranslateError {
    #[error("syntax error: {0}")]
    Syntax(String),
    #[error("{0} is not supported by switchyard's SQLite backend")]
    Refused(String),
}

/// What kind of statement it is, as far as the session cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Returns rows (SELECT, VALUES, SHOW …); `locks` when it said FOR UPDATE/SHARE.
    Query {
        locks: bool,
    },
    Insert,
    Update,
    Delete,
    Begin {
        read_only: bool,
        /// `BEGIN ISOLATION LEVEL …`; none: the session's default.
        isolation: Option<super::isolation::Isolation>,
    },
    Commit,
    Rollback,
    RollbackTo(String),
    Savepoint(String),
    Release(String),
    Set {
        name: String,
        value: Option<String>,
        local: bool,
    },
    Show(String),
    /// DECLARE … CURSOR, FETCH, CLOSE (see [`super::cursors`]).
    Cursor(CursorOp),
    /// `DEALLOCATE name` (None: ALL).
    Deallocate(Option<String>),
    /// `SET CONSTRAINTS … DEFERRED | IMMEDIATE` (sqlparser does not read it; see
    /// [`parse_all`]).
    SetConstraints {
        deferred: bool,
    },
    /// DDL and everything else: the command tag to answer with.
    Other {
        tag: String,
        writes: bool,
    },
}

impl Kind {
    /// True when the statement writes (or locks) and so needs the write lock.
    pub fn writes(&self) -> bool {
        match self {
            Kind::Query { locks } => *locks,
            Kind::Insert | Kind::Update | Kind::Delete => true,
            Kind::Other { writes, .. } => *writes,
            _ => false,
        }
    }
}

/// A cursor statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorOp {
    Declare {
        name: String,
        hold: bool,
        query: Box<Translated>,
    },
    /// `count` None: ALL.
    Fetch { name: String, count: Option<u64> },
    /// `name` None: ALL.
    Close { name: Option<String> },
}

/// One translated statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    pub kind: Kind,
    /// SQL for SQLite (empty for statements the session answers itself).
    pub sql: String,
    /// Column types to remember after a CREATE TABLE: (table, column, PostgreSQL type).
    pub column_types: Vec<(String, String, String)>,
    /// Highest `$n` placeholder used.
    pub params: usize,
    /// Result column types evident from the query's shape.
    pub hints: Vec<Option<u32>>,
    /// Where parameter types can be learned from.
    pub param_hints: Vec<(usize, ParamHint)>,
    /// Tables the statement names (to resolve unqualified columns).
    pub tables: Vec<String>,
    /// An ALTER TABLE SQLite cannot run as written, run by [`super::alter`].
    pub alter: Option<Alter>,
    /// Result columns typed by one column of the schema (aggregates of it).
    pub sources: Vec<Option<infer::Source>>,
    /// Result columns that are exact numeric arithmetic (decimal text, see `decimal.rs`).
    pub decimals: Vec<bool>,
    /// CREATE TYPE … AS ENUM, ALTER TYPE … ADD VALUE, DROP TYPE (see [`super::enums`]).
    pub type_op: Option<TypeOp>,
    /// TRUNCATE (see [`super::truncate`]).
    pub truncate: Option<super::truncate::Truncate>,
    /// What a `DROP … IF EXISTS` names (see [`super::drops`]).
    pub if_exists: super::drops::Dropped,
    /// A DROP that names several objects, as one DROP each (see [`super::drops::split`]).
    pub drops: Vec<String>,
}

/// Parses and translates a text that may hold several statements.
pub fn translate(sql: &str) -> Result<Vec<Translated>, TranslateError> {
    translate_with(sql, &super::coerce::no_schema)
}

/// [`translate`], knowing the tables' column types (what an INSERT or UPDATE writes into
/// a timestamp column is stored as PostgreSQL stores it: see `coerce.rs`).
pub fn translate_with(
    sql: &str,
    schema: super::coerce::Schema<'_>,
) -> Result<Vec<Translated>, TranslateError> {
    let trimmed = sql.trim().trim_end_matches(';').trim();
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    parse_all(sql)
        .map_err(|e| TranslateError::Syntax(e.to_string()))?
        .into_iter()
        .map(|p| match p {
            Parsed::Statement(stmt) => {
                let t = translate_one(*stmt, schema)?;
                tracing::trace!(sql = %t.sql, "statement as SQLite runs it");
                Ok(t)
            }
            Parsed::SetConstraints { deferred } => {
                Ok(session_only(Kind::SetConstraints { deferred }))
            }
        })
        .collect()
}

/// One statement as parsed.
enum Parsed {
    Statement(Box<Statement>),
    SetConstraints { deferred: bool },
}

/// The statements of `sql`, with `SET CONSTRAINTS …` (which sqlparser cannot read, and
/// Django sends in one string with an ALTER TABLE) read here.
fn parse_all(sql: &str) -> Result<Vec<Parsed>, sqlparser::parser::ParserError> {
    use sqlparser::tokenizer::Token;
    let dialect = PostgreSqlDialect {};
    let mut p = Parser::new(&dialect).try_with_sql(sql)?;
    let mut out = Vec::new();
    loop {
        while p.consume_token(&Token::SemiColon) {}
        if p.peek_token().token == Token::EOF {
            return Ok(out);
        }
        let set_constraints = p
            .peek_nth_token(0)
            .token
            .to_string()
            .eq_ignore_ascii_case("set")
            && p.peek_nth_token(1)
                .token
                .to_string()
                .eq_ignore_ascii_case("constraints");
        if set_constraints {
            let mut last = String::new();
            loop {
                match p.next_token().token {
                    Token::SemiColon | Token::EOF => break,
                    t => last = t.to_string(),
                }
            }
            out.push(Parsed::SetConstraints {
                deferred: last.eq_ignore_ascii_case("deferred"),
            });
            continue;
        }
        out.push(Parsed::Statement(Box::new(p.parse_statement()?)));
        if !p.consume_token(&Token::SemiColon) && p.peek_token().token != Token::EOF {
            return p.expected("end of statement", p.peek_token());
        }
    }
}

/// A statement the session answers without SQL.
fn session_only(kind: Kind) -> Translated {
    Translated {
        kind,
        sql: String::new(),
        column_types: Vec::new(),
        params: 0,
        hints: Vec::new(),
        param_hints: Vec::new(),
        tables: Vec::new(),
        alter: None,
        sources: Vec::new(),
        decimals: Vec::new(),
        type_op: None,
        truncate: None,
        if_exists: Vec::new(),
        drops: Vec::new(),
    }
}

pub(super) fn ident_name(o: &ObjectName) -> String {
    o.0.iter()
        .filter_map(|p| match p {
            ObjectNamePart::Identifier(i) => Some(i.value.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(".")
}

pub(super) fn translate_one(
    mut stmt: Statement,
    schema: super::coerce::Schema<'_>,
) -> Result<Translated, TranslateError> {
    if let Some(op) = super::special::cursor_op(&stmt)? {
        return Ok(session_only(Kind::Cursor(op)));
    }
    super::special::refuse_modifying_with(&stmt)?;
    let kind = classify(&stmt)?;
    let hints = infer::result_hints(&stmt);
    let param_hints = infer::param_hints(&stmt);
    let mut tables = Vec::new();
    let _ = sqlparser::ast::visit_relations(&stmt, |r| {
        if let Some(t) = r.0.last().and_then(|p| p.as_ident())
            && !tables.contains(&t.value)
        {
            tables.push(t.value.clone());
        }
        ControlFlow::<()>::Continue(())
    });
    let catalog = tables
        .iter()
        .any(|t| t.starts_with("pg_") || t.starts_with("information_schema"));
    let sources = infer::result_sources(&stmt, catalog);
    let mut column_types = Vec::new();
    if let Statement::CreateTable(ct) = &mut stmt {
        column_types = ddl::rewrite_create_table(ct)?;
    }
    if let Statement::AlterTable(at) = &mut stmt {
        let table = ident_name(&at.name);
        for op in &mut at.operations {
            if let AlterTableOperation::AddColumn { column_def, .. } = op {
                ddl::rewrite_column(&table, column_def, false, &mut column_types)?;
            }
        }
    }
    if let Statement::Query(q) = &mut stmt {
        super::rewrite_ops::regclass_names(q);
    }
    super::coerce::writes(&mut stmt, schema);
    super::json_build::rewrite(&mut stmt, &tables, schema);
    super::booltext::rewrite(&mut stmt, &tables, schema);
    super::coerce::comparisons(&mut stmt, &tables, schema);
    super::array_concat::rewrite(&mut stmt, &tables, schema);
    super::temporal_rewrite::rewrite(&mut stmt, &tables, schema);
    let decimals = super::decimal_rewrite::rewrite(&mut stmt, &tables, schema);
    let mut rw = Rewriter::default();
    let _ = stmt.visit(&mut rw);
    if let Some(e) = rw.error {
        return Err(e);
    }
    // setval()/nextval() write the AUTOINCREMENT counters: the statement takes the write
    // lock (seen while rewriting, so no second walk of the tree).
    let kind = match kind {
        Kind::Query { .. } if rw.moves_sequences => Kind::Query { locks: true },
        other => other,
    };
    let alter = match &stmt {
        Statement::AlterTable(at)
            if at.operations.len() != 1 || !super::alter::native(&at.operations[0]) =>
        {
            Some(Alter {
                table: ident_name(&at.name)
                    .rsplit('.')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                ops: at.operations.clone(),
            })
        }
        _ => None,
    };
    let type_op = super::special::type_op(&stmt)?;
    let if_exists = super::drops::named(&stmt);
    let drops = super::drops::split(&mut stmt);
    let truncate = super::special::truncate_of(&stmt);
    let sql = match kind {
        _ if alter.is_some() || type_op.is_some() || truncate.is_some() => String::new(),
        Kind::Begin { .. } | Kind::Commit | Kind::Rollback | Kind::Set { .. } | Kind::Show(_) => {
            String::new()
        }
        _ => stmt.to_string(),
    };
    Ok(Translated {
        kind,
        sql,
        column_types,
        params: rw.params,
        hints,
        param_hints,
        tables,
        alter,
        sources,
        decimals,
        type_op,
        truncate,
        if_exists,
        drops,
    })
}

fn classify(stmt: &Statement) -> Result<Kind, TranslateError> {
    use Statement as S;
    Ok(match stmt {
        S::Query(q) => Kind::Query {
            // setval()/nextval() write the AUTOINCREMENT counters.
            locks: !q.locks.is_empty(),
        },
        S::Insert(_) => Kind::Insert,
        S::Update(_) => Kind::Update,
        S::Delete(_) => Kind::Delete,
        S::StartTransaction { modes, .. } => Kind::Begin {
            read_only: modes
                .iter()
                .any(|m| m.to_string().eq_ignore_ascii_case("READ ONLY")),
            isolation: modes.iter().find_map(|m| match m {
                sqlparser::ast::TransactionMode::IsolationLevel(l) => {
                    Some(super::isolation::Isolation::from_sql(l))
                }
                _ => None,
            }),
        },
        S::Commit { .. } => Kind::Commit,
        S::Rollback {
            savepoint: Some(sp),
            ..
        } => Kind::RollbackTo(sp.value.clone()),
        S::Rollback { .. } => Kind::Rollback,
        S::Savepoint { name } => Kind::Savepoint(name.value.clone()),
        S::ReleaseSavepoint { name } => Kind::Release(name.value.clone()),
        S::ShowVariable { variable } => {
            let name = variable
                .iter()
                .map(|i| i.value.to_lowercase())
                .collect::<Vec<_>>()
                .join(" ");
            // The SQL-standard spelling (SQLAlchemy asks it when it connects).
            Kind::Show(match name.as_str() {
                "transaction isolation level" => "transaction_isolation".into(),
                _ => name,
            })
        }
        S::Set(set) => super::setvar::classify_set(set),
        // RESET name (what a pooled client's settings replay sends) and RESET ALL.
        S::Reset(r) => Kind::Set {
            name: match &r.reset {
                sqlparser::ast::Reset::ALL => "all".into(),
                sqlparser::ast::Reset::SessionAuthorization => "session_authorization".into(),
                sqlparser::ast::Reset::ConfigurationParameter(n) => ident_name(n).to_lowercase(),
            },
            value: None,
            local: false,
        },
        S::CreateTable(_) => Kind::Other {
            tag: "CREATE TABLE".into(),
            writes: true,
        },
        S::CreateIndex(_) => Kind::Other {
            tag: "CREATE INDEX".into(),
            writes: true,
        },
        S::CreateView { .. } => Kind::Other {
            tag: "CREATE VIEW".into(),
            writes: true,
        },
        S::AlterTable { .. } => Kind::Other {
            tag: "ALTER TABLE".into(),
            writes: true,
        },
        S::Drop { object_type, .. } => Kind::Other {
            tag: format!("DROP {object_type}"),
            writes: true,
        },
        S::Truncate { .. } => Kind::Other {
            tag: "TRUNCATE TABLE".into(),
            writes: true,
        },
        S::CreateSchema { .. } => Kind::Other {
            tag: "CREATE SCHEMA".into(),
            writes: false,
        },
        S::CreateExtension { .. } => Kind::Other {
            tag: "CREATE EXTENSION".into(),
            writes: false,
        },
        S::Comment { .. } => Kind::Other {
            tag: "COMMENT".into(),
            writes: false,
        },
        S::Discard { .. } => Kind::Other {
            tag: "DISCARD ALL".into(),
            writes: false,
        },
        // A pinned client's DEALLOCATE reaches its session (see `Session::deallocate`).
        S::Deallocate { name, .. } => Kind::Deallocate(
            (!(name.quote_style.is_none() && name.value.eq_ignore_ascii_case("all")))
                .then(|| name.value.clone()),
        ),
        S::Prepare { .. } | S::Execute { .. } => {
            return Err(TranslateError::Refused(
                "SQL PREPARE and EXECUTE (use your driver's protocol-level prepared statements)"
                    .into(),
            ));
        }
        S::Copy { .. } => return Err(TranslateError::Refused("COPY".into())),
        S::CreateFunction { .. } | S::CreateProcedure { .. } => {
            return Err(TranslateError::Refused("CREATE FUNCTION".into()));
        }
        S::CreateSequence { .. } => {
            return Err(TranslateError::Refused(
                "CREATE SEQUENCE (use an INTEGER PRIMARY KEY or SERIAL column)".into(),
            ));
        }
        other => {
            let text = other.to_string();
            let tag: String = text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
                .to_uppercase();
            Kind::Other { tag, writes: true }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Translated {
        let mut v = translate(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn placeholders_and_operators() {
        let t = one("SELECT * FROM public.users WHERE name ILIKE $2 AND id = $1 FOR UPDATE");
        assert_eq!(
            t.sql,
            "SELECT * FROM users WHERE (lower(name) LIKE lower(?2) ESCAPE '\\') AND id = ?1"
        );
        assert_eq!(t.params, 2);
        assert_eq!(t.kind, Kind::Query { locks: true });
        assert!(t.kind.writes());
        let t = one("SELECT a IS DISTINCT FROM b, a IS NOT DISTINCT FROM b FROM t");
        assert_eq!(
            t.sql,
            "SELECT a IS NOT b AS \"?column?\", a IS b AS \"?column?\" FROM t"
        );
        let t = one("SELECT 1 FROM t WHERE id = ANY(ARRAY[1, 2, 3])");
        assert_eq!(
            t.sql,
            "SELECT 1 AS \"?column?\" FROM t WHERE id IN (1, 2, 3)"
        );
        let t = one("SELECT * FROM t OFFSET 5");
        assert_eq!(t.sql, "SELECT * FROM t LIMIT -1 OFFSET 5");
    }

    #[test]
    fn casts_and_functions() {
        let t = one("SELECT x::int, y::text, '2024-01-01'::date, string_agg(n, ',') FROM t");
        assert_eq!(
            t.sql,
            "SELECT sy_int4(x) AS \"x\", CAST(y AS TEXT) AS \"y\", sy_date('2024-01-01') AS \"date\", group_concat(n, ',') AS \"string_agg\" FROM t"
        );
        // The transaction's start (kept by the session); a table's default stays plain
        // SQLite, which any SQLite client can evaluate.
        let t = one("SELECT now(), CURRENT_TIMESTAMP, clock_timestamp()");
        assert_eq!(
            t.sql,
            "SELECT sy_now() AS \"now\", sy_now() AS \"current_timestamp\", strftime('%Y-%m-%d %H:%M:%f+00', 'now') AS \"clock_timestamp\""
        );
        let t = one("ALTER TABLE t ADD COLUMN at timestamptz DEFAULT now()");
        assert!(!t.sql.contains("sy_now"), "{}", t.sql);
    }

    #[test]
    fn result_columns_are_named_like_postgres() {
        let t = one("SELECT count(*), id, t.name, 1, x::text, 1::int, upper(name) AS u FROM t");
        assert_eq!(
            t.sql,
            "SELECT count(*) AS \"count\", id, t.name, 1 AS \"?column?\", CAST(x AS TEXT) AS \"x\", sy_int4(1) AS \"int4\", upper(name) AS u FROM t"
        );
    }

    #[test]
    fn transaction_control_is_classified() {
        assert_eq!(
            one("BEGIN").kind,
            Kind::Begin {
                read_only: false,
                isolation: None
            }
        );
        assert_eq!(
            one("BEGIN ISOLATION LEVEL REPEATABLE READ").kind,
            Kind::Begin {
                read_only: false,
                isolation: Some(super::super::isolation::Isolation::RepeatableRead)
            }
        );
        assert_eq!(
            one("START TRANSACTION READ ONLY").kind,
            Kind::Begin {
                read_only: true,
                isolation: None
            }
        );
        assert_eq!(one("COMMIT").kind, Kind::Commit);
        assert_eq!(
            one("ROLLBACK TO SAVEPOINT a").kind,
            Kind::RollbackTo("a".into())
        );
        assert_eq!(one("SAVEPOINT a").kind, Kind::Savepoint("a".into()));
        assert_eq!(
            one("INSERT INTO t VALUES (1) RETURNING id").kind,
            Kind::Insert
        );
        assert_eq!(translate("select 1; select 2").unwrap().len(), 2);
        assert!(translate("   ;  ").unwrap().is_empty());
    }

    #[test]
    fn refusals_name_the_construct() {
        let e = translate("SELECT DISTINCT ON (a) * FROM t").unwrap_err();
        assert_eq!(
            e,
            TranslateError::Refused("SELECT DISTINCT ON with * in its SELECT list".into())
        );
        assert!(e.to_string().contains("not supported"));
        assert!(matches!(
            translate("WITH up AS (UPDATE t SET a = 1 RETURNING a) SELECT * FROM up"),
            Err(TranslateError::Refused(w)) if w.contains("in WITH")
        ));
        assert!(matches!(
            translate("SELEC 1"),
            Err(TranslateError::Syntax(_))
        ));
    }
}
