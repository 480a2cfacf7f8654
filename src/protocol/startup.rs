//! Startup-phase packets: untagged, a length then a 32-bit code.

use bytes::{BufMut, BytesMut};
use thiserror::Error;

/// PostgreSQL caps startup packets at 10,000 bytes; so do we.
pub const MAX_STARTUP_LEN: usize = 10_000;
pub const SSL_REQUEST: i32 = 80_877_103;
pub const GSSENC_REQUEST: i32 = 80_877_104;
pub const CANCEL_REQUEST: i32 = 80_877_102;
pub const PROTOCOL_3_0: i32 = 196_608;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StartupError {
    #[error("invalid length of startup packet: {0}")]
    BadLength(i32),
    #[error("malformed startup packet: {0}")]
    Malformed(&'static str),
    #[error("unsupported frontend protocol {major}.{minor}: server supports 3.0")]
    Unsupported { major: i32, minor: i32 },
}

/// One packet of the startup phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    SslRequest,
    GssEncRequest,
    Cancel { pid: u32, key: u32 },
    Startup(StartupMessage),
}

/// A StartupMessage: protocol minor version and parameters in the order sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartupMessage {
    pub minor: i32,
    pub params: Vec<(String, String)>,
}

impl StartupMessage {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Checks the length word of a startup packet; returns the total length.
pub fn packet_len(first4: [u8; 4]) -> Result<usize, StartupError> {
    let len = i32::from_be_bytes(first4);
    if !(8..=MAX_STARTUP_LEN as i32).contains(&len) {
        return Err(StartupError::BadLength(len));
    }
    Ok(len as usize)
}

/// Decodes a startup packet body (everything after the length word).
pub fn decode(body: &[u8]) -> Result<StartupPacket, StartupError> {
    if body.len() < 4 {
        return Err(StartupError::Malformed("too short"));
    }
    let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let rest = &body[4..];
    match code {
        SSL_REQUEST => Ok(StartupPacket::SslRequest),
        GSSENC_REQUEST => Ok(StartupPacket::GssEncRequest),
        CANCEL_REQUEST => {
            if rest.len() != 8 {
                return Err(StartupError::Malformed("cancel request must carry 8 bytes"));
            }
            let pid = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let key = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
            Ok(StartupPacket::Cancel { pid, key })
        }
        _ => {
            let (major, minor) = (code >> 16, code & 0xffff);
            if major != 3 {
                return Err(StartupError::Unsupported { major, minor });
            }
            Ok(StartupPacket::Startup(StartupMessage {
                minor,
                params: decode_params(rest)?,
            }))
        }
    }
}

fn decode_params(mut rest: &[u8]) -> Result<Vec<(String, String)>, StartupError> {
    let mut params = Vec::new();
    loop {
        let (name, after) = split_cstr(rest)?;
        if name.is_empty() {
            if !after.is_empty() {
                return Err(StartupError::Malformed("bytes after the final terminator"));
            }
            return Ok(params);
        }
        let (value, after) = split_cstr(after)?;
        let name = String::from_utf8(name.to_vec())
            .map_err(|_| StartupError::Malformed("parameter name is not UTF-8"))?;
        let value = String::from_utf8(value.to_vec())
            .map_err(|_| StartupError::Malformed("parameter value is not UTF-8"))?;
        params.push((name, value));
        rest = after;
    }
}

fn split_cstr(buf: &[u8]) -> Result<(&[u8], &[u8]), StartupError> {
    match memchr::memchr(0, buf) {
        Some(i) => Ok((&buf[..i], &buf[i + 1..])),
        None => Err(StartupError::Malformed("missing terminator")),
    }
}

/// Encodes a protocol 3.0 StartupMessage (used toward servers).
pub fn encode_startup(buf: &mut BytesMut, params: &[(&str, &str)]) {
    let at = buf.len();
    buf.put_i32(0);
    buf.put_i32(PROTOCOL_3_0);
    for (k, v) in params {
        buf.put_slice(k.as_bytes());
        buf.put_u8(0);
        buf.put_slice(v.as_bytes());
        buf.put_u8(0);
    }
    buf.put_u8(0);
    let len = (buf.len() - at) as i32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Encodes an SSLRequest or CancelRequest.
pub fn encode_code(buf: &mut BytesMut, code: i32, extra: &[u8]) {
    buf.put_i32(8 + extra.len() as i32);
    buf.put_i32(code);
    buf.put_slice(extra);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_roundtrip() {
        let mut b = BytesMut::new();
        encode_startup(&mut b, &[("user", "app"), ("database", "db")]);
        let len = packet_len([b[0], b[1], b[2], b[3]]).unwrap();
        assert_eq!(len, b.len());
        match decode(&b[4..]).unwrap() {
            StartupPacket::Startup(m) => {
                assert_eq!(m.get("user"), Some("app"));
                assert_eq!(m.get("database"), Some("db"));
                assert_eq!(m.minor, 0);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_packets() {
        assert!(packet_len(0x4000_0000i32.to_be_bytes()).is_err());
        assert!(packet_len(4i32.to_be_bytes()).is_err());
        assert!(matches!(
            decode(&[0, 2, 0, 0, 0]),
            Err(StartupError::Unsupported { major: 2, .. })
        ));
        assert!(decode(&[0, 3, 0, 0, b'u', 0]).is_err());
        assert!(decode(&[0, 3, 0, 0, b'u', 0, b'x', 0, 0, 1]).is_err());
    }

    #[test]
    fn cancel_request() {
        let mut b = BytesMut::new();
        encode_code(&mut b, CANCEL_REQUEST, &[0, 0, 0, 7, 0, 0, 0, 9]);
        assert_eq!(
            decode(&b[4..]).unwrap(),
            StartupPacket::Cancel { pid: 7, key: 9 }
        );
    }
}
