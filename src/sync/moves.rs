//! Moves and copies without re-transfer: before the per-mailbox jobs, the changed mailboxes
//! of an account are scanned together; a message that vanished from mailbox A on one side
//! and appeared, with the same fingerprint, in mailbox B of that side is moved from A to B
//! on the other side by the server itself (no body crosses the wire); a new message whose
//! fingerprint matches exactly one message the other side holds elsewhere is copied there.
//!
//! Crash safety rests on the pending-copy records of the state: the intents (a record in B
//! with the source UID and the target's UIDNEXT) of all the moves are written, in one
//! transaction, before the first server command, and resolved, in one, after the last. A
//! run killed in between finds each moved message among its target's new UIDs by
//! fingerprint (the planner's pending-copy match) and the source record gone on both sides,
//! so each message ends up exactly once; a move not yet made when the run was killed is
//! then done by the jobs as an ordinary copy and expunge (correct, but transferred).
//!
//! Only unambiguous matches are replayed: the identity (the Message-ID hash, or without one
//! size and INTERNALDATE, then confirmed by equal header blocks) must be unique among the
//! side's vanished, new and (for copies) recorded messages; everything else is left to the
//! ordinary per-mailbox transfer. A mailbox deleted on one side since the last sync is a
//! source of moves too (its messages count as vanished there). The scans taken here are
//! handed to the jobs ([`super::reuse`]).

use std::collections::HashMap;
use std::sync::Mutex;

use super::engine::{unchanged, Counts, SyncOptions};
use super::plan::{Fingerprint, NewMessage, Record, Side};
use super::progress::SyncEvent;
use crate::state::{SideState, StateDb};
use crate::store::{Scan, Store, TransferMode};

/// What the move step did.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Moves and copies made.
    pub counts: Counts,
    /// Notes for the report.
    pub notes: Vec<String>,
    /// Dry run: the moves and copies that would be made.
    pub planned: Vec<String>,
    /// The scans taken of the changed mailboxes, by neutral name, for their jobs to reuse.
    pub prescans: HashMap<String, Prescan>,
}

/// What the move step read of one changed mailbox pair, handed to its job so that a side the
/// move step left alone is not scanned a second time.
#[derive(Debug, Clone)]
pub struct Prescan {
    /// Each side's scan, since the saved state, before the move step.
    pub scans: [Scan; 2],
    /// The sides the move step changed (moved or copied messages into or out of): their
    /// scans are stale and the job scans them again.
    pub touched: [bool; 2],
}

/// A changed mailbox pair for the move step: neutral name, native names, and each side's
/// status from the listing (a side whose status shows it unchanged is not opened).
#[derive(Debug, Clone)]
pub struct Changed {
    /// Neutral name.
    pub name: String,
    /// Each side's own name.
    pub native: [String; 2],
    /// Each side's listed status, when the listing gave one.
    pub status: [Option<SideState>; 2],
    /// The side this mailbox was deleted on since the last sync (it is kept on the other):
    /// its recorded messages there count as vanished, so the ones moved elsewhere before
    /// the deletion are moved there on the other side too, not copied again.
    pub deleted: Option<Side>,
}

/// One mailbox pair as the move step sees it.
struct Pair {
    name: String,
    native: [String; 2],
    row: Option<i64>,
    records: Vec<Record>,
    scans: Option<[Scan; 2]>,
    touched: [bool; 2],
    /// Deleted on one side: only a source of moves, never a target.
    deleted: bool,
}

/// A planned server-side transfer of one message on side `on`.
#[derive(Debug, Clone)]
struct Transfer {
    mode: TransferMode,
    /// Source pair index and record index there.
    source: (usize, usize),
    /// Target pair index and the new message there (on the other side).
    target: (usize, NewMessage),
    /// Matched without Message-ID: to be confirmed by comparing header blocks.
    verify: bool,
}

fn lock(db: &Mutex<StateDb>) -> anyhow::Result<std::sync::MutexGuard<'_, StateDb>> {
    db.lock()
        .map_err(|_| anyhow::anyhow!("internal: state database lock poisoned"))
}

