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
