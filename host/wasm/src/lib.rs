//! wasmtime: the engine, the precompiled component cache, the one `bindgen!` site, and
//! the two sandboxes (deterministic for orchestrators and entities; granted WASI and
//! allow-listed outbound HTTP for activities), with their time and memory limits.

use std::collections::VecDeque;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store, StoreContextMut, Trap, UpdateDeadline};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{FsPerms, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use durable_core::history::{
    Action, ActionKind, CarriedEvent, CompletionStatus, EntityAction, EntityBatch, EntityId, EpisodeResult, EventKind,
    FailureDetails, HistoryEvent, Timestamp,
};

mod bindings {
    wasmtime::component::bindgen!({
        world: "app",
        path: "../../wit",
        exports: { default: async },
    });
}

use bindings::durable::functions::types as wit;
use bindings::exports::durable::functions::entity::{EntityAction as WitEntityAction, Operation as EntityOperation};
use bindings::exports::durable::functions::registry::FunctionKind as WitFunctionKind;

/// The WIT world every app must export.
pub const WORLD: &str = "durable:functions/app@0.2.0";

/// How often the epoch ticks: a running guest yields to the executor, and checks its
/// call's time budget, at every tick.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// How long after its budget a guest call blocked in the host (not running wasm, so not
/// interrupted by the epoch) is abandoned.
const BLOCKED_CALL_GRACE: Duration = Duration::from_millis(200);
/// How much of a guest's stderr is kept to explain a trap.
const STDERR_TAIL_BYTES: usize = 4096;
/// How much of wasmtime's context of a trap (its wasm backtrace) is kept, in lines and
/// bytes.
const TRAP_CONTEXT_LINES: usize = 12;
const TRAP_CONTEXT_BYTES: usize = 2048;

/// Time and memory limits of an app's guests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestLimits {
    /// Wall-clock budget of one orchestrator call (one episode, or one recorded episode
    /// during replay) or one entity batch. It restarts at every guest call.
    pub call_timeout: Duration,
    /// Wall-clock budget of one activity run, including the time it waits for HTTP.
    pub activity_timeout: Duration,
    /// Linear memory of one wasm instance (all its memories together), in bytes.
    pub memory_bytes: usize,
    /// An instance whose linear memory grew past this is not kept between calls (an idle
    /// activity instance, a live orchestration): its memory goes back to the system.
    pub idle_instance_bytes: usize,
    /// An idle activity instance unused this long is dropped.
    pub instance_idle: Duration,
}

impl Default for GuestLimits {
    fn default() -> Self {
        GuestLimits {
            call_timeout: Duration::from_secs(10),
            activity_timeout: Duration::from_secs(600),
            memory_bytes: 1 << 30,
            idle_instance_bytes: 64 << 20,
            instance_idle: Duration::from_secs(60),
        }
    }
}

/// A budget of the linear memory that instances kept between calls (idle activity
/// instances, live orchestrations) may hold together. The host has one, each hub one.
#[derive(Debug)]
pub struct IdleMemory {
    limit: usize,
    held: AtomicUsize,
}

impl IdleMemory {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<IdleMemory> {
        Arc::new(IdleMemory {
            limit,
            held: AtomicUsize::new(0),
        })
    }

    /// The bytes held now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    fn try_take(&self, bytes: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Bytes taken from both budgets an idle instance counts against (its hub's and the
/// host's), given back when dropped, so an instance's charge lives exactly as long as it
/// is kept.
#[derive(Debug)]
pub struct IdleCharge {
    hub: Arc<IdleMemory>,
    host: Arc<IdleMemory>,
    bytes: usize,
}

impl IdleCharge {
    /// Takes `bytes` from the hub's and the host's budget, or from neither if one cannot
    /// give them.
    pub fn take(hub: &Arc<IdleMemory>, host: &Arc<IdleMemory>, bytes: usize) -> Option<IdleCharge> {
        if !hub.try_take(bytes) {
            return None;
        }
        if !host.try_take(bytes) {
            hub.give_back(bytes);
            return None;
        }
        Some(IdleCharge {
            hub: hub.clone(),
            host: host.clone(),
            bytes,
        })
    }

    /// The bytes it holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for IdleCharge {
    fn drop(&mut self) {
        self.hub.give_back(self.bytes);
        self.host.give_back(self.bytes);
    }
}

/// A host directory an app's activities may open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the guest sees it (a preopen, e.g. `/data`).
    pub guest: String,
    /// Whether the guest may only read it.
    pub read_only: bool,
}

