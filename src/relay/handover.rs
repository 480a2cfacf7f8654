//! Handing a server connection to a client: what must be sent first so that the server
//! session is the one this client would have if it were connected alone. Another
//! client's untracked state is discarded, the reported settings (`client_encoding`,
//! `TimeZone`, …) are set to what this client was told, and the other settings it made
//! with `SET` are replayed.

use super::Relay;
use super::params;
use crate::backend::conn::ServerConn;
use crate::config::PoolerMode;

/// What to send before the client's own messages.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Handover {
    /// `DISCARD ALL`, on its own (it cannot run inside a transaction block), or
    /// `DEALLOCATE ALL` when only the cached statements must go.
    pub discard: Option<&'static str>,
    /// The settings, as one simple query.
    pub settings: Option<String>,
}

impl Handover {
    /// The queries to send, in order.
    pub fn statements(&self) -> impl Iterator<Item = &str> {
        self.discard.into_iter().chain(self.settings.as_deref())
    }
}

impl Relay {
    /// Works out the handover of `conn` to this client (session `client`) and records on
    /// `conn` the state it will have once the handover is sent.
    pub fn handover(&self, conn: &mut ServerConn, client: u64) -> Handover {
        if self.pooler == PoolerMode::Transaction {
            // Behind a transaction pooler the next statement may run on any server
            // session: there is nothing of this one to clean.
            conn.dirty = false;
        }
        let mut discard = conn.discard_for(client);
        if std::mem::take(&mut conn.stale_plans) && discard.is_none() {
            conn.statements.take_all();
            discard = Some("DEALLOCATE ALL");
        }
        let mut sql = String::new();
        let seen = &self.seen;
        params::diff_into(
            &self.params.desired,
            &conn.applied,
            |name| seen.follows(name),
            &mut sql,
        );
        seen.sync_statements(&conn.reported, &conn.baseline, &mut sql);
        if !sql.is_empty() {
            conn.applied = self.params.desired.clone();
            conn.applied.retain(|name, _| !seen.follows(name));
            conn.reported.clone_from(&seen.0);
        }
        Handover {
            discard,
            settings: (!sql.is_empty()).then_some(sql),
        }
    }
}
