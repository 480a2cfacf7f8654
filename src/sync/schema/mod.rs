//! The table model a sync works from (whatever the source), and the PostgreSQL DDL made
//! from it: tables with their primary keys first, then — after the data — indexes, unique
//! constraints and foreign keys. Every identifier is quoted, so camelCase and reserved
//! words survive exactly.

use serde::Serialize;

pub mod choices;
pub mod postgres;
pub mod sqlite;

/// One column, with its PostgreSQL type on the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: String,
    /// The type as the source declared it.
    pub source_type: String,
    /// The PostgreSQL type on the target (`bigint`, `varchar(120)`, `timestamp with time zone`, …).
    pub pg_type: String,
    pub not_null: bool,
    /// Default expression in PostgreSQL syntax.
    pub default: Option<String>,
    /// Auto-incrementing (INTEGER PRIMARY KEY, AUTOINCREMENT, SERIAL, IDENTITY).
    pub identity: bool,
    /// Why `pg_type` is not what the declared type alone gives (see [`choices`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// An enum type the column has (its name and labels in order), made on the target
    /// with the table when it is not there yet; `pg_type` is then `text`, as the values
    /// are written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enum_type: Option<(String, Vec<String>)>,
}

/// A secondary index (or a unique constraint, which is an index too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Index {
    pub name: String,
    pub columns: Vec<String>,
    pub unique: bool,
    /// Verbatim PostgreSQL definition (PostgreSQL sources), used instead of `columns`.
    pub definition: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
    pub on_delete: String,
    pub on_update: String,
    /// Verbatim PostgreSQL definition (PostgreSQL sources).
    pub definition: Option<String>,
}

/// One table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    pub pk: Vec<String>,
    pub indexes: Vec<Index>,
    pub fks: Vec<ForeignKey>,
    /// SQLite's `sqlite_sequence` value for AUTOINCREMENT tables.
    pub sequence_floor: Option<i64>,
    pub warnings: Vec<String>,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Positions of the primary key columns in `columns`.
    pub fn pk_positions(&self) -> Vec<usize> {
        self.pk
            .iter()
            .filter_map(|k| self.columns.iter().position(|c| &c.name == k))
            .collect()
    }
}

