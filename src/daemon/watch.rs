//! Push between syncs: NOTIFY (RFC 5465) on one connection watching every mailbox when the
//! server offers it, else IDLE (RFC 2177) on each of `idlefolders`, one connection each.
//!
//! A watcher reports the separator-neutral name of a changed mailbox (`None`: something
//! changed that needs a look at every mailbox, e.g. a mailbox was created, or the
//! connection was re-established and changes may have been missed). It reconnects with
//! exponential backoff. Asked to stop ([`Watcher::stop`]), it ends its IDLE with DONE and
//! logs out (session reads are cancel-safe, so the wait for the server can be left at any
//! moment); a watcher that does not stop in time is dropped with its connection.

use std::collections::HashMap;
use std::time::Duration;

use imap_types::response::{Data, Response, Status};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch as signal;

use crate::imap::session::Untagged;
use crate::imap::{utf7, ConnectOptions, ImapError, Session};
use crate::sync::names::to_neutral;

/// What the watcher of an account needs.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    /// Account name (for messages).
    pub account: String,
    /// How to reach the remote server.
    pub connect: ConnectOptions,
    /// `idlefolders`, as the remote server spells them.
    pub folders: Vec<String>,
    /// How long one IDLE lasts before it is renewed (`keepalive`, at most 29 minutes).
    pub renew: Duration,
    /// Use NOTIFY when offered.
    pub use_notify: bool,
}

/// A message from a watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// This mailbox (neutral name) changed; `None`: look at every mailbox.
    Changed(Option<String>),
    /// Something to tell the user (connection lost, reconnected, push method).
    Info(String),
}

/// First and largest wait before reconnecting.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(300));
/// Longest wait for the server to accept IDLE.
const CONTINUATION: Duration = Duration::from_secs(120);
/// How long a watcher may take to log out when asked to stop.
const STOP_GRACE: Duration = Duration::from_secs(5);

type Shutdown = signal::Receiver<bool>;

/// A running watcher.
#[derive(Debug)]
pub struct Watcher {
    task: tokio::task::JoinHandle<()>,
    stop: signal::Sender<bool>,
}

impl Watcher {
    /// Starts watching; events go to `tx`.
    pub fn start(spec: WatchSpec, tx: UnboundedSender<WatchEvent>) -> Watcher {
        let (stop, shutdown) = signal::channel(false);
        Watcher {
            task: tokio::spawn(watch(spec, tx, shutdown)),
            stop,
        }
    }

    /// Ends the watch: DONE and LOGOUT on its connections, or, if that takes too long (a
    /// dead connection), drops them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(STOP_GRACE, &mut task).await.is_err() {
            task.abort();
        }
    }
}

fn stopping(shutdown: &Shutdown) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// Sleeps, or returns `true` early when asked to stop.
async fn pause(d: Duration, shutdown: &mut Shutdown) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => stopping(shutdown),
        _ = shutdown.changed() => true,
    }
}

/// Connects, or returns `None` when asked to stop meanwhile.
async fn connect(
    spec: &WatchSpec,
    shutdown: &mut Shutdown,
) -> Option<Result<Session, anyhow::Error>> {
    tokio::select! {
        r = Session::connect(&spec.connect) => Some(r),
        _ = shutdown.changed() => None,
    }
}