/// Scans `jobs` (the changed mailbox pairs, neutral name and native names) read-only,
/// matches moves and copies across them (`all`: every paired mailbox, for copy sources) and
/// replays them server-side on the side that has not made them yet.
pub async fn replay(
    stores: &mut [Box<dyn Store>; 2],
    db: &Mutex<StateDb>,
    jobs: &[Changed],
    all: &HashMap<String, [String; 2]>,
    o: &SyncOptions,
    account: &str,
) -> anyhow::Result<Replayed> {
    let mut out = Replayed::default();
    if !stores[0].can_transfer() && !stores[1].can_transfer() {
        return Ok(out);
    }
    // 1. The state of every pair.
    let (rows, mut pairs) = {
        let d = lock(db)?;
        let rows: HashMap<String, crate::state::MailboxRow> = d
            .mailboxes()?
            .into_iter()
            .map(|m| (m.name.clone(), m))
            .collect();
        let mut pairs = Vec::new();
        for j in jobs {
            let row = rows.get(&j.name);
            pairs.push(Pair {
                name: j.name.clone(),
                native: j.native.clone(),
                row: row.map(|r| r.id),
                records: match row {
                    Some(r) => d.records(r.id)?,
                    None => Vec::new(),
                },
                scans: None,
                touched: [false; 2],
                deleted: j.deleted.is_some(),
            });
        }
        for (name, native) in all {
            if jobs.iter().any(|j| &j.name == name) {
                continue;
            }
            if let Some(r) = rows.get(name) {
                pairs.push(Pair {
                    name: name.clone(),
                    native: native.clone(),
                    row: Some(r.id),
                    records: d.records(r.id)?,
                    scans: None,
                    touched: [false; 2],
                    deleted: false,
                });
            }
        }
        (rows, pairs)
    };
    // 2. Scan the changed pairs, read-only; a side the listing shows unchanged is not opened.
    let tracks = [stores[0].tracks_changes(), stores[1].tracks_changes()];
    for (p, j) in pairs.iter_mut().zip(jobs) {
        let saved: [SideState; 2] = rows.get(&p.name).map(|r| r.sides).unwrap_or_default();
        let known: [Vec<u32>; 2] =
            [0, 1].map(|s| p.records.iter().filter_map(|r| r.uid[s]).collect());
        let same: [bool; 2] = [0, 1].map(|s| {
            rows.contains_key(&p.name)
                && tracks[s]
                && unchanged(&saved[s], &j.status[s], tracks[s], o.mode)
        });
        if let Some(x) = j.deleted {
            let y = x.other();
            let scan = stores[y.i()]
                .open(&p.native[y.i()], &saved[y.i()], &known[y.i()], o.mode, true)
                .await;
            match scan {
                Ok(sy) if !sy.changes.uidvalidity_changed => {
                    let mut sx = Scan {
                        status: saved[x.i()],
                        ..Default::default()
                    };
                    sx.changes.vanished = known[x.i()].iter().copied().collect();
                    let mut sc = [Scan::default(), Scan::default()];
                    sc[x.i()] = sx;
                    sc[y.i()] = sy;
                    p.scans = Some(sc);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(target: "twinbox::sync", "{}: not scanned for moves: {e:#}", p.name)
                }
            }
            continue;
        }
        let (s0, s1) = {
            let [a, b] = &mut *stores;
            tokio::join!(
                open_unless(
                    a.as_mut(),
                    same[0].then_some(j.status[0]).flatten(),
                    &p.native[0],
                    &saved[0],
                    &known[0],
                    o
                ),
                open_unless(
                    b.as_mut(),
                    same[1].then_some(j.status[1]).flatten(),
                    &p.native[1],
                    &saved[1],
                    &known[1],
                    o
                )
            )
        };
        let scans: Vec<Scan> = match (s0, s1) {
            (Ok(a), Ok(b)) => vec![a, b],
            (Err(e), _) | (_, Err(e)) => {
                tracing::debug!(target: "twinbox::sync", "{}: not scanned for moves: {e:#}", p.name);
                Vec::new()
            }
        };
        if let Ok(sc) = <[Scan; 2]>::try_from(scans) {
            if !sc.iter().any(|s| s.changes.uidvalidity_changed) {
                p.scans = Some(sc);
            }
        }
    }
    // 3. Match, per side where the user made the change (`x`); replay on the other (`y`).
    for x in Side::BOTH {
        let y = x.other();
        if !stores[y.i()].can_transfer() || o.restrictions.read_only[y.i()] {
            continue;
        }
        let may_move = o.policy.propagate_expunge
            && o.restrictions.expunge[y.i()]
            && o.restrictions.sync_deletes[x.i()];
        let mut plan = match_side(&pairs, x, may_move);
        if plan.iter().any(|t| t.verify) {
            plan = confirm_by_headers(stores, &pairs, plan, x).await;
        }
        if plan.is_empty() {
            continue;
        }
        if o.dry_run {
            hide_planned(&mut pairs, &plan, x);
            for t in &plan {
                out.planned.push(format!(
                    "{}: {} message UID {} from {} on the {} side{NO_TRANSFER}",
                    pairs[t.target.0].name,
                    if t.mode == TransferMode::Move {
                        "move"
                    } else {
                        "copy"
                    },
                    pairs[t.source.0].records[t.source.1].uid[y.i()].unwrap_or(0),
                    pairs[t.source.0].name,
                    y.name()
                ));
            }
            continue;
        }
        execute(stores, db, &mut pairs, &plan, y, o, account, &mut out).await?;
    }
    for p in pairs.into_iter().take(jobs.len()).filter(|p| !p.deleted) {
        if let Some(scans) = p.scans {
            out.prescans.insert(
                p.name,
                Prescan {
                    scans,
                    touched: p.touched,
                },
            );
        }
    }
    Ok(out)
}

