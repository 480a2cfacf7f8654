//! The data step of a switch ([`SwitchHook`]): live sync plugs in here. It is asked
//! before the pause whether the switch may start, then inside the pause to bring the
//! target up to date and record durably that it will take the writes, then told whether
//! the switch was committed.

use futures::future::BoxFuture;

pub use super::error::HookError;
use crate::backend::Backend;

/// What a switch asks of the data layer. The switch's order is: `preflight` (nothing
/// paused; an error refuses the switch) → pause, drain → `prepare` (bounded by
/// `switch.max_pause`; an error or the bound aborts) → the route is written to the route
/// file → `commit` → swap → resume → `finished`.
pub trait SwitchHook: Send + Sync {
    /// Runs before the pause; an error refuses the switch (nothing paused yet).
    fn preflight<'a>(
        &'a self,
        _from: &'a Backend,
        _to: &'a Backend,
    ) -> BoxFuture<'a, Result<(), HookError>> {
        Box::pin(async { Ok(()) })
    }

    /// Runs inside the pause, after the drain: the target must be ready for writes when
    /// it returns. `epoch` is the switch epoch this switch will commit as. May be dropped
    /// part way (the pause bound); it must leave nothing committed that `finished(false)`
    /// cannot undo.
    fn prepare<'a>(
        &'a self,
        from: &'a Backend,
        to: &'a Backend,
        epoch: u64,
    ) -> BoxFuture<'a, Result<(), HookError>>;

    /// The switch is committed (the route file says `to`): the swap follows at once.
    /// Synchronous and infallible.
    fn commit(&self, _from: &Backend, _to: &Backend) {}

    /// Runs once the switch is over, whichever way it ended.
    fn finished(&self, _committed: bool) {}
}
