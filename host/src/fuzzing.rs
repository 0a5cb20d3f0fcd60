//! The bodies of the fuzz targets in `fuzz/` (`scripts/fuzz.sh` runs them under libFuzzer).
//!
//! They live here, not in `fuzz/`, so the ordinary test suite runs every seed of
//! `fuzz/corpus/` through them on a stable toolchain and they cannot rot.
//!
//! - [`http_request`]: the input is a small HTTP-like text (see [`parse_request`]) answered
//!   by [`crate::http::handle`] on a real embedded task hub; every response must have a valid
//!   status and a JSON (or empty) body.
//! - [`history_decode`]: every line of the input is decoded as a history event, an inbox
//!   message, an instance record and an entity record; what decodes is folded and run
//!   through the pure replay rules. Nothing may panic.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::Value;

use crate::client::{DurableOrchestrationClient, HostConfig, TaskHub};
use crate::history::{
    Action, ActionKind, CompletionStatus, EntityRecord, EpisodeResult, EventKind, FailureDetails, HistoryEvent,
    InstanceRecord, Message, Timestamp,
};
use crate::http::{self, ApiRequest, PREFIXES};
use crate::replay::{self, Disposition, ExecutionState};

/// Environment variable: `.wasm` apps (a path list, `:`-separated) the `http_request` hub
/// loads. Unset, the hub has no apps.
pub const APPS_VARIABLE: &str = "DURABLE_FUZZ_APPS";

/// Decodes `data` as history (one JSON document per line) and runs it through replay.
pub fn history_decode(data: &[u8]) {
    let mut history = Vec::new();
    let mut messages = Vec::new();
    for line in data.split(|&byte| byte == b'\n') {
        if let Ok(event) = HistoryEvent::decode(line) {
            assert_eq!(
                HistoryEvent::decode(&event.encode()).ok().as_ref(),
                Some(&event),
                "a history event survives a round trip"
            );
            history.push(event);
        }
        if let Ok(message) = Message::decode(line) {
            assert_eq!(
                Message::decode(&message.encode()).ok().as_ref(),
                Some(&message),
                "a message survives a round trip"
            );
            messages.push(message);
        }
        if let Ok(record) = InstanceRecord::decode(line) {
            assert_eq!(
                InstanceRecord::decode(&record.encode()).ok().as_ref(),
                Some(&record),
                "an instance record survives a round trip"
            );
            let _ = record.api_output();
            let _ = (record.created_time.to_iso8601(), record.last_updated_time.to_iso8601());
        }
        if let Ok(record) = EntityRecord::decode(line) {
            assert_eq!(
                EntityRecord::decode(&record.encode()).ok().as_ref(),
                Some(&record),
                "an entity record survives a round trip"
            );
        }
    }
    // Events decoded in a line of their own also arrive as inbox messages.
    messages.extend(history.iter().map(|event| Message {
        execution_id: None,
        event: event.clone(),
    }));

    let state = ExecutionState::from_history(&history);
    assert_eq!(state.history_len, history.len());
    let _ = state.entities_to_unlock();

    for (position, event) in history.iter().enumerate() {
        let schedule = scheduled_by(&history[..position], &event.kind);
        let _ = event.to_api_json(true, schedule);
        let _ = event.to_api_json(false, None);
    }

    // Replaying each recorded episode with exactly its recorded actions is deterministic;
    // leaving the last one out is not.
    let episodes = replay::recorded_episodes(&history);
    for (index, episode) in episodes.iter().enumerate() {
        let actions: Vec<Action> = episode.actions.iter().filter_map(recorded_action).collect();
        assert_eq!(
            actions.len(),
            episode.actions.len(),
            "every action event maps to an action"
        );
        if let Err(error) = replay::check_replayed_episode(index, &episode.actions, &actions) {
            panic!("episode {index} does not replay with its own actions: {error}");
        }
        if let Some((_, fewer)) = actions.split_last() {
            let error = replay::check_replayed_episode(index, &episode.actions, fewer)
                .expect_err("an action left out is nondeterminism");
            let _ = error.to_string();
        }
    }

    let execution_id = messages.iter().find_map(|message| message.execution_id).unwrap_or(1);
    let triage = replay::triage(&state, execution_id, &messages);
    assert_eq!(triage.dispositions.len(), messages.len());
    let accepted = triage
        .dispositions
        .iter()
        .filter(|disposition| **disposition == Disposition::Accept)
        .count();
    assert_eq!(triage.accepted.len(), accepted);
    if state.finished {
        assert_eq!(accepted, 0, "a finished execution accepts nothing");
    }
    let _ = triage.is_noop();

    let now = history.last().map_or(Timestamp(0), |event| event.timestamp);
    let outcome = replay::finish_episode("fuzz", &state, now, triage.accepted.clone(), None)
        .expect("an episode that ran no orchestrator is always valid");
    assert!(outcome.new_history.len() >= 2);
    // The last episode's actions again, numbered as new ones.
    let mut next_id = state.next_action_id;
    let actions = episodes
        .last()
        .map(|episode| {
            episode
                .actions
                .iter()
                .filter_map(recorded_action)
                .map(|mut action| {
                    if action.id >= 0 {
                        action.id = next_id;
                        next_id = next_id.saturating_add(1);
                    }
                    action
                })
                .collect()
        })
        .unwrap_or_default();
    let returned = EpisodeResult {
        actions,
        custom_status: Some("\"fuzz\"".into()),
    };
    if let Err(error) = replay::finish_episode("fuzz", &state, now, triage.accepted.clone(), Some(returned)) {
        let _ = (error.error_type(), error.to_string());
    }
    let _ = replay::end_episode(&state, now, triage.accepted.clone(), Some("fuzz".into()), None);
    let _ = replay::end_episode(
        &state,
        now,
        triage.accepted,
        None,
        Some(FailureDetails::host("Fuzz", "fuzzed failure")),
    );
    if let Ok(plan) = replay::rewind(&history) {
        let _ = ExecutionState::from_history(&plan.history);
    }
}

