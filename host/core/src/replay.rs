//! Deterministic replay: from history and guest actions to new history, or a
//! nondeterminism error.
//!
//! Pure functions over [`crate::history`] types: no tokio, wasmtime, redb or hyper, so
//! every rule here is tested on histories built in code.
//!
//! An execution's history is a sequence of *episodes*. Each episode is
//! `OrchestratorStarted`, the inbound events it delivered (`ExecutionStarted`,
//! completions, raised events, ...), the events recorded for the actions the
//! orchestrator returned (`TaskScheduled`, `TimerCreated`, ...), possibly
//! `ExecutionCompleted`, and `OrchestratorCompleted`. To rebuild a lost orchestration
//! the runtime feeds it each recorded episode's inbound events again and checks, with
//! [`check_replayed_episode`], that it returns the recorded actions.

use std::collections::BTreeMap;
use std::fmt;

use crate::history::{
    Action, ActionKind, CarriedEvent, CompletionStatus, EntityId, EpisodeResult, EventKind, FailureDetails,
    HistoryEvent, Message, ParentInstance, RuntimeStatus, Timestamp,
};

/// A task the orchestration is waiting for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PendingTask {
    /// An activity, by name.
    Activity(String),
    /// A durable timer.
    Timer,
    /// A sub-orchestration, by name.
    SubOrchestration(String),
    /// An entity operation call.
    EntityCall(EntityId),
    /// A lock request on these entities.
    EntityLock(Vec<EntityId>),
}

/// What replay knows about one execution, folded from its history event by event.
///
/// Kept beside the live orchestration in the instance cache, so a step never re-reads
/// the history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExecutionState {
    /// The orchestrator's name, once `ExecutionStarted` is seen.
    pub name: String,
    /// The execution's input.
    pub input: Option<String>,
    /// Set for sub-orchestrations.
    pub parent: Option<ParentInstance>,
    /// True once `ExecutionStarted` is in the history.
    pub started: bool,
    /// True once `ExecutionCompleted` is in the history.
    pub finished: bool,
    /// True between `ExecutionSuspended` and `ExecutionResumed`.
    pub suspended: bool,
    /// The sequence number the next new action must carry.
    pub next_action_id: i32,
    /// Scheduled tasks without a completion, by sequence number.
    pub pending: BTreeMap<i32, PendingTask>,
    /// Number of events in the history.
    pub history_len: usize,
    /// Entities whose locks this execution holds (granted, not yet released).
    pub locks_held: Vec<EntityId>,
}

