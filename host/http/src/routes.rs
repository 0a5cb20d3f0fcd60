//! The Durable Functions management API (reference/http-api-reference.txt) over hyper,
//! mapped onto [`DurableOrchestrationClient`]. Nothing else lives here.
//!
//! [`handle`] takes a request for one hub and returns a response without a socket, so
//! routes are testable directly; `server::serve` runs a whole host (hub selection, keys,
//! the admin API) on a listener.

pub use crate::server::{handle_hosting, serve};

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER};
use hyper::{Method, Response, StatusCode};
use serde_json::{Value, json};

use durable_core::history::{EntityId, RuntimeStatus, Timestamp};
use durable_engine::client::{ClientError, DurableOrchestrationClient, EntityQuery, InstanceQuery, PurgeFilter};

/// The path prefixes the API answers under (Functions 2.x and 1.x).
pub const PREFIXES: [&str; 2] = [
    "/runtime/webhooks/durabletask",
    "/admin/extensions/DurableTaskExtension",
];
/// The header carrying list continuation tokens, both ways.
const CONTINUATION_HEADER: &str = "x-ms-continuation-token";
/// Instances per page when a list request names no `top` (Durable Functions' default).
const DEFAULT_PAGE_SIZE: usize = 100;
/// Seconds a client should wait between status polls.
const RETRY_AFTER_SECONDS: &str = "10";

/// A parsed request, independent of hyper's body type.
pub struct ApiRequest {
    /// The method.
    pub method: Method,
    /// The raw path (percent-encoded).
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The Host header, for the URLs the API returns.
    pub host: Option<String>,
    /// The `x-ms-continuation-token` request header.
    pub continuation_token: Option<String>,
    /// The body.
    pub body: Bytes,
}

/// The address a listener is bound to, as the `http://HOST:PORT` the API prints.
pub fn base_url(address: SocketAddr) -> String {
    format!("http://{address}")
}

/// Answers one API request.
pub async fn handle(client: &DurableOrchestrationClient, request: ApiRequest) -> Response<Full<Bytes>> {
    let Some((prefix, rest)) = PREFIXES.iter().find_map(|prefix| {
        let head = request.path.get(..prefix.len())?;
        head.eq_ignore_ascii_case(prefix)
            .then(|| (prefix, &request.path[prefix.len()..]))
    }) else {
        return error_response(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("no endpoint at {}", request.path),
        );
    };
    let segments: Vec<String> = rest
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let query = Query::parse(&request.query);
    let base = format!("http://{}{prefix}", request.host.as_deref().unwrap_or("localhost"));
    let url_query = management_query(&query);
    let client = client.with_urls(base, url_query);
    let context = Context {
        client: &client,
        query,
        body: &request.body,
        continuation_token: request.continuation_token.as_deref(),
    };
    let method = &request.method;
    let result = match segments.as_slice() {
        [orchestrators, name, id @ ..] if orchestrators.eq_ignore_ascii_case("orchestrators") => {
            if method != Method::POST {
                return method_not_allowed(method);
            }
            let instance_id = if id.is_empty() { None } else { Some(id.join("/")) };
            context.start(name, instance_id).await
        }
        [entities, rest @ ..] if entities.eq_ignore_ascii_case("entities") => match (method.clone(), rest) {
            (Method::GET, []) => context.list_entities(None).await,
            (Method::GET, [name]) => context.list_entities(Some(name)).await,
            (Method::GET, [name, key @ ..]) => context.read_entity(name, &key.join("/")).await,
            (Method::POST, [name, key @ ..]) if !key.is_empty() => context.signal_entity(name, &key.join("/")).await,
            (Method::POST, _) => Err(ApiError::BadRequest(
                "signal an entity at entities/{entityName}/{entityKey}".into(),
            )),
            _ => return method_not_allowed(method),
        },
        [instances] if instances.eq_ignore_ascii_case("instances") => match *method {
            Method::GET => context.list().await,
            Method::DELETE => context.purge_by().await,
            _ => return method_not_allowed(method),
        },
        [instances, id] if instances.eq_ignore_ascii_case("instances") => match *method {
            Method::GET => context.status(id).await,
            Method::DELETE => context.purge(id).await,
            _ => return method_not_allowed(method),
        },
        [instances, id, operation, rest @ ..] if instances.eq_ignore_ascii_case("instances") => {
            if method != Method::POST {
                return method_not_allowed(method);
            }
            let operation = operation.to_ascii_lowercase();
            match (operation.as_str(), rest) {
                ("raiseevent", [event_name]) => context.raise_event(id, event_name).await,
                ("terminate", []) => context.signal(id, Signal::Terminate).await,
                ("suspend", []) => context.signal(id, Signal::Suspend).await,
                ("resume", []) => context.signal(id, Signal::Resume).await,
                ("rewind", []) => context.signal(id, Signal::Rewind).await,
                ("restart", []) => context.restart(id).await,
                _ => Err(ApiError::NoRoute),
            }
        }
        _ => Err(ApiError::NoRoute),
    };
    match result {
        Ok(response) => response,
        Err(ApiError::NoRoute) => error_response(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("no endpoint at {}", request.path),
        ),
        Err(ApiError::BadRequest(message)) => error_response(StatusCode::BAD_REQUEST, "ArgumentException", &message),
        Err(ApiError::Client(error)) => client_error_response(&error),
    }
}

