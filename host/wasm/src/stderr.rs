//! A guest's stderr, captured: its tail explains a trap, and all of it is echoed to the
//! host's stderr ([`CapturedOutput`]).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// How much of a guest's stderr is kept to explain a trap.
const STDERR_TAIL_BYTES: usize = 4096;

/// Keeps the tail of a guest's stderr (to explain traps) and echoes it to the host's.
#[derive(Clone, Default)]
pub(crate) struct CapturedOutput(Arc<Mutex<VecDeque<u8>>>);

impl CapturedOutput {
    /// Forgets what an earlier call wrote, so a trap is explained by its own call's output.
    pub(crate) fn clear(&self) {
        self.0.lock().expect("stderr buffer lock").clear();
    }

    /// What the guest wrote last, up to the kept tail.
    pub(crate) fn tail(&self) -> String {
        let buffer = self.0.lock().expect("stderr buffer lock");
        String::from_utf8_lossy(&buffer.iter().copied().collect::<Vec<u8>>()).into_owned()
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, bytes: &[u8]) -> Poll<std::io::Result<usize>> {
        let mut buffer = self.0.lock().expect("stderr buffer lock");
        buffer.extend(bytes);
        let excess = buffer.len().saturating_sub(STDERR_TAIL_BYTES);
        buffer.drain(..excess);
        eprint!("{}", String::from_utf8_lossy(bytes));
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
