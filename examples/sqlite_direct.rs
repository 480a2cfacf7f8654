//! The limit for bench/sqlite.sh: the same point selects and single-row inserts run with
//! rusqlite in process, one connection per thread, no network and no protocol.
//!
//! usage: cargo run --release --example sqlite_direct -- DB CLIENTS SECONDS select|insert ROWS

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, db, clients, secs, mode, rows] = &args[..] else {
        eprintln!("usage: sqlite_direct DB CLIENTS SECONDS select|insert ROWS");
        std::process::exit(2);
    };
    let clients: usize = clients.parse().expect("CLIENTS");
    let secs: f64 = secs.parse().expect("SECONDS");
    let rows: i64 = rows.parse().expect("ROWS");
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (db, mode, stop, done) = (db.clone(), mode.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || work(&db, &mode, i as i64, rows, &stop, &done))
        })
        .collect();
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let ops = done.load(Ordering::SeqCst) as f64 / start.elapsed().as_secs_f64();
    println!("{ops:.0}");
}

fn work(db: &str, mode: &str, seed: i64, rows: i64, stop: &AtomicBool, done: &AtomicU64) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    let mut x = seed.wrapping_mul(2_654_435_761) as u64 | 1;
    if mode == "select" {
        let mut s = c.prepare("SELECT v FROM kv WHERE id = ?1").unwrap();
        while !stop.load(Ordering::Relaxed) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = (x % rows as u64) as i64 + 1;
            let _: Option<String> = s.query_row([id], |r| r.get(0)).ok();
            done.fetch_add(1, Ordering::Relaxed);
        }
    } else {
        let mut s = c.prepare("INSERT INTO kv (v) VALUES (?1)").unwrap();
        while !stop.load(Ordering::Relaxed) {
            s.execute(["inserted"]).unwrap();
            done.fetch_add(1, Ordering::Relaxed);
        }
    }
}
