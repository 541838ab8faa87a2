//! Moves vs new mail (issue #11): for MAILBOXES × MESSAGES on the remote side, synced once
//! to a local account, the cost of a resync after 1% of the messages were moved between
//! mailboxes on the remote side (twinbox replays them with UID MOVE on the local side),
//! against a resync after the same number of genuinely new messages arrived.
//!
//! ```text
//! cargo run --release --example movebench -- [MAILBOXES [MESSAGES]]
//! ```
//! Defaults: 20 × 500. One private dovecot (TLS and COMPRESS off, so its per-session
//! `in=`/`out=` counters are the bytes on the wire) holds the remote account (alice) and
//! the local one (bob). "from the server" is what alice's sessions sent to twinbox.
//! `MOVEBENCH_INTERIMAP=1` runs the same phases with interimap on a second dovecot.
//!
//! `MOVEBENCH_LOG=FILTER` (e.g. `info,twinbox::imap=debug`) logs the runs, with phase
//! markers, to stderr.
//!
//! Measured here (release build, 2 cores shared and loaded, loopback, 20 × 500, 100
//! messages per phase), move phase, medians: twinbox 0.20 s / 29,992 bytes (9 runs;
//! 0.44 s / 62,5xx bytes before each changed mailbox was scanned once and the move
//! step's state writes were batched); interimap 0.94 s / 1,327,1xx bytes (5 runs). New
//! phase: twinbox 0.31-0.67 s / 941,2xx bytes, interimap 0.66-1.6 s / 916,8xx bytes.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use twinbox::cli::run::{run, RunOptions};
use twinbox::testbed::{sample_messages, Dovecot, DovecotOptions, TestUser};

fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().context("arguments are numbers"))
        .collect::<Result<_>>()?;
    if let Ok(f) = std::env::var("MOVEBENCH_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(f))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let mailboxes = args.first().copied().unwrap_or(20).max(2);
    let messages = args.get(1).copied().unwrap_or(500);
    let per_box = (messages / 100).max(1);
    let rt = tokio::runtime::Runtime::new()?;
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
    let name = |i: usize| {
        if i == 0 {
            "INBOX".to_string()
        } else {
            format!("Folder{i:02}")
        }
    };
    for i in 0..mailboxes {
        dv.seed_mailbox(
            "alice",
            &name(i),
            &sample_messages(1000 + i as u64, messages),
            &[],
        )?;
    }
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("twinbox.conf");
    std::fs::write(&conf, dv.two_user_config("Bench", &dir.path().join("meta")))?;
    let opts = RunOptions {
        config: Some(conf),
        ..Default::default()
    };
    let sync = |what: &str| -> Result<(f64, u64)> {
        let before = settled(&dv)?;
        tracing::info!("movebench phase: {what}");
        let t = Instant::now();
        if rt.block_on(run(opts.clone())) != 0 {
            bail!("{what}: sync failed");
        }
        let secs = t.elapsed().as_secs_f64();
        let after = settled(&dv)?;
        Ok((secs, after - before))
    };
    sync("first sync")?;
    // Phase "move": per_box messages of each mailbox moved to the next one.
    for i in 0..mailboxes {
        dv.doveadm(&[
            "move",
            "-u",
            "alice",
            &name((i + 1) % mailboxes),
            "mailbox",
            &name(i),
            "uid",
            &format!("1:{per_box}"),
        ])?;
    }
    let (move_secs, move_bytes) = sync("move")?;
    // Phase "new": as many genuinely new messages.
    for i in 0..mailboxes {
        dv.seed_mailbox(
            "alice",
            &name(i),
            &sample_messages(5000 + i as u64, per_box),
            &[],
        )?;
    }
    let (new_secs, new_bytes) = sync("new")?;
    let n = per_box * mailboxes;
    println!("movebench: {mailboxes} mailboxes × {messages} messages; {n} messages per phase");
    println!("move phase ({n} moved on the remote side): {move_secs:.3} s, {move_bytes} bytes from the server");
    println!("new phase ({n} new on the remote side):   {new_secs:.3} s, {new_bytes} bytes from the server");
    if std::env::var_os("MOVEBENCH_INTERIMAP").is_some() {
        interimap(mailboxes, messages, per_box)?;
    }
    Ok(())
}

/// The same phases with interimap (local side: bob through a PREAUTH tunnel).
fn interimap(mailboxes: usize, messages: usize, per_box: usize) -> Result<()> {
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
    let name = |i: usize| {
        if i == 0 {
            "INBOX".to_string()
        } else {
            format!("Folder{i:02}")
        }
    };
    for i in 0..mailboxes {
        dv.seed_mailbox(
            "alice",
            &name(i),
            &sample_messages(1000 + i as u64, messages),
            &[],
        )?;
    }
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("config/interimap"))?;
    std::fs::create_dir_all(dir.path().join("data/interimap"))?;
    std::fs::write(
        dir.path().join("config/interimap/config"),
        format!(
            "[local]\ntype = tunnel\ncommand = {}\nnull-stderr = YES\n\n[remote]\ntype = imap\nhost = 127.0.0.1\nport = {}\nSTARTTLS = NO\nusername = alice\npassword = secret\n",
            dv.preauth_tunnel_command("bob"),
            dv.imap_port()
        ),
    )?;
    let sync = |what: &str| -> Result<(f64, u64)> {
        let before = settled(&dv)?;
        let t = Instant::now();
        let st = std::process::Command::new("interimap")
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .status()?;
        if !st.success() {
            bail!("interimap {what} failed");
        }
        let secs = t.elapsed().as_secs_f64();
        Ok((secs, settled(&dv)? - before))
    };
    sync("first sync")?;
    for i in 0..mailboxes {
        dv.doveadm(&[
            "move",
            "-u",
            "alice",
            &name((i + 1) % mailboxes),
            "mailbox",
            &name(i),
            "uid",
            &format!("1:{per_box}"),
        ])?;
    }
    let (ms, mb) = sync("move")?;
    for i in 0..mailboxes {
        dv.seed_mailbox(
            "alice",
            &name(i),
            &sample_messages(5000 + i as u64, per_box),
            &[],
        )?;
    }
    let (ns, nb) = sync("new")?;
    println!("interimap move phase: {ms:.3} s, {mb} bytes from the server");
    println!("interimap new phase:  {ns:.3} s, {nb} bytes from the server");
    Ok(())
}

/// Bytes alice's sessions sent (dovecot's `out=`), once every session has logged out.
fn settled(dv: &Dovecot) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let logins = dv
            .log_contents()
            .lines()
            .filter(|l| l.contains("imap-login: Login:"))
            .count();
        let s = dv.session_byte_counts();
        if s.len() >= logins {
            return Ok(s
                .iter()
                .filter(|x| x.user == "alice")
                .map(|x| x.bytes_out)
                .sum());
        }
        if Instant::now() > deadline {
            bail!("sessions did not log out");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
