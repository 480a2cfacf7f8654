//! Memory: a client that reads a huge result slowly must not make switchyard buffer it
//! (backpressure; the client asks for ~100 MB, reads nothing for a while, then reads
//! slowly), and a connected client that is not running anything costs little. The proxy
//! runs as its own process so that its resident memory can be read from `/proc`.

use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::support::cluster::free_port;
use crate::support::raw::{Raw, query};
use crate::support::{KillOnDrop, PgCluster, rt, serve};

/// `VmRSS` or `VmHWM` of a process, in KB.
fn proc_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} not in /proc/{pid}/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Starts switchyard as its own process in front of `pg`; `users` is the config's user
/// section (empty: clients are trusted). Returns the process, its port and the config's
/// directory, which must outlive it.
fn start_proxy(pg: &PgCluster, users: &str) -> (KillOnDrop, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[proxy]\nlisten = \"127.0.0.1:{port}\"\n[admin]\nlisten = \"127.0.0.1:{}\"\n\
             {users}[backends.pg]\nurl = \"{}\"\n",
            free_port(),
            pg.url("app")
        ),
    )
    .unwrap();
    (serve(&cfg, port), port, dir)
}

#[test]
fn slow_reader_of_a_huge_result_keeps_memory_bounded() {
    let pg = PgCluster::start();
    let (child, port, _dir) =
        start_proxy(&pg, "[[users]]\nname = \"app\"\npassword = \"secret\"\n");
    let pid = child.id();
    let (rows, width) = (50_000u64, 2_000u64);
    rt().block_on(async {
        let mut raw = Raw::login(port, "app", "secret").await;
        let before = proc_kb(pid, "VmRSS");
        raw.send(&query(&format!(
            "SELECT repeat('x', {width}) FROM generate_series(1, {rows})"
        )))
        .await;
        // Not reading at all: the server is made to wait, nothing piles up in between.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stalled = proc_kb(pid, "VmRSS");
        // Then a slow reader: 64 KB at a time with a pause.
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        let mut tail = Vec::new();
        loop {
            let n = tokio::time::timeout(Duration::from_secs(20), raw.s.read(&mut buf))
                .await
                .expect("result keeps flowing")
                .unwrap();
            assert!(n > 0, "connection closed after {total} bytes");
            total += n as u64;
            tail.extend_from_slice(&buf[..n]);
            let keep = tail.len().saturating_sub(6);
            tail.drain(..keep);
            if tail.ends_with(&[b'Z', 0, 0, 0, 5, b'I']) {
                break;
            }
            if total % (1 << 20) < n as u64 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let peak = proc_kb(pid, "VmHWM");
        assert!(total > rows * width, "only {total} bytes arrived");
        eprintln!("switchyard RSS: {before} KB idle, {stalled} KB stalled, {peak} KB peak");
        // 100 MB went through; switchyard may hold a few buffers, never the result.
        assert!(
            stalled < before + 16 * 1024,
            "RSS grew from {before} KB to {stalled} KB while the client did not read"
        );
        assert!(
            peak < before + 32 * 1024,
            "peak RSS {peak} KB (idle {before} KB) for a {total}-byte result"
        );
    });
}

/// Clients that logged in and ran one query, then sit idle, hold no I/O buffers: a few KB
/// each (PgBouncer needs ~1 KB; switchyard held ~17 KB while every session allocated its
/// 16 KB buffers up front).
#[test]
fn idle_clients_cost_a_few_kilobytes_each() {
    let pg = PgCluster::start();
    let (child, port, _dir) = start_proxy(&pg, "");
    let pid = child.id();
    const CLIENTS: usize = 400;
    rt().block_on(async {
        let mut first = Raw::login(port, "app", "").await;
        first.send(&query("SELECT 1")).await;
        assert!(first.until_ready().await.1.is_empty());
        let before = proc_kb(pid, "VmRSS");
        let mut clients = Vec::with_capacity(CLIENTS);
        for _ in 0..CLIENTS {
            let mut c = Raw::login(port, "app", "").await;
            c.send(&query("SELECT 1")).await;
            assert!(c.until_ready().await.1.is_empty());
            clients.push(c);
        }
        let after = proc_kb(pid, "VmRSS");
        let per_client = (after.saturating_sub(before)) as f64 / CLIENTS as f64;
        eprintln!("switchyard RSS: {before} KB, {after} KB with {CLIENTS} more idle clients: {per_client:.1} KB each");
        assert!(
            per_client < 12.0,
            "{per_client:.1} KB of resident memory per idle client ({before} KB -> {after} KB)"
        );
    });
}
