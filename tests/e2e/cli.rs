//! The client subcommands (`durable start-new`, `durable get-instances`, ...): the real binary
//! as a subprocess against a real host.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{CliRun, Host, durable};

/// Runs `durable SUBCOMMAND ARGS --url HOST`.
fn cli(host: &Host, subcommand: &str, args: &[&str]) -> CliRun {
    let mut all = vec![subcommand];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--url", &host.base]);
    durable(&all)
}

/// `get-runtime-status --json` of `id`.
fn status(host: &Host, id: &str) -> Value {
    cli(host, "get-runtime-status", &["--id", id, "--json"]).ok().json()
}

/// Polls `get-runtime-status --json` until `done` holds; fails after a minute.
fn wait_until(host: &Host, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut interval = Duration::from_millis(10);
    loop {
        let status = status(host, id);
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "instance {id} did not get there; last status {status}"
        );
        std::thread::sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(200));
    }
}

fn wait_for_status(host: &Host, id: &str, wanted: &str) -> Value {
    wait_until(host, id, |status| status["runtimeStatus"] == wanted)
}

fn start(host: &Host, args: &[&str]) -> String {
    let id = cli(host, "start-new", args).ok().stdout.trim().to_owned();
    assert!(
        !id.is_empty() && !id.contains(char::is_whitespace),
        "start-new printed {id:?}"
    );
    id
}

