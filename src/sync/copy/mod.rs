//! `switchyard sync`: the whole run ([`plan`]: decide per table, copy with bounded
//! parallelism in one source snapshot), one table's copy ([`backfill`]) with its
//! [`checkpoint`]s, then [`foreign_keys`] and [`sequences`].

pub mod adopt;
pub mod backfill;
pub mod checkpoint;
pub mod dry_run;
pub mod foreign_keys;
pub mod plan;
pub mod sequences;
