//! Enough of `pg_catalog` and `information_schema` for drivers, ORMs and psql, as
//! temporary views over SQLite's own schema (`sqlite_schema`, `pragma_table_info`,
//! `pragma_index_list`), created on every connection. Also the side table that remembers
//! PostgreSQL column types SQLite's declared type cannot carry.

use rusqlite::Connection;

use super::error::{PgError, from_sqlite};
use super::types;

/// Tables and views of the application (not SQLite's nor switchyard's own).
const USER_OBJECTS: &str = "SELECT rowid, name, type, tbl_name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_switchyard\\_%' ESCAPE '\\'";

fn type_rows() -> String {
    let oids = [
        types::BOOL,
        types::BYTEA,
        types::CHAR,
        types::NAME,
        types::INT8,
        types::INT2,
        types::INT4,
        types::TEXT,
        types::OID,
        types::JSON,
        types::FLOAT4,
        types::FLOAT8,
        types::BPCHAR,
        types::VARCHAR,
        types::DATE,
        types::TIME,
        types::TIMESTAMP,
        types::TIMESTAMPTZ,
        types::NUMERIC,
        types::UUID,
        types::JSONB,
        types::INTERVAL,
    ];
    let row = |oid: u32, name: &str, len: i16, elem: u32, array: u32, category: char| {
        format!(
            "SELECT CAST({oid} AS INTEGER) AS oid, '{name}' AS typname, 11 AS typnamespace, {len} AS typlen, 'b' AS typtype, 0 AS typrelid, {elem} AS typelem, {array} AS typarray, 0 AS typbasetype, 0 AS typnotnull, -1 AS typtypmod, 10 AS typowner, '{category}' AS typcategory, ',' AS typdelim, 1 AS typisdefined, NULL AS typdefault, 0 AS typcollation, 0 AS typndims, 'i' AS typalign, 'p' AS typstorage, 0 AS typreceive, 0 AS typsend"
        )
    };
    let mut rows = Vec::new();
    for o in oids {
        let name = match o {
            types::BOOL => "bool",
            types::INT8 => "int8",
            types::INT2 => "int2",
            types::INT4 => "int4",
            types::FLOAT4 => "float4",
            types::FLOAT8 => "float8",
            types::VARCHAR => "varchar",
            types::BPCHAR => "bpchar",
            types::TIMESTAMP => "timestamp",
            types::TIMESTAMPTZ => "timestamptz",
            types::TIME => "time",
            types::CHAR => "char",
            other => types::type_name(other),
        };
        // An element type's array type, as `_int4` for `int4` (asyncpg's type
        // introspection follows typelem from the array to its element).
        let array = super::arrays::array_type(o);
        rows.push(row(o, name, types::type_len(o), 0, array.unwrap_or(0), 'U'));
        if let Some(a) = array {
            rows.push(row(a, &format!("_{name}"), -1, o, 0, 'A'));
        }
    }
    rows.join(" UNION ALL ")
}

