//! The conformance suite of the storage contract: atomic steps, stale steps, rejections,
//! listing, purging, recovery after reopening. Every backend runs all of it
//! (`conformance::suite!(make_backend)` in its tests), so a backend that passes keeps
//! the invariants the engine relies on.

use std::sync::Arc;

use crate::*;

use durable_core::history::{
    EntityId, EntityRecord, EventKind, HistoryEvent, InstanceRecord, Message, RuntimeStatus, Timestamp,
};

fn start(store: &dyn TaskStore, id: &str) -> (InstanceRecord, Message) {
    let execution_id = store.allocate_id();
    let record = InstanceRecord {
        instance_id: id.into(),
        name: "E1_HelloSequence".into(),
        execution_id,
        runtime_status: RuntimeStatus::Pending,
        input: None,
        output: None,
        custom_status: None,
        failure: None,
        created_time: Timestamp(1),
        last_updated_time: Timestamp(1),
        parent: None,
        app_version: None,
    };
    let message = Message {
        execution_id: Some(execution_id),
        event: HistoryEvent::new(
            Timestamp(1),
            EventKind::ExecutionStarted {
                name: "E1_HelloSequence".into(),
                instance_id: id.into(),
                input: None,
                parent: None,
            },
        ),
    };
    (record, message)
}

/// Starts instance `id` and returns its row.
async fn started(store: &dyn TaskStore, id: &str) -> InstanceRecord {
    let (record, started) = start(store, id);
    let (results, _) = store
        .apply(&[Write::Start {
            record: Box::new(record.clone()),
            started,
        }])
        .await
        .unwrap();
    assert_eq!(results, vec![Ok(1)]);
    record
}

/// A first step of `record`: Running, one event, one activity and one timer.
fn step(record: &InstanceRecord, consumed: Vec<u64>) -> StepCommit {
    let mut commit = durable_core::step::unchanged_commit(record, consumed, 0);
    commit.record.runtime_status = RuntimeStatus::Running;
    commit.append = vec![HistoryEvent::new(Timestamp(2), EventKind::OrchestratorStarted)];
    commit.activities = vec![ActivityWorkItem {
        instance_id: record.instance_id.clone(),
        execution_id: record.execution_id,
        task_id: 0,
        name: "E1_SayHello".into(),
        input: Some("\"Tokyo\"".into()),
        app_version: None,
    }];
    commit.timers = vec![TimerItem {
        instance_id: record.instance_id.clone(),
        execution_id: record.execution_id,
        timer_id: 1,
        fire_at: Timestamp(99),
        message: None,
    }];
    commit
}

/// A conformance case.
pub async fn a_step_commits_history_work_items_timers_and_inbox_removal_together(backend: &dyn Backend) {
    let store = backend.open().await;
    let (record, started) = start(&*store, "a");
    let (results, notices) = store
        .apply(&[Write::Start {
            record: Box::new(record.clone()),
            started,
        }])
        .await
        .unwrap();
    assert_eq!(results, vec![Ok(1)]);
    assert_eq!(notices.ready, vec!["a".to_owned()]);
    let (_, inbox) = store.instance_and_inbox("a", 10).await.unwrap();
    let keys = inbox.iter().map(|(key, _)| *key).collect();

    let (results, notices) = store
        .apply(&[Write::Step(Box::new(step(&record, keys)))])
        .await
        .unwrap();
    assert_eq!(results, vec![Ok(1)]);
    assert_eq!(notices.activities.len(), 1);
    assert_eq!(notices.timers.len(), 1);
    assert!(notices.ready.is_empty(), "the inbox is empty after the step");
    assert_eq!(store.history("a").await.unwrap().len(), 1);
    assert_eq!(
        store.instance("a").await.unwrap().unwrap().runtime_status,
        RuntimeStatus::Running
    );

    drop(store);
    let reopened = backend.open().await;
    let recovery = reopened.recover().await.unwrap();
    assert!(recovery.ready.is_empty());
    assert_eq!(recovery.activities.len(), 1);
    assert_eq!(recovery.timers.len(), 1);
    assert!(
        reopened.allocate_id() > record.execution_id,
        "ids are never reused after a restart"
    );
}

/// A conformance case.
pub async fn a_step_of_a_replaced_execution_is_stale_and_writes_nothing(backend: &dyn Backend) {
    let store = backend.open().await;
    let record = started(&*store, "a").await;
    let mut stale = step(&record, Vec::new());
    stale.execution_id += 1000;
    let (results, notices) = store.apply(&[Write::Step(Box::new(stale))]).await.unwrap();
    assert_eq!(results, vec![Err(Rejection::Stale)]);
    assert!(notices.activities.is_empty());
    assert!(store.history("a").await.unwrap().is_empty());
}

