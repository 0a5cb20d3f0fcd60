//! The client subcommands (`durable start-new`, `durable get-instances`, ...), in the spirit
//! of `func durable`: each talks to a running host through
//! [`DurableOrchestrationClient::remote`], never raw HTTP.
//!
//! Exit codes: 0 success; 1 the host refused (not found, gone, bad request); 2 usage error;
//! 3 the host could not be reached.

mod admin_http;
mod apps;
mod args;
pub mod build;
mod check;
mod render;

use std::io::Write;

use durable_core::history::{EntityId, RuntimeStatus, Timestamp};
use durable_engine::client::{ClientError, DurableOrchestrationClient, EntityQuery, InstanceQuery, PurgeFilter};

use self::args::{Flag, Parsed, UsageError, usage_error};
use self::render::Output;

/// The system (or admin) key a command sends: `--code`, else `--key` (unless `--key` names an
/// entity), else the `DURABLE_KEY` environment variable.
fn system_key(parsed: &Parsed, key_names_an_entity: bool) -> Option<String> {
    parsed
        .owned("--code")
        .or_else(|| (!key_names_an_entity).then(|| parsed.owned("--key")).flatten())
        .or_else(|| std::env::var("DURABLE_KEY").ok().filter(|key| !key.is_empty()))
}

/// The host a client subcommand talks to unless `--url` says otherwise.
const DEFAULT_URL: &str = "http://127.0.0.1:7071";

/// Success.
const EXIT_OK: i32 = 0;
/// The host refused the request.
const EXIT_REFUSED: i32 = 1;
/// The command line is wrong.
const EXIT_USAGE: i32 = 2;
/// The host could not be reached.
const EXIT_UNREACHABLE: i32 = 3;

/// Options every client subcommand takes.
const COMMON: &[Flag] = &[
    Flag::value("--url", "URL", "the running host (default http://127.0.0.1:7071)"),
    Flag::value("--task-hub", "NAME", "the task hub, sent as taskHub=NAME"),
    Flag::value(
        "--key",
        "KEY",
        "the system key, sent as code=KEY (default: $DURABLE_KEY)",
    ),
    Flag::value(
        "--code",
        "KEY",
        "the system key too, for entity commands where --key is the entity's key",
    ),
    Flag::switch("--json", "print one JSON document instead of text"),
];

const ID: Flag = Flag::value("--id", "ID", "the instance id");
const REASON: Flag = Flag::value("--reason", "TEXT", "why, recorded in the history");
const CREATED_AFTER: Flag = Flag::value(
    "--created-after",
    "TIME",
    "created at or after this ISO-8601 time (e.g. 2026-01-31T12:00:00Z)",
);
const CREATED_BEFORE: Flag = Flag::value("--created-before", "TIME", "created at or before this ISO-8601 time");
const RUNTIME_STATUS: Flag = Flag::value(
    "--runtime-status",
    "S[,S...]",
    "any of Pending, Running, Completed, Failed, Terminated, Suspended",
);

/// What a subcommand does.
#[derive(Clone, Copy)]
enum Action {
    StartNew,
    GetRuntimeStatus,
    GetInstances,
    GetHistory,
    RaiseEvent,
    Terminate,
    Suspend,
    Resume,
    Rewind,
    Restart,
    PurgeHistory,
    SignalEntity,
    ReadEntity,
    ListEntities,
    Check,
    Deploy,
    ListApps,
    RemoveApp,
}

/// A client subcommand.
pub struct Command {
    /// `start-new`, ...
    name: &'static str,
    /// One line for `durable --help`.
    summary: &'static str,
    /// Its forms, without `durable NAME`.
    synopsis: &'static [&'static str],
    /// Its own flags; [`COMMON`] come on top.
    flags: &'static [Flag],
    /// What it does.
    action: Action,
}