impl ExecutionState {
    /// Folds a whole history.
    pub fn from_history<'a>(history: impl IntoIterator<Item = &'a HistoryEvent>) -> Self {
        let mut state = ExecutionState::default();
        for event in history {
            state.observe(event);
        }
        state
    }

    /// The state an episode ends from: with the `ExecutionStarted` among `accepted` (the
    /// execution's first episode) already observed, so that even an execution that ends in
    /// its first episode knows its parent, whom it must notify.
    pub fn including_start(&self, accepted: &[HistoryEvent]) -> std::borrow::Cow<'_, ExecutionState> {
        let start = accepted
            .iter()
            .find(|event| matches!(event.kind, EventKind::ExecutionStarted { .. }));
        match start {
            Some(start) if !self.started => {
                let mut state = self.clone();
                state.observe(start);
                // The event is counted when the episode's new history is appended.
                state.history_len -= 1;
                std::borrow::Cow::Owned(state)
            }
            _ => std::borrow::Cow::Borrowed(self),
        }
    }

    /// Updates the state with one event appended to the history.
    pub fn observe(&mut self, event: &HistoryEvent) {
        self.history_len += 1;
        match &event.kind {
            EventKind::ExecutionStarted {
                name, input, parent, ..
            } => {
                self.started = true;
                self.name = name.clone();
                self.input = input.clone();
                self.parent = parent.clone();
            }
            EventKind::TaskScheduled { name, .. } => self.schedule(event.event_id, PendingTask::Activity(name.clone())),
            EventKind::TimerCreated { .. } => self.schedule(event.event_id, PendingTask::Timer),
            EventKind::SubOrchestrationInstanceCreated { name, .. } => {
                self.schedule(event.event_id, PendingTask::SubOrchestration(name.clone()))
            }
            EventKind::EventSent { .. } => {
                self.next_action_id = self.next_action_id.max(event.event_id.saturating_add(1))
            }
            EventKind::TaskCompleted { task_scheduled_id, .. }
            | EventKind::TaskFailed { task_scheduled_id, .. }
            | EventKind::SubOrchestrationInstanceCompleted { task_scheduled_id, .. }
            | EventKind::SubOrchestrationInstanceFailed { task_scheduled_id, .. }
            | EventKind::TimerFired {
                timer_id: task_scheduled_id,
                ..
            } => {
                self.pending.remove(task_scheduled_id);
            }
            EventKind::EntityOperationCalled { entity, .. } => {
                self.schedule(event.event_id, PendingTask::EntityCall(entity.clone()))
            }
            EventKind::EntityLockRequested { entities } => {
                self.schedule(event.event_id, PendingTask::EntityLock(entities.clone()))
            }
            EventKind::EntityOperationSignaled { .. } => {
                self.next_action_id = self.next_action_id.max(event.event_id.saturating_add(1))
            }
            EventKind::EntityUnlockSent { .. } => {
                self.next_action_id = self.next_action_id.max(event.event_id.saturating_add(1));
                self.locks_held.clear();
            }
            EventKind::EntityLockGranted { task_scheduled_id } => {
                if let Some(PendingTask::EntityLock(entities)) = self.pending.remove(task_scheduled_id) {
                    self.locks_held = entities;
                }
            }
            EventKind::EntityOperationCompleted { task_scheduled_id, .. }
            | EventKind::EntityOperationFailed { task_scheduled_id, .. } => {
                self.pending.remove(task_scheduled_id);
            }
            EventKind::ExecutionSuspended { .. } => self.suspended = true,
            EventKind::ExecutionResumed { .. } => self.suspended = false,
            EventKind::ExecutionCompleted { .. } => self.finished = true,
            EventKind::EntityOperation { .. }
            | EventKind::EntityLockRequest { .. }
            | EventKind::EntityUnlock { .. } => {}
            EventKind::OrchestratorStarted
            | EventKind::OrchestratorCompleted
            | EventKind::EventRaised { .. }
            | EventKind::ContinueAsNew { .. }
            | EventKind::ExecutionTerminated { .. } => {}
        }
    }

    fn schedule(&mut self, id: i32, task: PendingTask) {
        self.pending.insert(id, task);
        self.next_action_id = self.next_action_id.max(id.saturating_add(1));
    }

    /// Whether `event` completes a task this execution is waiting for.
    fn completes_pending(&self, event: &EventKind) -> bool {
        match event {
            EventKind::TaskCompleted { task_scheduled_id, .. } | EventKind::TaskFailed { task_scheduled_id, .. } => {
                matches!(self.pending.get(task_scheduled_id), Some(PendingTask::Activity(_)))
            }
            EventKind::TimerFired { timer_id, .. } => matches!(self.pending.get(timer_id), Some(PendingTask::Timer)),
            EventKind::SubOrchestrationInstanceCompleted { task_scheduled_id, .. }
            | EventKind::SubOrchestrationInstanceFailed { task_scheduled_id, .. } => {
                matches!(
                    self.pending.get(task_scheduled_id),
                    Some(PendingTask::SubOrchestration(_))
                )
            }
            EventKind::EntityOperationCompleted { task_scheduled_id, .. }
            | EventKind::EntityOperationFailed { task_scheduled_id, .. } => {
                matches!(self.pending.get(task_scheduled_id), Some(PendingTask::EntityCall(_)))
            }
            EventKind::EntityLockGranted { task_scheduled_id } => {
                matches!(self.pending.get(task_scheduled_id), Some(PendingTask::EntityLock(_)))
            }
            _ => false,
        }
    }

    /// Every entity this execution holds or has asked to lock: released when it ends.
    pub fn entities_to_unlock(&self) -> Vec<EntityId> {
        let mut entities = self.locks_held.clone();
        for task in self.pending.values() {
            if let PendingTask::EntityLock(requested) = task {
                entities.extend(requested.iter().cloned());
            }
        }
        entities.sort();
        entities.dedup();
        entities
    }
}

/// Whether an event records an action the orchestrator returned (rather than something
/// delivered to it).
pub fn is_action_event(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::TaskScheduled { .. }
            | EventKind::TimerCreated { .. }
            | EventKind::SubOrchestrationInstanceCreated { .. }
            | EventKind::EventSent { .. }
            | EventKind::EntityOperationCalled { .. }
            | EventKind::EntityOperationSignaled { .. }
            | EventKind::EntityLockRequested { .. }
            | EventKind::EntityUnlockSent { .. }
            | EventKind::ExecutionCompleted {
                status: CompletionStatus::Completed | CompletionStatus::Failed,
                ..
            }
    )
}

/// One recorded episode, split for replay.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEpisode {
    /// The events to feed the orchestration again, `OrchestratorStarted` first.
    pub inbound: Vec<HistoryEvent>,
    /// The events that recorded its actions, in order.
    pub actions: Vec<HistoryEvent>,
}

