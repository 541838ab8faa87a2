//! An IMAP client session: connection set-up (greeting, STARTTLS, authentication,
//! compression, ENABLE) and pipelined command execution over a [`Wire`].
//!
//! Typed commands are encoded by imap-codec; the few it lacks (LIST-STATUS, MULTIAPPEND)
//! are assembled from fragments here. High-level commands live in [`super::commands`].

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use imap_codec::encode::{Encoder, Fragment};
use imap_codec::CommandCodec;
use imap_types::command::{Command, CommandBody};
use imap_types::response::{Code, Data, Response, Status, StatusBody, StatusKind, Tagged};

use super::error::ImapError;
use super::spool::Spools;
use super::transport::CloseFuture;
use super::types::Capabilities;
use super::wire::Wire;

pub use super::connect::{Compression, ConnectOptions, Endpoint, Password, Security};

/// An untagged response handed to a command's collector.
#[derive(Debug, Clone)]
pub enum Untagged {
    /// Data (`* LIST`, `* FETCH`, `* VANISHED`, ...).
    Data(Data<'static>),
    /// Data with literals too large for memory (a `BODY[]` of many megabytes): each is in a
    /// spool file, and a placeholder stands for it in the data (see [`Spools::take`]).
    Spooled(Data<'static>, Spools),
    /// An untagged status (`* OK [UIDNEXT 5]`, `* NO ...`).
    Status(StatusBody<'static>),
}

/// A command sent and not yet completed.
#[derive(Debug)]
#[must_use = "a sent command must be finished"]
pub struct Pending {
    pub(crate) tag: String,
    pub(crate) name: &'static str,
}

/// The tagged completion of a command.
#[derive(Debug, Clone)]
pub struct Completion {
    /// OK, NO or BAD.
    pub kind: StatusKind,
    /// Response code, if any.
    pub code: Option<Code<'static>>,
    /// Human-readable text.
    pub text: String,
}

impl Completion {
    pub(crate) fn from_body(body: StatusBody<'static>) -> Self {
        Completion {
            kind: body.kind,
            code: body.code,
            text: body.text.to_string(),
        }
    }

    /// Turns NO/BAD into an error naming the command.
    pub fn ok(self, command: &str) -> Result<Completion, ImapError> {
        match self.kind {
            StatusKind::Ok => Ok(self),
            k => Err(ImapError::Command {
                command: command.to_string(),
                status: match k {
                    StatusKind::No => "NO".into(),
                    _ => "BAD".into(),
                },
                text: self.text,
            }),
        }
    }
}

/// One piece of a command to send.
#[derive(Debug)]
pub enum Piece<'a> {
    /// Line text (the final CRLF is added by `send_pieces` at the end of the command).
    Text(std::borrow::Cow<'a, [u8]>),
    /// Literal data, announced as `{n}` or `{n+}` as the server allows; a spooled body is
    /// sent from its file in chunks.
    Literal(super::spool::BodyRef<'a>),
}

/// An authenticated (or PREAUTH) IMAP session.
pub struct Session {
    pub(crate) wire: Wire,
    pub(crate) caps: Capabilities,
    pub(crate) next_tag: u32,
    pub(crate) ahead: VecDeque<(Response<'static>, Spools)>,
    pub(crate) done: HashMap<String, Completion>,
    pub(crate) on_close: Option<Box<dyn FnOnce() -> CloseFuture + Send>>,
    pub(crate) bye: Option<String>,
    /// QRESYNC is in use: advertised with ENABLE, and enabled before the first
    /// SELECT/EXAMINE (false again if the server does not grant it then).
    pub qresync: bool,
    /// CONDSTORE is usable (advertised, or implied by QRESYNC).
    pub condstore: bool,
    /// COMPRESS=DEFLATE is active.
    pub compressed: bool,
    /// The stream is encrypted (TLS or ssh).
    pub encrypted: bool,
    pub(crate) selected: Option<Vec<u8>>,
    /// `* n EXISTS` responses received on this connection (a FETCH of a UID at or above
    /// the UIDNEXT of a SELECT is plausible only after one announced a new message).
    pub exists_seen: u64,
    /// `* n EXPUNGE` and `* VANISHED` (not EARLIER) responses received on this connection.
    pub expunges_seen: u64,
    /// `ENABLE QRESYNC` is still to be sent (with the first SELECT/EXAMINE).
    pub(crate) enable_due: bool,
    /// Compressed-side totals once COMPRESS=DEFLATE is active, with the session counters'
    /// (in, out) at the moment it started.
    pub(crate) compress_stats: Option<(super::transport::CompressStats, u64, u64)>,
}

impl Session {
    /// The server's capabilities (after authentication, minus disabled ones).
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// Whether the server offers a capability.
    pub fn has(&self, cap: &str) -> bool {
        self.caps.has(cap)
    }

    /// Byte and command counters of this connection.
    pub fn counters(&self) -> std::sync::Arc<super::wire::WireCounters> {
        self.wire.counters.clone()
    }

    /// Bytes (received, sent) that crossed the transport under the session: the compressed
    /// bytes once COMPRESS=DEFLATE is active (plus what went before it), else the same as
    /// [`Self::counters`]. Above TLS and tunnels: what the IMAP layer handed them.
    pub fn transport_bytes(&self) -> (u64, u64) {
        let (bytes_in, bytes_out, _) = self.wire.counters.snapshot();
        match &self.compress_stats {
            Some((stats, base_in, base_out)) => {
                (base_in + stats.wire.read(), base_out + stats.wire.written())
            }
            None => (bytes_in, bytes_out),
        }
    }

    /// Sets the per-read timeout.
    pub fn set_timeout(&mut self, t: Duration) {
        self.wire.timeout = t;
    }

    /// Re-reads CAPABILITY.
    pub async fn refresh_capabilities(&mut self) -> Result<(), ImapError> {
        let mut caps = None;
        let p = self.send(CommandBody::Capability, "CAPABILITY").await?;
        let c = self
            .finish(p, &mut |u| {
                if let Untagged::Data(Data::Capability(c)) = u {
                    caps = Some(Capabilities::from_imap(c.as_ref()));
                }
                Ok(())
            })
            .await?;
        c.ok("CAPABILITY")?;
        self.caps = caps.ok_or_else(|| ImapError::Protocol("no CAPABILITY response".into()))?;
        Ok(())
    }

    pub(crate) fn tag(&mut self) -> String {
        let t = format!("T{}", self.next_tag);
        self.next_tag += 1;
        t
    }

    /// Whether `tag` names a command this session has sent.
    fn issued(&self, tag: &str) -> bool {
        tag.strip_prefix('T')
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n >= 1 && n < self.next_tag)
    }

    pub(crate) fn count_command(&self) {
        self.wire
            .counters
            .commands
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn can_literal_plus(&self, len: usize) -> bool {
        self.caps.has("LITERAL+") || (self.caps.has("LITERAL-") && len <= 4096)
    }

    /// Queues a typed command (waiting for continuations where a synchronising literal
    /// needs one); returns the handle to finish it with.
    pub async fn send(
        &mut self,
        body: CommandBody<'_>,
        name: &'static str,
    ) -> Result<Pending, ImapError> {
        self.send_logged(body, name, None).await
    }

    pub(crate) async fn send_logged(
        &mut self,
        body: CommandBody<'_>,
        name: &'static str,
        log: Option<&str>,
    ) -> Result<Pending, ImapError> {
        let tag = self.tag();
        let cmd = Command::new(tag.as_str(), body)
            .map_err(|_| ImapError::Protocol(format!("cannot encode {name}")))?;
        let frags: Vec<Fragment> = CommandCodec::default().encode(&cmd).collect();
        let log = log.map(|l| format!("{tag} {l}"));
        self.count_command();
        for (i, f) in frags.into_iter().enumerate() {
            match f {
                Fragment::Line { data } => {
                    let data = self.promote_literal(data);
                    let shown = match (&log, i) {
                        (Some(l), 0) => Some(l.as_str()),
                        (Some(_), _) => Some("<redacted>"),
                        _ => None,
                    };
                    self.wire.queue(&data, shown);
                    if data.ends_with(b"}\r\n") && !data.ends_with(b"+}\r\n") {
                        self.wire.flush().await?;
                        if let Some(c) = self.wait_continuation(&tag).await? {
                            self.done.insert(tag.clone(), c);
                            return Ok(Pending { tag, name });
                        }
                    }
                }
                Fragment::Literal { data, .. } if log.is_some() => self.wire.queue_secret(&data),
                Fragment::Literal { data, .. } => self.wire.queue_literal(&data),
            }
        }
        Ok(Pending { tag, name })
    }

    /// Rewrites a trailing `{n}\r\n` into `{n+}\r\n` (the server offers LITERAL+).
    fn promote_literal(&self, mut line: Vec<u8>) -> Vec<u8> {
        if !line.ends_with(b"}\r\n") {
            return line;
        }
        let Some(open) = line.iter().rposition(|&b| b == b'{') else {
            return line;
        };
        let inner = &line[open + 1..line.len() - 3];
        if inner.last() == Some(&b'+') || !inner.iter().all(u8::is_ascii_digit) {
            return line;
        }
        let len: usize = std::str::from_utf8(inner)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(usize::MAX);
        if self.can_literal_plus(len) {
            let at = line.len() - 3;
            line.insert(at, b'+');
        }
        line
    }

    /// Sends a command assembled from pieces (for commands imap-codec cannot encode, and
    /// for APPEND). Synchronising literals are sent after the server's continuation; a
    /// NO/BAD instead of a continuation completes the command early.
    pub async fn send_pieces(
        &mut self,
        name: &'static str,
        pieces: &[Piece<'_>],
    ) -> Result<Pending, ImapError> {
        let tag = self.tag();
        let mut line = format!("{tag} ").into_bytes();
        self.count_command();
        for piece in pieces {
            match piece {
                Piece::Text(t) => line.extend_from_slice(t),
                Piece::Literal(data) => {
                    let len = usize::try_from(data.len()).unwrap_or(usize::MAX);
                    let plus = self.can_literal_plus(len);
                    line.extend_from_slice(
                        format!("{{{}{}}}\r\n", data.len(), if plus { "+" } else { "" }).as_bytes(),
                    );
                    self.wire.queue(&line, None);
                    line.clear();
                    if !plus {
                        self.wire.flush().await?;
                        if let Some(c) = self.wait_continuation(&tag).await? {
                            // Rejected before the literal: nothing more of this command
                            // may be sent.
                            self.done.insert(tag.clone(), c);
                            return Ok(Pending { tag, name });
                        }
                    }
                    self.wire.send_body(*data).await?;
                }
            }
        }
        line.extend_from_slice(b"\r\n");
        self.wire.queue(&line, None);
        Ok(Pending { tag, name })
    }

    /// Waits for a continuation request; `Some(completion)` if the command was completed
    /// (rejected) instead.
    pub(crate) async fn wait_continuation(
        &mut self,
        tag: &str,
    ) -> Result<Option<Completion>, ImapError> {
        loop {
            let (r, spools) = self.read().await?;
            match r {
                Response::CommandContinuationRequest(_) => return Ok(None),
                Response::Status(Status::Tagged(t)) if t.tag.inner() == tag => {
                    return Ok(Some(Completion::from_body(t.body)));
                }
                other => self.ahead.push_back((other, spools)),
            }
        }
    }

    /// Reads one response with its spooled literals.
    async fn read(&mut self) -> Result<(Response<'static>, Spools), ImapError> {
        match self.wire.read_response(None).await {
            Err(ImapError::Closed) => Err(match &self.bye {
                Some(t) => ImapError::Bye(t.clone()),
                None => ImapError::Closed,
            }),
            Err(e) => Err(e),
            Ok(r) => Ok((r, self.wire.take_spools())),
        }
    }

    /// Flushes queued commands to the server.
    pub async fn flush(&mut self) -> Result<(), ImapError> {
        self.wire.flush().await
    }

    /// Reads responses until `p` completes, handing untagged ones to `sink`. Completions of
    /// other pipelined commands are kept for their own `finish`.
    pub async fn finish(
        &mut self,
        p: Pending,
        sink: &mut (dyn FnMut(Untagged) -> Result<(), ImapError> + Send),
    ) -> Result<Completion, ImapError> {
        self.wire.flush().await?;
        loop {
            if let Some(c) = self.done.remove(&p.tag) {
                return Ok(c);
            }
            let (r, spools) = match self.ahead.pop_front() {
                Some(r) => r,
                None => self.read().await?,
            };
            match r {
                Response::Status(Status::Tagged(Tagged { tag, body })) => {
                    let c = Completion::from_body(body);
                    if tag.inner() == p.tag {
                        return Ok(c);
                    }
                    if self.issued(tag.inner()) {
                        self.done.insert(tag.inner().to_string(), c);
                    } else {
                        // A completion for a command not sent yet can only be forged (e.g.
                        // injected before STARTTLS): it must not answer that command later.
                        tracing::warn!(
                            "{}: ignored a completion for tag {} that was never sent: {} {}",
                            self.wire.label,
                            tag.inner(),
                            format!("{:?}", c.kind).to_ascii_uppercase(),
                            c.text
                        );
                    }
                }
                Response::Status(Status::Untagged(body)) => sink(Untagged::Status(body))?,
                Response::Status(Status::Bye(b)) => {
                    self.bye = Some(b.text.to_string());
                }
                Response::Data(d) => {
                    match &d {
                        Data::Exists(_) => self.exists_seen += 1,
                        Data::Expunge(_) | Data::Vanished { earlier: false, .. } => {
                            self.expunges_seen += 1
                        }
                        _ => {}
                    }
                    if spools.is_empty() {
                        sink(Untagged::Data(d))?
                    } else {
                        sink(Untagged::Spooled(d, spools))?
                    }
                }
                Response::CommandContinuationRequest(_) => {
                    return Err(ImapError::Protocol(format!(
                        "unexpected continuation request during {}",
                        p.name
                    )));
                }
            }
        }
    }

    /// Sends a typed command and waits for it, ignoring untagged data; NO/BAD is an error.
    pub async fn simple(
        &mut self,
        body: CommandBody<'_>,
        name: &'static str,
    ) -> Result<Completion, ImapError> {
        let p = self.send(body, name).await?;
        self.finish(p, &mut |_| Ok(())).await?.ok(name)
    }

    /// Reads one response with a custom wait (IDLE). Cancel-safe: dropped while waiting, it
    /// loses no input, and the next read carries on.
    pub(crate) async fn read_with_wait(
        &mut self,
        wait: Duration,
    ) -> Result<Response<'static>, ImapError> {
        if let Some((r, _)) = self.ahead.pop_front() {
            return Ok(r);
        }
        match self.wire.read_response(Some(wait)).await {
            Err(ImapError::Closed) => Err(match &self.bye {
                Some(t) => ImapError::Bye(t.clone()),
                None => ImapError::Closed,
            }),
            r => r,
        }
    }

    /// Queues raw line text (IDLE's DONE).
    pub(crate) fn queue_raw(&mut self, line: &[u8]) {
        self.wire.queue(line, None);
    }

    /// Allocates a tag for a command assembled by hand.
    pub(crate) fn raw_command(&mut self, name: &'static str, text: &str) -> Pending {
        let tag = self.tag();
        self.wire
            .queue(format!("{tag} {text}\r\n").as_bytes(), None);
        self.count_command();
        Pending { tag, name }
    }

    /// Logs out and closes the transport.
    pub async fn logout(mut self) -> Result<(), ImapError> {
        let r = match self.send(CommandBody::Logout, "LOGOUT").await {
            Ok(p) => match self.finish(p, &mut |_| Ok(())).await {
                Ok(_) | Err(ImapError::Bye(_)) | Err(ImapError::Closed) => Ok(()),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        self.close_transport().await;
        r
    }

    pub(crate) async fn close_transport(&mut self) {
        self.wire.shutdown().await;
        if let Some(f) = self.on_close.take() {
            f().await;
        }
    }
}
