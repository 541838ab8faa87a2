//! Sync figures on loopback: first sync, no-op resync (time and bytes), and the no-op
//! resync with ten times as many messages per mailbox.
//!
//! ```text
//! cargo run --release --example syncbench -- [MAILBOXES [MESSAGES [SCALE]]]
//! ```
//! Defaults: 20 mailboxes × 500 messages, scale 10. A private dovecot (TLS and COMPRESS
//! off, so dovecot's per-session `in=`/`out=` counters are the bytes on the wire) holds
//! the remote account (alice, seeded with sample mail) and the local one (bob, empty).
//! For the scaled no-op, bob starts as a file copy of alice's mail (same dates), so the
//! first sync pairs the messages instead of copying them, and the no-op after it is timed.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use twinbox::cli::run::{run, RunOptions};
use twinbox::testbed::{sample_messages, Dovecot, DovecotOptions, TestUser};

fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().context("arguments are numbers"))
        .collect::<Result<_>>()?;
    let mailboxes = args.first().copied().unwrap_or(20);
    let messages = args.get(1).copied().unwrap_or(500);
    let scale = args.get(2).copied().unwrap_or(10);
    let rt = tokio::runtime::Runtime::new()?;
    println!("syncbench: {mailboxes} mailboxes × {messages} messages, then × {scale}");
    let base = bench(&rt, mailboxes, messages, false)?;
    println!(
        "first sync: {:.2} s, {} messages, {:.1} MB; no-op resync: {:.3} s (median of 5), {} bytes sent + {} bytes received per run (both sides)",
        base.first.as_secs_f64(),
        mailboxes * messages,
        base.data_bytes as f64 / 1e6,
        base.noop.as_secs_f64(),
        base.noop_in,
        base.noop_out
    );
    if scale > 1 {
        let big = bench(&rt, mailboxes, messages * scale, true)?;
        println!(
            "× {scale} ({} messages): first sync (pairing identical copies): {:.2} s; no-op resync: {:.3} s, {} bytes sent + {} bytes received per run\n",
            mailboxes * messages * scale,
            big.first.as_secs_f64(),
            big.noop.as_secs_f64(),
            big.noop_in,
            big.noop_out
        );
    }
    Ok(())
}

struct Figures {
    first: Duration,
    data_bytes: u64,
    noop: Duration,
    /// Bytes clients sent (dovecot's `in=`), both sides together.
    noop_in: u64,
    /// Bytes clients received (dovecot's `out=`).
    noop_out: u64,
}

fn bench(
    rt: &tokio::runtime::Runtime,
    mailboxes: usize,
    messages: usize,
    copy_local: bool,
) -> Result<Figures> {
    let dv = Dovecot::start(
        DovecotOptions::default()
            .users(vec![
                TestUser::new("alice", "secret"),
                TestUser::new("bob", "secret"),
            ])
            .tls(false)
            .compress(false)
            .command_log(false)
            .mail_log(false),
    )?;
    let t = Instant::now();
    let mut data_bytes = 0u64;
    for i in 0..mailboxes {
        let name = if i == 0 {
            "INBOX".to_string()
        } else {
            format!("Folder{:02}/Sub", i)
        };
        let msgs = sample_messages(1000 + i as u64, messages);
        data_bytes += msgs.iter().map(|m| m.len() as u64).sum::<u64>();
        dv.seed_mailbox("alice", &name, &msgs, &[])?;
    }
    eprintln!("seeded in {:.1} s", t.elapsed().as_secs_f64());
    if copy_local {
        copy_tree(&dv.home_dir("alice"), &dv.home_dir("bob"))?;
    }
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("twinbox.conf");
    std::fs::write(&conf, dv.two_user_config("Bench", &dir.path().join("meta")))?;
    let opts = RunOptions {
        config: Some(conf),
        ..Default::default()
    };
    let t = Instant::now();
    let code = rt.block_on(run(opts.clone()));
    let first = t.elapsed();
    if code != 0 {
        bail!("first sync failed ({code})");
    }
    let mut times = Vec::new();
    let mut per_run = (0, 0);
    for _ in 0..5 {
        let before = settled_counts(&dv, 0)?;
        let t = Instant::now();
        let code = rt.block_on(run(opts.clone()));
        times.push(t.elapsed());
        if code != 0 {
            bail!("no-op sync failed ({code})");
        }
        // A no-op run is one session per side.
        let after = settled_counts(&dv, before.2 + 2)?;
        per_run = (after.0 - before.0, after.1 - before.1);
    }
    times.sort();
    Ok(Figures {
        first,
        data_bytes,
        noop: times[times.len() / 2],
        noop_in: per_run.0,
        noop_out: per_run.1,
    })
}

/// Sum of dovecot's per-session byte counters (in, out, sessions) once every session has
/// logged out and at least `sessions` have.
fn settled_counts(dv: &Dovecot, sessions: usize) -> Result<(u64, u64, usize)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = dv.log_contents();
        let logins = log
            .lines()
            .filter(|l| l.contains("imap-login: Info: Login: "))
            .count();
        let s = dv.session_byte_counts();
        if s.len() >= logins && s.len() >= sessions {
            return Ok((
                s.iter().map(|x| x.bytes_in).sum(),
                s.iter().map(|x| x.bytes_out).sum(),
                s.len(),
            ));
        }
        if Instant::now() > deadline {
            bail!("sessions did not log out");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to)?;
    }
    let st = Command::new("cp").arg("-a").arg(from).arg(to).status()?;
    if !st.success() {
        bail!("cp -a failed");
    }
    Ok(())
}
