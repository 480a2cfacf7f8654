//! Session features of the SQLite backend that frameworks use beyond plain statements:
//! server-side cursors (`DECLARE … CURSOR [WITH HOLD]`, `FETCH`, `CLOSE`, and the cursor's
//! portal as psycopg's named cursors fetch it), `TRUNCATE` of several tables with
//! `RESTART IDENTITY`/`CASCADE`, and `setval`/`nextval` over AUTOINCREMENT keys.

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::support::{connect, rt, sqlite_proxy};

/// The first column of every row, and the command tag.
async fn rows(c: &Client, sql: &str) -> (Vec<String>, String) {
    let mut out = Vec::new();
    let mut tag = String::new();
    for m in c.simple_query(sql).await.unwrap() {
        match m {
            SimpleQueryMessage::Row(r) => out.push(r.get(0).unwrap_or("NULL").to_string()),
            SimpleQueryMessage::CommandComplete(n) => tag = n.to_string(),
            _ => {}
        }
    }
    (out, tag)
}

async fn code(c: &Client, sql: &str) -> String {
    match c.batch_execute(sql).await {
        Ok(()) => "ok".into(),
        Err(e) => e
            .code()
            .map(|c| c.code().to_string())
            .unwrap_or_else(|| e.to_string()),
    }
}

#[test]
fn cursors_fetch_forward_and_end_with_their_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.batch_execute("CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) SELECT 'v' || i FROM generate_series(1, 5) i")
            .await
            .unwrap();
        assert_eq!(code(&c, "DECLARE c CURSOR FOR SELECT v FROM t").await, "25P01");
        c.batch_execute("BEGIN; DECLARE c CURSOR FOR SELECT v FROM t WHERE id > 1 ORDER BY id").await.unwrap();
        assert_eq!(rows(&c, "FETCH 2 FROM c").await, (vec!["v2".into(), "v3".into()], "2".into()));
        assert_eq!(rows(&c, "FETCH NEXT FROM c").await.0, vec!["v4"]);
        assert_eq!(rows(&c, "FETCH ALL FROM c").await.0, vec!["v5"]);
        assert_eq!(rows(&c, "FETCH ALL FROM c").await.0, Vec::<String>::new());
        assert_eq!(rows(&c, "SELECT count(*) FROM pg_cursors WHERE name = 'c'").await.0, vec!["1"]);
        c.batch_execute("COMMIT").await.unwrap();
        assert_eq!(code(&c, "FETCH 1 FROM c").await, "34000");
        // WITH HOLD outlives the transaction (the client keeps its session).
        c.batch_execute("DECLARE h CURSOR WITH HOLD FOR SELECT id FROM t ORDER BY id").await.unwrap();
        assert_eq!(rows(&c, "FETCH FORWARD 3 FROM h").await.0, vec!["1", "2", "3"]);
        c.batch_execute("CLOSE h").await.unwrap();
        assert_eq!(code(&c, "CLOSE h").await, "34000");
        assert_eq!(rows(&c, "SELECT count(*) FROM pg_cursors").await.0, vec!["0"]);
    });
    // psycopg's named cursor: DECLARE … WITH HOLD outside a transaction, then the cursor's
    // portal fetched in batches (as Django's .iterator() and dumpdata do).
    let script = format!(
        "import psycopg\n\
         c = psycopg.connect('postgresql://app:secret@127.0.0.1:{}/app?sslmode=disable', autocommit=True)\n\
         cur = c.cursor('named', withhold=True)\n\
         cur.itersize = 2\n\
         cur.execute('SELECT id, v FROM t WHERE id >= %s ORDER BY id', (2,))\n\
         print([r for r in cur])\n\
         cur.close()\n",
        proxy.port
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        text.trim(),
        "[(2, 'v2'), (3, 'v3'), (4, 'v4'), (5, 'v5')]",
        "{text}"
    );
}

#[test]
fn truncate_and_sequences_behave_as_in_postgresql() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        c.batch_execute(
            "CREATE TABLE parent (id serial PRIMARY KEY, n int);
             CREATE TABLE child (id serial PRIMARY KEY, parent_id int REFERENCES parent (id));
             INSERT INTO parent (n) VALUES (1), (2); INSERT INTO child (parent_id) VALUES (1), (2)",
        )
        .await
        .unwrap();
        assert_eq!(code(&c, "TRUNCATE parent").await, "0A000");
        assert_eq!(rows(&c, "SELECT count(*) FROM parent").await.0, vec!["2"]);
        // Both at once (the order does not matter), ids start again.
        assert_eq!(code(&c, "TRUNCATE \"parent\", \"child\" RESTART IDENTITY").await, "ok");
        assert_eq!(rows(&c, "INSERT INTO parent (n) VALUES (3) RETURNING id").await.0, vec!["1"]);
        c.batch_execute("INSERT INTO child (parent_id) VALUES (1)").await.unwrap();
        assert_eq!(code(&c, "TRUNCATE parent CASCADE").await, "ok");
        assert_eq!(rows(&c, "SELECT count(*) FROM child").await.0, vec!["0"]);
        // Without RESTART IDENTITY the ids go on.
        assert_eq!(rows(&c, "INSERT INTO parent (n) VALUES (4) RETURNING id").await.0, vec!["2"]);
        // Django's sequence reset after loading rows with their ids.
        c.batch_execute("INSERT INTO parent (id, n) VALUES (41, 5)").await.unwrap();
        let reset = "SELECT setval(pg_get_serial_sequence('\"parent\"','id'), coalesce(max(\"id\"), 1), max(\"id\") IS NOT null) FROM \"parent\"";
        assert_eq!(rows(&c, reset).await.0, vec!["41"]);
        assert_eq!(rows(&c, "INSERT INTO parent (n) VALUES (6) RETURNING id").await.0, vec!["42"]);
        assert_eq!(rows(&c, "SELECT nextval('parent_id_seq')").await.0, vec!["43"]);
        assert_eq!(rows(&c, "SELECT setval('public.parent_id_seq', 100, false)").await.0, vec!["100"]);
        assert_eq!(rows(&c, "INSERT INTO parent (n) VALUES (7) RETURNING id").await.0, vec!["100"]);
        assert_ne!(code(&c, "SELECT setval('nope_id_seq', 5)").await, "ok");
    });
}
