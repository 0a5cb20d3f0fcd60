//! Durable entities: [`EntityId`], [`EntityContext`] and the batch runner behind the WIT
//! `entity` export.
//!
//! An entity is a state type plus operations. Its function receives one operation at a time
//! through an [`EntityContext`]; the state lives between operations (and batches) as JSON.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::entity::{BatchResult, EntityAction, Operation, SignalEntity, StartOrchestration};
use crate::bindings::types::{self, FailureDetails};
use crate::error::{DESERIALIZATION_ERROR, Error, SERIALIZATION_ERROR};
use crate::json;
use crate::time::from_system_time;

/// The address of an entity: its name and its key.
///
/// Names are case-insensitive: [`new`](Self::new) lowercases the name, as Durable Functions
/// does, so `EntityId::new("Counter", "k") == EntityId::new("counter", "k")`. Keys are
/// case-sensitive. Ids order by name, then key; that is the order in which
/// [`lock_entities`](crate::OrchestrationContext::lock_entities) takes its locks.
///
/// Displays as `@name@key`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityId {
    name: String,
    key: String,
}

impl EntityId {
    /// The entity named `name` (lowercased) with key `key`.
    pub fn new(name: impl AsRef<str>, key: impl Into<String>) -> Self {
        Self {
            name: name.as_ref().to_lowercase(),
            key: key.into(),
        }
    }

    /// The entity's name, lowercased.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The entity's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub(crate) fn to_wit(&self) -> types::EntityId {
        types::EntityId {
            name: self.name.clone(),
            key: self.key.clone(),
        }
    }
}

impl From<types::EntityId> for EntityId {
    fn from(id: types::EntityId) -> Self {
        Self::new(id.name, id.key)
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}@{}", self.name, self.key)
    }
}

/// The handle an entity function uses to read the operation and its input, read and change
/// the state, return a result and send messages.
///
/// `S` is the state type. An entity that has no state yet (or whose state was deleted) reads
/// as `S::default()` and stays without state until an operation calls
/// [`set_state`](Self::set_state) or [`state_mut`](Self::state_mut); setting the default
/// value counts as having state.
///
/// ```
/// use durable_sdk::{EntityContext, Error};
///
/// fn counter(ctx: &mut EntityContext<i64>) -> Result<(), Error> {
///     match ctx.operation_name().to_lowercase().as_str() {
///         "add" => *ctx.state_mut() += ctx.get_input::<i64>()?,
///         "reset" => ctx.set_state(0),
///         "get" => ctx.set_result(ctx.state()),
///         "delete" => ctx.delete_state(),
///         other => return Err(Error::new("UnknownOperation", format!("no operation '{other}'"))),
///     }
///     Ok(())
/// }
/// ```
///
/// An operation that returns an error leaves no trace: its state change and its signals are
/// dropped and its caller gets the error; the other operations of the batch are unaffected.
pub struct EntityContext<S> {
    id: EntityId,
    operation: String,
    input: Option<String>,
    state: S,
    has_state: bool,
    /// What the operation hands over without touching the state; behind a `RefCell` so that
    /// `ctx.set_result(ctx.state())` compiles.
    output: RefCell<Output>,
}

#[derive(Default)]
struct Output {
    result: Option<String>,
    actions: Vec<EntityAction>,
    /// A value the operation handed over that could not be encoded; fails the operation.
    fatal: Option<Error>,
}

impl<S: Serialize + DeserializeOwned + Default> EntityContext<S> {
    /// The id of this entity.
    pub fn entity_id(&self) -> &EntityId {
        &self.id
    }

    /// The name of the operation to run, as the caller spelled it.
    pub fn operation_name(&self) -> &str {
        &self.operation
    }

    /// Decodes the operation's input; an absent input decodes as JSON `null`. Tolerant of
    /// double-encoded input, like every other input in the SDK.
    pub fn get_input<T: DeserializeOwned>(&self) -> Result<T, Error> {
        json::decode(self.input.as_deref()).map_err(|error| {
            Error::new(
                DESERIALIZATION_ERROR,
                format!(
                    "the input of operation '{}' of entity '{}' could not be decoded: {error}",
                    self.operation, self.id
                ),
            )
        })
    }

    /// Whether the entity has state.
    pub fn has_state(&self) -> bool {
        self.has_state
    }

