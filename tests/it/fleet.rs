//! A fleet of three switchyard processes switching as one: every client records what it
//! committed (a ledger), live sync keeps the remote side in step, and after the switches
//! both sides must hold exactly the union of the ledgers. The side the fleet left must
//! refuse writes (the fence) from anyone but switchyard's own sync; a member that does not
//! acknowledge aborts the switch; a member frozen after acknowledging follows the commit
//! when thawed; a dead coordinator's switch is abandoned by the others; a dead sync
//! leader's sync is taken over.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::cluster::wait_until;
use crate::support::fleet::{FleetFx, signal};
use crate::support::workload::{Side, assert_same, changelog_len, seed_model, snapshot};
use crate::support::writers::{Outcome, Writers};

/// Writers through members `which`, four each, numbered apart.
fn writers(fx: &FleetFx, which: &[usize]) -> Vec<Writers> {
    which
        .iter()
        .map(|&i| {
            let _g = fx.runtime().enter();
            Writers::start_from(&fx.url(i), 100 * i as u64, 4)
        })
        .collect()
}

/// Stops the writers; every one of them must have seen no error.
fn finish(fx: &FleetFx, ws: Vec<Writers>) -> Outcome {
    let mut all = Outcome::default();
    for w in ws {
        let o = fx.runtime().block_on(w.finish());
        all.model.merge(&o.model);
        all.ops += o.ops;
        all.fenced += o.fenced;
        all.fenced_max = all.fenced_max.max(o.fenced_max);
        all.errors.extend(o.errors);
    }
    assert!(
        all.errors.is_empty(),
        "writers saw errors: {:#?}\n{}",
        all.errors,
        fx.logs()
    );
    all
}

/// Both sides hold the seed plus what every writer committed, once the source's
/// changelog is empty; the inactive side captured nothing (no write landed there).
fn assert_ledger(fx: &FleetFx, out: &Outcome, source: &Side<'_>, inactive: &Side<'_>) {
    assert!(
        wait_until(Duration::from_secs(60), || fx
            .runtime()
            .block_on(changelog_len(source))
            == 0),
        "live sync did not catch up\n{}",
        fx.logs()
    );
    let mut want = seed_model(300);
    want.merge(&out.model);
    for (name, side) in [
        ("local", Side::Pg(&fx.local)),
        ("remote", Side::Pg(&fx.remote)),
    ] {
        let got = fx.runtime().block_on(snapshot(&side));
        assert_same(name, &got, &want, 0);
    }
    assert_eq!(
        fx.runtime().block_on(changelog_len(inactive)),
        0,
        "writes were captured on the fenced side"
    );
}

/// The fence's epoch as the database holds it (0: not fenced).
fn fenced_at(fx: &FleetFx, local: bool) -> i64 {
    let pg = if local { &fx.local } else { &fx.remote };
    let sql = "SELECT coalesce(max(last_value), 0) FROM pg_sequences \
               WHERE schemaname = 'switchyard' AND sequencename = 'fenced_at'";
    pg.psql_db("app", sql).trim().parse().unwrap()
}

fn active_everywhere(fx: &FleetFx, members: &[usize], backend: &str, epoch: &Value) -> bool {
    wait_until(Duration::from_secs(3), || {
        members.iter().all(|&i| {
            let st = fx.get(i, "/status");
            st["active"] == backend && st["route"]["epoch"] == *epoch
        })
    })
}