const COMMANDS: &[Command] = &[
    Command {
        name: "start-new",
        summary: "start an orchestration; prints its instance id",
        synopsis: &["--function-name NAME [--id ID] [--input JSON]"],
        flags: &[
            Flag::value("--function-name", "NAME", "the orchestrator to start"),
            Flag::value("--id", "ID", "the instance id (default: a new GUID)"),
            Flag::value(
                "--input",
                "JSON",
                "the orchestrator's input, as JSON (a string is '\"text\"')",
            ),
        ],
        action: Action::StartNew,
    },
    Command {
        name: "get-runtime-status",
        summary: "show an instance's status",
        synopsis: &["--id ID [--show-input] [--show-history] [--show-history-output]"],
        flags: &[
            ID,
            Flag::switch("--show-input", "include the input"),
            Flag::switch("--show-history", "include the history events"),
            Flag::switch("--show-history-output", "include results and inputs in the history"),
        ],
        action: Action::GetRuntimeStatus,
    },
    Command {
        name: "get-instances",
        summary: "list instances, one page at a time",
        synopsis: &[
            "[--created-after TIME] [--created-before TIME] [--runtime-status S[,S...]] [--prefix P] \
                     [--top N] [--continuation-token TOKEN] [--show-input]",
        ],
        flags: &[
            CREATED_AFTER,
            CREATED_BEFORE,
            RUNTIME_STATUS,
            Flag::value("--prefix", "P", "instance ids starting with P"),
            Flag::value("--top", "N", "at most N instances per page (default: all)"),
            Flag::value(
                "--continuation-token",
                "TOKEN",
                "the page after the one that printed TOKEN",
            ),
            Flag::switch("--show-input", "include inputs (with --json)"),
        ],
        action: Action::GetInstances,
    },
    Command {
        name: "get-history",
        summary: "show an instance's history events",
        synopsis: &["--id ID"],
        flags: &[ID],
        action: Action::GetHistory,
    },
    Command {
        name: "raise-event",
        summary: "send an event to an instance",
        synopsis: &["--id ID --event-name NAME [--event-data JSON]"],
        flags: &[
            ID,
            Flag::value("--event-name", "NAME", "the event's name"),
            Flag::value("--event-data", "JSON", "the event's payload, as JSON"),
        ],
        action: Action::RaiseEvent,
    },
    Command {
        name: "terminate",
        summary: "terminate a running instance",
        synopsis: &["--id ID [--reason TEXT]"],
        flags: &[ID, REASON],
        action: Action::Terminate,
    },
    Command {
        name: "suspend",
        summary: "suspend a running instance",
        synopsis: &["--id ID [--reason TEXT]"],
        flags: &[ID, REASON],
        action: Action::Suspend,
    },
    Command {
        name: "resume",
        summary: "resume a suspended instance",
        synopsis: &["--id ID [--reason TEXT]"],
        flags: &[ID, REASON],
        action: Action::Resume,
    },
    Command {
        name: "rewind",
        summary: "rerun the failed work of a Failed instance",
        synopsis: &["--id ID [--reason TEXT]"],
        flags: &[ID, REASON],
        action: Action::Rewind,
    },
    Command {
        name: "restart",
        summary: "run a finished instance again with the same input; prints the id",
        synopsis: &["--id ID [--new-id]"],
        flags: &[ID, Flag::switch("--new-id", "run it under a new instance id")],
        action: Action::Restart,
    },
    Command {
        name: "purge-history",
        summary: "delete instances and their history",
        synopsis: &[
            "--id ID",
            "[--created-after TIME] [--created-before TIME] [--runtime-status S[,S...]]",
        ],
        flags: &[
            Flag::value("--id", "ID", "purge this instance"),
            CREATED_AFTER,
            CREATED_BEFORE,
            RUNTIME_STATUS,
        ],
        action: Action::PurgeHistory,
    },
    Command {
        name: "signal-entity",
        summary: "send a one-way operation to an entity (created if needed)",
        synopsis: &["--name NAME --key KEY --operation OP [--input JSON]"],
        flags: &[
            ENTITY_NAME,
            ENTITY_KEY,
            Flag::value("--operation", "OP", "the operation, e.g. add"),
            Flag::value("--input", "JSON", "the operation's input, as JSON"),
        ],
        action: Action::SignalEntity,
    },
    Command {
        name: "read-entity",
        summary: "print an entity's state",
        synopsis: &["--name NAME --key KEY"],
        flags: &[ENTITY_NAME, ENTITY_KEY],
        action: Action::ReadEntity,
    },
    Command {
        name: "list-entities",
        summary: "list entities, optionally of one name, with their state",
        synopsis: &["[--name NAME] [--fetch-state] [--top N] [--continuation-token TOKEN]"],
        flags: &[
            Flag::value("--name", "NAME", "only entities of this name"),
            Flag::switch("--fetch-state", "include each entity's state"),
            Flag::value("--top", "N", "at most N entities per page"),
            Flag::value(
                "--continuation-token",
                "TOKEN",
                "the next page, as the previous one said",
            ),
        ],
        action: Action::ListEntities,
    },
    Command {
        name: "check",
        summary: "replay unfinished instances against a new app version (exit 1 if any would diverge)",
        synopsis: &[
            "--app FILE.wasm --store PATH",
            "--app FILE.wasm [--url URL] [--task-hub NAME] [--key KEY]",
        ],
        flags: &[
            Flag::value("--app", "FILE.wasm", "the candidate component"),
            Flag::value(
                "--store",
                "PATH",
                "read a stopped host's store; without it the host at --url checks (KEY as x-functions-key)",
            ),
        ],
        action: Action::Check,
    },
    Command {
        name: "deploy",
        summary: "deploy or replace an app live (running instances keep their version)",
        synopsis: &["--name APP --app FILE.wasm [--url URL] [--task-hub NAME] [--key ADMINKEY]"],
        flags: &[APP_NAME, Flag::value("--app", "FILE.wasm", "the app's component")],
        action: Action::Deploy,
    },
    Command {
        name: "list-apps",
        summary: "list a task hub's apps and the older versions it keeps",
        synopsis: &["[--url URL] [--task-hub NAME] [--key ADMINKEY]"],
        flags: &[],
        action: Action::ListApps,
    },
    Command {
        name: "remove-app",
        summary: "remove an app live (running instances finish on it)",
        synopsis: &["--name APP [--url URL] [--task-hub NAME] [--key ADMINKEY]"],
        flags: &[APP_NAME],
        action: Action::RemoveApp,
    },
];

