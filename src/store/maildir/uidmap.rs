//! The UID map of a Maildir repository: per folder its UIDVALIDITY, next UID, change
//! counter and directory stamps, and per message its UID keyed by the file's unique part.
//!
//! It lives in a SQLite database in twinbox's metadata directory (not in the Maildir, so
//! mail readers and dovecot never see it), one per account and repository
//! (`ACCOUNT.REPOSITORY.uids.db`, guarded by the account's lock). Every update is one
//! transaction, committed after the file operation it records, so a crash leaves at most a
//! file the map does not know yet; the next scan gives it a new UID and the sync engine
//! recognises it as the copy it had started (its pending record).

use std::path::Path;

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension};

use crate::sync::plan::{Fingerprint, Flags};

/// A folder's row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderRow {
    /// Row id.
    pub id: i64,
    /// UIDVALIDITY of the folder.
    pub uidvalidity: u32,
    /// The next UID to give.
    pub uidnext: u32,
    /// Change counter, bumped by every change seen or made (a HIGHESTMODSEQ).
    pub modseq: u64,
    /// Stamps (modification times in ns) of `cur/` and `new/` when last read in full; 0
    /// forces the next look to read them.
    pub stamps: [i64; 2],
    /// Number of messages.
    pub messages: u32,
}

/// A message's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgRow {
    /// UID.
    pub uid: u32,
    /// The unique part of its file name.
    pub unique: String,
    /// Whether the file is in `new/` (else `cur/`).
    pub in_new: bool,
    /// The whole file name as last seen.
    pub file: String,
    /// Current flags, including keywords that have no letter.
    pub flags: Flags,
    /// Modification counter of its last change.
    pub modseq: u64,
    /// Identity.
    pub fp: Fingerprint,
}

/// The database.
pub struct UidMap {
    conn: Connection,
}

fn flags_text(f: &Flags) -> String {
    f.iter().cloned().collect::<Vec<_>>().join(" ")
}

/// A fresh UIDVALIDITY: the time with the top bit set, made distinct from `avoid`. dovecot
/// uses the plain time (below 2^31 until 2038): a Maildir first synced natively and then
/// through the dovecot engine (or back) never shows one UIDVALIDITY for two UID series.
fn new_uidvalidity(avoid: u32) -> u32 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(1);
    let v = 0x8000_0000 | (now & 0x7fff_ffff);
    if v <= avoid && avoid & 0x8000_0000 != 0 {
        avoid.wrapping_add(1).max(0x8000_0000)
    } else {
        v
    }
}

