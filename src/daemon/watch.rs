//! Push between syncs: NOTIFY (RFC 5465) on one connection watching every mailbox when the
//! server offers it, else IDLE (RFC 2177) on each of `idlefolders`, one connection each.
//!
//! A watcher reports the separator-neutral name of a changed mailbox (`None`: something
//! changed that needs a look at every mailbox, e.g. a mailbox was created, or the
//! connection was re-established and changes may have been missed). It reconnects with
//! exponential backoff. It is stopped by dropping its task: a session whose read was
//! interrupted is never reused, so cancelling it at any point is safe.

use std::collections::HashMap;
use std::time::Duration;

use imap_types::response::{Data, Response, Status};
use tokio::sync::mpsc::UnboundedSender;

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

/// Runs the watchers of one account until the task is dropped.
pub async fn watch(spec: WatchSpec, tx: UnboundedSender<WatchEvent>) {
    // One connection first: it tells whether NOTIFY is there.
    let mut backoff = BACKOFF.0;
    let mut reconnect = false;
    loop {
        match Session::connect(&spec.connect).await {
            Ok(s) if spec.use_notify && s.has("NOTIFY") => {
                backoff = BACKOFF.0;
                if reconnect {
                    let _ = tx.send(WatchEvent::Changed(None));
                }
                let _ = tx.send(WatchEvent::Info(
                    "push: NOTIFY on every mailbox".to_string(),
                ));
                let e = notify_loop(s, spec.renew, &tx).await;
                let _ = tx.send(WatchEvent::Info(format!(
                    "push connection lost ({e}); reconnecting"
                )));
            }
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
                    set.spawn(idle_folder(spec.clone(), f.clone(), tx.clone()));
                }
                while set.join_next().await.is_some() {}
                return;
            }
            Err(e) => {
                let _ = tx.send(WatchEvent::Info(format!(
                    "push connection failed ({e:#}); retrying in {} s",
                    backoff.as_secs()
                )));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF.1);
                continue;
            }
        }
        reconnect = true;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF.1);
    }
}

/// IDLE on one folder forever, reconnecting with backoff.
async fn idle_folder(spec: WatchSpec, folder: String, tx: UnboundedSender<WatchEvent>) {
    let mut backoff = BACKOFF.0;
    let mut reconnect = false;
    loop {
        let r: Result<(), anyhow::Error> = async {
            let mut s = Session::connect(&spec.connect).await?;
            let listed = s.list("", &folder, false).await?;
            let delim = listed.first().and_then(|m| m.delimiter);
            let neutral = to_neutral(&folder, delim);
            s.select(utf7::encode(&folder).as_bytes(), true, None)
                .await?;
            backoff = BACKOFF.0;
            if reconnect {
                let _ = tx.send(WatchEvent::Changed(Some(neutral.clone())));
            }
            loop {
                if s.idle(spec.renew).await? == crate::imap::commands::IdleEvent::Changed {
                    let _ = tx.send(WatchEvent::Changed(Some(neutral.clone())));
                }
            }
        }
        .await;
        if let Err(e) = r {
            let _ = tx.send(WatchEvent::Info(format!(
                "IDLE on {folder}: {e:#}; reconnecting in {} s",
                backoff.as_secs()
            )));
        }
        reconnect = true;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF.1);
    }
}

/// NOTIFY SET on every personal mailbox, then IDLE (renewed every `renew`), reporting each
/// mailbox named by an unsolicited STATUS. Returns only on error.
async fn notify_loop(
    mut s: Session,
    renew: Duration,
    tx: &UnboundedSender<WatchEvent>,
) -> ImapError {
    match notify_inner(&mut s, renew, tx).await {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

enum Never {}

async fn notify_inner(
    s: &mut Session,
    renew: Duration,
    tx: &UnboundedSender<WatchEvent>,
) -> Result<Never, ImapError> {
    // Raw name -> neutral name of every mailbox (STATUS names mailboxes by raw name).
    let mut names: HashMap<Vec<u8>, String> = HashMap::new();
    for m in s.list("", "*", false).await? {
        names.insert(m.raw.clone(), to_neutral(&m.name, m.delimiter));
    }
    let events = "(MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)";
    let p = s.raw_command("NOTIFY", &format!("NOTIFY SET (personal {events})"));
    if s.finish(p, &mut |_| Ok(())).await?.ok("NOTIFY").is_err() {
        // Some servers refuse FlagChange outside the selected mailbox.
        let p = s.raw_command(
            "NOTIFY",
            "NOTIFY SET (personal (MessageNew MessageExpunge MailboxName))",
        );
        s.finish(p, &mut |_| Ok(())).await?.ok("NOTIFY")?;
    }
    loop {
        let p = s.raw_command("IDLE", "IDLE");
        s.flush().await?;
        loop {
            match s.read_with_wait(renew).await? {
                Response::CommandContinuationRequest(_) => break,
                Response::Status(Status::Tagged(t)) => {
                    return Err(ImapError::Command {
                        command: "IDLE".into(),
                        status: format!("{:?}", t.body.kind),
                        text: t.body.text.to_string(),
                    })
                }
                other => report(&other, &mut names, tx),
            }
        }
        let deadline = tokio::time::Instant::now() + renew;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            match s.read_with_wait(left).await {
                Err(ImapError::Timeout(_)) => break,
                Err(e) => return Err(e),
                Ok(r) => report(&r, &mut names, tx),
            }
        }
        s.queue_raw(b"DONE\r\n");
        let mut late = Vec::new();
        s.finish(p, &mut |u| {
            if let crate::imap::session::Untagged::Data(d) = u {
                late.push(Response::Data(d));
            }
            Ok(())
        })
        .await?
        .ok("IDLE")?;
        for r in late {
            report(&r, &mut names, tx);
        }
    }
}

fn report(
    r: &Response<'_>,
    names: &mut HashMap<Vec<u8>, String>,
    tx: &UnboundedSender<WatchEvent>,
) {
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
