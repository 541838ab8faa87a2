//! The synchronisers under test: how each is configured (fairly: same server, same
//! corpus, plain TCP through the counting relay) and run as a child process, timed, with
//! its peak RSS from `wait4`.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// One tool configuration (a row group of the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// twinbox, IMAP↔IMAP.
    TwinboxImap { compress: bool },
    /// twinbox, IMAP↔native Maildir.
    TwinboxMaildir { compress: bool },
    /// twinbox, IMAP↔Maildir through dovecot's imap binary.
    TwinboxDovecot { compress: bool },
    /// interimap 0.5, IMAP↔IMAP.
    Interimap { compress: bool },
    /// mbsync (isync 1.4), IMAP↔Maildir.
    Mbsync,
    /// offlineimap3, IMAP↔Maildir, uncompressed (it stalls with COMPRESS on dovecot 2.3).
    Offlineimap,
}

/// Every configuration, in table order.
pub const ALL: &[Tool] = &[
    Tool::TwinboxImap { compress: false },
    Tool::TwinboxImap { compress: true },
    Tool::TwinboxMaildir { compress: false },
    Tool::TwinboxMaildir { compress: true },
    Tool::TwinboxDovecot { compress: false },
    Tool::TwinboxDovecot { compress: true },
    Tool::Interimap { compress: false },
    Tool::Interimap { compress: true },
    Tool::Mbsync,
    Tool::Offlineimap,
];

impl Tool {
    /// The row label.
    pub fn label(self) -> String {
        let z = |c: bool| if c { " +COMPRESS" } else { "" };
        match self {
            Tool::TwinboxImap { compress } => format!("twinbox IMAP↔IMAP{}", z(compress)),
            Tool::TwinboxMaildir { compress } => format!("twinbox IMAP↔Maildir{}", z(compress)),
            Tool::TwinboxDovecot { compress } => {
                format!("twinbox IMAP↔dovecot-Maildir{}", z(compress))
            }
            Tool::Interimap { compress } => format!("interimap IMAP↔IMAP{}", z(compress)),
            Tool::Mbsync => "mbsync IMAP↔Maildir".to_string(),
            Tool::Offlineimap => "offlineimap3 IMAP↔Maildir".to_string(),
        }
    }

    /// A short name for `--tools` and file names.
    pub fn key(self) -> String {
        let z = |c: bool| if c { "-z" } else { "" };
        match self {
            Tool::TwinboxImap { compress } => format!("twinbox-imap{}", z(compress)),
            Tool::TwinboxMaildir { compress } => format!("twinbox-maildir{}", z(compress)),
            Tool::TwinboxDovecot { compress } => format!("twinbox-dovecot{}", z(compress)),
            Tool::Interimap { compress } => format!("interimap{}", z(compress)),
            Tool::Mbsync => "mbsync".to_string(),
            Tool::Offlineimap => "offlineimap".to_string(),
        }
    }

    /// The Debian package providing the peer, and its command.
    pub fn package(self) -> Option<(&'static str, &'static str)> {
        match self {
            Tool::Interimap { .. } => Some(("interimap", "interimap")),
            Tool::Mbsync => Some(("isync", "mbsync")),
            Tool::Offlineimap => Some(("offlineimap3", "offlineimap")),
            _ => None,
        }
    }
}

/// Where the local side of a tool lives, for the checks and the local changes.
pub enum Local {
    /// An IMAP account on the private dovecot.
    Imap(String),
    /// A Maildir tree.
    Maildir(PathBuf),
}

/// A configured tool, ready to run.
pub struct Setup {
    pub argv: Vec<String>,
    pub local: Local,
    /// Whether the check compares keywords too (IMAP↔IMAP tools).
    pub keywords: bool,
    pub dir: PathBuf,
}

/// What one run cost.
pub struct RunCost {
    pub wall: Duration,
    /// Peak RSS of the child (and its waited-for children) in KiB.
    pub maxrss_kb: u64,
}

