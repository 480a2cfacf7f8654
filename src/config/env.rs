//! `${VAR}` and `${VAR:-default}` expansion inside every string value of the config,
//! so secrets can live in the environment (or in the config's `env_file`, which the
//! environment overrides). A missing variable is an error naming the key.

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

/// The environment first, then a file's variables.
pub struct Layered<'a>(pub &'a dyn EnvSource, pub HashMap<String, String>);

impl EnvSource for Layered<'_> {
    fn var(&self, name: &str) -> Option<String> {
        self.0.var(name).or_else(|| self.1.get(name).cloned())
    }
}

/// The variables of the config's `env_file` (none without one). The key is read from the
/// text before any expansion; a relative path is taken from the config's directory.
pub fn env_file_of(
    text: &str,
    dir: &std::path::Path,
) -> Result<HashMap<String, String>, ConfigError> {
    let Ok(value) = toml::from_str::<toml::Value>(text) else {
        // The syntax error is reported by the full parse.
        return Ok(HashMap::new());
    };
    let Some(name) = value.get("env_file") else {
        return Ok(HashMap::new());
    };
    let Some(name) = name.as_str() else {
        return Err(ConfigError::invalid(
            "env_file",
            "must be a path (a string)",
        ));
    };
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ConfigError::invalid(
            "env_file",
            format!(
                "cannot read {}: {e}; it holds the passwords `switchyard init` took (keep it beside the config, mode 0600), or remove the env_file line and set the variables in the environment",
                path.display()
            ),
        )
    })?;
    parse_env_file(&text).map_err(|(line, why)| {
        ConfigError::invalid("env_file", format!("{} line {line}: {why}", path.display()))
    })
}

/// `NAME=value` lines as systemd's EnvironmentFile takes them: `#` comments, blank lines,
/// an optional `export `, the value optionally in single or double quotes.
pub fn parse_env_file(text: &str) -> Result<HashMap<String, String>, (usize, &'static str)> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            return Err((i + 1, "expected NAME=value"));
        };
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err((i + 1, "the name may hold only letters, digits and _"));
        }
        let value = value.trim();
        let unquoted = ['\'', '"'].iter().find_map(|&q| {
            value
                .strip_prefix(q)
                .and_then(|v| v.strip_suffix(q))
                .filter(|_| value.len() >= 2)
        });
        out.insert(name.to_string(), unquoted.unwrap_or(value).to_string());
    }
    Ok(out)
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
    fn env_files_take_systemd_lines_and_the_environment_wins() {
        let vars = parse_env_file(
            "# secrets\nSUPABASE_PASSWORD='p%40ss word'\nexport B=\"x\"\n\nC=plain\n",
        )
        .unwrap();
        assert_eq!(vars["SUPABASE_PASSWORD"], "p%40ss word");
        assert_eq!(vars["B"], "x");
        assert_eq!(vars["C"], "plain");
        assert_eq!(parse_env_file("oops").unwrap_err().0, 1);
        let env = Layered(&env(), vars);
        assert_eq!(env.var("PW").as_deref(), Some("s3cr\"et"));
        assert_eq!(env.var("C").as_deref(), Some("plain"));
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