/// A conformance case.
pub async fn starting_a_running_id_is_rejected_and_a_finished_one_is_replaced(backend: &dyn Backend) {
    let store = backend.open().await;
    let (record, started) = start(&*store, "a");
    store
        .apply(&[Write::Start {
            record: Box::new(record.clone()),
            started: started.clone(),
        }])
        .await
        .unwrap();
    let (results, _) = store
        .apply(&[Write::Start {
            record: Box::new(record.clone()),
            started: started.clone(),
        }])
        .await
        .unwrap();
    assert_eq!(results, vec![Err(Rejection::AlreadyExists(RuntimeStatus::Pending))]);

    let mut finished = step(&record, Vec::new());
    finished.record.runtime_status = RuntimeStatus::Completed;
    store.apply(&[Write::Step(Box::new(finished))]).await.unwrap();
    let (replacement, started) = start(&*store, "a");
    let (results, _) = store
        .apply(&[Write::Start {
            record: Box::new(replacement.clone()),
            started,
        }])
        .await
        .unwrap();
    assert_eq!(results, vec![Ok(1)]);
    assert!(store.history("a").await.unwrap().is_empty(), "the old history is gone");
    assert_eq!(
        store.instance("a").await.unwrap().unwrap().execution_id,
        replacement.execution_id
    );
}

/// A conformance case.
pub async fn delivering_to_a_missing_or_finished_instance_is_rejected(backend: &dyn Backend) {
    let store = backend.open().await;
    let raised = Message {
        execution_id: None,
        event: HistoryEvent::new(
            Timestamp(3),
            EventKind::EventRaised {
                name: "e".into(),
                input: None,
            },
        ),
    };
    let (results, _) = store
        .apply(&[Write::Deliver {
            instance_id: "missing".into(),
            message: raised.clone(),
        }])
        .await
        .unwrap();
    assert_eq!(results, vec![Err(Rejection::NotFound)]);

    let record = started(&*store, "a").await;
    let mut finished = step(&record, Vec::new());
    finished.record.runtime_status = RuntimeStatus::Failed;
    store.apply(&[Write::Step(Box::new(finished))]).await.unwrap();
    let (results, _) = store
        .apply(&[Write::Deliver {
            instance_id: "a".into(),
            message: raised,
        }])
        .await
        .unwrap();
    assert_eq!(results, vec![Err(Rejection::Gone(RuntimeStatus::Failed))]);
}

/// A conformance case.
pub async fn an_activity_result_is_delivered_once_even_if_committed_twice(backend: &dyn Backend) {
    let store = backend.open().await;
    let record = started(&*store, "a").await;
    let (_, notices) = store
        .apply(&[Write::Step(Box::new(step(&record, Vec::new())))])
        .await
        .unwrap();
    let (key, _) = notices.activities[0].clone();
    let done = Write::ActivityDone {
        key,
        instance_id: "a".into(),
        message: Message {
            execution_id: Some(record.execution_id),
            event: HistoryEvent::new(
                Timestamp(4),
                EventKind::TaskCompleted {
                    task_scheduled_id: 0,
                    result: None,
                },
            ),
        },
    };
    store.apply(&[done.clone(), done]).await.unwrap();
    let (_, inbox) = store.instance_and_inbox("a", 10).await.unwrap();
    let completions = inbox
        .iter()
        .filter(|(_, m)| matches!(m.event.kind, EventKind::TaskCompleted { .. }))
        .count();
    assert_eq!(completions, 1);
}

async fn started_at(store: &dyn TaskStore, id: &str, created: i64, status: RuntimeStatus) {
    let (mut record, started) = start(store, id);
    record.created_time = Timestamp(created);
    record.runtime_status = status;
    let (results, _) = store
        .apply(&[Write::Start {
            record: Box::new(record),
            started,
        }])
        .await
        .unwrap();
    assert_eq!(results, vec![Ok(1)]);
}

fn ids(records: &[InstanceRecord]) -> Vec<&str> {
    records.iter().map(|record| record.instance_id.as_str()).collect()
}

