//! Unix signals, offlineimap's way: SIGUSR1 syncs every account now; SIGUSR2 leaves daemon
//! mode after the current sync; SIGTERM, SIGINT and SIGHUP finish the current mailbox,
//! commit the state, log out and exit; a second SIGINT exits at once (every state change
//! is a committed SQLite transaction, so the state stays consistent).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::sync::StopToken;
use crate::ui::Ui;

/// Exit status after a second SIGINT (128 + SIGINT).
pub const EXIT_INTERRUPTED: i32 = 130;

/// What the signals ask of the running accounts.
#[derive(Debug, Clone)]
pub struct Control {
    /// Stop as soon as safe (TERM, INT, HUP).
    pub stop: StopToken,
    /// Leave daemon mode after the current sync (USR2).
    pub leave: Arc<AtomicBool>,
    /// Bumped to wake every account from its wait (USR1, USR2, TERM, ...).
    pub kick: Arc<watch::Sender<u64>>,
}

impl Default for Control {
    fn default() -> Self {
        Self::new()
    }
}

impl Control {
    /// A control nobody has signalled yet.
    pub fn new() -> Self {
        Control {
            stop: StopToken::new(),
            leave: Arc::new(AtomicBool::new(false)),
            kick: Arc::new(watch::channel(0).0),
        }
    }

    /// Whether the accounts should stop looping (stop or leave asked for).
    pub fn leaving(&self) -> bool {
        self.stop.is_stopped() || self.leave.load(Ordering::SeqCst)
    }

    /// Wakes every waiting account.
    pub fn wake(&self) {
        self.kick.send_modify(|g| *g = g.wrapping_add(1));
    }
}

/// Installs the handlers; they run until the process ends.
pub fn install(control: Control, ui: Arc<dyn Ui>) -> anyhow::Result<()> {
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        let mut interrupted = false;
        loop {
            let name = tokio::select! {
                _ = usr1.recv() => {
                    ui.info(None, "SIGUSR1: syncing every account now");
                    control.wake();
                    continue;
                }
                _ = usr2.recv() => {
                    ui.info(None, "SIGUSR2: leaving daemon mode after the current sync");
                    control.leave.store(true, Ordering::SeqCst);
                    control.wake();
                    continue;
                }
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
                _ = int.recv() => {
                    if interrupted {
                        ui.error(None, "second SIGINT: exiting now");
                        ui.finish();
                        std::process::exit(EXIT_INTERRUPTED);
                    }
                    interrupted = true;
                    "SIGINT"
                }
            };
            ui.info(
                None,
                &format!("{name}: finishing the current mailbox, then exiting (SIGINT again to exit at once)"),
            );
            control.stop.stop();
            control.wake();
        }
    });
    Ok(())
}
