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
use super::spool::{BodyRef, SpoolWriter, Spools, SPOOL_CHUNK, SPOOL_THRESHOLD};
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
/// Bytes of a line without its LF yet that are held back from the fragmentizer, so a
/// literal announcement at the line's end is seen whole before it is fed (`{`, ten
/// digits, `+}`, CR and some leading zeros).
const HOLD_BACK: usize = 64;

/// The literal announcement (`{n}` or `{n+}`) ending a line that ends with LF, as
/// imap-codec's fragmentizer reads it: where its `{` is, and `n`.
fn trailing_announcement(line: &[u8]) -> Option<(usize, u32)> {
    let line = line.strip_suffix(b"\n")?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = line.strip_suffix(b"}")?;
    let line = line.strip_suffix(b"+").unwrap_or(line);
    let digits = line.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let open = line.len() - digits - 1;
    if line.get(open) != Some(&b'{') {
        return None;
    }
    let mut n: u32 = 0;
    for &d in &line[open + 1..] {
        n = n.checked_mul(10)?.checked_add(u32::from(d - b'0'))?;
    }
    Some((open, n))
}

/// A large literal being written to a spool file as it arrives (`None` writer: over the
/// message size limit, read and dropped).
struct Spooling {
    writer: Option<SpoolWriter>,
    left: u32,
    marker: Vec<u8>,
}

