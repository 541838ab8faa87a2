//! A running private dovecot and the `doveadm` helpers that inspect and change its mail.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

use super::config::{
    render_config, render_passwd, ConfigPaths, DovecotOptions, ServiceAccounts, TestUser,
    DEBIAN_DH_PARAMS,
};
use super::rawlog::parse_rawlog_commands;
use super::tls::{hex, TestPki};

mod doveadm;

/// Path of dovecot's `imap` binary (Debian).
pub const IMAP_BIN: &str = "/usr/lib/dovecot/imap";
const DOVECOT_BIN: &str = "/usr/sbin/dovecot";
const DOVEADM_BIN: &str = "/usr/bin/doveadm";
/// How long start-up may take before it is an error.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the master may take to shut down before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// One message as doveadm sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSummary {
    /// Its UID.
    pub uid: u32,
    /// Its flags and keywords in dovecot's order, without the session flag `\Recent`.
    pub flags: Vec<String>,
    /// RFC822.SIZE: the size with CRLF line endings, as IMAP reports it.
    pub size: u64,
    /// SHA-256 (lowercase hex) of the whole message (IMAP `BODY[]`: header and body) with
    /// CRLF line endings; compare with [`message_sha256_hex`] of what was uploaded.
    pub sha256_of_body_hex: String,
}

/// `doveadm mailbox status` of one mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxStatus {
    /// Number of messages.
    pub messages: u32,
    /// Next UID to be assigned.
    pub uidnext: u32,
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// HIGHESTMODSEQ.
    pub highestmodseq: u64,
}

/// The byte counters of one finished IMAP session, from `imap_logout_format = in=%i out=%o`.
/// They count bytes before COMPRESS=DEFLATE (what the session carried, not the wire).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionBytes {
    /// The user of the session.
    pub user: String,
    /// Bytes received from the client.
    pub bytes_in: u64,
    /// Bytes sent to the client.
    pub bytes_out: u64,
}

/// Converts bare LF line endings to CRLF (what an IMAP server serves as `BODY[]`).
pub fn normalize_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// The hash [`MessageSummary::sha256_of_body_hex`] has for a message with these bytes.
pub fn message_sha256_hex(raw: &[u8]) -> String {
    hex(&Sha256::digest(normalize_crlf(raw)))
}

/// A private dovecot on 127.0.0.1, stopped (and its directory removed) on drop.
pub struct Dovecot {
    dir: tempfile::TempDir,
    opts: DovecotOptions,
    paths: ConfigPaths,
    config_path: PathBuf,
    master: Option<Child>,
    privileged: bool,
    mail_uid: u32,
    mail_gid: u32,
    pki: Option<TestPki>,
    ca_cert_path: Option<PathBuf>,
    tunnel_log: PathBuf,
    /// Serialises the helpers that find a new message by UIDNEXT.
    save_lock: Mutex<()>,
    seed_counter: AtomicU64,
}

impl std::fmt::Debug for Dovecot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dovecot")
            .field("dir", &self.dir.path())
            .field("imap_port", &self.paths.imap_port)
            .field("imaps_port", &self.imaps_port())
            .finish_non_exhaustive()
    }
}

fn locate(path: &str) -> Result<PathBuf> {
    let p = PathBuf::from(path);
    if p.exists() {
        return Ok(p);
    }
    bail!(
        "{path} not found: install dovecot with `apt-get install -y dovecot-imapd` \
         (Debian/Ubuntu)"
    )
}

