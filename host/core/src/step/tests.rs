//! The rules of a step, on rows and messages built in code.

use super::*;
use crate::replay::{EpisodeOutcome, ExecutionState, RewindPlan};

fn record(id: &str, status: RuntimeStatus) -> InstanceRecord {
    let (mut record, _) = new_instance(7, id, "Orchestrator", None, None, Timestamp(1));
    record.runtime_status = status;
    record
}

fn owner(id: &str) -> EntityCaller {
    EntityCaller {
        instance_id: id.into(),
        execution_id: 3,
        task_id: 0,
    }
}

fn operation_from(sender: &str, name: &str) -> Message {
    entity_operation(
        name.into(),
        None,
        Some(owner(sender)),
        Some(sender.into()),
        Timestamp(5),
    )
}

fn lock_request(owner_id: &str, entities: Vec<EntityId>) -> Message {
    Message {
        execution_id: None,
        event: HistoryEvent::new(
            Timestamp(5),
            EventKind::EntityLockRequest {
                owner: owner(owner_id),
                entities,
                position: 0,
            },
        ),
    }
}

fn unlock(owner_id: &str) -> Message {
    Message {
        execution_id: None,
        event: HistoryEvent::new(Timestamp(5), EventKind::EntityUnlock { owner: owner_id.into() }),
    }
}

#[test]
fn a_start_replaces_a_finished_instance_but_not_a_running_one() {
    assert_eq!(start_blocked_by(None), None);
    assert_eq!(start_blocked_by(Some(&record("a", RuntimeStatus::Completed))), None);
    assert_eq!(start_blocked_by(Some(&record("a", RuntimeStatus::Failed))), None);
    assert_eq!(
        start_blocked_by(Some(&record("a", RuntimeStatus::Running))),
        Some(RuntimeStatus::Running)
    );
    assert_eq!(
        start_blocked_by(Some(&record("a", RuntimeStatus::Suspended))),
        Some(RuntimeStatus::Suspended)
    );
}

#[test]
fn a_fired_timer_delivers_timer_fired_to_its_execution_or_its_scheduled_signal() {
    let timer = TimerItem {
        instance_id: "a".into(),
        execution_id: 9,
        timer_id: 4,
        fire_at: Timestamp(100),
        message: None,
    };
    let message = timer_message(&timer, Timestamp(120));
    assert_eq!(message.execution_id, Some(9));
    assert_eq!(message.event.timestamp, Timestamp(120));
    assert_eq!(
        message.event.kind,
        EventKind::TimerFired {
            timer_id: 4,
            fire_at: Timestamp(100)
        }
    );
    let signal = operation_from("o", "add");
    let scheduled = TimerItem {
        message: Some(signal.clone()),
        ..timer
    };
    assert_eq!(timer_message(&scheduled, Timestamp(120)), signal);
}

#[test]
fn continue_as_new_commits_a_fresh_execution_with_its_carried_events() {
    let current = record("a", RuntimeStatus::Running);
    let state = ExecutionState::from_history(&[HistoryEvent::new(
        Timestamp(1),
        EventKind::ExecutionStarted {
            name: "Loop".into(),
            instance_id: "a".into(),
            input: None,
            parent: None,
        },
    )]);
    let outcome = EpisodeOutcome {
        new_history: vec![HistoryEvent::new(Timestamp(9), EventKind::OrchestratorStarted)],
        effects: vec![Effect::ContinueAsNew {
            input: Some("2".into()),
            carried_events: vec![crate::history::CarriedEvent {
                name: "Ping".into(),
                input: Some("1".into()),
            }],
        }],
        status: RuntimeStatus::ContinuedAsNew,
        output: None,
        failure: None,
        custom_status: None,
    };
    let mut ids = 40..;
    let commit = build_commit(&current, &state, vec![1, 2], outcome, Timestamp(9), &mut || {
        ids.next().unwrap()
    });
    assert!(commit.reset_history);
    assert!(commit.append.is_empty());
    assert_eq!(
        commit.execution_id, 7,
        "the commit is checked against the execution that ran"
    );
    assert_eq!(commit.record.execution_id, 40);
    assert_eq!(commit.record.runtime_status, RuntimeStatus::Running);
    assert_eq!(commit.record.input.as_deref(), Some("2"));
    let kinds: Vec<_> = commit
        .messages
        .iter()
        .map(|(target, message)| (target.as_str(), message.execution_id, message.event.kind.type_name()))
        .collect();
    assert_eq!(
        kinds,
        vec![("a", Some(40), "ExecutionStarted"), ("a", Some(40), "EventRaised")]
    );
}

