//! Shared pieces of the `faults_*` tests: a sync bed whose remote side is reached through
//! the fault-injecting [`Proxy`], `twinbox check`, and the post-fault assertion (a clean
//! run converges on the uninterrupted result, nothing lost or duplicated, state
//! consistent).

use crate::support::proxy::Proxy;
use crate::support::sync::{wait_with_timeout, ImapSide, RunOutcome, Snapshot, SyncBed};

/// Seconds of `socktimeout` in the faults beds: short, so stalls end quickly.
pub const SOCKTIMEOUT: u64 = 3;

/// `n` from the environment variable `var`, else `default`.
pub fn env_count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A sync bed (alice remote, bob local on one dovecot) whose remote repository goes
/// through a proxy, with a short `socktimeout`.
pub fn proxied_bed() -> (SyncBed<ImapSide>, Proxy) {
    let bed = SyncBed::imap();
    let proxy = Proxy::start(bed.remote.dovecot.imap_port());
    point_remote_at(&bed, proxy.port());
    (bed, proxy)
}

/// Rewrites the bed's configuration so the remote repository (written first) uses
/// `port`, and sets `socktimeout`.
pub fn point_remote_at(bed: &SyncBed<ImapSide>, port: u16) {
    let path = bed.config_path();
    let text = std::fs::read_to_string(&path).expect("read config");
    let from = format!("remoteport = {}", bed.remote.dovecot.imap_port());
    let pos = text
        .find("[Repository Remote]")
        .expect("remote repository section");
    let at = pos + text[pos..].find(&from).expect("remoteport line");
    let mut out = String::new();
    out.push_str(&text[..at]);
    out.push_str(&format!("remoteport = {port}"));
    out.push_str(&text[at + from.len()..]);
    let out = out.replacen(
        "[general]\n",
        &format!("[general]\nsocktimeout = {SOCKTIMEOUT}\n"),
        1,
    );
    std::fs::write(&path, out).expect("write config");
}

/// Runs `twinbox check` on the bed.
pub fn check(bed: &SyncBed<ImapSide>) -> RunOutcome {
    bed.run_with(&["check"], &[])
}

/// The assertion after a fault: the faulty run ended by itself (an exit code, no panic);
/// a clean run succeeds; the sides converge on `want`; `twinbox check` finds the state
/// consistent.
pub fn assert_recovers(bed: &SyncBed<ImapSide>, faulty: &RunOutcome, want: &Snapshot, what: &str) {
    assert!(
        faulty.code.is_some(),
        "{what}: the faulty run died by a signal:\n{faulty}"
    );
    assert!(
        !faulty.stderr.contains("panicked"),
        "{what}: the faulty run panicked:\n{faulty}"
    );
    let again = bed.run_with(&["-1"], &[]);
    assert!(
        again.ok(),
        "{what}: the clean run after the fault failed:\n{again}\nfaulty run:\n{faulty}"
    );
    let got = bed.assert_converged();
    assert_eq!(
        &got, want,
        "{what}: the result differs from the uninterrupted sync\n{faulty}\n{again}"
    );
    let c = check(bed);
    assert_eq!(c.code, Some(0), "{what}: twinbox check:\n{c}");
}

/// Waits (up to a minute) until every IMAP session dovecot logged in has ended: after a
/// kill, the server may still be finishing a command the dead client sent in full (a
/// MULTIAPPEND), and a checkpoint restored under it would be changed behind the test's
/// back.
pub fn wait_sessions_ended(dv: &twinbox::testbed::Dovecot) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let log = dv.log_contents();
        let logins = log.matches("Login: user=").count();
        let ended = log
            .lines()
            .filter(|l| {
                l.contains("imap(")
                    && (l.contains("Disconnected")
                        || l.contains("Logged out")
                        || l.contains("Connection closed"))
            })
            .count();
        if ended >= logins || std::time::Instant::now() > deadline {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runs `bin -c config args...` under `/usr/bin/time` (at most `limit`); returns the
/// outcome and the peak RSS in KiB.
pub fn run_measured(
    bin: &str,
    config: &std::path::Path,
    args: &[&str],
    limit: std::time::Duration,
) -> (RunOutcome, u64) {
    let mut c = std::process::Command::new("/usr/bin/time");
    c.args(["-f", "TWINBOX-MAXRSS-KB %M", bin, "-c"])
        .arg(config)
        .args(args)
        .env_remove("TWINBOX_FAULT_AFTER")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = c.spawn().expect("spawn /usr/bin/time twinbox");
    let out = wait_with_timeout(child, limit).expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let rss = stderr
        .lines()
        .find_map(|l| l.strip_prefix("TWINBOX-MAXRSS-KB "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS from /usr/bin/time:\n{stderr}"));
    let summary = stdout
        .lines()
        .rev()
        .find_map(crate::support::sync::Summary::parse);
    (
        RunOutcome {
            code: out.status.code(),
            stdout,
            stderr,
            summary,
        },
        rss,
    )
}
