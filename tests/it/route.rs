//! The route survives restarts: after a cutover a restarted proxy comes up on the new
//! backend (not on the config's `routing.active`), says loudly that the config disagrees,
//! and after a rollback comes up on the old one. A route file naming a backend the config
//! no longer has stops the start with a clear error instead of serving the wrong data.

use std::process::Command;

use serde_json::json;

use crate::support::sidecar::{Fixture, stop};

fn check_config(fx: &Fixture) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check-config", fx.cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_restart_comes_up_where_the_last_switch_left_it() {
    let fx = Fixture::new("");
    let state = fx.dir.path().join("switchyard.state.json");
    assert!(check_config(&fx).contains("no switch yet"));
    assert!(
        !state.exists(),
        "check-config must not create the route file"
    );

    let mut proxy = fx.serve();
    assert!(state.exists(), "serve creates the route file at start");
    let (code, rec) = fx.post("/cutover", Some(json!({"to": "remote"})));
    assert_eq!(code, 200, "{rec}");
    stop(&mut proxy, "TERM");

    let mut proxy = fx.serve();
    let st = fx.status();
    assert_eq!(st["active"], "remote", "{st}");
    assert_eq!(st["route"]["epoch"], 1, "{st}");
    assert_eq!(st["route"]["config_disagrees"], true, "{st}");
    assert_eq!(st["previous"], "local", "{st}");
    assert!(
        fx.log_text()
            .contains("WARNING: the config says routing.active = \"local\"")
    );
    let metrics = crate::support::rt()
        .block_on(switchyard::testing::call(
            &fx.target(),
            hyper::Method::GET,
            "/metrics",
            None,
        ))
        .unwrap()
        .1;
    let text = metrics.as_str().unwrap_or_default();
    assert!(
        text.contains("switchyard_route_config_mismatch 1"),
        "{text}"
    );
    assert!(check_config(&fx).contains("DISAGREES"));

    // Rollback works after the restart (the previous backend was kept), and sticks too.
    let (code, rec) = fx.post("/rollback", None);
    assert_eq!(code, 200, "{rec}");
    stop(&mut proxy, "KILL");
    let _proxy = fx.serve();
    let st = fx.status();
    assert_eq!(st["active"], "local", "{st}");
    assert_eq!(st["route"]["epoch"], 2, "{st}");
}

#[test]
fn a_route_file_naming_an_unknown_backend_stops_the_start() {
    let fx = Fixture::new("");
    std::fs::write(
        fx.dir.path().join("switchyard.state.json"),
        r#"{"active": "gone", "previous": "local", "epoch": 3, "switched_at_unix_ms": 1, "instance": "x"}"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["serve", "--config", fx.cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"gone\"") && err.contains("no such backend"),
        "{err}"
    );
}
