//! The daemon on a real process: each signal, push by NOTIFY and by IDLE, and the lock
//! held for the daemon's lifetime. Waits are generous polls, never timing assertions.

use twinbox::testbed::{capabilities_without, sample_messages, DovecotOptions};

use crate::runmodes_support::Setup;

/// autorefresh of an hour: within a test only signals and push trigger a sync.
const DAEMON: &str = "autorefresh = 60";

fn setup(opts: DovecotOptions, remote: &str, n: usize) -> Setup {
    let s = Setup::new(opts, DAEMON, remote);
    s.dv.seed_mailbox("alice", "INBOX", &sample_messages(21, n), &[])
        .expect("seed");
    s
}

fn new_message(s: &Setup, seed: u64) {
    let m = sample_messages(seed, 1).concat();
    s.dv.append("alice", "INBOX", &m, &["\\Flagged"])
        .expect("doveadm save");
}

#[test]
fn usr1_syncs_now_usr2_leaves_after_the_sync_and_the_lock_is_held_meanwhile() {
    let s = setup(DovecotOptions::default(), "", 3);
    let mut d = s.daemon(&[]);
    let first = d.wait_sync(1);
    assert_eq!(first["copied_to_local"], 3);
    let pid = d.child.id();

    // A second instance while the daemon runs: exit 2, naming the daemon's pid.
    let (status, _, err) = s.run(&["-u", "quiet", "-o"]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("pid {pid}")),
        "holder not named: {err}"
    );

    // SIGUSR1: a sync now, which fetches the new message.
    new_message(&s, 901);
    d.signal(libc::SIGUSR1);
    let start = d.wait_event("sync_start after SIGUSR1", |v| {
        v["event"] == "sync_start" && v["reason"] == "signal"
    });
    assert_eq!(start["mode"], "full");
    let second = d.wait_sync(2);
    assert_eq!(second["copied_to_local"], 1, "{second}");
    assert_eq!(s.assert_converged("INBOX"), 4);

    // SIGUSR2 while waiting: leave daemon mode without another sync.
    d.signal(libc::SIGUSR2);
    let status = d.wait_exit();
    assert!(status.success(), "exit status {status}");
    assert_eq!(d.count("account_end"), 2, "synced again after SIGUSR2");
    // The lock went with it.
    let (status, _, err) = s.run(&["-u", "quiet", "-o"]);
    assert!(status.success(), "{err}");
}

#[test]
fn term_mid_sync_finishes_cleanly_and_the_next_run_converges_without_duplicates() {
    let s = setup(DovecotOptions::default(), "", 0);
    // Several APPEND batches (200 messages each) in one mailbox, then more mailboxes.
    s.dv.seed_mailbox("alice", "A", &sample_messages(30, 600), &[])
        .expect("seed");
    for (i, f) in ["B", "C"].iter().enumerate() {
        s.dv.seed_mailbox("alice", f, &sample_messages(31 + i as u64, 20), &[])
            .expect("seed");
    }
    let mut d = s.daemon(&["-1"]);
    d.wait_event("a first batch copied", |v| {
        v["event"] == "copied" && v["mailbox"] == "A"
    });
    d.signal(libc::SIGTERM);
    let status = d.wait_exit();
    assert!(status.success(), "exit status {status}");
    let ends: Vec<&serde_json::Value> = d
        .events
        .iter()
        .filter(|v| v["event"] == "account_end")
        .collect();
    assert_eq!(ends.len(), 1, "one sync, ended by the signal");
    assert_eq!(ends[0]["stopped"], true, "{}", ends[0]);
    let copied = ends[0]["copied_to_local"].as_u64().expect("count");
    assert!((200..640).contains(&copied), "copied {copied}");
    // What was copied is on the local side exactly once.
    let local = s.contents("bob", "A");
    let mut hashes: Vec<&String> = local.iter().map(|(h, _)| h).collect();
    hashes.dedup();
    assert_eq!(hashes.len(), local.len(), "duplicates after the stop");
    // The next run completes it, copying nothing twice.
    let (status, out, err) = s.run(&["-u", "machineui", "-o"]);
    assert!(status.success(), "{err}");
    let last: serde_json::Value =
        serde_json::from_str(out.lines().last().expect("output")).expect("JSON");
    assert_eq!(
        last["copied_to_local"].as_u64(),
        Some(640 - copied),
        "{last}"
    );
    assert_eq!(s.assert_converged("A"), 600);
    assert_eq!(s.assert_converged("B"), 20);
    assert_eq!(s.assert_converged("C"), 20);
}

