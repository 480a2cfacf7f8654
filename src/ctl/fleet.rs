//! How `ctl fleet` prints the fleet (`GET /fleet`), and the fleet lines of a switch's
//! answer.

use serde_json::Value;

fn ms(v: &Value) -> String {
    v.as_f64()
        .map(|m| format!("{m:.1}"))
        .unwrap_or_else(|| "-".into())
}

/// The fleet: its epoch, route, last switch and members.
pub fn render_fleet(b: &Value) -> String {
    let st = &b["state"];
    let store = if b["store_up"].as_bool() == Some(true) {
        "up".to_string()
    } else {
        format!(
            "UNREACHABLE: {}",
            b["store_error"].as_str().unwrap_or("not asked yet")
        )
    };
    let mut out = format!(
        "fleet {}   member {}   epoch {}   active {}   store {} ({store})\n",
        b["name"].as_str().unwrap_or("?"),
        b["member"].as_str().unwrap_or("?"),
        b["epoch"],
        st["active"].as_str().unwrap_or("?"),
        b["store"].as_str().unwrap_or("?"),
    );
    let leader = st["sync_leader"].as_str();
    let lag = b["members"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["member"].as_str() == leader)
        .and_then(|m| m["live_sync"].as_str())
        .map(|l| format!(" ({l})"))
        .unwrap_or_default();
    out += &format!("live sync leader: {}{lag}\n", leader.unwrap_or("none"));
    if let Some(fences) = b["fences"].as_object().filter(|f| !f.is_empty()) {
        let list: Vec<String> = fences
            .iter()
            .map(|(name, f)| match f["fenced_at"].as_u64() {
                Some(e) => format!(
                    "{name} FENCED at epoch {e} ({} writes refused)",
                    f["refused"]
                ),
                None => format!("{name} open ({} writes refused)", f["refused"]),
            })
            .collect();
        out += &format!("fences: {}\n", list.join(", "));
    }
    if st["switch_id"].as_u64().unwrap_or(0) > 0 {
        out += &format!(
            "switch {}: {} {} -> {}, {} (coordinator {}){}\n",
            st["switch_id"],
            st["kind"].as_str().unwrap_or("?"),
            st["source"].as_str().unwrap_or("?"),
            st["target"].as_str().unwrap_or("?"),
            st["phase"].as_str().unwrap_or("?"),
            st["coordinator"].as_str().unwrap_or("?"),
            st["outcome"]
                .as_str()
                .filter(|o| *o != "committed")
                .map(|o| format!(": {o}"))
                .unwrap_or_default(),
        );
    }
    out += &format!(
        "{:<28} {:<6} {:>9} {:>5}  {:<12} {:>8} {:>11}\n",
        "MEMBER", "LEASE", "HEARTBEAT", "EPOCH", "ACTIVE", "ACK ms", "RESUMED ms"
    );
    let last = st["switch_id"].as_u64();
    for m in b["members"].as_array().into_iter().flatten() {
        let this = m["ack_switch"].as_u64() == last;
        out += &format!(
            "{:<28} {:<6} {:>7.1} s {:>5}  {:<12} {:>8} {:>11}{}\n",
            m["member"].as_str().unwrap_or("?"),
            if m["alive"].as_bool() == Some(true) {
                "alive"
            } else {
                "GONE"
            },
            m["heartbeat_age_s"].as_f64().unwrap_or(f64::NAN),
            m["epoch"].to_string(),
            m["active"].as_str().unwrap_or("?"),
            if this { ms(&m["ack_ms"]) } else { "-".into() },
            if this { ms(&m["done_ms"]) } else { "-".into() },
            m["ack_error"]
                .as_str()
                .filter(|_| this)
                .map(|e| format!("  ({e})"))
                .unwrap_or_default(),
        );
    }
    out
}

/// The fleet part of a switch's answer: each member's acknowledgement and resume times.
pub fn render_switch(f: &Value) -> String {
    let mut out = format!(
        "  fleet switch {} (epoch {}): fleet paused {} ms (prepare {} ms, commit {} ms)\n",
        f["switch_id"],
        f["epoch"],
        ms(&f["fleet_pause_ms"]),
        ms(&f["prepare_ms"]),
        ms(&f["commit_ms"])
    );
    for m in f["members"].as_array().into_iter().flatten() {
        out += &format!(
            "    {:<28} acknowledged {:>7} ms   serving again {:>7} ms{}\n",
            m["member"].as_str().unwrap_or("?"),
            ms(&m["ack_ms"]),
            ms(&m["resumed_ms"]),
            m["ack_error"]
                .as_str()
                .map(|e| format!("  ({e})"))
                .unwrap_or_default()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_fleet_shows_leader_fences_last_switch_and_gone_members() {
        let b = json!({
            "name": "shop", "member": "m1", "epoch": 3, "store": "db:6543/postgres",
            "store_up": true,
            "state": {"active": "supabase", "switch_id": 4, "kind": "cutover", "source": "local",
                      "target": "supabase", "phase": "aborted", "coordinator": "m2",
                      "outcome": "member(s) m3 did not acknowledge", "sync_leader": "m2"},
            "fences": {"local": {"fenced_at": 3, "refused": 2}, "supabase": {"fenced_at": null, "refused": 0}},
            "members": [
                {"member": "m1", "alive": true, "heartbeat_age_s": 0.4, "epoch": 3, "active": "supabase",
                 "ack_switch": 4, "ack_ms": 2.5, "done_ms": 40.0},
                {"member": "m2", "alive": true, "heartbeat_age_s": 0.2, "epoch": 3, "active": "supabase",
                 "ack_switch": 4, "ack_ms": 1.0, "done_ms": null, "live_sync": "supabase -> local streaming, 3 pending (oldest 0.1 s)"},
                {"member": "m3", "alive": false, "heartbeat_age_s": 19.7, "epoch": 2, "active": "local",
                 "ack_switch": 3, "ack_ms": 5.0, "done_ms": 30.0}
            ]
        });
        let out = super::render_fleet(&b);
        assert!(out.contains("epoch 3   active supabase"), "{out}");
        assert!(
            out.contains("live sync leader: m2 (supabase -> local streaming, 3 pending"),
            "{out}"
        );
        assert!(
            out.contains("local FENCED at epoch 3 (2 writes refused), supabase open"),
            "{out}"
        );
        assert!(
            out.contains(
                "switch 4: cutover local -> supabase, aborted (coordinator m2): member(s) m3"
            ),
            "{out}"
        );
        let m3 = out.lines().find(|l| l.starts_with("m3")).unwrap();
        assert!(
            m3.contains("GONE") && m3.contains("19.7 s") && m3.ends_with('-'),
            "{m3}"
        );
    }
}
