//! The fleet step of a switch ([`Barrier`]): when this proxy is one member of a fleet, a
//! switch it runs is the fleet's switch. Before the local pause the fleet is told to
//! prepare; after the local drain every member must have acknowledged; the commit point is
//! the fleet store's record of the new epoch and route, not this proxy's route file; a
//! switch abandoned after it began tells the fleet to resume on the old side.

use futures::future::BoxFuture;

use super::error::StepError;

/// What a switch asks of the fleet. The order is: `begin` (before the local pause; an
/// error refuses the switch) → local pause and drain → `await_acks` (bounded by
/// `switch.max_pause` with the rest of the pause) → the data hook's `prepare` → `commit`
/// → route file, swap, resume. After `begin`, a failure anywhere calls `abort`.
pub trait Barrier: Send + Sync {
    /// The fleet starts preparing a switch from `from` to `to`; returns the epoch the
    /// switch will commit as.
    fn begin<'a>(
        &'a self,
        kind: &'static str,
        from: &'a str,
        to: &'a str,
    ) -> BoxFuture<'a, Result<u64, StepError>>;

    /// This proxy has drained: acknowledge, then wait for every other member's
    /// acknowledgement (an error names the member that did not give one).
    fn await_acks(&self) -> BoxFuture<'_, Result<(), StepError>>;

    /// The commit point: the fleet's store records the new epoch and route. Returns the
    /// epoch.
    fn commit(&self) -> BoxFuture<'_, Result<u64, StepError>>;

    /// The switch that began was abandoned: every member resumes on the old side.
    fn abort<'a>(&'a self, why: &'a str) -> BoxFuture<'a, ()>;

    /// What the fleet did in the last switch (members' acknowledgements, phase times),
    /// for the switch record.
    fn report(&self) -> BoxFuture<'_, Option<serde_json::Value>>;
}
