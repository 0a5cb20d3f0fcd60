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
    Host::start_with_config(&config, &[]).unwrap().owning(dir)
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
    let store = temp_dir("hash-order").file("store.redb");
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
    let store = temp_dir("idle-orchestrations").file("store.redb");
    let host = Host::start(&store, &[crate::support::guest_app("hostile")]).unwrap();
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

// ---------------------------------------------------------------------------------------
// Request bodies: read only once the request is accepted, and under limits (issue 17).

const KEY: &str = "main-key-0123456789abcdef";
const ADMIN_KEY: &str = "admin-key-0123456789abcdef";

/// A host with one keyed hub `main` (hello_sequence and counter) and an admin key; `http`
/// goes into its `[http]` section and `limits` into `[hubs.main.limits]`.
fn keyed_host(label: &str, http: &str, limits: &str) -> Host {
    let dir = temp_dir(label);
    let config = dir.join("durable.toml");
    let text = format!(
        r#"
admin_keys = ["{ADMIN_KEY}"]
[http]
{http}
[hubs.main]
keys = ["{KEY}"]
store = "main.redb"
[hubs.main.limits]
{limits}
[hubs.main.apps.hello]
path = {hello:?}
[hubs.main.apps.counter]
path = {counter:?}
"#,
        hello = example("hello_sequence"),
        counter = example("counter"),
    );
    std::fs::write(&config, text).unwrap();
    Host::start_with_config(&config, &[]).unwrap().owning(dir)
}

fn connect(host: &Host) -> TcpStream {
    TcpStream::connect(host.base.strip_prefix("http://").unwrap()).unwrap()
}

/// Sends a request head (no body) of `method path` with `headers`.
fn send_head(stream: &mut TcpStream, method: &str, path: &str, headers: &[&str]) {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
}

/// The status code of a raw response.
fn status_of(response: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(response);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"))
}

/// A JSON string body of exactly `bytes` bytes.
fn json_string_of(bytes: usize) -> String {
    format!("\"{}\"", "x".repeat(bytes - 2))
}

