//! Statements the proxy answers itself, sent through the extended protocol: `DEALLOCATE`
//! from a client whose statements live on the server under proxy names (a client that is
//! not pinned; the server does not know the client's names), and `LISTEN`/`UNLISTEN`
//! served by the proxy's listening connections, as the unnamed statement or under a name
//! (asyncpg prepares every statement it runs). The proxy answers their
//! Parse/Bind/Describe/Execute/Close itself and makes the change, as it does for the
//! simple protocol.

use bytes::Bytes;

use super::expect::{Synth, Undo};
use super::sqlscan::{Classified, ListenOp, Special};
use super::{FastMap, Relay};
use crate::protocol::build::{self, ErrorFields};
use crate::protocol::{be, sqlstate};

/// The client's statements and portals the proxy answers, by name.
#[derive(Debug, Default)]
pub struct Emulated {
    stmts: FastMap<Bytes, Emulation>,
    portals: FastMap<Bytes, Emulation>,
}

impl Emulated {
    /// A simple Query or a new unnamed Parse replaces the unnamed statement and portal.
    pub fn forget_unnamed(&mut self) {
        if !self.stmts.is_empty() || !self.portals.is_empty() {
            self.stmts.remove(&b""[..]);
            self.portals.remove(&b""[..]);
        }
    }

    /// `DEALLOCATE name` (or ALL: None); true when `name` was one of these (then that
    /// is all there is to do).
    pub fn forget(&mut self, name: Option<&str>) -> bool {
        match name {
            None => {
                self.stmts.clear();
                false
            }
            Some(n) => !self.stmts.is_empty() && self.stmts.remove(n.as_bytes()).is_some(),
        }
    }

    pub fn has_statement(&self, name: &[u8]) -> bool {
        !self.stmts.is_empty() && self.stmts.contains_key(name)
    }
}

#[derive(Debug, Clone)]
enum Emulation {
    /// `DEALLOCATE name`, or `DEALLOCATE ALL` (None).
    Deallocate(Option<String>),
    Listen(ListenOp),
}

impl Relay {
    /// Parse of statement `name`: true when the proxy answers it (then nothing goes to
    /// the server).
    pub(super) fn emulate_parse(&mut self, name: &[u8], class: &Classified) -> bool {
        let what = match (&class.special, self.hub_listen(class)) {
            (_, Some(op)) => Emulation::Listen(op),
            (Special::Deallocate(n), _) if !self.pin.is_pinned() && name.is_empty() => {
                Emulation::Deallocate(n.clone())
            }
            _ => return false,
        };
        self.local_changes += 1;
        self.emulated
            .stmts
            .insert(Bytes::copy_from_slice(name), what);
        self.synth(Synth::Empty(be::PARSE_COMPLETE), Undo::default());
        true
    }

    pub(super) fn emulate_bind(&mut self, statement: &[u8], portal: &[u8]) -> bool {
        let e = &mut self.emulated;
        if e.stmts.is_empty() && e.portals.is_empty() {
            return false;
        }
        let Some(what) = e.stmts.get(statement).cloned() else {
            e.portals.remove(portal);
            return false;
        };
        e.portals.insert(Bytes::copy_from_slice(portal), what);
        self.synth(Synth::Empty(be::BIND_COMPLETE), Undo::default());
        true
    }

    pub(super) fn emulate_describe(&mut self, kind: u8, name: &[u8]) -> bool {
        let e = &self.emulated;
        match kind {
            b'S' if e.has_statement(name) => {
                // No parameters, no rows.
                self.synth_msgs(|b| {
                    build::message(b, be::PARAMETER_DESCRIPTION, |m| {
                        m.extend_from_slice(&[0, 0])
                    })
                });
                self.synth(Synth::Empty(be::NO_DATA), Undo::default());
            }
            b'P' if !e.portals.is_empty() && e.portals.contains_key(name) => {
                self.synth(Synth::Empty(be::NO_DATA), Undo::default())
            }
            _ => return false,
        }
        true
    }

    /// Close of an emulated statement or portal: answered by the proxy.
    pub(super) fn emulate_close(&mut self, kind: u8, name: &[u8]) -> bool {
        let e = &mut self.emulated;
        let map = if kind == b'S' {
            &mut e.stmts
        } else {
            &mut e.portals
        };
        if map.is_empty() || map.remove(name).is_none() {
            return false;
        }
        self.synth(Synth::Empty(be::CLOSE_COMPLETE), Undo::default());
        true
    }

    pub(super) fn emulate_execute(&mut self, portal: &[u8]) -> bool {
        let e = &self.emulated;
        if e.portals.is_empty() {
            return false;
        }
        let Some(what) = e.portals.get(portal).cloned() else {
            return false;
        };
        self.local_changes += 1;
        let name = match what {
            Emulation::Listen(op) => {
                self.synth_msgs(|b| build::command_complete(b, op.tag()));
                self.listen(op);
                return true;
            }
            Emulation::Deallocate(name) => name,
        };
        match name {
            None => {
                self.stmts.clear();
                self.synth_msgs(|b| build::command_complete(b, "DEALLOCATE ALL"));
            }
            Some(n) if self.stmts.remove(n.as_bytes()).is_some() => {
                self.synth_msgs(|b| build::command_complete(b, "DEALLOCATE"));
            }
            Some(n) => self.extended_error(&ErrorFields::error(
                sqlstate::INVALID_SQL_STATEMENT_NAME,
                format!("prepared statement \"{n}\" does not exist"),
            )),
        }
        true
    }
}
