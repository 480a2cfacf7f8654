//! Statements the proxy answers itself, sent through the extended protocol: `DEALLOCATE`
//! from a client whose statements live on the server under proxy names (a client that is
//! not pinned; the server does not know the client's names), and `LISTEN`/`UNLISTEN`
//! served by the proxy's listening connections. The proxy answers that
//! Parse/Bind/Describe/Execute itself and makes the change, as it does for the simple
//! protocol.

use bytes::Bytes;

use super::Relay;
use super::expect::{Synth, Undo};
use super::sqlscan::{Classified, ListenOp, Special};
use crate::protocol::build::{self, ErrorFields};
use crate::protocol::{be, sqlstate};

/// The client's unnamed statement is one the proxy answers.
#[derive(Debug)]
pub struct Emulated {
    what: Emulation,
    /// The portal bound to it, once bound.
    portal: Option<Bytes>,
}

#[derive(Debug, Clone)]
enum Emulation {
    /// `DEALLOCATE name`, or `DEALLOCATE ALL` (None).
    Deallocate(Option<String>),
    Listen(ListenOp),
}

impl Relay {
    /// Parse of the unnamed statement: true when the proxy answers it (then nothing goes
    /// to the server).
    pub(super) fn emulate_parse(&mut self, class: &Classified) -> bool {
        let what = match (&class.special, self.hub_listen(class)) {
            (_, Some(op)) => Emulation::Listen(op),
            (Special::Deallocate(name), _) if !self.pin.is_pinned() => {
                Emulation::Deallocate(name.clone())
            }
            _ => return false,
        };
        self.local_changes += 1;
        self.emulated = Some(Emulated { what, portal: None });
        self.synth(Synth::Empty(be::PARSE_COMPLETE), Undo::default());
        true
    }

    pub(super) fn emulate_bind(&mut self, statement: &[u8], portal: &[u8]) -> bool {
        let Some(e) = self.emulated.as_mut() else {
            return false;
        };
        if !statement.is_empty() {
            if e.portal.as_deref() == Some(portal) {
                e.portal = None;
            }
            return false;
        }
        e.portal = Some(Bytes::copy_from_slice(portal));
        self.synth(Synth::Empty(be::BIND_COMPLETE), Undo::default());
        true
    }

    pub(super) fn emulate_describe(&mut self, kind: u8, name: &[u8]) -> bool {
        let Some(e) = self.emulated.as_ref() else {
            return false;
        };
        match kind {
            b'S' if name.is_empty() => {
                // No parameters, no rows.
                self.synth_msgs(|b| {
                    build::message(b, be::PARAMETER_DESCRIPTION, |m| {
                        m.extend_from_slice(&[0, 0])
                    })
                });
                self.synth(Synth::Empty(be::NO_DATA), Undo::default());
            }
            b'P' if e.portal.as_deref() == Some(name) => {
                self.synth(Synth::Empty(be::NO_DATA), Undo::default())
            }
            _ => return false,
        }
        true
    }

    pub(super) fn emulate_execute(&mut self, portal: &[u8]) -> bool {
        let Some(e) = self.emulated.as_ref() else {
            return false;
        };
        if e.portal.as_deref() != Some(portal) {
            return false;
        }
        self.local_changes += 1;
        let name = match e.what.clone() {
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
