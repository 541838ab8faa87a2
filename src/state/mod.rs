//! The saved state: per mailbox pair, each side's UIDVALIDITY/UIDNEXT/HIGHESTMODSEQ and the
//! records mapping local and remote UIDs with their last synced flags (SQLite).
//!
//! Every change is one transaction, written only after the server confirmed the change it
//! records (a pending copy is written before its APPEND, as an intent).

use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::sync::plan::{Fingerprint, Flags, Record, RecordChange, Side};

const SCHEMA_VERSION: i64 = 1;

/// What was last seen of one side of a mailbox pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SideState {
    /// UIDVALIDITY (0 = never synced).
    pub uidvalidity: u32,
    /// UIDNEXT: messages at or above it are new.
    pub uidnext: u32,
    /// HIGHESTMODSEQ (0 = none).
    pub highestmodseq: u64,
    /// Number of messages.
    pub messages: u32,
}

/// A mailbox pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxRow {
    /// Row id.
    pub id: i64,
    /// Separator-neutral name (`/` between levels).
    pub name: String,
    /// What was last seen on each side.
    pub sides: [SideState; 2],
}

/// The state database of one account.
pub struct StateDb {
    conn: Connection,
    path: PathBuf,
}

fn flags_to_text(f: &Flags) -> String {
    f.iter().cloned().collect::<Vec<_>>().join(" ")
}

fn flags_from_text(s: &str) -> Flags {
    s.split_ascii_whitespace().map(str::to_string).collect()
}

fn col(side: Side, what: &str) -> String {
    format!("{}_{what}", if side == Side::Local { "l" } else { "r" })
}

