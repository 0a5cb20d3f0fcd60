//! Live deployment: `durable deploy`, `list-apps` and `remove-app` against a running host's
//! admin API, version pinning of running instances, and the admin API's refusals.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{CliRun, Host, PREFIX, Response, TestFile, durable, guest_app, http, temp_dir};

const TEAM_KEY: &str = "team-key-0123456789abcdef";
const ADMIN_KEY: &str = "admin-key-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(60);

/// Writes a config with hub `team` (a key, no apps) and, if `admin`, an admin key.
fn config(label: &str, admin: bool) -> TestFile {
    let file = temp_dir(label).file("durable.toml");
    let admin_keys = if admin {
        format!("admin_keys = [\"{ADMIN_KEY}\"]\n")
    } else {
        String::new()
    };
    let text = format!("{admin_keys}\n[hubs.team]\nkeys = [\"{TEAM_KEY}\"]\nstore = \"team/store.redb\"\n");
    std::fs::write(&file, text).expect("writing the config");
    file
}

/// The version the host gives a component: the SHA-256 of its bytes.
fn version_of(wasm: &Path) -> String {
    let bytes = std::fs::read(wasm).expect("reading a guest");
    Sha256::digest(&bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `durable COMMAND --url HOST --task-hub team --key KEY [args]`.
fn admin_cli(host: &Host, command: &str, key: &str, args: &[&str]) -> CliRun {
    let mut all = vec![command, "--url", &host.base, "--task-hub", "team", "--key", key];
    all.extend_from_slice(args);
    durable(&all)
}

fn deploy(host: &Host, name: &str, wasm: &Path, json: bool) -> CliRun {
    let mut args = vec!["--name", name, "--app", wasm.to_str().unwrap()];
    if json {
        args.push("--json");
    }
    admin_cli(host, "deploy", ADMIN_KEY, &args)
}

fn list_apps(host: &Host) -> Value {
    admin_cli(host, "list-apps", ADMIN_KEY, &["--json"])
        .assert_code(0)
        .json()
}

/// A request to hub `team`: the key in the header, or as `code=` when `in_query`.
fn hub_request(host: &Host, method: &str, path: &str, body: Option<&str>, in_query: bool) -> Response {
    let separator = if path.contains('?') { '&' } else { '?' };
    if in_query {
        let path = format!("{path}{separator}taskHub=team&code={TEAM_KEY}");
        http(&host.base, method, &path, body, &[]).unwrap()
    } else {
        let path = format!("{path}{separator}taskHub=team");
        http(&host.base, method, &path, body, &[("x-functions-key", TEAM_KEY)]).unwrap()
    }
}

fn start(host: &Host, orchestrator: &str, id: &str) -> Response {
    hub_request(
        host,
        "POST",
        &format!("{PREFIX}/orchestrators/{orchestrator}/{id}"),
        None,
        true,
    )
}

fn status(host: &Host, id: &str) -> Value {
    let response = hub_request(
        host,
        "GET",
        &format!("{PREFIX}/instances/{id}?showHistory=true"),
        None,
        false,
    );
    assert!(
        matches!(response.status, 200 | 202),
        "status of {id}: {} {}",
        response.status,
        response.text
    );
    response.json()
}

/// Polls `probe` until it gives a value or `WAIT` passes.
fn poll<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    let mut interval = Duration::from_millis(10);
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        std::thread::sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(200));
    }
}

/// Waits until `id` has run its first episode: Running, with its start in the history (so
/// it is pinned to the version it started on, and waits for `go`).
fn wait_until_waiting(host: &Host, id: &str) {
    poll(&format!("{id} waits for go"), || {
        let status = status(host, id);
        let started = status["historyEvents"]
            .as_array()
            .is_some_and(|events| events.iter().any(|event| event["EventType"] == "ExecutionStarted"));
        (status["runtimeStatus"] == "Running" && started).then_some(())
    });
}

fn raise_go(host: &Host, id: &str) {
    let response = hub_request(
        host,
        "POST",
        &format!("{PREFIX}/instances/{id}/raiseEvent/go"),
        Some("true"),
        false,
    );
    assert_eq!(response.status, 202, "raise go on {id}: {}", response.text);
}

fn wait_for_output(host: &Host, id: &str) -> Value {
    let status = poll(&format!("{id} finishes"), || {
        let status = status(host, id);
        matches!(
            status["runtimeStatus"].as_str(),
            Some("Completed" | "Failed" | "Terminated")
        )
        .then_some(status)
    });
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    status["output"].clone()
}

