//! The admin API: the host's hubs, live deployment of apps, compatibility checks of
//! candidate components, and key rotation. Opened by an admin key.
//!
//! - `GET /admin/hubs`: the hubs and their connections and apps.
//! - `GET /admin/hubs/{hub}/apps`: the hub's apps and the older versions it keeps.
//! - `PUT /admin/hubs/{hub}/apps/{app}` with a `.wasm` body: deploy or replace.
//! - `DELETE /admin/hubs/{hub}/apps/{app}`: remove.
//! - `POST /admin/hubs/{hub}/check[?connection=NAME]` with a `.wasm` body: would the
//!   hub's unfinished orchestrations replay on it?
//! - `POST /admin/keys/reload`: re-read the keys from the config file.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use serde_json::json;

use crate::routes::{ApiRequest, Query, error_response, json_response, method_not_allowed, percent_decode};
use crate::server::hub_error_response;
use durable_engine::hubs::{Hosting, HubError};

/// The decoded segments after `/admin` of an admin API path; `None` if `path` is not one.
/// Whether the caller may use it is for [`Hosting::authorize_admin`] to say.
pub(super) fn admin_route(path: &str) -> Option<Vec<String>> {
    let mut segments = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(percent_decode);
    if segments.next().as_deref() != Some("admin") {
        return None;
    }
    let rest: Vec<String> = segments.collect();
    matches!(rest.first().map(String::as_str), Some("hubs" | "keys")).then_some(rest)
}

/// Answers an admin request whose key has been checked; `rest` is from [`admin_route`].
pub(super) async fn handle(
    hosting: &Hosting,
    request: &ApiRequest,
    query: &Query,
    rest: &[String],
) -> Response<Full<Bytes>> {
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match route(hosting, request, query, &rest).await {
        Ok(response) => response,
        Err(error) => hub_error_response(&error),
    }
}

/// The answer to a deploy or check without a component in its body.
fn missing_component(what: &str) -> Response<Full<Bytes>> {
    error_response(
        StatusCode::BAD_REQUEST,
        "ArgumentException",
        &format!("the request body must be {what}"),
    )
}

async fn route(
    hosting: &Hosting,
    request: &ApiRequest,
    query: &Query,
    rest: &[&str],
) -> Result<Response<Full<Bytes>>, HubError> {
    let method = &request.method;
    Ok(match rest {
        ["hubs"] if method == Method::GET => {
            let hubs: Vec<_> = hosting
                .hubs()
                .values()
                .map(|hub| {
                    let apps = hub.list_apps();
                    json!({
                        "name": hub.name(),
                        "keyed": hub.has_keys(),
                        "apps": apps.apps.iter().map(|app| &app.name).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json_response(StatusCode::OK, &json!({ "hubs": hubs }))
        }
        ["hubs", hub, "apps"] if method == Method::GET => {
            json_response(StatusCode::OK, &json!(hosting.hub(hub)?.list_apps()))
        }
        ["hubs", hub, "apps", app] if method == Method::PUT || method == Method::POST => {
            if request.body.is_empty() {
                return Ok(missing_component("the app's .wasm component"));
            }
            let info = hosting.hub(hub)?.deploy(app, &request.body).await?;
            json_response(StatusCode::OK, &json!(info))
        }
        ["hubs", hub, "apps", app] if method == Method::DELETE => {
            hosting.hub(hub)?.remove(app).await?;
            Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Full::new(Bytes::new()))
                .expect("a valid response")
        }
        ["hubs", hub, "check"] if method == Method::POST => {
            if request.body.is_empty() {
                return Ok(missing_component("the candidate .wasm component"));
            }
            let report = hosting.hub(hub)?.check(query.get("connection"), &request.body).await?;
            json_response(StatusCode::OK, &json!(report))
        }
        ["keys", "reload"] if method == Method::POST => {
            let notes = hosting.reload_keys()?;
            json_response(StatusCode::OK, &json!({ "reloaded": true, "notes": notes }))
        }
        ["hubs"] | ["hubs", _, "apps"] | ["hubs", _, "apps", _] | ["hubs", _, "check"] | ["keys", "reload"] => {
            method_not_allowed(method)
        }
        _ => error_response(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("no admin endpoint at {}", request.path),
        ),
    })
}
