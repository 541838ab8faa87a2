//! Run modes: one shot, and the daemon (`autorefresh`).
//!
//! Each account runs its own loop: sync, then wait for the next reason to sync: the
//! `autorefresh` delay, a push from the server (NOTIFY or IDLE, see [`watch`]), SIGUSR1, or
//! a resume from suspend (a jump of the wall clock past the monotonic one). Every
//! `quick`-th refresh is full, the others quick. A sync that fails to connect is retried
//! with exponential backoff (never later than the next refresh). Signals are handled as
//! offlineimap does (see [`signals`]). Without `autorefresh` (or with `-o`) an account is
//! synced once. One lock per account is held for the whole run: a second instance says
//! which process holds it and exits with status 2.
//!
//! Push reports the sync's own changes on the remote side too, which costs one more
//! (no-op) sync of those mailboxes: cheaper than missing a change made during a sync.
//! With `holdconnectionopen`, the sync connections stay open between syncs (NOOP every
//! `keepalive`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use crate::cli::run::{self as runner, RunOptions, EXIT_ERROR, EXIT_OK, EXIT_PARTIAL};
use crate::config::{Config, QuickSync, RepositoryKind};
use crate::store::ScanMode;
use crate::sync::{AccountSpec, ConnectionPool, StoreSpec, SyncEvent, SyncObserver};
use crate::ui::{SyncStart, Ui, UiKind};

pub mod signals;
pub mod watch;

use signals::Control;
use watch::{WatchEvent, WatchSpec, Watcher};

/// What the command line asks of the run, beyond [`RunOptions`].
#[derive(Debug, Clone, Default)]
pub struct ModeOptions {
    /// `-o`: sync once, ignoring `autorefresh`.
    pub once: bool,
    /// `-u`.
    pub ui: Option<String>,
    /// `-l`.
    pub logfile: Option<String>,
    /// `-d`.
    pub debug: Option<String>,
}

/// First wait before retrying a sync that could not connect.
const RETRY: Duration = Duration::from_secs(5);
/// How often the wall clock is compared with the monotonic one while waiting.
const CLOCK_TICK: Duration = Duration::from_secs(5);
/// A wall-clock jump beyond the monotonic time larger than this means a suspend.
const SUSPEND_JUMP: Duration = Duration::from_secs(30);
/// How long to gather push events before syncing.
const PUSH_SETTLE: Duration = Duration::from_millis(300);
/// Longest IDLE before it is renewed (servers end IDLE after 30 minutes).
const MAX_IDLE: Duration = Duration::from_secs(29 * 60);
/// Default IDLE renewal without `keepalive`.
const DEFAULT_IDLE: Duration = Duration::from_secs(10 * 60);

/// Runs the sync command line (config, UI, logging, runtime, accounts); returns the exit
/// status: 0 all synced, 1 some mailboxes failed, 2 configuration, connection or lock error,
/// 130 after a second SIGINT.
pub fn main(opts: RunOptions, mode: ModeOptions) -> i32 {
    let cfg = match runner::load_config(&opts) {
        Ok(c) => c,
        Err(e) => {
            // A program asking for machineui gets even this error as JSON.
            match mode.ui.as_deref().map(UiKind::parse) {
                Some(Ok(UiKind::Machine)) => UiKind::Machine.build().error(None, &format!("{e:#}")),
                _ => eprintln!("twinbox: {e:#}"),
            }
            return EXIT_ERROR;
        }
    };
    let kind = match UiKind::choose(mode.ui.as_deref(), &cfg.general.ui) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("twinbox: {e:#}");
            return EXIT_ERROR;
        }
    };
    let base = match (kind, &mode.logfile) {
        (_, Some(_)) | (UiKind::Basic, None) => "warn,twinbox=info",
        (UiKind::Machine, None) => "warn",
        (UiKind::Quiet | UiKind::Tty, None) => "error",
    };
    if let Err(e) =
        crate::cli::logging::init_with(mode.debug.as_deref(), mode.logfile.as_deref(), base)
    {
        eprintln!("twinbox: {e:#}");
        return EXIT_ERROR;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("twinbox: cannot start the runtime: {e}");
            return EXIT_ERROR;
        }
    };
    let ui = kind.build();
    let code = rt.block_on(run(cfg, opts, mode, ui.clone()));
    ui.finish();
    // Do not wait for watcher tasks blocked in reads.
    rt.shutdown_timeout(Duration::from_secs(1));
    code
}

