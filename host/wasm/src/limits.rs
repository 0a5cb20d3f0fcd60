//! The time and memory limits of a guest: [`GuestLimits`], the [`MemoryLimiter`] of a
//! store, and the budget of the running guest call ([`begin_call`], [`within_budget`],
//! and the epoch callback [`enforce`] installs).

use std::future::Future;
use std::time::{Duration, Instant};

use wasmtime::{ResourceLimiter, Store, StoreContextMut, UpdateDeadline};

use crate::store::HostState;

/// How often the epoch ticks: a running guest yields to the executor, and checks its
/// call's time budget, at every tick.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);
/// How long after its budget a guest call blocked in the host (not running wasm, so not
/// interrupted by the epoch) is abandoned.
pub(crate) const BLOCKED_CALL_GRACE: Duration = Duration::from_millis(200);

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

/// Counts the linear memory of one wasm instance and refuses growth past the limit,
/// remembering that it did (the guest then usually traps, and the trap is explained).
pub(crate) struct MemoryLimiter {
    pub(crate) limit: usize,
    /// The linear memory the instance holds now, in bytes.
    pub(crate) total: usize,
    /// Whether growth was refused since the call began.
    pub(crate) exceeded: bool,
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
pub(crate) struct CallDeadline {
    pub(crate) started: Instant,
    pub(crate) budget: Duration,
    /// Whether the epoch callback stopped the call.
    pub(crate) exceeded: bool,
}

/// What kind of guest call is running: decides its budget and how a failure is worded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    /// An orchestrator or entity call (or instantiation, or the registry): `call_timeout`.
    Call,
    /// An activity run: `activity_timeout`.
    Activity,
}

impl CallKind {
    pub(crate) fn budget(self, limits: &GuestLimits) -> Duration {
        match self {
            CallKind::Call => limits.call_timeout,
            CallKind::Activity => limits.activity_timeout,
        }
    }
}

/// Starts a guest call's budget: the epoch callback traps once it has elapsed.
pub(crate) fn begin_call(store: &mut Store<HostState>, budget: Duration) {
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
pub(crate) async fn within_budget<T>(
    budget: Duration,
    call: impl Future<Output = wasmtime::Result<T>>,
) -> Option<wasmtime::Result<T>> {
    tokio::time::timeout(budget + BLOCKED_CALL_GRACE, call).await.ok()
}

/// Puts `store` under its limits: the memory limiter, and an epoch callback that yields to
/// the executor at every tick and traps once the call's budget (see [`begin_call`]) has
/// elapsed.
pub(crate) fn enforce(store: &mut Store<HostState>) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
