//! The pure core of the durable host: what an orchestration's history is, how it is
//! encoded, and the rules of replay and of a step, as functions of data.
//!
//! Nothing here does I/O: no clock but the one passed in, no files, no wasm, no network.
//! Every crate above (`durable-store`, `durable-wasm`, `durable-engine`) speaks these
//! types, and the replay rules are tested here in milliseconds.
//!
//! - [`history`]: events, actions, messages, instance and entity records, timestamps.
//! - [`replay`]: fold a history into state, split episodes, check a replayed episode,
//!   triage inbox messages, build the outcome of a new episode.
//! - [`step`]: what a step commits: the commit of an orchestration step or an entity
//!   batch from what was read and what the guest returned; the limits it is held to.
//! - [`json_depth`]: the one JSON nesting limit every payload is held to.

#[doc(hidden)]
pub mod fuzzing;
pub mod history;
pub mod json_depth;
pub mod replay;
pub mod step;