/// Creates the catalog views on a connection.
pub fn install(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _switchyard_columns (tbl TEXT NOT NULL, col TEXT NOT NULL, pg_type TEXT NOT NULL, PRIMARY KEY (tbl, col))",
    )?;
    conn.execute_batch(super::enums::SETUP)?;
    conn.execute_batch(super::defaults::SETUP)?;
    conn.execute_batch(super::constraints::SETUP)?;
    conn.execute_batch(super::cursors::SETUP)?;
    let views = [
        // SERIAL keys (a single-column INTEGER key with AUTOINCREMENT) and the sequence
        // PostgreSQL would have made for each: in pg_class (relkind 'S'), pg_sequence,
        // pg_depend (owned by the column) and the column's default.
        format!(
            "_sy_serials AS SELECT CAST(16384 + m.rowid AS INTEGER) AS relid, m.name AS relname, p.name AS attname, \
             p.cid + 1 AS attnum, CAST(100000000 + (16384 + m.rowid) * 1000 + p.cid AS INTEGER) AS seqoid, \
             sy_seq_name(m.sql, m.name, p.name) AS seqname, \
             (SELECT s.pg_type FROM _switchyard_columns s WHERE s.tbl = m.name AND s.col = p.name) AS pg_type, \
             (SELECT i.kind FROM _switchyard_identity_columns i WHERE i.tbl = m.name AND i.col = p.name) AS identity \
             FROM ({USER_OBJECTS}) m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.sql LIKE '%AUTOINCREMENT%' AND p.pk = 1 AND upper(p.type) = 'INTEGER' \
             AND (SELECT count(*) FROM pragma_table_info(m.name) k WHERE k.pk > 0) = 1"
        ),
        "pg_namespace AS SELECT CAST(2200 AS INTEGER) AS oid, 'public' AS nspname, 10 AS nspowner, NULL AS nspacl \
         UNION ALL SELECT 11, 'pg_catalog', 10, NULL UNION ALL SELECT 13000, 'information_schema', 10, NULL"
            .to_string(),
        format!(
            "pg_class AS SELECT CAST(16384 + rowid AS INTEGER) AS oid, name AS relname, 2200 AS relnamespace, \
             CASE type WHEN 'table' THEN 'r' WHEN 'view' THEN 'v' WHEN 'index' THEN 'i' ELSE 'r' END AS relkind, \
             10 AS relowner, 0 AS reltablespace, -1 AS reltuples, 'p' AS relpersistence, 0 AS relispartition, \
             (type = 'table') AS relhasindex, 0 AS relhasrules, \
             EXISTS (SELECT 1 FROM temp._sy_constraints k WHERE k.contype = 'f' AND 16384 + o.rowid IN (k.conrelid, k.confrelid)) AS relhastriggers, \
             0 AS relrowsecurity, \
             0 AS relforcerowsecurity, NULL AS relacl, NULL AS reloptions, 0 AS reltoastrelid, CASE type WHEN 'index' THEN 403 ELSE 0 END AS relam, 0 AS reloftype, \
             (SELECT count(*) FROM temp._sy_constraints k WHERE k.contype = 'c' AND k.conrelid = 16384 + o.rowid) AS relchecks, \
             NULL AS relpartbound, 0 AS relnatts, 0 AS relpages, 'd' AS relreplident, 0 AS relfrozenxid, 0 AS reltype \
             FROM ({USER_OBJECTS}) o WHERE type IN ('table', 'view', 'index') \
             UNION ALL SELECT conindid, conname, 2200, 'i', 10, 0, -1, 'p', 0, 0, 0, 0, 0, 0, NULL, NULL, 0, 403, 0, \
             0, NULL, 0, 0, 'd', 0, 0 FROM temp._sy_constraints WHERE contype IN ('p', 'u') AND conindid >= 1000000 \
             UNION ALL SELECT seqoid, seqname, 2200, 'S', 10, 0, -1, 'p', 0, 0, 0, 0, 0, 0, NULL, NULL, 0, 0, 0, \
             0, NULL, 0, 0, 'n', 0, 0 FROM _sy_serials \
             UNION ALL SELECT 1259, 'pg_class', 11, 'r', 10, 0, -1, 'p', 0, 1, 0, 0, 0, 0, NULL, NULL, 0, 2, 0, \
             0, NULL, 0, 0, 'n', 0, 0"
        ),
        format!(
            "pg_tables AS SELECT 'public' AS schemaname, name AS tablename, 'postgres' AS tableowner, NULL AS tablespace, \
             EXISTS (SELECT 1 FROM sqlite_schema i WHERE i.type = 'index' AND i.tbl_name = o.name) AS hasindexes, \
             0 AS hasrules, 0 AS hastriggers, 0 AS rowsecurity FROM ({USER_OBJECTS}) o WHERE type = 'table'"
        ),
        format!(
            "pg_views AS SELECT 'public' AS schemaname, name AS viewname, 'postgres' AS viewowner, sql AS definition \
             FROM ({USER_OBJECTS}) o WHERE type = 'view'"
        ),
        "pg_indexes AS SELECT 'public' AS schemaname, t.relname AS tablename, i.relname AS indexname, \
         NULL AS tablespace, pg_get_indexdef(i.oid) AS indexdef FROM pg_index x \
         JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid"
            .to_string(),
        "pg_depend AS SELECT 1259 AS classid, seqoid AS objid, 0 AS objsubid, 1259 AS refclassid, relid AS refobjid, \
         attnum AS refobjsubid, CASE WHEN identity IS NULL THEN 'a' ELSE 'i' END AS deptype FROM _sy_serials"
            .to_string(),
        // Defaults as PostgreSQL prints them (see `defaults.rs`); a SERIAL key's is its
        // sequence's nextval.
        "pg_attrdef AS SELECT * FROM (SELECT CAST(c.oid * 1000 + p.cid AS INTEGER) AS oid, CAST(c.oid AS INTEGER) AS adrelid, \
         p.cid + 1 AS adnum, CASE WHEN p.dflt_value IS NOT NULL THEN sy_pg_default(p.dflt_value, p.type, \
         (SELECT s.pg_type FROM _switchyard_columns s WHERE s.tbl = c.relname AND s.col = p.name)) \
         WHEN EXISTS (SELECT 1 FROM _sy_serials s WHERE s.relid = c.oid AND s.attnum = p.cid + 1 AND s.identity IS NULL) \
         THEN (SELECT sy_serial_default(s.seqname) FROM _sy_serials s WHERE s.relid = c.oid AND s.attnum = p.cid + 1) END AS adbin \
         FROM pg_class c JOIN pragma_table_info(c.relname) p WHERE c.relkind = 'r') WHERE adbin IS NOT NULL"
            .to_string(),
        "pg_attribute AS SELECT CAST(c.oid AS INTEGER) AS attrelid, p.name AS attname, \
         COALESCE((SELECT CASE WHEN s.pg_type = 'bigint' THEN 20 WHEN s.pg_type = 'smallint' THEN 21 \
         WHEN s.pg_type LIKE '%[]' THEN pg_type_oid(s.pg_type) ELSE COALESCE((SELECT 200000 + min(e.rowid) FROM _switchyard_enums e WHERE e.typname = s.pg_type), 25) END \
         FROM _switchyard_columns s WHERE s.tbl = c.relname AND s.col = p.name), pg_type_oid(p.type)) AS atttypid, \
         p.cid + 1 AS attnum, (p.\"notnull\" OR p.pk > 0) AS attnotnull, 0 AS attisdropped, pg_typmod(COALESCE((SELECT s.pg_type FROM _switchyard_columns s WHERE s.tbl = c.relname AND s.col = p.name \
         AND s.pg_type LIKE '%[]'), p.type)) AS atttypmod, 0 AS attndims, \
         EXISTS (SELECT 1 FROM pg_attrdef d WHERE d.adrelid = c.oid AND d.adnum = p.cid + 1) AS atthasdef, \
         COALESCE((SELECT s.identity FROM _sy_serials s WHERE s.relid = c.oid AND s.attnum = p.cid + 1), '') AS attidentity, '' AS attgenerated, 0 AS attcollation, -1 AS attlen, NULL AS attoptions \
         FROM pg_class c JOIN pragma_table_info(c.relname) p WHERE c.relkind IN ('r', 'v')"
            .to_string(),
        format!(
            "pg_type AS {} UNION ALL SELECT CAST(200000 + min(rowid) AS INTEGER), typname, 2200, 4, 'e', 0, 0, 0, 0, 0, -1, 10, 'E', ',', 1, NULL, 0, 0, 'i', 'p', 0, 0 \
             FROM _switchyard_enums GROUP BY typname",
            type_rows()
        ),
        "pg_index AS SELECT CAST(i.oid AS INTEGER) AS indexrelid, CAST(t.oid AS INTEGER) AS indrelid, (l.\"unique\" + 0) AS indisunique, (l.origin = 'pk') AS indisprimary, \
         1 AS indisvalid, 1 AS indisready, 1 AS indislive, 0 AS indisclustered, NULL AS indpred, NULL AS indexprs, \
         (SELECT group_concat(ii.cid + 1, ' ') FROM pragma_index_info(l.name) ii) AS indkey, \
         (SELECT count(*) FROM pragma_index_info(l.name)) AS indnkeyatts, (SELECT count(*) FROM pragma_index_info(l.name)) AS indnatts, \
         0 AS indisreplident, 1 AS indimmediate, 0 AS indnullsnotdistinct, \
         (SELECT group_concat(0, ' ') FROM pragma_index_info(l.name)) AS indoption, \
         (SELECT group_concat(sy_indclass((SELECT m.sql FROM sqlite_schema m WHERE m.type = 'index' AND m.name = l.name), \
         ii.seqno, pg_type_oid(p.type)), ' ') FROM pragma_index_info(l.name) ii \
         LEFT JOIN pragma_table_info(t.relname) p ON p.cid = ii.cid) AS indclass \
         FROM pg_class t JOIN pragma_index_list(t.relname) l JOIN pg_class i ON i.relname = l.name WHERE t.relkind = 'r' \
         UNION ALL SELECT conindid, conrelid, 1, contype = 'p', 1, 1, 1, 0, NULL, NULL, \
         replace(trim(conkey, '[]'), ',', ' '), json_array_length(conkey), json_array_length(conkey), 0, 1, 0, \
         trim(replace(hex(zeroblob(json_array_length(conkey))), '00', '0 ')), '' \
         FROM temp._sy_constraints WHERE contype IN ('p', 'u') AND conindid >= 1000000"
            .to_string(),
        "pg_constraint AS SELECT oid, conname, 2200 AS connamespace, contype, conrelid, confrelid, conkey, confkey, \
         conindid, condeferrable, condeferred, 1 AS convalidated, confupdtype, confdeltype, 's' AS confmatchtype, \
         1 AS conislocal, 0 AS coninhcount, 0 AS connoinherit, 0 AS conparentid, 0 AS contypid, NULL AS conbin \
         FROM temp._sy_constraints"
            .to_string(),
        "pg_database AS SELECT 1 AS oid, current_database() AS datname, 10 AS datdba, 6 AS encoding, 'C' AS datcollate, \
         'C' AS datctype, NULL AS daticulocale, 'c' AS datlocprovider, 0 AS datistemplate, 1 AS datallowconn, -1 AS datconnlimit, NULL AS datacl"
            .to_string(),
        "pg_roles AS SELECT 10 AS oid, 'postgres' AS rolname, 1 AS rolsuper, 1 AS rolinherit, 1 AS rolcreaterole, \
         1 AS rolcreatedb, 1 AS rolcanlogin, 0 AS rolreplication, -1 AS rolconnlimit, NULL AS rolvaliduntil, 1 AS rolbypassrls"
            .to_string(),
        "pg_user AS SELECT 'postgres' AS usename, 10 AS usesysid, 1 AS usecreatedb, 1 AS usesuper".to_string(),
        "pg_collation AS SELECT 100 AS oid, 'default' AS collname, 11 AS collnamespace WHERE 0".to_string(),
        "pg_policy AS SELECT 0 AS oid, '' AS polname, 0 AS polrelid, '' AS polcmd, 1 AS polpermissive, '{0}' AS polroles, NULL AS polqual, NULL AS polwithcheck WHERE 0".to_string(),
        "pg_statistic_ext AS SELECT 0 AS oid, 0 AS stxrelid, 0 AS stxnamespace, '' AS stxname, '[]' AS stxkind, -1 AS stxstattarget WHERE 0".to_string(),
        "pg_publication AS SELECT 0 AS oid, '' AS pubname, 0 AS puballtables WHERE 0".to_string(),
        "pg_publication_namespace AS SELECT 0 AS pnpubid, 0 AS pnnspid WHERE 0".to_string(),
        "pg_publication_rel AS SELECT 0 AS prpubid, 0 AS prrelid, NULL AS prqual, NULL AS prattrs WHERE 0".to_string(),
        "pg_trigger AS SELECT 0 AS oid, 0 AS tgrelid, '' AS tgname, 0 AS tgisinternal, 'O' AS tgenabled, 0 AS tgparentid WHERE 0".to_string(),
        "pg_rewrite AS SELECT 0 AS oid, 0 AS ev_class, '' AS rulename WHERE 0".to_string(),
        "pg_foreign_table AS SELECT 0 AS ftrelid, 0 AS ftserver WHERE 0".to_string(),
        "pg_extension AS SELECT 0 AS oid, 'plpgsql' AS extname WHERE 0".to_string(),
        "pg_proc AS SELECT 0 AS oid, '' AS proname, 11 AS pronamespace WHERE 0".to_string(),
        "pg_sequence AS SELECT seqoid AS seqrelid, CASE pg_type WHEN 'bigint' THEN 20 WHEN 'smallint' THEN 21 ELSE 23 END AS seqtypid, \
         1 AS seqstart, 1 AS seqincrement, CASE pg_type WHEN 'bigint' THEN 9223372036854775807 WHEN 'smallint' THEN 32767 \
         ELSE 2147483647 END AS seqmax, 1 AS seqmin, 1 AS seqcache, 0 AS seqcycle FROM _sy_serials"
            .to_string(),
        "pg_description AS SELECT 0 AS objoid, 0 AS classoid, 0 AS objsubid, '' AS description WHERE 0".to_string(),
        "pg_inherits AS SELECT 0 AS inhrelid, 0 AS inhparent, 0 AS inhseqno, 0 AS inhdetachpending WHERE 0".to_string(),
        "pg_am AS SELECT 403 AS oid, 'btree' AS amname".to_string(),
        "pg_cursors AS SELECT name, statement, is_holdable, is_binary, is_scrollable, creation_time FROM temp._sy_cursors"
            .to_string(),
        "pg_tablespace AS SELECT 1663 AS oid, 'pg_default' AS spcname, 10 AS spcowner, NULL AS spcacl, NULL AS spcoptions"
            .to_string(),
        super::opclass::view(),
        "pg_enum AS SELECT CAST(300000 + e.rowid AS INTEGER) AS oid, \
         CAST(200000 + (SELECT min(x.rowid) FROM _switchyard_enums x WHERE x.typname = e.typname) AS INTEGER) AS enumtypid, \
         e.sortorder AS enumsortorder, e.label AS enumlabel FROM _switchyard_enums e"
            .to_string(),
        "pg_range AS SELECT 0 AS rngtypid, 0 AS rngsubtype, 0 AS rngmultitypid WHERE 0".to_string(),
        "pg_settings AS SELECT 'server_version' AS name, current_setting('server_version') AS setting \
         UNION ALL SELECT 'max_index_keys', '32' UNION ALL SELECT 'max_identifier_length', '63'"
            .to_string(),
        format!(
            "information_schema_tables AS SELECT current_database() AS table_catalog, 'public' AS table_schema, name AS table_name, \
             CASE type WHEN 'view' THEN 'VIEW' ELSE 'BASE TABLE' END AS table_type FROM ({USER_OBJECTS}) WHERE type IN ('table', 'view')"
        ),
        "information_schema_columns AS SELECT current_database() AS table_catalog, 'public' AS table_schema, c.relname AS table_name, \
         a.attname AS column_name, a.attnum AS ordinal_position, \
         CASE WHEN a.atttypid >= 200000 THEN 'USER-DEFINED' ELSE format_type(a.atttypid, -1) END AS data_type, \
         CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END AS is_nullable, \
         (SELECT d.adbin FROM pg_attrdef d WHERE d.adrelid = c.oid AND d.adnum = a.attnum) AS column_default, \
         CASE WHEN a.atttypid IN (1042, 1043) AND a.atttypmod > 4 THEN a.atttypmod - 4 END AS character_maximum_length, \
         CASE WHEN a.atttypid = 1700 AND a.atttypmod > 4 THEN ((a.atttypmod - 4) >> 16) & 65535 END AS numeric_precision, \
         CASE WHEN a.atttypid = 1700 AND a.atttypmod > 4 THEN (a.atttypmod - 4) & 65535 END AS numeric_scale, \
         (SELECT t.typname FROM pg_type t WHERE t.oid = a.atttypid) AS udt_name \
         FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
            .to_string(),
        "information_schema_schemata AS SELECT current_database() AS catalog_name, nspname AS schema_name, 'postgres' AS schema_owner FROM pg_namespace"
            .to_string(),
    ];
    for v in views {
        conn.execute_batch(&format!("CREATE TEMP VIEW IF NOT EXISTS {v}"))?;
    }
    Ok(())
}

