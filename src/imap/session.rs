//! An IMAP client session: connection set-up (greeting, STARTTLS, authentication,
//! compression, ENABLE) and pipelined command execution over a [`Wire`].
//!
//! Typed commands are encoded by imap-codec; the few it lacks (LIST-STATUS, MULTIAPPEND)
//! are assembled from fragments here. High-level commands live in [`super::commands`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::Duration;

use base64::Engine;
use imap_codec::encode::{Encoder, Fragment};
use imap_codec::CommandCodec;
use imap_types::command::{Command, CommandBody};
use imap_types::core::Vec1;
use imap_types::extensions::compress::CompressionAlgorithm;
use imap_types::extensions::enable::CapabilityEnable;
use imap_types::response::{
    Code, Data, GreetingKind, Response, Status, StatusBody, StatusKind, Tagged,
};

use super::error::ImapError;
use super::transport::{self, CloseFuture, SshOptions, TlsOptions, Transport};
use super::types::Capabilities;
use super::wire::Wire;

/// A password that never shows in logs or debug output.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(s: impl Into<String>) -> Self {
        Password(s.into())
    }
    /// The password itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// How a TCP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// No TLS (loopback, or explicitly allowed).
    Plain,
    /// Implicit TLS (imaps).
    Tls,
    /// STARTTLS, required: the session is refused if it cannot be upgraded.
    StartTls,
}

/// When to use COMPRESS=DEFLATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// When offered and the connection crosses a network (not loopback, not a local tunnel).
    #[default]
    Auto,
    /// Whenever offered.
    Always,
    /// Never.
    Never,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// A TCP connection.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
        /// TLS mode.
        security: Security,
    },
    /// A local command speaking IMAP on stdin/stdout.
    Tunnel {
        /// Shell command.
        command: String,
        /// Whether the server greets PREAUTH (`preauthtunnel`) or must be logged into
        /// (`transporttunnel`).
        preauth: bool,
    },
    /// A remote PREAUTH command over ssh.
    Ssh(SshOptions),
}

/// Everything needed to open a session.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// Certificate checks for TLS and STARTTLS.
    pub tls: TlsOptions,
    /// Login name (not needed for PREAUTH).
    pub user: Option<String>,
    /// Password (not needed for PREAUTH).
    pub password: Option<Password>,
    /// SASL mechanisms in order of preference; `LOGIN` means the IMAP LOGIN command.
    pub auth_mechanisms: Vec<String>,
    /// When to use COMPRESS=DEFLATE.
    pub compress: Compression,
    /// Allow sending a password without TLS to a host that is not on loopback.
    pub allow_plaintext_login: bool,
    /// Time allowed for connecting and for each read or write.
    pub timeout: Duration,
    /// Largest message accepted from the server, in bytes.
    pub max_message_size: u32,
    /// Capabilities to ignore even if advertised (a server that breaks them).
    pub disabled_capabilities: Vec<String>,
    /// Send ID (RFC 2971) when offered.
    pub send_id: bool,
    /// A label for log lines.
    pub label: String,
}

impl ConnectOptions {
    /// Options for a TCP endpoint with defaults for the rest.
    pub fn tcp(host: &str, port: u16, security: Security) -> Self {
        Self::new(Endpoint::Tcp {
            host: host.to_string(),
            port,
            security,
        })
    }

    /// Options for an endpoint with defaults for the rest.
    pub fn new(endpoint: Endpoint) -> Self {
        ConnectOptions {
            endpoint,
            tls: TlsOptions::default(),
            user: None,
            password: None,
            auth_mechanisms: vec!["PLAIN".into(), "LOGIN".into()],
            compress: Compression::Auto,
            allow_plaintext_login: false,
            timeout: Duration::from_secs(120),
            max_message_size: 256 * 1024 * 1024,
            disabled_capabilities: Vec::new(),
            send_id: true,
            label: String::new(),
        }
    }
}

