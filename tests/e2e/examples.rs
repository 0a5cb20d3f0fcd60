//! Every example, driven over HTTP to its documented output, custom status and final status;
//! the examples every language has run against the Rust, Python and JavaScript sets.

use std::time::Duration;

use serde_json::json;

use crate::support::{ExampleSet, Host, PREFIX};

in_every_language!(
    hello_sequence_returns_three_greetings_and_shows_its_history,
    fan_out_fan_in_sums_the_squares,
    approval_returns_approved_when_the_event_beats_the_timer,
    approval_returns_timeout_when_the_timer_fires_first,
    reserve_ticket_shows_the_discount_then_the_confirmation,
    an_event_raised_before_the_orchestrator_waits_is_kept_until_it_does,
    city_recommender_sets_the_recommendation_and_waits_for_the_user_choice,
    fail_always_ends_failed_with_the_activity_error,
);

fn hello_sequence_returns_three_greetings_and_shows_its_history(set: ExampleSet) {
    let host = Host::with_example_set(set, "hello");
    let response = host.request("POST", &format!("{PREFIX}/orchestrators/E1_HelloSequence"), None);
    assert_eq!(response.status, 202, "{}", response.text);
    let payload = response.json();
    let id = payload["id"].as_str().unwrap();
    for key in [
        "statusQueryGetUri",
        "sendEventPostUri",
        "terminatePostUri",
        "purgeHistoryDeleteUri",
        "suspendPostUri",
        "resumePostUri",
    ] {
        assert!(
            payload[key]
                .as_str()
                .is_some_and(|uri| uri.starts_with(&host.base) && uri.contains(id)),
            "{key}: {payload}"
        );
    }
    assert_eq!(response.header("location"), payload["statusQueryGetUri"].as_str());
    assert_eq!(response.header("retry-after"), Some("10"));

    let status = host.wait_for_finish(id);
    assert_eq!(status["runtimeStatus"], "Completed");
    assert_eq!(
        status["output"],
        json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
    );
    assert_eq!(status["name"], "E1_HelloSequence");
    assert_eq!(status["instanceId"], id);
    for key in ["input", "customStatus", "createdTime", "lastUpdatedTime"] {
        assert!(status.get(key).is_some(), "{key} missing: {status}");
    }
    assert!(status["createdTime"].as_str().unwrap().ends_with('Z'));

    let with_history = host.request(
        "GET",
        &format!("{PREFIX}/instances/{id}?showHistory=true&showHistoryOutput=true"),
        None,
    );
    assert_eq!(with_history.status, 200);
    let events = with_history.json()["historyEvents"]
        .as_array()
        .cloned()
        .expect("historyEvents");
    let types: Vec<&str> = events
        .iter()
        .map(|event| event["EventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "ExecutionStarted",
            "TaskCompleted",
            "TaskCompleted",
            "TaskCompleted",
            "ExecutionCompleted"
        ]
    );
    assert_eq!(events[1]["FunctionName"], "E1_SayHello");
    assert_eq!(events[1]["Result"], "Hello Tokyo!");
    assert!(events[1]["ScheduledTime"].is_string());
    assert_eq!(events[4]["OrchestrationStatus"], "Completed");
    assert_eq!(
        events[4]["Result"],
        json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
    );

    let without_history = host.status(id).json();
    assert!(
        without_history
            .get("historyEvents")
            .is_none_or(|events| events.is_null())
    );
}

#[test]
fn both_path_prefixes_serve_the_api() {
    let host = Host::with_examples("prefixes");
    let response = host.request(
        "POST",
        "/admin/extensions/DurableTaskExtension/orchestrators/E1_HelloSequence/via-v1",
        None,
    );
    assert_eq!(response.status, 202, "{}", response.text);
    host.wait_for_finish("via-v1");
    let status = host.request("GET", "/admin/extensions/DurableTaskExtension/instances/via-v1", None);
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["runtimeStatus"], "Completed");
}

fn fan_out_fan_in_sums_the_squares(set: ExampleSet) {
    let host = Host::with_example_set(set, "fanout");
    let id = host.start_orchestration("E2_FanOutFanIn", None, Some("10"));
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"], json!(385));
    assert_eq!(status["input"], json!(10));

    // The official Python client double-encodes inputs: "\"4\"" must work too.
    let id = host.start_orchestration("E2_FanOutFanIn", None, Some("\"4\""));
    assert_eq!(host.wait_for_finish(&id)["output"], json!(30));
}