/// Records PostgreSQL types of columns SQLite stores under another declared type.
pub fn remember_column_types(
    conn: &Connection,
    cols: &[(String, String, String)],
) -> Result<(), PgError> {
    for (t, c, ty) in cols {
        if let Some(kind) = ty.strip_prefix(super::defaults::IDENTITY) {
            conn.execute(
                "INSERT OR REPLACE INTO _switchyard_identity_columns (tbl, col, kind) VALUES (?1, ?2, ?3)",
                [t, c, kind],
            )
            .map_err(|e| from_sqlite(&e))?;
            continue;
        }
        conn.execute(
            "INSERT OR REPLACE INTO _switchyard_columns (tbl, col, pg_type) VALUES (?1, ?2, ?3)",
            [t, c, ty],
        )
        .map_err(|e| from_sqlite(&e))?;
    }
    Ok(())
}

/// Forgets the remembered types of columns that no longer exist (after DROP TABLE), so a
/// table made again under the name starts clean and a dropped enum column no longer
/// holds its type.
pub fn forget_dropped(conn: &Connection) -> Result<(), PgError> {
    conn.execute_batch(
        "DELETE FROM _switchyard_columns WHERE NOT EXISTS \
         (SELECT 1 FROM pragma_table_info(_switchyard_columns.tbl) p WHERE p.name = _switchyard_columns.col); \
         DELETE FROM _switchyard_identity_columns WHERE NOT EXISTS \
         (SELECT 1 FROM pragma_table_info(_switchyard_identity_columns.tbl) p WHERE p.name = _switchyard_identity_columns.col)",
    )
    .map_err(|e| from_sqlite(&e))
}

