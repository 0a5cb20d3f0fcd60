//! The deterministic sandbox of orchestrators and entities: no files, sockets or
//! environment, a clock the host sets per call ([`RecordedClock`]) and random sources
//! seeded per orchestration execution ([`OrchestrationSeed`], [`SeededRng`]). One wasm
//! instance per orchestration execution ([`OrchestrationGuest`]); one per app for its
//! entities ([`EntityHost`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::Store;
use wasmtime::component::ResourceAny;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx};

use durable_core::history::{EntityBatch, EntityId, EpisodeResult, HistoryEvent, Timestamp};

use crate::app::App;
use crate::bindings;
use crate::bindings::durable::functions::types as wit;
use crate::bindings::exports::durable::functions::entity::Operation as EntityOperation;
use crate::convert::{entity_batch_from_wit, entity_to_wit, episode_result_from_wit, event_to_wit};
use crate::errors::{GuestTrap, explain_failure};
use crate::limits::{CallKind, GuestLimits, begin_call, within_budget};
use crate::runtime::WasmRuntime;
use crate::stderr::CapturedOutput;
use crate::store::HostState;

impl WasmRuntime {
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
        Ok(episode_result_from_wit(result))
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
        Ok(entity_batch_from_wit(batch))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orchestration_seeds_differ_by_instance_and_execution_and_never_by_run() {
        let seed = OrchestrationSeed::of("order-1", 7);
        assert_eq!(seed, OrchestrationSeed::of("order-1", 7));
        assert_ne!(seed, OrchestrationSeed::of("order-1", 8));
        assert_ne!(seed, OrchestrationSeed::of("order-2", 7));
        assert_ne!(seed.insecure, 0);
    }
}
