//! Activities: [`ActivityContext`] and the adapter from author functions to JSON in, JSON out.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::types;
use crate::error::{DESERIALIZATION_ERROR, Error, SERIALIZATION_ERROR};
use crate::json;

/// Facts about an activity call, for activities declared as `fn(ActivityContext, I)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivityContext {
    instance_id: String,
    task_scheduled_id: i32,
}

impl ActivityContext {
    /// The orchestration instance that scheduled the activity.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The sequence number of the call in that orchestration; with the instance id it
    /// identifies the call, which helps to make an activity idempotent.
    pub fn task_scheduled_id(&self) -> i32 {
        self.task_scheduled_id
    }
}

impl From<types::ActivityContext> for ActivityContext {
    fn from(context: types::ActivityContext) -> Self {
        Self {
            instance_id: context.instance_id,
            task_scheduled_id: context.task_scheduled_id,
        }
    }
}

/// A function that can serve as an activity: `fn() -> Result<O, E>`, `fn(I) -> Result<O, E>`
/// or `fn(ActivityContext, I) -> Result<O, E>`, where `I: DeserializeOwned`,
/// `O: Serialize` and `E: Into<Error>`. `Args` only tells the three forms apart.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be an activity",
    label = "not an activity function",
    note = "an activity is a `fn(I) -> Result<O, E>`, `fn(ActivityContext, I) -> Result<O, E>` or `fn() -> Result<O, E>` with `I: DeserializeOwned`, `O: Serialize`, `E: Into<durable_sdk::Error>`"
)]
pub trait ActivityHandler<Args>: Send + Sync + 'static {
    /// Decodes the input, calls the function and encodes its output.
    fn call(&self, context: ActivityContext, input: Option<&str>) -> Result<Option<String>, Error>;
}

impl<F, O, E> ActivityHandler<()> for F
where
    F: Fn() -> Result<O, E> + Send + Sync + 'static,
    O: Serialize,
    E: Into<Error>,
{
    fn call(&self, _: ActivityContext, _: Option<&str>) -> Result<Option<String>, Error> {
        encode_output(self())
    }
}

impl<F, I, O, E> ActivityHandler<(I,)> for F
where
    F: Fn(I) -> Result<O, E> + Send + Sync + 'static,
    I: DeserializeOwned,
    O: Serialize,
    E: Into<Error>,
{
    fn call(&self, _: ActivityContext, input: Option<&str>) -> Result<Option<String>, Error> {
        encode_output(self(decode_input(input)?))
    }
}

impl<F, I, O, E> ActivityHandler<(ActivityContext, I)> for F
where
    F: Fn(ActivityContext, I) -> Result<O, E> + Send + Sync + 'static,
    I: DeserializeOwned,
    O: Serialize,
    E: Into<Error>,
{
    fn call(&self, context: ActivityContext, input: Option<&str>) -> Result<Option<String>, Error> {
        encode_output(self(context, decode_input(input)?))
    }
}

fn decode_input<I: DeserializeOwned>(input: Option<&str>) -> Result<I, Error> {
    json::decode(input).map_err(|error| {
        Error::new(
            DESERIALIZATION_ERROR,
            format!("the activity input could not be decoded: {error}"),
        )
    })
}

fn encode_output<O: Serialize, E: Into<Error>>(output: Result<O, E>) -> Result<Option<String>, Error> {
    let output = output.map_err(Into::into)?;
    json::encode(&output).map(Some).map_err(|error| {
        Error::new(
            SERIALIZATION_ERROR,
            format!("the activity output could not be encoded as JSON: {error}"),
        )
    })
}