/// Splits a history into its episodes.
pub fn recorded_episodes(history: &[HistoryEvent]) -> Vec<RecordedEpisode> {
    let mut episodes: Vec<RecordedEpisode> = Vec::new();
    for event in history {
        match &event.kind {
            EventKind::OrchestratorStarted => episodes.push(RecordedEpisode {
                inbound: vec![event.clone()],
                actions: Vec::new(),
            }),
            EventKind::OrchestratorCompleted => {}
            kind => {
                if episodes.is_empty() {
                    // Defensive: a history that does not open with OrchestratorStarted still replays.
                    episodes.push(RecordedEpisode {
                        inbound: Vec::new(),
                        actions: Vec::new(),
                    });
                }
                let episode = episodes.last_mut().expect("pushed above");
                if is_action_event(kind) {
                    episode.actions.push(event.clone());
                } else {
                    episode.inbound.push(event.clone());
                }
            }
        }
    }
    episodes
}

/// The orchestrator did not do what its history says it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nondeterminism {
    /// The episode (0-based) in which replay diverged.
    pub episode: usize,
    /// The history's event at that point, described; `None` if the orchestrator did more
    /// than the history records.
    pub recorded: Option<String>,
    /// The orchestrator's action at that point, described; `None` if it did less.
    pub returned: Option<String>,
}

impl fmt::Display for Nondeterminism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nondeterministic orchestrator: replaying episode {}, ", self.episode)?;
        match (&self.recorded, &self.returned) {
            (Some(recorded), Some(returned)) => {
                write!(
                    f,
                    "the history has {recorded} but the orchestrator now returned {returned}"
                )
            }
            (Some(recorded), None) => write!(
                f,
                "the history has {recorded} but the orchestrator now did not issue it"
            ),
            (None, Some(returned)) => {
                write!(
                    f,
                    "the orchestrator now returned {returned}, which the history does not have"
                )
            }
            (None, None) => write!(f, "the orchestrator diverged"),
        }
    }
}

impl std::error::Error for Nondeterminism {}

fn describe_event(event: &HistoryEvent) -> String {
    let what = match &event.kind {
        EventKind::TaskScheduled { name, .. } => format!("TaskScheduled '{name}'"),
        EventKind::TimerCreated { fire_at } => format!("TimerCreated at {fire_at}"),
        EventKind::SubOrchestrationInstanceCreated { name, .. } => format!("SubOrchestrationInstanceCreated '{name}'"),
        EventKind::EventSent { instance_id, name, .. } => format!("EventSent '{name}' to '{instance_id}'"),
        EventKind::ExecutionCompleted { status, .. } => format!("ExecutionCompleted ({status:?})"),
        EventKind::EntityOperationCalled { entity, operation, .. } => {
            format!("EntityOperationCalled '{operation}' on {entity}")
        }
        EventKind::EntityOperationSignaled { entity, operation, .. } => {
            format!("EntityOperationSignaled '{operation}' to {entity}")
        }
        EventKind::EntityLockRequested { entities } => {
            format!("EntityLockRequested {}", crate::history::list_entities(entities))
        }
        EventKind::EntityUnlockSent { entities } => {
            format!("EntityUnlockSent {}", crate::history::list_entities(entities))
        }
        other => other.type_name().to_owned(),
    };
    if event.event_id >= 0 {
        format!("{what} (sequence number {})", event.event_id)
    } else {
        what
    }
}

fn describe_action(action: &Action) -> String {
    if action.id >= 0 {
        format!("{} (sequence number {})", action.describe(), action.id)
    } else {
        action.describe()
    }
}

fn action_matches(recorded: &HistoryEvent, returned: &Action) -> bool {
    if recorded.event_id != returned.id && recorded.event_id >= 0 {
        return false;
    }
    match (&recorded.kind, &returned.kind) {
        (EventKind::TaskScheduled { name: a, .. }, ActionKind::ScheduleTask { name: b, .. }) => a == b,
        (EventKind::TimerCreated { .. }, ActionKind::CreateTimer { .. }) => true,
        (
            EventKind::SubOrchestrationInstanceCreated {
                name: a,
                instance_id: recorded_id,
                ..
            },
            ActionKind::CallSubOrchestration {
                name: b, instance_id, ..
            },
        ) => a == b && instance_id.as_ref().is_none_or(|id| id == recorded_id),
        (
            EventKind::EventSent {
                instance_id: a,
                name: n,
                ..
            },
            ActionKind::SendEvent {
                instance_id: b,
                name: m,
                ..
            },
        ) => a == b && n == m,
        (
            EventKind::ExecutionCompleted {
                status: CompletionStatus::Completed,
                ..
            },
            ActionKind::Complete { .. },
        ) => true,
        (
            EventKind::ExecutionCompleted {
                status: CompletionStatus::Failed,
                ..
            },
            ActionKind::Fail { .. },
        ) => true,
        (
            EventKind::EntityOperationCalled {
                entity: a,
                operation: x,
                ..
            },
            ActionKind::CallEntity {
                entity: b,
                operation: y,
                ..
            },
        )
        | (
            EventKind::EntityOperationSignaled {
                entity: a,
                operation: x,
                ..
            },
            ActionKind::SignalEntity {
                entity: b,
                operation: y,
                ..
            },
        ) => a == b && x == y,
        (EventKind::EntityLockRequested { entities: a }, ActionKind::LockEntities { entities: b })
        | (EventKind::EntityUnlockSent { entities: a }, ActionKind::UnlockEntities { entities: b }) => a == b,
        _ => false,
    }
}

