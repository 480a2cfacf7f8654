//! Client authentication: SCRAM-SHA-256 (RFC 5802/7677, as PostgreSQL speaks it), md5 and
//! trust. Unknown users go through the same exchange and fail at the end, so a probe
//! cannot tell which user names exist. Proofs are compared in constant time. On TLS
//! connections SCRAM-SHA-256-PLUS is offered too (channel binding `tls-server-end-point`),
//! and a client that could bind but was told it cannot (a downgrade) is refused.

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
    channel_binding: Option<&[u8]>,
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
            scram_exchange(s, buf, user, secret, channel_binding).await?;
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

/// `plus`: the client chose SCRAM-SHA-256-PLUS; `offered_plus`: the server offered it.
fn parse_client_first(msg: &str, plus: bool, offered_plus: bool) -> Result<ClientFirst, AuthError> {
    let bad = AuthError::Malformed;
    let (cb, rest) = msg.split_once(',').ok_or(bad("client-first-message"))?;
    let (_authzid, bare) = rest.split_once(',').ok_or(bad("client-first-message"))?;
    match (cb, plus) {
        ("p=tls-server-end-point", true) | ("n", false) => {}
        (_, true) => {
            return Err(bad(
                "SCRAM-SHA-256-PLUS needs channel binding tls-server-end-point",
            ));
        }
        // The client can bind but believes the server cannot: it was offered, so a downgrade.
        ("y", false) if offered_plus => {
            return Err(bad(
                "channel binding downgrade: the client supports it and so does this server",
            ));
        }
        ("y", false) => {}
        _ => return Err(bad("channel binding requested without SCRAM-SHA-256-PLUS")),
    }
    let nonce = bare
        .split(',')
        .find_map(|a| a.strip_prefix("r="))
        .ok_or(bad("client nonce"))?;
    if nonce.is_empty() || nonce.contains(',') {
        return Err(bad("client nonce"));
    }
    Ok(ClientFirst {
        gs2_header: msg[..msg.len() - bare.len()].to_string(),
        bare: bare.to_string(),
        nonce: nonce.to_string(),
    })
}

