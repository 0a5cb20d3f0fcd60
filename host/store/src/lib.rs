//! The storage of a task hub: the contract every backend keeps ([`TaskStore`] and its
//! types), its conformance suite, and the redb backend ([`RedbStore`]).
//!
//! Invariants every backend keeps:
//! 1. Every write is applied by [`TaskStore::apply`], and one call is one write transaction:
//!    all effects of an orchestration step (history, inbox removals, work items, timers,
//!    messages to other instances, the instance row) commit together or not at all.
//! 2. A step commits only if the instance row still carries the step's execution id;
//!    otherwise it is [`Rejection::Stale`] and writes nothing.
//! 3. Ids (execution ids, inbox, work-item and timer keys) come from one counter whose
//!    high-water mark is written in every transaction, so no id is ever reused.
//! 4. Listing sees every instance row exactly once, by its created time and status (redb
//!    keeps two index tables for it, written with every row).
//! 5. Work items and timers stay in their tables until the transaction that delivers their
//!    result removes them: activities run at least once, steps happen exactly once.

#[doc(hidden)]
pub mod conformance;
mod contract;
mod location;
mod postgres;
mod redb_store;

pub use contract::*;
pub use location::{DEFAULT_LEASE, LocationError, PostgresLocation, StoreLocation, open, open_reader};
pub use postgres::PostgresStore;
pub use redb_store::RedbStore;
