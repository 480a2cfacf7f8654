//! Client authentication: SCRAM-SHA-256 (RFC 5802/7677, as PostgreSQL speaks it), md5 and
//! trust. Unknown users go through the same exchange and fail at the end, so a probe
//! cannot tell which user names exist. Proofs are compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, BytesMut};
use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};

use super::users::{ScramSecret, UserStore};
use super::wire;
use crate::config::AuthMethod;
use crate::protocol::{build, fe};

/// Password and SASL messages larger than this are refused.
const AUTH_MSG_LIMIT: usize = 16 * 1024;

#[derive(Debug, Error)]
pub enum AuthError {
    #[error("password authentication failed for user \"{0}\"")]
    Failed(String),
    #[error("malformed authentication message: {0}")]
    Malformed(&'static str),
    #[error("client closed the connection during authentication")]
    Io(#[from] std::io::Error),
}

impl AuthError {
    pub fn method_label(method: AuthMethod) -> &'static str {
        match method {
            AuthMethod::ScramSha256 => "scram-sha-256",
            AuthMethod::Md5 => "md5",
            AuthMethod::Trust => "trust",
        }
    }
}

/// Runs the exchange for `user`. Ok means the client proved who it is.
pub async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
    users: &UserStore,
    user: &str,
    default_method: AuthMethod,
) -> Result<AuthMethod, AuthError> {
    if users.is_empty() {
        return Ok(AuthMethod::Trust);
    }
    let cred = users.get(user);
    let method = cred.map(|c| c.method).unwrap_or(default_method);
    match method {
        AuthMethod::Trust if cred.is_some() => Ok(AuthMethod::Trust),
        AuthMethod::Md5 => {
            md5_exchange(s, buf, user, cred.and_then(|c| c.md5.as_deref())).await?;
            Ok(method)
        }
        _ => {
            let secret = cred.and_then(|c| c.scram.clone());
            scram_exchange(s, buf, user, secret).await?;
            Ok(AuthMethod::ScramSha256)
        }
    }
}