#[test]
fn hup_while_waiting_exits_and_second_sigint_exits_at_once() {
    let s = setup(DovecotOptions::default(), "", 2);
    let mut d = s.daemon(&[]);
    d.wait_sync(1);
    d.signal(libc::SIGHUP);
    let status = d.wait_exit();
    assert!(status.success(), "exit status {status}");
    assert_eq!(s.assert_converged("INBOX"), 2);

    // SIGINT twice during a sync: out at once (130); the state stays usable.
    for i in 0..4 {
        s.dv.seed_mailbox(
            "alice",
            &format!("Big{i}"),
            &sample_messages(40 + i, 60),
            &[],
        )
        .expect("seed");
    }
    let mut d = s.daemon(&["-1"]);
    d.wait_event("a mailbox under way", |v| v["event"] == "mailbox_start");
    d.signal(libc::SIGINT);
    d.wait_event("the first SIGINT noticed", |v| {
        v["event"] == "info"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("SIGINT"))
    });
    d.signal(libc::SIGINT);
    let status = d.wait_exit();
    // 130 when the second SIGINT came before the graceful stop was through (the usual
    // case); 0 when the stop won the race. Either way the state must stay usable.
    eprintln!("double SIGINT: {status}");
    assert!(
        status.code() == Some(130) || status.success(),
        "exit status {status}"
    );
    let (status, _, err) = s.run(&["-u", "quiet", "-o"]);
    assert!(status.success(), "{err}");
    for i in 0..4 {
        assert_eq!(s.assert_converged(&format!("Big{i}")), 60);
    }
}

fn push_picks_up(opts: DovecotOptions, method: &str) {
    let s = setup(opts, "idlefolders = INBOX", 2);
    let mut d = s.daemon(&[]);
    d.wait_sync(1);
    d.wait_event("push set up", |v| {
        v["event"] == "info" && v["message"].as_str().is_some_and(|m| m.contains(method))
    });
    // The watcher may see our own first sync's changes: let that settle first.
    std::thread::sleep(std::time::Duration::from_secs(1));
    let t0 = std::time::Instant::now();
    new_message(&s, 777);
    assert!(
        s.wait_for_local_count("INBOX", 3),
        "the new message did not arrive by push; events: {:#?}",
        d.events
    );
    // A figure for the record, not an assertion.
    eprintln!(
        "push by {method}: on the local side {:.2} s after doveadm save returned (polled every 0.2 s)",
        t0.elapsed().as_secs_f64()
    );
    let start = d.wait_event("push sync", |v| {
        v["event"] == "sync_start" && v["reason"] == "push"
    });
    assert_eq!(start["folders"], serde_json::json!(["INBOX"]));
    d.wait_event("push sync end", |v| {
        v["event"] == "account_end" && v["copied_to_local"] == 1
    });
    assert_eq!(s.assert_converged("INBOX"), 3);
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit().success());
    // Every connection, the push ones included, logged out rather than dropped.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let log = s.dv.log_contents();
    assert!(
        !log.lines().any(|l| l.contains("imap(")
            && l.contains("Disconnected")
            && !l.contains("Logged out")),
        "a connection was dropped without LOGOUT:\n{log}"
    );
}

#[test]
fn notify_push_syncs_a_new_message() {
    push_picks_up(DovecotOptions::default(), "NOTIFY");
}

#[test]
fn idle_push_syncs_a_new_message_when_notify_is_missing() {
    push_picks_up(
        DovecotOptions::default().capabilities(capabilities_without(&["NOTIFY"])),
        "IDLE on INBOX",
    );
}

