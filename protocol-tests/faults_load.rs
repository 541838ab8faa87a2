//! Load: many messages in one mailbox and many mailboxes in one account, and one large
//! message, through the real binary against dovecot, with the child's peak RSS measured
//! by `/usr/bin/time -f %M`.
//!
//! - first sync completes and both sides hold the same messages;
//! - a no-op resync sends one LIST (with STATUS) per side and selects nothing;
//! - a large message is streamed: peak RSS stays far below its size.
//!
//! CI runs a scaled-down variant; the figures are a documented command:
//! `TWINBOX_LOAD_MESSAGES=100000 TWINBOX_LOAD_MAILBOXES=1000 TWINBOX_LOAD_BIG_MB=50 cargo
//! test --release --test protocol faults_load -- --nocapture --test-threads=1`
//! (CI: 3000 messages, 60 mailboxes, an 8 MiB message).

use std::time::Instant;

use crate::faults_support::env_count;
use crate::support::sync::{twinbox_bin, ImapSide, MailSide, RunOutcome, SyncBed};
use twinbox::testbed::sample_messages;

/// Runs twinbox under `/usr/bin/time`; returns the outcome and the peak RSS in KiB.
fn run_measured(bed: &SyncBed<ImapSide>, args: &[&str]) -> (RunOutcome, u64) {
    crate::faults_support::run_measured(
        twinbox_bin(),
        &bed.config_path(),
        args,
        std::time::Duration::from_secs(3600),
    )
}

/// Commands of a kind (the verb, upper case) in a command log.
fn count(cmds: &[String], verb: &str) -> usize {
    cmds.iter()
        .filter(|c| {
            c.split_ascii_whitespace()
                .nth(1)
                .is_some_and(|v| v.eq_ignore_ascii_case(verb))
        })
        .count()
}

/// Message counts per mailbox of a side.
fn counts(side: &ImapSide) -> Vec<(String, u32)> {
    side.mailboxes()
        .expect("mailboxes")
        .into_iter()
        .map(|m| {
            let n = side
                .dovecot
                .mailbox_status(&side.user, &side.native(&m))
                .expect("status")
                .messages;
            (m, n)
        })
        .collect()
}

