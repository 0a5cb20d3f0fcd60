//! Durable tasks and their combinators: [`Task`], [`task_all`], [`task_any`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::TaskError;

/// The result of an activity, sub-orchestration, timer or external event, to be awaited.
///
/// The action behind a task (scheduling the activity, creating the timer) is issued when the
/// task is created, not when it is first awaited, so several tasks created before any of
/// them is awaited run in parallel. Dropping a task stops waiting for it: a late result is
/// ignored and an external event goes to the next waiter instead.
#[must_use = "a task reports its result only when awaited"]
pub struct Task<T> {
    future: Pin<Box<dyn Future<Output = Result<T, TaskError>>>>,
}

impl<T> Task<T> {
    pub(crate) fn new(future: impl Future<Output = Result<T, TaskError>> + 'static) -> Self {
        Self {
            future: Box::pin(future),
        }
    }

    pub(crate) fn ready(result: Result<T, TaskError>) -> Self
    where
        T: 'static,
    {
        Self::new(std::future::ready(result))
    }

    /// Transforms the task's value once it completes; failures pass through unchanged.
    ///
    /// Handy to race tasks of different types in one [`task_any`]:
    /// `timer.map(|()| None)` against `event.map(Some)`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U + 'static) -> Task<U>
    where
        T: 'static,
    {
        Task::new(async move { self.await.map(f) })
    }
}

impl<T> Future for Task<T> {
    type Output = Result<T, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.future.as_mut().poll(cx)
    }
}

impl<T> fmt::Debug for Task<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task").finish_non_exhaustive()
    }
}

/// Waits for every task; the values come back in the order of the tasks.
///
/// Fails fast: the first task to fail (in completion order) ends the wait with its error,
/// and the other tasks are dropped.
pub fn task_all<T>(tasks: impl IntoIterator<Item = Task<T>>) -> TaskAll<T> {
    let tasks: Vec<_> = tasks.into_iter().map(Some).collect();
    let values = tasks.iter().map(|_| None).collect();
    TaskAll { tasks, values }
}

/// Waits for the first task to complete, successfully or not, and returns its index and
/// result. The other tasks are dropped. Of tasks that complete at the same time (say, two
/// external events already buffered), the first in the list wins.
///
/// With no tasks the future never completes.
pub fn task_any<T>(tasks: impl IntoIterator<Item = Task<T>>) -> TaskAny<T> {
    TaskAny {
        tasks: tasks.into_iter().collect(),
    }
}

/// The future of [`task_all`].
#[must_use = "futures do nothing unless awaited"]
pub struct TaskAll<T> {
    tasks: Vec<Option<Task<T>>>,
    values: Vec<Option<T>>,
}

// Tasks are boxed, and values are never pinned.
impl<T> Unpin for TaskAll<T> {}

impl<T> Future for TaskAll<T> {
    type Output = Result<Vec<T>, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        for (slot, value) in this.tasks.iter_mut().zip(this.values.iter_mut()) {
            let Some(task) = slot else { continue };
            match Pin::new(task).poll(cx) {
                Poll::Ready(Ok(v)) => {
                    *value = Some(v);
                    *slot = None;
                }
                Poll::Ready(Err(error)) => {
                    this.tasks.clear();
                    return Poll::Ready(Err(error));
                }
                Poll::Pending => {}
            }
        }
        if this.tasks.iter().any(Option::is_some) {
            return Poll::Pending;
        }
        Poll::Ready(Ok(this.values.drain(..).flatten().collect()))
    }
}

impl<T> fmt::Debug for TaskAll<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskAll")
            .field("tasks", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

/// The future of [`task_any`].
#[must_use = "futures do nothing unless awaited"]
pub struct TaskAny<T> {
    tasks: Vec<Task<T>>,
}

impl<T> Future for TaskAny<T> {
    type Output = (usize, Result<T, TaskError>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        for (index, task) in self.tasks.iter_mut().enumerate() {
            if let Poll::Ready(result) = Pin::new(task).poll(cx) {
                // Dropping the losers now unregisters their waiters, so an event that
                // arrives later is buffered for the next wait instead of lost.
                self.tasks.clear();
                return Poll::Ready((index, result));
            }
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for TaskAny<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskAny")
            .field("tasks", &self.tasks.len())
            .finish_non_exhaustive()
    }
}