#[test]
fn ten_fleet_switches_under_writers_lose_nothing_and_fence_the_old_side() {
    let fx = FleetFx::new(3, true);
    let _procs = fx.serve_all();
    fx.wait_members(3);
    fx.start_sync(1);
    let (code, answer) = fx.post(
        0,
        "/sync/start",
        Some(json!({"from": "local", "to": "remote"})),
    );
    assert_eq!(code, 409, "a second live sync in the fleet: {answer}");
    assert!(answer["error"].as_str().unwrap().contains("m2"), "{answer}");
    let ws = writers(&fx, &[0, 1, 2]);
    std::thread::sleep(Duration::from_millis(1500));
    let mut pauses = Vec::new();
    for k in 0..10 {
        let (path, body, new) = if k % 2 == 0 {
            ("/cutover", Some(json!({"to": "remote"})), "remote")
        } else {
            ("/rollback", None, "local")
        };
        // Asked of each member in turn: m2 runs it (it runs the sync), the others pass it on.
        let rec = fx.switch(k % 3, path, body);
        assert_eq!(rec["ok"], true, "switch {k}: {rec}\n{}", fx.logs());
        let epoch = rec["epoch"].clone();
        assert!(
            active_everywhere(&fx, &[0, 1, 2], new, &epoch),
            "switch {k}: not every member serves {new} at epoch {epoch}\n{}",
            fx.logs()
        );
        let old_is_local = new == "remote";
        let old = if old_is_local { &fx.local } else { &fx.remote };
        let (code, msg) = fx
            .direct(
                old,
                "INSERT INTO events (id, payload) VALUES (-1, 'direct')",
            )
            .expect_err("a direct write to the fenced side");
        assert_eq!(code, "25006", "{msg}");
        assert!(
            msg.contains(&format!("fenced at fleet epoch {epoch}")),
            "{msg}"
        );
        assert_eq!(fenced_at(&fx, old_is_local), epoch.as_i64().unwrap());
        assert_eq!(
            fenced_at(&fx, !old_is_local),
            0,
            "the active side is fenced"
        );
        let active = if old_is_local { &fx.remote } else { &fx.local };
        let triggers = "SELECT count(*) FROM pg_trigger WHERE tgname = 'switchyard_fence'";
        assert_eq!(
            active.psql_db("app", triggers).trim(),
            "0",
            "fence triggers left on the active side"
        );
        let members = rec["fleet"]["members"].as_array().unwrap();
        assert_eq!(members.len(), 3, "{rec}");
        pauses.push(rec["pause_ms"].as_f64().unwrap());
        std::thread::sleep(Duration::from_millis(700));
    }
    let out = finish(&fx, ws);
    assert!(out.ops > 300, "the writers barely ran: {} ops", out.ops);
    eprintln!(
        "fleet: {} ops, coordinator pauses (ms): {pauses:?}",
        out.ops
    );
    assert_ledger(&fx, &out, &Side::Pg(&fx.local), &Side::Pg(&fx.remote));
}

#[test]
fn a_member_frozen_during_prepare_aborts_the_switch_and_nothing_is_fenced() {
    // Leases longer than the switch's preflight can take on a loaded machine (1.7 s was
    // seen): with 2 s, the frozen member's lease could run out before the switch began,
    // and the fleet rightly switched without it.
    let fx = FleetFx::with_lease(3, false, "10s");
    let procs = fx.serve_all();
    fx.wait_members(3);
    signal(&procs[2], "STOP");
    let t = Instant::now();
    let (code, rec) = fx.post(0, "/cutover", Some(json!({"to": "remote"})));
    let took = t.elapsed();
    signal(&procs[2], "CONT");
    assert_eq!(code, 503, "{rec}");
    assert_eq!(rec["failure"], "fleet", "{rec}");
    let error = rec["error"].as_str().unwrap();
    assert!(
        error.contains("m3") && error.contains("did not acknowledge"),
        "{rec}"
    );
    // Members wait for acknowledgements half of switch.max_pause (2 s), then resume.
    let paused = rec["pause_ms"].as_f64().unwrap();
    assert!(
        (1000.0..1600.0).contains(&paused),
        "paused {paused} ms: {rec}"
    );
    assert!(took < Duration::from_secs(10), "the abort took {took:?}");
    assert!(active_everywhere(&fx, &[0, 1, 2], "local", &json!(0)));
    fx.direct(
        &fx.local,
        "INSERT INTO events (id, payload) VALUES (-2, 'direct')",
    )
    .expect("the old side is not fenced after an aborted switch");
    assert_eq!(fenced_at(&fx, true), 0);
    assert_eq!(fx.get(1, "/fleet")["state"]["phase"], "aborted");
    // The thawed member takes part in the next switch.
    let rec = fx.switch(2, "/cutover", Some(json!({"to": "remote"})));
    assert_eq!(rec["ok"], true, "{rec}\n{}", fx.logs());
    assert!(active_everywhere(&fx, &[0, 1, 2], "remote", &json!(1)));
}

