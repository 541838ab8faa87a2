//! `doveadm` helpers: inspect and change a private dovecot's mail behind the client's back.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

use super::super::tls::hex;
use super::{
    chown, maildir_flag_letter, message_sha256_hex, mkdir, normalize_crlf, write_file, Dovecot,
    MailboxStatus, MessageSummary, DOVEADM_BIN,
};

impl Dovecot {
    fn doveadm_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(DOVEADM_BIN);
        cmd.arg("-c").arg(&self.config_path).args(args);
        cmd
    }

    /// Runs `doveadm -c CONF ARGS...` and returns its standard output. (As root doveadm
    /// changes to the mail owner itself; as a user the instance runs as that user.)
    pub fn doveadm(&self, args: &[&str]) -> Result<Vec<u8>> {
        self.doveadm_with_input(args, None)
    }

    /// Runs doveadm with `input` on its standard input.
    pub fn doveadm_with_input(&self, args: &[&str], input: Option<&[u8]>) -> Result<Vec<u8>> {
        let mut cmd = self.doveadm_command(args);
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("running doveadm {args:?}"))?;
        let writer = match (input, child.stdin.take()) {
            (Some(data), Some(mut stdin)) => {
                let data = data.to_vec();
                Some(std::thread::spawn(move || stdin.write_all(&data)))
            }
            _ => None,
        };
        let out = child
            .wait_with_output()
            .with_context(|| format!("running doveadm {args:?}"))?;
        if let Some(w) = writer {
            match w.join() {
                Ok(r) => r.with_context(|| format!("writing to doveadm {args:?}"))?,
                Err(_) => bail!("writer thread for doveadm {args:?} panicked"),
            }
        }
        if !out.status.success() {
            bail!(
                "doveadm {args:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out.stdout)
    }

    /// Creates a mailbox (parents as needed).
    pub fn create_mailbox(&self, user: &str, name: &str) -> Result<()> {
        self.doveadm(&["mailbox", "create", "-u", user, name])?;
        Ok(())
    }

    /// Deletes a mailbox and its messages.
    pub fn delete_mailbox(&self, user: &str, name: &str) -> Result<()> {
        self.doveadm(&["mailbox", "delete", "-u", user, name])?;
        Ok(())
    }

    /// Renames a mailbox.
    pub fn rename_mailbox(&self, user: &str, old: &str, new: &str) -> Result<()> {
        self.doveadm(&["mailbox", "rename", "-u", user, old, new])?;
        Ok(())
    }

    /// All mailbox names of `user` (UTF-8, full hierarchy names), sorted.
    pub fn mailboxes(&self, user: &str) -> Result<Vec<String>> {
        let out = self.doveadm(&["mailbox", "list", "-u", user])?;
        let mut v: Vec<String> = String::from_utf8_lossy(&out)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        v.sort();
        Ok(v)
    }

    /// MESSAGES, UIDNEXT, UIDVALIDITY and HIGHESTMODSEQ of a mailbox. (Mailbox names here
    /// and in the other helpers are doveadm masks: avoid `*` and `%` in test names.)
    pub fn mailbox_status(&self, user: &str, mailbox: &str) -> Result<MailboxStatus> {
        let out = self.doveadm(&[
            "-f",
            "tab",
            "mailbox",
            "status",
            "-u",
            user,
            "messages uidnext uidvalidity highestmodseq",
            mailbox,
        ])?;
        let text = String::from_utf8_lossy(&out);
        let mut lines = text.lines();
        let header: Vec<&str> = lines
            .next()
            .ok_or_else(|| anyhow!("empty mailbox status output for {mailbox:?}"))?
            .split('\t')
            .collect();
        let col = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .ok_or_else(|| anyhow!("no {name} column in {header:?}"))
        };
        let (c_box, c_msgs, c_next, c_valid, c_hms) = (
            col("mailbox").ok(),
            col("messages")?,
            col("uidnext")?,
            col("uidvalidity")?,
            col("highestmodseq")?,
        );
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
        let row = rows
            .iter()
            .find(|r| c_box.is_none_or(|c| r.get(c) == Some(&mailbox)))
            .or(if rows.len() == 1 { rows.first() } else { None })
            .ok_or_else(|| anyhow!("no status row for {mailbox:?} in {text:?}"))?;
        let num = |c: usize| -> Result<u64> {
            let v = row
                .get(c)
                .ok_or_else(|| anyhow!("short status row {row:?}"))?;
            v.parse()
                .with_context(|| format!("bad number {v:?} in mailbox status"))
        };
        Ok(MailboxStatus {
            messages: u32::try_from(num(c_msgs)?)?,
            uidnext: u32::try_from(num(c_next)?)?,
            uidvalidity: u32::try_from(num(c_valid)?)?,
            highestmodseq: num(c_hms)?,
        })
    }

    /// Sets a mailbox's UIDVALIDITY (e.g. to simulate a server-side reset).
    pub fn set_uidvalidity(&self, user: &str, mailbox: &str, uidvalidity: u32) -> Result<()> {
        self.doveadm(&[
            "mailbox",
            "update",
            "-u",
            user,
            "--uid-validity",
            &uidvalidity.to_string(),
            mailbox,
        ])?;
        Ok(())
    }

    /// Saves a message with `doveadm save` (no IMAP involved), then sets `flags` on it;
    /// returns its UID. The UID is found among the UIDs from the UIDNEXT before the save by
    /// content, so concurrent saves of other messages do not confuse it.
    pub fn append(&self, user: &str, mailbox: &str, raw: &[u8], flags: &[&str]) -> Result<u32> {
        let _guard = self.save_lock.lock().unwrap_or_else(|p| p.into_inner());
        let before = self.mailbox_status(user, mailbox)?.uidnext;
        self.doveadm_with_input(&["save", "-u", user, "-m", mailbox], Some(raw))?;
        let want = message_sha256_hex(raw);
        let uid = self
            .fetch_summaries(user, mailbox, Some(&format!("{before}:*")))?
            .into_iter()
            .find(|m| m.uid >= before && m.sha256_of_body_hex == want)
            .map(|m| m.uid)
            .ok_or_else(|| anyhow!("saved message not found in {mailbox:?} from UID {before}"))?;
        self.add_flags(user, mailbox, uid, flags)?;
        Ok(uid)
    }

    /// Delivers many messages at once the way an MDA does (files renamed into the mailbox's
    /// Maildir `cur/`, system flags in the file name), then adds keyword `flags` with one
    /// doveadm call. Much faster than [`Self::append`] for hundreds of messages. Creates the
    /// mailbox if needed; returns the UIDs in the order of `messages`.
    pub fn seed_mailbox(
        &self,
        user: &str,
        mailbox: &str,
        messages: &[Vec<u8>],
        flags: &[&str],
    ) -> Result<Vec<u32>> {
        let _guard = self.save_lock.lock().unwrap_or_else(|p| p.into_inner());
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        if !self.mailboxes(user)?.iter().any(|m| m == mailbox) {
            self.create_mailbox(user, mailbox)?;
        }
        let before = self.mailbox_status(user, mailbox)?.uidnext;
        let out = self.doveadm(&["mailbox", "path", "-u", user, mailbox])?;
        let path = PathBuf::from(String::from_utf8_lossy(&out).trim());
        if !path.is_absolute() {
            bail!("unexpected mailbox path {path:?} for {mailbox:?}");
        }
        for sub in ["cur", "new", "tmp"] {
            let d = path.join(sub);
            if !d.exists() {
                mkdir(&d, 0o700)?;
                chown(&d, self.mail_uid, self.mail_gid)?;
            }
        }
        let mut letters: Vec<char> = flags
            .iter()
            .filter_map(|f| maildir_flag_letter(f))
            .collect();
        letters.sort_unstable();
        letters.dedup();
        let keywords: Vec<&str> = flags
            .iter()
            .copied()
            .filter(|f| maildir_flag_letter(f).is_none())
            .collect();
        if let Some(bad) = keywords.iter().find(|k| k.starts_with('\\')) {
            bail!("unknown system flag {bad}");
        }
        let info: String = letters.iter().collect();
        let pid = std::process::id();
        for msg in messages {
            let n = self.seed_counter.fetch_add(1, Ordering::Relaxed);
            // Dovecot gives new files UIDs in file-name (time stamp) order.
            let base = format!("{}.M{n:08}P{pid}.twinbox", 1_600_000_000 + n);
            let tmp = path.join("tmp").join(&base);
            write_file(&tmp, msg, 0o600)?;
            chown(&tmp, self.mail_uid, self.mail_gid)?;
            let dest = path.join("cur").join(format!("{base}:2,{info}"));
            fs::rename(&tmp, &dest).with_context(|| format!("delivering to {}", dest.display()))?;
        }
        let out = self.doveadm(&[
            "-f",
            "tab",
            "fetch",
            "-u",
            user,
            "uid size.physical",
            "mailbox",
            mailbox,
            "uid",
            &format!("{before}:*"),
        ])?;
        let text = String::from_utf8_lossy(&out);
        let mut found = Vec::new();
        for line in text.lines().skip(1) {
            let mut cols = line.split('\t');
            let uid: u32 = cols
                .next()
                .unwrap_or("")
                .parse()
                .with_context(|| format!("bad fetch line {line:?}"))?;
            let size: usize = cols
                .next()
                .unwrap_or("")
                .parse()
                .with_context(|| format!("bad fetch line {line:?}"))?;
            if uid >= before {
                found.push((uid, size));
            }
        }
        found.sort_unstable();
        if found.len() != messages.len()
            || found.iter().zip(messages).any(|((_, s), m)| *s != m.len())
        {
            bail!(
                "seeded {} messages into {mailbox:?} but found {} new ones (sizes differ or \
                 the mailbox changed meanwhile)",
                messages.len(),
                found.len()
            );
        }
        let uids: Vec<u32> = found.iter().map(|(u, _)| *u).collect();
        if !keywords.is_empty() {
            let set = format!("{}:{}", uids[0], uids[uids.len() - 1]);
            self.doveadm(&[
                "flags",
                "add",
                "-u",
                user,
                &keywords.join(" "),
                "mailbox",
                mailbox,
                "uid",
                &set,
            ])?;
        }
        Ok(uids)
    }

    fn flags_cmd(
        &self,
        op: &str,
        user: &str,
        mailbox: &str,
        uid: u32,
        flags: &[&str],
    ) -> Result<()> {
        self.doveadm(&[
            "flags",
            op,
            "-u",
            user,
            &flags.join(" "),
            "mailbox",
            mailbox,
            "uid",
            &uid.to_string(),
        ])?;
        Ok(())
    }

    /// Adds flags/keywords to a message.
    pub fn add_flags(&self, user: &str, mailbox: &str, uid: u32, flags: &[&str]) -> Result<()> {
        if flags.is_empty() {
            return Ok(());
        }
        self.flags_cmd("add", user, mailbox, uid, flags)
    }

    /// Removes flags/keywords from a message.
    pub fn remove_flags(&self, user: &str, mailbox: &str, uid: u32, flags: &[&str]) -> Result<()> {
        if flags.is_empty() {
            return Ok(());
        }
        self.flags_cmd("remove", user, mailbox, uid, flags)
    }

    /// Replaces a message's flags and keywords (an empty list clears them).
    pub fn set_flags(&self, user: &str, mailbox: &str, uid: u32, flags: &[&str]) -> Result<()> {
        if flags.is_empty() {
            let current = self
                .fetch_summaries(user, mailbox, Some(&uid.to_string()))?
                .into_iter()
                .find(|m| m.uid == uid)
                .map(|m| m.flags)
                .unwrap_or_default();
            let current: Vec<&str> = current.iter().map(String::as_str).collect();
            return self.remove_flags(user, mailbox, uid, &current);
        }
        self.flags_cmd("replace", user, mailbox, uid, flags)
    }

    /// Expunges a message.
    pub fn expunge(&self, user: &str, mailbox: &str, uid: u32) -> Result<()> {
        self.doveadm(&[
            "expunge",
            "-u",
            user,
            "mailbox",
            mailbox,
            "uid",
            &uid.to_string(),
        ])?;
        Ok(())
    }

    /// Moves a message to another mailbox (`doveadm move`).
    pub fn move_message(&self, user: &str, from: &str, uid: u32, to: &str) -> Result<()> {
        self.doveadm(&[
            "move",
            "-u",
            user,
            to,
            "mailbox",
            from,
            "uid",
            &uid.to_string(),
        ])?;
        Ok(())
    }

    /// Every message of a mailbox, by UID.
    pub fn list_messages(&self, user: &str, mailbox: &str) -> Result<Vec<MessageSummary>> {
        self.fetch_summaries(user, mailbox, None)
    }

    /// A mailbox's messages as sorted (content sha256, sorted flags) pairs: what two sides
    /// must agree on after a sync.
    pub fn contents(&self, user: &str, mailbox: &str) -> Result<Vec<(String, Vec<String>)>> {
        let mut v: Vec<(String, Vec<String>)> = self
            .list_messages(user, mailbox)?
            .into_iter()
            .map(|m| {
                let mut f = m.flags;
                f.sort();
                (m.sha256_of_body_hex, f)
            })
            .collect();
        v.sort();
        Ok(v)
    }

    /// One message's full text with CRLF line endings (what `UID FETCH n BODY[]` returns).
    pub fn fetch_message(&self, user: &str, mailbox: &str, uid: u32) -> Result<Vec<u8>> {
        self.fetch_full(user, mailbox, Some(&uid.to_string()))?
            .into_iter()
            .find(|(m, _)| m.uid == uid)
            .map(|(_, text)| text)
            .ok_or_else(|| anyhow!("no UID {uid} in {mailbox:?}"))
    }

    fn fetch_summaries(
        &self,
        user: &str,
        mailbox: &str,
        uid_set: Option<&str>,
    ) -> Result<Vec<MessageSummary>> {
        Ok(self
            .fetch_full(user, mailbox, uid_set)?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    /// `doveadm -f pager fetch 'uid flags size.physical size.virtual text'`. The pager
    /// formatter prints `name: value` lines and the multi-line `text` last, raw, after
    /// `text:\n`; records are separated by `\f\n`. The text is exactly `size.physical` bytes
    /// (the stored file), so it is cut by length, never by looking for a separator.
    fn fetch_full(
        &self,
        user: &str,
        mailbox: &str,
        uid_set: Option<&str>,
    ) -> Result<Vec<(MessageSummary, Vec<u8>)>> {
        let mut args = vec![
            "-f",
            "pager",
            "fetch",
            "-u",
            user,
            "uid flags size.physical size.virtual text",
            "mailbox",
            mailbox,
        ];
        if let Some(set) = uid_set {
            args.extend(["uid", set]);
        }
        let out = self.doveadm(&args)?;
        parse_pager_fetch(&out).with_context(|| format!("parsing doveadm fetch of {mailbox:?}"))
    }
}

fn take_field(rest: &mut &[u8], name: &str) -> Result<String> {
    let prefix = format!("{name}:");
    if !rest.starts_with(prefix.as_bytes()) {
        bail!(
            "expected {name:?} at {:?}",
            String::from_utf8_lossy(&rest[..rest.len().min(40)])
        );
    }
    let after = &rest[prefix.len()..];
    let nl = after
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| anyhow!("unterminated {name} field"))?;
    let value = String::from_utf8_lossy(&after[..nl]).trim().to_string();
    *rest = &after[nl + 1..];
    Ok(value)
}

