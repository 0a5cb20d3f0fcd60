//! Replay rules, proven on histories built in code.

use super::*;
use crate::history::{FailureDetails, Message, RuntimeStatus};

const T0: Timestamp = Timestamp(1_700_000_000_000_000);

fn at(seconds: i64) -> Timestamp {
    T0.plus_micros(seconds * 1_000_000)
}

fn event(kind: EventKind) -> HistoryEvent {
    HistoryEvent::new(T0, kind)
}

fn scheduled(id: i32, kind: EventKind) -> HistoryEvent {
    HistoryEvent {
        event_id: id,
        timestamp: T0,
        kind,
    }
}

fn started(name: &str, input: Option<&str>) -> EventKind {
    EventKind::ExecutionStarted {
        name: name.into(),
        instance_id: "instance-1".into(),
        input: input.map(str::to_owned),
        parent: None,
    }
}

fn task_scheduled(id: i32, name: &str) -> HistoryEvent {
    scheduled(
        id,
        EventKind::TaskScheduled {
            name: name.into(),
            input: None,
        },
    )
}

fn task_completed(id: i32, result: &str) -> HistoryEvent {
    event(EventKind::TaskCompleted {
        task_scheduled_id: id,
        result: Some(result.into()),
    })
}

fn schedule_action(id: i32, name: &str) -> Action {
    Action {
        id,
        kind: ActionKind::ScheduleTask {
            name: name.into(),
            input: None,
        },
    }
}

fn message(kind: EventKind) -> Message {
    Message {
        execution_id: None,
        event: event(kind),
    }
}

/// E1_HelloSequence after two of its three activities:
/// episode 0: OrchestratorStarted, ExecutionStarted, TaskScheduled#0, OrchestratorCompleted
/// episode 1: OrchestratorStarted, TaskCompleted#0, TaskScheduled#1, OrchestratorCompleted
/// episode 2: OrchestratorStarted, TaskCompleted#1, TaskScheduled#2, OrchestratorCompleted
fn hello_sequence_history() -> Vec<HistoryEvent> {
    vec![
        event(EventKind::OrchestratorStarted),
        event(started("E1_HelloSequence", None)),
        task_scheduled(0, "E1_SayHello"),
        event(EventKind::OrchestratorCompleted),
        event(EventKind::OrchestratorStarted),
        task_completed(0, "\"Hello Tokyo!\""),
        task_scheduled(1, "E1_SayHello"),
        event(EventKind::OrchestratorCompleted),
        event(EventKind::OrchestratorStarted),
        task_completed(1, "\"Hello Seattle!\""),
        task_scheduled(2, "E1_SayHello"),
        event(EventKind::OrchestratorCompleted),
    ]
}

#[test]
fn history_splits_into_episodes_of_inbound_events_and_recorded_actions() {
    let episodes = recorded_episodes(&hello_sequence_history());
    assert_eq!(episodes.len(), 3);
    assert_eq!(episodes[0].inbound.len(), 2, "OrchestratorStarted and ExecutionStarted");
    assert_eq!(episodes[0].actions, vec![task_scheduled(0, "E1_SayHello")]);
    assert_eq!(episodes[2].inbound[1], task_completed(1, "\"Hello Seattle!\""));
    assert_eq!(episodes[2].actions, vec![task_scheduled(2, "E1_SayHello")]);
}

#[test]
fn replay_that_returns_the_recorded_actions_matches() {
    for (index, episode) in recorded_episodes(&hello_sequence_history()).iter().enumerate() {
        let returned = vec![schedule_action(index as i32, "E1_SayHello")];
        assert_eq!(check_replayed_episode(index, &episode.actions, &returned), Ok(()));
    }
}

