//! The sandbox against hostile guests (`tests/guests/hostile`).
//!
//! The `wasm_*` tests drive the wasm layer directly: every limit and grant, with its
//! message. The `hub_*` tests run the real host from a config file with a hostile hub and a
//! good one: whatever the hostile guest does fails only its own instance (or activity),
//! while the host keeps serving and the good hub's instances keep completing.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use durable_core::history::{EventKind, FailureDetails, HistoryEvent, Timestamp};
use durable_wasm::{ActivityGrants, App, DirGrant, GuestLimits, GuestTrap, IdleMemory, Sandbox, WasmRuntime};
use serde_json::{Value, json};

use crate::support::{Host, PREFIX, Response, TestDir, example, guest_app, http, temp_dir};

// ---------------------------------------------------------------------------------------
// Shared helpers.

/// A loopback HTTP server answering every request with 200 and `body`, on its own thread.
/// Returns its `127.0.0.1:PORT`.
fn tiny_http_server(body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    let address = listener.local_addr().expect("local address").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    address
}

/// A port on 127.0.0.1 that nobody listens on (bound, then released).
fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("binding a loopback port")
        .local_addr()
        .expect("local address")
        .port()
}

// ---------------------------------------------------------------------------------------
// The wasm layer, directly.

fn runtime() -> WasmRuntime {
    WasmRuntime::new(None).expect("creating the wasm runtime")
}

fn hostile_sandbox(granted_dir: &Path, allowed_host: &str) -> Sandbox {
    Sandbox {
        limits: GuestLimits {
            call_timeout: Duration::from_millis(500),
            activity_timeout: Duration::from_millis(1000),
            memory_bytes: 64 << 20,
            ..GuestLimits::default()
        },
        grants: ActivityGrants {
            allowed_hosts: vec![allowed_host.to_owned()],
            env: vec![("GRANTED".to_owned(), "yes".to_owned())],
            dirs: vec![DirGrant {
                host: granted_dir.to_owned(),
                guest: "/data".to_owned(),
                read_only: true,
            }],
        },
    }
}

async fn load_hostile(wasm: &WasmRuntime, sandbox: Sandbox) -> App {
    wasm.load(&guest_app("hostile"), sandbox)
        .await
        .expect("loading the hostile guest")
}

async fn activity(
    wasm: &WasmRuntime,
    app: &App,
    name: &str,
    input: Value,
) -> Result<Result<Option<String>, FailureDetails>, GuestTrap> {
    let budget = IdleMemory::new(1 << 30);
    wasm.run_activity(app, &budget, name, Some(&input.to_string()), "wasm-layer", 0)
        .await
}

/// Runs the first episode of orchestrator `name` in a fresh orchestrator sandbox.
async fn first_episode(wasm: &WasmRuntime, app: &App, name: &str, input: Value) -> Result<(), GuestTrap> {
    let mut guest = wasm.orchestration(app, name, "wasm-layer", 1).await?;
    let now = Timestamp::now();
    let events = [
        HistoryEvent::new(now, EventKind::OrchestratorStarted),
        HistoryEvent::new(
            now,
            EventKind::ExecutionStarted {
                name: name.to_owned(),
                instance_id: "wasm-layer".to_owned(),
                input: Some(input.to_string()),
                parent: None,
            },
        ),
    ];
    guest.apply(&events, false, now).await.map(|_| ())
}

