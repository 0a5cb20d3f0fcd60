//! The body of the `http_request` fuzz target in `fuzz/` (`scripts/fuzz.sh` runs it under
//! libFuzzer). It lives here, not in `fuzz/`, so the ordinary test suite runs every seed of
//! `fuzz/corpus/http_request` through it on a stable toolchain and it cannot rot.
//!
//! The input is a small HTTP-like text (see [`parse_request`]) answered by
//! [`crate::handle`] on a real embedded task hub; every response must have a valid status
//! and a JSON (or empty) body. (The `history_decode` target needs only the pure core: its
//! body is `durable_core::fuzzing`.)

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::Value;

use durable_engine::client::{DurableOrchestrationClient, HostConfig, TaskHub};

use crate::routes::{self as http, ApiRequest, PREFIXES};

/// Environment variable: `.wasm` apps (a path list, `:`-separated) the `http_request` hub
/// loads. Unset, the hub has no apps.
pub const APPS_VARIABLE: &str = "DURABLE_FUZZ_APPS";

/// Answers `data`, read by [`parse_request`], with the API on a task hub started once per
/// process, and checks the response.
pub fn http_request(data: &[u8]) {
    let harness = harness();
    let request = parse_request(data);
    let (parts, body) = harness.runtime.block_on(async {
        let (parts, body) = http::handle(&harness.client, request).await.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        (parts, body)
    });
    let status = parts.status.as_u16();
    assert!((100..=599).contains(&status), "invalid HTTP status {status}");
    if !body.is_empty()
        && let Err(error) = serde_json::from_slice::<Value>(&body)
    {
        panic!(
            "status {status}: the body is not JSON ({error}): {:?}",
            String::from_utf8_lossy(&body)
        );
    }
}

/// Reads a fuzz input as a request, in a small HTTP/1-like text format:
///
/// ```text
/// METHOD TARGET
/// host: example.com
/// x-ms-continuation-token: TOKEN
///
/// BODY
/// ```
///
/// `TARGET` is `path?query`; a leading `$0` or `$1` stands for `http::PREFIXES[0]` or `[1]`.
/// A first line without a valid method is a GET of that line. Other headers are ignored;
/// everything after the first empty line is the body, byte for byte.
pub fn parse_request(data: &[u8]) -> ApiRequest {
    let mut rest = data;
    let mut next_line = || {
        let line = match rest.iter().position(|&byte| byte == b'\n') {
            Some(end) => {
                let line = &rest[..end];
                rest = &rest[end + 1..];
                line
            }
            None => std::mem::take(&mut rest),
        };
        line.strip_suffix(b"\r").unwrap_or(line)
    };
    let first = next_line();
    let (method, target) = match first.iter().position(|&byte| byte == b' ') {
        Some(space) => match Method::from_bytes(&first[..space]) {
            Ok(method) => (method, &first[space + 1..]),
            Err(_) => (Method::GET, first),
        },
        None => (Method::GET, first),
    };
    let target = String::from_utf8_lossy(target);
    let target = match target.as_bytes() {
        [b'$', digit @ (b'0' | b'1'), ..] => format!("{}{}", PREFIXES[usize::from(digit - b'0')], &target[2..]),
        _ => target.into_owned(),
    };
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), query.to_owned()),
        None => (target, String::new()),
    };
    let mut host = None;
    let mut continuation_token = None;
    loop {
        let line = next_line();
        if line.is_empty() {
            break;
        }
        let line = String::from_utf8_lossy(line);
        if let Some((name, value)) = line.split_once(':') {
            let value = Some(value.trim().to_owned());
            if name.trim().eq_ignore_ascii_case("host") {
                host = value;
            } else if name.trim().eq_ignore_ascii_case("x-ms-continuation-token") {
                continuation_token = value;
            }
        }
    }
    ApiRequest {
        method,
        path,
        query,
        host,
        continuation_token,
        body: Bytes::copy_from_slice(rest),
    }
}

/// One task hub and runtime per process, so inputs run fast and share the store.
struct Harness {
    runtime: tokio::runtime::Runtime,
    client: DurableOrchestrationClient,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let directory = std::env::temp_dir().join(format!(
            "durable-fuzz-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&directory).expect("a temporary directory for the fuzz store");
        let apps: Vec<PathBuf> = std::env::var_os(APPS_VARIABLE)
            .map(|paths| std::env::split_paths(&paths).collect())
            .unwrap_or_default();
        let config = HostConfig {
            store_path: directory.join("store.redb"),
            apps,
            component_cache: None,
            dispatch: Default::default(),
        };
        let (hub, errors) = runtime
            .block_on(TaskHub::start(config))
            .expect("the fuzz task hub starts");
        for error in errors {
            eprintln!("warning: {APPS_VARIABLE}: {error}");
        }
        let client = Arc::new(hub).client();
        Harness { runtime, client }
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let directory = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(target);
        let mut seeds: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&directory)
            .unwrap_or_else(|error| panic!("{}: {error}", directory.display()))
            .map(|entry| {
                let path = entry.expect("a directory entry").path();
                let data = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
                (path, data)
            })
            .collect();
        seeds.sort();
        assert!(!seeds.is_empty(), "no seeds in {}", directory.display());
        seeds
    }

    #[test]
    fn http_request_runs_every_seed() {
        for (path, data) in seeds("http_request") {
            eprintln!("{}", path.display());
            http_request(&data);
        }
    }

    #[test]
    fn requests_parse_from_the_text_format() {
        let request = parse_request(b"POST $1/instances/abc/raiseEvent/go?x=1\r\nHost: h:1\n\n{\"a\":\n1}");
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.path, format!("{}/instances/abc/raiseEvent/go", PREFIXES[1]));
        assert_eq!(request.query, "x=1");
        assert_eq!(request.host.as_deref(), Some("h:1"));
        assert_eq!(request.continuation_token, None);
        assert_eq!(&request.body[..], b"{\"a\":\n1}");
        let request = parse_request(b"/nowhere");
        assert_eq!((request.method, request.path.as_str()), (Method::GET, "/nowhere"));
    }
}