#[test]
fn a_member_frozen_after_acknowledging_follows_the_commit_when_thawed() {
    let fx = FleetFx::new(3, false);
    let procs = fx.serve_all();
    fx.wait_members(3);
    fx.start_sync(0);
    let ws = writers(&fx, &[0, 1, 2]);
    std::thread::sleep(Duration::from_millis(1000));
    // Freeze m3 the moment its acknowledgement reaches the store, before the commit.
    let store = fx.local.url("app");
    let switch = fx.cutover_on_thread(0);
    let frozen = fx.runtime().block_on(async {
        let c = crate::support::connect(&store).await.unwrap();
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            let r = c
                .query_one(
                    "SELECT m.ack_switch = f.switch_id AND f.phase = 'prepare' FROM switchyard.fleet_members m \
                     JOIN switchyard.fleet f ON f.name = m.fleet WHERE m.member = 'm3'",
                    &[],
                )
                .await
                .unwrap();
            if r.get::<_, bool>(0) {
                signal(&procs[2], "STOP");
                return true;
            }
        }
        false
    });
    let (code, rec) = switch.join().unwrap().unwrap();
    if !frozen {
        panic!("m3's acknowledgement was never seen before the commit: {rec}");
    }
    assert_eq!(code, 200, "{rec}\n{}", fx.logs());
    std::thread::sleep(Duration::from_millis(1500));
    signal(&procs[2], "CONT");
    assert!(
        active_everywhere(&fx, &[0, 1, 2], "remote", &rec["epoch"]),
        "the thawed member did not follow the commit\n{}",
        fx.logs()
    );
    std::thread::sleep(Duration::from_millis(1000));
    let out = finish(&fx, ws);
    assert_ledger(&fx, &out, &Side::Pg(&fx.remote), &Side::Pg(&fx.local));
}

#[test]
fn a_dead_sync_leader_is_taken_over_and_a_restarted_member_follows_the_fleet() {
    let fx = FleetFx::new(3, false);
    let mut procs = fx.serve_all();
    fx.wait_members(3);
    fx.start_sync(1);
    let ws = writers(&fx, &[0, 2]);
    std::thread::sleep(Duration::from_millis(1000));
    // The sync leader (m2) dies: another member takes the sync over within the lease
    // (2 s), a heartbeat and the resume.
    signal(&procs[1], "KILL");
    let t = Instant::now();
    let taken = wait_until(Duration::from_secs(15), || {
        let l = &fx.get(0, "/fleet")["state"]["sync_leader"];
        l == "m1" || l == "m3"
    });
    assert!(taken, "nobody took the sync over\n{}", fx.logs());
    eprintln!("live sync taken over after {:?}", t.elapsed());
    let leader = fx.get(0, "/fleet")["state"]["sync_leader"].clone();
    let on = if leader == "m1" { 0 } else { 2 };
    fx.wait_streaming(on);
    // A switch asked of the member that was not the leader is run by the new one.
    let rec = fx.switch(2 - on, "/cutover", Some(json!({"to": "remote"})));
    assert_eq!(rec["ok"], true, "{rec}\n{}", fx.logs());
    assert!(active_everywhere(&fx, &[0, 2], "remote", &rec["epoch"]));
    // The dead member comes back: it follows the fleet's route, not its route file.
    procs[1] = fx.serve(1);
    assert!(active_everywhere(&fx, &[0, 1, 2], "remote", &rec["epoch"]));
    std::thread::sleep(Duration::from_millis(1000));
    let out = finish(&fx, ws);
    assert_ledger(&fx, &out, &Side::Pg(&fx.remote), &Side::Pg(&fx.local));
}

#[test]
fn a_coordinator_killed_after_fencing_is_finished_for_by_the_others() {
    let fx = FleetFx::new(3, false);
    let stall = [("SWITCHYARD_FAILPOINT_FLEET_STALL_AFTER_FENCE_MS", "1500")];
    let mut procs = [fx.serve_with(0, &stall), fx.serve(1), fx.serve(2)];
    fx.wait_members(3);
    fx.start_sync(0);
    let ws = writers(&fx, &[1, 2]);
    std::thread::sleep(Duration::from_millis(1000));
    // m1 runs the sync, so it coordinates; it is killed once the old side is fenced.
    let asked = fx.cutover_on_thread(0);
    assert!(
        wait_until(Duration::from_secs(10), || fenced_at(&fx, true) == 1),
        "the old side was never fenced\n{}",
        fx.logs()
    );
    signal(&procs[0], "KILL");
    let killed = Instant::now();
    assert!(asked.join().unwrap().is_err(), "the coordinator answered");
    // The others wait for the deadline (max_pause 2 s) and a lease (2 s), take the sync
    // over and finish the switch.
    assert!(
        active_everywhere_within(&fx, &[1, 2], "remote", Duration::from_secs(20)),
        "the others did not finish the switch\n{}",
        fx.logs()
    );
    eprintln!(
        "switch finished {:?} after the coordinator died",
        killed.elapsed()
    );
    assert_eq!(fenced_at(&fx, true), 1, "the old side must stay fenced");
    let f = fx.get(1, "/fleet");
    assert_eq!(f["state"]["phase"], "committed", "{f}");
    assert_eq!(f["epoch"], 1, "{f}");
    procs[0] = fx.serve(0);
    assert!(active_everywhere(&fx, &[0, 1, 2], "remote", &json!(1)));
    std::thread::sleep(Duration::from_millis(1000));
    let out = finish(&fx, ws);
    assert_ledger(&fx, &out, &Side::Pg(&fx.remote), &Side::Pg(&fx.local));
}

