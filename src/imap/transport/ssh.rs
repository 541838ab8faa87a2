//! A remote IMAP command over ssh (openssh crate, ControlMaster shared per host).
//!
//! The first connection to a destination starts an ssh master (`ssh -M`, key or agent
//! authentication only: there is no terminal to ask for a password); further connections
//! to the same destination with the same options run their command as a new channel of that
//! master, with no new handshake. The master is closed when its last connection closes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail};
use openssh::{Child, ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};

use super::tunnel_io::{forward_stderr, ChildStream, Diagnostics, LogTarget};
use super::{CloseFuture, SshOptions, Transport};

/// How long a remote command may take to exit after its stream is closed.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Connect timeout used unless `ConnectTimeout` is set (in `-o` or ssh_config).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Keepalive interval used unless `ServerAliveInterval` is set: a dead link (suspend,
/// roaming) is noticed instead of hanging.
const DEFAULT_SERVER_ALIVE: Duration = Duration::from_secs(30);
/// A master left behind by a crash exits after this long without channels.
const MASTER_IDLE_EXIT_SECS: usize = 60;

/// Runs `opts.command` on `opts.host` over ssh and returns its stdout+stdin as the stream.
///
/// The command is passed to the remote shell as is (like `ssh host 'command'`). The remote
/// command's stderr is logged under target `twinbox::ssh`. Reuses the process-wide master
/// for the same host, user, port, identity and options, starting one if needed.
/// `remote_network` and `encrypted` are true. The close hook waits up to [`CLOSE_GRACE`]
/// for the remote command to exit, then ends its channel, and closes the master if no
/// other connection uses it.
pub async fn connect(opts: &SshOptions) -> anyhow::Result<Transport> {
    let key = MasterKey::of(opts);
    let dest = key.describe();
    let lease = acquire(key, opts).await?;
    let spawned = Arc::clone(&lease.session)
        .arc_raw_command(&opts.command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .await;
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            release(lease).await;
            bail!(
                "cannot run `{}` over ssh on {dest}: {}",
                opts.command,
                chain(&e)
            );
        }
    };
    let (Some(stdin), Some(stdout), Some(stderr)) = (
        child.stdin().take(),
        child.stdout().take(),
        child.stderr().take(),
    ) else {
        drop(child);
        release(lease).await;
        bail!("ssh to {dest}: no pipes to the remote command");
    };
    tracing::debug!(target: "twinbox::ssh", %dest, command = %opts.command, "ssh channel opened");
    let label = format!("ssh {dest} `{}`", opts.command);
    let tail = forward_stderr(stderr, LogTarget::Ssh, label);
    let conn = Arc::new(Connection {
        parts: Mutex::new(Some((child, lease))),
    });
    let diagnostics = Diagnostics {
        what: format!("remote command `{}` on {dest}", opts.command),
        stderr: tail,
        exit: None,
    };
    let stream = ChildStream::new(stdout, stdin, diagnostics, conn.clone());
    let on_close = move || -> CloseFuture { Box::pin(async move { conn.close().await }) };
    Ok(Transport {
        stream: Box::new(stream),
        on_close: Some(Box::new(on_close)),
        remote_network: true,
        encrypted: true,
    })
}

/// Number of ssh master connections this process has open (for tests and diagnostics).
pub fn live_masters() -> usize {
    LIVE_MASTERS.load(Ordering::SeqCst)
}

/// What makes two connections share a master.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MasterKey {
    host: String,
    user: Option<String>,
    port: Option<u16>,
    identity: Option<PathBuf>,
    options: Vec<String>,
}

impl MasterKey {
    fn of(opts: &SshOptions) -> Self {
        MasterKey {
            host: opts.host.clone(),
            user: opts.user.clone(),
            port: opts.port,
            identity: opts.identity.clone(),
            options: opts.options.clone(),
        }
    }

    /// `user@host port N`, for messages.
    fn describe(&self) -> String {
        let mut s = match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        };
        if let Some(p) = self.port {
            s.push_str(&format!(" port {p}"));
        }
        s
    }
}

/// One registry slot: the master for a key, if open, and how many connections use it.
#[derive(Default)]
struct Master {
    session: Option<Arc<Session>>,
    users: usize,
    /// Bumped each time a new master is started in this slot, so that leases on a master
    /// found dead and replaced do not count against its successor.
    generation: u64,
}

