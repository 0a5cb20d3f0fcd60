//! [`OrchestrationContext`]: everything an orchestrator may do, and [`EntityLock`], the
//! critical section it holds on entities.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::types::{
    ActionKind, CallSubOrchestration, CreateTimer, EntityOperationCalled, EntityOperationSignaled, ScheduleTask,
    SendEvent,
};
use crate::entity::EntityId;
use crate::error::{DESERIALIZATION_ERROR, Error, SERIALIZATION_ERROR, TaskError, TaskKind};
use crate::retry::RetryOptions;
use crate::state::{Completion, PendingKind, State};
use crate::task::{Task, TaskAll, TaskAny};
use crate::time::{Micros, from_system_time, to_iso8601, to_system_time};
use crate::{guid, json};

/// The handle an orchestrator uses to call activities, sub-orchestrators and entities,
/// create timers, wait for external events and read its input.
///
/// Orchestrators run by replay: the code runs again from the start whenever the host has to
/// rebuild the orchestration, and must then make the same calls in the same order. So an
/// orchestrator reads time through [`current_utc_datetime`](Self::current_utc_datetime),
/// makes GUIDs with [`new_guid`](Self::new_guid), does I/O only in activities, and iterates
/// no `HashMap` where the order decides which calls it makes.
///
/// Cloning is cheap; all clones refer to the same orchestration. The context is not `Send`:
/// an orchestration runs on one thread.
#[derive(Clone)]
pub struct OrchestrationContext {
    state: Rc<RefCell<State>>,
}

impl OrchestrationContext {
    pub(crate) fn new(state: Rc<RefCell<State>>) -> Self {
        Self { state }
    }

    /// The id of this orchestration instance.
    pub fn instance_id(&self) -> String {
        self.state.borrow().instance_id.clone()
    }

    /// The name of this orchestrator function.
    pub fn name(&self) -> String {
        self.state.borrow().name.clone()
    }

    /// Whether the code is running again over history it already produced. Useful to skip
    /// logging that would otherwise repeat on every replay.
    pub fn is_replaying(&self) -> bool {
        self.state.borrow().is_replaying
    }

    /// The orchestration's current time: when the current episode started. It is the same
    /// on every replay.
    pub fn current_utc_datetime(&self) -> SystemTime {
        to_system_time(self.now())
    }

    /// A GUID that is the same on every replay and different for every call: a version 5
    /// UUID of the instance id, the current time and a call counter.
    pub fn new_guid(&self) -> String {
        let mut state = self.state.borrow_mut();
        let name = format!("{}_{}_{}", state.instance_id, to_iso8601(state.now), state.guid_counter);
        state.guid_counter += 1;
        guid::uuid_v5(&name)
    }

