//! Several `durable serve` processes sharing one task hub over PostgreSQL (issue 13): every
//! instance completes exactly once and every entity signal counts once although hosts are
//! killed, paused past their lease, stopped gracefully, and PostgreSQL itself restarts.
//!
//! Guards against: a dead host's partitions never taken over; an activity result or a step
//! committed twice, once by the host that lost the lease and once by the one that took it
//! (fencing); a signal lost or counted twice across a takeover; hosts that do not reconnect
//! after PostgreSQL comes back; a graceful stop that leaves its instances waiting for the
//! lease to expire; a paused host whose open transaction keeps holding its locks; a host
//! that starts up and misses a message sent between reading its partitions and listening.
//!
//! Histories are checked twice: as the API shows them (`showHistory`, one `TaskCompleted`
//! per task) and as stored (every event, read with psql from the hub's tables: one
//! `TaskScheduled` and one `TaskCompleted` per task).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use durable_core::history::{EventKind, HistoryEvent};

use crate::support::{Attempt, Host, PREFIX, PostgresHub, PostgresServer, Response, example, try_http};

const GREETINGS: [&str; 3] = ["Hello Tokyo!", "Hello Seattle!", "Hello London!"];

/// How long any one wait of these tests may take before it counts as stuck: generous, as
/// the tests run beside others on a small machine.
const PATIENCE: Duration = Duration::from_secs(120);

/// How long the takeover of a 2 s lease may take before it counts as never happening.
const TAKEOVER: Duration = Duration::from_secs(30);

/// A small deterministic generator (xorshift), seeded from DURABLE_TEST_SEED or the clock;
/// the seed is printed so a failing run can be replayed.
struct Random(u64);

impl Random {
    fn from_env() -> Random {
        let seed = std::env::var("DURABLE_TEST_SEED")
            .ok()
            .and_then(|seed| seed.trim().parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("the clock is past 1970")
                    .as_nanos() as u64
            });
        eprintln!("DURABLE_TEST_SEED={seed}");
        // xorshift never leaves 0.
        Random(seed | 1)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for index in (1..items.len()).rev() {
            items.swap(index, self.below(index as u64 + 1) as usize);
        }
    }
}

/// An orchestration a test starts, with everything its end is checked against.
#[derive(Clone, Debug)]
struct Expected {
    id: String,
    name: &'static str,
    input: Option<String>,
    output: Value,
    /// The results of its activities, in any order: one completion each.
    task_results: Vec<Value>,
}

fn hello_sequence(id: String) -> Expected {
    Expected {
        id,
        name: "E1_HelloSequence",
        input: None,
        output: json!(GREETINGS),
        task_results: GREETINGS.iter().map(|greeting| json!(greeting)).collect(),
    }
}

fn fan_out(id: String, n: u64) -> Expected {
    Expected {
        id,
        name: "E2_FanOutFanIn",
        input: Some(n.to_string()),
        output: json!((1..=n).map(|i| i * i).sum::<u64>()),
        task_results: (1..=n).map(|i| json!(i * i)).collect(),
    }
}

fn start_path(expected: &Expected) -> String {
    format!("{PREFIX}/orchestrators/{}/{}", expected.name, expected.id)
}

fn status_path(id: &str) -> String {
    format!("{PREFIX}/instances/{id}?showHistory=true&showHistoryOutput=true")
}

fn is_terminal(status: &Value) -> bool {
    matches!(
        status["runtimeStatus"].as_str(),
        Some("Completed" | "Failed" | "Terminated")
    )
}

/// Checks a finished instance's status (read with showHistory and showHistoryOutput): it
/// completed with its output, and its history shows one `TaskCompleted` per task, with the
/// task results expected (so no task completed twice while another never did).
fn check_status(expected: &Expected, status: &Value) {
    let id = &expected.id;
    assert_eq!(status["runtimeStatus"], "Completed", "{id}: {status}");
    assert_eq!(status["output"], expected.output, "{id}: {status}");
    let events = status["historyEvents"]
        .as_array()
        .unwrap_or_else(|| panic!("{id}: no historyEvents: {status}"));
    let mut results: Vec<String> = events
        .iter()
        .filter(|event| event["EventType"] == "TaskCompleted")
        .map(|event| event["Result"].to_string())
        .collect();
    results.sort();
    let mut wanted: Vec<String> = expected.task_results.iter().map(Value::to_string).collect();
    wanted.sort();
    assert_eq!(
        results, wanted,
        "{id}: each task completes exactly once in the history the API shows"
    );
}