    /// The state; `S::default()` when the entity has none.
    pub fn state(&self) -> &S {
        &self.state
    }

    /// The state, to change in place; the entity has state from now on.
    pub fn state_mut(&mut self) -> &mut S {
        self.has_state = true;
        &mut self.state
    }

    /// Replaces the state; the entity has state from now on.
    pub fn set_state(&mut self, state: S) {
        self.state = state;
        self.has_state = true;
    }

    /// Deletes the state: unless a later operation sets it again, the entity ends the batch
    /// without state.
    pub fn delete_state(&mut self) {
        self.state = S::default();
        self.has_state = false;
    }

    /// Sets the operation's result, what a caller's
    /// [`call_entity`](crate::OrchestrationContext::call_entity) returns. Without it the
    /// result is absent (JSON `null`).
    pub fn set_result<T: Serialize + ?Sized>(&self, result: &T) {
        if let Some(result) = self.encode(result, "the operation result") {
            self.output.borrow_mut().result = Some(result);
        }
    }

    /// Signals operation `operation` of entity `entity`, one-way. Sent only if this operation
    /// succeeds.
    pub fn signal_entity(&self, entity: &EntityId, operation: &str, input: impl Serialize) {
        self.signal(entity, operation, &input, None);
    }

    /// Like [`signal_entity`](Self::signal_entity), delivered at `at`.
    pub fn signal_entity_at(&self, entity: &EntityId, operation: &str, input: impl Serialize, at: SystemTime) {
        self.signal(entity, operation, &input, Some(from_system_time(at)));
    }

    /// Starts orchestrator `name` with `input`; with `instance_id` `None` the host picks a
    /// random id. Started only if this operation succeeds.
    pub fn start_new_orchestration(&self, name: &str, instance_id: Option<&str>, input: impl Serialize) {
        if let Some(input) = self.encode(&input, "the orchestration input") {
            self.output
                .borrow_mut()
                .actions
                .push(EntityAction::StartOrchestration(StartOrchestration {
                    name: name.to_owned(),
                    instance_id: instance_id.map(str::to_owned),
                    input: Some(input),
                }));
        }
    }

    fn signal(&self, entity: &EntityId, operation: &str, input: &impl Serialize, at: Option<i64>) {
        if let Some(input) = self.encode(input, "the signal input") {
            self.output
                .borrow_mut()
                .actions
                .push(EntityAction::SignalEntity(SignalEntity {
                    entity: entity.to_wit(),
                    operation: operation.to_owned(),
                    input: Some(input),
                    scheduled_time: at,
                }));
        }
    }

    fn encode(&self, value: &(impl Serialize + ?Sized), what: &str) -> Option<String> {
        match json::encode(value) {
            Ok(json) => Some(json),
            Err(error) => {
                self.output.borrow_mut().fatal.get_or_insert_with(|| {
                    Error::new(
                        SERIALIZATION_ERROR,
                        format!("{what} could not be encoded as JSON: {error}"),
                    )
                });
                None
            }
        }
    }
}

impl<S> fmt::Debug for EntityContext<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntityContext")
            .field("id", &self.id)
            .field("operation", &self.operation)
            .field("has_state", &self.has_state)
            .finish_non_exhaustive()
    }
}

/// What one successful operation left behind.
#[derive(Debug)]
pub struct OperationOutput {
    /// The state after the operation, as JSON; `None` when the entity has no state.
    pub(crate) state: Option<String>,
    pub(crate) result: Option<String>,
    pub(crate) actions: Vec<EntityAction>,
}

/// A registered entity: runs one operation on a state given as JSON.
pub(crate) type EntityFn =
    Arc<dyn Fn(&EntityId, Option<&str>, &Operation) -> Result<OperationOutput, Error> + Send + Sync>;

/// A function that can serve as an entity: an `fn(&mut EntityContext<S>) -> Result<(), E>`
/// with `S: Serialize + DeserializeOwned + Default` and `E: Into<Error>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an entity",
    label = "not an entity function",
    note = "an entity is a `fn(&mut EntityContext<S>) -> Result<(), E>` with `S: Serialize + DeserializeOwned + Default` and `E: Into<durable_sdk::Error>`"
)]
pub trait EntityHandler<S>: Send + Sync + 'static {
    /// Runs one operation on `state` (JSON, `None` when the entity has none).
    fn run(&self, id: &EntityId, state: Option<&str>, operation: &Operation) -> Result<OperationOutput, Error>;
}