#[test]
fn a_keyless_post_announcing_a_huge_body_gets_401_without_sending_it() {
    let host = keyed_host("hardening-keyless", "", "");
    let sixty_mib = format!("Content-Length: {}", 60 << 20);
    for (label, query) in [
        ("no key", String::new()),
        ("a wrong key", "?code=wrong-key-0123456789abcdef".to_owned()),
        ("an unknown hub", format!("?taskHub=nohub&code={KEY}")),
    ] {
        let mut stream = connect(&host);
        let path = format!("{PREFIX}/orchestrators/E1_HelloSequence{query}");
        send_head(
            &mut stream,
            "POST",
            &path,
            &["Content-Type: application/json", &sixty_mib],
        );
        let started = Instant::now();
        let answer = read_until_closed(stream);
        assert_eq!(status_of(&answer), 401, "{label}: {}", String::from_utf8_lossy(&answer));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{label}: answered only after {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_body_over_the_hub_payload_limit_gets_413_before_it_is_read_whole() {
    let host = keyed_host("hardening-413", "", "payload_bytes = 1000");
    let start = format!("{PREFIX}/orchestrators/E1_HelloSequence?code={KEY}");
    // Announced too big: refused from the Content-Length, without sending a byte.
    let mut stream = connect(&host);
    send_head(&mut stream, "POST", &start, &["Content-Length: 5000"]);
    let answer = read_until_closed(stream);
    let text = String::from_utf8_lossy(&answer);
    assert_eq!(status_of(&answer), 413, "{text}");
    assert!(text.contains("1000") && text.contains("payload_bytes"), "{text}");
    // Chunked: refused as soon as the stream passes the limit; the rest is never sent.
    let mut stream = connect(&host);
    send_head(&mut stream, "POST", &start, &["Transfer-Encoding: chunked"]);
    let chunk = format!("258\r\n{}\r\n", "1".repeat(600));
    stream.write_all(chunk.as_bytes()).unwrap();
    stream.write_all(chunk.as_bytes()).unwrap();
    let answer = read_until_closed(stream);
    assert_eq!(status_of(&answer), 413, "{}", String::from_utf8_lossy(&answer));
    // At the limit it starts.
    let response = http(&host.base, "POST", &start, Some(&json_string_of(1000)), &[]).unwrap();
    assert_eq!(response.status, 202, "{}", response.text);
    // Deploys keep max_body_bytes: a 2000-byte upload is read and refused as no component.
    let junk = "x".repeat(2000);
    let response = http(
        &host.base,
        "PUT",
        "/admin/hubs/main/apps/junk",
        Some(&junk),
        &[("x-functions-key", ADMIN_KEY)],
    )
    .unwrap();
    assert_eq!(response.status, 400, "{}", response.text);
}

/// Polls `streams` until one of them answers; its index and the answer.
fn first_answer(streams: &mut [TcpStream], within: Duration) -> (usize, Vec<u8>) {
    let deadline = Instant::now() + within;
    let mut buffer = [0u8; 4096];
    loop {
        for (index, stream) in streams.iter_mut().enumerate() {
            stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            match stream.read(&mut buffer) {
                Ok(0) => panic!("connection {index} closed without an answer"),
                Ok(read) => return (index, buffer[..read].to_vec()),
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(error) => panic!("connection {index}: {error}"),
            }
        }
        assert!(
            Instant::now() < deadline,
            "no connection was answered within {within:?}"
        );
    }
}

#[test]
fn request_bodies_over_the_host_wide_in_flight_budget_get_503() {
    let host = keyed_host(
        "hardening-budget",
        "max_inflight_body_bytes = 1500",
        "payload_bytes = 1000",
    );
    let start = format!("{PREFIX}/orchestrators/E1_HelloSequence?code={KEY}");
    let body = json_string_of(1000);
    // Two bodies of 1000 bytes, 900 of each sent: both cannot be held at once.
    let mut streams: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = connect(&host);
            send_head(
                &mut stream,
                "POST",
                &start,
                &["Content-Length: 1000", "Connection: close"],
            );
            stream.write_all(&body.as_bytes()[..900]).unwrap();
            stream
        })
        .collect();
    let (refused, mut answer) = first_answer(&mut streams, Duration::from_secs(10));
    answer.extend(read_until_closed(streams[refused].try_clone().unwrap()));
    let text = String::from_utf8_lossy(&answer);
    assert_eq!(status_of(&answer), 503, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1") && text.contains("max_inflight_body_bytes"),
        "{text}"
    );
    // The other one still completes, and the budget comes back once it is answered.
    let mut other = streams.swap_remove(1 - refused);
    other.write_all(&body.as_bytes()[900..]).unwrap();
    let answer = read_until_closed(other);
    assert_eq!(status_of(&answer), 202, "{}", String::from_utf8_lossy(&answer));
    let response = http(&host.base, "POST", &start, Some(&body), &[]).unwrap();
    assert_eq!(response.status, 202, "{}", response.text);
}

// ---------------------------------------------------------------------------------------
// Slow clients (issue 17): bodies have a deadline, silent connections close, and no slow
// client keeps another one waiting.

/// Sends one byte of `stream` a `pace`, `count` times at most, stopping when the server
/// closes; in its own thread.
fn trickle(mut stream: TcpStream, pace: Duration, count: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for _ in 0..count {
            if stream.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(pace);
        }
    })
}

#[test]
fn a_body_slower_than_body_timeout_gets_408_and_its_connection_closes() {
    let host = keyed_host("hardening-408", "body_timeout_ms = 500", "");
    let mut stream = connect(&host);
    send_head(
        &mut stream,
        "POST",
        &format!("{PREFIX}/orchestrators/E1_HelloSequence?code={KEY}"),
        &["Content-Length: 100"],
    );
    let started = Instant::now();
    let writer = trickle(stream.try_clone().unwrap(), Duration::from_millis(100), 99);
    let answer = read_until_closed(stream);
    let elapsed = started.elapsed();
    assert_eq!(status_of(&answer), 408, "{}", String::from_utf8_lossy(&answer));
    assert!(
        elapsed >= Duration::from_millis(400) && elapsed < Duration::from_secs(5),
        "answered after {elapsed:?}"
    );
    writer.join().unwrap();
}

#[test]
fn a_connection_that_sends_no_request_is_closed_after_header_timeout() {
    let host = keyed_host(
        "hardening-silent",
        "header_timeout_ms = 300\nidle_timeout_ms = 60000",
        "",
    );
    let started = Instant::now();
    let answer = read_until_closed(connect(&host));
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "closed only after {:?} (idle_timeout is 60 s)",
        started.elapsed()
    );
}