impl UidMap {
    /// Opens (creating) the map at `path` for the Maildir at `root`. A map made for another
    /// root is emptied: its UIDs mean nothing here (the folders get new UIDVALIDITYs).
    pub fn open(path: &Path, root: &Path, fsync: bool) -> anyhow::Result<UidMap> {
        if let Some(dir) = path.parent() {
            crate::state::create_private_dir(dir)?;
        }
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the Maildir UID map {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", if fsync { "FULL" } else { "NORMAL" })?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS folder (
                 id INTEGER PRIMARY KEY,
                 name TEXT NOT NULL UNIQUE,
                 uidvalidity INTEGER NOT NULL,
                 uidnext INTEGER NOT NULL,
                 modseq INTEGER NOT NULL,
                 cur_stamp INTEGER NOT NULL DEFAULT 0,
                 new_stamp INTEGER NOT NULL DEFAULT 0,
                 messages INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE IF NOT EXISTS msg (
                 folder INTEGER NOT NULL REFERENCES folder(id) ON DELETE CASCADE,
                 uid INTEGER NOT NULL,
                 uniq TEXT NOT NULL,
                 in_new INTEGER NOT NULL,
                 file TEXT NOT NULL,
                 flags TEXT NOT NULL,
                 modseq INTEGER NOT NULL,
                 msgid INTEGER NOT NULL,
                 size INTEGER NOT NULL,
                 idate INTEGER NOT NULL,
                 PRIMARY KEY (folder, uid));
             CREATE UNIQUE INDEX IF NOT EXISTS msg_uniq ON msg(folder, uniq);",
        )
        .with_context(|| format!("cannot initialise the UID map {}", path.display()))?;
        let root_text = root.display().to_string();
        let stored: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key='root'", [], |r| r.get(0))
            .optional()?;
        if stored.as_deref() != Some(root_text.as_str()) {
            let tx = conn.unchecked_transaction()?;
            tx.execute("DELETE FROM msg", [])?;
            tx.execute("DELETE FROM folder", [])?;
            tx.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('root', ?1)",
                [&root_text],
            )?;
            tx.commit()?;
        }
        Ok(UidMap { conn })
    }

    /// The row of folder `name`, if known.
    pub fn folder(&self, name: &str) -> anyhow::Result<Option<FolderRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, uidvalidity, uidnext, modseq, cur_stamp, new_stamp, messages
                 FROM folder WHERE name = ?1",
                [name],
                |r| {
                    Ok(FolderRow {
                        id: r.get(0)?,
                        uidvalidity: r.get(1)?,
                        uidnext: r.get(2)?,
                        modseq: r.get::<_, i64>(3)? as u64,
                        stamps: [r.get(4)?, r.get(5)?],
                        messages: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    /// The row of folder `name`, created (empty, new UIDVALIDITY) if unknown.
    pub fn folder_or_new(&self, name: &str) -> anyhow::Result<FolderRow> {
        if let Some(f) = self.folder(name)? {
            return Ok(f);
        }
        let last: Option<u32> = self
            .conn
            .query_row("SELECT MAX(uidvalidity) FROM folder", [], |r| r.get(0))
            .optional()?
            .flatten();
        let uv = new_uidvalidity(last.unwrap_or(0));
        self.conn.execute(
            "INSERT INTO folder(name, uidvalidity, uidnext, modseq) VALUES (?1, ?2, 1, 1)",
            params![name, uv],
        )?;
        self.folder(name)?
            .ok_or_else(|| anyhow::anyhow!("internal: folder row {name:?} vanished"))
    }

    /// Every message of a folder.
    pub fn messages(&self, folder: i64) -> anyhow::Result<Vec<MsgRow>> {
        let mut st = self.conn.prepare_cached(
            "SELECT uid, uniq, in_new, file, flags, modseq, msgid, size, idate FROM msg
             WHERE folder = ?1 ORDER BY uid",
        )?;
        let rows = st.query_map([folder], |r| {
            let flags: String = r.get(4)?;
            Ok(MsgRow {
                uid: r.get(0)?,
                unique: r.get(1)?,
                in_new: r.get::<_, i64>(2)? != 0,
                file: r.get(3)?,
                flags: flags.split_ascii_whitespace().map(str::to_string).collect(),
                modseq: r.get::<_, i64>(5)? as u64,
                fp: Fingerprint {
                    msgid: r.get(6)?,
                    size: r.get(7)?,
                    date: r.get(8)?,
                },
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Records changes to a folder in one transaction: rows to insert or replace, UIDs to
    /// delete, and the folder's new counters.
    pub fn commit(
        &self,
        folder: &FolderRow,
        upsert: &[&MsgRow],
        delete: &[u32],
    ) -> anyhow::Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT OR REPLACE INTO msg(folder, uid, uniq, in_new, file, flags, modseq, msgid, size, idate)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for m in upsert {
                ins.execute(params![
                    folder.id,
                    m.uid,
                    m.unique,
                    m.in_new as i64,
                    m.file,
                    flags_text(&m.flags),
                    m.modseq as i64,
                    m.fp.msgid,
                    m.fp.size,
                    m.fp.date
                ])?;
            }
            let mut del = tx.prepare_cached("DELETE FROM msg WHERE folder = ?1 AND uid = ?2")?;
            for u in delete {
                del.execute(params![folder.id, u])?;
            }
        }
        tx.execute(
            "UPDATE folder SET uidnext = ?2, modseq = ?3, cur_stamp = ?4, new_stamp = ?5, messages = ?6
             WHERE id = ?1",
            params![
                folder.id,
                folder.uidnext,
                folder.modseq as i64,
                folder.stamps[0],
                folder.stamps[1],
                folder.messages
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Renames folders in the map: each `(from, to)` is a whole name, or a prefix (ending
    /// in the separator) renaming every folder under it.
    pub fn rename_folders(&self, moves: &[(String, String)]) -> anyhow::Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        for (from, to) in moves {
            tx.execute(
                "UPDATE folder SET name = ?2 || substr(name, length(?1) + 1)
                 WHERE name = ?1 OR (substr(name, 1, length(?1)) = ?1 AND ?1 != '' AND substr(?1, -1) IN ('/', '.'))",
                params![from, to],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets a folder and its messages.
    pub fn forget_folder(&self, name: &str) -> anyhow::Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute(
            "DELETE FROM msg WHERE folder IN (SELECT id FROM folder WHERE name = ?1)",
            [name],
        )?;
        tx.execute("DELETE FROM folder WHERE name = ?1", [name])?;
        tx.commit()?;
        Ok(())
    }
}
