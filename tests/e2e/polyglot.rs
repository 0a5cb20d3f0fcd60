//! Python and JavaScript guests beyond the shared examples: `durable build` itself,
//! determinism of orchestrators that read the clock and random sources directly, guest
//! exceptions, and functions resolved across apps of different languages in one hub.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    ExampleSet, Host, PREFIX, durable, durable_with_env, example_apps, example_apps_of, repo_root, temp_dir, test_guest,
};

/// The test app `tests/guests/LANGUAGE/determinism`, built once per test run with
/// `durable build` (the toolchain comes from `examples/build.sh`, which the example set
/// installs).
fn determinism_app(set: ExampleSet) -> &'static Path {
    static APPS: [OnceLock<PathBuf>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    APPS[set as usize].get_or_init(|| {
        example_apps_of(set);
        let (language, env): (&str, &[(&str, PathBuf)]) = match set {
            ExampleSet::Python => (
                "python",
                &[(
                    "COMPONENTIZE_PY",
                    repo_root().join("target/polyglot/python-venv/bin/componentize-py"),
                )],
            ),
            ExampleSet::JavaScript => (
                "js",
                &[("DURABLE_JS_TOOLCHAIN", repo_root().join("target/polyglot/js"))],
            ),
            ExampleSet::Rust | ExampleSet::RustOnPostgres => unreachable!("Rust guests are built by cargo"),
        };
        let out = repo_root().join(format!("target/polyglot/tests/{language}-determinism.wasm"));
        let status = Command::new(env!("CARGO_BIN_EXE_durable"))
            .arg("build")
            .arg(repo_root().join(format!("tests/guests/{language}/determinism")))
            .arg("-o")
            .arg(&out)
            .envs(env.iter().map(|(key, value)| (*key, value)))
            .stdout(Stdio::null())
            .status()
            .expect("running durable build");
        assert!(
            status.success(),
            "durable build of the {language} determinism app failed"
        );
        out
    })
}

fn start_with(store: &Path, apps: &[PathBuf]) -> Host {
    Host::start_with_shared_cache(store, apps).expect("starting durable")
}

in_python_and_javascript!(
    an_orchestrator_reading_the_clock_and_random_directly_replays_the_recorded_values,
    an_exception_in_the_orchestrator_fails_the_instance_with_its_message,
    a_rust_orchestrator_calls_an_activity_and_sub_orchestrations_of_another_app,
);

fn an_orchestrator_reading_the_clock_and_random_directly_replays_the_recorded_values(set: ExampleSet) {
    let app = determinism_app(set).to_owned();
    let store = temp_dir("determinism").file("store.redb");
    let ids = ["det-0", "det-1"];
    let host = start_with(&store, std::slice::from_ref(&app));
    for id in ids {
        host.start_orchestration("Determinism", Some(id), None);
        host.wait_for(id, Duration::from_secs(60), |status| {
            status["runtimeStatus"] == "Running"
        });
        host.raise_event(id, "Next", "1");
    }
    // A new process has no live orchestrations: the next event replays every episode.
    assert!(host.terminate().success());
    let host = start_with(&store, std::slice::from_ref(&app));
    let mut outputs = Vec::new();
    for id in ids {
        host.raise_event(id, "Next", "2");
        let status = host.wait_for_finish(id);
        assert_eq!(status["runtimeStatus"], "Completed", "{status}");
        let history = host
            .request(
                "GET",
                &format!("{PREFIX}/instances/{id}?showHistory=true&showHistoryOutput=true"),
                None,
            )
            .json();
        let pinned: Vec<Value> = history["historyEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| event["FunctionName"] == "Pin")
            .map(|event| event["Result"].clone())
            .collect();
        assert_eq!(
            json!(pinned),
            status["output"],
            "replay read other values than recorded"
        );
        for round in status["output"].as_array().unwrap() {
            assert_eq!(
                round["now"], round["utc"],
                "the wall clock is the episode's time: {round}"
            );
        }
        outputs.push(status["output"].clone());
    }
    assert_ne!(
        outputs[0][0]["random"], outputs[1][0]["random"],
        "instances draw their own numbers"
    );
    assert_ne!(outputs[0][0]["random"], outputs[0][1]["random"], "each read draws anew");
}

fn an_exception_in_the_orchestrator_fails_the_instance_with_its_message(set: ExampleSet) {
    let store = temp_dir("raises").file("store.redb");
    let host = start_with(&store, &[determinism_app(set).to_owned()]);
    let id = host.start_orchestration("Raises", None, None);
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Failed", "{status}");
    assert_eq!(status["output"], "the orchestrator gave up on purpose", "{status}");
}

fn a_rust_orchestrator_calls_an_activity_and_sub_orchestrations_of_another_app(set: ExampleSet) {
    let mut apps = example_apps_of(set).to_vec();
    apps.push(test_guest());
    let store = temp_dir("mixed").file("store.redb");
    let host = start_with(&store, &apps);
    let input = json!({"name": "E1_SayHello", "input": "Tokyo"}).to_string();
    let id = host.start_orchestration("CallActivityByName", None, Some(&input));
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"], "Hello Tokyo!");

    let id = host.start_orchestration("SubOrchestrationParent", None, Some("3"));
    let status = host.wait_for_finish(&id);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(
        status["output"],
        json!({"sum": 14, "greetings": ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]})
    );
}

#[test]
fn durable_build_names_what_a_directory_without_an_app_should_hold() {
    let empty = temp_dir("build-empty");
    let run = durable(&["build", empty.to_str().unwrap()]);
    run.assert_code(1);
    for expected in ["Cargo.toml", "function_app.py", "package.json"] {
        assert!(run.stderr.contains(expected), "{}", run.stderr);
    }
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn durable_build_says_how_to_install_a_missing_toolchain() {
    let python_app = repo_root().join("tests/guests/python/determinism");
    let run = durable_with_env(
        &["build", python_app.to_str().unwrap()],
        &[("COMPONENTIZE_PY", Some("/nonexistent/componentize-py"))],
    );
    run.assert_code(1);
    assert!(
        run.stderr.contains("install-toolchain.sh") && run.stderr.contains("componentize-py==0.25.1"),
        "{}",
        run.stderr
    );

    let js_app = repo_root().join("tests/guests/js/determinism");
    let empty = temp_dir("build-no-js-toolchain");
    let run = durable_with_env(
        &["build", js_app.to_str().unwrap()],
        &[("DURABLE_JS_TOOLCHAIN", Some(empty.to_str().unwrap()))],
    );
    run.assert_code(1);
    assert!(
        run.stderr.contains("componentize-js") && run.stderr.contains("install-toolchain.sh"),
        "{}",
        run.stderr
    );
}

#[test]
fn durable_build_of_a_rust_app_prints_the_component_it_built() {
    example_apps();
    let out = temp_dir("build-rust").file("hello.wasm");
    let run = durable_with_env(
        &[
            "build",
            repo_root().join("examples/hello_sequence").to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        // The examples are already built there by examples/build.sh: cargo has nothing to do.
        &[("CARGO_TARGET_DIR", Some(repo_root().join("target").to_str().unwrap()))],
    );
    run.assert_code(0);
    assert_eq!(run.stdout.trim(), out.to_str().unwrap());
    let store = temp_dir("build-rust-host").file("store.redb");
    let host = Host::start(&store, &[out.to_path_buf()]).expect("starting durable");
    let id = host.start_orchestration("E1_HelloSequence", None, None);
    assert_eq!(host.wait_for_finish(&id)["output"][0], "Hello Tokyo!");
}