#[test]
fn push_reconnects_after_a_network_loss_and_catches_up() {
    let s = setup(DovecotOptions::default(), "idlefolders = INBOX", 2);
    let relay = crate::runmodes_support::Relay::start(s.dv.imap_port());
    s.remote_port(relay.port);
    let mut d = s.daemon(&[]);
    d.wait_sync(1);
    d.wait_event("push set up", |v| {
        v["event"] == "info" && v["message"].as_str().is_some_and(|m| m.contains("NOTIFY"))
    });
    // The network goes; a message arrives meanwhile; the network comes back.
    relay.cut();
    new_message(&s, 555);
    d.wait_event("the loss noticed", |v| {
        v["event"] == "info"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("push connection lost"))
    });
    // After reconnecting, twinbox looks at every mailbox (it may have missed changes).
    assert!(
        s.wait_for_local_count("INBOX", 3),
        "the message sent during the loss never arrived; events: {:#?}",
        d.events
    );
    assert_eq!(s.assert_converged("INBOX"), 3);
    // Push works again on the new connection.
    std::thread::sleep(std::time::Duration::from_secs(1));
    new_message(&s, 556);
    assert!(
        s.wait_for_local_count("INBOX", 4),
        "push did not resume; events: {:#?}",
        d.events
    );
    assert_eq!(s.assert_converged("INBOX"), 4);
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit().success());
}

#[test]
fn a_sync_that_cannot_connect_is_retried_with_backoff() {
    let s = setup(DovecotOptions::default(), "", 3);
    let relay = crate::runmodes_support::Relay::start(s.dv.imap_port());
    s.remote_port(relay.port);
    relay.set_down(true);
    let mut d = s.daemon(&[]);
    d.wait_event("the connection error", |v| {
        v["event"] == "error" && v["account"] == "Test"
    });
    d.wait_event("a retry announced", |v| {
        v["event"] == "info"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("retrying in"))
    });
    relay.set_down(false);
    let start = d.wait_event("the retry", |v| {
        v["event"] == "sync_start" && v["reason"] == "retry"
    });
    assert_eq!(start["mode"], "full");
    let end = d.wait_sync(1);
    assert_eq!(end["copied_to_local"], 3, "{end}");
    assert_eq!(s.assert_converged("INBOX"), 3);
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit().success());
}

#[test]
fn usr2_during_a_sync_lets_it_finish_then_exits() {
    let s = setup(DovecotOptions::default(), "", 0);
    for (i, f) in ["A", "B", "C", "D"].iter().enumerate() {
        s.dv.seed_mailbox("alice", f, &sample_messages(60 + i as u64, 30), &[])
            .expect("seed");
    }
    let mut d = s.daemon(&["-1"]);
    d.wait_event("a mailbox under way", |v| v["event"] == "mailbox_start");
    d.signal(libc::SIGUSR2);
    let status = d.wait_exit();
    assert!(status.success(), "exit status {status}");
    let ends: Vec<&serde_json::Value> = d
        .events
        .iter()
        .filter(|v| v["event"] == "account_end")
        .collect();
    assert_eq!(ends.len(), 1, "exactly the current sync");
    assert_eq!(
        ends[0]["stopped"], false,
        "USR2 must not cut the sync short"
    );
    assert_eq!(ends[0]["copied_to_local"], 120);
    for f in ["A", "B", "C", "D"] {
        assert_eq!(s.assert_converged(f), 30);
    }
}

#[test]
fn without_notify_or_idle_the_daemon_says_so_and_still_syncs_on_usr1() {
    let s = setup(
        DovecotOptions::default().capabilities(capabilities_without(&["NOTIFY", "IDLE"])),
        "idlefolders = INBOX",
        1,
    );
    let mut d = s.daemon(&[]);
    d.wait_sync(1);
    d.wait_event("no push available", |v| {
        v["event"] == "info"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("neither NOTIFY nor IDLE"))
    });
    new_message(&s, 808);
    d.signal(libc::SIGUSR1);
    let end = d.wait_sync(2);
    assert_eq!(end["copied_to_local"], 1, "{end}");
    assert_eq!(s.assert_converged("INBOX"), 2);
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit().success());
}

