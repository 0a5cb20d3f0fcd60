//! The body of the `history_decode` fuzz target in `fuzz/` (`scripts/fuzz.sh` runs it
//! under libFuzzer). It lives here, not in `fuzz/`, so the ordinary test suite runs every
//! seed of `fuzz/corpus/history_decode` through it on a stable toolchain and it cannot rot.
//!
//! Every line of the input is decoded as a history event, an inbox message, an instance
//! record and an entity record; what decodes is folded and run through the pure replay
//! rules. Nothing may panic.

use crate::history::{
    Action, ActionKind, CompletionStatus, EntityRecord, EpisodeResult, EventKind, FailureDetails, HistoryEvent,
    InstanceRecord, Message, Timestamp,
};
use crate::replay::{self, Disposition, ExecutionState};

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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let directory = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
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
}
