//! A client whose server connection was lost inside a transaction: until it ends the
//! transaction, the proxy answers as PostgreSQL answers in an aborted one (the reason
//! first, then 25P02), and the ROLLBACK/COMMIT that ends it, in either protocol.

use super::expect::{Synth, Undo};
use super::sqlscan;
use super::{Relay, RelayError};
use crate::protocol::build::{self, ErrorFields};
use crate::protocol::{TxStatus, be, fe, parse, sqlstate};

/// True for statements that end a transaction block.
fn ends_transaction(sql: &[u8]) -> bool {
    let toks = sqlscan::tokens(sql);
    let first = toks.iter().find(|t| t.kind == sqlscan::Kind::Word);
    first.is_some_and(|t| {
        let w = t.text(sql);
        ["rollback", "commit", "end", "abort"]
            .iter()
            .any(|k| w.eq_ignore_ascii_case(k.as_bytes()))
    })
}

fn aborted_error() -> ErrorFields {
    ErrorFields::error(
        sqlstate::IN_FAILED_TRANSACTION,
        "current transaction is aborted, commands ignored until end of transaction block",
    )
    .with_detail("The server connection was lost during this transaction.")
}

impl Relay {
    /// The server connection was lost inside a transaction: answer as PostgreSQL answers in
    /// an aborted transaction until the client ends it.
    pub(super) fn lost_tx_message(&mut self, tag: u8, body: &[u8]) -> Result<(), RelayError> {
        let err = self.lost_reason.take().unwrap_or_else(aborted_error);
        match tag {
            fe::QUERY => {
                if ends_transaction(parse::query_text(body)?) {
                    self.lost_tx = false;
                    self.status = TxStatus::Idle;
                    self.query_done("ROLLBACK");
                } else {
                    self.query_error(&err);
                }
            }
            fe::PARSE if ends_transaction(parse::parse_msg(body)?.query) => {
                self.lost_tx_ending = true;
                self.synth(Synth::Empty(be::PARSE_COMPLETE), Undo::default());
            }
            fe::BIND if self.lost_tx_ending => {
                self.synth(Synth::Empty(be::BIND_COMPLETE), Undo::default())
            }
            fe::DESCRIBE if self.lost_tx_ending => {
                self.synth(Synth::Empty(be::NO_DATA), Undo::default())
            }
            fe::EXECUTE if self.lost_tx_ending => {
                self.synth_msgs(|b| build::command_complete(b, "ROLLBACK"))
            }
            _ => {
                self.lost_tx_ending = false;
                self.extended_error(&err);
            }
        }
        Ok(())
    }
}