type Slot = Arc<tokio::sync::Mutex<Master>>;

static REGISTRY: LazyLock<Mutex<HashMap<MasterKey, Slot>>> = LazyLock::new(Default::default);
static LIVE_MASTERS: AtomicUsize = AtomicUsize::new(0);

/// A connection's share of a master.
struct Lease {
    slot: Slot,
    generation: u64,
    session: Arc<Session>,
}

/// Returns a lease on the master for `key`, starting the master if there is none (or the
/// one there has died). Concurrent callers for the same key wait for one start.
async fn acquire(key: MasterKey, opts: &SshOptions) -> anyhow::Result<Lease> {
    let dest = key.describe();
    let slot = {
        let mut registry = REGISTRY
            .lock()
            .map_err(|_| anyhow!("ssh master registry poisoned"))?;
        Arc::clone(registry.entry(key).or_default())
    };
    let mut master = slot.lock().await;
    if let Some(session) = &master.session {
        if let Err(e) = session.check().await {
            tracing::info!(target: "twinbox::ssh", %dest, "ssh master is gone ({}), starting a new one", chain(&e));
            // Its remaining leases still hold it and drop it (ssh -O exit) when they end.
            master.session = None;
            master.users = 0;
            LIVE_MASTERS.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let session = match &master.session {
        Some(session) => Arc::clone(session),
        None => {
            let session = Arc::new(launch(opts, &dest).await?);
            master.session = Some(Arc::clone(&session));
            master.users = 0;
            master.generation += 1;
            LIVE_MASTERS.fetch_add(1, Ordering::SeqCst);
            tracing::debug!(target: "twinbox::ssh", %dest, "ssh master started");
            session
        }
    };
    master.users += 1;
    let generation = master.generation;
    drop(master);
    Ok(Lease {
        slot,
        generation,
        session,
    })
}

/// Gives a lease back; the last user of a master closes it (`ssh -O exit`).
async fn release(lease: Lease) {
    let Lease {
        slot,
        generation,
        session,
    } = lease;
    let mut master = slot.lock().await;
    if master.generation != generation || master.session.is_none() {
        return;
    }
    master.users = master.users.saturating_sub(1);
    if master.users > 0 {
        return;
    }
    let Some(shared) = master.session.take() else {
        return;
    };
    LIVE_MASTERS.fetch_sub(1, Ordering::SeqCst);
    drop(session);
    match Arc::try_unwrap(shared) {
        Ok(session) => match session.close().await {
            Ok(()) => tracing::debug!(target: "twinbox::ssh", "ssh master closed"),
            Err(e) => {
                tracing::debug!(target: "twinbox::ssh", "closing the ssh master: {}", chain(&e))
            }
        },
        // A channel still holds it (cannot happen: each lease drops its child first); the
        // last holder's drop runs `ssh -O exit`.
        Err(_) => tracing::debug!(target: "twinbox::ssh", "ssh master still referenced at close"),
    }
}

/// A connection's child and lease, shared by its stream and its close hook so that either
/// may outlive the other. Dropped without `close`, it ends the channel and gives the lease
/// back from a background task.
struct Connection {
    parts: Mutex<Option<(Child<Arc<Session>>, Lease)>>,
}

impl Connection {
    async fn close(&self) {
        let parts = self.parts.lock().ok().and_then(|mut p| p.take());
        let Some((child, lease)) = parts else { return };
        // The remote command normally exits by itself after LOGOUT or stdin EOF; the
        // timeout drops `child`, which ends the local channel process.
        match tokio::time::timeout(CLOSE_GRACE, child.wait()).await {
            Ok(Ok(status)) => {
                tracing::debug!(target: "twinbox::ssh", %status, "remote command exited")
            }
            Ok(Err(e)) => tracing::debug!(target: "twinbox::ssh", "remote command: {}", chain(&e)),
            Err(_) => tracing::debug!(
                target: "twinbox::ssh",
                "remote command still running after {CLOSE_GRACE:?}; channel closed"
            ),
        }
        release(lease).await;
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let parts = self.parts.get_mut().ok().and_then(|p| p.take());
        if let Some((child, lease)) = parts {
            drop(child);
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(release(lease));
            }
            // Without a runtime the lease just drops; the idle master exits by itself
            // after MASTER_IDLE_EXIT_SECS.
        }
    }
}

/// Starts a master for `opts`.
async fn launch(opts: &SshOptions, dest: &str) -> anyhow::Result<Session> {
    let mut b = SessionBuilder::default();
    b.control_persist(ControlPersist::IdleFor(
        std::num::NonZeroUsize::new(MASTER_IDLE_EXIT_SECS).unwrap_or(std::num::NonZeroUsize::MIN),
    ));
    if let Some(dir) = control_dir() {
        b.control_directory(dir);
    }
    if let Some(user) = &opts.user {
        b.user(user.clone());
    }
    if let Some(port) = opts.port {
        b.port(port);
    }
    if let Some(identity) = &opts.identity {
        b.keyfile(identity);
    }
    let mapped = map_options(&mut b, &opts.options, opts.identity.is_some())?;
    // Options the builder cannot express go into a generated config that then includes
    // the usual ones (first value wins in ssh_config, so ours take precedence).
    let config = if mapped.extra.is_empty() {
        None
    } else {
        Some(write_config(&mapped.extra)?)
    };
    if let Some(file) = &config {
        b.config_file(file.path());
    }
    // The builder always passes StrictHostKeyChecking, ConnectTimeout (if set) and
    // ServerAliveInterval (if set) on the command line, overriding ssh_config: so unless
    // given with -o, take them from what ssh_config says for this host.
    if !(mapped.known_hosts && mapped.connect_timeout && mapped.server_alive) {
        let effective = effective_config(opts, config.as_ref().map(|c| c.path())).await;
        if !mapped.known_hosts {
            let value = effective.get("stricthostkeychecking").map(String::as_str);
            b.known_hosts_check(
                known_hosts_policy(value.unwrap_or("ask")).unwrap_or(KnownHosts::Strict),
            );
        }
        if !mapped.connect_timeout {
            let secs = effective
                .get("connecttimeout")
                .and_then(|v| v.parse::<u64>().ok());
            b.connect_timeout(secs.map_or(DEFAULT_CONNECT_TIMEOUT, Duration::from_secs));
        }
        if !mapped.server_alive {
            let secs = effective
                .get("serveraliveinterval")
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|s| *s > 0);
            b.server_alive_interval(secs.map_or(DEFAULT_SERVER_ALIVE, Duration::from_secs));
        }
    }
    let session = b
        .connect(&opts.host)
        .await
        .map_err(|e| anyhow!("ssh connection to {dest} failed: {}", chain(&e)))?;
    drop(config);
    Ok(session)
}