/// A conformance case.
pub async fn paging_neither_skips_nor_repeats_while_instances_are_created(backend: &dyn Backend) {
    let store = backend.open().await;
    for index in 0..5 {
        started_at(&*store, &format!("i{index}"), 100 + index, RuntimeStatus::Pending).await;
    }
    let filter = ListFilter::default();
    let (page, cursor) = store.list(&filter, None, 2).await.unwrap();
    assert_eq!(ids(&page), ["i0", "i1"]);
    // Created while paging: sorts after every cursor handed out so far.
    started_at(&*store, "late", 200, RuntimeStatus::Pending).await;
    let token = cursor.unwrap().to_token();
    let (page, cursor) = store
        .list(&filter, ListCursor::from_token(&token).as_ref(), 2)
        .await
        .unwrap();
    assert_eq!(ids(&page), ["i2", "i3"]);
    let (page, cursor) = store.list(&filter, cursor.as_ref(), 2).await.unwrap();
    assert_eq!(ids(&page), ["i4", "late"]);
    assert_eq!(cursor, None);
}

/// A conformance case.
pub async fn listing_filters_by_status_time_and_prefix_through_the_indexes(backend: &dyn Backend) {
    let store = backend.open().await;
    started_at(&*store, "a1", 10, RuntimeStatus::Pending).await;
    started_at(&*store, "a2", 20, RuntimeStatus::Completed).await;
    started_at(&*store, "b1", 30, RuntimeStatus::Failed).await;
    started_at(&*store, "a3", 40, RuntimeStatus::Completed).await;
    let filter = ListFilter {
        statuses: vec![RuntimeStatus::Completed, RuntimeStatus::Failed],
        ..ListFilter::default()
    };
    assert_eq!(ids(&store.list(&filter, None, 10).await.unwrap().0), ["a2", "b1", "a3"]);
    let filter = ListFilter {
        created_from: Some(Timestamp(20)),
        created_to: Some(Timestamp(30)),
        ..ListFilter::default()
    };
    assert_eq!(ids(&store.list(&filter, None, 10).await.unwrap().0), ["a2", "b1"]);
    let filter = ListFilter {
        id_prefix: Some("a".into()),
        ..ListFilter::default()
    };
    assert_eq!(ids(&store.list(&filter, None, 10).await.unwrap().0), ["a1", "a2", "a3"]);
}

/// A conformance case.
pub async fn purge_removes_row_history_inbox_timers_and_index_entries_only(backend: &dyn Backend) {
    let store = backend.open().await;
    let record = started(&*store, "a").await;
    let (_, notices) = store
        .apply(&[Write::Step(Box::new(step(&record, Vec::new())))])
        .await
        .unwrap();
    let work_item = notices.activities[0].0;
    let (results, _) = store
        .apply(&[Write::Purge {
            instance_ids: vec!["a".into(), "missing".into()],
        }])
        .await
        .unwrap();
    assert_eq!(results, vec![Ok(1)]);
    assert!(store.instance("a").await.unwrap().is_none());
    assert!(store.history("a").await.unwrap().is_empty());
    assert!(store.instance_and_inbox("a", 10).await.unwrap().1.is_empty());
    let recovery = store.recover().await.unwrap();
    assert!(recovery.timers.is_empty(), "the instance's timer is gone");
    assert_eq!(
        recovery.activities.iter().map(|(key, _)| *key).collect::<Vec<_>>(),
        [work_item],
        "work items stay"
    );
    assert!(store.list(&ListFilter::default(), None, 10).await.unwrap().0.is_empty());
    let (results, _) = store
        .apply(&[Write::Purge {
            instance_ids: vec!["a".into()],
        }])
        .await
        .unwrap();
    assert_eq!(results, vec![Err(Rejection::NotFound)]);
}

/// A conformance case.
pub async fn continuation_tokens_round_trip_and_garbage_is_refused(_backend: &dyn Backend) {
    let cursor = ListCursor {
        created: 1_764_000_000_000_000,
        instance_id: "id with spaces/é".into(),
    };
    assert_eq!(ListCursor::from_token(&cursor.to_token()), Some(cursor));
    for garbage in ["", "zz", "abc", "7c"] {
        assert_eq!(ListCursor::from_token(garbage), None, "{garbage:?}");
    }
}

/// A conformance case.
pub async fn a_batch_of_fired_timers_delivers_each_once_and_skips_timers_of_purged_instances(backend: &dyn Backend) {
    let store = backend.open().await;
    let mut due = Vec::new();
    for id in ["a", "b"] {
        let record = started(&*store, id).await;
        let (_, notices) = store
            .apply(&[Write::Step(Box::new(step(&record, Vec::new())))])
            .await
            .unwrap();
        due.extend(notices.timers);
    }
    store
        .apply(&[Write::Purge {
            instance_ids: vec!["b".into()],
        }])
        .await
        .unwrap();
    let fire = Write::TimersFired { timers: due };
    let (results, notices) = store.apply(&[fire.clone(), fire]).await.unwrap();
    assert_eq!(results, vec![Ok(1), Ok(0)], "b's timer went with b; a's fires once");
    assert_eq!(notices.ready, vec!["a".to_owned()]);
    let (_, inbox) = store.instance_and_inbox("a", 10).await.unwrap();
    let fired = inbox
        .iter()
        .filter(|(_, m)| matches!(m.event.kind, EventKind::TimerFired { timer_id: 1, .. }))
        .count();
    assert_eq!(fired, 1);
    assert!(store.recover().await.unwrap().timers.is_empty());
}