#[test]
fn replay_calling_another_activity_is_nondeterminism_naming_event_and_action() {
    let episodes = recorded_episodes(&hello_sequence_history());
    let error = check_replayed_episode(1, &episodes[1].actions, &[schedule_action(1, "E1_SayGoodbye")]).unwrap_err();
    let ReplayError::Nondeterminism(nondeterminism) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(nondeterminism.episode, 1);
    let message = error.to_string();
    assert!(
        message.contains("TaskScheduled 'E1_SayHello' (sequence number 1)"),
        "{message}"
    );
    assert!(
        message.contains("ScheduleTask 'E1_SayGoodbye' (sequence number 1)"),
        "{message}"
    );
}

#[test]
fn replay_issuing_a_timer_where_history_has_an_activity_is_nondeterminism() {
    let episodes = recorded_episodes(&hello_sequence_history());
    let timer = Action {
        id: 0,
        kind: ActionKind::CreateTimer { fire_at: at(5) },
    };
    let error = check_replayed_episode(0, &episodes[0].actions, &[timer]).unwrap_err();
    assert!(error.to_string().contains("CreateTimer"), "{error}");
}

#[test]
fn replay_that_skips_a_recorded_action_is_nondeterminism() {
    let episodes = recorded_episodes(&hello_sequence_history());
    let error = check_replayed_episode(0, &episodes[0].actions, &[]).unwrap_err();
    let ReplayError::Nondeterminism(nondeterminism) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(nondeterminism.returned, None);
    assert!(error.to_string().contains("did not issue it"), "{error}");
}

#[test]
fn replay_that_does_more_than_the_history_is_nondeterminism() {
    let episodes = recorded_episodes(&hello_sequence_history());
    let returned = vec![schedule_action(0, "E1_SayHello"), schedule_action(1, "E1_SayHello")];
    let error = check_replayed_episode(0, &episodes[0].actions, &returned).unwrap_err();
    let ReplayError::Nondeterminism(nondeterminism) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(nondeterminism.recorded, None);
    assert!(error.to_string().contains("which the history does not have"), "{error}");
}

#[test]
fn replay_with_shifted_sequence_numbers_is_nondeterminism() {
    let episodes = recorded_episodes(&hello_sequence_history());
    let error = check_replayed_episode(0, &episodes[0].actions, &[schedule_action(3, "E1_SayHello")]).unwrap_err();
    assert!(error.to_string().contains("sequence number 3"), "{error}");
}

#[test]
fn completion_matches_the_recorded_execution_completed() {
    let recorded = vec![event(EventKind::ExecutionCompleted {
        status: CompletionStatus::Completed,
        result: Some("1".into()),
        failure: None,
    })];
    let complete = Action {
        id: -1,
        kind: ActionKind::Complete {
            result: Some("1".into()),
        },
    };
    assert_eq!(check_replayed_episode(4, &recorded, &[complete]), Ok(()));
    let fail = Action {
        id: -1,
        kind: ActionKind::Fail {
            failure: FailureDetails::host("E", "boom"),
        },
    };
    assert!(check_replayed_episode(4, &recorded, &[fail]).is_err());
}

#[test]
fn state_tracks_pending_tasks_and_the_next_sequence_number() {
    let state = ExecutionState::from_history(&hello_sequence_history());
    assert!(state.started && !state.finished);
    assert_eq!(state.name, "E1_HelloSequence");
    assert_eq!(state.next_action_id, 3);
    assert_eq!(state.pending.keys().copied().collect::<Vec<_>>(), vec![2]);
    assert_eq!(state.history_len, 12);
}

#[test]
fn triage_accepts_the_completion_of_a_pending_task() {
    let state = ExecutionState::from_history(&hello_sequence_history());
    let messages = vec![Message {
        execution_id: Some(7),
        event: task_completed(2, "\"Hello London!\""),
    }];
    let triage = triage(&state, 7, &messages);
    assert_eq!(triage.dispositions, vec![Disposition::Accept]);
    assert!(triage.run_orchestrator);
}

