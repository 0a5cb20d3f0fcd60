//! Every bad input gets a clear error, and every response body is empty or JSON.

use crate::support::{Host, PREFIX, example, temp_dir};

fn assert_error(response: &crate::support::Response, status: u16, needle: &str) {
    assert_eq!(response.status, status, "{}", response.text);
    let body = response.json();
    let message = body["Message"].as_str().expect("Message");
    assert!(body["ExceptionMessage"].is_string(), "{body}");
    assert!(message.contains(needle), "expected {needle:?} in {message:?}");
}

#[test]
fn malformed_json_input_is_rejected_with_400() {
    let host = Host::with_examples("bad-json");
    let response = host.request(
        "POST",
        &format!("{PREFIX}/orchestrators/E1_HelloSequence"),
        Some("{not json"),
    );
    assert_error(&response, 400, "not valid JSON");
}

#[test]
fn unknown_orchestrator_is_rejected_with_400() {
    let host = Host::with_examples("unknown-orchestrator");
    let response = host.request("POST", &format!("{PREFIX}/orchestrators/NoSuchOrchestrator"), None);
    assert_error(&response, 400, "NoSuchOrchestrator");
}

#[test]
fn invalid_instance_ids_are_rejected_with_400() {
    let host = Host::with_examples("bad-ids");
    let too_long = "x".repeat(257);
    for id in [too_long.as_str(), "bad%01id", "a%2Fb", "tab%09id", "%20%20"] {
        let response = host.request("POST", &format!("{PREFIX}/orchestrators/E1_HelloSequence/{id}"), None);
        assert_error(&response, 400, "invalid instance id");
    }
    let exactly_256 = "y".repeat(256);
    let response = host.request(
        "POST",
        &format!("{PREFIX}/orchestrators/E1_HelloSequence/{exactly_256}"),
        None,
    );
    assert_eq!(response.status, 202, "{}", response.text);
}

#[test]
fn events_to_unknown_and_finished_instances_get_404_and_410() {
    let host = Host::with_examples("event-targets");
    let response = host.request(
        "POST",
        &format!("{PREFIX}/instances/nobody/raiseEvent/Approval"),
        Some("true"),
    );
    assert_eq!(response.status, 404);
    response.assert_empty_or_json();

    let id = host.start_orchestration("E1_HelloSequence", None, None);
    host.wait_for_finish(&id);
    let response = host.request(
        "POST",
        &format!("{PREFIX}/instances/{id}/raiseEvent/Approval"),
        Some("true"),
    );
    assert_eq!(response.status, 410);
    response.assert_empty_or_json();

    let response = host.request("POST", &format!("{PREFIX}/instances/nobody/terminate"), None);
    assert_eq!(response.status, 404);
}

#[test]
fn malformed_event_payload_is_rejected_with_400() {
    let host = Host::with_examples("bad-event");
    let id = host.start_orchestration("E4_Approval", None, Some("3600"));
    let response = host.request(
        "POST",
        &format!("{PREFIX}/instances/{id}/raiseEvent/Approval"),
        Some("{oops"),
    );
    assert_error(&response, 400, "not valid JSON");
}

#[test]
fn unknown_instances_and_routes_get_404_with_json_bodies() {
    let host = Host::with_examples("404s");
    let response = host.status("does-not-exist");
    assert_error(&response, 404, "does-not-exist");
    let response = host.request("GET", "/no/such/path", None);
    assert_eq!(response.status, 404);
    response.assert_empty_or_json();
    let response = host.request("GET", &format!("{PREFIX}/instances/x/unknownOperation"), None);
    assert!(response.status == 404 || response.status == 405);
    response.assert_empty_or_json();
    let response = host.request("GET", &format!("{PREFIX}/instances/x?showHistory=maybe"), None);
    assert_error(&response, 400, "showHistory");
}

#[test]
fn a_component_that_does_not_fit_is_rejected_by_name_and_the_others_are_served() {
    let dir = temp_dir("misfit");
    let not_a_component = dir.join("garbage.wasm");
    std::fs::write(&not_a_component, b"\0asm\x01\0\0\0").unwrap();
    let store = dir.join("store.redb");
    let host = Host::start(&store, &[not_a_component.clone(), example("hello_sequence")]).unwrap();
    let id = host.start_orchestration("E1_HelloSequence", None, None);
    assert_eq!(host.wait_for_finish(&id)["runtimeStatus"], "Completed");
    let stderr = host.stderr();
    assert!(
        stderr.contains("garbage.wasm"),
        "stderr does not name the file:\n{stderr}"
    );
}
