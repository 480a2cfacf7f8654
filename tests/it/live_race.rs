//! Apply rounds racing a writer that creates and deletes parents with children. A round
//! must read its changelog entries and the rows they point at in one source snapshot:
//! otherwise it can see a parent already deleted while the entries for its children (deleted
//! by the same transaction) are not in its batch, and fail deleting the parent on the
//! target with a foreign-key violation (seen in CI as a failed cutover). From PostgreSQL
//! and from SQLite. Also single rounds at the edges: parents gone under their children,
//! and tables whose names only differ past PostgreSQL's 63-byte identifier limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use switchyard::testing::sync::plan;
use switchyard::testing::sync::schema;
use switchyard::testing::sync::{apply, side};

use crate::support::cluster::scratch_dir;
use crate::support::{PgCluster, connect, rt};

const SCHEMA: &str = "CREATE TABLE parents (id bigserial PRIMARY KEY, name text NOT NULL);
CREATE TABLE children (parent_id bigint NOT NULL REFERENCES parents (id), tag text NOT NULL, PRIMARY KEY (parent_id, tag));
CREATE TABLE nodes (id bigint PRIMARY KEY, up bigint REFERENCES nodes (id));";

/// Each step creates a parent with two children, renames the oldest live parent, and every
/// other step deletes that parent and its children in one transaction.
async fn writer(url: String, stop: Arc<AtomicBool>) -> u64 {
    let mut c = connect(&url).await.unwrap();
    let mut live = std::collections::VecDeque::new();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let tx = c.transaction().await.unwrap();
        let id: i64 = tx
            .query_one("INSERT INTO parents (name) VALUES ('p') RETURNING id", &[])
            .await
            .unwrap()
            .get(0);
        tx.execute("INSERT INTO children VALUES ($1, 'a'), ($1, 'b')", &[&id])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        live.push_back(id);
        // Touches the oldest parent alone: a batch holding this entry names the parent
        // without its children, which the next transaction deletes with it.
        c.execute("UPDATE parents SET name = 'q' WHERE id = $1", &[&live[0]])
            .await
            .unwrap();
        if n % 2 == 1 {
            let old = live.pop_front().unwrap();
            let tx = c.transaction().await.unwrap();
            tx.execute("DELETE FROM children WHERE parent_id = $1", &[&old])
                .await
                .unwrap();
            tx.execute("DELETE FROM parents WHERE id = $1", &[&old])
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
        n += 1;
    }
    n
}

