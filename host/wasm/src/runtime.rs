//! The runtime ([`WasmRuntime`]): the wasmtime engine and linker every app shares, the
//! epoch ticker that drives call budgets and sweeps idle activity instances, and the
//! host-wide idle memory budget.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

use crate::activity::{ActivityPool, EXPIRY_SWEEP_TICKS};
use crate::errors::EngineError;
use crate::idle::IdleMemory;
use crate::limits::EPOCH_TICK;
use crate::store::HostState;

/// The wasmtime engine and linker shared by every app.
pub struct WasmRuntime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    /// Where compiled components are cached, if anywhere.
    pub(crate) cache_dir: Option<PathBuf>,
    ticker_stop: Arc<AtomicBool>,
    /// The host-wide budget of idle instance memory.
    pub(crate) idle: Arc<IdleMemory>,
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

    /// A new activity pool, registered for the sweep of expired idle instances.
    pub(crate) fn new_pool(&self, keep_for: Duration) -> Arc<ActivityPool> {
        let pool = Arc::new(ActivityPool::new(keep_for));
        self.pools
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Arc::downgrade(&pool));
        pool
    }
}
