//! HTTP hardening: body size limit, header and idle timeouts, as a config file sets them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{Host, PREFIX, example, http, temp_dir};

fn host_with_http_limits(label: &str) -> Host {
    let dir = temp_dir(label);
    let config = dir.join("durable.toml");
    let text = format!(
        r#"
[http]
max_body_bytes = 1000
header_timeout_ms = 300
idle_timeout_ms = 300
max_connections = 8

[hubs.main]
store = "main.redb"
[hubs.main.apps.hello]
path = {hello:?}
"#,
        hello = example("hello_sequence"),
    );
    std::fs::write(&config, text).unwrap();
    Host::start_with_config(&config, &[]).unwrap()
}

/// Reads until the server closes the connection; panics if it stays open for 30 s.
fn read_until_closed(mut stream: TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return received,
            Ok(read) => received.extend_from_slice(&buffer[..read]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => return received,
            Err(error) => panic!(
                "the server kept the connection open for {:?}: {error}",
                started.elapsed()
            ),
        }
    }
}

#[test]
fn a_body_over_the_limit_is_refused_with_413() {
    let host = host_with_http_limits("hardening-body");
    let body = format!("\"{}\"", "x".repeat(2000));
    let response = http(
        &host.base,
        "POST",
        &format!("{PREFIX}/orchestrators/E1_HelloSequence"),
        Some(&body),
        &[],
    )
    .unwrap();
    assert_eq!(response.status, 413, "{}", response.text);
    assert!(
        response.json()["Message"].as_str().unwrap().contains("1000"),
        "{}",
        response.text
    );
    // Under the limit it starts.
    let response = http(
        &host.base,
        "POST",
        &format!("{PREFIX}/orchestrators/E1_HelloSequence"),
        None,
        &[],
    )
    .unwrap();
    assert_eq!(response.status, 202, "{}", response.text);
}

#[test]
fn slow_headers_and_idle_connections_are_closed() {
    let host = host_with_http_limits("hardening-timeouts");
    let authority = host.base.strip_prefix("http://").unwrap().to_owned();
    // A client that starts a request and never finishes its headers.
    let mut slow = TcpStream::connect(&authority).unwrap();
    slow.write_all(b"GET /runtime/webhooks/durabletask/instances HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    read_until_closed(slow);
    // A keep-alive connection that answered one request and then sits idle.
    let mut idle = TcpStream::connect(&authority).unwrap();
    idle.write_all(b"GET /runtime/webhooks/durabletask/instances HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let answered = read_until_closed(idle);
    assert!(
        String::from_utf8_lossy(&answered).starts_with("HTTP/1.1 200"),
        "the request was answered before the connection closed"
    );
    // The host still serves.
    let response = http(&host.base, "GET", &format!("{PREFIX}/instances"), None, &[]).unwrap();
    assert_eq!(response.status, 200);
}

/// Iterating a std `HashMap` in an orchestrator replays exactly after a SIGKILL, although
/// other instances ran before it in another order in each host process. std draws its hash
/// keys once per wasm instance and counts them up per map, so this holds only because every
/// execution gets a wasm instance of its own, seeded from its instance and execution ids.
#[test]
fn hash_map_iteration_replays_identically_whatever_ran_before() {
    let store = temp_dir("hash-order").join("store.redb");
    let apps = [crate::support::test_guest()];
    let host = Host::start(&store, &apps).unwrap();
    let first_status = |host: &Host, id: &str| -> serde_json::Value {
        host.wait_for(id, Duration::from_secs(30), |status| !status["customStatus"].is_null())["customStatus"].clone()
    };
    for other in ["before-a", "before-b", "before-c"] {
        host.start_orchestration("HashOrder", Some(other), None);
        first_status(&host, other);
    }
    let id = host.start_orchestration("HashOrder", Some("probe"), None);
    let observed = first_status(&host, &id);
    host.kill();

    // Other instances start first, in another order and number; then the probe replays.
    let host = Host::start(&store, &apps).unwrap();
    for other in ["after-z", "after-y"] {
        host.start_orchestration("HashOrder", Some(other), None);
        first_status(&host, other);
    }
    for other in ["before-c", "before-a"] {
        host.raise_event(other, "go", "null");
        host.wait_for_finish(other);
    }
    host.raise_event(&id, "go", "null");
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(
        status["output"]["first"], observed,
        "the replayed episode iterated in the recorded order"
    );

    // The same orchestration code in another instance or execution draws other keys.
    let other = host.status("after-z").json();
    assert_ne!(other["customStatus"], observed, "{other}");
}

/// Sixteen activities that each touch 64 MiB leave nothing behind: an instance whose memory
/// grew past `idle_instance_bytes` is not pooled, so its memory goes back to the system.
#[test]
fn activities_that_grew_large_are_not_kept_idle() {
    let dir = temp_dir("idle-activities");
    let config = dir.join("durable.toml");
    let text = format!(
        r#"
[hubs.main]
store = "main.redb"
[hubs.main.limits]
activity_concurrency = 16
[hubs.main.apps.hostile]
path = {hostile:?}
"#,
        hostile = crate::support::guest_app("hostile"),
    );
    std::fs::write(&config, text).unwrap();
    let host = Host::start_with_config(&config, &[]).unwrap();
    // One small run first, so the baseline includes a compiled, instantiated app.
    let warm = host.start_orchestration("TouchMany", None, Some(r#"{"count": 1, "mib": 1}"#));
    assert_eq!(host.wait_for_finish(&warm)["runtimeStatus"], "Completed");
    let before = host.resident_bytes();

    let id = host.start_orchestration("TouchMany", None, Some(r#"{"count": 16, "mib": 64}"#));
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    let after = wait_for_resident_below(&host, before + (256 << 20));
    assert!(
        after < before + (256 << 20),
        "resident memory {} MiB after the burst, {} MiB before",
        after >> 20,
        before >> 20
    );
}

/// Live orchestrations whose instances grew past `idle_instance_bytes` are evicted between
/// steps (their memory freed) and replay into a fresh instance on their next event.
#[test]
fn live_orchestrations_that_grew_large_are_evicted_and_replay_later() {
    let host = Host::start(
        &temp_dir("idle-orchestrations").join("store.redb"),
        &[crate::support::guest_app("hostile")],
    )
    .unwrap();
    let warm = host.start_orchestration("TouchMany", None, Some(r#"{"count": 1, "mib": 1}"#));
    assert_eq!(host.wait_for_finish(&warm)["runtimeStatus"], "Completed");
    let before = host.resident_bytes();

    let ids: Vec<String> = (0..16)
        .map(|_| host.start_orchestration("GrowThenWait", None, Some("64")))
        .collect();
    // Running means the first episode (the touch, then the wait) has committed.
    for id in &ids {
        host.wait_for(id, Duration::from_secs(60), |status| {
            status["runtimeStatus"] == "Running"
        });
    }
    let after = wait_for_resident_below(&host, before + (256 << 20));
    assert!(
        after < before + (256 << 20),
        "resident memory {} MiB with 16 waiting orchestrations, {} MiB before",
        after >> 20,
        before >> 20
    );
    for id in &ids {
        host.raise_event(id, "go", "null");
    }
    for id in &ids {
        let status = host.wait_for_finish(id);
        assert_eq!(status["runtimeStatus"], "Completed", "{status}");
        assert_eq!(status["output"], 64 * 256, "{status}");
    }
}

/// Polls the host's resident memory until it is below `limit` (at most 10 s); returns the
/// last reading.
fn wait_for_resident_below(host: &Host, limit: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let resident = host.resident_bytes();
        if resident < limit || Instant::now() >= deadline {
            return resident;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
