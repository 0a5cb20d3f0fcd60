//! The listener: connection limits and timeouts, then for each request the hub it names,
//! the key it carries, and the hub's API or the admin API.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HOST, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::{ApiRequest, PREFIXES, Query, error_response, handle, query_encode, set_header};
use crate::hubs::{Hosting, HubError};

/// The header carrying a function key (the other way is `code=`).
const KEY_HEADER: &str = "x-functions-key";
const CONTINUATION_HEADER: &str = "x-ms-continuation-token";

/// Serves every hub of `hosting` on `listener` until `shutdown` completes, then lets open
/// requests finish (10 s at most).
pub async fn serve(
    listener: TcpListener,
    hosting: Arc<Hosting>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = hosting.http.clone();
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let (stop, _) = tokio::sync::watch::channel(false);
    let open = Arc::new(AtomicUsize::new(0));
    let idle_timeout = Duration::from_millis(limits.idle_timeout_ms.max(1));
    tokio::pin!(shutdown);
    loop {
        // Past the connection cap, new clients wait in the kernel's accept queue.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    eprintln!("warning: accept failed: {error}");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let activity = Arc::new(Activity::starting_now());
        let service = {
            let hosting = hosting.clone();
            let activity = activity.clone();
            let max_body = limits.max_body_bytes;
            hyper::service::service_fn(move |request: Request<Incoming>| {
                let hosting = hosting.clone();
                let activity = activity.clone();
                async move {
                    let _busy = activity.begin();
                    Ok::<_, Infallible>(handle_hyper(&hosting, request, max_body).await)
                }
            })
        };
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_millis(limits.header_timeout_ms.max(1)))
            .serve_connection(TokioIo::new(stream), service);
        let mut stopping = stop.subscribe();
        let open = open.clone();
        open.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let _permit = permit;
            tokio::pin!(connection);
            let mut closing = false;
            loop {
                let idle_check = tokio::time::sleep(idle_timeout / 4);
                tokio::select! {
                    _ = connection.as_mut() => break,
                    _ = stopping.changed(), if !closing => {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    () = idle_check, if !closing => {
                        if activity.idle_for() >= idle_timeout {
                            closing = true;
                            connection.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    let _ = stop.send(true);
    let deadline = Instant::now() + Duration::from_secs(10);
    while open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// When a connection last did something, and whether a request is in flight.
struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds since `EPOCH` of the accept or the last request start or end.
    last: AtomicU64,
}

static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn now_millis() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl Activity {
    fn starting_now() -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            last: AtomicU64::new(now_millis()),
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.last.store(now_millis(), Ordering::SeqCst);
        Busy(self.clone())
    }

    fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(now_millis().saturating_sub(self.last.load(Ordering::SeqCst)))
    }
}

struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.last.store(now_millis(), Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle_hyper(hosting: &Hosting, request: Request<Incoming>, max_body: usize) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let body = match Limited::new(body, max_body).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLarge",
                &format!("request body rejected: {error} (the limit is {max_body} bytes)"),
            );
        }
    };
    let request = ApiRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        host: header(HOST.as_str()),
        continuation_token: header(CONTINUATION_HEADER),
        body,
    };
    handle_hosting(hosting, request, header(KEY_HEADER)).await
}

/// Answers one request to a host: picks the hub (`taskHub=`) and connection
/// (`connection=`), checks the key (`code=` or the `x-functions-key` header, given here as
/// `header_key`), and passes the request to the hub's API or to the admin API.
pub async fn handle_hosting(
    hosting: &Hosting,
    mut request: ApiRequest,
    header_key: Option<String>,
) -> Response<Full<Bytes>> {
    let query = Query::parse(&request.query);
    let key = header_key
        .as_deref()
        .or_else(|| query.get("code").filter(|code| !code.is_empty()))
        .map(str::to_owned);
    let is_api = PREFIXES.iter().any(|prefix| {
        request
            .path
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    });
    if !is_api {
        if let Some(response) = super::admin::handle(hosting, &request, &query, key.as_deref()).await {
            return response;
        }
        return error_response(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("no endpoint at {}", request.path),
        );
    }
    let hub = match hosting.open_hub(query.get("taskHub"), key.as_deref()) {
        Ok(hub) => hub,
        Err(error) => return hub_error_response(&error),
    };
    let (connection, task_hub) = match hub.connection(query.get("connection")) {
        Ok(found) => found,
        Err(error) => return hub_error_response(&error),
    };
    // The management URLs this request gets back name its hub, connection and key.
    let mut extra = Vec::new();
    if query.get("taskHub").is_none() {
        extra.push(format!("taskHub={}", query_encode(hub.name())));
    }
    if query.get("connection").is_none() {
        extra.push(format!("connection={}", query_encode(connection)));
    }
    if query.get("code").is_none()
        && hub.has_keys()
        && let Some(key) = &key
    {
        extra.push(format!("code={}", query_encode(key)));
    }
    if !extra.is_empty() {
        if !request.query.is_empty() {
            request.query.push('&');
        }
        request.query.push_str(&extra.join("&"));
    }
    handle(&task_hub.client(), request).await
}

/// The response for a hub or admin failure.
pub(super) fn hub_error_response(error: &HubError) -> Response<Full<Bytes>> {
    let (status, exception_type) = match error {
        HubError::KeyMissing | HubError::KeyRejected(_) => (StatusCode::UNAUTHORIZED, "UnauthorizedAccessException"),
        HubError::AdminDisabled => (StatusCode::FORBIDDEN, "UnauthorizedAccessException"),
        HubError::HubNotNamed(_) | HubError::InvalidAppName(_) | HubError::NoConfigFile | HubError::Reload(_) => {
            (StatusCode::BAD_REQUEST, "ArgumentException")
        }
        HubError::UnknownHub(_) | HubError::UnknownConnection { .. } | HubError::UnknownApp { .. } => {
            (StatusCode::NOT_FOUND, "ArgumentException")
        }
        HubError::Load(_) | HubError::Config(_) => (StatusCode::BAD_REQUEST, "ArgumentException"),
        HubError::Io { .. } | HubError::Store(_) => {
            eprintln!("error: {error}");
            (StatusCode::INTERNAL_SERVER_ERROR, "Exception")
        }
    };
    let mut response = error_response(status, exception_type, &error.to_string());
    if status == StatusCode::UNAUTHORIZED {
        set_header(&mut response, WWW_AUTHENTICATE, "FunctionKey");
    }
    response
}
