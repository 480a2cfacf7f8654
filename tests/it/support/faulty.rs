//! A fault-injecting TCP relay to put between switchyard and PostgreSQL. It passes bytes
//! through until told otherwise: delay each chunk, stall the server's answers, drop the
//! connection after N more bytes from the server, reset every open connection, or refuse
//! new ones. Plain threads and blocking sockets with short read timeouts, so a fault set
//! from the test reaches connections that are already open.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the relay does to traffic now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Pass,
    /// Wait this long before forwarding each chunk (both directions).
    Delay(Duration),
    /// Hold the server's answers until the fault changes.
    Stall,
    /// Close both sides after this many more bytes from the server.
    DropAfter(u64),
    /// Close new connections at once (the backend "refuses").
    Refuse,
}

struct State {
    fault: Mutex<Fault>,
    /// Bumped by `reset_all`: connections opened before see a new epoch and reset.
    epoch: AtomicU64,
    stop: AtomicBool,
}

pub struct Faulty {
    pub port: u16,
    state: Arc<State>,
}

impl Faulty {
    /// Listens on a free port and relays to `127.0.0.1:target`.
    pub fn start(target: u16) -> Faulty {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(State {
            fault: Mutex::new(Fault::Pass),
            epoch: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let st = state.clone();
        std::thread::spawn(move || accept_loop(listener, target, st));
        Faulty { port, state }
    }

    pub fn set(&self, f: Fault) {
        *self.state.fault.lock().unwrap() = f;
    }

    /// Resets (RST) every connection open now.
    pub fn reset_all(&self) {
        self.state.epoch.fetch_add(1, Ordering::SeqCst);
    }

    fn fault(state: &State) -> Fault {
        *state.fault.lock().unwrap()
    }
}

impl Drop for Faulty {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
    }
}

fn accept_loop(listener: TcpListener, target: u16, state: Arc<State>) {
    while !state.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((client, _)) => {
                if Faulty::fault(&state) == Fault::Refuse {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let st = state.clone();
                std::thread::spawn(move || relay(client, server, st));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return,
        }
    }
}

fn relay(client: TcpStream, server: TcpStream, state: Arc<State>) {
    let epoch = state.epoch.load(Ordering::SeqCst);
    for s in [&client, &server] {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let _ = s.set_nodelay(true);
    }
    let (c2, s2, st2) = (
        client.try_clone().unwrap(),
        server.try_clone().unwrap(),
        state.clone(),
    );
    let up = std::thread::spawn(move || pump(c2, s2, st2, epoch, false));
    pump(server, client, state, epoch, true);
    let _ = up.join();
}

/// Copies `from` → `to` under the current fault; `answers` is the server → client side.
fn pump(mut from: TcpStream, mut to: TcpStream, state: Arc<State>, epoch: u64, answers: bool) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut budget: Option<u64> = None;
    loop {
        if state.stop.load(Ordering::SeqCst) || state.epoch.load(Ordering::SeqCst) != epoch {
            reset(&from);
            reset(&to);
            return;
        }
        let fault = Faulty::fault(&state);
        if answers && fault == Fault::Stall {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        };
        // The fault may have changed while the read was blocked.
        while answers && Faulty::fault(&state) == Fault::Stall {
            if state.stop.load(Ordering::SeqCst) || state.epoch.load(Ordering::SeqCst) != epoch {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let fault = Faulty::fault(&state);
        let mut n = n as u64;
        match fault {
            Fault::Delay(d) => std::thread::sleep(d),
            Fault::DropAfter(limit) if answers => {
                let left = budget.get_or_insert(limit);
                if n >= *left {
                    n = *left;
                    let _ = to.write_all(&buf[..n as usize]);
                    break;
                }
                *left -= n;
            }
            _ => {}
        }
        if to.write_all(&buf[..n as usize]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// Makes the close that follows (when both threads drop their handles) an RST, not a FIN.
fn reset(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
}