/// A PostgreSQL type remembered for a column SQLite stores under another declared type.
/// A table column's catalog OID (16384 + its table's sqlite_schema rowid) and number.
fn origin(conn: &Connection, table: &str, column: &str) -> Option<(u32, i16)> {
    conn.prepare_cached(
        "SELECT m.rowid, p.cid FROM sqlite_schema m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name = ?1 AND p.name = ?2",
    )
    .ok()?
    .query_row([table, column], |r| {
        Ok((
            (16384 + r.get::<_, i64>(0)?) as u32,
            r.get::<_, i64>(1)? as i16 + 1,
        ))
    })
    .ok()
}

/// [`origin`]s and tables' typed columns a session has looked up, kept while the schema
/// stays as it was (its `schema_version`): a simple query is translated and describes its
/// columns each time it runs; the origin lookup cost a fifth of a point select's
/// throughput, and the column lookups of the translation a fifth of an update's.
#[derive(Default)]
pub struct OriginCache {
    version: std::cell::Cell<i64>,
    known: std::cell::RefCell<OriginMap>,
    columns: std::cell::RefCell<std::collections::HashMap<String, Vec<super::coerce::Col>>>,
}

/// (table, column) → its origin, or None for a column that has none.
type OriginMap = std::collections::HashMap<(String, String), Option<(u32, i16)>>;

