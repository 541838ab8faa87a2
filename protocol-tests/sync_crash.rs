//! Crash safety and races, through the real binary against real dovecot accounts:
//! - an abort at every step of a sync with traffic in both directions, each followed by a
//!   clean run, ends exactly where an uninterrupted sync ends;
//! - changes made by someone else at every step of a sync are neither lost nor
//!   duplicated;
//! - kill -9 at random moments of larger syncs loses and duplicates nothing.

use std::path::Path;

use crate::support::sync::{msg, sha, ImapSide, MailSide, Msg, Snapshot, SyncBed};
use twinbox::testbed::sample_messages;

/// The messages of [`prepare`].
pub struct Traffic {
    inbox: Vec<Vec<u8>>,
    work: Vec<Vec<u8>>,
}

/// A synced account, then changes on both sides: new mail (and a new nested mailbox),
/// flag changes (one conflicting), expunges.
pub fn prepare<L: MailSide>(bed: &SyncBed<L>) -> Traffic {
    let (l, r): (&dyn MailSide, &dyn MailSide) = (&bed.local, &bed.remote);
    let inbox = sample_messages(101, 6);
    let work = sample_messages(102, 4);
    r.seed("INBOX", &inbox, &[]).expect("seed");
    r.seed("Work", &work, &["\\Seen"]).expect("seed");
    l.seed("INBOX", &sample_messages(103, 2), &[])
        .expect("seed");
    let first = bed.run_with(&["-1"], &[]);
    assert!(first.ok(), "{first}");
    bed.assert_same();
    let h = |v: &Vec<Vec<u8>>, i: usize| sha(&v[i]);
    r.seed("INBOX", &sample_messages(104, 3), &[])
        .expect("seed");
    r.add_flags("INBOX", &h(&inbox, 0), &["\\Flagged"])
        .expect("flags");
    r.expunge("INBOX", &h(&inbox, 1)).expect("expunge");
    r.remove_flags("Work", &h(&work, 0), &["\\Seen"])
        .expect("flags");
    l.seed("Work", &sample_messages(105, 2), &["\\Answered"])
        .expect("seed");
    l.add_flags("INBOX", &h(&inbox, 2), &["$Local"])
        .expect("flags");
    l.expunge("Work", &h(&work, 1)).expect("expunge");
    l.seed("New/Local", &sample_messages(106, 2), &[])
        .expect("seed");
    l.add_flags("INBOX", &h(&inbox, 3), &["\\Answered"])
        .expect("flags");
    r.add_flags("INBOX", &h(&inbox, 3), &["$R"]).expect("flags");
    Traffic { inbox, work }
}

/// The outcome of an uninterrupted sync of [`prepare`]'s traffic.
pub fn reference<L: MailSide>(bed: &SyncBed<L>) -> Snapshot {
    prepare(bed);
    let run = bed.run_with(&["-1"], &[]);
    assert!(run.ok(), "{run}");
    let snap = bed.assert_converged();
    // Spot checks that the reference itself is right.
    assert_eq!(snap["New/Local"].len(), 2);
    assert_eq!(snap["Work"].len(), 5);
    assert_eq!(snap["INBOX"].len(), 6 - 1 + 3 + 2);
    snap
}

fn aborted(run: &crate::support::sync::RunOutcome) -> bool {
    run.code.is_none() && run.stderr.contains("fault injected")
}

/// Abort at step N for every N (until a run completes), then a clean run: the result is
/// the uninterrupted one, nothing lost or duplicated, and a further run changes nothing.
#[test]
fn interrupt_at_every_step_converges_to_the_uninterrupted_result() {
    interrupt_at_every_step(&SyncBed::imap(), &SyncBed::imap());
}