impl StateDb {
    /// Opens (creating with mode 0600, in a 0700 directory) the database at `path`.
    pub fn open(path: &Path, fsync: bool) -> anyhow::Result<StateDb> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        if !path.exists() {
            create_private_file(path)?;
        }
        Self::open_inner(path, fsync).map_err(|e| match storage_problem(path) {
            Some(why) => e.context(why),
            None => e,
        })
    }

    fn open_inner(path: &Path, fsync: bool) -> anyhow::Result<StateDb> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open the state database {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", if fsync { "FULL" } else { "NORMAL" })?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS mailbox (
                 id INTEGER PRIMARY KEY,
                 name TEXT NOT NULL UNIQUE,
                 l_uidvalidity INTEGER NOT NULL DEFAULT 0,
                 l_uidnext INTEGER NOT NULL DEFAULT 0,
                 l_hms INTEGER NOT NULL DEFAULT 0,
                 l_messages INTEGER NOT NULL DEFAULT 0,
                 r_uidvalidity INTEGER NOT NULL DEFAULT 0,
                 r_uidnext INTEGER NOT NULL DEFAULT 0,
                 r_hms INTEGER NOT NULL DEFAULT 0,
                 r_messages INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE IF NOT EXISTS message (
                 id INTEGER PRIMARY KEY,
                 mailbox INTEGER NOT NULL REFERENCES mailbox(id) ON DELETE CASCADE,
                 l_uid INTEGER,
                 r_uid INTEGER,
                 flags TEXT NOT NULL,
                 msgid INTEGER NOT NULL,
                 size INTEGER NOT NULL,
                 idate INTEGER NOT NULL,
                 pending_since INTEGER);
             CREATE UNIQUE INDEX IF NOT EXISTS message_l ON message(mailbox, l_uid) WHERE l_uid IS NOT NULL;
             CREATE UNIQUE INDEX IF NOT EXISTS message_r ON message(mailbox, r_uid) WHERE r_uid IS NOT NULL;",
        )
        .with_context(|| format!("cannot initialise the state database {}", path.display()))?;
        let version: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key='schema'", [], |r| {
                r.get(0)
            })
            .optional()?;
        match version.as_deref().map(str::parse::<i64>) {
            None => {
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )?;
            }
            Some(Ok(SCHEMA_VERSION)) => {}
            Some(v) => anyhow::bail!(
                "{}: state schema version {v:?} is not supported by this twinbox",
                path.display()
            ),
        }
        Ok(StateDb {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Opens the database without changing anything on disk (for `--dry-run` and `check`):
    /// an empty in-memory state when there is none yet.
    pub fn open_readonly(path: &Path) -> anyhow::Result<StateDb> {
        if !path.exists() {
            let mem = tempfile::NamedTempFile::new()?;
            let db = StateDb::open(mem.path(), false)?;
            return Ok(db);
        }
        let uri = format!("file:{}?immutable=1", path.display());
        let conn = Connection::open_with_flags(
            uri,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
        )
        .with_context(|| format!("cannot open the state database {}", path.display()))?;
        Ok(StateDb {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All mailbox pairs.
    pub fn mailboxes(&self) -> anyhow::Result<Vec<MailboxRow>> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, name, l_uidvalidity, l_uidnext, l_hms, l_messages,
                    r_uidvalidity, r_uidnext, r_hms, r_messages FROM mailbox ORDER BY name",
        )?;
        let rows = st.query_map([], |r| {
            Ok(MailboxRow {
                id: r.get(0)?,
                name: r.get(1)?,
                sides: [
                    SideState {
                        uidvalidity: r.get(2)?,
                        uidnext: r.get(3)?,
                        highestmodseq: r.get::<_, i64>(4)? as u64,
                        messages: r.get(5)?,
                    },
                    SideState {
                        uidvalidity: r.get(6)?,
                        uidnext: r.get(7)?,
                        highestmodseq: r.get::<_, i64>(8)? as u64,
                        messages: r.get(9)?,
                    },
                ],
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The pair called `name`, created (with nothing seen yet) if new.
    pub fn ensure_mailbox(&mut self, name: &str) -> anyhow::Result<MailboxRow> {
        self.conn
            .execute("INSERT OR IGNORE INTO mailbox(name) VALUES (?1)", [name])?;
        self.mailboxes()?
            .into_iter()
            .find(|m| m.name == name)
            .ok_or_else(|| anyhow::anyhow!("state: mailbox {name} vanished"))
    }

    /// Ids of mailbox pairs with copies still pending (they must be opened even if unchanged).
    pub fn mailboxes_with_pending(&self) -> anyhow::Result<std::collections::HashSet<i64>> {
        let mut st = self.conn.prepare_cached(
            "SELECT DISTINCT mailbox FROM message WHERE l_uid IS NULL OR r_uid IS NULL",
        )?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The records of a mailbox pair.
    pub fn records(&self, mailbox: i64) -> anyhow::Result<Vec<Record>> {
        let mut st = self.conn.prepare_cached(
            "SELECT id, l_uid, r_uid, flags, msgid, size, idate, pending_since
             FROM message WHERE mailbox = ?1",
        )?;
        let rows = st.query_map([mailbox], |r| {
            Ok(Record {
                id: r.get(0)?,
                uid: [r.get(1)?, r.get(2)?],
                flags: flags_from_text(&r.get::<_, String>(3)?),
                fp: Fingerprint {
                    msgid: r.get(4)?,
                    size: r.get(5)?,
                    date: r.get(6)?,
                },
                pending_since: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Runs `f` in one transaction and commits it (a fault-injection step).
    pub fn write<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&Writer<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let tx = self.conn.transaction()?;
        let w = Writer { tx };
        let v = f(&w)?;
        w.tx.commit()
            .with_context(|| format!("cannot write the state database ({what})"))?;
        crate::fault::step(what);
        Ok(v)
    }
}

/// Changes inside one state transaction.
pub struct Writer<'a> {
    tx: Transaction<'a>,
}

impl Writer<'_> {
    /// Saves what was seen of one side.
    pub fn set_side(&self, mailbox: i64, side: Side, s: SideState) -> anyhow::Result<()> {
        let sql = format!(
            "UPDATE mailbox SET {} = ?2, {} = ?3, {} = ?4, {} = ?5 WHERE id = ?1",
            col(side, "uidvalidity"),
            col(side, "uidnext"),
            col(side, "hms"),
            col(side, "messages")
        );
        self.tx.execute(
            &sql,
            params![
                mailbox,
                s.uidvalidity,
                s.uidnext,
                s.highestmodseq as i64,
                s.messages
            ],
        )?;
        Ok(())
    }

    /// Forgets a side's UIDs (its UIDVALIDITY changed): records wait to be re-matched.
    pub fn void_side(&self, mailbox: i64, side: Side) -> anyhow::Result<()> {
        let sql = format!(
            "UPDATE message SET {c} = NULL, pending_since = 0 WHERE mailbox = ?1 AND {c} IS NOT NULL",
            c = col(side, "uid")
        );
        self.tx.execute(&sql, [mailbox])?;
        Ok(())
    }

    /// Applies a planner record change.
    pub fn apply(&self, mailbox: i64, c: &RecordChange) -> anyhow::Result<()> {
        match c {
            RecordChange::Delete(id) => {
                self.tx.execute("DELETE FROM message WHERE id = ?1", [id])?;
            }
            RecordChange::Update { id, uid, flags } => {
                self.tx.execute(
                    "UPDATE message SET l_uid = ?2, r_uid = ?3, flags = ?4, pending_since = NULL WHERE id = ?1",
                    params![id, uid[0], uid[1], flags_to_text(flags)],
                )?;
            }
            RecordChange::Insert { uid, flags, fp } => {
                self.tx.execute(
                    "INSERT INTO message(mailbox, l_uid, r_uid, flags, msgid, size, idate)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        mailbox,
                        uid[0],
                        uid[1],
                        flags_to_text(flags),
                        fp.msgid,
                        fp.size,
                        fp.date
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Records the intent to copy a message to the other side (before the APPEND): a new
    /// record, or an existing one re-armed. Returns the record id.
    #[allow(clippy::too_many_arguments)]
    pub fn pending_copy(
        &self,
        mailbox: i64,
        from: Side,
        uid: u32,
        flags: &Flags,
        fp: &Fingerprint,
        existing: Option<i64>,
        target_uidnext: u32,
    ) -> anyhow::Result<i64> {
        let target = col(from.other(), "uid");
        if let Some(id) = existing {
            // The source UID too: after a UIDVALIDITY change it was re-matched in the plan
            // only, and the record holds none.
            self.tx.execute(
                &format!(
                    "UPDATE message SET {target} = NULL, {source} = ?4, pending_since = ?2, flags = ?3 WHERE id = ?1",
                    source = col(from, "uid")
                ),
                params![id, target_uidnext, flags_to_text(flags), uid],
            )?;
            return Ok(id);
        }
        self.tx.execute(
            &format!(
                "INSERT INTO message(mailbox, {}, flags, msgid, size, idate, pending_since)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                col(from, "uid")
            ),
            params![
                mailbox,
                uid,
                flags_to_text(flags),
                fp.msgid,
                fp.size,
                fp.date,
                target_uidnext
            ],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Records where a copy landed.
    pub fn copied(&self, id: i64, target: Side, uid: u32) -> anyhow::Result<()> {
        self.tx.execute(
            &format!(
                "UPDATE message SET {} = ?2, pending_since = NULL WHERE id = ?1",
                col(target, "uid")
            ),
            params![id, uid],
        )?;
        Ok(())
    }

    /// Sets the base flags of the record with these UIDs.
    pub fn set_flags(&self, mailbox: i64, uid: [u32; 2], flags: &Flags) -> anyhow::Result<()> {
        self.tx.execute(
            "UPDATE message SET flags = ?4 WHERE mailbox = ?1 AND l_uid = ?2 AND r_uid = ?3",
            params![mailbox, uid[0], uid[1], flags_to_text(flags)],
        )?;
        Ok(())
    }

    /// Deletes records.
    pub fn delete(&self, ids: &[i64]) -> anyhow::Result<()> {
        let mut st = self
            .tx
            .prepare_cached("DELETE FROM message WHERE id = ?1")?;
        for id in ids {
            st.execute([id])?;
        }
        Ok(())
    }

    /// Deletes a mailbox pair and its records.
    pub fn delete_mailbox(&self, mailbox: i64) -> anyhow::Result<()> {
        self.tx
            .execute("DELETE FROM message WHERE mailbox = ?1", [mailbox])?;
        self.tx
            .execute("DELETE FROM mailbox WHERE id = ?1", [mailbox])?;
        Ok(())
    }

    /// Renames a mailbox pair.
    pub fn rename_mailbox(&self, mailbox: i64, name: &str) -> anyhow::Result<()> {
        self.tx.execute(
            "UPDATE mailbox SET name = ?2 WHERE id = ?1",
            params![mailbox, name],
        )?;
        Ok(())
    }
}

/// Creates a directory (and parents) readable by the owner only.
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the metadata directory {}", dir.display()))
}

fn create_private_file(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    Ok(())
}

/// Why the file system holding `path` cannot take writes, if that is the case: full (less
/// than 64 KiB free) or mounted read-only. SQLite reports both as vague I/O errors.
pub fn storage_problem(path: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let dir = path.parent().unwrap_or(path);
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` is valid for writes.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statvfs succeeded, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    if st.f_flag & libc::ST_RDONLY != 0 {
        return Some(format!("the file system of {} is read-only", dir.display()));
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between targets
    let free = (st.f_bavail as u64).saturating_mul(st.f_frsize as u64);
    if free < 64 * 1024 {
        return Some(format!(
            "the file system of {} is full (no space left on device: {free} bytes free)",
            dir.display()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("meta/acct.db");
        let mut db = StateDb::open(&path, false).expect("open");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(path.parent().expect("parent"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        let mb = db.ensure_mailbox("INBOX").expect("mailbox");
        let fp = Fingerprint {
            msgid: 42,
            size: 10,
            date: 7,
        };
        let flags: Flags = ["\\Seen".to_string()].into_iter().collect();
        let id = db
            .write("t", |w| {
                w.pending_copy(mb.id, Side::Remote, 5, &flags, &fp, None, 3)
            })
            .expect("pending");
        let recs = db.records(mb.id).expect("records");
        assert_eq!(recs[0].uid, [None, Some(5)]);
        assert_eq!(recs[0].pending_since, Some(3));
        db.write("t", |w| w.copied(id, Side::Local, 9))
            .expect("copied");
        db.write("t", |w| {
            w.set_side(
                mb.id,
                Side::Local,
                SideState {
                    uidvalidity: 1,
                    uidnext: 10,
                    highestmodseq: 1 << 62,
                    messages: 1,
                },
            )
        })
        .expect("side");
        let recs = db.records(mb.id).expect("records");
        assert_eq!(recs[0].uid, [Some(9), Some(5)]);
        assert_eq!(recs[0].pending_since, None);
        assert_eq!(recs[0].flags, flags);
        drop(db);
        let db = StateDb::open(&path, true).expect("reopen");
        assert_eq!(
            db.mailboxes().expect("mb")[0].sides[0].highestmodseq,
            1 << 62
        );
    }
}