fn retained(list: &Value) -> Vec<String> {
    list["retainedVersions"]
        .as_array()
        .expect("retainedVersions")
        .iter()
        .map(|version| version.as_str().unwrap().to_owned())
        .collect()
}

fn admin_request(host: &Host, method: &str, path: &str, body: Option<&str>, key: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = key.map(|key| ("x-functions-key", key)).into_iter().collect();
    http(&host.base, method, path, body, &headers).unwrap()
}

/// The `Message` of an error response (which must be JSON).
fn message(response: &Response) -> String {
    response.json()["Message"]
        .as_str()
        .unwrap_or_else(|| panic!("no Message in {}", response.text))
        .to_owned()
}

#[test]
fn deploy_replaces_an_app_while_instances_run_on_the_version_they_started_on() {
    let config = config("deploy-replace", true);
    let host = Host::start_with_config(&config, &[]).unwrap();
    let (v1, v2) = (guest_app("versioned_v1"), guest_app("versioned_v2"));
    let (v1_version, v2_version) = (version_of(&v1), version_of(&v2));

    let empty = list_apps(&host);
    assert_eq!(empty["taskHub"], "team", "{empty}");
    assert_eq!(
        empty["apps"],
        serde_json::json!([]),
        "the config declares no app: {empty}"
    );
    let response = start(&host, "Stable", "too-early");
    assert_eq!(response.status, 400, "nothing is deployed yet: {}", response.text);

    let run = deploy(&host, "versioned", &v1, false);
    run.assert_code(0);
    let mut lines = run.stdout.lines();
    assert_eq!(
        lines.next(),
        Some(format!("deployed versioned version {}", &v1_version[..12]).as_str()),
        "{}",
        run.stdout
    );
    let functions: Vec<&str> = lines.collect();
    for (kind, name) in [
        ("orchestrator", "Stable"),
        ("orchestrator", "Versioned"),
        ("activity", "Version"),
        ("activity", "VersionTwo"),
    ] {
        assert!(
            functions.iter().any(|line| line.split_whitespace().eq([kind, name])),
            "{kind} {name} missing from:\n{}",
            run.stdout
        );
    }

    let a = start(&host, "Stable", "stable-a");
    assert_eq!(a.status, 202, "{}", a.text);
    wait_until_waiting(&host, "stable-a");

    let run = deploy(&host, "versioned", &v2, true);
    run.assert_code(0);
    let info = run.json();
    assert_eq!(info["name"], "versioned", "{info}");
    assert_eq!(info["version"], v2_version.as_str(), "{info}");
    assert_eq!(info["replaced"], v1_version.as_str(), "{info}");
    assert_eq!(info["functions"].as_array().map(Vec::len), Some(4), "{info}");

    // While A runs on v1, v1 is kept beside the current v2.
    let list = list_apps(&host);
    let apps = list["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 1, "{list}");
    assert_eq!(apps[0]["name"], "versioned");
    assert_eq!(apps[0]["version"], v2_version.as_str(), "{list}");
    assert_eq!(retained(&list), [v1_version.as_str()], "{list}");
    let text = admin_cli(&host, "list-apps", ADMIN_KEY, &[]);
    text.assert_code(0);
    let app_line = text
        .stdout
        .lines()
        .find(|line| line.starts_with("versioned "))
        .unwrap_or_else(|| panic!("no line for the app:\n{}", text.stdout));
    assert!(
        app_line.contains(&v2_version[..12]) && app_line.contains("Stable") && app_line.contains("Version"),
        "{app_line}"
    );
    assert!(
        text.stdout
            .lines()
            .any(|line| line.starts_with("retained versions") && line.contains(&v1_version[..12])),
        "{}",
        text.stdout
    );

    let b = start(&host, "Stable", "stable-b");
    assert_eq!(b.status, 202, "{}", b.text);
    wait_until_waiting(&host, "stable-b");
    raise_go(&host, "stable-a");
    raise_go(&host, "stable-b");
    assert_eq!(
        wait_for_output(&host, "stable-a"),
        "v1",
        "A finishes on the version it started on"
    );
    assert_eq!(
        wait_for_output(&host, "stable-b"),
        "v2",
        "B starts on the newest version"
    );

    // Deploying the current version again changes nothing and lets go of v1, which no
    // unfinished instance needs any more.
    let again = deploy(&host, "versioned", &v2, true);
    again.assert_code(0);
    let info = again.json();
    assert_eq!(info["version"], v2_version.as_str(), "{info}");
    assert!(
        info.get("replaced").is_none(),
        "the same version replaces nothing: {info}"
    );
    let list = list_apps(&host);
    assert!(retained(&list).is_empty(), "{list}");
    let apps_dir = config.parent().unwrap().join("team/team-apps");
    assert!(
        !apps_dir.join(format!("{v1_version}.wasm")).exists(),
        "the unused version's file is deleted"
    );
    assert!(apps_dir.join(format!("{v2_version}.wasm")).exists());
}

#[test]
fn deployments_survive_a_restart_and_removed_apps_let_running_instances_finish() {
    let config = config("deploy-restart", true);
    let v1 = guest_app("versioned_v1");
    let v1_version = version_of(&v1);
    let host = Host::start_with_config(&config, &[]).unwrap();
    deploy(&host, "versioned", &v1, false).assert_code(0);
    assert_eq!(start(&host, "Stable", "before-restart").status, 202);
    wait_until_waiting(&host, "before-restart");
    assert!(host.terminate().success(), "the host exits cleanly on SIGTERM");

    let host = Host::start_with_config(&config, &[]).unwrap();
    let list = list_apps(&host);
    let apps = list["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 1, "the deployment survives the restart: {list}");
    assert_eq!(apps[0]["name"], "versioned");
    assert_eq!(apps[0]["version"], v1_version.as_str(), "{list}");
    let after = start(&host, "Stable", "after-restart");
    assert_eq!(after.status, 202, "{}", after.text);
    wait_until_waiting(&host, "after-restart");

    let run = admin_cli(&host, "remove-app", ADMIN_KEY, &["--name", "versioned"]);
    run.assert_code(0);
    assert!(run.stdout.contains("removed versioned"), "{}", run.stdout);
    let list = list_apps(&host);
    assert_eq!(list["apps"], serde_json::json!([]), "{list}");
    assert_eq!(
        retained(&list),
        [v1_version.as_str()],
        "running instances keep v1: {list}"
    );

    // New starts of its orchestrators are refused...
    let refused = start(&host, "Stable", "after-removal");
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        message(&refused).contains("Stable"),
        "the refusal names the orchestrator: {}",
        refused.text
    );
    let missing = hub_request(&host, "GET", &format!("{PREFIX}/instances/after-removal"), None, false);
    assert_eq!(missing.status, 404, "a refused start creates nothing: {}", missing.text);
    // ...while the instances running on it finish, the one from before the restart too.
    raise_go(&host, "before-restart");
    raise_go(&host, "after-restart");
    assert_eq!(wait_for_output(&host, "before-restart"), "v1");
    assert_eq!(wait_for_output(&host, "after-restart"), "v1");

    // Removing it again: the host says there is no such app.
    let run = admin_cli(&host, "remove-app", ADMIN_KEY, &["--name", "versioned"]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("no app 'versioned'") && run.stderr.contains("404"),
        "{}",
        run.stderr
    );

    // The removal survives a restart too, and the unused version is dropped.
    assert!(host.terminate().success());
    let host = Host::start_with_config(&config, &[]).unwrap();
    let list = list_apps(&host);
    assert_eq!(list["apps"], serde_json::json!([]), "{list}");
    assert!(retained(&list).is_empty(), "{list}");
    assert_eq!(start(&host, "Stable", "after-second-restart").status, 400);
}

#[test]
fn the_admin_api_refuses_hub_keys_missing_keys_garbage_and_bad_names() {
    let config = config("deploy-refusals", true);
    let host = Host::start_with_config(&config, &[]).unwrap();
    let v1 = guest_app("versioned_v1");
    let apps_path = "/admin/hubs/team/apps";

    for (key, label) in [(None, "no key"), (Some(TEAM_KEY), "a hub key")] {
        for (method, path, body) in [
            ("GET", "/admin/hubs", None),
            ("GET", apps_path, None),
            ("PUT", "/admin/hubs/team/apps/versioned", Some("\0asm")),
            ("DELETE", "/admin/hubs/team/apps/versioned", None),
        ] {
            let response = admin_request(&host, method, path, body, key);
            assert_eq!(response.status, 401, "{method} {path} with {label}: {}", response.text);
            assert!(!message(&response).is_empty());
        }
    }
    let response = http(&host.base, "GET", &format!("{apps_path}?code={TEAM_KEY}"), None, &[]).unwrap();
    assert_eq!(
        response.status, 401,
        "a hub key as code= is refused too: {}",
        response.text
    );
    let response = http(&host.base, "GET", &format!("{apps_path}?code={ADMIN_KEY}"), None, &[]).unwrap();
    assert_eq!(response.status, 200, "the admin key as code=: {}", response.text);

    // The CLI says what the host said.
    let run = admin_cli(
        &host,
        "deploy",
        TEAM_KEY,
        &["--name", "versioned", "--app", v1.to_str().unwrap()],
    );
    run.assert_code(1);
    assert!(run.stderr.contains("HTTP 401"), "{}", run.stderr);
    let run = durable(&["list-apps", "--url", &host.base, "--task-hub", "team"]);
    run.assert_code(1);
    assert!(run.stderr.contains("needs a key"), "{}", run.stderr);
    let run = admin_cli(&host, "list-apps", ADMIN_KEY, &[]);
    run.assert_code(0);
    assert!(run.stdout.contains("has no apps"), "{}", run.stdout);

    deploy(&host, "versioned", &v1, false).assert_code(0);
    let before = list_apps(&host);
    let apps_dir = config.parent().unwrap().join("team/team-apps");
    let files_before = files_in(&apps_dir);

    // Garbage is refused with a reason, and nothing changes.
    for name in ["versioned", "other"] {
        let response = admin_request(
            &host,
            "PUT",
            &format!("{apps_path}/{name}"),
            Some("this is not a WebAssembly component"),
            Some(ADMIN_KEY),
        );
        assert_eq!(response.status, 400, "{}", response.text);
        assert!(
            message(&response).contains("not a valid WebAssembly component"),
            "{}",
            response.text
        );
    }
    let garbage = config.parent().unwrap().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm but not really").unwrap();
    let run = deploy(&host, "versioned", &garbage, false);
    run.assert_code(1);
    assert!(
        run.stderr.contains("not a valid WebAssembly component") && run.stderr.contains("HTTP 400"),
        "{}",
        run.stderr
    );
    let response = admin_request(&host, "PUT", &format!("{apps_path}/versioned"), None, Some(ADMIN_KEY));
    assert_eq!(response.status, 400, "an empty body: {}", response.text);
    assert_eq!(list_apps(&host), before, "a refused upload changes nothing");
    assert_eq!(files_in(&apps_dir), files_before, "nor leaves files behind");
    assert_eq!(start(&host, "Stable", "still-v1").status, 202);

    // Invalid app names.
    let response = admin_request(
        &host,
        "PUT",
        &format!("{apps_path}/bad%20name"),
        Some("\0asm"),
        Some(ADMIN_KEY),
    );
    assert_eq!(response.status, 400, "{}", response.text);
    assert!(message(&response).contains("invalid app name"), "{}", response.text);
    let long = "x".repeat(65);
    for bad in ["bad/name", ".hidden", long.as_str()] {
        let run = deploy(&host, bad, &v1, false);
        run.assert_code(1);
        assert!(run.stderr.contains("invalid app name"), "{bad}: {}", run.stderr);
    }
    assert_eq!(list_apps(&host), before);

    // An unknown hub, an unreadable file, a missing name, a host that is not there.
    let run = durable(&[
        "list-apps",
        "--url",
        &host.base,
        "--task-hub",
        "nope",
        "--key",
        ADMIN_KEY,
    ]);
    run.assert_code(1);
    assert!(run.stderr.contains("no task hub named 'nope'"), "{}", run.stderr);
    let missing = config.parent().unwrap().join("missing.wasm");
    deploy(&host, "versioned", &missing, false).assert_code(2);
    let run = admin_cli(&host, "deploy", ADMIN_KEY, &["--app", v1.to_str().unwrap()]);
    run.assert_code(2);
    assert!(run.stderr.contains("--name"), "{}", run.stderr);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let run = durable(&["list-apps", "--url", &format!("http://127.0.0.1:{port}")]);
    run.assert_code(3);
    assert!(run.stderr.contains("could not reach"), "{}", run.stderr);
    durable(&["list-apps", "--url", "https://example.com"]).assert_code(2);
}

#[test]
fn the_admin_api_is_disabled_without_admin_keys_and_open_without_any_key() {
    // Hub keys but no admin key: the admin API answers 403 whatever the key.
    let config = config("deploy-no-admin", false);
    let host = Host::start_with_config(&config, &[]).unwrap();
    for key in [None, Some(TEAM_KEY), Some(ADMIN_KEY)] {
        let response = admin_request(&host, "GET", "/admin/hubs/team/apps", None, key);
        assert_eq!(response.status, 403, "{key:?}: {}", response.text);
        assert!(message(&response).contains("admin_keys"), "{}", response.text);
    }
    let run = admin_cli(&host, "list-apps", TEAM_KEY, &[]);
    run.assert_code(1);
    assert!(
        run.stderr.contains("admin_keys") && run.stderr.contains("HTTP 403"),
        "{}",
        run.stderr
    );
    drop(host);

    // No config, no key: the one hub answers as "default" (or any name) without a key,
    // and an app deployed beside the ones of the command line is listed with them.
    let store = temp_dir("deploy-open").file("store.redb");
    let host = Host::start(&store, &[guest_app("test_orchestrations")]).unwrap();
    let v1 = guest_app("versioned_v1");
    let run = durable(&[
        "deploy",
        "--url",
        &host.base,
        "--name",
        "versioned",
        "--app",
        v1.to_str().unwrap(),
    ]);
    run.assert_code(0);
    assert!(run.stdout.starts_with("deployed versioned version "), "{}", run.stdout);
    let run = durable(&["list-apps", "--url", &host.base, "--task-hub", "anything", "--json"]);
    run.assert_code(0);
    let list = run.json();
    assert_eq!(list["taskHub"], "default", "{list}");
    let names: Vec<&str> = list["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|app| app["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["test_orchestrations", "versioned"], "{list}");
    assert_eq!(list["apps"][1]["version"], version_of(&v1).as_str(), "{list}");
    let id = host.start_orchestration("Stable", Some("open-1"), None);
    host.wait_for(&id, WAIT, |status| status["runtimeStatus"] == "Running");
    host.raise_event(&id, "go", "1");
    assert_eq!(host.wait_for_finish(&id)["output"], "v1");
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A config with hub `team` on a fresh PostgreSQL schema (lease 2 s) and an admin key; each
/// host gets a config file of its own, so they share nothing but the database.
fn postgres_config(label: &str, schema: &str) -> TestFile {
    let file = temp_dir(label).file("durable.toml");
    let url = format!(
        "{}?schema={schema}&lease=2",
        durable_store::conformance::test_postgres_url()
    );
    let text = format!("admin_keys = [\"{ADMIN_KEY}\"]\n\n[hubs.team]\nkeys = [\"{TEAM_KEY}\"]\nstore = \"{url}\"\n");
    std::fs::write(&file, text).expect("writing the config");
    file
}

#[test]
fn a_version_deployed_through_one_host_runs_on_every_host_and_pinned_instances_keep_theirs() {
    let schema = durable_store::conformance::fresh_schema("e2e_deploy");
    let (config_a, config_b) = (
        postgres_config("deploy-host-a", &schema),
        postgres_config("deploy-host-b", &schema),
    );
    let a = Host::start_with_config(&config_a, &[]).unwrap();
    let b = Host::start_with_config(&config_b, &[]).unwrap();
    let (v1, v2) = (guest_app("versioned_v1"), guest_app("versioned_v2"));

    deploy(&a, "versioned", &v1, false).assert_code(0);
    // Started through B right after the deployment through A; the ids spread over both
    // hosts' partitions, so each host steps some of them.
    let early: Vec<String> = (0..8).map(|n| format!("early-{n}")).collect();
    for id in &early {
        let response = start(&b, "Stable", id);
        assert_eq!(response.status, 202, "{id}: {}", response.text);
    }
    for id in &early {
        wait_until_waiting(&a, id);
    }

    deploy(&b, "versioned", &v2, false).assert_code(0);
    let late: Vec<String> = (0..8).map(|n| format!("late-{n}")).collect();
    for id in &late {
        let response = start(&a, "Stable", id);
        assert_eq!(response.status, 202, "{id}: {}", response.text);
    }
    for id in &late {
        wait_until_waiting(&b, id);
    }
    let listed = list_apps(&a);
    assert_eq!(listed["apps"][0]["version"], version_of(&v2).as_str(), "{listed}");
    assert_eq!(retained(&listed), [version_of(&v1)], "{listed}");

    for id in early.iter().chain(&late) {
        raise_go(&a, id);
    }
    for id in &early {
        assert_eq!(
            wait_for_output(&b, id),
            "v1",
            "{id} finishes on the version it started on"
        );
    }
    for id in &late {
        assert_eq!(
            wait_for_output(&a, id),
            "v2",
            "{id} starts on the version deployed through B"
        );
    }
    drop((a, b));
    let location = match durable_store::StoreLocation::parse(&format!(
        "{}?schema={schema}",
        durable_store::conformance::test_postgres_url()
    )) {
        Ok(durable_store::StoreLocation::Postgres(location)) => location,
        other => panic!("{other:?}"),
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(durable_store::PostgresStore::drop_hub(&location))
        .unwrap();
}
