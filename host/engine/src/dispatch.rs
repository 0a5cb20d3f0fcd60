//! The work loops of a task hub: the committer (group commit), the orchestration
//! worker, the activity workers and the timer service. Each wakes on a notification,
//! never on a polling interval.
//!
//! Flow: a write (a client's start, a step, an activity result, a fired timer) goes to the
//! committer; once its transaction is durable the committer acknowledges it and hands the
//! [`Notices`] to the loops: instances with new messages to the orchestration worker, new
//! work items to the activity workers, new timers to the timer service.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::runtime::{Apps, StepRunner};
use durable_core::history::Timestamp;
use durable_store::{
    ActivityWorkItem, Notices, StoreError, StoreEvent, TaskStore, TimerItem, TimerKey, Write, WriteResult,
    is_entity_key,
};
use durable_wasm::WasmRuntime;

/// How many writes one transaction takes at most, by [`Write::weight`].
const MAX_GROUP: usize = 512;

/// How many due timers one write fires.
const TIMERS_PER_WRITE: usize = 128;

/// A write failed to commit.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct CommitError(pub Arc<StoreError>);

/// Tuning of a task hub's loops.
#[derive(Clone, Debug)]
pub struct DispatchConfig {
    /// Live orchestrations kept in memory.
    pub cache_capacity: usize,
    /// Activities run at the same time.
    pub activity_concurrency: usize,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            cache_capacity: 10_000,
            activity_concurrency: 16,
        }
    }
}

type Reply = oneshot::Sender<Result<WriteResult, CommitError>>;

struct CommitRequest {
    write: Write,
    reply: Option<Reply>,
}

/// Submits writes to the committer.
#[derive(Clone)]
pub struct Committer {
    requests: mpsc::UnboundedSender<CommitRequest>,
}

impl Committer {
    /// Commits `write` (grouped with whatever else is waiting) and returns once it is durable.
    pub async fn commit(&self, write: Write) -> Result<WriteResult, CommitError> {
        self.submit(write).await
    }

    /// Queues `write` now; the returned future resolves once it is durable.
    fn submit(&self, write: Write) -> impl Future<Output = Result<WriteResult, CommitError>> + use<> {
        let (reply, answer) = oneshot::channel();
        let queued = self.requests.send(CommitRequest {
            write,
            reply: Some(reply),
        });
        async move {
            queued.map_err(|_| CommitError(Arc::new(shutting_down())))?;
            answer.await.map_err(|_| CommitError(Arc::new(shutting_down())))?
        }
    }
}

fn shutting_down() -> StoreError {
    StoreError::Closed
}

