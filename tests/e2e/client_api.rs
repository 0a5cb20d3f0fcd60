//! The Rust client: one scenario, run in-process against an embedded task hub and over HTTP
//! against the real binary, must behave the same.

use std::sync::Arc;
use std::time::Duration;

use durable_core::history::RuntimeStatus;
use durable_engine::client::{DurableOrchestrationClient, HostConfig, PurgeFilter, TaskHub};
use serde_json::json;

use crate::support::{Host, example_apps, temp_dir};

async fn exercise(client: &DurableOrchestrationClient, label: &str) {
    let wait = |id: String| {
        let client = client.clone();
        async move {
            let status = client
                .wait_for_completion(&id, Duration::from_secs(60), Duration::from_millis(20))
                .await
                .unwrap();
            status.expect("instance exists")
        }
    };
    let id = client
        .start_new("E1_HelloSequence", Some(format!("{label}-hello")), None)
        .await
        .unwrap();
    let status = wait(id.clone()).await;
    assert_eq!(status.runtime_status, RuntimeStatus::Completed, "{label}");
    assert_eq!(
        status.output,
        json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
    );

    let approval = client
        .start_new("E4_Approval", None, Some("3600".into()))
        .await
        .unwrap();
    client.suspend(&approval, Some("hold".into())).await.unwrap();
    client
        .raise_event(&approval, "Approval", Some("true".into()))
        .await
        .unwrap();
    client.resume(&approval, None).await.unwrap();
    assert_eq!(wait(approval.clone()).await.output, json!("approved"), "{label}");

    let doomed = client
        .start_new("E4_Approval", None, Some("3600".into()))
        .await
        .unwrap();
    client.terminate(&doomed, Some("enough".into())).await.unwrap();
    let status = wait(doomed.clone()).await;
    assert_eq!(status.runtime_status, RuntimeStatus::Terminated);
    assert_eq!(status.output, json!("enough"));

    let all = client.get_status_all().await.unwrap();
    assert_eq!(all.len(), 3, "{label}: {all:?}");
    let completed = client
        .get_status_by(None, None, vec![RuntimeStatus::Completed])
        .await
        .unwrap();
    assert_eq!(completed.len(), 2, "{label}");

    let with_history = client.get_status(&id, true, true, true).await.unwrap().unwrap();
    assert!(with_history.history.is_some_and(|events| events.len() == 5), "{label}");
    assert!(
        client
            .get_status("nobody", false, false, false)
            .await
            .unwrap()
            .is_none()
    );
    assert!(client.raise_event("nobody", "x", None).await.is_err());

    let restarted = client.restart(&id, true).await.unwrap();
    assert_ne!(restarted, id);
    wait(restarted).await;
    let purged = client.purge_instance_history(&id).await.unwrap();
    assert_eq!(purged.instances_deleted, 1);
    let filter = PurgeFilter {
        runtime_status: vec![RuntimeStatus::Terminated],
        ..PurgeFilter::default()
    };
    assert_eq!(
        client
            .purge_instance_history_by(&filter)
            .await
            .unwrap()
            .instances_deleted,
        1,
        "{label}"
    );

    let urls = client.create_http_management_payload("abc");
    assert!(urls.status_query_get_uri.contains("/instances/abc"), "{urls:?}");
    let check = client.create_check_status_response("abc");
    assert_eq!(check.status, 202);
    let answer = client
        .wait_for_completion_or_create_check_status_response(
            &approval,
            Duration::from_secs(5),
            Duration::from_millis(50),
        )
        .await
        .unwrap();
    assert_eq!((answer.status, answer.body), (200, json!("approved")));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_embedded_client_drives_an_in_process_task_hub() {
    let store = temp_dir("embedded-client").file("store.redb");
    runtime().block_on(async {
        let config = HostConfig {
            store_path: store.to_path_buf(),
            apps: example_apps().to_vec(),
            component_cache: None,
            dispatch: Default::default(),
        };
        let (hub, errors) = TaskHub::start(config).await.unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let hub = Arc::new(hub);
        exercise(&hub.client(), "embedded").await;
    });
}

#[test]
fn the_remote_client_drives_a_host_over_http() {
    let host = Host::with_examples("remote-client");
    let client = DurableOrchestrationClient::remote(&host.base, None, None).unwrap();
    runtime().block_on(exercise(&client, "remote"));
}
