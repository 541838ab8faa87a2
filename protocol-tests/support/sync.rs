//! The sync test bed: a private dovecot for the remote side (user `alice`), a local side
//! behind the [`MailSide`] trait (another dovecot account now; Maildir stores later), a
//! twinbox configuration in a temporary directory, runs of the real `twinbox` binary, and
//! [`SyncBed::assert_converged`], which compares both sides message by message (content
//! hash and flags), rejects duplicates, and proves a second run changes nothing.
//!
//! The IMAP side lives in [`super::imap_side`] (re-exported here).
//!
//! Scenarios refer to messages by content (the SHA-256 of their CRLF text, as
//! [`message_sha256_hex`] computes it), never by UID, so they run unchanged on any side.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use twinbox::testbed::{message_sha256_hex, Dovecot, DovecotOptions};

pub use super::imap_side::{copy_tree, ImapSide};

/// How long one twinbox run may take before the test kills it and fails.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// One message as a side holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Msg {
    /// SHA-256 (hex) of the message text with CRLF line endings.
    pub sha256: String,
    /// Flags and keywords, IMAP spelling (`\Seen`, `$Label1`), sorted, without `\Recent`.
    pub flags: Vec<String>,
}

/// Every mailbox of a side (neutral name, levels joined by `/`) with its messages sorted.
pub type Snapshot = BTreeMap<String, Vec<Msg>>;

/// One side of a synced account, seen and changed behind twinbox's back.
///
/// Mailbox names are neutral: hierarchy levels joined by `/`, UTF-8. Messages are named by
/// their content hash ([`message_sha256_hex`]).
pub trait MailSide: Send + Sync {
    /// A short description for assertion messages.
    fn describe(&self) -> String;
    /// The `[Repository NAME]` section that makes twinbox use this side.
    fn repository(&self, name: &str) -> String;
    /// All mailboxes (neutral names), sorted.
    fn mailboxes(&self) -> Result<Vec<String>>;
    /// The messages of a mailbox, sorted.
    fn messages(&self, mailbox: &str) -> Result<Vec<Msg>>;
    /// Creates a mailbox (with parents).
    fn create_mailbox(&self, mailbox: &str) -> Result<()>;
    /// Deletes a mailbox and its messages.
    fn delete_mailbox(&self, mailbox: &str) -> Result<()>;
    /// Stores a message with flags (creating the mailbox if needed).
    fn append(&self, mailbox: &str, raw: &[u8], flags: &[&str]) -> Result<()>;
    /// Stores many messages with the same flags (creating the mailbox if needed).
    fn seed(&self, mailbox: &str, raws: &[Vec<u8>], flags: &[&str]) -> Result<()> {
        for r in raws {
            self.append(mailbox, r, flags)?;
        }
        Ok(())
    }
    /// Adds flags to the message with this hash.
    fn add_flags(&self, mailbox: &str, sha256: &str, flags: &[&str]) -> Result<()>;
    /// Removes flags from the message with this hash.
    fn remove_flags(&self, mailbox: &str, sha256: &str, flags: &[&str]) -> Result<()>;
    /// Expunges the message with this hash.
    fn expunge(&self, mailbox: &str, sha256: &str) -> Result<()>;

    /// Saves this side's whole mail store under `dir` (no client may be connected).
    fn checkpoint(&self, dir: &std::path::Path) -> Result<()> {
        let _ = dir;
        bail!("{}: checkpoints are not supported", self.describe())
    }

    /// Puts back what [`Self::checkpoint`] saved under `dir`.
    fn restore(&self, dir: &std::path::Path) -> Result<()> {
        let _ = dir;
        bail!("{}: checkpoints are not supported", self.describe())
    }

    /// Waits until nothing is still working on this side's mail on behalf of a killed
    /// client (a server finishing its last command). Nothing to wait for by default.
    fn wait_idle(&self) {}

    /// Every mailbox with its messages.
    fn snapshot(&self) -> Result<Snapshot> {
        let mut s = Snapshot::new();
        for m in self.mailboxes()? {
            let msgs = self.messages(&m)?;
            s.insert(m, msgs);
        }
        Ok(s)
    }
}

/// What one `twinbox` run printed in its summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Mailboxes considered.
    pub mailboxes: u64,
    /// Mailboxes opened (selected).
    pub opened: u64,
    /// Messages copied to the local side.
    pub to_local: u64,
    /// Messages copied to the remote side.
    pub to_remote: u64,
    /// Flag changes applied.
    pub flags: u64,
    /// Messages expunged.
    pub expunged: u64,
    /// Whether some mailbox failed.
    pub failed: bool,
}

