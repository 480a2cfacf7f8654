//! A raw wire-protocol client for tests that need exact control: hostile input, abrupt
//! disconnects, hand-made pipelines.

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use postgres_protocol::authentication::sasl;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Raw {
    pub s: TcpStream,
    buf: BytesMut,
    /// ParameterStatus values received at login.
    pub params: std::collections::BTreeMap<String, String>,
    /// The process id from BackendKeyData.
    pub pid: u32,
}

pub fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// Parse of statement `name` (empty: the unnamed one), no parameter types.
pub fn parse(name: &str, sql: &str) -> Vec<u8> {
    msg(
        b'P',
        &[name.as_bytes(), &[0], sql.as_bytes(), &[0, 0, 0]].concat(),
    )
}

/// Bind of statement `stmt` to the unnamed portal, without parameters.
pub fn bind(stmt: &str) -> Vec<u8> {
    msg(
        b'B',
        &[&[0][..], stmt.as_bytes(), &[0, 0, 0, 0, 0, 0, 0]].concat(),
    )
}

/// Execute of the unnamed portal, every row.
pub fn execute() -> Vec<u8> {
    msg(b'E', &[0, 0, 0, 0, 0])
}

pub fn sync() -> Vec<u8> {
    msg(b'S', b"")
}

/// Parse, then Sync.
pub fn prepare(name: &str, sql: &str) -> Vec<u8> {
    [parse(name, sql), sync()].concat()
}

/// Bind, Execute, Sync of statement `stmt`.
pub fn run(stmt: &str) -> Vec<u8> {
    [bind(stmt), execute(), sync()].concat()
}

pub fn query(sql: &str) -> Vec<u8> {
    let mut b = sql.as_bytes().to_vec();
    b.push(0);
    msg(b'Q', &b)
}

pub fn startup(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_i32(196_608);
    for (k, v) in params {
        body.put_slice(k.as_bytes());
        body.put_u8(0);
        body.put_slice(v.as_bytes());
        body.put_u8(0);
    }
    body.put_u8(0);
    let mut v = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    v.extend_from_slice(&body);
    v
}

impl Raw {
    pub async fn open(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        Raw {
            s,
            buf: BytesMut::new(),
            params: Default::default(),
            pid: 0,
        }
    }

    /// Connects and logs in (SCRAM, md5, cleartext or trust), reading up to ReadyForQuery.
    pub async fn login(port: u16, user: &str, password: &str) -> Raw {
        Raw::login_with(port, user, password, &[]).await
    }