/// A conformance case.
pub async fn an_entity_batch_commits_its_row_answers_and_starts_together(backend: &dyn Backend) {
    let store = backend.open().await;
    let caller = started(&*store, "caller").await;
    started(&*store, "busy").await;
    let entity = EntityId::new("counter", "c");
    let key = entity.storage_key();
    let signal = Message {
        execution_id: None,
        event: HistoryEvent::new(
            Timestamp(3),
            EventKind::EntityOperation {
                operation: "add".into(),
                input: Some("1".into()),
                caller: None,
                sender: None,
            },
        ),
    };
    let (results, notices) = store
        .apply(&[Write::Signal {
            entity_key: key.clone(),
            message: signal,
        }])
        .await
        .unwrap();
    assert_eq!(results, vec![Ok(1)]);
    assert_eq!(notices.ready, vec![key.clone()], "entities exist implicitly");
    let (row, inbox) = store.entity_and_inbox(&key, 10).await.unwrap();
    assert_eq!((row, inbox.len()), (None, 1));

    let answer = |instance_id: &str| {
        (
            instance_id.to_owned(),
            Message {
                execution_id: Some(caller.execution_id),
                event: HistoryEvent::new(
                    Timestamp(4),
                    EventKind::EntityOperationCompleted {
                        task_scheduled_id: 0,
                        result: None,
                    },
                ),
            },
        )
    };
    let (fresh, fresh_started) = start(&*store, "fresh");
    let (busy, busy_started) = start(&*store, "busy");
    let commit = EntityCommit {
        entity_key: key.clone(),
        consumed: inbox.iter().map(|(key, _)| *key).collect(),
        record: Some(EntityRecord {
            id: entity.clone(),
            state: Some("1".into()),
            last_operation_time: Timestamp(4),
            lock_owner: None,
        }),
        messages: vec![answer("caller"), answer("missing")],
        timers: Vec::new(),
        starts: vec![(fresh, fresh_started), (busy.clone(), busy_started)],
    };
    let (results, _) = store.apply(&[Write::Entity(Box::new(commit))]).await.unwrap();
    assert_eq!(results, vec![Ok(1)]);
    let (row, inbox) = store.entity_and_inbox(&key, 10).await.unwrap();
    assert_eq!(row.and_then(|row| row.state).as_deref(), Some("1"));
    assert!(inbox.is_empty(), "the batch consumed its operation");
    assert_eq!(
        store.instance_and_inbox("caller", 10).await.unwrap().1.len(),
        2,
        "start + answer"
    );
    assert_eq!(
        store.instance("missing").await.unwrap(),
        None,
        "a message creates no instance"
    );
    assert_eq!(
        store.instance("fresh").await.unwrap().unwrap().runtime_status,
        RuntimeStatus::Pending
    );
    assert_ne!(
        store.instance("busy").await.unwrap().unwrap().execution_id,
        busy.execution_id,
        "a start of a running id is skipped"
    );

    let deleted = EntityCommit {
        entity_key: key.clone(),
        consumed: Vec::new(),
        record: None,
        messages: Vec::new(),
        timers: Vec::new(),
        starts: Vec::new(),
    };
    store.apply(&[Write::Entity(Box::new(deleted))]).await.unwrap();
    assert_eq!(store.entity(&key).await.unwrap(), None, "no state and no lock: deleted");
}

/// Opens a backend's store for one conformance case. Every call opens the same store (the
/// case drops the previous handle first), so reopening is tested as a restart.
#[async_trait::async_trait]
pub trait Backend: Sync {
    /// Opens (the first time: creates) the store.
    async fn open(&self) -> Arc<dyn TaskStore>;

    /// Removes what the case left (a backend whose stores outlive the test process).
    async fn remove(&self) {}
}

/// Runs one case to completion on a runtime of its own.
pub fn run<B: Backend>(backend: B, case: impl AsyncFnOnce(&dyn Backend)) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(async {
            case(&backend).await;
            backend.remove().await;
        });
}

