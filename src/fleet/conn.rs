//! A connection for the fleet's own statements (to its store, to a side's fence), made
//! again when it breaks. Statements are `simple_query` strings, each its own transaction,
//! so the database may sit behind a transaction pooler.

use tokio_postgres::{Client, SimpleQueryMessage, SimpleQueryRow};

use crate::backend::url::PgTarget;

/// Why a statement failed: the database was not reached, or it refused the statement.
#[derive(Debug, Clone)]
pub enum Failure {
    Unreachable(String),
    Refused(String),
}

/// One lazily made, shared connection.
pub struct Conn {
    target: PgTarget,
    client: tokio::sync::Mutex<Option<Client>>,
}

impl Conn {
    pub fn new(target: PgTarget) -> Conn {
        Conn {
            target,
            client: tokio::sync::Mutex::new(None),
        }
    }

    /// Host and database, for messages.
    pub fn addr(&self) -> String {
        format!("{}/{}", self.target.host, self.target.database)
    }

    /// Runs `sql`; a broken connection is made again once.
    pub async fn run(&self, sql: &str) -> Result<Vec<SimpleQueryRow>, Failure> {
        let mut guard = self.client.lock().await;
        for attempt in 0..2 {
            if guard.as_ref().is_none_or(|c| c.is_closed()) {
                let c = crate::sync::pgconn::connect(&self.target)
                    .await
                    .map_err(|e| Failure::Unreachable(e.to_string()))?;
                *guard = Some(c);
            }
            let c = guard.as_ref().expect("connected above");
            match c.simple_query(sql).await {
                Ok(msgs) => {
                    return Ok(msgs
                        .into_iter()
                        .filter_map(|m| match m {
                            SimpleQueryMessage::Row(r) => Some(r),
                            _ => None,
                        })
                        .collect());
                }
                Err(e) if e.as_db_error().is_none() && attempt == 0 => *guard = None,
                Err(e) => {
                    if e.as_db_error().is_none() {
                        *guard = None;
                    } else {
                        // A statement string with its own BEGIN leaves the transaction
                        // open and failed; the next statement must not inherit it.
                        let _ = c.simple_query("ROLLBACK").await;
                    }
                    return Err(Failure::Refused(crate::sync::pg_error(&e)));
                }
            }
        }
        unreachable!("the second attempt returns")
    }
}
