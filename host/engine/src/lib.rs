//! The durable host's engine: everything between the HTTP layer and the store and wasm.
//!
//! - [`runtime`]: one step of one orchestration (cache hit, or replay on a miss), one
//!   entity batch, one activity call; the live-instance cache.
//! - [`dispatch`]: the loops (committer, orchestration and entity workers, activity
//!   workers, timer service), woken by notifications only.
//! - [`client`]: `DurableOrchestrationClient`, every method of the Durable Functions
//!   client, over an embedded task hub or a remote host.
//! - [`config`]: the `--config` TOML.
//! - [`hubs`]: tenants: hubs, keys, apps and their versions.
//! - [`check`]: `durable check`, replaying unfinished instances against a candidate app.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use durable_engine::client::{HostConfig, TaskHub};
//! let config = HostConfig {
//!     store_path: "store.redb".into(),
//!     apps: vec!["hello_sequence.wasm".into()],
//!     component_cache: None,
//!     dispatch: Default::default(),
//! };
//! let (hub, _load_errors) = TaskHub::start(config).await?;
//! let client = Arc::new(hub).client();
//! let id = client.start_new("E1_HelloSequence", None, None).await?;
//! # let _ = id; Ok(()) }
//! ```

pub mod check;
pub mod client;
pub mod config;
pub mod dispatch;
pub mod hubs;
pub mod runtime;
mod shared_apps;