/// The event that scheduled the task `kind` completes, as the status API looks it up.
fn scheduled_by<'a>(earlier: &'a [HistoryEvent], kind: &EventKind) -> Option<&'a HistoryEvent> {
    let id = match kind {
        EventKind::TaskCompleted { task_scheduled_id, .. }
        | EventKind::TaskFailed { task_scheduled_id, .. }
        | EventKind::SubOrchestrationInstanceCompleted { task_scheduled_id, .. }
        | EventKind::SubOrchestrationInstanceFailed { task_scheduled_id, .. } => *task_scheduled_id,
        EventKind::TimerFired { timer_id, .. } => *timer_id,
        _ => return None,
    };
    earlier.iter().rev().find(|event| event.event_id == id)
}

/// The action an orchestrator returns to produce the recorded action event `event`.
fn recorded_action(event: &HistoryEvent) -> Option<Action> {
    let kind = match event.kind.clone() {
        EventKind::TaskScheduled { name, input } => ActionKind::ScheduleTask { name, input },
        EventKind::TimerCreated { fire_at } => ActionKind::CreateTimer { fire_at },
        EventKind::SubOrchestrationInstanceCreated {
            name,
            instance_id,
            input,
        } => ActionKind::CallSubOrchestration {
            name,
            instance_id: Some(instance_id),
            input,
        },
        EventKind::EventSent {
            instance_id,
            name,
            input,
        } => ActionKind::SendEvent {
            instance_id,
            name,
            input,
        },
        EventKind::ExecutionCompleted {
            status: CompletionStatus::Completed,
            result,
            ..
        } => ActionKind::Complete { result },
        EventKind::ExecutionCompleted {
            status: CompletionStatus::Failed,
            failure,
            ..
        } => ActionKind::Fail {
            failure: failure.unwrap_or_else(|| FailureDetails::host("Fuzz", "no failure recorded")),
        },
        EventKind::EntityOperationCalled {
            entity,
            operation,
            input,
        } => ActionKind::CallEntity {
            entity,
            operation,
            input,
        },
        EventKind::EntityOperationSignaled {
            entity,
            operation,
            input,
            scheduled_time,
        } => ActionKind::SignalEntity {
            entity,
            operation,
            input,
            scheduled_time,
        },
        EventKind::EntityLockRequested { entities } => ActionKind::LockEntities { entities },
        EventKind::EntityUnlockSent { entities } => ActionKind::UnlockEntities { entities },
        _ => return None,
    };
    Some(Action {
        id: event.event_id,
        kind,
    })
}

/// Answers `data`, read by [`parse_request`], with the API on a task hub started once per
/// process, and checks the response.
pub fn http_request(data: &[u8]) {
    let harness = harness();
    let request = parse_request(data);
    let (parts, body) = harness.runtime.block_on(async {
        let (parts, body) = http::handle(&harness.client, request).await.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        (parts, body)
    });
    let status = parts.status.as_u16();
    assert!((100..=599).contains(&status), "invalid HTTP status {status}");
    if !body.is_empty()
        && let Err(error) = serde_json::from_slice::<Value>(&body)
    {
        panic!(
            "status {status}: the body is not JSON ({error}): {:?}",
            String::from_utf8_lossy(&body)
        );
    }
}

