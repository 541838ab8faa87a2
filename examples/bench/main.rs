//! Side-by-side benchmark of twinbox and its peers (interimap, mbsync, offlineimap3) on a
//! private dovecot on loopback.
//!
//! ```text
//! cargo run --release --example bench -- [--mailboxes 10] [--messages 100] [--runs 3]
//!     [--scale 10] [--tools twinbox-imap,mbsync,...] [--out target/bench]
//! ```
//! For each tool: a fresh dovecot (COMPRESS offered, no TLS), the deterministic corpus
//! seeded into `alice`, a counting TCP relay in front of the server for alice's
//! connections, then: first sync; no-op resync (×runs); incremental resync (×runs, each
//! after 1% new + 1% flag changes + 1% expunges on the remote and 1% flag changes on the
//! local side); and, on a fresh corpus ×scale messages per mailbox, the no-op resync again.
//! After every sync both sides are compared (content hash and flags): a difference marks
//! the row failed. `BENCH_KEEP=1` keeps each tool's directory; `BENCH_WRAP="strace ..."` prefixes
//! every tool command. Times are medians; bytes and commands are means over the runs.
//! Prints a markdown table and writes `OUT/results.md` and `OUT/noop.svg`.

mod corpus;
mod relay;
mod report;
mod tools;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use twinbox::testbed::{Dovecot, DovecotOptions, TestUser};

use relay::{Relay, Snapshot};
use tools::{Local, Setup, Tool};

/// The benchmark's parameters.
#[derive(Debug, Clone)]
pub struct Params {
    pub mailboxes: usize,
    pub messages: usize,
    pub runs: usize,
    pub scale: usize,
    pub tools: Vec<Tool>,
    pub out: PathBuf,
}

/// One measured phase: median wall time over its runs, the relay's figures of the median
/// run, peak RSS over the runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Measure {
    pub wall: Duration,
    pub net: Snapshot,
    pub rss_kb: u64,
}

/// A tool's results; `error` set when a run failed or a check found the sides different.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub label: String,
    pub first: Option<Measure>,
    pub noop: Option<Measure>,
    pub incr: Option<Measure>,
    pub noop_big: Option<Measure>,
    /// The first sync of the ×scale corpus (less dominated by fixed costs than the first).
    pub first_big: Option<Measure>,
    pub error: Option<String>,
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("__twinbox") {
        // The bench runs twinbox as a child process of itself, to measure it like a peer.
        use argh::FromArgs;
        let rest: Vec<&str> = argv[2..].iter().map(String::as_str).collect();
        let code = match twinbox::cli::Args::from_args(&["twinbox"], &rest) {
            Ok(a) => twinbox::cli::run(a),
            Err(e) => {
                eprintln!("{}", e.output);
                2
            }
        };
        // Our own peak, exactly (the parent's sampling may miss a last spike).
        if let (Some(kb), Some(home)) = (
            tools::vmhwm_kb("/proc/self/status"),
            std::env::var_os("HOME"),
        ) {
            let _ = std::fs::write(std::path::Path::new(&home).join("vmhwm"), kb.to_string());
        }
        std::process::exit(code);
    }
    match params(&argv[1..]).and_then(|p| bench(&p)) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("bench: {e:#}");
            std::process::exit(1);
        }
    }
}