impl<F, S, E> EntityHandler<S> for F
where
    F: Fn(&mut EntityContext<S>) -> Result<(), E> + Send + Sync + 'static,
    S: Serialize + DeserializeOwned + Default,
    E: Into<Error>,
{
    fn run(&self, id: &EntityId, state: Option<&str>, operation: &Operation) -> Result<OperationOutput, Error> {
        let decoded = match state {
            // State is only ever written by this SDK, so it is decoded strictly.
            Some(state) => serde_json::from_str(state).map_err(|error| {
                Error::new(
                    DESERIALIZATION_ERROR,
                    format!("the state of entity '{id}' could not be decoded: {error}"),
                )
            })?,
            None => S::default(),
        };
        let mut ctx = EntityContext {
            id: id.clone(),
            operation: operation.name.clone(),
            input: operation.input.clone(),
            state: decoded,
            has_state: state.is_some(),
            output: RefCell::default(),
        };
        self(&mut ctx).map_err(Into::into)?;
        let Output { result, actions, fatal } = ctx.output.take();
        if let Some(error) = fatal {
            return Err(error);
        }
        let state = if ctx.has_state {
            let state = json::encode(&ctx.state).map_err(|error| {
                Error::new(
                    SERIALIZATION_ERROR,
                    format!("the state of entity '{id}' could not be encoded as JSON: {error}"),
                )
            })?;
            Some(state)
        } else {
            None
        };
        Ok(OperationOutput { state, result, actions })
    }
}

