//! A test bed for the Maildir side: a private dovecot whose user `alice` is the remote
//! (over IMAP) and whose user `bob` has his Maildir synced by twinbox as the local side,
//! natively or through the dovecot engine. dovecot's own view of bob's Maildir (doveadm)
//! is the independent reader that checks what twinbox wrote, and the tool that changes
//! it behind twinbox's back.

#![allow(dead_code)] // shared by several test files; each uses a part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use twinbox::testbed::{message_sha256_hex, Dovecot, DovecotOptions, MailLayout};

/// The remote user (IMAP).
pub const REMOTE: &str = "alice";
/// The local user (his Maildir is twinbox's local side).
pub const LOCAL: &str = "bob";

/// Which engine runs the local side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// twinbox's own Maildir code.
    Native,
    /// dovecot's imap binary as a PREAUTH tunnel.
    Dovecot,
}

/// One message as compared: content hash (CRLF) and sorted flags.
pub type Msg = (String, Vec<String>);

/// The bed.
pub struct Bed {
    /// The dovecot serving alice and reading bob's Maildir.
    pub dv: Dovecot,
    /// Config, metadata, logs.
    pub dir: tempfile::TempDir,
    /// The twinbox configuration file.
    pub conf: PathBuf,
    /// bob's Maildir root (twinbox's `localfolders`).
    pub maildir: PathBuf,
}

/// `chown -R uid:gid path`.
pub fn chown_r(path: &Path, uid: u32, gid: u32) {
    if !path.exists() {
        return;
    }
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).expect("chown");
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).expect("read_dir") {
            chown_r(&e.expect("entry").path(), uid, gid);
        }
    }
}

impl Bed {
    /// A bed with the given engine and separator (`/`: LAYOUT=fs, `.`: Maildir++), INBOX
    /// at the Maildir root and UTF-8 folder names on disk, as twinbox writes them.
    pub fn new(engine: Engine, sep: char) -> Bed {
        Bed::with_inbox(engine, sep, false)
    }

    /// [`Bed::new`], with INBOX in `Maildir/INBOX/` (twinbox's `inbox = folder`, the
    /// default) when `inbox_folder`.
    pub fn with_inbox(engine: Engine, sep: char, inbox_folder: bool) -> Bed {
        let (layout, mut loc) = if sep == '/' {
            (
                MailLayout::Fs,
                "maildir:~/Maildir:LAYOUT=fs:UTF-8".to_string(),
            )
        } else {
            (
                MailLayout::MaildirPlusPlus,
                "maildir:~/Maildir:UTF-8".to_string(),
            )
        };
        if inbox_folder {
            loc.push_str(":INBOX=~/Maildir/INBOX");
        }
        let dv = Dovecot::start(
            DovecotOptions::default()
                .tls(false)
                .compress(false)
                .command_log(false)
                .layout(layout)
                .extra_config(format!("mail_location = {loc}\n")),
        )
        .expect("dovecot should start (is dovecot-imapd installed?)");
        let dir = tempfile::tempdir().expect("tempdir");
        let maildir = dv.home_dir(LOCAL).join("Maildir");
        std::fs::create_dir_all(&maildir).expect("mkdir Maildir");
        let (uid, gid) = dv.mail_owner();
        chown_r(&dv.home_dir(LOCAL), uid, gid);
        let conf = dir.path().join("twinbox.conf");
        let engine = match engine {
            Engine::Native => "native",
            Engine::Dovecot => "dovecot",
        };
        std::fs::write(
            &conf,
            format!(
                "[general]\naccounts = T\nmetadata = {meta}\n\n[Account T]\nlocalrepository = Local\nremoterepository = Remote\n\n\
                 [Repository Local]\ntype = Maildir\nlocalfolders = {md}\nsep = {sep}\ninbox = {inbox}\nmaildir_engine = {engine}\n\n\
                 [Repository Remote]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {port}\nssl = no\nstarttls = no\nremoteuser = {REMOTE}\nremotepass = secret\n",
                meta = dir.path().join("meta").display(),
                md = maildir.display(),
                port = dv.imap_port(),
                inbox = if inbox_folder { "folder" } else { "root" },
            ),
        )
        .expect("write config");
        Bed {
            dv,
            dir,
            conf,
            maildir,
        }
    }

