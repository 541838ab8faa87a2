//! Renaming and deleting Maildir folders (`twinbox rename`, `twinbox delete`), with IMAP's
//! meaning: a rename takes the subfolders along, a delete removes the folder's mail but not
//! its subfolders. Each step is atomic on disk: a folder is renamed whole, and a deleted
//! folder first loses its `cur/` (after which it is no folder any more), so a crash leaves
//! it either present or gone, never half-emptied. The UID map follows the disk (after it),
//! so renamed folders keep their UIDVALIDITY and UIDs. Also the scratch map of a dry run.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::layout::{is_maildir, sync_dir, Layout};
use super::uidmap::UidMap;

/// Renames folder `from` (and its subfolders) to `to`, on disk and in the UID map.
pub fn rename(
    layout: &Layout,
    map: &UidMap,
    from: &str,
    to: &str,
    fsync: bool,
) -> anyhow::Result<()> {
    let src = layout.path(from)?;
    let dst = layout.path(to)?;
    if src == layout.root || dst == layout.root {
        anyhow::bail!("INBOX at the Maildir root cannot be renamed");
    }
    // (old name, new name, old path, new path): subfolders first, the folder itself last,
    // so that running the rename again after a crash finishes it.
    let prefix = format!("{from}{}", layout.sep);
    let mut moves: Vec<(String, String, PathBuf, PathBuf)> = Vec::new();
    if layout.sep == '.' {
        for (name, path) in layout.list()? {
            if let Some(rest) = name.strip_prefix(&prefix) {
                let new = format!("{to}{}{rest}", layout.sep);
                let np = layout.path(&new)?;
                moves.push((name, new, path, np));
            }
        }
    }
    moves.push((from.to_string(), to.to_string(), src, dst));
    let mut renamed = Vec::new();
    for (old, new, op, np) in &moves {
        match (op.exists(), np.exists()) {
            (true, true) => anyhow::bail!("both {} and {} exist", op.display(), np.display()),
            (false, true) => continue, // done by an earlier, interrupted rename
            (false, false) => anyhow::bail!("no Maildir folder {old:?} ({})", op.display()),
            (true, false) => {}
        }
        if let Some(parent) = np.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::rename(op, np)
            .with_context(|| format!("cannot rename {} to {}", op.display(), np.display()))?;
        if fsync {
            for d in [op.parent(), np.parent()].into_iter().flatten() {
                sync_dir(d)?;
            }
        }
        renamed.push((old.clone(), new.clone()));
    }
    // Nested folders moved with their parent: their map rows follow too.
    if layout.sep != '.' {
        renamed.push((prefix, format!("{to}{}", layout.sep)));
    }
    map.rename_folders(&renamed)
}

/// Deletes folder `name`'s mail (its subfolders stay).
pub fn delete(layout: &Layout, map: &UidMap, name: &str, fsync: bool) -> anyhow::Result<()> {
    let dir = layout.path(name)?;
    if dir == layout.root {
        anyhow::bail!("INBOX at the Maildir root cannot be deleted");
    }
    if !is_maildir(&dir) {
        anyhow::bail!("no Maildir folder {name:?} ({} has no cur/)", dir.display());
    }
    let trash = trash_dir(layout, &dir);
    std::fs::create_dir(&trash).with_context(|| format!("cannot create {}", trash.display()))?;
    // cur/ first: from then on the folder is gone for every reader.
    let mut entries: Vec<PathBuf> = Vec::new();
    for e in std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let p = e?.path();
        let fname = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let sub_folder = p.is_dir() && !["cur", "new", "tmp"].contains(&fname.as_str());
        if !sub_folder {
            entries.push(p);
        }
    }
    entries.sort_by_key(|p| p.file_name().map(|n| n != "cur"));
    for p in &entries {
        if let Some(n) = p.file_name() {
            std::fs::rename(p, trash.join(n))
                .with_context(|| format!("cannot move {} away", p.display()))?;
        }
        if fsync && p.ends_with("cur") {
            sync_dir(&dir)?;
        }
    }
    std::fs::remove_dir_all(&trash)
        .with_context(|| format!("cannot remove {}", trash.display()))?;
    // An emptied directory without subfolders goes too.
    let _ = std::fs::remove_dir(&dir);
    map.forget_folder(name)
}