#[test]
fn autorefresh_repeats_with_quick_syncs_between_full_ones() {
    // 0.02 minutes: a refresh every 1.2 s; `quick = 2`: two quick syncs between full ones.
    let s = Setup::new(
        DovecotOptions::default(),
        "autorefresh = 0.02\nquick = 2",
        "",
    );
    s.dv.seed_mailbox("alice", "INBOX", &sample_messages(70, 2), &[])
        .expect("seed");
    let mut d = s.daemon(&[]);
    let mut starts = Vec::new();
    while starts.len() < 4 {
        let v = d.wait_event("sync_start", |v| v["event"] == "sync_start");
        starts.push((
            v["reason"].as_str().unwrap_or("").to_string(),
            v["mode"].as_str().unwrap_or("").to_string(),
        ));
    }
    let expected: Vec<(String, String)> = [
        ("start", "full"),
        ("refresh", "quick"),
        ("refresh", "quick"),
        ("refresh", "full"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(starts, expected);
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit().success());
    assert_eq!(s.assert_converged("INBOX"), 2);
}

#[test]
fn notify_push_syncs_a_new_mailbox() {
    let s = setup(DovecotOptions::default(), "idlefolders = INBOX", 1);
    let mut d = s.daemon(&[]);
    d.wait_sync(1);
    d.wait_event("push set up", |v| {
        v["event"] == "info" && v["message"].as_str().is_some_and(|m| m.contains("NOTIFY"))
    });
    std::thread::sleep(std::time::Duration::from_secs(1));
    s.dv.create_mailbox("alice", "Projects")
        .expect("create mailbox");
    s.dv.append("alice", "Projects", &sample_messages(71, 1).concat(), &[])
        .expect("append");
    assert!(
        s.wait_for_local_count("Projects", 1),
        "the new mailbox did not arrive by push; events: {:#?}",
        d.events
    );
    assert_eq!(s.assert_converged("Projects"), 1);
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit().success());
}