impl OriginCache {
    /// The schema's version now; the cache forgets what it knew when it has changed.
    pub fn check(&self, conn: &Connection) {
        let version = conn
            .prepare_cached("PRAGMA schema_version")
            .and_then(|mut st| st.query_row([], |r| r.get::<_, i64>(0)))
            .unwrap_or(-1);
        if version != self.version.get() {
            self.version.set(version);
            self.known.borrow_mut().clear();
            self.columns.borrow_mut().clear();
        }
    }

    /// `table`'s columns typed as the translation reads them ([`super::coerce::columns_of`]),
    /// looked up once per schema version ([`Self::check`] first).
    pub fn columns(&self, conn: &Connection, table: &str) -> Vec<super::coerce::Col> {
        if let Some(c) = self.columns.borrow().get(table) {
            return c.clone();
        }
        let c = super::coerce::columns_of(conn, table);
        self.columns
            .borrow_mut()
            .insert(table.to_string(), c.clone());
        c
    }

    /// (table, column)'s origin, looked up once per schema version ([`Self::check`] first).
    pub fn get(&self, conn: &Connection, table: &str, column: &str) -> Option<(u32, i16)> {
        let key = (table.to_string(), column.to_string());
        if let Some(o) = self.known.borrow().get(&key) {
            return *o;
        }
        let o = origin(conn, table, column);
        self.known.borrow_mut().insert(key, o);
        o
    }
}

