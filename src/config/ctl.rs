//! What `switchyard ctl -c FILE` reads from a config file: the admin address and token
//! only. Nothing else is validated or expanded, so `ctl` works where the backends'
//! passwords are not set (an operator's shell, a deploy hook).

use std::path::Path;

use super::env::{self, EnvSource, Layered, ProcessEnv};
use super::{AdminConfig, ConfigError};

/// The `[admin]` section of the config at `path` (the defaults without one).
pub fn admin_of(path: &Path) -> Result<AdminConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let vars = env::env_file_of(&text, dir)?;
    admin_from(&text, &Layered(&ProcessEnv, vars))
}

fn admin_from(text: &str, vars: &dyn EnvSource) -> Result<AdminConfig, ConfigError> {
    let value: toml::Value = toml::from_str(text)
        .map_err(|e| ConfigError::Syntax(e.to_string().trim_end().replace('\n', " ")))?;
    let Some(mut admin) = value.get("admin").cloned() else {
        return Ok(AdminConfig::default());
    };
    env::expand_value(&mut admin, "admin", vars)?;
    let mut out = AdminConfig::default();
    if let Some(listen) = admin.get("listen") {
        out.listen = listen
            .as_str()
            .ok_or_else(|| ConfigError::invalid("admin.listen", "must be a string"))?
            .to_string();
    }
    out.token = admin
        .get("token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn only_the_admin_section_is_read() {
        // A backend password that is not set does not matter to ctl.
        let text = "[admin]\nlisten = \"127.0.0.1:9700\"\ntoken = \"${TOKEN}\"\n\
                    [backends.hosted]\nurl = \"postgres://u:${NOT_SET}@h/db\"\n";
        let vars: HashMap<String, String> = [("TOKEN".to_string(), "t0k".to_string())].into();
        let a = admin_from(text, &vars).unwrap();
        assert_eq!(
            (a.listen.as_str(), a.token.as_deref()),
            ("127.0.0.1:9700", Some("t0k"))
        );
        let d = admin_from("[backends.x]\nurl = \"sqlite://a.db\"\n", &vars).unwrap();
        assert_eq!(d.listen, "127.0.0.1:9640");
        let missing = admin_from("[admin]\ntoken = \"${NOPE}\"\n", &vars).unwrap_err();
        assert!(missing.to_string().contains("NOPE"), "{missing}");
    }
}
