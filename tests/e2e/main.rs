//! End-to-end tests: the real `durable` binary, the example apps built to `.wasm`, HTTP
//! over 127.0.0.1.

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
mod sandbox;