async fn read_password<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
) -> Result<bytes::Bytes, AuthError> {
    let (tag, body) = wire::read_message(s, buf, AUTH_MSG_LIMIT).await?;
    if tag != fe::PASSWORD {
        return Err(AuthError::Malformed("expected a password message"));
    }
    Ok(body)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn md5_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
    user: &str,
    stored: Option<&str>,
) -> Result<(), AuthError> {
    let salt: [u8; 4] = rand::random();
    let mut out = BytesMut::new();
    build::authentication(&mut out, 5, &salt);
    wire::send(s, &out).await?;
    let body = read_password(s, buf).await?;
    let given = body.strip_suffix(b"\0").unwrap_or(&body);
    let Some(stored) = stored else {
        return Err(AuthError::Failed(user.into()));
    };
    let mut h = Md5::new();
    h.update(stored.as_bytes());
    h.update(salt);
    let expected = format!("md5{}", hex(&h.finalize()));
    if bool::from(expected.as_bytes().ct_eq(given)) {
        Ok(())
    } else {
        Err(AuthError::Failed(user.into()))
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key size");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// The parts of a client-first message.
struct ClientFirst {
    gs2_header: String,
    bare: String,
    nonce: String,
}

fn parse_client_first(msg: &str) -> Result<ClientFirst, AuthError> {
    let bad = AuthError::Malformed;
    let (cb, rest) = msg.split_once(',').ok_or(bad("client-first-message"))?;
    if !(cb == "n" || cb == "y") {
        return Err(bad("channel binding is not supported on this connection"));
    }
    let (_authzid, bare) = rest.split_once(',').ok_or(bad("client-first-message"))?;
    let nonce = bare
        .split(',')
        .find_map(|a| a.strip_prefix("r="))
        .ok_or(bad("client nonce"))?;
    if nonce.is_empty() || nonce.contains(',') {
        return Err(bad("client nonce"));
    }
    Ok(ClientFirst {
        gs2_header: format!("{cb},,"),
        bare: bare.to_string(),
        nonce: nonce.to_string(),
    })
}

async fn scram_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
    user: &str,
    secret: Option<ScramSecret>,
) -> Result<(), AuthError> {
    let known = secret.is_some();
    // Unknown users get a made-up verifier so the exchange looks the same.
    let secret =
        secret.unwrap_or_else(|| ScramSecret::from_password(&hex(&rand::random::<[u8; 16]>())));
    let mut out = BytesMut::new();
    build::authentication(&mut out, 10, b"SCRAM-SHA-256\0\0");
    wire::send(s, &out).await?;

    let body = read_password(s, buf).await?;
    let (mech, rest) =
        body.split_at(memchr::memchr(0, &body).ok_or(AuthError::Malformed("SASL mechanism"))?);
    if mech != b"SCRAM-SHA-256" || rest.len() < 5 {
        return Err(AuthError::Malformed("unsupported SASL mechanism"));
    }
    let first = std::str::from_utf8(&rest[5..]).map_err(|_| AuthError::Malformed("not UTF-8"))?;
    let cf = parse_client_first(first)?;
    let server_nonce = format!(
        "{}{}",
        cf.nonce,
        STANDARD.encode(rand::random::<[u8; 18]>())
    );
    let server_first = format!(
        "r={server_nonce},s={},i={}",
        STANDARD.encode(&secret.salt),
        secret.iterations
    );
    out.clear();
    build::authentication(&mut out, 11, server_first.as_bytes());
    wire::send(s, &out).await?;

    let body = read_password(s, buf).await?;
    let final_msg = std::str::from_utf8(&body).map_err(|_| AuthError::Malformed("not UTF-8"))?;
    let (without_proof, proof) = final_msg
        .rsplit_once(",p=")
        .ok_or(AuthError::Malformed("client proof"))?;
    let mut attrs = without_proof.split(',');
    let cbind = attrs
        .next()
        .and_then(|a| a.strip_prefix("c="))
        .ok_or(AuthError::Malformed("channel binding"))?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or(AuthError::Malformed("nonce"))?;
    let proof = STANDARD
        .decode(proof)
        .map_err(|_| AuthError::Malformed("client proof"))?;
    let cbind_ok = cbind == STANDARD.encode(cf.gs2_header.as_bytes());
    let auth_message = format!("{},{},{}", cf.bare, server_first, without_proof);
    let signature = hmac(&secret.stored_key, auth_message.as_bytes());
    let client_key: Vec<u8> = proof
        .iter()
        .zip(signature.iter())
        .map(|(p, s)| p ^ s)
        .collect();
    let stored: [u8; 32] = Sha256::digest(&client_key).into();
    let proof_ok = proof.len() == 32 && bool::from(stored.ct_eq(&secret.stored_key));
    if !(known && cbind_ok && nonce == server_nonce && proof_ok) {
        return Err(AuthError::Failed(user.into()));
    }
    let verifier = hmac(&secret.server_key, auth_message.as_bytes());
    out.clear();
    build::authentication(
        &mut out,
        12,
        format!("v={}", STANDARD.encode(verifier)).as_bytes(),
    );
    wire::send(s, &out).await?;
    Ok(())
}

/// Appends AuthenticationOk.
pub fn auth_ok(out: &mut BytesMut) {
    build::message(out, b'R', |b| b.put_i32(0));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_first_parsing() {
        let cf = parse_client_first("n,,n=user,r=abc").unwrap();
        assert_eq!(cf.nonce, "abc");
        assert_eq!(cf.bare, "n=user,r=abc");
        assert_eq!(cf.gs2_header, "n,,");
        assert!(parse_client_first("p=tls-unique,,n=,r=x").is_err());
        assert!(parse_client_first("n,,n=u").is_err());
        assert!(parse_client_first("garbage").is_err());
    }
}