/// Which options [`map_options`] set on the builder, and the rest as config lines.
#[derive(Default)]
struct Mapped {
    known_hosts: bool,
    connect_timeout: bool,
    server_alive: bool,
    extra: Vec<(String, String)>,
}

/// Applies `-o Key=Value` options the builder supports; returns the others.
fn map_options(
    b: &mut SessionBuilder,
    options: &[String],
    have_identity: bool,
) -> anyhow::Result<Mapped> {
    let mut m = Mapped::default();
    for raw in options {
        let (key, value) =
            split_option(raw).ok_or_else(|| anyhow!("ssh option {raw:?}: expected Key=Value"))?;
        let secs = || -> anyhow::Result<Duration> {
            value
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| anyhow!("ssh option {key}: {value:?} is not a number of seconds"))
        };
        match key.to_ascii_lowercase().as_str() {
            "stricthostkeychecking" => {
                let policy = known_hosts_policy(value).ok_or_else(|| {
                    anyhow!("ssh option StrictHostKeyChecking: unknown value {value:?}")
                })?;
                b.known_hosts_check(policy);
                m.known_hosts = true;
            }
            "userknownhostsfile" => {
                b.user_known_hosts_file(value);
            }
            "connecttimeout" => {
                b.connect_timeout(secs()?);
                m.connect_timeout = true;
            }
            "serveraliveinterval" => {
                b.server_alive_interval(secs()?);
                m.server_alive = true;
            }
            "compression" => {
                b.compression(matches!(
                    value.to_ascii_lowercase().as_str(),
                    "yes" | "true"
                ));
            }
            "proxyjump" if !value.eq_ignore_ascii_case("none") => {
                b.jump_hosts(value.split(','));
            }
            "user" => {
                b.user(value.to_string());
            }
            "port" => {
                let port = value
                    .parse::<u16>()
                    .map_err(|_| anyhow!("ssh option Port: {value:?} is not a port"))?;
                b.port(port);
            }
            "identityfile" if !have_identity => {
                b.keyfile(value);
            }
            "identityagent" if !matches!(value, "none" | "SSH_AUTH_SOCK") => {
                b.ssh_auth_sock(value);
            }
            "controlmaster" | "controlpath" | "controlpersist" | "batchmode" => {
                tracing::warn!(target: "twinbox::ssh", "ssh option {key} ignored: twinbox manages the master connection itself");
            }
            _ => m.extra.push((key.to_string(), value.to_string())),
        }
    }
    Ok(m)
}

