//! A copy an interrupted run had sent that the server stores only after the next run
//! looked (kill -9 with a MULTIAPPEND fully sent: dovecot still commits it, and under load
//! it may do so after the rerun has scanned the mailbox). Found by
//! `sync_kill`/`faults_kill` on a loaded machine as a whole mailbox doubled on the local
//! side; made deterministic here with the fault and hook points:
//! 1. a first run is aborted right after recording its copy intents (pending copies);
//! 2. the rerun's hook, at its own APPEND (after its scan), just after it, or once its
//!    UIDs are recorded, stores those same messages on the target side, as the late
//!    commit of the first run's APPEND would.
//!
//! The rerun must end with every message exactly once on both sides.

use std::path::Path;

use crate::support::sync::{ImapSide, MailSide, SyncBed};
use twinbox::testbed::sample_messages;

fn save_cmd(side: &ImapSide, mailbox: &str, file: &Path) -> String {
    format!(
        "/usr/bin/doveadm -c '{}' save -u {} -m '{}' < '{}'",
        side.dovecot.config_path().display(),
        side.user,
        side.native(mailbox),
        file.display()
    )
}

#[test]
fn a_killed_runs_append_landing_after_the_rerun_looked_is_not_kept_twice() {
    let bed = SyncBed::imap();
    let msgs = sample_messages(4242, 6);
    bed.remote.seed("Lists/rust", &msgs, &[]).expect("seed");
    // The late commit: the same messages stored on the local side by another session.
    let mut cmds = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let f = bed.dir.path().join(format!("late{i}.eml"));
        std::fs::write(&f, m).expect("write");
        cmds.push(save_cmd(&bed.local, "Lists/rust", &f));
    }
    let hook = cmds.join(" && ");
    bed.checkpoint("start");
    // 1. Abort right after the copy intents are recorded, before the APPEND.
    let mut n = 1;
    loop {
        bed.restore("start");
        let run = bed.run_with(&["-1"], &[("TWINBOX_FAULT_AFTER", &n.to_string())]);
        assert!(run.code != Some(0), "no step records the copies:\n{run}");
        if run.stderr.contains("(pending copies)") {
            break;
        }
        n += 1;
        assert!(n < 50, "no pending-copies step");
    }
    bed.checkpoint("killed");
    // 2. The rerun: the messages arrive on the local side just before its own APPEND,
    //    just after it, or once its UIDs are recorded.
    for step in ["append", "appended", "copied"] {
        let mut n = 1;
        loop {
            bed.restore("killed");
            let run = bed.run_with(
                &["-1"],
                &[
                    ("TWINBOX_HOOK_AT", &n.to_string()),
                    ("TWINBOX_HOOK_CMD", &hook),
                ],
            );
            assert!(run.ok(), "the rerun failed:\n{run}");
            if run.stderr.contains(&format!("hook at step {n} ({step})")) {
                eprintln!("late copies arrive at the rerun's step {n} ({step})");
                let snap = bed.assert_converged();
                assert_eq!(snap["Lists/rust"].len(), msgs.len(), "{step}: {run}");
                break;
            }
            n += 1;
            assert!(n < 50, "the rerun never reached step {step:?}:\n{run}");
        }
    }
}
