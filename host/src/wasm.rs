//! wasmtime: the engine, the precompiled component cache, the one `bindgen!` site, and
//! the two sandboxes (deterministic for orchestrators, ordinary WASI for activities).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::history::{
    Action, ActionKind, CarriedEvent, CompletionStatus, EntityAction, EntityBatch, EntityId, EpisodeResult, EventKind,
    FailureDetails, HistoryEvent, Timestamp,
};

mod bindings {
    wasmtime::component::bindgen!({
        world: "app",
        path: "../wit",
        exports: { default: async },
    });
}

use bindings::durable::functions::types as wit;
use bindings::exports::durable::functions::entity::{EntityAction as WitEntityAction, Operation as EntityOperation};
use bindings::exports::durable::functions::registry::FunctionKind as WitFunctionKind;

/// The WIT world every app must export.
pub const WORLD: &str = "durable:functions/app@0.2.0";

/// How often the epoch ticks; guest CPU budgets are counted in ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// CPU budget of one orchestrator call, in ticks (a replay of a long history is one call
/// per episode, so this bounds a single episode).
const ORCHESTRATOR_CALL_TICKS: u64 = 1_000;
/// Guest memory of one wasm instance.
const MAX_MEMORY_BYTES: usize = 1 << 30;
/// How much of a guest's stderr is kept to explain a trap.
const STDERR_TAIL_BYTES: usize = 4096;

/// Errors loading an app.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid component.
    #[error("{file}: not a valid WebAssembly component: {detail}")]
    Compile {
        /// The file.
        file: PathBuf,
        /// What wasmtime said.
        detail: String,
    },
    /// The component does not export what the world requires, or imports what the host
    /// does not provide.
    #[error("{file}: does not fit the world {WORLD}: {detail}")]
    DoesNotFit {
        /// The file.
        file: PathBuf,
        /// What is missing.
        detail: String,
    },
    /// The component's registry could not be read.
    #[error("{file}: reading its function registry failed: {detail}")]
    Registry {
        /// The file.
        file: PathBuf,
        /// Why.
        detail: String,
    },
}

/// A guest call failed in a way that poisons its wasm instance.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct GuestTrap {
    /// The trap and the tail of the guest's stderr.
    pub message: String,
}

/// The kind of an exported function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FunctionKind {
    /// An orchestrator.
    Orchestrator,
    /// An activity.
    Activity,
    /// An entity (not run by this version).
    Entity,
}