pub fn override_type(conn: &Connection, table: &str, column: &str) -> Option<u32> {
    let ty: String = conn
        .prepare_cached("SELECT pg_type FROM _switchyard_columns WHERE tbl = ?1 AND col = ?2")
        .ok()?
        .query_row([table, column], |r| r.get(0))
        .ok()?;
    Some(types::oid_for_decltype(&ty))
}

/// The PostgreSQL type of `column`, looked up in `table` or else in each of `tables`.
pub fn column_type(
    conn: &Connection,
    table: Option<&str>,
    column: &str,
    tables: &[String],
) -> Option<u32> {
    let candidates: Vec<&str> = match table {
        Some(t) if tables.iter().any(|x| x == t) => vec![t],
        _ => tables.iter().map(String::as_str).collect(),
    };
    for t in candidates {
        if is_catalog(t)
            && let Some(oid) = catalog_column(column)
        {
            return Some(oid);
        }
        let over: Option<String> = conn
            .query_row(
                "SELECT pg_type FROM _switchyard_columns WHERE tbl = ?1 AND col = ?2",
                [t, column],
                |r| r.get(0),
            )
            .ok();
        if let Some(ty) = over {
            return Some(types::oid_for_decltype(&ty));
        }
        let decl: Option<Option<String>> = conn
            .query_row(
                "SELECT type FROM pragma_table_info(?1) WHERE name = ?2",
                [t, column],
                |r| r.get(0),
            )
            .ok();
        if let Some(decl) = decl {
            return Some(types::oid_for_decltype(decl.as_deref().unwrap_or("")));
        }
    }
    None
}

