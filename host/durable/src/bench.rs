//! `durable bench`: runs a workload against an embedded task hub (a fresh store in a temp
//! dir on the real disk, every acknowledged step fsynced as always) and prints its figures.
//! BENCHMARKS.md has the targets, the figures of one machine and where the time goes.
//!
//! The guest functions are the example app `examples/bench` (plus the `Counter` entity of
//! `examples/counter`); `--app` names them, else `examples/build.sh` is run from the current
//! directory. The `polyglot` workload is the exception: its `--app` files are the
//! `hello_sequence` example built in each guest language, measured one after the other.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use durable_core::history::{EntityId, EventKind, InstanceRecord, RuntimeStatus, Timestamp};
use durable_engine::client::{HubPolicy, TaskHub};
use durable_engine::config::{HostConfigFile, HttpLimits, HubConfig, Limits};
use durable_engine::dispatch::DispatchConfig;
use durable_engine::hubs::Hosting;
use durable_engine::runtime::Apps;
use durable_store::{ListFilter, PostgresLocation, StoreLocation, TaskStore};
use durable_wasm::{FunctionKind, Sandbox, WasmRuntime};

/// The usage text of `durable bench`.
pub const USAGE: &str = "\
durable bench: measures the host on this machine (an embedded task hub, fresh store per workload)

USAGE:
    durable bench WORKLOAD|all [--instances N] [--json] [--app FILE.wasm ...] [--dir DIR]
                  [--store postgres://... [--hosts N]]
    durable bench polyglot --app FILE.wasm [--app FILE.wasm ...] [--instances N] [--json]

    --instances N   the workload's size (instances, activities, events, signals, requests...)
    --json          one JSON object per workload: {\"workload\",\"parameters\",\"figures\"}
    --app           the bench and counter example apps (default: runs examples/build.sh
                    from the current directory, i.e. the repository root)
    --dir           where the temporary stores go (default: the system temp dir, unless it is
                    a RAM disk, then the current directory)
    --store URL     run against PostgreSQL instead of redb: each workload gets a fresh schema
                    in that database, dropped afterwards (polyglot stays on redb)
    --hosts N       with --store: N hosts (task hubs of their own in this process) share each
                    workload's hub; the workload is driven through the first (default 1)

WORKLOADS (default size):
    hello-sequence5 (1000)   instances of a 5-activity sequence at once: orchestrations/s
    latency (200)            3-activity sequences one at a time: p50/p99 start->Completed
    sequential (1000)        one instance, N activities in sequence: activities/s
    fan-out (10000)          one instance, N parallel activities: seconds to Completed
    events (1000)            external-event ping-pong: events/s, raise->observed p50
    timers (100000)          N instances with one timer each, all due at once: fire rate, lateness
    entity (20000)           signals to one Counter entity: operations/s
    long-history (50000)     per-step time at ~10 and at N history events; resume after restart
    idle (100000)            instances waiting for an event: process RSS
    http-status (50000)      GET status requests over loopback HTTP, 16 keep-alive connections

    polyglot (200)           not in `all`; runs alone. For each --app exporting E1_HelloSequence
                             (the hello_sequence example in Rust, Python or JS): load time with
                             an empty and with a warm component cache, N instances at once
                             (orchestrations/s, time per episode), p50 start->Completed of 20
";

/// A benchmark workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    HelloSequence5,
    Latency,
    Sequential,
    FanOut,
    Events,
    Timers,
    Entity,
    LongHistory,
    Idle,
    HttpStatus,
    /// Not in [`Workload::ALL`]: it measures the apps given with `--app` (one guest
    /// language each), not the bench app, and a Python app alone takes seconds to compile.
    Polyglot,
}

impl Workload {
    const ALL: [Workload; 10] = [
        Workload::HelloSequence5,
        Workload::Latency,
        Workload::Sequential,
        Workload::FanOut,
        Workload::Events,
        Workload::Timers,
        Workload::Entity,
        Workload::LongHistory,
        Workload::Idle,
        Workload::HttpStatus,
    ];

    fn name(self) -> &'static str {
        match self {
            Workload::HelloSequence5 => "hello-sequence5",
            Workload::Latency => "latency",
            Workload::Sequential => "sequential",
            Workload::FanOut => "fan-out",
            Workload::Events => "events",
            Workload::Timers => "timers",
            Workload::Entity => "entity",
            Workload::LongHistory => "long-history",
            Workload::Idle => "idle",
            Workload::HttpStatus => "http-status",
            Workload::Polyglot => "polyglot",
        }
    }

    fn parse(name: &str) -> Option<Workload> {
        Workload::ALL
            .into_iter()
            .chain([Workload::Polyglot])
            .find(|workload| workload.name() == name)
    }

    fn default_size(self) -> u64 {
        match self {
            Workload::HelloSequence5 => 1000,
            Workload::Latency => 200,
            Workload::Sequential => 1000,
            Workload::FanOut => 10_000,
            Workload::Events => 1000,
            Workload::Timers => 100_000,
            Workload::Entity => 20_000,
            Workload::LongHistory => 50_000,
            Workload::Idle => 100_000,
            Workload::HttpStatus => 50_000,
            Workload::Polyglot => 200,
        }
    }

    fn target(self) -> &'static str {
        match self {
            Workload::HelloSequence5 => ">= 2,000 orch/s",
            Workload::Latency => "p50 <= 5 ms, p99 <= 20 ms",
            Workload::Sequential => ">= 1,000 activities/s",
            Workload::FanOut => "10,000 in <= 2 s",
            Workload::Events => ">= 5,000 events/s",
            Workload::Timers => "100,000: p99 lateness <= 1 s",
            Workload::Entity => ">= 20,000 ops/s",
            Workload::LongHistory => "step at 50,000 <= 1.5x at 10; resume <= 200 ms",
            Workload::Idle => "100,000 idle <= 1 GiB RSS",
            Workload::HttpStatus => ">= 20,000 req/s",
            Workload::Polyglot => "none: start-up and per-step cost per guest language",
        }
    }
}

/// What one workload measured.
struct Report {
    workload: Workload,
    parameters: Map<String, Value>,
    figures: Vec<(&'static str, f64)>,
}

impl Report {
    fn new(workload: Workload) -> Report {
        Report {
            workload,
            parameters: Map::new(),
            figures: Vec::new(),
        }
    }

    fn parameter(mut self, name: &str, value: impl Into<Value>) -> Report {
        self.parameters.insert(name.to_owned(), value.into());
        self
    }

    fn figure(mut self, name: &'static str, value: f64) -> Report {
        self.figures.push((name, value));
        self
    }

    fn to_json(&self) -> Value {
        let figures: Map<String, Value> = self
            .figures
            .iter()
            .map(|(name, value)| ((*name).to_owned(), json!(round(*value))))
            .collect();
        json!({
            "workload": self.workload.name(),
            "parameters": self.parameters,
            "figures": figures,
        })
    }