/// Opens a mailbox read-only for the move scan, unless `listed` (its listed status, given when
/// it shows the mailbox unchanged since `saved`): then no changes, as an open would find.
async fn open_unless(
    store: &mut dyn Store,
    listed: Option<SideState>,
    name: &str,
    saved: &SideState,
    known: &[u32],
    o: &SyncOptions,
) -> anyhow::Result<Scan> {
    if let Some(status) = listed {
        return Ok(Scan {
            status,
            ..Default::default()
        });
    }
    store.open(name, saved, known, o.mode, true).await
}

/// Dry run: takes the messages of planned moves and copies out of the scans the jobs reuse,
/// so that they are listed once, as a move or copy, and not also as copies and expunges.
fn hide_planned(pairs: &mut [Pair], plan: &[Transfer], x: Side) {
    for t in plan {
        let (ai, ri) = t.source;
        let (bi, ref m) = t.target;
        if t.mode == TransferMode::Move {
            if let Some(ux) = pairs[ai].records[ri].uid[x.i()] {
                if let Some(sc) = pairs[ai].scans.as_mut() {
                    sc[x.i()].changes.vanished.remove(&ux);
                }
            }
        }
        if let Some(sc) = pairs[bi].scans.as_mut() {
            sc[x.i()].changes.new.retain(|n| n.uid != m.uid);
        }
    }
}

/// Keeps the matches made without Message-ID only where the header block of the new
/// message on side `x` equals that of the source's twin on the other side (the vanished
/// message itself is gone from `x`, its twin is not). A header that cannot be read drops
/// the match: the message is then transferred the ordinary way.
async fn confirm_by_headers(
    stores: &mut [Box<dyn Store>; 2],
    pairs: &[Pair],
    plan: Vec<Transfer>,
    x: Side,
) -> Vec<Transfer> {
    let y = x.other();
    // UIDs to read per (side, pair).
    let mut wanted: HashMap<(Side, usize), Vec<u32>> = HashMap::new();
    for t in plan.iter().filter(|t| t.verify) {
        let (ai, ri) = t.source;
        if let Some(u) = pairs[ai].records[ri].uid[y.i()] {
            wanted.entry((y, ai)).or_default().push(u);
        }
        wanted
            .entry((x, t.target.0))
            .or_default()
            .push(t.target.1.uid);
    }
    let mut hashes: HashMap<(Side, usize, u32), [u8; 32]> = HashMap::new();
    for ((side, pi), uids) in wanted {
        match stores[side.i()]
            .headers(&pairs[pi].native[side.i()], &uids)
            .await
        {
            Ok(h) => {
                for (uid, block) in h {
                    hashes.insert((side, pi, uid), header_hash(&block));
                }
            }
            Err(e) => {
                tracing::debug!(target: "twinbox::sync", "{}: headers not read on the {} side: {e:#}", pairs[pi].name, side.name())
            }
        }
    }
    plan.into_iter()
        .filter(|t| {
            if !t.verify {
                return true;
            }
            let (ai, ri) = t.source;
            let src = pairs[ai].records[ri].uid[y.i()]
                .and_then(|u| hashes.get(&(y, ai, u)));
            let dst = hashes.get(&(x, t.target.0, t.target.1.uid));
            let same = src.is_some() && src == dst;
            if !same {
                tracing::debug!(target: "twinbox::sync", "{}: UID {} matches a message of {} by size and date only, and its header differs: transferred instead", pairs[t.target.0].name, t.target.1.uid, pairs[ai].name);
            }
            same
        })
        .collect()
}

