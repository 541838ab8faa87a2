//! kill -9 of the real `twinbox` process at random moments of syncs with traffic in both
//! directions: after a clean run both sides hold exactly what an uninterrupted sync would
//! give (a model of the changes), nothing lost, nothing duplicated.
//!
//! `TWINBOX_KILL_TRIALS` (default 20) sets the number of kills; `TWINBOX_KILL_SEED` the
//! random seed (printed, to replay a failure).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::support::sync::{sha, wait_with_timeout, MailSide, Msg, Snapshot, SyncBed};
use twinbox::testbed::{sample_messages, SampleRng};

/// What both sides must hold: mailbox -> message hash -> flags.
type Model = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn model_snapshot(m: &Model) -> Snapshot {
    m.iter()
        .map(|(name, msgs)| {
            let mut v: Vec<Msg> = msgs
                .iter()
                .map(|(h, f)| Msg {
                    sha256: h.clone(),
                    flags: f.iter().cloned().collect(),
                })
                .collect();
            v.sort();
            (name.clone(), v)
        })
        .collect()
}

const FLAGS: &[&str] = &["\\Seen", "\\Flagged", "\\Answered", "$Work", "$Later"];

/// One round of random traffic, applied to the sides and to the model.
fn traffic<L: MailSide>(bed: &SyncBed<L>, model: &mut Model, rng: &mut SampleRng, round: u64) {
    let sides: [&dyn MailSide; 2] = [&bed.local, &bed.remote];
    let new_box = format!("Round{}/Sub", round % 3);
    // Only mailboxes that hold messages (not bare hierarchy parents).
    let mut boxes: Vec<String> = ["INBOX", "Lists/rust", "Archive"]
        .iter()
        .map(|s| s.to_string())
        .chain(
            model
                .keys()
                .filter(|k| k.starts_with("Round") && k.contains('/'))
                .cloned(),
        )
        .collect();
    if !boxes.contains(&new_box) {
        boxes.push(new_box);
    }
    let mut touched: BTreeSet<String> = BTreeSet::new();
    // New mail on random sides and mailboxes.
    for j in 0..4u64 {
        let mailbox = rng.pick(&boxes).clone();
        let side = sides[rng.below(2) as usize];
        let count = 3 + rng.below(12) as usize;
        let msgs = sample_messages(10_000 + round * 16 + j, count);
        let flags: Vec<&str> = FLAGS
            .iter()
            .copied()
            .filter(|_| rng.below(3) == 0)
            .collect();
        side.seed(&mailbox, &msgs, &flags).expect("seed");
        let entry = model.entry(mailbox.clone()).or_default();
        for m in &msgs {
            let h = sha(m);
            touched.insert(h.clone());
            entry.insert(h, flags.iter().map(|f| f.to_string()).collect());
        }
        // Parents exist on both sides once synced.
        let mut parent = mailbox.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            model.entry(p.to_string()).or_default();
            parent = p;
        }
    }
    // Flag changes and expunges of existing messages, each message touched once a round.
    let existing: Vec<(String, String)> = model
        .iter()
        .flat_map(|(b, msgs)| msgs.keys().map(move |h| (b.clone(), h.clone())))
        .filter(|(_, h)| !touched.contains(h))
        .collect();
    if existing.is_empty() {
        return;
    }
    for _ in 0..8 {
        let (mailbox, h) = rng.pick(&existing).clone();
        if !touched.insert(h.clone()) {
            continue;
        }
        let side = sides[rng.below(2) as usize];
        let Some(flags) = model.get_mut(&mailbox).and_then(|m| m.get_mut(&h)) else {
            continue;
        };
        match rng.below(3) {
            0 => {
                side.expunge(&mailbox, &h).expect("expunge");
                if let Some(m) = model.get_mut(&mailbox) {
                    m.remove(&h);
                }
            }
            1 => {
                let f = *rng.pick(FLAGS);
                side.add_flags(&mailbox, &h, &[f]).expect("flags");
                flags.insert(f.to_string());
            }
            _ => {
                if let Some(f) = flags.iter().next().cloned() {
                    side.remove_flags(&mailbox, &h, &[&f]).expect("flags");
                    flags.remove(&f);
                }
            }
        }
    }
}