    /// The twinbox command for this bed.
    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_twinbox"));
        c.arg("-c").arg(&self.conf).args(["-d", "maildir"]);
        c.env_remove("TWINBOX_FAULT_AFTER");
        c
    }

    /// Gives bob's Maildir back to the mail owner (twinbox runs as root in CI), so that
    /// dovecot can read and index it.
    pub fn fix_owner(&self) {
        let (uid, gid) = self.dv.mail_owner();
        chown_r(&self.maildir, uid, gid);
    }

    /// Runs a sync; returns the output (the Maildir is handed back to its owner after).
    pub fn run_output(&self, fault_after: Option<u32>) -> Output {
        let mut c = self.command();
        if let Some(n) = fault_after {
            c.env("TWINBOX_FAULT_AFTER", n.to_string());
        }
        let out = c.output().expect("run twinbox");
        self.fix_owner();
        out
    }

    /// Runs a sync that must succeed; returns stdout + stderr.
    pub fn sync(&self) -> String {
        let out = self.run_output(None);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "twinbox failed: {text}");
        text
    }

    /// A user's messages in a folder, as (hash, sorted flags), sorted.
    pub fn messages(&self, user: &str, folder: &str) -> Vec<Msg> {
        self.dv
            .contents(user, folder)
            .unwrap_or_else(|e| panic!("list {user} {folder}: {e:#}"))
    }

    /// Asserts both sides hold the same messages with the same flags in each folder, and
    /// that no message is there twice.
    pub fn assert_same(&self, folders: &[&str]) {
        for f in folders {
            let r = self.messages(REMOTE, f);
            let l = self.messages(LOCAL, f);
            assert_eq!(l, r, "folder {f}: local (left) and remote (right) differ");
            let mut hashes: Vec<&String> = r.iter().map(|(h, _)| h).collect();
            hashes.dedup();
            assert_eq!(
                hashes.len(),
                r.len(),
                "folder {f}: a message is there twice"
            );
        }
    }

    /// Every folder of a user.
    pub fn folders(&self, user: &str) -> Vec<String> {
        self.dv.mailboxes(user).expect("mailboxes")
    }

    /// Files (full paths) of a local folder's `cur/` and `new/`.
    pub fn files(&self, folder_dir: &Path) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for sub in ["cur", "new"] {
            if let Ok(rd) = std::fs::read_dir(folder_dir.join(sub)) {
                for e in rd.flatten() {
                    v.push(e.path());
                }
            }
        }
        v.sort();
        v
    }

    /// The flags of each message hash in a folder, as a map.
    pub fn flags_by_hash(&self, user: &str, folder: &str) -> BTreeMap<String, Vec<String>> {
        self.messages(user, folder).into_iter().collect()
    }
}

/// The hash the comparison uses for a message's bytes.
pub fn hash(raw: &[u8]) -> String {
    message_sha256_hex(raw)
}

/// The summary line's counters: (copied to local, copied to remote).
pub fn copied(out: &str) -> (u64, u64) {
    let line = out
        .lines()
        .find(|l| l.contains(" mailboxes (") && l.contains("copied "))
        .unwrap_or_else(|| panic!("no summary in {out}"));
    let after = line.split("copied ").nth(1).unwrap_or("");
    let mut nums = after
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>().unwrap_or(0));
    (nums.next().unwrap_or(0), nums.next().unwrap_or(0))
}

/// The `N read` figure of the native store's listing line (None for the dovecot engine).
pub fn folders_read(out: &str) -> Option<u64> {
    let line = out
        .lines()
        .find(|l| l.contains(" read (the rest unchanged"))?;
    let before = line.split(" read (").next()?;
    before.rsplit(' ').next()?.parse().ok()
}