/// Per-store state: WASI and limits.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The wasmtime engine and linker shared by every app.
pub struct WasmRuntime {
    engine: Engine,
    linker: Linker<HostState>,
    cache_dir: Option<PathBuf>,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for WasmRuntime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// A loaded app: its component, ready to instantiate, and its functions.
pub struct App {
    /// The file it came from.
    pub path: PathBuf,
    /// SHA-256 of its bytes, hex; the component cache key and version identity.
    pub hash: String,
    /// Its functions, as its registry lists them.
    pub functions: Vec<(String, FunctionKind)>,
    pre: bindings::AppPre<HostState>,
}

impl WasmRuntime {
    /// Creates the engine. Compiled components are cached in `cache_dir`, keyed by content
    /// hash, so a restart does not recompile.
    pub fn new(cache_dir: Option<PathBuf>) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.concurrency_support(false);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.weak();
        let stop = ticker_stop.clone();
        std::thread::Builder::new().name("epoch-ticker".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match ticker_engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })?;
        Ok(WasmRuntime {
            engine,
            linker,
            cache_dir,
            ticker_stop,
        })
    }

    /// Loads an app: compiles it (or takes it from the cache), checks it fits the world,
    /// and reads its registry.
    pub async fn load(&self, path: &Path) -> Result<App, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            file: path.to_owned(),
            source,
        })?;
        let hash = hex(&Sha256::digest(&bytes));
        let component = self.compile(path, &bytes, &hash)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|error| LoadError::DoesNotFit {
                file: path.to_owned(),
                detail: format!("{error:#}"),
            })?;
        let pre = bindings::AppPre::new(instance_pre).map_err(|error| LoadError::DoesNotFit {
            file: path.to_owned(),
            detail: format!("{error:#}"),
        })?;
        let registry_error = |error: wasmtime::Error| LoadError::Registry {
            file: path.to_owned(),
            detail: format!("{error:#}"),
        };
        let mut store = self.activity_store();
        let app = pre.instantiate_async(&mut store).await.map_err(registry_error)?;
        let functions = app
            .durable_functions_registry()
            .call_functions(&mut store)
            .await
            .map_err(registry_error)?
            .into_iter()
            .map(|info| {
                let kind = match info.kind {
                    WitFunctionKind::Orchestrator => FunctionKind::Orchestrator,
                    WitFunctionKind::Activity => FunctionKind::Activity,
                    WitFunctionKind::Entity => FunctionKind::Entity,
                };
                (info.name, kind)
            })
            .collect();
        Ok(App {
            path: path.to_owned(),
            hash,
            functions,
            pre,
        })
    }

    fn compile(&self, path: &Path, bytes: &[u8], hash: &str) -> Result<Component, LoadError> {
        let compile_error = |error: wasmtime::Error| LoadError::Compile {
            file: path.to_owned(),
            detail: format!("{error:#}"),
        };
        let Some(cache_dir) = &self.cache_dir else {
            return Component::new(&self.engine, bytes).map_err(compile_error);
        };
        let cached = cache_dir.join(format!("{hash}.cwasm"));
        if cached.exists() {
            // SAFETY: the file was written by `precompile_component` of this host (the name is
            // the hash of its source), and wasmtime checks the engine configuration and
            // version before using it; a mismatch is an error, handled by recompiling.
            #[allow(unsafe_code)]
            if let Ok(component) = unsafe { Component::deserialize_file(&self.engine, &cached) } {
                return Ok(component);
            }
        }
        let compiled = self.engine.precompile_component(bytes).map_err(compile_error)?;
        let written = std::fs::create_dir_all(cache_dir).and_then(|()| {
            let temporary = cache_dir.join(format!("{hash}.cwasm.{}", std::process::id()));
            std::fs::write(&temporary, &compiled)?;
            std::fs::rename(&temporary, &cached)
        });
        if let Err(error) = written {
            eprintln!(
                "warning: cannot write the component cache {}: {error}",
                cached.display()
            );
        }
        // SAFETY: these bytes were produced just above by this engine's precompile.
        #[allow(unsafe_code)]
        unsafe { Component::deserialize(&self.engine, &compiled) }.map_err(compile_error)
    }

    fn new_store(&self, wasi: WasiCtx) -> Store<HostState> {
        let mut store = Store::new(
            &self.engine,
            HostState {
                wasi,
                table: ResourceTable::new(),
                limits: StoreLimitsBuilder::new().memory_size(MAX_MEMORY_BYTES).build(),
            },
        );
        store.limiter(|state| &mut state.limits);
        store
    }

    fn activity_store(&self) -> Store<HostState> {
        let mut store = self.new_store(WasiCtx::builder().inherit_stdout().inherit_stderr().build());
        // Long activities yield to the executor every tick instead of blocking a thread.
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
        store.set_epoch_deadline(1);
        store
    }

    /// Runs activity `name` in a fresh instance with ordinary WASI. The outer error is a
    /// trap or a host failure; the inner one is the activity's own failure.
    pub async fn run_activity(
        &self,
        app: &App,
        name: &str,
        input: Option<&String>,
        instance_id: &str,
        task_id: i32,
    ) -> Result<Result<Option<String>, FailureDetails>, GuestTrap> {
        let mut store = self.activity_store();
        let trap = |error: wasmtime::Error| GuestTrap {
            message: format!("activity '{name}' trapped: {error:#}"),
        };
        let instance = app.pre.instantiate_async(&mut store).await.map_err(trap)?;
        let context = wit::ActivityContext {
            instance_id: instance_id.to_owned(),
            task_scheduled_id: task_id,
        };
        let result = instance
            .durable_functions_activity()
            .call_run(&mut store, name, input, &context)
            .await
            .map_err(trap)?;
        Ok(result.map_err(failure_from_wit))
    }

    /// Creates a wasm instance of `app` in the deterministic orchestrator sandbox.
    pub async fn orchestrator_host(&self, app: &App) -> Result<OrchestratorHost, GuestTrap> {
        let clock = Arc::new(AtomicI64::new(0));
        let rng = Arc::new(AtomicU64::new(0));
        let stderr = CapturedOutput::default();
        let wasi = WasiCtx::builder()
            .wall_clock(RecordedClock(clock.clone()))
            .monotonic_clock(RecordedClock(clock.clone()))
            .secure_random(SeededRng(rng.clone()))
            .insecure_random(SeededRng(rng.clone()))
            .insecure_random_seed(0)
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut store = self.new_store(wasi);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(ORCHESTRATOR_CALL_TICKS);
        let instance = app.pre.instantiate_async(&mut store).await.map_err(|error| GuestTrap {
            message: format!("instantiating the orchestrator sandbox failed: {error:#}"),
        })?;
        Ok(OrchestratorHost {
            store,
            instance,
            clock,
            rng,
            stderr,
        })
    }
}