/// The running loops of one task hub.
pub struct Dispatcher {
    committer: Committer,
    committer_thread: Option<std::thread::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Channels from the committer (and from the store's events) to the loops.
#[derive(Clone)]
struct NoticeSinks {
    ready: mpsc::UnboundedSender<WorkerInput>,
    activities: mpsc::UnboundedSender<(u64, ActivityWorkItem)>,
    timers: mpsc::UnboundedSender<(TimerKey, TimerItem)>,
}

impl NoticeSinks {
    fn forward(&self, notices: Notices) {
        for instance_id in notices.ready {
            let _ = self.ready.send(WorkerInput::Ready(instance_id));
        }
        for item in notices.activities {
            let _ = self.activities.send(item);
        }
        for timer in notices.timers {
            let _ = self.timers.send(timer);
        }
    }
}

impl Dispatcher {
    /// Recovers pending work from the store and starts the loops.
    pub async fn start(
        store: Arc<dyn TaskStore>,
        wasm: Arc<WasmRuntime>,
        apps: Arc<Apps>,
        config: DispatchConfig,
    ) -> Result<Self, StoreError> {
        let recovery = store.recover().await?;
        let events = store.take_events();
        let (ready_tx, ready_rx) = mpsc::unbounded_channel();
        let (activity_tx, activity_rx) = mpsc::unbounded_channel();
        let (timer_tx, timer_rx) = mpsc::unbounded_channel();
        let sinks = NoticeSinks {
            ready: ready_tx.clone(),
            activities: activity_tx,
            timers: timer_tx,
        };
        sinks.forward(Notices {
            ready: recovery.ready,
            activities: recovery.activities,
            timers: recovery.timers,
        });

        let (requests, request_rx) = mpsc::unbounded_channel();
        let committer = Committer { requests };
        let committer_store = store.clone();
        let runtime = tokio::runtime::Handle::current();
        let mut tasks = Vec::new();
        if let Some(events) = events {
            tasks.push(tokio::spawn(forward_store_events(events, sinks.clone())));
        }
        let committer_thread = std::thread::Builder::new()
            .name("committer".into())
            .spawn(move || run_committer(runtime, committer_store, request_rx, sinks))
            .map_err(StoreError::from)?;

        let steps = StepRunner::new(wasm.clone(), apps.clone(), store, config.cache_capacity);
        tasks.push(tokio::spawn(run_orchestration_worker(
            steps,
            committer.clone(),
            ready_tx,
            ready_rx,
        )));
        let activity_rx = Arc::new(tokio::sync::Mutex::new(activity_rx));
        for _ in 0..config.activity_concurrency.max(1) {
            tasks.push(tokio::spawn(run_activity_worker(
                wasm.clone(),
                apps.clone(),
                committer.clone(),
                activity_rx.clone(),
            )));
        }
        tasks.push(tokio::spawn(run_timer_service(committer.clone(), timer_rx)));
        Ok(Dispatcher {
            committer,
            committer_thread: Some(committer_thread),
            tasks,
        })
    }

    /// Submits writes.
    pub fn committer(&self) -> &Committer {
        &self.committer
    }

    /// Stops the loops and waits until every write already submitted is committed.
    pub async fn shutdown(mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        drop(self.committer);
        if let Some(thread) = self.committer_thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Commits everything queued in one transaction, acknowledges, forwards notices; repeats.
fn run_committer(
    runtime: tokio::runtime::Handle,
    store: Arc<dyn TaskStore>,
    mut requests: mpsc::UnboundedReceiver<CommitRequest>,
    sinks: NoticeSinks,
) {
    let parallel = store.commit_concurrency().max(1);
    if parallel == 1 {
        while let Some(first) = requests.blocking_recv() {
            let (writes, replies) = gather(first, &mut requests);
            runtime.block_on(commit_batch(&*store, writes, replies, &sinks));
        }
        return;
    }
    // A database commits several transactions at once (one per connection): up to
    // `parallel` batches are in flight, and the next batch grows while it waits for a slot.
    runtime.block_on(async move {
        let slots = Arc::new(tokio::sync::Semaphore::new(parallel));
        while let Some(first) = requests.recv().await {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let (writes, replies) = gather(first, &mut requests);
            let (store, sinks) = (store.clone(), sinks.clone());
            tokio::spawn(async move {
                commit_batch(&*store, writes, replies, &sinks).await;
                drop(slot);
            });
        }
        let _ = slots.acquire_many(parallel as u32).await;
    });
}

/// `first` and whatever else is queued, up to [`MAX_GROUP`] by weight.
fn gather(
    first: CommitRequest,
    requests: &mut mpsc::UnboundedReceiver<CommitRequest>,
) -> (Vec<Write>, Vec<Option<Reply>>) {
    let mut weight = first.write.weight();
    let mut writes = vec![first.write];
    let mut replies = vec![first.reply];
    while weight < MAX_GROUP {
        match requests.try_recv() {
            Ok(request) => {
                weight += request.write.weight();
                writes.push(request.write);
                replies.push(request.reply);
            }
            Err(_) => break,
        }
    }
    (writes, replies)
}

/// Commits one batch, then acknowledges each write and forwards the notices.
async fn commit_batch(store: &dyn TaskStore, writes: Vec<Write>, replies: Vec<Option<Reply>>, sinks: &NoticeSinks) {
    match store.apply(&writes).await {
        Ok((results, notices)) => {
            for (reply, result) in replies.into_iter().zip(results) {
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(result));
                }
            }
            sinks.forward(notices);
        }
        Err(error) => {
            eprintln!("error: commit of {} writes failed: {error}", writes.len());
            let error = CommitError(Arc::new(error));
            for reply in replies.into_iter().flatten() {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

/// Hands what a shared store found (another host's messages, partitions taken over) to the
/// loops.
async fn forward_store_events(mut events: mpsc::UnboundedReceiver<StoreEvent>, sinks: NoticeSinks) {
    while let Some(event) = events.recv().await {
        match event {
            StoreEvent::Ready(ready) => sinks.forward(Notices {
                ready,
                ..Notices::default()
            }),
            StoreEvent::Gained(pending) => {
                // Another host may have stepped these instances since this one cached them.
                let _ = sinks.ready.send(WorkerInput::ForgetLive);
                sinks.forward(Notices {
                    ready: pending.ready,
                    activities: pending.activities,
                    timers: pending.timers,
                });
            }
        }
    }
}

enum WorkerInput {
    /// The instance has inbox messages.
    Ready(String),
    /// Drop every live orchestration: the store's view moved on without this host.
    ForgetLive,
    /// The instance's step committed (`true`) or did not (`false`).
    StepDone(String, bool),
}

/// Runs steps of ready instances one at a time; an instance is never stepped again before
/// its previous step's commit is acknowledged.
async fn run_orchestration_worker(
    mut steps: StepRunner,
    committer: Committer,
    inputs_tx: mpsc::UnboundedSender<WorkerInput>,
    mut inputs: mpsc::UnboundedReceiver<WorkerInput>,
) {
    let mut queue: VecDeque<String> = VecDeque::new();
    let mut queued: HashSet<String> = HashSet::new();
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut dirty: HashSet<String> = HashSet::new();
    loop {
        // Take every input already waiting before running the next step.
        let input = if queue.is_empty() {
            match inputs.recv().await {
                Some(input) => Some(input),
                None => return,
            }
        } else {
            inputs.try_recv().ok()
        };
        if let Some(input) = input {
            let ready = match input {
                WorkerInput::Ready(instance_id) => instance_id,
                WorkerInput::ForgetLive => {
                    steps.forget_live();
                    continue;
                }
                WorkerInput::StepDone(instance_id, committed) => {
                    in_flight.remove(&instance_id);
                    if !committed {
                        steps.evict(&instance_id);
                    }
                    if !dirty.remove(&instance_id) && committed {
                        continue;
                    }
                    instance_id
                }
            };
            if in_flight.contains(&ready) {
                dirty.insert(ready);
            } else if queued.insert(ready.clone()) {
                queue.push_back(ready);
            }
            continue;
        }
        // Orchestrations at the head of the queue are read together (one round trip on a
        // database), then stepped one by one; an entity is read and stepped alone.
        let mut batch = Vec::new();
        while batch.len() < READ_BATCH
            && let Some(next) = queue.front()
            && (batch.is_empty() || !is_entity_key(next))
        {
            let instance_id = queue.pop_front().expect("a front element");
            queued.remove(&instance_id);
            if !steps.owns(&instance_id) {
                // Another host steps it now (this one lost or gave back its partition).
                steps.evict(&instance_id);
                continue;
            }
            let entity = is_entity_key(&instance_id);
            batch.push(instance_id);
            if entity {
                break;
            }
        }
        if batch.len() == 1 && is_entity_key(&batch[0]) {
            let instance_id = batch.pop().expect("one entity");
            let step = steps
                .entity_step(&instance_id)
                .await
                .map(|commit| commit.map(|commit| Write::Entity(Box::new(commit))));
            submit_step(instance_id, step, &mut steps, &mut in_flight, &committer, &inputs_tx);
            continue;
        }
        if batch.is_empty() {
            continue;
        }
        let reads = match steps.read_many(&batch).await {
            Ok(reads) => reads,
            Err(error) => {
                eprintln!("error: reading {} instances failed: {error}", batch.len());
                for instance_id in &batch {
                    steps.evict(instance_id);
                }
                continue;
            }
        };
        for (instance_id, read) in batch.into_iter().zip(reads) {
            let step = steps
                .step_on(&instance_id, read)
                .await
                .map(|commit| commit.map(|commit| Write::Step(Box::new(commit))));
            submit_step(instance_id, step, &mut steps, &mut in_flight, &committer, &inputs_tx);
        }
    }
}

/// How many orchestrations the worker reads at once.
const READ_BATCH: usize = 64;

/// Hands a step's commit to the committer; its acknowledgement comes back to the worker as
/// [`WorkerInput::StepDone`].
fn submit_step(
    instance_id: String,
    step: Result<Option<Write>, StoreError>,
    steps: &mut StepRunner,
    in_flight: &mut HashSet<String>,
    committer: &Committer,
    inputs_tx: &mpsc::UnboundedSender<WorkerInput>,
) {
    match step {
        Ok(None) => {}
        Ok(Some(write)) => {
            in_flight.insert(instance_id.clone());
            let committer = committer.clone();
            let done = inputs_tx.clone();
            tokio::spawn(async move {
                let committed = match committer.commit(write).await {
                    Ok(Ok(_)) => true,
                    Ok(Err(_stale)) => false,
                    Err(error) => {
                        eprintln!("error: step of '{instance_id}' not committed: {error}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        false
                    }
                };
                let _ = done.send(WorkerInput::StepDone(instance_id, committed));
            });
        }
        Err(error) => {
            eprintln!("error: reading '{instance_id}' failed: {error}");
            steps.evict(&instance_id);
        }
    }
}

/// Takes work items one at a time, runs them, commits the result.
async fn run_activity_worker(
    wasm: Arc<WasmRuntime>,
    apps: Arc<Apps>,
    committer: Committer,
    items: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(u64, ActivityWorkItem)>>>,
) {
    loop {
        let next = items.lock().await.recv().await;
        let Some((key, item)) = next else { return };
        let message = StepRunner::run_activity(&wasm, &apps, &item).await;
        let write = Write::ActivityDone {
            key,
            instance_id: item.instance_id.clone(),
            message,
        };
        // The work item stays stored until this commit succeeds; retry until it does.
        while let Err(error) = committer.commit(write.clone()).await {
            eprintln!("error: result of activity '{}' not committed: {error}", item.name);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Commits one batch of due timers, retrying until it is durable. The batch joins the
/// committer's queue at once, ahead of the steps its own timers will cause.
fn fire(committer: &Committer, timers: Vec<(TimerKey, TimerItem)>) {
    let write = Write::TimersFired { timers };
    let first = committer.submit(write.clone());
    let committer = committer.clone();
    tokio::spawn(async move {
        let mut outcome = first.await;
        while let Err(error) = outcome {
            eprintln!("error: {} timers not committed: {error}", write.weight());
            tokio::time::sleep(Duration::from_secs(1)).await;
            outcome = committer.commit(write.clone()).await;
        }
    });
}

/// Sleeps until the earliest timer is due, fires every due timer, repeats.
async fn run_timer_service(committer: Committer, mut new_timers: mpsc::UnboundedReceiver<(TimerKey, TimerItem)>) {
    let mut timers: BTreeMap<TimerKey, TimerItem> = BTreeMap::new();
    loop {
        let now = Timestamp::now();
        let mut due = Vec::new();
        while let Some(entry) = timers.first_entry()
            && entry.key().fire_at <= now
        {
            due.push(entry.remove_entry());
            if due.len() == TIMERS_PER_WRITE {
                fire(&committer, std::mem::take(&mut due));
            }
        }
        if !due.is_empty() {
            fire(&committer, due);
        }
        let sleep = match timers.first_key_value() {
            Some((key, _)) => Duration::from_micros((key.fire_at.0 - Timestamp::now().0).max(0) as u64),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            received = new_timers.recv() => match received {
                Some((key, timer)) => { timers.insert(key, timer); }
                None => return,
            },
            () = tokio::time::sleep(sleep) => {}
        }
    }
}