/// Parses `doveadm -f pager fetch 'uid flags size.physical size.virtual text'` output.
fn parse_pager_fetch(out: &[u8]) -> Result<Vec<(MessageSummary, Vec<u8>)>> {
    let mut rest = out;
    let mut v = Vec::new();
    while !rest.is_empty() {
        let uid: u32 = take_field(&mut rest, "uid")?.parse().context("uid")?;
        let flags: Vec<String> = take_field(&mut rest, "flags")?
            .split_ascii_whitespace()
            .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
            .map(str::to_string)
            .collect();
        let physical: usize = take_field(&mut rest, "size.physical")?
            .parse()
            .context("size.physical")?;
        let size: u64 = take_field(&mut rest, "size.virtual")?
            .parse()
            .context("size.virtual")?;
        rest = rest
            .strip_prefix(b"text:\n")
            .ok_or_else(|| anyhow!("expected text field for UID {uid}"))?;
        if rest.len() < physical {
            bail!("text of UID {uid} shorter than its size {physical}");
        }
        let text = normalize_crlf(&rest[..physical]);
        rest = &rest[physical..];
        if let Some(r) = rest.strip_prefix(b"\x0c\n") {
            rest = r;
        } else if rest == b"\n" {
            rest = &[];
        } else if !rest.is_empty() {
            bail!("unexpected data after the text of UID {uid}");
        }
        if text.len() as u64 != size {
            bail!(
                "UID {uid}: CRLF text is {} bytes but size.virtual is {size}",
                text.len()
            );
        }
        let summary = MessageSummary {
            uid,
            flags,
            size,
            sha256_of_body_hex: hex(&Sha256::digest(&text)),
        };
        v.push((summary, text));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pager_output_is_cut_by_length() {
        let out = b"uid: 1\nflags: \\Seen \\Recent $Label1\nsize.physical: 10\n\
                    size.virtual: 13\ntext:\nA: b\n\n\x0c\nxx\x0c\nuid: 2\nflags: \n\
                    size.physical: 1\nsize.virtual: 1\ntext:\na";
        let v = parse_pager_fetch(out).expect("parse");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].0.uid, 1);
        assert_eq!(v[0].0.flags, vec!["\\Seen", "$Label1"]);
        assert_eq!(v[0].1, b"A: b\r\n\r\n\x0c\r\nxx");
        assert_eq!(
            v[0].0.sha256_of_body_hex,
            message_sha256_hex(b"A: b\n\n\x0c\nxx")
        );
        assert_eq!(v[1].0.flags, Vec::<String>::new());
        assert_eq!(v[1].1, b"a");
    }
}
