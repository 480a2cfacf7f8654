//! The queue of responses the relay expects from the server, in the order the server will
//! send them. Every message sent to a server pushes what it will answer; proxy-made
//! answers (synthetic entries) wait in the same queue so the client sees them in order.
//! An ErrorResponse in extended mode voids everything up to the next Sync, as it does on
//! the server.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

use super::sqlscan::Effect;
use super::statements::StmtDef;

/// What to undo when an entry is voided by an earlier error.
#[derive(Debug, Default)]
pub struct UndoParts {
    /// A client Parse that never happened: (name, id).
    pub client_added: Option<(Bytes, (u64, u64))>,
    /// A server-side statement that was never prepared: its body.
    pub server_added: Option<Bytes>,
    /// A client Close that never happened: restore the definition.
    pub client_removed: Option<(Bytes, Arc<StmtDef>)>,
}

/// Undo records, boxed so that queue entries stay small (most have none).
#[derive(Debug, Default)]
pub struct Undo(Option<Box<UndoParts>>);

impl Undo {
    pub fn new(parts: UndoParts) -> Self {
        let empty = parts.client_added.is_none()
            && parts.server_added.is_none()
            && parts.client_removed.is_none();
        Undo((!empty).then(|| Box::new(parts)))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn into_parts(self) -> Option<UndoParts> {
        self.0.map(|b| *b)
    }
}

/// A proxy-made response.
#[derive(Debug)]
pub enum Synth {
    /// A message with no body (ParseComplete, BindComplete, CloseComplete, NoData).
    Empty(u8),
    /// Prebuilt messages, written as they are.
    Bytes(Bytes),
    /// ReadyForQuery with the status current at the time it is written.
    ReadyForQuery,
}

/// One expected response.
#[derive(Debug)]
pub enum Expect {
    /// ParseComplete.
    Parse { forward: bool, undo: Undo },
    /// BindComplete.
    Bind,
    /// [ParameterDescription] then RowDescription or NoData.
    Describe,
    /// Rows, then CommandComplete / EmptyQueryResponse / PortalSuspended (or a COPY).
    Execute { effect: Option<Box<Effect>> },
    /// CloseComplete.
    Close { forward: bool },
    /// ReadyForQuery.
    Sync,
    /// A simple Query or FunctionCall: everything up to and including ReadyForQuery.
    /// `effects` apply if it completes without error; `undo` if it fails.
    Query {
        forward: bool,
        effects: Vec<Effect>,
        undo: Undo,
    },
    /// The client ended a COPY (CopyDone/CopyFail): a marker, no response of its own.
    CopyEnd,
    /// A proxy-made response, written when it reaches the head.
    Synthetic { synth: Synth, undo: Undo },
}

impl Expect {
    fn ends_batch(&self) -> bool {
        matches!(self, Expect::Sync)
    }

    /// True for entries that answer with ReadyForQuery.
    pub fn awaits_ready(&self) -> bool {
        matches!(self, Expect::Sync | Expect::Query { .. })
    }
}

/// The queue itself.
#[derive(Debug, Default)]
pub struct ExpectQueue {
    q: VecDeque<Expect>,
    /// Syncs sent after an Execute that started COPY FROM STDIN are ignored by the server
    /// until the client ends the COPY; while true, they are not queued.
    pub swallow_syncs: bool,
}

impl ExpectQueue {
    pub fn push(&mut self, e: Expect) {
        if self.swallow_syncs {
            match e {
                Expect::Sync => return,
                Expect::CopyEnd => self.swallow_syncs = false,
                _ => {}
            }
        }
        if matches!(e, Expect::CopyEnd) && self.q.is_empty() {
            return;
        }
        self.q.push_back(e);
    }

    pub fn head(&self) -> Option<&Expect> {
        self.q.front()
    }

    pub fn head_mut(&mut self) -> Option<&mut Expect> {
        self.q.front_mut()
    }

