//! `${VAR}` and `${VAR:-default}` expansion inside every string value of the config,
//! so secrets can live in the environment. A missing variable is an error naming the key.

use std::collections::HashMap;

use super::ConfigError;

/// Where variables come from: the process environment, or a fixed map in tests.
pub trait EnvSource {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl EnvSource for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Expands variables in every string of `value`, recursively. `path` names the key.
pub fn expand_value(
    value: &mut toml::Value,
    path: &str,
    env: &dyn EnvSource,
) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) if s.contains("${") => {
            *s = expand_str(s, path, env)?;
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_value(item, &format!("{path}[{i}]"), env)?;
            }
        }
        toml::Value::Table(table) => {
            for (k, v) in table.iter_mut() {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                expand_value(v, &child, env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Expands `${NAME}` and `${NAME:-default}` in one string. `$$` is not special.
pub fn expand_str(s: &str, key: &str, env: &dyn EnvSource) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(ConfigError::Invalid {
                key: key.to_string(),
                problem: "unterminated ${ in value".into(),
            });
        };
        let spec = &after[..end];
        let (name, default) = match spec.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (spec, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ConfigError::Invalid {
                key: key.to_string(),
                problem: format!("invalid environment variable name {name:?}"),
            });
        }
        match (env.var(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(ConfigError::MissingEnv {
                    key: key.to_string(),
                    var: name.to_string(),
                });
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> HashMap<String, String> {
        HashMap::from([("PW".to_string(), "s3cr\"et".to_string())])
    }

    #[test]
    fn expands_and_defaults() {
        let e = env();
        assert_eq!(expand_str("a${PW}b", "k", &e).unwrap(), "as3cr\"etb");
        assert_eq!(expand_str("${NOPE:-x}", "k", &e).unwrap(), "x");
        assert_eq!(expand_str("plain", "k", &e).unwrap(), "plain");
    }

    #[test]
    fn missing_names_the_key() {
        let err = expand_str("${NOPE}", "users[0].password", &env()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("users[0].password"), "{msg}");
        assert!(msg.contains("NOPE"), "{msg}");
        assert!(expand_str("${PW", "k", &env()).is_err());
        assert!(expand_str("${a-b}", "k", &env()).is_err());
    }
}
