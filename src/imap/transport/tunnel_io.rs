//! Plumbing shared by the tunnel and ssh transports: a child's stdout+stdin as one stream,
//! its stderr forwarded to the log, and a clear error when it dies before saying anything.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::sync::watch;

/// Lines of stderr kept for error messages.
const TAIL_LINES: usize = 20;
/// Longest stderr line logged as one record; longer ones are split.
const MAX_LINE: usize = 4096;
/// How long an early-EOF diagnosis waits for the child's stderr and exit status.
const DIAGNOSE_WAIT: Duration = Duration::from_secs(2);

/// Which log target stderr lines go to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LogTarget {
    /// `twinbox::tunnel`
    Tunnel,
    /// `twinbox::ssh`
    Ssh,
}

/// The last lines a child wrote to stderr, and whether its stderr has reached EOF.
#[derive(Clone)]
pub(crate) struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    done: watch::Receiver<bool>,
}

impl StderrTail {
    fn text(&self) -> String {
        self.lines
            .lock()
            .map(|l| l.iter().cloned().collect::<Vec<_>>().join(" | "))
            .unwrap_or_default()
    }
}

/// Spawns a task that logs each stderr line of a child (`label` names it) and keeps a tail.
///
/// Lines that announce themselves as informational (`INFO`, `DEBUG`, e.g. Courier's) are
/// logged at debug level, everything else at warn: a tunnel's stderr is usually an error
/// (ssh failures, "command not found") that must not be lost.
pub(crate) fn forward_stderr<R>(stderr: R, target: LogTarget, label: String) -> StderrTail
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let lines = Arc::new(Mutex::new(VecDeque::new()));
    let (done_tx, done) = watch::channel(false);
    let tail = Arc::clone(&lines);
    tokio::spawn(async move {
        let mut stderr = stderr;
        let mut pending: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let n = match stderr.read(&mut chunk).await {
                Ok(0) | Err(_) => 0,
                Ok(n) => n,
            };
            if n == 0 {
                if !pending.is_empty() {
                    emit(&tail, target, &label, &pending);
                }
                break;
            }
            pending.extend_from_slice(&chunk[..n]);
            while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=pos).collect();
                emit(&tail, target, &label, &line);
            }
            if pending.len() >= MAX_LINE {
                emit(&tail, target, &label, &pending);
                pending.clear();
            }
        }
        let _ = done_tx.send(true);
    });
    StderrTail { lines, done }
}

fn emit(tail: &Mutex<VecDeque<String>>, target: LogTarget, label: &str, raw: &[u8]) {
    let line = String::from_utf8_lossy(raw);
    let line = line.trim_end();
    if line.is_empty() {
        return;
    }
    let upper: String = line.trim_start().chars().take(5).collect();
    let upper = upper.to_ascii_uppercase();
    let informational = upper.starts_with("INFO") || upper.starts_with("DEBUG");
    match (target, informational) {
        (LogTarget::Tunnel, false) => tracing::warn!(target: "twinbox::tunnel", "{label}: {line}"),
        (LogTarget::Tunnel, true) => tracing::debug!(target: "twinbox::tunnel", "{label}: {line}"),
        (LogTarget::Ssh, false) => tracing::warn!(target: "twinbox::ssh", "{label}: {line}"),
        (LogTarget::Ssh, true) => tracing::debug!(target: "twinbox::ssh", "{label}: {line}"),
    }
    if let Ok(mut t) = tail.lock() {
        if t.len() == TAIL_LINES {
            t.pop_front();
        }
        t.push_back(line.to_string());
    }
}

/// What to say when a child closes its stdout before sending a single byte.
#[derive(Clone)]
pub(crate) struct Diagnostics {
    /// E.g. "tunnel command `foo`".
    pub what: String,
    /// The child's stderr.
    pub stderr: StderrTail,
    /// A description of how the child exited, once it has (if observable).
    pub exit: Option<watch::Receiver<Option<String>>>,
}

impl Diagnostics {
    async fn early_eof(self) -> io::Error {
        let Diagnostics {
            what,
            stderr,
            mut exit,
        } = self;
        let mut done = stderr.done.clone();
        let _ = tokio::time::timeout(DIAGNOSE_WAIT, async {
            let _ = done.wait_for(|d| *d).await;
            if let Some(exit) = exit.as_mut() {
                let _ = exit.wait_for(|e| e.is_some()).await;
            }
        })
        .await;
        let status = exit
            .as_ref()
            .and_then(|e| e.borrow().clone())
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        let text = stderr.text();
        let said = if text.is_empty() {
            String::from("; it wrote nothing to stderr")
        } else {
            format!(": {text}")
        };
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{what} closed its output without sending anything{status}{said}"),
        )
    }
}

type ErrorFuture = Pin<Box<dyn Future<Output = io::Error> + Send>>;

/// A child's stdout (read side) and stdin (write side) as one stream.
///
/// If the child's output ends before any byte came, the first read fails with an
/// `UnexpectedEof` error quoting its stderr and exit status, instead of a bare EOF.
pub(crate) struct ChildStream<R, W> {
    reader: R,
    writer: W,
    received: bool,
    diagnostics: Option<Diagnostics>,
    diagnosing: Option<ErrorFuture>,
    /// Kept alive as long as the stream: what owns the child (see the callers).
    _keep: Arc<dyn Send + Sync>,
}

impl<R, W> ChildStream<R, W> {
    pub(crate) fn new(
        reader: R,
        writer: W,
        diagnostics: Diagnostics,
        keep: Arc<dyn Send + Sync>,
    ) -> Self {
        ChildStream {
            reader,
            writer,
            received: false,
            diagnostics: Some(diagnostics),
            diagnosing: None,
            _keep: keep,
        }
    }
}

impl<R: AsyncRead + Unpin, W: Unpin> AsyncRead for ChildStream<R, W> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if let Some(fut) = this.diagnosing.as_mut() {
                let err = ready!(fut.as_mut().poll(cx));
                this.diagnosing = None;
                return Poll::Ready(Err(err));
            }
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.reader).poll_read(cx, buf))?;
            if buf.filled().len() > before {
                this.received = true;
                this.diagnostics = None;
            } else if buf.remaining() > 0 && !this.received {
                if let Some(diag) = this.diagnostics.take() {
                    this.diagnosing = Some(Box::pin(diag.early_eof()));
                    continue;
                }
            }
            return Poll::Ready(Ok(()));
        }
    }
}

impl<R: Unpin, W: AsyncWrite + Unpin> AsyncWrite for ChildStream<R, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().writer).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().writer).poll_shutdown(cx)
    }
}