#[test]
fn slow_clients_at_the_connection_cap_do_not_delay_another_clients_request() {
    let host = keyed_host("hardening-cap", "max_connections = 8", "");
    // Twice as many clients as the cap, each trickling a body at 1 byte/s.
    let writers: Vec<_> = (0..16)
        .map(|_| {
            let mut stream = connect(&host);
            send_head(
                &mut stream,
                "POST",
                &format!("{PREFIX}/orchestrators/E1_HelloSequence?code={KEY}"),
                &["Content-Length: 100"],
            );
            trickle(stream, Duration::from_secs(1), 5)
        })
        .collect();
    for _ in 0..3 {
        let started = Instant::now();
        let response = http(
            &host.base,
            "GET",
            &format!("{PREFIX}/instances/nobody?code={KEY}"),
            None,
            &[],
        )
        .unwrap();
        assert_eq!(response.status, 404, "{}", response.text);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the status GET waited {:?}",
            started.elapsed()
        );
    }
    for writer in writers {
        writer.join().unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// JSON nesting (issue 17): at most 128 levels in, and nothing deeper out of a guest.

/// `[[...[1]...]]`, `levels` deep.
fn nested(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

/// Asserts a 400 whose message names the limit.
fn assert_too_deep(response: &crate::support::Response, what: &str) {
    assert_eq!(response.status, 400, "{what}: {}", response.text);
    let message = response.json()["Message"].as_str().unwrap_or_default().to_owned();
    assert!(message.contains("nested deeper than 128 levels"), "{what}: {message}");
}

#[test]
fn json_nested_deeper_than_128_levels_is_refused_at_every_api_input() {
    let host = Host::with_examples("hardening-deep-input");
    let waiting = host.start_orchestration("E4_Approval", None, Some("600"));
    host.wait_for(&waiting, Duration::from_secs(60), |status| {
        status["runtimeStatus"] == "Running"
    });
    let too_deep = nested(129);
    let far_too_deep = nested(100_000);
    let reason = too_deep.replace('[', "%5B").replace(']', "%5D");
    for (what, method, path, body) in [
        (
            "start",
            "POST",
            format!("{PREFIX}/orchestrators/E1_HelloSequence"),
            Some(&too_deep),
        ),
        (
            "a 100k-deep start",
            "POST",
            format!("{PREFIX}/orchestrators/E1_HelloSequence"),
            Some(&far_too_deep),
        ),
        (
            "raise event",
            "POST",
            format!("{PREFIX}/instances/{waiting}/raiseEvent/Approval"),
            Some(&too_deep),
        ),
        (
            "signal entity",
            "POST",
            format!("{PREFIX}/entities/Counter/c1?op=add"),
            Some(&too_deep),
        ),
        (
            "terminate reason",
            "POST",
            format!("{PREFIX}/instances/{waiting}/terminate?reason={reason}"),
            None,
        ),
        (
            "suspend reason",
            "POST",
            format!("{PREFIX}/instances/{waiting}/suspend?reason={reason}"),
            None,
        ),
        (
            "rewind reason",
            "POST",
            format!("{PREFIX}/instances/{waiting}/rewind?reason={reason}"),
            None,
        ),
    ] {
        assert_too_deep(&host.request(method, &path, body.map(String::as_str)), what);
    }
    // None of it reached the waiting instance.
    assert_eq!(host.status(&waiting).json()["runtimeStatus"], "Running");
    // 128 levels are accepted and shown as JSON, not as a string.
    let at_limit = nested(128);
    let id = host.start_orchestration("E1_HelloSequence", None, Some(&at_limit));
    let status = host.status(&id).json();
    assert_eq!(status["input"].to_string(), at_limit, "{status}");
}

#[test]
fn a_guest_returning_json_nested_too_deep_fails_with_the_reason() {
    let store = temp_dir("hardening-deep-output").file("store.redb");
    let host = Host::start(&store, &[crate::support::guest_app("hostile")]).unwrap();
    let reason = "nested deeper than 128 levels";
    // An orchestration output past the limit fails its instance, naming the limit.
    let id = host.start_orchestration("DeepOutput", None, Some("129"));
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Failed", "{status}");
    assert!(status["output"].to_string().contains(reason), "{status}");
    // At the limit it completes, its output shown as JSON.
    let id = host.start_orchestration("DeepOutput", None, Some("128"));
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"].to_string(), nested(128));
    // An activity result past the limit fails the task with the reason.
    let id = host.start_orchestration("CallActivity", None, Some(r#"{"name": "DeepResult", "input": 129}"#));
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert!(
        status["output"]["error"]
            .as_str()
            .is_some_and(|error| error.contains(reason)),
        "{status}"
    );
}
