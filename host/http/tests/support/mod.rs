//! The in-process harness: a real host (durable-engine's [`Hosting`] from a config file, a
//! redb store in a temp dir, the example components) answering [`ApiRequest`]s through
//! [`durable_http::handle_hosting`], with no socket and no process.
//!
//! Waiting is done on the store's commit notifications ([`TaskStore::subscribe_commits`])
//! under a deadline, never by sleeping.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{HeaderMap, Method, StatusCode};
use serde_json::Value;

use durable_core::history::{InstanceRecord, RuntimeStatus};
use durable_engine::config::HostConfigFile;
use durable_engine::dispatch::DispatchConfig;
use durable_engine::hubs::Hosting;
use durable_http::ApiRequest;
use durable_store::TaskStore;
use durable_wasm::WasmRuntime;

/// The Functions 2.x prefix of the management API.
pub const PREFIX: &str = "/runtime/webhooks/durabletask";

/// The name of the one hub of a [`TestHost`].
const HUB: &str = "test";

/// The largest payload the test hub accepts (`payload_bytes`), so a body over it is cheap
/// to build.
pub const PAYLOAD_BYTES: usize = 4096;

/// How long any wait of the harness may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// The repository root.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("host/http/ is two levels below the root")
        .to_owned()
}

/// The Rust example component `name` (e.g. `hello_sequence`), as `examples/build.sh` leaves it.
pub fn example(name: &str) -> PathBuf {
    let wasm = repo_root().join(format!("target/wasm32-wasip2/release/{name}.wasm"));
    assert!(
        wasm.is_file(),
        "{} is missing: build the example components first with `examples/build.sh >/dev/null` (from the repository root)",
        wasm.display()
    );
    wasm
}

/// The compiled-component cache the harness's hosts share, so each component is compiled
/// once rather than once per test.
fn component_cache() -> PathBuf {
    repo_root().join("target/in-process-component-cache")
}

/// A host of one hub (`test`) with the `hello_sequence` and `approval` examples, its store
/// and config in a temp dir that [`TestHost::stop`] (or a panic) removes.
pub struct TestHost {
    hosting: Option<Hosting>,
    dir: Option<tempfile::TempDir>,
}

impl TestHost {
    /// A host without keys (any request is let in, as on loopback).
    pub async fn start() -> TestHost {
        TestHost::start_with_keys(&[]).await
    }

    /// A host whose hub opens only with one of `keys`.
    pub async fn start_with_keys(keys: &[&str]) -> TestHost {
        let dir = tempfile::Builder::new()
            .prefix("durable-in-process-")
            .tempdir()
            .expect("creating a temp dir");
        let config_file = dir.path().join("durable.toml");
        let keys: Vec<String> = keys.iter().map(|key| format!("{key:?}")).collect();
        let text = format!(
            r#"
[hubs.{HUB}]
keys = [{keys}]
store = "store.redb"
[hubs.{HUB}.limits]
payload_bytes = {PAYLOAD_BYTES}
[hubs.{HUB}.apps.hello_sequence]
path = {hello:?}
[hubs.{HUB}.apps.approval]
path = {approval:?}
"#,
            keys = keys.join(", "),
            hello = example("hello_sequence"),
            approval = example("approval"),
        );
        std::fs::write(&config_file, text).expect("writing the config");
        let config = HostConfigFile::load(&config_file).expect("the test config is valid");
        let wasm = Arc::new(WasmRuntime::new(Some(component_cache())).expect("starting wasmtime"));
        // Tests run on parallel threads: one host at a time compiles a component into the
        // shared cache, the others then load it from there.
        static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let starting = STARTING.lock().await;
        let (hosting, problems) = Hosting::start(config, Some(config_file), wasm, DispatchConfig::default())
            .await
            .expect("starting the host");
        drop(starting);
        assert!(problems.is_empty(), "the host reported problems: {problems:?}");
        TestHost {
            hosting: Some(hosting),
            dir: Some(dir),
        }
    }

    fn hosting(&self) -> &Hosting {
        self.hosting.as_ref().expect("the host is running")
    }