/// Checks that replaying episode `episode` returned exactly the recorded actions.
pub fn check_replayed_episode(
    episode: usize,
    recorded: &[HistoryEvent],
    returned: &[Action],
) -> Result<(), ReplayError> {
    for position in 0..recorded.len().max(returned.len()) {
        let (recorded, returned) = (recorded.get(position), returned.get(position));
        let matches = match (recorded, returned) {
            (Some(recorded), Some(returned)) => action_matches(recorded, returned),
            _ => false,
        };
        if !matches {
            return Err(ReplayError::Nondeterminism(Nondeterminism {
                episode,
                recorded: recorded.map(describe_event),
                returned: returned.map(describe_action),
            }));
        }
    }
    Ok(())
}

/// A live orchestration that replay feeds episodes to: the wasm guest in the host, a
/// scripted one in tests. `apply` runs one episode (`OrchestratorStarted` first) and returns
/// the actions the orchestration issued, with the sandbox clock at `time`.
pub trait EpisodeGuest {
    /// Why the guest could not run an episode (a trap, for wasm).
    type Error;

    /// Feeds one episode's inbound events; `replaying` is true for recorded ones.
    fn apply(
        &mut self,
        events: &[HistoryEvent],
        replaying: bool,
        time: Timestamp,
    ) -> impl std::future::Future<Output = Result<EpisodeResult, Self::Error>> + Send;
}

/// Why a replay stopped before the end of the history.
#[derive(Debug)]
pub enum ReplayStop<E> {
    /// The guest failed on episode `episode` (0-based).
    Guest {
        /// The episode.
        episode: usize,
        /// What the guest said.
        error: E,
    },
    /// The guest returned other actions than the history records.
    Diverged(ReplayError),
}

impl<E> ReplayStop<E> {
    /// How many episodes were fed before the replay stopped, the failing one included.
    pub fn episodes_fed(&self) -> usize {
        match self {
            ReplayStop::Guest { episode, .. } => episode + 1,
            ReplayStop::Diverged(ReplayError::Nondeterminism(nondeterminism)) => nondeterminism.episode + 1,
            ReplayStop::Diverged(_) => 0,
        }
    }
}

/// The one replay driver (the runtime's revive and `durable check` both use it): feeds
/// every recorded episode of `history` to `guest` with `replaying` set, one call per
/// episode at that episode's own time, and checks each returned the recorded actions.
pub async fn replay_history<G: EpisodeGuest>(
    guest: &mut G,
    history: &[HistoryEvent],
) -> Result<usize, ReplayStop<G::Error>> {
    replay_episodes(guest, &recorded_episodes(history)).await
}

/// [`replay_history`] over a history already split by [`recorded_episodes`].
pub async fn replay_episodes<G: EpisodeGuest>(
    guest: &mut G,
    episodes: &[RecordedEpisode],
) -> Result<usize, ReplayStop<G::Error>> {
    for (index, episode) in episodes.iter().enumerate() {
        let time = episode.inbound.first().map_or(Timestamp(0), |event| event.timestamp);
        let result = guest
            .apply(&episode.inbound, true, time)
            .await
            .map_err(|error| ReplayStop::Guest { episode: index, error })?;
        check_replayed_episode(index, &episode.actions, &result.actions).map_err(ReplayStop::Diverged)?;
    }
    Ok(episodes.len())
}

/// What to do with one inbox message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Deliver it in this episode (it becomes history).
    Accept,
    /// Remove it unread: stale, duplicate, or for a finished execution.
    Drop,
    /// Leave it in the inbox for a later episode (the instance is suspended).
    Defer,
}

/// The decision about a batch of inbox messages.
#[derive(Clone, Debug, PartialEq)]
pub struct Triage {
    /// One disposition per message, in order.
    pub dispositions: Vec<Disposition>,
    /// The accepted events, in order.
    pub accepted: Vec<HistoryEvent>,
    /// Set when a client terminated the instance; carries the reason.
    pub terminate: Option<Option<String>>,
    /// Whether the orchestrator must run: something it waits for arrived and it is not
    /// suspended.
    pub run_orchestrator: bool,
}

impl Triage {
    /// True if the batch changes nothing and needs no history.
    pub fn is_noop(&self) -> bool {
        self.accepted.is_empty() && self.terminate.is_none()
    }
}

