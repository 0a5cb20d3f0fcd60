//! The official Durable Functions clients, unchanged, against the real host: PyPI
//! `azure-functions-durable` and npm `durable-functions`, installed by tests/clients/setup.sh
//! into target/clients. Each script (tests/clients/python_client.py, node_client.mjs) drives
//! every client method against the example apps and exits non-zero at the first failed check.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Instant;

use crate::support::{Host, repo_root};

#[test]
fn python_client_drives_every_method() {
    let root = repo_root();
    let python = clients_dir().join("venv/bin/python");
    run_client("py-client", &python, &root.join("tests/clients/python_client.py"));
}

#[test]
fn node_client_drives_every_method() {
    let root = repo_root();
    run_client(
        "node-client",
        Path::new("node"),
        &root.join("tests/clients/node_client.mjs"),
    );
}

/// target/clients, populated once per test run by tests/clients/setup.sh.
fn clients_dir() -> PathBuf {
    static SETUP: OnceLock<PathBuf> = OnceLock::new();
    SETUP
        .get_or_init(|| {
            let root = repo_root();
            let started = Instant::now();
            let output = Command::new("bash")
                .arg(root.join("tests/clients/setup.sh"))
                .stdin(Stdio::null())
                .output()
                .expect("running tests/clients/setup.sh");
            assert!(
                output.status.success(),
                "tests/clients/setup.sh failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            eprintln!("tests/clients/setup.sh: ready in {:.1?}", started.elapsed());
            root.join("target/clients")
        })
        .clone()
}

/// Starts a host with the examples, runs `program script BASE_URL`, echoes the script's
/// output line by line as it comes, and fails with all of it (and the host's stderr) unless
/// the script exits 0.
fn run_client(label: &str, program: &Path, script: &Path) {
    let clients = clients_dir();
    let host = Host::with_examples(label);
    let started = Instant::now();
    let mut child = Command::new(program)
        .arg(script)
        .arg(&host.base)
        .env("DURABLE_CLIENTS_NODE_DIR", clients.join("node"))
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("spawning {} {}: {error}", program.display(), script.display()));

    let transcript = Arc::new(Mutex::new(String::new()));
    let readers = [
        echo(
            child.stdout.take().expect("piped stdout"),
            label,
            "",
            transcript.clone(),
        ),
        echo(
            child.stderr.take().expect("piped stderr"),
            label,
            "stderr: ",
            transcript.clone(),
        ),
    ];
    let status: ExitStatus = child.wait().expect("waiting for the client script");
    for reader in readers {
        reader.join().expect("output reader");
    }
    let elapsed = started.elapsed();
    let transcript = transcript.lock().unwrap().clone();
    assert!(
        status.success(),
        "{} exited with {status} after {elapsed:.1?}\n--- its output ---\n{transcript}--- host stderr ---\n{}",
        script.display(),
        host.stderr()
    );
    eprintln!("[{label}] {} passed in {elapsed:.1?}", script.display());
}

/// Copies each line of `stream` to stderr (prefixed with the test's label) and the transcript.
fn echo(
    stream: impl Read + Send + 'static,
    label: &str,
    prefix: &'static str,
    transcript: Arc<Mutex<String>>,
) -> thread::JoinHandle<()> {
    let label = label.to_owned();
    thread::spawn(move || {
        let mut lines = BufReader::new(stream);
        let mut line = String::new();
        while lines.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            eprint!("[{label}] {prefix}{line}");
            if !line.ends_with('\n') {
                eprintln!();
            }
            transcript
                .lock()
                .unwrap()
                .push_str(&format!("{prefix}{}\n", line.trim_end_matches('\n')));
            line.clear();
        }
    })
}
