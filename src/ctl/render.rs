//! How `ctl` prints the admin API's answers when `--json` is not given.

use serde_json::Value;

use super::CtlCommand;

pub fn render(cmd: &CtlCommand, b: &Value) -> String {
    match cmd {
        CtlCommand::Health => "alive\n".into(),
        CtlCommand::Reload if b["ok"].as_bool() == Some(true) => {
            let r = &b["reload"];
            let list = |k: &str| {
                r[k].as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default()
            };
            format!(
                "reloaded: added [{}], changed [{}], removed [{}], unchanged [{}]\n  {}\n",
                list("added"),
                list("changed"),
                list("removed"),
                list("unchanged"),
                r["note"].as_str().unwrap_or("")
            )
        }
        CtlCommand::Ready if b["ready"].as_bool() == Some(true) => {
            format!(
                "ready: backend \"{}\" is reachable\n",
                b["active"].as_str().unwrap_or("?")
            )
        }
        CtlCommand::Ready => format!(
            "NOT ready: backend \"{}\": {}\n",
            b["active"].as_str().unwrap_or("?"),
            b["reason"].as_str().unwrap_or("")
        ),
        CtlCommand::Drain { .. } if b["ok"].as_bool() == Some(true) => {
            format!(
                "drained: no clients connected (waited {} ms)\n",
                b["waited_ms"]
            )
        }
        CtlCommand::Status => render_status(b),
        CtlCommand::Fleet if b.get("members").is_some() => super::fleet::render_fleet(b),
        CtlCommand::Cutover { .. } | CtlCommand::Rollback { .. } if b.get("from").is_some() => {
            let verdict = if b["ok"].as_bool() == Some(true) {
                "done".to_string()
            } else {
                format!("FAILED: {}", b["error"].as_str().unwrap_or(""))
            };
            let fleet = b
                .get("fleet")
                .map(super::fleet::render_switch)
                .unwrap_or_default();
            format!(
                "{} {} -> {}: {verdict}\n  paused {} ms (drain {} ms, preflight {} ms)\n{fleet}",
                b["kind"].as_str().unwrap_or("switch"),
                b["from"].as_str().unwrap_or("?"),
                b["to"].as_str().unwrap_or("?"),
                b["pause_ms"],
                b["drain_ms"],
                b["preflight_ms"]
            )
        }
        CtlCommand::Pause { .. } if b["ok"].as_bool() == Some(true) => {
            "paused: new transactions are held\n".into()
        }
        CtlCommand::Resume if b["ok"].as_bool() == Some(true) => {
            format!("resumed after {} ms\n", b["held_ms"])
        }
        CtlCommand::Sync { .. } | CtlCommand::SyncStop if b["ok"].as_bool() == Some(true) => {
            render_live(&b["live_sync"])
        }
        _ => String::new(),
    }
}