/// The app of `deploy` and `remove-app`.
const APP_NAME: Flag = Flag::value(
    "--name",
    "APP",
    "the app's name in the task hub (letters, digits, '-', '_', '.')",
);

const ENTITY_NAME: Flag = Flag::value("--name", "NAME", "the entity's name (any case)");
const ENTITY_KEY: Flag = Flag::value("--key", "KEY", "the entity's key");

/// The client subcommand called `name`.
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|command| command.name == name)
}

/// The client subcommands' part of `durable --help`.
pub fn overview() -> String {
    let mut text = String::from(
        "\nCLIENT COMMANDS (talk to a running host):\n    durable COMMAND [OPTIONS] [--url URL] [--task-hub NAME] [--key KEY] [--json]\n\n",
    );
    for command in COMMANDS {
        text.push_str(&format!("    {:<22} {}\n", command.name, command.summary));
    }
    text.push_str(&format!(
        "\n{}\nRun 'durable COMMAND --help' for a command's options.\n\n{}",
        common_help(),
        EXIT_CODES
    ));
    text
}

const EXIT_CODES: &str = "\
EXIT CODES:
    0  success
    1  the host refused the request (not found, gone, bad request)
    2  usage error
    3  the host could not be reached
";

fn common_help() -> String {
    let mut text = String::from("COMMON OPTIONS:\n");
    text.push_str(&flag_lines(COMMON));
    text.push_str(&format!("    {:<28} {}\n", "-h, --help", "print this help"));
    text
}

fn flag_lines(flags: &[Flag]) -> String {
    flags
        .iter()
        .map(|flag| format!("    {:<28} {}\n", flag.synopsis(), flag.help))
        .collect()
}

