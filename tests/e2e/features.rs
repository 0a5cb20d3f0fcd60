//! Host features beyond the examples: sub-orchestrations across apps, retries as durable
//! timers, suspend and resume, continue-as-new carrying events, the determinism sandbox
//! across a restart, and nondeterminism detection.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Host, PREFIX, all_apps, temp_dir};

#[test]
fn sub_orchestrations_in_other_apps_return_their_outputs_to_the_parent() {
    let store = temp_dir("sub").file("store.redb");
    let host = Host::start(&store, &all_apps()).unwrap();
    let id = host.start_orchestration("SubOrchestrationParent", Some("parent"), Some("3"));
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(
        status["output"],
        json!({"sum": 14, "greetings": ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]})
    );
    let child = host.status("parent-hello").json();
    assert_eq!(
        child["runtimeStatus"], "Completed",
        "the named child instance exists: {child}"
    );
    let types = host.history_types(&id);
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "SubOrchestrationInstanceCompleted")
            .count(),
        2,
        "{types:?}"
    );
}

#[test]
fn a_sub_orchestration_that_finishes_in_its_first_episode_still_answers_its_parent() {
    let store = temp_dir("sub-at-once").file("store.redb");
    let host = Host::start(&store, &all_apps()).unwrap();
    // E2_FanOutFanIn of 0 squares nothing and returns in the episode that starts it.
    let id = host.start_orchestration("SubOrchestrationParent", None, Some("0"));
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"]["sum"], json!(0), "{status}");
}

#[test]
fn a_failed_sub_orchestration_is_a_catchable_error_in_the_parent() {
    let store = temp_dir("sub-fail").file("store.redb");
    let host = Host::start(&store, &all_apps()).unwrap();
    let id = host.start_orchestration("SubOrchestrationFailure", None, None);
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    let output = status["output"].as_str().unwrap();
    assert!(
        output.starts_with("caught:") && output.contains("Fail always fails"),
        "{output}"
    );
}

#[test]
fn retries_run_as_durable_timers_until_the_attempts_are_spent() {
    let store = temp_dir("retry").file("store.redb");
    let host = Host::start(&store, &all_apps()).unwrap();
    let id = host.start_orchestration("RetryThenGiveUp", None, None);
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert!(
        status["output"].as_str().unwrap().contains("Fail always fails"),
        "{status}"
    );
    let types = host.history_types(&id);
    assert_eq!(types.iter().filter(|t| *t == "TaskFailed").count(), 3, "{types:?}");
    assert_eq!(types.iter().filter(|t| *t == "TimerFired").count(), 2, "{types:?}");
}

#[test]
fn events_raised_while_suspended_are_delivered_on_resume() {
    let host = Host::with_examples("suspend");
    let id = host.start_orchestration("E4_Approval", None, Some("3600"));
    host.wait_for(&id, Duration::from_secs(30), |status| {
        status["runtimeStatus"] == "Running"
    });
    let response = host.request("POST", &format!("{PREFIX}/instances/{id}/suspend?reason=hold"), None);
    assert_eq!(response.status, 202, "{}", response.text);
    host.wait_for(&id, Duration::from_secs(30), |status| {
        status["runtimeStatus"] == "Suspended"
    });
    host.raise_event(&id, "Approval", "true");
    // Suspended: the event is kept in the inbox, not delivered, which leaves no trace to
    // wait for. So wait for a step that must come after the one that looked at it: the 202
    // above means the event is committed, and its commit queued this instance for the one
    // orchestration worker (which steps instances in the order they were queued) before
    // anything committed later. A barrier orchestration started now is queued after it,
    // and by the time it has completed (four steps, each queued behind a commit) the
    // worker has triaged the event. Had it delivered it, the history would show
    // EventRaised and the instance would have completed.
    let barrier = host.start_orchestration("E1_HelloSequence", None, None);
    assert_eq!(host.wait_for_finish(&barrier)["runtimeStatus"], "Completed");
    let types = host.history_types(&id);
    assert!(
        !types.iter().any(|t| t == "EventRaised"),
        "delivered while suspended: {types:?}"
    );
    assert_eq!(host.status(&id).json()["runtimeStatus"], "Suspended");
    let response = host.request("POST", &format!("{PREFIX}/instances/{id}/resume?reason=go"), None);
    assert_eq!(response.status, 202, "{}", response.text);
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"], "approved");
    let types = host.history_types(&id);
    let position = |wanted: &str| {
        types
            .iter()
            .position(|t| t == wanted)
            .unwrap_or_else(|| panic!("no {wanted} in {types:?}"))
    };
    assert!(
        position("ExecutionSuspended") < position("EventRaised"),
        "the event was taken after the suspension: {types:?}"
    );
}

#[test]
fn continue_as_new_hands_unconsumed_events_to_the_next_execution() {
    let store = temp_dir("carry").file("store.redb");
    let host = Host::start(&store, &all_apps()).unwrap();
    let id = host.start_orchestration("ContinueWithEvents", None, Some("0"));
    host.wait_for(&id, Duration::from_secs(30), |status| {
        status["runtimeStatus"] == "Running"
    });
    host.raise_event(&id, "second", r#""kept""#);
    host.raise_event(&id, "first", "1");
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"], json!({"generation": 1, "second": "kept"}));
}

#[test]
fn clock_and_randomness_replay_identically_after_a_restart() {
    let store = temp_dir("sandbox").file("store.redb");
    let host = Host::start(&store, &all_apps()).unwrap();
    let id = host.start_orchestration("SandboxProbe", None, None);
    let waiting = host.wait_for(&id, Duration::from_secs(30), |status| !status["customStatus"].is_null());
    let observed: Value = waiting["customStatus"].clone();
    assert_eq!(
        observed["clock"], observed["orchestratorTime"],
        "the guest's wall clock reads the recorded time"
    );
    host.kill();

    // A fresh host has no live orchestration: it replays the first episode from history.
    let host = Host::start(&store, &all_apps()).unwrap();
    host.raise_event(&id, "go", "null");
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(
        status["output"], observed,
        "replay saw the same clock, random numbers and guid"
    );
}

#[test]
fn a_diverging_replay_fails_the_instance_naming_the_event_and_the_action() {
    // With one live orchestration at most, running the child evicts the parent, so the
    // parent's next step replays it, and the replay takes the other branch.
    let store = temp_dir("nondeterminism").file("store.redb");
    let host = Host::start_with_args(&store, &all_apps(), &["--cache-size", "1"]).unwrap();
    let id = host.start_orchestration("Nondeterministic", None, None);
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Failed", "{status}");
    let output = status["output"].as_str().unwrap();
    assert!(output.contains("nondeterministic"), "{output}");
    assert!(
        output.contains("SubOrchestrationInstanceCreated 'E1_HelloSequence'"),
        "{output}"
    );
    assert!(output.contains("CreateTimer"), "{output}");
}
