//! Task hubs as tenants: keys, cross-hub isolation, key rotation, start-up refusals and
//! the per-hub limits the API enforces.

use std::path::Path;
use std::time::Duration;

use crate::support::{Host, PREFIX, TestFile, durable, durable_with_env, example, http, temp_dir};

const ALPHA_KEY: &str = "alpha-key-0123456789abcdef";
const BETA_KEY: &str = "beta-key-0123456789abcdef";
const ADMIN_KEY: &str = "admin-key-0123456789abcdef";

/// Writes a config with hubs alpha and beta (approval and counter apps) to a fresh dir.
fn two_hub_config(label: &str, alpha_keys: &[&str], extra_alpha: &str) -> TestFile {
    let config = temp_dir(label).file("durable.toml");
    write_two_hub_config(&config, alpha_keys, extra_alpha);
    config
}

fn write_two_hub_config(config: &Path, alpha_keys: &[&str], extra_alpha: &str) {
    let keys: Vec<String> = alpha_keys.iter().map(|key| format!("{key:?}")).collect();
    let text = format!(
        r#"
admin_keys = ["{ADMIN_KEY}"]

[hubs.alpha]
keys = [{keys}]
store = "alpha/store.redb"
{extra_alpha}
[hubs.alpha.apps.approval]
path = {approval:?}
[hubs.alpha.apps.counter]
path = {counter:?}
[hubs.alpha.apps.hello]
path = {hello:?}

[hubs.beta]
keys = ["{BETA_KEY}"]
store = "beta/store.redb"
[hubs.beta.apps.approval]
path = {approval:?}
[hubs.beta.apps.counter]
path = {counter:?}
"#,
        keys = keys.join(", "),
        approval = example("approval"),
        counter = example("counter"),
        hello = example("hello_sequence"),
    );
    std::fs::write(config, text).expect("writing the config");
}

/// Sends a request to `hub` with `key` as `code=`.
fn in_hub(host: &Host, method: &str, path: &str, hub: &str, key: &str, body: Option<&str>) -> crate::support::Response {
    http(&host.base, method, &with_key(path, hub, key), body, &[]).unwrap()
}

/// Sends a request with `key` in the `x-functions-key` header.
fn keyed(host: &Host, method: &str, path: &str, key: &str, body: Option<&str>) -> crate::support::Response {
    http(&host.base, method, path, body, &[("x-functions-key", key)]).unwrap()
}

fn with_key(path: &str, hub: &str, key: &str) -> String {
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}taskHub={hub}&code={key}")
}

