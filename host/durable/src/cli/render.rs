//! What the client subcommands print: aligned tables for people, one JSON document for
//! scripts.

use durable_engine::client::{EntityPage, EntityState, InstancePage, OrchestrationStatus};
use serde_json::{Value, json};

/// The result of a subcommand, before it is printed.
pub enum Output {
    /// An instance id (`start-new`, `restart`).
    Id(String),
    /// One instance's status.
    Status(OrchestrationStatus),
    /// One page of instances.
    Page(InstancePage),
    /// History events as the API shows them.
    History(Vec<Value>),
    /// The host accepted an operation on an instance.
    Accepted {
        /// The instance.
        id: String,
        /// `raiseEvent`, `terminate`, ...
        operation: &'static str,
        /// The event name, for `raiseEvent`.
        event_name: Option<String>,
    },
    /// How many instances a purge deleted.
    Purged(u64),
    /// One entity's state.
    Entity(EntityState),
    /// One page of entities.
    Entities(EntityPage),
}

impl Output {
    /// The text to print on stdout, ending in a newline.
    pub fn render(&self, json: bool) -> String {
        if json {
            let document = self.to_json();
            return format!(
                "{}\n",
                serde_json::to_string_pretty(&document).unwrap_or_else(|_| document.to_string())
            );
        }
        match self {
            Output::Id(id) => format!("{id}\n"),
            Output::Status(status) => status_text(status),
            Output::Page(page) => page_text(page),
            Output::History(events) => history_table(events),
            Output::Accepted {
                id,
                operation,
                event_name: Some(event_name),
            } if *operation == "raiseEvent" => format!("Raised event '{event_name}' on instance '{id}'.\n"),
            Output::Accepted { id, operation, .. } => format!("The host accepted {operation} of instance '{id}'.\n"),
            Output::Purged(count) => format!("Purged {count} instance(s)\n"),
            Output::Entity(entity) => format!(
                "{}\n",
                serde_json::to_string_pretty(&entity.state).unwrap_or_else(|_| entity.state.to_string())
            ),
            Output::Entities(page) => entities_text(page),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Output::Id(id) => json!({ "id": id }),
            Output::Status(status) => status.to_json(),
            Output::Page(page) => json!({
                "instances": page.instances.iter().map(OrchestrationStatus::to_json).collect::<Vec<_>>(),
                "continuationToken": page.continuation_token,
            }),
            Output::History(events) => Value::Array(events.clone()),
            Output::Accepted {
                id,
                operation,
                event_name,
            } => {
                let mut object = json!({ "id": id, "operation": operation });
                if let Some(event_name) = event_name {
                    object["eventName"] = json!(event_name);
                }
                object
            }
            Output::Purged(count) => json!({ "instancesDeleted": count }),
            Output::Entity(entity) => entity.to_json(true),
            Output::Entities(page) => json!({
                "entities": page.entities.iter().map(|entity| entity.to_json(true)).collect::<Vec<_>>(),
                "continuationToken": page.continuation_token,
            }),
        }
    }
}

fn entities_text(page: &EntityPage) -> String {
    let mut text = if page.entities.is_empty() {
        "No entities found.\n".to_owned()
    } else {
        table(
            Some(&["NAME", "KEY", "LAST OPERATION", "STATE"]),
            page.entities.iter().map(|entity| {
                vec![
                    entity.id.name.clone(),
                    entity.id.key.clone(),
                    entity.last_operation_time.to_iso8601(),
                    compact(&entity.state),
                ]
            }),
        )
    };
    if let Some(token) = &page.continuation_token {
        text.push_str(&format!("\nMore entities: --continuation-token {token}\n"));
    }
    text
}

/// A JSON value on one line; `null` as `-`.
fn compact(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

fn status_text(status: &OrchestrationStatus) -> String {
    let mut rows = vec![
        ("Instance id:", status.instance_id.clone()),
        ("Name:", status.name.clone()),
        ("Runtime status:", status.runtime_status.as_str().to_owned()),
        ("Created:", status.created_time.to_iso8601()),
        ("Last updated:", status.last_updated_time.to_iso8601()),
    ];
    if !status.input.is_null() {
        rows.push(("Input:", compact(&status.input)));
    }
    rows.push(("Custom status:", compact(&status.custom_status)));
    rows.push(("Output:", compact(&status.output)));
    let mut text = table(None, rows.into_iter().map(|(key, value)| vec![key.to_owned(), value]));
    if let Some(history) = &status.history {
        text.push_str("\nHistory:\n");
        text.push_str(&history_table(history));
    }
    text
}

fn page_text(page: &InstancePage) -> String {
    let mut text = if page.instances.is_empty() {
        "No instances found.\n".to_owned()
    } else {
        table(
            Some(&["INSTANCE ID", "NAME", "STATUS", "CREATED", "LAST UPDATED"]),
            page.instances.iter().map(|status| {
                vec![
                    status.instance_id.clone(),
                    status.name.clone(),
                    status.runtime_status.as_str().to_owned(),
                    status.created_time.to_iso8601(),
                    status.last_updated_time.to_iso8601(),
                ]
            }),
        )
    };
    if let Some(token) = &page.continuation_token {
        text.push_str(&format!("\nMore instances: --continuation-token {token}\n"));
    }
    text
}

/// The history as a table: event type, timestamp, the function or event name, and the
/// result (or the failure's reason).
fn history_table(events: &[Value]) -> String {
    if events.is_empty() {
        return "No history events.\n".to_owned();
    }
    let text = |event: &Value, key: &str| event[key].as_str().unwrap_or_default().to_owned();
    table(
        Some(&["EVENT TYPE", "TIMESTAMP", "NAME", "RESULT"]),
        events.iter().map(|event| {
            let name = match event.get("FunctionName").or_else(|| event.get("Name")) {
                Some(Value::String(name)) => name.clone(),
                _ => String::new(),
            };
            let result = ["Result", "Reason"]
                .into_iter()
                .find_map(|key| event.get(key))
                .map(compact)
                .unwrap_or_default();
            vec![text(event, "EventType"), text(event, "Timestamp"), name, result]
        }),
    )
}

/// Rows as aligned columns two spaces apart; the last column is never padded.
pub fn table(headers: Option<&[&str]>, rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut lines: Vec<Vec<String>> = Vec::new();
    if let Some(headers) = headers {
        lines.push(headers.iter().map(|header| header.to_string()).collect());
    }
    lines.extend(rows);
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            lines
                .iter()
                .filter_map(|line| line.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (column, cell) in line.iter().enumerate() {
            if column > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if column + 1 < line.len() {
                text.extend(std::iter::repeat_n(' ', widths[column] - cell.chars().count()));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_under_their_headers() {
        let text = table(
            Some(&["ID", "STATUS"]),
            [
                vec!["a".to_owned(), "Running".to_owned()],
                vec!["long-id".to_owned(), "-".to_owned()],
            ],
        );
        assert_eq!(text, "ID       STATUS\na        Running\nlong-id  -\n");
    }

    #[test]
    fn history_shows_names_and_results() {
        let events = vec![json!({
            "EventType": "TaskCompleted",
            "Timestamp": "2026-01-01T00:00:00.000000Z",
            "FunctionName": "E1_SayHello",
            "Result": "Hello Tokyo!",
        })];
        let text = history_table(&events);
        assert!(text.contains("TaskCompleted  2026-01-01T00:00:00.000000Z  E1_SayHello  \"Hello Tokyo!\""));
    }
}
