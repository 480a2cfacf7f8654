//! The users allowed to connect to the proxy and their stored secrets, prepared once at
//! start: plain passwords are turned into SCRAM verifiers (and md5 hashes when md5 is
//! used), so no login pays for key derivation twice and nothing keeps more than it needs.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::config::{AuthMethod, ProxyConfig, UserConfig};

/// A SCRAM-SHA-256 verifier, as PostgreSQL stores it.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramSecret {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl std::fmt::Debug for ScramSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScramSecret(***)")
    }
}

impl ScramSecret {
    /// Parses `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
    pub fn parse(s: &str) -> Option<ScramSecret> {
        let rest = s.strip_prefix("SCRAM-SHA-256$")?;
        let (iter_salt, keys) = rest.split_once('$')?;
        let (iters, salt) = iter_salt.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        let key = |k: &str| -> Option<[u8; 32]> { STANDARD.decode(k).ok()?.try_into().ok() };
        Some(ScramSecret {
            iterations: iters.parse().ok()?,
            salt: STANDARD.decode(salt).ok()?,
            stored_key: key(stored)?,
            server_key: key(server)?,
        })
    }

    /// Derives a verifier from a plain password with a fresh random salt.
    pub fn from_password(password: &str) -> ScramSecret {
        let text = postgres_protocol::password::scram_sha_256(password.as_bytes());
        ScramSecret::parse(&text).expect("postgres-protocol produces a valid verifier")
    }
}

/// What the proxy keeps for one user.
#[derive(Debug, Clone)]
pub struct UserCred {
    pub method: AuthMethod,
    pub scram: Option<ScramSecret>,
    /// The hex digest of md5(password || user), without the `md5` prefix.
    pub md5: Option<String>,
    pub max_connections: Option<usize>,
    /// Connections of this user open now.
    pub open: super::throttle::UserCount,
}

/// All configured users. Empty means trust (allowed on loopback only).
#[derive(Debug, Clone, Default)]
pub struct UserStore {
    users: HashMap<String, UserCred>,
}

impl UserStore {
    pub fn from_config(proxy: &ProxyConfig, users: &[UserConfig]) -> UserStore {
        let mut map = HashMap::new();
        for u in users {
            let method = u.auth.unwrap_or(proxy.auth);
            let pw = u.password.as_str();
            let scram = match method {
                AuthMethod::ScramSha256 => {
                    Some(ScramSecret::parse(pw).unwrap_or_else(|| ScramSecret::from_password(pw)))
                }
                _ => None,
            };
            let md5 = match method {
                AuthMethod::Md5 if pw.starts_with("md5") && pw.len() == 35 => {
                    Some(pw[3..].to_string())
                }
                AuthMethod::Md5 => {
                    Some(postgres_protocol::password::md5(pw.as_bytes(), &u.name)[3..].to_string())
                }
                _ => None,
            };
            map.insert(
                u.name.clone(),
                UserCred {
                    method,
                    scram,
                    md5,
                    max_connections: u.max_connections,
                    open: Default::default(),
                },
            );
        }
        UserStore { users: map }
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&UserCred> {
        self.users.get(name)
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_roundtrip() {
        let s = ScramSecret::from_password("pencil");
        assert_eq!(s.iterations, 4096);
        assert_eq!(s.salt.len(), 16);
        let text = format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            s.iterations,
            STANDARD.encode(&s.salt),
            STANDARD.encode(s.stored_key),
            STANDARD.encode(s.server_key)
        );
        assert_eq!(ScramSecret::parse(&text).unwrap(), s);
        assert!(ScramSecret::parse("SCRAM-SHA-256$x").is_none());
        assert!(!format!("{s:?}").contains(&STANDARD.encode(s.stored_key)));
    }
}