fn render_status(b: &Value) -> String {
    let mut out = format!(
        "active: {}   state: {}   paused: {}   switches: {}\nclients: {} connected, {} waiting, {} in a transaction\n",
        b["active"].as_str().unwrap_or("?"),
        b["state"].as_str().unwrap_or("?"),
        b["paused"],
        b["switches"],
        b["clients"]["connected"],
        b["clients"]["waiting"],
        b["clients"]["in_transaction"]
    );
    if let Some(backends) = b["backends"].as_object() {
        for (name, v) in backends {
            let health = if v["up"].as_bool() == Some(true) {
                "up".to_string()
            } else {
                format!("DOWN ({})", v["last_error"].as_str().unwrap_or(""))
            };
            out.push_str(&format!(
                "  {name:<12} {health:<6} pool {}/{} active, {} idle, {} waiting   {}\n",
                v["pool"]["active"],
                v["pool"]["size"],
                v["pool"]["idle"],
                v["pool"]["waiting"],
                v["url"].as_str().unwrap_or("")
            ));
            if let Some(why) = v["pooler_detected"].as_str() {
                out.push_str(&format!(
                    "  {:<12} pooler {}: {why}\n",
                    "",
                    v["pooler"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    if let Some(l) = b.get("live_sync").filter(|s| !s.is_null()) {
        out.push_str(&render_live(l));
    }
    if let Some(x) = b.get("live_sync_blocked").filter(|s| !s.is_null()) {
        out.push_str(&format!(
            "live sync {} -> {}: NOT RUNNING HERE: {}
  switches between them are refused until it runs
",
            x["from"].as_str().unwrap_or("?"),
            x["to"].as_str().unwrap_or("?"),
            x["reason"].as_str().unwrap_or("")
        ));
    }
    let r = &b["route"];
    if r["config_disagrees"].as_bool() == Some(true) {
        out.push_str(&format!(
            "route: {} after {} switch(es), kept in {}; the config's routing.active says {}
",
            b["active"].as_str().unwrap_or("?"),
            r["epoch"],
            r["state_file"].as_str().unwrap_or("memory only"),
            r["config_active"].as_str().unwrap_or("?")
        ));
    }
    if let Some(s) = b.get("last_switch").filter(|s| !s.is_null()) {
        let result = if s["ok"].as_bool() == Some(true) {
            "ok".to_string()
        } else {
            format!("failed: {}", s["error"].as_str().unwrap_or(""))
        };
        out.push_str(&format!(
            "last switch: {} {} -> {} {result}, paused {} ms\n",
            s["kind"].as_str().unwrap_or(""),
            s["from"].as_str().unwrap_or(""),
            s["to"].as_str().unwrap_or(""),
            s["pause_ms"]
        ));
    }
    out
}

pub fn render_live(l: &Value) -> String {
    let name = |k: &str| l[k].as_str().unwrap_or("?").to_string();
    let (from, to, source, target) = (name("from"), name("to"), name("source"), name("target"));
    let phase = name("phase");
    // One direction on the first line: the way changes flow now.
    let mut out = if (source.as_str(), target.as_str()) == (from.as_str(), to.as_str()) {
        format!("live sync {source} -> {target}: {phase}\n")
    } else {
        format!(
            "live sync {source} -> {target}: {phase} (reversed by the cutover; started {from} -> {to})\n"
        )
    };
    if let Some(c) = l
        .get("copy")
        .filter(|c| c["tables_total"].as_u64() > Some(0))
    {
        out.push_str(&format!(
            "  {}\n",
            copy_line(
                c,
                phase != "capturing" && phase != "backfilling" && phase != "starting"
            )
        ));
    }
    out.push_str(&format!(
        "  pending {} changes (oldest {:.1} s), applied {}, writes on the inactive side {}\n",
        l["pending_changes"],
        l["oldest_change_seconds"].as_f64().unwrap_or(0.0),
        l["applied_total"],
        l["inactive_side_writes"],
    ));
    if l["resumed"].as_bool() == Some(true) {
        out.push_str("  resumed from its record in the databases after a restart\n");
    }
    let list = |v: &Value| {
        v.as_array().filter(|a| !a.is_empty()).map(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
    };
    if let Some(fks) = list(&l["unvalidated_foreign_keys"]) {
        out.push_str(&format!(
            "  foreign keys waiting for the changes captured during the copy: {fks}\n"
        ));
    }
    if let Some(cols) = list(&l["choices"]["exclude_columns"]) {
        out.push_str(&format!("  source columns left out: {cols}\n"));
    }
    if let Some(types) = list(&l["choices"]["types"]) {
        out.push_str(&format!("  column types chosen: {types}\n"));
    }
    if let Some(e) = l["last_error"].as_str() {
        out.push_str(&format!("  last error: {e}\n"));
    }
    out
}

/// The initial copy in one line: under way (tables, rows, rate, time, estimate) or done.
pub fn copy_line(c: &Value, finished: bool) -> String {
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    let f = |k: &str| c[k].as_f64().unwrap_or(0.0);
    if finished {
        return format!(
            "copy: done, {} tables, {} rows in {}",
            n("tables_total"),
            n("rows_done"),
            duration(f("elapsed_seconds"))
        );
    }
    let (done, total) = (n("rows_done"), n("rows_total"));
    let percent = (done.min(total) * 100)
        .checked_div(total)
        .map(|p| format!(" ({p}%)"))
        .unwrap_or_default();
    let eta = c["eta_seconds"]
        .as_f64()
        .map(|s| format!(", about {} left", duration(s)))
        .unwrap_or_default();
    format!(
        "copy: {}/{} tables, {done} of {total} rows{percent}, {:.0} rows/s, {} elapsed{eta}",
        n("tables_done"),
        n("tables_total"),
        f("rows_per_second"),
        duration(f("elapsed_seconds"))
    )
}

/// `42 s`, `3 min 5 s`, `2 h 10 min`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live(source: &str, target: &str) -> Value {
        json!({"from": "local", "to": "hosted", "source": source, "target": target,
               "phase": "streaming", "pending_changes": 0, "oldest_change_seconds": 0.0,
               "applied_total": 5, "inactive_side_writes": 0})
    }

    #[test]
    fn the_first_line_names_one_direction() {
        let before = render_live(&live("local", "hosted"));
        assert!(
            before.starts_with("live sync local -> hosted: streaming\n"),
            "{before}"
        );
        let after = render_live(&live("hosted", "local"));
        assert!(
            after.starts_with("live sync hosted -> local: streaming (reversed by the cutover; started local -> hosted)\n"),
            "{after}"
        );
    }

    #[test]
    fn copy_lines_say_how_far_and_how_long() {
        let c = json!({"tables_done": 2, "tables_total": 5, "rows_done": 250, "rows_total": 1000,
                       "elapsed_seconds": 65.0, "rows_per_second": 3.8, "eta_seconds": 197.0});
        assert_eq!(
            copy_line(&c, false),
            "copy: 2/5 tables, 250 of 1000 rows (25%), 4 rows/s, 1 min 5 s elapsed, about 3 min 17 s left"
        );
        assert_eq!(
            copy_line(&c, true),
            "copy: done, 5 tables, 250 rows in 1 min 5 s"
        );
        assert_eq!(duration(7300.0), "2 h 1 min");
    }
}
