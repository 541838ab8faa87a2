//! Reading a folder from disk into the UID map: which files are new, gone or renamed
//! (flag changes), with the cheap directory-stamp test that lets unchanged folders go
//! unread.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;

use super::filename::{self, flags_of};
use super::keywords::Keywords;
use super::uidmap::{FolderRow, MsgRow, UidMap};
use crate::store::fingerprint::message_id_hash;
use crate::sync::plan::{Fingerprint, Flags};

/// A directory changed within this long before we read it may change again within the
/// same time-stamp tick without its stamp moving: such a stamp is not trusted.
const DIRTY_WINDOW_NS: i64 = 2_000_000_000;

/// A folder as held in memory while open.
#[derive(Debug, Clone)]
pub struct Folder {
    /// Its name.
    pub name: String,
    /// Its Maildir directory.
    pub dir: PathBuf,
    /// Its map row.
    pub row: FolderRow,
    /// Its messages by UID.
    pub msgs: BTreeMap<u32, MsgRow>,
    /// Its keyword table.
    pub keywords: Keywords,
    /// Keyword letters fixed by the configuration.
    pub pinned: BTreeMap<char, String>,
}

impl Folder {
    /// Loads the folder's map rows (without reading the directory); `pinned` are the
    /// configured keyword letters.
    pub fn load(
        map: &UidMap,
        name: &str,
        dir: PathBuf,
        pinned: &BTreeMap<char, String>,
    ) -> anyhow::Result<Folder> {
        let row = map.folder_or_new(name)?;
        let msgs = map
            .messages(row.id)?
            .into_iter()
            .map(|m| (m.uid, m))
            .collect();
        let mut keywords = Keywords::load(&dir)?;
        keywords.pin(pinned);
        Ok(Folder {
            pinned: pinned.clone(),
            name: name.to_string(),
            dir,
            row,
            msgs,
            keywords,
        })
    }

    /// The path of a message's file.
    pub fn path_of(&self, m: &MsgRow) -> PathBuf {
        self.dir
            .join(if m.in_new { "new" } else { "cur" })
            .join(&m.file)
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The modification stamps (ns) of `dir/cur` and `dir/new` (0 when missing).
pub fn stamps(dir: &Path) -> [i64; 2] {
    ["cur", "new"].map(|d| {
        std::fs::metadata(dir.join(d))
            .map(|m| m.mtime() * 1_000_000_000 + m.mtime_nsec())
            .unwrap_or(0)
    })
}

/// Whether the saved stamps prove the folder unchanged since it was last read.
pub fn unchanged(row: &FolderRow, dir: &Path) -> bool {
    row.stamps[0] != 0 && row.stamps[1] != 0 && row.stamps == stamps(dir)
}

/// Identity of a message file: Message-ID hash, size with CRLF line ends, and date (the
/// file's modification time, which is the Maildir's INTERNALDATE).
fn fingerprint(path: &Path, unique: &str) -> std::io::Result<Fingerprint> {
    let mut f = std::fs::File::open(path)?;
    let meta = f.metadata()?;
    let date = meta.mtime();
    let known = filename::virtual_size(unique);
    // The header is kept (for the Message-ID); the rest is only counted, in chunks, when
    // the file name does not give the size.
    let mut head = Vec::new();
    let mut in_head = true;
    let mut count = super::body::CrlfCount::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        count.feed(&buf[..n]);
        if in_head {
            let from = head.len().saturating_sub(3);
            head.extend_from_slice(&buf[..n]);
            let tail = &head[from..];
            if tail.windows(2).any(|w| w == b"\n\n")
                || tail.windows(4).any(|w| w == b"\r\n\r\n")
                || head.len() > 4 << 20
            {
                in_head = false;
            }
        }
        if !in_head && known.is_some() {
            break;
        }
    }
    let size = match known {
        Some(s) => s,
        None => count.crlf,
    };
    Ok(Fingerprint {
        msgid: message_id_hash(&head),
        size: u32::try_from(size).unwrap_or(u32::MAX),
        date,
    })
}

/// The length of `data` with every bare LF counted as CRLF.
pub fn crlf_len(data: &[u8]) -> usize {
    let mut n = data.len();
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            n += 1;
        }
    }
    n
}

/// `data` with bare LFs turned into CRLF (borrowed when there are none).
pub fn to_crlf(data: Vec<u8>) -> Vec<u8> {
    if crlf_len(&data) == data.len() {
        return data;
    }
    let mut out = Vec::with_capacity(crlf_len(&data));
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' && (i == 0 || data[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// Lists `dir/sub`, returning file names (not starting with a dot).
fn entries(dir: &Path, sub: &str) -> anyhow::Result<Vec<String>> {
    let p = dir.join(sub);
    let rd = match std::fs::read_dir(&p) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", p.display())),
    };
    let mut v = Vec::new();
    for e in rd {
        let e = e.with_context(|| format!("cannot read {}", p.display()))?;
        match e.file_name().to_str() {
            Some(n) if !n.starts_with('.') => v.push(n.to_string()),
            Some(_) => {}
            None => tracing::warn!(
                target: "twinbox::maildir",
                "{}: skipping a file whose name is not UTF-8: {:?}",
                p.display(),
                e.file_name()
            ),
        }
    }
    Ok(v)
}

