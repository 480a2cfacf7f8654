//! What commands that are not the proxy read from a config file: `switchyard ctl -c FILE`
//! the admin address and token, `switchyard sync --config FILE` the `[sync]` section.
//! Nothing else is validated or expanded, so they work where the backends' passwords are
//! not set (an operator's shell, a deploy hook).

use std::path::Path;

use super::env::{self, EnvSource, Layered, ProcessEnv};
use super::{AdminConfig, ConfigError, SyncConfig};

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The `[admin]` section of the config at `path` (the defaults without one).
pub fn admin_of(path: &Path) -> Result<AdminConfig, ConfigError> {
    let text = read(path)?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let vars = env::env_file_of(&text, dir)?;
    admin_from(&text, &Layered(&ProcessEnv, vars))
}

/// The `[sync]` section of the config at `path`, checked (empty without one).
pub fn sync_of(path: &Path) -> Result<SyncConfig, ConfigError> {
    sync_from(&read(path)?)
}

fn sync_from(text: &str) -> Result<SyncConfig, ConfigError> {
    let value: toml::Value = toml::from_str(text)
        .map_err(|e| ConfigError::Syntax(e.to_string().trim_end().replace('\n', " ")))?;
    let Some(sync) = value.get("sync").cloned() else {
        return Ok(SyncConfig::default());
    };
    let out: SyncConfig = sync
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::invalid("sync", e.message().to_string()))?;
    out.choices()
        .check()
        .map_err(|e| ConfigError::invalid("sync", e))?;
    Ok(out)
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

    #[test]
    fn the_sync_section_is_read_and_checked() {
        let text = "[backends.hosted]\nurl = \"postgres://u:${NOT_SET}@h/db\"\n\
                    [sync]\nexclude_columns = [\"events.legacy\"]\n\
                    [sync.types]\n\"events.at\" = \"timestamptz\"\n";
        let c = sync_from(text).unwrap().choices();
        assert_eq!(c.exclude_columns, vec!["events.legacy"]);
        assert_eq!(c.types, vec!["events.at=timestamptz"]);
        assert!(sync_from("[admin]\n").unwrap().choices().is_empty());
        let bad = sync_from("[sync.types]\n\"events\" = \"text\"\n").unwrap_err();
        assert!(bad.to_string().contains("TABLE.COLUMN=TYPE"), "{bad}");
        let unknown = sync_from("[sync]\ntype = 1\n").unwrap_err();
        assert!(unknown.to_string().contains("unknown field"), "{unknown}");
    }
}