/// One wasm instance of an app, hosting many live orchestrations.
///
/// A trap poisons the whole instance: the caller must drop it and every orchestration it
/// held (they replay elsewhere).
pub struct OrchestratorHost {
    store: Store<HostState>,
    instance: bindings::App,
    clock: Arc<AtomicI64>,
    rng: Arc<AtomicU64>,
    stderr: CapturedOutput,
}

impl OrchestratorHost {
    fn trap(&self, what: &str, error: wasmtime::Error) -> GuestTrap {
        let mut message = format!("{what}: {error:#}");
        let tail = self.stderr.tail();
        if !tail.trim().is_empty() {
            message.push_str("\nguest stderr:\n");
            message.push_str(tail.trim_end());
        }
        GuestTrap { message }
    }

    /// Creates the orchestration resource for one execution.
    pub async fn create(&mut self, name: &str, instance_id: &str) -> Result<ResourceAny, GuestTrap> {
        self.store.set_epoch_deadline(ORCHESTRATOR_CALL_TICKS);
        let orchestrator = self.instance.durable_functions_orchestrator().orchestration();
        orchestrator
            .call_constructor(&mut self.store, name, instance_id)
            .await
            .map_err(|error| self.trap(&format!("orchestrator '{name}' trapped in its constructor"), error))
    }

    /// Feeds one episode. `now` is what the guest's clock reads; `rng` is the
    /// orchestration's random state, advanced by whatever the guest draws.
    pub async fn apply(
        &mut self,
        orchestration: ResourceAny,
        events: &[HistoryEvent],
        replaying: bool,
        now: Timestamp,
        rng: &mut u64,
    ) -> Result<EpisodeResult, GuestTrap> {
        self.clock.store(now.0, Ordering::Relaxed);
        self.rng.store(*rng, Ordering::Relaxed);
        self.store.set_epoch_deadline(ORCHESTRATOR_CALL_TICKS);
        let events: Vec<wit::HistoryEvent> = events.iter().filter_map(event_to_wit).collect();
        let orchestrator = self.instance.durable_functions_orchestrator().orchestration();
        let result = orchestrator
            .call_apply(&mut self.store, orchestration, &events, replaying)
            .await;
        *rng = self.rng.load(Ordering::Relaxed);
        let result = result.map_err(|error| self.trap("orchestrator trapped", error))?;
        Ok(EpisodeResult {
            actions: result.actions.into_iter().map(action_from_wit).collect(),
            custom_status: result.custom_status,
        })
    }