    /// Removes the head; COPY-end markers that become the head go with it.
    pub fn pop(&mut self) -> Option<Expect> {
        let e = self.q.pop_front();
        while matches!(self.q.front(), Some(Expect::CopyEnd)) {
            self.q.pop_front();
        }
        e
    }

    pub fn is_empty(&self) -> bool {
        self.q.is_empty()
    }

    pub fn len(&self) -> usize {
        self.q.len()
    }

    /// Number of ReadyForQuery messages still to come.
    pub fn readies_pending(&self) -> usize {
        self.q.iter().filter(|e| e.awaits_ready()).count()
    }

    /// An extended-mode error: removes the head and everything after it up to (not
    /// including) the next Sync, returning the undo records of what was voided.
    pub fn void_until_sync(&mut self) -> Vec<Undo> {
        let mut undos = Vec::new();
        while let Some(e) = self.q.front() {
            if e.ends_batch() {
                break;
            }
            match self.q.pop_front() {
                Some(Expect::Parse { undo, .. }) | Some(Expect::Synthetic { undo, .. })
                    if !undo.is_empty() =>
                {
                    undos.push(undo)
                }
                _ => {}
            }
        }
        undos
    }

    /// The server started COPY FROM STDIN for the Execute at the head: the Syncs the client
    /// pipelined behind it (before it ends the COPY) will be ignored by the server.
    pub fn copy_in_started(&mut self) {
        let mut i = 1;
        let mut ended = false;
        while i < self.q.len() {
            match self.q[i] {
                Expect::Sync => {
                    self.q.remove(i);
                }
                Expect::CopyEnd => {
                    ended = true;
                    break;
                }
                _ => i += 1,
            }
        }
        if !ended {
            self.swallow_syncs = true;
        }
    }

    pub fn clear(&mut self) {
        self.q.clear();
        self.swallow_syncs = false;
    }

    /// Empties the queue because its requests will be made again on another connection;
    /// returns the undo records of every entry, the last entry's first.
    pub fn unwind(&mut self) -> Vec<Undo> {
        let mut undos = Vec::new();
        while let Some(e) = self.q.pop_back() {
            if let Expect::Parse { undo, .. } | Expect::Synthetic { undo, .. } = e
                && !undo.is_empty()
            {
                undos.push(undo);
            }
        }
        self.swallow_syncs = false;
        undos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stay_small() {
        assert!(
            std::mem::size_of::<Expect>() <= 48,
            "{}",
            std::mem::size_of::<Expect>()
        );
    }

    #[test]
    fn errors_void_until_sync() {
        let mut q = ExpectQueue::default();
        q.push(Expect::Parse {
            forward: true,
            undo: Undo::new(UndoParts {
                server_added: Some(Bytes::from_static(b"x")),
                ..Default::default()
            }),
        });
        q.push(Expect::Bind);
        q.push(Expect::Execute { effect: None });
        q.push(Expect::Sync);
        q.push(Expect::Bind);
        let undos = q.void_until_sync();
        assert_eq!(undos.len(), 1);
        assert!(matches!(q.head(), Some(Expect::Sync)));
        assert_eq!(q.len(), 2);
        assert_eq!(q.readies_pending(), 1);
    }

    #[test]
    fn copy_in_drops_pipelined_syncs() {
        let mut q = ExpectQueue::default();
        q.push(Expect::Execute { effect: None });
        q.push(Expect::Sync);
        q.copy_in_started();
        assert_eq!(q.len(), 1);
        assert!(q.swallow_syncs);
        q.push(Expect::Sync);
        assert_eq!(q.len(), 1);
        q.push(Expect::CopyEnd);
        q.push(Expect::Sync);
        assert_eq!(q.len(), 3);
        assert!(!q.swallow_syncs);
        assert!(matches!(q.pop(), Some(Expect::Execute { .. })));
        assert!(matches!(q.head(), Some(Expect::Sync)));
    }
}
