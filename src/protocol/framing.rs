//! Message framing: a tagged message is one tag byte and a big-endian i32 length that
//! counts itself but not the tag.

use thiserror::Error;

/// Size of a tagged message header (tag + length).
pub const HEADER_LEN: usize = 5;

/// A framing error: the peer sent a length that cannot be right.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("invalid message length {len} for message type '{tag}'")]
    BadLength { tag: char, len: i32 },
    #[error("message type '{tag}' of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge { tag: char, len: usize, limit: usize },
}

/// A decoded message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub tag: u8,
    /// Total bytes of the message on the wire, header included.
    pub total: usize,
}

impl Header {
    /// Length of the body (what follows the 5-byte header).
    pub fn body_len(&self) -> usize {
        self.total - HEADER_LEN
    }
}

/// Reads the header at the start of `buf`, if five bytes are there.
/// `limit` caps the total size of one message.
pub fn header(buf: &[u8], limit: usize) -> Result<Option<Header>, FrameError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let tag = buf[0];
    let len = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if len < 4 {
        return Err(FrameError::BadLength {
            tag: tag as char,
            len,
        });
    }
    let total = len as usize + 1;
    if total > limit {
        return Err(FrameError::TooLarge {
            tag: tag as char,
            len: total,
            limit,
        });
    }
    Ok(Some(Header { tag, total }))
}

/// Reads a complete message at the start of `buf`: its header, if all of it is buffered.
pub fn complete(buf: &[u8], limit: usize) -> Result<Option<Header>, FrameError> {
    match header(buf, limit)? {
        Some(h) if buf.len() >= h.total => Ok(Some(h)),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_needs_five_bytes() {
        assert_eq!(header(b"Q\0\0", 100).unwrap(), None);
        let h = header(b"Q\0\0\0\x05x", 100).unwrap().unwrap();
        assert_eq!(h.tag, b'Q');
        assert_eq!(h.total, 6);
        assert_eq!(h.body_len(), 1);
    }

    #[test]
    fn lying_lengths_are_refused() {
        assert!(matches!(
            header(b"Q\xff\xff\xff\xff", 100),
            Err(FrameError::BadLength { .. })
        ));
        assert!(matches!(
            header(b"Q\0\0\0\x03", 100),
            Err(FrameError::BadLength { .. })
        ));
        assert!(matches!(
            header(b"Q\x40\0\0\0", 1 << 20),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn complete_waits_for_body() {
        assert_eq!(complete(b"Q\0\0\0\x06x", 100).unwrap(), None);
        assert!(complete(b"Q\0\0\0\x06xy", 100).unwrap().is_some());
    }
}
