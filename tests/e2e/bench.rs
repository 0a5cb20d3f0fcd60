//! `durable bench all` at tiny sizes: every workload runs and prints a JSON line with
//! positive figures. No test asserts a time: the figures are for BENCHMARKS.md.

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

#[test]
fn bench_all_prints_positive_figures_for_every_workload() {
    let dir = temp_dir("bench");
    let output = Command::new(env!("CARGO_BIN_EXE_durable"))
        .args(["bench", "all", "--instances", "20", "--json", "--dir"])
        .arg(&dir)
        .arg("--app")
        .arg(example("bench"))
        .arg("--app")
        .arg(example("counter"))
        .output()
        .expect("running durable bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "durable bench failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
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
fn bench_rejects_an_unknown_workload() {
    let output = Command::new(env!("CARGO_BIN_EXE_durable"))
        .args(["bench", "no-such-workload"])
        .output()
        .expect("running durable bench");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown workload"));
}
