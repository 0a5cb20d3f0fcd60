//! The listener: connection limits and timeouts, then for each request the hub it names,
//! the key it carries, and the hub's API or the admin API.
//!
//! A request is resolved from its head alone (route, hub, key) before a byte of its body is
//! read, so a refused request costs no body. An accepted one reads its body under the
//! route's size limit, the body deadline and the host-wide budget of body bytes in flight.
//! At the connection cap, the connection that has gone longest without a request being
//! answered is closed to make room, so slow clients cannot keep others out.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::header::{CONNECTION, HOST, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::routes::{ApiRequest, PREFIXES, Query, error_response, handle, query_encode, set_header};
use durable_engine::client::TaskHub;
use durable_engine::hubs::{Hosting, HubError};

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
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, _) = tokio::sync::watch::channel(false);
    let open = Arc::new(AtomicUsize::new(0));
    let idle_timeout = Duration::from_millis(limits.idle_timeout_ms.max(1));
    // hyper's header timer also runs before a connection's first request, so a client that
    // connects and sends nothing is closed after it too.
    let header_timeout = Duration::from_millis(limits.header_timeout_ms.max(1));
    let budget = BodyBudget::new(limits.max_inflight_body_bytes);
    let registry = Arc::new(Registry::default());
    tokio::pin!(shutdown);
    loop {
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
        let permit = match connections.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // At the cap, make room: close the connection that has gone longest without
                // a request being worked on, so slow or silent clients cannot keep others
                // out. If every connection is working, this one waits for a slot (and the
                // next clients in the kernel's accept queue).
                registry.shed_stalest();
                tokio::select! {
                    permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let activity = registry.add();
        let service = {
            let hosting = hosting.clone();
            let activity = activity.clone();
            let budget = budget.clone();
            hyper::service::service_fn(move |request: Request<Incoming>| {
                let hosting = hosting.clone();
                let activity = activity.clone();
                let budget = budget.clone();
                async move { Ok::<_, Infallible>(handle_hyper(&hosting, &budget, &activity, request).await) }
            })
        };
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let mut stopping = stop.subscribe();
        let open = open.clone();
        let registry = registry.clone();
        open.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let _permit = permit;
            tokio::pin!(connection);
            let mut closing = false;
            loop {
                let idle_check = tokio::time::sleep(idle_timeout / 4);
                tokio::select! {
                    _ = connection.as_mut() => break,
                    // Dropping the connection closes its socket and drops a request still
                    // being received with it; nothing of that request has run.
                    () = activity.shed.notified() => break,
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
            registry.remove(&activity);
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

/// The open connections, so that at the cap the stalest one can be closed.
#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    open: std::sync::Mutex<std::collections::BTreeMap<u64, Arc<Activity>>>,
}

impl Registry {
    fn connections(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<u64, Arc<Activity>>> {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new connection, accepted now.
    fn add(&self) -> Arc<Activity> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::starting_now(id));
        self.connections().insert(id, activity.clone());
        activity
    }

    fn remove(&self, activity: &Activity) {
        self.connections().remove(&activity.id);
    }

    /// Closes the connection that has been idle, or receiving its request, the longest;
    /// none if every connection has a request being worked on.
    fn shed_stalest(&self) {
        let connections = self.connections();
        let mut candidates: Vec<&Arc<Activity>> = connections
            .values()
            .filter(|activity| activity.state.load(Ordering::SeqCst) != WORKING)
            .collect();
        candidates.sort_by_key(|activity| activity.last.load(Ordering::SeqCst));
        // The first that is still idle or receiving when asked to close; one that started
        // work meanwhile keeps going.
        if let Some(victim) = candidates.into_iter().find(|activity| activity.shed()) {
            victim.shed.notify_one();
        }
    }
}

/// A connection between requests (or before its first), while headers may be arriving.
const IDLE: u8 = 0;
/// A request's headers are in and its body is being received.
const RECEIVING: u8 = 1;
/// A request is being answered.
const WORKING: u8 = 2;
/// The connection is being closed to make room for another.
const SHED: u8 = 3;

/// What a connection is doing and since when. HTTP/1 answers one request at a time per
/// connection, so one state covers it.
struct Activity {
    id: u64,
    /// `IDLE`, `RECEIVING`, `WORKING` or `SHED`.
    state: AtomicU8,
    /// Milliseconds since `EPOCH` of the accept or the last state change.
    last: AtomicU64,
    /// Woken when the connection is shed.
    shed: Notify,
}

static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn now_millis() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl Activity {
    fn starting_now(id: u64) -> Activity {
        Activity {
            id,
            state: AtomicU8::new(IDLE),
            last: AtomicU64::new(now_millis()),
            shed: Notify::new(),
        }
    }

    /// Moves from `from` to `to`; false if the connection was not in `from` (it was shed).
    fn enter(&self, from: u8, to: u8) -> bool {
        let moved = self
            .state
            .compare_exchange(from, to, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if moved {
            self.last.store(now_millis(), Ordering::SeqCst);
        }
        moved
    }

    /// Marks the connection shed unless a request is being worked on.
    fn shed(&self) -> bool {
        self.enter(IDLE, SHED) || self.enter(RECEIVING, SHED)
    }

    /// A request's headers are in. `None` if the connection is being shed.
    fn begin(self: &Arc<Self>) -> Option<Busy> {
        self.enter(IDLE, RECEIVING).then(|| Busy(self.clone()))
    }

    fn idle_for(&self) -> Duration {
        if self.state.load(Ordering::SeqCst) != IDLE {
            return Duration::ZERO;
        }
        Duration::from_millis(now_millis().saturating_sub(self.last.load(Ordering::SeqCst)))
    }
}

/// A request in flight on its connection; back to idle when dropped.
struct Busy(Arc<Activity>);

impl Busy {
    /// The body is in and the request is about to be worked on; false if the connection
    /// was shed while it arrived.
    fn working(&self) -> bool {
        self.0.enter(RECEIVING, WORKING)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = self.0.enter(RECEIVING, IDLE) || self.0.enter(WORKING, IDLE);
    }
}

/// The bytes of request bodies held at once over every connection
/// (`max_inflight_body_bytes`). A body takes its bytes as they arrive, so a client holds only
/// what it has sent, and gives them back once its response is built. A body that would take
/// the host over the budget is refused with 503 at once rather than kept waiting: memory
/// stays bounded and no request queues behind another client's upload.
#[derive(Clone)]
struct BodyBudget(Arc<Semaphore>);

impl BodyBudget {
    fn new(bytes: usize) -> BodyBudget {
        BodyBudget(Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))))
    }

    /// Takes `bytes` more into `held`; false if the budget has not that many left.
    fn take(&self, held: &mut Option<OwnedSemaphorePermit>, bytes: usize) -> bool {
        // A frame is bounded by hyper's read buffer, far below u32::MAX.
        let Ok(bytes) = u32::try_from(bytes) else {
            return false;
        };
        match self.0.clone().try_acquire_many_owned(bytes) {
            Ok(permit) => {
                match held {
                    Some(held) => held.merge(permit),
                    None => *held = Some(permit),
                }
                true
            }
            Err(_) => false,
        }
    }
}

/// A response refusing a request (boxed: it is large, and the path is the rare one).
type Refusal = Box<Response<Full<Bytes>>>;

/// Where a request goes, decided from its head alone.
enum Target {
    /// The management API of one task hub (key checked).
    Api(Arc<TaskHub>),
    /// The admin API (admin key checked): the path's segments after `/admin`.
    Admin { rest: Vec<String>, query: Query },
}

/// A request resolved from its head: where it goes, and the largest body it may have.
struct Resolved {
    target: Target,
    body_limit: BodyLimit,
}

/// The largest body a request may have, and the setting that says so.
#[derive(Clone, Copy)]
struct BodyLimit {
    bytes: usize,
    setting: &'static str,
}

impl BodyLimit {
    /// 413, before the body is read (`size` from Content-Length) or once it is past the limit.
    fn refuse(self, size: Option<u64>) -> Response<Full<Bytes>> {
        let size = size.map(|size| format!(" of {size} bytes")).unwrap_or_default();
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            &format!(
                "the request body{size} is over the limit of {} bytes ({})",
                self.bytes, self.setting
            ),
        )
    }
}

