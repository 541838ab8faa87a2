//! The framed byte stream under a session: reads whole IMAP messages (lines plus literals)
//! with a size bound and a timeout, writes command fragments, counts bytes, logs redacted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use imap_codec::decode::Decoder;
use imap_codec::fragmentizer::{DecodeMessageError, FragmentInfo, Fragmentizer};
use imap_codec::{GreetingCodec, ResponseCodec};
use imap_types::response::{Greeting, Response};
use imap_types::IntoStatic;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::error::ImapError;
use super::transport::BoxStream;

/// Bytes and commands that crossed a connection (shared with whoever wants to read them).
#[derive(Debug, Default)]
pub struct WireCounters {
    /// Bytes read from the stream under the session (after TLS, before decompression).
    pub bytes_in: AtomicU64,
    /// Bytes written to the stream under the session.
    pub bytes_out: AtomicU64,
    /// Commands sent.
    pub commands: AtomicU64,
}

impl WireCounters {
    /// Reads (in, out, commands).
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.bytes_in.load(Ordering::Relaxed),
            self.bytes_out.load(Ordering::Relaxed),
            self.commands.load(Ordering::Relaxed),
        )
    }
}

const CHUNK: usize = 64 * 1024;
/// Above this size, a finished message's buffer is released instead of kept for reuse.
const KEEP_BUFFER: usize = 1024 * 1024;

/// Writes `data` in pieces, each allowed `timeout` to go out: the timeout bounds a stall,
/// not the time a large upload takes on a slow link.
async fn write_progressing(
    stream: &mut BoxStream,
    data: &[u8],
    timeout: Duration,
    counters: &WireCounters,
) -> Result<(), ImapError> {
    for piece in data.chunks(CHUNK) {
        tokio::time::timeout(timeout, stream.write_all(piece))
            .await
            .map_err(|_| ImapError::Timeout("sending"))?
            .map_err(ImapError::Io)?;
        counters
            .bytes_out
            .fetch_add(piece.len() as u64, Ordering::Relaxed);
    }
    Ok(())
}

/// Reads and writes IMAP messages over a byte stream.
pub struct Wire {
    stream: Option<BoxStream>,
    inbuf: Vec<u8>,
    start: usize,
    frag: Fragmentizer,
    literal_left: Option<u32>,
    max_message: u32,
    oversize: Option<u32>,
    outbuf: Vec<u8>,
    /// Time allowed for one read or write to make progress.
    pub timeout: Duration,
    /// Shared counters.
    pub counters: Arc<WireCounters>,
    /// A label for log lines (account/side), e.g. `remote`.
    pub label: String,
}

impl Wire {
    /// Wraps a stream; messages larger than `max_message` bytes are refused.
    pub fn new(stream: BoxStream, max_message: u32, timeout: Duration, label: String) -> Self {
        Wire {
            stream: Some(stream),
            inbuf: Vec::with_capacity(CHUNK),
            start: 0,
            frag: Fragmentizer::new(max_message),
            literal_left: None,
            max_message,
            oversize: None,
            outbuf: Vec::new(),
            timeout,
            counters: Arc::new(WireCounters::default()),
            label,
        }
    }

    /// Takes the stream out (for a TLS or compression upgrade) with the bytes already read
    /// past the last complete message.
    pub fn take_stream(&mut self) -> Result<(BoxStream, Vec<u8>), ImapError> {
        let leftover = self.inbuf[self.start..].to_vec();
        self.inbuf.clear();
        self.start = 0;
        self.frag = Fragmentizer::new(self.max_message);
        self.literal_left = None;
        let s = self.stream.take().ok_or(ImapError::Closed)?;
        Ok((s, leftover))
    }

    /// Puts an (upgraded) stream back.
    pub fn put_stream(&mut self, stream: BoxStream) {
        self.stream = Some(stream);
    }

    /// Queues a line (must end with CRLF) for sending.
    pub fn queue(&mut self, data: &[u8], log: Option<&str>) {
        if tracing::enabled!(target: "twinbox::imap", tracing::Level::DEBUG) {
            let shown = match log {
                Some(s) => s.to_string(),
                None => printable(data, 300),
            };
            tracing::debug!(target: "twinbox::imap", "{} C: {}", self.label, shown);
        }
        self.outbuf.extend_from_slice(data);
    }

