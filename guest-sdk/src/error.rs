//! Errors: [`Error`], what an orchestrator or activity fails with, and [`TaskError`], why
//! an awaited task failed.

use std::any::Any;
use std::fmt;

use crate::bindings::types::FailureDetails;
use crate::entity::EntityId;

/// The error type the SDK reports when a function's input cannot be decoded.
pub(crate) const DESERIALIZATION_ERROR: &str = "DeserializationError";
/// The error type the SDK reports when a value cannot be encoded as JSON.
pub(crate) const SERIALIZATION_ERROR: &str = "SerializationError";

/// Why an orchestrator or activity failed: an error type, a message and optional details.
///
/// Like `anyhow::Error`, it converts from every [`std::error::Error`] with `?`, taking the
/// error's type name as the error type and its `Display` text as the message. A
/// [`TaskError`] keeps the failed task's error type and details, and its message names the
/// task and contains the task's own message.
///
/// `Error` deliberately does not implement [`std::error::Error`] itself; that is what makes
/// the blanket conversion possible.
///
/// ```
/// use durable_sdk::Error;
///
/// fn parse(text: &str) -> Result<i64, Error> {
///     Ok(text.parse::<i64>()?)
/// }
///
/// let err = parse("x").unwrap_err();
/// assert!(err.error_type().ends_with("ParseIntError"));
///
/// let err = Error::new("OutOfStock", "no tickets left").with_details("event 42");
/// assert_eq!(err.message(), "no tickets left");
/// assert_eq!(err.details(), Some("event 42"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    error_type: String,
    message: String,
    details: Option<String>,
}

impl Error {
    /// An error of type `"Error"` with this message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self::new("Error", message.to_string())
    }

    /// An error with an explicit type, which callers can match on.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.into(),
            message: message.into(),
            details: None,
        }
    }

    /// Attaches details: a stack trace, an inner error, a JSON object.
    #[must_use]
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// The kind of error, for matching in code.
    pub fn error_type(&self) -> &str {
        &self.error_type
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The details, if any.
    pub fn details(&self) -> Option<&str> {
        self.details.as_deref()
    }

    pub(crate) fn into_failure(self) -> FailureDetails {
        FailureDetails {
            error_type: self.error_type,
            message: self.message,
            details: self.details,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.message)
    }
}

impl<E: std::error::Error + 'static> From<E> for Error {
    fn from(error: E) -> Self {
        if let Some(task) = (&error as &dyn Any).downcast_ref::<TaskError>() {
            return Self {
                error_type: task.error_type.clone(),
                message: task.to_string(),
                details: task.details.clone(),
            };
        }
        let mut details = None;
        let mut source = error.source();
        while let Some(inner) = source {
            let line = format!("caused by: {inner}");
            details = Some(match details {
                None => line,
                Some(previous) => format!("{previous}\n{line}"),
            });
            source = inner.source();
        }
        Self {
            error_type: std::any::type_name::<E>().to_owned(),
            message: error.to_string(),
            details,
        }
    }
}

/// What kind of task a [`TaskError`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskKind {
    /// An activity call.
    Activity,
    /// A sub-orchestration call.
    SubOrchestration,
    /// A wait for an external event.
    ExternalEvent,
    /// An entity operation call, or a request for entity locks.
    Entity,
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Activity => "activity",
            Self::SubOrchestration => "sub-orchestration",
            Self::ExternalEvent => "external event",
            Self::Entity => "entity operation",
        })
    }
}

/// Why an awaited task failed: the activity, sub-orchestration or entity operation reported a
/// failure, or its result (or the event's payload) could not be decoded as the requested
/// type.
///
/// Handle it inside the orchestrator, or let `?` turn it into an [`Error`] that fails the
/// orchestration with a message naming the task and containing its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskError {
    kind: TaskKind,
    name: String,
    entity: Option<EntityId>,
    error_type: String,
    message: String,
    details: Option<String>,
}

impl TaskError {
    pub(crate) fn failed(kind: TaskKind, name: &str, failure: FailureDetails) -> Self {
        Self {
            kind,
            name: name.to_owned(),
            entity: None,
            error_type: failure.error_type,
            message: failure.message,
            details: failure.details,
        }
    }

    pub(crate) fn decode(kind: TaskKind, name: &str, error: &serde_json::Error) -> Self {
        Self {
            kind,
            name: name.to_owned(),
            entity: None,
            error_type: DESERIALIZATION_ERROR.to_owned(),
            message: match kind {
                TaskKind::ExternalEvent => format!("the payload could not be decoded: {error}"),
                _ => format!("the result could not be decoded: {error}"),
            },
            details: None,
        }
    }

    pub(crate) fn encode(kind: TaskKind, name: &str, error: &serde_json::Error) -> Self {
        Self {
            kind,
            name: name.to_owned(),
            entity: None,
            error_type: SERIALIZATION_ERROR.to_owned(),
            message: format!("the input could not be encoded as JSON: {error}"),
            details: None,
        }
    }

    /// Why entity operation `operation` of `entity` failed.
    pub(crate) fn with_entity(mut self, entity: &EntityId) -> Self {
        self.entity = Some(entity.clone());
        self
    }

    /// A misuse of entity locks (no entities, or a lock inside a critical section), which
    /// Durable Functions calls a locking rules violation.
    pub(crate) fn locking_rules(message: &str) -> Self {
        Self {
            kind: TaskKind::Entity,
            name: "lock_entities".to_owned(),
            entity: None,
            error_type: "LockingRulesViolation".to_owned(),
            message: message.to_owned(),
            details: None,
        }
    }

    /// The kind of task that failed.
    pub fn task_kind(&self) -> TaskKind {
        self.kind
    }

    /// The name of the activity, sub-orchestrator, external event or entity operation
    /// (`lock_entities` for a lock request).
    pub fn task_name(&self) -> &str {
        &self.name
    }

    /// For an entity operation, the entity it was called on.
    pub fn entity(&self) -> Option<&EntityId> {
        self.entity.as_ref()
    }

    /// The failure's error type, as the failing function reported it.
    pub fn error_type(&self) -> &str {
        &self.error_type
    }

    /// The failure's message, as the failing function reported it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The failure's details, if any.
    pub fn details(&self) -> Option<&str> {
        self.details.as_deref()
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.entity {
            Some(entity) => write!(
                f,
                "operation '{}' of entity '{entity}' failed: {}",
                self.name, self.message
            ),
            None => write!(f, "{} '{}' failed: {}", self.kind, self.name, self.message),
        }
    }
}

impl std::error::Error for TaskError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_error_converts_keeping_type_details_and_message() {
        let task = TaskError::failed(
            TaskKind::Activity,
            "Fail",
            FailureDetails {
                error_type: "FailAlwaysError".into(),
                message: "Fail always fails".into(),
                details: Some("trace".into()),
            },
        );
        let error = Error::from(task);
        assert_eq!(error.error_type(), "FailAlwaysError");
        assert_eq!(error.message(), "activity 'Fail' failed: Fail always fails");
        assert_eq!(error.details(), Some("trace"));
    }

    #[test]
    fn std_error_converts_with_its_type_name_and_message() {
        let error = Error::from("x".parse::<u8>().unwrap_err());
        assert!(error.error_type().ends_with("ParseIntError"));
        assert_eq!(error.message(), "invalid digit found in string");
        assert_eq!(error.details(), None);
    }
}
