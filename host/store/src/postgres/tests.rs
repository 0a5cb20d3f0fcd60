//! The conformance suite against PostgreSQL (each case in a schema of its own), and what
//! only a shared backend has: partitions, leases and fencing.

use std::sync::Arc;
use std::time::Duration;

use super::PostgresStore;
use crate::conformance::{self, Backend, fresh_schema, test_postgres_url};
use crate::{Rejection, StoreLocation, TaskStore, Write};

fn location(schema: &str, host_id: &str, lease: f64) -> crate::PostgresLocation {
    let url = format!(
        "{}?schema={schema}&host_id={host_id}&lease={lease}&pool=4",
        test_postgres_url()
    );
    match StoreLocation::parse(&url).expect("a valid URL") {
        StoreLocation::Postgres(location) => location,
        other => panic!("not PostgreSQL: {other}"),
    }
}

struct Postgres(String);

#[async_trait::async_trait]
impl Backend for Postgres {
    async fn open(&self) -> Arc<dyn TaskStore> {
        // One host name for the case: a reopened store takes its leases back at once.
        PostgresStore::connect(&location(&self.0, "conformance", 10.0))
            .await
            .expect("the store opens")
    }

    async fn remove(&self) {
        PostgresStore::drop_hub(&location(&self.0, "conformance", 10.0))
            .await
            .expect("the schema is dropped");
    }
}

fn backend() -> Postgres {
    Postgres(fresh_schema("conformance"))
}

conformance::suite!(backend);

fn run(case: impl AsyncFnOnce()) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(case());
}

/// Runs `case` in a fresh schema, dropped afterwards.
fn run_in_schema(prefix: &str, case: impl AsyncFnOnce(&str)) {
    let schema = fresh_schema(prefix);
    run(async || {
        case(&schema).await;
        PostgresStore::drop_hub(&location(&schema, "cleanup", 10.0))
            .await
            .expect("the schema is dropped");
    });
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_lone_host_holds_every_partition_and_a_second_host_gets_half() {
    run_in_schema("leases", async |schema| {
        let first = PostgresStore::connect(&location(schema, "first", 2.0)).await.unwrap();
        assert_eq!(first.owned_partitions().len() as u32, first.partitions());
        let second = PostgresStore::connect(&location(schema, "second", 2.0)).await.unwrap();
        let half = first.partitions() as usize / 2;
        wait_until("the hosts split the partitions", || {
            first.owned_partitions().len() == half && second.owned_partitions().len() == half
        })
        .await;
        let mut all = first.owned_partitions();
        all.extend(second.owned_partitions());
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len() as u32, first.partitions(), "every partition has one owner");

        second.close().await;
        wait_until("the remaining host takes the given-back partitions", || {
            first.owned_partitions().len() as u32 == first.partitions()
        })
        .await;
    });
}

#[test]
fn a_step_of_a_host_whose_partition_was_taken_over_writes_nothing() {
    run_in_schema("fencing", async |schema| {
        let old = PostgresStore::connect(&location(schema, "old", 1.0)).await.unwrap();
        let record = conformance::started_record(&*old, "fenced").await;
        let (_, inbox) = old.instance_and_inbox("fenced", 10).await.unwrap();
        let keys: Vec<u64> = inbox.iter().map(|(key, _)| *key).collect();
        let commit = conformance::first_step(&record, keys);

        // The old host stops renewing (as if paused), its lease expires, a new host takes over.
        for task in old.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        let new = PostgresStore::connect(&location(schema, "new", 1.0)).await.unwrap();
        wait_until("the new host holds the instance's partition", || new.owns("fenced")).await;
        assert!(old.owns("fenced"), "the paused host has not noticed yet");

        let (results, notices) = old.apply(&[Write::Step(Box::new(commit.clone()))]).await.unwrap();
        assert_eq!(results, vec![Err(Rejection::Fenced)]);
        assert!(notices.activities.is_empty() && notices.timers.is_empty());
        assert!(old.history("fenced").await.unwrap().is_empty(), "nothing was written");
        assert_eq!(new.instance_and_inbox("fenced", 10).await.unwrap().1.len(), 1);

        let (results, _) = new.apply(&[Write::Step(Box::new(commit))]).await.unwrap();
        assert_eq!(results, vec![Ok(1)], "the owner's step commits");
    });
}