/// Writes the tool's configuration under `dir`. The remote account is `alice` through the
/// relay on `relay_port`; the local one `bob` directly on `imap_port`, or a Maildir.
pub fn setup(tool: Tool, dir: &Path, relay_port: u16, imap_port: u16) -> Result<Setup> {
    fs::create_dir_all(dir)?;
    let maildir = dir.join("mail");
    let conf = dir.join("config");
    let me = std::env::current_exe()?.display().to_string();
    let s = |p: &Path| p.display().to_string();
    let twinbox = |local: &str, compress: bool| -> Result<Vec<String>> {
        let text = format!(
            "[general]\naccounts = Bench\nmetadata = {meta}\n\n[Account Bench]\n\
             localrepository = Local\nremoterepository = Remote\n\n\
             [Repository Remote]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {relay_port}\n\
             ssl = no\nstarttls = no\nremoteuser = alice\nremotepass = secret\n\
             usecompression = {z}\nmaxconnections = 2\n\n[Repository Local]\n{local}",
            meta = s(&dir.join("meta")),
            z = if compress { "yes" } else { "no" },
        );
        fs::write(&conf, text)?;
        Ok(vec![me.clone(), "__twinbox".into(), "-c".into(), s(&conf)])
    };
    let imap_local = format!(
        "type = IMAP\nremotehost = 127.0.0.1\nremoteport = {imap_port}\nssl = no\n\
         starttls = no\nremoteuser = bob\nremotepass = secret\nmaxconnections = 2\n"
    );
    let setup = match tool {
        Tool::TwinboxImap { compress } => Setup {
            argv: twinbox(&imap_local, compress)?,
            local: Local::Imap("bob".into()),
            keywords: true,
            dir: dir.into(),
        },
        Tool::TwinboxMaildir { compress } => {
            let local = format!("type = Maildir\nlocalfolders = {}\n", s(&maildir));
            Setup {
                argv: twinbox(&local, compress)?,
                local: Local::Maildir(maildir),
                keywords: false,
                dir: dir.into(),
            }
        }
        Tool::TwinboxDovecot { compress } => {
            // dovecot will not run as root: the Maildir belongs to nobody.
            fs::create_dir_all(&maildir)?;
            std::os::unix::fs::chown(&maildir, Some(65534), Some(65534))?;
            let local = format!(
                "type = Maildir\nlocalfolders = {}\nmaildir_engine = dovecot\n",
                s(&maildir)
            );
            Setup {
                argv: twinbox(&local, compress)?,
                local: Local::Maildir(maildir),
                keywords: false,
                dir: dir.into(),
            }
        }
        Tool::Interimap { compress } => {
            let z = if compress { "YES" } else { "NO" };
            let text = format!(
                "database = {db}\n\n[local]\ntype = imap\nhost = 127.0.0.1\nport = {imap_port}\n\
                 username = bob\npassword = secret\nSTARTTLS = NO\ncompress = NO\n\n\
                 [remote]\ntype = imap\nhost = 127.0.0.1\nport = {relay_port}\n\
                 username = alice\npassword = secret\nSTARTTLS = NO\ncompress = {z}\n",
                db = s(&dir.join("interimap.db")),
            );
            fs::write(&conf, text)?;
            Setup {
                argv: vec!["interimap".into(), format!("--config={}", s(&conf))],
                local: Local::Imap("bob".into()),
                keywords: true,
                dir: dir.into(),
            }
        }
        Tool::Mbsync => {
            fs::create_dir_all(&maildir)?;
            let text = format!(
                "IMAPAccount remote\nHost 127.0.0.1\nPort {relay_port}\nUser alice\nPass secret\n\
                 SSLType None\nAuthMechs LOGIN\n\nIMAPStore remote\nAccount remote\n\n\
                 MaildirStore local\nPath {m}/\nInbox {m}/INBOX\nSubFolders Verbatim\n\n\
                 Channel bench\nFar :remote:\nNear :local:\nPatterns *\nCreate Both\n\
                 Expunge Both\nSyncState *\n",
                m = s(&maildir),
            );
            fs::write(&conf, text)?;
            Setup {
                argv: vec![
                    "mbsync".into(),
                    "-c".into(),
                    s(&conf),
                    "-a".into(),
                    "-q".into(),
                ],
                local: Local::Maildir(maildir),
                keywords: false,
                dir: dir.into(),
            }
        }
        Tool::Offlineimap => {
            let text = format!(
                "[general]\naccounts = Bench\nmetadata = {meta}\n\n[Account Bench]\n\
                 localrepository = Local\nremoterepository = Remote\n\n\
                 [Repository Local]\ntype = Maildir\nlocalfolders = {m}\n\n\
                 [Repository Remote]\ntype = IMAP\nremotehost = 127.0.0.1\n\
                 remoteport = {relay_port}\nremoteuser = alice\nremotepass = secret\n\
                 ssl = no\nstarttls = no\nmaxconnections = 2\n",
                meta = s(&dir.join("meta")),
                m = s(&maildir),
            );
            fs::write(&conf, text)?;
            Setup {
                argv: vec![
                    "offlineimap".into(),
                    "-c".into(),
                    s(&conf),
                    "-u".into(),
                    "quiet".into(),
                ],
                local: Local::Maildir(maildir),
                keywords: false,
                dir: dir.into(),
            }
        }
    };
    Ok(setup)
}