#[test]
fn triage_drops_duplicate_and_unknown_completions() {
    let state = ExecutionState::from_history(&hello_sequence_history());
    let messages = vec![
        message(task_completed(0, "\"again\"").kind),
        message(task_completed(2, "\"Hello London!\"").kind),
        message(task_completed(2, "\"twice\"").kind),
        message(EventKind::TimerFired {
            timer_id: 2,
            fire_at: T0,
        }),
        message(task_completed(9, "\"never scheduled\"").kind),
    ];
    let triage = triage(&state, 7, &messages);
    assert_eq!(
        triage.dispositions,
        vec![
            Disposition::Drop,
            Disposition::Accept,
            Disposition::Drop,
            Disposition::Drop,
            Disposition::Drop
        ]
    );
    assert_eq!(triage.accepted.len(), 1);
}

#[test]
fn triage_drops_messages_of_another_execution() {
    let state = ExecutionState::from_history(&hello_sequence_history());
    let stale = Message {
        execution_id: Some(3),
        event: task_completed(2, "\"late\""),
    };
    let triage = triage(&state, 7, &[stale]);
    assert_eq!(triage.dispositions, vec![Disposition::Drop]);
    assert!(triage.is_noop());
}

#[test]
fn triage_keeps_events_raised_while_suspended_until_resume() {
    let mut history = hello_sequence_history();
    history.push(event(EventKind::ExecutionSuspended { reason: None }));
    let state = ExecutionState::from_history(&history);
    assert!(state.suspended);
    let raised = message(EventKind::EventRaised {
        name: "Approval".into(),
        input: Some("true".into()),
    });
    let suspended = triage(&state, 7, std::slice::from_ref(&raised));
    assert_eq!(suspended.dispositions, vec![Disposition::Defer]);
    assert!(!suspended.run_orchestrator);

    let resumed = triage(
        &state,
        7,
        &[raised, message(EventKind::ExecutionResumed { reason: None })],
    );
    assert_eq!(resumed.dispositions, vec![Disposition::Accept, Disposition::Accept]);
    assert!(resumed.run_orchestrator);
    assert!(
        matches!(resumed.accepted[0].kind, EventKind::EventRaised { .. }),
        "arrival order is kept"
    );
}

#[test]
fn triage_terminate_drops_everything_else() {
    let state = ExecutionState::from_history(&hello_sequence_history());
    let messages = vec![
        message(task_completed(2, "\"Hello London!\"").kind),
        message(EventKind::ExecutionTerminated {
            reason: Some("stop".into()),
        }),
    ];
    let triage = triage(&state, 7, &messages);
    assert_eq!(triage.terminate, Some(Some("stop".into())));
    assert!(triage.dispositions.iter().all(|d| *d == Disposition::Drop));
}

#[test]
fn triage_of_a_finished_execution_drops_everything() {
    let mut history = hello_sequence_history();
    history.push(event(EventKind::ExecutionCompleted {
        status: CompletionStatus::Completed,
        result: None,
        failure: None,
    }));
    let state = ExecutionState::from_history(&history);
    let triage = triage(
        &state,
        7,
        &[message(EventKind::EventRaised {
            name: "x".into(),
            input: None,
        })],
    );
    assert_eq!(triage.dispositions, vec![Disposition::Drop]);
}

#[test]
fn triage_delivers_execution_started_only_once() {
    let state = ExecutionState::default();
    let first = message(started("E1_HelloSequence", None));
    let triage = triage(
        &state,
        1,
        &[
            first.clone(),
            first,
            message(EventKind::EventRaised {
                name: "a".into(),
                input: None,
            }),
        ],
    );
    assert_eq!(
        triage.dispositions,
        vec![Disposition::Accept, Disposition::Drop, Disposition::Accept]
    );
}

