//! Writers that survive the proxy going away: each runs transactions through switchyard,
//! records exactly what committed, and when its connection is lost (the proxy killed or
//! restarted) reconnects and reads back whether the transaction in flight committed, so
//! its record stays exact. Every other error (a duplicate key after a cutover, a
//! serialization failure) is kept and fails the test.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_postgres::Client;

use super::connect;
use super::workload::Model;

/// What a writer did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub model: Model,
    pub ops: u64,
    /// Errors other than a lost connection.
    pub errors: Vec<String>,
    /// Transactions cut by a lost connection (their outcome was read back).
    pub cut: u64,
    /// Transactions a fleet's fence refused (SQLSTATE 25006: rolled back, nothing
    /// written), and the most any one writer saw.
    pub fenced: u64,
    pub fenced_max: u64,
}

/// The writers of one test.
pub struct Writers {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Outcome>>,
}

/// One transaction, described so its outcome can be read back.
enum Op {
    Insert { name: String },
    Update { id: i64, name: String, balance: i64 },
    Delete { id: i64 },
}

impl Writers {
    /// Starts `n` writers against `url` on the current runtime.
    pub fn start(url: &str, n: u64) -> Writers {
        Writers::start_from(url, 0, n)
    }

    /// Writers numbered from `first` (several sets through different proxies must not
    /// share names).
    pub fn start_from(url: &str, first: u64, n: u64) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (first..first + n)
            .map(|i| tokio::spawn(run(url.to_string(), i, stop.clone())))
            .collect();
        Writers { stop, tasks }
    }

    /// Stops them and returns their merged record.
    pub async fn finish(self) -> Outcome {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Outcome::default();
        for t in self.tasks {
            let o = t.await.expect("writer panicked");
            all.model.merge(&o.model);
            all.ops += o.ops;
            all.cut += o.cut;
            all.fenced += o.fenced;
            all.fenced_max = all.fenced_max.max(o.fenced);
            all.errors.extend(o.errors);
        }
        all
    }
}

fn lost(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_none_or(|d| {
        // Admin shutdown and connection failures as the proxy stops.
        d.code().code().starts_with("08") || d.code().code() == "57P01"
    })
}

async fn reconnect(url: &str) -> Client {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(c) = connect(url).await
            && c.simple_query("SELECT 1").await.is_ok()
        {
            return c;
        }
        assert!(Instant::now() < deadline, "the proxy did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run(url: String, id: u64, stop: Arc<AtomicBool>) -> Outcome {
    let mut out = Outcome::default();
    let mut c = reconnect(&url).await;
    let mut rng = 0x9E37_79B9u64 + id * 7919;
    while !stop.load(Ordering::SeqCst) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let mine: Vec<i64> = out.model.accounts.keys().copied().collect();
        let op = match rng % 10 {
            _ if mine.is_empty() => Op::Insert {
                name: format!("w{id}-{}", out.ops),
            },
            0..=5 => Op::Insert {
                name: format!("w{id}-{}", out.ops),
            },
            6..=8 => Op::Update {
                id: mine[(rng >> 8) as usize % mine.len()],
                name: format!("u{id}-{}", out.ops),
                balance: (rng % 1000) as i64,
            },
            _ => Op::Delete {
                id: mine[(rng >> 8) as usize % mine.len()],
            },
        };
        out.ops += 1;
        match apply(&c, &op).await {
            Ok(()) => {}
            Err(e) if lost(&e) => {
                out.cut += 1;
                c = settle(&url, &op, &mut out.model).await;
                continue;
            }
            Err(e) if e.code().is_some_and(|c| c.code() == "25006") => {
                // The fence refused it: nothing was written; the proxy serves the next
                // transaction from the fleet's new side.
                out.fenced += 1;
                let _ = c.batch_execute("ROLLBACK").await;
                continue;
            }
            Err(e) => {
                out.errors.push(format!("writer {id}: {e:?}"));
                continue;
            }
        }
        if let Err(e) = record(&op, &c, &mut out.model).await {
            assert!(lost(&e), "reading back a committed transaction: {e:?}");
            c = settle(&url, &op, &mut out.model).await;
        }
    }
    out
}

/// Reconnects and reads back `op`'s outcome, as often as the proxy goes away meanwhile.
async fn settle(url: &str, op: &Op, m: &mut Model) -> Client {
    loop {
        let c = reconnect(url).await;
        match read_back(&c, op, m).await {
            Ok(()) => return c,
            Err(e) => assert!(lost(&e), "reading back a transaction's outcome: {e:?}"),
        }
    }
}

async fn apply(c: &Client, op: &Op) -> Result<(), tokio_postgres::Error> {
    match op {
        Op::Insert { name } => {
            c.batch_execute(&format!(
                "BEGIN; INSERT INTO accounts (name, balance) VALUES ('{name}', 100); \
                 INSERT INTO orders (account_id, amount) SELECT id, 10 FROM accounts WHERE name = '{name}'; COMMIT"
            ))
            .await
        }
        Op::Update { id, name, balance } => {
            c.batch_execute(&format!(
                "UPDATE accounts SET name = '{name}', balance = {balance} WHERE id = {id}"
            ))
            .await
        }
        Op::Delete { id } => {
            c.batch_execute(&format!(
                "BEGIN; DELETE FROM orders WHERE account_id = {id}; DELETE FROM accounts WHERE id = {id}; COMMIT"
            ))
            .await
        }
    }
}

/// Records a committed op (inserts read their ids back).
async fn record(op: &Op, c: &Client, m: &mut Model) -> Result<(), tokio_postgres::Error> {
    match op {
        Op::Insert { .. } | Op::Update { .. } => read_back(c, op, m).await,
        Op::Delete { id } => {
            m.accounts.remove(id);
            m.orders.retain(|_, o| o.0 != *id);
            Ok(())
        }
    }
}

/// Reads what the database holds for `op`'s rows and records that.
async fn read_back(c: &Client, op: &Op, m: &mut Model) -> Result<(), tokio_postgres::Error> {
    let (filter, id) = match op {
        Op::Insert { name } => (format!("a.name = '{name}'"), None),
        Op::Update { id, .. } | Op::Delete { id } => (format!("a.id = {id}"), Some(*id)),
    };
    let rows = c
        .simple_query(&format!(
            "SELECT a.id, a.name, a.balance, o.id, o.amount FROM accounts a \
             LEFT JOIN orders o ON o.account_id = a.id WHERE {filter}"
        ))
        .await?;
    if let Some(id) = id {
        m.accounts.remove(&id);
        m.orders.retain(|_, o| o.0 != id);
    }
    for r in rows {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = r {
            let num = |i: usize| r.get(i).and_then(|v| v.parse::<i64>().ok());
            let aid = num(0).expect("account id");
            m.accounts.insert(
                aid,
                (
                    r.get(1).unwrap_or_default().to_string(),
                    num(2).unwrap_or(0),
                ),
            );
            if let (Some(oid), Some(amount)) = (num(3), num(4)) {
                m.orders.insert(oid, (aid, amount));
            }
        }
    }
    Ok(())
}