/// Runs the tool once; fails on a non-zero exit status (its output is in `dir/log`).
pub fn run(setup: &Setup) -> Result<RunCost> {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(setup.dir.join("log"))?;
    // BENCH_WRAP (e.g. `strace -f -tt -o /tmp/trace`) prefixes every tool command, for
    // profiling a phase; the figures are then the wrapper's, not the tool's.
    let mut argv: Vec<String> = std::env::var("BENCH_WRAP")
        .map(|w| w.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    argv.extend(setup.argv.iter().cloned());
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .env("HOME", &setup.dir);
    // A process group of its own, so nothing it leaves behind is confused with ours.
    cmd.process_group(0);
    let t = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", setup.argv[0]))?;
    let pid = child.id() as libc::pid_t;
    // `ru_maxrss` from wait4 is no use here: at exec the kernel records the replaced memory
    // map's peak, and a spawned child's is the bench's own (the bench holds the corpus, so
    // every row read as the bench's size). The tool's own peak: VmHWM, sampled until it
    // exits, and reported by twinbox itself at exit (`vmhwm` in its HOME).
    let _ = fs::remove_file(setup.dir.join("vmhwm"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(kb) = vmhwm_kb(&format!("/proc/{pid}/status")) {
                    peak = peak.max(kb);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = t.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sampled = sampler.join().unwrap_or(0);
    let reported = fs::read_to_string(setup.dir.join("vmhwm"))
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(0);
    if r != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        let text = fs::read_to_string(setup.dir.join("log")).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(8).collect();
        bail!(
            "{} exited with status {status}: {}",
            setup.argv[0],
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(RunCost {
        wall,
        maxrss_kb: match sampled.max(reported) {
            0 => usage.ru_maxrss as u64,
            kb => kb,
        },
    })
}

/// `VmHWM` (peak resident set, kB) from a `/proc/PID/status` file.
pub fn vmhwm_kb(path: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Installs the peers' Debian packages that are missing (`apt-get install -y`).
pub fn install_peers(tools: &[Tool]) -> Result<()> {
    let mut missing = Vec::new();
    for t in tools {
        if let Some((pkg, cmd)) = t.package() {
            let found = Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {cmd}"))
                .stdout(Stdio::null())
                .status()?
                .success();
            if !found && !missing.contains(&pkg) {
                missing.push(pkg);
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("installing {}", missing.join(" "));
    let st = Command::new("apt-get")
        .args(["install", "-y"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?;
    if !st.success() {
        bail!("apt-get install {} failed", missing.join(" "));
    }
    Ok(())
}