async fn watch(spec: WatchSpec, tx: UnboundedSender<WatchEvent>, mut shutdown: Shutdown) {
    // One connection first: it tells whether NOTIFY is there.
    let mut backoff = BACKOFF.0;
    let mut reconnect = false;
    let mut use_notify = spec.use_notify;
    loop {
        if stopping(&shutdown) {
            return;
        }
        let Some(r) = connect(&spec, &mut shutdown).await else {
            return;
        };
        match r {
            Ok(mut s) if use_notify && s.has("NOTIFY") => match notify_set(&mut s).await {
                Ok(Ok(names)) => {
                    backoff = BACKOFF.0;
                    if reconnect {
                        let _ = tx.send(WatchEvent::Changed(None));
                    }
                    let _ = tx.send(WatchEvent::Info(
                        "push: NOTIFY on every mailbox".to_string(),
                    ));
                    match notify(&mut s, names, spec.renew, &tx, &mut shutdown).await {
                        Ok(()) => {
                            let _ = s.logout().await;
                            return;
                        }
                        Err(e) => {
                            let _ = tx.send(WatchEvent::Info(format!(
                                "push connection lost ({e}); reconnecting"
                            )));
                        }
                    }
                }
                Ok(Err(refused)) => {
                    let _ = tx.send(WatchEvent::Info(format!(
                        "push: the server refused NOTIFY ({refused}); using IDLE"
                    )));
                    let _ = s.logout().await;
                    use_notify = false;
                    continue;
                }
                Err(e) => {
                    let _ = tx.send(WatchEvent::Info(format!(
                        "push connection lost ({e}); reconnecting"
                    )));
                }
            },
            Ok(s) => {
                let idle = s.has("IDLE");
                let _ = s.logout().await;
                if spec.folders.is_empty() {
                    return;
                }
                if !idle {
                    let _ = tx.send(WatchEvent::Info(
                        "push: the server offers neither NOTIFY nor IDLE; syncing every autorefresh only"
                            .to_string(),
                    ));
                    return;
                }
                let _ = tx.send(WatchEvent::Info(format!(
                    "push: IDLE on {}",
                    spec.folders.join(", ")
                )));
                let mut set = tokio::task::JoinSet::new();
                for f in &spec.folders {
                    set.spawn(idle_folder(
                        spec.clone(),
                        f.clone(),
                        tx.clone(),
                        shutdown.clone(),
                    ));
                }
                while set.join_next().await.is_some() {}
                return;
            }
            Err(e) => {
                let _ = tx.send(WatchEvent::Info(format!(
                    "push connection failed ({e:#}); retrying in {} s",
                    backoff.as_secs()
                )));
            }
        }
        reconnect = true;
        if pause(backoff, &mut shutdown).await {
            return;
        }
        backoff = (backoff * 2).min(BACKOFF.1);
    }
}

/// IDLE on one folder until asked to stop, reconnecting with backoff.
async fn idle_folder(
    spec: WatchSpec,
    folder: String,
    tx: UnboundedSender<WatchEvent>,
    mut shutdown: Shutdown,
) {
    let mut backoff = BACKOFF.0;
    let mut reconnect = false;
    loop {
        let Some(r) = connect(&spec, &mut shutdown).await else {
            return;
        };
        let r: Result<bool, anyhow::Error> = async {
            let mut s = r?;
            let listed = s.list("", &folder, false).await?;
            let delim = listed.first().and_then(|m| m.delimiter);
            let neutral = to_neutral(&folder, delim);
            s.select(utf7::encode(&folder).as_bytes(), true, None)
                .await?;
            backoff = BACKOFF.0;
            if reconnect {
                let _ = tx.send(WatchEvent::Changed(Some(neutral.clone())));
            }
            let mut on = |r: &Response<'static>| {
                if matches!(
                    r,
                    Response::Data(
                        Data::Exists(_)
                            | Data::Expunge(_)
                            | Data::Fetch { .. }
                            | Data::Vanished { .. }
                    )
                ) {
                    let _ = tx.send(WatchEvent::Changed(Some(neutral.clone())));
                }
            };
            loop {
                if idle_round(&mut s, spec.renew, &mut shutdown, &mut on).await? {
                    let _ = s.logout().await;
                    return Ok(true);
                }
            }
        }
        .await;
        match r {
            Ok(_) => return,
            Err(e) => {
                let _ = tx.send(WatchEvent::Info(format!(
                    "IDLE on {folder}: {e:#}; reconnecting in {} s",
                    backoff.as_secs()
                )));
            }
        }
        reconnect = true;
        if pause(backoff, &mut shutdown).await {
            return;
        }
        backoff = (backoff * 2).min(BACKOFF.1);
    }
}

