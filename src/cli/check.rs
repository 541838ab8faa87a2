//! `twinbox check`: compares the saved state with both servers, read-only, and reports
//! what the next sync would not set right by itself. Changes nothing anywhere: the state
//! is opened immutable and mailboxes are opened with EXAMINE.
//!
//! Inconsistencies (exit 1): a mapped UID missing without the server reporting it gone, a
//! mapping whose two messages differ, a message the state never saw below the saved
//! UIDNEXT, flags that differ between the sides with neither side reporting a change, a
//! mailbox the state knows missing on a side. Pending work the next sync does (new
//! messages, reported changes, unfinished copies, UIDVALIDITY changes) is only counted.

use std::collections::{HashMap, HashSet};

use argh::FromArgs;

use super::admin::{selected_accounts, Opened};
use super::run::{self, RunOptions, EXIT_ERROR, EXIT_OK, EXIT_PARTIAL};
use crate::config::{Account, Config};
use crate::state::{MailboxRow, SideState, StateDb};
use crate::store::{Scan, ScanMode};
use crate::sync::plan::{fmt_flags, Flags, NewMessage, Side};

/// Verify the state against both servers (read-only) and report inconsistencies.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check")]
pub struct CheckArgs {
    /// list every message concerned, not only counts per mailbox
    #[argh(switch, short = 'v')]
    pub verbose: bool,
}

/// What checking one mailbox found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Findings {
    /// Inconsistencies, one line each.
    pub problems: Vec<String>,
    /// Pending work (not a problem), one line each.
    pub pending: Vec<String>,
}

/// Runs `twinbox check`; exit 0 when consistent, 1 with inconsistencies, 2 on errors.
pub async fn run(opts: RunOptions, a: CheckArgs) -> i32 {
    let cfg = match run::load_config(&opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("twinbox check: {e:#}");
            return EXIT_ERROR;
        }
    };
    let accounts = match selected_accounts(&cfg, &opts) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("twinbox check: {e:#}");
            return EXIT_ERROR;
        }
    };
    let mut status = EXIT_OK;
    for account in accounts {
        match check_account(&cfg, account, &opts, a.verbose).await {
            Ok(0) => println!("{}: consistent", account.name),
            Ok(n) => {
                println!(
                    "{}: {n} inconsistenc{}",
                    account.name,
                    if n == 1 { "y" } else { "ies" }
                );
                status = status.max(EXIT_PARTIAL);
            }
            Err(e) => {
                eprintln!("twinbox check: {}: {e:#}", account.name);
                status = EXIT_ERROR;
            }
        }
    }
    status
}

async fn check_account(
    cfg: &Config,
    account: &Account,
    opts: &RunOptions,
    verbose: bool,
) -> anyhow::Result<usize> {
    let mut opts = opts.clone();
    opts.dry_run = true;
    let path = cfg.general.metadata.join(format!("{}.db", account.name));
    if !path.exists() {
        println!(
            "{}: no state yet (never synced): nothing to check",
            account.name
        );
        return Ok(0);
    }
    let db = StateDb::open_readonly(&path)?;
    let mut o = Opened::open(cfg, account, &opts).await?;
    let res = check_mailboxes(&mut o, &db, account, &opts, verbose).await;
    o.close().await;
    res
}

async fn check_mailboxes(
    o: &mut Opened,
    db: &StateDb,
    account: &Account,
    opts: &RunOptions,
    verbose: bool,
) -> anyhow::Result<usize> {
    let rows = db.mailboxes()?;
    let wanted = |name: &str| {
        opts.folders
            .as_ref()
            .is_none_or(|f| f.iter().any(|x| x == name))
    };
    let r = o.spec.options.restrictions;
    let lenient = r.read_only.contains(&true) || r.sync_deletes.contains(&false);
    let mut total = 0;
    for row in rows.iter().filter(|r| wanted(&r.name)) {
        let mut f = Findings::default();
        let mut scans: [Option<(Scan, Scan)>; 2] = [None, None];
        let records = db.records(row.id)?;
        for s in Side::BOTH {
            let native = o.native(account, s, &row.name)?;
            if o.find(s, &native).is_none() {
                f.problems.push(format!(
                    "missing on the {} side ({native:?}); the state still knows it",
                    s.name()
                ));
                continue;
            }
            let known: Vec<u32> = records.iter().filter_map(|r| r.uid[s.i()]).collect();
            let store = &mut o.stores[s.i()];
            let all = store
                .open(&native, &SideState::default(), &[], ScanMode::Full, true)
                .await?;
            let since = store
                .open(&native, &row.sides[s.i()], &known, ScanMode::Full, true)
                .await?;
            scans[s.i()] = Some((all, since));
        }
        if let [Some(l), Some(r)] = &scans {
            compare(
                row,
                &records,
                [l, r],
                o.spec.options.restrictions.filter,
                lenient,
                &mut f,
            );
        }
        total += f.problems.len();
        report(&account.name, &row.name, &f, verbose);
    }
    // Folders on the servers the state does not know yet (the next sync takes them up).
    let known: HashSet<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let mut fresh = 0;
    for m in &o.lists[1] {
        let n = crate::sync::names::to_neutral(&m.name, m.delimiter);
        if m.selectable && !known.contains(n.as_str()) && account.folders.remote_filter.accepts(&n)
        {
            fresh += 1;
        }
    }
    if fresh > 0 {
        println!(
            "{}: {fresh} remote mailbox(es) not synced yet (the next sync takes them up)",
            account.name
        );
    }
    Ok(total)
}

