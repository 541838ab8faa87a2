//! kill -9 of the real `twinbox` process at random moments of a sync with traffic in both
//! directions (`sync_crash::prepare` plus a few hundred new messages each way): after each
//! kill a clean run ends exactly where an uninterrupted sync ends (nothing lost, nothing
//! duplicated) and `twinbox check` finds the state consistent.
//!
//! CI runs 20 trials; `TWINBOX_KILL_TRIALS=200` runs more (the figure).
//! `TWINBOX_KILL_SEED=N` replays a sequence of moments (the seed is printed).
//!
//! Known race, outside twinbox's reach: a MULTIAPPEND the killed process had sent in full is
//! still executed by the server after the client is gone. If the next run scans the
//! mailbox before the server has committed it, the pending copies look lost and are made
//! again, and the late commit then adds a second copy (seen under heavy load within a few
//! trials). By default each trial waits until dovecot has ended the killed session before
//! the next run; `TWINBOX_KILL_NO_WAIT=1` reruns at once and exposes the race.

use std::time::{Duration, Instant};

use crate::faults_support::{check, env_count, wait_sessions_ended};
use crate::support::sync::{ImapSide, MailSide, RunOutcome, Snapshot, SyncBed};
use crate::sync_crash::prepare;
use twinbox::testbed::sample_messages;

/// `sync_crash::prepare`, then more new mail on both sides so a run lasts long enough to
/// be killed in the middle of copying.
fn prepare_big(bed: &SyncBed<ImapSide>) {
    prepare(bed);
    bed.remote
        .seed("INBOX", &sample_messages(120, 150), &[])
        .expect("seed");
    bed.local
        .seed("Work", &sample_messages(121, 100), &["\\Seen"])
        .expect("seed");
    bed.local
        .seed("Bulk", &sample_messages(122, 50), &[])
        .expect("seed");
}

fn reference_big() -> Snapshot {
    let bed = SyncBed::imap();
    prepare_big(&bed);
    let run = bed.run_with(&["-1"], &[]);
    assert!(run.ok(), "{run}");
    let snap = bed.assert_converged();
    assert_eq!(snap["Bulk"].len(), 50);
    snap
}

/// A small deterministic generator (xorshift64*), so a failing sequence can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn kill_9_at_random_moments_loses_and_duplicates_nothing() {
    let trials = env_count("TWINBOX_KILL_TRIALS", 20);
    let seed = std::env::var("TWINBOX_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    eprintln!("TWINBOX_KILL_SEED={seed}");
    let mut rng = Rng(seed);
    let want = reference_big();
    let bed = SyncBed::imap();
    prepare_big(&bed);
    bed.checkpoint("prepared");
    // How long an uninterrupted run takes here: the range to draw kill moments from (a
    // sampling range, not an assertion).
    let t0 = Instant::now();
    let clean = bed.run_with(&["-1"], &[]);
    assert!(clean.ok(), "{clean}");
    let mut span = t0.elapsed().as_micros().max(1000) as u64;
    let (mut killed, mut finished) = (0, 0);
    for trial in 0..trials {
        // Restore only once the server has finished with every earlier session.
        wait_sessions_ended(&bed.remote.dovecot);
        bed.restore("prepared");
        let delay = Duration::from_micros(rng.next() % (span + span / 5));
        let mut child = bed.command().arg("-1").spawn().expect("spawn twinbox");
        std::thread::sleep(delay);
        // Keep the window on the run's length as the machine's load changes: shrink it
        // when the run had already finished, widen it a little when it was killed.
        match child.try_wait() {
            Ok(Some(_)) => {
                finished += 1;
                span = (span * 4 / 5).max(1000);
            }
            _ => {
                killed += 1;
                span += span / 20;
            }
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        if std::env::var("TWINBOX_KILL_NO_WAIT").is_err() {
            // Let the server finish what the dead client had sent in full (see the module
            // documentation) before the next run scans.
            wait_sessions_ended(&bed.remote.dovecot);
        }
        let again: RunOutcome = bed.run_with(&["-1"], &[]);
        let what = format!("trial {trial}, kill after {delay:?} (seed {seed})");
        eprintln!("{what}");
        assert!(
            again.ok(),
            "{what}: the run after the kill failed:\n{again}"
        );
        let got = bed.assert_converged();
        assert_eq!(got, want, "{what}: differs from the uninterrupted sync");
        let c = check(&bed);
        assert_eq!(c.code, Some(0), "{what}: twinbox check:\n{c}");
    }
    eprintln!(
        "{trials} trials over a {:?} sync: {killed} killed mid-run, {finished} had finished; \
         nothing lost or duplicated",
        Duration::from_micros(span)
    );
    assert!(killed > 0, "no run was killed mid-way");
}
