//! Disk full and read-only file systems, on a small tmpfs mounted for the test (needs
//! root; the tests say so and pass without checking anything when `mount` is refused):
//! - the metadata directory full at several levels of free space, or read-only: the sync
//!   fails with a clear error (or completes), the state is not corrupted, and once there
//!   is room again the next run converges on the uninterrupted result with `twinbox check`
//!   consistent;
//! - the native Maildir full in the middle of downloading, or read-only: a clear error,
//!   and after the space comes back the next run completes without loss or duplicates.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::faults_support::check;
use crate::maildir_bed::{Bed, Engine, LOCAL, REMOTE};
use crate::support::sync::{copy_tree, RunOutcome, SyncBed};
use crate::sync_crash::{prepare, reference};
use twinbox::testbed::sample_messages;

/// A tmpfs mounted on a directory; unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` on `dir` with extra options, or says why not.
    fn mount(dir: &Path, size: &str, extra: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let opts = format!("size={size}{extra}");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir.to_path_buf())),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    /// `mount -o remount,OPTS`.
    fn remount(&self, opts: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.0)
            .status()
            .expect("run mount");
        assert!(st.success(), "remount {opts} failed");
    }

    /// Fills the file system, then frees `free` bytes (a filler file; [`Self::unfill`]).
    fn fill_leaving(&self, free: u64) {
        use std::io::Write;
        let path = self.0.join(".filler");
        let mut f = std::fs::File::create(&path).expect("filler");
        let block = vec![0x55u8; 64 * 1024];
        loop {
            match f.write(&block) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = f.flush();
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        f.set_len(len.saturating_sub(free))
            .expect("truncate filler");
    }

    fn unfill(&self) {
        let _ = std::fs::remove_file(self.0.join(".filler"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn said_no_space(r: &RunOutcome) -> bool {
    let t = format!("{}{}", r.stdout, r.stderr).to_ascii_lowercase();
    t.contains("no space") || t.contains("disk is full") || t.contains("disk full")
}

fn assert_clean_failure(r: &RunOutcome, what: &str) {
    assert!(r.code.is_some(), "{what}: died by a signal:\n{r}");
    assert!(!r.stderr.contains("panicked"), "{what}: panicked:\n{r}");
}

#[test]
fn metadata_directory_full_or_read_only_fails_cleanly_and_recovers() {
    let want = reference(&SyncBed::imap());
    let bed = SyncBed::imap();
    let mnt = bed.dir.path().join("mnt");
    let Some(fs) = Tmpfs::mount(&mnt, "4M", ",mode=0700") else {
        return;
    };
    // The metadata directory inside the small file system (the mount point itself cannot
    // be replaced by a restore).
    let meta = mnt.join("meta");
    let conf = std::fs::read_to_string(bed.config_path()).expect("config");
    let conf = conf.replacen(
        &format!("metadata = {}", bed.metadata().display()),
        &format!("metadata = {}", meta.display()),
        1,
    );
    std::fs::write(bed.config_path(), conf).expect("config");
    let saved = bed.dir.path().join("meta-prepared");
    prepare(&bed);
    bed.checkpoint("prepared");
    copy_tree(&meta, &saved).expect("save metadata");
    let restore = || {
        bed.restore("prepared");
        copy_tree(&saved, &meta).expect("restore metadata");
    };
    let mut full_errors = 0;
    for free in [0u64, 4096, 16384, 65536] {
        restore();
        fs.fill_leaving(free);
        let r = bed.run_with(&["-1"], &[]);
        let what = format!("{free} bytes free");
        assert_clean_failure(&r, &what);
        if !r.ok() {
            assert!(
                said_no_space(&r),
                "{what}: the error does not say the disk is full:\n{r}"
            );
            full_errors += 1;
        }
        fs.unfill();
        let again = bed.run_with(&["-1"], &[]);
        assert!(
            again.ok(),
            "{what}: the run after freeing space failed:\n{again}\n{r}"
        );
        assert_eq!(bed.assert_converged(), want, "{what}");
        let c = check(&bed);
        assert_eq!(c.code, Some(0), "{what}: twinbox check:\n{c}");
    }
    assert!(full_errors > 0, "no run met a full disk");
    // Read-only: refused with a clear error, the state file untouched.
    restore();
    let db = meta.join("Test.db");
    let db_before = std::fs::read(&db).expect("state db");
    fs.remount("ro");
    let r = bed.run_with(&["-1"], &[]);
    assert_clean_failure(&r, "read-only");
    assert!(
        !r.ok(),
        "a sync with a read-only state directory reported success:\n{r}"
    );
    let t = format!("{}{}", r.stdout, r.stderr).to_ascii_lowercase();
    assert!(
        t.contains("read-only") || t.contains("readonly"),
        "unclear error:\n{r}"
    );
    assert_eq!(std::fs::read(&db).expect("state db"), db_before);
    fs.remount("rw");
    let again = bed.run_with(&["-1"], &[]);
    assert!(again.ok(), "after remounting read-write:\n{again}");
    assert_eq!(bed.assert_converged(), want);
    eprintln!(
        "metadata full: {full_errors} of 4 levels failed cleanly; read-only refused; all recovered"
    );
}

fn output_text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn native_maildir_full_or_read_only_fails_cleanly_and_recovers() {
    let bed = Bed::new(Engine::Native, '/');
    let (uid, gid) = bed.dv.mail_owner();
    let Some(fs) = Tmpfs::mount(
        &bed.maildir,
        "1M",
        &format!(",mode=0700,uid={uid},gid={gid}"),
    ) else {
        return;
    };
    // About 2.4 MB of mail for a 1 MB Maildir.
    let big: Vec<Vec<u8>> = sample_messages(501, 60)
        .into_iter()
        .enumerate()
        .map(|(i, mut m)| {
            m.extend(format!("\r\n{}\r\n", "x".repeat(40_000 + i)).into_bytes());
            m
        })
        .collect();
    bed.dv
        .seed_mailbox(REMOTE, "INBOX", &big, &[])
        .expect("seed");
    bed.dv
        .seed_mailbox(LOCAL, "INBOX", &sample_messages(502, 3), &[])
        .expect("seed");
    bed.fix_owner();
    let o = bed.run_output(None);
    let text = output_text(&o);
    assert!(
        o.status.code().is_some() && !text.contains("panicked"),
        "{text}"
    );
    assert!(!o.status.success(), "60 × 40 kB fitted in 1 MB?\n{text}");
    let low = text.to_ascii_lowercase();
    assert!(
        low.contains("no space"),
        "the error does not say the disk is full:\n{text}"
    );
    // No half-written message is visible as mail.
    let partial = bed.messages(LOCAL, "INBOX");
    for (h, _) in &partial {
        assert!(
            big.iter().any(|m| crate::maildir_bed::hash(m) == *h)
                || sample_messages(502, 3)
                    .iter()
                    .any(|m| crate::maildir_bed::hash(m) == *h),
            "a message in the local INBOX that no side has (truncated?)"
        );
    }
    // Read-only: a clear error.
    fs.remount("ro");
    let o = bed.command().output().expect("run twinbox");
    let text = output_text(&o);
    assert!(
        !o.status.success(),
        "read-only Maildir reported success:\n{text}"
    );
    assert!(
        text.to_ascii_lowercase().contains("read-only"),
        "unclear error:\n{text}"
    );
    // Room again: the next run completes, nothing lost or doubled.
    fs.remount("rw,size=16M");
    bed.sync();
    let out = bed.sync();
    assert_eq!(crate::maildir_bed::copied(&out), (0, 0), "{out}");
    bed.assert_same(&["INBOX"]);
    assert_eq!(bed.messages(LOCAL, "INBOX").len(), 63);
}
