//! Where each folder lives on disk: one Maildir per folder, nested directories
//! (`sep = /`, dovecot's `LAYOUT=fs`) or Maildir++ dot names (`sep = .`), INBOX at the
//! root or in `INBOX/`; names in UTF-8 (or modified UTF-7 when `utf8foldernames = no`).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::imap::utf7;

/// Where INBOX lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbox {
    /// `root/{cur,new,tmp}` (dovecot's and Maildir++'s default).
    Root,
    /// `root/INBOX/{cur,new,tmp}` (offlineimap's default).
    Folder,
}

/// The shape of a Maildir tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The root directory.
    pub root: PathBuf,
    /// `/` or `.`.
    pub sep: char,
    /// INBOX placement.
    pub inbox: Inbox,
    /// Folder names on disk in UTF-8 (else modified UTF-7).
    pub utf8: bool,
}

/// Directory names that are part of a Maildir, never folders.
const RESERVED: [&str; 3] = ["cur", "new", "tmp"];
/// Longest directory name (bytes) most file systems take.
const MAX_NAME: usize = 255;
/// Longest folder name (bytes) accepted, all levels together.
const MAX_PATH: usize = 2048;

impl Layout {
    fn disk_level(&self, level: &str) -> String {
        if self.utf8 {
            level.to_string()
        } else {
            utf7::encode(level)
        }
    }

    fn user_level(&self, disk: &str) -> String {
        if self.utf8 {
            disk.to_string()
        } else {
            utf7::decode(disk.as_bytes()).unwrap_or_else(|| disk.to_string())
        }
    }

    /// The directory of folder `name` (levels joined by `sep`).
    pub fn path(&self, name: &str) -> anyhow::Result<PathBuf> {
        if name.eq_ignore_ascii_case("INBOX") {
            return Ok(match self.inbox {
                Inbox::Root => self.root.clone(),
                Inbox::Folder => self.root.join("INBOX"),
            });
        }
        // A name from the other side must never reach outside the root: no empty, `.` or
        // `..` level, no `/` inside a level, no NUL or other control character, no level
        // longer than a file name may be.
        let levels: Vec<&str> = name.split(self.sep).collect();
        for l in &levels {
            if l.is_empty()
                || *l == "."
                || *l == ".."
                || l.contains('/')
                || l.chars().any(char::is_control)
                || (self.sep == '/' && RESERVED.contains(l))
            {
                anyhow::bail!("folder name {name:?} cannot be a Maildir folder here (level {l:?})");
            }
        }
        let disk: Vec<String> = levels.iter().map(|l| self.disk_level(l)).collect();
        let longest = match self.sep {
            '.' => disk.iter().map(|l| l.len() + 1).sum::<usize>(),
            _ => disk.iter().map(String::len).max().unwrap_or(0),
        };
        if longest > MAX_NAME || name.len() > MAX_PATH {
            anyhow::bail!(
                "folder name {:?}... is too long for a Maildir folder ({} bytes)",
                name.chars().take(40).collect::<String>(),
                name.len()
            );
        }
        Ok(match self.sep {
            '.' => self.root.join(format!(".{}", disk.join("."))),
            _ => {
                let mut p = self.root.clone();
                for l in disk {
                    p.push(l);
                }
                p
            }
        })
    }

    /// Every folder on disk (a directory with a `cur/`), by name.
    pub fn list(&self) -> anyhow::Result<Vec<(String, PathBuf)>> {
        let mut out = Vec::new();
        let inbox = self.path("INBOX")?;
        if is_maildir(&inbox) {
            out.push(("INBOX".to_string(), inbox));
        }
        if !self.root.is_dir() {
            return Ok(out);
        }
        match self.sep {
            '.' => {
                for e in read_dir_sorted(&self.root)? {
                    let Some(name) = e.strip_prefix('.') else {
                        continue;
                    };
                    if name.is_empty() || name == "." {
                        continue;
                    }
                    let p = self.root.join(&e);
                    if is_maildir(&p) {
                        let levels: Vec<String> =
                            name.split('.').map(|l| self.user_level(l)).collect();
                        out.push((levels.join("."), p));
                    }
                }
            }
            _ => self.walk(&self.root, "", &mut out)?,
        }
        Ok(out)
    }