/// What an app's activities get beyond computing; everything else is denied. Orchestrators
/// and entities get none of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivityGrants {
    /// Authorities outbound `wasi:http` requests may go to: `host` or `host:port`, compared
    /// case-insensitively with the request's host and port (a missing port is the scheme's
    /// default: 80 for http, 443 for https). Other requests fail with `HTTP-request-denied`.
    /// No other sockets are available.
    pub allowed_hosts: Vec<String>,
    /// The environment variables the guest sees (none of the host's).
    pub env: Vec<(String, String)>,
    /// The directories the guest may open (no others).
    pub dirs: Vec<DirGrant>,
}

/// Everything an app is allowed: its limits and its activities' grants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sandbox {
    /// Time and memory limits.
    pub limits: GuestLimits,
    /// What its activities may touch.
    pub grants: ActivityGrants,
}

/// The wasmtime engine could not be set up: a configuration wasmtime refuses, a WASI
/// interface that does not link, or no thread for the epoch ticker.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the wasm engine: {0}")]
pub struct EngineError(String);

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
    /// What the app's activities are granted cannot be given (a granted directory does not
    /// open).
    #[error("{file}: its activities' grants cannot be given: {detail}")]
    Grants {
        /// The file.
        file: PathBuf,
        /// Why.
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

/// Per-store state: WASI, `wasi:http`, limits and the running call's budget.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    http_policy: HttpPolicy,
    table: ResourceTable,
    memory: MemoryLimiter,
    deadline: CallDeadline,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_policy,
        }
    }
}

/// Outbound HTTP: only to the allow-listed authorities, through the default sender.
struct HttpPolicy {
    allowed_hosts: Arc<[String]>,
}

impl HttpPolicy {
    fn allows(&self, uri: &hyper::Uri) -> bool {
        let Some(authority) = uri.authority() else {
            return false;
        };
        let default_port = if uri.scheme() == Some(&hyper::http::uri::Scheme::HTTPS) {
            443
        } else {
            80
        };
        let port = authority.port_u16().unwrap_or(default_port);
        self.allowed_hosts.iter().any(|allowed| {
            allowed.parse::<hyper::http::uri::Authority>().is_ok_and(|allowed| {
                allowed.host().eq_ignore_ascii_case(authority.host())
                    && allowed.port_u16().unwrap_or(default_port) == port
            })
        })
    }
}

/// What `WasiHttpHooks::send_request` returns.
type SendRequestFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                hyper::Response<wasmtime_wasi_http::WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: hyper::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        _response_done: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendRequestFuture {
        if !self.allows(request.uri()) {
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            ))
        })
    }
}

/// Counts the linear memory of one wasm instance and refuses growth past the limit,
/// remembering that it did (the guest then usually traps, and the trap is explained).
struct MemoryLimiter {
    limit: usize,
    total: usize,
    exceeded: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|maximum| desired > maximum) {
            return Ok(false);
        }
        let growth = desired.saturating_sub(current);
        if self.total.saturating_add(growth) > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        self.total += growth;
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(maximum.is_none_or(|maximum| desired <= maximum))
    }
}

/// The running guest call's time budget, checked at every epoch tick.
struct CallDeadline {
    started: Instant,
    budget: Duration,
    exceeded: bool,
}

/// What kind of guest call is running: decides its budget and how a failure is worded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CallKind {
    /// An orchestrator or entity call (or instantiation, or the registry): `call_timeout`.
    Call,
    /// An activity run: `activity_timeout`.
    Activity,
}

impl CallKind {
    fn budget(self, limits: &GuestLimits) -> Duration {
        match self {
            CallKind::Call => limits.call_timeout,
            CallKind::Activity => limits.activity_timeout,
        }
    }
}

/// Starts a guest call's budget: the epoch callback traps once it has elapsed.
fn begin_call(store: &mut Store<HostState>, budget: Duration) {
    let state = store.data_mut();
    state.deadline = CallDeadline {
        started: Instant::now(),
        budget,
        exceeded: false,
    };
    state.memory.exceeded = false;
    store.set_epoch_deadline(1);
}

/// Runs a guest call under its budget. The epoch callback stops a guest that runs wasm past
/// it; this timeout stops one blocked in the host (a wasi sleep, an HTTP request) past it.
/// `None` means the timeout fired and the call's future was dropped.
async fn within_budget<T>(
    budget: Duration,
    call: impl Future<Output = wasmtime::Result<T>>,
) -> Option<wasmtime::Result<T>> {
    tokio::time::timeout(budget + BLOCKED_CALL_GRACE, call).await.ok()
}