#[test]
fn new_episode_records_actions_and_emits_their_effects() {
    let state = ExecutionState::from_history(&hello_sequence_history()[..4]);
    let accepted = vec![task_completed(0, "\"Hello Tokyo!\"")];
    let returned = EpisodeResult {
        actions: vec![
            schedule_action(1, "E1_SayHello"),
            Action {
                id: 2,
                kind: ActionKind::CreateTimer { fire_at: at(60) },
            },
            Action {
                id: 3,
                kind: ActionKind::CallSubOrchestration {
                    name: "Child".into(),
                    instance_id: None,
                    input: None,
                },
            },
        ],
        custom_status: Some("{\"step\":1}".into()),
    };
    let outcome = finish_episode("instance-1", &state, at(1), accepted, Some(returned)).unwrap();
    let kinds: Vec<&str> = outcome.new_history.iter().map(|event| event.kind.type_name()).collect();
    assert_eq!(
        kinds,
        vec![
            "OrchestratorStarted",
            "TaskCompleted",
            "TaskScheduled",
            "TimerCreated",
            "SubOrchestrationInstanceCreated",
            "OrchestratorCompleted"
        ]
    );
    assert_eq!(outcome.new_history[2].event_id, 1);
    assert_eq!(outcome.status, RuntimeStatus::Running);
    assert_eq!(outcome.custom_status.as_deref(), Some("{\"step\":1}"));
    assert_eq!(
        outcome.effects,
        vec![
            Effect::ScheduleActivity {
                task_id: 1,
                name: "E1_SayHello".into(),
                input: None
            },
            Effect::CreateTimer {
                timer_id: 2,
                fire_at: at(60)
            },
            Effect::StartSubOrchestration {
                task_id: 3,
                name: "Child".into(),
                instance_id: "instance-1:3".into(),
                input: None
            },
        ]
    );
}

#[test]
fn new_episode_rejects_an_action_with_a_reused_sequence_number() {
    let state = ExecutionState::from_history(&hello_sequence_history());
    let returned = EpisodeResult {
        actions: vec![schedule_action(1, "E1_SayHello")],
        custom_status: None,
    };
    let error = finish_episode("instance-1", &state, at(1), Vec::new(), Some(returned)).unwrap_err();
    assert!(error.to_string().contains("where 3 was expected"), "{error}");
}

#[test]
fn completing_a_sub_orchestration_notifies_its_parent() {
    let parent = ParentInstance {
        instance_id: "parent".into(),
        name: "P".into(),
        execution_id: 4,
        task_scheduled_id: 2,
    };
    let history = vec![
        event(EventKind::OrchestratorStarted),
        event(EventKind::ExecutionStarted {
            name: "Child".into(),
            instance_id: "parent:2".into(),
            input: None,
            parent: Some(parent.clone()),
        }),
    ];
    let state = ExecutionState::from_history(&history);
    let returned = EpisodeResult {
        actions: vec![Action {
            id: -1,
            kind: ActionKind::Complete {
                result: Some("42".into()),
            },
        }],
        custom_status: None,
    };
    let outcome = finish_episode("parent:2", &state, at(1), Vec::new(), Some(returned)).unwrap();
    assert_eq!(outcome.status, RuntimeStatus::Completed);
    assert_eq!(outcome.output.as_deref(), Some("42"));
    assert_eq!(
        outcome.effects,
        vec![Effect::NotifyParent {
            parent,
            event: EventKind::SubOrchestrationInstanceCompleted {
                task_scheduled_id: 2,
                result: Some("42".into())
            }
        }]
    );
}

