//! PostgreSQL's transaction isolation on the SQLite default. Under READ COMMITTED (the
//! default, as in PostgreSQL) a transaction that reads and then writes never fails
//! because another connection wrote meanwhile — on SQLite's own terms it would
//! (`SQLITE_BUSY_SNAPSHOT`, or an immediate `SQLITE_BUSY` for a reader that wants to
//! write), ~1% of such transactions from two writers did. REPEATABLE READ keeps its
//! snapshot and answers 40001 as PostgreSQL does; `FOR UPDATE` takes the write lock up
//! front; waiting for the lock is bounded by `lock_timeout`.

use std::time::{Duration, Instant};

use crate::support::cluster::scratch_dir;
use crate::support::{Proxy, connect, rt};

fn sqlite_proxy(dir: &tempfile::TempDir) -> Proxy {
    Proxy::start(&format!(
        "[[users]]\nname = \"app\"\npassword = \"secret\"\n\
         [backends.local]\nurl = \"{}\"\npool_size = 8\n",
        crate::support::sqlite_url(&dir.path().join("app.db"))
    ))
}

fn code(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

#[test]
fn writers_that_read_then_write_never_fail_under_read_committed() {
    let dir = scratch_dir("sy-iso-");
    let proxy = sqlite_proxy(&dir);
    let url = proxy.url("app", "secret");
    rt().block_on(async {
        let c = connect(&url).await.unwrap();
        c.batch_execute(
            "CREATE TABLE acct (id integer PRIMARY KEY, balance bigint NOT NULL); \
             INSERT INTO acct SELECT i, 0 FROM generate_series(1, 4) i",
        )
        .await
        .unwrap();
        let writers = (0..4u64).map(|w| {
            let url = url.clone();
            tokio::spawn(async move {
                let c = connect(&url).await.unwrap();
                let (mut ok, mut failed) = (0u64, Vec::new());
                for i in 0..250u64 {
                    let id = ((w + i) % 4 + 1) as i32;
                    let r = async {
                        c.batch_execute("BEGIN").await?;
                        c.query_one("SELECT balance FROM acct WHERE id = $1", &[&id])
                            .await?;
                        // The app thinks between its read and its write.
                        tokio::time::sleep(Duration::from_micros(500)).await;
                        c.simple_query(&format!(
                            "UPDATE acct SET balance = balance + 1 WHERE id = {id}"
                        ))
                        .await?;
                        c.batch_execute("COMMIT").await
                    }
                    .await;
                    match r {
                        Ok(()) => ok += 1,
                        Err(e) => {
                            failed.push(code(&e));
                            let _ = c.batch_execute("ROLLBACK").await;
                        }
                    }
                }
                (ok, failed)
            })
        });
        let writers: Vec<_> = writers.collect();
        let mut committed = 0;
        let mut failures = Vec::new();
        for w in writers {
            let (ok, failed) = w.await.unwrap();
            committed += ok;
            failures.extend(failed);
        }
        assert!(
            failures.is_empty(),
            "{} failed, the first: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        let total: i64 = c
            .query_one("SELECT sum(balance)::bigint FROM acct", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(total as u64, committed);
    });
}

#[test]
fn repeatable_read_keeps_its_snapshot_and_read_committed_sees_the_latest_row() {
    let dir = scratch_dir("sy-iso-");
    let proxy = sqlite_proxy(&dir);
    let url = proxy.url("app", "secret");
    rt().block_on(async {
        let (s1, s2) = (connect(&url).await.unwrap(), connect(&url).await.unwrap());
        s1.batch_execute("CREATE TABLE acct (id integer PRIMARY KEY, balance bigint NOT NULL); INSERT INTO acct VALUES (1, 0)")
            .await
            .unwrap();
        let balance = async |c: &tokio_postgres::Client| -> i64 {
            c.query_one("SELECT balance FROM acct WHERE id = 1", &[])
                .await
                .unwrap()
                .get(0)
        };
        // REPEATABLE READ: the snapshot holds, and the write after a concurrent commit is
        // a serialization failure.
        s1.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ").await.unwrap();
        let level: String = s1
            .query_one("SELECT current_setting('transaction_isolation')", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(level, "repeatable read");
        assert_eq!(balance(&s1).await, 0);
        s2.batch_execute("UPDATE acct SET balance = 5 WHERE id = 1").await.unwrap();
        assert_eq!(balance(&s1).await, 0, "the snapshot moved");
        let e = s1
            .batch_execute("UPDATE acct SET balance = balance + 1 WHERE id = 1")
            .await
            .unwrap_err();
        assert_eq!(code(&e), "40001", "{e:?}");
        s1.batch_execute("ROLLBACK").await.unwrap();

        // READ COMMITTED (the default): the same sequence succeeds on the latest row.
        s1.batch_execute("BEGIN").await.unwrap();
        let level: String = s1
            .query_one("SELECT current_setting('transaction_isolation')", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(level, "read committed");
        assert_eq!(balance(&s1).await, 5);
        s2.batch_execute("UPDATE acct SET balance = 7 WHERE id = 1").await.unwrap();
        s1.batch_execute("UPDATE acct SET balance = balance + 1 WHERE id = 1")
            .await
            .unwrap();
        s1.batch_execute("COMMIT").await.unwrap();
        assert_eq!(balance(&s2).await, 8);
    });
}

#[test]
fn for_update_takes_the_lock_up_front_and_lock_timeout_bounds_the_wait() {
    let dir = scratch_dir("sy-iso-");
    let proxy = sqlite_proxy(&dir);
    let url = proxy.url("app", "secret");
    rt().block_on(async {
        let (s1, s2) = (connect(&url).await.unwrap(), connect(&url).await.unwrap());
        s1.batch_execute("CREATE TABLE acct (id integer PRIMARY KEY, balance bigint NOT NULL); INSERT INTO acct VALUES (1, 0)")
            .await
            .unwrap();
        s1.batch_execute("BEGIN; SELECT balance FROM acct WHERE id = 1 FOR UPDATE")
            .await
            .unwrap();
        s2.batch_execute("SET lock_timeout = '300ms'").await.unwrap();
        let t = Instant::now();
        let e = s2
            .batch_execute("UPDATE acct SET balance = 1 WHERE id = 1")
            .await
            .unwrap_err();
        let waited = t.elapsed();
        assert_eq!(code(&e), "55P03", "{e:?}");
        assert!(
            (Duration::from_millis(250)..Duration::from_secs(3)).contains(&waited),
            "{waited:?}"
        );
        // Without lock_timeout the writer waits until the lock is free.
        s2.batch_execute("RESET lock_timeout").await.unwrap();
        let release = async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            s1.batch_execute("UPDATE acct SET balance = 10 WHERE id = 1; COMMIT")
                .await
                .unwrap();
        };
        let (r, ()) = tokio::join!(
            s2.batch_execute("UPDATE acct SET balance = balance + 1 WHERE id = 1"),
            release
        );
        r.unwrap();
        let v: i64 = s2
            .query_one("SELECT balance FROM acct WHERE id = 1", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(v, 11);
    });
}