    /// Runs a batch of operations on an entity.
    pub async fn run_entity(
        &mut self,
        entity: &EntityId,
        state: Option<&String>,
        operations: &[(String, Option<String>)],
    ) -> Result<EntityBatch, GuestTrap> {
        self.store.set_epoch_deadline(ORCHESTRATOR_CALL_TICKS);
        let operations: Vec<EntityOperation> = operations
            .iter()
            .map(|(name, input)| EntityOperation {
                name: name.clone(),
                input: input.clone(),
            })
            .collect();
        let batch = self
            .instance
            .durable_functions_entity()
            .call_run(&mut self.store, &entity_to_wit(entity), state, &operations)
            .await
            .map_err(|error| self.trap(&format!("entity '{entity}' trapped"), error))?;
        Ok(EntityBatch {
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
        })
    }

    /// Frees a live orchestration's guest state.
    pub async fn drop_orchestration(&mut self, orchestration: ResourceAny) {
        // A failure here leaves garbage in a guest that is about to be dropped or reused;
        // nothing durable depends on it.
        let _ = orchestration.resource_drop_async(&mut self.store).await;
    }
}

/// The seed of an orchestration's random numbers: a hash of its instance id, so replay
/// draws the same numbers.
pub fn rng_seed(instance_id: &str) -> u64 {
    let digest = Sha256::digest(instance_id.as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("sha-256 has 32 bytes"))
}

/// A clock that reads the orchestration's recorded time.
struct RecordedClock(Arc<AtomicI64>);

impl HostWallClock for RecordedClock {
    fn resolution(&self) -> Duration {
        Duration::from_micros(1)
    }

    fn now(&self) -> Duration {
        Duration::from_micros(self.0.load(Ordering::Relaxed).max(0) as u64)
    }
}

impl HostMonotonicClock for RecordedClock {
    fn resolution(&self) -> u64 {
        1_000
    }

    fn now(&self) -> u64 {
        self.0.load(Ordering::Relaxed).max(0) as u64 * 1_000
    }
}

/// SplitMix64 over a state the host swaps per orchestration.
struct SeededRng(Arc<AtomicU64>);

impl SeededRng {
    fn next(&self) -> u64 {
        let state = self.0.load(Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.0.store(state, Ordering::Relaxed);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl rand_core::TryRng for SeededRng {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.next() as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.next())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

/// Keeps the tail of a guest's stderr (to explain traps) and echoes it to the host's.
#[derive(Clone, Default)]
struct CapturedOutput(Arc<Mutex<VecDeque<u8>>>);

impl CapturedOutput {
    fn tail(&self) -> String {
        let buffer = self.0.lock().expect("stderr buffer lock");
        String::from_utf8_lossy(&buffer.iter().copied().collect::<Vec<u8>>()).into_owned()
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, bytes: &[u8]) -> Poll<std::io::Result<usize>> {
        let mut buffer = self.0.lock().expect("stderr buffer lock");
        buffer.extend(bytes);
        let excess = buffer.len().saturating_sub(STDERR_TAIL_BYTES);
        buffer.drain(..excess);
        eprint!("{}", String::from_utf8_lossy(bytes));
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn failure_to_wit(failure: &FailureDetails) -> wit::FailureDetails {
    wit::FailureDetails {
        error_type: failure.error_type.clone(),
        message: failure.message.clone(),
        details: failure.details.clone(),
    }
}

fn failure_from_wit(failure: wit::FailureDetails) -> FailureDetails {
    FailureDetails {
        error_type: failure.error_type,
        message: failure.message,
        details: failure.details,
    }
}

/// The event as the guest sees it; `None` for host-only events (entity inbox messages),
/// which never reach an orchestration.
fn event_to_wit(event: &HistoryEvent) -> Option<wit::HistoryEvent> {
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

fn entity_to_wit(entity: &EntityId) -> wit::EntityId {
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