fn run_id(args: &[&str]) -> Result<String> {
    let out = Command::new("id")
        .args(args)
        .output()
        .context("running id")?;
    if !out.status.success() {
        bail!(
            "id {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn run_id_num(args: &[&str]) -> Result<u32> {
    let s = run_id(args)?;
    s.parse()
        .with_context(|| format!("id {args:?} printed {s:?}"))
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(l.local_addr()?.port())
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .with_context(|| format!("chown {}", path.display()))
}

fn mkdir(path: &Path, mode: u32) -> Result<()> {
    fs::create_dir_all(path).with_context(|| format!("mkdir {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    fs::write(path, data).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

/// Single-quotes a string for `sh`.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

enum StartError {
    /// A port was taken between choosing it and dovecot binding it: try other ports.
    PortClash(anyhow::Error),
    Fatal(anyhow::Error),
}

/// Maildir filename flag letters for system flags.
fn maildir_flag_letter(flag: &str) -> Option<char> {
    match flag.to_ascii_lowercase().as_str() {
        "\\draft" => Some('D'),
        "\\flagged" => Some('F'),
        "\\answered" => Some('R'),
        "\\seen" => Some('S'),
        "\\deleted" => Some('T'),
        _ => None,
    }
}

impl Dovecot {
    /// Starts a private dovecot with these options and waits until it accepts connections.
    pub fn start(opts: DovecotOptions) -> Result<Dovecot> {
        let dovecot_bin = locate(DOVECOT_BIN)?;
        locate(DOVEADM_BIN)?;
        if opts.users.is_empty() {
            bail!("DovecotOptions has no users");
        }
        for u in &opts.users {
            let bad = |s: &str| {
                s.is_empty()
                    || s.bytes()
                        .any(|b| b == b':' || b == b'/' || b.is_ascii_whitespace() || b < 0x20)
            };
            if bad(&u.name) || u.password.contains(':') || u.password.contains('\n') {
                bail!("unusable test user name or password: {:?}", u.name);
            }
        }

        // SAFETY: geteuid has no preconditions and cannot fail.
        let privileged = unsafe { libc::geteuid() } == 0;
        let (mail_uid, mail_gid, accounts) = if privileged {
            (
                run_id_num(&["-u", "nobody"])?,
                run_id_num(&["-g", "nobody"])?,
                ServiceAccounts::System,
            )
        } else {
            (
                run_id_num(&["-u"])?,
                run_id_num(&["-g"])?,
                ServiceAccounts::Unprivileged {
                    user: run_id(&["-un"])?,
                    group: run_id(&["-gn"])?,
                },
            )
        };

        let mut dir = tempfile::Builder::new()
            .prefix("twinbox-dovecot-")
            .tempdir()
            .context("creating the dovecot directory")?;
        let root = dir.path().to_path_buf();
        // Dovecot's service users and the mail user must reach their parts of it.
        mkdir(&root, 0o755)?;
        let base_dir = root.join("run");
        let state_dir = root.join("state");
        let home_root = root.join("home");
        mkdir(&base_dir, 0o755)?;
        mkdir(&state_dir, 0o755)?;
        mkdir(&home_root, 0o755)?;
        for u in &opts.users {
            let home = home_root.join(&u.name);
            mkdir(&home, 0o700)?;
            chown(&home, mail_uid, mail_gid)?;
            if opts.command_log {
                let raw = home.join("rawlog");
                mkdir(&raw, 0o700)?;
                chown(&raw, mail_uid, mail_gid)?;
            }
        }
        let tunnel_log_dir = root.join("tunnel-log");
        mkdir(&tunnel_log_dir, 0o755)?;
        chown(&tunnel_log_dir, mail_uid, mail_gid)?;
        let tunnel_log = tunnel_log_dir.join("imap.log");

        let passwd_file = root.join("passwd");
        write_file(
            &passwd_file,
            render_passwd(&opts.users, mail_uid, mail_gid, &home_root).as_bytes(),
            0o644,
        )?;

        let tls_dir = root.join("tls");
        mkdir(&tls_dir, 0o755)?;
        let (pki, ca_cert_path) = if opts.tls {
            let pki = TestPki::generate()?;
            let ca = tls_dir.join("ca.pem");
            write_file(&ca, &pki.ca_pem()?, 0o644)?;
            write_file(&tls_dir.join("cert.pem"), &pki.server_cert_pem()?, 0o644)?;
            write_file(&tls_dir.join("key.pem"), &pki.server_key_pem()?, 0o600)?;
            (Some(pki), Some(ca))
        } else {
            (None, None)
        };

        let instance_name = format!(
            "twinbox-{}",
            root.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let mut paths = ConfigPaths {
            instance_name,
            listen: "127.0.0.1".into(),
            imap_port: 0,
            imaps_port: 0,
            base_dir,
            state_dir,
            log_path: root.join("dovecot.log"),
            passwd_file,
            ssl_cert: tls_dir.join("cert.pem"),
            ssl_key: tls_dir.join("key.pem"),
            ssl_dh: Path::new(DEBIAN_DH_PARAMS)
                .exists()
                .then(|| PathBuf::from(DEBIAN_DH_PARAMS)),
            accounts,
        };
        let config_path = root.join("dovecot.conf");

        let mut last_err = None;
        for _attempt in 0..5 {
            paths.imap_port = free_port()?;
            paths.imaps_port = loop {
                let p = free_port()?;
                if p != paths.imap_port {
                    break p;
                }
            };
            write_file(&config_path, render_config(&opts, &paths).as_bytes(), 0o644)?;
            // Start-up errors before the log is open land on stderr.
            let stderr_path = root.join("master.stderr");
            let stderr = fs::File::create(&stderr_path).context("creating master.stderr")?;
            let stdout = stderr.try_clone()?;
            let child = Command::new(&dovecot_bin)
                .arg("-F")
                .arg("-c")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr)
                .spawn()
                .with_context(|| format!("starting {}", dovecot_bin.display()))?;
            let mut dc = Dovecot {
                dir,
                opts: opts.clone(),
                paths: paths.clone(),
                config_path: config_path.clone(),
                master: Some(child),
                privileged,
                mail_uid,
                mail_gid,
                pki: None,
                ca_cert_path: None,
                tunnel_log: tunnel_log.clone(),
                save_lock: Mutex::new(()),
                seed_counter: AtomicU64::new(0),
            };
            match dc.wait_ready(&stderr_path) {
                Ok(()) => {
                    dc.pki = pki;
                    dc.ca_cert_path = ca_cert_path;
                    return Ok(dc);
                }
                Err(StartError::Fatal(e)) => return Err(e),
                Err(StartError::PortClash(e)) => {
                    dc.stop_master();
                    last_err = Some(e);
                    // Take the directory back for the next attempt.
                    dir = dc.take_dir()?;
                    let _ = fs::remove_file(&paths.log_path);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("dovecot did not start")))
    }

    /// Moves the temp dir out of a failed instance (whose Drop then has nothing to do).
    fn take_dir(mut self) -> Result<tempfile::TempDir> {
        self.stop_master();
        let placeholder = tempfile::Builder::new()
            .prefix("twinbox-dovecot-x-")
            .tempdir()?;
        Ok(std::mem::replace(&mut self.dir, placeholder))
    }

    fn wait_ready(&mut self, stderr_path: &Path) -> std::result::Result<(), StartError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut ports = vec![self.paths.imap_port];
        if self.opts.tls {
            ports.push(self.paths.imaps_port);
        }
        loop {
            let logs = || {
                format!(
                    "{}\n{}",
                    tail(&read_lossy(stderr_path), 20),
                    tail(&read_lossy(&self.paths.log_path), 30)
                )
            };
            let exited = match self.master.as_mut() {
                Some(child) => child.try_wait().map_err(|e| StartError::Fatal(e.into()))?,
                None => return Err(StartError::Fatal(anyhow!("no dovecot process"))),
            };
            if let Some(status) = exited {
                let text = logs();
                let err = anyhow!("dovecot exited during start-up ({status}):\n{text}");
                return Err(if text.contains("Address already in use") {
                    StartError::PortClash(err)
                } else {
                    StartError::Fatal(err)
                });
            }
            let started = read_lossy(&self.paths.log_path).contains("starting up");
            if started
                && ports.iter().all(|p| {
                    TcpStream::connect_timeout(
                        &std::net::SocketAddr::from(([127, 0, 0, 1], *p)),
                        Duration::from_millis(500),
                    )
                    .is_ok()
                })
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                let err = anyhow!(
                    "dovecot did not accept connections on {ports:?} within {START_TIMEOUT:?}:\n{}",
                    logs()
                );
                self.stop_master();
                return Err(StartError::Fatal(err));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop_master(&mut self) {
        let Some(mut child) = self.master.take() else {
            return;
        };
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill has no memory-safety preconditions; the pid is our own child,
            // not yet reaped, so it cannot have been reused.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stops dovecot now (as drop does) and removes its directory.
    pub fn stop(mut self) {
        self.stop_master();
    }

    /// The address it listens on: `127.0.0.1`.
    pub fn host(&self) -> &str {
        &self.paths.listen
    }

    /// Plain IMAP port (STARTTLS offered when TLS is on).
    pub fn imap_port(&self) -> u16 {
        self.paths.imap_port
    }

    /// A twinbox configuration with one account, `account`, keeping alice (remote) and bob
    /// (local) of this server identical over plain loopback IMAP, its state in `metadata`.
    pub fn two_user_config(&self, account: &str, metadata: &Path) -> String {
        let repo = |name: &str, user: &str| {
            format!(
                "[Repository {name}]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {}\n\
                 ssl = no\nstarttls = no\nremoteuser = {user}\nremotepass = secret\n\n",
                self.imap_port()
            )
        };
        format!(
            "[general]\naccounts = {account}\nmetadata = {}\n\n[Account {account}]\n\
             localrepository = Local\nremoterepository = Remote\n\n{}{}",
            metadata.display(),
            repo("Remote", "alice"),
            repo("Local", "bob")
        )
    }

    /// Implicit-TLS port, or `None` when TLS is off.
    pub fn imaps_port(&self) -> Option<u16> {
        self.opts.tls.then_some(self.paths.imaps_port)
    }

    /// PEM file of the CA that signed the server certificate (for `sslcacertfile`), or
    /// `None` when TLS is off.
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.ca_cert_path.as_deref()
    }

    /// SHA-256 of the server certificate (DER), lowercase hex; `None` when TLS is off.
    pub fn cert_fingerprint_sha256(&self) -> Option<String> {
        self.pki.as_ref()?.cert_fingerprint_sha256().ok()
    }

    /// SHA-256 of the server's public key (SPKI DER), lowercase hex; `None` when TLS is off.
    pub fn pubkey_fingerprint_sha256(&self) -> Option<String> {
        self.pki.as_ref()?.pubkey_fingerprint_sha256().ok()
    }

    /// The generated `dovecot.conf`.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The main log file (the PREAUTH tunnels log to [`Self::tunnel_log_path`]).
    pub fn log_path(&self) -> &Path {
        &self.paths.log_path
    }

    /// The log file of PREAUTH tunnel processes.
    pub fn tunnel_log_path(&self) -> &Path {
        &self.tunnel_log
    }

    /// The instance's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The accounts.
    pub fn users(&self) -> &[TestUser] {
        &self.opts.users
    }

    /// The options it was started with.
    pub fn options(&self) -> &DovecotOptions {
        &self.opts
    }

    /// The hierarchy separator of the personal namespace.
    pub fn separator(&self) -> char {
        self.opts.effective_separator()
    }

    /// A user's home directory (the Maildir is `home/Maildir`).
    pub fn home_dir(&self, user: &str) -> PathBuf {
        self.dir.path().join("home").join(user)
    }

    /// Uid and gid that own the mail (`nobody` when started as root, else the caller).
    pub fn mail_owner(&self) -> (u32, u32) {
        (self.mail_uid, self.mail_gid)
    }

    /// Both log files, main log first.
    pub fn log_contents(&self) -> String {
        let mut s = read_lossy(&self.paths.log_path);
        let t = read_lossy(&self.tunnel_log);
        if !t.is_empty() {
            if !s.is_empty() && !s.ends_with('\n') {
                s.push('\n');
            }
            s.push_str(&t);
        }
        s
    }

    /// Waits until the logs contain `needle` (e.g. a session's logout line, which lands a
    /// moment after the client has gone).
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log_contents();
            if log.contains(needle) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{needle:?} not logged within {timeout:?}:\n{}",
                    tail(&log, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Byte counters of every finished IMAP session so far, in log order.
    pub fn session_byte_counts(&self) -> Vec<SessionBytes> {
        let log = self.log_contents();
        log.lines()
            .filter(|line| line.contains("Disconnected") || line.contains("Connection closed"))
            .filter_map(|line| {
                let start = line.find("imap(")? + 5;
                let end = start + line[start..].find(')')?;
                let user = line[start..end].to_string();
                let num = |key: &str| -> Option<u64> {
                    let at = line.rfind(key)? + key.len();
                    let digits: String = line[at..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    digits.parse().ok()
                };
                Some(SessionBytes {
                    user,
                    bytes_in: num(" in=")?,
                    bytes_out: num(" out=")?,
                })
            })
            .collect()
    }

    /// Client commands of every session of `user` logged so far (needs
    /// [`DovecotOptions::command_log`]), sessions in start order (to the second). Only what
    /// the `imap` process saw: LOGIN/AUTHENTICATE and STARTTLS over the network are handled
    /// by `imap-login` and are not included; a PREAUTH tunnel's sessions are complete.
    /// See [`super::parse_rawlog_commands`] for the format. A session's log is complete once
    /// it has ended.
    pub fn commands_seen(&self, user: &str) -> Result<Vec<String>> {
        if !self.opts.command_log {
            bail!("the command log is off (DovecotOptions::command_log)");
        }
        let dir = self.home_dir(user).join("rawlog");
        let mut names: Vec<PathBuf> = fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "in"))
            .collect();
        names.sort();
        let mut out = Vec::new();
        for input in names {
            let data = fs::read(&input).with_context(|| format!("reading {}", input.display()))?;
            let output = fs::read(input.with_extension("out")).unwrap_or_default();
            out.extend(parse_rawlog_commands(&data, &output));
        }
        Ok(out)
    }

    /// A shell command that runs dovecot's `imap` pre-authenticated as `user` on the same
    /// mail and configuration as the network listener (stdin/stdout speak IMAP; it greets
    /// `* PREAUTH`). As root it runs as the mail owner via `setpriv`. Its log (stderr, where
    /// a standalone `imap` logs) is appended to [`Self::tunnel_log_path`].
    pub fn preauth_tunnel_command(&self, user: &str) -> String {
        let mut argv: Vec<String> = Vec::new();
        if self.privileged {
            argv.extend([
                "setpriv".to_string(),
                format!("--reuid={}", self.mail_uid),
                format!("--regid={}", self.mail_gid),
                "--clear-groups".to_string(),
            ]);
        }
        argv.extend([
            "env".to_string(),
            "-i".to_string(),
            format!("USER={user}"),
            format!("HOME={}", self.home_dir(user).display()),
            IMAP_BIN.to_string(),
            "-c".to_string(),
            self.config_path.display().to_string(),
            // The stats socket is not open to the mail user.
            "-o".to_string(),
            "stats_writer_socket_path=".to_string(),
        ]);
        let mut cmd = String::from("exec");
        for a in &argv {
            cmd.push(' ');
            cmd.push_str(&shell_quote(a));
        }
        cmd.push_str(" 2>>");
        cmd.push_str(&shell_quote(&self.tunnel_log.display().to_string()));
        cmd
    }

    /// [`Self::preauth_tunnel_command`] as an argument vector (`sh -c COMMAND`), for
    /// running without composing a shell line.
    pub fn preauth_tunnel_argv(&self, user: &str) -> Vec<String> {
        vec![
            "sh".to_string(),
            "-c".to_string(),
            self.preauth_tunnel_command(user),
        ]
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop_master();
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dovecot_can_be_shared_between_threads() {
        fn check<T: Send + Sync>() {}
        check::<Dovecot>();
    }

    #[test]
    fn quoting() {
        assert_eq!(
            shell_quote("/usr/lib/dovecot/imap"),
            "/usr/lib/dovecot/imap"
        );
        assert_eq!(shell_quote("HOME=/tmp/a b"), "'HOME=/tmp/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