    fn to_row(&self) -> String {
        let parameters: Vec<String> = self
            .parameters
            .iter()
            .map(|(name, value)| match value {
                Value::String(text) => format!("{name}={text}"),
                other => format!("{name}={other}"),
            })
            .collect();
        let figures: Vec<String> = self
            .figures
            .iter()
            .map(|(name, value)| format!("{name}={}", readable(*value)))
            .collect();
        format!(
            "{:<16} {}\n{:<16} {}\n{:<16} target: {}",
            self.workload.name(),
            figures.join("  "),
            "",
            parameters.join(" "),
            "",
            self.workload.target()
        )
    }
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn readable(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

struct Options {
    workloads: Vec<Workload>,
    size: Option<u64>,
    json: bool,
    apps: Vec<PathBuf>,
    dir: Option<PathBuf>,
    store: Option<PostgresLocation>,
    hosts: usize,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options> {
    let mut options = Options {
        workloads: Vec::new(),
        size: None,
        json: false,
        apps: Vec::new(),
        dir: None,
        store: None,
        hosts: 1,
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .with_context(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--instances" => {
                let text = value()?;
                let size: u64 = text
                    .parse()
                    .ok()
                    .filter(|size| *size > 0)
                    .with_context(|| format!("--instances {text}: expected a positive number"))?;
                options.size = Some(size);
            }
            "--json" => options.json = true,
            "--app" => options.apps.push(PathBuf::from(value()?)),
            "--dir" => options.dir = Some(PathBuf::from(value()?)),
            "--store" => match StoreLocation::parse(&value()?)? {
                StoreLocation::Postgres(location) => options.store = Some(location),
                StoreLocation::Redb(_) => bail!(
                    "--store takes a postgres:// URL: bench makes a fresh redb store per workload itself (see --dir)"
                ),
            },
            "--hosts" => {
                let text = value()?;
                options.hosts = text
                    .parse()
                    .ok()
                    .filter(|hosts| (1..=16).contains(hosts))
                    .with_context(|| format!("--hosts {text}: expected 1 to 16"))?;
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "all" => options.workloads.extend(Workload::ALL),
            other if other.starts_with('-') => bail!("unknown option {other}\n\n{USAGE}"),
            other => match Workload::parse(other) {
                Some(workload) => options.workloads.push(workload),
                None => bail!("unknown workload {other}\n\n{USAGE}"),
            },
        }
    }
    if options.workloads.is_empty() {
        bail!("durable bench needs a workload (or all)\n\n{USAGE}");
    }
    if options.hosts > 1 && options.store.is_none() {
        bail!("--hosts needs --store postgres://...: a redb store has one host");
    }
    if options.workloads.contains(&Workload::Polyglot) {
        // Its --app files are the apps it measures, so they cannot also be the bench and
        // counter apps the other workloads need.
        if options.workloads.len() > 1 {
            bail!("durable bench polyglot runs alone: its --app files are the apps it measures");
        }
        if options.apps.is_empty() {
            bail!(
                "durable bench polyglot needs --app FILE.wasm, once per app to measure: the \
                 hello_sequence example, e.g. target/wasm32-wasip2/release/hello_sequence.wasm, \
                 target/polyglot/python/hello_sequence.wasm, target/polyglot/js/hello_sequence.wasm \
                 (built by examples/build.sh, examples/build.sh python, examples/build.sh js)"
            );
        }
    }
    Ok(options)
}

/// Runs `durable bench` with the arguments after `bench`.
pub fn main(args: impl Iterator<Item = String>) -> Result<()> {
    let options = parse(args)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(options))
}

async fn run(options: Options) -> Result<()> {
    let app_paths = if options.workloads == [Workload::Polyglot] {
        options.apps.clone()
    } else {
        find_apps(options.apps.clone())?
    };
    let (base, fallback_note) = match &options.dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temp = std::env::temp_dir();
            match mount_of(&temp) {
                Some((_, fs)) if matches!(fs.as_str(), "tmpfs" | "ramfs") => (
                    std::env::current_dir()?,
                    Some(format!(
                        "{} is {fs} (RAM), so the stores go under the current directory",
                        temp.display()
                    )),
                ),
                _ => (temp, None),
            }
        }
    };
    let root = base.join(format!("durable-bench-{}-{}", std::process::id(), Timestamp::now().0));
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let root = root.canonicalize()?;
    let outcome = run_in(&options, &app_paths, &root, fallback_note).await;
    let _ = std::fs::remove_dir_all(&root);
    outcome
}

async fn run_in(options: &Options, app_paths: &[PathBuf], root: &Path, note: Option<String>) -> Result<()> {
    if options.workloads == [Workload::Polyglot] {
        // Before anything loads an app: each app's first load is what polyglot measures.
        print_machine(options, root, note);
        return polyglot(options, app_paths, root).await;
    }
    let wasm = Arc::new(WasmRuntime::new(Some(root.join("component-cache")))?);
    let mut loaded = Vec::new();
    for path in app_paths {
        loaded.push(
            wasm.load(path, Sandbox::default())
                .await
                .map_err(|error| anyhow::anyhow!("{error}"))?,
        );
    }
    let apps = Arc::new(Apps::new(loaded));
    for name in [
        "Bench_Sequence",
        "Bench_FanOut",
        "Bench_PingPong",
        "Bench_Timer",
        "Bench_Wait",
    ] {
        if apps.find(name, FunctionKind::Orchestrator).is_none() {
            bail!("no app exports the orchestrator {name}: give --app .../bench.wasm (examples/bench)");
        }
    }
    if apps.find("Bench_Echo", FunctionKind::Activity).is_none() {
        bail!("no app exports the activity Bench_Echo: give --app .../bench.wasm (examples/bench)");
    }
    if apps.find_entity("Counter").is_none() {
        bail!("no app exports the entity Counter: give --app .../counter.wasm (examples/counter)");
    }

    print_machine(options, root, note);

    let bench = Bench {
        root: root.to_owned(),
        wasm,
        apps,
        app_paths: app_paths.to_vec(),
        runs: AtomicUsize::new(0),
        postgres: options.store.clone(),
        hosts: options.hosts,
        other_hosts: tokio::sync::Mutex::new(Vec::new()),
    };
    let mut failed = Vec::new();
    for workload in &options.workloads {
        let size = options.size.unwrap_or(workload.default_size());
        if !options.json {
            eprintln!("running {} ({size})...", workload.name());
        }
        match bench.run(*workload, size).await {
            Ok(report) => print_report(options, &report),
            Err(error) => {
                eprintln!("error: workload {} failed: {error:#}", workload.name());
                failed.push(workload.name());
            }
        }
    }
    if !failed.is_empty() {
        bail!("workloads failed: {}", failed.join(", "));
    }
    Ok(())
}

/// Prints the machine line (stdout with the table, stderr with `--json`) and `note`.
fn print_machine(options: &Options, root: &Path, note: Option<String>) {
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let (device, fs) = mount_of(root).unwrap_or_else(|| ("?".into(), "?".into()));
    let stores = match &options.store {
        Some(location) => format!(
            "stores in PostgreSQL {location} ({} host{})",
            options.hosts,
            if options.hosts == 1 { "" } else { "s" }
        ),
        None => format!("stores under {} ({fs} on {device})", root.display()),
    };
    let machine = format!(
        "durable bench: {cores} cores; {stores}; every acknowledged commit durable; {} build",
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    if options.json {
        eprintln!("{machine}");
    } else {
        println!("{machine}");
    }
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
}

/// Prints one report (a JSON line with `--json`, else a table row).
fn print_report(options: &Options, report: &Report) {
    if options.json {
        println!("{}", report.to_json());
    } else {
        println!("{}", report.to_row());
    }
}

/// The apps: `--app` files, else what `examples/build.sh` builds (bench and counter).
fn find_apps(given: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    if !given.is_empty() {
        return Ok(given);
    }
    let script = Path::new("examples/build.sh");
    if !script.exists() {
        bail!(
            "durable bench needs the example apps bench and counter: run it from the repository root \
             (it runs examples/build.sh, which needs a Rust toolchain with the wasm32-wasip2 target), \
             or build them yourself and give --app path/to/bench.wasm --app path/to/counter.wasm"
        );
    }
    eprintln!("durable bench: building the example apps with examples/build.sh...");
    let output = std::process::Command::new("bash")
        .arg(script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running examples/build.sh")?;
    if !output.status.success() {
        bail!("examples/build.sh failed ({}); or give --app FILE.wasm", output.status);
    }
    let built: Vec<PathBuf> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(PathBuf::from)
        .filter(|path| {
            path.file_stem()
                .is_some_and(|stem| stem == "bench" || stem == "counter")
        })
        .collect();
    if built.len() != 2 {
        bail!("examples/build.sh did not print bench.wasm and counter.wasm (got {built:?})");
    }
    Ok(built)
}

/// The device and filesystem type of the mount holding `path` (from /proc/mounts).
fn mount_of(path: &Path) -> Option<(String, String)> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let device = fields.next()?;
            let point = fields.next()?;
            let fs = fields.next()?;
            path.starts_with(point)
                .then(|| (point.len(), device.to_owned(), fs.to_owned()))
        })
        .max_by_key(|(length, _, _)| *length)
        .map(|(_, device, fs)| (device, fs))
}