#[test]
fn a_sub_orchestration_that_completes_in_its_first_episode_notifies_its_parent() {
    let parent = ParentInstance {
        instance_id: "parent".into(),
        name: "P".into(),
        execution_id: 4,
        task_scheduled_id: 0,
    };
    let accepted = vec![event(EventKind::ExecutionStarted {
        name: "Child".into(),
        instance_id: "parent:0".into(),
        input: Some("0".into()),
        parent: Some(parent.clone()),
    })];
    let returned = EpisodeResult {
        actions: vec![Action {
            id: -1,
            kind: ActionKind::Complete {
                result: Some("0".into()),
            },
        }],
        custom_status: None,
    };
    let fresh = ExecutionState::default();
    let outcome = finish_episode("parent:0", &fresh, at(1), accepted.clone(), Some(returned)).unwrap();
    assert_eq!(outcome.status, RuntimeStatus::Completed);
    assert_eq!(
        outcome.effects,
        vec![Effect::NotifyParent {
            parent: parent.clone(),
            event: EventKind::SubOrchestrationInstanceCompleted {
                task_scheduled_id: 0,
                result: Some("0".into()),
            },
        }]
    );
    let failed = end_episode(
        &fresh,
        at(1),
        accepted,
        None,
        Some(FailureDetails::host("Trap", "boom")),
    );
    assert!(
        matches!(
            &failed.effects[..],
            [Effect::NotifyParent {
                event: EventKind::SubOrchestrationInstanceFailed { .. },
                ..
            }]
        ),
        "{:?}",
        failed.effects
    );
}

#[test]
fn continue_as_new_ends_the_episode_with_a_restart_effect() {
    let state = ExecutionState::from_history(&hello_sequence_history()[..4]);
    let carried = vec![CarriedEvent {
        name: "Approval".into(),
        input: Some("true".into()),
    }];
    let returned = EpisodeResult {
        actions: vec![Action {
            id: -1,
            kind: ActionKind::ContinueAsNew {
                input: Some("2".into()),
                carried_events: carried.clone(),
            },
        }],
        custom_status: None,
    };
    let outcome = finish_episode("instance-1", &state, at(1), Vec::new(), Some(returned)).unwrap();
    assert_eq!(outcome.status, RuntimeStatus::ContinuedAsNew);
    assert_eq!(
        outcome.effects,
        vec![Effect::ContinueAsNew {
            input: Some("2".into()),
            carried_events: carried
        }]
    );
}

#[test]
fn termination_records_the_reason_as_output() {
    let state = ExecutionState::from_history(&hello_sequence_history());
    let outcome = end_episode(&state, at(2), Vec::new(), Some("buggy".into()), None);
    assert_eq!(outcome.status, RuntimeStatus::Terminated);
    assert_eq!(outcome.output.as_deref(), Some("\"buggy\""));
    let kinds: Vec<&str> = outcome.new_history.iter().map(|event| event.kind.type_name()).collect();
    assert_eq!(
        kinds,
        vec![
            "OrchestratorStarted",
            "ExecutionTerminated",
            "ExecutionCompleted",
            "OrchestratorCompleted"
        ]
    );
}

#[test]
fn host_failure_fails_the_execution_with_the_reason() {
    let state = ExecutionState::from_history(&hello_sequence_history());
    let failure = FailureDetails::host("NonDeterministicOrchestrationError", "diverged");
    let outcome = end_episode(&state, at(2), Vec::new(), None, Some(failure.clone()));
    assert_eq!(outcome.status, RuntimeStatus::Failed);
    assert_eq!(outcome.failure, Some(failure));
}

/// FailAlways: episode 0 schedules Fail#0; episode 1 delivers TaskFailed#0 and fails.
fn failed_history() -> Vec<HistoryEvent> {
    let failure = FailureDetails::host("FailAlwaysError", "Fail always fails");
    vec![
        event(EventKind::OrchestratorStarted),
        event(started("FailAlways", None)),
        task_scheduled(0, "Fail"),
        event(EventKind::OrchestratorCompleted),
        event(EventKind::OrchestratorStarted),
        event(EventKind::TaskFailed {
            task_scheduled_id: 0,
            failure: failure.clone(),
        }),
        event(EventKind::ExecutionCompleted {
            status: CompletionStatus::Failed,
            result: None,
            failure: Some(failure),
        }),
        event(EventKind::OrchestratorCompleted),
    ]
}

