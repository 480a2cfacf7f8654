//! The extended query protocol on SQLite: Parse translates and prepares (so errors come
//! at Parse time, as in PostgreSQL), Describe answers from the prepared statement without
//! executing it, Bind decodes parameters by type and format, Execute runs the portal.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use rusqlite::types::Value;

use super::catalog;
use super::error::{PgError, from_sqlite};
use super::exec::{self, Column, Output};
use super::infer::ParamHint;
use super::session::Session;
use super::translate::{CursorOp, Kind, Translated, translate_with};
use super::types;
use crate::protocol::parse::{self, Malformed};
use crate::protocol::{be, build};

/// A prepared statement.
#[derive(Debug)]
pub struct Prepared {
    /// None for an empty query.
    pub t: Option<Translated>,
    pub param_types: Vec<u32>,
    pub columns: Vec<Column>,
}

/// A bound portal.
#[derive(Debug)]
pub struct Portal {
    pub stmt: Arc<Prepared>,
    pub params: Vec<Value>,
    pub formats: Vec<i16>,
}

fn bad(m: Malformed) -> PgError {
    PgError::new(crate::protocol::sqlstate::PROTOCOL_VIOLATION, m.to_string())
}

fn read_i16(b: &[u8], at: &mut usize) -> Result<i16, PgError> {
    let v = b.get(*at..*at + 2).ok_or_else(|| {
        bad(Malformed {
            what: "Bind",
            problem: "truncated",
        })
    })?;
    *at += 2;
    Ok(i16::from_be_bytes([v[0], v[1]]))
}

fn read_i32(b: &[u8], at: &mut usize) -> Result<i32, PgError> {
    let v = b.get(*at..*at + 4).ok_or_else(|| {
        bad(Malformed {
            what: "Bind",
            problem: "truncated",
        })
    })?;
    *at += 4;
    Ok(i32::from_be_bytes([v[0], v[1], v[2], v[3]]))
}

impl Session {
    /// Parse: translate, prepare on SQLite, and settle parameter and result types.
    pub fn parse(&mut self, body: &[u8], out: &mut BytesMut) -> Result<(), PgError> {
        let p = parse::parse_msg(body).map_err(bad)?;
        let sql = std::str::from_utf8(p.query)
            .map_err(|_| PgError::new("22021", "query is not valid UTF-8"))?;
        self.prepare(&p, sql, out)
            .map_err(|e| super::positions::locate(e, sql))
    }

