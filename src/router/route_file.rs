//! The route on disk: which backend is active, which one was before it, and the switch
//! epoch (how many switches this proxy has made), written atomically after every switch
//! so a restart comes up where the last switch left it — not wherever the config's
//! `routing.active` points. The file also holds this proxy's instance id, which live sync
//! uses to recognise its own earlier process.
//!
//! The file is `routing.state_file`; by default beside the config file (or in systemd's
//! `$STATE_DIRECTORY`). Written as a temporary file, fsynced, then renamed over the old
//! one, so a crash leaves either the old route or the new one, never half a file.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RouteFileError {
    #[error("routing.state_file {path}: {source} (set routing.state_file to a writable path)")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "routing.state_file {path} is not a route file switchyard wrote ({detail}); move it away to start from routing.active"
    )]
    Corrupt { path: PathBuf, detail: String },
}

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteState {
    /// The backend new transactions go to.
    pub active: String,
    /// The backend before the last switch (the one `rollback` returns to).
    pub previous: Option<String>,
    /// Successful switches so far; 0 means no switch has happened yet (the config's
    /// `routing.active` then decides).
    pub epoch: u64,
    pub switched_at_unix_ms: u64,
    /// A random id for this proxy, kept across restarts.
    pub instance: String,
}

/// The file.
#[derive(Debug, Clone)]
pub struct RouteFile {
    pub path: PathBuf,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> RouteFileError + '_ {
    move |source| RouteFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl RouteFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        RouteFile { path: path.into() }
    }

    /// Reads the file; `None` when there is none yet.
    pub fn load(&self) -> Result<Option<RouteState>, RouteFileError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&self.path)(e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| RouteFileError::Corrupt {
                path: self.path.clone(),
                detail: e.to_string(),
            })
    }

    /// Writes `state` durably: temporary file, fsync, rename, fsync of the directory.
    pub fn store(&self, state: &RouteState) -> Result<(), RouteFileError> {
        let err = io(&self.path);
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(state).unwrap_or_default();
        let mut f = std::fs::File::create(&tmp).map_err(&err)?;
        f.write_all(text.as_bytes()).map_err(&err)?;
        f.write_all(b"\n").map_err(&err)?;
        f.sync_all().map_err(&err)?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(&err)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Loads the file, creating it (with a new instance id and `active`, epoch 0) when
    /// there is none, so an unwritable location is found at start-up, not at the first
    /// switch.
    pub fn open(&self, active: &str) -> Result<RouteState, RouteFileError> {
        if let Some(s) = self.load()? {
            return Ok(s);
        }
        let state = RouteState {
            active: active.to_string(),
            previous: None,
            epoch: 0,
            switched_at_unix_ms: 0,
            instance: new_instance_id(),
        };
        self.store(&state)?;
        Ok(state)
    }
}

/// A random id for a proxy that keeps no state file (or before it has one).
pub fn new_instance_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The default location: `$STATE_DIRECTORY/switchyard.state.json` under systemd (which
/// sets it for units with `StateDirectory=`), else beside the config file, named after it.
pub fn default_path(config: &Path, state_directory: Option<&str>) -> PathBuf {
    if let Some(dir) = state_directory.filter(|d| !d.is_empty()) {
        // systemd may list several directories separated by ':'; the first is ours.
        let first = dir.split(':').next().unwrap_or(dir);
        return Path::new(first).join("switchyard.state.json");
    }
    let stem = config
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "switchyard".into());
    config
        .parent()
        .unwrap_or(Path::new("."))
        .join(format!("{stem}.state.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_loads_and_creates_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = RouteFile::new(dir.path().join("r.json"));
        assert_eq!(f.load().unwrap(), None);
        let first = f.open("local").unwrap();
        assert_eq!((first.active.as_str(), first.epoch), ("local", 0));
        // A second open keeps the instance id.
        assert_eq!(f.open("other").unwrap(), first);
        let next = RouteState {
            active: "remote".into(),
            previous: Some("local".into()),
            epoch: 1,
            switched_at_unix_ms: 5,
            instance: first.instance.clone(),
        };
        f.store(&next).unwrap();
        assert_eq!(f.load().unwrap(), Some(next));
        assert!(!dir.path().join("r.json.tmp").exists());
    }

    #[test]
    fn names_the_key_when_it_cannot_write_or_read() {
        let f = RouteFile::new("/proc/no/such/dir/r.json");
        let e = f.open("local").unwrap_err().to_string();
        assert!(e.contains("routing.state_file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.json"), "not json").unwrap();
        let e = RouteFile::new(dir.path().join("bad.json"))
            .load()
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a route file"), "{e}");
    }

    #[test]
    fn default_location() {
        let p = default_path(Path::new("/etc/switchyard/switchyard.toml"), None);
        assert_eq!(p, Path::new("/etc/switchyard/switchyard.state.json"));
        let p = default_path(Path::new("app.toml"), None);
        assert_eq!(p, Path::new("app.state.json"));
        let p = default_path(Path::new("/etc/x.toml"), Some("/var/lib/switchyard"));
        assert_eq!(p, Path::new("/var/lib/switchyard/switchyard.state.json"));
    }
}
