//! The write workload of the live-sync tests and what the databases must hold after it:
//! clients that touch only rows they created and record exactly what they committed, so
//! the union of their models (plus the seed) is the expected state; readers of that state
//! straight from PostgreSQL or a SQLite file (not through switchyard).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use super::{PgCluster, connect};

pub const SCHEMA: &str = "CREATE TABLE accounts (id bigserial PRIMARY KEY, name text NOT NULL, balance bigint NOT NULL DEFAULT 0);
CREATE TABLE orders (id bigserial PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts (id), amount bigint NOT NULL);
CREATE TABLE tags (account_id bigint NOT NULL REFERENCES accounts (id), tag text NOT NULL, PRIMARY KEY (account_id, tag));
CREATE TABLE events (id bigint PRIMARY KEY, payload text);";

/// What the database must hold.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Model {
    pub accounts: BTreeMap<i64, (String, i64)>,
    pub orders: BTreeMap<i64, (i64, i64)>,
    pub tags: BTreeSet<(i64, String)>,
}

impl Model {
    pub fn merge(&mut self, other: &Model) {
        self.accounts.extend(other.accounts.clone());
        self.orders.extend(other.orders.clone());
        self.tags.extend(other.tags.clone());
    }
}

/// One workload client: touches only the rows it created, so the union of all clients'
/// models (plus the seed) is the exact expected state.
pub struct Worker {
    pub id: u64,
    pub rng: u64,
    pub model: Model,
    pub ops: u64,
}

impl Worker {
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    pub async fn step(
        &mut self,
        c: &mut tokio_postgres::Client,
    ) -> Result<(), tokio_postgres::Error> {
        let roll = self.next() % 10;
        let mine: Vec<i64> = self.model.accounts.keys().copied().collect();
        if roll < 5 || mine.is_empty() {
            let name = format!("w{}-{}", self.id, self.ops);
            let tx = c.transaction().await?;
            let id: i64 = tx
                .query_one(
                    "INSERT INTO accounts (name, balance) VALUES ($1::text, $2::int8) RETURNING id::int8",
                    &[&name, &100i64],
                )
                .await?
                .get(0);
            let mut orders = Vec::new();
            for amount in [10i64, 20] {
                let oid: i64 = tx.query_one("INSERT INTO orders (account_id, amount) VALUES ($1::int8, $2::int8) RETURNING id::int8", &[&id, &amount]).await?.get(0);
                orders.push((oid, amount));
            }
            tx.execute(
                "INSERT INTO tags (account_id, tag) VALUES ($1::int8, $2::text)",
                &[&id, &"new"],
            )
            .await?;
            tx.commit().await?;
            self.model.accounts.insert(id, (name, 100));
            for (oid, amount) in orders {
                self.model.orders.insert(oid, (id, amount));
            }
            self.model.tags.insert((id, "new".into()));
        } else if roll < 8 {
            let id = mine[(self.next() % mine.len() as u64) as usize];
            let delta = (self.next() % 50) as i64;
            let tx = c.transaction().await?;
            tx.execute(
                "UPDATE accounts SET balance = balance + $1::int8 WHERE id = $2::int8",
                &[&delta, &id],
            )
            .await?;
            tx.execute(
                "UPDATE orders SET amount = amount + 1 WHERE account_id = $1::int8",
                &[&id],
            )
            .await?;
            tx.execute("INSERT INTO tags (account_id, tag) VALUES ($1::int8, $2::text) ON CONFLICT DO NOTHING", &[&id, &"seen"]).await?;
            tx.commit().await?;
            self.model.accounts.get_mut(&id).unwrap().1 += delta;
            for o in self.model.orders.values_mut().filter(|o| o.0 == id) {
                o.1 += 1;
            }
            self.model.tags.insert((id, "seen".into()));
        } else if roll < 9 {
            let id = mine[(self.next() % mine.len() as u64) as usize];
            let tx = c.transaction().await?;
            tx.execute("DELETE FROM tags WHERE account_id = $1::int8", &[&id])
                .await?;
            tx.execute("DELETE FROM orders WHERE account_id = $1::int8", &[&id])
                .await?;
            tx.execute("DELETE FROM accounts WHERE id = $1::int8", &[&id])
                .await?;
            tx.commit().await?;
            self.model.accounts.remove(&id);
            self.model.orders.retain(|_, o| o.0 != id);
            self.model.tags.retain(|t| t.0 != id);
        } else {
            let id = mine[(self.next() % mine.len() as u64) as usize];
            let name = format!("r{}-{}", self.id, self.ops);
            c.execute(
                "UPDATE accounts SET name = $1::text WHERE id = $2::int8",
                &[&name, &id],
            )
            .await?;
            self.model.accounts.get_mut(&id).unwrap().0 = name;
        }
        self.ops += 1;
        Ok(())
    }
}

