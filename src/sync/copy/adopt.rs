//! Copying into a schema the app's own migrations made (`alembic upgrade head`,
//! `manage.py migrate`, `create_all()`): each source column goes into the target column of
//! the same name (for a SQLite source, whose names ignore case, of any case), written as
//! the target's actual type; target columns the source lacks take their defaults; the
//! target's serial and identity columns are advanced after the copy. What cannot work —
//! a source column the target lacks, a target column that needs a value the source
//! cannot give — is found before anything is written, each named.

use tokio_postgres::{Client, SimpleQueryMessage};

use super::plan::{Action, Opened};
use crate::backend::url::BackendUrl;
use crate::sync::schema::{Table, lit, q};
use crate::sync::{SyncError, pg_error};

/// One column of an existing target table.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetColumn {
    pub name: String,
    /// As `format_type` names it (`integer`, `timestamp with time zone`, `numeric(10,2)`).
    pub ty: String,
    pub not_null: bool,
    pub has_default: bool,
    /// Filled by a sequence (serial or identity).
    pub serial: bool,
    /// An enum type's labels (None: not an enum).
    pub labels: Option<Vec<String>>,
}

/// The columns of `public.table` on the target (None: no such table).
pub async fn target_table(c: &Client, table: &str) -> Result<Option<Vec<TargetColumn>>, SyncError> {
    let rel = lit(&format!("public.{}", q(table)));
    let sql = format!(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull::text, \
         (a.atthasdef OR a.attidentity <> '')::text, \
         (a.attidentity <> '' OR pg_get_serial_sequence({rel}, a.attname) IS NOT NULL)::text, \
         (SELECT string_agg(e.enumlabel, E'\\n' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = a.atttypid) \
         FROM pg_attribute a WHERE a.attrelid = to_regclass({rel}) AND a.attnum > 0 \
         AND NOT a.attisdropped ORDER BY a.attnum"
    );
    let exists = format!("SELECT to_regclass({rel}) IS NOT NULL");
    let err = |e: tokio_postgres::Error| SyncError::Target(pg_error(&e));
    let found = c.simple_query(&exists).await.map_err(err)?;
    let there = found
        .iter()
        .any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(0) == Some("t")));
    if !there {
        return Ok(None);
    }
    let rows = c.simple_query(&sql).await.map_err(err)?;
    Ok(Some(
        rows.iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(TargetColumn {
                    name: r.get(0)?.to_string(),
                    ty: r.get(1)?.to_string(),
                    not_null: r.get(2) == Some("true"),
                    has_default: r.get(3) == Some("true"),
                    serial: r.get(4) == Some("true"),
                    labels: r
                        .get(5)
                        .map(|l| l.split('\n').map(str::to_string).collect()),
                }),
                _ => None,
            })
            .collect(),
    ))
}

/// Whether the target table has foreign keys of its own (its copy must then follow its
/// parents').
pub async fn has_foreign_keys(c: &Client, table: &str) -> Result<bool, SyncError> {
    let sql = format!(
        "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE contype = 'f' AND conrelid = to_regclass({}))::text",
        lit(&format!("public.{}", q(table)))
    );
    let rows = c
        .simple_query(&sql)
        .await
        .map_err(|e| SyncError::Target(pg_error(&e)))?;
    Ok(rows
        .iter()
        .any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(0) == Some("true"))))
}

/// The names of the target table's secondary indexes and of its unique and foreign keys
/// (empty: it has no schema of its own beyond its columns and primary key).
pub async fn own_schema(
    c: &Client,
    table: &str,
) -> Result<std::collections::HashSet<String>, SyncError> {
    let rel = lit(&format!("public.{}", q(table)));
    let sql = format!(
        "SELECT relname FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid \
         WHERE indrelid = to_regclass({rel}) AND NOT indisprimary \
         UNION SELECT conname FROM pg_constraint WHERE conrelid = to_regclass({rel}) AND contype IN ('f', 'u')"
    );
    let rows = c
        .simple_query(&sql)
        .await
        .map_err(|e| SyncError::Target(pg_error(&e)))?;
    Ok(rows
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect())
}

/// Maps `t`'s columns onto the existing target columns: each takes the target's name,
/// type, nullability and sequence. Returns what cannot be copied, one line each.
pub fn adopt(t: &mut Table, target: &[TargetColumn], any_case: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let mut used = vec![false; target.len()];
    for c in &mut t.columns {
        let exact = target.iter().position(|tc| tc.name == c.name);
        let folded = || {
            let same: Vec<usize> = (0..target.len())
                .filter(|&i| target[i].name.eq_ignore_ascii_case(&c.name))
                .collect();
            (same.len() == 1).then(|| same[0])
        };
        let Some(i) = exact.or_else(|| if any_case { folded() } else { None }) else {
            problems.push(format!(
                "{}.{} ({}): the target table has no such column; add it to the target (your model or migration), or leave it out with --exclude-column {}.{}",
                t.name, c.name, c.source_type, t.name, c.name
            ));
            continue;
        };
        used[i] = true;
        let tc = &target[i];
        for k in &mut t.pk {
            if *k == c.name {
                k.clone_from(&tc.name);
            }
        }
        c.name.clone_from(&tc.name);
        c.pg_type.clone_from(&tc.ty);
        // The target's type, whatever switchyard would have chosen and why.
        c.why = None;
        if tc.labels.is_some() {
            // An enum's binary input is its label's text: written as text, the server
            // checks each value against the labels.
            c.pg_type = "text".into();
            c.why = Some(format!("the target's enum type {}", tc.ty));
        }
        c.not_null = tc.not_null;
        c.identity = tc.serial;
    }
    for (tc, _) in target.iter().zip(&used).filter(|(_, u)| !**u) {
        if tc.not_null && !tc.has_default {
            problems.push(format!(
                "{}.{} ({}): NOT NULL without a default in the target, and the source has no such column to fill it",
                t.name, tc.name, tc.ty
            ));
        }
    }
    problems
}

