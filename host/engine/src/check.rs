//! Would a new version of an app break the instances in flight? Replays the history of
//! every unfinished instance of a task hub against a candidate component and reports,
//! per instance, whether the candidate would diverge.
//!
//! The replay is the runtime's revive: a fresh orchestration in a wasm instance of its own,
//! its randomness seeded by the instance and execution ids (both through
//! [`WasmRuntime::orchestration`]), fed by the same driver, [`replay::replay_episodes`]: one
//! `apply` per recorded episode with `replaying = true` and the clock reading that episode's
//! recorded time, each checked against the recorded actions. Nothing is written: the store is
//! only read, and the candidate runs in the deterministic orchestrator sandbox.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use durable_engine::check;
//! use durable_store::RedbStore;
//! use durable_wasm::{Sandbox, WasmRuntime};
//! let store = RedbStore::open("store.redb".as_ref())?;
//! let wasm = WasmRuntime::new(None)?;
//! let candidate = wasm.load("new_version.wasm".as_ref(), Sandbox::default()).await?;
//! let report = check::check_candidate(&store, &wasm, &candidate).await?;
//! for instance in &report.instances {
//!     println!("{} {} {:?}", instance.instance_id, instance.name, instance.verdict);
//! }
//! # Ok(()) }
//! ```

use serde::{Deserialize, Serialize};

use durable_core::history::RuntimeStatus;
use durable_core::replay::{self, ExecutionState, ReplayStop};
use durable_store::{self, ListCursor, ListFilter, StoreError, TaskStore};
use durable_wasm::{App, FunctionKind, WasmRuntime};

/// The statuses of instances a new version would have to take over.
pub const CHECKED_STATUSES: [RuntimeStatus; 3] =
    [RuntimeStatus::Pending, RuntimeStatus::Running, RuntimeStatus::Suspended];

/// How many instance rows one listing page reads.
const PAGE: usize = 500;

/// What replaying one instance's history against the candidate showed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "camelCase")]
pub enum Verdict {
    /// Every recorded episode replayed to the recorded actions.
    Compatible,
    /// The candidate returned other actions than the history records; `message` is the
    /// replay module's nondeterminism error, naming the episode, the recorded event and the
    /// returned action.
    Diverges {
        /// What differs.
        message: String,
    },
    /// The candidate exports no orchestrator of the instance's name: the instance would fail
    /// on its next step.
    NotExported,
    /// The candidate trapped (in its constructor or replaying an episode).
    Trapped {
        /// The trap and the tail of the guest's stderr.
        message: String,
    },
}

impl Verdict {
    /// True for [`Verdict::Compatible`].
    pub fn is_compatible(&self) -> bool {
        matches!(self, Verdict::Compatible)
    }
}

/// One instance, checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceCheck {
    /// The instance id.
    pub instance_id: String,
    /// The orchestrator's name.
    pub name: String,
    /// The execution whose history was replayed.
    pub execution_id: u64,
    /// Its runtime status: `Pending`, `Running` or `Suspended`.
    pub runtime_status: RuntimeStatus,
    /// How many episodes the history records.
    pub episodes_recorded: usize,
    /// How many of them were fed to the candidate (the last one is where it diverged or
    /// trapped, if it did).
    pub episodes_replayed: usize,
    /// The result.
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// Counts of verdicts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckSummary {
    /// Instances checked.
    pub checked: usize,
    /// Verdict `Compatible`.
    pub compatible: usize,
    /// Verdict `Diverges`.
    pub diverges: usize,
    /// Verdict `NotExported`.
    pub not_exported: usize,
    /// Verdict `Trapped`.
    pub trapped: usize,
}

/// The result of [`check_candidate`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// SHA-256 of the candidate component, hex.
    pub candidate_hash: String,
    /// Every unfinished instance, in creation order.
    pub instances: Vec<InstanceCheck>,
    /// The verdicts, counted.
    pub summary: CheckSummary,
}

impl CheckReport {
    /// True if every instance is compatible (also when there are none).
    pub fn all_compatible(&self) -> bool {
        self.instances.iter().all(|instance| instance.verdict.is_compatible())
    }

    fn push(&mut self, instance: InstanceCheck) {
        let summary = &mut self.summary;
        summary.checked += 1;
        match instance.verdict {
            Verdict::Compatible => summary.compatible += 1,
            Verdict::Diverges { .. } => summary.diverges += 1,
            Verdict::NotExported => summary.not_exported += 1,
            Verdict::Trapped { .. } => summary.trapped += 1,
        }
        self.instances.push(instance);
    }
}

