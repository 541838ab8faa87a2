//! [`ImapSide`]: an account on a private dovecot as one side of a synced account, seen and
//! changed with doveadm behind twinbox's back.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use twinbox::testbed::{message_sha256_hex, Dovecot};

use super::sync::{MailSide, Msg, Snapshot};

/// UIDs by neutral mailbox name and content hash.
type UidCache = HashMap<String, HashMap<String, Vec<u32>>>;

/// An account on a (possibly shared) private dovecot, inspected with doveadm.
#[derive(Clone)]
pub struct ImapSide {
    /// The server.
    pub dovecot: Arc<Dovecot>,
    /// The account.
    pub user: String,
    /// Known UIDs by (neutral mailbox, content hash); refreshed on a miss, dropped when
    /// UIDs may change (expunge, UIDVALIDITY, restore).
    uids: Arc<Mutex<UidCache>>,
}

/// One message in [`ImapSide::fetch_mailbox`].
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Neutral mailbox name.
    pub mailbox: String,
    /// UID.
    pub uid: u32,
    /// The message, as [`Msg`].
    pub msg: Msg,
}

impl ImapSide {
    /// `user` on `dovecot`.
    pub fn new(dovecot: Arc<Dovecot>, user: &str) -> ImapSide {
        ImapSide {
            dovecot,
            user: user.to_string(),
            uids: Arc::default(),
        }
    }

    /// Every message of one mailbox (neutral name) with its UID, in one `doveadm fetch`.
    pub fn fetch_mailbox(&self, mailbox: &str) -> Result<Vec<Fetched>> {
        let native = self.native(mailbox);
        let out = self.dovecot.doveadm(&[
            "-f",
            "pager",
            "fetch",
            "-u",
            &self.user,
            "mailbox uid flags size.physical text",
            "mailbox",
            &native,
        ])?;
        let sep = self.dovecot.separator().to_string();
        let mut rest: &[u8] = &out;
        let mut v = Vec::new();
        let field = |rest: &mut &[u8], name: &str| -> Result<String> {
            let prefix = format!("{name}:");
            let after = rest
                .strip_prefix(prefix.as_bytes())
                .ok_or_else(|| anyhow!("doveadm fetch: expected {name}"))?;
            let nl = after
                .iter()
                .position(|b| *b == b'\n')
                .ok_or_else(|| anyhow!("doveadm fetch: unterminated {name}"))?;
            let value = String::from_utf8_lossy(&after[..nl]).trim().to_string();
            *rest = &after[nl + 1..];
            Ok(value)
        };
        while !rest.is_empty() {
            let mailbox = field(&mut rest, "mailbox")?.replace(&sep, "/");
            let uid: u32 = field(&mut rest, "uid")?.parse()?;
            let flags: Vec<String> = field(&mut rest, "flags")?
                .split_ascii_whitespace()
                .map(str::to_string)
                .collect();
            let size: usize = field(&mut rest, "size.physical")?.parse()?;
            rest = rest
                .strip_prefix(b"text:\n")
                .ok_or_else(|| anyhow!("doveadm fetch: expected text"))?;
            if rest.len() < size {
                bail!("doveadm fetch: text of UID {uid} is short");
            }
            let sha256 = message_sha256_hex(&rest[..size]);
            rest = &rest[size..];
            rest = rest
                .strip_prefix(b"\x0c\n")
                .or_else(|| rest.strip_prefix(b"\n"))
                .unwrap_or(rest);
            v.push(Fetched {
                mailbox,
                uid,
                msg: Msg {
                    sha256,
                    flags: sorted_flags(flags),
                },
            });
        }
        Ok(v)
    }

    fn forget_uids(&self, mailbox: Option<&str>) {
        if let Ok(mut c) = self.uids.lock() {
            match mailbox {
                Some(m) => {
                    c.remove(m);
                }
                None => c.clear(),
            }
        }
    }

    /// The server's spelling of a neutral name.
    pub fn native(&self, mailbox: &str) -> String {
        mailbox.replace('/', &self.dovecot.separator().to_string())
    }

    /// The UID of the message with this hash (exactly one must exist).
    pub fn uid_of(&self, mailbox: &str, sha256: &str) -> Result<u32> {
        let cached = self
            .uids
            .lock()
            .ok()
            .and_then(|c| c.get(mailbox).and_then(|m| m.get(sha256)).cloned());
        let found = match cached {
            Some(v) => v,
            None => {
                let mut map: HashMap<String, Vec<u32>> = HashMap::new();
                for m in self.fetch_mailbox(mailbox)? {
                    map.entry(m.msg.sha256).or_default().push(m.uid);
                }
                let v = map.get(sha256).cloned().unwrap_or_default();
                if let Ok(mut c) = self.uids.lock() {
                    c.insert(mailbox.to_string(), map);
                }
                v
            }
        };
        match found.as_slice() {
            [u] => Ok(*u),
            [] => bail!("{}: no message {sha256} in {mailbox}", self.describe()),
            _ => bail!(
                "{}: {} copies of {sha256} in {mailbox}",
                self.describe(),
                found.len()
            ),
        }
    }

    /// Changes a mailbox's UIDVALIDITY behind the client's back.
    pub fn set_uidvalidity(&self, mailbox: &str, uidvalidity: u32) -> Result<()> {
        self.forget_uids(None);
        self.dovecot
            .set_uidvalidity(&self.user, &self.native(mailbox), uidvalidity)
    }

