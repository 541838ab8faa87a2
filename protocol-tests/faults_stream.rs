//! Large messages stream: a 50 MiB message synced IMAP→IMAP (with COMPRESS=DEFLATE),
//! IMAP→native Maildir and native Maildir→IMAP arrives intact (content hashes equal on
//! both sides, nothing lost or duplicated) while the twinbox process's peak RSS stays far
//! below the message's size: within a fixed margin of the same bed's peak when it synced
//! one small message. Memory, not time, is asserted.
//!
//! `TWINBOX_STREAM_MB` changes the size (default 50); `TWINBOX_STREAM_BIN` runs another
//! twinbox binary (to measure an older build: it fails the bound).

use crate::faults_support::env_count;
use crate::maildir_bed::Engine;
use crate::maildir_side::maildir_bed;
use crate::support::sync::{twinbox_bin, MailSide, RunOutcome, SyncBed};

/// How far above the small-sync baseline the peak may go (the goal is < 25 MiB).
const MARGIN_KIB: u64 = 32 * 1024;

/// A message of about `mib` MiB with its own Message-ID and varied lines.
fn big_message(tag: &str, mib: usize) -> Vec<u8> {
    let mut raw = format!(
        "From: {tag}@example.test\r\nTo: you@example.test\r\nSubject: big {tag}\r\nMessage-ID: <big-{tag}@example.test>\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\n"
    )
    .into_bytes();
    let mut i = 0u64;
    while raw.len() < mib * 1024 * 1024 {
        raw.extend_from_slice(
            format!(
                "{tag} line {i:09} {:016x}\r\n",
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
            )
            .as_bytes(),
        );
        i += 1;
    }
    raw
}

fn small_message(tag: &str) -> Vec<u8> {
    format!("From: {tag}@example.test\r\nSubject: small {tag}\r\nMessage-ID: <small-{tag}@example.test>\r\nDate: Sun, 29 Nov 2026 09:00:00 +0000\r\n\r\nhello\r\n").into_bytes()
}

/// Runs the twinbox under test (or `TWINBOX_STREAM_BIN`) once under `/usr/bin/time`;
/// returns the outcome and its peak RSS in KiB.
fn run_measured<L: MailSide>(bed: &SyncBed<L>) -> (RunOutcome, u64) {
    let bin = std::env::var("TWINBOX_STREAM_BIN").unwrap_or_else(|_| twinbox_bin().to_string());
    let (run, rss) = crate::faults_support::run_measured(
        &bin,
        &bed.config_path(),
        &["-1"],
        std::time::Duration::from_secs(1800),
    );
    assert!(run.ok(), "twinbox run failed:\n{run}");
    (run, rss)
}

/// Syncs one small message each way (the baseline peak), then a big one from the remote
/// side and another from the local side; asserts both sides hold the same messages and
/// the big run's peak stays within [`MARGIN_KIB`] of the baseline.
fn big_both_ways<L: MailSide>(bed: &SyncBed<L>, what: &str) {
    let mib = env_count("TWINBOX_STREAM_MB", 50);
    bed.remote
        .seed("INBOX", &[small_message("r")], &[])
        .expect("seed");
    bed.local
        .seed("INBOX", &[small_message("l")], &["\\Seen"])
        .expect("seed");
    let (_, base) = run_measured(bed);
    bed.remote
        .seed("INBOX", &[big_message("remote", mib)], &["\\Flagged"])
        .expect("seed");
    bed.local
        .seed("INBOX", &[big_message("local", mib)], &[])
        .expect("seed");
    let (run, peak) = run_measured(bed);
    let sum = run.summary();
    assert_eq!((sum.to_local, sum.to_remote), (1, 1), "{run}");
    let snap = bed.assert_converged();
    assert_eq!(snap.get("INBOX").map(Vec::len), Some(4), "{snap:?}");
    eprintln!(
        "STREAM {what}: two {mib} MiB messages (one each way): peak RSS {} MiB, baseline \
         (one small message each way) {} MiB, above baseline {} MiB",
        peak / 1024,
        base / 1024,
        peak.saturating_sub(base) / 1024
    );
    assert!(
        peak < base + MARGIN_KIB,
        "{what}: peak RSS {peak} KiB with two {mib} MiB messages, baseline {base} KiB: \
         more than {MARGIN_KIB} KiB above it, so a message is held in memory"
    );
}

#[test]
fn stream_50mib_imap_to_imap_with_compression() {
    let bed = SyncBed::imap();
    // COMPRESS=DEFLATE on the remote side (loopback does not compress by default).
    let conf = std::fs::read_to_string(bed.config_path()).expect("config");
    let conf = conf.replacen(
        "[Repository Remote]\n",
        "[Repository Remote]\nusecompression = yes\n",
        1,
    );
    std::fs::write(bed.config_path(), conf).expect("config");
    big_both_ways(&bed, "IMAP<->IMAP, remote compressed");
    let cmds = bed.remote.commands_seen().expect("command log");
    assert!(
        cmds.iter()
            .any(|c| c.to_ascii_uppercase().contains("COMPRESS DEFLATE")),
        "the remote session was not compressed: {cmds:?}"
    );
}

#[test]
fn stream_50mib_imap_to_native_maildir_and_back() {
    let bed = maildir_bed(Engine::Native, '/');
    big_both_ways(&bed, "IMAP<->native Maildir");
}

/// Without LITERAL+ and MULTIAPPEND (nor UIDPLUS) on the receiving side: several spooled
/// messages in one batch go as pipelined APPENDs, each literal sent from its spool file
/// after the server's continuation, and are found again by their identity.
#[test]
fn stream_spooled_bodies_with_synchronising_literals() {
    use twinbox::testbed::{capabilities_without, DovecotOptions};
    let bed = SyncBed::imap_pair(
        DovecotOptions::default().tls(false),
        DovecotOptions::default()
            .tls(false)
            .capabilities(capabilities_without(&[
                "LITERAL+",
                "MULTIAPPEND",
                "UIDPLUS",
            ])),
    );
    let raws: Vec<Vec<u8>> = (0..3).map(|i| big_message(&format!("s{i}"), 2)).collect();
    bed.remote.seed("INBOX", &raws, &[]).expect("seed");
    let (run, _) = run_measured(&bed);
    assert_eq!(run.summary().to_local, 3, "{run}");
    let snap = bed.assert_converged();
    assert_eq!(snap.get("INBOX").map(Vec::len), Some(3), "{snap:?}");
    let cmds = bed.local.commands_seen().expect("command log");
    let appends = cmds
        .iter()
        .filter(|c| c.to_ascii_uppercase().contains(" APPEND "))
        .count();
    assert_eq!(appends, 3, "one APPEND per message: {cmds:?}");
    assert!(
        !cmds.iter().any(|c| c.contains("+}")),
        "a non-synchronising literal was sent: {cmds:?}"
    );
}