/// The declared type of `column` (in `table`, or else in each of `tables`): its
/// PostgreSQL type and, for numeric(p, s), its scale.
fn column_decl(
    conn: &Connection,
    table: Option<&str>,
    column: &str,
    tables: &[String],
) -> Option<(u32, Option<usize>)> {
    let candidates: Vec<&str> = match table {
        Some(t) if tables.iter().any(|x| x == t) => vec![t],
        _ => tables.iter().map(String::as_str).collect(),
    };
    // A view's computed column has no declared type: nothing to go by.
    let decl = candidates.iter().find_map(|t| {
        conn.query_row(
            "SELECT type FROM pragma_table_info(?1) WHERE name = ?2",
            [t, column],
            |r| r.get::<_, Option<String>>(0),
        )
        .ok()
        .flatten()
        .filter(|d| !d.is_empty())
    })?;
    let oid = column_type(conn, table, column, tables)?;
    Some((oid, super::exec::declared_scale(&decl)))
}

/// Everything known about a statement's result types before running it: its
/// [`source_types`], and exact numeric arithmetic.
pub fn result_types(
    conn: &Connection,
    t: &super::translate::Translated,
) -> Vec<Option<(u32, Option<usize>)>> {
    let mut typed = source_types(conn, &t.sources, &t.tables);
    if typed.len() < t.decimals.len() {
        typed.resize(t.decimals.len(), None);
    }
    for (slot, decimal) in typed.iter_mut().zip(&t.decimals) {
        if *decimal {
            // Decimal text with its scale already (see `decimal.rs`).
            *slot = Some((types::NUMERIC, None));
        }
    }
    typed
}

/// Whether [`result_types`] has anything to say.
pub fn has_result_types(t: &super::translate::Translated) -> bool {
    t.sources.iter().any(Option::is_some) || t.decimals.contains(&true)
}

/// Whether `table` is one of the catalog views (whose declared column types are SQLite's
/// guesses from the expressions behind them).
fn is_catalog(table: &str) -> bool {
    table.starts_with("pg_") || table.starts_with("information_schema")
}

