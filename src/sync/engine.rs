//! Applying plans: discovers and pairs mailboxes, skips unchanged ones, and syncs the rest
//! over up to `maxconnections` connections per side, writing state as the servers confirm.
//!
//! Crash safety: before each APPEND batch the copies are recorded as pending with the
//! target's UIDNEXT; a run that finds pending copies recognises the ones that landed (new
//! UIDs at or above it with the same identity) instead of copying them again. Proven by
//! `protocol-tests/sync_crash.rs` (an abort at every step, and a concurrent change at every
//! step) and `protocol-tests/sync_kill.rs` (kill -9 at random moments, restarted at
//! once). A server may still commit a killed client's last APPEND from data already in its
//! socket buffer a moment after the kill; a run started within that moment would not see
//! it and would copy those messages
//! again (a duplicate, never a loss). So a run that finds copies pending from a run
//! interrupted less than 3 s ago first waits for the rest of those 3 s.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;

use super::names::{from_neutral, to_neutral, FolderRules, Identity};
use super::plan::{fmt_flags, plan, Fingerprint, FlagAction, Flags, Plan, Policy, Side};
use super::pool::ConnectionPool;
use super::progress::{StopToken, SyncEvent, SyncObserver};
use crate::state::{SideState, StateDb};
use crate::store::imap::ImapStore;
use crate::store::{Body, MailboxInfo, OwnChanges, ScanMode, Store, Upload};

/// How to reach one side.
#[derive(Debug, Clone)]
pub enum StoreSpec {
    /// An IMAP server.
    Imap(Box<crate::imap::ConnectOptions>),
    /// A Maildir tree read and written natively.
    Maildir(Box<crate::store::maildir::MaildirOptions>),
}

/// One side of an account.
#[derive(Debug, Clone)]
pub struct SideSpec {
    /// How to connect.
    pub store: StoreSpec,
    /// Never change this side.
    pub read_only: bool,
    /// Create mailboxes that exist only on the other side.
    pub create_folders: bool,
}

/// What to sync and how.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Full or quick.
    pub mode: ScanMode,
    /// Only list what would be done.
    pub dry_run: bool,
    /// Only these folders, by remote (untranslated) name (None: all).
    pub folders: Option<Vec<String>>,
    /// Folder filters and name translation.
    pub rules: Arc<dyn FolderRules>,
    /// Conflict policy.
    pub policy: Policy,
    /// Connections per side.
    pub max_connections: usize,
    /// fsync the state database.
    pub fsync: bool,
    /// Most messages per APPEND batch.
    pub batch_messages: usize,
    /// Most bytes per APPEND batch.
    pub batch_bytes: u64,
    /// maxage/maxsize, read-only sides, `expunge = no` ([`super::filter`]).
    pub restrictions: super::filter::Restrictions,
    /// Receives progress events (user interfaces).
    pub observer: Option<Arc<dyn SyncObserver>>,
    /// Asks the sync to stop between mailboxes and between copy batches.
    pub stop: Option<StopToken>,
    /// Connections held between syncs (`holdconnectionopen`): taken from and given back here.
    pub pool: Option<Arc<ConnectionPool>>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            mode: ScanMode::Full,
            dry_run: false,
            folders: None,
            rules: Arc::new(Identity),
            policy: Policy::default(),
            max_connections: 2,
            fsync: true,
            batch_messages: 200,
            batch_bytes: 8 * 1024 * 1024,
            restrictions: Default::default(),
            observer: None,
            stop: None,
            pool: None,
        }
    }
}

/// An account to sync.
#[derive(Debug, Clone)]
pub struct AccountSpec {
    /// Account name.
    pub name: String,
    /// Local and remote sides.
    pub sides: [SideSpec; 2],
    /// The state database file.
    pub state_path: PathBuf,
    /// Options.
    pub options: SyncOptions,
}

/// Counts of what one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Messages copied to each side (index = target side).
    pub copied: [u64; 2],
    /// Bytes copied to each side.
    pub bytes: [u64; 2],
    /// Flag changes applied on each side.
    pub flags: [u64; 2],
    /// Messages expunged on each side.
    pub expunged: [u64; 2],
    /// Mailboxes created on each side.
    pub created: [u64; 2],
    /// Messages moved server-side on each side (replaying a move made on the other side).
    pub moved: [u64; 2],
    /// Messages copied server-side on each side (no upload).
    pub server_copied: [u64; 2],
}

