//! Moves and copies between folders of one Maildir without reading the messages: a move is
//! a rename into the other folder, a copy a hard link (a byte copy where linking fails).
//! The files go first, then the map (target rows, then the source rows removed): a crash
//! in between leaves files the next scan adopts, never a map row without its file.

use std::collections::HashSet;

use anyhow::Context;

use super::filename::{self, letters_for};
use super::layout::sync_dir;
use super::scan::find_file;
use super::uidmap::MsgRow;
use super::write::assign_keywords;
use super::MaildirStore;
use crate::store::TransferMode;

impl MaildirStore {
    /// Moves or copies the messages `uids` of folder `from` into folder `to`; returns
    /// their UIDs there (`None` for a message gone meanwhile).
    pub(super) fn transfer_files(
        &mut self,
        from: &str,
        uids: &[u32],
        to: &str,
        mode: TransferMode,
    ) -> anyhow::Result<Vec<Option<u32>>> {
        self.open = None;
        let fsync = self.opts.fsync;
        let (mut a, _) = self.load_fresh(from)?;
        let (mut b, _) = self.load_fresh(to)?;
        let next = b.row.modseq + 1;
        let mut out = Vec::new();
        let mut rows: Vec<MsgRow> = Vec::new();
        let mut gone: Vec<u32> = Vec::new();
        let mut dirs_a = HashSet::new();
        let mut dirs_b = HashSet::new();
        for uid in uids {
            let Some(m) = a.msgs.get(uid).cloned() else {
                out.push(None);
                continue;
            };
            let mut src = a.path_of(&m);
            let mut in_new = m.in_new;
            if !src.exists() {
                match find_file(&a.dir, &m.unique)? {
                    Some((n, file)) => {
                        in_new = n;
                        src = a.dir.join(if n { "new" } else { "cur" }).join(file);
                    }
                    None => {
                        out.push(None);
                        continue;
                    }
                }
            }
            // Keyword letters are per folder: spell the flags with the target's table.
            assign_keywords(&mut b, &m.flags, fsync)?;
            let (letters, _) = letters_for(&m.flags, &b.keywords, "");
            let unique = match mode {
                TransferMode::Move => m.unique.clone(),
                TransferMode::Copy => {
                    let len = std::fs::metadata(&src).map(|s| s.len()).unwrap_or(0) as usize;
                    filename::new_unique(len, m.fp.size as usize)
                }
            };
            let file = if in_new {
                unique.clone()
            } else {
                filename::compose(&unique, &letters)
            };
            let sub = if in_new { "new" } else { "cur" };
            let dest = b.dir.join(sub).join(&file);
            match mode {
                TransferMode::Move => std::fs::rename(&src, &dest).with_context(|| {
                    format!("cannot move {} to {}", src.display(), dest.display())
                })?,
                TransferMode::Copy => {
                    if std::fs::hard_link(&src, &dest).is_err() {
                        std::fs::copy(&src, &dest).with_context(|| {
                            format!("cannot copy {} to {}", src.display(), dest.display())
                        })?;
                    }
                }
            }
            crate::fault::step("maildir: message transferred");
            dirs_b.insert(sub);
            dirs_a.insert(if in_new { "new" } else { "cur" });
            let uid_b = b.row.uidnext;
            b.row.uidnext += 1;
            out.push(Some(uid_b));
            rows.push(MsgRow {
                uid: uid_b,
                unique,
                in_new,
                file,
                flags: m.flags.clone(),
                modseq: next,
                fp: m.fp,
            });
            if mode == TransferMode::Move {
                gone.push(*uid);
            }
        }
        if fsync {
            for d in &dirs_b {
                sync_dir(&b.dir.join(d))?;
            }
            if mode == TransferMode::Move {
                for d in &dirs_a {
                    sync_dir(&a.dir.join(d))?;
                }
            }
        }
        if !rows.is_empty() {
            b.row.modseq = next;
            for r in &rows {
                b.msgs.insert(r.uid, r.clone());
            }
            b.row.messages = b.msgs.len() as u32;
            let refs: Vec<&MsgRow> = rows.iter().collect();
            self.map.commit(&b.row, &refs, &[])?;
        }
        if !gone.is_empty() {
            for u in &gone {
                a.msgs.remove(u);
            }
            a.row.modseq += 1;
            a.row.messages = a.msgs.len() as u32;
            self.map.commit(&a.row, &[], &gone)?;
        }
        Ok(out)
    }
}

impl MaildirStore {
    /// The header blocks (up to the first empty line) of the messages `uids` of folder
    /// `name`, by UID; a message gone is absent.
    pub(super) fn header_blocks(
        &mut self,
        name: &str,
        uids: &[u32],
    ) -> anyhow::Result<std::collections::HashMap<u32, Vec<u8>>> {
        self.open = None;
        let (f, _) = self.load_fresh(name)?;
        let mut out = std::collections::HashMap::new();
        for uid in uids {
            let Some(m) = f.msgs.get(uid) else { continue };
            let mut path = f.path_of(m);
            if !path.exists() {
                match find_file(&f.dir, &m.unique)? {
                    Some((n, file)) => path = f.dir.join(if n { "new" } else { "cur" }).join(file),
                    None => continue,
                }
            }
            let data = match std::fs::read(&path) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            };
            let mut end = data.len();
            let mut at = 0;
            while at < data.len() {
                let line_end = data[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(data.len(), |p| at + p + 1);
                let line = &data[at..line_end];
                if line == b"\n" || line == b"\r\n" {
                    end = line_end;
                    break;
                }
                at = line_end;
            }
            out.insert(*uid, data[..end].to_vec());
        }
        Ok(out)
    }
}
