//! SCRAM channel binding data of type `tls-server-end-point` (RFC 5929 §4.1): the hash of
//! the server's own certificate, with the hash of the certificate's signature algorithm
//! (SHA-256 when that is MD5 or SHA-1). A client that binds to it proves its TLS session
//! ends at this proxy, not at someone relaying it. Certificates whose signature names no
//! single hash (Ed25519, RSA-PSS) have no such data; clients then use plain SCRAM, as
//! with PostgreSQL.

use sha2::{Digest, Sha256, Sha384, Sha512};

/// DER-encoded object identifiers of the signature algorithms, and the hash each implies.
const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// One DER tag-length-value: (tag, contents, what follows).
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The OID of a certificate's outer signatureAlgorithm.
fn signature_oid(cert_der: &[u8]) -> Option<&[u8]> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, cert, _) = tlv(cert_der)? else {
        return None;
    };
    let (SEQUENCE, _tbs, rest) = tlv(cert)? else {
        return None;
    };
    let (SEQUENCE, alg, _) = tlv(rest)? else {
        return None;
    };
    let (0x06, oid, _) = tlv(alg)? else {
        return None;
    };
    Some(oid)
}

fn hash_for(oid: &[u8]) -> Option<Hash> {
    let (prefix, last) = oid.split_at(oid.len().checked_sub(1)?);
    match (prefix, last[0]) {
        // md5, sha1, sha256 WithRSAEncryption; sha384, sha512.
        (RSA, 4 | 5 | 11) => Some(Hash::Sha256),
        (RSA, 12) => Some(Hash::Sha384),
        (RSA, 13) => Some(Hash::Sha512),
        _ if oid == ECDSA_SHA1 => Some(Hash::Sha256),
        (ECDSA_SHA2, 2) => Some(Hash::Sha256),
        (ECDSA_SHA2, 3) => Some(Hash::Sha384),
        (ECDSA_SHA2, 4) => Some(Hash::Sha512),
        _ => None,
    }
}

/// The `tls-server-end-point` data for a DER certificate, or None when its signature
/// algorithm does not name one hash.
pub fn server_end_point(cert_der: &[u8]) -> Option<Vec<u8>> {
    Some(match hash_for(signature_oid(cert_der)?)? {
        Hash::Sha256 => Sha256::digest(cert_der).to_vec(),
        Hash::Sha384 => Sha384::digest(cert_der).to_vec(),
        Hash::Sha512 => Sha512::digest(cert_der).to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_truncation() {
        assert_eq!(
            tlv(&[0x30, 0x02, 1, 2, 9]),
            Some((0x30, &[1u8, 2][..], &[9u8][..]))
        );
        assert_eq!(
            tlv(&[0x30, 0x81, 0x01, 7]),
            Some((0x30, &[7u8][..], &[][..]))
        );
        assert_eq!(tlv(&[0x30, 0x05, 1]), None);
        assert_eq!(tlv(&[0x30, 0x80]), None);
        assert_eq!(server_end_point(b"not a certificate"), None);
    }

    #[test]
    fn hashes_by_signature_algorithm() {
        assert_eq!(hash_for(&[RSA, &[11]].concat()), Some(Hash::Sha256));
        assert_eq!(hash_for(&[RSA, &[5]].concat()), Some(Hash::Sha256));
        assert_eq!(hash_for(&[RSA, &[12]].concat()), Some(Hash::Sha384));
        assert_eq!(hash_for(&[ECDSA_SHA2, &[4]].concat()), Some(Hash::Sha512));
        assert_eq!(hash_for(ECDSA_SHA1), Some(Hash::Sha256));
        // RSA-PSS and Ed25519: no single hash.
        assert_eq!(hash_for(&[RSA, &[10]].concat()), None);
        assert_eq!(hash_for(&[0x2b, 0x65, 0x70]), None);
        assert_eq!(hash_for(&[]), None);
    }
}
