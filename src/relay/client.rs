//! Client → server: each frontend message is forwarded, rewritten (statement names) or
//! answered by the proxy, and what the server will answer is queued.

use std::sync::Arc;

use bytes::Bytes;

use super::expect::{Expect, Synth, Undo, UndoParts};
use super::sqlscan::{self, Kept, Special};
use super::statements::StmtDef;
use super::{Relay, RelayError, Step};
use crate::backend::conn::ServerConn;
use crate::config::PoolerMode;
use crate::protocol::build::{self, ErrorFields};
use crate::protocol::{TxStatus, be, fe, parse, sqlstate};

impl Relay {
    /// Handles one complete client message (`msg` includes the 5-byte header).
    /// Returns [`Step::NeedServer`] without side effects when a server is needed and none given.
    pub fn on_client(
        &mut self,
        tag: u8,
        msg: &[u8],
        server: Option<&mut ServerConn>,
    ) -> Result<Step, RelayError> {
        let body = &msg[5..];
        tracing::trace!(tag = %(tag as char), len = msg.len(), held = server.is_some(), queue = self.queue.len(), "client message");
        if self.skip_to_sync && tag != fe::SYNC && tag != fe::TERMINATE {
            return Ok(Step::Done);
        }
        if self.lost_tx
            && matches!(
                tag,
                fe::QUERY
                    | fe::PARSE
                    | fe::BIND
                    | fe::DESCRIBE
                    | fe::EXECUTE
                    | fe::CLOSE
                    | fe::FUNCTION_CALL
            )
        {
            self.lost_tx_message(tag, body)?;
            return Ok(Step::Done);
        }
        let step = match tag {
            fe::QUERY => self.on_query(msg, server)?,
            fe::PARSE => self.on_parse(msg, server)?,
            fe::BIND => self.on_bind(msg, server)?,
            fe::DESCRIBE => self.on_describe(msg, server)?,
            fe::EXECUTE => {
                let (portal, _) = parse::cstr(body, "Execute")?;
                if self.emulate_execute(portal) {
                    return Ok(Step::Done);
                }
                let Some(_) = server else {
                    return Ok(Step::NeedServer);
                };
                let effect = self.portal_effects.get(portal).cloned().map(Box::new);
                self.forward(msg, Expect::Execute { effect });
                self.unsynced = true;
                self.queries += 1;
                Step::Done
            }
            fe::CLOSE => self.on_close(msg, server)?,
            fe::SYNC => self.on_sync(msg, server),
            fe::FLUSH => {
                if server.is_some() {
                    self.server_out.extend_from_slice(msg);
                }
                Step::Done
            }
            fe::FUNCTION_CALL => {
                let Some(_) = server else {
                    return Ok(Step::NeedServer);
                };
                self.forward(
                    msg,
                    Expect::Query {
                        forward: true,
                        effects: Vec::new(),
                        undo: Undo::default(),
                    },
                );
                Step::Done
            }
            fe::COPY_DATA | fe::COPY_DONE | fe::COPY_FAIL => {
                if server.is_some() {
                    self.server_out.extend_from_slice(msg);
                    if tag != fe::COPY_DATA {
                        self.queue.push(Expect::CopyEnd);
                    }
                }
                Step::Done
            }
            fe::TERMINATE => Step::Terminate,
            other => return Err(RelayError::UnknownMessage(other as char)),
        };
        self.emit_ready();
        Ok(step)
    }

    /// The error for a statement whose session state cannot be kept for this client.
    fn refusal(&self, kept: Kept) -> Option<ErrorFields> {
        if self.pin.can_keep() {
            return None;
        }
        let (what, hint) = kept.refusal()?;
        let hint = match &self.pin {
            crate::relay::pin::Pin::Open(budget) => format!(
                "{hint}; or raise the backend's max_pinned (all {} clients that may keep a session of their own are connected)",
                budget.max()
            ),
            _ => hint.to_string(),
        };
        Some(ErrorFields::error(sqlstate::FEATURE_NOT_SUPPORTED, what).with_hint(hint))
    }

    fn forward(&mut self, msg: &[u8], expect: Expect) {
        self.server_out.extend_from_slice(msg);
        self.queue.push(expect);
    }