/// Explains why a guest call failed: a time or memory limit, a stack overflow, or another
/// trap. `what` names the guest function (`orchestrator 'X'`).
fn explain_failure(
    what: &str,
    kind: CallKind,
    limits: &GuestLimits,
    state: &HostState,
    error: Option<&wasmtime::Error>,
    stderr: &CapturedOutput,
) -> GuestTrap {
    let timed_out = error.is_none() || state.deadline.exceeded;
    let mut message = if timed_out {
        let millis = kind.budget(limits).as_millis();
        match kind {
            CallKind::Call => format!("{what} exceeded the CPU time limit of {millis} ms per call"),
            CallKind::Activity => format!("{what} exceeded its time limit of {millis} ms"),
        }
    } else if state.memory.exceeded {
        format!("{what} exceeded the memory limit of {} bytes", limits.memory_bytes)
    } else {
        let error = error.expect("not timed out");
        let root = error.root_cause().to_string();
        if error.downcast_ref::<Trap>() == Some(&Trap::StackOverflow) {
            format!("{what} overflowed its stack: stack overflow ({root}), too deep a recursion")
        } else {
            // The outer causes are wasmtime's context, mostly the wasm backtrace: keep its
            // first frames.
            let mut context: Vec<String> = error.chain().map(|cause| cause.to_string()).collect();
            context.pop();
            let mut context: String = context
                .join("\n")
                .lines()
                .take(TRAP_CONTEXT_LINES)
                .collect::<Vec<_>>()
                .join("\n");
            truncate(&mut context, TRAP_CONTEXT_BYTES);
            if context.is_empty() {
                format!("{what} trapped: {root}")
            } else {
                format!("{what} trapped: {root}\n{context}")
            }
        }
    };
    let tail = stderr.tail();
    if !tail.trim().is_empty() {
        message.push_str("\nguest stderr:\n");
        message.push_str(tail.trim_end());
    }
    GuestTrap { message }
}

/// Cuts `text` to at most `max` bytes, on a character boundary, marking the cut.
fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(" [...]");
    }
}

/// The wasmtime engine and linker shared by every app.
pub struct WasmRuntime {
    engine: Engine,
    linker: Linker<HostState>,
    cache_dir: Option<PathBuf>,
    ticker_stop: Arc<AtomicBool>,
    /// The host-wide budget of idle instance memory.
    idle: Arc<IdleMemory>,
    /// Every app's activity pool, for the sweep that drops expired idle instances.
    pools: Arc<Mutex<Vec<Weak<ActivityPool>>>>,
}

/// The host-wide budget of idle instance memory when none is configured.
pub const DEFAULT_HOST_IDLE_MEMORY_BYTES: usize = 8 << 30;

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
    /// Its limits and its activities' grants.
    pub sandbox: Sandbox,
    pre: bindings::AppPre<HostState>,
    /// Activity instances between calls. Instantiating (and later unmapping) an instance per
    /// call cost more than the call itself: the unmaps' TLB shootdowns dominated the profile.
    idle_activities: Arc<ActivityPool>,
}

/// How many idle activity instances an app keeps; more concurrent calls instantiate anew
/// and the surplus is dropped when they finish.
const IDLE_ACTIVITY_INSTANCES: usize = 32;
/// How often idle activity instances past their `instance_idle` are looked for, in epoch
/// ticks.
const EXPIRY_SWEEP_TICKS: u32 = 100;

/// An instance of an app in its activity sandbox, reused from call to call. A call that
/// traps or runs out of time drops it, so a reused instance is one whose last call returned.
struct ActivityInstance {
    store: Store<HostState>,
    instance: bindings::App,
    stderr: CapturedOutput,
}

/// An activity instance in the pool: when it became idle, and the memory it holds against
/// the idle budgets.
struct IdleActivity {
    instance: ActivityInstance,
    since: Instant,
    _charge: IdleCharge,
}

/// The idle activity instances of one app version.
///
/// Kept instances are bounded three ways: by count, by the memory each may hold
/// (`idle_instance_bytes`) and by the idle budgets of the hub and the host; one unused for
/// `instance_idle` is dropped, which unmaps its memory.
struct ActivityPool {
    idle: Mutex<Vec<IdleActivity>>,
    keep_for: Duration,
}