/// Quotes an identifier, keeping its case.
pub fn q(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// PostgreSQL's identifier limit in bytes (NAMEDATALEN - 1); it cuts longer names.
const MAX_IDENT: usize = 63;

/// `prefix` then `name`, as an identifier (unquoted) that stays unique per `name` on
/// PostgreSQL: when the whole is longer than 63 bytes, where the server would cut it and
/// two long names sharing their start would become one, the name is cut at a character
/// boundary and followed by `_` and 8 hex digits of its SHA-256. Stable across runs and
/// versions, so what one run installs under such a name, another finds.
pub fn derived_name(prefix: &str, name: &str) -> String {
    use sha2::Digest;
    if prefix.len() + name.len() <= MAX_IDENT {
        return format!("{prefix}{name}");
    }
    let digest = sha2::Sha256::digest(name.as_bytes());
    let tag: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let mut cut = MAX_IDENT.saturating_sub(prefix.len() + 1 + tag.len());
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{prefix}{}_{tag}", &name[..cut])
}

/// The name PostgreSQL gives a constraint or index it names itself:
/// `{table}_{col1}_{col2}_{suffix}` (`orders_user_id_fkey`, `users_email_key`), the longer
/// of the table and column parts shortened in turn until it fits 63 bytes, as the
/// server's own `makeObjectName` does.
pub fn pg_default_name(table: &str, columns: &[String], suffix: &str) -> String {
    const MAX: usize = 63;
    let (mut a, mut b) = (table.to_string(), columns.join("_"));
    let overhead = suffix.len() + 1 + usize::from(!b.is_empty());
    while a.len() + b.len() + overhead > MAX {
        let longer = if a.len() >= b.len() { &mut a } else { &mut b };
        longer.pop();
    }
    if b.is_empty() {
        format!("{a}_{suffix}")
    } else {
        format!("{a}_{b}_{suffix}")
    }
}

/// Quotes a string literal.
pub fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub fn column_list(cols: &[String]) -> String {
    cols.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ")
}

/// `CREATE TYPE … AS ENUM` for each enum type `t`'s columns have, unless the target has
/// one of that name already.
fn create_enums(t: &Table) -> String {
    let mut made: Vec<&str> = Vec::new();
    let mut out = String::new();
    for (name, labels) in t.columns.iter().filter_map(|c| c.enum_type.as_ref()) {
        if made.contains(&name.as_str()) {
            continue;
        }
        made.push(name);
        let labels: Vec<String> = labels
            .iter()
            .map(|l| format!("'{}'", l.replace('\'', "''")))
            .collect();
        out.push_str(&format!(
            "DO $sy$ BEGIN CREATE TYPE {} AS ENUM ({}); EXCEPTION WHEN duplicate_object THEN NULL; END $sy$;\n",
            q(name),
            labels.join(", ")
        ));
    }
    out
}

/// CREATE TABLE with columns, defaults, identity and the primary key (after the enum
/// types its columns need).
pub fn create_table(t: &Table) -> String {
    let mut parts: Vec<String> = t
        .columns
        .iter()
        .map(|c| {
            let ty = match &c.enum_type {
                Some((name, _)) => q(name),
                None => c.pg_type.clone(),
            };
            let mut s = format!("{} {ty}", q(&c.name));
            if c.identity {
                s.push_str(" GENERATED BY DEFAULT AS IDENTITY");
            } else if let Some(d) = &c.default {
                s.push_str(&format!(" DEFAULT {d}"));
            }
            if c.not_null || c.identity {
                s.push_str(" NOT NULL");
            }
            s
        })
        .collect();
    if !t.pk.is_empty() {
        parts.push(format!("PRIMARY KEY ({})", column_list(&t.pk)));
    }
    format!(
        "{}CREATE TABLE {} (\n  {}\n)",
        create_enums(t),
        q(&t.name),
        parts.join(",\n  ")
    )
}

/// Indexes and unique constraints, created after the data.
pub fn create_indexes(t: &Table) -> Vec<String> {
    t.indexes
        .iter()
        .map(|i| match &i.definition {
            Some(d) => d.clone(),
            None => format!(
                "CREATE {}INDEX IF NOT EXISTS {} ON {} ({})",
                if i.unique { "UNIQUE " } else { "" },
                q(&i.name),
                q(&t.name),
                column_list(&i.columns)
            ),
        })
        .collect()
}

/// Foreign keys, added after every table has its data.
pub fn add_foreign_keys(t: &Table) -> Vec<String> {
    t.fks
        .iter()
        .map(|f| {
            let body = f.definition.clone().unwrap_or_else(|| {
                let mut s = format!(
                    "FOREIGN KEY ({}) REFERENCES {} ({})",
                    column_list(&f.columns),
                    q(&f.ref_table),
                    column_list(&f.ref_columns)
                );
                for (what, action) in [("DELETE", &f.on_delete), ("UPDATE", &f.on_update)] {
                    if !action.is_empty() && !action.eq_ignore_ascii_case("NO ACTION") {
                        s.push_str(&format!(" ON {what} {action}"));
                    }
                }
                s
            });
            format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {body}",
                q(&t.name),
                q(&f.name)
            )
        })
        .collect()
}