#[test]
fn kill_9_at_random_moments_loses_and_duplicates_nothing() {
    kill_9_trials(&SyncBed::imap());
}

/// Random traffic, a kill -9 at a random moment of a sync, a clean run, and a comparison
/// with the model, `TWINBOX_KILL_TRIALS` times.
pub fn kill_9_trials<L: MailSide>(bed: &SyncBed<L>) {
    let trials: u64 = std::env::var("TWINBOX_KILL_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("TWINBOX_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("kill -9 test: {trials} trials, TWINBOX_KILL_SEED={seed}");
    let mut rng = SampleRng::new(seed);
    let mut model = Model::new();
    model.insert("INBOX".into(), BTreeMap::new());
    // A larger first population so that kills land in the middle of a big first sync.
    for (i, name) in ["INBOX", "Lists/rust", "Archive"].iter().enumerate() {
        let msgs = sample_messages(9_000 + i as u64, 80);
        bed.remote.seed(name, &msgs, &[]).expect("seed");
        let e = model.entry(name.to_string()).or_default();
        for m in &msgs {
            e.insert(sha(m), BTreeSet::new());
        }
    }
    model.entry("Lists".into()).or_default();
    let mut window = Duration::from_millis(1500);
    let mut killed_mid_run = 0;
    for round in 0..trials {
        if round > 0 {
            traffic(bed, &mut model, &mut rng, round);
        }
        let delay = Duration::from_millis(rng.below(window.as_millis() as u64 + 1));
        let mut child = bed.command().spawn().expect("spawn twinbox");
        let t0 = Instant::now();
        std::thread::sleep(delay);
        let finished = child.try_wait().ok().flatten().is_some();
        let _ = child.kill(); // SIGKILL
        let out = wait_with_timeout(child, Duration::from_secs(60)).expect("reap twinbox");
        if finished {
            // The sync ended before the kill: aim earlier next time.
            window = window.mul_f64(0.6).max(Duration::from_millis(20));
        } else {
            killed_mid_run += 1;
            window = window.mul_f64(1.2);
        }
        let _ = t0;
        let killed = crate::support::sync::RunOutcome::from_output(out);
        let state_after_kill = bed.dump_state();
        // A killed client's last command may still be completing on the server (a
        // MULTIAPPEND received in full is committed after the client is gone): like a
        // user restarting later, wait until the server has finished every session.
        bed.remote.wait_idle();
        bed.local.wait_idle();
        let run = bed.sync();
        let (l, r) = bed.snapshots();
        if let Err(e) = crate::support::sync::compare(&l, &r) {
            panic!(
                "round {round} (seed {seed}, killed after {delay:?}): {e}\nkilled run:\n{killed}\nstate after the kill:\n{state_after_kill}\nclean run:\n{run}\nremote log:\n{}\nRAWLOG\n{}",
                bed.remote.dovecot.log_contents(),
                rawlogs(&bed.remote.dovecot.home_dir("bob").join("rawlog"))
            );
        }
        // Idempotence (a further run changes nothing) is checked every few rounds and at
        // the end, to keep the test short; sameness and the model every round.
        let got = if round % 5 == 4 || round + 1 == trials {
            bed.assert_converged()
        } else {
            bed.assert_same()
        };
        let want = model_snapshot(&model);
        assert_eq!(
            got, want,
            "round {round} (seed {seed}, killed after {delay:?}): not what an uninterrupted sync gives\n{run}"
        );
    }
    eprintln!("kill -9 test: {killed_mid_run} of {trials} kills landed during a sync");
    assert!(killed_mid_run > 0, "no kill landed during a sync");
}

fn rawlogs(dir: &std::path::Path) -> String {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    names.sort();
    let mut out = String::new();
    for n in names {
        let t = std::fs::read(&n).unwrap_or_default();
        let t = String::from_utf8_lossy(&t);
        let short: String = t
            .lines()
            .filter(|l| !l.starts_with("From:") && l.len() < 300)
            .filter(|l| {
                l.contains(" OK")
                    || l.contains("SELECT")
                    || l.contains("FETCH")
                    || l.contains("APPEND")
                    || l.starts_with("* ")
            })
            .take(60)
            .collect::<Vec<_>>()
            .join("\n");
        out.push_str(&format!("== {}\n{short}\n", n.display()));
    }
    out
}
