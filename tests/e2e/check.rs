//! `durable check`: replaying a stopped host's unfinished instances against a candidate
//! version of their app.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::support::{CliRun, Host, PREFIX, durable, guest_app, temp_dir};

/// The per-instance report lines of `durable check`.
trait CheckReport {
    /// The stdout line of instance `id`.
    fn line(&self, id: &str) -> &str;
}

impl CheckReport for CliRun {
    fn line(&self, id: &str) -> &str {
        self.stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no line for {id}; stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
}

/// `durable check ARGS`.
fn check(args: &[&str]) -> CliRun {
    durable(&[&["check"], args].concat())
}

/// `durable check --app APP --store STORE [extra]`.
fn check_store(app: &Path, store: &Path, extra: &[&str]) -> CliRun {
    let mut args = vec!["--app", app.to_str().unwrap(), "--store", store.to_str().unwrap()];
    args.extend_from_slice(extra);
    check(&args)
}

#[test]
fn check_reports_which_unfinished_instances_a_candidate_would_break() {
    let store = temp_dir("check").file("store.redb");
    let (v1, v2) = (guest_app("versioned_v1"), guest_app("versioned_v2"));
    let host = Host::start(&store, std::slice::from_ref(&v1)).unwrap();
    let versioned = host.start_orchestration("Versioned", Some("versioned-1"), None);
    let stable = host.start_orchestration("Stable", Some("stable-1"), None);
    let suspended = host.start_orchestration("Stable", Some("stable-suspended"), None);
    let done = host.start_orchestration("Stable", Some("stable-done"), None);
    let wait = Duration::from_secs(60);
    // Versioned waits for "go" once its activity's result is in the history.
    host.wait_for(&versioned, wait, |_| {
        host.history_types(&versioned)
            .iter()
            .any(|kind| kind == "TaskCompleted")
    });
    for id in [&stable, &suspended, &done] {
        host.wait_for(id, wait, |status| status["runtimeStatus"] == "Running");
    }
    let response = host.request(
        "POST",
        &format!("{PREFIX}/instances/{suspended}/suspend?reason=hold"),
        None,
    );
    assert_eq!(response.status, 202, "{}", response.text);
    host.wait_for(&suspended, wait, |status| status["runtimeStatus"] == "Suspended");
    host.raise_event(&done, "go", "1");
    assert_eq!(host.wait_for_finish(&done)["output"], "v1");

    // While the host holds the store, the offline form says so and points to --url.
    let busy = check_store(&v2, &store, &[]);
    busy.assert_code(3);
    assert!(
        busy.stderr.contains("in use") && busy.stderr.contains("--url"),
        "{}",
        busy.stderr
    );
    // The remote form asks the host that holds it, and prints the same report.
    let remote = check(&["--app", v2.to_str().unwrap(), "--url", &host.base]);
    remote.assert_code(1);
    assert!(remote.line("versioned-1").contains("DIVERGES"), "{}", remote.stdout);
    assert!(remote.line("stable-1").ends_with("compatible"), "{}", remote.stdout);
    let remote = check(&["--app", v1.to_str().unwrap(), "--url", &host.base, "--json"]);
    remote.assert_code(0);
    let report = remote.json();
    assert_eq!(report["summary"]["compatible"], 3, "{report}");
    assert!(host.terminate().success(), "the host exits cleanly on SIGTERM");

    // v2 changed Versioned: its v1 history diverges, naming the recorded event.
    let run = check_store(&v2, &store, &[]);
    run.assert_code(1);
    let line = run.line("versioned-1");
    assert!(line.contains("Versioned"), "{line}");
    assert!(line.contains("DIVERGES"), "{line}");
    assert!(
        line.contains("TaskScheduled 'Version'") && line.contains("VersionTwo"),
        "the message names the recorded event and the new action: {line}"
    );
    assert!(run.line("stable-1").ends_with("compatible"), "{}", run.stdout);
    assert!(run.line("stable-suspended").ends_with("compatible"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("stable-done"),
        "finished instances are not checked: {}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("3 instance(s) checked: 2 compatible, 1 would diverge"),
        "{}",
        run.stdout
    );

    let run = check_store(&v2, &store, &["--json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    let instances = report["instances"].as_array().expect("instances");
    assert_eq!(instances.len(), 3, "{report}");
    let by_id = |id: &str| {
        instances
            .iter()
            .find(|instance| instance["instanceId"] == id)
            .unwrap_or_else(|| panic!("{id} missing from {report}"))
    };
    let diverging = by_id("versioned-1");
    assert_eq!(diverging["verdict"], "diverges", "{diverging}");
    assert_eq!(diverging["name"], "Versioned");
    assert_eq!(diverging["runtimeStatus"], "Running");
    assert_eq!(diverging["episodesRecorded"], 2, "{diverging}");
    assert_eq!(diverging["episodesReplayed"], 1, "it diverged in the first episode");
    assert!(diverging["executionId"].is_u64(), "{diverging}");
    assert!(
        diverging["message"]
            .as_str()
            .unwrap()
            .contains("TaskScheduled 'Version'"),
        "{diverging}"
    );
    assert_eq!(by_id("stable-1")["verdict"], "compatible");
    assert_eq!(by_id("stable-suspended")["runtimeStatus"], "Suspended");
    assert_eq!(
        report["summary"],
        json!({"checked": 3, "compatible": 2, "diverges": 1, "notExported": 0, "trapped": 0})
    );

    // The version that wrote the histories replays them all.
    let run = check_store(&v1, &store, &[]);
    run.assert_code(0);
    for id in ["versioned-1", "stable-1", "stable-suspended"] {
        assert!(run.line(id).ends_with("compatible"), "{}", run.stdout);
    }

    // An app without these orchestrators would fail every one of them.
    let run = check_store(&guest_app("test_orchestrations"), &store, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    for id in ["versioned-1", "stable-1", "stable-suspended"] {
        assert!(run.line(id).ends_with("not exported"), "{}", run.stdout);
    }

    // Checking wrote nothing a host minds: the instances carry on under v1.
    let host = Host::start(&store, std::slice::from_ref(&v1)).unwrap();
    host.raise_event(&versioned, "go", "\"now\"");
    let status = host.wait_for_finish(&versioned);
    assert_eq!(status["output"], json!(["v1", "now"]), "{status}");
}

#[test]
fn check_explains_bad_command_lines_and_missing_stores() {
    let dir = temp_dir("check-usage");
    let app = guest_app("versioned_v2");
    let app = app.to_str().unwrap();

    let run = check(&["--store", dir.join("store.redb").to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--app"), "{}", run.stderr);

    let run = check(&["--app", app, "--store", "x.redb", "--url", "http://127.0.0.1:1"]);
    assert_eq!(run.code, 2, "{}", run.stderr);

    let missing = dir.join("nothing-here.redb");
    let run = check(&["--app", app, "--store", missing.to_str().unwrap()]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("no store at"), "{}", run.stderr);
    assert!(!missing.exists(), "checking does not create a store");

    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let run = check(&["--app", app, "--url", &url]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("could not reach"), "{}", run.stderr);
}

#[test]
fn check_reads_a_postgresql_hub_beside_its_running_host_without_taking_its_work() {
    let hub = crate::support::PostgresHub::fresh("e2e_check", 2.0);
    let (v1, v2) = (guest_app("versioned_v1"), guest_app("versioned_v2"));
    let host = hub.start_host(std::slice::from_ref(&v1), Some("only")).unwrap();
    let versioned = host.start_orchestration("Versioned", Some("versioned-pg"), None);
    let stable = host.start_orchestration("Stable", Some("stable-pg"), None);
    let wait = Duration::from_secs(60);
    host.wait_for(&versioned, wait, |_| {
        host.history_types(&versioned)
            .iter()
            .any(|kind| kind == "TaskCompleted")
    });
    host.wait_for(&stable, wait, |status| status["runtimeStatus"] == "Running");

    // Unlike a redb file, the hub is open to a second reader while its host runs.
    let url = hub.store_url(None);
    let run = check(&["--app", v2.to_str().unwrap(), "--store", &url]);
    run.assert_code(1);
    assert!(run.line("versioned-pg").contains("DIVERGES"), "{}", run.stdout);
    assert!(run.line("stable-pg").ends_with("compatible"), "{}", run.stdout);
    let owners = hub
        .psql(&format!(
            "SELECT DISTINCT owner FROM {}.partitions WHERE owner IS NOT NULL",
            hub.schema
        ))
        .unwrap();
    assert_eq!(owners.trim(), "only", "the check took no partition");

    // The host still runs everything: the waiting instances finish on v1.
    host.raise_event(&versioned, "go", "1");
    host.raise_event(&stable, "go", "1");
    assert_eq!(host.wait_for_finish(&versioned)["runtimeStatus"], "Completed");
    assert_eq!(host.wait_for_finish(&stable)["output"], "v1");

    // A schema with no hub in it is named, not created.
    let missing = format!(
        "{}?schema=e2e_check_no_such_hub",
        durable_store::conformance::test_postgres_url()
    );
    let run = check(&["--app", v2.to_str().unwrap(), "--store", &missing]);
    run.assert_code(3);
    assert!(
        run.stderr.contains("no task hub in schema e2e_check_no_such_hub"),
        "{}",
        run.stderr
    );
    let created = hub
        .psql("SELECT count(*) FROM pg_namespace WHERE nspname = 'e2e_check_no_such_hub'")
        .unwrap();
    assert_eq!(created.trim(), "0", "checking does not create a hub");
}
