//! The state one orchestration shares between its context, its pending tasks and the
//! executor that feeds it history events, and the two leaf futures that resolve from it.
//!
//! Invariants:
//! 1. Every action that takes a sequence number gets it when the task is created, from one
//!    counter starting at 0; the action is recorded at the same moment.
//! 2. A pending task, event waiter or buffered event lives in a `BTreeMap` keyed by a
//!    counter, so every "first" or "oldest" below is the one created or received first.
//! 3. A leaf future that is dropped before it completed unregisters itself; an event it was
//!    handed but never returned goes back to the next waiter or the buffer.
//! 4. Nothing here reads a clock or a random source: time is the current episode's
//!    orchestrator-started timestamp.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::bindings::types::{Action, ActionKind, CarriedEvent, FailureDetails};
use crate::error::Error;
use crate::time::Micros;

/// What a completed activity, sub-orchestration, entity call, timer or entity lock reported:
/// its JSON result, or why it failed. A timer and a lock complete with `Ok(None)`.
pub(crate) type Outcome = Result<Option<String>, FailureDetails>;

/// The kind of action a pending sequence number belongs to; a completion of another kind
/// for that number is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PendingKind {
    Activity,
    SubOrchestration,
    Timer,
    /// A call-entity action, completed by entity-operation-completed or -failed.
    Entity,
    /// A lock-entities action, completed by entity-lock-granted.
    Lock,
}

struct PendingTask {
    kind: PendingKind,
    outcome: Option<Outcome>,
    /// Woken when the outcome arrives, so combinators poll only the tasks that can move.
    waker: Option<Waker>,
}

/// An external event as it arrived.
#[derive(Clone, Debug)]
pub(crate) struct RaisedEvent {
    /// Position among all events raised to this execution.
    arrival: u64,
    pub(crate) name: String,
    pub(crate) input: Option<String>,
}

struct Waiter {
    /// The event name, lowercased: names match case-insensitively.
    key: String,
    delivered: Option<RaisedEvent>,
    /// Woken when an event is delivered.
    waker: Option<Waker>,
}

pub(crate) struct State {
    pub(crate) name: String,
    pub(crate) instance_id: String,
    pub(crate) input: Option<String>,
    pub(crate) is_replaying: bool,
    /// The timestamp of the current episode's orchestrator-started event.
    pub(crate) now: Micros,
    pub(crate) custom_status: Option<String>,
    /// `Some(input)` once the orchestrator called `continue_as_new`.
    pub(crate) continue_as_new: Option<String>,
    /// An error raised outside any task (say, a custom status that cannot be encoded); the
    /// executor fails the orchestration with it after the current poll.
    pub(crate) fatal: Option<Error>,
    pub(crate) guid_counter: u64,
    /// Whether the orchestration requested entity locks it has not released yet.
    pub(crate) lock_held: bool,
    next_sequence: i32,
    actions: Vec<Action>,
    pending: BTreeMap<i32, PendingTask>,
    next_waiter: u64,
    waiters: BTreeMap<u64, Waiter>,
    next_arrival: u64,
    /// Raised events no waiter has taken, by arrival.
    buffered: BTreeMap<u64, RaisedEvent>,
}

impl State {
    pub(crate) fn new(name: &str, instance_id: &str) -> Self {
        Self {
            name: name.to_owned(),
            instance_id: instance_id.to_owned(),
            input: None,
            is_replaying: false,
            now: 0,
            custom_status: None,
            continue_as_new: None,
            fatal: None,
            guid_counter: 0,
            lock_held: false,
            next_sequence: 0,
            actions: Vec::new(),
            pending: BTreeMap::new(),
            next_waiter: 0,
            waiters: BTreeMap::new(),
            next_arrival: 0,
            buffered: BTreeMap::new(),
        }
    }

    /// Records an action that takes a sequence number and returns that number.
    pub(crate) fn issue(&mut self, kind: ActionKind) -> i32 {
        let id = self.next_sequence;
        self.next_sequence += 1;
        self.actions.push(Action { id, kind });
        id
    }

    /// Records an action and returns the future of its completion.
    pub(crate) fn schedule(state: &Rc<RefCell<State>>, action: ActionKind, kind: PendingKind) -> Completion {
        let mut this = state.borrow_mut();
        let id = this.issue(action);
        this.pending.insert(
            id,
            PendingTask {
                kind,
                outcome: None,
                waker: None,
            },
        );
        Completion {
            state: Rc::clone(state),
            id,
        }
    }