/// Decides which inbox messages an episode of `state` (execution `execution_id`) takes.
///
/// Suspend, resume and terminate are applied first, in order; while the execution ends the
/// batch suspended, every other message stays in the inbox, so nothing raised during a
/// suspension is lost.
pub fn triage(state: &ExecutionState, execution_id: u64, messages: &[Message]) -> Triage {
    let mut dispositions = vec![Disposition::Drop; messages.len()];
    let mut accepted_at: Vec<usize> = Vec::new();
    let mut terminate = None;
    let mut suspended = state.suspended;
    let current = |message: &Message| message.execution_id.is_none_or(|id| id == execution_id);

    if !state.finished {
        for (index, message) in messages.iter().enumerate() {
            if !current(message) || terminate.is_some() {
                continue;
            }
            match &message.event.kind {
                EventKind::ExecutionTerminated { reason } => terminate = Some(reason.clone()),
                EventKind::ExecutionSuspended { .. } if !suspended => {
                    suspended = true;
                    dispositions[index] = Disposition::Accept;
                    accepted_at.push(index);
                }
                EventKind::ExecutionResumed { .. } if suspended => {
                    suspended = false;
                    dispositions[index] = Disposition::Accept;
                    accepted_at.push(index);
                }
                _ => {}
            }
        }
    }
    if terminate.is_some() {
        return Triage {
            dispositions: vec![Disposition::Drop; messages.len()],
            accepted: Vec::new(),
            terminate,
            run_orchestrator: false,
        };
    }

    let mut started = state.started;
    let mut seen_completions: Vec<i32> = Vec::new();
    let mut run_orchestrator = false;
    if !state.finished {
        for (index, message) in messages.iter().enumerate() {
            if !current(message) || dispositions[index] == Disposition::Accept {
                continue;
            }
            let kind = &message.event.kind;
            let deliverable = match kind {
                EventKind::ExecutionStarted { .. } => {
                    let first = !started;
                    started = true;
                    first
                }
                EventKind::EventRaised { .. } => true,
                EventKind::TaskCompleted {
                    task_scheduled_id: id, ..
                }
                | EventKind::TaskFailed {
                    task_scheduled_id: id, ..
                }
                | EventKind::SubOrchestrationInstanceCompleted {
                    task_scheduled_id: id, ..
                }
                | EventKind::SubOrchestrationInstanceFailed {
                    task_scheduled_id: id, ..
                }
                | EventKind::TimerFired { timer_id: id, .. }
                | EventKind::EntityOperationCompleted {
                    task_scheduled_id: id, ..
                }
                | EventKind::EntityOperationFailed {
                    task_scheduled_id: id, ..
                }
                | EventKind::EntityLockGranted { task_scheduled_id: id } => {
                    let fresh = state.completes_pending(kind) && !seen_completions.contains(id);
                    seen_completions.push(*id);
                    fresh
                }
                _ => false,
            };
            if !deliverable {
                continue;
            }
            if suspended || !started {
                dispositions[index] = Disposition::Defer;
            } else {
                dispositions[index] = Disposition::Accept;
                accepted_at.push(index);
                run_orchestrator = true;
            }
        }
    }
    accepted_at.sort_unstable();
    let accepted = accepted_at.iter().map(|&index| messages[index].event.clone()).collect();
    Triage {
        dispositions,
        accepted,
        terminate: None,
        run_orchestrator,
    }
}

/// A change the runtime must make outside the instance's own history.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send an operation to an entity; the result comes back to this task.
    CallEntity {
        /// The task's sequence number.
        task_id: i32,
        /// The entity.
        entity: EntityId,
        /// The operation.
        operation: String,
        /// Its input.
        input: Option<String>,
    },
    /// Send an operation to an entity, one-way, now or at `scheduled_time`.
    SignalEntity {
        /// The entity.
        entity: EntityId,
        /// The operation.
        operation: String,
        /// Its input.
        input: Option<String>,
        /// When to deliver it; `None` for now.
        scheduled_time: Option<Timestamp>,
    },
    /// Ask for the locks of `entities` (sorted), acquired one after the other.
    LockEntities {
        /// The task's sequence number.
        task_id: i32,
        /// The entities, sorted and without duplicates.
        entities: Vec<EntityId>,
    },
    /// Release locks.
    UnlockEntities {
        /// The entities.
        entities: Vec<EntityId>,
    },
    /// Queue an activity work item.
    ScheduleActivity {
        /// The task's sequence number.
        task_id: i32,
        /// The activity's name.
        name: String,
        /// Its input.
        input: Option<String>,
    },
    /// Register a durable timer.
    CreateTimer {
        /// The timer's sequence number.
        timer_id: i32,
        /// When it fires.
        fire_at: Timestamp,
    },
    /// Create a child instance.
    StartSubOrchestration {
        /// The task's sequence number in the parent.
        task_id: i32,
        /// The child orchestrator's name.
        name: String,
        /// The child's instance id.
        instance_id: String,
        /// Its input.
        input: Option<String>,
    },
    /// Deliver an event to another instance (dropped if there is none).
    SendEvent {
        /// The target instance.
        instance_id: String,
        /// The event's name.
        name: String,
        /// Its payload.
        input: Option<String>,
    },
    /// Report this sub-orchestration's end to its parent.
    NotifyParent {
        /// The parent.
        parent: ParentInstance,
        /// `SubOrchestrationInstanceCompleted` or `SubOrchestrationInstanceFailed`.
        event: EventKind,
    },
    /// Replace this execution's history with a new execution.
    ContinueAsNew {
        /// The next execution's input.
        input: Option<String>,
        /// Raised events the next execution receives first.
        carried_events: Vec<CarriedEvent>,
    },
}