fn trap_message<T: std::fmt::Debug>(result: Result<T, GuestTrap>) -> String {
    match result {
        Ok(value) => panic!("expected a trap, got {value:?}"),
        Err(trap) => trap.message,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_orchestrator_limits_trap_with_clear_messages() {
    let wasm = runtime();
    let dir = temp_dir("wasm-orchestrator-limits");
    let app = load_hostile(&wasm, hostile_sandbox(&dir, "127.0.0.1:1")).await;

    // A spinning orchestrator is stopped after its budget, without blocking the executor:
    // a timer on the same runtime keeps firing meanwhile.
    let ticks = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    let started = std::time::Instant::now();
    let message = trap_message(first_episode(&wasm, &app, "SpinForever", json!(null)).await);
    let elapsed = started.elapsed();
    ticker.abort();
    assert!(
        message.contains("orchestrator 'SpinForever' exceeded the CPU time limit of 500 ms per call"),
        "{message}"
    );
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert!(
        ticks.load(std::sync::atomic::Ordering::Relaxed) >= 5,
        "the executor was blocked"
    );

    let message = trap_message(first_episode(&wasm, &app, "GrowMemory", json!(null)).await);
    assert!(
        message.contains("orchestrator 'GrowMemory' exceeded the memory limit of 67108864 bytes"),
        "{message}"
    );

    let message = trap_message(first_episode(&wasm, &app, "DeepRecursion", json!(null)).await);
    assert!(message.contains("orchestrator 'DeepRecursion'"), "{message}");
    assert!(message.contains("stack overflow"), "{message}");

    // A well-behaved orchestrator in a fresh sandbox of the same app still runs.
    first_episode(&wasm, &app, "HugeOutput", json!(10))
        .await
        .expect("HugeOutput runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_activities_get_only_their_grants() {
    let wasm = runtime();
    let dir = temp_dir("wasm-activity-grants");
    std::fs::write(dir.join("granted.txt"), "granted contents").unwrap();
    let server = tiny_http_server("hello from the allowed host");
    let app = load_hostile(&wasm, hostile_sandbox(&dir, &server)).await;

    let message = trap_message(activity(&wasm, &app, "Spin", json!(null)).await);
    assert!(
        message.contains("activity 'Spin' exceeded its time limit of 1000 ms"),
        "{message}"
    );

    let message = trap_message(activity(&wasm, &app, "Hog", json!(null)).await);
    assert!(
        message.contains("activity 'Hog' exceeded the memory limit of 67108864 bytes"),
        "{message}"
    );

    let output = activity(&wasm, &app, "ReadFile", json!("/data/granted.txt")).await;
    assert_eq!(
        output.unwrap().unwrap().as_deref(),
        Some("\"granted contents\""),
        "the granted file"
    );
    let failure = activity(&wasm, &app, "ReadFile", json!("/etc/passwd"))
        .await
        .unwrap()
        .expect_err("/etc/passwd is not granted");
    assert!(failure.message.contains("/etc/passwd"), "{failure:?}");

    let env: Value = serde_json::from_str(
        &activity(&wasm, &app, "ReadEnv", json!(null))
            .await
            .unwrap()
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(env, json!({ "GRANTED": "yes" }));

    let fetched: Value = serde_json::from_str(
        &activity(&wasm, &app, "Fetch", json!(format!("http://{server}/hello")))
            .await
            .unwrap()
            .expect("fetching the allowed host")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(fetched, json!({ "status": 200, "body": "hello from the allowed host" }));
    let other = format!("http://127.0.0.1:{}/", unused_port());
    let failure = activity(&wasm, &app, "Fetch", json!(other))
        .await
        .unwrap()
        .expect_err("a host not allowed");
    assert!(failure.message.contains("HttpRequestDenied"), "{failure:?}");
}

// ---------------------------------------------------------------------------------------
// The real host, with a hostile hub and a good one.

/// A host serving the hub `hostile` (the hostile guest, tight limits, a few grants) and the
/// hub `good` (hello_sequence).
struct Tenants {
    host: Host,
    config: PathBuf,
    dir: TestDir,
    /// The `127.0.0.1:PORT` of the HTTP server the hostile app may reach.
    server: String,
}

const HOSTILE: (&str, &str) = ("hostile", "hostile-key-0123456789");
const GOOD: (&str, &str) = ("good", "good-key-0123456789");

impl Tenants {
    fn start(label: &str) -> Tenants {
        let dir = temp_dir(label);
        std::fs::create_dir_all(dir.join("granted-dir")).unwrap();
        std::fs::write(dir.join("granted-dir/granted.txt"), "granted contents").unwrap();
        let server = tiny_http_server("hello from the allowed host");
        let config = dir.join("durable.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[hubs.hostile]
keys = ["hostile-key-0123456789"]
store = "hostile/store.redb"
[hubs.hostile.limits]
call_timeout_ms = 500
activity_timeout_ms = 2000
memory_bytes = 67108864
payload_bytes = 65536
history_events = 10000
activity_concurrency = 4
starts_per_second = 0
[hubs.hostile.apps.hostile]
path = {hostile:?}
allowed_hosts = [{server:?}]
env = {{ GRANTED = "yes" }}
dirs = [{{ host = "granted-dir", guest = "/data", read_only = true }}]

[hubs.good]
keys = ["good-key-0123456789"]
store = "good/store.redb"
[hubs.good.apps.examples]
path = {good:?}
"#,
                hostile = guest_app("hostile").display().to_string(),
                good = example("hello_sequence").display().to_string(),
            ),
        )
        .unwrap();
        let host = Host::start_with_config(&config, &[]).expect("starting durable with the config");
        Tenants {
            host,
            config,
            dir,
            server,
        }
    }

    /// Stops the host gracefully and starts it again on the same config (a new port).
    fn restart(self) -> Tenants {
        let Tenants {
            host,
            config,
            dir,
            server,
        } = self;
        let status = host.terminate();
        assert!(status.success(), "durable exited with {status}");
        let host = Host::start_with_config(&config, &[]).expect("restarting durable");
        Tenants {
            host,
            config,
            dir,
            server,
        }
    }

    /// One request to hub `hub`, its key in the `x-functions-key` header.
    fn request(&self, (hub, key): (&str, &str), method: &str, path: &str, body: Option<&str>) -> Response {
        let separator = if path.contains('?') { '&' } else { '?' };
        let path = format!("{PREFIX}{path}{separator}taskHub={hub}");
        http(&self.host.base, method, &path, body, &[("x-functions-key", key)])
            .unwrap_or_else(|error| panic!("{method} {path}: {error:#}\nhost stderr:\n{}", self.host.stderr()))
    }

    /// Starts orchestrator `name` in hub `hub` (the key as `code=`); returns its instance id.
    fn start_orchestration(&self, (hub, key): (&str, &str), name: &str, input: Value) -> String {
        let path = format!("{PREFIX}/orchestrators/{name}?taskHub={hub}&code={key}");
        let response = http(&self.host.base, "POST", &path, Some(&input.to_string()), &[]).unwrap();
        assert_eq!(response.status, 202, "start {name} in {hub}: {}", response.text);
        response.json()["id"].as_str().expect("an instance id").to_owned()
    }

    fn status(&self, hub: (&str, &str), id: &str, query: &str) -> Value {
        let response = self.request(hub, "GET", &format!("/instances/{id}{query}"), None);
        assert!(
            matches!(response.status, 200 | 202 | 500),
            "status of {id}: {} {}",
            response.status,
            response.text
        );
        response.json()
    }

    /// Polls `id` in `hub` until it reaches a terminal status.
    fn wait_for_finish(&self, hub: (&str, &str), id: &str) -> Value {
        self.wait_until(hub, id, "", |status| {
            matches!(
                status["runtimeStatus"].as_str(),
                Some("Completed" | "Failed" | "Terminated")
            )
        })
    }

    fn wait_until(&self, hub: (&str, &str), id: &str, query: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut interval = Duration::from_millis(10);
        loop {
            let status = self.status(hub, id, query);
            if done(&status) {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{id} did not get there within 60 s; last status {status}\nhost stderr:\n{}",
                self.host.stderr()
            );
            std::thread::sleep(interval);
            interval = (interval * 2).min(Duration::from_millis(200));
        }
    }

    /// Starts E1_HelloSequence in the good hub.
    fn start_good(&self) -> String {
        self.start_orchestration(GOOD, "E1_HelloSequence", Value::Null)
    }

    /// Checks the good hub's instance `id` completes with its greetings.
    fn assert_good_completes(&self, id: &str) {
        let status = self.wait_for_finish(GOOD, id);
        assert_eq!(status["runtimeStatus"], "Completed", "{status}");
        assert_eq!(
            status["output"],
            json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"]),
            "{status}"
        );
    }

    /// Runs hostile orchestrator `name` to its end while the good hub keeps working: a good
    /// instance started while it runs, and one after, both complete. Returns its status.
    fn run_hostile(&self, name: &str, input: Value) -> Value {
        let id = self.start_orchestration(HOSTILE, name, input);
        let during = self.start_good();
        self.assert_good_completes(&during);
        let status = self.wait_for_finish(HOSTILE, &id);
        let after = self.start_good();
        self.assert_good_completes(&after);
        status
    }

    /// Runs activity `name` through the hostile `CallActivity` orchestrator, which completes
    /// with `{"ok": result}` or `{"error": failure message}`; returns that.
    fn run_hostile_activity(&self, name: &str, input: Value) -> Value {
        let status = self.run_hostile("CallActivity", json!({ "name": name, "input": input }));
        assert_eq!(status["runtimeStatus"], "Completed", "{status}");
        status["output"].clone()
    }
}

/// Asserts the instance failed and its reason says `expected`.
fn assert_failed_with(status: &Value, expected: &str) {
    assert_eq!(status["runtimeStatus"], "Failed", "{status}");
    let output = status["output"].to_string();
    assert!(
        output.contains(expected),
        "expected {expected:?} in the reason: {output}"
    );
}

#[test]
fn hub_orchestrator_spinning_forever_fails_only_itself() {
    let tenants = Tenants::start("sandbox-spin");
    let status = tenants.run_hostile("SpinForever", Value::Null);
    assert_failed_with(
        &status,
        "orchestrator 'SpinForever' exceeded the CPU time limit of 500 ms per call",
    );
}

#[test]
fn hub_activity_spinning_forever_fails_only_its_task() {
    let tenants = Tenants::start("sandbox-activity-spin");
    let output = tenants.run_hostile_activity("Spin", Value::Null);
    let error = output["error"].as_str().unwrap_or_else(|| panic!("{output}"));
    assert!(
        error.contains("activity 'Spin' exceeded its time limit of 2000 ms"),
        "{error}"
    );
}

#[test]
fn hub_orchestrator_growing_memory_fails_only_itself() {
    let tenants = Tenants::start("sandbox-grow");
    let status = tenants.run_hostile("GrowMemory", Value::Null);
    assert_failed_with(
        &status,
        "orchestrator 'GrowMemory' exceeded the memory limit of 67108864 bytes",
    );
}

#[test]
fn hub_activity_hogging_memory_fails_only_its_task() {
    let tenants = Tenants::start("sandbox-hog");
    let output = tenants.run_hostile_activity("Hog", Value::Null);
    let error = output["error"].as_str().unwrap_or_else(|| panic!("{output}"));
    assert!(
        error.contains("activity 'Hog' exceeded the memory limit of 67108864 bytes"),
        "{error}"
    );
}

#[test]
fn hub_deep_recursion_fails_only_itself() {
    let tenants = Tenants::start("sandbox-recursion");
    let status = tenants.run_hostile("DeepRecursion", Value::Null);
    assert_failed_with(
        &status,
        "orchestrator 'DeepRecursion' overflowed its stack: stack overflow",
    );
}

#[test]
fn hub_trap_mid_step_fails_only_itself() {
    let tenants = Tenants::start("sandbox-trap");
    let status = tenants.run_hostile("TrapMidStep", Value::Null);
    assert_failed_with(&status, "orchestrator 'TrapMidStep' trapped");
    assert_failed_with(&status, "TrapMidStep panics after its activity");
    // The activity of the first episode ran; the trap came in the next one.
    let id = status["instanceId"].as_str().unwrap();
    let history = tenants.status(HOSTILE, id, "?showHistory=true&showHistoryOutput=true");
    let events = history["historyEvents"].as_array().expect("history");
    assert!(
        events
            .iter()
            .any(|event| event["EventType"] == "TaskCompleted" && event["Result"] == json!("before the trap")),
        "{history}"
    );
}

#[test]
fn hub_huge_output_over_the_payload_limit_fails_only_itself() {
    let tenants = Tenants::start("sandbox-huge");
    let status = tenants.run_hostile("HugeOutput", json!(100_000));
    assert_failed_with(&status, "over the payload limit of 65536 bytes");
    // Under the limit it completes.
    let status = tenants.run_hostile("HugeOutput", json!(1000));
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
}

#[test]
fn hub_activities_read_only_granted_files() {
    let tenants = Tenants::start("sandbox-files");
    let output = tenants.run_hostile_activity("ReadFile", json!("/etc/passwd"));
    let error = output["error"]
        .as_str()
        .unwrap_or_else(|| panic!("/etc/passwd was readable: {output}"));
    assert!(error.contains("/etc/passwd"), "{error}");
    let output = tenants.run_hostile_activity("ReadFile", json!("/data/granted.txt"));
    assert_eq!(output, json!({ "ok": "granted contents" }));
    // The host path of the grant is not visible as such.
    let host_path = tenants.dir.join("granted-dir/granted.txt").display().to_string();
    let output = tenants.run_hostile_activity("ReadFile", json!(host_path));
    assert!(output["error"].is_string(), "{output}");
}

#[test]
fn hub_activities_see_only_granted_environment() {
    let tenants = Tenants::start("sandbox-env");
    let output = tenants.run_hostile_activity("ReadEnv", Value::Null);
    assert_eq!(
        output,
        json!({ "ok": { "GRANTED": "yes" } }),
        "no PATH, HOME or other host variable"
    );
}

#[test]
fn hub_activities_fetch_only_allowed_hosts() {
    let tenants = Tenants::start("sandbox-fetch");
    let url = format!("http://{}/hello", tenants.server);
    let output = tenants.run_hostile_activity("Fetch", json!(url));
    assert_eq!(
        output,
        json!({ "ok": { "status": 200, "body": "hello from the allowed host" } })
    );
    let other = format!("http://127.0.0.1:{}/", unused_port());
    let output = tenants.run_hostile_activity("Fetch", json!(other));
    let error = output["error"].as_str().unwrap_or_else(|| panic!("{output}"));
    assert!(error.contains("HttpRequestDenied"), "{error}");
}

#[test]
fn hub_orchestrator_clock_reads_recorded_time_even_on_replay() {
    let tenants = Tenants::start("sandbox-clock");
    let id = tenants.start_orchestration(HOSTILE, "WallClock", json!(1500));
    // Once the first episode is recorded (its timer is in the history), restart the host, so
    // the instance is rebuilt by replay: the first episode runs again, later.
    tenants.wait_until(HOSTILE, &id, "?showHistory=true", |status| {
        status["historyEvents"]
            .as_array()
            .is_some_and(|events| events.iter().any(|event| event["EventType"] == "TimerCreated"))
    });
    let tenants = tenants.restart();
    let status = tenants.wait_for_finish(HOSTILE, &id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    let output = &status["output"];
    let read = |name: &str| output[name].as_i64().unwrap_or_else(|| panic!("{name} in {output}"));
    assert_eq!(read("clockBefore"), read("contextBefore"), "{output}");
    assert_eq!(read("clockAfter"), read("contextAfter"), "{output}");
    assert!(read("contextAfter") >= read("contextBefore") + 1500, "{output}");
    // Both are the recorded episode times.
    let history = tenants.status(HOSTILE, &id, "?showHistory=true");
    let events = history["historyEvents"].as_array().expect("history");
    let millis = |event: &Value, field: &str| {
        Timestamp::parse_iso8601(event[field].as_str().expect("a time"))
            .expect("an ISO-8601 time")
            .micros()
            / 1000
    };
    let timer = events
        .iter()
        .find(|event| event["EventType"] == "TimerCreated")
        .expect("the timer");
    assert_eq!(millis(timer, "FireAt"), read("contextBefore") + 1500, "{history}");
    assert_eq!(millis(timer, "Timestamp"), read("contextBefore"), "{history}");
    let completed = events
        .iter()
        .find(|event| event["EventType"] == "ExecutionCompleted")
        .expect("the completion");
    assert_eq!(millis(completed, "Timestamp"), read("contextAfter"), "{history}");
}
