//! Daemon mode over a connection that dies silently (a laptop's suspend, a NAT that forgot
//! the flow): the fault proxy black-holes the held remote connection (no answer, no FIN).
//! With `holdconnectionopen`, `keepalive` and a short `socktimeout`, the daemon must
//! notice, drop the dead connection, reconnect and sync a message added afterwards. The
//! only time bound is a generous hang guard, never a timing assertion.

use std::time::{Duration, Instant};

use twinbox::testbed::{sample_messages, DovecotOptions};

use crate::runmodes_support::Setup;
use crate::support::proxy::{Dir, Mode, Proxy};

/// How long the test waits for the message before calling it a hang.
const HANG_GUARD: Duration = Duration::from_secs(90);

fn black_holed_held_connection(stall: Dir) {
    let s = Setup::new(
        DovecotOptions::default(),
        "autorefresh = 0.05",
        "holdconnectionopen = yes\nkeepalive = 1",
    );
    s.dv.seed_mailbox("alice", "INBOX", &sample_messages(61, 2), &[])
        .expect("seed");
    let proxy = Proxy::start(s.dv.imap_port());
    s.remote_port(proxy.port());
    let mut d = s.daemon(&["-k", "socktimeout=3"]);
    d.wait_sync(1);
    let before = proxy.connections();
    // From the next byte on, the held connection is a black hole in `stall`'s direction;
    // connections made after it pass.
    proxy.set(Mode::Stall { dir: stall, at: 0 });
    let m = sample_messages(62, 1).concat();
    s.dv.append("alice", "INBOX", &m, &["\\Seen"])
        .expect("doveadm save");
    let start = Instant::now();
    while start.elapsed() < HANG_GUARD {
        if s.dv
            .list_messages("bob", "INBOX")
            .is_ok_and(|v| v.len() == 3)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let took = start.elapsed();
    assert!(
        proxy.tripped(),
        "the connection was never black-holed; events: {:#?}",
        d.events
    );
    assert_eq!(
        s.assert_converged("INBOX"),
        3,
        "the message added after the black hole never arrived within {HANG_GUARD:?}"
    );
    assert!(
        proxy.connections() > before,
        "no new connection after the black hole"
    );
    eprintln!(
        "black hole ({stall:?}) noticed, reconnected and synced in {:.1} s ({} connections)",
        took.as_secs_f64(),
        proxy.connections()
    );
    d.signal(libc::SIGTERM);
    let status = d.wait_exit();
    assert!(status.code().is_some(), "the daemon died by a signal");
}

#[test]
fn daemon_held_connection_that_stops_answering_is_replaced() {
    black_holed_held_connection(Dir::ToClient);
}

#[test]
fn daemon_held_connection_that_stops_reading_is_replaced() {
    black_holed_held_connection(Dir::ToServer);
}