/// Starts E4_Approval in alpha and returns its id.
fn start_approval(host: &Host) -> String {
    let response = keyed(
        host,
        "POST",
        &format!("{PREFIX}/orchestrators/E4_Approval?taskHub=alpha"),
        ALPHA_KEY,
        Some("600"),
    );
    assert_eq!(response.status, 202, "{}", response.text);
    let body = response.json();
    let status_uri = body["statusQueryGetUri"].as_str().unwrap();
    assert!(
        status_uri.contains(&format!("code={ALPHA_KEY}")) && status_uri.contains("taskHub=alpha"),
        "management URLs carry the hub and the key the request used: {status_uri}"
    );
    body["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_key_of_one_hub_opens_nothing_of_another() {
    let config = two_hub_config("hubs-isolation", &[ALPHA_KEY], "");
    let host = Host::start_with_config(&config, &[]).unwrap();
    let id = start_approval(&host);
    let endpoints: Vec<(&str, String, Option<&str>)> = vec![
        ("POST", format!("{PREFIX}/orchestrators/E4_Approval"), Some("\"x\"")),
        ("GET", format!("{PREFIX}/instances/{id}"), None),
        ("GET", format!("{PREFIX}/instances"), None),
        (
            "POST",
            format!("{PREFIX}/instances/{id}/raiseEvent/Approval"),
            Some("true"),
        ),
        ("POST", format!("{PREFIX}/instances/{id}/terminate?reason=x"), None),
        ("POST", format!("{PREFIX}/instances/{id}/suspend"), None),
        ("POST", format!("{PREFIX}/instances/{id}/resume"), None),
        ("POST", format!("{PREFIX}/instances/{id}/rewind"), None),
        ("POST", format!("{PREFIX}/instances/{id}/restart"), None),
        ("DELETE", format!("{PREFIX}/instances/{id}"), None),
        ("DELETE", format!("{PREFIX}/instances?runtimeStatus=Running"), None),
        ("GET", format!("{PREFIX}/entities"), None),
        ("GET", format!("{PREFIX}/entities/Counter/c1"), None),
        ("POST", format!("{PREFIX}/entities/Counter/c1?op=add"), Some("1")),
        (
            "GET",
            format!("/admin/extensions/DurableTaskExtension/instances/{id}"),
            None,
        ),
    ];
    for (method, path, body) in &endpoints {
        for (label, headers) in [
            ("beta's key in the header", vec![("x-functions-key", BETA_KEY)]),
            ("no key", vec![]),
            ("a made-up key", vec![("x-functions-key", "made-up-key-0123456789")]),
        ] {
            let separator = if path.contains('?') { '&' } else { '?' };
            let target = format!("{path}{separator}taskHub=alpha");
            let response = http(&host.base, method, &target, *body, &headers).unwrap();
            assert_eq!(
                response.status, 401,
                "{method} {target} with {label}: {}",
                response.text
            );
            assert!(response.json()["Message"].as_str().is_some(), "{}", response.text);
        }
        // beta's key as code= is refused the same way.
        let target = with_key(path, "alpha", BETA_KEY);
        let response = http(&host.base, method, &target, *body, &[]).unwrap();
        assert_eq!(response.status, 401, "{method} {target}: {}", response.text);
    }
    // Beta's own hub does not see alpha's instance: the stores are apart.
    let response = in_hub(
        &host,
        "GET",
        &format!("{PREFIX}/instances/{id}"),
        "beta",
        BETA_KEY,
        None,
    );
    assert_eq!(response.status, 404, "{}", response.text);
    let response = in_hub(&host, "GET", &format!("{PREFIX}/instances"), "beta", BETA_KEY, None);
    assert_eq!(response.status, 200);
    assert_eq!(response.json().as_array().map(Vec::len), Some(0), "{}", response.text);
    // A hub key does not open the admin API.
    for key in [ALPHA_KEY, BETA_KEY] {
        let response = keyed(&host, "GET", "/admin/hubs", key, None);
        assert_eq!(response.status, 401, "{}", response.text);
    }
    // Alpha's key still works, in either form, and the instance was untouched by all the above.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let response = in_hub(
            &host,
            "GET",
            &format!("{PREFIX}/instances/{id}"),
            "alpha",
            ALPHA_KEY,
            None,
        );
        assert!(matches!(response.status, 200 | 202), "{}", response.text);
        match response.json()["runtimeStatus"].as_str() {
            Some("Running") => break,
            Some("Pending") => {}
            other => panic!("the instance was touched: {other:?}"),
        }
        assert!(std::time::Instant::now() < deadline, "{id} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let response = keyed(
        &host,
        "POST",
        &format!("{PREFIX}/instances/{id}/raiseEvent/Approval?taskHub=alpha"),
        ALPHA_KEY,
        Some("true"),
    );
    assert_eq!(response.status, 202, "{}", response.text);
    let status = wait_in(&host, "alpha", ALPHA_KEY, &id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
}

/// Polls an instance of `hub` until it finishes.
fn wait_in(host: &Host, hub: &str, key: &str, id: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let response = in_hub(host, "GET", &format!("{PREFIX}/instances/{id}"), hub, key, None);
        if response.status == 200 {
            let status = response.json();
            if matches!(
                status["runtimeStatus"].as_str(),
                Some("Completed" | "Failed" | "Terminated")
            ) {
                return status;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{id} did not finish: {}",
            response.text
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hub_names_are_checked_before_anything_else_is_told() {
    let config = two_hub_config("hubs-names", &[ALPHA_KEY], "");
    let host = Host::start_with_config(&config, &[]).unwrap();
    let path = format!("{PREFIX}/instances");
    // An unknown hub is 404 for an admin only; even a valid key of another hub gets 401.
    let response = in_hub(&host, "GET", &path, "gamma", ADMIN_KEY, None);
    assert_eq!(response.status, 404, "{}", response.text);
    assert!(response.text.contains("gamma"), "{}", response.text);
    let response = in_hub(&host, "GET", &path, "gamma", ALPHA_KEY, None);
    assert_eq!(response.status, 401, "{}", response.text);
    let response = http(&host.base, "GET", &format!("{path}?taskHub=gamma"), None, &[]).unwrap();
    assert_eq!(response.status, 401, "{}", response.text);
    // Two hubs and no taskHub: the request must say which; only an admin is told the names.
    let response = keyed(&host, "GET", &path, ALPHA_KEY, None);
    assert_eq!(response.status, 400, "{}", response.text);
    assert!(response.text.contains("taskHub"), "{}", response.text);
    assert!(
        !response.text.contains("alpha") && !response.text.contains("beta"),
        "{}",
        response.text
    );
    let response = keyed(&host, "GET", &path, ADMIN_KEY, None);
    assert_eq!(response.status, 400, "{}", response.text);
    assert!(
        response.text.contains("alpha") && response.text.contains("beta"),
        "{}",
        response.text
    );
    // Hub names match in any case; an unknown connection is named in the error.
    let response = in_hub(&host, "GET", &path, "ALPHA", ALPHA_KEY, None);
    assert_eq!(response.status, 200, "{}", response.text);
    let response = in_hub(
        &host,
        "GET",
        &format!("{path}?connection=Archive"),
        "alpha",
        ALPHA_KEY,
        None,
    );
    assert_eq!(response.status, 404, "{}", response.text);
    assert!(
        response.text.contains("Archive") && response.text.contains("Storage"),
        "{}",
        response.text
    );
    // The admin key lists the hubs.
    let response = keyed(&host, "GET", "/admin/hubs", ADMIN_KEY, None);
    assert_eq!(response.status, 200, "{}", response.text);
    let names: Vec<String> = response.json()["hubs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hub| hub["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
}

#[test]
fn an_unknown_hub_answers_exactly_as_a_key_that_does_not_open_the_hub() {
    let config = two_hub_config("hubs-leak", &[ALPHA_KEY], "");
    let host = Host::start_with_config(&config, &[]).unwrap();
    let answer = |hub: &str, key: Option<&str>| {
        let mut path = format!("{PREFIX}/instances?taskHub={hub}");
        if let Some(key) = key {
            path.push_str(&format!("&code={key}"));
        }
        let response = http(&host.base, "GET", &path, None, &[]).unwrap();
        (
            response.status,
            response.header("www-authenticate").map(str::to_owned),
            response.text,
        )
    };
    let random = "random-key-0123456789abcdef";
    let wrong_key = answer("alpha", Some(random));
    assert_eq!(wrong_key.0, 401, "{wrong_key:?}");
    for (hub, key) in [
        ("gamma", Some(random)),
        ("gamma", Some(BETA_KEY)),
        ("alpha", Some(BETA_KEY)),
    ] {
        assert_eq!(answer(hub, key), wrong_key, "{hub} with {key:?}");
    }
    assert!(!wrong_key.2.contains("alpha"), "{wrong_key:?}");
    // Without a key, the same: 401 whether the hub exists or not.
    assert_eq!(answer("gamma", None), answer("alpha", None));
    assert_eq!(answer("gamma", None).0, 401);
}

#[test]
fn keys_rotate_without_a_restart() {
    const NEW_KEY: &str = "alpha-new-key-0123456789abcdef";
    let config = two_hub_config("hubs-rotate", &[ALPHA_KEY], "");
    let host = Host::start_with_config(&config, &[]).unwrap();
    let path = format!("{PREFIX}/instances");
    let status_with = |key: &str| in_hub(&host, "GET", &path, "alpha", key, None).status;
    assert_eq!(status_with(ALPHA_KEY), 200);
    assert_eq!(status_with(NEW_KEY), 401);
    // Both keys during the hand-over, through the admin API...
    write_two_hub_config(&config, &[ALPHA_KEY, NEW_KEY], "");
    let response = keyed(&host, "POST", "/admin/keys/reload", ADMIN_KEY, None);
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(status_with(ALPHA_KEY), 200);
    assert_eq!(status_with(NEW_KEY), 200);
    // ...then the old one retired, through SIGHUP.
    write_two_hub_config(&config, &[NEW_KEY], "");
    host.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while status_with(ALPHA_KEY) != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP did not retire the old key"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(status_with(NEW_KEY), 200);
    // A key reload needs the admin key.
    let response = keyed(&host, "POST", "/admin/keys/reload", NEW_KEY, None);
    assert_eq!(response.status, 401, "{}", response.text);
    // A reload that would leave alpha with no key (open to anyone) is refused, and the
    // keys in force stay.
    write_two_hub_config(&config, &[], "");
    let response = keyed(&host, "POST", "/admin/keys/reload", ADMIN_KEY, None);
    assert_eq!(response.status, 400, "{}", response.text);
    assert!(response.text.contains("no keys left"), "{}", response.text);
    assert_eq!(status_with(NEW_KEY), 200);
    assert_eq!(status_with(ALPHA_KEY), 401);
}

#[test]
fn limits_refuse_oversized_payloads_and_starts_over_the_rate() {
    let config = two_hub_config(
        "hubs-limits",
        &[ALPHA_KEY],
        "[hubs.alpha.limits]\npayload_bytes = 1024\nstarts_per_second = 1\n",
    );
    let host = Host::start_with_config(&config, &[]).unwrap();
    let big = format!("\"{}\"", "x".repeat(2000));
    let response = in_hub(
        &host,
        "POST",
        &format!("{PREFIX}/orchestrators/E4_Approval"),
        "alpha",
        ALPHA_KEY,
        Some(&big),
    );
    assert_eq!(response.status, 413, "{}", response.text);
    assert!(response.text.contains("1024"), "the limit is named: {}", response.text);
    let id = start_approval(&host);
    // The bucket held one start; the next one in the same second is refused.
    let response = in_hub(
        &host,
        "POST",
        &format!("{PREFIX}/orchestrators/E4_Approval"),
        "alpha",
        ALPHA_KEY,
        Some("\"again\""),
    );
    assert_eq!(response.status, 429, "{}", response.text);
    let response = in_hub(
        &host,
        "POST",
        &format!("{PREFIX}/instances/{id}/raiseEvent/Approval"),
        "alpha",
        ALPHA_KEY,
        Some(&big),
    );
    assert_eq!(response.status, 413, "{}", response.text);
    // Beta has no such limits.
    for _ in 0..3 {
        let response = in_hub(
            &host,
            "POST",
            &format!("{PREFIX}/orchestrators/E4_Approval"),
            "beta",
            BETA_KEY,
            Some(&big),
        );
        assert_eq!(response.status, 202, "{}", response.text);
    }
}

#[test]
fn an_orchestration_output_over_the_payload_limit_fails_its_instance() {
    let config = two_hub_config("hubs-output", &[ALPHA_KEY], "[hubs.alpha.limits]\npayload_bytes = 40\n");
    let host = Host::start_with_config(&config, &[]).unwrap();
    // E1_HelloSequence returns three greetings: more than 40 bytes.
    let response = in_hub(
        &host,
        "POST",
        &format!("{PREFIX}/orchestrators/E1_HelloSequence"),
        "alpha",
        ALPHA_KEY,
        None,
    );
    assert_eq!(response.status, 202, "{}", response.text);
    let id = response.json()["id"].as_str().unwrap().to_owned();
    let status = wait_in(&host, "alpha", ALPHA_KEY, &id);
    assert_eq!(status["runtimeStatus"], "Failed", "{status}");
    let output = status["output"].to_string();
    assert!(
        output.contains("payload limit of 40 bytes"),
        "the reason names the limit: {output}"
    );
}

#[test]
fn a_keyless_hub_is_not_served_on_a_non_loopback_address() {
    let dir = temp_dir("hubs-loopback");
    let store = dir.join("store.redb");
    let app = example("hello_sequence");
    let run = durable(&[
        "serve",
        "--listen",
        "0.0.0.0:0",
        "--store",
        store.to_str().unwrap(),
        "--app",
        app.to_str().unwrap(),
    ]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("--allow-unauthenticated") && run.stderr.contains("0.0.0.0"),
        "{}",
        run.stderr
    );
    let store = dir.join("other.redb");
    let host = Host::start_with_args(
        &store,
        &[example("hello_sequence")],
        &["--listen", "0.0.0.0:0", "--allow-unauthenticated"],
    )
    .unwrap();
    let port = host.base.rsplit(':').next().unwrap().to_owned();
    let response = http(
        &format!("http://127.0.0.1:{port}"),
        "GET",
        &format!("{PREFIX}/instances"),
        None,
        &[],
    )
    .unwrap();
    assert_eq!(response.status, 200, "{}", response.text);
}

#[test]
fn a_bad_config_file_stops_the_host_with_the_reason() {
    let dir = temp_dir("hubs-bad-config");
    for (text, expected) in [
        ("[hubs.a]\nstore = \"a.redb\"\npayload_bytes = 10\n", "payload_bytes"),
        ("[hubs.a]\nstore = \"a.redb\"\nkeys = [\"short\"]\n", "16 characters"),
        ("[hubs.a]\nkeys = []\n", "no store"),
        ("admin_keys = [\"admin-key-0123456789\"]\n", "no hub"),
    ] {
        let config = dir.join("durable.toml");
        std::fs::write(&config, text).unwrap();
        let run = durable(&["serve", "--listen", "127.0.0.1:0", "--config", config.to_str().unwrap()]);
        assert_ne!(run.code, 0, "{text:?} was accepted");
        assert!(run.stderr.contains(expected), "{text:?}: {}", run.stderr);
    }
}

#[test]
fn the_cli_reaches_a_keyed_hub_with_a_system_key_entity_commands_included() {
    let config = two_hub_config("hubs-cli", &[ALPHA_KEY], "");
    let host = Host::start_with_config(&config, &[]).unwrap();
    let durable = |args: &[&str], env_key: Option<&str>| {
        let all = [args, &["--url", &host.base, "--task-hub", "alpha"]].concat();
        durable_with_env(&all, &[("DURABLE_KEY", env_key)])
    };
    // --key is the system key for instance commands...
    let run = durable(&["get-instances", "--key", BETA_KEY], None);
    assert_eq!(run.code, 1, "beta's key is refused: {}", run.stderr);
    durable(&["get-instances", "--key", ALPHA_KEY], None).assert_code(0);
    // ...and the entity's key for entity commands, which take the system key as --code or
    // from DURABLE_KEY.
    let signal = [
        "signal-entity",
        "--name",
        "Counter",
        "--key",
        "c1",
        "--operation",
        "add",
        "--input",
        "5",
    ];
    let run = durable(&signal, None);
    assert_eq!(run.code, 1, "no system key: {}", run.stderr);
    durable(&[&signal[..], &["--code", ALPHA_KEY]].concat(), None).assert_code(0);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let run = durable(
            &["read-entity", "--name", "Counter", "--key", "c1", "--json"],
            Some(ALPHA_KEY),
        );
        if run.code == 0 && run.stdout.contains('5') {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the signal never counted: {} {}",
            run.stdout,
            run.stderr
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