impl ActivityPool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<IdleActivity>> {
        self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes the most recently used instance, if any.
    fn pop(&self) -> Option<ActivityInstance> {
        self.drop_expired();
        self.lock().pop().map(|idle| idle.instance)
    }

    /// Keeps `instance` if the bounds allow; otherwise it is dropped (and its memory freed).
    fn put(&self, instance: ActivityInstance, limits: &GuestLimits, hub: &Arc<IdleMemory>, host: &Arc<IdleMemory>) {
        let bytes = instance.store.data().memory.total;
        if bytes > limits.idle_instance_bytes {
            return;
        }
        let mut idle = self.lock();
        if idle.len() >= IDLE_ACTIVITY_INSTANCES {
            return;
        }
        if let Some(charge) = IdleCharge::take(hub, host, bytes) {
            idle.push(IdleActivity {
                instance,
                since: Instant::now(),
                _charge: charge,
            });
        }
    }

    /// Drops the instances idle for longer than `keep_for`. Instances are pushed as they
    /// become idle and popped from the end, so the pool is ordered by `since` and the
    /// expired ones are a prefix: the common case allocates nothing.
    fn drop_expired(&self) {
        let expired: Vec<IdleActivity> = {
            let mut idle = self.lock();
            let count = idle.partition_point(|instance| instance.since.elapsed() >= self.keep_for);
            if count == 0 {
                return;
            }
            idle.drain(..count).collect()
        };
        // Unmapping happens here, outside the lock.
        drop(expired);
    }
}

