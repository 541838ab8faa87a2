//! The `quiet` and `basic` interfaces: plain lines.

use super::{SyncStart, Ui};
use crate::sync::{AccountReport, SyncEvent, SyncObserver};

/// Plain text output: `basic` when `verbose`, else `quiet` (errors only).
#[derive(Debug)]
pub struct TextUi {
    verbose: bool,
}

impl TextUi {
    /// A `basic` (`verbose`) or `quiet` interface.
    pub fn new(verbose: bool) -> Self {
        TextUi { verbose }
    }
}

fn prefix(account: Option<&str>) -> String {
    match account {
        Some(a) => format!("twinbox: {a}: "),
        None => "twinbox: ".to_string(),
    }
}

impl SyncObserver for TextUi {
    fn event(&self, e: &SyncEvent) {
        match e {
            SyncEvent::MailboxEnd {
                account,
                mailbox,
                counts: c,
                error: None,
            } if self.verbose => {
                let moved = c.copied[0] + c.copied[1] + c.flags[0] + c.flags[1];
                let gone = c.expunged[0] + c.expunged[1] + c.created[0] + c.created[1];
                if moved + gone > 0 {
                    println!(
                        "twinbox: {account}: {mailbox}: copied {} to local / {} to remote ({} bytes), {} flag changes, {} expunged",
                        c.copied[0],
                        c.copied[1],
                        c.bytes[0] + c.bytes[1],
                        c.flags[0] + c.flags[1],
                        c.expunged[0] + c.expunged[1]
                    );
                }
            }
            // Failures are reported once, with the account's report.
            _ => {}
        }
    }
}

impl Ui for TextUi {
    fn sync_start(&self, s: &SyncStart<'_>) {
        if self.verbose && s.reason != "start" {
            let what = match s.folders {
                Some(f) => format!(" of {}", f.join(", ")),
                None => String::new(),
            };
            println!(
                "twinbox: {}: {} sync{what} ({})",
                s.account,
                if s.quick { "quick" } else { "full" },
                s.reason
            );
        }
    }

    fn account_done(&self, r: &AccountReport) {
        if self.verbose {
            for n in &r.notices {
                eprintln!("twinbox: {}: {n}", r.account);
            }
        }
        // Planned actions are what `--dry-run` was asked for: always shown.
        for p in &r.planned {
            println!("would {p}");
        }
        for (m, e) in &r.failures {
            eprintln!("twinbox: {}: mailbox {m} failed: {e}", r.account);
        }
        if self.verbose {
            println!("{}", r.summary());
        }
    }

    fn info(&self, account: Option<&str>, msg: &str) {
        if self.verbose {
            println!("{}{msg}", prefix(account));
        }
    }

    fn error(&self, account: Option<&str>, msg: &str) {
        eprintln!("{}{msg}", prefix(account));
    }
}
