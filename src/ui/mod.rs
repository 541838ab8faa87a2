//! User interfaces (`-u`, `[general] ui`): how a sync or a daemon reports what it does.
//!
//! - `quiet`: errors only (on stderr); nothing at all on success, for cron.
//! - `basic`: plain lines, for cron mail and the systemd journal: one line per mailbox
//!   that changed and a summary per account on stdout, notices and errors on stderr.
//! - `ttyui` (the default on a terminal): live progress bars on stderr, one per account
//!   (mailboxes) and one per mailbox being synced (bytes and messages, rate, ETA).
//! - `machineui`: one JSON object per line on stdout, for programs; see [`machine`] for
//!   the schema.

use std::io::IsTerminal;
use std::sync::Arc;

use crate::config;
use crate::sync::{AccountReport, SyncObserver};

pub mod machine;
pub mod text;
pub mod tty;

/// The user interfaces twinbox has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiKind {
    /// Errors only.
    Quiet,
    /// Log lines.
    Basic,
    /// Progress bars on a terminal.
    Tty,
    /// JSON lines.
    Machine,
}

impl UiKind {
    /// Parses a `-u` value (offlineimap's names are accepted too).
    pub fn parse(s: &str) -> anyhow::Result<UiKind> {
        let last = s.rsplit('.').next().unwrap_or(s).to_ascii_lowercase();
        Ok(match last.as_str() {
            "quiet" => UiKind::Quiet,
            "basic" => UiKind::Basic,
            "ttyui" | "tty" | "blinkenlights" => UiKind::Tty,
            "machineui" | "machine" => UiKind::Machine,
            _ => anyhow::bail!(
                "-u: unknown user interface {s:?} (expected quiet, basic, ttyui or machineui)"
            ),
        })
    }

    /// Chooses the UI: `-u` if given, else the first of the configured ones that can work
    /// here (`ttyui` needs stderr to be a terminal).
    pub fn choose(cli: Option<&str>, configured: &[config::Ui]) -> anyhow::Result<UiKind> {
        let tty = std::io::stderr().is_terminal();
        if let Some(c) = cli {
            let k = Self::parse(c)?;
            return Ok(if k == UiKind::Tty && !tty {
                UiKind::Basic
            } else {
                k
            });
        }
        for u in configured {
            match u {
                config::Ui::Tty if tty => return Ok(UiKind::Tty),
                config::Ui::Tty => continue,
                config::Ui::Basic => return Ok(UiKind::Basic),
                config::Ui::Quiet => return Ok(UiKind::Quiet),
                config::Ui::Machine => return Ok(UiKind::Machine),
            }
        }
        Ok(UiKind::Basic)
    }

    /// Builds the interface.
    pub fn build(self) -> Arc<dyn Ui> {
        match self {
            UiKind::Quiet => Arc::new(text::TextUi::new(false)),
            UiKind::Basic => Arc::new(text::TextUi::new(true)),
            UiKind::Tty => Arc::new(tty::TtyUi::new()),
            UiKind::Machine => Arc::new(machine::MachineUi::new()),
        }
    }
}

/// The kind of sync about to run, for [`Ui::sync_start`].
#[derive(Debug, Clone)]
pub struct SyncStart<'a> {
    /// Account name.
    pub account: &'a str,
    /// Quick rather than full.
    pub quick: bool,
    /// Only these folders (a triggered sync), or all.
    pub folders: Option<&'a [String]>,
    /// Why: `"start"`, `"refresh"`, `"signal"`, `"push"`, `"retry"`, `"resume"`.
    pub reason: &'a str,
}

/// A user interface: receives the engine's progress events and the run's own messages.
pub trait Ui: SyncObserver {
    /// A sync of an account begins.
    fn sync_start(&self, s: &SyncStart<'_>);
    /// A sync of an account ended (notices, planned actions, failures, summary).
    fn account_done(&self, r: &AccountReport);
    /// Something the user should know about the run (daemon state, signals).
    fn info(&self, account: Option<&str>, msg: &str);
    /// An error, for an account or for the whole run.
    fn error(&self, account: Option<&str>, msg: &str);
    /// The run is over: tidy the terminal.
    fn finish(&self) {}
}