/// `Key=Value`, `Key Value` or `Key = Value`.
fn split_option(raw: &str) -> Option<(&str, &str)> {
    let raw = raw.trim();
    let end = raw.find(|c: char| c == '=' || c.is_whitespace())?;
    let key = &raw[..end];
    let value = raw[end..]
        .trim_start()
        .strip_prefix('=')
        .unwrap_or(&raw[end..])
        .trim();
    (!key.is_empty() && !value.is_empty()).then_some((key, value))
}

/// `StrictHostKeyChecking` value → builder policy. `ask` is strict: there is no terminal.
fn known_hosts_policy(value: &str) -> Option<KnownHosts> {
    match value.to_ascii_lowercase().as_str() {
        "yes" | "ask" | "true" => Some(KnownHosts::Strict),
        "accept-new" => Some(KnownHosts::Add),
        "no" | "off" | "false" => Some(KnownHosts::Accept),
        _ => None,
    }
}

/// Writes `extra` options into a config file that then includes the user's and the
/// system's ssh_config (which `-F` would otherwise skip).
fn write_config(extra: &[(String, String)]) -> anyhow::Result<tempfile::NamedTempFile> {
    use std::io::Write as _;
    let mut text = String::from("# written by twinbox for one ssh master\n");
    for (key, value) in extra {
        if key.contains(['\n', '\r']) || value.contains(['\n', '\r']) {
            bail!("ssh option {key}: line breaks are not allowed");
        }
        text.push_str(&format!("{key} {value}\n"));
    }
    #[allow(deprecated)] // home_dir is fine on Unix, the only target
    if let Some(home) = std::env::home_dir() {
        text.push_str(&format!("Include {}\n", home.join(".ssh/config").display()));
    }
    text.push_str("Include /etc/ssh/ssh_config\n");
    let mut file = tempfile::Builder::new()
        .prefix("twinbox-ssh-config")
        .tempfile()?;
    file.write_all(text.as_bytes())?;
    file.flush()?;
    Ok(file)
}

/// What `ssh -G` says the effective configuration for this destination is (empty on any
/// failure: then the builder's and our defaults apply, and the master start reports
/// configuration errors itself).
async fn effective_config(opts: &SshOptions, config: Option<&Path>) -> HashMap<String, String> {
    let mut cmd = tokio::process::Command::new("ssh");
    cmd.arg("-G");
    if let Some(file) = config {
        cmd.arg("-F").arg(file);
    }
    if let Some(user) = &opts.user {
        cmd.arg("-l").arg(user);
    }
    if let Some(port) = opts.port {
        cmd.arg("-p").arg(port.to_string());
    }
    cmd.arg("--").arg(&opts.host);
    cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
    let output = match tokio::time::timeout(Duration::from_secs(10), cmd.output()).await {
        Ok(Ok(o)) if o.status.success() => o,
        _ => return HashMap::new(),
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect()
}

/// Where master sockets go: `$XDG_RUNTIME_DIR`, else the temp dir (short paths: a socket
/// path is limited to about 100 bytes). The crate makes a private subdirectory there.
fn control_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_dir())
        .or_else(|| Some(std::env::temp_dir()))
}

