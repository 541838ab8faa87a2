//! User interfaces and one-shot behaviour of the real binary: machineui emits documented
//! JSON lines, quiet prints nothing on success, `-l` writes the log file, `-u` rejects an
//! unknown interface, and a held account lock makes a second instance exit 2 naming the pid.

use serde_json::Value;
use twinbox::testbed::{sample_messages, DovecotOptions};

use crate::runmodes_support::Setup;

fn seeded(n: usize) -> Setup {
    let s = Setup::new(DovecotOptions::default(), "", "");
    s.dv.seed_mailbox("alice", "INBOX", &sample_messages(11, n), &[])
        .expect("seed INBOX");
    s.dv.seed_mailbox("alice", "Lists/rust", &sample_messages(12, 3), &[])
        .expect("seed Lists/rust");
    s
}

fn has(v: &Value, fields: &[&str]) {
    for f in fields {
        assert!(
            v.get(f).is_some(),
            "event {} lacks field {f}: {v}",
            v["event"]
        );
    }
}

#[test]
fn machineui_emits_one_documented_json_object_per_line() {
    let s = seeded(7);
    let (status, out, err) = s.run(&["-u", "machineui", "-o"]);
    assert!(status.success(), "status {status}; stderr {err}");
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for v in &events {
        assert!(v.is_object(), "{v}");
        has(v, &["event", "time", "account"]);
        match v["event"].as_str().expect("event is a string") {
            "sync_start" => has(v, &["mode", "folders", "reason"]),
            "account_start" => has(v, &["mailboxes"]),
            "mailbox_start" => has(v, &["mailbox"]),
            "mailbox_planned" => has(v, &["mailbox", "messages", "bytes"]),
            "copied" => has(v, &["mailbox", "to", "messages", "bytes"]),
            "mailbox_end" => has(
                v,
                &[
                    "mailbox",
                    "ok",
                    "error",
                    "copied_to_local",
                    "copied_to_remote",
                    "bytes",
                    "flags",
                    "expunged",
                    "created",
                ],
            ),
            "account_end" => has(
                v,
                &[
                    "ok",
                    "mailboxes",
                    "opened",
                    "copied_to_local",
                    "copied_to_remote",
                    "bytes",
                    "flags",
                    "expunged",
                    "created",
                    "seconds",
                    "stopped",
                    "failures",
                ],
            ),
            "notice" | "info" | "error" => has(v, &["message"]),
            "planned" => has(v, &["action"]),
            "moved" | "copied_server_side" => has(v, &["mailbox", "from", "on", "messages"]),
            other => panic!("undocumented event {other}: {v}"),
        }
    }
    let kinds: Vec<&str> = events.iter().filter_map(|v| v["event"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"sync_start"));
    assert_eq!(kinds.last(), Some(&"account_end"));
    let end = events.last().expect("events");
    assert_eq!(end["ok"], true);
    assert_eq!(end["copied_to_local"], 10);
    assert_eq!(end["copied_to_remote"], 0);
    // The per-batch `copied` events add up to the account's totals.
    let copied: u64 = events
        .iter()
        .filter(|v| v["event"] == "copied" && v["to"] == "local")
        .map(|v| v["messages"].as_u64().expect("messages"))
        .sum();
    assert_eq!(copied, 10);
    let bytes: u64 = events
        .iter()
        .filter(|v| v["event"] == "copied")
        .map(|v| v["bytes"].as_u64().expect("bytes"))
        .sum();
    assert_eq!(Some(bytes), end["bytes"].as_u64());
    for m in ["INBOX", "Lists/rust"] {
        assert!(
            events
                .iter()
                .any(|v| v["event"] == "mailbox_end" && v["mailbox"] == m && v["ok"] == true),
            "no successful mailbox_end for {m}"
        );
    }
    assert_eq!(s.assert_converged("INBOX"), 7);
    assert_eq!(s.assert_converged("Lists/rust"), 3);
}