    fn on_query(
        &mut self,
        msg: &[u8],
        server: Option<&mut ServerConn>,
    ) -> Result<Step, RelayError> {
        let text = parse::query_text(&msg[5..])?;
        let class = sqlscan::classify(text);
        self.emulated.forget_unnamed();
        if let Some(op) = self.hub_listen(&class) {
            self.query_done(op.tag());
            self.listen(op);
            return Ok(Step::Done);
        }
        let mut server = server;
        if let Some(step) = self.sql_prepared(text, &class, server.as_deref_mut()) {
            return Ok(step);
        }
        if let Some(err) = class.kept.and_then(|k| self.refusal(k)) {
            self.query_error(&err);
            return Ok(Step::Done);
        }
        let pinned = self.pin.is_pinned();
        if matches!(class.special, Special::DiscardAll) && self.status == TxStatus::Idle {
            self.listens.push(sqlscan::ListenOp::UnlistenAll);
            self.emulated = Default::default();
        }
        match class.special {
            Special::DiscardAll if self.status == TxStatus::Idle && !pinned => {
                self.local_changes += 1;
                self.stmts.clear();
                self.params.reset_all();
                self.query_done("DISCARD ALL");
                return Ok(Step::Done);
            }
            Special::Deallocate(name) if !pinned => {
                self.deallocate(name);
                return Ok(Step::Done);
            }
            _ => {}
        }
        let Some(server) = server else {
            return Ok(Step::NeedServer);
        };
        if class.kept.is_some() {
            self.keep_state(server);
        }
        self.notified |= class.notifies;
        self.notified_tx |= class.notifies;
        if pinned {
            // The statements are the server's own: it deallocates them itself.
            self.forget_deallocated(&class.special);
        }
        self.forward(
            msg,
            Expect::Query {
                forward: true,
                effects: class.effects,
                undo: Undo::default(),
            },
        );
        self.stmts.forget_unnamed();
        server.statements.unnamed = None;
        self.queries += 1;
        Ok(Step::Done)
    }

    /// A proxy-answered simple query: CommandComplete and ReadyForQuery.
    pub(super) fn query_done(&mut self, tag: &str) {
        self.synth_msgs(|b| build::command_complete(b, tag));
        self.synth(Synth::ReadyForQuery, Undo::default());
    }

    /// A pinned client's `DEALLOCATE` or `DISCARD ALL` goes to the server; the list of
    /// its statements follows (before the answer: a failed one changes nothing a pinned
    /// client relies on, since its statements are looked up on the server by name).
    fn forget_deallocated(&mut self, special: &Special) {
        match special {
            Special::DiscardAll | Special::Deallocate(None) => self.stmts.clear(),
            Special::Deallocate(Some(name)) => {
                self.stmts.remove(name.as_bytes());
            }
            _ => {}
        }
    }

    fn deallocate(&mut self, name: Option<String>) {
        self.local_changes += 1;
        if self.emulated.forget(name.as_deref()) {
            self.query_done("DEALLOCATE");
            return;
        }
        match name {
            None => {
                self.stmts.clear();
                self.query_done("DEALLOCATE ALL");
            }
            Some(n) => {
                if self.stmts.remove(n.as_bytes()).is_some() {
                    self.query_done("DEALLOCATE");
                } else {
                    let err = ErrorFields::error(
                        sqlstate::INVALID_SQL_STATEMENT_NAME,
                        format!("prepared statement \"{n}\" does not exist"),
                    );
                    self.query_error(&err);
                }
            }
        }
    }

    /// Parse of the unnamed statement: forwarded as is. A body equal to the previous one
    /// skips the classifier (the same text was neither refused nor different then).
    fn on_parse_unnamed(
        &mut self,
        msg: &[u8],
        p: &parse::ParseMsg,
        server: Option<&mut ServerConn>,
    ) -> Step {
        self.emulated.forget_unnamed();
        let class = if self.stmts.repeats_unnamed(p.rest) {
            None
        } else {
            let class = sqlscan::classify(p.query);
            if self.emulate_parse(b"", &class) {
                return Step::Done;
            }
            if let Some(err) = class.kept.and_then(|k| self.refusal(k)) {
                self.extended_error(&err);
                return Step::Done;
            }
            Some(class)
        };
        let Some(server) = server else {
            return Step::NeedServer;
        };
        if class
            .as_ref()
            .is_some_and(|c| matches!(c.special, Special::DiscardAll))
            && !self.pin.is_pinned()
        {
            // Through the extended protocol DISCARD ALL goes to the server, which drops
            // every statement (the ones cached under proxy names too): the proxy's view
            // of the server and of the client follows.
            server.statements.take_all();
            server.applied.clear();
            self.stmts.clear();
            self.local_changes += 1;
            self.listens.push(sqlscan::ListenOp::UnlistenAll);
        }
        let id = match class {
            None => self.stmts.renew_unnamed(),
            Some(class) => {
                self.notified |= class.notifies;
                self.notified_tx |= class.notifies;
                if self.pin.is_pinned() {
                    self.forget_deallocated(&class.special);
                }
                self.stmts.set_unnamed(p.rest, &class)
            }
        };
        self.unsynced = true;
        server.statements.unnamed = Some(id);
        self.forward(
            msg,
            Expect::Parse {
                forward: true,
                undo: Undo::default(),
            },
        );
        Step::Done
    }