impl Summary {
    /// Parses `ACCOUNT: N mailboxes (K opened), copied A to local / B to remote, F flag
    /// changes, E expunged, ...`.
    pub fn parse(line: &str) -> Option<Summary> {
        let re = regex::Regex::new(
            r"(\d+) mailboxes \((\d+) opened\), copied (\d+) to local / (\d+) to remote, (\d+) flag changes, (\d+) expunged",
        )
        .ok()?;
        let c = re.captures(line)?;
        let n = |i: usize| c.get(i).and_then(|m| m.as_str().parse().ok());
        Some(Summary {
            mailboxes: n(1)?,
            opened: n(2)?,
            to_local: n(3)?,
            to_remote: n(4)?,
            flags: n(5)?,
            expunged: n(6)?,
            failed: line.contains("FAILED"),
        })
    }

    /// Messages copied, flags changed and messages expunged, together.
    pub fn changes(&self) -> u64 {
        self.to_local + self.to_remote + self.flags + self.expunged
    }
}

/// The outcome of one `twinbox` run.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Exit code (None: killed by a signal, e.g. an injected fault's abort).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The account's summary line, if printed.
    pub summary: Option<Summary>,
}

impl RunOutcome {
    /// Collects a finished process's output.
    pub fn from_output(out: Output) -> RunOutcome {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let summary = stdout.lines().rev().find_map(Summary::parse);
        RunOutcome {
            code: out.status.code(),
            stdout,
            stderr,
            summary,
        }
    }

    /// Whether the run finished with exit code 0.
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// The summary; panics (a test failure) if the run printed none.
    pub fn summary(&self) -> &Summary {
        self.summary
            .as_ref()
            .unwrap_or_else(|| panic!("twinbox printed no summary line:\n{self}"))
    }
}

impl std::fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The twinbox binary under test.
pub fn twinbox_bin() -> &'static str {
    env!("CARGO_BIN_EXE_twinbox")
}

/// Waits for a child with a time limit, collecting its output; kills it on timeout.
pub fn wait_with_timeout(mut child: Child, timeout: Duration) -> Result<Output> {
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut v);
        }
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut v);
        }
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("twinbox did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    })
}

/// A synced account: remote side (`alice` on a private dovecot), a local side, and a
/// twinbox configuration `[Account Test]` in a temporary directory.
pub struct SyncBed<L: MailSide> {
    /// The remote side.
    pub remote: ImapSide,
    /// The local side.
    pub local: L,
    /// Holds the configuration and the metadata directory.
    pub dir: tempfile::TempDir,
    /// Whether a run with nothing to do must open no mailbox (true unless a side lacks
    /// CONDSTORE, where a full sync lists every mailbox).
    pub noop_opens_nothing: bool,
    account_options: String,
}

/// A dovecot for sync tests: two users, plain loopback login, the command log on.
pub fn start_dovecot(opts: DovecotOptions) -> Arc<Dovecot> {
    Arc::new(Dovecot::start(opts).expect("dovecot should start (is dovecot-imapd installed?)"))
}

impl SyncBed<ImapSide> {
    /// remote = alice, local = bob, on one private dovecot.
    pub fn imap() -> SyncBed<ImapSide> {
        let dv = start_dovecot(DovecotOptions::default().tls(false));
        SyncBed::new(ImapSide::new(dv.clone(), "alice"), ImapSide::new(dv, "bob"))
    }

    /// remote = alice on a dovecot with `remote` options, local = bob on one with `local`.
    pub fn imap_pair(remote: DovecotOptions, local: DovecotOptions) -> SyncBed<ImapSide> {
        let r = start_dovecot(remote);
        let l = start_dovecot(local);
        SyncBed::new(ImapSide::new(r, "alice"), ImapSide::new(l, "bob"))
    }
}