/// Replays every `Pending`, `Running` and `Suspended` instance of `store` against
/// `candidate` and reports a verdict per instance. Reads the store, writes nothing; safe
/// beside a running host (each instance's history is read in its own transaction, so one
/// that moves on meanwhile is checked as it was when read).
///
/// The candidate runs in one sandboxed wasm instance; a trap poisons it, so the next
/// instance gets a fresh one.
pub async fn check_candidate(
    store: &dyn TaskStore,
    wasm: &WasmRuntime,
    candidate: &App,
) -> Result<CheckReport, StoreError> {
    let filter = ListFilter {
        statuses: CHECKED_STATUSES.to_vec(),
        ..ListFilter::default()
    };
    let mut report = CheckReport {
        candidate_hash: candidate.hash.clone(),
        ..CheckReport::default()
    };
    let mut checker = Checker { wasm, candidate };
    let mut cursor: Option<ListCursor> = None;
    loop {
        let (records, next) = store.list(&filter, cursor.as_ref(), PAGE).await?;
        for record in records {
            if durable_store::is_entity_key(&record.instance_id) || !CHECKED_STATUSES.contains(&record.runtime_status) {
                continue;
            }
            let history = store.history(&record.instance_id).await?;
            let state = ExecutionState::from_history(&history);
            let name = if state.started { state.name } else { record.name };
            let episodes = replay::recorded_episodes(&history);
            let (episodes_replayed, verdict) = checker
                .check(&record.instance_id, record.execution_id, &name, &episodes)
                .await;
            report.push(InstanceCheck {
                instance_id: record.instance_id,
                name,
                execution_id: record.execution_id,
                runtime_status: record.runtime_status,
                episodes_recorded: episodes.len(),
                episodes_replayed,
                verdict,
            });
            // A long check beside a running host leaves the executor to others now and then.
            tokio::task::yield_now().await;
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(report)
}

/// The candidate, replayed into a fresh orchestration per instance by the same driver
/// (`replay::replay_episodes`, behind the `replay_history` with which `runtime` revives one).
struct Checker<'a> {
    wasm: &'a WasmRuntime,
    candidate: &'a App,
}

impl Checker<'_> {
    /// Replays one execution's episodes; returns how many were fed and the verdict.
    async fn check(
        &mut self,
        instance_id: &str,
        execution_id: u64,
        name: &str,
        episodes: &[replay::RecordedEpisode],
    ) -> (usize, Verdict) {
        let exported = self
            .candidate
            .functions
            .iter()
            .any(|(function, kind)| function == name && *kind == FunctionKind::Orchestrator);
        if !exported {
            return (0, Verdict::NotExported);
        }
        let mut guest = match self
            .wasm
            .orchestration(self.candidate, name, instance_id, execution_id)
            .await
        {
            Ok(guest) => guest,
            Err(trap) => return (0, Verdict::Trapped { message: trap.message }),
        };
        match replay::replay_episodes(&mut guest, episodes).await {
            Ok(episodes) => (episodes, Verdict::Compatible),
            Err(stop) => {
                let fed = stop.episodes_fed();
                let verdict = match stop {
                    ReplayStop::Guest { error, .. } => Verdict::Trapped { message: error.message },
                    ReplayStop::Diverged(divergence) => Verdict::Diverges {
                        message: divergence.to_string(),
                    },
                };
                (fed, verdict)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_serialize_flat_and_round_trip() {
        let mut report = CheckReport {
            candidate_hash: "abc".into(),
            ..CheckReport::default()
        };
        let instance = |id: &str, verdict| InstanceCheck {
            instance_id: id.into(),
            name: "Versioned".into(),
            execution_id: 7,
            runtime_status: RuntimeStatus::Running,
            episodes_recorded: 2,
            episodes_replayed: 1,
            verdict,
        };
        report.push(instance("a", Verdict::Compatible));
        report.push(instance(
            "b",
            Verdict::Diverges {
                message: "the history has TaskScheduled 'Version'".into(),
            },
        ));
        report.push(instance("c", Verdict::NotExported));
        report.push(instance("d", Verdict::Trapped { message: "boom".into() }));
        assert!(!report.all_compatible());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["instances"][0]["verdict"], "compatible");
        assert_eq!(json["instances"][1]["verdict"], "diverges");
        assert_eq!(
            json["instances"][1]["message"],
            "the history has TaskScheduled 'Version'"
        );
        assert_eq!(json["instances"][2]["verdict"], "notExported");
        assert_eq!(json["instances"][3]["verdict"], "trapped");
        assert_eq!(json["instances"][0]["instanceId"], "a");
        assert_eq!(json["instances"][0]["executionId"], 7);
        assert_eq!(json["instances"][0]["runtimeStatus"], "Running");
        assert_eq!(json["instances"][0]["episodesReplayed"], 1);
        assert_eq!(json["summary"]["checked"], 4);
        assert_eq!(json["summary"]["notExported"], 1);
        let back: CheckReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn an_empty_report_is_compatible() {
        assert!(CheckReport::default().all_compatible());
    }

    #[allow(dead_code)]
    fn the_check_future_is_send(store: &dyn TaskStore, wasm: &WasmRuntime, app: &App) {
        fn send<T: Send>(_: T) {}
        send(check_candidate(store, wasm, app));
    }
}