async fn handle_hyper(
    hosting: &Hosting,
    budget: &BodyBudget,
    activity: &Arc<Activity>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let Some(busy) = activity.begin() else {
        return closing(shed_response());
    };
    let (parts, body) = request.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let mut request = ApiRequest {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        host: header(HOST.as_str()),
        continuation_token: header(CONTINUATION_HEADER),
        body: Bytes::new(),
    };
    // Nothing of the body is read before the hub, the key and the route accept the request.
    let has_body = !body.is_end_stream();
    let resolved = match resolve(hosting, &mut request, header(KEY_HEADER)) {
        Ok(resolved) => resolved,
        Err(response) if has_body => return closing(*response),
        Err(response) => return *response,
    };
    if let Some(size) = body.size_hint().exact()
        && size > resolved.body_limit.bytes as u64
    {
        return closing(resolved.body_limit.refuse(Some(size)));
    }
    // hyper calls the service once the headers are in, so the body deadline starts about now.
    let body_timeout = Duration::from_millis(hosting.http.body_timeout_ms.max(1));
    let (body, _reserved) = match read_body(body, resolved.body_limit, budget, body_timeout).await {
        Ok(read) => read,
        Err(response) => return closing(*response),
    };
    request.body = body;
    if !busy.working() {
        return closing(shed_response());
    }
    // `_reserved` holds the body's share of the budget until the response is built.
    dispatch(hosting, resolved.target, request).await
}