#[test]
fn rewind_forgets_the_final_failure_and_reissues_the_failed_activity() {
    let plan = rewind(&failed_history()).unwrap();
    let kinds: Vec<&str> = plan.history.iter().map(|event| event.kind.type_name()).collect();
    assert_eq!(
        kinds,
        vec![
            "OrchestratorStarted",
            "ExecutionStarted",
            "TaskScheduled",
            "OrchestratorCompleted",
            "OrchestratorStarted",
            "OrchestratorCompleted"
        ]
    );
    assert_eq!(plan.activities, vec![(0, "Fail".to_owned(), None)]);
    let state = ExecutionState::from_history(&plan.history);
    assert!(!state.finished && state.pending.contains_key(&0));
    // Replaying the rewound history must match: the last episode now records no action.
    for (index, episode) in recorded_episodes(&plan.history).iter().enumerate() {
        let returned: Vec<Action> = if index == 0 {
            vec![schedule_action(0, "Fail")]
        } else {
            Vec::new()
        };
        assert_eq!(check_replayed_episode(index, &episode.actions, &returned), Ok(()));
    }
}

#[test]
fn rewind_refuses_what_did_not_fail_in_a_task() {
    assert_eq!(rewind(&hello_sequence_history()), Err(RewindError::NotFailed));
    let mut own_failure = hello_sequence_history();
    own_failure.push(event(EventKind::OrchestratorStarted));
    own_failure.push(event(EventKind::ExecutionCompleted {
        status: CompletionStatus::Failed,
        result: None,
        failure: Some(FailureDetails::host("Oops", "bug")),
    }));
    assert_eq!(rewind(&own_failure), Err(RewindError::NothingToRewind));
}

fn account(key: &str) -> crate::history::EntityId {
    crate::history::EntityId::new("Account", key)
}

/// A critical section: episode 0 locks [account/a, account/b]; episode 1 gets the grant.
fn locked_history() -> Vec<HistoryEvent> {
    vec![
        event(EventKind::OrchestratorStarted),
        event(started("BankTransfer", None)),
        scheduled(
            0,
            EventKind::EntityLockRequested {
                entities: vec![account("a"), account("b")],
            },
        ),
        event(EventKind::OrchestratorCompleted),
        event(EventKind::OrchestratorStarted),
        event(EventKind::EntityLockGranted { task_scheduled_id: 0 }),
        scheduled(
            1,
            EventKind::EntityOperationCalled {
                entity: account("a"),
                operation: "balance".into(),
                input: None,
            },
        ),
        event(EventKind::OrchestratorCompleted),
    ]
}

#[test]
fn entity_names_are_case_insensitive_in_ids() {
    assert_eq!(
        crate::history::EntityId::new("Counter", "k"),
        crate::history::EntityId::new("COUNTER", "k")
    );
    let id = account("x@y");
    assert_eq!(crate::history::EntityId::from_storage_key(&id.storage_key()), Some(id));
}

#[test]
fn a_lock_request_is_sorted_and_sent_to_the_first_entity() {
    let state = ExecutionState::from_history(&locked_history()[..2]);
    let returned = EpisodeResult {
        actions: vec![Action {
            id: 0,
            kind: ActionKind::LockEntities {
                entities: vec![account("b"), account("a"), account("b")],
            },
        }],
        custom_status: None,
    };
    let outcome = finish_episode("transfer", &state, at(1), Vec::new(), Some(returned)).unwrap();
    assert_eq!(
        outcome.effects,
        vec![Effect::LockEntities {
            task_id: 0,
            entities: vec![account("a"), account("b")]
        }]
    );
}

#[test]
fn the_lock_grant_and_entity_answers_complete_pending_tasks() {
    let state = ExecutionState::from_history(&locked_history());
    assert_eq!(state.locks_held, vec![account("a"), account("b")]);
    let answer = message(EventKind::EntityOperationCompleted {
        task_scheduled_id: 1,
        result: Some("10".into()),
    });
    let stale = message(EventKind::EntityOperationCompleted {
        task_scheduled_id: 0,
        result: None,
    });
    let triage = triage(&state, 1, &[answer, stale]);
    assert_eq!(triage.dispositions, vec![Disposition::Accept, Disposition::Drop]);
}