    fn prepare(
        &mut self,
        p: &parse::ParseMsg<'_>,
        sql: &str,
        out: &mut BytesMut,
    ) -> Result<(), PgError> {
        let declared: Vec<u32> = p.rest[p.query.len() + 3..]
            .chunks(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let (conn, cache) = (&self.conn, &self.origins);
        cache.check(conn);
        let schema = |t: &str| cache.columns(conn, t);
        let mut stmts = translate_with(sql, &schema)?;
        if stmts.len() > 1 {
            return Err(PgError::new(
                "42601",
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        let t = stmts.pop();
        let (param_types, columns) = match &t {
            Some(t) if !t.sql.is_empty() => {
                let stmt = self
                    .conn
                    .prepare_cached(&t.sql)
                    .map_err(|e| from_sqlite(&e))?;
                let n = stmt.parameter_count().max(t.params);
                let conn = &self.conn;
                let overrides = |table: &str, col: &str| catalog::override_type(conn, table, col);
                self.origins.check(conn);
                let table = matches!(t.kind, Kind::Insert | Kind::Update | Kind::Delete)
                    .then(|| t.tables.first().map(String::as_str))
                    .flatten();
                let typed = catalog::result_types(conn, t);
                let cols = exec::describe(
                    &stmt,
                    &t.hints,
                    &typed,
                    &overrides,
                    &|t: &str, c: &str| self.origins.get(&self.conn, t, c),
                    table,
                );
                drop(stmt);
                (self.param_types(t, &declared, n), cols)
            }
            Some(Translated {
                kind: Kind::Cursor(CursorOp::Fetch { name, .. }),
                ..
            }) => {
                // A FETCH returns its cursor's columns.
                let cols = self.cursors.get(name).map(|c| c.columns.clone());
                (declared.clone(), cols.unwrap_or_default())
            }
            _ => (declared.clone(), Vec::new()),
        };
        let name = String::from_utf8_lossy(p.name).into_owned();
        self.stmts.insert(
            name,
            Arc::new(Prepared {
                t,
                param_types,
                columns,
            }),
        );
        build::empty(out, be::PARSE_COMPLETE);
        Ok(())
    }

    /// Declared parameter types, and inferred ones where the client left them unspecified.
    fn param_types(&self, t: &Translated, declared: &[u32], n: usize) -> Vec<u32> {
        (1..=n)
            .map(|i| match declared.get(i - 1).copied().filter(|&o| o != 0) {
                Some(o) => o,
                None => t
                    .param_hints
                    .iter()
                    .find(|(k, _)| *k == i)
                    .and_then(|(_, h)| match h {
                        ParamHint::Fixed(o) => Some(*o),
                        ParamHint::Column { table, column } => {
                            catalog::column_type(&self.conn, table.as_deref(), column, &t.tables)
                        }
                        ParamHint::ElementOf { table, column } => {
                            catalog::column_type(&self.conn, table.as_deref(), column, &t.tables)
                                .and_then(super::arrays::element_of)
                        }
                        ParamHint::ArrayOf { table, column } => {
                            catalog::column_type(&self.conn, table.as_deref(), column, &t.tables)
                                .map(super::arrays::array_of)
                        }
                    })
                    .unwrap_or(types::TEXT),
            })
            .collect()
    }

    /// Bind: decode parameters into SQLite values.
    pub fn bind(&mut self, body: &[u8], out: &mut BytesMut) -> Result<(), PgError> {
        let b = parse::bind_msg(body).map_err(bad)?;
        let stmt = self
            .stmts
            .get(&*String::from_utf8_lossy(b.statement))
            .cloned()
            .ok_or_else(|| {
                PgError::new(
                    "26000",
                    format!(
                        "prepared statement \"{}\" does not exist",
                        String::from_utf8_lossy(b.statement)
                    ),
                )
            })?;
        let r = b.rest;
        let mut at = 0;
        let nfmt = read_i16(r, &mut at)?.max(0) as usize;
        let fmts: Vec<i16> = (0..nfmt)
            .map(|_| read_i16(r, &mut at))
            .collect::<Result<_, _>>()?;
        let nparams = read_i16(r, &mut at)?.max(0) as usize;
        let mut params = Vec::with_capacity(nparams);
        for i in 0..nparams {
            let len = read_i32(r, &mut at)?;
            if len < 0 {
                params.push(Value::Null);
                continue;
            }
            let bytes = r.get(at..at + len as usize).ok_or_else(|| {
                bad(Malformed {
                    what: "Bind",
                    problem: "truncated parameter",
                })
            })?;
            at += len as usize;
            let oid = stmt.param_types.get(i).copied().unwrap_or(types::TEXT);
            let v = if exec::format_of(&fmts, i) == 1 {
                types::param_from_binary(bytes, oid).map_err(|m| PgError::new("22P03", m))?
            } else {
                let s = std::str::from_utf8(bytes)
                    .map_err(|_| PgError::new("22021", "parameter is not valid UTF-8"))?;
                types::param_from_text(s, oid)
            };
            params.push(v);
        }
        let nres = read_i16(r, &mut at)?.max(0) as usize;
        let formats: Vec<i16> = (0..nres)
            .map(|_| read_i16(r, &mut at))
            .collect::<Result<_, _>>()?;
        self.portals.insert(
            String::from_utf8_lossy(b.portal).into_owned(),
            Portal {
                stmt,
                params,
                formats,
            },
        );
        build::empty(out, be::BIND_COMPLETE);
        Ok(())
    }

    /// Describe a statement (parameter types and columns) or a portal (columns).
    pub fn describe(&mut self, body: &[u8], out: &mut BytesMut) -> Result<(), PgError> {
        let t = parse::target_msg(body, "Describe").map_err(bad)?;
        let name = String::from_utf8_lossy(t.name).into_owned();
        let (stmt, formats) = if t.kind == b'S' {
            let s = self.stmts.get(&name).cloned().ok_or_else(|| {
                PgError::new(
                    "26000",
                    format!("prepared statement \"{name}\" does not exist"),
                )
            })?;
            build::message(out, be::PARAMETER_DESCRIPTION, |b| {
                b.put_i16(s.param_types.len() as i16);
                for o in &s.param_types {
                    b.put_u32(*o);
                }
            });
            (s, Vec::new())
        } else {
            if !self.portals.contains_key(&name)
                && let Some(c) = self.cursors.get(&name)
            {
                // A DECLAREd cursor is also a portal of its name (psycopg fetches so).
                exec::row_description(out, &c.columns, &[]);
                return Ok(());
            }
            let p = self.portals.get(&name).ok_or_else(|| {
                PgError::new("34000", format!("portal \"{name}\" does not exist"))
            })?;
            (p.stmt.clone(), p.formats.clone())
        };
        if stmt.columns.is_empty()
            && !matches!(stmt.t.as_ref().map(|t| &t.kind), Some(Kind::Show(_)))
        {
            build::empty(out, be::NO_DATA);
        } else {
            let cols = self.columns_of(&stmt);
            exec::row_description(out, &cols, &formats);
        }
        Ok(())
    }

    fn columns_of(&self, stmt: &Prepared) -> Vec<Column> {
        match stmt.t.as_ref().map(|t| &t.kind) {
            Some(Kind::Show(name)) => vec![Column::new(name.clone(), types::TEXT)],
            _ => stmt.columns.clone(),
        }
    }

    /// Execute a portal (all rows; a row limit is answered with every row at once).
    pub fn execute_portal(&mut self, body: &[u8], out: &mut BytesMut) -> Result<(), PgError> {
        let (name, rest) = parse::cstr(body, "Execute").map_err(bad)?;
        let name = String::from_utf8_lossy(name).into_owned();
        if !self.portals.contains_key(&name) && self.cursors.contains_key(&name) {
            let max = rest
                .get(..4)
                .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            return self.fetch_portal(&name, max.unwrap_or(0), out);
        }
        let portal = self
            .portals
            .get(&name)
            .ok_or_else(|| PgError::new("34000", format!("portal \"{name}\" does not exist")))?;
        let stmt = portal.stmt.clone();
        let params = portal.params.clone();
        let formats = portal.formats.clone();
        let Some(t) = stmt.t.as_ref() else {
            build::empty(out, be::EMPTY_QUERY);
            return Ok(());
        };
        let cols = (!stmt.columns.is_empty()).then(|| stmt.columns.clone());
        let o = Output {
            out,
            describe: false,
            formats: &formats,
            columns: cols.as_deref(),
            hints: &t.hints,
            typed: &[],
            zone: &None,
            origins: &|_, _| None,
        };
        self.execute(t, &params, o)
    }

    /// Close a statement or portal.
    pub fn close(&mut self, body: &[u8], out: &mut BytesMut) -> Result<(), PgError> {
        let t = parse::target_msg(body, "Close").map_err(bad)?;
        let name = String::from_utf8_lossy(t.name).into_owned();
        if t.kind == b'S' {
            self.stmts.remove(&name);
        } else {
            self.portals.remove(&name);
        }
        build::empty(out, be::CLOSE_COMPLETE);
        Ok(())
    }
}