impl Counts {
    /// Adds another set of counts to these.
    pub fn add(&mut self, o: &Counts) {
        for i in 0..2 {
            self.copied[i] += o.copied[i];
            self.bytes[i] += o.bytes[i];
            self.flags[i] += o.flags[i];
            self.expunged[i] += o.expunged[i];
            self.created[i] += o.created[i];
            self.moved[i] += o.moved[i];
            self.server_copied[i] += o.server_copied[i];
        }
    }
}

/// The result of syncing an account.
#[derive(Debug, Clone, Default)]
pub struct AccountReport {
    /// Account name.
    pub account: String,
    /// Mailboxes considered.
    pub mailboxes: usize,
    /// Mailboxes actually opened.
    pub opened: usize,
    /// What was done.
    pub counts: Counts,
    /// Mailboxes that failed, with a one-line reason.
    pub failures: Vec<(String, String)>,
    /// Notices (deleted mailboxes, merges).
    pub notices: Vec<String>,
    /// Dry run: the actions that would be taken.
    pub planned: Vec<String>,
    /// Wall time.
    pub seconds: f64,
    /// Whether a stop was requested while this sync ran (it then ends at the next mailbox
    /// or copy batch; what is left is done by the next run).
    pub stopped: bool,
}

impl AccountReport {
    /// The one-line summary.
    pub fn summary(&self) -> String {
        let c = &self.counts;
        format!(
            "{}: {} mailboxes ({} opened), copied {} to local / {} to remote, {} flag changes, {} expunged, {} bytes, {:.2} s{}{}",
            self.account,
            self.mailboxes,
            self.opened,
            c.copied[0],
            c.copied[1],
            c.flags[0] + c.flags[1],
            c.expunged[0] + c.expunged[1],
            c.bytes[0] + c.bytes[1],
            self.seconds,
            if c.moved == [0, 0] && c.server_copied == [0, 0] {
                String::new()
            } else {
                format!(
                    ", moved {} / copied {} server-side",
                    c.moved[0] + c.moved[1],
                    c.server_copied[0] + c.server_copied[1]
                )
            },
            if self.failures.is_empty() {
                String::new()
            } else {
                format!(", {} mailbox(es) FAILED", self.failures.len())
            }
        )
    }
}

/// Counts, failures, notes, planned actions and deferred side states gathered from the
/// workers.
type Collected = (
    Counts,
    Vec<(String, String)>,
    Vec<String>,
    Vec<String>,
    Vec<(i64, [SideState; 2])>,
);

/// Connects to one side.
pub async fn open_store(spec: &SideSpec) -> anyhow::Result<Box<dyn Store>> {
    match &spec.store {
        StoreSpec::Imap(o) => Ok(Box::new(ImapStore::connect(o).await?)),
        StoreSpec::Maildir(o) => Ok(Box::new(crate::store::maildir::MaildirStore::open_store(
            o,
        )?)),
    }
}

async fn open_pair(a: &AccountSpec) -> anyhow::Result<[Box<dyn Store>; 2]> {
    if let Some(p) = &a.options.pool {
        if let Some(pair) = p.take().await {
            return Ok(pair);
        }
    }
    let (l, r) = tokio::join!(open_store(&a.sides[0]), open_store(&a.sides[1]));
    let l = l.context("local")?;
    let r = match r {
        Ok(r) => r,
        Err(e) => {
            let _ = l.close().await;
            return Err(e.context("remote"));
        }
    };
    Ok([l, r])
}

async fn close_pair(stores: [Box<dyn Store>; 2]) {
    let [a, b] = stores;
    let _ = tokio::join!(a.close(), b.close());
}

/// A mailbox to sync: its neutral name and each side's spelling.
#[derive(Debug, Clone)]
struct Job {
    name: String,
    native: [String; 2],
    /// Each side's listed status.
    status: [Option<SideState>; 2],
    /// What the move step already read of this pair.
    prescan: Option<super::moves::Prescan>,
}

/// Whether a side's listed status `now` proves it unchanged since `saved`.
pub(super) fn unchanged(
    saved: &SideState,
    now: &Option<SideState>,
    tracks: bool,
    mode: ScanMode,
) -> bool {
    let Some(now) = now else { return false };
    saved.uidvalidity != 0
        && saved.uidvalidity == now.uidvalidity
        && saved.uidnext == now.uidnext
        && saved.messages == now.messages
        && if tracks {
            saved.highestmodseq != 0 && saved.highestmodseq == now.highestmodseq
        } else {
            mode == ScanMode::Quick
        }
}