/// Declares one `#[test]` per conformance case, each on a fresh backend from `$backend()`.
#[macro_export]
macro_rules! conformance_suite {
    ($backend:path) => {
        #[test]
        fn a_step_commits_history_work_items_timers_and_inbox_removal_together() {
            $crate::conformance::run(
                $backend(),
                $crate::conformance::a_step_commits_history_work_items_timers_and_inbox_removal_together,
            );
        }
        #[test]
        fn a_step_of_a_replaced_execution_is_stale_and_writes_nothing() {
            $crate::conformance::run(
                $backend(),
                $crate::conformance::a_step_of_a_replaced_execution_is_stale_and_writes_nothing,
            );
        }
        #[test]
        fn starting_a_running_id_is_rejected_and_a_finished_one_is_replaced() {
            $crate::conformance::run(
                $backend(),
                $crate::conformance::starting_a_running_id_is_rejected_and_a_finished_one_is_replaced,
            );
        }
        #[test]
        fn delivering_to_a_missing_or_finished_instance_is_rejected() {
            $crate::conformance::run(
                $backend(),
                $crate::conformance::delivering_to_a_missing_or_finished_instance_is_rejected,
            );
        }
        #[test]
        fn an_activity_result_is_delivered_once_even_if_committed_twice() {
            $crate::conformance::run(
                $backend(),
                $crate::conformance::an_activity_result_is_delivered_once_even_if_committed_twice,
            );
        }
        #[test]
        fn paging_neither_skips_nor_repeats_while_instances_are_created() {
            $crate::conformance::run(
                $backend(),
                $crate::conformance::paging_neither_skips_nor_repeats_while_instances_are_created,
            );
        }
        #[test]
        fn listing_filters_by_status_time_and_prefix_through_the_indexes() {
            $crate::conformance::run(
                $backend(),
                $crate::conformance::listing_filters_by_status_time_and_prefix_through_the_indexes,
            );
        }
        #[test]
        fn purge_removes_row_history_inbox_timers_and_index_entries_only() {
            $crate::conformance::run(
                $backend(),
                $crate::conformance::purge_removes_row_history_inbox_timers_and_index_entries_only,
            );
        }
        #[test]
        fn an_entity_batch_commits_its_row_answers_and_starts_together() {
            $crate::conformance::run(
                $backend(),
                $crate::conformance::an_entity_batch_commits_its_row_answers_and_starts_together,
            );
        }
        #[test]
        fn continuation_tokens_round_trip_and_garbage_is_refused() {
            $crate::conformance::run(
                $backend(),
                $crate::conformance::continuation_tokens_round_trip_and_garbage_is_refused,
            );
        }
        #[test]
        fn a_batch_of_fired_timers_delivers_each_once_and_skips_timers_of_purged_instances() {
            $crate::conformance::run(
                $backend(),
                $crate::conformance::a_batch_of_fired_timers_delivers_each_once_and_skips_timers_of_purged_instances,
            );
        }
    };
}
pub use conformance_suite as suite;

/// The URL of the PostgreSQL the tests use: `DURABLE_TEST_POSTGRES_URL` if set (the test
/// script starts one and sets it), otherwise the local one of `scripts/postgres.sh`, started
/// here if it is not running.
pub fn test_postgres_url() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("DURABLE_TEST_POSTGRES_URL")
            && !url.trim().is_empty()
        {
            return url.trim().to_owned();
        }
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres.sh");
        let output = std::process::Command::new("bash")
            .arg(&script)
            .arg("start")
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("scripts/postgres.sh runs");
        assert!(output.status.success(), "scripts/postgres.sh start failed");
        String::from_utf8(output.stdout)
            .expect("a UTF-8 URL")
            .lines()
            .last()
            .expect("scripts/postgres.sh start prints the URL")
            .trim()
            .to_owned()
    })
    .clone()
}

/// A schema name no other test uses, so tests share one database without seeing each
/// other's hubs.
pub fn fresh_schema(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// Starts instance `id` and returns its row (for backend-specific tests).
pub async fn started_record(store: &dyn TaskStore, id: &str) -> InstanceRecord {
    started(store, id).await
}

/// A first step of `record` consuming `consumed` (for backend-specific tests).
pub fn first_step(record: &InstanceRecord, consumed: Vec<u64>) -> StepCommit {
    step(record, consumed)
}

/// Starts instance `id` and returns what the store answered (for backend-specific tests).
pub async fn try_start(store: &dyn TaskStore, id: &str) -> WriteResult {
    let (record, started) = start(store, id);
    let (mut results, _) = store
        .apply(&[Write::Start {
            record: Box::new(record),
            started,
        }])
        .await
        .unwrap();
    results.remove(0)
}
