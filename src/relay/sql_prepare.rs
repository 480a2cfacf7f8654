//! SQL `PREPARE name [(types)] AS statement` and `EXECUTE name [(args)]`, sent alone by a
//! client that is not pinned, on a backend that keeps sessions: handled like protocol
//! statements instead of pinning the client. The statement joins the client's list under
//! its name (the namespace PostgreSQL shares between SQL and protocol statements) and is
//! made on each server connection that runs it under a proxy name (`PREPARE syN …`), and
//! `EXECUTE` is sent with that name. So the client keeps no server connection, follows a
//! switch, and `DEALLOCATE`/`DISCARD ALL` work as for its other statements. What is not
//! exact: `pg_prepared_statements` shows the proxy's names, and a protocol Bind of a name
//! made by SQL `PREPARE` is not supported. (`EXECUTE` of a statement made by Parse works,
//! as on the server.) An `EXECUTE` of a name the client did not make is answered with
//! 26000 by the proxy: the names on the server belong to other clients.

use std::sync::Arc;

use bytes::{BufMut, Bytes};

use super::expect::{Expect, Undo, UndoParts};
use super::sqlscan::{Classified, Special};
use super::statements::StmtDef;
use super::{Relay, Step};
use crate::backend::conn::ServerConn;
use crate::config::PoolerMode;
use crate::protocol::build::{self, ErrorFields};
use crate::protocol::{TxStatus, fe, sqlstate};

impl Relay {
    /// A simple Query that is SQL `PREPARE` or `EXECUTE` of a SQL-made statement, when
    /// the proxy handles it: the step. None to handle the query as any other.
    pub(super) fn sql_prepared(
        &mut self,
        text: &[u8],
        class: &Classified,
        server: Option<&mut ServerConn>,
    ) -> Option<Step> {
        if self.pin.is_pinned() || self.pooler != PoolerMode::None {
            return None;
        }
        match &class.special {
            Special::SqlPrepare { name, rest } => Some(self.sql_prepare(name, rest, server)),
            Special::SqlExecute { name, at } => {
                let Some(def) = self.stmts.get(name.as_bytes()).cloned() else {
                    // Not the client's: the names on the server are other clients'.
                    self.query_error(&ErrorFields::error(
                        sqlstate::INVALID_SQL_STATEMENT_NAME,
                        format!("prepared statement \"{name}\" does not exist"),
                    ));
                    return Some(Step::Done);
                };
                Some(self.sql_execute(text, name, &def, *at, server))
            }
            _ => None,
        }
    }

    fn sql_prepare(&mut self, name: &str, rest: &str, server: Option<&mut ServerConn>) -> Step {
        if self.stmts.contains(name.as_bytes()) {
            self.query_error(&ErrorFields::error(
                sqlstate::DUPLICATE_PREPARED_STATEMENT,
                format!("prepared statement \"{name}\" already exists"),
            ));
            return Step::Done;
        }
        let Some(server) = server else {
            return Step::NeedServer;
        };
        let def = self.stmts.define_sql(rest);
        self.stmts.insert(name.as_bytes(), def.clone());
        self.simple_query_sent(server);
        if server.statements.lookup(&def.body).is_some() {
            // Made here before (by this client or another): the server would accept it.
            if self.status == TxStatus::Failed {
                self.stmts.remove(name.as_bytes());
                self.query_error(&ErrorFields::error(
                    sqlstate::IN_FAILED_TRANSACTION,
                    "current transaction is aborted, commands ignored until end of transaction block",
                ));
            } else {
                self.query_done("PREPARE");
            }
            return Step::Done;
        }
        let sname = self.sql_on_server(server, &def);
        let sql = format!("PREPARE {} {rest}", String::from_utf8_lossy(&sname));
        build::query(&mut self.server_out, &sql);
        self.queue.push(Expect::Query {
            forward: true,
            effects: Vec::new(),
            undo: Undo::new(UndoParts {
                client_added: Some((Bytes::copy_from_slice(name.as_bytes()), def.id)),
                server_added: Some(def.body.clone()),
                ..Default::default()
            }),
        });
        Step::Done
    }

    fn sql_execute(
        &mut self,
        text: &[u8],
        name: &str,
        def: &Arc<StmtDef>,
        at: (usize, usize),
        server: Option<&mut ServerConn>,
    ) -> Step {
        let Some(server) = server else {
            return Step::NeedServer;
        };
        self.simple_query_sent(server);
        let sname = match server.statements.lookup(&def.body) {
            Some(n) => n.clone(),
            // Made by Parse: made on this server the same way.
            None if def.sql_rest().is_none() => self
                .ensure_statement(server, name.as_bytes())
                .unwrap_or_default(),
            None => {
                let n = self.sql_on_server(server, def);
                let rest = def.sql_rest().unwrap_or_default();
                let sql = format!("PREPARE {} {rest}", String::from_utf8_lossy(&n));
                build::query(&mut self.server_out, &sql);
                self.queue.push(Expect::Query {
                    forward: false,
                    effects: Vec::new(),
                    undo: Undo::new(UndoParts {
                        server_added: Some(def.body.clone()),
                        ..Default::default()
                    }),
                });
                n
            }
        };
        build::message(&mut self.server_out, fe::QUERY, |b| {
            b.extend_from_slice(&text[..at.0]);
            b.extend_from_slice(&sname);
            b.extend_from_slice(&text[at.1..]);
            b.put_u8(0);
        });
        self.queue.push(Expect::Query {
            forward: true,
            effects: Vec::new(),
            undo: Undo::default(),
        });
        Step::Done
    }

    /// Reserves a proxy name on `server` for a SQL-made statement, dropping an evicted one.
    fn sql_on_server(&mut self, server: &mut ServerConn, def: &StmtDef) -> Bytes {
        let (name, evicted) = server.statements.add(def.body.clone());
        if let Some(old) = evicted {
            let sql = format!("DEALLOCATE {}", String::from_utf8_lossy(&old));
            self.own_request(|b| build::query(b, &sql));
        }
        name
    }

    /// A simple Query goes to the server: it replaces the unnamed statement there.
    fn simple_query_sent(&mut self, server: &mut ServerConn) {
        self.stmts.forget_unnamed();
        server.statements.unnamed = None;
        self.queries += 1;
    }
}