    /// Queues literal data (never logged, only its size).
    pub fn queue_literal(&mut self, data: &[u8]) {
        tracing::trace!(target: "twinbox::imap", "{} C: <{} literal bytes>", self.label, data.len());
        self.outbuf.extend_from_slice(data);
    }

    /// Queues literal data of a redacted command (a password): not even its size is logged.
    pub fn queue_secret(&mut self, data: &[u8]) {
        tracing::trace!(target: "twinbox::imap", "{} C: <redacted literal>", self.label);
        self.outbuf.extend_from_slice(data);
    }

    /// Writes everything queued and flushes.
    pub async fn flush(&mut self) -> Result<(), ImapError> {
        let timeout = self.timeout;
        let stream = self.stream.as_mut().ok_or(ImapError::Closed)?;
        if !self.outbuf.is_empty() {
            write_progressing(stream, &self.outbuf, timeout, &self.counters).await?;
            if self.outbuf.capacity() > KEEP_BUFFER {
                self.outbuf = Vec::new();
            } else {
                self.outbuf.clear();
            }
        }
        tokio::time::timeout(timeout, stream.flush())
            .await
            .map_err(|_| ImapError::Timeout("sending"))?
            .map_err(ImapError::Io)?;
        Ok(())
    }

    /// Sends literal data: a small one is queued like [`Self::queue_literal`]; a large one
    /// is written straight from `data` after what is queued, without a copy in the send
    /// buffer (a 50 MB message must not be held twice).
    pub async fn send_literal(&mut self, data: &[u8]) -> Result<(), ImapError> {
        if data.len() <= CHUNK {
            self.queue_literal(data);
            return Ok(());
        }
        self.flush().await?;
        tracing::trace!(target: "twinbox::imap", "{} C: <{} literal bytes>", self.label, data.len());
        let timeout = self.timeout;
        let stream = self.stream.as_mut().ok_or(ImapError::Closed)?;
        write_progressing(stream, data, timeout, &self.counters).await
    }

    /// Reads until one whole message is framed. `wait` overrides the read timeout (IDLE).
    async fn frame(&mut self, wait: Option<Duration>) -> Result<(), ImapError> {
        let mut first = true;
        loop {
            match self.frag.progress() {
                Some(info) => {
                    match info {
                        FragmentInfo::Line { announcement, .. } => {
                            if let Some(a) = announcement {
                                if a.length > self.max_message {
                                    self.oversize = Some(a.length);
                                }
                                self.literal_left = Some(a.length);
                            } else {
                                self.literal_left = None;
                            }
                        }
                        FragmentInfo::Literal { .. } => self.literal_left = None,
                    }
                    if self.frag.is_message_complete() {
                        return Ok(());
                    }
                }
                None => {
                    // Feed the fragmentizer exactly what the current fragment needs, so
                    // bytes after a message stay in our buffer (see `take_stream`).
                    let avail = &self.inbuf[self.start..];
                    let n = match self.literal_left {
                        Some(left) => avail.len().min(left as usize),
                        None => match avail.iter().position(|&b| b == b'\n') {
                            Some(p) => p + 1,
                            None => avail.len(),
                        },
                    };
                    if n > 0 {
                        self.frag.enqueue_bytes(&avail[..n]);
                        self.start += n;
                        if let Some(left) = self.literal_left.as_mut() {
                            *left -= n as u32;
                        }
                        continue;
                    }
                    self.fill(if first { wait } else { None }).await?;
                    first = false;
                }
            }
        }
    }

    async fn fill(&mut self, wait: Option<Duration>) -> Result<(), ImapError> {
        if self.start == self.inbuf.len() {
            self.inbuf.clear();
            self.start = 0;
        } else if self.start > CHUNK {
            self.inbuf.drain(..self.start);
            self.start = 0;
        }
        let timeout = wait.unwrap_or(self.timeout);
        let stream = self.stream.as_mut().ok_or(ImapError::Closed)?;
        // `read_buf` appends only what was read: dropping this future at its await (a
        // `select!` taking another branch) loses nothing, so reads are cancel-safe.
        self.inbuf.reserve(CHUNK);
        let r = tokio::time::timeout(timeout, stream.read_buf(&mut self.inbuf)).await;
        let n = match r {
            Err(_) => return Err(ImapError::Timeout("waiting for the server")),
            Ok(Err(e)) => return Err(ImapError::Io(e)),
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            return Err(match self.oversize {
                Some(size) => ImapError::TooLarge {
                    size,
                    limit: self.max_message,
                },
                None => self.closed_error(),
            });
        }
        self.counters
            .bytes_in
            .fetch_add(n as u64, Ordering::Relaxed);
        Ok(())
    }