/// The type of a catalog view's column that SQLite cannot tell (a computed one), by name:
/// what reflection queries aggregate over subqueries of the catalog.
fn catalog_column(name: &str) -> Option<u32> {
    Some(match name {
        "indnkeyatts" | "indnatts" | "attnum" | "adnum" => types::INT2,
        "conkey" | "confkey" => super::arrays::array_of(types::INT2),
        "oid" | "conrelid" | "confrelid" | "indrelid" | "indexrelid" | "attrelid" | "relam"
        | "relnamespace" | "atttypid" | "typnamespace" | "conindid" | "typelem" | "typarray"
        | "typbasetype" | "typrelid" | "reltype" | "enumtypid" | "rngtypid" | "rngsubtype" => {
            types::OID
        }
        // asyncpg's type introspection names its columns so.
        "elemtype" | "basetype" | "range_subtype" => types::OID,
        "typtype" | "typdelim" | "typcategory" | "kind" | "elemdelim" => types::CHAR,
        "attrtypoids" => super::arrays::array_of(types::OID),
        "attrnames" => super::arrays::array_of(types::TEXT),
        "indisunique"
        | "indisprimary"
        | "indisvalid"
        | "indisready"
        | "indislive"
        | "indisclustered"
        | "indnullsnotdistinct"
        | "indimmediate"
        | "attnotnull"
        | "atthasdef"
        | "attisdropped"
        | "condeferrable"
        | "condeferred"
        | "convalidated"
        | "relhasindex"
        | "relispartition"
        | "has_constraint"
        | "is_expr"
        | "hasindexes"
        | "hasrules"
        | "hastriggers"
        | "rowsecurity" => types::BOOL,
        "attname" | "relname" | "conname" | "typname" | "nspname" | "relkind" | "contype"
        | "attidentity" | "attgenerated" | "confupdtype" | "confdeltype" | "confmatchtype"
        | "description" | "enumlabel" | "schemaname" | "tablename" | "tableowner" | "viewname"
        | "viewowner" | "indexname" | "indexdef" | "definition" => types::TEXT,
        _ => return None,
    })
}

/// The PostgreSQL type (and numeric scale) of each result column with a
/// [`super::infer::Source`]: `max`/`min`/`coalesce` keep the column's, `sum` widens
/// integers as PostgreSQL does (int2/int4 → int8, int8 → numeric).
pub fn source_types(
    conn: &Connection,
    sources: &[Option<super::infer::Source>],
    tables: &[String],
) -> Vec<Option<(u32, Option<usize>)>> {
    sources
        .iter()
        .map(|s| {
            let s = s.as_ref()?;
            if s.func.is_empty() {
                // A catalog view's column: by name (its declared type, if any, is SQLite's
                // guess from the expression behind it).
                return catalog_column(&s.column).map(|o| (o, None));
            }
            // A catalog view's column by name first: SQLite's declared type for it is a
            // guess from the expression behind it.
            let in_catalog = s
                .table
                .as_deref()
                .or(tables.first().map(String::as_str))
                .is_some_and(is_catalog);
            let (oid, scale) = in_catalog
                .then(|| catalog_column(&s.column).map(|o| (o, None)))
                .flatten()
                .or_else(|| column_decl(conn, s.table.as_deref(), &s.column, tables))
                .or_else(|| catalog_column(&s.column).map(|o| (o, None)))?;
            match (s.func.as_str(), oid) {
                ("array_agg", _) => Some((super::arrays::array_of(oid), None)),
                ("||", o) if super::arrays::element_of(o).is_some() => Some((o, None)),
                ("||", _) => None,
                ("unnest", o) => super::arrays::element_of(o).map(|e| (e, None)),
                ("sum", types::INT2 | types::INT4) => Some((types::INT8, None)),
                ("sum", types::INT8) => Some((types::NUMERIC, None)),
                ("sum", types::NUMERIC | types::FLOAT4 | types::FLOAT8) => Some((oid, scale)),
                ("sum", _) => None,
                // Date and time arithmetic: a date plus an interval is a timestamp.
                ("interval", types::DATE) => Some((types::TIMESTAMP, None)),
                ("interval", types::TIMESTAMP | types::TIMESTAMPTZ) => Some((oid, None)),
                ("days", types::DATE) => Some((oid, None)),
                ("interval" | "days", _) => None,
                ("date_trunc", types::DATE) => Some((types::TIMESTAMPTZ, None)),
                ("at time zone", types::TIMESTAMPTZ) => Some((types::TIMESTAMP, None)),
                ("at time zone", _) => Some((types::TIMESTAMPTZ, None)),
                ("date_trunc", _) => Some((oid, None)),
                _ => Some((oid, scale)),
            }
        })
        .collect()
}