#[test]
fn holdconnectionopen_reuses_one_connection_and_keeps_it_alive() {
    let s = setup(
        DovecotOptions::default(),
        "holdconnectionopen = yes\nkeepalive = 1",
        2,
    );
    let mut d = s.daemon(&[]);
    d.wait_sync(1);
    new_message(&s, 902);
    d.signal(libc::SIGUSR1);
    let second = d.wait_sync(2);
    assert_eq!(second["copied_to_local"], 1, "{second}");
    // keepalive = 1 s: NOOPs on the held connection between syncs.
    let end = std::time::Instant::now() + crate::runmodes_support::PATIENCE;
    loop {
        let cmds = s.dv.commands_seen("alice").unwrap_or_default();
        if cmds.iter().any(|c| c.contains("NOOP")) {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "no keepalive NOOP: {cmds:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit().success());
    assert_eq!(s.assert_converged("INBOX"), 3);
    // One remote session for both syncs, logged out at exit.
    s.dv.wait_for_log("Logged out", crate::runmodes_support::PATIENCE)
        .expect("logout logged");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let alice: Vec<_> =
        s.dv.session_byte_counts()
            .into_iter()
            .filter(|b| b.user == "alice")
            .collect();
    assert_eq!(
        alice.len(),
        1,
        "sessions: {alice:?}\n{}",
        s.dv.log_contents()
    );
    let log = s.dv.log_contents();
    assert!(
        !log.lines().any(|l| l.contains("imap(")
            && l.contains("Disconnected")
            && !l.contains("Logged out")),
        "a connection was dropped without LOGOUT:\n{log}"
    );
}

#[test]
fn a_resume_from_suspend_syncs_and_restarts_push() {
    let s = setup(
        DovecotOptions::default(),
        "idlefolders = INBOX\nholdconnectionopen = yes",
        1,
    );
    let shift = s.dir.path().join("clock-shift");
    std::fs::write(&shift, "0").expect("write shift");
    let mut d = s.daemon_env(&[], &[("TWINBOX_WALL_CLOCK_SHIFT_FILE", &shift)]);
    d.wait_sync(1);
    d.wait_event("push set up", |v| {
        v["event"] == "info" && v["message"].as_str().is_some_and(|m| m.contains("NOTIFY"))
    });
    // The machine "sleeps" an hour: the wall clock jumps, the monotonic one does not.
    std::fs::write(&shift, "3600").expect("write shift");
    let start = d.wait_event("a sync on resume", |v| {
        v["event"] == "sync_start" && v["reason"] == "resume"
    });
    assert!(
        start["folders"].is_null(),
        "a resume looks at every mailbox"
    );
    new_message(&s, 903);
    assert!(
        s.wait_for_local_count("INBOX", 2),
        "events: {:#?}",
        d.events
    );
    // Push was set up afresh and still works.
    let notify_setups = || {
        d.events
            .iter()
            .filter(|v| {
                v["event"] == "info" && v["message"].as_str().is_some_and(|m| m.contains("NOTIFY"))
            })
            .count()
    };
    if notify_setups() < 2 {
        d.wait_event("push set up again", |v| {
            v["event"] == "info" && v["message"].as_str().is_some_and(|m| m.contains("NOTIFY"))
        });
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    new_message(&s, 904);
    assert!(
        s.wait_for_local_count("INBOX", 3),
        "events: {:#?}",
        d.events
    );
    assert_eq!(s.assert_converged("INBOX"), 3);
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit().success());
}

#[test]
fn term_while_a_silent_server_keeps_the_sync_connecting_exits_at_once() {
    let s = setup(DovecotOptions::default(), "", 2);
    let relay = crate::runmodes_support::Relay::start(s.dv.imap_port());
    s.remote_port(relay.port);
    relay.set_blackhole(true);
    let mut d = s.daemon(&[]);
    d.wait_event("the sync under way", |v| v["event"] == "sync_start");
    // The greeting never comes (the socket timeout is 120 s); TERM must not wait for it.
    std::thread::sleep(std::time::Duration::from_millis(500));
    d.signal(libc::SIGTERM);
    let status = d.wait_exit();
    assert!(status.success(), "exit status {status}");
    assert!(
        d.events
            .iter()
            .any(|v| v["event"] == "info" && v["message"] == "stopped while connecting"),
        "events: {:#?}",
        d.events
    );
    assert_eq!(d.count("account_end"), 0);
    // Nothing was written: a normal run afterwards syncs everything once.
    relay.set_blackhole(false);
    let (status, _, err) = s.run(&["-u", "quiet", "-o"]);
    assert!(status.success(), "{err}");
    assert_eq!(s.assert_converged("INBOX"), 2);
}

#[test]
fn a_push_connection_that_goes_silent_is_noticed_and_replaced() {
    // keepalive = 2: IDLE is renewed every 2 s; socktimeout = 3 (-k): DONE must be
    // answered within 3 s, so a dead link is noticed in seconds, not after 30 minutes.
    let s = setup(
        DovecotOptions::default(),
        "idlefolders = INBOX\nkeepalive = 2",
        1,
    );
    let relay = crate::runmodes_support::Relay::start(s.dv.imap_port());
    s.remote_port(relay.port);
    let mut d = s.daemon(&["-k", "socktimeout=3"]);
    d.wait_sync(1);
    d.wait_event("push set up", |v| {
        v["event"] == "info" && v["message"].as_str().is_some_and(|m| m.contains("NOTIFY"))
    });
    relay.silence_existing();
    d.wait_event("the dead link noticed", |v| {
        v["event"] == "info"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("push connection lost"))
    });
    d.wait_event("push set up again", |v| {
        v["event"] == "info" && v["message"].as_str().is_some_and(|m| m.contains("NOTIFY"))
    });
    std::thread::sleep(std::time::Duration::from_secs(1));
    new_message(&s, 905);
    assert!(
        s.wait_for_local_count("INBOX", 2),
        "events: {:#?}",
        d.events
    );
    assert_eq!(s.assert_converged("INBOX"), 2);
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit().success());
}

