//! Conversions between the WIT types the guest sees and the host's own: history events
//! in, actions, episode results and entity batches out, failures both ways.

use durable_core::history::{
    Action, ActionKind, CarriedEvent, CompletionStatus, EntityAction, EntityBatch, EntityId, EpisodeResult, EventKind,
    FailureDetails, HistoryEvent, Timestamp,
};

use crate::app::FunctionKind;
use crate::bindings::durable::functions::types as wit;
use crate::bindings::exports::durable::functions::entity::{BatchResult, EntityAction as WitEntityAction};
use crate::bindings::exports::durable::functions::registry::FunctionKind as WitFunctionKind;

fn failure_to_wit(failure: &FailureDetails) -> wit::FailureDetails {
    wit::FailureDetails {
        error_type: failure.error_type.clone(),
        message: failure.message.clone(),
        details: failure.details.clone(),
    }
}

pub(crate) fn failure_from_wit(failure: wit::FailureDetails) -> FailureDetails {
    FailureDetails {
        error_type: failure.error_type,
        message: failure.message,
        details: failure.details,
    }
}

/// The event as the guest sees it; `None` for host-only events (entity inbox messages),
/// which never reach an orchestration.
pub(crate) fn event_to_wit(event: &HistoryEvent) -> Option<wit::HistoryEvent> {
    use wit::EventKind as W;
    let kind = match &event.kind {
        EventKind::ExecutionStarted {
            name,
            instance_id,
            input,
            parent,
        } => W::ExecutionStarted(wit::ExecutionStarted {
            name: name.clone(),
            instance_id: instance_id.clone(),
            input: input.clone(),
            parent: parent.as_ref().map(|parent| wit::ParentInstance {
                instance_id: parent.instance_id.clone(),
                name: parent.name.clone(),
                task_scheduled_id: parent.task_scheduled_id,
            }),
        }),
        EventKind::OrchestratorStarted => W::OrchestratorStarted,
        EventKind::OrchestratorCompleted => W::OrchestratorCompleted,
        EventKind::TaskScheduled { name, input } => W::TaskScheduled(wit::TaskScheduled {
            name: name.clone(),
            input: input.clone(),
        }),
        EventKind::TaskCompleted {
            task_scheduled_id,
            result,
        } => W::TaskCompleted(wit::TaskCompleted {
            task_scheduled_id: *task_scheduled_id,
            result: result.clone(),
        }),
        EventKind::TaskFailed {
            task_scheduled_id,
            failure,
        } => W::TaskFailed(wit::TaskFailed {
            task_scheduled_id: *task_scheduled_id,
            failure: failure_to_wit(failure),
        }),
        EventKind::TimerCreated { fire_at } => W::TimerCreated(wit::TimerCreated { fire_at: fire_at.0 }),
        EventKind::TimerFired { timer_id, fire_at } => W::TimerFired(wit::TimerFired {
            timer_id: *timer_id,
            fire_at: fire_at.0,
        }),
        EventKind::EventRaised { name, input } => W::EventRaised(wit::EventRaised {
            name: name.clone(),
            input: input.clone(),
        }),
        EventKind::EventSent {
            instance_id,
            name,
            input,
        } => W::EventSent(wit::EventSent {
            instance_id: instance_id.clone(),
            name: name.clone(),
            input: input.clone(),
        }),
        EventKind::SubOrchestrationInstanceCreated {
            name,
            instance_id,
            input,
        } => W::SubOrchestrationInstanceCreated(wit::SubOrchestrationInstanceCreated {
            name: name.clone(),
            instance_id: instance_id.clone(),
            input: input.clone(),
        }),
        EventKind::SubOrchestrationInstanceCompleted {
            task_scheduled_id,
            result,
        } => W::SubOrchestrationInstanceCompleted(wit::SubOrchestrationInstanceCompleted {
            task_scheduled_id: *task_scheduled_id,
            result: result.clone(),
        }),
        EventKind::SubOrchestrationInstanceFailed {
            task_scheduled_id,
            failure,
        } => W::SubOrchestrationInstanceFailed(wit::SubOrchestrationInstanceFailed {
            task_scheduled_id: *task_scheduled_id,
            failure: failure_to_wit(failure),
        }),
        EventKind::ContinueAsNew { input } => W::ContinueAsNew(input.clone()),
        EventKind::ExecutionSuspended { reason } => W::ExecutionSuspended(reason.clone()),
        EventKind::ExecutionResumed { reason } => W::ExecutionResumed(reason.clone()),
        EventKind::ExecutionTerminated { reason } => W::ExecutionTerminated(reason.clone()),
        EventKind::ExecutionCompleted {
            status,
            result,
            failure,
        } => W::ExecutionCompleted(wit::ExecutionCompleted {
            status: match status {
                CompletionStatus::Completed => wit::OrchestrationStatus::Completed,
                CompletionStatus::Failed => wit::OrchestrationStatus::Failed,
                CompletionStatus::Terminated => wit::OrchestrationStatus::Terminated,
                CompletionStatus::ContinuedAsNew => wit::OrchestrationStatus::ContinuedAsNew,
            },
            result: result.clone(),
            failure: failure.as_ref().map(failure_to_wit),
        }),
        EventKind::EntityOperationCalled {
            entity,
            operation,
            input,
        } => W::EntityOperationCalled(wit::EntityOperationCalled {
            entity: entity_to_wit(entity),
            operation: operation.clone(),
            input: input.clone(),
        }),
        EventKind::EntityOperationSignaled {
            entity,
            operation,
            input,
            scheduled_time,
        } => W::EntityOperationSignaled(wit::EntityOperationSignaled {
            entity: entity_to_wit(entity),
            operation: operation.clone(),
            input: input.clone(),
            scheduled_time: scheduled_time.map(|time| time.0),
        }),
        EventKind::EntityLockRequested { entities } => {
            W::EntityLockRequested(entities.iter().map(entity_to_wit).collect())
        }
        EventKind::EntityLockGranted { task_scheduled_id } => W::EntityLockGranted(*task_scheduled_id),
        EventKind::EntityUnlockSent { entities } => W::EntityUnlockSent(entities.iter().map(entity_to_wit).collect()),
        EventKind::EntityOperationCompleted {
            task_scheduled_id,
            result,
        } => W::EntityOperationCompleted(wit::EntityOperationCompleted {
            task_scheduled_id: *task_scheduled_id,
            result: result.clone(),
        }),
        EventKind::EntityOperationFailed {
            task_scheduled_id,
            failure,
        } => W::EntityOperationFailed(wit::EntityOperationFailed {
            task_scheduled_id: *task_scheduled_id,
            failure: failure_to_wit(failure),
        }),
        EventKind::EntityOperation { .. } | EventKind::EntityLockRequest { .. } | EventKind::EntityUnlock { .. } => {
            return None;
        }
    };
    Some(wit::HistoryEvent {
        event_id: event.event_id,
        timestamp: event.timestamp.0,
        kind,
    })
}

