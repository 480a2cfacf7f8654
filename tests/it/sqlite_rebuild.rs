//! Tables the SQLite backend makes again for keys (ADD PRIMARY KEY, dropping a key or
//! UNIQUE declared in CREATE TABLE), and psql's `\d` of Django-made tables after a rename,
//! compared with a real PostgreSQL.

use crate::sqlite_ddl::{code, one, psql_script};
use crate::support::{connect, rt, sqlite_proxy};

/// psql's `\d` of tables made the way Django's migrations make them (a UNIQUE added by
/// ALTER TABLE, a `_like` index with `varchar_pattern_ops`, a deferrable foreign key added
/// by ALTER TABLE), then renamed, reads as on PostgreSQL: the UNIQUE is listed as a
/// constraint, the operator class is shown, and the keys keep the names they were made
/// with (before, they were named after the table's new name).
#[test]
fn psql_describes_django_made_and_renamed_tables_as_postgresql_does() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    let script = "CREATE TABLE u (id serial PRIMARY KEY, username varchar(150) NOT NULL, \
                  email varchar(100) UNIQUE);\n\
                  ALTER TABLE u ADD CONSTRAINT u_username_key UNIQUE (username);\n\
                  CREATE INDEX u_username_like ON u (username varchar_pattern_ops);\n\
                  CREATE TABLE post (id bigserial PRIMARY KEY, author_id integer NOT NULL, \
                  title text, UNIQUE (author_id, title));\n\
                  ALTER TABLE post ADD CONSTRAINT post_author_id_fk FOREIGN KEY (author_id) \
                  REFERENCES u (id) DEFERRABLE INITIALLY DEFERRED;\n\
                  CREATE INDEX post_title_like ON post (title text_pattern_ops DESC);\n\
                  ALTER TABLE post RENAME TO article;\n\
                  \\d u\n\\d article\n";
    let (want, got) = (
        psql_script(pg.port, script),
        psql_script(proxy.port, script),
    );
    assert!(
        want.contains("\"u_username_key\" UNIQUE CONSTRAINT, btree (username)"),
        "{want}"
    );
    assert!(want.contains("(username varchar_pattern_ops)"), "{want}");
    assert_eq!(got, want, "psql \\d: the SQLite default, then PostgreSQL");
}

/// The ALTER TABLE forms SQLite can only do by making the table again — a primary key
/// added, a UNIQUE declared in CREATE TABLE dropped by name or with a column it names —
/// answer as PostgreSQL does (SQLSTATEs of refusals included, `\d` after each), keep the
/// rows, the ids' counter, the table's other indexes and its triggers (live sync's capture
/// triggers are SQLite triggers made outside the client's SQL, as this one is). A table
/// others refer to by foreign keys without actions (Django's) is rebuilt and the keys hold
/// through it.
#[test]
fn tables_are_rebuilt_for_keys_as_postgresql_changes_them() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    let setup = "CREATE TABLE w (a int, b int, c int, UNIQUE (a, b));\n\
                 INSERT INTO w VALUES (1, 1, 10), (2, 1, 20), (3, 2, 30);\n\
                 CREATE INDEX w_c ON w (c);\n\
                 CREATE TABLE k (id serial PRIMARY KEY, code text, CONSTRAINT k_code_uq UNIQUE (code));\n\
                 INSERT INTO k (code) VALUES ('x'), ('y'), ('z');\n\
                 DELETE FROM k WHERE code = 'z';\n\
                 CREATE TABLE n (x int, y text);\n\
                 INSERT INTO n VALUES (NULL, 'a');\n";
    psql_script(pg.port, setup);
    psql_script(proxy.port, setup);
    // A trigger of SQLite's own on w, as live sync's capture makes them.
    let file = dir.path().join("app.db");
    let lite = rusqlite::Connection::open(&file).unwrap();
    lite.execute_batch(
        "CREATE TABLE captured (c INTEGER); \
         CREATE TRIGGER w_capture AFTER INSERT ON w BEGIN INSERT INTO captured VALUES (new.c); END;",
    )
    .unwrap();
    let steps = "ALTER TABLE w DROP COLUMN b;\n\
                 ALTER TABLE w ADD PRIMARY KEY (a);\n\
                 INSERT INTO w VALUES (4, 40);\n\
                 ALTER TABLE k DROP CONSTRAINT k_code_uq;\n\
                 INSERT INTO k (code) VALUES ('x') RETURNING id;\n\
                 ALTER TABLE n ADD PRIMARY KEY (x);\n\
                 UPDATE n SET x = 1;\n\
                 INSERT INTO n VALUES (1, 'b');\n\
                 ALTER TABLE n ADD PRIMARY KEY (x);\n\
                 DELETE FROM n WHERE y = 'b';\n\
                 ALTER TABLE n ADD CONSTRAINT n_key PRIMARY KEY (x);\n\
                 ALTER TABLE n ADD PRIMARY KEY (y);\n\
                 SELECT a, c FROM w ORDER BY a;\n\
                 \\d w\n\\d k\n\\d n\n";
    let (want, got) = (psql_script(pg.port, steps), psql_script(proxy.port, steps));
    assert!(want.contains("\"w_pkey\" PRIMARY KEY, btree (a)"), "{want}");
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
    // Nothing lost: the trigger came back with the table and fires.
    let fired: i64 = lite
        .query_row("SELECT count(*) FROM captured WHERE c = 40", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fired, 1);
    let ok: String = lite
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    rt().block_on(async {
        let c = connect(&proxy.url("app", "secret")).await.unwrap();
        // Referred to by foreign keys without actions (as Django makes them): rebuilt,
        // the references hold through it and after.
        c.batch_execute(
            "CREATE TABLE parent (id int, u int UNIQUE); \
             CREATE TABLE child (pid int REFERENCES parent (u) DEFERRABLE INITIALLY DEFERRED, \
             qid int REFERENCES parent (u)); \
             INSERT INTO parent VALUES (1, 10), (2, 20); INSERT INTO child VALUES (10, 20)",
        )
        .await
        .unwrap();
        assert_eq!(
            code(&c, "BEGIN; ALTER TABLE parent ADD PRIMARY KEY (id); INSERT INTO child VALUES (20, 10); COMMIT").await,
            "ok"
        );
        assert_eq!(one(&c, "SELECT count(*) FROM child").await, "2");
        assert_eq!(code(&c, "INSERT INTO child VALUES (NULL, 99)").await, "23503");
        assert_eq!(code(&c, "INSERT INTO parent VALUES (1, 30)").await, "23505");
        // In the same transaction after a rebuild, the references are enforced again.
        assert_eq!(
            code(&c, "BEGIN; ALTER TABLE parent DROP CONSTRAINT parent_pkey; DELETE FROM parent WHERE id = 2").await,
            "23503"
        );
        c.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(one(&c, "SELECT count(*) FROM parent").await, "2");
        // The new key holds.
        assert_eq!(code(&c, "INSERT INTO w VALUES (1, 99)").await, "23505");
    });
}

