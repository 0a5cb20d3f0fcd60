//! The function registry an app exports: orchestrators, activities and entities by name.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::Serialize;

use crate::activity::{ActivityContext, ActivityHandler};
use crate::bindings::entity::{BatchResult, Operation};
use crate::bindings::registry::{FunctionInfo, FunctionKind};
use crate::bindings::types::{self, FailureDetails};
use crate::context::OrchestrationContext;
use crate::entity::{EntityFn, EntityHandler, EntityId, run_batch};
use crate::error::{Error, SERIALIZATION_ERROR};
use crate::json;

/// An orchestrator's run, with its output already encoded as JSON.
pub(crate) type OrchestratorFuture = Pin<Box<dyn Future<Output = Result<Option<String>, Error>>>>;

/// A registered orchestrator: starts a run for a context.
pub(crate) type OrchestratorFn = Arc<dyn Fn(OrchestrationContext) -> OrchestratorFuture + Send + Sync>;

/// A function that can serve as an orchestrator: an
/// `async fn(OrchestrationContext) -> Result<T, E>` with `T: Serialize`, `E: Into<Error>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an orchestrator",
    label = "not an orchestrator function",
    note = "an orchestrator is an `async fn(OrchestrationContext) -> Result<T, E>` with `T: Serialize` and `E: Into<durable_sdk::Error>`"
)]
pub trait OrchestratorHandler: Send + Sync + 'static {
    /// Starts a run; the output is encoded as JSON when the run returns.
    fn start(&self, context: OrchestrationContext) -> OrchestratorFuture;
}