/// Where the expected state is checked: a PostgreSQL database or a SQLite file, read
/// directly.
pub enum Side<'a> {
    Pg(&'a PgCluster),
    Sqlite(PathBuf),
}

/// (Cast to the model's types: a schema made by an app's ORM may use integer and varchar.)
pub async fn snapshot_pg(url: &str) -> (Model, i64) {
    let c = connect(url).await.unwrap();
    let mut m = Model::default();
    for r in c
        .query(
            "SELECT id::int8, name::text, balance::int8 FROM accounts",
            &[],
        )
        .await
        .unwrap()
    {
        m.accounts.insert(r.get(0), (r.get(1), r.get(2)));
    }
    for r in c
        .query(
            "SELECT id::int8, account_id::int8, amount::int8 FROM orders",
            &[],
        )
        .await
        .unwrap()
    {
        m.orders.insert(r.get(0), (r.get(1), r.get(2)));
    }
    for r in c
        .query("SELECT account_id::int8, tag::text FROM tags", &[])
        .await
        .unwrap()
    {
        m.tags.insert((r.get(0), r.get(1)));
    }
    let events: i64 = c
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    (m, events)
}

pub fn snapshot_sqlite(path: &PathBuf) -> (Model, i64) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut m = Model::default();
    let mut s = c.prepare("SELECT id, name, balance FROM accounts").unwrap();
    for r in s
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
    {
        let (id, name, bal): (i64, String, i64) = r.unwrap();
        m.accounts.insert(id, (name, bal));
    }
    let mut s = c
        .prepare("SELECT id, account_id, amount FROM orders")
        .unwrap();
    for r in s
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
    {
        let (id, a, amt): (i64, i64, i64) = r.unwrap();
        m.orders.insert(id, (a, amt));
    }
    let mut s = c.prepare("SELECT account_id, tag FROM tags").unwrap();
    for r in s.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap() {
        m.tags.insert(r.unwrap());
    }
    let events = c
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    (m, events)
}

pub async fn snapshot(side: &Side<'_>) -> (Model, i64) {
    match side {
        Side::Pg(pg) => snapshot_pg(&pg.url("app")).await,
        Side::Sqlite(p) => snapshot_sqlite(p),
    }
}

pub fn assert_same(what: &str, got: &(Model, i64), want: &Model, events: i64) {
    assert_eq!(got.1, events, "{what}: events row count");
    assert_eq!(
        got.0.accounts.len(),
        want.accounts.len(),
        "{what}: account count"
    );
    for (id, v) in &want.accounts {
        assert_eq!(got.0.accounts.get(id), Some(v), "{what}: account {id}");
    }
    assert_eq!(got.0.orders, want.orders, "{what}: orders");
    assert_eq!(got.0.tags, want.tags, "{what}: tags");
    assert_eq!(&got.0, want, "{what}");
}

pub fn expected(seed: &Model, workers: &[Worker], extra: &Model) -> Model {
    let mut m = seed.clone();
    for w in workers {
        m.merge(&w.model);
    }
    m.merge(extra);
    m
}

/// Changes captured on `side` and not yet applied, read from the database itself: an
/// entry leaves the changelog only after its round committed on the other side.
pub async fn changelog_len(side: &Side<'_>) -> i64 {
    match side {
        Side::Pg(pg) => connect(&pg.url("app"))
            .await
            .unwrap()
            .query_one("SELECT count(*) FROM switchyard.changelog", &[])
            .await
            .unwrap()
            .get(0),
        Side::Sqlite(p) => {
            let c = rusqlite::Connection::open(p).unwrap();
            c.busy_timeout(Duration::from_secs(10)).unwrap();
            c.query_row("SELECT count(*) FROM _switchyard_changelog", [], |r| {
                r.get(0)
            })
            .unwrap()
        }
    }
}

pub fn seed_model(accounts: i64) -> Model {
    let mut m = Model::default();
    for i in 1..=accounts {
        m.accounts.insert(i, (format!("seed{i}"), i * 10));
        m.orders.insert(i, (i, i));
        m.tags.insert((i, "seed".into()));
    }
    m
}

pub const SEED_SQL: &str = "INSERT INTO accounts (name, balance) SELECT 'seed' || i, i * 10 FROM generate_series(1, 300) i;
INSERT INTO orders (account_id, amount) SELECT i, i FROM generate_series(1, 300) i;
INSERT INTO tags (account_id, tag) SELECT i, 'seed' FROM generate_series(1, 300) i;";