#[test]
fn a_stream_of_pushes_does_not_postpone_the_refresh() {
    // autorefresh 0.05 min (3 s); a new message every 0.5 s keeps push syncs coming.
    let s = Setup::new(
        DovecotOptions::default(),
        "autorefresh = 0.05",
        "idlefolders = INBOX",
    );
    s.dv.seed_mailbox("alice", "INBOX", &sample_messages(80, 1), &[])
        .expect("seed");
    let mut d = s.daemon(&[]);
    d.wait_sync(1);
    d.wait_event("push set up", |v| {
        v["event"] == "info" && v["message"].as_str().is_some_and(|m| m.contains("NOTIFY"))
    });
    /// Stops the feeder however the test ends (a panic included), so the scope can end.
    struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        scope.spawn(|| {
            let mut seed = 1000;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let _ =
                    s.dv.append("alice", "INBOX", &sample_messages(seed, 1).concat(), &[]);
                seed += 1;
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
        });
        let pushed = d.wait_event("a push sync", |v| {
            v["event"] == "sync_start" && v["reason"] == "push"
        });
        assert_eq!(pushed["folders"], serde_json::json!(["INBOX"]));
        d.wait_event("a refresh between the pushes", |v| {
            v["event"] == "sync_start" && v["reason"] == "refresh"
        });
    });
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit().success());
    let (status, _, err) = s.run(&["-u", "quiet", "-o"]);
    assert!(status.success(), "{err}");
    s.assert_converged("INBOX");
}

#[test]
fn two_accounts_wake_on_usr1_and_maxsyncaccounts_1_serialises_them() {
    let s = setup(
        DovecotOptions::default()
            .user("carol", "secret")
            .user("dave", "secret"),
        "",
        1,
    );
    s.dv.seed_mailbox("carol", "INBOX", &sample_messages(90, 2), &[])
        .expect("seed carol");
    let mut text = std::fs::read_to_string(&s.conf).expect("config");
    text.push_str(&format!(
        "\n[Account Second]\nlocalrepository = Local2\nremoterepository = Remote2\nautorefresh = 60\n\n\
         [Repository Remote2]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {p}\nssl = no\nstarttls = no\nremoteuser = carol\nremotepass = secret\n\n\
         [Repository Local2]\ntype = IMAP\nremotehost = 127.0.0.1\nremoteport = {p}\nssl = no\nstarttls = no\nremoteuser = dave\nremotepass = secret\n",
        p = s.dv.imap_port()
    ));
    std::fs::write(&s.conf, text).expect("config");
    let mut d = s.daemon(&["-k", "accounts=Test,Second", "-k", "maxsyncaccounts=1"]);
    d.wait_sync(2);
    new_message(&s, 906);
    s.dv.append("carol", "INBOX", &sample_messages(907, 1).concat(), &[])
        .expect("append");
    d.signal(libc::SIGUSR1);
    d.wait_sync(4);
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit().success());
    let ends: Vec<&serde_json::Value> = d
        .events
        .iter()
        .filter(|v| v["event"] == "account_end")
        .collect();
    for acct in ["Test", "Second"] {
        let mine: Vec<u64> = ends
            .iter()
            .filter(|v| v["account"] == acct)
            .filter_map(|v| v["copied_to_local"].as_u64())
            .collect();
        assert_eq!(mine.len(), 2, "{acct}: two syncs");
        assert_eq!(mine[1], 1, "{acct}: the second sync copies the new message");
    }
    // maxsyncaccounts = 1: one account's sync ends before the other's begins.
    let mut open: Option<String> = None;
    for v in &d.events {
        match v["event"].as_str() {
            Some("account_start") => {
                assert!(open.is_none(), "overlapping syncs: {:#?}", d.events);
                open = v["account"].as_str().map(String::from);
            }
            Some("account_end") => open = None,
            _ => {}
        }
    }
    assert_eq!(s.assert_converged("INBOX"), 2);
    let (a, b) = (s.contents("carol", "INBOX"), s.contents("dave", "INBOX"));
    assert_eq!(a, b);
    assert_eq!(a.len(), 3);
}
