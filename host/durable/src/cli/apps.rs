//! `durable deploy`, `durable list-apps` and `durable remove-app`: live deployment of the
//! apps of a running host's task hub, over its admin API (`/admin/hubs/{hub}/apps`).
//!
//! Deploying replaces the app's current version at once; orchestrations already running
//! finish on the version they started on, which the host keeps (the "retained versions")
//! until none is left. The key is an admin key, sent as `x-functions-key`. Exit codes: 0
//! done; 1 the host refused; 2 usage error; 3 the host could not be reached.

use std::path::PathBuf;
use std::time::Duration;

use durable_engine::hubs::{AppInfo, AppList, FunctionInfo};
use hyper::Method;
use serde::de::DeserializeOwned;

use super::admin_http::{self, AdminRequest, Failure, failure, percent_encode};
use super::args::{Parsed, UsageError};
use super::{DEFAULT_URL, EXIT_OK, EXIT_REFUSED, EXIT_USAGE};

/// How long the host may take to answer a deployment (it compiles the component).
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(600);
/// How long listing or removing may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);
/// The hub the commands address unless `--task-hub` says otherwise: the one hub of a host
/// started without a config file answers to it.
const DEFAULT_HUB: &str = "default";
/// How many hex digits of a version people see.
const SHORT_VERSION: usize = 12;

/// Where the admin API is and who is asking.
struct Target<'a> {
    url: &'a str,
    hub: &'a str,
    key: Option<String>,
}

impl<'a> Target<'a> {
    fn of(parsed: &'a Parsed) -> Self {
        Target {
            url: parsed.value("--url").unwrap_or(DEFAULT_URL),
            hub: parsed.value("--task-hub").unwrap_or(DEFAULT_HUB),
            key: super::system_key(parsed, false),
        }
    }

    /// `/admin/hubs/{hub}/apps[/{app}]`.
    fn path(&self, app: Option<&str>) -> String {
        let mut path = format!("/admin/hubs/{}/apps", percent_encode(self.hub));
        if let Some(app) = app {
            path.push('/');
            path.push_str(&percent_encode(app));
        }
        path
    }

    fn request(&self, method: Method, app: Option<&str>) -> AdminRequest<'_> {
        AdminRequest {
            url: self.url,
            method,
            path: self.path(app),
            key: self.key.as_deref(),
            wasm: None,
            timeout: ADMIN_TIMEOUT,
            hint: "",
        }
    }
}

/// `durable deploy --name APP --app FILE.wasm`.
pub fn deploy(parsed: &Parsed) -> Result<i32, UsageError> {
    let name = parsed.required("--name", "APP")?;
    let file = PathBuf::from(parsed.required("--app", "FILE.wasm")?);
    let target = Target::of(parsed);
    let json = parsed.switch("--json");
    Ok(finish(block_on(async {
        let bytes = std::fs::read(&file)
            .map_err(|error| failure(EXIT_USAGE, format!("--app {}: cannot read: {error}", file.display())))?;
        let request = AdminRequest {
            wasm: Some(bytes),
            timeout: DEPLOY_TIMEOUT,
            ..target.request(Method::PUT, Some(&name))
        };
        let path = request.path.clone();
        let body = admin_http::send(request).await?;
        let info: AppInfo = decode("PUT", &path, &body)?;
        Ok(if json { pretty(&info) } else { render_deployed(&info) })
    })))
}

/// `durable list-apps`.
pub fn list(parsed: &Parsed) -> Result<i32, UsageError> {
    let target = Target::of(parsed);
    let json = parsed.switch("--json");
    Ok(finish(block_on(async {
        let request = target.request(Method::GET, None);
        let path = request.path.clone();
        let body = admin_http::send(request).await?;
        let list: AppList = decode("GET", &path, &body)?;
        Ok(if json { pretty(&list) } else { render_list(&list) })
    })))
}

/// `durable remove-app --name APP`.
pub fn remove(parsed: &Parsed) -> Result<i32, UsageError> {
    let name = parsed.required("--name", "APP")?;
    let target = Target::of(parsed);
    let json = parsed.switch("--json");
    Ok(finish(block_on(async {
        admin_http::send(target.request(Method::DELETE, Some(&name))).await?;
        Ok(if json {
            pretty(&serde_json::json!({ "removed": name, "taskHub": target.hub }))
        } else {
            format!(
                "removed {name} from task hub '{}' (instances running on it finish on its version)\n",
                target.hub
            )
        })
    })))
}

/// Runs `work` on a fresh single-threaded runtime.
fn block_on(work: impl Future<Output = Result<String, Failure>>) -> Result<String, Failure> {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(work),
        Err(error) => Err(failure(
            EXIT_REFUSED,
            format!("cannot start the async runtime: {error}"),
        )),
    }
}