#[test]
fn a_step_over_the_history_or_payload_limits_names_the_excess() {
    let current = record("a", RuntimeStatus::Running);
    let mut commit = unchanged_commit(&current, vec![], 10);
    let limits = StepLimits {
        history_events: 10,
        payload_bytes: 4,
    };
    assert_eq!(over_limits(&commit, &limits), None);
    commit.record.output = Some("\"long\"".into());
    assert_eq!(
        over_limits(&commit, &limits).as_deref(),
        Some("the orchestration's output is 6 bytes, over the payload limit of 4 bytes")
    );
    commit
        .append
        .push(HistoryEvent::new(Timestamp(2), EventKind::OrchestratorStarted));
    assert!(
        over_limits(&commit, &limits)
            .unwrap()
            .starts_with("the history would grow to 11 events")
    );
}

#[test]
fn a_locked_entity_runs_only_its_owners_operations_and_keeps_the_rest_waiting() {
    let messages = vec![
        (1, operation_from("other", "add")),
        (2, operation_from("holder", "get")),
    ];
    let triage = triage_entity_inbox(Some(owner("holder")), messages, |_| true, Timestamp(5));
    assert_eq!(triage.consumed, vec![2]);
    assert_eq!(triage.operations.len(), 1);
    assert_eq!(triage.operations[0].operation, "get");
    assert_eq!(triage.lock_owner, Some(owner("holder")));
}

#[test]
fn a_release_that_others_waited_for_ends_the_batch_so_they_go_first() {
    let messages = vec![
        (1, operation_from("other", "add")),
        (2, unlock("holder")),
        (3, operation_from("late", "add")),
    ];
    let triage = triage_entity_inbox(Some(owner("holder")), messages, |_| true, Timestamp(5));
    assert_eq!(triage.consumed, vec![2]);
    assert!(triage.operations.is_empty());
    assert_eq!(triage.lock_owner, None);
}

#[test]
fn a_lock_request_is_passed_on_in_order_and_granted_after_the_last_entity() {
    let (a, b) = (EntityId::new("account", "a"), EntityId::new("account", "b"));
    let triage = triage_entity_inbox(
        None,
        vec![(1, lock_request("o", vec![a.clone(), b.clone()]))],
        |_| true,
        Timestamp(5),
    );
    assert_eq!(triage.lock_owner, Some(owner("o")));
    assert_eq!(triage.messages.len(), 1);
    assert_eq!(triage.messages[0].0, b.storage_key());
    let (target, grant) = pass_lock_on(&owner("o"), vec![a, b], 1, Timestamp(5));
    assert_eq!(target, "o");
    assert_eq!(grant.execution_id, Some(3));
    assert_eq!(grant.event.kind, EventKind::EntityLockGranted { task_scheduled_id: 0 });
}

#[test]
fn a_lock_request_of_an_ended_orchestration_is_dropped_so_the_entity_stays_free() {
    let messages = vec![(1, lock_request("gone", vec![EntityId::new("account", "a")]))];
    assert_eq!(lock_requesters(&messages), vec![owner("gone")]);
    let triage = triage_entity_inbox(None, messages, |_| false, Timestamp(5));
    assert_eq!(triage.consumed, vec![1]);
    assert!(triage.messages.is_empty());
    assert_eq!(triage.lock_owner, None);
}

#[test]
fn a_failed_batch_answers_every_caller_and_keeps_the_previous_state() {
    let entity = EntityId::new("counter", "c");
    let previous = EntityRecord {
        id: entity.clone(),
        state: Some("5".into()),
        last_operation_time: Timestamp(1),
        lock_owner: None,
    };
    let triage = triage_entity_inbox(
        None,
        vec![(1, operation_from("x", "add")), (2, operation_from("y", "add"))],
        |_| true,
        Timestamp(5),
    );
    let failure = FailureDetails::host("OrchestratorTrapped", "boom");
    let commit = entity_commit(
        entity,
        Some(&previous),
        triage,
        Some(Err(failure)),
        Timestamp(6),
        &mut || 1,
        &mut || "new".into(),
    );
    assert_eq!(commit.consumed, vec![1, 2]);
    assert_eq!(commit.record.as_ref().unwrap().state.as_deref(), Some("5"));
    assert_eq!(commit.record.as_ref().unwrap().last_operation_time, Timestamp(6));
    let answered: Vec<_> = commit.messages.iter().map(|(target, _)| target.as_str()).collect();
    assert_eq!(answered, vec!["x", "y"]);
    assert!(
        commit
            .messages
            .iter()
            .all(|(_, message)| matches!(message.event.kind, EventKind::EntityOperationFailed { .. }))
    );
}

