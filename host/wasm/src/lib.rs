//! The durable host's wasmtime layer.
//!
//! A [`WasmRuntime`] holds the one wasmtime engine and linker every app shares, an epoch
//! ticker that bounds every guest call, and a cache of compiled components. It loads a
//! component into an [`App`] (checked against the WIT world [`WORLD`], its functions read
//! from its registry) under a [`Sandbox`]: its [`GuestLimits`] (time per call, linear
//! memory) and its [`ActivityGrants`] (directories, environment, allow-listed outbound
//! HTTP).
//!
//! Guests run in one of two sandboxes. Activities run in the granted one, in instances
//! reused from call to call ([`WasmRuntime::run_activity`]). Orchestrators and entities run
//! in the deterministic one (no files, sockets or environment; a recorded clock; seeded
//! randomness): one instance per orchestration execution ([`OrchestrationGuest`]), one per
//! app for its entities ([`EntityHost`]). A guest call that fails in a way that poisons its
//! instance is a [`GuestTrap`]. Instances kept between calls count against [`IdleMemory`]
//! budgets through an [`IdleCharge`].

mod activity;
mod app;
mod bindings;
mod cache;
mod convert;
mod errors;
mod grants;
mod idle;
mod limits;
mod runtime;
mod sandbox;
mod stderr;
mod store;

pub use app::{App, FunctionKind, Sandbox};
pub use bindings::WORLD;
pub use errors::{EngineError, GuestTrap, LoadError};
pub use grants::{ActivityGrants, DirGrant};
pub use idle::{IdleCharge, IdleMemory};
pub use limits::GuestLimits;
pub use runtime::{DEFAULT_HOST_IDLE_MEMORY_BYTES, WasmRuntime};
pub use sandbox::{EntityHost, OrchestrationGuest};
pub use store::HostState;