#[test]
fn monitor_polls_on_a_durable_timer_and_continues_as_new_until_done() {
    let host = Host::with_examples("monitor");
    let id = host.start_orchestration(
        "E3_Monitor",
        None,
        Some(r#"{"intervalSeconds": 1, "maxIterations": 3}"#),
    );
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"], "Monitor finished after 3 iterations");
    assert_eq!(status["customStatus"]["iteration"], 2);
}

fn approval_returns_approved_when_the_event_beats_the_timer(set: ExampleSet) {
    let host = Host::with_example_set(set, "approval-event");
    let id = host.start_orchestration("E4_Approval", None, Some("300"));
    host.wait_for(&id, Duration::from_secs(30), |status| {
        status["runtimeStatus"] == "Running"
    });
    host.raise_event(&id, "Approval", "true");
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"], "approved");
}

fn approval_returns_timeout_when_the_timer_fires_first(set: ExampleSet) {
    let host = Host::with_example_set(set, "approval-timer");
    let id = host.start_orchestration("E4_Approval", None, Some(r#"{"timeoutSeconds": 1}"#));
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"], "timeout");
}

fn reserve_ticket_shows_the_discount_then_the_confirmation(set: ExampleSet) {
    let host = Host::with_example_set(set, "reserve");
    let id = host.start_orchestration("ReserveTicket", None, Some("\"user-42\""));
    let waiting = host.wait_for(&id, Duration::from_secs(30), |status| !status["customStatus"].is_null());
    assert_eq!(waiting["runtimeStatus"], "Running");
    assert_eq!(
        waiting["customStatus"],
        json!({"discount": 10, "discountTimeout": 60, "bookingUrl": "https://www.myawesomebookingweb.com"})
    );
    host.raise_event(&id, "BookingConfirmed", "true");
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed");
    assert_eq!(status["output"], json!(true));
    assert_eq!(
        status["customStatus"],
        json!({"message": "Thank you for confirming your booking."})
    );
}

fn an_event_raised_before_the_orchestrator_waits_is_kept_until_it_does(set: ExampleSet) {
    let host = Host::with_example_set(set, "early-event");
    let id = host.start_orchestration("ReserveTicket", Some("early"), Some("7"));
    // Raised at once: the orchestrator is still waiting for CalculateDiscount.
    host.raise_event(&id, "BookingConfirmed", "false");
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"], json!(false));
    assert_eq!(
        status["customStatus"],
        json!({"message": "The booking was not confirmed on time. Please try again."})
    );
}

fn city_recommender_sets_the_recommendation_and_waits_for_the_user_choice(set: ExampleSet) {
    let host = Host::with_example_set(set, "city");
    let cases = [
        (
            "1",
            json!({"recommendedCities": ["Tokyo", "Seattle"], "recommendedSeasons": ["Spring", "Summer"]}),
        ),
        (
            "2",
            json!({"recommendedCities": ["Seattle", "London"], "recommendedSeasons": ["Summer"]}),
        ),
        (
            "\"3\"",
            json!({"recommendedCities": ["Tokyo", "London"], "recommendedSeasons": ["Spring", "Summer"]}),
        ),
    ];
    for (input, expected) in cases {
        let id = host.start_orchestration("CityRecommender", None, Some(input));
        let waiting = host.wait_for(&id, Duration::from_secs(30), |status| !status["customStatus"].is_null());
        assert_eq!(waiting["customStatus"], expected, "input {input}");
        assert_eq!(waiting["runtimeStatus"], "Running");
        host.raise_event(&id, "UserChoice", r#"{"city": "Tokyo"}"#);
        let status = host.wait_for_finish(&id);
        assert_eq!(status["runtimeStatus"], "Completed", "{status}");
        assert_eq!(status["output"], json!({"city": "Tokyo"}));
    }
}

fn fail_always_ends_failed_with_the_activity_error(set: ExampleSet) {
    let host = Host::with_example_set(set, "fail");
    let id = host.start_orchestration("FailAlways", None, None);
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Failed", "{status}");
    assert!(
        status["output"]
            .as_str()
            .is_some_and(|output| output.contains("Fail always fails")),
        "{status}"
    );

    let response = host.request(
        "GET",
        &format!("{PREFIX}/instances/{id}?returnInternalServerErrorOnFailure=true"),
        None,
    );
    assert_eq!(response.status, 500);
    assert_eq!(response.json()["runtimeStatus"], "Failed");
}

#[test]
fn terminate_ends_a_running_instance_with_the_reason() {
    let host = Host::with_examples("terminate");
    let id = host.start_orchestration("E4_Approval", None, Some("3600"));
    host.wait_for(&id, Duration::from_secs(30), |status| {
        status["runtimeStatus"] == "Running"
    });
    let response = host.request(
        "POST",
        &format!("{PREFIX}/instances/{id}/terminate?reason=no+longer+needed"),
        None,
    );
    assert_eq!(response.status, 202, "{}", response.text);
    assert!(response.text.is_empty());
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Terminated");
    assert_eq!(status["output"], "no longer needed");

    let again = host.request("POST", &format!("{PREFIX}/instances/{id}/terminate"), None);
    assert_eq!(again.status, 410);
    again.assert_empty_or_json();
}

#[test]
fn an_instance_id_can_be_reused_once_the_instance_finished() {
    let host = Host::with_examples("reuse");
    host.start_orchestration("E1_HelloSequence", Some("same-id"), None);
    host.wait_for_finish("same-id");
    let id = host.start_orchestration("E2_FanOutFanIn", Some("same-id"), Some("2"));
    let status = host.wait_for_finish(&id);
    assert_eq!(status["name"], "E2_FanOutFanIn");
    assert_eq!(status["output"], json!(5));
}

#[test]
fn starting_a_running_instance_id_again_is_refused() {
    let host = Host::with_examples("conflict");
    host.start_orchestration("E4_Approval", Some("busy"), Some("3600"));
    let response = host.request(
        "POST",
        &format!("{PREFIX}/orchestrators/E4_Approval/busy"),
        Some("3600"),
    );
    assert_eq!(response.status, 409, "{}", response.text);
    assert!(response.json()["Message"].as_str().unwrap().contains("already"));
}

#[test]
fn sigterm_stops_the_host_gracefully_and_a_restart_sees_everything() {
    let store = crate::support::temp_dir("sigterm").file("store.redb");
    let host = Host::start(&store, crate::support::example_apps()).unwrap();
    let id = host.start_orchestration("E4_Approval", Some("survivor"), Some("3600"));
    host.wait_for(&id, Duration::from_secs(30), |status| {
        status["runtimeStatus"] == "Running"
    });
    assert!(host.terminate().success());

    let host = Host::start(&store, crate::support::example_apps()).unwrap();
    host.raise_event(&id, "Approval", "true");
    assert_eq!(host.wait_for_finish(&id)["output"], "approved");
}
