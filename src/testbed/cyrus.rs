//! A private Cyrus IMAP 3.6 on loopback: `imapd` unpacked from the `cyrus-imapd` package
//! (it conflicts with dovecot-imapd), run by `cyrus-common`'s master with its own
//! configuration in a temporary directory. Any password is accepted (tests only), and
//! `munge8bit: no` keeps 8-bit headers as uploaded (by default Cyrus rewrites them to `X`).

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::debs::unpacked;

/// The Cyrus master process (Debian `cyrus-common`).
pub const CYRUS_MASTER: &str = "/usr/lib/cyrus/bin/master";

/// How the instance names folders.
/// The default is Cyrus's classic naming: `INBOX.` prefix, `.` separator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CyrusOptions {
    /// `altnamespace`: folders beside INBOX (`yes`) or under `INBOX.` (`no`).
    pub altnamespace: bool,
    /// `unixhierarchysep`: `/` (`yes`) or `.` (`no`) between levels.
    pub unixhierarchysep: bool,
}

/// A running private Cyrus; stopped (master and its children) and removed on drop.
pub struct Cyrus {
    dir: tempfile::TempDir,
    port: u16,
    pid: libc::pid_t,
    opts: CyrusOptions,
}

impl std::fmt::Debug for Cyrus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cyrus")
            .field("dir", &self.dir.path())
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Cyrus {
    /// Writes the configuration, starts the master and waits for the IMAP greeting.
    /// Needs root (the spool belongs to the `cyrus` user).
    pub fn start(opts: CyrusOptions) -> Result<Cyrus> {
        if !Path::new(CYRUS_MASTER).exists() {
            bail!(
                "{CYRUS_MASTER} is missing: install cyrus-common \
                 (apt-get install -y --no-install-recommends cyrus-common)"
            );
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!("a private Cyrus needs root (its spool belongs to the cyrus user)");
        }
        let imapd = unpacked("cyrus-imapd", "usr/lib/cyrus/bin/imapd")?;
        let dir = tempfile::Builder::new()
            .prefix("twinbox-cyrus-")
            .tempdir()
            .context("creating the Cyrus directory")?;
        let d = dir.path();
        for sub in ["conf", "part", "sock"] {
            std::fs::create_dir_all(d.join(sub)).context("creating Cyrus directories")?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("choosing a free port")?
            .port();
        let yn = |b: bool| if b { "yes" } else { "no" };
        let conf = format!(
            "configdirectory: {d}/conf\npartition-default: {d}/part\ndefaultpartition: default\n\
             sasl_pwcheck_method: alwaystrue\nallowplaintext: yes\nautocreate_quota: 0\n\
             unixhierarchysep: {}\naltnamespace: {}\nidlesocket: {d}/sock/idle\n\
             lmtpsocket: {d}/sock/lmtp\nnotifysocket: {d}/sock/notify\n\
             munge8bit: no\nsyslog_prefix: twinbox-cyrus\n",
            yn(opts.unixhierarchysep),
            yn(opts.altnamespace),
            d = d.display()
        );
        std::fs::write(d.join("imapd.conf"), conf).context("writing imapd.conf")?;
        let services = format!(
            "START {{\n  recover cmd=\"ctl_cyrusdb -r -C {d}/imapd.conf\"\n}}\n\
             SERVICES {{\n  imap cmd=\"{imapd} -C {d}/imapd.conf\" listen=\"127.0.0.1:{port}\" prefork=1\n}}\n",
            imapd = imapd.display(),
            d = d.display()
        );
        std::fs::write(d.join("cyrus.conf"), services).context("writing cyrus.conf")?;
        let st = Command::new("chown")
            .args(["-R", "cyrus:mail"])
            .arg(d)
            .status()
            .context("running chown")?;
        if !st.success() {
            bail!("chown -R cyrus:mail {} failed", d.display());
        }
        let st = Command::new(CYRUS_MASTER)
            .arg("-C")
            .arg(d.join("imapd.conf"))
            .arg("-M")
            .arg(d.join("cyrus.conf"))
            .arg("-p")
            .arg(d.join("master.pid"))
            .arg("-d")
            .status()
            .context("starting the Cyrus master")?;
        if !st.success() {
            bail!("the Cyrus master failed to start");
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let pid: libc::pid_t = loop {
            if let Some(pid) = std::fs::read_to_string(d.join("master.pid"))
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                break pid;
            }
            if Instant::now() > deadline {
                bail!("the Cyrus master wrote no pid file");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let cyrus = Cyrus {
            dir,
            port,
            pid,
            opts,
        };
        cyrus.wait_ready(deadline)?;
        Ok(cyrus)
    }

    fn wait_ready(&self, deadline: Instant) -> Result<()> {
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 5];
                if s.read_exact(&mut buf).is_ok() && &buf == b"* OK " {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("Cyrus did not greet on 127.0.0.1:{}", self.port);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Always 127.0.0.1.
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// The IMAP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The hierarchy separator.
    pub fn separator(&self) -> char {
        if self.opts.unixhierarchysep {
            '/'
        } else {
            '.'
        }
    }

    /// The personal namespace prefix (`INBOX.` without altnamespace, else empty).
    pub fn prefix(&self) -> String {
        if self.opts.altnamespace {
            String::new()
        } else {
            format!("INBOX{}", self.separator())
        }
    }

    /// The instance's directory.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Cyrus {
    fn drop(&mut self) {
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is the master this
        // instance started (read from its own pid file). The master stops its children.
        unsafe {
            libc::kill(self.pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        // SAFETY: as above; signal 0 only checks the process exists.
        while unsafe { libc::kill(self.pid, 0) } == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