    fn walk(
        &self,
        dir: &Path,
        prefix: &str,
        out: &mut Vec<(String, PathBuf)>,
    ) -> anyhow::Result<()> {
        for e in read_dir_sorted(dir)? {
            if e.starts_with('.') || RESERVED.contains(&e.as_str()) {
                continue;
            }
            let p = dir.join(&e);
            if !p.is_dir() {
                continue;
            }
            let level = self.user_level(&e);
            let name = if prefix.is_empty() {
                level
            } else {
                format!("{prefix}/{level}")
            };
            if prefix.is_empty() && self.inbox == Inbox::Folder && name == "INBOX" {
                // Listed already; its subfolders are `INBOX/...`.
            } else if is_maildir(&p) {
                out.push((name.clone(), p.clone()));
            }
            self.walk(&p, &name, out)?;
        }
        Ok(())
    }

    /// Makes the folder's Maildir (and parents).
    pub fn create(&self, name: &str, fsync: bool) -> anyhow::Result<PathBuf> {
        let p = self.path(name)?;
        // `cur/` last: it is what makes a directory a Maildir ([`is_maildir`]), so a run
        // killed half-way leaves no folder that lacks `tmp/` or `new/`.
        for d in ["tmp", "new", "cur"] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(p.join(d))
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", p.join(d).display()))?;
        }
        if fsync {
            if let Some(parent) = p.parent() {
                sync_dir(parent)?;
            }
            sync_dir(&p)?;
        }
        Ok(p)
    }
}

/// Creates whichever of a Maildir folder's `tmp/`, `new/` and `cur/` is missing.
pub fn complete_maildir(p: &Path, fsync: bool) -> anyhow::Result<()> {
    let mut made = false;
    for d in RESERVED {
        let sub = p.join(d);
        if !sub.is_dir() {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&sub)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", sub.display()))?;
            made = true;
        }
    }
    if made && fsync {
        sync_dir(p)?;
    }
    Ok(())
}

/// Whether `p` is a Maildir (has `cur/`).
pub fn is_maildir(p: &Path) -> bool {
    p.join("cur").is_dir()
}

fn read_dir_sorted(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut v = Vec::new();
    let rd = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?;
    for e in rd {
        let e = e.map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?;
        if let Some(n) = e.file_name().to_str() {
            v.push(n.to_string());
        }
    }
    v.sort();
    Ok(v)
}

/// fsyncs a directory (so a rename or a new entry in it survives a crash).
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| anyhow::anyhow!("cannot sync directory {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_with_cur_only_is_completed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("half");
        std::fs::create_dir_all(p.join("cur")).expect("mkdir");
        assert!(is_maildir(&p));
        complete_maildir(&p, true).expect("complete");
        for d in RESERVED {
            assert!(p.join(d).is_dir(), "{d}");
        }
        // Nothing to do the second time.
        complete_maildir(&p, false).expect("again");
    }

    #[test]
    fn paths_and_listing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = Layout {
            root: dir.path().join("fs"),
            sep: '/',
            inbox: Inbox::Folder,
            utf8: true,
        };
        for n in ["INBOX", "Lists/rust", "Entwürfe", "INBOX/sub"] {
            fs.create(n, false).expect("create");
        }
        assert!(fs.path("a/cur").is_err());
        for bad in [
            "../x",
            "a/../../b",
            "/abs",
            "a//b",
            ".",
            "a/./b",
            "nul\0x",
            "line\nbreak",
            "esc\u{1b}[2J",
            "del\u{7f}",
            "c1\u{85}",
        ] {
            assert!(fs.path(bad).is_err(), "{bad:?} accepted");
        }
        assert!(fs.path(&"x".repeat(256)).is_err());
        assert!(fs.path(&vec!["y".repeat(200); 20].join("/")).is_err());
        assert!(fs.path(&"x".repeat(255)).is_ok());
        let names: Vec<String> = fs
            .list()
            .expect("list")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["INBOX", "Entwürfe", "INBOX/sub", "Lists/rust"]);
        let pp = Layout {
            root: dir.path().join("pp"),
            sep: '.',
            inbox: Inbox::Root,
            utf8: false,
        };
        for n in ["INBOX", "Lists.rust", "Entwürfe"] {
            pp.create(n, false).expect("create");
        }
        assert!(dir.path().join("pp/.Entw&APw-rfe/cur").is_dir());
        for bad in ["..", "../x", "a..b", "/abs", "a/b", ".x", "x.", "t\tab"] {
            assert!(pp.path(bad).is_err(), "{bad:?} accepted");
        }
        assert!(pp.path(&vec!["z".repeat(100); 3].join(".")).is_err());
        let names: Vec<String> = pp
            .list()
            .expect("list")
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["INBOX", "Entwürfe", "Lists.rust"]);
    }
}