/// An error and its sources on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        let text = text.trim();
        if !text.is_empty() && !s.contains(text) {
            s.push_str(": ");
            s.push_str(text);
        }
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::testbed::Sshd;

    fn options(sshd: &Sshd, command: &str) -> SshOptions {
        SshOptions {
            host: "127.0.0.1".into(),
            user: Some(sshd.user().to_string()),
            port: Some(sshd.port()),
            identity: Some(sshd.user_key()),
            options: vec![
                "StrictHostKeyChecking=no".into(),
                format!("UserKnownHostsFile={}", sshd.known_hosts().display()),
                // Not mappable to the builder: goes through the generated config.
                "LogLevel=ERROR".into(),
            ],
            command: command.into(),
        }
    }

    async fn exchange(t: &mut Transport, text: &[u8]) {
        t.stream.write_all(text).await.unwrap();
        t.stream.flush().await.unwrap();
        let mut buf = vec![0u8; text.len()];
        t.stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, text);
    }

    #[tokio::test]
    async fn two_connections_share_one_master_which_closes_with_the_last() {
        let sshd = Sshd::start().expect("sshd");
        let opts = options(&sshd, "cat");
        assert_eq!(live_masters(), 0);
        let mut a = connect(&opts)
            .await
            .unwrap_or_else(|e| panic!("{e:#}\n{}", sshd.log()));
        let mut b = connect(&opts).await.unwrap();
        assert!(a.encrypted && a.remote_network);
        assert_eq!(live_masters(), 1);
        exchange(&mut a, b"a1 NOOP\r\n").await;
        exchange(&mut b, b"b1 NOOP\r\n").await;
        exchange(&mut a, &vec![b'x'; 200_000]).await;
        // One ssh login served both.
        assert_eq!(
            sshd.log().matches("Accepted publickey").count(),
            1,
            "{}",
            sshd.log()
        );

        let started = std::time::Instant::now();
        a.close().await;
        assert_eq!(live_masters(), 1);
        exchange(&mut b, b"b2 still alive\r\n").await;
        b.close().await;
        assert!(
            started.elapsed() < CLOSE_GRACE,
            "close took {:?}",
            started.elapsed()
        );
        assert_eq!(live_masters(), 0);
        // The master's connection is really gone on the server side.
        let mut gone = false;
        for _ in 0..50 {
            if sshd.log().contains("Disconnected from user") {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(gone, "sshd saw no disconnect:\n{}", sshd.log());

        // A new connection starts a fresh master.
        let mut c = connect(&opts).await.unwrap();
        exchange(&mut c, b"c1\n").await;
        assert_eq!(live_masters(), 1);
        drop(c); // not closed: the background release closes the master
        for _ in 0..50 {
            if live_masters() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(live_masters(), 0);

        // A remote command that fails says so at the first read.
        let mut bad = connect(&options(&sshd, "echo 'imapd: no such file' >&2; exit 127"))
            .await
            .unwrap();
        let mut buf = [0u8; 8];
        let msg = bad.stream.read(&mut buf).await.unwrap_err().to_string();
        assert!(msg.contains("imapd: no such file"), "{msg}");
        bad.close().await;
        assert_eq!(live_masters(), 0);

        // Without StrictHostKeyChecking in -o, ssh_config's default (ask) applies, which is
        // strict here: an unknown host key is refused.
        let mut strict = options(&sshd, "cat");
        strict
            .options
            .retain(|o| !o.starts_with("StrictHostKeyChecking"));
        strict.options[0] = format!(
            "UserKnownHostsFile={}",
            sshd.dir().join("empty_known_hosts").display()
        );
        let err = connect(&strict).await.unwrap_err().to_string();
        assert!(err.contains("Host key verification failed"), "{err}");
        assert_eq!(live_masters(), 0);
    }

    #[tokio::test]
    async fn unreachable_host_gives_clear_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let opts = SshOptions {
            host: "127.0.0.1".into(),
            user: None,
            port: Some(port),
            identity: None,
            options: vec![
                "StrictHostKeyChecking=no".into(),
                "UserKnownHostsFile=/dev/null".into(),
            ],
            command: "cat".into(),
        };
        let err = connect(&opts).await.unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("ssh connection to 127.0.0.1 port {port} failed")),
            "{err}"
        );
        assert!(err.contains("refused"), "{err}");
    }

    #[test]
    fn option_syntax() {
        assert_eq!(split_option("A=b"), Some(("A", "b")));
        assert_eq!(split_option("A b c"), Some(("A", "b c")));
        assert_eq!(split_option(" A = b "), Some(("A", "b")));
        assert_eq!(split_option("A"), None);
        assert!(matches!(
            known_hosts_policy("accept-new"),
            Some(KnownHosts::Add)
        ));
        assert!(matches!(
            known_hosts_policy("ask"),
            Some(KnownHosts::Strict)
        ));
    }
}
