//! `ttyui`: live progress bars on a terminal (stderr).
//!
//! One bar per account counts its mailboxes; below it one bar per mailbox being synced
//! shows the bytes copied of those planned, the messages, the rate and the time left.
//! Summaries, notices and errors are printed above the bars.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::{SyncStart, Ui};
use crate::sync::{AccountReport, SyncEvent, SyncObserver};

/// The terminal interface.
#[derive(Debug)]
pub struct TtyUi {
    multi: MultiProgress,
    bars: Mutex<Bars>,
}

#[derive(Debug, Default)]
struct Bars {
    accounts: HashMap<String, ProgressBar>,
    mailboxes: HashMap<(String, String), (ProgressBar, u64, u64)>,
}

fn account_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} mailboxes {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn waiting_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:.bold} {spinner} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn mailbox_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "  {prefix:28!} [{bar:30}] {bytes}/{total_bytes} {msg} {binary_bytes_per_sec} ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

impl Default for TtyUi {
    fn default() -> Self {
        Self::new()
    }
}

impl TtyUi {
    /// A new interface drawing on stderr.
    pub fn new() -> Self {
        TtyUi {
            multi: MultiProgress::new(),
            bars: Mutex::new(Bars::default()),
        }
    }

    fn line(&self, s: &str) {
        if self.multi.println(s).is_err() {
            eprintln!("{s}");
        }
    }

    fn account_bar(&self, bars: &mut Bars, account: &str) -> ProgressBar {
        bars.accounts
            .entry(account.to_string())
            .or_insert_with(|| {
                let pb = self.multi.add(ProgressBar::new(0));
                pb.set_style(waiting_style());
                pb.set_prefix(account.to_string());
                pb.enable_steady_tick(Duration::from_millis(250));
                pb
            })
            .clone()
    }
}

impl SyncObserver for TtyUi {
    fn event(&self, e: &SyncEvent) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        match e {
            SyncEvent::AccountStart { account, mailboxes } => {
                let pb = self.account_bar(&mut bars, account);
                pb.set_style(account_style());
                pb.set_length(*mailboxes as u64);
                pb.set_position(0);
                pb.set_message("syncing");
            }
            SyncEvent::MailboxStart { account, mailbox } => {
                let pb = self.multi.add(ProgressBar::new(0));
                pb.set_style(mailbox_style());
                pb.set_prefix(mailbox.clone());
                pb.set_message("scanning");
                bars.mailboxes
                    .insert((account.clone(), mailbox.clone()), (pb, 0, 0));
            }
            SyncEvent::MailboxPlanned {
                account,
                mailbox,
                messages,
                bytes,
            } => {
                if let Some((pb, total, _)) =
                    bars.mailboxes.get_mut(&(account.clone(), mailbox.clone()))
                {
                    *total = *messages;
                    pb.set_length(*bytes);
                    pb.reset_eta();
                    pb.set_message(format!("0/{messages} msgs"));
                }
            }
            SyncEvent::Copied {
                account,
                mailbox,
                messages,
                bytes,
                ..
            } => {
                if let Some((pb, total, done)) =
                    bars.mailboxes.get_mut(&(account.clone(), mailbox.clone()))
                {
                    *done += messages;
                    pb.inc(*bytes);
                    pb.set_message(format!("{done}/{total} msgs"));
                }
            }
            SyncEvent::Transferred { .. } => {}
            SyncEvent::MailboxEnd {
                account,
                mailbox,
                error,
                ..
            } => {
                if let Some((pb, _, _)) = bars.mailboxes.remove(&(account.clone(), mailbox.clone()))
                {
                    pb.finish_and_clear();
                    self.multi.remove(&pb);
                }
                if let Some(pb) = bars.accounts.get(account) {
                    pb.inc(1);
                }
                if let Some(e) = error {
                    drop(bars);
                    self.line(&format!(
                        "twinbox: {account}: mailbox {mailbox} failed: {e}"
                    ));
                }
            }
        }
    }
}

impl Ui for TtyUi {
    fn sync_start(&self, s: &SyncStart<'_>) {
        if let Ok(mut bars) = self.bars.lock() {
            let pb = self.account_bar(&mut bars, s.account);
            pb.set_style(waiting_style());
            pb.set_length(0);
            pb.set_position(0);
            pb.set_message(format!(
                "{} sync: listing",
                if s.quick { "quick" } else { "full" }
            ));
        }
    }

    fn account_done(&self, r: &AccountReport) {
        for n in &r.notices {
            self.line(&format!("twinbox: {}: {n}", r.account));
        }
        for p in &r.planned {
            self.line(&format!("would {p}"));
        }
        for (m, e) in &r.failures {
            self.line(&format!("twinbox: {}: mailbox {m} failed: {e}", r.account));
        }
        self.line(&r.summary());
        if let Ok(bars) = self.bars.lock() {
            if let Some(pb) = bars.accounts.get(&r.account) {
                pb.set_style(waiting_style());
                pb.set_message("done");
            }
        }
    }

    fn info(&self, account: Option<&str>, msg: &str) {
        match account {
            Some(a) => {
                if let Ok(mut bars) = self.bars.lock() {
                    self.account_bar(&mut bars, a).set_message(msg.to_string());
                }
            }
            None => self.line(&format!("twinbox: {msg}")),
        }
    }

    fn error(&self, account: Option<&str>, msg: &str) {
        match account {
            Some(a) => self.line(&format!("twinbox: {a}: {msg}")),
            None => self.line(&format!("twinbox: {msg}")),
        }
    }

    fn finish(&self) {
        if let Ok(mut bars) = self.bars.lock() {
            for (_, (pb, _, _)) in bars.mailboxes.drain() {
                pb.finish_and_clear();
            }
            for (_, pb) in bars.accounts.drain() {
                pb.finish_and_clear();
            }
        }
        let _ = self.multi.clear();
    }
}