/// The process's resident set size in bytes (`VmRSS` of /proc/self/status).
fn rss_bytes() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .context("no VmRSS in /proc/self/status")?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .context("parsing VmRSS")?;
    Ok(kib * 1024)
}

fn percentile(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * quantile).round() as usize]
}

fn sorted(mut samples: Vec<f64>) -> Vec<f64> {
    samples.sort_by(f64::total_cmp);
    samples
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn per_second(count: u64, duration: Duration) -> f64 {
    count as f64 / duration.as_secs_f64().max(1e-9)
}

/// Waits until `check` holds, checking again after every commit to the store (no polling
/// interval, so the time it returns is within one read of the commit that made it true).
async fn wait_until(
    store: &dyn TaskStore,
    what: &str,
    mut check: impl AsyncFnMut(&dyn TaskStore) -> Result<bool>,
) -> Result<Instant> {
    const TIMEOUT: Duration = Duration::from_secs(3600);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut commits = store.subscribe_commits();
    loop {
        commits.borrow_and_update();
        if check(store).await? {
            return Ok(Instant::now());
        }
        match tokio::time::timeout_at(deadline, commits.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => bail!("the store closed while waiting for {what}"),
            Err(_) => bail!("gave up after {TIMEOUT:?} waiting for {what}"),
        }
    }
}

async fn any_with(store: &dyn TaskStore, statuses: &[RuntimeStatus]) -> Result<Option<InstanceRecord>> {
    let filter = ListFilter {
        created_from: None,
        created_to: None,
        statuses: statuses.to_vec(),
        id_prefix: None,
    };
    Ok(store.list(&filter, None, 1).await?.0.into_iter().next())
}

async fn unfinished(store: &dyn TaskStore) -> Result<bool> {
    Ok(any_with(store, &[RuntimeStatus::Pending, RuntimeStatus::Running])
        .await?
        .is_some())
}

async fn check_none_failed(store: &dyn TaskStore) -> Result<()> {
    if let Some(record) = any_with(store, &[RuntimeStatus::Failed, RuntimeStatus::Terminated]).await? {
        bail!(
            "instance {} ended {}: {}",
            record.instance_id,
            record.runtime_status.as_str(),
            record.api_output()
        );
    }
    Ok(())
}

async fn finished(store: &dyn TaskStore, id: &str) -> Result<bool> {
    Ok(store
        .instance(id)
        .await?
        .is_some_and(|record| record.runtime_status.is_terminal()))
}

async fn completed_output(store: &dyn TaskStore, id: &str) -> Result<Value> {
    let record = store
        .instance(id)
        .await?
        .with_context(|| format!("instance {id} vanished"))?;
    if record.runtime_status != RuntimeStatus::Completed {
        bail!(
            "instance {id} ended {}: {}",
            record.runtime_status.as_str(),
            record.api_output()
        );
    }
    Ok(record.api_output())
}

/// Starts up to `in_flight` client calls at a time until `count` are done.
async fn bounded<F, Fut>(count: u64, in_flight: usize, mut call: F) -> Result<()>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let mut set = JoinSet::new();
    for i in 0..count {
        if set.len() >= in_flight
            && let Some(done) = set.join_next().await
        {
            done??;
        }
        set.spawn(call(i));
    }
    while let Some(done) = set.join_next().await {
        done??;
    }
    Ok(())
}

struct Bench {
    root: PathBuf,
    wasm: Arc<WasmRuntime>,
    apps: Arc<Apps>,
    app_paths: Vec<PathBuf>,
    runs: AtomicUsize,
    /// With `--store`: the database the workloads' hubs go in.
    postgres: Option<PostgresLocation>,
    hosts: usize,
    /// The hosts beside the one driving the workload (`--hosts`).
    other_hosts: tokio::sync::Mutex<Vec<TaskHub>>,
}

impl Bench {
    /// The store of the workload in `dir`: a redb file in it, or a PostgreSQL schema named
    /// after it.
    fn location(&self, dir: &Path) -> StoreLocation {
        match &self.postgres {
            None => StoreLocation::Redb(dir.join("store.redb")),
            Some(base) => {
                let name = dir.file_name().map(|name| name.to_string_lossy().into_owned());
                let mut location = base.clone();
                location.schema = format!(
                    "bench_{}_{}",
                    std::process::id(),
                    name.unwrap_or_default()
                        .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
                );
                StoreLocation::Postgres(location)
            }
        }
    }

