//! A private sshd on loopback, for the ssh transport tests: its own host key, one
//! generated user key, and a known_hosts file the client can use.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

/// Path of the OpenSSH server (Debian `openssh-server`).
pub const SSHD_BIN: &str = "/usr/sbin/sshd";

/// A private sshd on 127.0.0.1 (a free port), stopped and its directory removed on drop.
/// Public-key login only, with [`Sshd::user_key`]; the login user is the caller.
pub struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    pid: libc::pid_t,
    user: String,
}

impl std::fmt::Debug for Sshd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sshd")
            .field("dir", &self.dir.path())
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

fn keygen(path: &Path) -> Result<()> {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .context("running ssh-keygen (install openssh-client)")?;
    if !st.success() {
        bail!("ssh-keygen failed for {}", path.display());
    }
    Ok(())
}

impl Sshd {
    /// Generates keys and a configuration, starts sshd and waits for its pid file.
    pub fn start() -> Result<Sshd> {
        if !Path::new(SSHD_BIN).exists() {
            bail!(
                "{SSHD_BIN} is missing: install openssh-server \
                 (apt-get install -y openssh-server openssh-client)"
            );
        }
        // sshd's privilege separation directory.
        std::fs::create_dir_all("/run/sshd").context("creating /run/sshd")?;
        let dir = tempfile::Builder::new()
            .prefix("twinbox-sshd-")
            .tempdir()
            .context("creating the sshd directory")?;
        let d = dir.path();
        keygen(&d.join("host_key"))?;
        keygen(&d.join("user_key"))?;
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys"))
            .context("writing authorized_keys")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("choosing a free port")?
            .port();
        let conf = format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             StrictModes no\nPidFile {d}/sshd.pid\nLogLevel VERBOSE\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), conf).context("writing sshd_config")?;
        let st = Command::new(SSHD_BIN)
            .arg("-f")
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .status()
            .context("starting sshd")?;
        if !st.success() {
            bail!("sshd failed to start: {}", read(d, "sshd.log"));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(d.join("sshd.pid"))
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                break pid;
            }
            if Instant::now() > deadline {
                bail!("sshd wrote no pid file: {}", read(d, "sshd.log"));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = Command::new("id")
            .arg("-un")
            .output()
            .context("running id")?;
        let user = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if user.is_empty() {
            return Err(anyhow!("cannot tell the current user name"));
        }
        Ok(Sshd {
            dir,
            port,
            pid,
            user,
        })
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user to log in as (the one who started it).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The private key it accepts.
    pub fn user_key(&self) -> PathBuf {
        self.dir.path().join("user_key")
    }

    /// A known_hosts path private to this instance (filled by `StrictHostKeyChecking=no`).
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// The instance's directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// sshd's log so far.
    pub fn log(&self) -> String {
        read(self.dir.path(), "sshd.log")
    }
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is the daemon this
        // instance started (read from its own pid file).
        unsafe {
            libc::kill(self.pid, libc::SIGTERM);
        }
    }
}