impl<L: MailSide> SyncBed<L> {
    /// A bed over these sides; writes the configuration.
    pub fn new(remote: ImapSide, local: L) -> SyncBed<L> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let bed = SyncBed {
            remote,
            local,
            dir,
            noop_opens_nothing: true,
            account_options: String::new(),
        };
        bed.write_config().expect("write the twinbox configuration");
        bed
    }

    /// Adds `key = value` lines to `[Account Test]` and rewrites the configuration.
    pub fn account_option(&mut self, line: &str) {
        self.account_options.push_str(line);
        self.account_options.push('\n');
        self.write_config()
            .expect("write the twinbox configuration");
    }

    /// The configuration file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("twinbox.conf")
    }

    /// The metadata directory (state database, lock).
    pub fn metadata(&self) -> PathBuf {
        self.dir.path().join("meta")
    }

    /// The account's state database.
    pub fn state_db(&self) -> PathBuf {
        self.metadata().join("Test.db")
    }

    fn write_config(&self) -> Result<()> {
        let text = format!(
            "[general]\naccounts = Test\nmetadata = {}\n\n[Account Test]\nlocalrepository = Local\nremoterepository = Remote\n{}\n{}{}",
            self.metadata().display(),
            self.account_options,
            self.remote.repository("Remote"),
            self.local.repository("Local"),
        );
        std::fs::write(self.config_path(), text).context("writing the config")
    }

    /// A ready `twinbox -c CONFIG` command (add arguments, environment; spawn it).
    pub fn command(&self) -> Command {
        let mut c = Command::new(twinbox_bin());
        c.arg("-c")
            .arg(self.config_path())
            .env_remove("TWINBOX_FAULT_AFTER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs twinbox once with extra arguments and environment.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> RunOutcome {
        let _ = std::fs::write(
            self.dir.path().join("state-before-last-run.txt"),
            self.dump_state(),
        );
        let mut c = self.command();
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c.spawn().expect("spawn twinbox");
        RunOutcome::from_output(wait_with_timeout(child, RUN_TIMEOUT).expect("twinbox run"))
    }

    /// Runs twinbox once under `/usr/bin/time` (when installed) and returns its peak RSS in
    /// kB with the outcome (asserting success).
    pub fn sync_measured(&self) -> (RunOutcome, Option<u64>) {
        if !std::path::Path::new("/usr/bin/time").exists() {
            return (self.sync(), None);
        }
        let mut c = Command::new("/usr/bin/time");
        c.args(["-f", "twinbox-maxrss-kb=%M", twinbox_bin(), "-c"])
            .arg(self.config_path())
            .env_remove("TWINBOX_FAULT_AFTER")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = c.spawn().expect("spawn twinbox");
        let r =
            RunOutcome::from_output(wait_with_timeout(child, RUN_TIMEOUT).expect("twinbox run"));
        assert!(r.ok(), "twinbox run failed:\n{r}");
        let rss = r
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("twinbox-maxrss-kb="))
            .and_then(|v| v.trim().parse().ok());
        (r, rss)
    }

    /// Runs twinbox once.
    pub fn run(&self) -> RunOutcome {
        self.run_with(&[], &[])
    }

    /// Runs twinbox once and asserts it succeeded.
    pub fn sync(&self) -> RunOutcome {
        let r = self.run();
        assert!(r.ok(), "twinbox run failed:\n{r}");
        r
    }

    /// Saves both sides and the twinbox metadata under `name` in the bed's directory.
    pub fn checkpoint(&self, name: &str) {
        let dir = self.dir.path().join("checkpoints").join(name);
        std::fs::create_dir_all(&dir).expect("checkpoint directory");
        self.local
            .checkpoint(&dir.join("local"))
            .expect("checkpoint local");
        self.remote
            .checkpoint(&dir.join("remote"))
            .expect("checkpoint remote");
        if self.metadata().exists() {
            copy_tree(&self.metadata(), &dir.join("meta")).expect("checkpoint metadata");
        }
    }

    /// Puts both sides and the metadata back as [`Self::checkpoint`] saved them.
    pub fn restore(&self, name: &str) {
        let dir = self.dir.path().join("checkpoints").join(name);
        self.local
            .restore(&dir.join("local"))
            .expect("restore local");
        self.remote
            .restore(&dir.join("remote"))
            .expect("restore remote");
        if dir.join("meta").exists() {
            copy_tree(&dir.join("meta"), &self.metadata()).expect("restore metadata");
        } else if self.metadata().exists() {
            std::fs::remove_dir_all(self.metadata()).expect("remove metadata");
        }
    }

    /// Both sides' snapshots (local, remote).
    pub fn snapshots(&self) -> (Snapshot, Snapshot) {
        let l = self.local.snapshot().expect("local snapshot");
        let r = self.remote.snapshot().expect("remote snapshot");
        (l, r)
    }

    /// Asserts both sides hold the same mailboxes, the same messages (content hash) with the
    /// same flags, and no message twice in a mailbox; returns the common snapshot.
    pub fn assert_same(&self) -> Snapshot {
        let (l, r) = self.snapshots();
        if let Err(e) = compare(&l, &r) {
            panic!(
                "sides differ: {e}\nlocal ({}): {}\nremote ({}): {}",
                self.local.describe(),
                render(&l),
                self.remote.describe(),
                render(&r)
            );
        }
        r
    }

    /// The state database's tables as text (for failure messages).
    pub fn dump_state(&self) -> String {
        dump_state(&self.state_db()).unwrap_or_else(|e| format!("(no state: {e:#})"))
    }

    fn dump_state_before_last_run(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("state-before-last-run.txt"))
            .unwrap_or_default()
    }

    /// [`Self::assert_same`], then a second run that must succeed, open no mailbox and
    /// change nothing, after which the sides are as before. Returns the common snapshot.
    pub fn assert_converged(&self) -> Snapshot {
        let before = self.assert_same();
        let again = self.sync();
        let s = again.summary();
        assert_eq!(
            s.changes(),
            0,
            "a second run changed something (not idempotent):\n{again}\nstate before it:\n{}",
            self.dump_state_before_last_run()
        );
        if self.noop_opens_nothing {
            assert_eq!(s.opened, 0, "a second run opened mailboxes:\n{again}");
        }
        let after = self.assert_same();
        assert_eq!(before, after, "the sides changed on a no-op run");
        after
    }
}

