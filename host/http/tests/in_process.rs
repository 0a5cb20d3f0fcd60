//! The management API answered in-process: a real host (config file, redb store in a temp
//! dir, the example components) behind `durable_http::handle_hosting`, no socket. Status
//! codes as in reference/http-api-reference.txt. Needs `examples/build.sh` run first.

mod support;

use std::collections::BTreeSet;

use hyper::{Method, StatusCode};
use serde_json::json;

use durable_core::history::RuntimeStatus;
use support::{PAYLOAD_BYTES, TestHost, request};

const KEY: &str = "test-key-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orchestration_started_over_post_completes_with_its_output_in_the_status() {
    let host = TestHost::start().await;
    let reply = host.post("/orchestrators/E1_HelloSequence", "").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    let payload = reply.json();
    let id = payload["id"].as_str().expect("id in the 202").to_owned();
    let status_uri = payload["statusQueryGetUri"].as_str().expect("statusQueryGetUri");
    assert_eq!(reply.header("location"), Some(status_uri), "Location is the status URL");
    assert!(reply.header("retry-after").is_some(), "{:?}", reply.headers);
    assert!(
        status_uri.starts_with(&format!("http://localhost:7071{}/instances/{id}?", support::PREFIX)),
        "{status_uri}"
    );

    let record = host.wait_for_finish(&id).await;
    assert_eq!(record.runtime_status, RuntimeStatus::Completed, "{record:?}");
    let reply = host.get(&format!("/instances/{id}")).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "a completed instance answers 200: {}",
        reply.text
    );
    let status = reply.json();
    assert_eq!(status["runtimeStatus"], "Completed");
    assert_eq!(status["name"], "E1_HelloSequence");
    assert_eq!(
        status["output"],
        json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_orchestration_answers_202_until_the_raised_event_completes_it() {
    let host = TestHost::start().await;
    let id = host
        .start_orchestration("E4_Approval", Some("approve-me"), "3600")
        .await;
    host.wait_for_running(&id).await;
    let reply = host.get(&format!("/instances/{id}")).await;
    assert_eq!(
        reply.status,
        StatusCode::ACCEPTED,
        "in progress answers 202: {}",
        reply.text
    );
    assert_eq!(reply.json()["runtimeStatus"], "Running");
    assert_eq!(reply.json()["customStatus"], "waiting for approval");
    assert!(
        reply
            .header("location")
            .is_some_and(|location| location.contains("/instances/approve-me?"))
    );

    let reply = host.post(&format!("/instances/{id}/raiseEvent/Approval"), "true").await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.text);
    assert!(reply.text.is_empty(), "{}", reply.text);
    host.wait_for_finish(&id).await;
    let reply = host.get(&format!("/instances/{id}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["output"], "approved");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_key_gets_401_before_the_body_is_looked_at() {
    let host = TestHost::start_with_keys(&[KEY]).await;
    let start = "/orchestrators/E1_HelloSequence";
    let oversized = "x".repeat(PAYLOAD_BYTES + 1);
    // Neither invalid JSON (400) nor a body over the limit (413) is noticed: the key is
    // checked from the request head first.
    for body in ["", "{not json", oversized.as_str()] {
        for key in [None, Some("wrong-key-0123456789abcdef")] {
            let reply = host.send(request(Method::POST, start, body), key).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "key {key:?}: {}", reply.text);
            assert_eq!(reply.header("www-authenticate"), Some("FunctionKey"));
            assert_eq!(reply.json()["ExceptionType"], "UnauthorizedAccessException");
        }
        let reply = host
            .send(request(Method::POST, &format!("{start}?code=wrong"), body), None)
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    }
    let reply = host.send(request(Method::GET, "/instances", ""), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert_eq!(host.store().instance_count().await.unwrap(), 0, "nothing was started");

    // With the key the same bodies reach the route, and are judged there.
    let reply = host.send(request(Method::POST, start, &oversized), Some(KEY)).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.text);
    let reply = host.send(request(Method::POST, start, "{not json"), Some(KEY)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    let reply = host.send(request(Method::POST, start, ""), Some(KEY)).await;
    assert_eq!(
        reply.status,
        StatusCode::ACCEPTED,
        "the header key opens the hub: {}",
        reply.text
    );
    let reply = host
        .send(request(Method::POST, &format!("{start}?code={KEY}"), ""), None)
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "so does code=: {}", reply.text);
    assert!(
        reply.json()["statusQueryGetUri"]
            .as_str()
            .is_some_and(|uri| uri.contains(&format!("code={KEY}"))),
        "the management URLs carry the key: {}",
        reply.text
    );
    assert_eq!(host.store().instance_count().await.unwrap(), 2);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_instance_gets_404_on_every_route_that_names_it() {
    let host = TestHost::start().await;
    let reply = host.get("/instances/nobody").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    assert!(reply.message().contains("nobody"), "{}", reply.text);
    for operation in ["raiseEvent/Approval", "terminate", "suspend", "resume", "rewind"] {
        let reply = host.post(&format!("/instances/nobody/{operation}"), "").await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{operation}: {}", reply.text);
    }
    let reply = host.send(request(Method::DELETE, "/instances/nobody", ""), None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "purge: {}", reply.text);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_400_with_the_reason() {
    let host = TestHost::start().await;
    let id = host.start_orchestration("E1_HelloSequence", Some("known"), "").await;
    let cases = [
        (format!("/instances/{id}?showHistory=maybe"), "showHistory"),
        (format!("/instances/{id}?showInput=1"), "showInput"),
        ("/instances?top=0".to_owned(), "top"),
        ("/instances?top=ten".to_owned(), "top"),
        ("/instances?runtimeStatus=Sleeping".to_owned(), "runtimeStatus"),
        ("/instances?createdTimeFrom=yesterday".to_owned(), "createdTimeFrom"),
    ];
    for (target, reason) in cases {
        let reply = host.get(&target).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{target}: {}", reply.text);
        assert!(reply.message().contains(reason), "{target}: {}", reply.text);
    }
    // Starting: an orchestrator that does not exist, or input that is not JSON.
    let reply = host.post("/orchestrators/NoSuchOrchestrator", "").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert!(reply.message().contains("NoSuchOrchestrator"), "{}", reply.text);
    let reply = host.post("/orchestrators/E1_HelloSequence", "{not json").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    host.wait_for_finish(&id).await;
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_with_top_pages_through_continuation_tokens() {
    let host = TestHost::start().await;
    let mut started = BTreeSet::new();
    for index in 0..5 {
        started.insert(
            host.start_orchestration("E1_HelloSequence", Some(&format!("page-{index}")), "")
                .await,
        );
    }
    for id in &started {
        host.wait_for_finish(id).await;
    }

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 10, "no end to the pages after {seen:?}");
        let mut page_request = request(Method::GET, "/instances?top=2&showInput=false", "");
        page_request.continuation_token = token.clone();
        let reply = host.send(page_request, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        let page = reply.json();
        let page = page.as_array().expect("a page is an array");
        assert!(page.len() <= 2, "top=2 gave {page:?}");
        for status in page {
            assert_eq!(status["runtimeStatus"], "Completed", "{status}");
            assert!(status["input"].is_null(), "showInput=false: {status}");
            seen.push(status["instanceId"].as_str().expect("instanceId").to_owned());
        }
        match reply
            .header("x-ms-continuation-token")
            .filter(|token| !token.is_empty())
        {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    assert!(pages >= 3, "5 instances, 2 a page, came in {pages} pages");
    let distinct: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(distinct.len(), seen.len(), "an instance listed twice: {seen:?}");
    assert_eq!(distinct, started);
    host.stop().await;
}
