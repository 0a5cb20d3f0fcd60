//! Running activities: [`WasmRuntime::run_activity`], in the granted sandbox, and the
//! pool of idle activity instances reused from call to call ([`ActivityPool`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::Store;

use durable_core::history::FailureDetails;

use crate::app::App;
use crate::bindings;
use crate::bindings::durable::functions::types as wit;
use crate::convert::failure_from_wit;
use crate::errors::{GuestTrap, explain_failure};
use crate::grants::activity_wasi;
use crate::idle::{IdleCharge, IdleMemory};
use crate::limits::{CallKind, GuestLimits, begin_call, within_budget};
use crate::runtime::WasmRuntime;
use crate::stderr::CapturedOutput;
use crate::store::HostState;

/// How many idle activity instances an app keeps; more concurrent calls instantiate anew
/// and the surplus is dropped when they finish.
const IDLE_ACTIVITY_INSTANCES: usize = 32;
/// How often idle activity instances past their `instance_idle` are looked for, in epoch
/// ticks.
pub(crate) const EXPIRY_SWEEP_TICKS: u32 = 100;

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
pub(crate) struct ActivityPool {
    idle: Mutex<Vec<IdleActivity>>,
    keep_for: Duration,
}

impl ActivityPool {
    /// An empty pool whose instances are dropped after `keep_for` unused.
    pub(crate) fn new(keep_for: Duration) -> ActivityPool {
        ActivityPool {
            idle: Mutex::new(Vec::new()),
            keep_for,
        }
    }

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
    pub(crate) fn drop_expired(&self) {
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
}