/// The result of one new episode: history to append, effects, and the new status.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeOutcome {
    /// Events to append to the history, `OrchestratorStarted` first.
    pub new_history: Vec<HistoryEvent>,
    /// Effects outside the history.
    pub effects: Vec<Effect>,
    /// The instance's status after the episode (`ContinuedAsNew` means: restart).
    pub status: RuntimeStatus,
    /// The output (JSON) when completed, or the termination reason.
    pub output: Option<String>,
    /// Why it failed.
    pub failure: Option<FailureDetails>,
    /// The custom status after the episode; `None` leaves the stored one unchanged.
    pub custom_status: Option<String>,
}

/// Why replay cannot accept what the orchestrator returned; the instance fails with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// Replaying a recorded episode produced other actions than the history records.
    #[error(transparent)]
    Nondeterminism(#[from] Nondeterminism),
    /// A new action is malformed (for example, a reused sequence number).
    #[error("invalid action from orchestrator: {0}")]
    InvalidAction(String),
}

impl ReplayError {
    /// The error type recorded in the instance's failure details.
    pub fn error_type(&self) -> &'static str {
        match self {
            ReplayError::Nondeterminism(_) => "NonDeterministicOrchestrationError",
            ReplayError::InvalidAction(_) => "InvalidActionError",
        }
    }
}

/// The id a sub-orchestration gets when the orchestrator names none.
pub fn default_sub_orchestration_id(parent_instance_id: &str, task_id: i32) -> String {
    format!("{parent_instance_id}:{task_id}")
}