    /// The error for an end of stream: plain [`ImapError::Closed`] between messages,
    /// [`ImapError::Truncated`] (saying where) inside one.
    fn closed_error(&self) -> ImapError {
        let partial = self.frag.message_bytes();
        if partial.is_empty() {
            return ImapError::Closed;
        }
        let first_line = partial.split(|&b| b == b'\n').next().unwrap_or(partial);
        ImapError::Truncated(match self.literal_left {
            Some(left) => format!(
                "{left} bytes of a literal missing, after {}",
                printable(first_line, 120)
            ),
            None => format!("incomplete line {}", printable(partial, 120)),
        })
    }

    fn log_received(&self) {
        if tracing::enabled!(target: "twinbox::imap", tracing::Level::DEBUG) {
            tracing::debug!(target: "twinbox::imap", "{} S: {}", self.label, printable(self.frag.message_bytes(), 300));
        }
    }

    fn finish_message(&mut self) {
        if self.frag.message_bytes().len() > KEEP_BUFFER {
            // Release a large message's buffer; safe here because we feed the
            // fragmentizer only up to message boundaries.
            self.frag = Fragmentizer::new(self.max_message);
        }
        self.oversize = None;
    }

    fn check_size(&mut self) -> Result<(), ImapError> {
        if self.frag.is_max_message_size_exceeded() {
            let size = self.oversize.unwrap_or(self.max_message);
            self.finish_message();
            return Err(ImapError::TooLarge {
                size,
                limit: self.max_message,
            });
        }
        Ok(())
    }

    /// Reads the server greeting.
    pub async fn read_greeting(&mut self) -> Result<Greeting<'static>, ImapError> {
        self.frame(None).await?;
        self.log_received();
        self.check_size()?;
        let r = GreetingCodec::default()
            .decode(self.frag.message_bytes())
            .map(|(_, g)| g.into_static())
            .map_err(|_| ImapError::Malformed(printable(self.frag.message_bytes(), 200)));
        self.finish_message();
        r
    }

    /// Reads one response. `wait` overrides the timeout for the first byte (IDLE).
    pub async fn read_response(
        &mut self,
        wait: Option<Duration>,
    ) -> Result<Response<'static>, ImapError> {
        self.frame(wait).await?;
        self.log_received();
        self.check_size()?;
        let r = match self.frag.decode_message(&ResponseCodec::default()) {
            Ok(resp) => Ok(resp.into_static()),
            Err(DecodeMessageError::DecodingRemainder { .. })
            | Err(DecodeMessageError::DecodingFailure(_))
            | Err(DecodeMessageError::MessagePoisoned { .. }) => {
                // Known server deviations first (see `quirks`), else a clean error.
                super::quirks::lenient_decode(self.frag.message_bytes())
                    .ok_or_else(|| ImapError::Malformed(printable(self.frag.message_bytes(), 200)))
            }
            Err(DecodeMessageError::MessageTooLong { .. }) => Err(ImapError::TooLarge {
                size: self.oversize.unwrap_or(self.max_message),
                limit: self.max_message,
            }),
        };
        self.finish_message();
        r
    }

    /// Shuts the write side down.
    pub async fn shutdown(&mut self) {
        if let Some(s) = self.stream.as_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(2), s.shutdown()).await;
        }
    }
}

/// Renders bytes for a log line or an error: printable ASCII kept, the rest escaped, long
/// literals elided.
pub fn printable(data: &[u8], max: usize) -> String {
    let mut out = String::new();
    for &b in data.iter().take(max) {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if data.len() > max {
        out.push_str(&format!("... ({} bytes)", data.len()));
    }
    out
}