#[test]
fn an_entity_without_state_or_lock_is_deleted_and_its_starts_get_fresh_ids() {
    let entity = EntityId::new("counter", "c");
    let triage = triage_entity_inbox(None, vec![(1, operation_from("x", "delete"))], |_| true, Timestamp(5));
    let batch = EntityBatch {
        results: vec![Ok(None)],
        state: None,
        actions: vec![EntityAction::StartOrchestration {
            name: "Cleanup".into(),
            instance_id: None,
            input: None,
        }],
    };
    let commit = entity_commit(
        entity,
        None,
        triage,
        Some(Ok(batch)),
        Timestamp(6),
        &mut || 77,
        &mut || "generated".into(),
    );
    assert_eq!(commit.record, None);
    assert_eq!(commit.starts.len(), 1);
    assert_eq!(commit.starts[0].0.instance_id, "generated");
    assert_eq!(commit.starts[0].0.execution_id, 77);
}

#[test]
fn an_entity_result_over_the_payload_limit_fails_only_its_operation() {
    let entity = EntityId::new("counter", "c");
    let operations = vec![
        PendingOperation {
            operation: "small".into(),
            input: None,
            caller: None,
        },
        PendingOperation {
            operation: "big".into(),
            input: None,
            caller: None,
        },
    ];
    let mut batch = EntityBatch {
        results: vec![Ok(Some("1".into())), Ok(Some("123456".into()))],
        state: Some("1".into()),
        actions: vec![],
    };
    check_entity_batch(&mut batch, &entity, &operations, 4).unwrap();
    assert_eq!(batch.results[0], Ok(Some("1".into())));
    let Err(failure) = &batch.results[1] else {
        panic!("the big result fails")
    };
    assert_eq!(failure.error_type, "LimitExceeded");
    batch.state = Some("123456".into());
    let whole = check_entity_batch(&mut batch, &entity, &operations, 4).unwrap_err();
    assert!(whole.message.contains("the state of entity"), "{whole:?}");
}

#[test]
fn a_rewind_reissues_unfinished_work_and_replays_the_reports_of_finished_children() {
    let mut failed = record("parent", RuntimeStatus::Failed);
    failed.output = Some("\"boom\"".into());
    failed.app_version = Some("v1".into());
    let plan = RewindPlan {
        history: vec![HistoryEvent::new(Timestamp(1), EventKind::OrchestratorStarted)],
        activities: vec![(0, "Flaky".into(), None)],
        timers: vec![(1, Timestamp(50))],
        children: vec![],
    };
    let child = |id: &str, status| {
        let mut child = record(id, status);
        child.output = Some("42".into());
        child
    };
    let children = vec![
        (2, Some(child("done", RuntimeStatus::Completed))),
        (3, Some(child("broken", RuntimeStatus::Failed))),
        (4, Some(child("busy", RuntimeStatus::Running))),
        (5, None),
    ];
    let (commit, failed_children) = rewind_commit(&failed, plan, children, Timestamp(60));
    assert_eq!(commit.require_status, Some(RuntimeStatus::Failed));
    assert!(commit.reset_history);
    assert_eq!(commit.record.runtime_status, RuntimeStatus::Running);
    assert_eq!(commit.record.output, None);
    assert_eq!(commit.activities.len(), 1);
    assert_eq!(commit.activities[0].app_version.as_deref(), Some("v1"));
    assert_eq!(commit.timers[0].fire_at, Timestamp(50));
    assert_eq!(failed_children, vec!["broken".to_owned()]);
    assert_eq!(commit.messages.len(), 1);
    assert_eq!(
        commit.messages[0].1.event.kind,
        EventKind::SubOrchestrationInstanceCompleted {
            task_scheduled_id: 2,
            result: Some("42".into())
        }
    );
}
