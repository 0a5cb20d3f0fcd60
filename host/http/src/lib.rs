//! The Durable Functions management API (reference/http-api-reference.txt) and the admin
//! API of the durable host, over hyper.
//!
//! [`handle`] answers a request for one hub without a socket, so routes are testable
//! directly; [`serve`] runs a whole host (hub selection from the request head, keys,
//! listener limits, the admin API) on a listener.

mod admin;
#[doc(hidden)]
pub mod fuzzing;
mod routes;
mod server;

pub use routes::*;