    /// Hands an outcome to the pending task `id`; ignored when no task of that kind waits
    /// for it.
    pub(crate) fn complete(&mut self, id: i32, kind: PendingKind, outcome: Outcome) {
        if let Some(task) = self.pending.get_mut(&id)
            && task.kind == kind
            && task.outcome.is_none()
        {
            task.outcome = Some(outcome);
            if let Some(waker) = task.waker.take() {
                waker.wake();
            }
        }
    }

    /// An external event arrived.
    pub(crate) fn raise(&mut self, name: String, input: Option<String>) {
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        self.dispatch(RaisedEvent { arrival, name, input });
    }

    /// Gives the event to the oldest waiter for its name, or buffers it.
    fn dispatch(&mut self, event: RaisedEvent) {
        let key = event.name.to_lowercase();
        match self
            .waiters
            .values_mut()
            .find(|waiter| waiter.delivered.is_none() && waiter.key == key)
        {
            Some(waiter) => {
                waiter.delivered = Some(event);
                if let Some(waker) = waiter.waker.take() {
                    waker.wake();
                }
            }
            None => {
                self.buffered.insert(event.arrival, event);
            }
        }
    }

    /// Registers a waiter for an event; it takes the oldest buffered event of that name at
    /// once if there is one.
    pub(crate) fn wait(state: &Rc<RefCell<State>>, name: &str) -> EventWaiter {
        let mut this = state.borrow_mut();
        let key = name.to_lowercase();
        let buffered = this
            .buffered
            .iter()
            .find(|(_, event)| event.name.to_lowercase() == key)
            .map(|(&arrival, _)| arrival);
        let delivered = buffered.and_then(|arrival| this.buffered.remove(&arrival));
        let id = this.next_waiter;
        this.next_waiter += 1;
        this.waiters.insert(
            id,
            Waiter {
                key,
                delivered,
                waker: None,
            },
        );
        EventWaiter {
            state: Rc::clone(state),
            id,
        }
    }

    /// The actions issued since the last call.
    pub(crate) fn take_actions(&mut self) -> Vec<Action> {
        mem::take(&mut self.actions)
    }

    /// Every raised event that no waiter took, in arrival order.
    pub(crate) fn unconsumed_events(&self) -> Vec<CarriedEvent> {
        self.buffered
            .values()
            .map(|event| CarriedEvent {
                name: event.name.clone(),
                input: event.input.clone(),
            })
            .collect()
    }
}

/// Resolves when the task with this sequence number completes.
pub(crate) struct Completion {
    state: Rc<RefCell<State>>,
    id: i32,
}

impl Future for Completion {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let mut state = self.state.borrow_mut();
        let Some(task) = state.pending.get_mut(&self.id) else {
            return Poll::Pending;
        };
        match task.outcome.take() {
            Some(outcome) => {
                state.pending.remove(&self.id);
                Poll::Ready(outcome)
            }
            None => {
                remember(&mut task.waker, cx);
                Poll::Pending
            }
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.state.borrow_mut().pending.remove(&self.id);
    }
}

/// Resolves when an external event is handed to this waiter.
pub(crate) struct EventWaiter {
    state: Rc<RefCell<State>>,
    id: u64,
}

impl Future for EventWaiter {
    type Output = RaisedEvent;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<RaisedEvent> {
        let mut state = self.state.borrow_mut();
        let Some(waiter) = state.waiters.get_mut(&self.id) else {
            return Poll::Pending;
        };
        match waiter.delivered.take() {
            Some(event) => {
                state.waiters.remove(&self.id);
                Poll::Ready(event)
            }
            None => {
                remember(&mut waiter.waker, cx);
                Poll::Pending
            }
        }
    }
}

impl Drop for EventWaiter {
    fn drop(&mut self) {
        let mut state = self.state.borrow_mut();
        if let Some(Waiter {
            delivered: Some(event), ..
        }) = state.waiters.remove(&self.id)
        {
            state.dispatch(event);
        }
    }
}

/// Keeps the waker of the latest poll, without cloning when it is the one already kept.
fn remember(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}
