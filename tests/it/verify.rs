//! verify's comparison rules against real PostgreSQL: values compared by their meaning in
//! the target's types (JSON documents, numerics, timestamps in their several SQLite forms)
//! through the fast raw-tuple path, and composite keys merged in key order.

use rusqlite::Connection;

use crate::support::cli::{sqlite_db, synced_and_verified, verify_differs};

/// Verify from SQLite compares rows as raw binary tuples where it can (see
/// src/sync/verify_raw.rs); rows whose bytes differ only in representation (JSON key order
/// and spacing, timestamps written with `T` and `Z`, an amount stored as integer text)
/// are decoded and found equal, and a real difference is still named by column.
#[test]
fn raw_tuple_comparison_agrees_with_the_text_rules() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_db(dir.path(), "raw.db",
            "CREATE TABLE items (id INTEGER PRIMARY KEY, doc JSON, amount DECIMAL(10,2), at DATETIME, n INTEGER, ok BOOLEAN, name TEXT);
             INSERT INTO items VALUES
               (1, '{\"b\":1,\"a\":[1,2]}', 12.5, '2024-03-01T10:00:00Z', 7, 1, 'plain'),
               (2, '{\"a\": [1, 2], \"b\": 1}', 3, '2024-03-01 10:00:00.250', -3, 0, 'Zoë 🚀'),
               (3, NULL, -0.05, 1709287200, NULL, NULL, NULL),
               (4, '[]', 99999999.99, '2024-03-01 10:00:00+02:00', 0, 1, ''),
               (5, 5, 0.1, '2024-03-01', 1, 0, 'a number as the document: compared in text form');",
    );
    let (pg, from, to) = synced_and_verified(&db);
    pg.psql_db(
        "app",
        "UPDATE items SET amount = 12.51 WHERE id = 1; UPDATE items SET doc = '{\"a\": [1, 2], \"b\": 2}' WHERE id = 2",
    );
    verify_differs(
        &from,
        &to,
        &[
            "table items: 5 rows in source, 5 in target: 2 difference(s)",
            r#"key ["1"] column "amount": source "12.50" target "12.51""#,
            r#"key ["2"] column "doc""#,
        ],
    );
}

/// A composite key mixing an integer and a text column (declared NOCASE in SQLite) is
/// merged in the order both sides read it: one deleted row is one difference, not a
/// cascade of rows reported missing on one side and extra on the other.
#[test]
fn composite_keys_are_merged_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tags.db");
    let c = Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE tags (account_id INTEGER NOT NULL, tag TEXT NOT NULL COLLATE NOCASE,
           PRIMARY KEY (account_id, tag));",
    )
    .unwrap();
    for account in 1..=25 {
        for tag in ["B", "a", "c"] {
            c.execute("INSERT INTO tags VALUES (?1, ?2)", (account, tag))
                .unwrap();
        }
    }
    drop(c);
    let (pg, from, to) = synced_and_verified(&db);
    pg.psql_db("app", "DELETE FROM tags WHERE account_id = 9 AND tag = 'a'");
    verify_differs(
        &from,
        &to,
        &[
            "75 rows in source, 74 in target: 1 difference(s)",
            r#"key ["9", "a"]: missing in target"#,
        ],
    );
}
