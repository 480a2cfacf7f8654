//! `ctl sync --wait`: follows the proxy's live sync through `/status` until its copy is
//! done and it streams (the foreign keys the copy left NOT VALID validated) — a progress
//! bar on a terminal, a plain line every few seconds otherwise. The lag is shown, not
//! waited for: under a busy app it need not reach zero, and a cutover checks it anyway.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Result;
use hyper::Method;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use super::render::copy_line;
use super::{Target, call};

/// How often a line is printed off a terminal (and whenever the phase changes or a
/// table finishes).
const LINE_EVERY: Duration = Duration::from_secs(10);

/// Where a followed sync is.
enum Seen {
    Copying,
    CatchingUp,
    Streaming,
    Ended(String),
}

fn judge(l: &Value) -> Seen {
    let phase = l["phase"].as_str().unwrap_or("?");
    match phase {
        "streaming" => {
            let fks = l["unvalidated_foreign_keys"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
            if fks {
                Seen::CatchingUp
            } else {
                Seen::Streaming
            }
        }
        "stopped" | "failed" => Seen::Ended(format!(
            "live sync {phase}{}",
            l["last_error"]
                .as_str()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        )),
        _ => Seen::Copying,
    }
}

/// Polls `/status` every second until the sync streams (answers `ok`), ended or failed
/// (answers not `ok`, with the reason). The answer looks like `/sync/start`'s.
pub async fn follow(target: &Target, json: bool) -> Result<(u16, Value)> {
    let tty = !json && std::io::stderr().is_terminal();
    let bar = tty.then(new_bar);
    let mut last_line: Option<(Instant, String, u64)> = None;
    loop {
        let (status, body) = call(target, Method::GET, "/status", None).await?;
        let l = &body["live_sync"];
        if status != 200 || l.is_null() {
            let error = "no live sync runs in this proxy (start one with `ctl sync FROM TO`)";
            return Ok((status, json!({ "ok": false, "error": error })));
        }
        let seen = judge(l);
        let text = progress_text(l, &seen);
        match &bar {
            Some(b) => {
                let c = &l["copy"];
                b.set_length(c["rows_total"].as_u64().unwrap_or(0));
                b.set_position(c["rows_done"].as_u64().unwrap_or(0));
                b.set_message(text);
            }
            None if !json => {
                let tables = l["copy"]["tables_done"].as_u64().unwrap_or(0);
                let phase = l["phase"].as_str().unwrap_or("?").to_string();
                let last = matches!(seen, Seen::Streaming | Seen::Ended(_));
                let due = last
                    || last_line.as_ref().is_none_or(|(at, p, t)| {
                        at.elapsed() >= LINE_EVERY || *p != phase || *t != tables
                    });
                if due {
                    eprintln!("{text}");
                    last_line = Some((Instant::now(), phase, tables));
                }
            }
            None => {}
        }
        match seen {
            Seen::Streaming | Seen::Ended(_) => {
                if let Some(b) = &bar {
                    b.finish_and_clear();
                }
                let ok = matches!(seen, Seen::Streaming);
                let mut answer = json!({ "ok": ok, "live_sync": l });
                if let Seen::Ended(why) = seen {
                    answer["error"] = json!(why);
                }
                return Ok((200, answer));
            }
            _ => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

fn new_bar() -> ProgressBar {
    let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("[{bar:30}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    b.set_style(style);
    b
}

/// One line: the copy while it runs, then the catch-up lag.
fn progress_text(l: &Value, seen: &Seen) -> String {
    let phase = l["phase"].as_str().unwrap_or("?");
    let lag = format!(
        "{} changes pending (oldest {:.1} s)",
        l["pending_changes"],
        l["oldest_change_seconds"].as_f64().unwrap_or(0.0)
    );
    match seen {
        Seen::Copying => match l
            .get("copy")
            .filter(|c| c["tables_total"].as_u64() > Some(0))
        {
            Some(c) => format!("{phase}: {}", copy_line(c, false)),
            None => format!("{phase}: counting the rows to copy"),
        },
        Seen::CatchingUp => format!("streaming, validating foreign keys: {lag}"),
        Seen::Streaming => format!("streaming: {lag}"),
        Seen::Ended(why) => why.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_means_streaming_with_no_foreign_key_left_whatever_the_lag() {
        let l = |phase: &str, age: f64, fks: Value| json!({"phase": phase, "oldest_change_seconds": age, "unvalidated_foreign_keys": fks});
        assert!(matches!(
            judge(&l("backfilling", 0.0, json!([]))),
            Seen::Copying
        ));
        assert!(matches!(
            judge(&l("streaming", 0.5, json!([]))),
            Seen::Streaming
        ));
        assert!(matches!(
            judge(&l("streaming", 30.0, json!([]))),
            Seen::Streaming
        ));
        assert!(matches!(
            judge(&l("streaming", 0.0, json!(["orders.orders_user_id_fkey"]))),
            Seen::CatchingUp
        ));
        assert!(matches!(
            judge(&l("failed", 0.0, json!([]))),
            Seen::Ended(_)
        ));
    }
}