/// Syncs one account.
pub async fn sync_account(a: &AccountSpec) -> anyhow::Result<AccountReport> {
    let t0 = Instant::now();
    let mut report = AccountReport {
        account: a.name.clone(),
        ..Default::default()
    };
    let o = &a.options;
    let db = if o.dry_run {
        StateDb::open_readonly(&a.state_path)?
    } else {
        StateDb::open(&a.state_path, o.fsync)?
    };
    let saved: HashMap<String, crate::state::MailboxRow> = db
        .mailboxes()?
        .into_iter()
        .map(|m| (m.name.clone(), m))
        .collect();
    let pending = db.mailboxes_with_pending()?;
    if !pending.is_empty() && !o.dry_run {
        settle_after_crash(&a.state_path).await;
    }
    let db = Arc::new(Mutex::new(db));
    let mut stores = open_pair(a).await?;
    let (l, r) = {
        let [s0, s1] = &mut stores;
        tokio::join!(s0.list(), s1.list())
    };
    let lists = [
        l.context("listing local mailboxes")?,
        r.context("listing remote mailboxes")?,
    ];
    let tracks = [stores[0].tracks_changes(), stores[1].tracks_changes()];
    // The hierarchy delimiter of each side (from INBOX, else the first mailbox).
    let delim: [Option<char>; 2] = [0, 1].map(|s| {
        if let Some(d) = stores[s].delimiter() {
            return d;
        }
        lists[s]
            .iter()
            .find(|m| m.name == "INBOX")
            .and_then(|m| m.delimiter)
            .or_else(|| lists[s].iter().find_map(|m| m.delimiter))
    });
    // Pair by the remote side's neutral name; local names are translated to it.
    let rules = o.rules.clone();
    let neutral: [Vec<String>; 2] = [0, 1].map(|s| {
        lists[s]
            .iter()
            .map(|m| to_neutral(&m.name, m.delimiter))
            .collect()
    });
    if let Err(e) = rules.check(&neutral[1], &neutral[0]) {
        // A nametrans written for a server's prefix (offlineimap's `INBOX.` lambdas) now
        // adds or strips what twinbox already trims: say so.
        let hint: Vec<String> = Side::BOTH
            .iter()
            .filter_map(|s| {
                let full = stores[s.i()].server_name("x");
                let prefix = full.strip_suffix('x').filter(|p| !p.is_empty())?;
                Some(format!(
                    " (the {} server's namespace prefix {prefix:?} is already trimmed from folder names: drop nametrans or folderfilter rules that add or remove it)",
                    s.name()
                ))
            })
            .collect();
        close_pair(stores).await;
        anyhow::bail!("folder names: {e}{}", hint.concat());
    }
    let mut by_name: BTreeMap<String, [Option<&MailboxInfo>; 2]> = BTreeMap::new();
    for (m, n) in lists[1].iter().zip(&neutral[1]) {
        if rules.accept_remote(n) && rules.accept_local(&rules.to_local(n)) {
            by_name.entry(n.clone()).or_insert([None, None])[1] = Some(m);
        }
    }
    for (m, n) in lists[0].iter().zip(&neutral[0]) {
        let key = rules.to_remote(n);
        if rules.accept_local(n) && rules.accept_remote(&key) {
            by_name.entry(key).or_insert([None, None])[0] = Some(m);
        }
    }
    let wanted = |name: &str| match &o.folders {
        Some(f) => f.iter().any(|x| x == name),
        None => true,
    };
    let mut jobs = Vec::new();
    let mut all_native: HashMap<String, [String; 2]> = HashMap::new();
    let mut may_have_grown = false;
    // Mailboxes deleted on one side since the last sync (kept on the other).
    let mut deleted: Vec<super::moves::Changed> = Vec::new();
    for (name, infos) in &by_name {
        if !wanted(name) {
            continue;
        }
        report.mailboxes += 1;
        let mut native: [String; 2] = [String::new(), String::new()];
        let mut status: [Option<SideState>; 2] = [None, None];
        let mut ok = true;
        for s in Side::BOTH {
            let i = s.i();
            match infos[i] {
                Some(m) if m.selectable => {
                    native[i] = m.name.clone();
                    status[i] = m.status;
                }
                Some(_) => ok = false, // \Noselect: a hierarchy node only
                None => {
                    let other = infos[s.other().i()];
                    if other.is_some_and(|m| !m.selectable) {
                        ok = false;
                        continue;
                    }
                    if saved.contains_key(name) {
                        if let Some(m) = other {
                            // Its messages may have been moved out before it was deleted.
                            let mut native = [String::new(), String::new()];
                            native[s.other().i()] = m.name.clone();
                            deleted.push(super::moves::Changed {
                                name: name.clone(),
                                native,
                                status: [None, None],
                                deleted: Some(s),
                            });
                        }
                        report.notices.push(format!(
                            "{name}: deleted on the {} side since the last sync; not recreated there and not deleted on the {} side (delete it there, or run `twinbox delete` to forget it)",
                            s.name(),
                            s.other().name()
                        ));
                        ok = false;
                        continue;
                    }
                    if !a.sides[i].create_folders || a.sides[i].read_only {
                        report.notices.push(format!("{name}: only on the {} side; not created on the {} side (createfolders is off)", s.other().name(), s.name()));
                        ok = false;
                        continue;
                    }
                    let side_name = if s == Side::Local {
                        rules.to_local(name)
                    } else {
                        name.clone()
                    };
                    let n = match from_neutral(&side_name, delim[i]) {
                        Ok(n) => n,
                        Err(e) => {
                            let o = s.other();
                            let there = infos[o.i()].map(|m| m.name.as_str()).unwrap_or("");
                            let naive = match delim[i] {
                                Some(d) => side_name.replace('/', &d.to_string()),
                                None => side_name.clone(),
                            };
                            let e = format!(
                                "{there:?} on the {} side cannot be created on the {} side, where it would read as {:?}, another folder ({e})",
                                o.name(),
                                s.name(),
                                stores[i].server_name(&naive)
                            );
                            report.failures.push((name.clone(), e));
                            ok = false;
                            continue;
                        }
                    };
                    if o.dry_run {
                        report
                            .planned
                            .push(format!("create folder {n:?} on the {} side", s.name()));
                        if let Some(src) = infos[s.other().i()] {
                            let from = s.other();
                            let store = stores[from.i()].as_mut();
                            let r = &o.restrictions;
                            report.planned.extend(
                                super::dryrun::describe_new_folder(store, name, &src.name, from, r)
                                    .await,
                            );
                        }
                        ok = false; // nothing to examine there yet
                        continue;
                    }
                    crate::fault::step("create");
                    if let Err(e) = stores[i].create(&n).await {
                        report.failures.push((name.clone(), format!("{e:#}")));
                        ok = false;
                        continue;
                    }
                    crate::fault::step("created");
                    report.counts.created[i] += 1;
                    native[i] = n;
                }
            }
        }
        if !ok {
            continue;
        }
        all_native.insert(name.clone(), native.clone());
        if let Some(row) = saved.get(name) {
            let skip = !pending.contains(&row.id)
                && (0..2).all(|i| unchanged(&row.sides[i], &status[i], tracks[i], o.mode));
            if skip {
                continue;
            }
        }
        // A move or a copy always adds a message somewhere (UIDNEXT grows): without such a
        // mailbox, the move scan (an extra open per changed mailbox) is skipped.
        may_have_grown |=
            (0..2).any(
                |i| match (saved.get(name).map(|r| r.sides[i].uidnext), &status[i]) {
                    (Some(before), Some(now)) => now.uidnext > before,
                    _ => true,
                },
            );
        jobs.push(Job {
            name: name.clone(),
            native,
            status,
            prescan: None,
        });
    }
    report.opened = jobs.len();
    // A move or a copy has a source among the messages already synced: on a first sync
    // there is none, and the move scan would only hold every mailbox's listing in memory
    // at once (at 100,000 messages, most of the run's peak).
    let synced_before = saved
        .values()
        .any(|r| r.sides.iter().any(|s| s.uidvalidity != 0));
    if may_have_grown && synced_before && !jobs.is_empty() && all_native.len() + deleted.len() >= 2
    {
        // Moves and copies between mailboxes show only across mailboxes: match them first.
        let list: Vec<super::moves::Changed> = jobs
            .iter()
            .map(|j| super::moves::Changed {
                name: j.name.clone(),
                native: j.native.clone(),
                status: j.status,
                deleted: None,
            })
            .chain(deleted)
            .collect();
        match super::moves::replay(&mut stores, &db, &list, &all_native, o, &a.name).await {
            Ok(mut r) => {
                report.counts.add(&r.counts);
                report.notices.extend(r.notes);
                report.planned.extend(r.planned);
                for j in &mut jobs {
                    j.prescan = r.prescans.remove(&j.name);
                }
            }
            Err(e) => report
                .notices
                .push(format!("server-side moves skipped: {e:#}")),
        }
    }
    o.emit(|| SyncEvent::AccountStart {
        account: a.name.clone(),
        mailboxes: jobs.len(),
    });
    let queue = Arc::new(Mutex::new(jobs));
    let results: Arc<Mutex<Collected>> = Arc::new(Mutex::new(Default::default()));
    let workers = o
        .max_connections
        .max(1)
        .min(queue.lock().map(|q| q.len()).unwrap_or(1).max(1));
    let mut handles = Vec::new();
    let mut first = Some(stores);
    for w in 0..workers {
        let stores = first.take();
        let queue = queue.clone();
        let results = results.clone();
        let db = db.clone();
        let a = a.clone();
        handles.push(tokio::spawn(async move {
            let mut stores = stores;
            loop {
                let job = match queue.lock() {
                    Ok(mut q) => q.pop(),
                    Err(_) => None,
                };
                let Some(job) = job else { break };
                if a.options.stopping() {
                    break;
                }
                if stores.is_none() {
                    match open_pair(&a).await {
                        Ok(s) => stores = Some(s),
                        Err(e) => {
                            if let Ok(mut r) = results.lock() {
                                r.1.push((job.name.clone(), format!("worker {w}: cannot connect: {e:#}")));
                            }
                            continue;
                        }
                    }
                }
                let Some(st) = stores.as_mut() else { break };
                let t = Instant::now();
                a.options.emit(|| SyncEvent::MailboxStart {
                    account: a.name.clone(),
                    mailbox: job.name.clone(),
                });
                let mut job = job;
                let res = sync_mailbox(st, &db, &mut job, &a.options, &a.name).await;
                let failed = res.is_err();
                a.options.emit(|| SyncEvent::MailboxEnd {
                    account: a.name.clone(),
                    mailbox: job.name.clone(),
                    counts: res.as_ref().map(|m| m.counts.clone()).unwrap_or_default(),
                    error: res.as_ref().err().map(|e| format!("{e:#}")),
                });
                {
                    let Ok(mut r) = results.lock() else { break };
                    match res {
                        Ok(m) => {
                            tracing::info!(target: "twinbox::sync", "{}: {} in {:.2}s", job.name, describe(&m.counts), t.elapsed().as_secs_f64());
                            r.0.add(&m.counts);
                            r.2.extend(m.notes);
                            r.3.extend(m.planned);
                            r.4.extend(m.deferred);
                        }
                        Err(e) => r.1.push((job.name.clone(), format!("{e:#}"))),
                    }
                }
                if failed {
                    // The connection may be unusable: reconnect for the next job.
                    if let Some(s) = stores.take() {
                        close_pair(s).await;
                    }
                }
            }
            if let Some(s) = stores {
                super::pool::release(&a.options.pool, s).await;
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    if let Some(s) = first {
        super::pool::release(&o.pool, s).await;
    }
    let (counts, failures, notes, planned, deferred) = match Arc::try_unwrap(results) {
        Ok(m) => m.into_inner().unwrap_or_default(),
        Err(a) => a.lock().map(|g| g.clone()).unwrap_or_default(),
    };
    if !deferred.is_empty() {
        lock(&db)?.write("mailbox states", |w| {
            for (mb, sides) in &deferred {
                for s in Side::BOTH {
                    w.set_side(*mb, s, sides[s.i()])?;
                }
            }
            Ok(())
        })?;
    }
    report.counts.add(&counts);
    report.failures.extend(failures);
    report.notices.extend(notes);
    report.planned.extend(planned);
    report.seconds = t0.elapsed().as_secs_f64();
    report.stopped = o.stopping();
    Ok(report)
}

/// Copies are pending from an interrupted run. A server may still be executing that run's
/// last APPEND from data already in its socket buffer; if the state was written moments
/// ago, wait until [`crate::fault::crash_grace`] (3 s) has passed since, so the copies
/// that land are found (and not appended a second time).
async fn settle_after_crash(state: &std::path::Path) {
    let mut wal = state.as_os_str().to_owned();
    wal.push("-wal");
    let newest = [state.to_path_buf(), PathBuf::from(wal)]
        .iter()
        .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .max();
    let Some(age) = newest.and_then(|t| t.elapsed().ok()) else {
        return;
    };
    let grace = crate::fault::crash_grace();
    if age < grace {
        let wait = grace - age;
        tracing::info!(target: "twinbox::sync", "copies pending from an interrupted run {:.1} s ago: waiting {:.1} s for the servers to finish its last commands", age.as_secs_f64(), wait.as_secs_f64());
        tokio::time::sleep(wait).await;
    }
}

fn describe(c: &Counts) -> String {
    format!(
        "copied {}/{} (to local/remote), flags {}/{}, expunged {}/{}",
        c.copied[0], c.copied[1], c.flags[0], c.flags[1], c.expunged[0], c.expunged[1]
    )
}

struct MailboxResult {
    counts: Counts,
    notes: Vec<String>,
    planned: Vec<String>,
    /// Side states to save once every job is done (a job that changed nothing).
    deferred: Option<(i64, [SideState; 2])>,
}

fn lock(db: &Mutex<StateDb>) -> anyhow::Result<std::sync::MutexGuard<'_, StateDb>> {
    db.lock()
        .map_err(|_| anyhow::anyhow!("internal: state database lock poisoned"))
}

fn describe_plan(name: &str, p: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    for s in Side::BOTH {
        let copies: Vec<_> = p.copies.iter().filter(|c| c.from == s).collect();
        if !copies.is_empty() {
            let bytes: u64 = copies.iter().map(|c| c.fp.size as u64).sum();
            out.push(format!(
                "{name}: copy {} message(s), {bytes} bytes, {} -> {}",
                copies.len(),
                s.name(),
                s.other().name()
            ));
        }
    }
    for (f, _, _) in &p.flags {
        out.push(format!(
            "{name}: {} UID {}: add {} remove {}",
            f.side.name(),
            f.uid,
            fmt_flags(&f.add),
            fmt_flags(&f.remove)
        ));
    }
    for s in Side::BOTH {
        if !p.expunges[s.i()].is_empty() {
            let uids: Vec<u32> = p.expunges[s.i()].iter().map(|(u, _)| *u).collect();
            out.push(format!(
                "{name}: expunge {} message(s) on the {} side: UIDs {}",
                uids.len(),
                s.name(),
                crate::imap::types::uid_set(&uids)
            ));
        }
    }
    out
}

async fn sync_mailbox(
    stores: &mut [Box<dyn Store>; 2],
    db: &Mutex<StateDb>,
    job: &mut Job,
    o: &SyncOptions,
    account: &str,
) -> anyhow::Result<MailboxResult> {
    let mut res = MailboxResult {
        counts: Counts::default(),
        notes: Vec::new(),
        planned: Vec::new(),
        deferred: None,
    };
    let (row, records) = {
        let mut d = lock(db)?;
        let row = if o.dry_run {
            d.mailboxes()?
                .into_iter()
                .find(|m| m.name == job.name)
                .unwrap_or(crate::state::MailboxRow {
                    id: -1,
                    name: job.name.clone(),
                    sides: Default::default(),
                })
        } else {
            d.ensure_mailbox(&job.name)?
        };
        let records = if row.id >= 0 {
            d.records(row.id)?
        } else {
            Vec::new()
        };
        (row, records)
    };
    let known: [Vec<u32>; 2] = [0, 1].map(|s| records.iter().filter_map(|r| r.uid[s]).collect());
    let ro = o.restrictions.read_only;
    let read_only = [o.dry_run || ro[0], o.dry_run || ro[1]];
    // The move step's scans are moved, not copied: at 10,000 new messages a scan is a few MB.
    let super::reuse::Opened {
        scans,
        mut unselected,
    } = super::reuse::open_pair(
        stores,
        job.prescan.take(),
        &job.native,
        &row.sides,
        &known,
        o.mode,
        read_only,
    )
    .await?;
    for s in Side::BOTH {
        if scans[s.i()].changes.uidvalidity_changed {
            let msg = format!(
                "{}: UIDVALIDITY changed on the {} side ({} -> {}): re-matching its messages by Message-ID/size/date instead of copying them again",
                job.name,
                s.name(),
                row.sides[s.i()].uidvalidity,
                scans[s.i()].status.uidvalidity
            );
            tracing::warn!(target: "twinbox::sync", "{msg}");
            res.notes.push(msg);
        }
    }
    let mut p = plan(
        &records,
        &[scans[0].changes.clone(), scans[1].changes.clone()],
        &o.policy,
    );
    let restricted = o.restrictions.apply(&mut p, &records);
    res.notes.extend(
        restricted
            .notes
            .iter()
            .map(|n| format!("{}: {n}", job.name)),
    );
    for n in &p.notes {
        tracing::info!(target: "twinbox::sync", "{}: {n}", job.name);
    }
    if o.dry_run {
        res.planned = describe_plan(&job.name, &p);
        return Ok(res);
    }
    super::reuse::select_for(stores, &scans, &mut unselected, &p, &job.native, read_only).await?;
    let mb = row.id;
    o.emit(|| SyncEvent::MailboxPlanned {
        account: account.to_string(),
        mailbox: job.name.clone(),
        messages: p.copies.len() as u64,
        bytes: p.copies.iter().map(|c| c.fp.size as u64).sum(),
    });
    // 1. Record changes that need no server action (matches, pairs, forgotten records).
    if !p.records.is_empty() || scans.iter().any(|s| s.changes.uidvalidity_changed) {
        lock(db)?.write("records", |w| {
            for s in Side::BOTH {
                if scans[s.i()].changes.uidvalidity_changed {
                    w.void_side(mb, s)?;
                }
            }
            for c in &p.records {
                w.apply(mb, c)?;
            }
            Ok(())
        })?;
    }
    let mut ours: [OwnChanges; 2] = Default::default();
    // Pending copies an earlier run already sent (its intent is on record, the copy was
    // not found): that run may have been killed with its APPEND fully sent, which the
    // server can still store after we looked.
    let retried: HashMap<i64, (Fingerprint, u32)> = records
        .iter()
        .filter_map(|r| Some((r.id, (r.fp, r.pending_since?))))
        .collect();
    // 2. Copies, in batches: intent recorded, bodies read, appended, UIDs recorded.
    for from in Side::BOTH {
        let to = from.other();
        let copies: Vec<_> = p.copies.iter().filter(|c| c.from == from).collect();
        let mut again: Vec<(Fingerprint, u32)> = Vec::new();
        let mut start = 0;
        while start < copies.len() {
            if o.stopping() {
                // Stop between batches: what was copied is recorded; the side states stay
                // as they were, so the next run opens this mailbox again.
                res.notes
                    .push(format!("{}: stopped before the sync finished", job.name));
                return Ok(res);
            }
            let mut end = start;
            let mut bytes = 0u64;
            while end < copies.len()
                && end - start < o.batch_messages
                && (end == start || bytes + copies[end].fp.size as u64 <= o.batch_bytes)
            {
                bytes += copies[end].fp.size as u64;
                end += 1;
            }
            let batch = &copies[start..end];
            start = end;
            let since = scans[to.i()].status.uidnext.max(1);
            let ids: Vec<i64> = lock(db)?.write("pending copies", |w| {
                batch
                    .iter()
                    .map(|c| w.pending_copy(mb, from, c.uid, &c.flags, &c.fp, c.record, since))
                    .collect()
            })?;
            let uids: Vec<u32> = batch.iter().map(|c| c.uid).collect();
            let mut bodies: HashMap<u32, Body> = HashMap::new();
            stores[from.i()]
                .fetch(&uids, &mut |b| {
                    bodies.insert(b.uid, b);
                    Ok(())
                })
                .await
                .with_context(|| format!("reading messages from the {} side", from.name()))?;
            let mut uploads = Vec::new();
            let mut upload_ids = Vec::new();
            let mut uploaded = Vec::new();
            for (c, id) in batch.iter().zip(&ids) {
                // A message gone meanwhile stays pending; the next run forgets it.
                if let Some(b) = bodies.get(&c.uid) {
                    uploaded.push(*c);
                    uploads.push(Upload {
                        data: b.data.as_ref(),
                        flags: &c.flags,
                        internaldate: b.internaldate,
                        fp: c.fp,
                    });
                    upload_ids.push((*id, c.flags.clone()));
                }
            }
            if uploads.is_empty() {
                continue;
            }
            crate::fault::step("append");
            let new = stores[to.i()]
                .append(&uploads)
                .await
                .with_context(|| format!("storing messages on the {} side", to.name()))?;
            crate::fault::step("appended");
            let bytes: u64 = uploads.iter().map(|u| u.data.len()).sum();
            res.counts.copied[to.i()] += uploads.len() as u64;
            res.counts.bytes[to.i()] += bytes;
            o.emit(|| SyncEvent::Copied {
                account: account.to_string(),
                mailbox: job.name.clone(),
                to: to.name(),
                messages: uploads.len() as u64,
                bytes,
            });
            lock(db)?.write("copied", |w| {
                for ((id, _), uid) in upload_ids.iter().zip(&new) {
                    if let Some(uid) = uid {
                        w.copied(*id, to, *uid)?;
                    }
                }
                Ok(())
            })?;
            for (((_, flags), uid), c) in upload_ids.into_iter().zip(new).zip(&uploaded) {
                match uid {
                    Some(u) => {
                        ours[to.i()].appended.push((u, flags));
                        if let Some(r) = c.record.and_then(|id| retried.get(&id)) {
                            again.push(*r);
                        }
                    }
                    None => ours[to.i()].unknown_appends += 1,
                }
            }
        }
        if !again.is_empty() {
            let late = super::late::remove_late_copies(
                stores[to.i()].as_mut(),
                &again,
                &scans[to.i()],
                &records,
                to,
                &ours[to.i()],
            )
            .await?;
            if !late.is_empty() {
                res.notes.push(format!(
                    "{}: {} copy(ies) an interrupted run had sent reached the {} side after this run looked; removed as duplicates",
                    job.name,
                    late.len(),
                    to.name()
                ));
                res.counts.expunged[to.i()] += late.len() as u64;
                ours[to.i()].expunged.extend(late);
            }
        }
    }
    // 3. Flags, then the base flags of records whose every change went through.
    let mut failed_keys: HashSet<[u32; 2]> = restricted.held_flags;
    let mut done: HashMap<[u32; 2], Flags> = HashMap::new();
    for s in Side::BOTH {
        let acts: Vec<&(FlagAction, [u32; 2], Flags)> =
            p.flags.iter().filter(|(f, _, _)| f.side == s).collect();
        if acts.is_empty() {
            continue;
        }
        let actions: Vec<FlagAction> = acts.iter().map(|(f, _, _)| f.clone()).collect();
        let since = scans[s.i()].status.highestmodseq;
        crate::fault::step("store flags");
        let failed: HashSet<u32> = stores[s.i()]
            .set_flags(&actions, (since != 0).then_some(since))
            .await
            .with_context(|| format!("changing flags on the {} side", s.name()))?
            .into_iter()
            .collect();
        crate::fault::step("stored flags");
        for (f, key, merged) in acts {
            if failed.contains(&f.uid) {
                failed_keys.insert(*key);
                res.notes.push(format!(
                    "{}: {} UID {} changed meanwhile; its flags sync on the next run",
                    job.name,
                    s.name(),
                    f.uid
                ));
            } else {
                res.counts.flags[s.i()] += 1;
                ours[s.i()].flagged.push((f.uid, merged.clone()));
                done.insert(*key, merged.clone());
            }
        }
    }
    done.retain(|k, _| !failed_keys.contains(k));
    if !done.is_empty() {
        lock(db)?.write("flags", |w| {
            for (k, f) in &done {
                w.set_flags(mb, *k, f)?;
            }
            Ok(())
        })?;
    }
    // 4. Expunges, then the records.
    for s in Side::BOTH {
        let ex = &p.expunges[s.i()];
        if ex.is_empty() {
            continue;
        }
        let uids: Vec<u32> = ex.iter().map(|(u, _)| *u).collect();
        crate::fault::step("expunge");
        stores[s.i()]
            .expunge(&uids)
            .await
            .with_context(|| format!("expunging on the {} side", s.name()))?;
        crate::fault::step("expunged on the server");
        res.counts.expunged[s.i()] += uids.len() as u64;
        ours[s.i()].expunged.extend(uids);
        let ids: Vec<i64> = ex.iter().map(|(_, id)| *id).collect();
        lock(db)?.write("expunged", |w| w.delete(&ids))?;
    }
    // 5. What each side looks like now, if nothing but our changes happened.
    if ours.iter().all(OwnChanges::is_empty) {
        // Nothing changed by us: the scans' states, written with other jobs' in one go.
        res.deferred = Some((mb, [scans[0].status, scans[1].status]));
        res.notes
            .extend(p.notes.iter().map(|n| format!("{}: {n}", job.name)));
        return Ok(res);
    }
    let (n0, n1) = {
        let [a, b] = &mut *stores;
        tokio::join!(
            a.settle(&job.native[0], &scans[0].status, &ours[0]),
            b.settle(&job.native[1], &scans[1].status, &ours[1])
        )
    };
    let now = [n0?, n1?];
    lock(db)?.write("mailbox state", |w| {
        for s in Side::BOTH {
            w.set_side(mb, s, now[s.i()])?;
        }
        Ok(())
    })?;
    res.notes
        .extend(p.notes.iter().map(|n| format!("{}: {n}", job.name)));
    Ok(res)
}