/// Prints the output or the error; the exit code.
fn finish(result: Result<String, Failure>) -> i32 {
    match result {
        Ok(output) => {
            super::print_stdout(&output);
            EXIT_OK
        }
        Err(error) => {
            eprintln!("error: {}", error.message);
            error.code
        }
    }
}

fn decode<T: DeserializeOwned>(method: &str, path: &str, body: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|error| {
        failure(
            EXIT_REFUSED,
            format!(
                "{method} {path}: unexpected answer ({error}): {}",
                String::from_utf8_lossy(body)
            ),
        )
    })
}

fn pretty(value: &impl serde::Serialize) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(value).expect("admin answers always serialize")
    )
}

fn short(version: &str) -> &str {
    version.get(..SHORT_VERSION).unwrap_or(version)
}

/// `deployed APP version V (replaced W)`, then one line per function.
fn render_deployed(info: &AppInfo) -> String {
    let mut text = format!("deployed {} version {}", info.name, short(&info.version));
    if let Some(replaced) = &info.replaced {
        text.push_str(&format!(" (replaced {})", short(replaced)));
    }
    text.push('\n');
    let width = info
        .functions
        .iter()
        .map(|function| function.kind.len())
        .max()
        .unwrap_or(0);
    for function in &info.functions {
        text.push_str(&format!("  {:<width$}  {}\n", function.kind, function.name));
    }
    text
}

/// `orchestrators: A, B; activities: C; entities: D`.
fn summarize(functions: &[FunctionInfo]) -> String {
    let mut groups = Vec::new();
    for (kind, label) in [
        ("orchestrator", "orchestrators"),
        ("activity", "activities"),
        ("entity", "entities"),
    ] {
        let mut names: Vec<&str> = functions
            .iter()
            .filter(|function| function.kind == kind)
            .map(|function| function.name.as_str())
            .collect();
        if !names.is_empty() {
            names.sort_unstable();
            groups.push(format!("{label}: {}", names.join(", ")));
        }
    }
    if groups.is_empty() {
        "no functions".to_owned()
    } else {
        groups.join("; ")
    }
}

/// One line per app (name, version, functions), then the retained versions.
fn render_list(list: &AppList) -> String {
    let mut text = String::new();
    if list.apps.is_empty() {
        text.push_str(&format!("task hub '{}' has no apps\n", list.task_hub));
    }
    let width = list.apps.iter().map(|app| app.name.len()).max().unwrap_or(0);
    for app in &list.apps {
        text.push_str(&format!(
            "{:<width$}  {}  {}\n",
            app.name,
            short(&app.version),
            summarize(&app.functions)
        ));
    }
    if list.retained_versions.is_empty() {
        text.push_str("retained versions: none\n");
    } else {
        let versions: Vec<&str> = list.retained_versions.iter().map(|version| short(version)).collect();
        text.push_str(&format!(
            "retained versions (orchestrations started on them still run): {}\n",
            versions.join(", ")
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(name: &str, kind: &str) -> FunctionInfo {
        FunctionInfo {
            name: name.to_owned(),
            kind: kind.to_owned(),
        }
    }

    #[test]
    fn a_deployment_names_the_versions_and_functions() {
        let info = AppInfo {
            name: "shop".to_owned(),
            version: "0123456789abcdef".repeat(4),
            functions: vec![function("Order", "orchestrator"), function("Pay", "activity")],
            replaced: Some("fedcba9876543210".repeat(4)),
        };
        assert_eq!(
            render_deployed(&info),
            "deployed shop version 0123456789ab (replaced fedcba987654)\n  orchestrator  Order\n  activity      Pay\n"
        );
    }

    #[test]
    fn a_list_has_one_line_per_app_then_the_retained_versions() {
        let list = AppList {
            task_hub: "team".to_owned(),
            apps: vec![AppInfo {
                name: "shop".to_owned(),
                version: "0123456789abcdef".repeat(4),
                functions: vec![
                    function("Pay", "activity"),
                    function("Order", "orchestrator"),
                    function("Cart", "entity"),
                    function("Bill", "activity"),
                ],
                replaced: None,
            }],
            retained_versions: vec!["fedcba9876543210".repeat(4)],
        };
        assert_eq!(
            render_list(&list),
            "shop  0123456789ab  orchestrators: Order; activities: Bill, Pay; entities: Cart\n\
             retained versions (orchestrations started on them still run): fedcba987654\n"
        );
        let empty = AppList {
            task_hub: "team".to_owned(),
            apps: Vec::new(),
            retained_versions: Vec::new(),
        };
        assert_eq!(
            render_list(&empty),
            "task hub 'team' has no apps\nretained versions: none\n"
        );
    }
}