impl WasmRuntime {
    /// Creates the engine. Compiled components are cached in `cache_dir`, keyed by content
    /// hash, so a restart does not recompile.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, EngineError> {
        let engine_error = |error: wasmtime::Error| EngineError(format!("{error:#}"));
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.concurrency_support(false);
        let engine = Engine::new(&config).map_err(engine_error)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
        // Every component may import wasi:http (the JS SDK does); only activities with
        // allowed hosts can use it.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(engine_error)?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.weak();
        let stop = ticker_stop.clone();
        let pools: Arc<Mutex<Vec<Weak<ActivityPool>>>> = Arc::default();
        let swept = pools.clone();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                let mut ticks = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match ticker_engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                    ticks += 1;
                    if ticks.is_multiple_of(EXPIRY_SWEEP_TICKS) {
                        let live: Vec<Arc<ActivityPool>> = {
                            let mut pools = swept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                            pools.retain(|pool| pool.strong_count() > 0);
                            pools.iter().filter_map(Weak::upgrade).collect()
                        };
                        for pool in live {
                            pool.drop_expired();
                        }
                    }
                }
            })
            .map_err(|error| EngineError(format!("the epoch ticker thread: {error}")))?;
        Ok(WasmRuntime {
            engine,
            linker,
            cache_dir,
            ticker_stop,
            idle: IdleMemory::new(DEFAULT_HOST_IDLE_MEMORY_BYTES),
            pools,
        })
    }

    /// Sets the host-wide budget of idle instance memory (before any app is loaded).
    pub fn with_idle_memory_bytes(mut self, limit: usize) -> Self {
        self.idle = IdleMemory::new(limit);
        self
    }

    /// The host-wide budget of idle instance memory.
    pub fn idle_memory(&self) -> &Arc<IdleMemory> {
        &self.idle
    }

    fn new_pool(&self, keep_for: Duration) -> Arc<ActivityPool> {
        let pool = Arc::new(ActivityPool {
            idle: Mutex::new(Vec::new()),
            keep_for,
        });
        self.pools
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Arc::downgrade(&pool));
        pool
    }

    /// Loads an app from a file: [`WasmRuntime::load_bytes`] of its contents.
    pub async fn load(&self, path: &Path, sandbox: Sandbox) -> Result<App, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            file: path.to_owned(),
            source,
        })?;
        self.load_bytes(path, &bytes, sandbox).await
    }

    /// Loads an app from its bytes: compiles it (or takes it from the cache), checks it
    /// fits the world, checks its granted directories open, and reads its registry.
    /// `label` is what [`App::path`] and errors show (the file, or where an upload came
    /// from).
    pub async fn load_bytes(&self, label: &Path, bytes: &[u8], sandbox: Sandbox) -> Result<App, LoadError> {
        let path = label;
        let hash = hex(&Sha256::digest(bytes));
        let component = self.compile(path, bytes, &hash)?;
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
        if let Err(error) = activity_wasi(&sandbox.grants, CapturedOutput::default()) {
            return Err(LoadError::Grants {
                file: path.to_owned(),
                detail: format!("{error:#}"),
            });
        }
        let registry_error = |trap: GuestTrap| LoadError::Registry {
            file: path.to_owned(),
            detail: trap.message,
        };
        let limits = &sandbox.limits;
        let stderr = CapturedOutput::default();
        let wasi = WasiCtx::builder().stdout(stderr.clone()).stderr(stderr.clone()).build();
        let mut store = self.new_store(wasi, &[], limits);
        let explain = |store: &Store<HostState>, error: Option<&wasmtime::Error>, what: &str| {
            explain_failure(what, CallKind::Call, limits, store.data(), error, &stderr)
        };
        begin_call(&mut store, limits.call_timeout);
        let app = match within_budget(limits.call_timeout, pre.instantiate_async(&mut store)).await {
            Some(Ok(app)) => app,
            Some(Err(error)) => return Err(registry_error(explain(&store, Some(&error), "instantiating it"))),
            None => return Err(registry_error(explain(&store, None, "instantiating it"))),
        };
        begin_call(&mut store, limits.call_timeout);
        let functions = match within_budget(
            limits.call_timeout,
            app.durable_functions_registry().call_functions(&mut store),
        )
        .await
        {
            Some(Ok(functions)) => functions,
            Some(Err(error)) => return Err(registry_error(explain(&store, Some(&error), "its registry"))),
            None => return Err(registry_error(explain(&store, None, "its registry"))),
        };
        let functions = functions
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
            idle_activities: self.new_pool(sandbox.limits.instance_idle),
            sandbox,
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

    /// A store whose guest may send HTTP to `allowed_hosts`, with `limits`' memory, that
    /// yields to the executor at every epoch tick and traps once its call's budget (see
    /// [`begin_call`]) has elapsed.
    fn new_store(&self, wasi: WasiCtx, allowed_hosts: &[String], limits: &GuestLimits) -> Store<HostState> {
        let mut store = Store::new(
            &self.engine,
            HostState {
                wasi,
                http: WasiHttpCtx::new(),
                http_policy: HttpPolicy {
                    allowed_hosts: allowed_hosts.into(),
                },
                table: ResourceTable::new(),
                memory: MemoryLimiter {
                    limit: limits.memory_bytes,
                    total: 0,
                    exceeded: false,
                },
                deadline: CallDeadline {
                    started: Instant::now(),
                    budget: limits.call_timeout,
                    exceeded: false,
                },
            },
        );
        store.limiter(|state| &mut state.memory);
        store.epoch_deadline_callback(|mut context: StoreContextMut<'_, HostState>| {
            let deadline = &mut context.data_mut().deadline;
            if deadline.started.elapsed() >= deadline.budget {
                deadline.exceeded = true;
                Err(wasmtime::format_err!("the guest call exceeded its time budget"))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store.set_epoch_deadline(1);
        store
    }

    /// Runs activity `name` with the app's grants, in an idle instance of the app or a new
    /// one. The outer error is a trap, a limit or a host failure; the inner one is the
    /// activity's own failure.
    ///
    /// Activities share their instance's globals from call to call, as functions share a
    /// worker process in Durable Functions; instances are never shared between apps or
    /// versions, and one that trapped is dropped.
    ///
    /// An instance kept afterwards counts against `hub_budget` and the host's budget.
    pub async fn run_activity(
        &self,
        app: &App,
        hub_budget: &Arc<IdleMemory>,
        name: &str,
        input: Option<&String>,
        instance_id: &str,
        task_id: i32,
    ) -> Result<Result<Option<String>, FailureDetails>, GuestTrap> {
        let what = format!("activity '{name}'");
        let limits = &app.sandbox.limits;
        // Instantiation and the run share one budget.
        let budget = limits.activity_timeout;
        let idle = app.idle_activities.pop();
        let (mut store, instance, stderr) = match idle {
            Some(ActivityInstance {
                store,
                instance,
                stderr,
            }) => {
                stderr.clear();
                (store, Some(instance), stderr)
            }
            None => {
                let stderr = CapturedOutput::default();
                let wasi = activity_wasi(&app.sandbox.grants, stderr.clone()).map_err(|error| GuestTrap {
                    message: format!("{what} cannot be given its grants: {error:#}"),
                })?;
                let store = self.new_store(wasi, &app.sandbox.grants.allowed_hosts, limits);
                (store, None, stderr)
            }
        };
        begin_call(&mut store, budget);
        let call = async {
            let instance = match instance {
                Some(instance) => instance,
                None => app.pre.instantiate_async(&mut store).await?,
            };
            let context = wit::ActivityContext {
                instance_id: instance_id.to_owned(),
                task_scheduled_id: task_id,
            };
            let result = instance
                .durable_functions_activity()
                .call_run(&mut store, name, input, &context)
                .await?;
            Ok((instance, result))
        };
        let outcome = within_budget(budget, call).await;
        let error = match outcome {
            Some(Ok((instance, result))) => {
                let kept = ActivityInstance {
                    store,
                    instance,
                    stderr,
                };
                app.idle_activities.put(kept, limits, hub_budget, &self.idle);
                return Ok(result.map_err(failure_from_wit));
            }
            Some(Err(error)) => Some(error),
            None => None,
        };
        Err(explain_failure(
            &what,
            CallKind::Activity,
            limits,
            store.data(),
            error.as_ref(),
            &stderr,
        ))
    }

    /// Creates one orchestration (execution `execution_id` of `instance_id`, running
    /// orchestrator `name`) in a wasm instance of its own, in the deterministic sandbox.
    ///
    /// One instance per execution, not per app: whatever state a guest keeps outside the
    /// orchestration object (std's per-thread `HashMap` keys, a language runtime's caches,
    /// plain statics) then depends only on this execution's own history. A replay after a
    /// restart, on another host, or after other instances ran in another order sees exactly
    /// what the first run saw.
    pub async fn orchestration(
        &self,
        app: &App,
        name: &str,
        instance_id: &str,
        execution_id: u64,
    ) -> Result<OrchestrationGuest, GuestTrap> {
        let seed = OrchestrationSeed::of(instance_id, execution_id);
        let mut sandbox = self.deterministic_instance(app, seed).await?;
        let budget = sandbox.limits.call_timeout;
        begin_call(&mut sandbox.store, budget);
        let orchestrator = sandbox.instance.durable_functions_orchestrator().orchestration();
        let outcome = within_budget(
            budget,
            orchestrator.call_constructor(&mut sandbox.store, name, instance_id),
        )
        .await;
        let resource = sandbox.finish(outcome, || format!("orchestrator '{name}' (in its constructor)"))?;
        Ok(OrchestrationGuest {
            sandbox,
            resource,
            name: name.to_owned(),
        })
    }

    /// Creates the wasm instance that runs an app's entities, in the deterministic sandbox.
    pub async fn entity_host(&self, app: &App) -> Result<EntityHost, GuestTrap> {
        let seed = OrchestrationSeed { rng: 0, insecure: 0 };
        Ok(EntityHost(self.deterministic_instance(app, seed).await?))
    }

    /// Instantiates `app` with no files, sockets or environment, a clock the host sets per
    /// call and random sources drawn from `seed`.
    async fn deterministic_instance(&self, app: &App, seed: OrchestrationSeed) -> Result<Deterministic, GuestTrap> {
        let clock = Arc::new(AtomicI64::new(0));
        let rng = Arc::new(AtomicU64::new(seed.rng));
        let stderr = CapturedOutput::default();
        let wasi = WasiCtx::builder()
            .wall_clock(RecordedClock(clock.clone()))
            .monotonic_clock(RecordedClock(clock.clone()))
            .secure_random(SeededRng(rng.clone()))
            .insecure_random(SeededRng(rng.clone()))
            .insecure_random_seed(seed.insecure)
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = app.sandbox.limits.clone();
        // No allowed hosts: every wasi:http request is denied.
        let mut store = self.new_store(wasi, &[], &limits);
        begin_call(&mut store, limits.call_timeout);
        let outcome = within_budget(limits.call_timeout, app.pre.instantiate_async(&mut store)).await;
        let error = match outcome {
            Some(Ok(instance)) => {
                return Ok(Deterministic {
                    store,
                    instance,
                    clock,
                    stderr,
                    limits,
                });
            }
            Some(Err(error)) => Some(error),
            None => None,
        };
        Err(explain_failure(
            "instantiating the orchestrator sandbox",
            CallKind::Call,
            &limits,
            store.data(),
            error.as_ref(),
            &stderr,
        ))
    }
}

/// The WASI of an activity: the granted environment and directories, stdout and stderr
/// (echoed to the host's; stderr's tail also explains traps), no sockets (outbound HTTP
/// goes through wasi:http and its allowlist).
fn activity_wasi(grants: &ActivityGrants, stderr: CapturedOutput) -> wasmtime::Result<WasiCtx> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .inherit_stdout()
        .stderr(stderr)
        .envs(&grants.env)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    for dir in &grants.dirs {
        let perms = if dir.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        builder
            .preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|error| wasmtime::format_err!("directory {}: {error:#}", dir.host.display()))?;
    }
    Ok(builder.build())
}

