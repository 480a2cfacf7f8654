//! Statements the SQLite session runs itself rather than as one SQLite statement, read
//! from the parsed tree: cursors (DECLARE/FETCH/CLOSE), enum type statements, TRUNCATE;
//! and the one SQLite cannot run at all that is refused by name here (a data-modifying
//! statement in WITH).

use sqlparser::ast::{ObjectName, Statement};

use super::enums::TypeOp;
use super::translate::{CursorOp, TranslateError, ident_name};
use super::truncate::Truncate;

/// A TRUNCATE's tables and options.
pub(super) fn truncate_of(stmt: &Statement) -> Option<Truncate> {
    match stmt {
        Statement::Truncate(tr) => Some(Truncate {
            tables: tr
                .table_names
                .iter()
                .map(|t| {
                    ident_name(&t.name)
                        .rsplit('.')
                        .next()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect(),
            restart: matches!(
                tr.identity,
                Some(sqlparser::ast::TruncateIdentityOption::Restart)
            ),
            cascade: matches!(tr.cascade, Some(sqlparser::ast::CascadeOption::Cascade)),
        }),
        _ => None,
    }
}

/// DECLARE … CURSOR FOR, FETCH and CLOSE.
pub(super) fn cursor_op(stmt: &Statement) -> Result<Option<CursorOp>, TranslateError> {
    use sqlparser::ast::{CloseCursor, FetchDirection as D};
    let count = |v: &sqlparser::ast::ValueWithSpan| -> Result<Option<u64>, TranslateError> {
        v.to_string()
            .parse()
            .map(Some)
            .map_err(|_| TranslateError::Syntax(format!("FETCH count {v}")))
    };
    Ok(Some(match stmt {
        Statement::Declare { stmts } => {
            let [d] = &stmts[..] else {
                return Err(TranslateError::Refused("DECLARE of several cursors".into()));
            };
            let (Some(q), Some(name)) = (&d.for_query, d.names.first()) else {
                return Err(TranslateError::Refused(
                    "DECLARE without a cursor query".into(),
                ));
            };
            if d.binary == Some(true) {
                return Err(TranslateError::Refused("DECLARE BINARY CURSOR".into()));
            }
            CursorOp::Declare {
                name: name.value.clone(),
                hold: d.hold == Some(true),
                query: Box::new(super::translate::translate_one(
                    Statement::Query(q.clone()),
                    &super::coerce::no_schema,
                )?),
            }
        }
        Statement::Fetch {
            name, direction, ..
        } => CursorOp::Fetch {
            name: name.value.clone(),
            count: match direction {
                D::Count { limit } | D::Forward { limit: Some(limit) } => count(limit)?,
                D::Next | D::Forward { limit: None } => Some(1),
                D::All | D::ForwardAll => None,
                other => {
                    return Err(TranslateError::Refused(format!(
                        "FETCH {other} (cursors go forward only)"
                    )));
                }
            },
        },
        Statement::Close { cursor } => CursorOp::Close {
            name: match cursor {
                CloseCursor::All => None,
                CloseCursor::Specific { name } => Some(name.value.clone()),
            },
        },
        _ => return Ok(None),
    }))
}

/// The enum type statements (other kinds of CREATE TYPE are refused).
pub(super) fn type_op(stmt: &Statement) -> Result<Option<TypeOp>, TranslateError> {
    use sqlparser::ast::{AlterTypeAddValuePosition as Pos, AlterTypeOperation, ObjectType};
    let last = |n: &ObjectName| {
        ident_name(n)
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    Ok(Some(match stmt {
        Statement::CreateType {
            name,
            representation: Some(sqlparser::ast::UserDefinedTypeRepresentation::Enum { labels }),
        } => TypeOp::Create {
            name: last(name),
            labels: labels.iter().map(|l| l.value.clone()).collect(),
        },
        Statement::CreateType { .. } => {
            return Err(TranslateError::Refused(
                "CREATE TYPE other than AS ENUM".into(),
            ));
        }
        Statement::Drop {
            object_type: ObjectType::Type,
            names,
            if_exists,
            ..
        } => TypeOp::Drop {
            names: names.iter().map(last).collect(),
            if_exists: *if_exists,
        },
        Statement::AlterType(at) => match &at.operation {
            AlterTypeOperation::AddValue(v) => TypeOp::AddValue {
                name: last(&at.name),
                value: v.value.value.clone(),
                if_not_exists: v.if_not_exists,
                position: v.position.as_ref().map(|p| match p {
                    Pos::Before(l) => (true, l.value.clone()),
                    Pos::After(l) => (false, l.value.clone()),
                }),
            },
            other => {
                return Err(TranslateError::Refused(format!("ALTER TYPE … {other}")));
            }
        },
        _ => return Ok(None),
    }))
}

/// Refuses `WITH x AS (UPDATE … RETURNING …) SELECT …` by name: SQLite's WITH takes
/// queries only (its own words were a syntax error near UPDATE).
pub(super) fn refuse_modifying_with(stmt: &Statement) -> Result<(), TranslateError> {
    use sqlparser::ast::SetExpr;
    let with = match stmt {
        Statement::Query(q) => q.with.as_ref(),
        Statement::Insert(i) => i.source.as_ref().and_then(|q| q.with.as_ref()),
        _ => None,
    };
    let modifying = with.is_some_and(|w| {
        w.cte_tables.iter().any(|c| {
            matches!(
                c.query.body.as_ref(),
                SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_)
            )
        })
    });
    if modifying {
        return Err(TranslateError::Refused(
            "a data-modifying statement (INSERT, UPDATE or DELETE) in WITH".into(),
        ));
    }
    Ok(())
}
