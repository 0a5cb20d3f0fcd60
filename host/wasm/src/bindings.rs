//! The one `bindgen!` site: the host side of the `app` world in `wit/`. Everything else
//! in the crate reaches the guest through the types generated here.

wasmtime::component::bindgen!({
    world: "app",
    path: "../../wit",
    exports: { default: async },
});

/// The WIT world every app must export.
pub const WORLD: &str = "durable:functions/app@0.2.0";