    /// Decodes the orchestration's input; an absent input decodes as JSON `null`.
    ///
    /// Tolerant of double-encoded input: a JSON string that holds the JSON of a `T` decodes
    /// as that `T`.
    pub fn get_input<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let state = self.state.borrow();
        json::decode(state.input.as_deref()).map_err(|error| {
            Error::new(
                DESERIALIZATION_ERROR,
                format!(
                    "the input of orchestrator '{}' could not be decoded: {error}",
                    state.name
                ),
            )
        })
    }

    /// Schedules activity `name` with `input` and returns the task of its result.
    pub fn call_activity<O: DeserializeOwned + 'static>(&self, name: &str, input: impl Serialize) -> Task<O> {
        self.call(TaskKind::Activity, name, None, &input, schedule_task(name))
    }

    /// Like [`call_activity`](Self::call_activity), retrying failed attempts as `retry`
    /// says. The task fails with the last attempt's error.
    pub fn call_activity_with_retry<O: DeserializeOwned + 'static>(
        &self,
        name: &str,
        retry: &RetryOptions,
        input: impl Serialize,
    ) -> Task<O> {
        self.call(
            TaskKind::Activity,
            name,
            Some(retry.clone()),
            &input,
            schedule_task(name),
        )
    }

    /// Starts orchestrator `name` as a sub-orchestration and returns the task of its output.
    /// With `instance_id` `None` the host derives a deterministic id from this instance's.
    pub fn call_sub_orchestrator<O: DeserializeOwned + 'static>(
        &self,
        name: &str,
        instance_id: Option<&str>,
        input: impl Serialize,
    ) -> Task<O> {
        self.call(
            TaskKind::SubOrchestration,
            name,
            None,
            &input,
            call_sub_orchestration(name, instance_id),
        )
    }

    /// Like [`call_sub_orchestrator`](Self::call_sub_orchestrator), retrying failed attempts
    /// as `retry` says.
    pub fn call_sub_orchestrator_with_retry<O: DeserializeOwned + 'static>(
        &self,
        name: &str,
        instance_id: Option<&str>,
        retry: &RetryOptions,
        input: impl Serialize,
    ) -> Task<O> {
        self.call(
            TaskKind::SubOrchestration,
            name,
            Some(retry.clone()),
            &input,
            call_sub_orchestration(name, instance_id),
        )
    }

    /// Creates a durable timer that fires at `fire_at`. Compute the time from
    /// [`current_utc_datetime`](Self::current_utc_datetime), never from the wall clock.
    pub fn create_timer(&self, fire_at: SystemTime) -> Task<()> {
        let fired = self.timer_at(from_system_time(fire_at));
        Task::new(async move {
            // A timer's outcome carries nothing; only that it came matters.
            let _ = fired.await;
            Ok(())
        })
    }

    /// Waits for an external event named `name` (case-insensitive) and decodes its payload.
    ///
    /// Events raised before anyone waits for them are kept and handed out in arrival order;
    /// of several waiters for one name, the oldest gets the next event.
    pub fn wait_for_external_event<T: DeserializeOwned + 'static>(&self, name: &str) -> Task<T> {
        let waiter = State::wait(&self.state, name);
        let name = name.to_owned();
        Task::new(async move {
            let event = waiter.await;
            json::decode(event.input.as_deref())
                .map_err(|error| TaskError::decode(TaskKind::ExternalEvent, &name, &error))
        })
    }

    /// Sends event `name` with `input` to orchestration `instance_id`, without waiting.
    pub fn send_event(&self, instance_id: &str, name: &str, input: impl Serialize) {
        let Some(input) = self.encode(&input, "the event payload") else {
            return;
        };
        self.state.borrow_mut().issue(ActionKind::SendEvent(SendEvent {
            instance_id: instance_id.to_owned(),
            name: name.to_owned(),
            input: Some(input),
        }));
    }

    /// Calls operation `operation` of entity `entity` with `input` and returns the task of its
    /// result (what the operation passed to
    /// [`EntityContext::set_result`](crate::EntityContext::set_result); `null` if nothing).
    /// A failed operation fails the task with a [`TaskError`] of kind [`TaskKind::Entity`].
    pub fn call_entity<O: DeserializeOwned + 'static>(
        &self,
        entity: &EntityId,
        operation: &str,
        input: impl Serialize,
    ) -> Task<O> {
        let input = match json::encode(&input) {
            Ok(input) => input,
            Err(error) => {
                return Task::ready(Err(
                    TaskError::encode(TaskKind::Entity, operation, &error).with_entity(entity)
                ));
            }
        };
        let action = ActionKind::CallEntity(EntityOperationCalled {
            entity: entity.to_wit(),
            operation: operation.to_owned(),
            input: Some(input),
        });
        let completion = State::schedule(&self.state, action, PendingKind::Entity);
        let entity = entity.clone();
        let operation = operation.to_owned();
        Task::new(async move {
            let error = match completion.await {
                Ok(result) => match json::decode(result.as_deref()) {
                    Ok(value) => return Ok(value),
                    Err(error) => TaskError::decode(TaskKind::Entity, &operation, &error),
                },
                Err(failure) => TaskError::failed(TaskKind::Entity, &operation, failure),
            };
            Err(error.with_entity(&entity))
        })
    }

    /// Signals operation `operation` of entity `entity` with `input`: one-way, nothing to
    /// wait for. The entity runs it after the operations signalled or called before it by
    /// this orchestration.
    pub fn signal_entity(&self, entity: &EntityId, operation: &str, input: impl Serialize) {
        self.signal(entity, operation, &input, None);
    }

    /// Like [`signal_entity`](Self::signal_entity), delivered at `at` (compute it from
    /// [`current_utc_datetime`](Self::current_utc_datetime)).
    pub fn signal_entity_at(&self, entity: &EntityId, operation: &str, input: impl Serialize, at: SystemTime) {
        self.signal(entity, operation, &input, Some(from_system_time(at)));
    }

    /// Enters a critical section: locks every entity in `entities` (taken in sorted order,
    /// each once) and returns the task of the [`EntityLock`], which completes once the host
    /// has granted every lock. While the orchestration holds it, the locked entities run only
    /// the operations it calls; whatever else is sent to them waits for the release, by
    /// [`EntityLock::release`] or when the lock is dropped.
    ///
    /// Critical sections do not nest: locking while holding (or waiting for) a lock, or
    /// locking no entity at all, fails the task with error type `LockingRulesViolation`.
    /// Await the task; dropping it before the grant leaves the locks held.
    ///
    /// ```
    /// # use durable_sdk::{EntityId, Error, OrchestrationContext};
    /// async fn transfer(ctx: OrchestrationContext) -> Result<(), Error> {
    ///     let (from, to) = (EntityId::new("Account", "a"), EntityId::new("Account", "b"));
    ///     let lock = ctx.lock_entities(&[from.clone(), to.clone()]).await?;
    ///     ctx.call_entity::<()>(&from, "withdraw", 10).await?;
    ///     ctx.call_entity::<()>(&to, "deposit", 10).await?;
    ///     lock.release();
    ///     Ok(())
    /// }
    /// ```
    pub fn lock_entities(&self, entities: &[EntityId]) -> Task<EntityLock> {
        let mut entities = entities.to_vec();
        entities.sort();
        entities.dedup();
        if entities.is_empty() {
            return Task::ready(Err(TaskError::locking_rules(
                "a critical section must lock at least one entity",
            )));
        }
        {
            let mut state = self.state.borrow_mut();
            if state.lock_held {
                return Task::ready(Err(TaskError::locking_rules(
                    "critical sections do not nest: release the entity lock held before locking again",
                )));
            }
            state.lock_held = true;
        }
        let action = ActionKind::LockEntities(entities.iter().map(EntityId::to_wit).collect());
        let granted = State::schedule(&self.state, action, PendingKind::Lock);
        let state = Rc::clone(&self.state);
        Task::new(async move {
            // A grant carries nothing; only that it came matters.
            let _ = granted.await;
            Ok(EntityLock {
                state,
                entities,
                released: false,
            })
        })
    }

    /// Sets the custom status that clients see while the orchestration runs; any value that
    /// serializes to JSON.
    pub fn set_custom_status(&self, status: &(impl Serialize + ?Sized)) {
        if let Some(status) = self.encode(status, "the custom status") {
            self.state.borrow_mut().custom_status = Some(status);
        }
    }

    /// Restarts the orchestration with `input` once the orchestrator returns (whatever it
    /// returns). External events that arrived but were never waited for are handed to the
    /// new execution. Use it to keep the history of an eternal orchestration short.
    pub fn continue_as_new(&self, input: impl Serialize) {
        if let Some(input) = self.encode(&input, "the continue-as-new input") {
            self.state.borrow_mut().continue_as_new = Some(input);
        }
    }

    /// [`task_all`](crate::task_all) as a method.
    pub fn task_all<T>(&self, tasks: impl IntoIterator<Item = Task<T>>) -> TaskAll<T> {
        crate::task_all(tasks)
    }

    /// [`task_any`](crate::task_any) as a method.
    pub fn task_any<T>(&self, tasks: impl IntoIterator<Item = Task<T>>) -> TaskAny<T> {
        crate::task_any(tasks)
    }

    fn now(&self) -> Micros {
        self.state.borrow().now
    }

    fn timer_at(&self, fire_at: Micros) -> Completion {
        State::schedule(
            &self.state,
            ActionKind::CreateTimer(CreateTimer { fire_at }),
            PendingKind::Timer,
        )
    }

    fn signal(&self, entity: &EntityId, operation: &str, input: &impl Serialize, at: Option<Micros>) {
        let Some(input) = self.encode(input, "the signal input") else {
            return;
        };
        self.state
            .borrow_mut()
            .issue(ActionKind::SignalEntity(EntityOperationSignaled {
                entity: entity.to_wit(),
                operation: operation.to_owned(),
                input: Some(input),
                scheduled_time: at,
            }));
    }

    /// Encodes a value that no task reports on; a failure fails the orchestration.
    fn encode(&self, value: &(impl Serialize + ?Sized), what: &str) -> Option<String> {
        match json::encode(value) {
            Ok(json) => Some(json),
            Err(error) => {
                let mut state = self.state.borrow_mut();
                state.fatal.get_or_insert_with(|| {
                    Error::new(
                        SERIALIZATION_ERROR,
                        format!("{what} could not be encoded as JSON: {error}"),
                    )
                });
                None
            }
        }
    }

    /// Issues an activity or sub-orchestration call (the action made by `action` from the
    /// encoded input), retrying as `retry` says, and decodes its result.
    fn call<O: DeserializeOwned + 'static>(
        &self,
        kind: TaskKind,
        name: &str,
        retry: Option<RetryOptions>,
        input: &impl Serialize,
        action: impl Fn(&str) -> ActionKind + 'static,
    ) -> Task<O> {
        let input = match json::encode(input) {
            Ok(input) => input,
            Err(error) => return Task::ready(Err(TaskError::encode(kind, name, &error))),
        };
        let pending = match kind {
            TaskKind::SubOrchestration => PendingKind::SubOrchestration,
            _ => PendingKind::Activity,
        };
        let mut attempt = State::schedule(&self.state, action(&input), pending);
        let first_attempt_at = self.now();
        let ctx = self.clone();
        let name = name.to_owned();
        Task::new(async move {
            let mut attempts = 1;
            loop {
                let failure = match attempt.await {
                    Ok(result) => {
                        return json::decode(result.as_deref()).map_err(|error| TaskError::decode(kind, &name, &error));
                    }
                    Err(failure) => failure,
                };
                let retry_at = retry
                    .as_ref()
                    .and_then(|retry| retry.retry_at(attempts, first_attempt_at, ctx.now()));
                let Some(retry_at) = retry_at else {
                    return Err(TaskError::failed(kind, &name, failure));
                };
                let _ = ctx.timer_at(retry_at).await;
                attempt = State::schedule(&ctx.state, action(&input), pending);
                attempts += 1;
            }
        })
    }
}