#[test]
fn a_message_for_another_hosts_instance_reaches_that_host_by_notification() {
    run_in_schema("notify", async |schema| {
        let first = PostgresStore::connect(&location(schema, "first", 2.0)).await.unwrap();
        let second = PostgresStore::connect(&location(schema, "second", 2.0)).await.unwrap();
        let mut events = second.take_events().expect("a shared store has events");
        wait_until("the hosts split the partitions", || {
            !second.owned_partitions().is_empty() && first.owned_partitions().len() < first.partitions() as usize
        })
        .await;
        let id = (0..)
            .map(|n| format!("instance-{n}"))
            .find(|id| second.owns(id) && !first.owns(id))
            .unwrap();
        let mut waiter = second.subscribe_commits();
        waiter.mark_unchanged();
        conformance::started_record(&*first, &id).await;
        let ready = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match events.recv().await.expect("events flow") {
                    crate::StoreEvent::Ready(ids) if ids.contains(&id) => return ids,
                    _ => continue,
                }
            }
        })
        .await
        .expect("the owner hears of the start");
        assert!(ready.contains(&id));
        assert!(waiter.has_changed().unwrap(), "waiters on the other host wake up");
    });
}

#[test]
fn a_schema_written_by_a_newer_host_is_refused_with_both_versions() {
    run_in_schema("version", async |schema| {
        let store = PostgresStore::connect(&location(schema, "h", 2.0)).await.unwrap();
        let client = store.shared.client().await.unwrap();
        client
            .execute(&format!("INSERT INTO {schema}.schema_version VALUES (99)"), &[])
            .await
            .unwrap();
        drop(client);
        store.close().await;
        let Err(error) = PostgresStore::connect(&location(schema, "h", 2.0)).await else {
            panic!("a newer schema must be refused");
        };
        assert!(
            matches!(error, crate::StoreError::SchemaTooNew { found: 99, known: 1 }),
            "{error}"
        );
    });
}

#[test]
fn an_unreachable_server_and_a_missing_database_are_named() {
    run(async || {
        let unreachable = match StoreLocation::parse("postgres://durable@127.0.0.1:1/durable").unwrap() {
            StoreLocation::Postgres(location) => location,
            _ => unreachable!(),
        };
        let error = PostgresStore::connect(&unreachable).await.err().unwrap();
        assert!(matches!(error, crate::StoreError::Unavailable(_)), "{error}");
        assert!(error.to_string().contains("Connection refused"), "{error}");

        let url = test_postgres_url();
        let (base, _) = url.rsplit_once('/').unwrap();
        let missing = match StoreLocation::parse(&format!("{base}/no_such_database")).unwrap() {
            StoreLocation::Postgres(location) => location,
            _ => unreachable!(),
        };
        let error = PostgresStore::connect(&missing).await.err().unwrap().to_string();
        assert!(
            error.contains("no_such_database") && error.contains("does not exist"),
            "{error}"
        );
    });
}

#[test]
fn two_hosts_starting_one_id_at_once_create_it_once() {
    run_in_schema("starts", async |schema| {
        let first = PostgresStore::connect(&location(schema, "first", 2.0)).await.unwrap();
        let second = PostgresStore::connect(&location(schema, "second", 2.0)).await.unwrap();
        for round in 0..20 {
            let id = format!("contested-{round}");
            let (a, b) = tokio::join!(
                conformance::try_start(&*first, &id),
                conformance::try_start(&*second, &id)
            );
            let mut outcomes = [a, b];
            outcomes.sort_by_key(|outcome| outcome.is_err());
            assert_eq!(outcomes[0], Ok(1), "{id}: one start wins");
            assert!(
                matches!(outcomes[1], Err(Rejection::AlreadyExists(_))),
                "{id}: the other is refused, not merged: {:?}",
                outcomes[1]
            );
            let (_, inbox) = first.instance_and_inbox(&id, 10).await.unwrap();
            assert_eq!(inbox.len(), 1, "{id}: one ExecutionStarted");
        }
    });
}
