//! `switchyard check-config`: a config is checked as `serve` would use it (validated,
//! built, its ports and route file looked at) without starting or changing anything, and
//! summarised.

use anyhow::{Context, Result};

use crate::app::App;
use crate::backend::url::BackendUrl;
use crate::config::{Config, Resolved};
use crate::metrics::Metrics;

/// Where the route comes from, as check-config prints it; an error when the route file
/// cannot be read or its directory written.
fn describe_route(r: &Resolved) -> Result<String> {
    use crate::router::route_file::RouteFile;
    let Some(path) = &r.state_file else {
        return Ok(format!(
            "routing.active = {:?} (kept in memory only)",
            r.active
        ));
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if !writable(dir) {
        anyhow::bail!(
            "routing.state_file {}: its directory is not writable (set routing.state_file to a writable path)",
            path.display()
        );
    }
    Ok(match RouteFile::new(path).load()? {
        Some(s) if s.epoch > 0 && s.active != r.active => format!(
            "{:?} after {} switch(es), from {} — the config's routing.active = {:?} DISAGREES (a restart serves {:?})",
            s.active,
            s.epoch,
            path.display(),
            r.active,
            s.active
        ),
        Some(s) if s.epoch > 0 => format!(
            "{:?} after {} switch(es), from {}",
            s.active,
            s.epoch,
            path.display()
        ),
        _ => format!(
            "routing.active = {:?} (no switch yet; after one the route is kept in {})",
            r.active,
            path.display()
        ),
    })
}

/// Whether this process may create files in `dir`, judged from its owner and mode bits
/// (nothing is written to find out).
fn writable(dir: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(d), Ok(me)) = (std::fs::metadata(dir), std::fs::metadata("/proc/self")) else {
        return false;
    };
    let mode = d.mode();
    d.is_dir()
        && (me.uid() == 0
            || (d.uid() == me.uid() && mode & 0o200 != 0)
            || (d.gid() == me.gid() && mode & 0o020 != 0)
            || mode & 0o002 != 0)
}

/// Whether something accepts connections on `addr` now (on the loopback address when
/// it is a wildcard): a connection attempt, nothing bound.
fn in_use(addr: std::net::SocketAddr) -> bool {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_millis(300)).is_ok()
}

/// Warns when the config file holds a written-out secret and others may read it.
pub(crate) fn warn_if_exposed(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    if let Some(w) = crate::config::secret_exposure(path, &text) {
        tracing::warn!("{w}");
        eprintln!("warning: {w}");
    }
}

/// `switchyard check-config FILE`: validates, builds the app without starting it, checks
/// the ports and the route file, and prints what would run.
pub(crate) async fn run(file: &std::path::Path) -> Result<()> {
    warn_if_exposed(file);
    let r = Config::load(file).with_context(|| format!("invalid config {}", file.display()))?;
    let metrics = Metrics::new(prometheus::Registry::new());
    // Checking changes nothing: the route file is read, not made, and SQLite files are
    // opened read-only.
    let mut unfiled = r.clone();
    unfiled.state_file = None;
    for b in unfiled.config.backends.values_mut() {
        b.sqlite_open = crate::config::SqliteOpen::Check;
    }
    App::build(unfiled, metrics).context("config is valid but switchyard could not use it")?;
    let route = describe_route(&r)?;
    for (key, addr) in [
        ("proxy.listen", r.proxy_addr),
        ("admin.listen", r.admin_addr),
    ] {
        // A running switchyard holds its own ports: checking an edited config while it
        // serves must work, so the ports are not bound here.
        if in_use(addr) {
            println!(
                "note: {key} {addr} is in use now (by a running switchyard, or by something else that would stop `serve`)"
            );
        }
    }
    let c = &r.config;
    println!("config {} is valid", file.display());
    println!(
        "  proxy:    listen {} (TLS {})",
        r.proxy_addr,
        if c.proxy.tls_cert.is_some() {
            "on"
        } else {
            "off"
        }
    );
    if c.users.is_empty() {
        println!("  users:    none: clients on loopback are trusted");
    } else {
        for u in &c.users {
            println!(
                "  user:     {} ({:?})",
                u.name,
                u.auth.unwrap_or(c.proxy.auth)
            );
        }
    }
    println!(
        "  admin:    listen {} (token {})",
        r.admin_addr,
        if c.admin.token.is_some() {
            "set"
        } else {
            "not set"
        }
    );
    println!("  route:    {route}");
    let active_now = r
        .state_file
        .as_ref()
        .and_then(|p| {
            crate::router::route_file::RouteFile::new(p)
                .load()
                .ok()
                .flatten()
        })
        .filter(|s| s.epoch > 0)
        .map(|s| s.active)
        .unwrap_or_else(|| r.active.clone());
    for (name, b) in &c.backends {
        let url = BackendUrl::masked(&b.url);
        let active = if *name == active_now {
            "  <- active"
        } else {
            ""
        };
        if b.url.starts_with("sqlite://") {
            println!("  backend:  {name} = {url}{active}");
        } else {
            println!(
                "  backend:  {name} = {url} (pool {}, pooler {}){active}",
                b.pool_size,
                b.pooler.as_str()
            );
        }
    }
    Ok(())
}