fn active_everywhere_within(fx: &FleetFx, members: &[usize], backend: &str, d: Duration) -> bool {
    wait_until(d, || {
        members
            .iter()
            .all(|&i| fx.get(i, "/status")["active"] == backend)
    })
}

#[test]
fn a_direct_writer_in_flight_on_the_old_side_refuses_the_switch_naming_it() {
    let fx = FleetFx::new(2, false);
    let _procs = fx.serve_all();
    fx.wait_members(2);
    let rt = fx.runtime();
    let direct = rt.block_on(async {
        let c = crate::support::connect(&fx.local.url("app")).await.unwrap();
        c.batch_execute("BEGIN; INSERT INTO events (id, payload) VALUES (-3, 'in flight')")
            .await
            .unwrap();
        c
    });
    // Its transaction holds the table, so the fence cannot go on it: refused before
    // anyone is paused, naming the transaction.
    let (code, rec) = fx.post(0, "/cutover", Some(json!({"to": "remote"})));
    assert_eq!(code, 503, "{rec}");
    let error = rec["error"].as_str().unwrap();
    assert!(
        error.contains("\"events\"") && error.contains("idle in transaction"),
        "{rec}"
    );
    assert_eq!(rec["pause_ms"], 0.0, "{rec}");
    assert_eq!(fenced_at(&fx, true), 0);
    assert!(active_everywhere(&fx, &[0, 1], "local", &json!(0)));
    // Once it commits, the switch goes ahead.
    rt.block_on(direct.batch_execute("COMMIT")).unwrap();
    let rec = fx.switch(1, "/cutover", Some(json!({"to": "remote"})));
    assert_eq!(rec["ok"], true, "{rec}\n{}", fx.logs());
    let (code, _) = fx
        .direct(
            &fx.local,
            "INSERT INTO events (id, payload) VALUES (-4, 'late')",
        )
        .expect_err("the old side is fenced");
    assert_eq!(code, "25006");
}

#[test]
fn a_member_that_missed_a_switch_gets_at_most_one_fence_error_per_client_then_moves() {
    let fx = FleetFx::new(3, false);
    let procs = fx.serve_all();
    fx.wait_members(3);
    fx.start_sync(0);
    let healthy = writers(&fx, &[0, 1]);
    let stale = writers(&fx, &[2]);
    std::thread::sleep(Duration::from_millis(1000));
    // m3 is frozen until its lease (2 s) runs out: the switch goes on without it.
    signal(&procs[2], "STOP");
    assert!(
        wait_until(Duration::from_secs(10), || {
            fx.get(0, "/fleet")["members"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["member"] == "m3" && m["alive"] == false))
        }),
        "m3's lease did not run out"
    );
    let rec = fx.switch(0, "/cutover", Some(json!({"to": "remote"})));
    assert_eq!(rec["ok"], true, "{rec}\n{}", fx.logs());
    assert_eq!(
        rec["fleet"]["members"].as_array().unwrap().len(),
        2,
        "{rec}"
    );
    // Thawed, it still serves the old side until it reads the store: what its clients
    // send meanwhile is refused by the fence, once each at most, then it moves.
    signal(&procs[2], "CONT");
    assert!(
        active_everywhere(&fx, &[0, 1, 2], "remote", &rec["epoch"]),
        "the stale member did not move\n{}",
        fx.logs()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let mut ws = healthy;
    ws.extend(stale);
    let out = finish(&fx, ws);
    eprintln!(
        "fence refusals: {} in all, at most {} for one client",
        out.fenced, out.fenced_max
    );
    assert!(
        out.fenced_max <= 1,
        "{} fence errors for one client",
        out.fenced_max
    );
    assert_ledger(&fx, &out, &Side::Pg(&fx.remote), &Side::Pg(&fx.local));
}