fn params(args: &[String]) -> Result<Params> {
    let mut p = Params {
        mailboxes: 10,
        messages: 100,
        runs: 3,
        scale: 10,
        tools: tools::ALL.to_vec(),
        out: PathBuf::from("target/bench"),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().with_context(|| format!("{a} needs a value"));
        let num = |v: &String| {
            v.parse::<usize>()
                .with_context(|| format!("{a}: not a number"))
        };
        match a.as_str() {
            "--mailboxes" => p.mailboxes = num(val()?)?.max(1),
            "--messages" => p.messages = num(val()?)?.max(1),
            "--runs" => p.runs = num(val()?)?.max(1),
            "--scale" => p.scale = num(val()?)?,
            "--out" => p.out = PathBuf::from(val()?),
            "--tools" => {
                let want: Vec<String> = val()?.split(',').map(str::to_string).collect();
                p.tools = tools::ALL
                    .iter()
                    .copied()
                    .filter(|t| want.contains(&t.key()))
                    .collect();
                if p.tools.len() != want.len() {
                    let keys: Vec<String> = tools::ALL.iter().map(|t| t.key()).collect();
                    bail!("--tools: known are {}", keys.join(","));
                }
            }
            "-h" | "--help" => {
                println!("see examples/bench/main.rs: --mailboxes --messages --runs --scale --tools --out");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(p)
}

fn bench(p: &Params) -> Result<()> {
    tools::install_peers(&p.tools)?;
    std::fs::create_dir_all(&p.out)?;
    let started = chrono::Utc::now();
    let t0 = Instant::now();
    let mut rows = Vec::new();
    let mut reference = None;
    for &tool in &p.tools {
        eprintln!("== {}", tool.label());
        let mut row = Row {
            label: tool.label(),
            ..Default::default()
        };
        if let Err(e) = phases(tool, p, p.messages, true, &mut row, &mut reference) {
            eprintln!("   failed: {e:#}");
            row.error = Some(format!("{e:#}"));
        } else if p.scale > 1 {
            let mut big = Row::default();
            match phases(tool, p, p.messages * p.scale, false, &mut big, &mut None) {
                Ok(()) => {
                    row.noop_big = big.noop;
                    row.first_big = big.first;
                }
                Err(e) => {
                    eprintln!("   failed at ×{}: {e:#}", p.scale);
                    row.error = Some(format!("×{}: {e:#}", p.scale));
                }
            }
        }
        rows.push(row);
        // Written after every tool, so a long run interrupted still leaves its results.
        let text = report::markdown(p, &rows, reference, started, t0.elapsed());
        std::fs::write(p.out.join("results.md"), &text)?;
        std::fs::write(p.out.join("noop.svg"), report::svg(p, &rows))?;
    }
    let text = report::markdown(p, &rows, reference, started, t0.elapsed());
    println!("{text}");
    eprintln!("wrote {}/results.md and noop.svg", p.out.display());
    Ok(())
}

/// First sync, no-op resyncs and (when `full`) incremental resyncs of one tool on a fresh
/// server with `per_box` messages per mailbox.
fn phases(
    tool: Tool,
    p: &Params,
    per_box: usize,
    full: bool,
    row: &mut Row,
    reference: &mut Option<u64>,
) -> Result<()> {
    let dv = Dovecot::start(
        DovecotOptions::default()
            .users(vec![
                TestUser::new("alice", "secret"),
                TestUser::new("bob", "secret"),
            ])
            .tls(false)
            .compress(true)
            .command_log(false)
            .mail_log(false),
    )?;
    let t = Instant::now();
    let bytes = corpus::seed(&dv, "alice", p.mailboxes, per_box)?;
    eprintln!(
        "   seeded {} × {per_box} messages ({:.1} MB) in {:.1} s",
        p.mailboxes,
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    if reference.is_none() {
        *reference = Some(list_status_bytes(&dv)?);
    }
    let relay = Relay::start(dv.imap_port())?;
    let tmp = tempfile::tempdir()?;
    let setup = tools::setup(tool, tmp.path(), relay.port, dv.imap_port())?;
    if std::env::var_os("BENCH_KEEP").is_some() {
        // For debugging a tool: its configuration, log and Maildir stay.
        eprintln!("   keeping {}", tmp.keep().display());
    }
    let first = sync(&setup, &relay, &dv)?;
    eprintln!("   first sync {:.2} s", first.wall.as_secs_f64());
    row.first = Some(first);
    let mut noops = Vec::new();
    for _ in 0..p.runs {
        noops.push(sync(&setup, &relay, &dv)?);
    }
    row.noop = Some(median(noops));
    eprintln!(
        "   no-op {:.3} s",
        row.noop.map(|m| m.wall).unwrap_or_default().as_secs_f64()
    );
    if full {
        let mut incs = Vec::new();
        for round in 1..=p.runs as u64 {
            corpus::change_remote(&dv, "alice", p.mailboxes, round)?;
            match &setup.local {
                Local::Imap(user) => corpus::change_local_imap(&dv, user, p.mailboxes, round)?,
                Local::Maildir(root) => corpus::change_local_maildir(root, round)?,
            }
            incs.push(sync(&setup, &relay, &dv)?);
        }
        row.incr = Some(median(incs));
        eprintln!(
            "   incremental {:.3} s",
            row.incr.map(|m| m.wall).unwrap_or_default().as_secs_f64()
        );
    }
    dv.stop();
    Ok(())
}

/// One run of the tool, measured, then the check of both sides.
fn sync(setup: &Setup, relay: &Relay, dv: &Dovecot) -> Result<Measure> {
    let before = settled(relay);
    let cost = tools::run(setup)?;
    let net = settled(relay).since(before);
    let remote = corpus::imap_side(dv, "alice", setup.keywords)?;
    let local = match &setup.local {
        Local::Imap(user) => corpus::imap_side(dv, user, setup.keywords)?,
        Local::Maildir(root) => corpus::maildir_side(root)?,
    };
    corpus::same(&remote, &local).context("check after sync")?;
    Ok(Measure {
        wall: cost.wall,
        net,
        rss_kb: cost.maxrss_kb,
    })
}

/// The relay's counters once they stop moving (the last bytes of a closing connection).
fn settled(relay: &Relay) -> Snapshot {
    let mut last = relay.snapshot();
    loop {
        std::thread::sleep(Duration::from_millis(30));
        let now = relay.snapshot();
        if now.up == last.up && now.down == last.down {
            return now;
        }
        last = now;
    }
}

/// The median wall time, the mean bytes and commands (every tool sees the same change
/// rounds, so means compare; a median run could be a different round per tool), and the
/// peak RSS of all runs.
fn median(mut v: Vec<Measure>) -> Measure {
    let n = v.len().max(1) as u64;
    let rss = v.iter().map(|m| m.rss_kb).max().unwrap_or(0);
    let sum = |f: fn(&Snapshot) -> u64| v.iter().map(|m| f(&m.net)).sum::<u64>() / n;
    let net = Snapshot {
        up: sum(|s| s.up),
        down: sum(|s| s.down),
        commands: sum(|s| s.commands),
        connections: sum(|s| s.connections),
    };
    v.sort_by_key(|m| m.wall);
    let mut m = v[v.len() / 2];
    m.rss_kb = rss;
    m.net = net;
    m
}

/// Bytes of dovecot's answer to one LIST-STATUS over the whole account (what a no-op
/// resync cannot avoid on one side), read with a plain connection.
fn list_status_bytes(dv: &Dovecot) -> Result<u64> {
    use std::io::{BufRead, BufReader, Write};
    let s = std::net::TcpStream::connect(("127.0.0.1", dv.imap_port()))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    let mut until = |r: &mut BufReader<std::net::TcpStream>, tag: &str| -> Result<u64> {
        let mut n = 0;
        loop {
            line.clear();
            let k = r.read_line(&mut line)?;
            if k == 0 {
                bail!("connection closed");
            }
            n += k as u64;
            if line.starts_with(tag) {
                return Ok(n);
            }
        }
    };
    until(&mut r, "* OK")?;
    w.write_all(b"a LOGIN alice secret\r\n")?;
    until(&mut r, "a ")?;
    w.write_all(
        b"b LIST \"\" \"*\" RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))\r\n",
    )?;
    let n = until(&mut r, "b ")?;
    w.write_all(b"c LOGOUT\r\n")?;
    Ok(n)
}
