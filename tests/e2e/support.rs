//! Test support: builds the example apps once per test run, starts the real `durable`
//! binary on 127.0.0.1:0, and talks HTTP/1.1 to it over a plain TCP socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("host/durable/ is two levels below the root")
        .to_owned()
}

/// The example apps in one language, and the kind of store the host keeps them in. Every
/// set has the same function names and behaviour (E1_HelloSequence, E2_FanOutFanIn,
/// E4_Approval, ReserveTicket, CityRecommender, FailAlways, Counter, ...); the Rust set has a
/// few more apps (monitor, bank, bench).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExampleSet {
    Rust,
    Python,
    JavaScript,
    /// The Rust apps, served from a task hub in PostgreSQL (a fresh schema of the test
    /// server, [`durable_store::conformance::test_postgres_url`]) instead of a redb file.
    RustOnPostgres,
}

impl ExampleSet {
    /// The set whose apps this one runs: the language, whatever the store.
    pub fn language(self) -> ExampleSet {
        match self {
            ExampleSet::RustOnPostgres => ExampleSet::Rust,
            set => set,
        }
    }

    /// The argument of `examples/build.sh` that builds this set.
    fn build_arg(self) -> Option<&'static str> {
        match self.language() {
            ExampleSet::Python => Some("python"),
            ExampleSet::JavaScript => Some("js"),
            _ => None,
        }
    }
}

/// The Rust example apps, built once per test run by `examples/build.sh`.
pub fn example_apps() -> &'static [PathBuf] {
    example_apps_of(ExampleSet::Rust)
}

/// The example apps of `set`, built once per test run by `examples/build.sh [python|js]`.
/// The Python and JavaScript components are large and slow to compile, so they are also
/// compiled once into [`component_cache`] before any test starts a host with them.
pub fn example_apps_of(set: ExampleSet) -> &'static [PathBuf] {
    let set = set.language();
    static SETS: [OnceLock<Vec<PathBuf>>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    SETS[set as usize].get_or_init(|| {
        let mut command = Command::new("bash");
        command
            .arg(repo_root().join("examples/build.sh"))
            .args(set.build_arg())
            .env("DURABLE", env!("CARGO_BIN_EXE_durable"))
            .stderr(Stdio::inherit());
        let output = command.output().expect("running examples/build.sh");
        assert!(output.status.success(), "examples/build.sh {set:?} failed");
        let apps: Vec<PathBuf> = String::from_utf8(output.stdout)
            .expect("build.sh prints paths")
            .lines()
            .map(PathBuf::from)
            .collect();
        assert!(apps.len() >= 6, "build.sh printed {apps:?}");
        for app in &apps {
            assert!(
                app.is_absolute() && app.exists(),
                "{} is not an absolute path to a file",
                app.display()
            );
        }
        if set != ExampleSet::Rust {
            let store = temp_dir("warm-cache").file("store.redb");
            drop(Host::start_with_shared_cache(&store, &apps).expect("compiling the example components"));
        }
        apps
    })
}

/// The component cache the hosts of the example-set tests share, so each large component is
/// compiled once.
pub fn component_cache() -> PathBuf {
    repo_root().join("target/e2e-component-cache")
}

/// Builds every guest app of tests/guests (one cargo run per test process) and returns the
/// directory holding their `.wasm` files.
fn test_guests_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = repo_root();
        let status = Command::new("cargo")
            .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(root.join("tests/guests/Cargo.toml"))
            .arg("--target-dir")
            .arg(root.join("target"))
            .stdout(Stdio::null())
            .status()
            .expect("running cargo for tests/guests");
        assert!(status.success(), "building tests/guests failed");
        root.join("target/wasm32-wasip2/release")
    })
}

/// The guest app `name` of tests/guests (the crate name, e.g. `hostile`), built once per
/// test run.
pub fn guest_app(name: &str) -> PathBuf {
    let wasm = test_guests_dir().join(format!("{name}.wasm"));
    assert!(wasm.exists(), "{} was not built", wasm.display());
    wasm
}