enum ApiError {
    NoRoute,
    BadRequest(String),
    Client(ClientError),
}

impl From<ClientError> for ApiError {
    fn from(error: ClientError) -> Self {
        ApiError::Client(error)
    }
}

enum Signal {
    Terminate,
    Suspend,
    Resume,
    Rewind,
}

struct Context<'a> {
    client: &'a DurableOrchestrationClient,
    query: Query,
    body: &'a Bytes,
    continuation_token: Option<&'a str>,
}

/// The query string the management URLs carry: the request's hub, connection and key
/// (`code=`, as the reference shows them).
fn management_query(query: &Query) -> String {
    let hub = query.get("taskHub").unwrap_or(durable_engine::config::DEFAULT_HUB);
    let connection = query
        .get("connection")
        .unwrap_or(durable_engine::config::DEFAULT_CONNECTION);
    let mut url_query = format!("taskHub={}&connection={}", query_encode(hub), query_encode(connection));
    if let Some(code) = query.get("code").filter(|code| !code.is_empty()) {
        url_query.push_str("&code=");
        url_query.push_str(&query_encode(code));
    }
    url_query
}

impl Context<'_> {
    fn body_text(&self) -> Result<Option<String>, ApiError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        String::from_utf8(self.body.to_vec())
            .map(Some)
            .map_err(|_| ApiError::BadRequest("the request body is not UTF-8 text".into()))
    }

    async fn start(&self, name: &str, instance_id: Option<String>) -> Result<Response<Full<Bytes>>, ApiError> {
        let input = self.body_text()?;
        let id = self.client.start_new(name, instance_id, input).await?;
        Ok(self.accepted_with_urls(&id))
    }

    /// 202 with the management payload, `Location` and `Retry-After`.
    fn accepted_with_urls(&self, id: &str) -> Response<Full<Bytes>> {
        let urls = self.client.create_http_management_payload(id);
        let mut response = json_response(StatusCode::ACCEPTED, &urls.to_json());
        set_header(&mut response, LOCATION, &urls.status_query_get_uri);
        set_header(&mut response, RETRY_AFTER, RETRY_AFTER_SECONDS);
        response
    }

    async fn status(&self, id: &str) -> Result<Response<Full<Bytes>>, ApiError> {
        let show_history = self.query.flag("showHistory")?.unwrap_or(false);
        let show_history_output = self.query.flag("showHistoryOutput")?.unwrap_or(false);
        let show_input = self.query.flag("showInput")?.unwrap_or(true);
        let fail_with_500 = self.query.flag("returnInternalServerErrorOnFailure")?.unwrap_or(false);
        let Some(status) = self
            .client
            .get_status(id, show_history, show_history_output, show_input)
            .await?
        else {
            return Err(ClientError::NotFound(id.to_owned()).into());
        };
        let code = match status.runtime_status {
            RuntimeStatus::Pending
            | RuntimeStatus::Running
            | RuntimeStatus::Suspended
            | RuntimeStatus::ContinuedAsNew => StatusCode::ACCEPTED,
            RuntimeStatus::Failed if fail_with_500 => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::OK,
        };
        let mut response = json_response(code, &status.to_json());
        if code == StatusCode::ACCEPTED {
            let urls = self.client.create_http_management_payload(id);
            set_header(&mut response, LOCATION, &urls.status_query_get_uri);
            set_header(&mut response, RETRY_AFTER, RETRY_AFTER_SECONDS);
        }
        Ok(response)
    }

    async fn raise_event(&self, id: &str, event_name: &str) -> Result<Response<Full<Bytes>>, ApiError> {
        let data = self.body_text()?;
        self.client.raise_event(id, event_name, data).await?;
        Ok(empty_response(StatusCode::ACCEPTED))
    }

    async fn signal(&self, id: &str, signal: Signal) -> Result<Response<Full<Bytes>>, ApiError> {
        let reason = self.query.get("reason").map(str::to_owned);
        match signal {
            Signal::Terminate => self.client.terminate(id, reason).await?,
            Signal::Suspend => self.client.suspend(id, reason).await?,
            Signal::Resume => self.client.resume(id, reason).await?,
            Signal::Rewind => self.client.rewind(id, reason).await?,
        }
        Ok(empty_response(StatusCode::ACCEPTED))
    }

    async fn restart(&self, id: &str) -> Result<Response<Full<Bytes>>, ApiError> {
        let with_new_id = self.query.flag("restartWithNewInstanceId")?.unwrap_or(false);
        let new_id = self.client.restart(id, with_new_id).await?;
        Ok(self.accepted_with_urls(&new_id))
    }

    async fn list(&self) -> Result<Response<Full<Bytes>>, ApiError> {
        let top = Some(self.top()?);
        let query = InstanceQuery {
            created_time_from: self.query.timestamp("createdTimeFrom")?,
            created_time_to: self.query.timestamp("createdTimeTo")?,
            runtime_status: self.query.statuses()?,
            instance_id_prefix: self
                .query
                .get("instanceIdPrefix")
                .filter(|prefix| !prefix.is_empty())
                .map(str::to_owned),
            show_input: self.query.flag("showInput")?.unwrap_or(true),
            top,
            continuation_token: self.continuation_token.map(str::to_owned),
        };
        let page = self.client.list_instances(&query).await?;
        let body = Value::Array(page.instances.iter().map(|status| status.to_json()).collect());
        Ok(page_response(&body, page.continuation_token.as_deref()))
    }

    async fn signal_entity(&self, name: &str, key: &str) -> Result<Response<Full<Bytes>>, ApiError> {
        let operation = self.query.get("op").unwrap_or_default().to_owned();
        let input = self.body_text()?;
        self.client
            .signal_entity(&EntityId::new(name, key), &operation, input)
            .await?;
        Ok(empty_response(StatusCode::ACCEPTED))
    }

    async fn read_entity(&self, name: &str, key: &str) -> Result<Response<Full<Bytes>>, ApiError> {
        match self.client.read_entity_state(&EntityId::new(name, key)).await? {
            Some(entity) => Ok(json_response(StatusCode::OK, &entity.state)),
            None => Ok(error_response(
                StatusCode::NOT_FOUND,
                "ArgumentException",
                &format!("no entity {name}/{key}"),
            )),
        }
    }

    async fn list_entities(&self, name: Option<&str>) -> Result<Response<Full<Bytes>>, ApiError> {
        let fetch_state = self.query.flag("fetchState")?.unwrap_or(false);
        let query = EntityQuery {
            name: name.map(str::to_owned),
            last_operation_time_from: self.query.timestamp("lastOperationTimeFrom")?,
            last_operation_time_to: self.query.timestamp("lastOperationTimeTo")?,
            fetch_state,
            top: Some(self.top()?),
            continuation_token: self.continuation_token.map(str::to_owned),
        };
        let page = self.client.list_entities(&query).await?;
        let body = Value::Array(page.entities.iter().map(|entity| entity.to_json(fetch_state)).collect());
        Ok(page_response(&body, page.continuation_token.as_deref()))
    }

    /// `top`: a positive page size, 100 when absent.
    fn top(&self) -> Result<usize, ApiError> {
        match self.query.get("top") {
            None | Some("") => Ok(DEFAULT_PAGE_SIZE),
            Some(text) => match text.trim().parse::<usize>() {
                Ok(top) if top > 0 => Ok(top),
                _ => Err(ApiError::BadRequest(format!(
                    "top must be a positive integer, not {text:?}"
                ))),
            },
        }
    }

    async fn purge(&self, id: &str) -> Result<Response<Full<Bytes>>, ApiError> {
        let result = self.client.purge_instance_history(id).await?;
        Ok(json_response(
            StatusCode::OK,
            &json!({ "instancesDeleted": result.instances_deleted }),
        ))
    }

    async fn purge_by(&self) -> Result<Response<Full<Bytes>>, ApiError> {
        let filter = PurgeFilter {
            created_time_from: self.query.timestamp("createdTimeFrom")?,
            created_time_to: self.query.timestamp("createdTimeTo")?,
            runtime_status: self.query.statuses()?,
        };
        let result = self.client.purge_instance_history_by(&filter).await?;
        if result.instances_deleted == 0 {
            return Err(ApiError::Client(ClientError::NotFound(
                "(no instance matched the filter)".into(),
            )));
        }
        Ok(json_response(
            StatusCode::OK,
            &json!({ "instancesDeleted": result.instances_deleted }),
        ))
    }
}