    /// Stops the other hosts of the workload in `dir` and drops its PostgreSQL schema.
    async fn clean_up(&self, dir: &Path) {
        for host in self.other_hosts.lock().await.drain(..) {
            host.shutdown().await;
        }
        if let StoreLocation::Postgres(location) = self.location(dir)
            && let Err(error) = durable_store::PostgresStore::drop_hub(&location).await
        {
            eprintln!("warning: dropping schema {}: {error}", location.schema);
        }
    }

    /// A fresh directory for one workload.
    fn fresh_dir(&self, workload: Workload) -> Result<PathBuf> {
        let run = self.runs.fetch_add(1, Ordering::Relaxed);
        let dir = self.root.join(format!("{}-{run}", workload.name()));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    async fn open(&self, dir: &Path) -> Result<Arc<TaskHub>> {
        let location = self.location(dir);
        let open = || {
            TaskHub::open(
                &location,
                self.wasm.clone(),
                self.apps.clone(),
                DispatchConfig::default(),
                HubPolicy::default(),
            )
        };
        let hub = Arc::new(open().await?);
        let mut others = self.other_hosts.lock().await;
        while others.len() + 1 < self.hosts {
            others.push(open().await?);
        }
        if self.hosts > 1 {
            // Work is measured once the hosts share the partitions (their lease rounds run
            // every second at most).
            let deadline = Instant::now() + Duration::from_secs(30);
            let fair = |store: &dyn TaskStore| {
                let owned = (0..512).filter(|n| store.owns(&format!("probe-{n}"))).count();
                owned <= 512 * 3 / (2 * self.hosts)
            };
            while !fair(hub.store()) {
                if Instant::now() > deadline {
                    bail!("the {} hosts did not share the partitions within 30 s", self.hosts);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(hub)
    }

    async fn run(&self, workload: Workload, size: u64) -> Result<Report> {
        let dir = self.fresh_dir(workload)?;
        let report = match workload {
            Workload::HttpStatus => self.http_status(&dir, size).await,
            // `parse` keeps it alone and `run_in` runs it without a Bench (no bench app).
            Workload::Polyglot => Err(anyhow::anyhow!("polyglot runs alone, not with other workloads")),
            _ => {
                let hub = self.open(&dir).await?;
                let result = match workload {
                    Workload::HelloSequence5 => hello_sequence5(&hub, size).await,
                    Workload::Latency => latency(&hub, size).await,
                    Workload::Sequential => sequential(&hub, size).await,
                    Workload::FanOut => fan_out(&hub, size).await,
                    Workload::Events => events(&hub, size).await,
                    Workload::Timers => timers(&hub, size).await,
                    Workload::Entity => entity(&hub, size).await,
                    Workload::Idle => idle(&hub, size).await,
                    Workload::LongHistory => {
                        let outcome = match self.long_history(hub, &dir, size).await {
                            Ok((report, hub)) => {
                                close(hub).await;
                                Ok(report)
                            }
                            Err(error) => Err(error),
                        };
                        self.clean_up(&dir).await;
                        let _ = std::fs::remove_dir_all(&dir);
                        return outcome;
                    }
                    Workload::HttpStatus | Workload::Polyglot => unreachable!(),
                };
                close(hub).await;
                result
            }
        };
        self.clean_up(&dir).await;
        let _ = std::fs::remove_dir_all(&dir);
        report
    }

    /// Runs a long sequence to about `events` history events, then restarts the hub and
    /// times the next step.
    async fn long_history(&self, hub: Arc<TaskHub>, dir: &Path, events: u64) -> Result<(Report, Arc<TaskHub>)> {
        let activities = (events.saturating_sub(8) / 4).max(2);
        let id = "long-history";
        let client = hub.client();
        let started = Instant::now();
        client
            .start_new(
                "Bench_Sequence",
                Some(id.into()),
                Some(json!({"n": activities, "waitFor": "go"}).to_string()),
            )
            .await?;
        wait_until(hub.store(), "the long sequence", async |store| {
            let record = store.instance(id).await?.context("instance vanished")?;
            if record.runtime_status.is_terminal() {
                bail!("instance {id} ended {}", record.runtime_status.as_str());
            }
            Ok(record.custom_status.as_deref() == Some("\"waiting\""))
        })
        .await?;
        let run_time = started.elapsed();
        let history = hub.store().history(id).await?;
        let starts: Vec<i64> = history
            .iter()
            .filter(|event| matches!(event.kind, EventKind::OrchestratorStarted))
            .map(|event| event.timestamp.0)
            .collect();
        let steps: Vec<f64> = starts
            .windows(2)
            .map(|pair| (pair[1] - pair[0]) as f64 / 1000.0)
            .collect();
        let window = (steps.len() / 3).clamp(1, 50);
        let early = if steps.len() > 2 * window {
            &steps[1..1 + window]
        } else {
            &steps[..window]
        };
        let late = &steps[steps.len() - window..];
        let early_ms = percentile(&sorted(early.to_vec()), 0.5);
        let late_ms = percentile(&sorted(late.to_vec()), 0.5);

        drop(client);
        close(hub).await;
        let reopened = Instant::now();
        let hub = self.open(dir).await?;
        let open_time = reopened.elapsed();
        let client = hub.client();
        client.raise_event(id, "go", None).await?;
        let done = wait_until(hub.store(), "the resumed instance", async |store| {
            finished(store, id).await
        })
        .await?;
        let resume_time = done - reopened;
        completed_output(hub.store(), id).await?;
        drop(client);
        let report = Report::new(Workload::LongHistory)
            .parameter("history_events", history.len())
            .parameter("activities", activities)
            .parameter("window_steps", window)
            .parameter(
                "step",
                "one activity round trip: orchestrator step + activity + their two commits",
            )
            .figure("step_ms_at_start", early_ms.max(0.001))
            .figure("step_ms_at_end", late_ms.max(0.001))
            .figure("end_to_start_ratio", (late_ms / early_ms.max(0.001)).max(0.001))
            .figure("resume_ms", millis(resume_time))
            .figure("reopen_ms", millis(open_time).max(0.001))
            .figure("run_s", run_time.as_secs_f64());
        Ok((report, hub))
    }

    async fn http_status(&self, dir: &Path, requests: u64) -> Result<Report> {
        const CONNECTIONS: usize = 16;
        let mut hub = HubConfig::single(self.location(dir), &self.app_paths, Limits::default());
        hub.apps_dir = dir.join("apps");
        let config = HostConfigFile {
            admin_keys: Vec::new(),
            http: HttpLimits::default(),
            host: Default::default(),
            hubs: [(hub.name.clone(), hub)].into_iter().collect(),
        };
        let (hosting, problems) = Hosting::start(config, None, self.wasm.clone(), DispatchConfig::default()).await?;
        if !problems.is_empty() {
            bail!("starting the HTTP host: {}", problems.join("; "));
        }
        let hosting = Arc::new(hosting);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(durable_http::serve(listener, hosting.clone(), async move {
            let _ = stopped.await;
        }));
        let outcome = async {
            let path = "/runtime/webhooks/durabletask/instances/http-status";
            let mut connection = HttpConnection::open(address).await?;
            let (status, body) = connection
                .request(
                    "POST",
                    "/runtime/webhooks/durabletask/orchestrators/Bench_Sequence/http-status",
                    "1",
                )
                .await?;
            if status != 202 {
                bail!("starting an instance over HTTP answered {status}: {body}");
            }
            loop {
                let (status, body) = connection.request("GET", path, "").await?;
                match status {
                    200 => break,
                    202 => tokio::time::sleep(Duration::from_millis(5)).await,
                    other => bail!("GET status answered {other}: {body}"),
                }
            }
            let remaining = Arc::new(AtomicI64::new(requests as i64));
            let started = Instant::now();
            let mut set = JoinSet::new();
            for _ in 0..CONNECTIONS {
                let remaining = remaining.clone();
                set.spawn(async move {
                    let mut connection = HttpConnection::open(address).await?;
                    let mut samples = Vec::new();
                    while remaining.fetch_sub(1, Ordering::Relaxed) > 0 {
                        let sent = Instant::now();
                        let (status, body) = connection.request("GET", path, "").await?;
                        if status != 200 {
                            bail!("GET status answered {status}: {body}");
                        }
                        samples.push(millis(sent.elapsed()));
                    }
                    anyhow::Ok(samples)
                });
            }
            let mut samples = Vec::new();
            while let Some(done) = set.join_next().await {
                samples.extend(done??);
            }
            let elapsed = started.elapsed();
            let samples = sorted(samples);
            Ok(Report::new(Workload::HttpStatus)
                .parameter("requests", requests)
                .parameter("connections", CONNECTIONS)
                .parameter("server", "durable_http::serve in this process, HTTP/1.1 keep-alive")
                .figure("requests_per_s", per_second(requests, elapsed))
                .figure("p50_ms", percentile(&samples, 0.5))
                .figure("p99_ms", percentile(&samples, 0.99)))
        }
        .await;
        let _ = stop.send(());
        let _ = server.await;
        match Arc::try_unwrap(hosting) {
            Ok(hosting) => hosting.shutdown().await,
            Err(_) => eprintln!("warning: the HTTP host is still held; not waiting for it"),
        }
        outcome
    }
}

async fn close(hub: Arc<TaskHub>) {
    match Arc::try_unwrap(hub) {
        Ok(hub) => hub.shutdown().await,
        Err(_) => eprintln!("warning: the task hub is still held; not waiting for it"),
    }
}

async fn hello_sequence5(hub: &Arc<TaskHub>, instances: u64) -> Result<Report> {
    let client = hub.client();
    let started = Instant::now();
    bounded(instances, usize::MAX, |i| {
        let client = client.clone();
        async move {
            client
                .start_new("Bench_Sequence", Some(format!("seq5-{i}")), Some("5".into()))
                .await?;
            Ok(())
        }
    })
    .await?;
    let acknowledged = started.elapsed();
    let done = wait_until(
        hub.store(),
        "the sequences",
        async |store| Ok(!unfinished(store).await?),
    )
    .await?;
    let elapsed = done - started;
    check_none_failed(hub.store()).await?;
    Ok(Report::new(Workload::HelloSequence5)
        .parameter("instances", instances)
        .parameter("activities_per_instance", 5)
        .figure("orchestrations_per_s", per_second(instances, elapsed))
        .figure("seconds", elapsed.as_secs_f64())
        .figure("starts_acknowledged_per_s", per_second(instances, acknowledged)))
}

async fn latency(hub: &Arc<TaskHub>, count: u64) -> Result<Report> {
    let warmup = (count / 10).clamp(1, 10);
    let client = hub.client();
    let mut samples = Vec::new();
    for i in 0..warmup + count {
        let id = format!("latency-{i}");
        let started = Instant::now();
        client
            .start_new("Bench_Sequence", Some(id.clone()), Some("3".into()))
            .await?;
        let done = wait_until(hub.store(), &id, async |store| finished(store, &id).await).await?;
        completed_output(hub.store(), &id).await?;
        if i >= warmup {
            samples.push(millis(done - started));
        }
    }
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let samples = sorted(samples);
    Ok(Report::new(Workload::Latency)
        .parameter("instances", count)
        .parameter("warmup", warmup)
        .parameter("activities_per_instance", 3)
        .parameter("observed", "on the commit that completed the instance")
        .figure("p50_ms", percentile(&samples, 0.5))
        .figure("p99_ms", percentile(&samples, 0.99))
        .figure("mean_ms", mean))
}

/// Starts one instance and waits for it to finish; returns the time and its output.
async fn one_instance(hub: &Arc<TaskHub>, name: &str, id: &'static str, input: Value) -> Result<(Duration, Value)> {
    let client = hub.client();
    let started = Instant::now();
    client.start_new(name, Some(id.into()), Some(input.to_string())).await?;
    let done = wait_until(hub.store(), id, async |store| finished(store, id).await).await?;
    Ok((done - started, completed_output(hub.store(), id).await?))
}

async fn sequential(hub: &Arc<TaskHub>, activities: u64) -> Result<Report> {
    let (elapsed, output) = one_instance(hub, "Bench_Sequence", "sequential", json!(activities)).await?;
    if output != json!(activities) {
        bail!("Bench_Sequence returned {output}, expected {activities}");
    }
    Ok(Report::new(Workload::Sequential)
        .parameter("activities", activities)
        .figure("activities_per_s", per_second(activities, elapsed))
        .figure("seconds", elapsed.as_secs_f64()))
}

async fn fan_out(hub: &Arc<TaskHub>, activities: u64) -> Result<Report> {
    let (elapsed, output) = one_instance(hub, "Bench_FanOut", "fan-out", json!(activities)).await?;
    let expected = activities * (activities - 1) / 2;
    if output != json!(expected) {
        bail!("Bench_FanOut returned {output}, expected {expected}");
    }
    Ok(Report::new(Workload::FanOut)
        .parameter("activities", activities)
        .figure("seconds", elapsed.as_secs_f64())
        .figure("activities_per_s", per_second(activities, elapsed)))
}

/// How many instances play ping-pong at once in the second half of `events`.
const PING_PONG_INSTANCES: u64 = 64;

async fn events(hub: &Arc<TaskHub>, count: u64) -> Result<Report> {
    let alone = count.min(1000);
    start_ping_pong(hub, 0..1, alone).await?;
    let started = Instant::now();
    let samples = sorted(ping_pong(hub.clone(), 0, alone).await?);
    let alone_elapsed = started.elapsed();

    let instances = PING_PONG_INSTANCES.min(count);
    let each = (count / 10).max(1);
    start_ping_pong(hub, 1..=instances, each).await?;
    let started = Instant::now();
    let mut players = tokio::task::JoinSet::new();
    for player in 1..=instances {
        players.spawn(ping_pong(hub.clone(), player, each));
    }
    let mut together = Vec::new();
    while let Some(samples) = players.join_next().await {
        together.extend(samples??);
    }
    let together_elapsed = started.elapsed();
    let together = sorted(together);
    Ok(Report::new(Workload::Events)
        .parameter("events_alone", alone)
        .parameter("instances_together", instances)
        .parameter("events_together", instances * each)
        .parameter(
            "mode",
            "ping-pong: raise an event, wait until the instance's custom status shows it, raise the next; \
             first one instance alone, then many instances at once, each one event at a time",
        )
        .figure("events_per_s", per_second(instances * each, together_elapsed))
        .figure("raise_to_observed_p50_ms", percentile(&together, 0.5))
        .figure("raise_to_observed_p99_ms", percentile(&together, 0.99))
        .figure("alone_events_per_s", per_second(alone, alone_elapsed))
        .figure("alone_raise_to_observed_p50_ms", percentile(&samples, 0.5))
        .figure("alone_raise_to_observed_p99_ms", percentile(&samples, 0.99)))
}

/// Starts `Bench_PingPong` instances `ping-pong-{player}` expecting `events` events each,
/// and waits until they all wait for the first.
async fn start_ping_pong(hub: &Arc<TaskHub>, players: impl Iterator<Item = u64>, events: u64) -> Result<()> {
    let client = hub.client();
    for player in players {
        client
            .start_new(
                "Bench_PingPong",
                Some(format!("ping-pong-{player}")),
                Some(events.to_string()),
            )
            .await?;
    }
    wait_until(hub.store(), "the ping-pong instances to run", async |store| {
        Ok(any_with(store, &[RuntimeStatus::Pending]).await?.is_none())
    })
    .await?;
    Ok(())
}

/// Plays `events` rounds with instance `ping-pong-{player}`; returns each round's time in ms.
async fn ping_pong(hub: Arc<TaskHub>, player: u64, events: u64) -> Result<Vec<f64>> {
    let id = format!("ping-pong-{player}");
    let client = hub.client();
    let mut samples = Vec::new();
    for round in 1..=events {
        let expected = round.to_string();
        let raised = Instant::now();
        client.raise_event(&id, "ping", None).await?;
        // Written out rather than through `wait_until`: a spawned task cannot yet hold an
        // async closure that borrows (rustc's higher-ranked `Send` limitation).
        let mut commits = hub.store().subscribe_commits();
        let observed = loop {
            commits.borrow_and_update();
            let record = hub.store().instance(&id).await?.context("instance vanished")?;
            if record.custom_status.as_deref() == Some(expected.as_str()) {
                break Instant::now();
            }
            if record.runtime_status.is_terminal() {
                bail!("{id} ended {} at event {round}", record.runtime_status.as_str());
            }
            if commits.changed().await.is_err() {
                bail!("the store closed while waiting for {id}");
            }
        };
        samples.push(millis(observed - raised));
    }
    Ok(samples)
}

async fn timers(hub: &Arc<TaskHub>, count: u64) -> Result<Report> {
    // Every instance must have created its timer before the common due time: leave 2 s plus
    // 0.1 ms per instance (the host starts and steps ~20,000 instances/s on 2 cores);
    // `created_before_due` says whether that was enough.
    let lead = Duration::from_millis(2000 + count / 10);
    let due_ms = (Timestamp::now().0 / 1000) as u64 + lead.as_millis() as u64;
    let due_us = due_ms as i64 * 1000;
    let input = json!({ "at": due_ms }).to_string();
    let client = hub.client();
    let started = Instant::now();
    bounded(count, 1024, move |i| {
        let client = client.clone();
        let input = input.clone();
        async move {
            client
                .start_new("Bench_Timer", Some(format!("timer-{i}")), Some(input))
                .await?;
            Ok(())
        }
    })
    .await?;
    wait_until(hub.store(), "the timers to be created", async |store| {
        Ok(any_with(store, &[RuntimeStatus::Pending]).await?.is_none())
    })
    .await?;
    let setup = started.elapsed();
    let created_before_due = Timestamp::now().0 < due_us;
    wait_until(hub.store(), "the timers to fire", async |store| {
        Ok(!unfinished(store).await?)
    })
    .await?;
    check_none_failed(hub.store()).await?;
    let store = hub.store();
    let (fired, observed) = {
        let mut fired = Vec::new();
        let mut observed = Vec::new();
        for i in 0..count {
            let id = format!("timer-{i}");
            for event in store.history(&id).await? {
                match event.kind {
                    EventKind::TimerFired { fire_at, .. } => {
                        fired.push((event.timestamp.0 - fire_at.0) as f64 / 1000.0);
                    }
                    EventKind::ExecutionCompleted { .. } => {
                        observed.push((event.timestamp.0 - due_us) as f64 / 1000.0);
                    }
                    _ => {}
                }
            }
        }
        (fired, observed)
    };
    if fired.len() as u64 != count {
        bail!("{} timers fired, expected {count}", fired.len());
    }
    let fired = sorted(fired);
    let observed = sorted(observed);
    let last = fired.last().copied().unwrap_or_default();
    Ok(Report::new(Workload::Timers)
        .parameter("timers", count)
        .parameter(
            "mode",
            "N orchestrations (Bench_Timer), one timer each, all due at the same moment",
        )
        .parameter("lead_ms", lead.as_millis() as u64)
        .parameter("created_before_due", created_before_due)
        .figure("fire_rate_per_s", count as f64 / (last / 1000.0).max(1e-6))
        .figure("lateness_p50_ms", percentile(&fired, 0.5).max(0.001))
        .figure("lateness_p99_ms", percentile(&fired, 0.99).max(0.001))
        .figure("completed_lateness_p99_ms", percentile(&observed, 0.99).max(0.001))
        .figure("setup_s", setup.as_secs_f64()))
}

async fn entity(hub: &Arc<TaskHub>, signals: u64) -> Result<Report> {
    let counter = EntityId::new("Counter", "bench");
    let client = hub.client();
    let started = Instant::now();
    let target = counter.clone();
    bounded(signals, 4096, move |_| {
        let client = client.clone();
        let counter = target.clone();
        async move {
            client.signal_entity(&counter, "add", Some("1".into())).await?;
            Ok(())
        }
    })
    .await?;
    let acknowledged = started.elapsed();
    let key = counter.storage_key();
    let expected = signals.to_string();
    let done = wait_until(hub.store(), "the counter", async |store| {
        Ok(store
            .entity(&key)
            .await?
            .is_some_and(|record| record.state.as_deref() == Some(expected.as_str())))
    })
    .await?;
    let elapsed = done - started;
    Ok(Report::new(Workload::Entity)
        .parameter("signals", signals)
        .parameter("entity", "Counter@bench, operation add 1")
        .figure("operations_per_s", per_second(signals, elapsed))
        .figure("signals_acknowledged_per_s", per_second(signals, acknowledged))
        .figure("seconds", elapsed.as_secs_f64()))
}

async fn idle(hub: &Arc<TaskHub>, instances: u64) -> Result<Report> {
    let before = rss_bytes()?;
    let client = hub.client();
    let started = Instant::now();
    bounded(instances, 1024, move |i| {
        let client = client.clone();
        async move {
            client.start_new("Bench_Wait", Some(format!("idle-{i}")), None).await?;
            Ok(())
        }
    })
    .await?;
    let done = wait_until(hub.store(), "the instances to run", async |store| {
        Ok(any_with(store, &[RuntimeStatus::Pending]).await?.is_none())
    })
    .await?;
    let elapsed = done - started;
    check_none_failed(hub.store()).await?;
    let rss = rss_bytes()?;
    const MIB: f64 = 1024.0 * 1024.0;
    Ok(Report::new(Workload::Idle)
        .parameter("instances", instances)
        .parameter("rss_before_mib", round(before as f64 / MIB))
        .parameter("cache_capacity", DispatchConfig::default().cache_capacity)
        .figure("rss_mib", rss as f64 / MIB)
        .figure("instances_running_per_s", per_second(instances, elapsed)))
}

/// The orchestrator `polyglot` runs: sample E1 (`examples/hello_sequence` and its Python and
/// JavaScript versions), three activities in sequence.
const HELLO_SEQUENCE: &str = "E1_HelloSequence";

/// What every E1_HelloSequence returns.
fn hello_sequence_output() -> Value {
    json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
}

/// How many E1_HelloSequence instances `polyglot` runs one at a time for its latency.
const POLYGLOT_LATENCY_INSTANCES: u64 = 20;

/// Runs `polyglot` for each app of `app_paths` in turn, printing each report as it is done;
/// an app that fails is reported and the others still run.
async fn polyglot(options: &Options, app_paths: &[PathBuf], root: &Path) -> Result<()> {
    let instances = options.size.unwrap_or(Workload::Polyglot.default_size());
    let mut failed = Vec::new();
    for (index, path) in app_paths.iter().enumerate() {
        if !options.json {
            eprintln!("running polyglot ({instances}) on {}...", path.display());
        }
        let dir = root.join(format!("polyglot-{index}"));
        let outcome = polyglot_app(path, &dir, instances).await;
        let _ = std::fs::remove_dir_all(&dir);
        match outcome {
            Ok(report) => print_report(options, &report),
            Err(error) => {
                eprintln!("error: workload polyglot failed on {}: {error:#}", path.display());
                failed.push(path.display().to_string());
            }
        }
    }
    if !failed.is_empty() {
        bail!("workload polyglot failed on: {}", failed.join(", "));
    }
    Ok(())
}

/// One app's `polyglot` report: its loads with an empty and a warm component cache, then,
/// on a hub with only this app (and the runtime that loaded it from the cache, as after a
/// restart), one instance, `instances` at once, and [`POLYGLOT_LATENCY_INSTANCES`] one at a
/// time.
async fn polyglot_app(path: &Path, dir: &Path, instances: u64) -> Result<Report> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    let cache = dir.join("component-cache");

    // Only the load is timed, not the engine's creation: that is paid once per host, not
    // per app.
    let (compile_ms, compiled_size) = {
        let wasm = WasmRuntime::new(Some(cache.clone()))?;
        let started = Instant::now();
        let app = wasm
            .load(path, Sandbox::default())
            .await
            .map_err(|error| anyhow::anyhow!("{error}"))?;
        let elapsed = started.elapsed();
        if !app
            .functions
            .iter()
            .any(|(name, kind)| name == HELLO_SEQUENCE && *kind == FunctionKind::Orchestrator)
        {
            bail!(
                "{} does not export the orchestrator {HELLO_SEQUENCE}: polyglot measures the \
                 hello_sequence example (examples/hello_sequence, examples/python/hello_sequence, \
                 examples/js/hello_sequence)",
                path.display()
            );
        }
        // Without the cache file the second load would compile again and cached_load_ms
        // would be a second compile_ms (the runtime only warns when it cannot write it).
        let cached = cache.join(format!("{}.cwasm", app.hash));
        let compiled_size = std::fs::metadata(&cached)
            .with_context(|| format!("loading {} did not write {}", path.display(), cached.display()))?
            .len();
        (millis(elapsed), compiled_size)
    };

    // A fresh runtime, as a restarted host has: the compiled code comes only from the cache
    // file (which the OS page cache still holds, as on a restart soon after the first start).
    let wasm = Arc::new(WasmRuntime::new(Some(cache))?);
    let started = Instant::now();
    let app = wasm
        .load(path, Sandbox::default())
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let cached_load_ms = millis(started.elapsed());

    let apps = Arc::new(Apps::new(vec![app]));
    let hub = Arc::new(
        TaskHub::open(
            &StoreLocation::Redb(dir.join("store.redb")),
            wasm,
            apps,
            DispatchConfig::default(),
            HubPolicy::default(),
        )
        .await?,
    );
    let measured = polyglot_run(&hub, instances).await;
    close(hub).await;
    let (first, throughput, latency) = measured?;
    let (elapsed, episodes) = throughput;

    Ok(Report::new(Workload::Polyglot)
        .parameter(
            "app",
            path.file_name().map_or_else(
                || path.display().to_string(),
                |name| name.to_string_lossy().into_owned(),
            ),
        )
        .parameter("language", language_of(path))
        .parameter("size_mb", round(size as f64 / 1e6))
        .parameter("compiled_mb", round(compiled_size as f64 / 1e6))
        .parameter("instances", instances)
        .parameter("episodes", episodes)
        .parameter("latency_instances", POLYGLOT_LATENCY_INSTANCES)
        .parameter(
            "mode",
            "E1_HelloSequence, N at once then 20 one at a time; episode_us = wall time / episodes, \
             an upper bound that includes the activities and commits (see BENCHMARKS.md)",
        )
        .figure("compile_ms", compile_ms)
        .figure("cached_load_ms", cached_load_ms)
        .figure("first_orchestration_ms", millis(first))
        .figure("orchestrations_per_s", per_second(instances, elapsed))
        .figure("episode_us", elapsed.as_secs_f64() * 1e6 / episodes.max(1) as f64)
        .figure("latency_p50_ms", percentile(&latency, 0.5)))
}

/// Wall time and episode count of a throughput run.
type Throughput = (Duration, u64);

/// The orchestrations of `polyglot` on `hub`: the first instance alone (its time), then
/// `instances` at once (wall time and orchestrator episodes), then
/// [`POLYGLOT_LATENCY_INSTANCES`] one at a time (sorted latencies in ms). Every instance
/// must complete with the greetings.
async fn polyglot_run(hub: &Arc<TaskHub>, instances: u64) -> Result<(Duration, Throughput, Vec<f64>)> {
    let client = hub.client();
    let expected = hello_sequence_output();
    let check = async |id: &str| -> Result<()> {
        let output = completed_output(hub.store(), id).await?;
        if output != expected {
            bail!("{HELLO_SEQUENCE} instance {id} returned {output}, expected {expected}");
        }
        Ok(())
    };

    // The first instance instantiates the app (orchestrator and activity instances): a
    // start-up cost, kept out of the throughput figures.
    let started = Instant::now();
    client.start_new(HELLO_SEQUENCE, Some("first".into()), None).await?;
    let first = wait_until(hub.store(), "the first instance", async |store| {
        finished(store, "first").await
    })
    .await?
        - started;
    check("first").await?;

    let ids: Vec<String> = (0..instances).map(|i| format!("polyglot-{i}")).collect();
    let started = Instant::now();
    let starter = client.clone();
    bounded(instances, usize::MAX, move |i| {
        let client = starter.clone();
        async move {
            client
                .start_new(HELLO_SEQUENCE, Some(format!("polyglot-{i}")), None)
                .await?;
            Ok(())
        }
    })
    .await?;
    let done = wait_until(
        hub.store(),
        "the instances",
        async |store| Ok(!unfinished(store).await?),
    )
    .await?;
    let elapsed = done - started;
    // Counted rather than assumed to be 4 per instance, so episode_us divides by what ran.
    let mut episodes = 0;
    for id in &ids {
        check(id).await?;
        episodes += hub
            .store()
            .history(id)
            .await?
            .iter()
            .filter(|event| matches!(event.kind, EventKind::OrchestratorStarted))
            .count() as u64;
    }

    let mut latency = Vec::new();
    for i in 0..POLYGLOT_LATENCY_INSTANCES {
        let id = format!("polyglot-latency-{i}");
        let started = Instant::now();
        client.start_new(HELLO_SEQUENCE, Some(id.clone()), None).await?;
        let done = wait_until(hub.store(), &id, async |store| finished(store, &id).await).await?;
        check(&id).await?;
        latency.push(millis(done - started));
    }
    Ok((first, (elapsed, episodes), sorted(latency)))
}

/// The guest language of an app, guessed from its path: a directory or file name part
/// `python` or `js` (as `examples/build.sh python|js` writes them, under
/// `target/polyglot/LANGUAGE/`), else `rust` (the wasm32-wasip2 target directory).
fn language_of(path: &Path) -> &'static str {
    let words: Vec<String> = path
        .components()
        .flat_map(|component| {
            component
                .as_os_str()
                .to_string_lossy()
                .split(|c: char| !c.is_ascii_alphanumeric())
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
        })
        .collect();
    let has = |names: &[&str]| words.iter().any(|word| names.contains(&word.as_str()));
    if has(&["python", "py"]) {
        "python"
    } else if has(&["js", "javascript"]) {
        "js"
    } else {
        "rust"
    }
}

/// A keep-alive HTTP/1.1 connection for `http-status`.
struct HttpConnection {
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
}

impl HttpConnection {
    async fn open(address: std::net::SocketAddr) -> Result<HttpConnection> {
        let stream = tokio::net::TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(HttpConnection {
            stream,
            buffer: Vec::with_capacity(4096),
        })
    }

    async fn request(&mut self, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
            body.len()
        );
        if !body.is_empty() {
            request.push_str("Content-Type: application/json\r\n");
        }
        request.push_str("\r\n");
        request.push_str(body);
        self.stream.write_all(request.as_bytes()).await?;
        let head_end = loop {
            if let Some(end) = self.buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                break end + 4;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("bad status line in {head:?}"))?;
        let length: usize = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse().ok())
            .with_context(|| format!("no Content-Length in {head:?}"))?;
        while self.buffer.len() < head_end + length {
            self.fill().await?;
        }
        let body = String::from_utf8_lossy(&self.buffer[head_end..head_end + length]).into_owned();
        self.buffer.drain(..head_end + length);
        Ok((status, body))
    }

