//! One raw HTTP/1.1 exchange with a running host's admin API (`/admin/...`), shared by the
//! subcommands that talk to it (`check --url`, `deploy`, `list-apps`, `remove-app`).
//!
//! The admin API is not part of the Durable Functions client, so these commands speak
//! HTTP themselves: connect (with a timeout), send one request with the key in the
//! `x-functions-key` header, read the whole answer, and turn a refusal's JSON `Message`
//! into the error text.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Method;
use hyper_util::rt::TokioIo;

use super::{EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE};

/// How long connecting to a host may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed command, with its exit code.
pub(super) struct Failure {
    /// The exit code.
    pub code: i32,
    /// What to print after `error: `.
    pub message: String,
}

/// Builds a [`Failure`].
pub(super) fn failure(code: i32, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

/// One request to the admin API.
pub(super) struct AdminRequest<'a> {
    /// `--url`: `http://HOST:PORT`.
    pub url: &'a str,
    /// The method.
    pub method: Method,
    /// The path, already percent-encoded (see [`percent_encode`]).
    pub path: String,
    /// The admin key, sent as `x-functions-key`.
    pub key: Option<&'a str>,
    /// A `.wasm` body, sent as `application/wasm`.
    pub wasm: Option<Vec<u8>>,
    /// How long the host may take to answer once connected.
    pub timeout: Duration,
    /// Appended to the "could not reach" message (what else the user can do).
    pub hint: &'a str,
}

/// Sends `request` and returns the body of a 2xx answer. A refusal (any other status) is a
/// [`Failure`] with exit code 1 naming the method, path, the host's `Message` and the
/// status; a bad `--url` is exit code 2; a host that cannot be reached or does not answer
/// in time is exit code 3.
pub(super) async fn send(request: AdminRequest<'_>) -> Result<Bytes, Failure> {
    let AdminRequest {
        url,
        method,
        path,
        key,
        wasm,
        timeout,
        hint,
    } = request;
    let authority = authority(url)?;
    let unreachable = |error: &dyn std::fmt::Display| {
        failure(
            EXIT_UNREACHABLE,
            format!(
                "could not reach a durable host at {url} ({authority}: {error})\n\
                 Is `durable serve` running there? Point --url at it{hint}."
            ),
        )
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&authority))
        .await
        .map_err(|_| unreachable(&"connection timed out"))?
        .map_err(|error| unreachable(&error))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| unreachable(&error))?;
    tokio::spawn(connection);
    let mut builder = hyper::Request::builder()
        .method(method.clone())
        .uri(&path)
        .header("host", &authority);
    if wasm.is_some() {
        builder = builder.header("content-type", "application/wasm");
    }
    if let Some(key) = key {
        builder = builder.header("x-functions-key", key);
    }
    let request = builder
        .body(Full::new(wasm.map(Bytes::from).unwrap_or_default()))
        .map_err(|error| failure(EXIT_USAGE, format!("building the request: {error}")))?;
    let response = tokio::time::timeout(timeout, sender.send_request(request))
        .await
        .map_err(|_| unreachable(&"no answer in time"))?
        .map_err(|error| unreachable(&error))?;
    let status = response.status();
    let body = tokio::time::timeout(timeout, response.into_body().collect())
        .await
        .map_err(|_| unreachable(&"no answer in time"))?
        .map_err(|error| unreachable(&error))?
        .to_bytes();
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|body| body["Message"].as_str().or(body["message"].as_str()).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(failure(
            EXIT_REFUSED,
            format!("{method} {path}: {message} (HTTP {})", status.as_u16()),
        ));
    }
    Ok(body)
}

/// `HOST:PORT` of an `http://HOST:PORT` URL.
fn authority(url: &str) -> Result<String, Failure> {
    url.trim_end_matches('/')
        .strip_prefix("http://")
        .filter(|authority| !authority.is_empty() && !authority.contains('/'))
        .map(str::to_owned)
        .ok_or_else(|| {
            failure(
                EXIT_USAGE,
                format!("--url: expected a URL like http://127.0.0.1:7071, got {url:?}"),
            )
        })
}

/// Percent-encodes a path segment.
pub(super) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_plain_http_authorities() {
        assert_eq!(authority("http://127.0.0.1:7071/").ok().unwrap(), "127.0.0.1:7071");
        for bad in ["https://example.com", "http://", "http://host/path", "127.0.0.1:7071"] {
            let error = authority(bad).err().unwrap();
            assert_eq!(error.code, EXIT_USAGE, "{bad}");
        }
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(percent_encode("my-app_1.0~x"), "my-app_1.0~x");
        assert_eq!(percent_encode("a/b c"), "a%2Fb%20c");
    }
}