/// One IDLE of at most `renew`, handing every response to `on`; ends early (DONE) when
/// asked to stop, and then returns `true`.
async fn idle_round(
    s: &mut Session,
    renew: Duration,
    shutdown: &mut Shutdown,
    on: &mut (dyn FnMut(&Response<'static>) + Send),
) -> Result<bool, ImapError> {
    let p = s.raw_command("IDLE", "IDLE");
    s.flush().await?;
    loop {
        match s.read_with_wait(CONTINUATION).await? {
            Response::CommandContinuationRequest(_) => break,
            Response::Status(Status::Tagged(t)) => {
                return Err(ImapError::Command {
                    command: "IDLE".into(),
                    status: format!("{:?}", t.body.kind),
                    text: t.body.text.to_string(),
                })
            }
            other => on(&other),
        }
    }
    let deadline = tokio::time::Instant::now() + renew;
    let mut stop = false;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::select! {
            r = s.read_with_wait(left) => match r {
                Err(ImapError::Timeout(_)) => break,
                Err(e) => return Err(e),
                Ok(r) => on(&r),
            },
            _ = shutdown.changed() => {
                stop = true;
                break;
            }
        }
    }
    // Renewing is also what notices a dead connection: DONE must be answered in time.
    s.queue_raw(b"DONE\r\n");
    let mut late = Vec::new();
    s.finish(p, &mut |u| {
        if let Untagged::Data(d) = u {
            late.push(Response::Data(d));
        }
        Ok(())
    })
    .await?
    .ok("IDLE")?;
    for r in &late {
        on(r);
    }
    Ok(stop || stopping(shutdown))
}

/// Raw mailbox name -> neutral name (NOTIFY's STATUS responses name mailboxes raw).
type Names = HashMap<Vec<u8>, String>;

/// Lists the mailboxes and sets NOTIFY on every personal one. The outer error is the
/// connection's; the inner one, the server refusing NOTIFY.
async fn notify_set(s: &mut Session) -> Result<Result<Names, ImapError>, ImapError> {
    let mut names: Names = HashMap::new();
    for m in s.list("", "*", false).await? {
        names.insert(m.raw.clone(), to_neutral(&m.name, m.delimiter));
    }
    let events = "(MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)";
    let p = s.raw_command("NOTIFY", &format!("NOTIFY SET (personal {events})"));
    if s.finish(p, &mut |_| Ok(())).await?.ok("NOTIFY").is_ok() {
        return Ok(Ok(names));
    }
    // Some servers refuse FlagChange outside the selected mailbox.
    let p = s.raw_command(
        "NOTIFY",
        "NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))",
    );
    Ok(s.finish(p, &mut |_| Ok(()))
        .await?
        .ok("NOTIFY")
        .map(|_| names))
}

/// IDLE rounds after NOTIFY SET, reporting each mailbox named by an unsolicited STATUS.
/// Returns `Ok` when asked to stop.
async fn notify(
    s: &mut Session,
    mut names: Names,
    renew: Duration,
    tx: &UnboundedSender<WatchEvent>,
    shutdown: &mut Shutdown,
) -> Result<(), ImapError> {
    let mut on = |r: &Response<'static>| report(r, &mut names, tx);
    loop {
        if idle_round(s, renew, shutdown, &mut on).await? {
            return Ok(());
        }
    }
}

fn report(r: &Response<'_>, names: &mut Names, tx: &UnboundedSender<WatchEvent>) {
    match r {
        Response::Data(Data::Status { mailbox, .. }) => {
            let raw = match mailbox {
                imap_types::mailbox::Mailbox::Inbox => b"INBOX".to_vec(),
                imap_types::mailbox::Mailbox::Other(o) => o.as_ref().to_vec(),
            };
            let name = names.get(&raw).cloned();
            let _ = tx.send(WatchEvent::Changed(name));
        }
        Response::Data(Data::List {
            mailbox, delimiter, ..
        }) => {
            // A mailbox appeared, vanished or was renamed: look at all of them.
            let raw = match mailbox {
                imap_types::mailbox::Mailbox::Inbox => b"INBOX".to_vec(),
                imap_types::mailbox::Mailbox::Other(o) => o.as_ref().to_vec(),
            };
            let name = utf7::decode_lossy(&raw);
            names.insert(
                raw,
                to_neutral(&name, delimiter.as_ref().map(|d| d.inner())),
            );
            let _ = tx.send(WatchEvent::Changed(None));
        }
        _ => {}
    }
}
