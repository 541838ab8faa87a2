//! Shared set-up for the command-line tests: a private dovecot with two users (`alice` is
//! the remote side, `bob` the local side), a config file in a temp HOME, and the real
//! `twinbox` binary run against them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use twinbox::testbed::{Dovecot, DovecotOptions};

/// A dovecot, a HOME and a configuration.
pub struct Bed {
    /// The server (alice = remote, bob = local).
    pub dv: Dovecot,
    /// The temporary HOME (config, metadata, hook output).
    pub home: tempfile::TempDir,
}

/// One mailbox's content as a sorted list of (content hash, flags).
pub type Snapshot = Vec<(String, Vec<String>)>;

impl Bed {
    /// A dovecot without TLS (plain loopback logins).
    pub fn new() -> Bed {
        let dv = Dovecot::start(DovecotOptions::default().tls(false))
            .expect("dovecot should start (is dovecot-imapd installed?)");
        let home = tempfile::tempdir().expect("tempdir");
        Bed { dv, home }
    }

    /// The config path.
    pub fn conf(&self) -> PathBuf {
        self.home.path().join("twinbox.conf")
    }

    /// The metadata directory.
    pub fn meta(&self) -> PathBuf {
        self.home.path().join("meta")
    }

    /// The state database of account `T`.
    pub fn state(&self) -> PathBuf {
        self.meta().join("T.db")
    }

    /// A repository section for `user` with extra option lines.
    pub fn repo(&self, name: &str, user: &str, extra: &str) -> String {
        format!(
            "[Repository {name}]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {}\nssl = no\nstarttls = no\nremoteuser = {user}\nremotepass = secret\n{extra}\n",
            self.dv.imap_port()
        )
    }

    /// Writes a config with one account `T` (Local = bob, Remote = alice) and extra lines
    /// for the account and each repository.
    pub fn write_conf(&self, account: &str, local: &str, remote: &str) {
        self.write_raw(&format!(
            "[general]\naccounts = T\nmetadata = {}\n\n[Account T]\nlocalrepository = Local\nremoterepository = Remote\n{account}\n\n{}{}",
            self.meta().display(),
            self.repo("Local", "bob", local),
            self.repo("Remote", "alice", remote)
        ));
    }

    /// Writes the config file as given.
    pub fn write_raw(&self, text: &str) {
        std::fs::write(self.conf(), text).expect("write config");
    }

    /// Runs twinbox with `-c CONF` and `args`, HOME pointing at the temp HOME.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.arg("-c").arg(self.conf()).args(args);
        c.output().expect("run twinbox")
    }

    /// The twinbox binary with a clean environment (HOME = the temp HOME).
    pub fn cmd(&self) -> Command {
        twinbox_cmd(self.home.path())
    }

    /// Messages of `user`'s `mailbox`, as (hash, flags) sorted.
    pub fn snapshot(&self, user: &str, mailbox: &str) -> Snapshot {
        self.dv
            .contents(user, mailbox)
            .unwrap_or_else(|e| panic!("list {user} {mailbox}: {e:#}"))
    }

    /// Every mailbox of `user` with its snapshot.
    pub fn everything(&self, user: &str) -> Vec<(String, Snapshot)> {
        self.dv
            .mailboxes(user)
            .expect("mailboxes")
            .into_iter()
            .map(|m| {
                let s = self.snapshot(user, &m);
                (m, s)
            })
            .collect()
    }
}

/// The twinbox binary with HOME = `home` and no XDG variables.
pub fn twinbox_cmd(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_twinbox"));
    c.env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("RUST_LOG");
    c
}

/// Standard output and error as text, for assertions.
pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Asserts the exit code, showing the output otherwise.
#[track_caller]
pub fn expect_code(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
}