/// SHA-256 of a header block, line endings normalised (CRLF and LF alike).
fn header_hash(block: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for line in block.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        h.update(line);
        h.update(b"\n");
    }
    h.finalize().into()
}

/// Ending of a dry run's line for a planned server-side move or copy.
const NO_TRANSFER: &str = " (no transfer)";

/// `"move"` or `"copy"` when a dry run's planned action is a server-side move or copy.
pub fn planned_transfer_kind(action: &str) -> Option<&'static str> {
    if !action.ends_with(NO_TRANSFER) {
        return None;
    }
    if action.contains(": move message UID ") {
        Some("move")
    } else if action.contains(": copy message UID ") {
        Some("copy")
    } else {
        None
    }
}

/// What move matching groups messages by: the Message-ID hash, or for a message without
/// one its size and INTERNALDATE (such a match must be confirmed by the header block).
type MatchKey = (i64, u32, i64);

fn match_key(fp: &Fingerprint) -> MatchKey {
    if fp.msgid != 0 {
        (fp.msgid, 0, 0)
    } else {
        (0, fp.size, fp.date)
    }
}

/// The unambiguous moves and copies of changes made on side `x`. A match of messages
/// without Message-ID comes back with `verify` set.
fn match_side(pairs: &[Pair], x: Side, may_move: bool) -> Vec<Transfer> {
    let y = x.other();
    // Candidates by identity key.
    let mut vanished: HashMap<MatchKey, Vec<(usize, usize)>> = HashMap::new();
    let mut held: HashMap<MatchKey, Vec<(usize, usize)>> = HashMap::new();
    let mut news: HashMap<MatchKey, Vec<(usize, &NewMessage)>> = HashMap::new();
    // Identities a pair already has a say on (records, new on y): leave those to the planner.
    let mut local_ids: Vec<std::collections::HashSet<MatchKey>> = Vec::new();
    for (pi, p) in pairs.iter().enumerate() {
        let mut ids: std::collections::HashSet<MatchKey> =
            p.records.iter().map(|r| match_key(&r.fp)).collect();
        if let Some(sc) = &p.scans {
            ids.extend(sc[y.i()].changes.new.iter().map(|m| match_key(&m.fp)));
        }
        local_ids.push(ids);
        for (ri, r) in p.records.iter().enumerate() {
            if r.pending_since.is_some() || (r.fp.msgid == 0 && r.fp.size == 0) {
                continue;
            }
            let (Some(ux), Some(uy)) = (r.uid[x.i()], r.uid[y.i()]) else {
                continue;
            };
            let (gone_x, gone_y) = match &p.scans {
                Some(sc) => (
                    sc[x.i()].changes.vanished.contains(&ux),
                    sc[y.i()].changes.vanished.contains(&uy),
                ),
                None => (false, false),
            };
            if gone_y {
                continue;
            }
            held.entry(match_key(&r.fp)).or_default().push((pi, ri));
            if gone_x {
                vanished.entry(match_key(&r.fp)).or_default().push((pi, ri));
            }
        }
        if let Some(sc) = p.scans.as_ref().filter(|_| !p.deleted) {
            let known: std::collections::HashSet<u32> =
                p.records.iter().filter_map(|r| r.uid[x.i()]).collect();
            for m in &sc[x.i()].changes.new {
                if (m.fp.msgid != 0 || m.fp.size != 0) && !known.contains(&m.uid) {
                    news.entry(match_key(&m.fp)).or_default().push((pi, m));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (id, targets) in &news {
        let [(bi, m)] = targets.as_slice() else {
            continue; // the same message new in several places: ambiguous
        };
        // The target pair must know nothing of this message yet.
        if local_ids[*bi].contains(id) {
            continue;
        }
        let src = if may_move {
            match vanished.get(id).map(Vec::as_slice) {
                Some([one]) => Some((TransferMode::Move, *one)),
                Some(_) => continue, // several vanished: ambiguous
                None => None,
            }
        } else {
            None
        };
        let src = match src {
            Some(s) => Some(s),
            None => match held.get(id).map(Vec::as_slice) {
                Some([one]) if !vanished.contains_key(id) => Some((TransferMode::Copy, *one)),
                _ => None,
            },
        };
        let Some((mode, (ai, ri))) = src else {
            continue;
        };
        if ai == *bi || !pairs[ai].records[ri].fp.matches(&m.fp) {
            continue;
        }
        out.push(Transfer {
            mode,
            source: (ai, ri),
            target: (*bi, (*m).clone()),
            verify: id.0 == 0,
        });
    }
    out.sort_by_key(|t| (t.source.0, t.target.0, t.target.1.uid));
    out
}

/// Source pair, target pair, mode: what one server command does.
type GroupKey = (usize, usize, TransferMode);

/// Replays `plan` on side `y`, one server command per (source, target, mode) group. The
/// intents of every group are written in one state transaction before the first command and
/// the results in one after the last (a state write is a disk sync: one per group was the
/// larger part of a move's cost).
#[allow(clippy::too_many_arguments)]
async fn execute(
    stores: &mut [Box<dyn Store>; 2],
    db: &Mutex<StateDb>,
    pairs: &mut [Pair],
    plan: &[Transfer],
    y: Side,
    o: &SyncOptions,
    account: &str,
    out: &mut Replayed,
) -> anyhow::Result<()> {
    let x = y.other();
    let mut groups: Vec<(GroupKey, Vec<&Transfer>)> = Vec::new();
    for t in plan {
        let k = (t.source.0, t.target.0, t.mode);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, v)) => v.push(t),
            None => groups.push((k, vec![t])),
        }
    }
    // Target rows for pairs new to the state.
    for ((_, bi, _), _) in &groups {
        if pairs[*bi].row.is_none() {
            let id = lock(db)?.ensure_mailbox(&pairs[*bi].name)?.id;
            pairs[*bi].row = Some(id);
        }
    }
    // Intents: a pending copy in the target pair, resolved by fingerprint if we die.
    let intents: Vec<Vec<i64>> = {
        let pairs = &*pairs;
        lock(db)?.write("pending moves", |w| {
            groups
                .iter()
                .map(|((ai, bi, _), items)| {
                    let b_row = pairs[*bi].row.unwrap_or(0);
                    let since = pairs[*bi]
                        .scans
                        .as_ref()
                        .map(|s| s[y.i()].status.uidnext)
                        .unwrap_or(0)
                        .max(1);
                    items
                        .iter()
                        .map(|t| {
                            let flags = &pairs[*ai].records[t.source.1].flags;
                            let m = &t.target.1;
                            w.pending_copy(b_row, x, m.uid, flags, &m.fp, None, since)
                        })
                        .collect()
                })
                .collect()
        })?
    };
    // What to record once every command has run: (intent, new UID) and moved-away records.
    let mut landed: Vec<(i64, u32)> = Vec::new();
    let mut gone: Vec<i64> = Vec::new();
    // Intents of groups not attempted (a stop was asked): dropped again.
    let mut dropped: Vec<i64> = Vec::new();
    for (((ai, bi, mode), items), ids) in groups.iter().zip(&intents) {
        let (ai, bi, mode) = (*ai, *bi, *mode);
        if o.stopping() {
            dropped.extend(ids);
            continue;
        }
        // Whatever the outcome, the job must look at these mailboxes again on side y.
        pairs[bi].touched[y.i()] = true;
        if mode == TransferMode::Move {
            pairs[ai].touched[y.i()] = true;
        }
        let uids: Vec<u32> = items
            .iter()
            .map(|t| pairs[ai].records[t.source.1].uid[y.i()].unwrap_or(0))
            .collect();
        crate::fault::step("move");
        let res = stores[y.i()]
            .transfer(
                &pairs[ai].native[y.i()],
                &uids,
                &pairs[bi].native[y.i()],
                mode,
            )
            .await;
        let verb = if mode == TransferMode::Move {
            "move"
        } else {
            "copy"
        };
        let new = match res {
            Ok(n) => n,
            Err(e) => {
                // The pending records make the jobs copy these the ordinary way.
                out.notes.push(format!(
                    "{}: server-side {verb} from {} failed, copying instead: {e:#}",
                    pairs[bi].name, pairs[ai].name
                ));
                continue;
            }
        };
        crate::fault::step("moved");
        landed.extend(
            ids.iter()
                .zip(&new)
                .filter_map(|(id, uid)| uid.map(|u| (*id, u))),
        );
        if mode == TransferMode::Move {
            gone.extend(items.iter().map(|t| pairs[ai].records[t.source.1].id));
        }
        let n = items.len() as u64;
        if mode == TransferMode::Move {
            out.counts.moved[y.i()] += n;
        } else {
            out.counts.server_copied[y.i()] += n;
        }
        o.emit(|| SyncEvent::Transferred {
            account: account.to_string(),
            mailbox: pairs[bi].name.clone(),
            from: pairs[ai].name.clone(),
            on: y.name(),
            moved: mode == TransferMode::Move,
            messages: n,
        });
        tracing::info!(
            target: "twinbox::sync",
            "{account}: {}: {} {n} message(s) from {} on the {} side, server-side",
            pairs[bi].name,
            if mode == TransferMode::Move { "moved" } else { "copied" },
            pairs[ai].name,
            y.name()
        );
    }
    lock(db)?.write("moved", |w| {
        for (id, uid) in &landed {
            w.copied(*id, y, *uid)?;
        }
        w.delete(&gone)?;
        w.delete(&dropped)
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::plan::Flags;

    fn fp(msgid: i64) -> Fingerprint {
        Fingerprint {
            msgid,
            size: 100,
            date: 7,
        }
    }

    fn rec(id: i64, l: u32, r: u32, msgid: i64) -> Record {
        Record {
            id,
            uid: [Some(l), Some(r)],
            flags: Flags::new(),
            fp: fp(msgid),
            pending_since: None,
        }
    }

    fn new(uid: u32, msgid: i64) -> NewMessage {
        NewMessage {
            uid,
            flags: Flags::new(),
            fp: fp(msgid),
        }
    }

    /// Pair `name` with records and, on the remote side, vanished UIDs and new messages.
    fn pair(name: &str, records: Vec<Record>, vanished: &[u32], news: Vec<NewMessage>) -> Pair {
        let mut remote = Scan::default();
        remote.changes.vanished = vanished.iter().copied().collect();
        remote.changes.new = news;
        Pair {
            name: name.into(),
            native: [name.into(), name.into()],
            row: Some(1),
            records,
            scans: Some([Scan::default(), remote]),
            touched: [false; 2],
            deleted: false,
        }
    }

    #[test]
    fn a_unique_move_is_matched_and_ambiguity_is_not_guessed() {
        // Remote: 11 (msgid 1) moved A -> B; 12 and 13 (both msgid 2) moved A -> B;
        // 14 (no Message-ID, unique size and date) moved A -> B; 15 (msgid 5) copied A -> B.
        let a = pair(
            "A",
            vec![
                rec(1, 101, 11, 1),
                rec(2, 102, 12, 2),
                rec(3, 103, 13, 2),
                rec(4, 104, 14, 0),
                rec(5, 105, 15, 5),
            ],
            &[11, 12, 13, 14],
            vec![],
        );
        let b = pair(
            "B",
            vec![],
            &[],
            vec![new(1, 1), new(2, 2), new(3, 2), new(4, 0), new(5, 5)],
        );
        let pairs = [a, b];
        let got = match_side(&pairs, Side::Remote, true);
        let mut got: Vec<(TransferMode, i64, u32, bool)> = got
            .iter()
            .map(|t| {
                let id = pairs[0].records[t.source.1].id;
                (t.mode, id, t.target.1.uid, t.verify)
            })
            .collect();
        got.sort_by_key(|g| g.1);
        // The one without Message-ID is matched by size and date, to be confirmed.
        assert_eq!(
            got,
            vec![
                (TransferMode::Move, 1, 1, false),
                (TransferMode::Move, 4, 4, true),
                (TransferMode::Copy, 5, 5, false)
            ]
        );
        // Without expunges allowed the vanished source is not moved (nor copied).
        let got = match_side(&pairs, Side::Remote, false);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].mode, TransferMode::Copy);
        // Changes on the local side: nothing to match.
        assert!(match_side(&pairs, Side::Local, true).is_empty());
    }

    #[test]
    fn header_hash_ignores_line_endings_only() {
        let crlf = b"Subject: a\r\nFrom: b\r\n\r\n";
        assert_eq!(header_hash(crlf), header_hash(b"Subject: a\nFrom: b\n\n"));
        assert_ne!(
            header_hash(crlf),
            header_hash(b"Subject: b\r\nFrom: b\r\n\r\n")
        );
    }

    #[test]
    fn a_message_the_target_already_knows_is_left_to_the_planner() {
        let a = pair("A", vec![rec(1, 101, 11, 1)], &[11], vec![]);
        // B already holds a record with that Message-ID (a pending copy, say).
        let b = pair("B", vec![rec(2, 201, 21, 1)], &[], vec![new(22, 1)]);
        assert!(match_side(&[a, b], Side::Remote, true).is_empty());
    }
}
