//! What the integration tests and the fuzz targets use of the crate, named here and
//! nowhere else: building and running a proxy in-process, its config and state, the admin
//! client, the wire-protocol parsers and SQL translators the fuzzers feed, and the pieces
//! of live sync the race tests drive directly.

pub use crate::app::App;
pub use crate::config::{Config, PoolerMode};
pub use crate::ctl::{Target, call};
pub use crate::lifecycle::Lifecycle;
pub use crate::metrics::Metrics;
pub use crate::state::ProxyState;

/// Wire-protocol framing and parsing (fuzzed).
pub mod protocol {
    pub use crate::protocol::{framing, parse, startup};
}

/// SQL the proxy reads: the SQLite backend's translator and the relay's classifier
/// (fuzzed).
pub mod sql {
    pub use crate::backend::sqlite::translate::translate;
    pub use crate::relay::sqlscan;
}

/// Live sync's apply rounds and the table model, for the tests that race them.
pub mod sync {
    pub use crate::sync::SyncError;
    pub use crate::sync::copy::plan;
    pub use crate::sync::live::{apply, side};
    pub use crate::sync::schema;
}
