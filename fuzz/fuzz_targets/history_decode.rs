//! Stored bytes decoded as history events, inbox messages and records (one per line), then
//! folded and run through the replay rules: no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| durable_core::fuzzing::history_decode(data));
