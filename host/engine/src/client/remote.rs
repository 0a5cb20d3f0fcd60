//! The client's remote backend: a host's management API over HTTP/1.1.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::{
    ClientError, Control, EntityPage, EntityQuery, EntityState, InstancePage, InstanceQuery, OrchestrationStatus,
    PurgeFilter, PurgeHistoryResult, percent_encode,
};
use durable_core::history::{EntityId, RuntimeStatus, Timestamp};

/// The header carrying list continuation tokens, both ways.
const CONTINUATION_HEADER: &str = "x-ms-continuation-token";
/// How long connecting and one exchange may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const EXCHANGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// The API's path prefix on the remote host.
const PREFIX: &str = "/runtime/webhooks/durabletask";

/// A host reached over HTTP.
pub struct RemoteHub {
    /// `host:port`
    authority: String,
    /// `taskHub=...&code=...`, possibly empty.
    common_query: String,
}

struct Answer {
    status: u16,
    continuation_token: Option<String>,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Result<Value, ClientError> {
        // Payloads nest up to MAX_JSON_DEPTH levels; the answer's envelope adds a few.
        let limit = durable_core::json_depth::MAX_JSON_DEPTH + 8;
        durable_core::json_depth::parse(&self.body, limit).map_err(|error| {
            ClientError::Remote(format!(
                "invalid JSON from host ({error}): {}",
                String::from_utf8_lossy(&self.body)
            ))
        })
    }

    /// The error a non-success answer stands for.
    fn error(&self, instance_id: &str) -> ClientError {
        let message = serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|body| body["Message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).into_owned());
        match self.status {
            400 => ClientError::InvalidArgument(message),
            404 => ClientError::NotFound(instance_id.to_owned()),
            status => ClientError::Rejected { status, message },
        }
    }
}

impl RemoteHub {
    /// A remote host at `url` (`http://host:port`).
    pub fn new(url: &str, task_hub: Option<&str>, key: Option<&str>) -> Result<Self, ClientError> {
        let authority = url
            .trim_end_matches('/')
            .strip_prefix("http://")
            .filter(|authority| !authority.is_empty() && !authority.contains('/'))
            .ok_or_else(|| {
                ClientError::InvalidArgument(format!("expected a URL like http://127.0.0.1:7071, got {url:?}"))
            })?
            .to_owned();
        let mut query = Vec::new();
        if let Some(hub) = task_hub {
            query.push(format!("taskHub={}", percent_encode(hub)));
        }
        if let Some(key) = key {
            query.push(format!("code={}", percent_encode(key)));
        }
        Ok(RemoteHub {
            authority,
            common_query: query.join("&"),
        })
    }

    /// The base of management URLs on this host.
    pub fn api_base(&self) -> String {
        format!("http://{}{PREFIX}", self.authority)
    }

    /// The query string management URLs carry.
    pub fn url_query(&self) -> String {
        self.common_query.clone()
    }

    fn path(&self, path: &str, query: &[(&str, String)]) -> String {
        let mut parts: Vec<String> = query
            .iter()
            .map(|(name, value)| format!("{name}={}", percent_encode(value)))
            .collect();
        if !self.common_query.is_empty() {
            parts.push(self.common_query.clone());
        }
        if parts.is_empty() {
            format!("{PREFIX}{path}")
        } else {
            format!("{PREFIX}{path}?{}", parts.join("&"))
        }
    }

