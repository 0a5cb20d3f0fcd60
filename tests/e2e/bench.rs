//! `durable bench all` at tiny sizes: every workload runs and prints a JSON line with
//! positive figures; likewise `durable bench polyglot` on the Rust example. No test asserts
//! a time: the figures are for BENCHMARKS.md.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

use crate::support::{example, temp_dir};

const WORKLOADS: [&str; 10] = [
    "hello-sequence5",
    "latency",
    "sequential",
    "fan-out",
    "events",
    "timers",
    "entity",
    "long-history",
    "idle",
    "http-status",
];

/// `durable bench all --instances 20 --json --dir DIR` with the bench and counter apps and
/// `extra` arguments; its stdout and stderr, once it succeeded.
fn bench_all(dir: &std::path::Path, extra: &[&str]) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_durable"))
        .args(["bench", "all", "--instances", "20", "--json", "--dir"])
        .arg(dir)
        .arg("--app")
        .arg(example("bench"))
        .arg("--app")
        .arg(example("counter"))
        .args(extra)
        .output()
        .expect("running durable bench");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "durable bench failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

#[test]
fn bench_all_prints_positive_figures_for_every_workload() {
    let dir = temp_dir("bench");
    let (stdout, stderr) = bench_all(dir.path(), &[]);
    let mut seen = BTreeSet::new();
    for line in stdout.lines() {
        let report: Value = serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
        let workload = report["workload"].as_str().expect("a workload name").to_owned();
        assert!(report["parameters"].is_object(), "{line}");
        let figures = report["figures"].as_object().expect("figures");
        assert!(!figures.is_empty(), "{workload} printed no figures: {line}");
        for (name, value) in figures {
            let value = value
                .as_f64()
                .unwrap_or_else(|| panic!("{workload} {name} is not a number: {line}"));
            assert!(value > 0.0, "{workload} {name} = {value}: {line}");
        }
        assert!(seen.insert(workload.clone()), "{workload} printed twice");
    }
    let expected: BTreeSet<String> = WORKLOADS.iter().map(|name| (*name).to_owned()).collect();
    assert_eq!(seen, expected, "stderr:\n{stderr}");
    // The stores were temporary.
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "durable bench left {left:?} in {}", dir.display());
}

#[test]
fn bench_all_runs_every_workload_on_postgresql_with_two_hosts_and_drops_its_schemas() {
    let dir = temp_dir("bench-postgres");
    let url = durable_store::conformance::test_postgres_url();
    let bench_schemas = || {
        crate::support::psql(&url, r"SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'bench\_%'")
            .expect("counting the bench schemas")
    };
    let before = bench_schemas();
    let (stdout, stderr) = bench_all(dir.path(), &["--hosts", "2", "--store", &url]);
    assert_eq!(bench_schemas(), before, "every workload's schema is dropped");
    let seen: BTreeSet<String> = stdout
        .lines()
        .map(|line| {
            let report: Value = serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"));
            report["workload"].as_str().expect("a workload name").to_owned()
        })
        .collect();
    let expected: BTreeSet<String> = WORKLOADS.iter().map(|name| (*name).to_owned()).collect();
    assert_eq!(seen, expected, "stderr:\n{stderr}");
    assert!(stderr.contains("PostgreSQL") && stderr.contains("2 hosts"), "{stderr}");
    assert!(!stderr.contains("password"), "{stderr}");
}

#[test]
fn bench_rejects_an_unknown_workload() {
    let output = Command::new(env!("CARGO_BIN_EXE_durable"))
        .args(["bench", "no-such-workload"])
        .output()
        .expect("running durable bench");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown workload"));
}

/// `durable bench polyglot` on the Rust hello_sequence example (the Python and JavaScript
/// ones take seconds to compile, too slow for every test run): one JSON
/// line with positive figures, and no store or component cache left behind.
#[test]
fn bench_polyglot_prints_positive_figures() {
    let dir = temp_dir("bench-polyglot");
    let app = example("hello_sequence");
    let output = Command::new(env!("CARGO_BIN_EXE_durable"))
        .args(["bench", "polyglot", "--instances", "5", "--json", "--dir"])
        .arg(dir.path())
        .arg("--app")
        .arg(&app)
        .output()
        .expect("running durable bench polyglot");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "durable bench polyglot failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "one report per app\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let report: Value =
        serde_json::from_str(lines[0]).unwrap_or_else(|error| panic!("not JSON ({error}): {}", lines[0]));
    assert_eq!(report["workload"], "polyglot", "{report}");
    assert_eq!(report["parameters"]["app"], "hello_sequence.wasm", "{report}");
    assert_eq!(report["parameters"]["language"], "rust", "{report}");
    assert!(
        report["parameters"]["size_mb"].as_f64().is_some_and(|size| size > 0.0),
        "{report}"
    );
    let figures = report["figures"].as_object().expect("figures");
    for name in [
        "compile_ms",
        "cached_load_ms",
        "orchestrations_per_s",
        "episode_us",
        "latency_p50_ms",
    ] {
        assert!(figures.contains_key(name), "no {name}: {report}");
    }
    for (name, value) in figures {
        let value = value
            .as_f64()
            .unwrap_or_else(|| panic!("{name} is not a number: {report}"));
        assert!(value > 0.0, "{name} = {value}: {report}");
    }
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "durable bench left {left:?} in {}", dir.display());
}