fn schedule_task(name: &str) -> impl Fn(&str) -> ActionKind + 'static {
    let name = name.to_owned();
    move |input| {
        ActionKind::ScheduleTask(ScheduleTask {
            name: name.clone(),
            input: Some(input.to_owned()),
        })
    }
}

fn call_sub_orchestration(name: &str, instance_id: Option<&str>) -> impl Fn(&str) -> ActionKind + 'static {
    let name = name.to_owned();
    let instance_id = instance_id.map(str::to_owned);
    move |input| {
        ActionKind::CallSubOrchestration(CallSubOrchestration {
            name: name.clone(),
            instance_id: instance_id.clone(),
            input: Some(input.to_owned()),
        })
    }
}

impl std::fmt::Debug for OrchestrationContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("OrchestrationContext")
            .field("name", &state.name)
            .field("instance_id", &state.instance_id)
            .field("is_replaying", &state.is_replaying)
            .finish_non_exhaustive()
    }
}

/// A critical section: locks on entities that an orchestration holds, from
/// [`OrchestrationContext::lock_entities`].
///
/// [`release`](Self::release) ends it; so does dropping the lock (say, when `?` leaves the
/// orchestrator early). Either way the orchestration issues one unlock-entities action with
/// the locked entities, exactly once.
#[must_use = "dropping the lock releases it at once"]
pub struct EntityLock {
    state: Rc<RefCell<State>>,
    entities: Vec<EntityId>,
    released: bool,
}

impl EntityLock {
    /// The locked entities, sorted and without duplicates.
    pub fn entities(&self) -> &[EntityId] {
        &self.entities
    }

    /// Releases the locks.
    pub fn release(mut self) {
        self.unlock();
    }

    fn unlock(&mut self) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        let mut state = self.state.borrow_mut();
        state.lock_held = false;
        state.issue(ActionKind::UnlockEntities(
            self.entities.iter().map(EntityId::to_wit).collect(),
        ));
    }
}

impl Drop for EntityLock {
    fn drop(&mut self) {
        self.unlock();
    }
}

impl std::fmt::Debug for EntityLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntityLock")
            .field("entities", &self.entities)
            .field("released", &self.released)
            .finish_non_exhaustive()
    }
}