    async fn send(
        &self,
        method: Method,
        path: String,
        body: Option<String>,
        continuation_token: Option<&str>,
    ) -> Result<Answer, ClientError> {
        let remote = |error: &dyn std::fmt::Display| ClientError::Remote(format!("{}: {error}", self.authority));
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&self.authority))
            .await
            .map_err(|_| remote(&"connection timed out"))?
            .map_err(|error| remote(&error))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| remote(&error))?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.authority);
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        if let Some(token) = continuation_token {
            request = request.header(CONTINUATION_HEADER, token);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|error| remote(&error))?;
        let response = tokio::time::timeout(EXCHANGE_TIMEOUT, sender.send_request(request))
            .await
            .map_err(|_| remote(&"no answer in time"))?
            .map_err(|error| remote(&error))?;
        let status = response.status().as_u16();
        let continuation_token = response
            .headers()
            .get(CONTINUATION_HEADER)
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.is_empty())
            .map(str::to_owned);
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| remote(&error))?
            .to_bytes();
        Ok(Answer {
            status,
            continuation_token,
            body,
        })
    }

    pub(super) async fn start_new(
        &self,
        name: &str,
        instance_id: Option<String>,
        input: Option<String>,
    ) -> Result<String, ClientError> {
        let path = match &instance_id {
            Some(id) => format!("/orchestrators/{}/{}", percent_encode(name), percent_encode(id)),
            None => format!("/orchestrators/{}", percent_encode(name)),
        };
        let answer = self.send(Method::POST, self.path(&path, &[]), input, None).await?;
        if answer.status != 202 {
            return Err(answer.error(instance_id.as_deref().unwrap_or_default()));
        }
        answer.json()?["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Remote("start answer without an id".into()))
    }

    pub(super) async fn get_status(
        &self,
        instance_id: &str,
        show_history: bool,
        show_history_output: bool,
        show_input: bool,
    ) -> Result<Option<OrchestrationStatus>, ClientError> {
        let query = [
            ("showHistory", show_history.to_string()),
            ("showHistoryOutput", show_history_output.to_string()),
            ("showInput", show_input.to_string()),
        ];
        let path = self.path(&format!("/instances/{}", percent_encode(instance_id)), &query);
        let answer = self.send(Method::GET, path, None, None).await?;
        match answer.status {
            200 | 202 | 500 => Ok(Some(OrchestrationStatus::from_json(&answer.json()?)?)),
            404 => Ok(None),
            _ => Err(answer.error(instance_id)),
        }
    }

    pub(super) async fn list_instances(&self, query: &InstanceQuery) -> Result<InstancePage, ClientError> {
        let mut parameters = vec![("showInput", query.show_input.to_string())];
        if let Some(from) = query.created_time_from {
            parameters.push(("createdTimeFrom", from.to_iso8601()));
        }
        if let Some(to) = query.created_time_to {
            parameters.push(("createdTimeTo", to.to_iso8601()));
        }
        if !query.runtime_status.is_empty() {
            parameters.push(("runtimeStatus", status_list(&query.runtime_status)));
        }
        if let Some(prefix) = &query.instance_id_prefix {
            parameters.push(("instanceIdPrefix", prefix.clone()));
        }
        if let Some(top) = query.top {
            parameters.push(("top", top.to_string()));
        }
        let path = self.path("/instances", &parameters);
        let answer = self
            .send(Method::GET, path, None, query.continuation_token.as_deref())
            .await?;
        if answer.status != 200 {
            return Err(answer.error(""));
        }
        let instances = answer
            .json()?
            .as_array()
            .ok_or_else(|| ClientError::Remote("the instance list is not an array".into()))?
            .iter()
            .map(OrchestrationStatus::from_json)
            .collect::<Result<_, _>>()?;
        Ok(InstancePage {
            instances,
            continuation_token: answer.continuation_token,
        })
    }

    pub(super) async fn purge(&self, instance_id: &str) -> Result<PurgeHistoryResult, ClientError> {
        let path = self.path(&format!("/instances/{}", percent_encode(instance_id)), &[]);
        let answer = self.send(Method::DELETE, path, None, None).await?;
        if answer.status != 200 {
            return Err(answer.error(instance_id));
        }
        Ok(PurgeHistoryResult {
            instances_deleted: answer.json()?["instancesDeleted"].as_u64().unwrap_or(0),
        })
    }

    pub(super) async fn purge_by(&self, filter: &PurgeFilter) -> Result<PurgeHistoryResult, ClientError> {
        let mut parameters = Vec::new();
        let times: [(&str, Option<Timestamp>); 2] = [
            ("createdTimeFrom", filter.created_time_from),
            ("createdTimeTo", filter.created_time_to),
        ];
        for (name, time) in times {
            if let Some(time) = time {
                parameters.push((name, time.to_iso8601()));
            }
        }
        if !filter.runtime_status.is_empty() {
            parameters.push(("runtimeStatus", status_list(&filter.runtime_status)));
        }
        let answer = self
            .send(Method::DELETE, self.path("/instances", &parameters), None, None)
            .await?;
        match answer.status {
            200 => Ok(PurgeHistoryResult {
                instances_deleted: answer.json()?["instancesDeleted"].as_u64().unwrap_or(0),
            }),
            404 => Ok(PurgeHistoryResult { instances_deleted: 0 }),
            _ => Err(answer.error("")),
        }
    }

    pub(super) async fn raise_event(
        &self,
        instance_id: &str,
        event_name: &str,
        data: Option<String>,
    ) -> Result<(), ClientError> {
        let path = format!(
            "/instances/{}/raiseEvent/{}",
            percent_encode(instance_id),
            percent_encode(event_name)
        );
        let answer = self.send(Method::POST, self.path(&path, &[]), data, None).await?;
        if answer.status == 202 {
            Ok(())
        } else {
            Err(answer.error(instance_id))
        }
    }

    pub(super) async fn control(
        &self,
        instance_id: &str,
        control: Control,
        reason: Option<String>,
    ) -> Result<(), ClientError> {
        let query: Vec<(&str, String)> = reason.map(|reason| ("reason", reason)).into_iter().collect();
        let path = format!("/instances/{}/{}", percent_encode(instance_id), control.path_segment());
        let answer = self.send(Method::POST, self.path(&path, &query), None, None).await?;
        if answer.status == 202 {
            Ok(())
        } else {
            Err(answer.error(instance_id))
        }
    }

    pub(super) async fn restart(&self, instance_id: &str, with_new_instance_id: bool) -> Result<String, ClientError> {
        let path = format!("/instances/{}/restart", percent_encode(instance_id));
        let query = [("restartWithNewInstanceId", with_new_instance_id.to_string())];
        let answer = self.send(Method::POST, self.path(&path, &query), None, None).await?;
        if answer.status != 202 {
            return Err(answer.error(instance_id));
        }
        answer.json()?["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Remote("restart answer without an id".into()))
    }
}

impl RemoteHub {
    fn entity_path(entity: &EntityId) -> String {
        format!(
            "/entities/{}/{}",
            percent_encode(&entity.name),
            percent_encode(&entity.key)
        )
    }

    pub(super) async fn signal_entity(
        &self,
        entity: &EntityId,
        operation: &str,
        input: Option<String>,
    ) -> Result<(), ClientError> {
        let path = self.path(&Self::entity_path(entity), &[("op", operation.to_owned())]);
        let answer = self.send(Method::POST, path, input, None).await?;
        match answer.status {
            202 => Ok(()),
            404 => Err(ClientError::UnknownEntity(entity.name.clone())),
            _ => Err(answer.error("")),
        }
    }

    pub(super) async fn read_entity_state(&self, entity: &EntityId) -> Result<Option<EntityState>, ClientError> {
        // The GET of one entity answers its raw state; the list has the operation time.
        let query = EntityQuery {
            name: Some(entity.name.clone()),
            fetch_state: true,
            ..EntityQuery::default()
        };
        let answer = self
            .send(Method::GET, self.path(&Self::entity_path(entity), &[]), None, None)
            .await?;
        match answer.status {
            200 => {}
            404 => return Ok(None),
            _ => return Err(answer.error("")),
        }
        let state = answer.json()?;
        let mut token = None;
        loop {
            let page = self
                .list_entities(&EntityQuery {
                    continuation_token: token,
                    ..query.clone()
                })
                .await?;
            if let Some(found) = page.entities.into_iter().find(|found| found.id == *entity) {
                return Ok(Some(EntityState { state, ..found }));
            }
            match page.continuation_token {
                Some(next) => token = Some(next),
                None => return Ok(None),
            }
        }
    }

    pub(super) async fn list_entities(&self, query: &EntityQuery) -> Result<EntityPage, ClientError> {
        let mut parameters = vec![("fetchState", query.fetch_state.to_string())];
        if let Some(from) = query.last_operation_time_from {
            parameters.push(("lastOperationTimeFrom", from.to_iso8601()));
        }
        if let Some(to) = query.last_operation_time_to {
            parameters.push(("lastOperationTimeTo", to.to_iso8601()));
        }
        if let Some(top) = query.top {
            parameters.push(("top", top.to_string()));
        }
        let path = match &query.name {
            Some(name) => format!("/entities/{}", percent_encode(name)),
            None => "/entities".to_owned(),
        };
        let answer = self
            .send(
                Method::GET,
                self.path(&path, &parameters),
                None,
                query.continuation_token.as_deref(),
            )
            .await?;
        if answer.status != 200 {
            return Err(answer.error(""));
        }
        let entities = answer
            .json()?
            .as_array()
            .ok_or_else(|| ClientError::Remote("the entity list is not an array".into()))?
            .iter()
            .map(EntityState::from_json)
            .collect::<Result<_, _>>()?;
        Ok(EntityPage {
            entities,
            continuation_token: answer.continuation_token,
        })
    }
}

fn status_list(statuses: &[RuntimeStatus]) -> String {
    statuses
        .iter()
        .map(|status| status.as_str())
        .collect::<Vec<_>>()
        .join(",")
}