/// The main test guest, `tests/guests/test_orchestrations`.
pub fn test_guest() -> PathBuf {
    guest_app("test_orchestrations")
}

/// The example apps plus the test guest.
pub fn all_apps() -> Vec<PathBuf> {
    let mut apps = example_apps().to_vec();
    apps.push(test_guest());
    apps
}

/// The example app whose file name is `name.wasm`.
pub fn example(name: &str) -> PathBuf {
    example_apps()
        .iter()
        .find(|path| path.file_stem().is_some_and(|stem| stem == name))
        .unwrap_or_else(|| panic!("no example {name}"))
        .clone()
}

/// A fresh directory for one test, removed when the returned guard is dropped. Keep the
/// guard (or the [`TestFile`] made from it) in a variable declared before any [`Host`] that
/// uses the directory: locals drop in reverse order, so the host is stopped first.
pub fn temp_dir(label: &str) -> TestDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("durable-e2e-{label}-"))
        .tempdir()
        .expect("creating a temp dir");
    TestDir(Some(dir))
}

/// A directory of one test (see [`temp_dir`]), removed with everything in it when dropped;
/// a failing test keeps it, and says where, for a look at its store and files.
pub struct TestDir(Option<tempfile::TempDir>);

impl TestDir {
    /// The directory.
    pub fn path(&self) -> &Path {
        self.0.as_ref().expect("the directory is there until dropped").path()
    }

    /// `name` in this directory; the directory now lives as long as the returned path
    /// (e.g. a store that several hosts open in turn).
    pub fn file(self, name: &str) -> TestFile {
        TestFile {
            path: self.path().join(name),
            _dir: self,
        }
    }
}

impl std::ops::Deref for TestDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        self.path()
    }
}

impl AsRef<Path> for TestDir {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take()
            && std::thread::panicking()
        {
            eprintln!("kept the directory of the failed test: {}", dir.keep().display());
        }
    }
}

/// A path in a [`TestDir`] (a store, a config file) that removes the directory when dropped.
pub struct TestFile {
    path: PathBuf,
    _dir: TestDir,
}

impl std::ops::Deref for TestFile {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TestFile {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

/// A running `durable serve`, killed when dropped.
pub struct Host {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Everything the host wrote to stderr so far is collected here.
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    /// The directory the host owns (see [`Host::owning`]), removed after the host is killed.
    dir: Option<TestDir>,
    /// The PostgreSQL hub the host owns (see [`Host::owning_hub`]), dropped after the host
    /// is killed.
    hub: Option<PostgresHub>,
}

impl Host {
    /// Starts the host on a free port with `apps` and the store at `store`.
    pub fn start(store: &Path, apps: &[PathBuf]) -> Result<Host> {
        Host::start_with_args(store, apps, &[])
    }

