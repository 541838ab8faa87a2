//! Changing a Maildir: storing messages (tmp/, fsync, rename, fsync of the directory),
//! renaming files for flag changes, and deleting files. The map is committed after the
//! file operations it records.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use super::body::crlf_len;
use super::filename::{self, letters_for};
use super::keywords::Keywords;
use super::layout::sync_dir;
use super::scan::{find_file, Folder};
use super::uidmap::MsgRow;
use super::MaildirStore;
use crate::store::fingerprint::message_id_hash;
use crate::store::{BodyRef, Upload};
use crate::sync::plan::{Fingerprint, FlagAction, Flags};

/// Gives every keyword of `flags` a letter where one is free; saves the table first if it
/// changed (so no file name ever carries a letter without a name).
pub(super) fn assign_keywords(f: &mut Folder, flags: &Flags, fsync: bool) -> anyhow::Result<()> {
    let needs_letter = |k: &Keywords, f: &String| !f.starts_with('\\') && k.letter(f).is_none();
    if flags.iter().any(|x| needs_letter(&f.keywords, x)) {
        // Another program (dovecot) may have added keywords since we read the table:
        // re-read it right before adding ours, so theirs are kept.
        let mut fresh = Keywords::load(&f.dir)?;
        fresh.pin(&f.pinned);
        f.keywords = fresh;
    }
    let mut changed = false;
    for k in flags.iter().filter(|k| !k.starts_with('\\')) {
        changed |= f.keywords.assign(k);
    }
    if changed || f.keywords.dirty() {
        f.keywords.save(&f.dir, fsync)?;
    }
    Ok(())
}

/// The most of a large message's start read to find its Message-ID (as the scan does).
const HEAD_MAX: usize = 4 << 20;

fn write_file(path: &Path, data: BodyRef<'_>, mtime: i64, fsync: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    // A spooled body goes over in chunks, never whole in memory.
    data.for_each_chunk(|c| file.write_all(c))
        .with_context(|| format!("cannot write {}", path.display()))?;
    let t = if mtime >= 0 {
        UNIX_EPOCH + Duration::from_secs(mtime as u64)
    } else {
        UNIX_EPOCH
    };
    file.set_modified(t)
        .with_context(|| format!("cannot set the time of {}", path.display()))?;
    if fsync {
        file.sync_all()
            .with_context(|| format!("cannot sync {}", path.display()))?;
    }
    Ok(())
}