struct Ctx {
    ui: Arc<dyn Ui>,
    /// Each account's pre/postsynchook.
    hooks: std::collections::HashMap<String, crate::cli::hooks::Hooks>,
    /// For `[mbnames]`, rewritten after each sync.
    cfg: Config,
    control: Control,
    sem: Arc<tokio::sync::Semaphore>,
    once: bool,
    quick: bool,
    folders: Option<Vec<String>>,
}

/// Runs every selected account in its mode; returns the exit status.
pub async fn run(cfg: Config, opts: RunOptions, mode: ModeOptions, ui: Arc<dyn Ui>) -> i32 {
    let names: Vec<String> = match &opts.accounts {
        Some(a) => a.clone(),
        None => cfg.general.accounts.clone(),
    };
    let mut accounts = Vec::new();
    for name in &names {
        let Some(account) = cfg.account(name) else {
            ui.error(
                None,
                &format!("no account named {name:?} in the configuration"),
            );
            return EXIT_ERROR;
        };
        match runner::account_spec(&cfg, account, &opts) {
            Ok(s) => accounts.push((account.clone(), s)),
            Err(e) => {
                ui.error(Some(name), &format!("{e:#}"));
                return EXIT_ERROR;
            }
        }
    }
    // Every lock first: a second instance stops before touching anything.
    let mut locks = Vec::new();
    if !opts.dry_run {
        for (a, _) in &accounts {
            match runner::lock_account(&cfg.general.metadata, &a.name) {
                Ok(l) => locks.push(l),
                Err(e) => {
                    ui.error(Some(&a.name), &format!("{e:#}"));
                    return EXIT_ERROR;
                }
            }
        }
    }
    let control = Control::new();
    if let Err(e) = signals::install(control.clone(), ui.clone()) {
        ui.error(None, &format!("cannot install signal handlers: {e}"));
        return EXIT_ERROR;
    }
    let parallel = if opts.single {
        1
    } else {
        cfg.general.maxsyncaccounts.max(1)
    };
    let ctx = Arc::new(Ctx {
        ui,
        hooks: crate::cli::hooks::Hooks::all(&cfg),
        cfg: cfg.clone(),
        control,
        sem: Arc::new(tokio::sync::Semaphore::new(parallel)),
        once: mode.once || opts.dry_run,
        quick: opts.quick,
        folders: opts.folders.clone(),
    });
    let mut tasks = Vec::new();
    for (account, mut spec) in accounts {
        let phase = Arc::new(Phase {
            ui: ctx.ui.clone(),
            started: AtomicBool::new(false),
        });
        let observer: Arc<dyn SyncObserver> = phase.clone();
        spec.options.observer = Some(observer);
        spec.options.stop = Some(ctx.control.stop.clone());
        let refresh = if ctx.once { None } else { account.autorefresh };
        let watch = refresh.and_then(|_| watch_spec(&cfg, &account.remote_repository, &spec));
        let keepalive = refresh.and_then(|_| {
            let (hold, keepalive) = hold_connections(&cfg, &account);
            spec.options.pool = hold.then(|| Arc::new(ConnectionPool::new()));
            keepalive
        });
        tasks.push(tokio::spawn(account_loop(
            ctx.clone(),
            phase,
            spec,
            refresh,
            account.quick,
            watch,
            keepalive,
        )));
    }
    let mut status = EXIT_OK;
    for t in tasks {
        let s = t.await.unwrap_or(EXIT_ERROR);
        status = worse(status, s);
    }
    drop(locks);
    status
}

