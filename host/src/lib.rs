//! The durable host: runs Durable Functions compiled to WebAssembly components.
//!
//! Module map (dependencies point one way, left to right):
//! `http -> client -> dispatch -> runtime -> { wasm, replay, store } -> history`.

pub mod history;
pub mod replay;
pub mod store;
pub mod wasm;