/// Builds the outcome of a new episode from the accepted events and what the
/// orchestrator returned for them (`None` if it was not run).
pub fn finish_episode(
    instance_id: &str,
    state: &ExecutionState,
    now: Timestamp,
    accepted: Vec<HistoryEvent>,
    returned: Option<EpisodeResult>,
) -> Result<EpisodeOutcome, ReplayError> {
    let state = &*state.including_start(&accepted);
    let mut new_history = Vec::with_capacity(accepted.len() + 4);
    new_history.push(HistoryEvent::new(now, EventKind::OrchestratorStarted));
    let mut suspended = state.suspended;
    for event in &accepted {
        match event.kind {
            EventKind::ExecutionSuspended { .. } => suspended = true,
            EventKind::ExecutionResumed { .. } => suspended = false,
            _ => {}
        }
    }
    new_history.extend(accepted);
    let mut outcome = EpisodeOutcome {
        new_history,
        effects: Vec::new(),
        status: if suspended {
            RuntimeStatus::Suspended
        } else {
            RuntimeStatus::Running
        },
        output: None,
        failure: None,
        custom_status: None,
    };
    let Some(returned) = returned else {
        outcome
            .new_history
            .push(HistoryEvent::new(now, EventKind::OrchestratorCompleted));
        return Ok(outcome);
    };
    outcome.custom_status = returned.custom_status;
    let mut next_id = state.next_action_id;
    // A lock held from an earlier episode ends with the unlock issued in this one, after
    // which a new critical section may start; a lock issued here starts one.
    let mut in_critical_section = !state.locks_held.is_empty();
    for action in returned.actions {
        if action.id >= 0 {
            if action.id != next_id {
                return Err(ReplayError::InvalidAction(format!(
                    "{} carries sequence number {} where {next_id} was expected",
                    action.describe(),
                    action.id
                )));
            }
            next_id = next_id.checked_add(1).ok_or_else(|| {
                ReplayError::InvalidAction(format!("{} exhausts the sequence numbers", action.describe()))
            })?;
        }
        let id = action.id;
        let scheduled = |kind| HistoryEvent {
            event_id: id,
            timestamp: now,
            kind,
        };
        match action.kind {
            ActionKind::ScheduleTask { name, input } => {
                outcome.new_history.push(scheduled(EventKind::TaskScheduled {
                    name: name.clone(),
                    input: input.clone(),
                }));
                outcome.effects.push(Effect::ScheduleActivity {
                    task_id: id,
                    name,
                    input,
                });
            }
            ActionKind::CreateTimer { fire_at } => {
                outcome.new_history.push(scheduled(EventKind::TimerCreated { fire_at }));
                outcome.effects.push(Effect::CreateTimer { timer_id: id, fire_at });
            }
            ActionKind::CallSubOrchestration {
                name,
                instance_id: child,
                input,
            } => {
                let child = child.unwrap_or_else(|| default_sub_orchestration_id(instance_id, id));
                outcome
                    .new_history
                    .push(scheduled(EventKind::SubOrchestrationInstanceCreated {
                        name: name.clone(),
                        instance_id: child.clone(),
                        input: input.clone(),
                    }));
                outcome.effects.push(Effect::StartSubOrchestration {
                    task_id: id,
                    name,
                    instance_id: child,
                    input,
                });
            }
            ActionKind::SendEvent {
                instance_id: target,
                name,
                input,
            } => {
                outcome.new_history.push(scheduled(EventKind::EventSent {
                    instance_id: target.clone(),
                    name: name.clone(),
                    input: input.clone(),
                }));
                outcome.effects.push(Effect::SendEvent {
                    instance_id: target,
                    name,
                    input,
                });
            }
            ActionKind::Complete { result } => {
                complete(&mut outcome, state, now, CompletionStatus::Completed, result, None);
                break;
            }
            ActionKind::Fail { failure } => {
                complete(&mut outcome, state, now, CompletionStatus::Failed, None, Some(failure));
                break;
            }
            ActionKind::ContinueAsNew { input, carried_events } => {
                outcome.status = RuntimeStatus::ContinuedAsNew;
                release_locks(&mut outcome, state);
                outcome.effects.push(Effect::ContinueAsNew { input, carried_events });
                break;
            }
            ActionKind::CallEntity {
                entity,
                operation,
                input,
            } => {
                outcome.new_history.push(scheduled(EventKind::EntityOperationCalled {
                    entity: entity.clone(),
                    operation: operation.clone(),
                    input: input.clone(),
                }));
                outcome.effects.push(Effect::CallEntity {
                    task_id: id,
                    entity,
                    operation,
                    input,
                });
            }
            ActionKind::SignalEntity {
                entity,
                operation,
                input,
                scheduled_time,
            } => {
                outcome.new_history.push(scheduled(EventKind::EntityOperationSignaled {
                    entity: entity.clone(),
                    operation: operation.clone(),
                    input: input.clone(),
                    scheduled_time,
                }));
                outcome.effects.push(Effect::SignalEntity {
                    entity,
                    operation,
                    input,
                    scheduled_time,
                });
            }
            ActionKind::LockEntities { mut entities } => {
                entities.sort();
                entities.dedup();
                if entities.is_empty() || in_critical_section {
                    return Err(ReplayError::InvalidAction(format!(
                        "LockEntities {} (a critical section needs at least one entity and cannot be nested)",
                        crate::history::list_entities(&entities)
                    )));
                }
                outcome.new_history.push(scheduled(EventKind::EntityLockRequested {
                    entities: entities.clone(),
                }));
                outcome.effects.push(Effect::LockEntities { task_id: id, entities });
                in_critical_section = true;
            }
            ActionKind::UnlockEntities { entities } => {
                in_critical_section = false;
                outcome.new_history.push(scheduled(EventKind::EntityUnlockSent {
                    entities: entities.clone(),
                }));
                outcome.effects.push(Effect::UnlockEntities { entities });
            }
        }
    }
    outcome
        .new_history
        .push(HistoryEvent::new(now, EventKind::OrchestratorCompleted));
    Ok(outcome)
}

fn complete(
    outcome: &mut EpisodeOutcome,
    state: &ExecutionState,
    now: Timestamp,
    status: CompletionStatus,
    result: Option<String>,
    failure: Option<FailureDetails>,
) {
    outcome.new_history.push(HistoryEvent::new(
        now,
        EventKind::ExecutionCompleted {
            status,
            result: result.clone(),
            failure: failure.clone(),
        },
    ));
    if let Some(parent) = &state.parent {
        let task_scheduled_id = parent.task_scheduled_id;
        let event = match &failure {
            None => EventKind::SubOrchestrationInstanceCompleted {
                task_scheduled_id,
                result: result.clone(),
            },
            Some(failure) => EventKind::SubOrchestrationInstanceFailed {
                task_scheduled_id,
                failure: failure.clone(),
            },
        };
        outcome.effects.push(Effect::NotifyParent {
            parent: parent.clone(),
            event,
        });
    }
    release_locks(outcome, state);
    outcome.status = status.into();
    outcome.output = result;
    outcome.failure = failure;
}

/// When an execution ends, every lock it holds or asked for is released (an unlock from a
/// non-owner is ignored by the entity, so releasing too much is harmless).
fn release_locks(outcome: &mut EpisodeOutcome, state: &ExecutionState) {
    let mut entities = state.entities_to_unlock();
    for effect in &outcome.effects {
        match effect {
            Effect::LockEntities {
                entities: requested, ..
            } => entities.extend(requested.iter().cloned()),
            Effect::UnlockEntities { entities: released } => entities.retain(|entity| !released.contains(entity)),
            _ => {}
        }
    }
    entities.sort();
    entities.dedup();
    if !entities.is_empty() {
        outcome.effects.push(Effect::UnlockEntities { entities });
    }
}

