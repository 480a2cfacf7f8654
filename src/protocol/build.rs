//! Builders for the messages the proxy writes itself. Each appends one complete message
//! to a buffer, so a batch of them goes out in one write.

use bytes::{BufMut, BytesMut};

use super::{TxStatus, be, fe};

/// Appends a message with `tag`, writing the body with `body` and patching the length.
pub fn message(buf: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    buf.put_u8(tag);
    let at = buf.len();
    buf.put_i32(0);
    body(buf);
    let len = (buf.len() - at) as i32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Appends a NUL-terminated string.
pub fn cstr(buf: &mut BytesMut, s: &[u8]) {
    buf.put_slice(s);
    buf.put_u8(0);
}

/// Severity of a proxy-made error or notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Fatal,
    Warning,
    Notice,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
            Severity::Warning => "WARNING",
            Severity::Notice => "NOTICE",
        }
    }
}

/// The fields of an ErrorResponse or NoticeResponse made by the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFields {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// The schema, table, column and constraint an error is about (fields `s`, `t`, `c`,
    /// `n`), as PostgreSQL sends them for constraint violations; drivers expose them
    /// (psycopg's `diag.constraint_name`, pgjdbc's `ServerErrorMessage`).
    pub names: ObjectNames,
    /// Where in the statement (1-based characters; field `P`).
    pub position: Option<u32>,
}

/// The objects an error names, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectNames {
    pub schema: Option<String>,
    pub table: Option<String>,
    pub column: Option<String>,
    pub constraint: Option<String>,
}

impl ErrorFields {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        ErrorFields {
            severity: Severity::Error,
            code,
            message: message.into(),
            detail: None,
            hint: None,
            names: ObjectNames::default(),
            position: None,
        }
    }

    pub fn fatal(code: &'static str, message: impl Into<String>) -> Self {
        ErrorFields {
            severity: Severity::Fatal,
            ..ErrorFields::error(code, message)
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

fn fields(buf: &mut BytesMut, f: &ErrorFields) {
    for (code, value) in [(b'S', f.severity.as_str()), (b'V', f.severity.as_str())] {
        buf.put_u8(code);
        cstr(buf, value.as_bytes());
    }
    buf.put_u8(b'C');
    cstr(buf, f.code.as_bytes());
    buf.put_u8(b'M');
    cstr(buf, f.message.as_bytes());
    if let Some(d) = &f.detail {
        buf.put_u8(b'D');
        cstr(buf, d.as_bytes());
    }
    if let Some(h) = &f.hint {
        buf.put_u8(b'H');
        cstr(buf, h.as_bytes());
    }
    if let Some(p) = f.position {
        buf.put_u8(b'P');
        cstr(buf, p.to_string().as_bytes());
    }
    let n = &f.names;
    for (code, value) in [
        (b's', &n.schema),
        (b't', &n.table),
        (b'c', &n.column),
        (b'n', &n.constraint),
    ] {
        if let Some(v) = value {
            buf.put_u8(code);
            cstr(buf, v.as_bytes());
        }
    }
    buf.put_u8(0);
}

pub fn error_response(buf: &mut BytesMut, f: &ErrorFields) {
    message(buf, be::ERROR_RESPONSE, |b| fields(b, f));
}

pub fn notice_response(buf: &mut BytesMut, f: &ErrorFields) {
    message(buf, be::NOTICE_RESPONSE, |b| fields(b, f));
}

pub fn ready_for_query(buf: &mut BytesMut, status: TxStatus) {
    message(buf, be::READY_FOR_QUERY, |b| b.put_u8(status.as_byte()));
}

pub fn parameter_status(buf: &mut BytesMut, name: &str, value: &str) {
    message(buf, be::PARAMETER_STATUS, |b| {
        cstr(b, name.as_bytes());
        cstr(b, value.as_bytes());
    });
}

pub fn backend_key_data(buf: &mut BytesMut, pid: u32, key: u32) {
    message(buf, be::BACKEND_KEY_DATA, |b| {
        b.put_u32(pid);
        b.put_u32(key);
    });
}

pub fn command_complete(buf: &mut BytesMut, tag: &str) {
    message(buf, be::COMMAND_COMPLETE, |b| cstr(b, tag.as_bytes()));
}

pub fn empty(buf: &mut BytesMut, tag: u8) {
    buf.put_u8(tag);
    buf.put_i32(4);
}

/// Authentication request with a code and an optional payload.
pub fn authentication(buf: &mut BytesMut, code: i32, payload: &[u8]) {
    message(buf, be::AUTHENTICATION, |b| {
        b.put_i32(code);
        b.put_slice(payload);
    });
}

/// NegotiateProtocolVersion: newest minor version supported and unrecognised options.
pub fn negotiate_protocol_version(buf: &mut BytesMut, minor: i32, unknown: &[String]) {
    message(buf, be::NEGOTIATE_PROTOCOL, |b| {
        b.put_i32(minor);
        b.put_i32(unknown.len() as i32);
        for o in unknown {
            cstr(b, o.as_bytes());
        }
    });
}

/// Frontend Query message.
pub fn query(buf: &mut BytesMut, sql: &str) {
    message(buf, fe::QUERY, |b| cstr(b, sql.as_bytes()));
}

/// Frontend Parse: `rest` is the body after the statement name (query, NUL, parameter types).
pub fn parse(buf: &mut BytesMut, name: &[u8], rest: &[u8]) {
    message(buf, fe::PARSE, |b| {
        cstr(b, name);
        b.put_slice(rest);
    });
}

/// Frontend Bind or Describe rewritten with a different statement name.
/// `head` is the portal (Bind) or the kind byte (Describe); `rest` follows the name.
pub fn with_statement(buf: &mut BytesMut, tag: u8, head: &[u8], name: &[u8], rest: &[u8]) {
    message(buf, tag, |b| {
        b.put_slice(head);
        cstr(b, name);
        b.put_slice(rest);
    });
}

/// Frontend Close of a prepared statement.
pub fn close_statement(buf: &mut BytesMut, name: &[u8]) {
    message(buf, fe::CLOSE, |b| {
        b.put_u8(b'S');
        cstr(b, name);
    });
}

pub fn sync(buf: &mut BytesMut) {
    empty(buf, fe::SYNC);
}

pub fn copy_fail(buf: &mut BytesMut, reason: &str) {
    message(buf, fe::COPY_FAIL, |b| cstr(b, reason.as_bytes()));
}

pub fn terminate(buf: &mut BytesMut) {
    empty(buf, fe::TERMINATE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_patched() {
        let mut b = BytesMut::new();
        command_complete(&mut b, "SELECT 1");
        assert_eq!(&b[..], b"C\0\0\0\x0dSELECT 1\0");
        let mut b = BytesMut::new();
        ready_for_query(&mut b, TxStatus::InTransaction);
        assert_eq!(&b[..], b"Z\0\0\0\x05T");
    }

    #[test]
    fn error_has_code_and_message() {
        let mut b = BytesMut::new();
        error_response(&mut b, &ErrorFields::error("08P01", "bad").with_hint("h"));
        let s = String::from_utf8_lossy(&b);
        assert!(s.contains("C08P01\0"));
        assert!(s.contains("Mbad\0"));
        assert!(s.contains("Hh\0"));
        assert_eq!(
            b.len(),
            i32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize + 1
        );
    }
}