    /// The mailbox's current UIDVALIDITY.
    pub fn uidvalidity(&self, mailbox: &str) -> Result<u32> {
        Ok(self
            .dovecot
            .mailbox_status(&self.user, &self.native(mailbox))?
            .uidvalidity)
    }

    /// Waits until every IMAP session the server started has ended (by its log), e.g.
    /// after killing a client whose last command the server may still be executing.
    pub fn wait_sessions_ended(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.dovecot.log_contents();
            let logins = log
                .lines()
                .filter(|l| l.contains("imap-login: Info: Login: "))
                .count();
            let ended = self.dovecot.session_byte_counts().len();
            if ended >= logins {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "dovecot sessions did not end ({ended} of {logins})"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The IMAP commands the server saw from this user so far (needs the command log).
    pub fn commands_seen(&self) -> Result<Vec<String>> {
        self.dovecot.commands_seen(&self.user)
    }
}

fn sorted_flags(flags: Vec<String>) -> Vec<String> {
    let mut f: Vec<String> = flags
        .into_iter()
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .collect();
    f.sort();
    f.dedup();
    f
}

impl MailSide for ImapSide {
    fn describe(&self) -> String {
        format!("imap {}@127.0.0.1:{}", self.user, self.dovecot.imap_port())
    }

    fn repository(&self, name: &str) -> String {
        format!(
            "[Repository {name}]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {}\nssl = no\nstarttls = no\nremoteuser = {}\nremotepass = secret\n\n",
            self.dovecot.imap_port(),
            self.user
        )
    }

    fn mailboxes(&self) -> Result<Vec<String>> {
        let sep = self.dovecot.separator().to_string();
        let mut v: Vec<String> = self
            .dovecot
            .mailboxes(&self.user)?
            .into_iter()
            .map(|m| m.replace(&sep, "/"))
            .collect();
        v.sort();
        Ok(v)
    }

    fn messages(&self, mailbox: &str) -> Result<Vec<Msg>> {
        let mut v: Vec<Msg> = self
            .dovecot
            .list_messages(&self.user, &self.native(mailbox))?
            .into_iter()
            .map(|m| Msg {
                sha256: m.sha256_of_body_hex,
                flags: sorted_flags(m.flags),
            })
            .collect();
        v.sort();
        Ok(v)
    }

    fn create_mailbox(&self, mailbox: &str) -> Result<()> {
        self.dovecot
            .create_mailbox(&self.user, &self.native(mailbox))
    }

    fn delete_mailbox(&self, mailbox: &str) -> Result<()> {
        self.forget_uids(Some(mailbox));
        self.dovecot
            .delete_mailbox(&self.user, &self.native(mailbox))
    }

    fn append(&self, mailbox: &str, raw: &[u8], flags: &[&str]) -> Result<()> {
        self.seed(mailbox, &[raw.to_vec()], flags)
    }

    fn seed(&self, mailbox: &str, raws: &[Vec<u8>], flags: &[&str]) -> Result<()> {
        self.dovecot
            .seed_mailbox(&self.user, &self.native(mailbox), raws, flags)?;
        Ok(())
    }

    fn add_flags(&self, mailbox: &str, sha256: &str, flags: &[&str]) -> Result<()> {
        let uid = self.uid_of(mailbox, sha256)?;
        self.dovecot
            .add_flags(&self.user, &self.native(mailbox), uid, flags)
    }

    fn remove_flags(&self, mailbox: &str, sha256: &str, flags: &[&str]) -> Result<()> {
        let uid = self.uid_of(mailbox, sha256)?;
        self.dovecot
            .remove_flags(&self.user, &self.native(mailbox), uid, flags)
    }

    fn expunge(&self, mailbox: &str, sha256: &str) -> Result<()> {
        let uid = self.uid_of(mailbox, sha256)?;
        self.forget_uids(Some(mailbox));
        self.dovecot.expunge(&self.user, &self.native(mailbox), uid)
    }

    fn snapshot(&self) -> Result<Snapshot> {
        let mut s: Snapshot = self
            .mailboxes()?
            .into_iter()
            .map(|m| (m, Vec::new()))
            .collect();
        let names: Vec<String> = s.keys().cloned().collect();
        for m in names {
            let msgs: Vec<Msg> = self.fetch_mailbox(&m)?.into_iter().map(|f| f.msg).collect();
            s.insert(m, msgs);
        }
        for v in s.values_mut() {
            v.sort();
        }
        Ok(s)
    }

    fn wait_idle(&self) {
        self.wait_sessions_ended();
    }

    fn checkpoint(&self, dir: &std::path::Path) -> Result<()> {
        copy_tree(&self.dovecot.home_dir(&self.user), &dir.join(&self.user))
    }

    fn restore(&self, dir: &std::path::Path) -> Result<()> {
        self.forget_uids(None);
        copy_tree(&dir.join(&self.user), &self.dovecot.home_dir(&self.user))
    }
}

/// Replaces `to` with a copy of `from` (ownership, modes and times kept: `cp -a`).
pub fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to).with_context(|| format!("removing {}", to.display()))?;
    }
    if let Some(p) = to.parent() {
        std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
    }
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .context("running cp -a")?;
    if !st.success() {
        bail!("cp -a {} {} failed", from.display(), to.display());
    }
    Ok(())
}