/// What [`adopt_existing`] found.
pub struct Adopted {
    /// What cannot be copied into the existing tables, one line each.
    pub problems: Vec<String>,
    /// An existing table has foreign keys of its own: parents must be copied first.
    pub ordered: bool,
}

/// Points every table that exists on the target at the target's columns (see [`adopt`]).
/// Where the target table has indexes or keys of its own, switchyard adds none of the
/// source's (the app's migrations made the schema), keeping only those it made itself
/// earlier (same names), so a NOT VALID key of an earlier run is checked again.
pub async fn adopt_existing(
    c: &Client,
    opened: &mut Opened,
    actions: &[Action],
) -> Result<Adopted, SyncError> {
    let any_case = matches!(opened.source, BackendUrl::Sqlite(_));
    let mut out = Adopted {
        problems: Vec::new(),
        ordered: false,
    };
    for (t, a) in opened.tables.iter_mut().zip(actions) {
        if *a == Action::Create {
            continue;
        }
        let Some(cols) = target_table(c, &t.name).await? else {
            continue;
        };
        out.problems.extend(adopt(t, &cols, any_case));
        let own = own_schema(c, &t.name).await?;
        if !own.is_empty() {
            t.indexes.retain(|i| own.contains(&i.name));
            t.fks.retain(|f| own.contains(&f.name));
            out.ordered |= *a == Action::ReuseEmpty && has_foreign_keys(c, &t.name).await?;
        }
    }
    Ok(out)
}

/// Leaves out the source columns named `TABLE.COLUMN` in `excluded` (the user's explicit
/// choice for a column the target does not have). Returns the names it did not find.
pub fn exclude(tables: &mut [Table], excluded: &[String]) -> Vec<String> {
    let mut unknown = Vec::new();
    for e in excluded {
        let Some((table, column)) = e.split_once('.') else {
            unknown.push(e.clone());
            continue;
        };
        let Some(t) = tables.iter_mut().find(|t| t.name == table) else {
            unknown.push(e.clone());
            continue;
        };
        let before = t.columns.len();
        t.columns
            .retain(|c| c.name != column || t.pk.contains(&c.name));
        if t.columns.len() == before {
            unknown.push(e.clone());
        }
    }
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::schema::Column;

    fn col(name: &str, source_type: &str, pg_type: &str) -> Column {
        Column {
            name: name.into(),
            source_type: source_type.into(),
            pg_type: pg_type.into(),
            not_null: false,
            default: None,
            identity: false,
            why: None,
            enum_type: None,
        }
    }

    fn tcol(name: &str, ty: &str, not_null: bool, has_default: bool) -> TargetColumn {
        TargetColumn {
            name: name.into(),
            ty: ty.into(),
            not_null,
            has_default,
            serial: false,
            labels: None,
        }
    }

    fn events() -> Table {
        Table {
            name: "events".into(),
            columns: vec![
                col("id", "integer", "bigint"),
                col("At", "datetime", "timestamp"),
                col("note", "text", "text"),
            ],
            pk: vec!["id".into()],
            indexes: vec![],
            fks: vec![],
            sequence_floor: None,
            warnings: vec![],
        }
    }

    #[test]
    fn source_columns_take_the_target_s_names_and_types() {
        let mut t = events();
        let mut id = tcol("id", "integer", true, true);
        id.serial = true;
        let target = [
            id,
            tcol("at", "timestamp with time zone", true, false),
            tcol("note", "character varying(20)", false, false),
            tcol("extra", "text", false, true),
        ];
        assert!(adopt(&mut t, &target, true).is_empty());
        let got: Vec<(&str, &str)> = t
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.pg_type.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("id", "integer"),
                ("at", "timestamp with time zone"),
                ("note", "character varying(20)")
            ]
        );
        assert!(t.columns[0].identity);
    }

    #[test]
    fn what_cannot_be_copied_is_named() {
        let mut t = events();
        let target = [
            tcol("id", "integer", true, true),
            tcol("At", "timestamp", false, false),
            tcol("owner", "integer", true, false),
        ];
        let problems = adopt(&mut t, &target, false);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("events.note (text): the target table has no such column"));
        assert!(problems[1].starts_with("events.owner (integer): NOT NULL without a default"));
        // A PostgreSQL source's names keep their case.
        let mut t = events();
        let target = [
            tcol("id", "integer", true, true),
            tcol("at", "timestamp", false, false),
        ];
        assert!(adopt(&mut t, &target, false)[0].starts_with("events.At"));
    }
}
