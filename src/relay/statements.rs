//! Prepared statements across pooled server connections.
//!
//! A client's statements live here, not on any server: `ClientStatements` remembers each
//! Parse by the client's name. What a server connection holds is tracked per connection in
//! `ServerStatements`: statements cached under proxy-chosen names (`sy1`, `sy2`, …) on
//! direct servers, and which definition currently sits in its unnamed slot. Before a Bind or
//! Describe the relay makes sure the statement exists on the server it is about to use.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

use super::FastMap;
use super::sqlscan::{Classified, Effect, Kept};

/// One prepared statement as the client defined it.
#[derive(Debug)]
pub struct StmtDef {
    /// Unique for the life of the process: (session id, counter).
    pub id: (u64, u64),
    /// The Parse body after the name: query text, NUL, parameter types. The cache key.
    pub body: Bytes,
    /// Session-state change made when it runs (a prepared `SET`).
    pub effect: Option<Effect>,
    /// State it leaves on the server session that the proxy does not replay.
    pub kept: Option<Kept>,
}

/// How the body of a statement made by SQL `PREPARE` starts (a Parse body starts with
/// its query text, which has no NUL).
pub const SQL_KEY: &[u8] = b"\0sql\0";

impl StmtDef {
    /// For a statement made by SQL `PREPARE`: what followed its name.
    pub fn sql_rest(&self) -> Option<&str> {
        let rest = self.body.strip_prefix(SQL_KEY)?;
        std::str::from_utf8(rest).ok()
    }
}

/// The client's unnamed statement. Replaced on almost every extended-protocol query, so its
/// buffer is reused instead of allocated each time.
#[derive(Debug, Default, Clone)]
pub struct Unnamed {
    pub id: (u64, u64),
    pub body: Vec<u8>,
    pub effect: Option<Effect>,
    pub kept: Option<Kept>,
    present: bool,
}

/// A client's statements by name; the unnamed one is kept separately.
#[derive(Debug, Default)]
pub struct ClientStatements {
    session: u64,
    next: u64,
    named: FastMap<Bytes, Arc<StmtDef>>,
    unnamed: Unnamed,
}

impl ClientStatements {
    pub fn new(session: u64) -> Self {
        ClientStatements {
            session,
            ..Default::default()
        }
    }

    /// Builds a definition from a Parse body and its classification.
    pub fn define(&mut self, rest: &[u8], class: &Classified) -> Arc<StmtDef> {
        self.next += 1;
        let effect = match class.effects.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        };
        Arc::new(StmtDef {
            id: (self.session, self.next),
            body: Bytes::copy_from_slice(rest),
            effect,
            kept: class.kept,
        })
    }

    /// Builds a definition for SQL `PREPARE name rest`, kept apart from Parse bodies by
    /// [`SQL_KEY`].
    pub fn define_sql(&mut self, rest: &str) -> Arc<StmtDef> {
        self.next += 1;
        let mut body = Vec::with_capacity(SQL_KEY.len() + rest.len());
        body.extend_from_slice(SQL_KEY);
        body.extend_from_slice(rest.as_bytes());
        Arc::new(StmtDef {
            id: (self.session, self.next),
            body: Bytes::from(body),
            effect: None,
            kept: None,
        })
    }

    /// Records the unnamed statement; returns its id.
    pub fn set_unnamed(&mut self, rest: &[u8], class: &Classified) -> (u64, u64) {
        self.next += 1;
        let u = &mut self.unnamed;
        u.id = (self.session, self.next);
        u.body.clear();
        u.body.extend_from_slice(rest);
        u.effect = match class.effects.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        };
        u.kept = class.kept;
        u.present = true;
        u.id
    }

    /// True when a Parse body repeats the unnamed statement exactly, as most
    /// extended-protocol drivers do on every query: same text, so same classification and
    /// effect, and [`Self::renew_unnamed`] records it.
    pub fn repeats_unnamed(&self, rest: &[u8]) -> bool {
        self.unnamed.present && self.unnamed.body == rest
    }

    /// Records a repeated Parse of the unnamed statement (a new id, nothing else changes).
    pub fn renew_unnamed(&mut self) -> (u64, u64) {
        self.next += 1;
        self.unnamed.id = (self.session, self.next);
        self.unnamed.id
    }

    pub fn unnamed(&self) -> Option<&Unnamed> {
        self.unnamed.present.then_some(&self.unnamed)
    }

    /// A named statement.
    pub fn get(&self, name: &[u8]) -> Option<&Arc<StmtDef>> {
        self.named.get(name)
    }

    /// The session-state change a statement makes when executed, and the state it
    /// leaves that the proxy does not replay.
    pub fn effect_of(&self, name: &[u8]) -> (Option<Effect>, Option<Kept>) {
        if name.is_empty() {
            self.unnamed()
                .map_or((None, None), |u| (u.effect.clone(), u.kept))
        } else {
            self.named
                .get(name)
                .map_or((None, None), |d| (d.effect.clone(), d.kept))
        }
    }

    pub fn contains(&self, name: &[u8]) -> bool {
        self.named.contains_key(name)
    }

    pub fn insert(&mut self, name: &[u8], def: Arc<StmtDef>) {
        self.named.insert(Bytes::copy_from_slice(name), def);
    }

    /// Removes a statement; for the unnamed one there is nothing to give back.
    pub fn remove(&mut self, name: &[u8]) -> Option<Arc<StmtDef>> {
        if name.is_empty() {
            self.unnamed.present = false;
            None
        } else {
            self.named.remove(name)
        }
    }

    /// Removes `name` only if it still holds `id` (undo of a Parse that did not happen).
    pub fn remove_if(&mut self, name: &[u8], id: (u64, u64)) {
        if self.get(name).is_some_and(|d| d.id == id) {
            self.remove(name);
        }
    }

    /// A copy of the unnamed statement, to put back with [`Self::restore_unnamed`].
    pub fn save_unnamed(&self) -> Option<Unnamed> {
        self.unnamed.present.then(|| self.unnamed.clone())
    }

    /// Puts back the unnamed statement saved by [`Self::save_unnamed`].
    pub fn restore_unnamed(&mut self, saved: Option<Unnamed>) {
        match saved {
            Some(u) => self.unnamed = u,
            None => self.unnamed.present = false,
        }
    }

    /// A simple Query destroys the unnamed statement on the server; mirror that.
    pub fn forget_unnamed(&mut self) {
        self.unnamed.present = false;
    }

    pub fn clear(&mut self) {
        self.named.clear();
        self.unnamed.present = false;
    }

    /// Whether the client has named statements.
    pub fn has_named(&self) -> bool {
        !self.named.is_empty()
    }
}