/// Reads a fuzz input as a request, in a small HTTP/1-like text format:
///
/// ```text
/// METHOD TARGET
/// host: example.com
/// x-ms-continuation-token: TOKEN
///
/// BODY
/// ```
///
/// `TARGET` is `path?query`; a leading `$0` or `$1` stands for `http::PREFIXES[0]` or `[1]`.
/// A first line without a valid method is a GET of that line. Other headers are ignored;
/// everything after the first empty line is the body, byte for byte.
pub fn parse_request(data: &[u8]) -> ApiRequest {
    let mut rest = data;
    let mut next_line = || {
        let line = match rest.iter().position(|&byte| byte == b'\n') {
            Some(end) => {
                let line = &rest[..end];
                rest = &rest[end + 1..];
                line
            }
            None => std::mem::take(&mut rest),
        };
        line.strip_suffix(b"\r").unwrap_or(line)
    };
    let first = next_line();
    let (method, target) = match first.iter().position(|&byte| byte == b' ') {
        Some(space) => match Method::from_bytes(&first[..space]) {
            Ok(method) => (method, &first[space + 1..]),
            Err(_) => (Method::GET, first),
        },
        None => (Method::GET, first),
    };
    let target = String::from_utf8_lossy(target);
    let target = match target.as_bytes() {
        [b'$', digit @ (b'0' | b'1'), ..] => format!("{}{}", PREFIXES[usize::from(digit - b'0')], &target[2..]),
        _ => target.into_owned(),
    };
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), query.to_owned()),
        None => (target, String::new()),
    };
    let mut host = None;
    let mut continuation_token = None;
    loop {
        let line = next_line();
        if line.is_empty() {
            break;
        }
        let line = String::from_utf8_lossy(line);
        if let Some((name, value)) = line.split_once(':') {
            let value = Some(value.trim().to_owned());
            if name.trim().eq_ignore_ascii_case("host") {
                host = value;
            } else if name.trim().eq_ignore_ascii_case("x-ms-continuation-token") {
                continuation_token = value;
            }
        }
    }
    ApiRequest {
        method,
        path,
        query,
        host,
        continuation_token,
        body: Bytes::copy_from_slice(rest),
    }
}

/// One task hub and runtime per process, so inputs run fast and share the store.
struct Harness {
    runtime: tokio::runtime::Runtime,
    client: DurableOrchestrationClient,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let directory = std::env::temp_dir().join(format!(
            "durable-fuzz-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&directory).expect("a temporary directory for the fuzz store");
        let apps: Vec<PathBuf> = std::env::var_os(APPS_VARIABLE)
            .map(|paths| std::env::split_paths(&paths).collect())
            .unwrap_or_default();
        let config = HostConfig {
            store_path: directory.join("store.redb"),
            apps,
            component_cache: None,
            dispatch: Default::default(),
        };
        let (hub, errors) = runtime
            .block_on(TaskHub::start(config))
            .expect("the fuzz task hub starts");
        for error in errors {
            eprintln!("warning: {APPS_VARIABLE}: {error}");
        }
        let client = Arc::new(hub).client();
        Harness { runtime, client }
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let directory = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target);
        let mut seeds: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&directory)
            .unwrap_or_else(|error| panic!("{}: {error}", directory.display()))
            .map(|entry| {
                let path = entry.expect("a directory entry").path();
                let data = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
                (path, data)
            })
            .collect();
        seeds.sort();
        assert!(!seeds.is_empty(), "no seeds in {}", directory.display());
        seeds
    }

    #[test]
    fn history_decode_runs_every_seed() {
        for (path, data) in seeds("history_decode") {
            eprintln!("{}", path.display());
            // The seeds are real encodings: every line decodes as something.
            for line in data.split(|&byte| byte == b'\n').filter(|line| !line.is_empty()) {
                assert!(
                    HistoryEvent::decode(line).is_ok()
                        || Message::decode(line).is_ok()
                        || InstanceRecord::decode(line).is_ok()
                        || EntityRecord::decode(line).is_ok(),
                    "{}: a line decodes as nothing: {}",
                    path.display(),
                    String::from_utf8_lossy(line)
                );
            }
            history_decode(&data);
        }
    }

    #[test]
    fn http_request_runs_every_seed() {
        for (path, data) in seeds("http_request") {
            eprintln!("{}", path.display());
            http_request(&data);
        }
    }

    #[test]
    fn requests_parse_from_the_text_format() {
        let request = parse_request(b"POST $1/instances/abc/raiseEvent/go?x=1\r\nHost: h:1\n\n{\"a\":\n1}");
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.path, format!("{}/instances/abc/raiseEvent/go", PREFIXES[1]));
        assert_eq!(request.query, "x=1");
        assert_eq!(request.host.as_deref(), Some("h:1"));
        assert_eq!(request.continuation_token, None);
        assert_eq!(&request.body[..], b"{\"a\":\n1}");
        let request = parse_request(b"/nowhere");
        assert_eq!((request.method, request.path.as_str()), (Method::GET, "/nowhere"));
    }
}