pub(crate) fn entity_to_wit(entity: &EntityId) -> wit::EntityId {
    wit::EntityId {
        name: entity.name.clone(),
        key: entity.key.clone(),
    }
}

fn entity_from_wit(entity: wit::EntityId) -> EntityId {
    EntityId::new(&entity.name, &entity.key)
}

fn action_from_wit(action: wit::Action) -> Action {
    use wit::ActionKind as W;
    let kind = match action.kind {
        W::ScheduleTask(task) => ActionKind::ScheduleTask {
            name: task.name,
            input: task.input,
        },
        W::CreateTimer(timer) => ActionKind::CreateTimer {
            fire_at: Timestamp(timer.fire_at),
        },
        W::CallSubOrchestration(call) => ActionKind::CallSubOrchestration {
            name: call.name,
            instance_id: call.instance_id,
            input: call.input,
        },
        W::SendEvent(send) => ActionKind::SendEvent {
            instance_id: send.instance_id,
            name: send.name,
            input: send.input,
        },
        W::Complete(result) => ActionKind::Complete { result },
        W::Fail(failure) => ActionKind::Fail {
            failure: failure_from_wit(failure),
        },
        W::ContinueAsNew(next) => ActionKind::ContinueAsNew {
            input: next.input,
            carried_events: next
                .carried_events
                .into_iter()
                .map(|event| CarriedEvent {
                    name: event.name,
                    input: event.input,
                })
                .collect(),
        },
        W::CallEntity(call) => ActionKind::CallEntity {
            entity: entity_from_wit(call.entity),
            operation: call.operation,
            input: call.input,
        },
        W::SignalEntity(signal) => ActionKind::SignalEntity {
            entity: entity_from_wit(signal.entity),
            operation: signal.operation,
            input: signal.input,
            scheduled_time: signal.scheduled_time.map(Timestamp),
        },
        W::LockEntities(entities) => ActionKind::LockEntities {
            entities: entities.into_iter().map(entity_from_wit).collect(),
        },
        W::UnlockEntities(entities) => ActionKind::UnlockEntities {
            entities: entities.into_iter().map(entity_from_wit).collect(),
        },
    };
    Action { id: action.id, kind }
}

/// The episode's result as the host records it.
pub(crate) fn episode_result_from_wit(result: wit::EpisodeResult) -> EpisodeResult {
    EpisodeResult {
        actions: result.actions.into_iter().map(action_from_wit).collect(),
        custom_status: result.custom_status,
    }
}

/// The entity batch's results, state and actions as the host records them.
pub(crate) fn entity_batch_from_wit(batch: BatchResult) -> EntityBatch {
    EntityBatch {
        results: batch
            .results
            .into_iter()
            .map(|result| result.map_err(failure_from_wit))
            .collect(),
        state: batch.state,
        actions: batch
            .actions
            .into_iter()
            .map(|action| match action {
                WitEntityAction::SignalEntity(signal) => EntityAction::Signal {
                    entity: entity_from_wit(signal.entity),
                    operation: signal.operation,
                    input: signal.input,
                    scheduled_time: signal.scheduled_time.map(Timestamp),
                },
                WitEntityAction::StartOrchestration(start) => EntityAction::StartOrchestration {
                    name: start.name,
                    instance_id: start.instance_id,
                    input: start.input,
                },
            })
            .collect(),
    }
}

/// A function's kind as the registry lists it.
pub(crate) fn function_kind_from_wit(kind: WitFunctionKind) -> FunctionKind {
    match kind {
        WitFunctionKind::Orchestrator => FunctionKind::Orchestrator,
        WitFunctionKind::Activity => FunctionKind::Activity,
        WitFunctionKind::Entity => FunctionKind::Entity,
    }
}
