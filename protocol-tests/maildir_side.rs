//! The shared sync scenarios (`sync_scenarios`, over `support::sync`) with a Maildir as
//! the local side: `NativeMaildir` (twinbox's own Maildir code) and `DovecotMaildir` (the
//! dovecot engine). bob's Maildir on the bed's dovecot is the local side; dovecot
//! (doveadm) reads and changes it behind twinbox's back.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use twinbox::testbed::{Dovecot, DovecotOptions, MailLayout};

use super::maildir_bed::{chown_r, Engine};
use super::support::sync::{start_dovecot, ImapSide, MailSide, Msg, SyncBed};
use super::sync_scenarios as sc;

/// bob's Maildir as twinbox's local side.
pub struct MaildirSide {
    imap: ImapSide,
    engine: Engine,
    sep: char,
}

impl MaildirSide {
    fn dovecot(&self) -> &Dovecot {
        &self.imap.dovecot
    }

    /// The Maildir root.
    pub fn root(&self) -> PathBuf {
        self.dovecot().home_dir(&self.imap.user).join("Maildir")
    }

    /// Gives the Maildir back to the mail owner: twinbox runs as root in CI and its native
    /// engine writes root-owned files, which dovecot (as the mail owner) must index.
    fn own(&self) {
        let (uid, gid) = self.dovecot().mail_owner();
        chown_r(&self.root(), uid, gid);
    }
}

impl MailSide for MaildirSide {
    fn describe(&self) -> String {
        format!(
            "maildir ({:?} engine, sep {}) {}",
            self.engine,
            self.sep,
            self.root().display()
        )
    }

    fn repository(&self, name: &str) -> String {
        format!(
            "[Repository {name}]\ntype = Maildir\nlocalfolders = {}\nsep = {}\ninbox = root\nmaildir_engine = {}\n\n",
            self.root().display(),
            self.sep,
            match self.engine {
                Engine::Native => "native",
                Engine::Dovecot => "dovecot",
            }
        )
    }

    fn mailboxes(&self) -> Result<Vec<String>> {
        self.own();
        self.imap.mailboxes()
    }

    fn messages(&self, mailbox: &str) -> Result<Vec<Msg>> {
        self.own();
        self.imap.messages(mailbox)
    }

    fn create_mailbox(&self, mailbox: &str) -> Result<()> {
        self.own();
        self.imap.create_mailbox(mailbox)
    }

    fn delete_mailbox(&self, mailbox: &str) -> Result<()> {
        self.own();
        self.imap.delete_mailbox(mailbox)
    }

    fn append(&self, mailbox: &str, raw: &[u8], flags: &[&str]) -> Result<()> {
        self.own();
        self.imap.append(mailbox, raw, flags)
    }

    fn seed(&self, mailbox: &str, raws: &[Vec<u8>], flags: &[&str]) -> Result<()> {
        self.own();
        self.imap.seed(mailbox, raws, flags)
    }

    fn add_flags(&self, mailbox: &str, sha256: &str, flags: &[&str]) -> Result<()> {
        self.own();
        self.imap.add_flags(mailbox, sha256, flags)
    }

    fn remove_flags(&self, mailbox: &str, sha256: &str, flags: &[&str]) -> Result<()> {
        self.own();
        self.imap.remove_flags(mailbox, sha256, flags)
    }

    fn expunge(&self, mailbox: &str, sha256: &str) -> Result<()> {
        self.own();
        self.imap.expunge(mailbox, sha256)
    }

    fn checkpoint(&self, dir: &Path) -> Result<()> {
        self.own();
        self.imap.checkpoint(dir)
    }

    fn restore(&self, dir: &Path) -> Result<()> {
        self.imap.restore(dir)
    }
}

/// A bed with remote alice and bob's Maildir as the local side, on one dovecot that keeps
/// folder names in UTF-8 on disk (as twinbox writes them).
pub fn maildir_bed(engine: Engine, sep: char) -> SyncBed<MaildirSide> {
    let (layout, loc) = if sep == '/' {
        (MailLayout::Fs, "maildir:~/Maildir:LAYOUT=fs:UTF-8")
    } else {
        (MailLayout::MaildirPlusPlus, "maildir:~/Maildir:UTF-8")
    };
    let dv: Arc<Dovecot> = start_dovecot(
        DovecotOptions::default()
            .tls(false)
            .compress(false)
            .layout(layout)
            .extra_config(format!("mail_location = {loc}\n")),
    );
    let local = MaildirSide {
        imap: ImapSide::new(dv.clone(), "bob"),
        engine,
        sep,
    };
    std::fs::create_dir_all(local.root()).expect("mkdir Maildir");
    let (uid, gid) = dv.mail_owner();
    chown_r(&dv.home_dir("bob"), uid, gid);
    SyncBed::new(ImapSide::new(dv, "alice"), local)
}

macro_rules! shared {
    ($($test:ident: $engine:expr, $sep:expr, |$bed:ident| $body:expr;)*) => {
        $(
            #[test]
            fn $test() {
                let $bed = maildir_bed($engine, $sep);
                $body;
            }
        )*
    };
}

shared! {
    maildir_native_shared_first_sync_to_local: Engine::Native, '/', |b| sc::first_sync_populated_to_empty(&b, false);
    maildir_native_shared_first_sync_to_remote: Engine::Native, '/', |b| sc::first_sync_populated_to_empty(&b, true);
    maildir_native_shared_changes_on_both_sides: Engine::Native, '/', |b| sc::changes_on_both_sides(&b);
    maildir_native_shared_flag_conflicts: Engine::Native, '/', |b| sc::flag_conflicts_merge(&b);
    maildir_native_shared_expunge_beats_flags: Engine::Native, '/', |b| sc::expunge_beats_flag_change(&b);
    maildir_native_shared_pairing: Engine::Native, '/', |b| sc::same_message_on_both_sides_before_first_sync(&b);
    maildir_native_shared_mailboxes_created: Engine::Native, '/', |b| sc::mailboxes_created_on_either_side(&b);
    maildir_native_shared_changes_maildirplusplus: Engine::Native, '.', |b| sc::changes_on_both_sides(&b);
    maildir_dovecot_shared_first_sync_to_local: Engine::Dovecot, '/', |b| sc::first_sync_populated_to_empty(&b, false);
    maildir_dovecot_shared_first_sync_to_remote: Engine::Dovecot, '/', |b| sc::first_sync_populated_to_empty(&b, true);
    maildir_dovecot_shared_changes_on_both_sides: Engine::Dovecot, '/', |b| sc::changes_on_both_sides(&b);
    maildir_dovecot_shared_flag_conflicts: Engine::Dovecot, '/', |b| sc::flag_conflicts_merge(&b);
    maildir_dovecot_shared_expunge_beats_flags: Engine::Dovecot, '/', |b| sc::expunge_beats_flag_change(&b);
    maildir_dovecot_shared_pairing: Engine::Dovecot, '/', |b| sc::same_message_on_both_sides_before_first_sync(&b);
    maildir_dovecot_shared_mailboxes_created: Engine::Dovecot, '/', |b| sc::mailboxes_created_on_either_side(&b);
}