/// Compares two snapshots: same mailboxes, same messages and flags, no duplicates.
pub fn compare(local: &Snapshot, remote: &Snapshot) -> Result<()> {
    for (side, s) in [("local", local), ("remote", remote)] {
        for (m, msgs) in s {
            for w in msgs.windows(2) {
                if w[0].sha256 == w[1].sha256 {
                    bail!("{side} {m}: message {} twice", &w[0].sha256[..12]);
                }
            }
        }
    }
    let names = |s: &Snapshot| s.keys().cloned().collect::<Vec<_>>();
    if names(local) != names(remote) {
        bail!(
            "mailboxes differ: local {:?}, remote {:?}",
            names(local),
            names(remote)
        );
    }
    for (m, lm) in local {
        let rm = remote.get(m).ok_or_else(|| anyhow!("no remote {m}"))?;
        if lm != rm {
            bail!("{m}: messages or flags differ");
        }
    }
    Ok(())
}

/// A readable dump of a snapshot (hash prefixes and flags).
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    for (m, msgs) in s {
        out.push_str(&format!("\n  {m}:"));
        for x in msgs {
            out.push_str(&format!(" {}{:?}", &x.sha256[..8], x.flags));
        }
    }
    out
}

/// Content hash of a raw message (CRLF-normalised), as the sides report it.
pub fn sha(raw: &[u8]) -> String {
    message_sha256_hex(raw)
}

/// The expected message: this content with these flags.
pub fn msg(raw: &[u8], flags: &[&str]) -> Msg {
    let mut f: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    f.sort();
    Msg {
        sha256: sha(raw),
        flags: f,
    }
}

/// The mailbox and message tables of a state database as text.
pub fn dump_state(path: &std::path::Path) -> Result<String> {
    let uri = format!("file:{}?mode=ro", path.display());
    let conn = rusqlite::Connection::open_with_flags(
        uri,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )?;
    let mut out = String::new();
    for (title, sql) in [
        ("mailbox", "SELECT * FROM mailbox ORDER BY id"),
        ("message", "SELECT * FROM message ORDER BY mailbox, id"),
    ] {
        out.push_str(title);
        out.push_str(":\n");
        let mut st = conn.prepare(sql)?;
        let n = st.column_count();
        let names: Vec<String> = st.column_names().map(|s| s.to_string()).collect();
        out.push_str(&format!("  {}\n", names.join(" | ")));
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let v: Vec<String> = (0..n)
                .map(|i| match r.get_ref(i) {
                    Ok(rusqlite::types::ValueRef::Integer(x)) => x.to_string(),
                    Ok(rusqlite::types::ValueRef::Text(t)) => {
                        String::from_utf8_lossy(t).into_owned()
                    }
                    Ok(rusqlite::types::ValueRef::Null) => "NULL".into(),
                    _ => "?".into(),
                })
                .collect();
            out.push_str(&format!("  {}\n", v.join(" | ")));
        }
    }
    Ok(out)
}