    async fn fill(&mut self) -> Result<()> {
        let mut chunk = [0u8; 8192];
        let read = self.stream.read(&mut chunk).await?;
        if read == 0 {
            bail!("the server closed the connection");
        }
        self.buffer.extend_from_slice(&chunk[..read]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_parses_by_name() {
        for workload in Workload::ALL.into_iter().chain([Workload::Polyglot]) {
            assert_eq!(Workload::parse(workload.name()), Some(workload));
        }
        let options = parse(["all", "--instances=5", "--json"].map(String::from).into_iter()).unwrap();
        assert_eq!(options.workloads.len(), Workload::ALL.len());
        assert_eq!(options.size, Some(5));
        assert!(options.json);
        assert!(parse(["nope"].map(String::from).into_iter()).is_err());
        assert!(parse(["latency", "--instances", "0"].map(String::from).into_iter()).is_err());
    }

    #[test]
    fn polyglot_runs_alone_on_the_given_apps() {
        let args = |list: &[&str]| list.iter().map(|arg| (*arg).to_owned()).collect::<Vec<_>>().into_iter();
        let options = parse(args(&["polyglot", "--app", "a.wasm", "--app", "b.wasm"])).unwrap();
        assert_eq!(options.workloads, [Workload::Polyglot]);
        assert_eq!(options.apps.len(), 2);
        assert!(!parse(args(&["all"])).unwrap().workloads.contains(&Workload::Polyglot));
        assert!(parse(args(&["polyglot"])).is_err(), "no --app");
        assert!(parse(args(&["polyglot", "latency", "--app", "a.wasm"])).is_err());
        assert!(parse(args(&["all", "polyglot", "--app", "a.wasm"])).is_err());
    }

    #[test]
    fn language_is_guessed_from_the_path() {
        assert_eq!(
            language_of(Path::new("target/polyglot/python/hello_sequence.wasm")),
            "python"
        );
        assert_eq!(
            language_of(Path::new("/r/target/polyglot/js/hello_sequence.wasm")),
            "js"
        );
        assert_eq!(language_of(Path::new("hello_sequence.py.wasm")), "python");
        assert_eq!(
            language_of(Path::new("target/wasm32-wasip2/release/hello_sequence.wasm")),
            "rust"
        );
        assert_eq!(language_of(Path::new("/home/jsmith/hello.wasm")), "rust");
    }

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let samples = sorted((1..=100).map(f64::from).collect());
        assert_eq!(percentile(&samples, 0.5), 51.0);
        assert_eq!(percentile(&samples, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