#[test]
fn start_new_then_get_runtime_status_shows_the_hello_sequence_output() {
    let host = Host::with_examples("cli-hello");
    let id = start(&host, &["--function-name", "E1_HelloSequence"]);
    let status = wait_for_status(&host, &id, "Completed");
    assert_eq!(
        status["output"],
        serde_json::json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
    );
    assert_eq!(status["instanceId"], id.as_str());
    assert_eq!(status["name"], "E1_HelloSequence");

    let text = cli(&host, "get-runtime-status", &["--id", &id]).ok().stdout;
    assert!(text.contains("Completed"), "{text}");
    assert!(
        text.contains(r#"["Hello Tokyo!","Hello Seattle!","Hello London!"]"#),
        "{text}"
    );
}

#[test]
fn start_new_json_prints_the_given_id_and_passes_the_input() {
    let host = Host::with_examples("cli-start-json");
    let started = cli(
        &host,
        "start-new",
        &[
            "--function-name",
            "E2_FanOutFanIn",
            "--id",
            "fan-3",
            "--input",
            "3",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(started, serde_json::json!({ "id": "fan-3" }));
    let status = wait_for_status(&host, "fan-3", "Completed");
    assert_eq!(status["output"], 14, "1 + 4 + 9: {status}");
}

#[test]
fn get_instances_pages_one_at_a_time_through_continuation_tokens() {
    let host = Host::with_examples("cli-paging");
    for id in ["page-a", "page-b", "page-c"] {
        start(&host, &["--function-name", "E1_HelloSequence", "--id", id]);
    }
    start(&host, &["--function-name", "E1_HelloSequence", "--id", "other"]);

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let mut args = vec!["--top", "1", "--prefix", "page-", "--json"];
        if let Some(token) = &token {
            args.extend_from_slice(&["--continuation-token", token]);
        }
        let page = cli(&host, "get-instances", &args).ok().json();
        let instances = page["instances"].as_array().expect("instances array");
        assert!(instances.len() <= 1, "--top 1 gave {page}");
        seen.extend(
            instances
                .iter()
                .map(|status| status["instanceId"].as_str().unwrap().to_owned()),
        );
        match page["continuationToken"].as_str() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["page-a", "page-b", "page-c"]);

    let text = cli(&host, "get-instances", &["--top", "1", "--prefix", "page-"])
        .ok()
        .stdout;
    let header = text.lines().next().unwrap_or_default();
    for column in ["INSTANCE ID", "NAME", "STATUS", "CREATED", "LAST UPDATED"] {
        assert!(header.contains(column), "{text}");
    }
    assert!(text.contains("E1_HelloSequence"), "{text}");
    assert!(
        text.contains("--continuation-token "),
        "the table tells how to get the next page:\n{text}"
    );
}

#[test]
fn get_instances_filters_by_runtime_status() {
    let host = Host::with_examples("cli-filter");
    let done = start(&host, &["--function-name", "E1_HelloSequence"]);
    wait_for_status(&host, &done, "Completed");
    let waiting = start(&host, &["--function-name", "E4_Approval", "--input", "300"]);
    wait_for_status(&host, &waiting, "Running");

    let page = cli(
        &host,
        "get-instances",
        &["--runtime-status", "Running,Pending", "--json"],
    )
    .ok()
    .json();
    let ids: Vec<&str> = page["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|status| status["instanceId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [waiting.as_str()], "{page}");
    assert!(page["continuationToken"].is_null(), "{page}");
}

#[test]
fn raise_event_approves_a_waiting_approval_instance() {
    let host = Host::with_examples("cli-raise");
    let id = start(&host, &["--function-name", "E4_Approval", "--input", "300"]);
    let raised = cli(
        &host,
        "raise-event",
        &["--id", &id, "--event-name", "Approval", "--event-data", "true"],
    )
    .ok();
    assert!(raised.stdout.contains("Approval"), "{}", raised.stdout);
    let status = wait_until(&host, &id, |status| status["runtimeStatus"] == "Completed");
    assert_eq!(status["output"], "approved");
}

#[test]
fn terminate_ends_a_running_instance_with_the_reason() {
    let host = Host::with_examples("cli-terminate");
    let id = start(&host, &["--function-name", "E4_Approval", "--input", "300"]);
    wait_for_status(&host, &id, "Running");
    let json = cli(
        &host,
        "terminate",
        &["--id", &id, "--reason", "no longer needed", "--json"],
    )
    .ok()
    .json();
    assert_eq!(json["id"], id.as_str());
    let status = wait_for_status(&host, &id, "Terminated");
    assert_eq!(status["output"], "no longer needed");

    let again = cli(&host, "terminate", &["--id", &id]);
    assert_eq!(
        again.code, 1,
        "terminating a finished instance is refused: {}",
        again.stderr
    );
}

#[test]
fn suspend_and_resume_pause_and_continue_an_instance() {
    let host = Host::with_examples("cli-suspend");
    let id = start(&host, &["--function-name", "E4_Approval", "--input", "300"]);
    wait_for_status(&host, &id, "Running");
    cli(&host, "suspend", &["--id", &id, "--reason", "lunch"]).ok();
    wait_for_status(&host, &id, "Suspended");
    cli(&host, "resume", &["--id", &id, "--reason", "back"]).ok();
    wait_for_status(&host, &id, "Running");
    cli(&host, "raise-event", &["--id", &id, "--event-name", "Approval"]).ok();
    let status = wait_for_status(&host, &id, "Completed");
    assert_eq!(status["output"], "approved");
}

#[test]
fn rewind_of_a_failed_instance_is_accepted_and_it_fails_again() {
    let host = Host::with_examples("cli-rewind");
    let id = start(&host, &["--function-name", "FailAlways"]);
    let failed = wait_for_status(&host, &id, "Failed");
    let before = failed["lastUpdatedTime"].as_str().unwrap().to_owned();

    cli(&host, "rewind", &["--id", &id, "--reason", "try again"]).ok();
    // Its activity always fails, so it ends Failed again, later than before.
    let status = wait_until(&host, &id, |status| {
        status["runtimeStatus"] == "Failed" && status["lastUpdatedTime"].as_str().unwrap() > before.as_str()
    });
    assert_eq!(
        status["createdTime"], failed["createdTime"],
        "the same instance ran again"
    );
}

#[test]
fn restart_with_new_id_prints_a_different_instance_id() {
    let host = Host::with_examples("cli-restart");
    let id = start(&host, &["--function-name", "E1_HelloSequence"]);
    wait_for_status(&host, &id, "Completed");
    let restarted = cli(&host, "restart", &["--id", &id, "--new-id"])
        .ok()
        .stdout
        .trim()
        .to_owned();
    assert!(
        !restarted.is_empty() && restarted != id,
        "restart printed {restarted:?}"
    );
    let status = wait_for_status(&host, &restarted, "Completed");
    assert_eq!(status["name"], "E1_HelloSequence");
}

#[test]
fn purge_history_by_id_and_by_filter_reports_the_count() {
    let host = Host::with_examples("cli-purge");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = start(&host, &["--function-name", "E1_HelloSequence"]);
        wait_for_status(&host, &id, "Completed");
        ids.push(id);
    }
    let waiting = start(&host, &["--function-name", "E4_Approval", "--input", "300"]);
    wait_for_status(&host, &waiting, "Running");

    let purged = cli(&host, "purge-history", &["--id", &ids[0]]).ok();
    assert_eq!(purged.stdout.trim(), "Purged 1 instance(s)");
    assert_eq!(cli(&host, "get-runtime-status", &["--id", &ids[0]]).code, 1);

    let purged = cli(
        &host,
        "purge-history",
        &[
            "--runtime-status",
            "Completed",
            "--created-after",
            "2000-01-01",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(purged, serde_json::json!({ "instancesDeleted": 2 }));
    for id in &ids[1..] {
        assert_eq!(cli(&host, "get-runtime-status", &["--id", id]).code, 1);
    }
    wait_for_status(&host, &waiting, "Running");
}

#[test]
fn get_history_shows_the_task_completed_events() {
    let host = Host::with_examples("cli-history");
    let id = start(&host, &["--function-name", "E1_HelloSequence"]);
    wait_for_status(&host, &id, "Completed");

    let events = cli(&host, "get-history", &["--id", &id, "--json"]).ok().json();
    let completed: Vec<&Value> = events
        .as_array()
        .expect("an array of events")
        .iter()
        .filter(|event| event["EventType"] == "TaskCompleted")
        .collect();
    assert_eq!(completed.len(), 3, "{events}");
    assert_eq!(completed[0]["Result"], "Hello Tokyo!");

    let text = cli(&host, "get-history", &["--id", &id]).ok().stdout;
    let rows: Vec<&str> = text.lines().filter(|line| line.starts_with("TaskCompleted")).collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows[0].contains("E1_SayHello") && rows[0].contains("Hello Tokyo!"),
        "{text}"
    );
}

#[test]
fn unknown_instance_exits_1_with_the_reason_on_stderr() {
    let host = Host::with_examples("cli-unknown");
    for subcommand in ["get-runtime-status", "get-history", "terminate", "purge-history"] {
        let run = cli(&host, subcommand, &["--id", "no-such-instance"]);
        assert_eq!(run.code, 1, "{subcommand}: {}", run.stderr);
        assert!(run.stderr.contains("no-such-instance"), "{subcommand}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{subcommand}: {}", run.stdout);
    }
    let run = cli(&host, "start-new", &["--function-name", "NoSuchOrchestrator"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("NoSuchOrchestrator"), "{}", run.stderr);
}

#[test]
fn usage_errors_exit_2_with_a_usage_hint_before_contacting_the_host() {
    // Port 1 is never listening: a usage error must be found before any connection.
    let unreachable = ["--url", "http://127.0.0.1:1"];
    let cases: &[&[&str]] = &[
        &["get-instances", "--bogus"],
        &["start-new"],
        &[
            "start-new",
            "--function-name",
            "E1_HelloSequence",
            "--input",
            "not json",
        ],
        &["get-instances", "--created-after", "yesterday"],
        &["get-instances", "--runtime-status", "Running,Sleeping"],
        &["get-instances", "--top", "zero"],
        &["terminate", "--id"],
        &["get-runtime-status", "--id", "a", "--id", "b"],
        &["purge-history"],
        &["purge-history", "--id", "a", "--runtime-status", "Completed"],
    ];
    for case in cases {
        let mut args = case.to_vec();
        args.extend_from_slice(&unreachable);
        let run = durable(&args);
        assert_eq!(run.code, 2, "{case:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("USAGE"),
            "{case:?} gives a usage hint: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{case:?}: {}", run.stdout);
    }
    let run = durable(&["no-such-command"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("durable --help"), "{}", run.stderr);
    let run = durable(&["get-instances", "--url", "ftp://example"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

#[test]
fn unreachable_host_exits_3() {
    for args in [
        &["get-instances", "--url", "http://127.0.0.1:1"][..],
        &[
            "start-new",
            "--function-name",
            "E1_HelloSequence",
            "--url",
            "http://127.0.0.1:1",
            "--json",
        ],
    ] {
        let run = durable(args);
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("127.0.0.1:1"), "{}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
}

#[test]
fn help_prints_usage_for_durable_and_each_subcommand() {
    let run = durable(&["--help"]).ok();
    for subcommand in [
        "serve",
        "start-new",
        "get-runtime-status",
        "get-instances",
        "get-history",
        "raise-event",
        "terminate",
        "suspend",
        "resume",
        "rewind",
        "restart",
        "purge-history",
    ] {
        assert!(run.stdout.contains(subcommand), "durable --help lists {subcommand}");
        if subcommand != "serve" {
            let help = durable(&[subcommand, "--help"]).ok();
            assert!(
                help.stdout.contains(&format!("durable {subcommand}")),
                "{}",
                help.stdout
            );
            assert!(help.stdout.contains("--url"), "{}", help.stdout);
        }
    }
    let help = durable(&["start-new", "--help"]).ok();
    assert!(help.stdout.contains("--function-name"), "{}", help.stdout);
}