/// Checks a history as stored: one start, one completion, and for every task exactly one
/// `TaskScheduled` and exactly one `TaskCompleted` answering it.
fn check_stored_history(expected: &Expected, events: Option<&Vec<HistoryEvent>>) {
    let id = &expected.id;
    let events = events.unwrap_or_else(|| panic!("{id}: no stored history"));
    let kinds: Vec<&str> = events.iter().map(|event| event.kind.type_name()).collect();
    let count = |kind: &str| kinds.iter().filter(|name| **name == kind).count();
    assert_eq!(count("ExecutionStarted"), 1, "{id}: {kinds:?}");
    assert_eq!(count("ExecutionCompleted"), 1, "{id}: {kinds:?}");
    let tasks = expected.task_results.len();
    let scheduled: Vec<i32> = events
        .iter()
        .filter(|event| matches!(event.kind, EventKind::TaskScheduled { .. }))
        .map(|event| event.event_id)
        .collect();
    let mut answered: Vec<i32> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::TaskCompleted { task_scheduled_id, .. } => Some(*task_scheduled_id),
            _ => None,
        })
        .collect();
    assert_eq!(scheduled.len(), tasks, "{id}: one TaskScheduled per task: {kinds:?}");
    answered.sort_unstable();
    let mut wanted = scheduled.clone();
    wanted.sort_unstable();
    assert_eq!(
        answered, wanted,
        "{id}: exactly one TaskCompleted for each TaskScheduled: {kinds:?}"
    );
}

/// The hosts of one hub, each of which may be down for a moment. Requests go to any host
/// that is up; a request is `guarded` when its outcome must be known: no host is killed
/// while a guarded request to it is in flight, so a guarded request is either answered or
/// refused (never sent), never lost.
struct Fleet<'a> {
    hub: &'a PostgresHub,
    apps: Vec<PathBuf>,
    slots: Mutex<Vec<Slot>>,
    drained: Condvar,
    turn: AtomicUsize,
}

struct Slot {
    index: usize,
    name: String,
    /// The stderr of its earlier lives, killed.
    past: Vec<String>,
    host: Option<Host>,
    base: Option<String>,
    doomed: bool,
    guarded_in_flight: usize,
    lives: u32,
}

/// What a start took.
#[derive(Default, Debug)]
struct StartTally {
    /// Tries that reached no host or whose answer was lost, tried again.
    retried: usize,
    /// 503 answers (the store was unavailable), tried again.
    unavailable: usize,
    /// Other server errors (with how often each came), tried again, and failed at the end:
    /// the API answers 503 when the store is unavailable.
    unexpected: BTreeMap<String, usize>,
}