    /// Starts the host with extra `durable serve` arguments.
    pub fn start_with_args(store: &Path, apps: &[PathBuf], args: &[&str]) -> Result<Host> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_durable"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--store"])
            .arg(store)
            .args(args);
        for app in apps {
            command.arg("--app").arg(app);
        }
        Host::spawn(command)
    }

    /// Starts `durable serve --config CONFIG` on a free loopback port.
    pub fn start_with_config(config: &Path, args: &[&str]) -> Result<Host> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_durable"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .args(args);
        Host::spawn(command)
    }

    fn spawn(mut command: Command) -> Result<Host> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning durable")?;
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut child_stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        std::thread::spawn(move || {
            let mut line = String::new();
            while child_stderr.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let (found, address) = mpsc::channel();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut sent = false;
            while stdout.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if !sent && let Some(start) = line.find("http://") {
                    let _ = found.send(line[start..].trim().to_owned());
                    sent = true;
                }
                line.clear();
            }
        });
        // Generous: the first start with a Python or JavaScript set compiles six large components.
        match address.recv_timeout(Duration::from_secs(300)) {
            Ok(base) => Ok(Host {
                child,
                base,
                stderr,
                dir: None,
                hub: None,
            }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("durable did not print its address; stderr:\n{}", stderr.lock().unwrap())
            }
        }
    }

    /// Starts the host with every Rust example app, on a redb store; with
    /// `DURABLE_E2E_STORE=postgres` in the environment, on a fresh PostgreSQL hub instead, so
    /// every test written over this helper can be run against PostgreSQL too.
    pub fn with_examples(label: &str) -> Host {
        let set = match std::env::var("DURABLE_E2E_STORE").as_deref() {
            Ok("postgres") => ExampleSet::RustOnPostgres,
            _ => ExampleSet::Rust,
        };
        Host::with_example_set(set, label)
    }

    /// Starts the host with every example app of `set`, on a fresh store: a redb file in a
    /// temp dir, or for [`ExampleSet::RustOnPostgres`] a fresh PostgreSQL hub (its apps
    /// directory in a temp dir), dropped with the host.
    pub fn with_example_set(set: ExampleSet, label: &str) -> Host {
        let dir = temp_dir(&format!("{label}-{set:?}"));
        let apps = example_apps_of(set);
        let host = match set {
            ExampleSet::Rust => Host::start(&dir.join("store.redb"), apps),
            ExampleSet::Python | ExampleSet::JavaScript => Host::start_with_shared_cache(&dir.join("store.redb"), apps),
            ExampleSet::RustOnPostgres => {
                let hub = PostgresHub::fresh("e2e", 10.0);
                return Host::start_on_hub(&hub.store_url(None), &dir.join("apps"), apps, &[])
                    .expect("starting durable")
                    .owning(dir)
                    .owning_hub(hub);
            }
        };
        host.expect("starting durable").owning(dir)
    }

    /// Starts a host of the PostgreSQL hub at `store_url` (see [`PostgresHub::store_url`]),
    /// with `apps_dir` for the hub's apps it caches, the shared [`component_cache`] and extra
    /// `durable serve` arguments. Several hosts may serve one hub; a restarted host is given
    /// the same URL.
    pub fn start_on_hub(store_url: &str, apps_dir: &Path, apps: &[PathBuf], args: &[&str]) -> Result<Host> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_durable"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--store", store_url])
            .arg("--apps-dir")
            .arg(apps_dir)
            .arg("--component-cache")
            .arg(component_cache())
            .args(args);
        for app in apps {
            command.arg("--app").arg(app);
        }
        Host::spawn(command)
    }

    /// Makes `dir` (the host's store, config and apps) the host's own: removed once the
    /// host is killed, when it is dropped.
    pub fn owning(mut self, dir: TestDir) -> Host {
        self.dir = Some(dir);
        self
    }

    /// Makes `hub` the host's own: its schema is dropped once the host is killed, when it
    /// is dropped.
    pub fn owning_hub(mut self, hub: PostgresHub) -> Host {
        self.hub = Some(hub);
        self
    }

    /// Starts the host with the [`component_cache`] the language-set tests share, so a large
    /// component compiled once loads in milliseconds afterwards.
    pub fn start_with_shared_cache(store: &Path, apps: &[PathBuf]) -> Result<Host> {
        let cache = component_cache();
        Host::start_with_args(store, apps, &["--component-cache", cache.to_str().unwrap()])
    }

    /// The host process's resident memory (VmRSS), in bytes.
    pub fn resident_bytes(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("reading /proc/PID/status");
        let line = status
            .lines()
            .find(|line| line.starts_with("VmRSS:"))
            .expect("VmRSS in /proc/PID/status");
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|kib| kib.parse().ok())
            .expect("VmRSS in kB");
        kib * 1024
    }

    /// What the host printed on stderr.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGKILL: the process gets no chance to flush anything.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL, then what the process printed on stderr until it died.
    pub fn kill_returning_stderr(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr()
    }

    /// The exit status, if the process has exited (it is reaped then).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("waiting for durable")
    }

    /// Sends `signal` to the host process.
    pub fn signal(&self, signal: i32) {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for durable") {
                return status;
            }
            assert!(Instant::now() < deadline, "durable did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a request; `path` starts with `/`.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> Response {
        http(&self.base, method, path, body, &[]).unwrap_or_else(|error| panic!("{method} {path}: {error:#}"))
    }

    /// POST .../orchestrators/{name}[/{id}] and returns the 202's instance id.
    pub fn start_orchestration(&self, name: &str, id: Option<&str>, input: Option<&str>) -> String {
        let path = match id {
            Some(id) => format!("{PREFIX}/orchestrators/{name}/{id}"),
            None => format!("{PREFIX}/orchestrators/{name}"),
        };
        let response = self.request("POST", &path, input);
        assert_eq!(response.status, 202, "start {name}: {}", response.text);
        response.json()["id"]
            .as_str()
            .expect("id in the start payload")
            .to_owned()
    }

    /// GET the status of `id`.
    pub fn status(&self, id: &str) -> Response {
        self.request("GET", &format!("{PREFIX}/instances/{id}"), None)
    }

    /// The `EventType`s of `id`'s history, in order (none while it has no history yet).
    pub fn history_types(&self, id: &str) -> Vec<String> {
        let status = self
            .request("GET", &format!("{PREFIX}/instances/{id}?showHistory=true"), None)
            .json();
        status["historyEvents"]
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .filter_map(|event| event["EventType"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Polls the status of `id` until `done` holds or `timeout` passes.
    pub fn wait_for(&self, id: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        let mut interval = Duration::from_millis(10);
        loop {
            let response = self.status(id);
            if response.status != 404 {
                let status = response.json();
                if done(&status) {
                    return status;
                }
                assert!(
                    Instant::now() < deadline,
                    "instance {id} did not get there in {timeout:?}; last status {status}"
                );
            } else {
                assert!(Instant::now() < deadline, "instance {id} not found within {timeout:?}");
            }
            std::thread::sleep(interval);
            interval = (interval * 2).min(Duration::from_millis(200));
        }
    }

    /// Polls until `id` reaches a terminal runtime status.
    pub fn wait_for_finish(&self, id: &str) -> Value {
        self.wait_for(id, Duration::from_secs(60), |status| {
            matches!(
                status["runtimeStatus"].as_str(),
                Some("Completed" | "Failed" | "Terminated")
            )
        })
    }

    /// Raises an event and checks the 202.
    pub fn raise_event(&self, id: &str, name: &str, data: &str) {
        let response = self.request(
            "POST",
            &format!("{PREFIX}/instances/{id}/raiseEvent/{name}"),
            Some(data),
        );
        assert_eq!(response.status, 202, "raise {name} on {id}: {}", response.text);
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A task hub of its own (a fresh schema) on the test PostgreSQL server, for hosts started
/// with [`PostgresHub::start_host`]. Declare it before the hosts: when dropped after a test
/// that passed it drops its schema; after a failure it keeps it, and says so.
pub struct PostgresHub {
    /// The server's URL, without options.
    pub server: String,
    /// The hub's schema, `PREFIX_<uuid>`.
    pub schema: String,
    /// The partition lease hosts of this hub hold.
    pub lease_seconds: f64,
    /// The apps directory its hosts share (a cache of the hub's apps, by content hash).
    apps: TestDir,
}

impl PostgresHub {
    /// A fresh hub on the server of [`durable_store::conformance::test_postgres_url`]
    /// (`DURABLE_TEST_POSTGRES_URL`, else the local server of scripts/postgres.sh).
    pub fn fresh(prefix: &str, lease_seconds: f64) -> PostgresHub {
        PostgresHub::fresh_on(&durable_store::conformance::test_postgres_url(), prefix, lease_seconds)
    }

    /// A fresh hub on the server at `server`.
    pub fn fresh_on(server: &str, prefix: &str, lease_seconds: f64) -> PostgresHub {
        PostgresHub {
            server: server.to_owned(),
            schema: durable_store::conformance::fresh_schema(prefix),
            lease_seconds,
            apps: temp_dir(&format!("{prefix}-apps")),
        }
    }

    /// The `--store` URL of a host of this hub; `host_id` names the host in the lease table
    /// (a host restarted under the same name takes its own leases back at once).
    pub fn store_url(&self, host_id: Option<&str>) -> String {
        let separator = if self.server.contains('?') { '&' } else { '?' };
        let mut url = format!(
            "{}{separator}schema={}&lease={}",
            self.server, self.schema, self.lease_seconds
        );
        if let Some(host_id) = host_id {
            url.push_str(&format!("&host_id={host_id}"));
        }
        url
    }

    /// Starts a host of this hub with `apps` (components compiled once, into the shared
    /// [`component_cache`]).
    pub fn start_host(&self, apps: &[PathBuf], host_id: Option<&str>) -> Result<Host> {
        Host::start_on_hub(&self.store_url(host_id), self.apps.path(), apps, &[])
    }

    /// Runs `sql` with psql against the server and returns its unaligned output, one row a
    /// line, columns separated by `|`.
    pub fn psql(&self, sql: &str) -> Result<String> {
        psql(&self.server, sql)
    }

    /// Every orchestration's full history as stored (scheduling and bookkeeping events
    /// included, which the API folds away), read straight from the hub's tables.
    pub fn stored_histories(&self) -> std::collections::BTreeMap<String, Vec<durable_core::history::HistoryEvent>> {
        let rows = self
            .psql(&format!(
                "SELECT instance_id, position, convert_from(event, 'UTF8') FROM {}.history \
                 ORDER BY instance_id, position",
                self.schema
            ))
            .expect("reading the histories with psql");
        let mut histories = std::collections::BTreeMap::<String, Vec<_>>::new();
        for row in rows.lines().filter(|row| !row.is_empty()) {
            let mut columns = row.splitn(3, '|');
            let (Some(id), Some(_position), Some(event)) = (columns.next(), columns.next(), columns.next()) else {
                panic!("a history row is instance|position|event: {row:?}");
            };
            let event = durable_core::history::HistoryEvent::decode(event.as_bytes())
                .unwrap_or_else(|error| panic!("a stored event of {id} does not decode ({error}): {event}"));
            histories.entry(id.to_owned()).or_default().push(event);
        }
        histories
    }
}

impl Drop for PostgresHub {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept the schema of the failed test: {} on {}", self.schema, self.server);
        } else {
            let _ = self.psql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

/// Runs `sql` with psql against the database at `url`.
pub fn psql(url: &str, sql: &str) -> Result<String> {
    let output = Command::new("psql")
        .arg(url)
        .args(["-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .stdin(Stdio::null())
        .output()
        .context("running psql (the PostgreSQL client)")?;
    if !output.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// A PostgreSQL server of one test's own (scripts/postgres.sh with DURABLE_PG_DIR under
/// target/ and a free port), for a test that restarts it without disturbing the server the
/// other tests share. Stopped when dropped.
pub struct PostgresServer {
    dir: PathBuf,
    /// `postgres://durable@127.0.0.1:PORT/durable`
    pub url: String,
}

impl PostgresServer {
    /// Starts the server in `target/NAME` (created with initdb the first time).
    pub fn start(name: &str) -> PostgresServer {
        let dir = repo_root().join("target").join(name);
        // A server left running by a killed run of this test would keep its old port.
        let _ = postgres_script(&dir, None, "stop");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let url = postgres_script(&dir, Some(port), "start").expect("scripts/postgres.sh start");
        let url = url.lines().last().expect("start prints the URL").trim().to_owned();
        PostgresServer { dir, url }
    }

    /// `pg_ctl restart -m immediate`: the server crashes, recovers from its WAL and comes
    /// back on the same port; every connection to it is cut.
    pub fn restart(&self) {
        postgres_script(&self.dir, None, "restart").expect("scripts/postgres.sh restart");
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let _ = postgres_script(&self.dir, None, "stop");
    }
}

fn postgres_script(dir: &Path, port: Option<u16>, command: &str) -> Result<String> {
    let mut script = Command::new("bash");
    script
        .arg(repo_root().join("scripts/postgres.sh"))
        .arg(command)
        .env("DURABLE_PG_DIR", dir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(port) = port {
        script.env("DURABLE_PG_PORT", port.to_string());
    }
    let output = script.output().context("running scripts/postgres.sh")?;
    if !output.status.success() {
        bail!("scripts/postgres.sh {command} failed ({})", output.status);
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// The Functions 2.x prefix.
pub const PREFIX: &str = "/runtime/webhooks/durabletask";

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub text: String,
}

impl Response {
    /// The body as JSON (panics if it is not). Payloads may nest 128 levels deep, and the
    /// body's envelope a few more, past what serde_json parses on its own.
    pub fn json(&self) -> Value {
        let limit = durable_core::json_depth::MAX_JSON_DEPTH + 8;
        durable_core::json_depth::parse(self.text.as_bytes(), limit)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {:?}", self.text))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Asserts the body is empty or JSON, as every response of the API must be.
    pub fn assert_empty_or_json(&self) {
        if !self.text.is_empty() {
            let _ = self.json();
        }
    }
}

/// One HTTP/1.1 request over a fresh connection.
pub fn http(base: &str, method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Result<Response> {
    match try_http(base, method, path, body, headers) {
        Attempt::Answered(response) => Ok(response),
        Attempt::Refused(error) => Err(error.into()),
        Attempt::Lost(error) => Err(error),
    }
}

/// What became of one request to a host that may die meanwhile.
#[derive(Debug)]
pub enum Attempt {
    /// The host answered.
    Answered(Response),
    /// No connection was made: the request never reached a host, so it was not applied.
    Refused(std::io::Error),
    /// The connection was made but no complete answer came back: the request may or may not
    /// have been applied.
    Lost(anyhow::Error),
}

/// One HTTP/1.1 request over a fresh connection, telling a request that never reached the
/// host from one whose outcome is unknown.
pub fn try_http(base: &str, method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Attempt {
    let Some(authority) = base.strip_prefix("http://") else {
        return Attempt::Refused(std::io::Error::other(format!("{base}: base must be http://")));
    };
    let stream = match TcpStream::connect(authority) {
        Ok(stream) => stream,
        Err(error) => return Attempt::Refused(error),
    };
    match exchange(stream, authority, method, path, body, headers) {
        Ok(response) => Attempt::Answered(response),
        Err(error) => Attempt::Lost(error),
    }
}

fn exchange(
    mut stream: TcpStream,
    authority: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Result<Response> {
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.unwrap_or("");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        request.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<Response> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").context("no header end")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().context("no status line")?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .context("no status code")?
        .parse()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let body = if chunked { dechunk(body)? } else { body.to_owned() };
    Ok(Response {
        status,
        headers,
        text: body,
    })
}

fn dechunk(mut body: &str) -> Result<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").context("bad chunk")?;
        let size = usize::from_str_radix(size.trim(), 16)?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

/// What one run of the `durable` binary did.
pub struct CliRun {
    /// The exit code.
    pub code: i32,
    /// Everything printed on stdout.
    pub stdout: String,
    /// Everything printed on stderr.
    pub stderr: String,
}

impl CliRun {
    /// Asserts the exit code is `code`, showing stdout and stderr if it is not.
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts exit code 0 and returns the run.
    pub fn ok(self) -> Self {
        self.assert_code(0);
        self
    }

    /// Stdout as one JSON document (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not one JSON document ({error}):\n{}", self.stdout))
    }
}

/// Runs `durable ARGS` to completion.
pub fn durable(args: &[&str]) -> CliRun {
    durable_with_env(args, &[])
}

/// Runs `durable ARGS` with environment variables set (`Some`) or removed (`None`).
pub fn durable_with_env(args: &[&str], env: &[(&str, Option<&str>)]) -> CliRun {
    let mut command = Command::new(env!("CARGO_BIN_EXE_durable"));
    command.args(args);
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let output = command.output().expect("running durable");
    CliRun {
        code: output.status.code().expect("durable exited normally"),
        stdout: String::from_utf8(output.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("UTF-8 stderr"),
    }
}

/// The current time as the API writes it.
pub fn now_iso8601() -> String {
    durable_core::history::Timestamp::now().to_iso8601()
}
