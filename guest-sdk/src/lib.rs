//! Write Durable Functions — orchestrators, activities and entities — in Rust, and compile
//! them to a WebAssembly component that the durable host runs.
//!
//! ```
//! use durable_sdk::{Error, OrchestrationContext};
//!
//! async fn hello(ctx: OrchestrationContext) -> Result<Vec<String>, Error> {
//!     let mut out = Vec::new();
//!     for city in ["Tokyo", "Seattle", "London"] {
//!         out.push(ctx.call_activity::<String>("E1_SayHello", city).await?);
//!     }
//!     Ok(out)
//! }
//!
//! fn say_hello(name: String) -> Result<String, Error> {
//!     Ok(format!("Hello {name}!"))
//! }
//!
//! durable_sdk::export! {
//!     orchestrators: { "E1_HelloSequence" => hello },
//!     activities: { "E1_SayHello" => say_hello },
//! }
//! # fn main() {}
//! ```
//!
//! Build the crate as a `cdylib` with `cargo build --target wasm32-wasip2 --release`; the
//! `.wasm` it produces is the component to deploy.
//!
//! # Core concepts
//!
//! - An **orchestrator** is an `async fn(OrchestrationContext) -> Result<T, E>`. It runs by
//!   replay: the host feeds it the history of what happened so far, and the code runs
//!   again from the start, getting recorded results instead of repeating work. It must
//!   therefore be deterministic; [`OrchestrationContext`] says what that means.
//! - An **activity** is a plain `fn(I) -> Result<O, E>` (or `fn(ActivityContext, I)`, or
//!   `fn()`) that does the real work: I/O, computation. It runs at least once.
//! - An **entity** is a state type plus operations: an
//!   `fn(&mut EntityContext<S>) -> Result<(), E>` that runs one operation at a time against
//!   its state, addressed by an [`EntityId`] (name and key). Orchestrators call it
//!   ([`OrchestrationContext::call_entity`]), signal it
//!   ([`OrchestrationContext::signal_entity`]) or lock several for a critical section
//!   ([`OrchestrationContext::lock_entities`]).
//! - A [`Task`] is the pending result of an activity, sub-orchestration, entity call, durable
//!   timer, entity lock or external event. Await it, or combine several with [`task_all`]
//!   and [`task_any`].
//! - Everything crosses the host boundary as JSON through serde: inputs, outputs, event
//!   payloads, custom status. Decoding is tolerant of double-encoded JSON strings.
//! - [`Error`] is what functions fail with; [`TaskError`] is why an awaited task failed.
//!   `?` converts one into the other.

#![deny(missing_docs)]

// The one module with unsafe code: the bindings that wit-bindgen generates.
#[allow(unsafe_code, missing_docs)]
#[doc(hidden)]
pub mod bindings;

mod activity;
mod context;
mod entity;
mod error;
mod executor;
mod export;
mod guid;
mod json;
#[cfg(test)]
mod protocol_tests;
mod registry;
mod retry;
mod state;
mod task;
mod time;

pub use activity::ActivityContext;
pub use context::{EntityLock, OrchestrationContext};
pub use entity::{EntityContext, EntityId};
pub use error::{Error, TaskError, TaskKind};
pub use retry::RetryOptions;
pub use task::{Task, TaskAll, TaskAny, task_all, task_any};

/// What the [`export!`] macro expands to refers to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::activity::ActivityHandler;
    pub use crate::entity::EntityHandler;
    pub use crate::export::{App, Component, Orchestration};
    pub use crate::registry::{OrchestratorHandler, Registry};
}