impl Command {
    /// The first lines of the usage: `durable NAME FORM`, wrapped between bracketed options.
    fn usage_line(&self) -> String {
        const WIDTH: usize = 100;
        let mut text = String::from("USAGE:\n");
        for form in self.synopsis {
            let lead = format!("    durable {} ", self.name);
            let mut line = lead.clone();
            for (i, part) in form.split(" [").enumerate() {
                let part = if i == 0 { part.to_owned() } else { format!("[{part}") };
                if line.len() > lead.len() && line.len() + part.len() > WIDTH {
                    text.push_str(line.trim_end());
                    text.push('\n');
                    line = " ".repeat(lead.len());
                }
                line.push_str(&part);
                line.push(' ');
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text.push_str("    (common options: --url URL --task-hub NAME --key KEY --json)\n");
        text
    }

    /// `durable NAME --help`.
    fn help(&self) -> String {
        format!(
            "durable {}: {}\n\n{}\nOPTIONS:\n{}\n{}\n{}",
            self.name,
            self.summary,
            self.usage_line(),
            flag_lines(self.flags),
            common_help(),
            EXIT_CODES
        )
    }

    /// Runs the subcommand with the arguments after its name; returns the exit code.
    pub fn run(&'static self, args: impl IntoIterator<Item = String>) -> i32 {
        let code = self.run_inner(args);
        let _ = std::io::stdout().flush();
        code
    }

    fn run_inner(&'static self, args: impl IntoIterator<Item = String>) -> i32 {
        let parsed = match args::parse(&[self.flags, COMMON], args) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => {
                print_stdout(&self.help());
                return EXIT_OK;
            }
            Err(error) => return self.usage_failure(error),
        };
        let apart = match self.action {
            Action::Check => Some(check::run(&parsed)),
            Action::Deploy => Some(apps::deploy(&parsed)),
            Action::ListApps => Some(apps::list(&parsed)),
            Action::RemoveApp => Some(apps::remove(&parsed)),
            _ => None,
        };
        if let Some(result) = apart {
            return result.unwrap_or_else(|error| self.usage_failure(error));
        }
        let request = match Request::from_args(self.action, &parsed) {
            Ok(request) => request,
            Err(error) => return self.usage_failure(error),
        };
        let url = parsed.value("--url").unwrap_or(DEFAULT_URL);
        let entity_command = matches!(self.action, Action::SignalEntity | Action::ReadEntity);
        let key = system_key(&parsed, entity_command);
        let client = match DurableOrchestrationClient::remote(url, parsed.value("--task-hub"), key.as_deref()) {
            Ok(client) => client,
            Err(error) => return self.usage_failure(usage_error(format!("--url: {error}"))),
        };
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("error: cannot start the async runtime: {error}");
                return EXIT_REFUSED;
            }
        };
        match runtime.block_on(request.execute(&client)) {
            Ok(output) => {
                print_stdout(&output.render(parsed.switch("--json")));
                EXIT_OK
            }
            Err(ClientError::Remote(detail)) => {
                eprintln!(
                    "error: could not reach a durable host at {url} ({detail})\n\
                     Is `durable serve` running there? Point --url at it."
                );
                EXIT_UNREACHABLE
            }
            Err(ClientError::Rejected { status, message }) => {
                eprintln!("error: {message} (HTTP {status})");
                EXIT_REFUSED
            }
            Err(error) => {
                eprintln!("error: {error}");
                EXIT_REFUSED
            }
        }
    }

    fn usage_failure(&self, error: UsageError) -> i32 {
        eprintln!(
            "error: {error}\n\n{}\nRun 'durable {} --help' for more.",
            self.usage_line(),
            self.name
        );
        EXIT_USAGE
    }
}