/// Orders tables so that referenced tables come before the tables that reference them
/// (cycles keep their input order).
pub fn fk_order(tables: &mut Vec<Table>) {
    let mut ordered: Vec<Table> = Vec::with_capacity(tables.len());
    let mut rest = std::mem::take(tables);
    while !rest.is_empty() {
        let ready = rest.iter().position(|t| {
            t.fks.iter().all(|f| {
                f.ref_table == t.name
                    || ordered.iter().any(|o| o.name == f.ref_table)
                    || !rest.iter().any(|r| r.name == f.ref_table)
            })
        });
        let i = ready.unwrap_or(0);
        ordered.push(rest.remove(i));
    }
    *tables = ordered;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_postgresql_s() {
        let cols = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            pg_default_name("tasks", &cols(&["user_id"]), "fkey"),
            "tasks_user_id_fkey"
        );
        assert_eq!(
            pg_default_name("memberships", &cols(&["org_id", "user_id"]), "key"),
            "memberships_org_id_user_id_key"
        );
        // What PostgreSQL 15 names it (checked with CREATE TABLE … REFERENCES): the longer
        // part gives way first.
        let long = "a".repeat(50);
        let name = pg_default_name(&long, &cols(&["some_reference_id"]), "fkey");
        assert_eq!(name.len(), 63);
        assert_eq!(name, format!("{}_some_reference_id_fkey", "a".repeat(40)));
    }

    #[test]
    fn derived_names_fit_and_stay_apart() {
        assert_eq!(derived_name("_sy_", "orders"), "_sy_orders");
        let long = "é".repeat(30);
        let (a, b) = (format!("{long}_one"), format!("{long}_two"));
        let (x, y) = (derived_name("capture_", &a), derived_name("capture_", &b));
        assert!(x.len() <= 63 && y.len() <= 63, "{x} {y}");
        assert_ne!(x, y);
        assert!(x.starts_with("capture_é"), "{x}");
        assert_eq!(x, derived_name("capture_", &a), "stable");
        // Exactly at the limit: kept whole.
        let exact = "t".repeat(63 - 4);
        assert_eq!(derived_name("_sy_", &exact), format!("_sy_{exact}"));
    }

    fn col(name: &str, ty: &str) -> Column {
        Column {
            name: name.into(),
            source_type: ty.into(),
            pg_type: ty.into(),
            not_null: false,
            default: None,
            identity: false,
            why: None,
            enum_type: None,
        }
    }

    #[test]
    fn ddl_quotes_everything() {
        let mut id = col("id", "bigint");
        id.identity = true;
        let mut score = col("riskScore", "numeric(8,2)");
        score.default = Some("0".into());
        let t = Table {
            name: "order".into(),
            columns: vec![id, score, col("user", "text")],
            pk: vec!["id".into()],
            indexes: vec![Index {
                name: "order_user".into(),
                columns: vec!["user".into()],
                unique: true,
                definition: None,
            }],
            fks: vec![ForeignKey {
                name: "order_user_fk".into(),
                columns: vec!["user".into()],
                ref_table: "users".into(),
                ref_columns: vec!["name".into()],
                on_delete: "CASCADE".into(),
                on_update: "NO ACTION".into(),
                definition: None,
            }],
            sequence_floor: None,
            warnings: vec![],
        };
        let ddl = create_table(&t);
        assert!(
            ddl.contains("\"id\" bigint GENERATED BY DEFAULT AS IDENTITY NOT NULL"),
            "{ddl}"
        );
        assert!(
            ddl.contains("\"riskScore\" numeric(8,2) DEFAULT 0"),
            "{ddl}"
        );
        assert!(ddl.starts_with("CREATE TABLE \"order\""));
        assert_eq!(
            create_indexes(&t),
            vec!["CREATE UNIQUE INDEX IF NOT EXISTS \"order_user\" ON \"order\" (\"user\")"]
        );
        assert_eq!(
            add_foreign_keys(&t),
            vec![
                "ALTER TABLE \"order\" ADD CONSTRAINT \"order_user_fk\" FOREIGN KEY (\"user\") REFERENCES \"users\" (\"name\") ON DELETE CASCADE"
            ]
        );
    }

    #[test]
    fn referenced_tables_come_first() {
        let t = |name: &str, refs: &[&str]| Table {
            name: name.into(),
            columns: vec![],
            pk: vec![],
            indexes: vec![],
            fks: refs
                .iter()
                .map(|r| ForeignKey {
                    name: format!("{name}_{r}"),
                    columns: vec![],
                    ref_table: r.to_string(),
                    ref_columns: vec![],
                    on_delete: String::new(),
                    on_update: String::new(),
                    definition: None,
                })
                .collect(),
            sequence_floor: None,
            warnings: vec![],
        };
        let mut ts = vec![
            t("tasks", &["users", "projects"]),
            t("projects", &["users"]),
            t("users", &[]),
        ];
        fk_order(&mut ts);
        let names: Vec<&str> = ts.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["users", "projects", "tasks"]);
    }
}