async fn dump(url: &str) -> Vec<String> {
    let c = connect(url).await.unwrap();
    let rows = c
        .query(
            "SELECT format('%s %s', p.id, string_agg(c.tag, ',' ORDER BY c.tag)) FROM parents p LEFT JOIN children c ON c.parent_id = p.id GROUP BY p.id ORDER BY p.id",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

/// Apply rounds of up to `limit` entries for four seconds (each must succeed, retrying
/// as the live sync does), then until the changelog is empty.
async fn race(
    from: &side::Side,
    to: &mut side::Side,
    tables: &[schema::Table],
    limit: usize,
) -> u64 {
    let (started, mut rounds) = (Instant::now(), 0u64);
    while started.elapsed() < Duration::from_secs(4) {
        apply::apply_round_from(from, to, tables, limit, 0, None)
            .await
            .unwrap_or_else(|e| panic!("round {rounds} failed: {e}"));
        rounds += 1;
    }
    rounds
}

async fn drain(from: &side::Side, to: &mut side::Side, tables: &[schema::Table]) {
    while apply::apply_round_from(from, to, tables, 10_000, 0, None)
        .await
        .unwrap()
        .0
        > 0
    {}
}

/// The synced tables (parents first), both sides connected, capture on the source.
async fn captured_pair(
    src_url: &str,
    dst_url: &str,
) -> (Vec<schema::Table>, side::Side, side::Side) {
    let mut tables = plan::open_source(src_url).await.unwrap().tables;
    schema::fk_order(&mut tables);
    let from = side::Side::Postgres(connect(src_url).await.unwrap());
    let to = side::Side::Postgres(connect(dst_url).await.unwrap());
    side::install(&from, &tables).await.unwrap();
    (tables, from, to)
}

/// A source and a target PostgreSQL, each with [`SCHEMA`].
fn two_clusters() -> (PgCluster, PgCluster) {
    two_clusters_with(SCHEMA)
}

/// A source and a target PostgreSQL, each with `schema` created by the app role.
fn two_clusters_with(schema: &str) -> (PgCluster, PgCluster) {
    let (src, dst) = (PgCluster::start(), PgCluster::start());
    for c in [&src, &dst] {
        c.psql_db("app", &format!("SET ROLE app; {schema}"));
    }
    (src, dst)
}

#[test]
fn apply_rounds_racing_parent_deletes_never_break_foreign_keys() {
    let (src, dst) = two_clusters();
    let (src_url, dst_url) = (src.url("app"), dst.url("app"));
    rt().block_on(async {
        let (tables, from, mut to) = captured_pair(&src_url, &dst_url).await;
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..3)
            .map(|_| tokio::spawn(writer(src_url.clone(), stop.clone())))
            .collect();
        // Batches of 100 entries are cut in the middle of changes: a parent renamed in the
        // batch may already be deleted in the snapshot, its children's deletes beyond it.
        let rounds = race(&from, &mut to, &tables, 100).await;
        stop.store(true, Ordering::SeqCst);
        let mut txs = 0;
        for w in writers {
            txs += w.await.unwrap();
        }
        drain(&from, &mut to, &tables).await;
        assert!(txs > 200 && rounds > 10, "{txs} steps, {rounds} rounds");
        eprintln!("{txs} writer steps, {rounds} rounds");
        assert_eq!(dump(&dst_url).await, dump(&src_url).await);
    });
}

/// The same writer on a SQLite file.
fn sqlite_writer(path: std::path::PathBuf, stop: Arc<AtomicBool>) -> u64 {
    let mut c = rusqlite::Connection::open(path).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    let mut live = std::collections::VecDeque::new();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let tx = c.transaction().unwrap();
        tx.execute("INSERT INTO parents (name) VALUES ('p')", [])
            .unwrap();
        let id = tx.last_insert_rowid();
        tx.execute("INSERT INTO children VALUES (?1, 'a'), (?1, 'b')", [id])
            .unwrap();
        tx.commit().unwrap();
        live.push_back(id);
        c.execute("UPDATE parents SET name = 'q' WHERE id = ?1", [live[0]])
            .unwrap();
        if n % 2 == 1 {
            let old = live.pop_front().unwrap();
            let tx = c.transaction().unwrap();
            tx.execute("DELETE FROM children WHERE parent_id = ?1", [old])
                .unwrap();
            tx.execute("DELETE FROM parents WHERE id = ?1", [old])
                .unwrap();
            tx.commit().unwrap();
        }
        n += 1;
        // SQLite commits far faster than a network round trip; keep the pace near the
        // PostgreSQL writer's so rounds stay small.
        std::thread::sleep(Duration::from_millis(1));
    }
    n
}

#[test]
fn apply_rounds_from_sqlite_racing_parent_deletes_never_break_foreign_keys() {
    let dst = PgCluster::start();
    dst.psql_db("app", &format!("SET ROLE app; {SCHEMA}"));
    let dir = scratch_dir("sy-race-");
    let db = dir.path().join("app.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE parents (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL);
         CREATE TABLE children (parent_id INTEGER NOT NULL REFERENCES parents (id), tag TEXT NOT NULL, PRIMARY KEY (parent_id, tag));",
    )
    .unwrap();
    let dst_url = dst.url("app");
    rt().block_on(async {
        let mut tables = plan::open_source(&format!("sqlite://{}", db.display()))
            .await
            .unwrap()
            .tables;
        schema::fk_order(&mut tables);
        let from = side::Side::Sqlite(db.clone());
        let mut to = side::Side::Postgres(connect(&dst_url).await.unwrap());
        side::install(&from, &tables).await.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let w = {
            let (db, stop) = (db.clone(), stop.clone());
            std::thread::spawn(move || sqlite_writer(db, stop))
        };
        let rounds = race(&from, &mut to, &tables, 10_000).await;
        stop.store(true, Ordering::SeqCst);
        let steps = w.join().unwrap();
        drain(&from, &mut to, &tables).await;
        assert!(steps > 200 && rounds > 10, "{steps} steps, {rounds} rounds");
        eprintln!("{steps} writer steps, {rounds} rounds");
        assert_eq!(dump(&dst_url).await, sqlite_dump(&c));
    });
}

/// Two parents with children, for the single-round tests.
const FAMILIES: &str = "INSERT INTO parents (id, name) VALUES (1, 'a'), (2, 'b');
INSERT INTO children VALUES (1, 'x'), (1, 'y'), (2, 'z')";

