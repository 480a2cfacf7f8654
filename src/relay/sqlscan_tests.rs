//! Tests of the statement classifier.
use super::*;

fn c(sql: &str) -> Classified {
    classify(sql.as_bytes())
}

#[test]
fn set_statements_are_tracked() {
    let e = c("SET search_path TO app, public;").effects;
    assert_eq!(
        e,
        vec![Effect::Set {
            name: "search_path".into(),
            stmt: "SET search_path TO app, public".into()
        }]
    );
    assert!(
        matches!(&c("set session TimeZone = 'UTC'").effects[0], Effect::Set { name, .. } if name == "timezone")
    );
    assert!(
        matches!(&c("SET TIME ZONE 'UTC'").effects[0], Effect::Set { name, .. } if name == "timezone")
    );
    assert!(
        matches!(&c("SET myapp.tenant = '7'").effects[0], Effect::Set { name, .. } if name == "myapp.tenant")
    );
    assert!(c("SET LOCAL search_path TO x").effects.is_empty());
    assert!(
        c("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
            .effects
            .is_empty()
    );
    assert_eq!(c("RESET ALL").effects, vec![Effect::ResetAll]);
    assert_eq!(
        c("reset statement_timeout").effects,
        vec![Effect::Reset {
            name: "statement_timeout".into()
        }]
    );
    assert!(c("SELECT 'SET x = 1'").effects.is_empty());
}

#[test]
fn kept_state() {
    let k = |sql: &str| c(sql).kept;
    assert_eq!(k("LISTEN chan"), Some(Kept::Listen));
    assert_eq!(k("select 1; listen x"), Some(Kept::Listen));
    assert_eq!(k("PREPARE p AS SELECT 1"), Some(Kept::Prepare));
    assert_eq!(k("EXECUTE p"), Some(Kept::Prepare));
    assert_eq!(
        k("DECLARE c CURSOR WITH HOLD FOR SELECT 1"),
        Some(Kept::HoldCursor)
    );
    assert_eq!(k("SELECT pg_advisory_lock(1)"), Some(Kept::AdvisoryLock));
    assert_eq!(k("SELECT pg_advisory_xact_lock(1)"), None);
    assert_eq!(k("SELECT 'listen' , $$ pg_advisory_lock $$"), None);
    assert_eq!(k("-- LISTEN x\nSELECT 1"), None);
    assert_eq!(k("/* LISTEN /* nested */ x */ SELECT 1"), None);
    assert_eq!(k("UNLISTEN *"), None);
    assert_eq!(k("PREPARE TRANSACTION 'x'"), None);
    assert_eq!(k("CREATE TEMP TABLE t (a int)"), Some(Kept::TempTable));
    assert_eq!(
        k("create global temporary table t as select 1"),
        Some(Kept::TempTable)
    );
    assert_eq!(
        k("CREATE OR REPLACE TEMP VIEW v AS SELECT 1"),
        Some(Kept::TempTable)
    );
    assert_eq!(k("CREATE TABLE temp (a int)"), None);
    assert_eq!(k("CREATE TABLE t (temp int)"), None);
}

#[test]
fn set_config_for_the_session_is_kept() {
    let k = |sql: &str| c(sql).kept;
    assert_eq!(
        k("select set_config('client_encoding', 'sql_ascii', false)"),
        Some(Kept::SetConfig)
    );
    assert_eq!(
        k("SELECT pg_catalog.set_config('search_path', '', false)"),
        Some(Kept::SetConfig)
    );
    assert_eq!(k("select set_config($1, $2, $3)"), Some(Kept::SetConfig));
    assert_eq!(k("select set_config('a.b', f(1, 2), true)"), None);
    assert_eq!(k("SELECT set_config('app.user', '7', TRUE)"), None);
    assert_eq!(k("select 'set_config(1, 2, false)'"), None);
    assert_eq!(
        k("select set_config('a', 'b', is_local => false"),
        Some(Kept::SetConfig)
    );
    assert!(!obviously_plain(b"SELECT SET_CONFIG('a', 'b', false)"));
}

#[test]
fn discard_and_deallocate() {
    assert_eq!(c("DISCARD ALL").special, Special::DiscardAll);
    assert_eq!(c("discard all;").special, Special::DiscardAll);
    assert_eq!(c("DEALLOCATE ALL").special, Special::Deallocate(None));
    assert_eq!(
        c("DEALLOCATE PREPARE s1").special,
        Special::Deallocate(Some("s1".into()))
    );
    assert_eq!(
        c("DEALLOCATE \"S1\"").special,
        Special::Deallocate(Some("S1".into()))
    );
    assert_eq!(c("DISCARD ALL; SELECT 1").special, Special::None);
}

#[test]
fn fast_path_agrees_with_the_lexer() {
    assert!(obviously_plain(
        b"SELECT abalance FROM pgbench_accounts WHERE aid = $1;"
    ));
    assert!(obviously_plain(b"  insert into t values (1) ;\n"));
    for s in [
        "SET x = 1",
        "select pg_advisory_lock(1)",
        "SELECT PG_TRY_ADVISORY_LOCK(1)",
        "select 1; select 2",
        "/* c */ LISTEN x",
        "-- c\nLISTEN x",
        "(select 1)",
        "listen x",
        "Deallocate all",
        "",
    ] {
        assert!(!obviously_plain(s.as_bytes()), "{s}");
    }
    for s in [
        "SELECT 1",
        "update t set a = 1",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "COMMIT",
    ] {
        assert!(obviously_plain(s.as_bytes()), "{s}");
        assert_eq!(classify(s.as_bytes()), Classified::PLAIN);
    }
}

#[test]
fn lexer_survives_garbage() {
    for s in [
        "'",
        "\"",
        "$a$",
        "/*",
        "--",
        "$$ x",
        "'it''s'",
        "\u{1F600};;",
    ] {
        let _ = c(s);
    }
    assert_eq!(tokens(b"a'b''c'd").len(), 3);
}

#[test]
fn listen_alone_is_special_with_the_channel_as_the_server_names_it() {
    let listen = |s: &str| match c(s).special {
        Special::Listen(op) => Some(op),
        _ => None,
    };
    assert_eq!(listen("LISTEN Jobs"), Some(ListenOp::Listen("jobs".into())));
    assert_eq!(
        listen("listen \"Odd \"\"x\"\"\";"),
        Some(ListenOp::Listen("Odd \"x\"".into()))
    );
    assert_eq!(
        listen("UNLISTEN jobs"),
        Some(ListenOp::Unlisten("jobs".into()))
    );
    assert_eq!(listen("unlisten *"), Some(ListenOp::UnlistenAll));
    // Not alone, or not a plain channel: left to the server (and pinning).
    assert_eq!(listen("begin; listen jobs; commit"), None);
    assert_eq!(c("begin; listen jobs; commit").kept, Some(Kept::Listen));
    assert_eq!(listen("listen"), None);
    assert_eq!(listen("listen a b"), None);
}

#[test]
fn notifications_are_noticed() {
    assert!(c("NOTIFY jobs, 'x'").notifies);
    assert!(c("select pg_notify('jobs', 'x')").notifies);
    assert!(c("insert into t values (1); notify jobs").notifies);
    assert!(!c("select 'notify'").notifies);
    assert!(!c("select notify_count from t").notifies);
    assert!(!c("select pg_notify_x()").notifies);
}

#[test]
fn sql_prepare_and_execute_alone_are_special() {
    assert_eq!(
        c("PREPARE Q (int, text) AS select $1, $2;").special,
        Special::SqlPrepare {
            name: "q".into(),
            rest: "(int, text) AS select $1, $2".into()
        }
    );
    let sql = "execute \"Q\" (1, 'a')";
    match c(sql).special {
        Special::SqlExecute { name, at } => {
            assert_eq!(name, "Q");
            assert_eq!(&sql[at.0..at.1], "\"Q\"");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c("PREPARE TRANSACTION 'x'").special, Special::None);
    assert_eq!(c("prepare q as select 1; execute q").special, Special::None);
    assert_eq!(
        c("prepare q as select 1; execute q").kept,
        Some(Kept::Prepare)
    );
}

#[test]
fn an_unterminated_quoted_name_does_not_panic() {
    // `/"` was found by the fuzz target.
    for sql in [
        "/\"",
        "listen \"",
        "execute \"",
        "prepare \"",
        "deallocate \"",
        "unlisten \"ab",
    ] {
        let _ = c(sql);
    }
    assert_eq!(
        c("unlisten \"ab").special,
        Special::Listen(ListenOp::Unlisten("ab".into()))
    );
}