    fn on_parse(
        &mut self,
        msg: &[u8],
        server: Option<&mut ServerConn>,
    ) -> Result<Step, RelayError> {
        let p = parse::parse_msg(&msg[5..])?;
        if p.name.is_empty() {
            return Ok(self.on_parse_unnamed(msg, &p, server));
        }
        let class = sqlscan::classify(p.query);
        if (!self.pin.is_pinned() && self.stmts.contains(p.name))
            || self.emulated.has_statement(p.name)
        {
            let err = ErrorFields::error(
                sqlstate::DUPLICATE_PREPARED_STATEMENT,
                format!(
                    "prepared statement \"{}\" already exists",
                    String::from_utf8_lossy(p.name)
                ),
            );
            self.extended_error(&err);
            return Ok(Step::Done);
        }
        if self.emulate_parse(p.name, &class) {
            return Ok(Step::Done);
        }
        if let Some(err) = class.kept.and_then(|k| self.refusal(k)) {
            self.extended_error(&err);
            return Ok(Step::Done);
        }
        let Some(server) = server else {
            return Ok(Step::NeedServer);
        };
        self.unsynced = true;
        let pinned = self.pooler != PoolerMode::Transaction && self.pin_for_statement(server);
        if !pinned {
            self.drop_stale_statements(server);
        }
        let def = self.stmts.define(p.rest, &class);
        self.stmts.insert(p.name, def.clone());
        let client_added = Some((Bytes::copy_from_slice(p.name), def.id));
        if pinned {
            // Under its own name, as the client made it.
            let undo = Undo::new(UndoParts {
                client_added,
                ..Default::default()
            });
            self.forward(
                msg,
                Expect::Parse {
                    forward: true,
                    undo,
                },
            );
        } else if self.pooler == PoolerMode::Transaction {
            server.statements.unnamed = Some(def.id);
            build::parse(&mut self.server_out, b"", p.rest);
            let undo = Undo::new(UndoParts {
                client_added,
                ..Default::default()
            });
            self.queue.push(Expect::Parse {
                forward: true,
                undo,
            });
        } else if server.statements.lookup(&def.body).is_some() {
            let undo = Undo::new(UndoParts {
                client_added,
                ..Default::default()
            });
            self.queue.push(Expect::Synthetic {
                synth: Synth::Empty(be::PARSE_COMPLETE),
                undo,
            });
        } else {
            let name = self.prepare_on_server(server, &def);
            build::parse(&mut self.server_out, &name, p.rest);
            let undo = Undo::new(UndoParts {
                client_added,
                server_added: Some(def.body.clone()),
                ..Default::default()
            });
            self.queue.push(Expect::Parse {
                forward: true,
                undo,
            });
        }
        Ok(Step::Done)
    }

    /// Drops the statements cached on `server` once one of them had a stale plan (see
    /// `server.stale_plans`): each is made again when next used.
    fn drop_stale_statements(&mut self, server: &mut ServerConn) {
        if std::mem::take(&mut server.stale_plans) {
            self.close_cached(server);
        }
    }

    /// Closes every statement cached on `server` under a proxy name, and forgets them.
    pub(super) fn close_cached(&mut self, server: &mut ServerConn) {
        for name in server.statements.take_all() {
            build::close_statement(&mut self.server_out, &name);
            self.queue.push(Expect::Close { forward: false });
        }
    }

    /// Reserves a server-side name for `def` on a direct server, closing an evicted one.
    fn prepare_on_server(&mut self, server: &mut ServerConn, def: &StmtDef) -> Bytes {
        let (name, evicted) = server.statements.add(def.body.clone());
        if let Some(old) = evicted {
            build::close_statement(&mut self.server_out, &old);
            self.queue.push(Expect::Close { forward: false });
        }
        name
    }