/// The most statements kept prepared on one direct server connection.
pub const MAX_CACHED: usize = 512;

/// What one server connection holds.
#[derive(Debug, Default)]
pub struct ServerStatements {
    next: u64,
    cached: FastMap<Bytes, Bytes>,
    order: VecDeque<Bytes>,
    /// Which definition is in the server's unnamed statement, if known.
    pub unnamed: Option<(u64, u64)>,
}

impl ServerStatements {
    /// The server-side name for this statement body, if it is prepared here.
    pub fn lookup(&self, body: &Bytes) -> Option<&Bytes> {
        self.cached.get(body)
    }

    /// Records a new server-side statement and returns its name, plus the name of an
    /// evicted statement the caller must Close, if the cache was full.
    pub fn add(&mut self, body: Bytes) -> (Bytes, Option<Bytes>) {
        let evicted = if self.cached.len() >= MAX_CACHED {
            self.order
                .pop_front()
                .and_then(|old| self.cached.remove(&old))
        } else {
            None
        };
        self.next += 1;
        let name = Bytes::from(format!("sy{}", self.next));
        self.order.push_back(body.clone());
        self.cached.insert(body, name.clone());
        (name, evicted)
    }

    /// Forgets a statement whose Parse was skipped by the server after an error.
    pub fn forget(&mut self, body: &Bytes) {
        if self.cached.remove(body).is_some() {
            self.order.retain(|b| b != body);
        }
    }

    pub fn len(&self) -> usize {
        self.cached.len()
    }

    /// Forgets every cached statement, returning their server-side names (to Close).
    pub fn take_all(&mut self) -> Vec<Bytes> {
        self.order.clear();
        self.cached.drain().map(|(_, name)| name).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.cached.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::sqlscan::classify;

    #[test]
    fn server_cache_names_and_evicts() {
        let mut s = ServerStatements::default();
        let b1 = Bytes::from_static(b"select 1\0\0\0");
        let (n1, ev) = s.add(b1.clone());
        assert_eq!(&n1[..], b"sy1");
        assert!(ev.is_none());
        assert_eq!(s.lookup(&b1), Some(&n1));
        s.forget(&b1);
        assert!(s.lookup(&b1).is_none());
        for i in 0..MAX_CACHED {
            s.add(Bytes::from(format!("q{i}")));
        }
        let (_, ev) = s.add(Bytes::from_static(b"last"));
        assert_eq!(ev.as_deref(), Some(&b"sy2"[..]));
        assert_eq!(s.len(), MAX_CACHED);
    }

    #[test]
    fn client_statements_undo_only_their_own() {
        let mut c = ClientStatements::new(7);
        let d1 = c.define(b"select 1\0\0\0", &classify(b"select 1"));
        c.insert(b"s", d1.clone());
        let d2 = c.define(b"select 2\0\0\0", &classify(b"select 2"));
        c.remove_if(b"s", d2.id);
        assert!(c.contains(b"s"));
        c.remove_if(b"s", d1.id);
        assert!(!c.contains(b"s"));
        assert_ne!(d1.id, d2.id);
    }

    #[test]
    fn a_repeated_unnamed_parse_keeps_its_effect_under_a_new_id() {
        let mut c = ClientStatements::new(3);
        let body = b"SET search_path TO x\0\0\0";
        assert!(!c.repeats_unnamed(body));
        let first = c.set_unnamed(body, &classify(b"SET search_path TO x"));
        assert!(c.repeats_unnamed(body));
        assert!(!c.repeats_unnamed(b"SET search_path TO y\0\0\0"));
        let again = c.renew_unnamed();
        assert_ne!(first, again);
        assert_eq!(c.unnamed().map(|u| u.id), Some(again));
        assert!(
            matches!(c.effect_of(b"").0, Some(Effect::Set { name, .. }) if name == "search_path")
        );
        c.forget_unnamed();
        assert!(!c.repeats_unnamed(body));
    }
}