/// A table others refer to by foreign keys with ON DELETE actions (CASCADE, SET NULL,
/// RESTRICT, as Alembic's `ondelete=` makes them) is rebuilt without the actions acting
/// on the rows it holds for the rebuild: every referring row is still there after, the
/// actions still act on a later DELETE, and `\d` of the referring tables shows them, as
/// on PostgreSQL.
#[test]
fn a_table_referred_to_with_delete_actions_is_rebuilt_and_its_references_keep_them() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = sqlite_proxy(&dir);
    let pg = crate::support::PgCluster::start();
    let script = "CREATE TABLE owner (id int NOT NULL, u int UNIQUE, name text);\n\
                  CREATE TABLE pet (id serial PRIMARY KEY, oid int REFERENCES owner (u) ON DELETE CASCADE);\n\
                  CREATE TABLE toy (id serial PRIMARY KEY, oid int REFERENCES owner (u) ON DELETE SET NULL ON UPDATE CASCADE);\n\
                  CREATE TABLE vet (id serial PRIMARY KEY, oid int REFERENCES owner (u) ON DELETE RESTRICT);\n\
                  INSERT INTO owner VALUES (1, 10, 'a'), (2, 20, 'b'), (3, 30, 'c');\n\
                  INSERT INTO pet (oid) VALUES (10), (10), (20);\n\
                  INSERT INTO toy (oid) VALUES (10), (20);\n\
                  INSERT INTO vet (oid) VALUES (30);\n\
                  BEGIN;\n\
                  ALTER TABLE owner ADD PRIMARY KEY (id);\n\
                  SELECT (SELECT count(*) FROM pet) AS pets, (SELECT count(oid) FROM toy) AS toys, (SELECT count(*) FROM vet) AS vets;\n\
                  COMMIT;\n\
                  SELECT (SELECT count(*) FROM pet) AS pets, (SELECT count(oid) FROM toy) AS toys, (SELECT count(*) FROM vet) AS vets;\n\
                  DELETE FROM owner WHERE u = 10;\n\
                  SELECT (SELECT count(*) FROM pet) AS pets, (SELECT count(oid) FROM toy) AS toys;\n\
                  \\set VERBOSITY sqlstate\n\
                  DELETE FROM owner WHERE u = 30;\n\
                  ALTER TABLE owner DROP CONSTRAINT owner_pkey;\n\
                  INSERT INTO pet (oid) VALUES (99);\n\
                  SELECT (SELECT count(*) FROM pet) AS pets, (SELECT count(*) FROM owner) AS owners;\n\
                  \\d owner\n\\d pet\n\\d toy\n\\d vet\n";
    let (want, got) = (
        psql_script(pg.port, script),
        psql_script(proxy.port, script),
    );
    assert!(want.contains("ON DELETE CASCADE"), "{want}");
    assert!(want.contains(" 3 |    2 |    1"), "{want}");
    assert_eq!(got, want, "the SQLite default, then PostgreSQL");
    let lite = rusqlite::Connection::open(dir.path().join("app.db")).unwrap();
    let ok: String = lite
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}