    /// Makes sure the client's statement `name` exists on `server`; returns the name to
    /// use on the server when it differs from the client's.
    pub(super) fn ensure_statement(
        &mut self,
        server: &mut ServerConn,
        name: &[u8],
    ) -> Option<Bytes> {
        if name.is_empty() {
            let u = self.stmts.unnamed()?;
            if server.statements.unnamed != Some(u.id) {
                build::parse(&mut self.server_out, b"", &u.body);
                self.queue.push(Expect::Parse {
                    forward: false,
                    undo: Undo::default(),
                });
                server.statements.unnamed = Some(u.id);
            }
            return None;
        }
        if self.pin.is_pinned() {
            return None;
        }
        self.drop_stale_statements(server);
        let def: Arc<StmtDef> = self.stmts.get(name)?.clone();
        if self.pooler == PoolerMode::Transaction {
            if server.statements.unnamed != Some(def.id) {
                build::parse(&mut self.server_out, b"", &def.body);
                self.queue.push(Expect::Parse {
                    forward: false,
                    undo: Undo::default(),
                });
                server.statements.unnamed = Some(def.id);
            }
            return Some(Bytes::new());
        }
        if let Some(s) = server.statements.lookup(&def.body) {
            return Some(s.clone());
        }
        let sname = self.prepare_on_server(server, &def);
        build::parse(&mut self.server_out, &sname, &def.body);
        let undo = Undo::new(UndoParts {
            server_added: Some(def.body.clone()),
            ..Default::default()
        });
        self.queue.push(Expect::Parse {
            forward: false,
            undo,
        });
        Some(sname)
    }

    fn on_bind(&mut self, msg: &[u8], server: Option<&mut ServerConn>) -> Result<Step, RelayError> {
        let b = parse::bind_msg(&msg[5..])?;
        if self.emulate_bind(b.statement, b.portal) {
            return Ok(Step::Done);
        }
        let Some(server) = server else {
            return Ok(Step::NeedServer);
        };
        let (effect, kept) = self.stmts.effect_of(b.statement);
        if kept.is_some() {
            self.keep_state(server);
        }
        match effect {
            Some(e) => {
                self.portal_effects
                    .insert(Bytes::copy_from_slice(b.portal), e);
            }
            None if !self.portal_effects.is_empty() => {
                self.portal_effects.remove(b.portal);
            }
            None => {}
        }
        match self.ensure_statement(server, b.statement) {
            Some(name) => {
                let head = parse::bind_head(&msg[5..]);
                build::with_statement(&mut self.server_out, fe::BIND, head, &name, b.rest);
            }
            None => self.server_out.extend_from_slice(msg),
        }
        self.queue.push(Expect::Bind);
        self.unsynced = true;
        Ok(Step::Done)
    }

    fn on_describe(
        &mut self,
        msg: &[u8],
        server: Option<&mut ServerConn>,
    ) -> Result<Step, RelayError> {
        let t = parse::target_msg(&msg[5..], "Describe")?;
        if self.emulate_describe(t.kind, t.name) {
            return Ok(Step::Done);
        }
        let Some(server) = server else {
            return Ok(Step::NeedServer);
        };
        let rename = if t.kind == b'S' {
            self.ensure_statement(server, t.name)
        } else {
            None
        };
        match rename {
            Some(name) => {
                build::with_statement(&mut self.server_out, fe::DESCRIBE, b"S", &name, b"")
            }
            None => self.server_out.extend_from_slice(msg),
        }
        self.queue.push(Expect::Describe);
        self.unsynced = true;
        Ok(Step::Done)
    }

    fn on_close(
        &mut self,
        msg: &[u8],
        server: Option<&mut ServerConn>,
    ) -> Result<Step, RelayError> {
        let t = parse::target_msg(&msg[5..], "Close")?;
        if self.emulate_close(t.kind, t.name) {
            return Ok(Step::Done);
        }
        if t.kind == b'S' && self.pin.is_pinned() {
            // The server holds the statement under the client's name.
            if server.is_none() {
                return Ok(Step::NeedServer);
            }
            self.stmts.remove(t.name);
            self.forward(msg, Expect::Close { forward: true });
            self.unsynced = true;
            return Ok(Step::Done);
        }
        if t.kind == b'P' && server.is_some() {
            self.forward(msg, Expect::Close { forward: true });
            self.unsynced = true;
            return Ok(Step::Done);
        }
        let mut undo = UndoParts::default();
        if let Some(def) = (t.kind == b'S')
            .then(|| self.stmts.remove(t.name))
            .flatten()
        {
            undo.client_removed = Some((Bytes::copy_from_slice(t.name), def));
        }
        self.synth(Synth::Empty(be::CLOSE_COMPLETE), Undo::new(undo));
        Ok(Step::Done)
    }

    fn on_sync(&mut self, msg: &[u8], server: Option<&mut ServerConn>) -> Step {
        self.skip_to_sync = false;
        if self.lost_tx_ending {
            self.lost_tx_ending = false;
            self.lost_tx = false;
            self.status = TxStatus::Idle;
        }
        match server {
            Some(server) => {
                self.forward(msg, Expect::Sync);
                self.unsynced = false;
                if self.pooler == PoolerMode::Transaction {
                    server.statements.unnamed = None;
                }
            }
            None => self.synth(Synth::ReadyForQuery, Undo::default()),
        }
        Step::Done
    }
}