/// The outcome of an episode that ends the execution without the orchestrator deciding:
/// a client terminated it (`failure` is `None`, `reason` the termination reason) or the
/// host failed it (nondeterminism, a trap, an invalid action).
pub fn end_episode(
    state: &ExecutionState,
    now: Timestamp,
    accepted: Vec<HistoryEvent>,
    reason: Option<String>,
    failure: Option<FailureDetails>,
) -> EpisodeOutcome {
    let state = &*state.including_start(&accepted);
    let mut new_history = vec![HistoryEvent::new(now, EventKind::OrchestratorStarted)];
    new_history.extend(accepted);
    let mut outcome = EpisodeOutcome {
        new_history,
        effects: Vec::new(),
        status: RuntimeStatus::Running,
        output: None,
        failure: None,
        custom_status: None,
    };
    match failure {
        None => {
            let reason_json = reason.map(|reason| serde_json::Value::String(reason).to_string());
            outcome.new_history.push(HistoryEvent::new(
                now,
                EventKind::ExecutionTerminated {
                    reason: reason_json.clone(),
                },
            ));
            let terminated = FailureDetails::host("Terminated", "the instance was terminated");
            complete(
                &mut outcome,
                state,
                now,
                CompletionStatus::Terminated,
                reason_json,
                None,
            );
            if let Some(Effect::NotifyParent { event, .. }) = outcome.effects.last_mut() {
                *event = EventKind::SubOrchestrationInstanceFailed {
                    task_scheduled_id: state.parent.as_ref().map_or(-1, |parent| parent.task_scheduled_id),
                    failure: terminated,
                };
            }
        }
        Some(failure) => complete(&mut outcome, state, now, CompletionStatus::Failed, None, Some(failure)),
    }
    outcome
        .new_history
        .push(HistoryEvent::new(now, EventKind::OrchestratorCompleted));
    outcome
}

/// How to bring a failed execution back to life (Durable Functions' rewind).
#[derive(Clone, Debug, PartialEq)]
pub struct RewindPlan {
    /// The history without the final episode's failures and without `ExecutionCompleted`.
    pub history: Vec<HistoryEvent>,
    /// Activities scheduled and not completed in that history: run them again.
    pub activities: Vec<(i32, String, Option<String>)>,
    /// Timers created and not fired: create them again.
    pub timers: Vec<(i32, Timestamp)>,
    /// Sub-orchestrations started and not finished: (task id, child instance id).
    pub children: Vec<(i32, String)>,
}

/// Why an execution cannot be rewound.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RewindError {
    /// The execution did not end Failed.
    #[error("only a Failed instance can be rewound")]
    NotFailed,
    /// It failed in its own code, not because an activity or sub-orchestration failed.
    #[error("the instance failed in its own code, not in an activity or sub-orchestration: there is nothing to re-run")]
    NothingToRewind,
}

/// Plans a rewind: the failures of the episode that ended the execution are forgotten, and
/// every task left pending is issued again. Earlier, handled failures stay in the history, so
/// the orchestrator replays exactly as before up to the failure.
pub fn rewind(history: &[HistoryEvent]) -> Result<RewindPlan, RewindError> {
    let failed_end = history.iter().rposition(|event| {
        matches!(
            event.kind,
            EventKind::ExecutionCompleted {
                status: CompletionStatus::Failed,
                ..
            }
        )
    });
    let Some(end) = failed_end else {
        return Err(RewindError::NotFailed);
    };
    let episode_start = history[..end]
        .iter()
        .rposition(|event| matches!(event.kind, EventKind::OrchestratorStarted))
        .unwrap_or(0);
    let is_failure = |event: &HistoryEvent| {
        matches!(
            event.kind,
            EventKind::TaskFailed { .. } | EventKind::SubOrchestrationInstanceFailed { .. }
        )
    };
    if !history[episode_start..end].iter().any(is_failure) {
        return Err(RewindError::NothingToRewind);
    }
    let kept: Vec<HistoryEvent> = history
        .iter()
        .enumerate()
        .filter(|(index, event)| *index != end && !(*index >= episode_start && *index < end && is_failure(event)))
        .map(|(_, event)| event.clone())
        .collect();
    let state = ExecutionState::from_history(&kept);
    let mut plan = RewindPlan {
        history: kept,
        activities: Vec::new(),
        timers: Vec::new(),
        children: Vec::new(),
    };
    for event in &plan.history {
        if !state.pending.contains_key(&event.event_id) {
            continue;
        }
        match &event.kind {
            EventKind::TaskScheduled { name, input } => {
                plan.activities.push((event.event_id, name.clone(), input.clone()))
            }
            EventKind::TimerCreated { fire_at } => plan.timers.push((event.event_id, *fire_at)),
            EventKind::SubOrchestrationInstanceCreated { instance_id, .. } => {
                plan.children.push((event.event_id, instance_id.clone()))
            }
            _ => {}
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests;