/// A random number for spool placeholders, so a server cannot forge one.
fn random_nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

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
    /// Literals larger than this go to a spool file instead of memory.
    spool_threshold: usize,
    spooling: Option<Spooling>,
    /// The spooled literals of the current (or last complete) message.
    spools: Spools,
    /// Bytes spooled for the current message (they count against `max_message`).
    spooled_bytes: u64,
    /// The last message was complete: the next read starts a new one.
    complete: bool,
    nonce: u64,
    markers: u64,
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
            spool_threshold: SPOOL_THRESHOLD,
            spooling: None,
            spools: Spools::default(),
            spooled_bytes: 0,
            complete: false,
            nonce: random_nonce(),
            markers: 0,
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
        self.spooling = None;
        let s = self.stream.take().ok_or(ImapError::Closed)?;
        Ok((s, leftover))
    }

    /// Sets the size above which a literal goes to a spool file (tests).
    pub fn set_spool_threshold(&mut self, bytes: usize) {
        self.spool_threshold = bytes;
    }

    /// Takes the spooled literals of the message just read (placeholders stand in for
    /// them in the decoded response; see [`Spools::take`]).
    pub fn take_spools(&mut self) -> Spools {
        std::mem::take(&mut self.spools)
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

    /// Sends a message body as literal data: from memory like [`Self::send_literal`], or
    /// from its spool file in chunks (never whole in memory).
    pub async fn send_body(&mut self, body: BodyRef<'_>) -> Result<(), ImapError> {
        let spool = match body {
            BodyRef::Bytes(b) => return self.send_literal(b).await,
            BodyRef::Spool(s) => s,
        };
        self.flush().await?;
        tracing::trace!(target: "twinbox::imap", "{} C: <{} spooled literal bytes>", self.label, spool.len());
        let timeout = self.timeout;
        let stream = self.stream.as_mut().ok_or(ImapError::Closed)?;
        let mut buf = vec![0u8; SPOOL_CHUNK];
        let mut at = 0u64;
        while at < spool.len() {
            let n = spool.read_at(at, &mut buf).map_err(ImapError::Io)?;
            write_progressing(stream, &buf[..n], timeout, &self.counters).await?;
            at += n as u64;
        }
        Ok(())
    }

    /// Reads until one whole message is framed. `wait` overrides the read timeout (IDLE).
    async fn frame(&mut self, wait: Option<Duration>) -> Result<(), ImapError> {
        if self.complete {
            // Unclaimed spools of the last message are dropped (their files vanish).
            self.spools = Spools::default();
            self.spooled_bytes = 0;
            self.complete = false;
        }
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
                        self.complete = true;
                        return Ok(());
                    }
                }
                None => {
                    if self.spooling.is_some() {
                        if self.spool_some()? {
                            continue;
                        }
                        self.fill(if first { wait } else { None }).await?;
                        first = false;
                        continue;
                    }
                    // Feed the fragmentizer exactly what the current fragment needs, so
                    // bytes after a message stay in our buffer (see `take_stream`).
                    let avail = &self.inbuf[self.start..];
                    let n = match self.literal_left {
                        Some(left) => avail.len().min(left as usize),
                        None => match avail.iter().position(|&b| b == b'\n') {
                            Some(p) => p + 1,
                            None => avail.len().saturating_sub(HOLD_BACK),
                        },
                    };
                    if self.literal_left.is_none() && n > 0 && avail[n - 1] == b'\n' {
                        if let Some((open, len)) = trailing_announcement(&avail[..n]) {
                            if len as usize > self.spool_threshold && len <= self.max_message {
                                self.start_spooling(open, n, len)?;
                                continue;
                            }
                        }
                    }
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

    /// Feeds the fragmentizer the line `inbuf[start..start + n]` with its announcement of
    /// a `len`-byte literal (its `{` at `open`) replaced by one of a placeholder, and
    /// starts writing the literal to a spool file.
    fn start_spooling(&mut self, open: usize, n: usize, len: u32) -> Result<(), ImapError> {
        self.markers += 1;
        let marker = format!("twinbox-spool-{:016x}-{}", self.nonce, self.markers).into_bytes();
        let mut line = self.inbuf[self.start..self.start + open].to_vec();
        line.extend_from_slice(format!("{{{}}}\r\n", marker.len()).as_bytes());
        self.frag.enqueue_bytes(&line);
        self.start += n;
        let total = self.spooled_bytes + u64::from(len);
        let writer = if total <= u64::from(self.max_message) {
            Some(SpoolWriter::new().map_err(ImapError::Io)?)
        } else {
            // All spooled literals of one message together are over the limit.
            self.oversize = Some(u32::try_from(total).unwrap_or(u32::MAX));
            None
        };
        self.spooled_bytes = total;
        tracing::trace!(target: "twinbox::imap", "{} S: <{len}-byte literal to a spool file>", self.label);
        self.spooling = Some(Spooling {
            writer,
            left: len,
            marker,
        });
        Ok(())
    }

    /// Moves buffered literal bytes into the spool; when the literal is complete, feeds
    /// the fragmentizer its placeholder. Returns whether anything was done.
    fn spool_some(&mut self) -> Result<bool, ImapError> {
        let Some(sp) = self.spooling.as_mut() else {
            return Ok(false);
        };
        let avail = &self.inbuf[self.start..];
        let n = avail.len().min(sp.left as usize);
        if let Some(w) = sp.writer.as_mut() {
            w.write(&avail[..n]).map_err(ImapError::Io)?;
        }
        self.start += n;
        sp.left -= n as u32;
        if sp.left > 0 {
            return Ok(n > 0);
        }
        if let Some(sp) = self.spooling.take() {
            self.frag.enqueue_bytes(&sp.marker);
            if let Some(w) = sp.writer {
                self.spools.insert(sp.marker, w.finish());
            }
        }
        Ok(true)
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
        // What the fragmentizer has, then the end of a line held back from it.
        let fed = self.frag.message_bytes();
        let held = &self.inbuf[self.start..];
        if fed.is_empty() && held.is_empty() {
            return ImapError::Closed;
        }
        let joined: Vec<u8>;
        let partial = if fed.len() >= 120 {
            fed
        } else {
            joined = fed.iter().chain(held.iter().take(240)).copied().collect();
            &joined
        };
        let first_line = partial.split(|&b| b == b'\n').next().unwrap_or(partial);
        let left = self.spooling.as_ref().map(|s| s.left).or(self.literal_left);
        ImapError::Truncated(match left {
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
        let spooled_over = self.spooled_bytes > u64::from(self.max_message);
        if self.frag.is_max_message_size_exceeded() || spooled_over {
            self.spools = Spools::default();
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

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
