//! `switchyard ctl`: calls the admin API of a running proxy and prints a readable answer
//! (or the raw JSON with `--json`). Exit status 0 means the operation succeeded.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Subcommand;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use serde_json::Value;

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Active backend, switch state, health and pools.
    Status,
    /// Move new transactions to backend NAME.
    Cutover {
        name: String,
        /// Wait up to this long (e.g. 30s) for transactions open longer than
        /// switch.drain_timeout to finish, instead of refusing at once.
        #[arg(long)]
        wait: Option<String>,
    },
    /// Go back to the backend active before the last switch.
    Rollback {
        /// As for cutover.
        #[arg(long)]
        wait: Option<String>,
    },
    /// Hold new transactions (optionally resuming by itself after --timeout, e.g. 30s).
    Pause {
        #[arg(long)]
        timeout: Option<String>,
    },
    /// Let held transactions continue.
    Resume,
    /// Start live sync from backend FROM (the active one) to backend TO.
    Sync {
        from: String,
        to: String,
        /// Empty TO's tables if they already hold rows.
        #[arg(long)]
        force: bool,
    },
    /// Stop the live sync apply loop (capture stays until `switchyard sync --finish`).
    SyncStop,
    /// Re-read the config file: backends added, changed or removed without dropping
    /// clients (the same as sending SIGHUP).
    Reload,
    /// Exit 0 when the process answers GET /healthz (a container HEALTHCHECK).
    Health,
    /// Exit 0 when the active backend is reachable (GET /readyz; right after start, waits
    /// up to 10 s for the first health check).
    Ready,
    /// Wait until every client has disconnected, or --timeout passes (a preStop hook:
    /// lets the app close its pool before switchyard is told to stop).
    Drain {
        #[arg(long, default_value = "30s")]
        timeout: String,
    },
}

/// Where the admin API is and how to authenticate.
pub struct Target {
    pub base: String,
    pub token: Option<String>,
}

/// Sends one request; returns the HTTP status and the JSON body.
pub async fn call(
    target: &Target,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let uri: hyper::Uri = format!("{}{path}", target.base.trim_end_matches('/'))
        .parse()
        .context("admin URL")?;
    let host = uri.host().context("admin URL has no host")?.to_string();
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .with_context(|| {
            format!(
                "cannot reach the admin API at {}: is `switchyard serve` running, with admin.listen at that address? (ctl takes it from --admin or -c CONFIG)",
                target.base
            )
        })?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    crate::lifecycle::spawn_owned(conn);
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", format!("{host}:{port}"));
    if !payload.is_empty() {
        req = req.header("content-type", "application/json");
    }
    if let Some(t) = &target.token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(payload)))?)
        .await?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Ok((status, json))
}

