//! What goes wrong: the engine cannot start ([`EngineError`]), an app cannot be loaded
//! ([`LoadError`]), a guest call fails ([`GuestTrap`]), and how a failed call is explained
//! ([`explain_failure`]).

use std::path::PathBuf;

use wasmtime::Trap;

use crate::bindings::WORLD;
use crate::limits::{CallKind, GuestLimits};
use crate::stderr::CapturedOutput;
use crate::store::HostState;

/// How much of wasmtime's context of a trap (its wasm backtrace) is kept, in lines and
/// bytes.
const TRAP_CONTEXT_LINES: usize = 12;
const TRAP_CONTEXT_BYTES: usize = 2048;

/// The wasmtime engine could not be set up: a configuration wasmtime refuses, a WASI
/// interface that does not link, or no thread for the epoch ticker.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the wasm engine: {0}")]
pub struct EngineError(pub(crate) String);

/// Errors loading an app.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid component.
    #[error("{file}: not a valid WebAssembly component: {detail}")]
    Compile {
        /// The file.
        file: PathBuf,
        /// What wasmtime said.
        detail: String,
    },
    /// The component does not export what the world requires, or imports what the host
    /// does not provide.
    #[error("{file}: does not fit the world {WORLD}: {detail}")]
    DoesNotFit {
        /// The file.
        file: PathBuf,
        /// What is missing.
        detail: String,
    },
    /// What the app's activities are granted cannot be given (a granted directory does not
    /// open).
    #[error("{file}: its activities' grants cannot be given: {detail}")]
    Grants {
        /// The file.
        file: PathBuf,
        /// Why.
        detail: String,
    },
    /// The component's registry could not be read.
    #[error("{file}: reading its function registry failed: {detail}")]
    Registry {
        /// The file.
        file: PathBuf,
        /// Why.
        detail: String,
    },
}

/// A guest call failed in a way that poisons its wasm instance.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct GuestTrap {
    /// The trap and the tail of the guest's stderr.
    pub message: String,
}

/// Explains why a guest call failed: a time or memory limit, a stack overflow, or another
/// trap. `what` names the guest function (`orchestrator 'X'`).
pub(crate) fn explain_failure(
    what: &str,
    kind: CallKind,
    limits: &GuestLimits,
    state: &HostState,
    error: Option<&wasmtime::Error>,
    stderr: &CapturedOutput,
) -> GuestTrap {
    let timed_out = error.is_none() || state.deadline.exceeded;
    let mut message = if timed_out {
        let millis = kind.budget(limits).as_millis();
        match kind {
            CallKind::Call => format!("{what} exceeded the CPU time limit of {millis} ms per call"),
            CallKind::Activity => format!("{what} exceeded its time limit of {millis} ms"),
        }
    } else if state.memory.exceeded {
        format!("{what} exceeded the memory limit of {} bytes", limits.memory_bytes)
    } else {
        let error = error.expect("not timed out");
        let root = error.root_cause().to_string();
        if error.downcast_ref::<Trap>() == Some(&Trap::StackOverflow) {
            format!("{what} overflowed its stack: stack overflow ({root}), too deep a recursion")
        } else {
            // The outer causes are wasmtime's context, mostly the wasm backtrace: keep its
            // first frames.
            let mut context: Vec<String> = error.chain().map(|cause| cause.to_string()).collect();
            context.pop();
            let mut context: String = context
                .join("\n")
                .lines()
                .take(TRAP_CONTEXT_LINES)
                .collect::<Vec<_>>()
                .join("\n");
            truncate(&mut context, TRAP_CONTEXT_BYTES);
            if context.is_empty() {
                format!("{what} trapped: {root}")
            } else {
                format!("{what} trapped: {root}\n{context}")
            }
        }
    };
    let tail = stderr.tail();
    if !tail.trim().is_empty() {
        message.push_str("\nguest stderr:\n");
        message.push_str(tail.trim_end());
    }
    GuestTrap { message }
}

/// Cuts `text` to at most `max` bytes, on a character boundary, marking the cut.
fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str(" [...]");
    }
}