/// The answer on a connection closed to make room for others (the client rarely sees it).
fn shed_response() -> Response<Full<Bytes>> {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "the host is at its connection limit (max_connections) and closed this slow connection",
    )
}

/// Reads a body of at most `limit` bytes within `timeout`, taking its bytes from `budget`
/// as they arrive; the bytes and their share of the budget, or the response refusing it.
async fn read_body(
    mut body: Incoming,
    limit: BodyLimit,
    budget: &BodyBudget,
    timeout: Duration,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), Refusal> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut reserved = None;
    let mut frames: Vec<Bytes> = Vec::new();
    let mut size = 0usize;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(Box::new(error_response(
                    StatusCode::REQUEST_TIMEOUT,
                    "RequestTimeout",
                    &format!(
                        "the request body did not arrive within {} ms of its headers (body_timeout_ms)",
                        timeout.as_millis()
                    ),
                )));
            }
            Ok(None) => break,
            Ok(Some(Err(error))) => {
                return Err(Box::new(error_response(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("the request body could not be read: {error}"),
                )));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        size = size.saturating_add(data.len());
        if size > limit.bytes {
            return Err(Box::new(limit.refuse(None)));
        }
        if !budget.take(&mut reserved, data.len()) {
            let mut response = error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "the host is receiving as many request bodies as it holds at once (max_inflight_body_bytes): try again shortly",
            );
            set_header(&mut response, RETRY_AFTER, "1");
            return Err(Box::new(response));
        }
        frames.push(data);
    }
    let body = match frames.len() {
        0 => Bytes::new(),
        1 => frames.swap_remove(0),
        _ => {
            let mut joined = BytesMut::with_capacity(size);
            for frame in frames {
                joined.extend_from_slice(&frame);
            }
            joined.freeze()
        }
    };
    Ok((body, reserved))
}

/// `response`, telling the client the connection closes: its body was not read (whole).
fn closing(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Answers one request to a host: picks the hub (`taskHub=`) and connection
/// (`connection=`), checks the key (`code=` or the `x-functions-key` header, given here as
/// `header_key`), and passes the request to the hub's API or to the admin API. The body is
/// held to the same limits as over a socket.
pub async fn handle_hosting(
    hosting: &Hosting,
    mut request: ApiRequest,
    header_key: Option<String>,
) -> Response<Full<Bytes>> {
    let resolved = match resolve(hosting, &mut request, header_key) {
        Ok(resolved) => resolved,
        Err(response) => return *response,
    };
    if request.body.len() > resolved.body_limit.bytes {
        return resolved.body_limit.refuse(Some(request.body.len() as u64));
    }
    dispatch(hosting, resolved.target, request).await
}

/// Resolves a request from its head (the body is not looked at): the hub and connection
/// it names and its key, or the admin API and the admin key; adds the hub, connection and
/// key to the query for the management URLs. `Err` is the response refusing it.
fn resolve(hosting: &Hosting, request: &mut ApiRequest, header_key: Option<String>) -> Result<Resolved, Refusal> {
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
    let max_body = BodyLimit {
        bytes: hosting.http.max_body_bytes,
        setting: "max_body_bytes",
    };
    if !is_api {
        let Some(rest) = super::admin::admin_route(&request.path) else {
            return Err(Box::new(error_response(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("no endpoint at {}", request.path),
            )));
        };
        hosting
            .authorize_admin(key.as_deref())
            .map_err(|error| Box::new(hub_error_response(&error)))?;
        return Ok(Resolved {
            target: Target::Admin { rest, query },
            body_limit: max_body,
        });
    }
    let hub = hosting
        .open_hub(query.get("taskHub"), key.as_deref())
        .map_err(|error| Box::new(hub_error_response(&error)))?;
    let (connection, task_hub) = hub
        .connection(query.get("connection"))
        .map_err(|error| Box::new(hub_error_response(&error)))?;
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
    let body_limit = if hub.payload_bytes() < max_body.bytes {
        BodyLimit {
            bytes: hub.payload_bytes(),
            setting: "payload_bytes",
        }
    } else {
        max_body
    };
    Ok(Resolved {
        target: Target::Api(task_hub.clone()),
        body_limit,
    })
}

/// Answers a resolved request, its body read.
async fn dispatch(hosting: &Hosting, target: Target, request: ApiRequest) -> Response<Full<Bytes>> {
    match target {
        Target::Api(task_hub) => handle(&task_hub.client(), request).await,
        Target::Admin { rest, query } => super::admin::handle(hosting, &request, &query, &rest).await,
    }
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
        HubError::Store(_) if error.is_unavailable() => {
            eprintln!("error: {error}");
            (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailableException")
        }
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