/// Runs a ctl command and prints the answer.
pub async fn run(target: &Target, cmd: CtlCommand, json: bool) -> Result<()> {
    let (status, body) = match &cmd {
        CtlCommand::Status => call(target, Method::GET, "/status", None).await?,
        CtlCommand::Cutover { name, wait } => {
            call(
                target,
                Method::POST,
                "/cutover",
                Some(serde_json::json!({ "to": name, "wait": wait })),
            )
            .await?
        }
        CtlCommand::Rollback { wait } => {
            call(
                target,
                Method::POST,
                "/rollback",
                Some(serde_json::json!({ "wait": wait })),
            )
            .await?
        }
        CtlCommand::Pause { timeout } => {
            let ms = timeout
                .as_deref()
                .map(crate::config::parse_duration)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--timeout: {e}"))?
                .map(|d| d.as_millis() as u64);
            call(
                target,
                Method::POST,
                "/pause",
                Some(serde_json::json!({ "timeout_ms": ms })),
            )
            .await?
        }
        CtlCommand::Resume => call(target, Method::POST, "/resume", None).await?,
        CtlCommand::Sync { from, to, force } => {
            let body = serde_json::json!({ "from": from, "to": to, "force": force });
            call(target, Method::POST, "/sync/start", Some(body)).await?
        }
        CtlCommand::SyncStop => call(target, Method::POST, "/sync/stop", None).await?,
        CtlCommand::Reload => call(target, Method::POST, "/reload", None).await?,
        CtlCommand::Health => call(target, Method::GET, "/healthz", None).await?,
        CtlCommand::Ready => ready(target).await?,
        CtlCommand::Drain { timeout } => drain(target, timeout).await?,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        print!("{}", render(&cmd, &body));
    }
    let ok = (200..300).contains(&status) && body.get("ok").and_then(Value::as_bool) != Some(false);
    if !ok {
        bail!(
            "{} (HTTP {status})",
            body.get("error")
                .or_else(|| body.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("request failed")
        );
    }
    Ok(())
}

/// /readyz, asked again for up to 10 s while the answer is that the backend has not been
/// checked yet (right after `serve` starts): a human or a deploy script running
/// `ctl ready` wants the verdict, not "too early to tell".
async fn ready(target: &Target) -> Result<(u16, Value)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body) = call(target, Method::GET, "/readyz", None).await?;
        let unchecked = body["reason"].as_str() == Some("not checked yet");
        if !unchecked || std::time::Instant::now() >= deadline {
            return Ok((status, body));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Polls /status until no client is connected or `timeout` passes; answers like an
/// endpoint would so that `run` prints and judges it the same way.
async fn drain(target: &Target, timeout: &str) -> Result<(u16, Value)> {
    let limit =
        crate::config::parse_duration(timeout).map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
    let start = std::time::Instant::now();
    loop {
        let (status, body) = call(target, Method::GET, "/status", None).await?;
        let connected = body["clients"]["connected"].as_u64().unwrap_or(0);
        if status == 200 && connected == 0 {
            let waited = start.elapsed().as_millis() as u64;
            return Ok((200, serde_json::json!({ "ok": true, "waited_ms": waited })));
        }
        if start.elapsed() >= limit {
            let error = format!("{connected} clients still connected after {timeout}");
            return Ok((200, serde_json::json!({ "ok": false, "error": error })));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

fn render(cmd: &CtlCommand, b: &Value) -> String {
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
        CtlCommand::Cutover { .. } | CtlCommand::Rollback { .. } if b.get("from").is_some() => {
            let verdict = if b["ok"].as_bool() == Some(true) {
                "done".to_string()
            } else {
                format!("FAILED: {}", b["error"].as_str().unwrap_or(""))
            };
            format!(
                "{} {} -> {}: {verdict}\n  paused {} ms (drain {} ms, preflight {} ms)\n",
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

fn render_live(l: &Value) -> String {
    let mut out = format!(
        "live sync {} -> {}: {}   changes flow {} -> {}\n  pending {} (oldest {:.1} s), applied {}, backfilled {} rows, writes on the inactive side {}\n",
        l["from"].as_str().unwrap_or("?"),
        l["to"].as_str().unwrap_or("?"),
        l["phase"].as_str().unwrap_or("?"),
        l["source"].as_str().unwrap_or("?"),
        l["target"].as_str().unwrap_or("?"),
        l["pending_changes"],
        l["oldest_change_seconds"].as_f64().unwrap_or(0.0),
        l["applied_total"],
        l["backfilled_rows"],
        l["inactive_side_writes"],
    );
    if l["resumed"].as_bool() == Some(true) {
        out.push_str("  resumed from its record in the databases after a restart\n");
    }
    if let Some(fks) = l["unvalidated_foreign_keys"]
        .as_array()
        .filter(|a| !a.is_empty())
    {
        out.push_str(&format!(
            "  foreign keys waiting for the changes captured during the copy: {}\n",
            fks.iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(e) = l["last_error"].as_str() {
        out.push_str(&format!("  last error: {e}\n"));
    }
    out
}
