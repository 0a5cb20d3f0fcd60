//! The durable host: runs Durable Functions compiled to WebAssembly components.
//!
//! Module map (dependencies point one way, left to right):
//! `http -> client -> dispatch -> runtime -> { wasm, replay, store } -> history`.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use durable_host::client::{HostConfig, TaskHub};
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

pub mod bench;
pub mod check;
pub mod client;
pub mod config;
pub mod dispatch;
#[doc(hidden)]
pub mod fuzzing;
pub mod history;
pub mod http;
pub mod hubs;
pub mod json_depth;
pub mod replay;
pub mod runtime;
pub mod store;
pub mod wasm;