/// A change of parent 1, then one transaction that moves one of its children to parent 2
/// and deletes the rest with it.
const OLD_CHANGE_THEN_DELETE: &str = "UPDATE parents SET name = 'a2' WHERE id = 1;
BEGIN;
UPDATE children SET parent_id = 2 WHERE parent_id = 1 AND tag = 'y';
DELETE FROM children WHERE parent_id = 1;
DELETE FROM parents WHERE id = 1;
COMMIT";

/// [`dump`] of a SQLite file.
fn sqlite_dump(c: &rusqlite::Connection) -> Vec<String> {
    let mut s = c
        .prepare("SELECT p.id || ' ' || group_concat(c.tag, ',') FROM parents p LEFT JOIN (SELECT * FROM children ORDER BY tag) c ON c.parent_id = p.id GROUP BY p.id ORDER BY p.id")
        .unwrap();
    s.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A round whose batch holds an old change of a parent that a later transaction deleted
/// (with its children, one re-pointed to another parent) sees the parent gone but not the
/// children's changes. Deleting the parent alone is refused by the target's foreign key;
/// the retry deletes the target's stale children with it, and the pending entries put the
/// re-pointed child back. Before, such a round failed until one batch held every pending
/// entry — under sustained writes a backlog past 200 000 entries failed a cutover.
#[test]
fn a_round_that_sees_a_parent_gone_deletes_its_stale_children_with_it() {
    let (src, dst) = two_clusters();
    let (src_url, dst_url) = (src.url("app"), dst.url("app"));
    rt().block_on(async {
        let (tables, from, mut to) = captured_pair(&src_url, &dst_url).await;
        let app = connect(&src_url).await.unwrap();
        app.batch_execute(FAMILIES).await.unwrap();
        drain(&from, &mut to, &tables).await;
        assert_eq!(dump(&dst_url).await, ["1 x,y", "2 z"]);
        app.batch_execute(OLD_CHANGE_THEN_DELETE).await.unwrap();
        // One entry: the rename of parent 1, which the snapshot shows deleted.
        let refused = apply::apply_round(&from, &mut to, &tables, 1, 0, false, None).await;
        assert!(
            matches!(&refused, Err(switchyard::testing::sync::SyncError::Constraint(e)) if e.contains("still referenced")),
            "{refused:?}"
        );
        let (n, _) = apply::apply_round(&from, &mut to, &tables, 1, 0, true, None)
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(dump(&dst_url).await, ["2 z"]);
        // The children's own entries are still pending and bring the moved one back.
        drain(&from, &mut to, &tables).await;
        assert_eq!(dump(&src_url).await, ["2 y,z"]);
        assert_eq!(dump(&dst_url).await, dump(&src_url).await);
        // And the retrying entry point takes the same path by itself.
        app.batch_execute(
            "INSERT INTO parents (id, name) VALUES (3, 'c'); INSERT INTO children VALUES (3, 'w');",
        )
        .await
        .unwrap();
        drain(&from, &mut to, &tables).await;
        app.batch_execute(
            "UPDATE parents SET name = 'c2' WHERE id = 3;
             BEGIN; DELETE FROM children WHERE parent_id = 3; DELETE FROM parents WHERE id = 3; COMMIT",
        )
        .await
        .unwrap();
        apply::apply_round_from(&from, &mut to, &tables, 1, 0, None)
            .await
            .unwrap();
        assert_eq!(dump(&dst_url).await, ["2 y,z"]);
        // A tree within one table: the root's old change, then the whole tree deleted.
        app.batch_execute("INSERT INTO nodes VALUES (1, NULL), (2, 1), (3, 2), (4, NULL)")
            .await
            .unwrap();
        drain(&from, &mut to, &tables).await;
        app.batch_execute(
            "UPDATE nodes SET up = NULL WHERE id = 1;
             DELETE FROM nodes WHERE id = 3; DELETE FROM nodes WHERE id = 2; DELETE FROM nodes WHERE id = 1;",
        )
        .await
        .unwrap();
        let (n, _) = apply::apply_round(&from, &mut to, &tables, 1, 0, true, None)
            .await
            .unwrap();
        assert_eq!(n, 1);
        let nodes = connect(&dst_url)
            .await
            .unwrap()
            .query("SELECT id FROM nodes ORDER BY id", &[])
            .await
            .unwrap();
        assert_eq!(nodes.iter().map(|r| r.get(0)).collect::<Vec<i64>>(), [4]);
    });
}

/// The same round into a SQLite side (changes flow back to it after a cutover from it):
/// not refused; the stale children stay until their own pending entries are applied.
#[test]
fn a_round_into_sqlite_that_sees_a_parent_gone_is_not_refused() {
    let src = PgCluster::start();
    src.psql_db("app", &format!("SET ROLE app; {SCHEMA}"));
    let src_url = src.url("app");
    let dir = scratch_dir("sy-race-");
    let db = dir.path().join("app.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE parents (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         CREATE TABLE children (parent_id INTEGER NOT NULL REFERENCES parents (id), tag TEXT NOT NULL, PRIMARY KEY (parent_id, tag));
         CREATE TABLE nodes (id INTEGER PRIMARY KEY, up INTEGER REFERENCES nodes (id));",
    )
    .unwrap();
    let orphans = || -> i64 {
        c.query_row(
            "SELECT count(*) FROM children WHERE parent_id NOT IN (SELECT id FROM parents)",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    rt().block_on(async {
        let mut tables = plan::open_source(&src_url).await.unwrap().tables;
        schema::fk_order(&mut tables);
        let from = side::Side::Postgres(connect(&src_url).await.unwrap());
        let mut to = side::Side::Sqlite(db.clone());
        side::install(&from, &tables).await.unwrap();
        side::install(&to, &tables).await.unwrap();
        let app = connect(&src_url).await.unwrap();
        app.batch_execute(FAMILIES).await.unwrap();
        drain(&from, &mut to, &tables).await;
        assert_eq!(sqlite_dump(&c), ["1 x,y", "2 z"]);
        app.batch_execute(OLD_CHANGE_THEN_DELETE).await.unwrap();
        let (n, _) = apply::apply_round(&from, &mut to, &tables, 1, 0, false, None)
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(sqlite_dump(&c), ["2 z"]);
        assert_eq!(orphans(), 2);
        drain(&from, &mut to, &tables).await;
        assert_eq!(sqlite_dump(&c), dump(&src_url).await);
        assert_eq!(orphans(), 0);
    });
}

/// Two tables whose names are 63 bytes long and share their first 60: every name
/// switchyard derives from a table (its capture function, a round's temporary tables)
/// would be cut by the server to the same one. Before, the second table's capture
/// function replaced the first's, so writes to the first failed in the app itself
/// (`record "new" has no field`), and a round touching both could not create its
/// temporary tables.
#[test]
fn tables_with_long_names_sharing_their_start_are_captured_and_applied_apart() {
    let stem = "a".repeat(60);
    let (one, two) = (format!("{stem}one"), format!("{stem}two"));
    let schema = format!(
        "CREATE TABLE \"{one}\" (id bigint PRIMARY KEY, v text);
         CREATE TABLE \"{two}\" (k text PRIMARY KEY, n int);"
    );
    let (src, dst) = two_clusters_with(&schema);
    let (src_url, dst_url) = (src.url("app"), dst.url("app"));
    rt().block_on(async {
        let (tables, from, mut to) = captured_pair(&src_url, &dst_url).await;
        let app = connect(&src_url).await.unwrap();
        app.batch_execute(&format!(
            "INSERT INTO \"{one}\" VALUES (1, 'x'), (2, 'y');
             INSERT INTO \"{two}\" VALUES ('p', 7);
             UPDATE \"{one}\" SET v = 'x2' WHERE id = 1;
             DELETE FROM \"{two}\" WHERE k = 'p'; INSERT INTO \"{two}\" VALUES ('q', 8);"
        ))
        .await
        .expect("writes to both tables pass their capture triggers");
        drain(&from, &mut to, &tables).await;
        let read = |url: String| {
            let (one, two) = (one.clone(), two.clone());
            async move {
                let c = connect(&url).await.unwrap();
                let sql = format!(
                    "SELECT (SELECT string_agg(id || '=' || v, ',' ORDER BY id) FROM \"{one}\"), \
                            (SELECT string_agg(k || '=' || n, ',' ORDER BY k) FROM \"{two}\")"
                );
                let r = c.query_one(&sql, &[]).await.unwrap();
                (r.get::<_, String>(0), r.get::<_, String>(1))
            }
        };
        let want = ("1=x2,2=y".to_string(), "q=8".to_string());
        assert_eq!(read(src_url.clone()).await, want);
        assert_eq!(read(dst_url.clone()).await, want);
        side::remove(&from, &tables).await.unwrap();
        let left = app
            .query_one(
                "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'switchyard'",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(left.get::<_, i64>(0), 0, "capture functions left behind");
    });
}
