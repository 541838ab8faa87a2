//! Opening a session: transport, greeting, STARTTLS, authentication, compression, ENABLE.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::Duration;

use base64::Engine;
use imap_types::command::CommandBody;
use imap_types::core::Vec1;
use imap_types::extensions::compress::CompressionAlgorithm;
use imap_types::extensions::enable::CapabilityEnable;
use imap_types::response::{Code, Data, GreetingKind, StatusKind};

use super::error::ImapError;
use super::session::{Completion, Pending, Session, Untagged};
use super::transport::{self, SshOptions, TlsOptions, Transport};
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
    /// Send ID (RFC 2971) when offered (`sendid`; off by default: it costs a round trip
    /// and about 200 bytes per session, and no server twinbox knows of needs it).
    pub send_id: bool,
    /// A label for log lines.
    pub label: String,
    /// `reference`: the folder root on the server, trimmed from names (store layer).
    pub reference: Option<String>,
    /// `namespaces`: namespace classes synced besides the personal one (store layer).
    pub namespaces: super::namespace::NamespaceChoice,
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
            send_id: false,
            label: String::new(),
            reference: None,
            namespaces: Default::default(),
        }
    }
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
            exists_seen: 0,
            expunges_seen: 0,
            enable_due: false,
            compress_stats: None,
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
        }
        // Nothing learnt before the upgrade survives it.
        self.ahead.clear();
        self.done.clear();
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
        let (base_in, base_out, _) = self.wire.counters.snapshot();
        self.compress_stats = Some((s.stats(), base_in, base_out));
        self.wire.put_stream(Box::new(s));
        self.compressed = true;
        Ok(())
    }

    /// Decides what the session will use; sends ID when asked. ENABLE QRESYNC is not sent
    /// here: [`Session::select`] pipelines it before the first SELECT/EXAMINE (RFC 7162
    /// allows ENABLE at any time in the authenticated state), so a session that selects
    /// nothing (a no-op resync) spends neither the command nor its answer.
    async fn enable_extensions(&mut self, send_id: bool) -> anyhow::Result<()> {
        let qresync = self.caps.has("ENABLE") && self.caps.has("QRESYNC");
        self.qresync = qresync;
        self.enable_due = qresync;
        self.condstore = qresync || self.caps.has("CONDSTORE");
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
            let p = self.send(id, "ID").await?;
            let c = self.finish(p, &mut |_| Ok(())).await?;
            if c.kind != StatusKind::Ok {
                tracing::info!("ID refused: {}", c.text);
            }
        }
        Ok(())
    }

    /// Queues `ENABLE QRESYNC` if it is due (before the session's first SELECT/EXAMINE);
    /// the caller finishes it with [`Self::finish_enable`].
    pub(crate) async fn queue_enable(&mut self) -> Result<Option<Pending>, ImapError> {
        if !self.enable_due {
            return Ok(None);
        }
        self.enable_due = false;
        let qr = CapabilityEnable::try_from("QRESYNC")
            .map_err(|_| ImapError::Protocol("internal: ENABLE".into()))?;
        let caps = Vec1::try_from(vec![qr])
            .map_err(|_| ImapError::Protocol("internal: empty ENABLE".into()))?;
        Ok(Some(
            self.send(CommandBody::Enable { capabilities: caps }, "ENABLE")
                .await?,
        ))
    }

    /// Reads the answer to a queued ENABLE; returns whether QRESYNC is now enabled (if not,
    /// the session falls back to CONDSTORE where offered).
    pub(crate) async fn finish_enable(&mut self, p: Pending) -> Result<bool, ImapError> {
        let mut qresync = false;
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
        if !qresync {
            tracing::info!(
                "{}: ENABLE QRESYNC not granted ({}): using CONDSTORE where offered",
                self.wire.label,
                c.text
            );
            self.qresync = false;
            self.condstore = self.caps.has("CONDSTORE");
        }
        Ok(qresync)
    }
}