impl<'a> Fleet<'a> {
    /// Starts `count` hosts of `hub`, named `host0`, `host1`, ...
    fn start(hub: &'a PostgresHub, apps: Vec<PathBuf>, count: usize) -> Fleet<'a> {
        let slots = (0..count)
            .map(|index| {
                let name = format!("host{index}");
                let host = hub.start_host(&apps, Some(&name)).expect("starting a host");
                Slot {
                    index,
                    past: Vec::new(),
                    base: Some(host.base.clone()),
                    host: Some(host),
                    name,
                    doomed: false,
                    guarded_in_flight: 0,
                    lives: 1,
                }
            })
            .collect();
        Fleet {
            hub,
            apps,
            slots: Mutex::new(slots),
            drained: Condvar::new(),
            turn: AtomicUsize::new(0),
        }
    }

    /// A host that is up and not about to be killed, in turn.
    fn pick(&self, guarded: bool) -> (usize, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            {
                let mut slots = self.slots.lock().unwrap();
                let turn = self.turn.fetch_add(1, Ordering::Relaxed);
                let count = slots.len();
                for offset in 0..count {
                    let index = (turn + offset) % count;
                    let slot = &mut slots[index];
                    if let Some(base) = &slot.base
                        && !slot.doomed
                    {
                        let base = base.clone();
                        if guarded {
                            slot.guarded_in_flight += 1;
                        }
                        return (index, base);
                    }
                }
            }
            assert!(Instant::now() < deadline, "no host was up for {PATIENCE:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// One try of a request at a host that is up.
    fn try_once(&self, method: &str, path: &str, body: Option<&str>, guarded: bool) -> Attempt {
        let (index, base) = self.pick(guarded);
        let attempt = try_http(&base, method, path, body, &[]);
        if guarded {
            self.slots.lock().unwrap()[index].guarded_in_flight -= 1;
            self.drained.notify_all();
        }
        attempt
    }

    /// A read, tried at host after host until one answers.
    fn get(&self, path: &str) -> Response {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.try_once("GET", path, None, false) {
                Attempt::Answered(response) => return response,
                Attempt::Refused(error) => assert!(Instant::now() < deadline, "GET {path}: {error}"),
                Attempt::Lost(error) => assert!(Instant::now() < deadline, "GET {path}: {error:#}"),
            }
        }
    }

    /// Starts `expected` under its id until a host acknowledges it. A try whose answer was
    /// lost, or answered 503 (the store was unreachable, perhaps while committing), may have
    /// started it: then the next try gets 409 (it is running) or 202 (it had already
    /// completed and starts over, as Durable Functions does with a finished id).
    fn start_instance(&self, expected: &Expected, tally: &Mutex<StartTally>) {
        let deadline = Instant::now() + PATIENCE;
        let path = start_path(expected);
        let mut maybe_applied = false;
        loop {
            match self.try_once("POST", &path, expected.input.as_deref(), false) {
                Attempt::Answered(response) if response.status == 202 => return,
                Attempt::Answered(response) if response.status == 409 && maybe_applied => return,
                Attempt::Answered(response) if response.status == 503 => {
                    let reason = response.json();
                    assert!(reason.is_object(), "a 503 says why in JSON: {}", response.text);
                    maybe_applied = true;
                    tally.lock().unwrap().unavailable += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Attempt::Answered(response) if response.status >= 500 => {
                    maybe_applied = true;
                    let answer = format!("{} {}", response.status, response.text);
                    *tally.lock().unwrap().unexpected.entry(answer).or_default() += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Attempt::Answered(response) => panic!(
                    "start {}: {} {}; the hosts' stderr:\n{}",
                    expected.id,
                    response.status,
                    response.text,
                    self.stderr()
                ),
                Attempt::Refused(_) => tally.lock().unwrap().retried += 1,
                Attempt::Lost(_) => {
                    maybe_applied = true;
                    tally.lock().unwrap().retried += 1;
                }
            }
            assert!(
                Instant::now() < deadline,
                "start {} was not acknowledged within {PATIENCE:?}",
                expected.id
            );
        }
    }

    /// Signals `add 1` to Counter/`key`, guarded: tried again only when refused or answered
    /// with an error (then it was not applied); `Err` if the answer was lost after all.
    fn signal_add_one(&self, key: &str, answered_with_errors: &AtomicUsize) -> Result<(), String> {
        let deadline = Instant::now() + PATIENCE;
        let path = format!("{PREFIX}/entities/Counter/{key}?op=add");
        loop {
            match self.try_once("POST", &path, Some("1"), true) {
                Attempt::Answered(response) if response.status == 202 => return Ok(()),
                Attempt::Answered(response) => {
                    eprintln!("signal answered {} {}; sending again", response.status, response.text);
                    answered_with_errors.fetch_add(1, Ordering::Relaxed);
                }
                Attempt::Refused(_) => {}
                Attempt::Lost(error) => return Err(format!("{error:#}")),
            }
            assert!(
                Instant::now() < deadline,
                "a signal was not acknowledged within {PATIENCE:?}"
            );
        }
    }

    /// Polls `id` until it finishes (at any host), then returns its status with history.
    fn wait_for_finish(&self, id: &str, deadline: Instant) -> Value {
        loop {
            let response = self.get(&status_path(id));
            // 200 when finished, 202 while pending or running, 404 before it exists.
            let status = (response.status != 404).then(|| response.json());
            if let Some(status) = &status
                && is_terminal(status)
            {
                return status.clone();
            }
            if Instant::now() >= deadline {
                eprintln!("{}", self.postmortem());
                panic!(
                    "{id} did not finish: {} {}\n{}",
                    response.status,
                    response.text,
                    diagnosis(self.hub)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What every host printed on stderr, in every life, for a look after a failure.
    fn postmortem(&self) -> String {
        let slots = self.slots.lock().unwrap();
        let mut text = String::from("=== the hosts' stderr, every life of each\n");
        for slot in slots.iter() {
            for (life, stderr) in slot.past.iter().enumerate() {
                text.push_str(&format!("--- slot {}, life {}: {stderr}", slot.index, life + 1));
            }
            if let Some(host) = &slot.host {
                text.push_str(&format!("--- {} (alive):\n{}", slot.name, host.stderr()));
            }
        }
        text
    }

    /// SIGKILLs host `index` once no guarded request to it is in flight, then starts it
    /// again: under its own name (it takes its leases back at once) or under a new one (its
    /// old leases expire and the others take them).
    fn kill_and_restart(&self, index: usize, same_name: bool) {
        let (host, old_name) = {
            let mut slots = self.slots.lock().unwrap();
            slots[index].doomed = true;
            while slots[index].guarded_in_flight > 0 {
                slots = self.drained.wait(slots).unwrap();
            }
            let slot = &mut slots[index];
            slot.base = None;
            slot.doomed = false;
            slot.lives += 1;
            let old_name = slot.name.clone();
            if !same_name {
                slot.name = format!("host{index}-life{}", slot.lives);
            }
            (slot.host.take().expect("a host that is up"), old_name)
        };
        let stderr = format!("{old_name} until killed:\n{}", host.kill_returning_stderr());
        let name = {
            let mut slots = self.slots.lock().unwrap();
            slots[index].past.push(stderr);
            slots[index].name.clone()
        };
        let host = self.hub.start_host(&self.apps, Some(&name)).expect("restarting a host");
        let mut slots = self.slots.lock().unwrap();
        slots[index].base = Some(host.base.clone());
        slots[index].host = Some(host);
    }

    /// Asserts no host exited by itself.
    fn assert_all_running(&self) {
        let mut slots = self.slots.lock().unwrap();
        for slot in slots.iter_mut() {
            let name = slot.name.clone();
            let host = slot.host.as_mut().expect("every host is up at the end");
            if let Some(status) = host.exited() {
                panic!("host {name} exited by itself ({status}); stderr:\n{}", host.stderr());
            }
        }
    }

    /// The addresses of the hosts up now.
    fn bases(&self) -> Vec<String> {
        let slots = self.slots.lock().unwrap();
        slots.iter().filter_map(|slot| slot.base.clone()).collect()
    }

    /// Everything the hosts up now printed on stderr.
    fn stderr(&self) -> String {
        let slots = self.slots.lock().unwrap();
        slots
            .iter()
            .filter_map(|slot| {
                slot.host
                    .as_ref()
                    .map(|host| format!("--- {}:\n{}", slot.name, host.stderr()))
            })
            .collect()
    }
}

/// Polls Counter/`key` until it reads `expected`.
fn wait_for_counter(fleet: &Fleet, key: &str, expected: i64, deadline: Instant) {
    loop {
        let response = fleet.get(&format!("{PREFIX}/entities/Counter/{key}"));
        if response.status == 200 && response.json() == json!(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Counter/{key} never reached {expected}; last: {} {}",
            response.status,
            response.text
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_hosts_killed_five_times_complete_every_instance_once_and_count_every_signal() {
    let started = Instant::now();
    let mut random = Random::from_env();
    let hub = PostgresHub::fresh("sev_crash", 2.0);
    let apps = vec![example("hello_sequence"), example("fan_out_fan_in"), example("counter")];
    let fleet = Fleet::start(&hub, apps, 3);

    let mut expected = Vec::new();
    for index in 0..100 {
        expected.push(hello_sequence(format!("hello-{index}")));
        expected.push(fan_out(format!("fan-{index}"), 1 + random.below(12)));
    }
    const SIGNALS: usize = 2000;
    // Some(index): start expected[index]; None: one signal.
    let mut jobs: Vec<Option<usize>> = (0..expected.len())
        .map(Some)
        .chain((0..SIGNALS).map(|_| None))
        .collect();
    random.shuffle(&mut jobs);
    let kills: Vec<(Duration, usize, bool)> = (0..5)
        .map(|_| {
            (
                Duration::from_millis(100 + random.below(1100)),
                random.below(3) as usize,
                random.below(2) == 0,
            )
        })
        .collect();
    eprintln!("kills (pause before, host, restarted under its own name): {kills:?}");

    let next_job = AtomicUsize::new(0);
    let starts = Mutex::new(StartTally::default());
    let signals_with_error_answers = AtomicUsize::new(0);
    let lost_signals = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                while let Some(job) = jobs.get(next_job.fetch_add(1, Ordering::Relaxed)) {
                    match job {
                        Some(index) => fleet.start_instance(&expected[*index], &starts),
                        None => {
                            if let Err(error) = fleet.signal_add_one("shared", &signals_with_error_answers) {
                                lost_signals.lock().unwrap().push(error);
                            }
                        }
                    }
                }
            });
        }
        for (pause, victim, same_name) in &kills {
            // The random moment of the kill is the point of this sleep.
            std::thread::sleep(*pause);
            fleet.kill_and_restart(*victim, *same_name);
            eprintln!(
                "killed and restarted host {victim} at {:?}, {} of {} requests sent",
                started.elapsed(),
                next_job.load(Ordering::Relaxed).min(jobs.len()),
                jobs.len()
            );
        }
    });
    eprintln!(
        "all acknowledged at {:?}; starts {:?}, signals answered with an error and sent again: {}",
        started.elapsed(),
        starts.lock().unwrap(),
        signals_with_error_answers.load(Ordering::Relaxed)
    );
    let lost_signals = lost_signals.into_inner().unwrap();
    assert!(
        lost_signals.is_empty(),
        "the harness never kills a host with a signal in flight, yet answers were lost: {lost_signals:?}"
    );

    let deadline = Instant::now() + PATIENCE;
    let mut statuses = BTreeMap::new();
    for instance in &expected {
        statuses.insert(instance.id.clone(), fleet.wait_for_finish(&instance.id, deadline));
    }
    eprintln!("all {} instances finished at {:?}", expected.len(), started.elapsed());
    wait_for_counter(&fleet, "shared", SIGNALS as i64, deadline);
    // Nothing more arrives later, checked without waiting a while: every signal was
    // acknowledged, so it is in the entity's inbox already, before anything sent from now
    // on. The entity takes its inbox in order, so a caller started now (add 5, then get)
    // reads back exactly 2005 unless a duplicate was still queued.
    let caller = Expected {
        id: "shared-caller".into(),
        name: "CounterCaller",
        input: Some(r#""shared""#.into()),
        output: json!(SIGNALS + 5),
        task_results: Vec::new(),
    };
    fleet.start_instance(&caller, &starts);
    let status = fleet.wait_for_finish(&caller.id, deadline);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(
        status["output"], caller.output,
        "an extra signal was still queued: {status}"
    );

    let stored = hub.stored_histories();
    for instance in &expected {
        check_status(instance, &statuses[&instance.id]);
        check_stored_history(instance, stored.get(&instance.id));
    }
    fleet.assert_all_running();
    let unexpected = &starts.lock().unwrap().unexpected;
    assert!(
        unexpected.is_empty(),
        "server errors: {unexpected:#?}\nthe hosts' stderr:\n{}",
        fleet.stderr()
    );
    eprintln!("checked everything at {:?}", started.elapsed());
}

#[test]
fn hosts_reconnect_after_postgres_restarts_and_complete_every_acknowledged_start() {
    let started = Instant::now();
    // Its own server: restarting the one the other tests share would fail them.
    let server = PostgresServer::start("postgres-restart");
    let hub = PostgresHub::fresh_on(&server.url, "sev_pgrestart", 2.0);
    let apps = vec![example("hello_sequence"), example("fan_out_fan_in")];
    let fleet = Fleet::start(&hub, apps, 2);

    let expected: Vec<Expected> = (0..60)
        .map(|index| {
            if index % 2 == 0 {
                hello_sequence(format!("hello-{index}"))
            } else {
                fan_out(format!("fan-{index}"), 1 + index % 10)
            }
        })
        .collect();
    let before = &expected[..20];
    let during = &expected[20..];
    let starts = Mutex::new(StartTally::default());
    for instance in before {
        fleet.start_instance(instance, &starts);
    }
    std::thread::scope(|scope| {
        // Starts go on while PostgreSQL restarts: those refused (503) or unanswered are tried
        // again until acknowledged.
        scope.spawn(|| {
            for instance in during {
                fleet.start_instance(instance, &starts);
            }
        });
        server.restart();
        eprintln!("PostgreSQL restarted at {:?}", started.elapsed());
    });
    eprintln!(
        "all acknowledged at {:?}; {:?}",
        started.elapsed(),
        starts.lock().unwrap()
    );

    let deadline = Instant::now() + PATIENCE;
    let statuses: Vec<Value> = expected
        .iter()
        .map(|instance| fleet.wait_for_finish(&instance.id, deadline))
        .collect();
    let stored = hub.stored_histories();
    for (instance, status) in expected.iter().zip(&statuses) {
        check_status(instance, status);
        check_stored_history(instance, stored.get(&instance.id));
    }
    // Both hosts work on: an instance started at each after the restart completes.
    for (index, base) in fleet.bases().iter().enumerate() {
        let instance = hello_sequence(format!("after-{index}"));
        let response = crate::support::http(base, "POST", &start_path(&instance), None, &[]).unwrap();
        assert_eq!(response.status, 202, "{}", response.text);
        check_status(&instance, &fleet.wait_for_finish(&instance.id, deadline));
    }
    fleet.assert_all_running();
    let unexpected = &starts.lock().unwrap().unexpected;
    assert!(
        unexpected.is_empty(),
        "while PostgreSQL was away the API answered other errors than 503: {unexpected:#?}\nthe hosts' stderr:\n{}",
        fleet.stderr()
    );
    eprintln!("checked everything at {:?}", started.elapsed());
}

/// The partitions each host holds now, by host name.
fn partition_owners(hub: &PostgresHub) -> BTreeMap<String, usize> {
    hub.psql(&format!(
        "SELECT owner, count(*) FROM {}.partitions WHERE owner IS NOT NULL GROUP BY owner",
        hub.schema
    ))
    .expect("reading the partition table")
    .lines()
    .filter_map(|row| row.split_once('|'))
    .map(|(owner, count)| (owner.to_owned(), count.parse().expect("a count")))
    .collect()
}

/// The partitions `host` holds now, as a list for SQL (`3,7,12`).
fn partitions_of(hub: &PostgresHub, host: &str) -> String {
    hub.psql(&format!(
        "SELECT string_agg(id::text, ',' ORDER BY id) FROM {}.partitions WHERE owner = '{host}'",
        hub.schema
    ))
    .expect("reading the partition table")
    .trim()
    .to_owned()
}

/// Polls the partition table until `done` holds, for at most `timeout`.
fn wait_for_partitions(
    hub: &PostgresHub,
    what: &str,
    timeout: Duration,
    done: impl Fn(&BTreeMap<String, usize>) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let owners = partition_owners(hub);
        if done(&owners) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {timeout:?}; {}",
            diagnosis(hub)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The server's sessions, what they run and what they wait for: why a takeover hangs.
fn sessions(hub: &PostgresHub) -> String {
    hub.psql(
        "SELECT pid, state, wait_event_type, wait_event, now() - xact_start, left(query, 120) \
         FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .unwrap_or_else(|error| error.to_string())
}

/// Polls one host for `id` until it finishes; on failure says what the hub looks like.
fn wait_at(hub: &PostgresHub, host: &Host, id: &str, deadline: Instant) -> Value {
    loop {
        let status = host.request("GET", &status_path(id), None);
        if status.status == 200 && is_terminal(&status.json()) {
            return status.json();
        }
        assert!(
            Instant::now() < deadline,
            "{id} did not finish at {}; last: {} {}\n{}\nthe host's stderr:\n{}",
            host.base,
            status.status,
            status.text,
            diagnosis(hub),
            host.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The partitions' owners, what waits in the inbox and the work items, and the sessions.
fn diagnosis(hub: &PostgresHub) -> String {
    let waiting = hub
        .psql(&format!(
            "SELECT (SELECT count(DISTINCT instance_id) FROM {s}.inbox) || ' instances with messages, ' || \
             (SELECT count(*) FROM {s}.work_items) || ' activities, ' || \
             (SELECT count(*) FROM {s}.timers) || ' timers'",
            s = hub.schema
        ))
        .unwrap_or_else(|error| error.to_string());
    format!(
        "partitions by owner: {:?}; waiting: {}; sessions:\n{}",
        partition_owners(hub),
        waiting.trim(),
        sessions(hub)
    )
}

fn start_at(host: &Host, instance: &Expected) {
    let response = host.request("POST", &start_path(instance), instance.input.as_deref());
    assert_eq!(response.status, 202, "start {}: {}", instance.id, response.text);
}

#[test]
fn a_host_paused_past_its_lease_writes_nothing_for_the_instances_taken_over() {
    let started = Instant::now();
    let hub = PostgresHub::fresh("sev_fence", 2.0);
    let apps = vec![example("hello_sequence"), example("fan_out_fan_in")];
    let paused = hub.start_host(&apps, Some("paused")).expect("starting a host");
    let other = hub.start_host(&apps, Some("other")).expect("starting a host");
    wait_for_partitions(&hub, "the hosts share the partitions evenly", PATIENCE, |owners| {
        owners.get("paused") == Some(&16) && owners.get("other") == Some(&16)
    });
    let paused_partitions = partitions_of(&hub, "paused");

    // Fan-outs wide enough to be in the middle of their work, on both hosts, at the pause.
    let first: Vec<Expected> = (0..40).map(|index| fan_out(format!("first-{index}"), 25)).collect();
    for instance in &first[..20] {
        start_at(&other, instance);
    }
    paused.signal(libc::SIGSTOP);
    eprintln!("paused at {:?}", started.elapsed());
    for instance in &first[20..] {
        start_at(&other, instance);
    }
    // What waits in the paused host's partitions (its leases have not expired yet): only a
    // takeover gets it done.
    let stranded = hub
        .psql(&format!(
            "SELECT (SELECT count(DISTINCT instance_id) FROM {s}.inbox WHERE partition IN ({paused_partitions})) \
             || ' instances with messages, ' || \
             (SELECT count(*) FROM {s}.work_items WHERE partition IN ({paused_partitions})) || ' activities'",
            s = hub.schema
        ))
        .unwrap();
    eprintln!("waiting in the paused host's partitions: {}", stranded.trim());
    assert!(
        !stranded.starts_with("0 instances"),
        "nothing waits in the paused host's partitions, so the test proves nothing: {stranded}"
    );
    // A paused host is a dead one to the others: its leases expire and are taken (the lease is
    // 2 s; the deadline is generous).
    wait_for_partitions(
        &hub,
        "the other host takes the paused host's partitions",
        TAKEOVER,
        |owners| !owners.contains_key("paused"),
    );
    eprintln!("taken over at {:?}", started.elapsed());
    let deadline = Instant::now() + PATIENCE;
    let statuses: Vec<Value> = first
        .iter()
        .map(|instance| wait_at(&hub, &other, &instance.id, deadline))
        .collect();
    let before_resume = hub.stored_histories();

    paused.signal(libc::SIGCONT);
    eprintln!("resumed at {:?}", started.elapsed());
    // The resumed host notices it lost its partitions and gets a share back; what it had in
    // flight from before the pause is fenced meanwhile.
    wait_for_partitions(&hub, "the resumed host gets a share again", PATIENCE, |owners| {
        owners.get("paused").is_some_and(|count| *count > 0)
    });
    // More work through the resumed host, so it steps instances (its own and, through the
    // store, the other's) after whatever it still had in flight.
    let second: Vec<Expected> = (0..20).map(|index| fan_out(format!("second-{index}"), 10)).collect();
    for instance in &second {
        start_at(&paused, instance);
    }
    let second_statuses: Vec<Value> = second
        .iter()
        .map(|instance| wait_at(&hub, &paused, &instance.id, deadline))
        .collect();

    let after = hub.stored_histories();
    for (instance, status) in first.iter().zip(&statuses) {
        check_status(instance, status);
        check_stored_history(instance, after.get(&instance.id));
        assert_eq!(
            before_resume.get(&instance.id),
            after.get(&instance.id),
            "{}: the history changed after the paused host resumed",
            instance.id
        );
    }
    for (instance, status) in second.iter().zip(&second_statuses) {
        check_status(instance, status);
        check_stored_history(instance, after.get(&instance.id));
    }
    eprintln!(
        "checked everything at {:?}; the paused host's stderr:\n{}",
        started.elapsed(),
        paused.stderr()
    );
}

#[test]
fn a_host_stopped_with_sigterm_hands_its_instances_to_the_other_at_once() {
    // A lease far longer than the deadline below: the instances of the stopped host can only
    // be continued in time if its leases were handed over, not waited out.
    const LEASE: f64 = 60.0;
    let hub = PostgresHub::fresh("sev_handover", LEASE);
    let apps = vec![example("approval")];
    let leaving = hub.start_host(&apps, Some("leaving")).expect("starting a host");
    let staying = hub.start_host(&apps, Some("staying")).expect("starting a host");
    wait_for_partitions(&hub, "the hosts share the partitions evenly", PATIENCE, |owners| {
        owners.get("leaving") == Some(&16) && owners.get("staying") == Some(&16)
    });
    let leaving_partitions = partitions_of(&hub, "leaving");

    let ids: Vec<String> = (0..24).map(|index| format!("approval-{index}")).collect();
    for id in &ids {
        let response = staying.request("POST", &format!("{PREFIX}/orchestrators/E4_Approval/{id}"), Some("600"));
        assert_eq!(response.status, 202, "{}", response.text);
    }
    // Each has run its first step (on the host owning its partition) and now waits.
    for id in &ids {
        staying.wait_for(id, PATIENCE, |status| status["customStatus"] == "waiting for approval");
    }
    let on_leaving: Vec<String> = hub
        .psql(&format!(
            "SELECT DISTINCT instance_id FROM {s}.timers WHERE partition IN ({leaving_partitions}) \
             ORDER BY instance_id",
            s = hub.schema
        ))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(
        !on_leaving.is_empty(),
        "no instance waits in the leaving host's partitions, so the test proves nothing"
    );

    let status = leaving.terminate();
    assert!(status.success(), "a graceful stop exits 0: {status}");
    let stopped = Instant::now();
    for id in &ids {
        staying.raise_event(id, "Approval", "true");
    }
    // Well within the lease: the handover, not an expiry, let the staying host continue.
    let within = Duration::from_secs_f64(LEASE / 3.0);
    for id in &ids {
        let status = staying.wait_for(id, within.saturating_sub(stopped.elapsed()), is_terminal);
        assert_eq!(status["runtimeStatus"], "Completed", "{id}: {status}");
        assert_eq!(status["output"], "approved", "{id}: {status}");
    }
    eprintln!(
        "{} instances of the stopped host continued by the other in {:?}",
        on_leaving.len(),
        stopped.elapsed()
    );
    assert_eq!(partition_owners(&hub), BTreeMap::from([("staying".to_owned(), 32)]));
}

#[test]
fn a_host_restarting_while_instances_are_started_elsewhere_misses_none_of_them() {
    // A host that comes up takes its partitions, reads what waits in them, and from then on
    // learns of new messages by notification: nothing sent in between may fall through.
    let hub = PostgresHub::fresh("sev_rejoin", 2.0);
    let apps = vec![example("hello_sequence")];
    let steady = hub.start_host(&apps, Some("steady")).expect("starting a host");
    let mut restarting = hub.start_host(&apps, Some("restarting")).expect("starting a host");
    wait_for_partitions(&hub, "the hosts share the partitions evenly", PATIENCE, |owners| {
        owners.get("steady") == Some(&16) && owners.get("restarting") == Some(&16)
    });
    let stop = std::sync::atomic::AtomicBool::new(false);
    let started = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut index = 0;
            while !stop.load(Ordering::Relaxed) {
                let instance = hello_sequence(format!("hello-{index}"));
                start_at(&steady, &instance);
                started.lock().unwrap().push(instance);
                index += 1;
            }
        });
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for round in 0..20 {
                // Under its own name it takes its partitions back at once, while instances
                // keep being started in them through the other host.
                restarting.kill();
                restarting = hub.start_host(&apps, Some("restarting")).expect("restarting a host");
                let so_far: Vec<Expected> = started.lock().unwrap().clone();
                let deadline = Instant::now() + TAKEOVER;
                for instance in &so_far {
                    check_status(instance, &wait_at(&hub, &steady, &instance.id, deadline));
                }
                eprintln!("round {round}: all {} instances started so far completed", so_far.len());
            }
        }));
        stop.store(true, Ordering::Relaxed);
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    });
}