#[test]
fn ending_inside_a_critical_section_releases_the_locks() {
    let state = ExecutionState::from_history(&locked_history());
    let returned = EpisodeResult {
        actions: vec![Action {
            id: -1,
            kind: ActionKind::Complete {
                result: Some("true".into()),
            },
        }],
        custom_status: None,
    };
    let outcome = finish_episode("transfer", &state, at(2), Vec::new(), Some(returned)).unwrap();
    assert!(outcome.effects.contains(&Effect::UnlockEntities {
        entities: vec![account("a"), account("b")]
    }));
}

#[test]
fn releasing_then_completing_does_not_release_twice() {
    let state = ExecutionState::from_history(&locked_history());
    let returned = EpisodeResult {
        actions: vec![
            Action {
                id: 2,
                kind: ActionKind::UnlockEntities {
                    entities: vec![account("a"), account("b")],
                },
            },
            Action {
                id: -1,
                kind: ActionKind::Complete { result: None },
            },
        ],
        custom_status: None,
    };
    let outcome = finish_episode("transfer", &state, at(2), Vec::new(), Some(returned)).unwrap();
    let unlocks = outcome
        .effects
        .iter()
        .filter(|effect| matches!(effect, Effect::UnlockEntities { .. }))
        .count();
    assert_eq!(unlocks, 1);
}

#[test]
fn replay_calling_another_entity_operation_is_nondeterminism() {
    let episodes = recorded_episodes(&locked_history());
    let returned = vec![Action {
        id: 1,
        kind: ActionKind::CallEntity {
            entity: account("a"),
            operation: "withdraw".into(),
            input: None,
        },
    }];
    let error = check_replayed_episode(1, &episodes[1].actions, &returned).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("EntityOperationCalled 'balance' on account/a"),
        "{message}"
    );
    assert!(message.contains("CallEntity 'withdraw' on account/a"), "{message}");
}

#[test]
fn a_nested_critical_section_is_an_invalid_action() {
    let state = ExecutionState::from_history(&locked_history());
    let returned = EpisodeResult {
        actions: vec![Action {
            id: 2,
            kind: ActionKind::LockEntities {
                entities: vec![account("c")],
            },
        }],
        custom_status: None,
    };
    let error = finish_episode("transfer", &state, at(2), Vec::new(), Some(returned)).unwrap_err();
    assert!(matches!(error, ReplayError::InvalidAction(_)), "{error}");
}

/// A guest that answers each episode with the next scripted actions, or fails on one.
struct ScriptedGuest {
    answers: std::collections::VecDeque<Result<Vec<Action>, &'static str>>,
    fed: Vec<(usize, bool, Timestamp)>,
}

impl EpisodeGuest for ScriptedGuest {
    type Error = &'static str;

    fn apply(
        &mut self,
        events: &[HistoryEvent],
        replaying: bool,
        time: Timestamp,
    ) -> impl std::future::Future<Output = Result<EpisodeResult, Self::Error>> + Send {
        self.fed.push((events.len(), replaying, time));
        let answer = self.answers.pop_front().expect("no more episodes than scripted");
        std::future::ready(answer.map(|actions| EpisodeResult {
            actions,
            custom_status: None,
        }))
    }
}

/// Drives a future whose guest never waits, as the scripted one does.
fn ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("a scripted guest never waits"),
    }
}

fn scripted(answers: Vec<Result<Vec<Action>, &'static str>>) -> ScriptedGuest {
    ScriptedGuest {
        answers: answers.into(),
        fed: Vec::new(),
    }
}