/// A private temporary copy of the UID map at `path` (with its write-ahead log), for a
/// dry run; an empty file when there is no map yet.
pub fn scratch_copy(path: &Path) -> anyhow::Result<tempfile::TempPath> {
    let tmp = tempfile::Builder::new()
        .prefix("twinbox-dry-run-")
        .suffix(".uids.db")
        .tempfile()?
        .into_temp_path();
    if path.exists() {
        std::fs::copy(path, &tmp)
            .with_context(|| format!("cannot copy {} for the dry run", path.display()))?;
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        if wal.exists() {
            std::fs::copy(&wal, format!("{}-wal", tmp.display()))
                .with_context(|| format!("cannot copy {} for the dry run", wal.display()))?;
        }
    }
    Ok(tmp)
}

/// A hidden directory beside the folder that no listing shows.
fn trash_dir(layout: &Layout, dir: &Path) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = format!("twinbox-deleting-{}-{stamp}", std::process::id());
    match layout.sep {
        // Maildir++ lists only dot-directories; nested layouts skip dot-directories.
        '.' => layout.root.join(name),
        _ => dir
            .parent()
            .unwrap_or(&layout.root)
            .join(format!(".{name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::layout::Inbox;
    use super::*;

    fn names(l: &Layout) -> Vec<String> {
        l.list()
            .expect("list")
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

    #[test]
    fn rename_and_delete_in_both_layouts() {
        for sep in ['/', '.'] {
            let dir = tempfile::tempdir().expect("tempdir");
            let l = Layout {
                root: dir.path().join("m"),
                sep,
                inbox: Inbox::Root,
                utf8: true,
            };
            let s = sep.to_string();
            let kid = format!("A{s}kid");
            for n in ["INBOX", "A", kid.as_str(), "B"] {
                l.create(n, false).expect("create");
            }
            std::fs::write(l.path("A").expect("path").join("cur/1.x:2,S"), b"m").expect("msg");
            let map = UidMap::open(&dir.path().join("map.db"), &l.root, false).expect("map");
            let row = map.folder_or_new("A").expect("row");
            map.folder_or_new(&kid).expect("row");
            rename(&l, &map, "A", &format!("C{s}D"), false).expect("rename");
            let cd = format!("C{s}D");
            let cdk = format!("C{s}D{s}kid");
            let mut want = vec![
                "INBOX".to_string(),
                "B".to_string(),
                cd.clone(),
                cdk.clone(),
            ];
            want.sort();
            let mut got = names(&l);
            got.sort();
            assert_eq!(got, want, "sep {sep}");
            assert!(l.path(&cd).expect("path").join("cur/1.x:2,S").is_file());
            let moved = map.folder(&cd).expect("folder").expect("row kept");
            assert_eq!(moved.uidvalidity, row.uidvalidity, "UIDVALIDITY kept");
            assert!(map.folder(&cdk).expect("folder").is_some(), "sep {sep}");
            assert!(map.folder("A").expect("folder").is_none());
            // Again (as after an interrupted run): nothing left to do is fine; a clash or a
            // missing folder is refused.
            rename(&l, &map, "A", &cd, false).expect("already done");
            rename(&l, &map, "Nope", "Other", false).expect_err("no such folder");
            rename(&l, &map, "B", &cd, false).expect_err("target exists");

            delete(&l, &map, &cd, false).expect("delete");
            let mut got = names(&l);
            got.sort();
            let mut want = vec!["INBOX".to_string(), "B".to_string(), cdk.clone()];
            want.sort();
            assert_eq!(got, want, "the subfolder stays (sep {sep})");
            assert!(map.folder(&cd).expect("folder").is_none());
            assert!(delete(&l, &map, "INBOX", false).is_err());
            // No trash left behind.
            let leftovers: Vec<_> = std::fs::read_dir(&l.root)
                .expect("root")
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().contains("twinbox-deleting"))
                .collect();
            assert!(leftovers.is_empty());
        }
    }
}