fn worse(a: i32, b: i32) -> i32 {
    let rank = |s: i32| match s {
        EXIT_OK => 0,
        EXIT_PARTIAL => 1,
        _ => 2,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// Whether either repository holds its connections open between syncs, and the shortest
/// `keepalive` of those that do.
fn hold_connections(cfg: &Config, account: &crate::config::Account) -> (bool, Option<Duration>) {
    let mut hold = false;
    let mut keepalive: Option<Duration> = None;
    for name in [&account.local_repository, &account.remote_repository] {
        if let Some(RepositoryKind::Imap(r)) = cfg.repository(name).map(|r| &r.kind) {
            if r.holdconnectionopen {
                hold = true;
                if let Some(k) = r.keepalive.filter(|k| !k.is_zero()) {
                    keepalive = Some(keepalive.map_or(k, |x| x.min(k)));
                }
            }
        }
    }
    (hold, keepalive)
}

fn watch_spec(cfg: &Config, remote: &str, spec: &AccountSpec) -> Option<WatchSpec> {
    let repo = cfg.repository(remote)?;
    let RepositoryKind::Imap(r) = &repo.kind else {
        return None;
    };
    if r.idlefolders.is_empty() {
        return None;
    }
    let StoreSpec::Imap(o) = &spec.sides[1].store else {
        return None;
    };
    let mut connect = (**o).clone();
    connect.label = format!("{}/push", spec.name);
    Some(WatchSpec {
        account: spec.name.clone(),
        connect,
        folders: r.idlefolders.clone(),
        renew: r.keepalive.unwrap_or(DEFAULT_IDLE).min(MAX_IDLE),
        use_notify: true,
    })
}

/// Which scan the `n`-th refresh sync uses (`quick`: N quick syncs between full ones).
pub fn scan_mode(n: u64, quick: QuickSync, cli_quick: bool) -> ScanMode {
    match quick {
        _ if cli_quick => ScanMode::Quick,
        QuickSync::Never => ScanMode::Full,
        QuickSync::Always => ScanMode::Quick,
        QuickSync::Between(k) if n.is_multiple_of(u64::from(k) + 1) => ScanMode::Full,
        QuickSync::Between(_) => ScanMode::Quick,
    }
}

/// Why an account wakes up.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Wake {
    Refresh,
    Signal,
    Push(Option<Vec<String>>),
    Resume,
    Stop,
}

/// Passes the engine's events to the UI, noting when a sync got past connecting and
/// listing (before that, nothing is written and the sync may simply be abandoned).
#[derive(Debug)]
struct Phase {
    ui: Arc<dyn Ui>,
    started: AtomicBool,
}

impl SyncObserver for Phase {
    fn event(&self, e: &SyncEvent) {
        if matches!(e, SyncEvent::AccountStart { .. }) {
            self.started.store(true, Ordering::SeqCst);
        }
        self.ui.event(e);
    }
}

/// Runs a sync; a stop request while it is still connecting or listing (a server that
/// does not answer) abandons it at once instead of waiting for the socket timeout.
/// `None`: abandoned.
async fn sync_or_stop(
    ctx: &Ctx,
    phase: &Phase,
    spec: &AccountSpec,
) -> Option<anyhow::Result<crate::sync::AccountReport>> {
    phase.started.store(false, Ordering::SeqCst);
    let mut kick = ctx.control.kick.subscribe();
    kick.mark_changed();
    let sync = crate::cli::hooks::sync_with_hooks(spec, ctx.hooks.get(&spec.name));
    tokio::pin!(sync);
    loop {
        tokio::select! {
            r = &mut sync => return Some(r),
            c = kick.changed() => {
                if c.is_err() {
                    return Some(sync.await);
                }
                if ctx.control.stop.is_stopped() && !phase.started.load(Ordering::SeqCst) {
                    return None;
                }
            }
        }
    }
}

async fn account_loop(
    ctx: Arc<Ctx>,
    phase: Arc<Phase>,
    mut spec: AccountSpec,
    refresh: Option<Duration>,
    quick: QuickSync,
    watch: Option<WatchSpec>,
    keepalive: Option<Duration>,
) -> i32 {
    let name = spec.name.clone();
    let ui = ctx.ui.clone();
    let (mut rx, mut push_open, mut watcher) = start_watch(watch.as_ref());
    let mut kick = ctx.control.kick.subscribe();
    let mut status = EXIT_OK;
    let mut refreshes: u64 = 0;
    let mut retry = RETRY;
    let mut reason = "start";
    let mut folders: Option<Vec<String>> = ctx.folders.clone();
    let mut mode = scan_mode(0, quick, ctx.quick);
    // When the next refresh is due: set by syncs of every mailbox only, so that a stream
    // of pushes (one mailbox each) never postpones the refresh of the others.
    let mut next_refresh: Option<tokio::time::Instant> = None;
    loop {
        if ctx.control.stop.is_stopped() {
            break;
        }
        let targeted = folders != ctx.folders;
        spec.options.mode = mode;
        spec.options.folders = folders.clone();
        ui.sync_start(&SyncStart {
            account: &name,
            quick: mode == ScanMode::Quick,
            folders: folders.as_deref(),
            reason,
        });
        let failed_to_connect = {
            let _permit = ctx.sem.acquire().await;
            let res = sync_or_stop(&ctx, &phase, &spec).await;
            if res.is_some() && !spec.options.dry_run {
                // offlineimap's [mbnames]: the folder list, rewritten after every sync.
                if let Err(e) = crate::cli::mbnames::write(&ctx.cfg) {
                    ui.error(Some(&name), &format!("{e:#}"));
                }
            }
            match res {
                None => {
                    ui.info(Some(&name), "stopped while connecting");
                    break;
                }
                Some(Ok(report)) => {
                    tracing::info!(target: "twinbox::sync", "{}", report.summary());
                    ui.account_done(&report);
                    status = if report.failures.is_empty() {
                        EXIT_OK
                    } else {
                        EXIT_PARTIAL
                    };
                    retry = RETRY;
                    false
                }
                Some(Err(e)) => {
                    tracing::error!(target: "twinbox::sync", "{name}: {e:#}");
                    ui.error(Some(&name), &format!("{e:#}"));
                    status = EXIT_ERROR;
                    true
                }
            }
        };
        let Some(every) = refresh else { break };
        if ctx.control.leaving() {
            break;
        }
        let delay = if failed_to_connect {
            let d = retry.min(every);
            retry = (retry * 2).min(every);
            ui.info(Some(&name), &format!("retrying in {} s", d.as_secs()));
            d
        } else {
            let now = tokio::time::Instant::now();
            let due = match next_refresh {
                Some(t) if targeted => t,
                _ => now + every,
            };
            next_refresh = Some(due);
            let d = due.saturating_duration_since(now);
            ui.info(
                Some(&name),
                &format!("next sync in {} min", d.as_secs().div_ceil(60)),
            );
            d
        };
        let wake = wait(
            &ctx,
            &name,
            delay,
            &mut kick,
            &mut rx,
            &mut push_open,
            keepalive.map(|k| (k, spec.options.pool.clone())),
        )
        .await;
        folders = ctx.folders.clone();
        match wake {
            Wake::Stop => break,
            Wake::Refresh if failed_to_connect => {
                reason = "retry";
                mode = scan_mode(refreshes, quick, ctx.quick);
            }
            Wake::Refresh => {
                refreshes += 1;
                reason = "refresh";
                mode = scan_mode(refreshes, quick, ctx.quick);
            }
            Wake::Signal => {
                reason = "signal";
                mode = if ctx.quick {
                    ScanMode::Quick
                } else {
                    ScanMode::Full
                };
            }
            Wake::Resume => {
                // The push connection is likely dead after a suspend: start afresh.
                if let Some(w) = watcher.take() {
                    w.stop().await;
                }
                (rx, push_open, watcher) = start_watch(watch.as_ref());
                if let Some(p) = &spec.options.pool {
                    p.discard();
                }
                reason = "resume";
                mode = scan_mode(refreshes, quick, ctx.quick);
            }
            Wake::Push(f) => {
                reason = "push";
                mode = ScanMode::Full;
                if let Some(f) = f {
                    let f: Vec<String> = f
                        .into_iter()
                        .filter(|x| ctx.folders.as_ref().is_none_or(|w| w.contains(x)))
                        .collect();
                    if f.is_empty() {
                        continue;
                    }
                    folders = Some(f);
                }
            }
        }
    }
    if let Some(w) = watcher {
        w.stop().await;
    }
    if let Some(p) = &spec.options.pool {
        p.close_all().await;
    }
    status
}

/// Starts the push watcher, if any: its events, whether it runs, the watcher.
fn start_watch(
    watch: Option<&WatchSpec>,
) -> (mpsc::UnboundedReceiver<WatchEvent>, bool, Option<Watcher>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let w = watch.map(|w| Watcher::start(w.clone(), tx));
    (rx, w.is_some(), w)
}

/// The wall clock; the hidden test hook `TWINBOX_WALL_CLOCK_SHIFT_FILE` names a file whose
/// number of seconds is added to it (tests simulate a suspend by raising it).
fn wall_now() -> SystemTime {
    let now = SystemTime::now();
    let Some(path) = std::env::var_os("TWINBOX_WALL_CLOCK_SHIFT_FILE") else {
        return now;
    };
    let shift = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(0);
    now + Duration::from_secs(shift)
}

/// Whether the wall clock ran ahead of the monotonic clock by more than a suspend's worth
/// (the monotonic clock stands still while the machine sleeps).
pub fn suspended(wall_elapsed: Duration, monotonic_elapsed: Duration) -> bool {
    wall_elapsed > monotonic_elapsed + SUSPEND_JUMP
}

/// Waits for the next reason to sync.
async fn wait(
    ctx: &Ctx,
    account: &str,
    delay: Duration,
    kick: &mut tokio::sync::watch::Receiver<u64>,
    rx: &mut mpsc::UnboundedReceiver<WatchEvent>,
    push_open: &mut bool,
    keepalive: Option<(Duration, Option<Arc<ConnectionPool>>)>,
) -> Wake {
    let (every, pool) = match keepalive {
        Some((k, Some(p))) => (k, Some(p)),
        _ => (Duration::from_secs(3600), None),
    };
    let mut next_keepalive = tokio::time::Instant::now() + every;
    let deadline = tokio::time::Instant::now() + delay;
    let mut wall = wall_now();
    let mut mono = tokio::time::Instant::now();
    kick.mark_unchanged();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return Wake::Refresh,
            r = kick.changed() => {
                if r.is_err() || ctx.control.leaving() {
                    return Wake::Stop;
                }
                return Wake::Signal;
            }
            ev = rx.recv(), if *push_open => match ev {
                Some(WatchEvent::Info(m)) => ctx.ui.info(Some(account), &m),
                Some(WatchEvent::Changed(first)) => {
                    // Gather what else arrives right after (one message, several events).
                    tokio::time::sleep(PUSH_SETTLE).await;
                    let mut all = first.map(|f| vec![f]);
                    while let Ok(ev) = rx.try_recv() {
                        match (ev, &mut all) {
                            (WatchEvent::Changed(Some(f)), Some(v)) if !v.contains(&f) => v.push(f),
                            (WatchEvent::Changed(None), _) => all = None,
                            (WatchEvent::Info(m), _) => ctx.ui.info(Some(account), &m),
                            _ => {}
                        }
                    }
                    let what = match &all {
                        Some(v) => v.join(", "),
                        None => "every mailbox".to_string(),
                    };
                    ctx.ui.info(Some(account), &format!("push: change in {what}"));
                    return Wake::Push(all);
                }
                // The watcher ended (no push available): wait for the rest.
                None => *push_open = false,
            },
            _ = tokio::time::sleep_until(next_keepalive), if pool.is_some() => {
                if let Some(p) = &pool {
                    p.keepalive().await;
                }
                next_keepalive = tokio::time::Instant::now() + every;
            }
            _ = tokio::time::sleep(CLOCK_TICK) => {
                let now = wall_now();
                let wall_gone = now.duration_since(wall).unwrap_or_default();
                let mono_gone = mono.elapsed();
                if suspended(wall_gone, mono_gone) {
                    ctx.ui.info(
                        Some(account),
                        &format!("the clock jumped {} s (suspend?): syncing now", (wall_gone - mono_gone).as_secs()),
                    );
                    return Wake::Resume;
                }
                wall = now;
                mono = tokio::time::Instant::now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_between_full() {
        let modes: Vec<ScanMode> = (0..6)
            .map(|n| scan_mode(n, QuickSync::Between(2), false))
            .collect();
        use ScanMode::{Full, Quick};
        assert_eq!(modes, [Full, Quick, Quick, Full, Quick, Quick]);
        assert_eq!(scan_mode(0, QuickSync::Never, true), Quick);
        assert_eq!(scan_mode(3, QuickSync::Always, false), Quick);
        assert_eq!(scan_mode(3, QuickSync::Never, false), Full);
    }

    #[test]
    fn a_wall_clock_jump_is_a_suspend() {
        let s = Duration::from_secs;
        assert!(!suspended(s(5), s(5)));
        assert!(!suspended(s(20), s(5)));
        assert!(suspended(s(3600), s(5)));
    }

    #[test]
    fn exit_status_keeps_the_worst() {
        assert_eq!(worse(EXIT_OK, EXIT_PARTIAL), EXIT_PARTIAL);
        assert_eq!(worse(EXIT_ERROR, EXIT_PARTIAL), EXIT_ERROR);
        assert_eq!(worse(EXIT_OK, EXIT_OK), EXIT_OK);
    }
}