/// A wasm instance of an app in the deterministic sandbox, with the clock and random state
/// the host sets around each call.
struct Deterministic {
    store: Store<HostState>,
    instance: bindings::App,
    clock: Arc<AtomicI64>,
    stderr: CapturedOutput,
    limits: GuestLimits,
}

impl Deterministic {
    /// The result of a guest call run by [`within_budget`] after [`begin_call`], with its
    /// failure explained.
    fn finish<T>(&self, outcome: Option<wasmtime::Result<T>>, what: impl FnOnce() -> String) -> Result<T, GuestTrap> {
        let error = match outcome {
            Some(Ok(value)) => return Ok(value),
            Some(Err(error)) => Some(error),
            None => None,
        };
        Err(explain_failure(
            &what(),
            CallKind::Call,
            &self.limits,
            self.store.data(),
            error.as_ref(),
            &self.stderr,
        ))
    }
}

/// One live orchestration: one execution's guest resource in a wasm instance of its own.
///
/// A trap poisons the instance, and so only this orchestration: drop it (it replays into a
/// new one). Dropping it frees the whole instance; nothing durable depends on its state.
pub struct OrchestrationGuest {
    sandbox: Deterministic,
    resource: ResourceAny,
    name: String,
}

impl OrchestrationGuest {
    /// Feeds one episode; `now` is what the guest's clocks read. The random state carries
    /// on from the previous episode, as it did when the episodes were recorded.
    pub async fn apply(
        &mut self,
        events: &[HistoryEvent],
        replaying: bool,
        now: Timestamp,
    ) -> Result<EpisodeResult, GuestTrap> {
        let sandbox = &mut self.sandbox;
        sandbox.clock.store(now.0, Ordering::Relaxed);
        let events: Vec<wit::HistoryEvent> = events.iter().filter_map(event_to_wit).collect();
        let budget = sandbox.limits.call_timeout;
        begin_call(&mut sandbox.store, budget);
        let orchestrator = sandbox.instance.durable_functions_orchestrator().orchestration();
        let outcome = within_budget(
            budget,
            orchestrator.call_apply(&mut sandbox.store, self.resource, &events, replaying),
        )
        .await;
        let result = sandbox.finish(outcome, || format!("orchestrator '{}'", self.name))?;
        Ok(EpisodeResult {
            actions: result.actions.into_iter().map(action_from_wit).collect(),
            custom_status: result.custom_status,
        })
    }