    /// Logs in with extra startup parameters.
    pub async fn login_with(port: u16, user: &str, password: &str, extra: &[(&str, &str)]) -> Raw {
        let mut r = Raw::open(port).await;
        let mut params = vec![("user", user), ("database", "app")];
        params.extend_from_slice(extra);
        r.send(&startup(&params)).await;
        let mut scram: Option<sasl::ScramSha256> = None;
        loop {
            let (tag, body) = r.read().await.expect("server answers login");
            match tag {
                b'R' => {
                    let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                    match code {
                        0 => {}
                        3 => {
                            let mut p = password.as_bytes().to_vec();
                            p.push(0);
                            r.send(&msg(b'p', &p)).await;
                        }
                        5 => {
                            let salt = [body[4], body[5], body[6], body[7]];
                            let mut h = postgres_protocol::authentication::md5_hash(
                                user.as_bytes(),
                                password.as_bytes(),
                                salt,
                            )
                            .into_bytes();
                            h.push(0);
                            r.send(&msg(b'p', &h)).await;
                        }
                        10 => {
                            let s = sasl::ScramSha256::new(
                                password.as_bytes(),
                                sasl::ChannelBinding::unrequested(),
                            );
                            let mut b = BytesMut::new();
                            b.put_slice(b"SCRAM-SHA-256\0");
                            b.put_i32(s.message().len() as i32);
                            b.put_slice(s.message());
                            r.send(&msg(b'p', &b)).await;
                            scram = Some(s);
                        }
                        11 => {
                            let s = scram.as_mut().unwrap();
                            s.update(&body[4..]).unwrap();
                            let m = s.message().to_vec();
                            r.send(&msg(b'p', &m)).await;
                        }
                        12 => scram.as_mut().unwrap().finish(&body[4..]).unwrap(),
                        other => panic!("unexpected auth code {other}"),
                    }
                }
                b'E' => panic!("login failed: {}", String::from_utf8_lossy(&body)),
                b'S' => {
                    let mut parts = body.split(|&b| b == 0);
                    let k = String::from_utf8_lossy(parts.next().unwrap_or_default());
                    let v = String::from_utf8_lossy(parts.next().unwrap_or_default());
                    r.params.insert(k.into_owned(), v.into_owned());
                }
                b'K' => r.pid = u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
                b'Z' => return r,
                _ => {}
            }
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    /// Next message, or None on EOF / 10 s of silence.
    pub async fn read(&mut self) -> Option<(u8, Bytes)> {
        loop {
            if self.buf.len() >= 5 {
                let len = i32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]])
                    as usize;
                if self.buf.len() > len {
                    let mut m = self.buf.split_to(len + 1);
                    let tag = m[0];
                    return Some((tag, m.split_off(5).freeze()));
                }
            }
            let n = tokio::time::timeout(Duration::from_secs(10), self.s.read_buf(&mut self.buf))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
        }
    }

    /// Reads until the connection closes (5 s at most): the ErrorResponses seen, as text.
    pub async fn errors_until_closed(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        let read = async {
            while let Some((tag, body)) = self.read().await {
                if tag == b'E' {
                    errors.push(String::from_utf8_lossy(&body).into_owned());
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), read)
            .await
            .expect("the connection is closed");
        errors
    }

    /// Waits (`within` at most) for a NotificationResponse: its payload and the sender's
    /// process id.
    pub async fn notification(&mut self, within: Duration) -> Option<(String, u32)> {
        let wait = async {
            while let Some((tag, body)) = self.read().await {
                if tag == b'A' {
                    return Some(note(&body));
                }
            }
            None
        };
        tokio::time::timeout(within, wait).await.ok().flatten()
    }

    /// Reads through the next ReadyForQuery; returns the tags seen and the error messages.
    pub async fn until_ready(&mut self) -> (String, Vec<String>) {
        let mut tags = String::new();
        let mut errors = Vec::new();
        while let Some((tag, body)) = self.read().await {
            tags.push(tag as char);
            if tag == b'E' {
                errors.push(String::from_utf8_lossy(&body).into_owned());
            }
            if tag == b'Z' {
                tags.push(body[0] as char);
                break;
            }
        }
        (tags, errors)
    }
}

impl Raw {
    /// Runs a simple query and returns the first column of its first row (None for NULL
    /// or no row); panics on an error.
    pub async fn scalar(&mut self, sql: &str) -> Option<String> {
        self.send(&query(sql)).await;
        let mut value = None;
        let mut first = true;
        while let Some((tag, body)) = self.read().await {
            match tag {
                b'D' if first => {
                    first = false;
                    let len = i32::from_be_bytes([body[2], body[3], body[4], body[5]]);
                    if len >= 0 {
                        value =
                            Some(String::from_utf8_lossy(&body[6..6 + len as usize]).into_owned());
                    }
                }
                b'E' => panic!("{sql}: {}", String::from_utf8_lossy(&body)),
                b'Z' => break,
                _ => {}
            }
        }
        value
    }
}

/// A NotificationResponse body: its payload and the sender's process id.
pub fn note(body: &[u8]) -> (String, u32) {
    let pid = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let text = String::from_utf8_lossy(&body[4..]).into_owned();
    let payload = text.split('\0').nth(1).unwrap_or_default().to_string();
    (payload, pid)
}
