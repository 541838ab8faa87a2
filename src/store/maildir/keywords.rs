//! Custom keywords in dovecot's format: a `dovecot-keywords` file in each Maildir maps
//! indexes 0–25 to keyword names, and the letters `a`–`z` in file names stand for them.
//!
//! A Maildir has room for 26 keywords. Like dovecot, a keyword past the 26th gets no
//! letter: twinbox then keeps it only in its own UID map (so it is synced and not lost
//! between twinbox runs), but other Maildir readers do not see it.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// The file name dovecot uses.
pub const FILE: &str = "dovecot-keywords";

/// The keyword table of one Maildir folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keywords {
    names: [Option<String>; 26],
    /// Changed in memory (letters pinned by the configuration) and not saved yet.
    dirty: bool,
}

impl Keywords {
    /// Reads `dir/dovecot-keywords` (an absent file is an empty table; bad lines are
    /// skipped as dovecot does).
    pub fn load(dir: &Path) -> anyhow::Result<Keywords> {
        let path = dir.join(FILE);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Keywords::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let mut k = Keywords::default();
        for line in String::from_utf8_lossy(&text).lines() {
            let Some((idx, name)) = line.split_once(' ') else {
                continue;
            };
            let Ok(i) = idx.trim().parse::<usize>() else {
                continue;
            };
            let name = name.trim();
            if i < 26 && !name.is_empty() && k.letter(name).is_none() {
                k.names[i] = Some(name.to_string());
            }
        }
        Ok(k)
    }

    /// Pins letters to keywords (offlineimap's `customflag_x = keyword`): they override
    /// the file's table, which is rewritten with them at the next write.
    pub fn pin(&mut self, pinned: &std::collections::BTreeMap<char, String>) {
        for (letter, kw) in pinned {
            let Some(i) = (*letter as u32).checked_sub('a' as u32).map(|i| i as usize) else {
                continue;
            };
            if i >= 26 || self.names[i].as_deref() == Some(kw.as_str()) {
                continue;
            }
            for n in self.names.iter_mut() {
                if n.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(kw)) {
                    *n = None;
                }
            }
            self.names[i] = Some(kw.clone());
            self.dirty = true;
        }
    }

    /// Whether the table differs from the file.
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// The keyword a letter stands for.
    pub fn name(&self, letter: char) -> Option<&str> {
        let i = (letter as u32).checked_sub('a' as u32)? as usize;
        self.names.get(i)?.as_deref()
    }

    /// The letter of a keyword (case-insensitive, as IMAP keywords are).
    pub fn letter(&self, keyword: &str) -> Option<char> {
        self.names
            .iter()
            .position(|n| {
                n.as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(keyword))
            })
            .and_then(|i| char::from_u32('a' as u32 + i as u32))
    }

    /// Gives `keyword` a letter if it has none and one is free; returns whether the table
    /// changed.
    pub fn assign(&mut self, keyword: &str) -> bool {
        if self.letter(keyword).is_some() {
            return false;
        }
        match self.names.iter().position(Option::is_none) {
            Some(i) => {
                self.names[i] = Some(keyword.to_string());
                true
            }
            None => false,
        }
    }

    /// Writes the table to `dir/dovecot-keywords` atomically (a temporary file renamed over
    /// the old one).
    pub fn save(&mut self, dir: &Path, fsync: bool) -> anyhow::Result<()> {
        let mut text = String::new();
        for (i, n) in self.names.iter().enumerate() {
            if let Some(n) = n {
                text.push_str(&format!("{i} {n}\n"));
            }
        }
        let tmp = dir.join(format!(".{FILE}.twinbox-{}", std::process::id()));
        let path = dir.join(FILE);
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        if fsync {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, &path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trips_and_fills_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut k = Keywords::default();
        assert!(k.assign("$Label1"));
        assert!(!k.assign("$label1"));
        assert!(k.assign("Work"));
        k.save(dir.path(), false).expect("save");
        let back = Keywords::load(dir.path()).expect("load");
        assert_eq!(back, k);
        let mut pinned = back.clone();
        let pins = [('b', "$Label1".to_string())].into_iter().collect();
        pinned.pin(&pins);
        assert!(pinned.dirty());
        assert_eq!(
            (pinned.letter("$label1"), pinned.name('a')),
            (Some('b'), None)
        );
        assert_eq!(back.letter("work"), Some('b'));
        assert_eq!(back.name('a'), Some("$Label1"));
        for i in 0..24 {
            assert!(k.assign(&format!("k{i}")));
        }
        assert!(!k.assign("overflow"));
        assert_eq!(k.letter("overflow"), None);
    }
}
