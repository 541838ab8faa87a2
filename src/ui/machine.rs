//! `machineui`: one JSON object per line on stdout, for programs.
//!
//! Every object has `"event"` (its kind, below) and `"time"` (seconds since the Unix
//! epoch, a float). Field names are stable: new fields may be added, none renamed or
//! removed. Counts are integers; `account` is `null` for events about the whole run.
//!
//! | event | fields |
//! |---|---|
//! | `sync_start` | `account`, `mode` (`"full"`/`"quick"`), `folders` (array or `null` for all), `reason` (`start`, `refresh`, `signal`, `push`, `retry`, `resume`) |
//! | `account_start` | `account`, `mailboxes` (how many will be opened) |
//! | `mailbox_start` | `account`, `mailbox` |
//! | `mailbox_planned` | `account`, `mailbox`, `messages`, `bytes` (to copy, both ways) |
//! | `copied` | `account`, `mailbox`, `to` (`"local"`/`"remote"`), `messages`, `bytes` (one batch) |
//! | `moved`, `copied_server_side` | `account`, `mailbox` (the target), `from` (the source mailbox), `on` (`"local"`/`"remote"`: the side the server-side command ran on), `messages` (moves or copies made on one side replayed on the other without transfer; not counted in `copied`) |
//! | `mailbox_end` | `account`, `mailbox`, `ok`, `error` (string or `null`), `copied_to_local`, `copied_to_remote`, `bytes`, `flags`, `expunged`, `created`, `moved`, `copied_server_side` |
//! | `notice` | `account`, `message` |
//! | `planned` | `account`, `action` (`--dry-run`: one action that would be taken; a move or copy replayed server-side is one action, `kind` `"move"`/`"copy"`; others have `kind` `null`) |
//! | `account_end` | `account`, `ok`, `mailboxes`, `opened`, `copied_to_local`, `copied_to_remote`, `bytes`, `flags`, `expunged`, `created`, `moved`, `copied_server_side` (server-side moves and copies, both sides), `seconds`, `stopped`, `failures` (array of `{mailbox, error}`) |
//! | `info` | `account`, `message` (daemon state: waiting, push, signals, reconnects) |
//! | `error` | `account`, `message` (a configuration error too, when `-u machineui` is given) |

use std::io::Write;
use std::sync::Mutex;

use serde_json::{json, Value};

use super::{SyncStart, Ui};
use crate::sync::{AccountReport, Counts, SyncEvent, SyncObserver};

/// The JSON-lines interface.
#[derive(Debug, Default)]
pub struct MachineUi {
    out: Mutex<()>,
}

impl MachineUi {
    /// A new interface writing to stdout.
    pub fn new() -> Self {
        Self::default()
    }

    fn emit(&self, event: &str, mut v: Value) {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        if let Value::Object(m) = &mut v {
            m.insert("event".into(), Value::from(event));
            m.insert("time".into(), Value::from(time));
        }
        let _g = self.out.lock();
        let mut out = std::io::stdout().lock();
        // A closed stdout (the reader went away) must not stop the sync.
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    }
}

fn counts(c: &Counts, v: &mut Value) {
    if let Value::Object(m) = v {
        m.insert("copied_to_local".into(), c.copied[0].into());
        m.insert("copied_to_remote".into(), c.copied[1].into());
        m.insert("bytes".into(), (c.bytes[0] + c.bytes[1]).into());
        m.insert("flags".into(), (c.flags[0] + c.flags[1]).into());
        m.insert("expunged".into(), (c.expunged[0] + c.expunged[1]).into());
        m.insert("created".into(), (c.created[0] + c.created[1]).into());
        m.insert("moved".into(), (c.moved[0] + c.moved[1]).into());
        m.insert(
            "copied_server_side".into(),
            (c.server_copied[0] + c.server_copied[1]).into(),
        );
    }
}

/// `"move"`/`"copy"` for a planned server-side move or copy (see `sync::moves`), else null.
fn planned_kind(action: &str) -> Value {
    match crate::sync::planned_transfer_kind(action) {
        Some(k) => Value::from(k),
        None => Value::Null,
    }
}

impl SyncObserver for MachineUi {
    fn event(&self, e: &SyncEvent) {
        match e {
            SyncEvent::AccountStart { account, mailboxes } => self.emit(
                "account_start",
                json!({"account": account, "mailboxes": mailboxes}),
            ),
            SyncEvent::MailboxStart { account, mailbox } => self.emit(
                "mailbox_start",
                json!({"account": account, "mailbox": mailbox}),
            ),
            SyncEvent::MailboxPlanned {
                account,
                mailbox,
                messages,
                bytes,
            } => self.emit(
                "mailbox_planned",
                json!({"account": account, "mailbox": mailbox, "messages": messages, "bytes": bytes}),
            ),
            SyncEvent::Copied {
                account,
                mailbox,
                to,
                messages,
                bytes,
            } => self.emit(
                "copied",
                json!({"account": account, "mailbox": mailbox, "to": to, "messages": messages, "bytes": bytes}),
            ),
            SyncEvent::Transferred {
                account,
                mailbox,
                from,
                on,
                moved,
                messages,
            } => self.emit(
                if *moved {
                    "moved"
                } else {
                    "copied_server_side"
                },
                json!({"account": account, "mailbox": mailbox, "from": from, "on": on, "messages": messages}),
            ),
            SyncEvent::MailboxEnd {
                account,
                mailbox,
                counts: c,
                error,
            } => {
                let mut v = json!({"account": account, "mailbox": mailbox, "ok": error.is_none(), "error": error});
                counts(c, &mut v);
                self.emit("mailbox_end", v)
            }
        }
    }
}

impl Ui for MachineUi {
    fn sync_start(&self, s: &SyncStart<'_>) {
        self.emit(
            "sync_start",
            json!({
                "account": s.account,
                "mode": if s.quick { "quick" } else { "full" },
                "folders": s.folders,
                "reason": s.reason,
            }),
        )
    }

    fn account_done(&self, r: &AccountReport) {
        for n in &r.notices {
            self.emit("notice", json!({"account": r.account, "message": n}));
        }
        for p in &r.planned {
            self.emit(
                "planned",
                json!({"account": r.account, "action": p, "kind": planned_kind(p)}),
            );
        }
        let failures: Vec<Value> = r
            .failures
            .iter()
            .map(|(m, e)| json!({"mailbox": m, "error": e}))
            .collect();
        let mut v = json!({
            "account": r.account,
            "ok": r.failures.is_empty(),
            "mailboxes": r.mailboxes,
            "opened": r.opened,
            "seconds": r.seconds,
            "stopped": r.stopped,
            "failures": failures,
        });
        counts(&r.counts, &mut v);
        self.emit("account_end", v)
    }

    fn info(&self, account: Option<&str>, msg: &str) {
        self.emit("info", json!({"account": account, "message": msg}))
    }

    fn error(&self, account: Option<&str>, msg: &str) {
        self.emit("error", json!({"account": account, "message": msg}))
    }
}
