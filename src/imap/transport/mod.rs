//! Byte-stream transports under the IMAP session: TCP, TLS, tunnels, ssh, compression.
//!
//! Everything here yields a [`Transport`]: a boxed async byte stream plus an optional
//! close hook (for resources such as an ssh ControlMaster that must be shut down cleanly).
//! The IMAP session ([`crate::imap::session`]) speaks over it and never looks inside.
//!
//! Layers stack on the stream: [`tcp::connect`] or [`tls::connect`] (imaps), [`tls::wrap`]
//! after STARTTLS, [`compress::compress`] after COMPRESS=DEFLATE, and a [`CountingStream`]
//! wherever bytes should be counted (below compression for bytes on the wire).
//! [`tunnel::spawn`] and [`ssh::connect`] give a PREAUTH stream instead. Close with
//! [`Transport::close`] after LOGOUT.

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

/// Any bidirectional async byte stream.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A boxed byte stream.
pub type BoxStream = Box<dyn Io>;

/// A future run when a transport is closed.
pub type CloseFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A connected byte stream and what must be done when it is closed.
pub struct Transport {
    /// The stream the IMAP session reads and writes.
    pub stream: BoxStream,
    /// Run once at close (after LOGOUT), e.g. to close an ssh master connection.
    pub on_close: Option<Box<dyn FnOnce() -> CloseFuture + Send>>,
    /// Whether bytes travel over a network the user does not control (false for loopback
    /// TCP and local tunnels); decides the default for compression and plaintext LOGIN.
    pub remote_network: bool,
    /// Whether the stream is encrypted (TLS, or ssh).
    pub encrypted: bool,
}

impl Transport {
    /// A transport over `stream` with no close hook.
    pub fn new(stream: BoxStream, remote_network: bool, encrypted: bool) -> Self {
        Transport {
            stream,
            on_close: None,
            remote_network,
            encrypted,
        }
    }

    /// Drops the stream (the peer sees EOF), then runs the close hook, if any.
    ///
    /// Call it after LOGOUT. Dropping a `Transport` without calling this still releases
    /// everything, but less gracefully (a tunnel child is killed at once, an ssh master is
    /// closed from a background task).
    pub async fn close(self) {
        let Transport {
            stream, on_close, ..
        } = self;
        drop(stream);
        if let Some(hook) = on_close {
            hook().await;
        }
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("on_close", &self.on_close.is_some())
            .field("remote_network", &self.remote_network)
            .field("encrypted", &self.encrypted)
            .finish_non_exhaustive()
    }
}

/// Minimum TLS protocol version accepted (`tls_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersion {
    /// TLS 1.2 (the default).
    #[default]
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// A PEM file of CA certificates to trust *instead of* the system store
    /// (`sslcacertfile`): a private CA's users expect only it to vouch for their server.
    pub ca_file: Option<PathBuf>,
    /// SHA-256 fingerprints (hex, case-insensitive, colons optional, optional `sha256:`
    /// prefix) of the server's certificate or of its public key (DER SubjectPublicKeyInfo).
    /// When non-empty, a match on any of them is required and sufficient: CA and host name
    /// checks are then skipped (`cert_fingerprint`; how users accept a self-signed cert).
    pub fingerprints: Vec<String>,
    /// Minimum protocol version (`tls_level`).
    pub min_version: TlsVersion,
}

/// An ssh connection to run a remote PREAUTH IMAP command over (see [`ssh::connect`]).
#[derive(Debug, Clone)]
pub struct SshOptions {
    /// Host name or alias from ~/.ssh/config.
    pub host: String,
    /// Remote user, if not the ssh default.
    pub user: Option<String>,
    /// Port, if not the ssh default.
    pub port: Option<u16>,
    /// Identity file, if not the ssh default.
    pub identity: Option<PathBuf>,
    /// Extra `-o` options (`Key=Value`), e.g. `StrictHostKeyChecking=accept-new`,
    /// `UserKnownHostsFile=...`. Those the openssh crate's builder has a setter for are
    /// mapped to it; the rest go into a generated ssh_config that includes the usual ones.
    /// `ControlMaster`/`ControlPath`/`ControlPersist`/`BatchMode` are managed by twinbox and
    /// ignored. Unless set here, `StrictHostKeyChecking` comes from ssh_config (`ask` counts
    /// as strict: there is no terminal to ask on).
    pub options: Vec<String>,
    /// The remote command line, given to the remote shell as is, e.g.
    /// `/usr/lib/dovecot/imap` (it must speak IMAP on stdin/stdout, normally PREAUTH).
    pub command: String,
}

pub mod compress;
pub mod counting;
pub mod ssh;
pub mod tcp;
pub mod tls;
pub mod tunnel;
mod tunnel_io;

pub use compress::{CompressStats, DeflateStream};
pub use counting::{ByteCounters, CountingStream};

/// Default time allowed to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