#[test]
fn quiet_prints_nothing_on_success_and_logfile_gets_the_summary() {
    let s = seeded(4);
    let log = s.dir.path().join("twinbox.log");
    let log_arg = log.to_str().expect("utf-8 path");
    let (status, out, err) = s.run(&["-u", "quiet", "-o", "-l", log_arg]);
    assert!(status.success(), "status {status}; stderr {err}");
    assert_eq!(out, "", "quiet wrote to stdout");
    assert_eq!(err, "", "quiet wrote to stderr");
    assert_eq!(s.assert_converged("INBOX"), 4);
    let text = std::fs::read_to_string(&log).expect("log file written");
    assert!(
        text.contains("Test: ") && text.contains("copied 7 to local"),
        "log file lacks the summary:\n{text}"
    );
    assert!(!text.contains("secret"), "the password leaked into the log");
    // With -d imap the protocol is logged, the password still is not.
    let (status, _, err) = s.run(&["-u", "quiet", "-o", "-l", log_arg, "-d", "imap"]);
    assert!(status.success(), "stderr {err}");
    let text = std::fs::read_to_string(&log).expect("log file");
    assert!(
        text.contains("LOGIN") || text.contains("AUTHENTICATE"),
        "no protocol log:\n{text}"
    );
    assert!(
        !text.contains("secret"),
        "the password leaked into the debug log"
    );
}

#[test]
fn basic_prints_the_summary_and_unknown_ui_is_a_usage_error() {
    let s = seeded(2);
    let (status, out, err) = s.run(&["-u", "basic", "-o"]);
    assert!(status.success(), "stderr {err}");
    assert!(
        out.contains("Test: ") && out.contains("copied 5 to local"),
        "no summary: {out}"
    );
    assert!(
        out.contains("INBOX: copied 2 to local"),
        "no mailbox line: {out}"
    );
    // `[general] ui` chooses when `-u` does not (offlineimap's names accepted).
    let (status, out, err) = s.run(&["-k", "ui=MachineUI", "-o"]);
    assert!(status.success(), "stderr {err}");
    for l in out.lines() {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["event"].is_string(), "{l}");
    }
    let (status, _, err) = s.run(&["-u", "fancy", "-o"]);
    assert_eq!(status.code(), Some(2));
    assert!(err.contains("unknown user interface"), "{err}");
}

#[test]
fn a_held_lock_makes_a_second_instance_exit_2_naming_the_holder() {
    let s = seeded(2);
    let meta = s.dir.path().join("meta");
    std::fs::create_dir_all(&meta).expect("metadata dir");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(meta.join("Test.lock"))
        .expect("lock file");
    lock.try_lock().expect("take the lock");
    std::fs::write(meta.join("Test.lock"), "424242\n").expect("write pid");
    let (status, out, err) = s.run(&["-u", "basic", "-o"]);
    assert_eq!(status.code(), Some(2), "stdout {out} stderr {err}");
    assert!(err.contains("pid 424242"), "holder not named: {err}");
    assert!(
        s.dv.list_messages("bob", "INBOX")
            .map(|m| m.is_empty())
            .unwrap_or(true),
        "the second instance synced anyway"
    );
    drop(lock);
    let (status, _, err) = s.run(&["-u", "quiet", "-o"]);
    assert!(status.success(), "after release: {err}");
    assert_eq!(s.assert_converged("INBOX"), 2);
}

#[test]
fn ttyui_is_the_default_on_a_terminal_and_syncs() {
    // `script` (util-linux) gives the process a pseudo-terminal.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` to make a terminal");
        return;
    }
    let s = seeded(30);
    let cmd = format!(
        "{} -c {} -o",
        env!("CARGO_BIN_EXE_twinbox"),
        s.conf.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "status {}: {text}", out.status);
    assert!(
        text.contains("copied 33 to local"),
        "no summary on the terminal: {text}"
    );
    // Progress bars were drawn (cursor movement or the account's bar prefix).
    assert!(text.contains("mailboxes"), "no progress bar: {text}");
    assert_eq!(s.assert_converged("INBOX"), 30);
}

#[test]
fn machineui_reports_a_configuration_error_as_json() {
    let s = seeded(0);
    let (status, out, _) = s.run(&["-u", "machineui", "-o", "-k", "maxsyncaccounts=lots"]);
    assert_eq!(status.code(), Some(2));
    let v: Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    assert_eq!(v["event"], "error");
    assert!(v["account"].is_null());
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("maxsyncaccounts")),
        "{v}"
    );
}
