//! End-to-end tests: the real `durable` binary, the example apps built to `.wasm`, HTTP
//! over 127.0.0.1.

/// Turns tests written once over an `ExampleSet` into one `#[test]` per language:
/// `rust::NAME`, `python::NAME` and `js::NAME`, each against that language's example apps
/// on a redb store, and `rust_postgres::NAME`, the Rust apps on a PostgreSQL hub.
macro_rules! in_every_language {
    ($($test:ident),* $(,)?) => {
        mod rust {
            $(#[test] fn $test() { super::$test(crate::support::ExampleSet::Rust) })*
        }
        mod rust_postgres {
            $(#[test] fn $test() { super::$test(crate::support::ExampleSet::RustOnPostgres) })*
        }
        in_python_and_javascript!($($test),*);
    };
}

/// Like `in_every_language!`, for what only the componentized languages need proving.
macro_rules! in_python_and_javascript {
    ($($test:ident),* $(,)?) => {
        mod python {
            $(#[test] fn $test() { super::$test(crate::support::ExampleSet::Python) })*
        }
        mod js {
            $(#[test] fn $test() { super::$test(crate::support::ExampleSet::JavaScript) })*
        }
    };
}

mod support;

mod bad_input;
mod bench;
mod check;
mod cli;
mod client_api;
mod crash;
mod deploy;
mod entities;
mod examples;
mod features;
mod hardening;
mod hubs;
mod management;
mod official_clients;
mod polyglot;
mod sandbox;
mod several_hosts;