    /// The linear memory its instance holds, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.sandbox.store.data().memory.total
    }
}

impl durable_core::replay::EpisodeGuest for OrchestrationGuest {
    type Error = GuestTrap;

    fn apply(
        &mut self,
        events: &[HistoryEvent],
        replaying: bool,
        time: Timestamp,
    ) -> impl std::future::Future<Output = Result<EpisodeResult, GuestTrap>> + Send {
        OrchestrationGuest::apply(self, events, replaying, time)
    }
}

/// The wasm instance of an app that runs its entities' batches (entities are not replayed,
/// so one instance serves them all). A trap poisons it: drop it and make a new one.
pub struct EntityHost(Deterministic);

impl EntityHost {
    /// Runs a batch of operations on an entity.
    pub async fn run_entity(
        &mut self,
        entity: &EntityId,
        state: Option<&String>,
        operations: &[(String, Option<String>)],
    ) -> Result<EntityBatch, GuestTrap> {
        let sandbox = &mut self.0;
        let operations: Vec<EntityOperation> = operations
            .iter()
            .map(|(name, input)| EntityOperation {
                name: name.clone(),
                input: input.clone(),
            })
            .collect();
        let wit_entity = entity_to_wit(entity);
        let budget = sandbox.limits.call_timeout;
        begin_call(&mut sandbox.store, budget);
        let outcome = within_budget(
            budget,
            sandbox
                .instance
                .durable_functions_entity()
                .call_run(&mut sandbox.store, &wit_entity, state, &operations),
        )
        .await;
        let batch = sandbox.finish(outcome, || format!("entity '{entity}'"))?;
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
}

/// Where an orchestration's randomness starts: a hash of its instance id and execution id,
/// so every run and replay of one execution draws the same numbers (and the executions of
/// a continue-as-new chain draw different ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OrchestrationSeed {
    /// The initial state of the stream behind `wasi:random/random` and `insecure`.
    rng: u64,
    /// What `wasi:random/insecure-seed` returns (std seeds its `HashMap` keys from it).
    insecure: u128,
}

