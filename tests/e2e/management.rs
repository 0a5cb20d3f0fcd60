//! The rest of the management API: list with filters and paging, purge, rewind, restart,
//! and malformed query parameters.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Host, PREFIX, Response, all_apps, http, temp_dir};

fn list(host: &Host, query: &str, token: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = token
        .map(|token| ("x-ms-continuation-token", token))
        .into_iter()
        .collect();
    http(
        &host.base,
        "GET",
        &format!("{PREFIX}/instances?{query}"),
        None,
        &headers,
    )
    .unwrap()
}

fn ids(response: &Response) -> Vec<String> {
    assert_eq!(response.status, 200, "{}", response.text);
    response
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|status| status["instanceId"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn list_filters_by_prefix_status_and_created_time() {
    let host = Host::with_examples("list-filters");
    for index in 0..3 {
        let id = host.start_orchestration("E1_HelloSequence", Some(&format!("done-{index}")), None);
        host.wait_for_finish(&id);
    }
    let between = crate::support::now_iso8601();
    host.start_orchestration("E4_Approval", Some("waiting-0"), Some("3600"));
    host.wait_for("waiting-0", Duration::from_secs(30), |status| {
        status["runtimeStatus"] == "Running"
    });

    let mut done = ids(&list(&host, "instanceIdPrefix=done-", None));
    done.sort();
    assert_eq!(done, ["done-0", "done-1", "done-2"]);
    assert_eq!(ids(&list(&host, "runtimeStatus=Running", None)), ["waiting-0"]);
    assert_eq!(ids(&list(&host, "runtimeStatus=Completed,Running", None)).len(), 4);
    assert_eq!(
        ids(&list(&host, &format!("createdTimeFrom={between}"), None)),
        ["waiting-0"]
    );
    assert_eq!(ids(&list(&host, &format!("createdTimeTo={between}"), None)).len(), 3);

    let shown = list(&host, "instanceIdPrefix=waiting&showInput=false", None).json();
    assert_eq!(shown[0]["input"], Value::Null);
    for key in [
        "name",
        "instanceId",
        "runtimeStatus",
        "input",
        "customStatus",
        "output",
        "createdTime",
        "lastUpdatedTime",
    ] {
        assert!(shown[0].get(key).is_some(), "{key} missing from {shown}");
    }
    let shown = list(&host, "instanceIdPrefix=waiting&showInput=True", None).json();
    assert_eq!(shown[0]["input"], json!(3600));
    // The Python client lists at `instances/` with a trailing slash.
    let response = host.request(
        "GET",
        &format!("{PREFIX}/instances/?runtimeStatus=Running&unknownParameter=1"),
        None,
    );
    assert_eq!(ids(&response), ["waiting-0"]);
}

#[test]
fn paging_with_continuation_tokens_sees_every_instance_once_while_others_are_created() {
    let host = Host::with_examples("paging");
    let mut expected = HashSet::new();
    for index in 0..7 {
        expected.insert(host.start_orchestration("E4_Approval", Some(&format!("page-{index}")), Some("3600")));
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let response = list(&host, "instanceIdPrefix=page-&top=3", token.as_deref());
        let page = ids(&response);
        assert!(page.len() <= 3, "{page:?}");
        seen.extend(page);
        pages += 1;
        // Created while paging: must not disturb the pages.
        host.start_orchestration("E4_Approval", Some(&format!("page-late-{pages}")), Some("3600"));
        match response
            .header("x-ms-continuation-token")
            .filter(|token| !token.is_empty())
        {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
        assert!(pages < 20, "paging does not end");
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "an instance was repeated: {seen:?}");
    assert!(expected.is_subset(&unique), "an instance was skipped: {seen:?}");
}

#[test]
fn purging_one_instance_removes_it_and_reports_one() {
    let host = Host::with_examples("purge-one");
    let id = host.start_orchestration("E1_HelloSequence", None, None);
    host.wait_for_finish(&id);
    let response = host.request("DELETE", &format!("{PREFIX}/instances/{id}"), None);
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json(), json!({"instancesDeleted": 1}));
    assert_eq!(host.status(&id).status, 404);
    let again = host.request("DELETE", &format!("{PREFIX}/instances/{id}"), None);
    assert_eq!(again.status, 404);
    again.assert_empty_or_json();
}

#[test]
fn purging_by_filter_counts_what_it_deleted_and_404s_when_nothing_matched() {
    let host = Host::with_examples("purge-filter");
    for index in 0..3 {
        let id = host.start_orchestration("E1_HelloSequence", Some(&format!("old-{index}")), None);
        host.wait_for_finish(&id);
    }
    host.start_orchestration("E4_Approval", Some("keep-running"), Some("3600"));
    let response = host.request("DELETE", &format!("{PREFIX}/instances?runtimeStatus=Completed"), None);
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json(), json!({"instancesDeleted": 3}));
    assert_eq!(
        host.status("keep-running").status,
        202,
        "a running instance outside the filter stays"
    );
    let response = host.request("DELETE", &format!("{PREFIX}/instances?runtimeStatus=Completed"), None);
    assert_eq!(response.status, 404);
    response.assert_empty_or_json();
    let response = host.request(
        "DELETE",
        &format!("{PREFIX}/instances?createdTimeFrom=2000-01-01T00:00:00Z&createdTimeTo=2000-01-02T00:00:00Z"),
        None,
    );
    assert_eq!(response.status, 404);
}

#[test]
fn rewinding_a_failed_instance_reruns_the_failed_activity_and_completes() {
    let store = temp_dir("rewind").file("store.redb");
    let host = Host::start(&store, &all_apps()).unwrap();
    let id = host.start_orchestration("RewindMe", None, None);
    let failed = host.wait_for_finish(&id);
    assert_eq!(failed["runtimeStatus"], "Failed", "{failed}");
    assert!(failed["output"].as_str().unwrap().contains("too early"), "{failed}");

    // The activity succeeds once its deadline (1.5 s after the start) has passed.
    let created = failed["createdTime"].as_str().unwrap().to_owned();
    let ready_at = Instant::now() + Duration::from_millis(1600);
    while Instant::now() < ready_at {
        std::thread::sleep(Duration::from_millis(50));
    }
    let response = host.request("POST", &format!("{PREFIX}/instances/{id}/rewind?reason=fixed"), None);
    assert_eq!(response.status, 202, "{}", response.text);
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"], "recovered: on time");
    assert_eq!(status["createdTime"], created.as_str(), "the same instance continued");
}

#[test]
fn rewind_is_refused_for_unknown_and_unfailed_instances() {
    let host = Host::with_examples("rewind-refused");
    let response = host.request("POST", &format!("{PREFIX}/instances/nobody/rewind"), None);
    assert_eq!(response.status, 404);
    let id = host.start_orchestration("E1_HelloSequence", None, None);
    host.wait_for_finish(&id);
    let response = host.request("POST", &format!("{PREFIX}/instances/{id}/rewind"), None);
    assert_eq!(response.status, 410, "{}", response.text);
    response.assert_empty_or_json();
}

#[test]
fn restart_runs_the_orchestrator_again_with_the_same_input() {
    let host = Host::with_examples("restart");
    let id = host.start_orchestration("E2_FanOutFanIn", Some("restart-me"), Some("3"));
    host.wait_for_finish(&id);

    let response = host.request("POST", &format!("{PREFIX}/instances/{id}/restart"), None);
    assert_eq!(response.status, 202, "{}", response.text);
    assert_eq!(response.json()["id"], "restart-me");
    assert_eq!(host.wait_for_finish("restart-me")["output"], json!(14));

    let response = host.request(
        "POST",
        &format!("{PREFIX}/instances/{id}/restart?restartWithNewInstanceId=true"),
        None,
    );
    assert_eq!(response.status, 202, "{}", response.text);
    let new_id = response.json()["id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, "restart-me");
    assert_eq!(host.wait_for_finish(&new_id)["output"], json!(14));
    assert_eq!(
        host.request("POST", &format!("{PREFIX}/instances/nobody/restart"), None)
            .status,
        404
    );
}

#[test]
fn malformed_query_parameters_get_400_with_a_reason() {
    let host = Host::with_examples("bad-query");
    for query in [
        "createdTimeFrom=yesterday",
        "createdTimeTo=2020-13-45T00:00:00Z",
        "runtimeStatus=Running,Sleeping",
        "top=-1",
        "top=ten",
        "showInput=perhaps",
    ] {
        let response = list(&host, query, None);
        assert_eq!(response.status, 400, "{query}: {}", response.text);
        assert!(response.json()["ExceptionMessage"].is_string(), "{query}");
    }
    let response = list(&host, "top=2", Some("this is not a token"));
    assert_eq!(response.status, 400, "{}", response.text);
    let response = host.request("DELETE", &format!("{PREFIX}/instances?runtimeStatus=Bogus"), None);
    assert_eq!(response.status, 400, "{}", response.text);
}

#[test]
fn suspend_and_resume_answer_404_for_unknown_and_410_for_finished_instances() {
    let host = Host::with_examples("suspend-codes");
    for operation in ["suspend", "resume", "terminate", "rewind"] {
        let response = host.request("POST", &format!("{PREFIX}/instances/nobody/{operation}"), None);
        assert_eq!(response.status, 404, "{operation}: {}", response.text);
        response.assert_empty_or_json();
    }
    let id = host.start_orchestration("E1_HelloSequence", None, None);
    host.wait_for_finish(&id);
    for operation in ["suspend", "resume", "terminate"] {
        let response = host.request(
            "POST",
            &format!("{PREFIX}/instances/{id}/{operation}?reason=too%20late"),
            None,
        );
        assert_eq!(response.status, 410, "{operation}: {}", response.text);
        response.assert_empty_or_json();
    }
}
