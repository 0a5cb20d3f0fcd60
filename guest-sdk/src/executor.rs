//! The per-orchestration runner: feeds history events into the shared state, polls the
//! orchestrator's future after each one and collects the actions it issues.
//!
//! Every future an orchestrator can await resolves from the shared state alone, so one
//! poll with a no-op waker after each event drives the code as far as that event allows.
//! The order in which tasks complete is therefore the order of their events in the
//! history, on the first run and on every replay.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::bindings::types::{Action, ActionKind, ContinueAsNew, EpisodeResult, EventKind, HistoryEvent};
use crate::context::OrchestrationContext;
use crate::error::Error;
use crate::registry::{OrchestratorFn, OrchestratorFuture, Registry};
use crate::state::{PendingKind, State};

/// Where the orchestrator code is.
enum Run {
    /// Waiting for its execution-started event.
    NotStarted(OrchestratorFn),
    /// Started and not finished.
    Running(OrchestratorFuture),
    /// Returned (or failed) during the current `apply`; the final action is still to be
    /// issued at its end, so that it carries events raised later in the same episode.
    Returned(Result<Option<String>, Error>),
    /// The final action has been issued.
    Done,
}

/// One execution of one orchestrator for one instance.
pub(crate) struct Executor {
    state: Rc<RefCell<State>>,
    run: Run,
}

impl Executor {
    /// An execution of orchestrator `name`. An unknown name is reported by the first
    /// [`apply`](Self::apply) as a failure.
    pub(crate) fn new(registry: &Registry, name: &str, instance_id: &str) -> Self {
        let run = match registry.orchestrator_fn(name) {
            Some(orchestrator) => Run::NotStarted(orchestrator),
            None => Run::Returned(Err(Error::new(
                "OrchestratorNotFound",
                format!("this app has no orchestrator named '{name}'"),
            ))),
        };
        Self {
            state: Rc::new(RefCell::new(State::new(name, instance_id))),
            run,
        }
    }

    /// Feeds the events of one episode and returns the actions issued meanwhile.
    pub(crate) fn apply(&mut self, events: Vec<HistoryEvent>, replaying: bool) -> EpisodeResult {
        self.state.borrow_mut().is_replaying = replaying;
        for event in events {
            if matches!(self.run, Run::Done) {
                break;
            }
            if self.handle(event) {
                self.poll();
            }
        }
        let mut state = self.state.borrow_mut();
        let mut actions = state.take_actions();
        if let Run::Returned(_) = self.run {
            let Run::Returned(outcome) = std::mem::replace(&mut self.run, Run::Done) else {
                unreachable!("checked just above");
            };
            let kind = match outcome {
                Ok(output) => match state.continue_as_new.take() {
                    Some(input) => ActionKind::ContinueAsNew(ContinueAsNew {
                        input: Some(input),
                        carried_events: state.unconsumed_events(),
                    }),
                    None => ActionKind::Complete(output),
                },
                Err(error) => ActionKind::Fail(error.into_failure()),
            };
            actions.push(Action { id: -1, kind });
        }
        EpisodeResult {
            actions,
            custom_status: state.custom_status.clone(),
        }
    }

    /// Applies one event to the state; returns whether the orchestrator may have progressed.
    fn handle(&mut self, event: HistoryEvent) -> bool {
        let mut state = self.state.borrow_mut();
        match event.kind {
            EventKind::ExecutionStarted(started) => {
                if let Run::NotStarted(orchestrator) = &self.run {
                    state.name = started.name;
                    state.instance_id = started.instance_id;
                    state.input = started.input;
                    let context = OrchestrationContext::new(Rc::clone(&self.state));
                    let orchestrator = Arc::clone(orchestrator);
                    drop(state);
                    self.run = Run::Running(orchestrator(context));
                }
            }
            EventKind::OrchestratorStarted => {
                state.now = event.timestamp;
                return false;
            }
            EventKind::TaskCompleted(completed) => {
                state.complete(completed.task_scheduled_id, PendingKind::Activity, Ok(completed.result))
            }
            EventKind::TaskFailed(failed) => {
                state.complete(failed.task_scheduled_id, PendingKind::Activity, Err(failed.failure))
            }
            EventKind::SubOrchestrationInstanceCompleted(completed) => state.complete(
                completed.task_scheduled_id,
                PendingKind::SubOrchestration,
                Ok(completed.result),
            ),
            EventKind::SubOrchestrationInstanceFailed(failed) => state.complete(
                failed.task_scheduled_id,
                PendingKind::SubOrchestration,
                Err(failed.failure),
            ),
            EventKind::TimerFired(fired) => state.complete(fired.timer_id, PendingKind::Timer, Ok(None)),
            EventKind::EntityOperationCompleted(completed) => {
                state.complete(completed.task_scheduled_id, PendingKind::Entity, Ok(completed.result))
            }
            EventKind::EntityOperationFailed(failed) => {
                state.complete(failed.task_scheduled_id, PendingKind::Entity, Err(failed.failure))
            }
            EventKind::EntityLockGranted(id) => state.complete(id, PendingKind::Lock, Ok(None)),
            EventKind::EventRaised(raised) => state.raise(raised.name, raised.input),
            _ => return false,
        }
        true
    }

    /// Polls the orchestrator once, and notes its result if it returned or failed.
    fn poll(&mut self) {
        let Run::Running(future) = &mut self.run else {
            return;
        };
        let poll = future.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        let fatal = self.state.borrow_mut().fatal.take();
        let outcome = match (poll, fatal) {
            (_, Some(error)) => Err(error),
            (Poll::Ready(outcome), None) => outcome,
            (Poll::Pending, None) => return,
        };
        // Dropping the future drops its pending tasks, which unregister themselves and hand
        // back events they were given but never returned; the state must not be borrowed.
        self.run = Run::Returned(outcome);
    }
}

#[cfg(test)]
mod tests;
