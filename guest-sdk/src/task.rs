//! Durable tasks and their combinators: [`Task`], [`task_all`], [`task_any`].

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

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
    let readiness = Readiness::new(tasks.len());
    TaskAll {
        remaining: tasks.len(),
        tasks,
        values,
        readiness,
    }
}

/// Waits for the first task to complete, successfully or not, and returns its index and
/// result. The other tasks are dropped. Of tasks that complete at the same time (say, two
/// external events already buffered), the first in the list wins.
///
/// With no tasks the future never completes.
pub fn task_any<T>(tasks: impl IntoIterator<Item = Task<T>>) -> TaskAny<T> {
    let tasks: Vec<_> = tasks.into_iter().collect();
    let readiness = Readiness::new(tasks.len());
    TaskAny { tasks, readiness }
}

/// Which children of a combinator may have progressed since its last poll.
///
/// Each child is polled with a waker of its own, which the leaf futures wake when their
/// outcome arrives; the combinator then polls only the woken children. Without this, a
/// fan-in over n tasks whose results arrive one event at a time costs O(n) per event, O(n²)
/// in all.
struct Readiness {
    shared: Arc<ReadyList>,
    wakers: Vec<Waker>,
    polled_once: bool,
}

#[derive(Default)]
struct ReadyList {
    woken: Mutex<Vec<usize>>,
    parent: Mutex<Option<Waker>>,
}

struct ChildWaker {
    index: usize,
    list: Arc<ReadyList>,
}

impl Wake for ChildWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        lock(&self.list.woken).push(self.index);
        if let Some(parent) = lock(&self.list.parent).as_ref() {
            parent.wake_by_ref();
        }
    }
}

impl Readiness {
    fn new(children: usize) -> Self {
        let shared = Arc::new(ReadyList::default());
        let wakers = (0..children)
            .map(|index| {
                Waker::from(Arc::new(ChildWaker {
                    index,
                    list: Arc::clone(&shared),
                }))
            })
            .collect();
        Self {
            shared,
            wakers,
            polled_once: false,
        }
    }

    /// The children to poll now: all of them the first time, then those woken since, in the
    /// order they were woken. Also keeps the parent's waker, so a woken child wakes it.
    fn children_to_poll(&mut self, cx: &Context<'_>) -> Vec<usize> {
        {
            let mut parent = lock(&self.shared.parent);
            if !parent.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
                *parent = Some(cx.waker().clone());
            }
        }
        let woken = mem::take(&mut *lock(&self.shared.woken));
        if self.polled_once {
            woken
        } else {
            self.polled_once = true;
            (0..self.wakers.len()).collect()
        }
    }

    fn context(&self, index: usize) -> Context<'_> {
        Context::from_waker(&self.wakers[index])
    }
}

/// The lists are only touched by the orchestration's one thread; a poisoned lock still
/// holds valid indices.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The future of [`task_all`].
#[must_use = "futures do nothing unless awaited"]
pub struct TaskAll<T> {
    tasks: Vec<Option<Task<T>>>,
    values: Vec<Option<T>>,
    remaining: usize,
    readiness: Readiness,
}

// Tasks are boxed, and values are never pinned.
impl<T> Unpin for TaskAll<T> {}

impl<T> Future for TaskAll<T> {
    type Output = Result<Vec<T>, TaskError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        for index in this.readiness.children_to_poll(cx) {
            let Some(task) = this.tasks.get_mut(index).and_then(Option::as_mut) else {
                continue;
            };
            match Pin::new(task).poll(&mut this.readiness.context(index)) {
                Poll::Ready(Ok(v)) => {
                    this.values[index] = Some(v);
                    this.tasks[index] = None;
                    this.remaining -= 1;
                }
                Poll::Ready(Err(error)) => {
                    this.tasks.clear();
                    return Poll::Ready(Err(error));
                }
                Poll::Pending => {}
            }
        }
        if this.remaining > 0 {
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
    readiness: Readiness,
}

impl<T> Future for TaskAny<T> {
    type Output = (usize, Result<T, TaskError>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut candidates = this.readiness.children_to_poll(cx);
        // Of tasks woken by the same event, the first in the list wins.
        candidates.sort_unstable();
        candidates.dedup();
        for index in candidates {
            let Some(task) = this.tasks.get_mut(index) else {
                continue;
            };
            if let Poll::Ready(result) = Pin::new(task).poll(&mut this.readiness.context(index)) {
                // Dropping the losers now unregisters their waiters, so an event that
                // arrives later is buffered for the next wait instead of lost.
                this.tasks.clear();
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
