//! The push watcher against a scripted server, for what dovecot will not do: a server that
//! advertises NOTIFY and then refuses it. The watcher must fall back to IDLE, report the
//! change IDLE announces, and end with DONE and LOGOUT when stopped.

use std::time::Duration;

use twinbox::daemon::watch::{WatchEvent, WatchSpec, Watcher};
use twinbox::imap::{ConnectOptions, Password, Security};

use crate::fake::{FakeServer, Step};

fn login(caps: &str) -> Vec<Step> {
    vec![
        Step::line(&format!(
            "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR {caps}] fake"
        )),
        Step::expect_cmd("AUTHENTICATE"),
        Step::tagged(&format!("OK [CAPABILITY IMAP4rev1 {caps}] logged in")),
    ]
}

fn logout() -> Vec<Step> {
    vec![
        Step::expect_cmd("LOGOUT"),
        Step::line("* BYE bye"),
        Step::tagged("OK logged out"),
        Step::ExpectClosed,
    ]
}

#[test]
fn a_refused_notify_falls_back_to_idle_which_reports_and_stops_cleanly() {
    let caps = "IDLE NOTIFY";
    let notify_session = [
        login(caps),
        vec![
            Step::expect_cmd("LIST"),
            Step::line("* LIST () \"/\" INBOX"),
            Step::tagged("OK listed"),
            Step::expect_cmd("NOTIFY"),
            Step::tagged("NO [BADEVENT] not that"),
            Step::expect_cmd("NOTIFY"),
            Step::tagged("NO not today"),
        ],
        logout(),
    ]
    .concat();
    let probe_session = [login(caps), logout()].concat();
    let idle_session = [
        login(caps),
        vec![
            Step::expect_cmd("LIST"),
            Step::line("* LIST () \"/\" INBOX"),
            Step::tagged("OK listed"),
            Step::expect_cmd("EXAMINE"),
            Step::line("* 1 EXISTS"),
            Step::line("* OK [UIDVALIDITY 7] ok"),
            Step::line("* OK [UIDNEXT 2] ok"),
            Step::tagged("OK [READ-ONLY] examined"),
            Step::expect_cmd("IDLE"),
            Step::line("+ idling"),
            Step::line("* 2 EXISTS"),
            Step::expect_prefix("DONE"),
            Step::tagged("OK idle done"),
        ],
        logout(),
    ]
    .concat();
    let (port, server) =
        FakeServer::start_sessions(vec![notify_session, probe_session, idle_session]);
    let mut connect = ConnectOptions::tcp("127.0.0.1", port, Security::Plain);
    connect.user = Some("alice".into());
    connect.password = Some(Password::new("secret"));
    let spec = WatchSpec {
        account: "Test".into(),
        connect,
        folders: vec!["INBOX".into()],
        renew: Duration::from_secs(600),
        use_notify: true,
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let events = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let w = Watcher::start(spec, tx);
        let mut seen = Vec::new();
        let got = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(e) = rx.recv().await {
                let done = e == WatchEvent::Changed(Some("INBOX".into()));
                seen.push(e);
                if done {
                    break;
                }
            }
        })
        .await;
        w.stop().await;
        assert!(got.is_ok(), "no change reported; events: {seen:?}");
        seen
    });
    let report = server.wait(Duration::from_secs(10));
    report.assert_ok();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, WatchEvent::Info(m) if m.contains("refused NOTIFY"))),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, WatchEvent::Info(m) if m.contains("IDLE on INBOX"))),
        "{events:?}"
    );
    assert!(report.saw_command("IDLE"));
}