fn report(account: &str, mailbox: &str, f: &Findings, verbose: bool) {
    let limit = if verbose { usize::MAX } else { 10 };
    for p in f.problems.iter().take(limit) {
        println!("{account}: {mailbox}: INCONSISTENT: {p}");
    }
    if f.problems.len() > limit {
        println!(
            "{account}: {mailbox}: ... and {} more (use check -v)",
            f.problems.len() - limit
        );
    }
    for p in f.pending.iter().take(limit) {
        println!("{account}: {mailbox}: pending: {p}");
    }
}

/// Compares the records of one mailbox with both sides: `scans[side]` is (everything now,
/// what changed since the saved state).
pub fn compare(
    row: &MailboxRow,
    records: &[crate::sync::plan::Record],
    scans: [&(Scan, Scan); 2],
    filter: crate::sync::filter::MessageFilter,
    lenient: bool,
    f: &mut Findings,
) {
    let now: [HashMap<u32, &NewMessage>; 2] =
        [0, 1].map(|s| scans[s].0.changes.new.iter().map(|m| (m.uid, m)).collect());
    let changed = |s: usize, uid: u32| {
        let c = &scans[s].1.changes;
        c.uidvalidity_changed
            || c.flags_unknown
            || c.flags.contains_key(&uid)
            || c.new.iter().any(|m| m.uid == uid)
    };
    let mut mapped: [HashSet<u32>; 2] = Default::default();
    let mut voided = [false; 2];
    for s in Side::BOTH {
        let i = s.i();
        let (all, since) = scans[i];
        if row.sides[i].uidvalidity != 0 && row.sides[i].uidvalidity != all.status.uidvalidity {
            f.pending.push(format!(
                "UIDVALIDITY changed on the {} side ({} -> {}): the next sync re-matches its messages",
                s.name(),
                row.sides[i].uidvalidity,
                all.status.uidvalidity
            ));
            voided[i] = true;
        }
        let fresh = since.changes.new.len();
        if fresh > 0 && !voided[i] {
            f.pending
                .push(format!("{fresh} new message(s) on the {} side", s.name()));
        }
    }
    for r in records {
        for s in Side::BOTH {
            let i = s.i();
            let Some(uid) = r.uid[i] else { continue };
            mapped[i].insert(uid);
            if voided[i] {
                continue;
            }
            match now[i].get(&uid) {
                None if scans[i].1.changes.vanished.contains(&uid) => {
                    f.pending.push(format!("{} UID {uid} expunged (reported)", s.name()))
                }
                None => f.problems.push(format!(
                    "{} UID {uid} is mapped (to {} UID {}) but missing",
                    s.name(),
                    s.other().name(),
                    r.uid[s.other().i()].map_or("none".to_string(), |u| u.to_string())
                )),
                Some(m) if !m.fp.matches(&r.fp) => f.problems.push(format!(
                    "{} UID {uid} is not the message the state maps there (size/date/Message-ID differ)",
                    s.name()
                )),
                Some(_) => {}
            }
        }
        match (r.uid[0], r.uid[1]) {
            (Some(l), Some(rm)) if !voided[0] && !voided[1] => {
                if let (Some(a), Some(b)) = (now[0].get(&l), now[1].get(&rm)) {
                    let (fa, fb): (&Flags, &Flags) = (&a.flags, &b.flags);
                    if fa != fb {
                        let line = format!(
                            "flags differ: local UID {l} {} / remote UID {rm} {}",
                            fmt_flags(fa),
                            fmt_flags(fb)
                        );
                        if changed(0, l) || changed(1, rm) {
                            f.pending.push(line);
                        } else {
                            f.problems
                                .push(format!("{line}, and neither side reports a change"));
                        }
                    }
                }
            }
            (Some(_), Some(_)) => {}
            _ => f
                .pending
                .push("a copy that did not finish (the next sync completes it)".to_string()),
        }
    }
    for s in Side::BOTH {
        let i = s.i();
        if voided[i] {
            continue;
        }
        let saved_next = row.sides[i].uidnext;
        let mut ignored = 0;
        for m in &scans[i].0.changes.new {
            if mapped[i].contains(&m.uid) || m.uid >= saved_next {
                continue;
            }
            if lenient || !filter.allows(&m.fp) {
                ignored += 1;
                continue;
            }
            f.problems.push(format!(
                "{} UID {} is not in the state (below the saved UIDNEXT {saved_next}: the next sync would never copy it)",
                s.name(),
                m.uid
            ));
        }
        if ignored > 0 {
            f.pending.push(format!(
                "{ignored} message(s) on the {} side left alone by maxage/maxsize/readonly/sync_deletes",
                s.name()
            ));
        }
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