    /// The store of the hub's default connection.
    pub fn store(&self) -> &dyn TaskStore {
        let hub = self.hosting().hub(HUB).expect("the test hub");
        let (_, task_hub) = hub.connection(None).expect("the default connection");
        task_hub.store()
    }

    /// Answers `request` as the HTTP layer would, with `key` as its `x-functions-key` header.
    pub async fn send(&self, request: ApiRequest, key: Option<&str>) -> Reply {
        let response = durable_http::handle_hosting(self.hosting(), request, key.map(str::to_owned)).await;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("a full body cannot fail").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            text: String::from_utf8(body.to_vec()).expect("the API answers UTF-8"),
        }
    }

    /// GET `target` (a path under [`PREFIX`], with its query) without a key.
    pub async fn get(&self, target: &str) -> Reply {
        self.send(request(Method::GET, target, ""), None).await
    }

    /// POST `body` to `target` (a path under [`PREFIX`], with its query) without a key.
    pub async fn post(&self, target: &str, body: &str) -> Reply {
        self.send(request(Method::POST, target, body), None).await
    }

    /// Starts orchestrator `name` with `input` over POST; the instance id from the 202.
    pub async fn start_orchestration(&self, name: &str, id: Option<&str>, input: &str) -> String {
        let target = match id {
            Some(id) => format!("/orchestrators/{name}/{id}"),
            None => format!("/orchestrators/{name}"),
        };
        let reply = self.post(&target, input).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "start {name}: {}", reply.text);
        reply.json()["id"]
            .as_str()
            .expect("the 202 names the instance")
            .to_owned()
    }

    /// Waits until instance `id`'s stored row satisfies `done`: reads it, then after every
    /// commit of the store again, until [`DEADLINE`]. `what` names the wait in the failure.
    pub async fn wait_for(&self, id: &str, what: &str, done: impl Fn(&InstanceRecord) -> bool) -> InstanceRecord {
        let store = self.store();
        let mut commits = store.subscribe_commits();
        let mut last = None;
        let waited = tokio::time::timeout(DEADLINE, async {
            loop {
                // Marked seen before the read: a commit after it wakes the next wait.
                commits.borrow_and_update();
                let record = store.instance(id).await.expect("reading the store");
                if let Some(record) = record {
                    if done(&record) {
                        return record;
                    }
                    last = Some(record);
                }
                commits.changed().await.expect("the store closed while waited on");
            }
        })
        .await;
        waited.unwrap_or_else(|_| panic!("instance {id} not {what} within {DEADLINE:?}; last row: {last:?}"))
    }

    /// Waits until instance `id` reaches a terminal status.
    pub async fn wait_for_finish(&self, id: &str) -> InstanceRecord {
        self.wait_for(id, "finished", |record| record.runtime_status.is_terminal())
            .await
    }

    /// Waits until instance `id` has run its first episode and waits for something.
    pub async fn wait_for_running(&self, id: &str) -> InstanceRecord {
        self.wait_for(id, "running", |record| record.runtime_status == RuntimeStatus::Running)
            .await
    }

    /// Stops the host once its writes are committed and removes its temp dir.
    pub async fn stop(mut self) {
        if let Some(hosting) = self.hosting.take() {
            hosting.shutdown().await;
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_owned();
            dir.close().expect("removing the temp dir");
            assert!(!path.exists(), "{} is left behind", path.display());
        }
    }
}

/// A request for `target` (a path under [`PREFIX`] with its query, e.g. `/instances?top=2`).
pub fn request(method: Method, target: &str, body: &str) -> ApiRequest {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    ApiRequest {
        method,
        path: format!("{PREFIX}{path}"),
        query: query.to_owned(),
        host: Some("localhost:7071".to_owned()),
        continuation_token: None,
        body: Bytes::from(body.to_owned()),
    }
}

/// A response, its body read.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub text: String,
}

impl Reply {
    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|error| panic!("body is not JSON ({error}): {:?}", self.text))
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The `Message` of an error body.
    pub fn message(&self) -> String {
        self.json()["Message"]
            .as_str()
            .unwrap_or_else(|| panic!("an error body with a Message: {}", self.text))
            .to_owned()
    }
}
