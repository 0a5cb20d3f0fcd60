//! The one `wit_bindgen::generate!` site: Rust types and export glue for `wit/durable.wit`.
//!
//! Authors never use this module; it is public only because the code that
//! [`export!`](crate::export) expands to, in the author's crate, refers to it.

wit_bindgen::generate!({
    world: "app",
    path: "../wit",
    pub_export_macro: true,
    export_macro_name: "__export_app",
    default_bindings_module: "durable_sdk::bindings",
    additional_derives: [PartialEq],
});

pub use durable::functions::types;
pub use exports::durable::functions::{activity, entity, orchestrator, registry};