#[test]
fn the_replay_driver_feeds_every_recorded_episode_at_its_own_time() {
    let mut history = hello_sequence_history();
    history[4].timestamp = at(5);
    let mut guest = scripted(vec![
        Ok(vec![schedule_action(0, "E1_SayHello")]),
        Ok(vec![schedule_action(1, "E1_SayHello")]),
        Ok(vec![schedule_action(2, "E1_SayHello")]),
    ]);
    assert_eq!(ready(replay_history(&mut guest, &history)).unwrap(), 3);
    assert_eq!(guest.fed.len(), 3);
    assert!(guest.fed.iter().all(|(_, replaying, _)| *replaying));
    assert_eq!(guest.fed[0].2, T0);
    assert_eq!(
        guest.fed[1].2,
        at(5),
        "episode 1 runs at its OrchestratorStarted's time"
    );
    assert_eq!(guest.fed[0].0, 2, "OrchestratorStarted and ExecutionStarted");
}

#[test]
fn the_replay_driver_stops_at_a_divergence_naming_the_episode() {
    let mut guest = scripted(vec![
        Ok(vec![schedule_action(0, "E1_SayHello")]),
        Ok(vec![schedule_action(1, "Other")]),
    ]);
    let stop = ready(replay_history(&mut guest, &hello_sequence_history())).unwrap_err();
    assert_eq!(stop.episodes_fed(), 2);
    let ReplayStop::Diverged(error) = stop else {
        panic!("a divergence")
    };
    assert!(error.to_string().contains("replaying episode 1"), "{error}");
    assert!(error.to_string().contains("Other"), "{error}");
}

#[test]
fn the_replay_driver_stops_at_a_guest_failure() {
    let mut guest = scripted(vec![Ok(vec![schedule_action(0, "E1_SayHello")]), Err("trap")]);
    let stop = ready(replay_history(&mut guest, &hello_sequence_history())).unwrap_err();
    assert_eq!(stop.episodes_fed(), 2);
    assert!(matches!(
        stop,
        ReplayStop::Guest {
            episode: 1,
            error: "trap"
        }
    ));
}

/// Holds the lock of account/a since episode 1:
/// episode 0: OrchestratorStarted, ExecutionStarted, EntityLockRequested#0 [a], OrchestratorCompleted
/// episode 1: OrchestratorStarted, EntityLockGranted#0, OrchestratorCompleted
fn holding_a_lock() -> ExecutionState {
    let a = EntityId::new("account", "a");
    ExecutionState::from_history(&[
        event(EventKind::OrchestratorStarted),
        event(started("Transfer", None)),
        scheduled(0, EventKind::EntityLockRequested { entities: vec![a] }),
        event(EventKind::OrchestratorCompleted),
        event(EventKind::OrchestratorStarted),
        event(EventKind::EntityLockGranted { task_scheduled_id: 0 }),
        event(EventKind::OrchestratorCompleted),
    ])
}

fn lock_action(id: i32, entity: &str) -> Action {
    Action {
        id,
        kind: ActionKind::LockEntities {
            entities: vec![EntityId::new("account", entity)],
        },
    }
}

#[test]
fn a_critical_section_may_start_in_the_episode_that_releases_the_previous_one() {
    let returned = EpisodeResult {
        actions: vec![
            Action {
                id: 1,
                kind: ActionKind::UnlockEntities {
                    entities: vec![EntityId::new("account", "a")],
                },
            },
            lock_action(2, "b"),
        ],
        custom_status: None,
    };
    let outcome = finish_episode("instance-1", &holding_a_lock(), at(2), Vec::new(), Some(returned)).unwrap();
    assert!(
        outcome
            .effects
            .iter()
            .any(|effect| matches!(effect, Effect::LockEntities { task_id: 2, .. }))
    );
}

#[test]
fn a_lock_inside_a_held_critical_section_is_an_invalid_nested_lock() {
    let returned = EpisodeResult {
        actions: vec![lock_action(1, "b")],
        custom_status: None,
    };
    let error = finish_episode("instance-1", &holding_a_lock(), at(2), Vec::new(), Some(returned)).unwrap_err();
    assert!(error.to_string().contains("cannot be nested"), "{error}");
}