/// Finds the current file of a unique part: `(in_new, file name)`.
pub fn find_file(dir: &Path, unique: &str) -> anyhow::Result<Option<(bool, String)>> {
    for (in_new, sub) in [(false, "cur"), (true, "new")] {
        for n in entries(dir, sub)? {
            if filename::parse(&n).unique == unique {
                return Ok(Some((in_new, n)));
            }
        }
    }
    Ok(None)
}

/// Reads the folder's directories and brings its map up to date (committed). Returns
/// whether anything changed besides file names (new, gone or re-flagged messages).
/// `reads` counts the folders read in full.
pub fn rescan(map: &UidMap, folder: &mut Folder, reads: &AtomicU64) -> anyhow::Result<bool> {
    reads.fetch_add(1, Ordering::Relaxed);
    let started = now_ns();
    let st = stamps(&folder.dir);
    folder.keywords = Keywords::load(&folder.dir)?;
    folder.keywords.pin(&folder.pinned);
    let kw = &folder.keywords;
    // unique part -> (in_new, file name); a file in cur/ wins over a copy in new/.
    let mut disk: HashMap<String, (bool, String)> = HashMap::new();
    for (in_new, sub) in [(true, "new"), (false, "cur")] {
        for n in entries(&folder.dir, sub)? {
            let u = filename::parse(&n).unique.to_string();
            disk.insert(u, (in_new, n));
        }
    }
    // A file renamed while the directory was being listed (a mail reader changing flags)
    // may be missed by that listing. Before taking a known message for deleted, list once
    // more.
    let missing: std::collections::HashSet<&str> = folder
        .msgs
        .values()
        .filter(|m| !disk.contains_key(&m.unique))
        .map(|m| m.unique.as_str())
        .collect();
    if !missing.is_empty() {
        for (in_new, sub) in [(true, "new"), (false, "cur")] {
            for n in entries(&folder.dir, sub)? {
                let u = filename::parse(&n).unique;
                if missing.contains(u) {
                    disk.insert(u.to_string(), (in_new, n));
                }
            }
        }
    }
    let next = folder.row.modseq + 1;
    let mut changed = false;
    let mut upsert: Vec<u32> = Vec::new();
    let mut deleted: Vec<u32> = Vec::new();
    for (uid, m) in folder.msgs.iter_mut() {
        let Some((in_new, file)) = disk.remove(&m.unique) else {
            deleted.push(*uid);
            continue;
        };
        let letters = filename::parse(&file).letters;
        let mut flags: Flags = flags_of(letters, kw);
        // Keywords without a letter live only in the map: keep them.
        flags.extend(
            m.flags
                .iter()
                .filter(|f| !f.starts_with('\\') && kw.letter(f).is_none())
                .cloned(),
        );
        if flags != m.flags {
            m.flags = flags;
            m.modseq = next;
            changed = true;
            upsert.push(*uid);
        } else if m.file != file || m.in_new != in_new {
            upsert.push(*uid);
        }
        m.file = file;
        m.in_new = in_new;
    }
    for u in &deleted {
        folder.msgs.remove(u);
        changed = true;
    }
    let mut fresh: Vec<(String, (bool, String))> = disk.into_iter().collect();
    fresh.sort();
    for (unique, (in_new, file)) in fresh {
        let path = folder
            .dir
            .join(if in_new { "new" } else { "cur" })
            .join(&file);
        let fp = match fingerprint(&path, &unique) {
            Ok(fp) => fp,
            // Moved or deleted since the listing: the next scan sees where it went.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let uid = folder.row.uidnext;
        folder.row.uidnext += 1;
        let flags = flags_of(filename::parse(&file).letters, kw);
        folder.msgs.insert(
            uid,
            MsgRow {
                uid,
                unique,
                in_new,
                file,
                flags,
                modseq: next,
                fp,
            },
        );
        upsert.push(uid);
        changed = true;
    }
    if changed {
        folder.row.modseq = next;
    }
    folder.row.messages = folder.msgs.len() as u32;
    folder.row.stamps = st.map(|s| if s > started - DIRTY_WINDOW_NS { 0 } else { s });
    let rows: Vec<&MsgRow> = upsert.iter().filter_map(|u| folder.msgs.get(u)).collect();
    map.commit(&folder.row, &rows, &deleted)?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf() {
        assert_eq!(crlf_len(b"a\nb\r\n"), 6);
        assert_eq!(to_crlf(b"a\nb\r\n".to_vec()), b"a\r\nb\r\n");
        assert_eq!(to_crlf(b"\n".to_vec()), b"\r\n");
    }
}
