//! Benchmark (ignored by default): the cost of a no-op resync per tier, for 20 mailboxes ×
//! 500 messages on the remote side, synced once to a local account; then full and quick
//! no-op runs, timed, with the bytes each session moved (dovecot's `in=`/`out=` logout
//! counters, uncompressed on loopback) and the commands the remote server saw.
//!
//! ```sh
//! TWINBOX_BENCH_TIERS=qresync,condstore,neither,no-list-status,bare \
//!   cargo test --release --test protocol tiers_bench -- --ignored --nocapture
//! ```
//!
//! `TWINBOX_BENCH_SIZE=MAILBOXESxMESSAGES` (default `20x500`) changes the size. Both
//! sides run the same tier (one dovecot, two accounts).

use std::time::{Duration, Instant};

use crate::support::sync::{start_dovecot, ImapSide, SyncBed};
use crate::tiers::Tier;
use twinbox::testbed::{sample_messages, Dovecot};

/// Bytes (client to server, server to client) and commands of the sessions that ended
/// after `from` sessions had ended (waits for the `expect` new logout lines).
fn sessions_after(dv: &Dovecot, from: usize, expect: usize) -> (u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = dv.session_byte_counts();
        if s.len() >= from + expect || Instant::now() > deadline {
            return s
                .iter()
                .skip(from)
                .fold((0, 0), |(i, o), x| (i + x.bytes_in, o + x.bytes_out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Figures {
    secs: f64,
    bytes_in: u64,
    bytes_out: u64,
    commands: usize,
    opened: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Three no-op runs with `args`: the median time, the bytes and commands of the last.
fn measure(bed: &SyncBed<ImapSide>, args: &[&str]) -> Figures {
    let dv = bed.remote.dovecot.clone();
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let sessions = dv.session_byte_counts().len();
        let commands = bed.remote.commands_seen().map(|c| c.len()).unwrap_or(0);
        let t = Instant::now();
        let run = bed.run_with(args, &[]);
        times.push(t.elapsed().as_secs_f64());
        assert!(run.ok(), "{run}");
        assert_eq!(run.summary().changes(), 0, "not a no-op:\n{run}");
        // Two sessions end: the remote's and the local's (same server).
        let (bytes_in, bytes_out) = sessions_after(&dv, sessions, 2);
        let now = bed.remote.commands_seen().map(|c| c.len()).unwrap_or(0);
        last = Some((bytes_in, bytes_out, now - commands, run.summary().opened));
    }
    let (bytes_in, bytes_out, commands, opened) = last.unwrap_or_default();
    Figures {
        secs: median(times),
        bytes_in,
        bytes_out,
        commands,
        opened,
    }
}

fn tier_named(name: &str) -> Option<Tier> {
    Tier::ALL.into_iter().find(|t| t.name() == name.trim())
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn tiers_bench() {
    let tiers: Vec<Tier> = match std::env::var("TWINBOX_BENCH_TIERS") {
        Ok(v) => v.split(',').filter_map(tier_named).collect(),
        Err(_) => vec![
            Tier::Qresync,
            Tier::CondstoreOnly,
            Tier::Neither,
            Tier::Bare,
        ],
    };
    let (boxes, per_box) = std::env::var("TWINBOX_BENCH_SIZE")
        .ok()
        .and_then(|v| {
            let (a, b) = v.split_once('x')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .unwrap_or((20usize, 500usize));
    println!(
        "\nno-op resync, {boxes} mailboxes x {per_box} messages, both sides on one dovecot of the tier"
    );
    println!(
        "{:<16} {:>9} | {:>8} {:>6} {:>10} {:>10} {:>5} | {:>8} {:>6} {:>10} {:>10} {:>5}",
        "tier",
        "first s",
        "full s",
        "opened",
        "bytes c>s",
        "bytes s>c",
        "cmds",
        "quick s",
        "opened",
        "bytes c>s",
        "bytes s>c",
        "cmds"
    );
    for tier in tiers {
        let dv = start_dovecot(tier.options(&["alice".to_string(), "bob".to_string()]));
        let mut bed = SyncBed::new(ImapSide::new(dv.clone(), "alice"), ImapSide::new(dv, "bob"));
        bed.noop_opens_nothing = false;
        for b in 0..boxes {
            let name = if b == 0 {
                "INBOX".to_string()
            } else {
                format!("Folder{b:02}")
            };
            bed.remote
                .dovecot
                .seed_mailbox(
                    "alice",
                    &name,
                    &sample_messages(900 + b as u64, per_box),
                    &[],
                )
                .expect("seed");
        }
        let t = Instant::now();
        let first = bed.sync();
        let first_secs = t.elapsed().as_secs_f64();
        assert_eq!(
            first.summary().to_local,
            (boxes * per_box) as u64,
            "{first}"
        );
        let full = measure(&bed, &[]);
        let quick = measure(&bed, &["-q"]);
        let (f, q) = (full, quick);
        println!(
            "{:<16} {:>9.2} | {:>8.3} {:>6} {:>10} {:>10} {:>5} | {:>8.3} {:>6} {:>10} {:>10} {:>5}",
            tier.name(),
            first_secs,
            f.secs,
            f.opened,
            f.bytes_in,
            f.bytes_out,
            f.commands,
            q.secs,
            q.opened,
            q.bytes_in,
            q.bytes_out,
            q.commands
        );
    }
    println!("(bytes of both sessions, remote and local; cmds: commands the remote account sent)");
}