impl MaildirStore {
    /// Stores messages in the open folder; returns their UIDs.
    pub(super) fn append_messages(
        &mut self,
        messages: &[Upload<'_>],
    ) -> anyhow::Result<Vec<Option<u32>>> {
        let fsync = self.opts.fsync;
        let map = &self.map;
        let f = self
            .open
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("internal: no Maildir folder open"))?;
        let next = f.row.modseq + 1;
        let mut rows = Vec::new();
        let mut dirs = HashSet::new();
        if !messages.is_empty() {
            // A folder with `cur/` only (a run killed while creating it, or made by hand)
            // still takes mail.
            super::layout::complete_maildir(&f.dir, fsync)?;
        }
        for m in messages {
            assign_keywords(f, m.flags, fsync)?;
            let (letters, _) = letters_for(m.flags, &f.keywords, "");
            let size = crlf_len(m.data).context("cannot read a spooled message")?;
            let unique = filename::new_unique(
                usize::try_from(m.data.len()).unwrap_or(usize::MAX),
                usize::try_from(size).unwrap_or(usize::MAX),
            );
            let msgid = message_id_hash(
                &m.data
                    .head(HEAD_MAX)
                    .context("cannot read a spooled message")?,
            );
            let date = m.internaldate.map(|d| d.unix).unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0)
            });
            let tmp = f.dir.join("tmp").join(&unique);
            write_file(&tmp, m.data, date, fsync)?;
            // Mail without any flag goes to new/ (a mail reader shows it as new); the
            // rest to cur/ with its flags.
            let (in_new, file) = if m.flags.is_empty() {
                (true, unique.clone())
            } else {
                (false, filename::compose(&unique, &letters))
            };
            let sub = if in_new { "new" } else { "cur" };
            let dest = f.dir.join(sub).join(&file);
            std::fs::rename(&tmp, &dest)
                .with_context(|| format!("cannot move {} into {sub}/", tmp.display()))?;
            dirs.insert(sub);
            crate::fault::step("maildir: message stored");
            let uid = f.row.uidnext;
            f.row.uidnext += 1;
            rows.push(MsgRow {
                uid,
                unique,
                in_new,
                file,
                flags: m.flags.clone(),
                modseq: next,
                fp: Fingerprint {
                    msgid,
                    size: u32::try_from(size).unwrap_or(u32::MAX),
                    date,
                },
            });
        }
        if fsync {
            for d in &dirs {
                sync_dir(&f.dir.join(d))?;
            }
        }
        if !rows.is_empty() {
            f.row.modseq = next;
        }
        let uids: Vec<Option<u32>> = rows.iter().map(|r| Some(r.uid)).collect();
        for r in rows {
            f.msgs.insert(r.uid, r);
        }
        f.row.messages = f.msgs.len() as u32;
        let stored: Vec<&MsgRow> = uids
            .iter()
            .flatten()
            .filter_map(|u| f.msgs.get(u))
            .collect();
        map.commit(&f.row, &stored, &[])?;
        Ok(uids)
    }

    /// Changes flags by renaming files; returns the UIDs left unchanged because they
    /// changed or went away meanwhile.
    pub(super) fn store_flags(
        &mut self,
        actions: &[FlagAction],
        unchanged_since: Option<u64>,
    ) -> anyhow::Result<Vec<u32>> {
        let fsync = self.opts.fsync;
        let map = &self.map;
        let f = self
            .open
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("internal: no Maildir folder open"))?;
        let next = f.row.modseq + 1;
        let mut failed = Vec::new();
        let mut done = Vec::new();
        let mut dirs = HashSet::new();
        for a in actions {
            let Some(m) = f.msgs.get(&a.uid).cloned() else {
                failed.push(a.uid);
                continue;
            };
            if unchanged_since.is_some_and(|s| m.modseq > s) {
                failed.push(a.uid);
                continue;
            }
            let mut flags = m.flags.clone();
            flags.extend(a.add.iter().cloned());
            flags.retain(|x| !a.remove.contains(x));
            assign_keywords(f, &flags, fsync)?;
            let old_letters = filename::parse(&m.file).letters.to_string();
            let (letters, _) = letters_for(&flags, &f.keywords, &old_letters);
            let file = filename::compose(&m.unique, &letters);
            let from = f.path_of(&m);
            let to = f.dir.join("cur").join(&file);
            if from != to {
                match std::fs::rename(&from, &to) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        // Renamed by a mail reader (or deleted) since the scan.
                        failed.push(a.uid);
                        continue;
                    }
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot rename {}", from.display()))
                    }
                }
                crate::fault::step("maildir: flags renamed");
                dirs.insert("cur");
                if m.in_new {
                    dirs.insert("new");
                }
            }
            let mut row = m;
            row.flags = flags;
            row.file = file;
            row.in_new = false;
            row.modseq = next;
            done.push(row.uid);
            f.msgs.insert(row.uid, row);
        }
        if fsync {
            for d in &dirs {
                sync_dir(&f.dir.join(d))?;
            }
        }
        if !done.is_empty() {
            f.row.modseq = next;
            let rows: Vec<&MsgRow> = done.iter().filter_map(|u| f.msgs.get(u)).collect();
            map.commit(&f.row, &rows, &[])?;
        }
        Ok(failed)
    }

    /// Deletes messages' files.
    pub(super) fn remove(&mut self, uids: &[u32]) -> anyhow::Result<()> {
        let fsync = self.opts.fsync;
        let map = &self.map;
        let f = self
            .open
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("internal: no Maildir folder open"))?;
        let mut gone = Vec::new();
        let mut dirs = HashSet::new();
        for uid in uids {
            let Some(m) = f.msgs.get(uid).cloned() else {
                continue;
            };
            let mut path = f.path_of(&m);
            let mut in_new = m.in_new;
            if !path.exists() {
                // Renamed since the scan (a flag change by a mail reader): find it.
                match find_file(&f.dir, &m.unique)? {
                    Some((n, file)) => {
                        in_new = n;
                        path = f.dir.join(if n { "new" } else { "cur" }).join(file);
                    }
                    None => {
                        gone.push(*uid);
                        continue;
                    }
                }
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot delete {}", path.display()))
                }
            }
            crate::fault::step("maildir: file deleted");
            dirs.insert(if in_new { "new" } else { "cur" });
            gone.push(*uid);
        }
        if fsync {
            for d in &dirs {
                sync_dir(&f.dir.join(d))?;
            }
        }
        if !gone.is_empty() {
            for u in &gone {
                f.msgs.remove(u);
            }
            f.row.modseq += 1;
            f.row.messages = f.msgs.len() as u32;
            map.commit(&f.row, &[], &gone)?;
        }
        Ok(())
    }
}