impl OrchestrationSeed {
    fn of(instance_id: &str, execution_id: u64) -> OrchestrationSeed {
        let mut hasher = Sha256::new();
        hasher.update(instance_id.as_bytes());
        hasher.update([0]);
        hasher.update(execution_id.to_le_bytes());
        let digest = hasher.finalize();
        OrchestrationSeed {
            rng: u64::from_le_bytes(digest[..8].try_into().expect("sha-256 has 32 bytes")),
            insecure: u128::from_le_bytes(digest[8..24].try_into().expect("sha-256 has 32 bytes")),
        }
    }
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
    /// Forgets what an earlier call wrote, so a trap is explained by its own call's output.
    fn clear(&self) {
        self.0.lock().expect("stderr buffer lock").clear();
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str]) -> HttpPolicy {
        HttpPolicy {
            allowed_hosts: allowed.iter().map(|host| host.to_string()).collect(),
        }
    }

    fn allows(policy: &HttpPolicy, uri: &str) -> bool {
        policy.allows(&uri.parse().expect("a URI"))
    }

    #[test]
    fn an_idle_charge_takes_from_every_budget_or_from_none_and_gives_back_on_drop() {
        let hub = IdleMemory::new(100);
        let host = IdleMemory::new(150);
        let first = IdleCharge::take(&hub, &host, 80).expect("fits both");
        assert_eq!((hub.held(), host.held()), (80, 80));
        // The hub's budget cannot give 30 more: neither budget is charged.
        assert!(IdleCharge::take(&hub, &host, 30).is_none());
        assert_eq!((hub.held(), host.held()), (80, 80));
        let other_hub = IdleMemory::new(100);
        // The host's budget cannot give 80 more, though the other hub's can.
        assert!(IdleCharge::take(&other_hub, &host, 80).is_none());
        assert_eq!((other_hub.held(), host.held()), (0, 80));
        drop(first);
        assert_eq!((hub.held(), host.held()), (0, 0));
    }

    #[test]
    fn orchestration_seeds_differ_by_instance_and_execution_and_never_by_run() {
        let seed = OrchestrationSeed::of("order-1", 7);
        assert_eq!(seed, OrchestrationSeed::of("order-1", 7));
        assert_ne!(seed, OrchestrationSeed::of("order-1", 8));
        assert_ne!(seed, OrchestrationSeed::of("order-2", 7));
        assert_ne!(seed.insecure, 0);
    }

    #[test]
    fn http_allowlist_matches_host_and_port_case_insensitively() {
        let policy = policy(&["api.example.com", "127.0.0.1:8080"]);
        assert!(allows(&policy, "https://API.Example.com/x"));
        assert!(allows(&policy, "https://api.example.com:443/x"));
        assert!(allows(&policy, "http://api.example.com/x"));
        assert!(!allows(&policy, "https://api.example.com:8443/x"));
        assert!(!allows(&policy, "https://evil.api.example.com/x"));
        assert!(!allows(&policy, "https://api.example.com.evil/x"));
        assert!(allows(&policy, "http://127.0.0.1:8080/"));
        assert!(!allows(&policy, "http://127.0.0.1/"));
        assert!(!allows(&policy, "http://127.0.0.1:8081/"));
        assert!(!allows(&policy, "/no/authority"));
        assert!(!allows(&self::policy(&[]), "http://127.0.0.1:8080/"));
    }

    #[test]
    fn memory_limiter_counts_every_memory_of_the_instance() {
        let mut limiter = MemoryLimiter {
            limit: 4 << 16,
            total: 0,
            exceeded: false,
        };
        assert!(limiter.memory_growing(0, 2 << 16, None).unwrap());
        assert!(limiter.memory_growing(0, 2 << 16, None).unwrap(), "a second memory");
        assert!(!limiter.exceeded);
        assert!(!limiter.memory_growing(2 << 16, 3 << 16, None).unwrap());
        assert!(limiter.exceeded);
    }
}
