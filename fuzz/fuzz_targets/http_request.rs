//! Management API requests (see `durable_http::fuzzing::parse_request` for the input format)
//! answered by a real embedded task hub: no panic, a valid status, a JSON or empty body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| durable_http::fuzzing::http_request(data));