#[test]
fn load_many_messages_and_mailboxes_first_sync_then_noop_resync() {
    let n = env_count("TWINBOX_LOAD_MESSAGES", 3000);
    let boxes = env_count("TWINBOX_LOAD_MAILBOXES", 60);
    let bed = SyncBed::imap();
    let t = Instant::now();
    let chunk = 5000;
    for (i, start) in (0..n).step_by(chunk).enumerate() {
        let k = chunk.min(n - start);
        bed.remote
            .seed("INBOX", &sample_messages(600 + i as u64, k), &[])
            .expect("seed");
    }
    for i in 0..boxes {
        bed.remote
            .seed(
                &format!("Box{:04}", i),
                &sample_messages(10_000 + i as u64, 1),
                &[],
            )
            .expect("seed");
    }
    bed.local
        .seed("Local", &sample_messages(599, (n / 10).max(1)), &["\\Seen"])
        .expect("seed");
    eprintln!(
        "seeded {n} messages and {boxes} mailboxes in {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    let (first, rss_first) = run_measured(&bed, &["-1"]);
    let first_time = t.elapsed();
    assert!(first.ok(), "first sync:\n{first}");
    let (l, r) = (counts(&bed.local), counts(&bed.remote));
    assert_eq!(l, r, "message counts per mailbox differ");
    assert_eq!(l.len(), boxes + 2);
    if n <= 5000 {
        bed.assert_same();
    }
    let before = [
        bed.remote.commands_seen().expect("log"),
        bed.local.commands_seen().expect("log"),
    ];
    let t = Instant::now();
    let (noop, rss_noop) = run_measured(&bed, &["-1"]);
    let noop_time = t.elapsed();
    assert!(noop.ok(), "no-op resync:\n{noop}");
    assert_eq!(noop.summary().changes(), 0, "{noop}");
    assert_eq!(noop.summary().opened, 0, "{noop}");
    // The sessions' logs are complete once they have ended.
    crate::faults_support::wait_sessions_ended(&bed.remote.dovecot);
    let after = [
        bed.remote.commands_seen().expect("log"),
        bed.local.commands_seen().expect("log"),
    ];
    for (side, (b, a)) in ["remote", "local"].iter().zip(before.iter().zip(&after)) {
        let new = &a[b.len()..];
        assert_eq!(count(new, "LIST"), 1, "{side}: {new:?}");
        for verb in ["SELECT", "EXAMINE", "STATUS", "FETCH", "UID"] {
            assert_eq!(count(new, verb), 0, "{side}: {verb} in {new:?}");
        }
    }
    eprintln!(
        "LOAD {n} messages in INBOX + {} local, {boxes} mailboxes: first sync {first_time:?}, \
         peak RSS {} MiB; no-op resync {noop_time:?} (one LIST per side, nothing selected), \
         peak RSS {} MiB",
        (n / 10).max(1),
        rss_first / 1024,
        rss_noop / 1024
    );
    // A bound on memory, not on time: state and listings are not held whole per message
    // body; a few hundred bytes per message at most.
    let cap_kib = 64 * 1024 + (n as u64 + boxes as u64 * 50) / 2;
    assert!(
        rss_first < cap_kib,
        "peak RSS {rss_first} KiB (cap {cap_kib} KiB)"
    );
}

#[test]
fn a_large_message_streams_with_memory_far_below_its_size() {
    let mb = env_count("TWINBOX_LOAD_BIG_MB", 8);
    let bed = SyncBed::imap();
    let mut raw = b"From: big@example.test\r\nTo: you@example.test\r\nSubject: big\r\nMessage-ID: <big-1@example.test>\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\n".to_vec();
    let line: Vec<u8> = (0..76u8).map(|i| b'A' + (i % 26)).chain(*b"\r\n").collect();
    while raw.len() < mb * 1024 * 1024 {
        raw.extend_from_slice(&line);
    }
    bed.remote.seed("INBOX", &[raw.clone()], &[]).expect("seed");
    // And one the other way: another message (its own Message-ID: two messages with the
    // same Message-ID and size on both sides before a first sync are paired as one).
    let mut up = raw.clone();
    up[..22].copy_from_slice(b"From: upp@example.test");
    let at = up
        .windows(6)
        .position(|w| w == b"big-1@")
        .expect("Message-ID");
    up[at..at + 6].copy_from_slice(b"big-2@");
    bed.local.seed("INBOX", &[up], &[]).expect("seed");
    let t = Instant::now();
    let (run, rss) = run_measured(&bed, &["-1"]);
    assert!(run.ok(), "{run}");
    let took = t.elapsed();
    bed.assert_converged();
    let size_kib = raw.len() as u64 / 1024;
    eprintln!(
        "BIG two {} MiB messages (one each way) in {took:?}: peak RSS {} MiB",
        size_kib / 1024,
        rss / 1024
    );
    // Bodies over 1 MiB stream through spool files (50 MiB: 19 MiB peak, against 120 MiB
    // when a message was held twice); `faults_stream` asserts that against a measured
    // baseline. Here: a loose cap for CI, and `TWINBOX_LOAD_STRICT=1` asserts the goal,
    // far below the message's size.
    let base_kib = 64 * 1024;
    assert!(
        rss < base_kib + size_kib / 2,
        "peak RSS {rss} KiB for a {size_kib} KiB message: held in memory"
    );
    if std::env::var("TWINBOX_LOAD_STRICT").is_ok() {
        assert!(
            rss < size_kib / 2,
            "peak RSS {rss} KiB for a {size_kib} KiB message: not streamed"
        );
    }
}