/// Runs a batch: each operation in order against the state the previous ones left. A
/// failed operation changes nothing and reports its error in its slot.
pub(crate) fn run_batch(
    entity: Option<&EntityFn>,
    id: types::EntityId,
    state: Option<String>,
    operations: Vec<Operation>,
) -> BatchResult {
    let id = EntityId::from(id);
    let mut state = state;
    let mut results = Vec::with_capacity(operations.len());
    let mut actions = Vec::new();
    for operation in &operations {
        let outcome = match entity {
            Some(entity) => entity(&id, state.as_deref(), operation),
            None => Err(Error::new(
                "EntityNotFound",
                format!("this app has no entity named '{}'", id.name()),
            )),
        };
        results.push(match outcome {
            Ok(output) => {
                state = output.state;
                actions.extend(output.actions);
                Ok(output.result)
            }
            Err(error) => Err::<_, FailureDetails>(error.into_failure()),
        });
    }
    BatchResult {
        results,
        state,
        actions,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, UNIX_EPOCH};

    use serde::Deserialize;
    use serde_json::{Value, json};

    use super::*;

    fn handler<S>(f: impl EntityHandler<S>) -> EntityFn {
        Arc::new(move |id: &EntityId, state: Option<&str>, operation: &Operation| f.run(id, state, operation))
    }

    fn op(name: &str, input: Option<Value>) -> Operation {
        Operation {
            name: name.to_owned(),
            input: input.map(|input| input.to_string()),
        }
    }

    fn id(name: &str, key: &str) -> types::EntityId {
        types::EntityId {
            name: name.to_owned(),
            key: key.to_owned(),
        }
    }

    fn run(entity: &EntityFn, state: Option<Value>, operations: Vec<Operation>) -> BatchResult {
        run_batch(
            Some(entity),
            id("counter", "k"),
            state.map(|state| state.to_string()),
            operations,
        )
    }

    fn results(batch: &BatchResult) -> Vec<Result<Option<Value>, String>> {
        batch
            .results
            .iter()
            .map(|result| match result {
                Ok(output) => Ok(output.as_deref().map(|json| serde_json::from_str(json).unwrap())),
                Err(failure) => Err(failure.error_type.clone()),
            })
            .collect()
    }

    fn signal(key: &str, operation: &str, input: Value, at: Option<i64>) -> EntityAction {
        EntityAction::SignalEntity(SignalEntity {
            entity: id("counter", key),
            operation: operation.to_owned(),
            input: Some(input.to_string()),
            scheduled_time: at,
        })
    }

    /// A counter that also signals the counter `echo` with what it adds, and fails on
    /// negative amounts after changing its state and signalling.
    fn counter(ctx: &mut EntityContext<i64>) -> Result<(), Error> {
        match ctx.operation_name().to_lowercase().as_str() {
            "add" => {
                let amount: i64 = ctx.get_input()?;
                *ctx.state_mut() += amount;
                ctx.signal_entity(&EntityId::new("Counter", "echo"), "add", amount);
                if amount < 0 {
                    return Err(Error::new("NegativeAmount", "cannot add a negative amount"));
                }
            }
            "reset" => ctx.set_state(0),
            "get" => ctx.set_result(ctx.state()),
            "delete" => ctx.delete_state(),
            "peek" => ctx.set_result(&ctx.has_state()),
            other => return Err(Error::new("UnknownOperation", format!("no operation '{other}'"))),
        }
        Ok(())
    }

    #[test]
    fn undecodable_input_or_state_fails_the_operation_with_a_deserialization_error() {
        let counter = handler(counter);
        let batch = run(
            &counter,
            Some(json!(1)),
            vec![op("add", Some(json!("x"))), op("get", None)],
        );
        assert_eq!(
            results(&batch),
            [Err("DeserializationError".to_owned()), Ok(Some(json!(1)))]
        );
        let batch = run(&counter, Some(json!({"not": "a number"})), vec![op("get", None)]);
        assert_eq!(results(&batch), [Err("DeserializationError".to_owned())]);
        assert_eq!(batch.state.as_deref(), Some(r#"{"not":"a number"}"#), "left as it was");
    }

    #[test]
    fn a_value_that_cannot_be_encoded_fails_the_operation() {
        fn bad(ctx: &mut EntityContext<BTreeMap<String, i64>>) -> Result<(), Error> {
            ctx.state_mut().insert("a".to_owned(), 1);
            if ctx.operation_name() == "bad_result" {
                let mut map = BTreeMap::new();
                map.insert((1, 2), "tuple keys are not JSON");
                ctx.set_result(&map);
            }
            Ok(())
        }
        let batch = run(&handler(bad), None, vec![op("bad_result", None), op("ok", None)]);
        assert_eq!(results(&batch), [Err("SerializationError".to_owned()), Ok(None)]);
        assert_eq!(batch.state.as_deref(), Some(r#"{"a":1}"#));
    }

    #[test]
    fn context_exposes_id_and_operation_and_sends_timed_signals_and_orchestration_starts() {
        #[derive(Default, Serialize, Deserialize)]
        struct Seen {
            ids: Vec<String>,
        }
        fn probe(ctx: &mut EntityContext<Seen>) -> Result<(), Error> {
            let seen = format!("{}:{}", ctx.entity_id(), ctx.operation_name());
            ctx.state_mut().ids.push(seen);
            let at = UNIX_EPOCH + Duration::from_secs(2);
            ctx.signal_entity_at(&EntityId::new("COUNTER", "later"), "add", 1, at);
            ctx.start_new_orchestration("Flow", None, ctx.entity_id().key().to_owned());
            ctx.start_new_orchestration("Flow", Some("flow-1"), ());
            Ok(())
        }
        let batch = run(&handler(probe), None, vec![op("Look", None)]);
        assert_eq!(batch.state.as_deref(), Some(r#"{"ids":["@counter@k:Look"]}"#));
        assert_eq!(
            batch.actions,
            [
                signal("later", "add", json!(1), Some(2_000_000)),
                EntityAction::StartOrchestration(StartOrchestration {
                    name: "Flow".to_owned(),
                    instance_id: None,
                    input: Some(r#""k""#.to_owned()),
                }),
                EntityAction::StartOrchestration(StartOrchestration {
                    name: "Flow".to_owned(),
                    instance_id: Some("flow-1".to_owned()),
                    input: Some("null".to_owned()),
                }),
            ]
        );
    }

    #[test]
    fn entity_ids_lowercase_their_name_and_order_by_name_then_key() {
        assert_eq!(EntityId::new("Counter", "k"), EntityId::new("COUNTER", "k"));
        assert_ne!(EntityId::new("counter", "k"), EntityId::new("counter", "K"));
        let mut ids = [
            EntityId::new("b", "1"),
            EntityId::new("A", "2"),
            EntityId::new("a", "1"),
        ];
        ids.sort();
        let shown: Vec<_> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["@a@1", "@a@2", "@b@1"]);
    }
}
