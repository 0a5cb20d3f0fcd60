//! The glue between the WIT exports and an app's registry, and the [`export!`] macro.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::sync::Once;

use crate::bindings::types::{ActivityContext, EntityId, EpisodeResult, FailureDetails, HistoryEvent};
use crate::bindings::{activity, entity, orchestrator, registry};
use crate::executor::Executor;
use crate::registry::Registry;

/// An app: the type [`export!`](crate::export) defines to hand its registry to the WIT glue.
pub trait App: 'static {
    /// The app's functions, built once.
    fn registry() -> &'static Registry;
}

/// Implements the WIT exports for app `A`.
pub struct Component<A>(PhantomData<A>);

/// The `orchestration` resource: one executor per instance.
pub struct Orchestration<A> {
    executor: RefCell<Executor>,
    app: PhantomData<A>,
}

impl<A: App> registry::Guest for Component<A> {
    fn functions() -> Vec<registry::FunctionInfo> {
        A::registry().functions()
    }
}

impl<A: App> orchestrator::Guest for Component<A> {
    type Orchestration = Orchestration<A>;
}

impl<A: App> orchestrator::GuestOrchestration for Orchestration<A> {
    fn new(name: String, instance_id: String) -> Self {
        enter("orchestrator");
        Self {
            executor: RefCell::new(Executor::new(A::registry(), &name, &instance_id)),
            app: PhantomData,
        }
    }

    fn apply(&self, events: Vec<HistoryEvent>, replaying: bool) -> EpisodeResult {
        enter("orchestrator");
        self.executor.borrow_mut().apply(events, replaying)
    }
}

impl<A: App> activity::Guest for Component<A> {
    fn run(name: String, input: Option<String>, context: ActivityContext) -> Result<Option<String>, FailureDetails> {
        enter("activity");
        A::registry().run_activity(&name, input.as_deref(), context)
    }
}

impl<A: App> entity::Guest for Component<A> {
    fn run(id: EntityId, state: Option<String>, operations: Vec<entity::Operation>) -> entity::BatchResult {
        enter("entity");
        A::registry().run_entity(id, state, operations)
    }
}

thread_local! {
    static ROLE: Cell<&'static str> = const { Cell::new("function") };
}

/// Notes what kind of function runs, for the panic message, and installs the panic hook
/// once. The host captures stderr; after the hook the component aborts, which the host
/// records as the function's failure.
fn enter(role: &'static str) {
    static HOOK: Once = Once::new();
    ROLE.with(|current| current.set(role));
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let role = ROLE.with(Cell::get);
            eprintln!("{role} panicked: {info}");
        }));
    });
}

/// Exports an app's orchestrators, activities and entities to the host.
///
/// Invoke it once, at the root of a `cdylib` crate built for `wasm32-wasip2`. The three
/// sections are optional, and come in this order; names are string literals, functions are
/// paths (or any expression) of the forms described on [`OrchestrationContext`] for
/// orchestrators, on [`ActivityContext`] for activities and on [`EntityContext`] for
/// entities.
///
/// ```ignore
/// durable_sdk::export! {
///     orchestrators: { "CounterCaller" => counter_caller },
///     activities: { "E1_SayHello" => say_hello },
///     entities: { "Counter" => counter },
/// }
/// ```
///
/// Registering one name twice (for entities, in any case) makes the app fail when the host
/// loads it.
///
/// [`OrchestrationContext`]: crate::OrchestrationContext
/// [`ActivityContext`]: crate::ActivityContext
/// [`EntityContext`]: crate::EntityContext
#[macro_export]
macro_rules! export {
    (
        $(orchestrators: { $($orchestrator:literal => $orchestrator_fn:expr),* $(,)? } $(,)?)?
        $(activities: { $($activity:literal => $activity_fn:expr),* $(,)? } $(,)?)?
        $(entities: { $($entity:literal => $entity_fn:expr),* $(,)? } $(,)?)?
    ) => {
        #[doc(hidden)]
        pub struct __DurableApp;

        impl $crate::__private::App for __DurableApp {
            fn registry() -> &'static $crate::__private::Registry {
                static REGISTRY: ::std::sync::OnceLock<$crate::__private::Registry> =
                    ::std::sync::OnceLock::new();
                REGISTRY.get_or_init(|| {
                    #[allow(unused_mut)]
                    let mut registry = $crate::__private::Registry::new();
                    $($(registry.orchestrator($orchestrator, $orchestrator_fn);)*)?
                    $($(registry.activity($activity, $activity_fn);)*)?
                    $($(registry.entity($entity, $entity_fn);)*)?
                    registry
                })
            }
        }

        // The generated export functions carry `#[unsafe(export_name)]` and raw pointers.
        #[doc(hidden)]
        #[allow(unsafe_code)]
        mod __durable_export {
            type __DurableComponent = $crate::__private::Component<super::__DurableApp>;
            $crate::bindings::__export_app!(__DurableComponent with_types_in $crate::bindings);
        }
    };
}