/// Decoded query parameters; names match case-insensitively, as ASP.NET does.
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(raw: &str) -> Self {
        Query(
            raw.split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (query_decode(name), query_decode(value))
                })
                .collect(),
        )
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// A boolean parameter: `true`/`false` in any case (Python sends `True`).
    fn flag(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(value) if value.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(value) if value.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(value) => Err(ApiError::BadRequest(format!(
                "query parameter {name} must be true or false, not {value:?}"
            ))),
        }
    }

    /// An ISO-8601 timestamp parameter.
    fn timestamp(&self, name: &str) -> Result<Option<Timestamp>, ApiError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(text) => Timestamp::parse_iso8601(text).map(Some).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "query parameter {name} must be an ISO-8601 timestamp, not {text:?}"
                ))
            }),
        }
    }

    /// `runtimeStatus`: a comma-separated list of status names.
    fn statuses(&self) -> Result<Vec<RuntimeStatus>, ApiError> {
        let Some(list) = self.get("runtimeStatus") else {
            return Ok(Vec::new());
        };
        list.split(',')
            .filter(|name| !name.trim().is_empty())
            .map(|name| {
                RuntimeStatus::parse(name).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "unknown runtimeStatus {name:?}; expected Pending, Running, Completed, Failed, Terminated, Suspended, Canceled or ContinuedAsNew"
                    ))
                })
            })
            .collect()
    }
}

pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let (Some(high), Some(low)) = (hex_digit(bytes.get(index + 1)), hex_digit(bytes.get(index + 2)))
        {
            out.push(high << 4 | low);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(byte: Option<&u8>) -> Option<u8> {
    (*byte? as char).to_digit(16).map(|digit| digit as u8)
}

fn query_decode(text: &str) -> String {
    percent_decode(&text.replace('+', " "))
}

pub(crate) fn query_encode(text: &str) -> String {
    durable_engine::client::percent_encode(text)
        .replace('&', "%26")
        .replace('=', "%3D")
        .replace('+', "%2B")
}

pub(crate) fn set_header(response: &mut Response<Full<Bytes>>, name: hyper::header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// 200 with one page of a list, and the token of the next page if there is one.
fn page_response(body: &Value, continuation_token: Option<&str>) -> Response<Full<Bytes>> {
    let mut response = json_response(StatusCode::OK, body);
    if let Some(token) = continuation_token {
        set_header(
            &mut response,
            hyper::header::HeaderName::from_static(CONTINUATION_HEADER),
            token,
        );
    }
    response
}

fn empty_response(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

pub(crate) fn method_not_allowed(method: &Method) -> Response<Full<Bytes>> {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        &format!("method {method} is not allowed here"),
    )
}

/// An error body in the shape Durable Functions uses (`Message`, `ExceptionMessage`).
pub(crate) fn error_response(status: StatusCode, exception_type: &str, message: &str) -> Response<Full<Bytes>> {
    json_response(
        status,
        &json!({ "Message": message, "ExceptionMessage": message, "ExceptionType": exception_type }),
    )
}

fn client_error_response(error: &ClientError) -> Response<Full<Bytes>> {
    let (status, exception_type) = match error {
        ClientError::InvalidInstanceId(_) | ClientError::InvalidArgument(_) => {
            (StatusCode::BAD_REQUEST, "ArgumentException")
        }
        ClientError::UnknownOrchestrator(_) => (StatusCode::BAD_REQUEST, "ArgumentException"),
        ClientError::InvalidJson { .. } | ClientError::TooDeep { .. } => {
            (StatusCode::BAD_REQUEST, "JsonReaderException")
        }
        ClientError::NotFound(_) => (StatusCode::NOT_FOUND, "ArgumentException"),
        ClientError::Gone { .. } => (StatusCode::GONE, "InvalidOperationException"),
        ClientError::AlreadyExists { .. } => (StatusCode::CONFLICT, "InvalidOperationException"),
        ClientError::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "ArgumentException"),
        ClientError::UnknownEntity(_) => (StatusCode::NOT_FOUND, "ArgumentException"),
        ClientError::Rejected { status, .. } => (
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY),
            "Exception",
        ),
        ClientError::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "ArgumentException"),
        ClientError::TooManyStarts(_) => (StatusCode::TOO_MANY_REQUESTS, "InvalidOperationException"),
        ClientError::Remote(_) => (StatusCode::BAD_GATEWAY, "Exception"),
        ClientError::Store(_) | ClientError::Commit(_) if error.is_unavailable() => {
            eprintln!("error: {error}");
            let mut response = error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                &format!("the task hub's store is unavailable, nothing was changed; retry later ({error})"),
            );
            set_header(&mut response, RETRY_AFTER, "1");
            return response;
        }
        ClientError::Store(_) | ClientError::Commit(_) => {
            eprintln!("error: {error}");
            return error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Exception",
                "internal storage error; see the host log",
            );
        }
    };
    error_response(status, exception_type, &error.to_string())
}
