//! `switchyard ctl`: calls the admin API of a running proxy and prints a readable answer
//! (or the raw JSON with `--json`). Exit status 0 means the operation succeeded.

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Subcommand;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use serde_json::Value;

mod fleet;
mod follow;
pub mod render;

pub use render::render;

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Active backend, switch state, health and pools.
    Status,
    /// The fleet this proxy belongs to: members and their leases, the epoch, the route,
    /// the last switch and each member's acknowledgement.
    Fleet,
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
    /// Start live sync inside the running proxy: copy backend FROM (the active one) to
    /// backend TO, then keep applying every change until the cutover and after it. With
    /// --wait alone, follow the running one.
    Sync {
        #[arg(requires = "to", required_unless_present = "wait")]
        from: Option<String>,
        to: Option<String>,
        /// Empty TO's tables if they already hold rows.
        #[arg(long)]
        force: bool,
        /// Leave out this source column (TABLE.COLUMN, repeatable): for a column TO's
        /// existing table does not have. Added to the config's [sync] exclude_columns.
        #[arg(long, value_name = "TABLE.COLUMN", requires = "to")]
        exclude_column: Vec<String>,
        /// The PostgreSQL type of a column switchyard makes on TO (TABLE.COLUMN=TYPE,
        /// repeatable). Added to the config's [sync.types].
        #[arg(long = "type", value_name = "TABLE.COLUMN=TYPE", requires = "to")]
        types: Vec<String>,
        /// Follow the copy (tables, rows, rate, time left) until the sync streams, its
        /// foreign keys validated; exit 1 if it fails. Ctrl-C stops following, not the sync.
        #[arg(long)]
        wait: bool,
    },
    /// Stop the proxy's live sync after applying what it captured. Its triggers and
    /// changelogs stay (a later `ctl sync` resumes); `switchyard sync --finish` removes them.
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
        CtlCommand::Fleet => call(target, Method::GET, "/fleet", None).await?,
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
        CtlCommand::Sync {
            from,
            to,
            force,
            exclude_column,
            types,
            wait,
        } => {
            if let (Some(from), Some(to)) = (from, to) {
                let body = serde_json::json!({
                    "from": from, "to": to, "force": force,
                    "exclude_columns": exclude_column, "types": types,
                });
                let (status, body) = call(target, Method::POST, "/sync/start", Some(body)).await?;
                if !*wait || status != 200 {
                    (status, body)
                } else {
                    if !json {
                        print!("{}", render(&cmd, &body));
                    }
                    follow::follow(target, json).await?
                }
            } else {
                follow::follow(target, json).await?
            }
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