/// An untagged response handed to a command's collector.
#[derive(Debug, Clone)]
pub enum Untagged {
    /// Data (`* LIST`, `* FETCH`, `* VANISHED`, ...).
    Data(Data<'static>),
    /// An untagged status (`* OK [UIDNEXT 5]`, `* NO ...`).
    Status(StatusBody<'static>),
}

/// A command sent and not yet completed.
#[derive(Debug)]
#[must_use = "a sent command must be finished"]
pub struct Pending {
    tag: String,
    name: &'static str,
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
    fn from_body(body: StatusBody<'static>) -> Self {
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
    /// Literal data, announced as `{n}` or `{n+}` as the server allows.
    Literal(&'a [u8]),
}

/// An authenticated (or PREAUTH) IMAP session.
pub struct Session {
    pub(crate) wire: Wire,
    caps: Capabilities,
    next_tag: u32,
    ahead: VecDeque<Response<'static>>,
    done: HashMap<String, Completion>,
    on_close: Option<Box<dyn FnOnce() -> CloseFuture + Send>>,
    bye: Option<String>,
    /// QRESYNC was enabled.
    pub qresync: bool,
    /// CONDSTORE is usable (advertised, or implied by QRESYNC).
    pub condstore: bool,
    /// COMPRESS=DEFLATE is active.
    pub compressed: bool,
    /// The stream is encrypted (TLS or ssh).
    pub encrypted: bool,
    pub(crate) selected: Option<Vec<u8>>,
}

impl Session {
    /// Connects, secures, authenticates and enables extensions.
    pub async fn connect(opts: &ConnectOptions) -> Result<Session, anyhow::Error> {
        let (t, host, security, preauth_expected) = match &opts.endpoint {
            Endpoint::Tcp {
                host,
                port,
                security,
            } => {
                let t = match security {
                    Security::Tls => {
                        transport::tls::connect(host, *port, opts.timeout, &opts.tls).await?
                    }
                    _ => transport::tcp::connect(host, *port, opts.timeout).await?,
                };
                (t, host.clone(), *security, false)
            }
            Endpoint::Tunnel { command, preauth } => (
                transport::tunnel::spawn(command).await?,
                String::new(),
                Security::Plain,
                *preauth,
            ),
            Endpoint::Ssh(ssh) => (
                transport::ssh::connect(ssh).await?,
                ssh.host.clone(),
                Security::Plain,
                true,
            ),
        };
        let Transport {
            stream,
            on_close,
            remote_network,
            encrypted,
        } = t;
        let label = if opts.label.is_empty() {
            "imap".to_string()
        } else {
            opts.label.clone()
        };
        let mut s = Session {
            wire: Wire::new(stream, opts.max_message_size, opts.timeout, label),
            caps: Capabilities::default(),
            next_tag: 1,
            ahead: VecDeque::new(),
            done: HashMap::new(),
            on_close,
            bye: None,
            qresync: false,
            condstore: false,
            compressed: false,
            encrypted,
            selected: None,
        };
        let r = s
            .establish(opts, &host, security, preauth_expected, remote_network)
            .await;
        if let Err(e) = r {
            s.close_transport().await;
            return Err(e);
        }
        Ok(s)
    }

    async fn establish(
        &mut self,
        opts: &ConnectOptions,
        host: &str,
        security: Security,
        preauth_expected: bool,
        remote_network: bool,
    ) -> anyhow::Result<()> {
        let greeting = self.wire.read_greeting().await.map_err(|e| match e {
            ImapError::Closed => anyhow::anyhow!(
                "the server closed the connection before greeting (wrong port, TLS mismatch, or tunnel command failed)"
            ),
            e => anyhow::Error::from(e).context("reading the server greeting"),
        })?;
        if let Some(Code::Capability(c)) = &greeting.code {
            self.caps = Capabilities::from_imap(c.as_ref());
        }
        let mut authenticated = match greeting.kind {
            GreetingKind::Bye => {
                anyhow::bail!("the server refused the connection: {}", greeting.text)
            }
            GreetingKind::PreAuth => {
                if security == Security::StartTls {
                    anyhow::bail!(
                        "the server greeted PREAUTH on a connection where STARTTLS is required: \
                         refusing to continue unencrypted (a man in the middle can do this)"
                    );
                }
                true
            }
            GreetingKind::Ok => {
                if preauth_expected {
                    anyhow::bail!("the tunnel's server greeted OK, not PREAUTH: use transporttunnel and credentials instead of preauthtunnel");
                }
                false
            }
        };
        if security == Security::StartTls {
            self.starttls(host, &opts.tls).await?;
        }
        if self.caps.is_empty() {
            self.refresh_capabilities().await?;
        }
        if !authenticated {
            if !self.encrypted && remote_network && !opts.allow_plaintext_login {
                anyhow::bail!(
                    "refusing to send a password unencrypted to {host}: use ssl or starttls \
                     (or allow plaintext explicitly for this repository)"
                );
            }
            self.authenticate(opts).await?;
            authenticated = true;
        }
        debug_assert!(authenticated);
        for c in &opts.disabled_capabilities {
            self.caps.remove(c);
        }
        let want = match opts.compress {
            Compression::Always => true,
            Compression::Auto => remote_network,
            Compression::Never => false,
        };
        if want && self.caps.has("COMPRESS=DEFLATE") && !self.compressed {
            self.start_compression().await?;
        }
        self.enable_extensions(opts.send_id).await?;
        Ok(())
    }

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

    async fn starttls(&mut self, host: &str, tls: &TlsOptions) -> anyhow::Result<()> {
        if !self.caps.has("STARTTLS") {
            self.refresh_capabilities().await?;
        }
        if !self.caps.has("STARTTLS") {
            anyhow::bail!("STARTTLS is required but the server does not offer it: refusing to continue unencrypted");
        }
        let p = self.send(CommandBody::StartTLS, "STARTTLS").await?;
        let c = self.finish(p, &mut |_| Ok(())).await?;
        c.ok("STARTTLS")
            .map_err(|e| anyhow::anyhow!("{e}: refusing to continue unencrypted"))?;
        let (stream, leftover) = self.wire.take_stream()?;
        if !leftover.is_empty() || !self.ahead.is_empty() {
            tracing::warn!(
                "discarded {} bytes the server sent after STARTTLS before the TLS handshake (possible injection)",
                leftover.len()
            );
            self.ahead.clear();
        }
        let stream =
            tokio::time::timeout(self.wire.timeout, transport::tls::wrap(stream, host, tls))
                .await
                .map_err(|_| anyhow::anyhow!("timed out in the TLS handshake after STARTTLS"))??;
        self.wire.put_stream(stream);
        self.encrypted = true;
        // Capabilities from before TLS must not be trusted.
        self.refresh_capabilities().await?;
        Ok(())
    }

    async fn authenticate(&mut self, opts: &ConnectOptions) -> anyhow::Result<()> {
        let user = opts
            .user
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("the server needs a login but no user is configured"))?;
        let pass = opts
            .password
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the server needs a password but none is configured"))?;
        let offered = self.caps.auth_mechanisms();
        let mut tried = Vec::new();
        for mech in &opts.auth_mechanisms {
            let mech = mech.to_ascii_uppercase();
            let completion = match mech.as_str() {
                "PLAIN" if offered.iter().any(|m| m == "PLAIN") => {
                    self.auth_plain(user, pass).await?
                }
                "LOGIN" if !self.caps.has("LOGINDISABLED") => {
                    let body = CommandBody::login(user, pass.expose()).map_err(|_| {
                        anyhow::anyhow!("user name or password cannot be sent with LOGIN")
                    })?;
                    let p = self
                        .send_logged(body, "LOGIN", Some("LOGIN <redacted>"))
                        .await?;
                    self.finish(p, &mut |_| Ok(())).await?
                }
                _ => continue,
            };
            tried.push(mech.clone());
            match completion.kind {
                StatusKind::Ok => {
                    if let Some(Code::Capability(c)) = &completion.code {
                        self.caps = Capabilities::from_imap(c.as_ref());
                    } else {
                        self.refresh_capabilities().await?;
                    }
                    return Ok(());
                }
                _ => anyhow::bail!(
                    "authentication as {user} failed ({mech}): {}",
                    completion.text
                ),
            }
        }
        anyhow::bail!(
            "no usable authentication mechanism: configured {:?}, server offers {:?}{}",
            opts.auth_mechanisms,
            offered,
            if self.caps.has("LOGINDISABLED") {
                " and LOGINDISABLED"
            } else {
                ""
            }
        )
    }

    async fn auth_plain(&mut self, user: &str, pass: &Password) -> anyhow::Result<Completion> {
        let mut ir = Vec::with_capacity(user.len() + pass.expose().len() + 2);
        ir.push(0);
        ir.extend_from_slice(user.as_bytes());
        ir.push(0);
        ir.extend_from_slice(pass.expose().as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(&ir);
        let tag = self.tag();
        if self.caps.has("SASL-IR") {
            let line = format!("{tag} AUTHENTICATE PLAIN {b64}\r\n");
            self.wire.queue(
                line.as_bytes(),
                Some(&format!("{tag} AUTHENTICATE PLAIN <redacted>")),
            );
            self.count_command();
        } else {
            let line = format!("{tag} AUTHENTICATE PLAIN\r\n");
            self.wire.queue(line.as_bytes(), None);
            self.count_command();
            self.wire.flush().await?;
            match self.wait_continuation(&tag).await? {
                Some(c) => return Ok(c),
                None => {
                    let line = format!("{b64}\r\n");
                    self.wire.queue(line.as_bytes(), Some("<redacted>"));
                }
            }
        }
        let p = Pending {
            tag,
            name: "AUTHENTICATE",
        };
        Ok(self.finish(p, &mut |_| Ok(())).await?)
    }

    async fn start_compression(&mut self) -> anyhow::Result<()> {
        let p = self
            .send(
                CommandBody::Compress {
                    algorithm: CompressionAlgorithm::Deflate,
                },
                "COMPRESS",
            )
            .await?;
        let c = self.finish(p, &mut |_| Ok(())).await?;
        if c.kind != StatusKind::Ok {
            tracing::info!("server refused COMPRESS: {}", c.text);
            return Ok(());
        }
        let (stream, leftover) = self.wire.take_stream()?;
        let s = transport::compress::DeflateStream::new(stream, leftover);
        self.wire.put_stream(Box::new(s));
        self.compressed = true;
        Ok(())
    }

    async fn enable_extensions(&mut self, send_id: bool) -> anyhow::Result<()> {
        let mut pending = Vec::new();
        if self.caps.has("ENABLE") && self.caps.has("QRESYNC") {
            let qr = CapabilityEnable::try_from("QRESYNC")
                .map_err(|_| anyhow::anyhow!("internal: ENABLE"))?;
            let caps =
                Vec1::try_from(vec![qr]).map_err(|_| anyhow::anyhow!("internal: empty ENABLE"))?;
            pending.push(
                self.send(CommandBody::Enable { capabilities: caps }, "ENABLE")
                    .await?,
            );
        }
        if send_id && self.caps.has("ID") {
            let id = CommandBody::Id {
                parameters: Some(vec![
                    (
                        imap_types::core::IString::try_from("name")
                            .map_err(|_| anyhow::anyhow!("internal: ID"))?,
                        imap_types::core::NString::try_from("twinbox")
                            .map_err(|_| anyhow::anyhow!("internal: ID"))?,
                    ),
                    (
                        imap_types::core::IString::try_from("version")
                            .map_err(|_| anyhow::anyhow!("internal: ID"))?,
                        imap_types::core::NString::try_from(env!("CARGO_PKG_VERSION"))
                            .map_err(|_| anyhow::anyhow!("internal: ID"))?,
                    ),
                ]),
            };
            pending.push(self.send(id, "ID").await?);
        }
        let mut qresync = false;
        for p in pending {
            let name = p.name;
            let c = self
                .finish(p, &mut |u| {
                    if let Untagged::Data(Data::Enabled { capabilities }) = &u {
                        if capabilities
                            .iter()
                            .any(|c| c.to_string().eq_ignore_ascii_case("QRESYNC"))
                        {
                            qresync = true;
                        }
                    }
                    Ok(())
                })
                .await?;
            if c.kind != StatusKind::Ok {
                tracing::info!("{name} refused: {}", c.text);
            }
        }
        self.qresync = qresync;
        self.condstore = qresync || self.caps.has("CONDSTORE");
        Ok(())
    }

    fn tag(&mut self) -> String {
        let t = format!("T{}", self.next_tag);
        self.next_tag += 1;
        t
    }

    fn count_command(&self) {
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

    async fn send_logged(
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
                    let plus = self.can_literal_plus(data.len());
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
                    self.wire.queue_literal(data);
                }
            }
        }
        line.extend_from_slice(b"\r\n");
        self.wire.queue(&line, None);
        Ok(Pending { tag, name })
    }

    /// Waits for a continuation request; `Some(completion)` if the command was completed
    /// (rejected) instead.
    async fn wait_continuation(&mut self, tag: &str) -> Result<Option<Completion>, ImapError> {
        loop {
            let r = self.read().await?;
            match r {
                Response::CommandContinuationRequest(_) => return Ok(None),
                Response::Status(Status::Tagged(t)) if t.tag.inner() == tag => {
                    return Ok(Some(Completion::from_body(t.body)));
                }
                other => self.ahead.push_back(other),
            }
        }
    }

    async fn read(&mut self) -> Result<Response<'static>, ImapError> {
        match self.wire.read_response(None).await {
            Err(ImapError::Closed) => Err(match &self.bye {
                Some(t) => ImapError::Bye(t.clone()),
                None => ImapError::Closed,
            }),
            r => r,
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
            let r = match self.ahead.pop_front() {
                Some(r) => r,
                None => self.read().await?,
            };
            match r {
                Response::Status(Status::Tagged(Tagged { tag, body })) => {
                    let c = Completion::from_body(body);
                    if tag.inner() == p.tag {
                        return Ok(c);
                    }
                    self.done.insert(tag.inner().to_string(), c);
                }
                Response::Status(Status::Untagged(body)) => sink(Untagged::Status(body))?,
                Response::Status(Status::Bye(b)) => {
                    self.bye = Some(b.text.to_string());
                }
                Response::Data(d) => sink(Untagged::Data(d))?,
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

    /// Reads one response with a custom wait (IDLE).
    pub(crate) async fn read_with_wait(
        &mut self,
        wait: Duration,
    ) -> Result<Response<'static>, ImapError> {
        if let Some(r) = self.ahead.pop_front() {
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

    async fn close_transport(&mut self) {
        self.wire.shutdown().await;
        if let Some(f) = self.on_close.take() {
            f().await;
        }
    }
}