async fn scram_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    buf: &mut BytesMut,
    user: &str,
    secret: Option<ScramSecret>,
    channel_binding: Option<&[u8]>,
) -> Result<(), AuthError> {
    let known = secret.is_some();
    // Unknown users get a made-up verifier so the exchange looks the same.
    let secret =
        secret.unwrap_or_else(|| ScramSecret::from_password(&hex(&rand::random::<[u8; 16]>())));
    let mut out = BytesMut::new();
    let mechanisms: &[u8] = match channel_binding {
        Some(_) => b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0",
        None => b"SCRAM-SHA-256\0\0",
    };
    build::authentication(&mut out, 10, mechanisms);
    wire::send(s, &out).await?;

    let body = read_password(s, buf).await?;
    let (mech, rest) =
        body.split_at(memchr::memchr(0, &body).ok_or(AuthError::Malformed("SASL mechanism"))?);
    let plus = match mech {
        b"SCRAM-SHA-256" => false,
        b"SCRAM-SHA-256-PLUS" if channel_binding.is_some() => true,
        _ => return Err(AuthError::Malformed("unsupported SASL mechanism")),
    };
    if rest.len() < 5 {
        return Err(AuthError::Malformed("SASL initial response"));
    }
    let first = std::str::from_utf8(&rest[5..]).map_err(|_| AuthError::Malformed("not UTF-8"))?;
    let cf = parse_client_first(first, plus, channel_binding.is_some())?;
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
    let mut bound = cf.gs2_header.as_bytes().to_vec();
    if plus {
        bound.extend_from_slice(channel_binding.unwrap_or_default());
    }
    let cbind_ok = cbind == STANDARD.encode(bound);
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
    use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Reads an Authentication message: (code, payload); None once the server hung up.
    async fn read_auth(c: &mut tokio::io::DuplexStream) -> Option<(i32, Vec<u8>)> {
        let mut head = [0u8; 9];
        c.read_exact(&mut head).await.ok()?;
        assert_eq!(head[0], b'R');
        let len = i32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
        let mut payload = vec![0u8; len - 8];
        c.read_exact(&mut payload).await.unwrap();
        Some((i32::from_be_bytes(head[5..9].try_into().unwrap()), payload))
    }

    async fn send_p(c: &mut tokio::io::DuplexStream, body: &[u8]) {
        let mut m = vec![b'p'];
        m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        m.extend_from_slice(body);
        c.write_all(&m).await.unwrap();
    }

    /// A full exchange: the server binds to `server_cb`; the client picks `mech` and binds
    /// with `client`. Returns the server's verdict.
    fn exchange(
        server_cb: Option<&[u8]>,
        mech: &str,
        client: ChannelBinding,
    ) -> Result<(), AuthError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let (mut c, mut s) = tokio::io::duplex(4096);
            let has_cb = server_cb.is_some();
            let server_cb = server_cb.map(|b| b.to_vec());
            let server = tokio::spawn(async move {
                let mut buf = BytesMut::new();
                let secret = Some(ScramSecret::from_password("secret"));
                scram_exchange(&mut s, &mut buf, "app", secret, server_cb.as_deref()).await
            });
            let (code, mechs) = read_auth(&mut c).await.unwrap();
            assert_eq!(code, 10);
            let offered = String::from_utf8(mechs).unwrap();
            assert_eq!(offered.starts_with("SCRAM-SHA-256-PLUS\0"), has_cb);
            let mut scram = ScramSha256::new(b"secret", client);
            let first = scram.message().to_vec();
            let mut init = [mech.as_bytes(), &[0]].concat();
            init.extend_from_slice(&(first.len() as i32).to_be_bytes());
            init.extend_from_slice(&first);
            send_p(&mut c, &init).await;
            match read_auth(&mut c).await {
                Some((11, server_first)) => {
                    scram.update(&server_first).unwrap();
                    send_p(&mut c, scram.message()).await;
                }
                _ => return server.await.unwrap(),
            }
            let verdict = server.await.unwrap();
            if verdict.is_ok() {
                let (code, last) = read_auth(&mut c).await.unwrap();
                assert_eq!(code, 12);
                scram
                    .finish(&last)
                    .expect("the server proves it knows the password");
            }
            verdict
        })
    }

    #[test]
    fn channel_binding_is_checked() {
        let cert_hash = [7u8; 32];
        let cb = || ChannelBinding::tls_server_end_point(cert_hash.to_vec());
        // Bound to the right certificate, or not asking to bind.
        assert!(exchange(Some(&cert_hash), "SCRAM-SHA-256-PLUS", cb()).is_ok());
        assert!(
            exchange(
                Some(&cert_hash),
                "SCRAM-SHA-256",
                ChannelBinding::unsupported()
            )
            .is_ok()
        );
        assert!(exchange(None, "SCRAM-SHA-256", ChannelBinding::unsupported()).is_ok());
        assert!(exchange(None, "SCRAM-SHA-256", ChannelBinding::unrequested()).is_ok());
        // A relay in the middle: the client sees another certificate.
        let other = ChannelBinding::tls_server_end_point(vec![8u8; 32]);
        assert!(matches!(
            exchange(Some(&cert_hash), "SCRAM-SHA-256-PLUS", other),
            Err(AuthError::Failed(_))
        ));
        // A downgrade: the client could bind and the server offered it.
        assert!(matches!(
            exchange(
                Some(&cert_hash),
                "SCRAM-SHA-256",
                ChannelBinding::unrequested()
            ),
            Err(AuthError::Malformed(_))
        ));
        // PLUS on a connection without TLS is not on offer.
        assert!(matches!(
            exchange(None, "SCRAM-SHA-256-PLUS", cb()),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn client_first_parsing() {
        let cf = parse_client_first("n,,n=user,r=abc", false, false).unwrap();
        assert_eq!(cf.nonce, "abc");
        assert_eq!(cf.bare, "n=user,r=abc");
        assert_eq!(cf.gs2_header, "n,,");
        let cf = parse_client_first("p=tls-server-end-point,a=x,n=,r=x", true, true).unwrap();
        assert_eq!(cf.gs2_header, "p=tls-server-end-point,a=x,");
        assert!(parse_client_first("p=tls-unique,,n=,r=x", true, true).is_err());
        assert!(parse_client_first("p=tls-server-end-point,,n=,r=x", false, true).is_err());
        assert!(parse_client_first("n,,n=,r=x", true, true).is_err());
        assert!(parse_client_first("y,,n=,r=x", false, false).is_ok());
        assert!(parse_client_first("y,,n=,r=x", false, true).is_err());
        assert!(parse_client_first("n,,n=u", false, false).is_err());
        assert!(parse_client_first("garbage", false, false).is_err());
    }
}