impl<F, Fut, T, E> OrchestratorHandler for F
where
    F: Fn(OrchestrationContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, E>> + 'static,
    T: Serialize,
    E: Into<Error>,
{
    fn start(&self, context: OrchestrationContext) -> OrchestratorFuture {
        let run = self(context);
        Box::pin(async move {
            let output = run.await.map_err(Into::into)?;
            json::encode(&output).map(Some).map_err(|error| {
                Error::new(
                    SERIALIZATION_ERROR,
                    format!("the orchestrator output could not be encoded as JSON: {error}"),
                )
            })
        })
    }
}

type ActivityFn = Arc<dyn Fn(ActivityContext, Option<&str>) -> Result<Option<String>, Error> + Send + Sync>;

/// The orchestrators, activities and entities of an app, by name.
/// [`export!`](crate::export) builds one; authors rarely need it directly.
#[derive(Default)]
pub struct Registry {
    orchestrators: BTreeMap<String, OrchestratorFn>,
    activities: BTreeMap<String, ActivityFn>,
    /// By lowercased name (entity names are case-insensitive): the name as registered, and
    /// the entity.
    entities: BTreeMap<String, (String, EntityFn)>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an orchestrator.
    ///
    /// # Panics
    ///
    /// If a function of that name is already registered.
    pub fn orchestrator(&mut self, name: &str, handler: impl OrchestratorHandler) -> &mut Self {
        self.check_unique(name);
        self.orchestrators
            .insert(name.to_owned(), Arc::new(move |context| handler.start(context)));
        self
    }

    /// Registers an activity.
    ///
    /// # Panics
    ///
    /// If a function of that name is already registered.
    pub fn activity<Args>(&mut self, name: &str, handler: impl ActivityHandler<Args>) -> &mut Self {
        self.check_unique(name);
        self.activities.insert(
            name.to_owned(),
            Arc::new(move |context, input| handler.call(context, input)),
        );
        self
    }

    /// Registers an entity. Entity names are case-insensitive.
    ///
    /// # Panics
    ///
    /// If a function of that name, in any case, is already registered.
    pub fn entity<S>(&mut self, name: &str, handler: impl EntityHandler<S>) -> &mut Self {
        let key = name.to_lowercase();
        let taken = self.orchestrators.keys().chain(self.activities.keys());
        assert!(
            !self.entities.contains_key(&key) && taken.clone().all(|other| other.to_lowercase() != key),
            "durable function '{name}' is registered twice"
        );
        let run: EntityFn = Arc::new(move |id: &EntityId, state: Option<&str>, operation: &Operation| {
            handler.run(id, state, operation)
        });
        self.entities.insert(key, (name.to_owned(), run));
        self
    }

    fn check_unique(&self, name: &str) {
        assert!(
            !self.orchestrators.contains_key(name)
                && !self.activities.contains_key(name)
                && !self.entities.contains_key(&name.to_lowercase()),
            "durable function '{name}' is registered twice"
        );
    }

    pub(crate) fn orchestrator_fn(&self, name: &str) -> Option<OrchestratorFn> {
        self.orchestrators.get(name).cloned()
    }

    /// Every function: orchestrators, activities, entities, each kind sorted by name.
    pub(crate) fn functions(&self) -> Vec<FunctionInfo> {
        let orchestrators = self.orchestrators.keys().map(|name| FunctionInfo {
            name: name.clone(),
            kind: FunctionKind::Orchestrator,
        });
        let activities = self.activities.keys().map(|name| FunctionInfo {
            name: name.clone(),
            kind: FunctionKind::Activity,
        });
        let entities = self.entities.values().map(|(name, _)| FunctionInfo {
            name: name.clone(),
            kind: FunctionKind::Entity,
        });
        orchestrators.chain(activities).chain(entities).collect()
    }

    /// Runs a batch of operations on entity `id`.
    pub(crate) fn run_entity(
        &self,
        id: types::EntityId,
        state: Option<String>,
        operations: Vec<Operation>,
    ) -> BatchResult {
        let entity = self.entities.get(&id.name.to_lowercase()).map(|(_, entity)| entity);
        run_batch(entity, id, state, operations)
    }

    /// Runs activity `name`.
    pub(crate) fn run_activity(
        &self,
        name: &str,
        input: Option<&str>,
        context: types::ActivityContext,
    ) -> Result<Option<String>, FailureDetails> {
        let Some(activity) = self.activities.get(name) else {
            return Err(FailureDetails {
                error_type: "ActivityNotFound".to_owned(),
                message: format!("this app has no activity named '{name}'"),
                details: None,
            });
        };
        activity(context.into(), input).map_err(Error::into_failure)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("orchestrators", &self.orchestrators.keys())
            .field("activities", &self.activities.keys())
            .field(
                "entities",
                &self.entities.values().map(|(name, _)| name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActivityContext, EntityContext};

    fn context() -> types::ActivityContext {
        types::ActivityContext {
            instance_id: "instance-1".to_owned(),
            task_scheduled_id: 4,
        }
    }

    async fn orchestrator(_: OrchestrationContext) -> Result<(), Error> {
        Ok(())
    }

    fn registry() -> Registry {
        let mut registry = Registry::new();
        registry
            .orchestrator("Orchestrate", orchestrator)
            .activity("Double", |x: i64| Ok::<_, Error>(x * 2))
            .activity("WhoAmI", |ctx: ActivityContext, (): ()| {
                Ok::<_, Error>(format!("{}#{}", ctx.instance_id(), ctx.task_scheduled_id()))
            })
            .activity("Fail", || {
                Err::<(), _>(Error::new("Boom", "always").with_details("why"))
            })
            .entity("Counter", counter);
        registry
    }

    fn counter(ctx: &mut EntityContext<i64>) -> Result<(), Error> {
        *ctx.state_mut() += ctx.get_input::<i64>()?;
        ctx.set_result(ctx.state());
        Ok(())
    }

    #[test]
    fn functions_lists_orchestrators_then_activities_with_their_kinds() {
        let listed: Vec<_> = registry().functions().into_iter().map(|f| (f.name, f.kind)).collect();
        assert_eq!(
            listed,
            [
                ("Orchestrate".to_owned(), FunctionKind::Orchestrator),
                ("Double".to_owned(), FunctionKind::Activity),
                ("Fail".to_owned(), FunctionKind::Activity),
                ("WhoAmI".to_owned(), FunctionKind::Activity),
                ("Counter".to_owned(), FunctionKind::Entity),
            ]
        );
    }

    #[test]
    fn activity_input_is_decoded_tolerantly_and_output_encoded() {
        let registry = registry();
        assert_eq!(
            registry.run_activity("Double", Some("21"), context()),
            Ok(Some("42".to_owned()))
        );
        assert_eq!(
            registry.run_activity("Double", Some(r#""21""#), context()),
            Ok(Some("42".to_owned()))
        );
        assert_eq!(
            registry.run_activity("WhoAmI", None, context()),
            Ok(Some(r#""instance-1#4""#.to_owned()))
        );
    }

    #[test]
    fn activity_errors_become_failure_details() {
        let registry = registry();
        let failure = registry.run_activity("Fail", None, context()).unwrap_err();
        assert_eq!(
            (failure.error_type.as_str(), failure.message.as_str()),
            ("Boom", "always")
        );
        assert_eq!(failure.details.as_deref(), Some("why"));
        let failure = registry.run_activity("Double", Some(r#""x""#), context()).unwrap_err();
        assert_eq!(failure.error_type, "DeserializationError");
        let failure = registry.run_activity("Missing", None, context()).unwrap_err();
        assert_eq!(failure.error_type, "ActivityNotFound");
    }

    #[test]
    #[should_panic(expected = "registered twice")]
    fn registering_a_name_twice_panics() {
        registry().activity("Orchestrate", || Ok::<_, Error>(()));
    }

    #[test]
    #[should_panic(expected = "registered twice")]
    fn registering_an_entity_name_twice_in_another_case_panics() {
        registry().entity("COUNTER", counter);
    }

    #[test]
    fn entities_are_found_by_name_in_any_case_and_unknown_ones_fail_every_operation() {
        let registry = registry();
        let operation = |input: &str| Operation {
            name: "add".to_owned(),
            input: Some(input.to_owned()),
        };
        let id = |name: &str| types::EntityId {
            name: name.to_owned(),
            key: "k".to_owned(),
        };
        let batch = registry.run_entity(
            id("counter"),
            Some("1".to_owned()),
            vec![operation("2"), operation("3")],
        );
        assert_eq!(batch.results, [Ok(Some("3".to_owned())), Ok(Some("6".to_owned()))]);
        assert_eq!(batch.state.as_deref(), Some("6"));
        let batch = registry.run_entity(id("cOuNtEr"), None, vec![operation("2")]);
        assert_eq!(batch.state.as_deref(), Some("2"));
        let batch = registry.run_entity(id("Double"), None, vec![operation("2")]);
        assert_eq!(batch.results[0].as_ref().unwrap_err().error_type, "EntityNotFound");
        assert_eq!(batch.state, None);
    }
}
