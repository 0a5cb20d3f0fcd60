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
    let store = temp_dir("hardening-deep-output").join("store.redb");
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