/// [`prepare`] on `bed`, then for N = 1, 2, ...: restore the prepared state, abort at step
/// N, run again cleanly, and compare with the uninterrupted outcome (computed on `fresh`).
/// The sides must support checkpoints.
pub fn interrupt_at_every_step<L: MailSide>(bed: &SyncBed<L>, fresh: &SyncBed<L>) {
    let want = reference(fresh);
    prepare(bed);
    bed.checkpoint("prepared");
    let mut n = 1;
    loop {
        bed.restore("prepared");
        let n_s = n.to_string();
        let run = bed.run_with(&["-1"], &[("TWINBOX_FAULT_AFTER", &n_s)]);
        if run.ok() {
            // Fewer than N steps: every step has been interrupted once.
            assert!(n > 5, "suspiciously few steps ({n}):\n{run}");
            assert_eq!(bed.assert_converged(), want);
            break;
        }
        assert!(aborted(&run), "step {n}: not the injected fault:\n{run}");
        let again = bed.run_with(&["-1"], &[]);
        assert!(
            again.ok(),
            "step {n}: the run after the crash failed:\n{again}"
        );
        let got = bed.assert_converged();
        assert_eq!(
            got, want,
            "step {n}: the result differs from the uninterrupted sync\n{run}\n{again}"
        );
        n += 1;
        assert!(n < 200, "no run completed");
    }
    eprintln!("interrupted at each of {} steps", n - 1);
}

fn save_cmd(side: &ImapSide, mailbox: &str, file: &Path) -> String {
    format!(
        "/usr/bin/doveadm -c '{}' save -u {} -m '{}' < '{}'",
        side.dovecot.config_path().display(),
        side.user,
        side.native(mailbox),
        file.display()
    )
}

fn doveadm_cmd(side: &ImapSide, args: &str) -> String {
    format!(
        "/usr/bin/doveadm -c '{}' {args}",
        side.dovecot.config_path().display()
    )
}

fn with(snap: &mut Snapshot, mailbox: &str, f: impl FnOnce(&mut Vec<Msg>)) {
    let v = snap.entry(mailbox.to_string()).or_default();
    f(v);
    v.sort();
}

/// At every step N of a sync, another client saves a message on each side, sets a flag
/// on one side and expunges a message on the other: after the next run everything is
/// there exactly once (nothing lost, nothing duplicated) and both sides agree.
#[test]
fn changes_made_during_a_sync_at_every_step() {
    let base = reference(&SyncBed::imap());
    let extra = sample_messages(107, 2);
    let bed = SyncBed::imap();
    let t = prepare(&bed);
    bed.checkpoint("prepared");
    let (x, y) = (bed.dir.path().join("x.eml"), bed.dir.path().join("y.eml"));
    std::fs::write(&x, &extra[0]).expect("write");
    std::fs::write(&y, &extra[1]).expect("write");
    let work2 = bed.remote.uid_of("Work", &sha(&t.work[2])).expect("uid");
    let inbox4 = bed.local.uid_of("INBOX", &sha(&t.inbox[4])).expect("uid");
    let cmd = [
        save_cmd(&bed.remote, "INBOX", &x),
        save_cmd(&bed.local, "INBOX", &y),
        doveadm_cmd(
            &bed.remote,
            &format!("flags add -u alice '$Hook' mailbox Work uid {work2}"),
        ),
        doveadm_cmd(
            &bed.local,
            &format!("expunge -u bob mailbox INBOX uid {inbox4}"),
        ),
    ]
    .join(" && ");
    let mut n = 1;
    loop {
        bed.restore("prepared");
        let n_s = n.to_string();
        let run = bed.run_with(
            &["-1"],
            &[("TWINBOX_HOOK_AT", &n_s), ("TWINBOX_HOOK_CMD", &cmd)],
        );
        assert!(run.ok(), "step {n}: {run}");
        if !run.stderr.contains("running the test hook") {
            assert!(n > 5, "suspiciously few steps ({n}):\n{run}");
            break;
        }
        assert!(!run.stderr.contains("hook failed"), "{run}");
        let again = bed.sync();
        let got = bed.assert_converged();
        let mut want = base.clone();
        with(&mut want, "INBOX", |v| {
            v.push(msg(&extra[0], &[]));
            v.push(msg(&extra[1], &[]));
            v.retain(|m| m.sha256 != sha(&t.inbox[4]));
        });
        with(&mut want, "Work", |v| {
            for m in v.iter_mut() {
                if m.sha256 == sha(&t.work[2]) {
                    m.flags.push("$Hook".into());
                    m.flags.sort();
                }
            }
        });
        assert_eq!(got, want, "step {n}:\n{run}\n{again}");
        n += 1;
        assert!(n < 200, "no run completed");
    }
    eprintln!("changed behind the sync's back at each of {} steps", n - 1);
}
