//! `durable check`: would a new version of an app break the instances in flight?
//!
//! Two forms: `--store PATH` opens the store directly (only while no host holds it) and
//! replays there; `--url URL` sends the component to a running host's
//! `POST /admin/hubs/{hub}/check`, which replays beside its work. Both print the same
//! report. Exit codes: 0 every instance compatible; 1 at least one would diverge or fail
//! (or the host refused); 2 usage error; 3 store or host unreachable.

use std::path::{Path, PathBuf};
use std::time::Duration;

use durable_engine::check::{CheckReport, Verdict, check_candidate};
use durable_store::{StoreError, StoreLocation};
use durable_wasm::{Sandbox, WasmRuntime};

use super::admin_http::{self, AdminRequest, Failure, failure, percent_encode};
use super::args::{Parsed, UsageError, usage_error};
use super::{DEFAULT_URL, EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE};

/// How long a remote check may take (it replays every unfinished instance).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(600);

/// Where the histories are.
enum Target {
    Store(StoreLocation),
    Remote {
        url: String,
        hub: String,
        key: Option<String>,
    },
}

/// Runs `durable check` with parsed flags; usage errors go back to the caller.
pub fn run(parsed: &Parsed) -> Result<i32, UsageError> {
    let app = PathBuf::from(parsed.required("--app", "FILE.wasm")?);
    let target = match parsed.owned("--store") {
        Some(_) if parsed.any(&["--url", "--task-hub", "--key", "--code"]) => {
            return Err(usage_error(
                "--store reads the store directly; --url, --task-hub and --key are for a running host",
            ));
        }
        Some(store) => {
            Target::Store(StoreLocation::parse(&store).map_err(|error| usage_error(format!("--store: {error}")))?)
        }
        None => Target::Remote {
            url: parsed.value("--url").unwrap_or(DEFAULT_URL).to_owned(),
            hub: parsed.value("--task-hub").unwrap_or("default").to_owned(),
            key: super::system_key(parsed, false),
        },
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return Ok(EXIT_REFUSED);
        }
    };
    let result = runtime.block_on(async {
        match &target {
            Target::Store(store) => check_store(store, &app).await,
            Target::Remote { url, hub, key } => check_remote(url, hub, key.as_deref(), &app).await,
        }
    });
    Ok(match result {
        Ok(report) => {
            super::print_stdout(&render(&report, parsed.switch("--json")));
            if report.all_compatible() { EXIT_OK } else { EXIT_REFUSED }
        }
        Err(error) => {
            eprintln!("error: {}", error.message);
            error.code
        }
    })
}

async fn check_store(location: &StoreLocation, app: &Path) -> Result<CheckReport, Failure> {
    if let StoreLocation::Redb(path) = location
        && !path.is_file()
    {
        // Opening would create an empty store there.
        return Err(failure(
            EXIT_UNREACHABLE,
            format!("no store at {} (give the --store of `durable serve`)", path.display()),
        ));
    }
    let store = durable_store::open_reader(location)
        .await
        .map_err(|error| match error {
            StoreError::InUse => failure(
                EXIT_UNREACHABLE,
                format!(
                    "the store {location} is in use, probably by a running host (a store can be open in one process \
                 only).\nCheck through that host instead: durable check --app {} --url http://HOST:PORT",
                    app.display()
                ),
            ),
            error => failure(EXIT_UNREACHABLE, format!("cannot open the store {location}: {error}")),
        })?;
    let wasm = WasmRuntime::new(None)
        .map_err(|error| failure(EXIT_REFUSED, format!("cannot start the wasm engine: {error:#}")))?;
    let candidate = wasm
        .load(app, Sandbox::default())
        .await
        .map_err(|error| failure(EXIT_REFUSED, format!("the candidate was rejected: {error}")))?;
    check_candidate(&*store, &wasm, &candidate)
        .await
        .map_err(|error| failure(EXIT_UNREACHABLE, format!("reading the store {location}: {error}")))
}

async fn check_remote(url: &str, hub: &str, key: Option<&str>, app: &Path) -> Result<CheckReport, Failure> {
    let bytes = std::fs::read(app).map_err(|error| {
        failure(
            super::EXIT_USAGE,
            format!("--app {}: cannot read: {error}", app.display()),
        )
    })?;
    let path = format!("/admin/hubs/{}/check", percent_encode(hub));
    let body = admin_http::send(AdminRequest {
        url,
        method: hyper::Method::POST,
        path: path.clone(),
        key,
        wasm: Some(bytes),
        timeout: EXCHANGE_TIMEOUT,
        hint: ", or check a stopped host's store with --store PATH",
    })
    .await?;
    serde_json::from_slice(&body).map_err(|error| {
        failure(
            EXIT_REFUSED,
            format!(
                "POST {path}: not a check report ({error}): {}",
                String::from_utf8_lossy(&body)
            ),
        )
    })
}

/// The report as people read it (one line per instance, then a summary) or as JSON.
fn render(report: &CheckReport, json: bool) -> String {
    if json {
        return format!(
            "{}\n",
            serde_json::to_string_pretty(report).expect("a check report always serializes")
        );
    }
    let id_width = report
        .instances
        .iter()
        .map(|instance| instance.instance_id.len())
        .max()
        .unwrap_or(0);
    let name_width = report
        .instances
        .iter()
        .map(|instance| instance.name.len())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for instance in &report.instances {
        let verdict = match &instance.verdict {
            Verdict::Compatible => "compatible".to_owned(),
            Verdict::Diverges { message } => format!("DIVERGES: {message}"),
            Verdict::NotExported => "not exported".to_owned(),
            Verdict::Trapped { message } => format!("trapped: {}", message.replace('\n', "\n    ")),
        };
        text.push_str(&format!(
            "{:<id_width$}  {:<name_width$}  {verdict}\n",
            instance.instance_id, instance.name
        ));
    }
    let summary = &report.summary;
    if summary.checked == 0 {
        text.push_str("no running, pending or suspended instances: nothing to check\n");
    } else {
        text.push_str(&format!(
            "{} instance(s) checked: {} compatible, {} would diverge, {} not exported, {} trapped\n",
            summary.checked, summary.compatible, summary.diverges, summary.not_exported, summary.trapped
        ));
    }
    text
}