/// Prints to stdout, ignoring a closed pipe (`durable get-instances | head -1`).
fn print_stdout(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// A control operation on one instance.
#[derive(Clone, Copy)]
enum Control {
    Terminate,
    Suspend,
    Resume,
    Rewind,
}

/// A validated subcommand, ready to send.
enum Request {
    StartNew {
        name: String,
        id: Option<String>,
        input: Option<String>,
    },
    Status {
        id: String,
        show_input: bool,
        show_history: bool,
        show_history_output: bool,
    },
    Instances(InstanceQuery),
    History {
        id: String,
    },
    RaiseEvent {
        id: String,
        event_name: String,
        data: Option<String>,
    },
    Control {
        id: String,
        control: Control,
        reason: Option<String>,
    },
    Restart {
        id: String,
        new_id: bool,
    },
    PurgeOne {
        id: String,
    },
    PurgeBy(PurgeFilter),
    SignalEntity {
        entity: EntityId,
        operation: String,
        input: Option<String>,
    },
    ReadEntity(EntityId),
    ListEntities(EntityQuery),
}

impl Request {
    fn from_args(action: Action, parsed: &Parsed) -> Result<Request, UsageError> {
        let id = || parsed.required("--id", "ID");
        let control = |control| {
            Ok(Request::Control {
                id: id()?,
                control,
                reason: parsed.owned("--reason"),
            })
        };
        Ok(match action {
            Action::StartNew => Request::StartNew {
                name: parsed.required("--function-name", "NAME")?,
                id: parsed.owned("--id"),
                input: json_flag(parsed, "--input")?,
            },
            Action::GetRuntimeStatus => Request::Status {
                id: id()?,
                show_input: parsed.switch("--show-input"),
                show_history: parsed.switch("--show-history") || parsed.switch("--show-history-output"),
                show_history_output: parsed.switch("--show-history-output"),
            },
            Action::GetInstances => Request::Instances(InstanceQuery {
                created_time_from: time_flag(parsed, "--created-after")?,
                created_time_to: time_flag(parsed, "--created-before")?,
                runtime_status: status_flag(parsed)?,
                instance_id_prefix: parsed.owned("--prefix"),
                show_input: parsed.switch("--show-input"),
                top: top_flag(parsed)?,
                continuation_token: parsed.owned("--continuation-token"),
            }),
            Action::GetHistory => Request::History { id: id()? },
            Action::RaiseEvent => Request::RaiseEvent {
                id: id()?,
                event_name: parsed.required("--event-name", "NAME")?,
                data: json_flag(parsed, "--event-data")?,
            },
            Action::Terminate => control(Control::Terminate)?,
            Action::Suspend => control(Control::Suspend)?,
            Action::Resume => control(Control::Resume)?,
            Action::Rewind => control(Control::Rewind)?,
            Action::Restart => Request::Restart {
                id: id()?,
                new_id: parsed.switch("--new-id"),
            },
            Action::SignalEntity => Request::SignalEntity {
                entity: entity_flags(parsed)?,
                operation: parsed.required("--operation", "OP")?,
                input: json_flag(parsed, "--input")?,
            },
            Action::ReadEntity => Request::ReadEntity(entity_flags(parsed)?),
            Action::ListEntities => Request::ListEntities(EntityQuery {
                name: parsed.owned("--name"),
                fetch_state: parsed.switch("--fetch-state"),
                top: top_flag(parsed)?,
                continuation_token: parsed.owned("--continuation-token"),
                ..EntityQuery::default()
            }),
            Action::Check | Action::Deploy | Action::ListApps | Action::RemoveApp => {
                return Err(usage_error("this command runs apart from the client requests"));
            }
            Action::PurgeHistory => {
                let filters = ["--created-after", "--created-before", "--runtime-status"];
                match parsed.owned("--id") {
                    Some(_) if parsed.any(&filters) => {
                        return Err(usage_error("give either --id or filters, not both"));
                    }
                    Some(id) => Request::PurgeOne { id },
                    None if !parsed.any(&filters) => {
                        return Err(usage_error(
                            "purge-history needs --id ID or at least one of --created-after, --created-before, \
                             --runtime-status",
                        ));
                    }
                    None => Request::PurgeBy(PurgeFilter {
                        created_time_from: time_flag(parsed, "--created-after")?,
                        created_time_to: time_flag(parsed, "--created-before")?,
                        runtime_status: status_flag(parsed)?,
                    }),
                }
            }
        })
    }

    async fn execute(self, client: &DurableOrchestrationClient) -> Result<Output, ClientError> {
        let accepted = |id: String, operation, event_name| Output::Accepted {
            id,
            operation,
            event_name,
        };
        Ok(match self {
            Request::StartNew { name, id, input } => Output::Id(client.start_new(&name, id, input).await?),
            Request::Status {
                id,
                show_input,
                show_history,
                show_history_output,
            } => Output::Status(
                client
                    .get_status(&id, show_history, show_history_output, show_input)
                    .await?
                    .ok_or(ClientError::NotFound(id))?,
            ),
            Request::Instances(query) => Output::Page(client.list_instances(&query).await?),
            Request::History { id } => {
                let status = client.get_status(&id, true, true, false).await?;
                let status = status.ok_or(ClientError::NotFound(id))?;
                Output::History(status.history.unwrap_or_default())
            }
            Request::RaiseEvent { id, event_name, data } => {
                client.raise_event(&id, &event_name, data).await?;
                accepted(id, "raiseEvent", Some(event_name))
            }
            Request::Control { id, control, reason } => {
                let operation = match control {
                    Control::Terminate => {
                        client.terminate(&id, reason).await?;
                        "terminate"
                    }
                    Control::Suspend => {
                        client.suspend(&id, reason).await?;
                        "suspend"
                    }
                    Control::Resume => {
                        client.resume(&id, reason).await?;
                        "resume"
                    }
                    Control::Rewind => {
                        client.rewind(&id, reason).await?;
                        "rewind"
                    }
                };
                accepted(id, operation, None)
            }
            Request::Restart { id, new_id } => Output::Id(client.restart(&id, new_id).await?),
            Request::PurgeOne { id } => Output::Purged(client.purge_instance_history(&id).await?.instances_deleted),
            Request::PurgeBy(filter) => {
                Output::Purged(client.purge_instance_history_by(&filter).await?.instances_deleted)
            }
            Request::SignalEntity {
                entity,
                operation,
                input,
            } => {
                client.signal_entity(&entity, &operation, input).await?;
                accepted(entity.to_string(), "signalEntity", None)
            }
            Request::ReadEntity(entity) => Output::Entity(
                client
                    .read_entity_state(&entity)
                    .await?
                    .ok_or_else(|| ClientError::NotFound(entity.to_string()))?,
            ),
            Request::ListEntities(query) => Output::Entities(client.list_entities(&query).await?),
        })
    }
}

fn entity_flags(parsed: &Parsed) -> Result<EntityId, UsageError> {
    Ok(EntityId::new(
        &parsed.required("--name", "NAME")?,
        &parsed.required("--key", "KEY")?,
    ))
}

/// A flag whose value must be JSON; passed on as the text given.
fn json_flag(parsed: &Parsed, name: &str) -> Result<Option<String>, UsageError> {
    let Some(text) = parsed.owned(name) else {
        return Ok(None);
    };
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(_) => Ok(Some(text)),
        Err(error) => Err(usage_error(format!(
            "{name} {text:?} is not valid JSON ({error}); a string needs quotes, e.g. {name} '\"Tokyo\"'"
        ))),
    }
}

fn time_flag(parsed: &Parsed, name: &str) -> Result<Option<Timestamp>, UsageError> {
    parsed
        .value(name)
        .map(|text| {
            Timestamp::parse_iso8601(text).ok_or_else(|| {
                usage_error(format!(
                    "{name} {text:?} is not an ISO-8601 time; e.g. 2026-01-31 or 2026-01-31T12:00:00Z"
                ))
            })
        })
        .transpose()
}

fn status_flag(parsed: &Parsed) -> Result<Vec<RuntimeStatus>, UsageError> {
    let Some(text) = parsed.value("--runtime-status") else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(|name| {
            RuntimeStatus::parse(name).ok_or_else(|| {
                usage_error(format!(
                    "--runtime-status: unknown status {name:?}; use Pending, Running, Completed, Failed, \
                     Terminated, Suspended, Canceled or ContinuedAsNew, comma-separated"
                ))
            })
        })
        .collect()
}

fn top_flag(parsed: &Parsed) -> Result<Option<usize>, UsageError> {
    parsed
        .value("--top")
        .map(|text| match text.parse::<usize>() {
            Ok(top) if top > 0 => Ok(top),
            _ => Err(usage_error(format!("--top {text:?}: expected a positive number"))),
        })
        .transpose()
}
