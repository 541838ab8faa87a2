//! Reusing the move step's scans in the per-mailbox jobs, so that each changed mailbox is
//! read once per run.
//!
//! The move step scans every changed pair (read-only) on the first connection pair. A side
//! it then left alone keeps that scan: its job plans from it and selects the mailbox only
//! if the plan acts there, with a plain SELECT that reads no changes
//! ([`Store::reselect`], which also checks UIDVALIDITY). Changes made between the scan and
//! the job are not lost: the job saves that side's state as [`Store::settle`] finds it,
//! which claims only what the scan and this run's own changes explain, so the next run sees
//! the rest. A side the move step changed is scanned again by its job as usual.

use super::plan::{Plan, Side};
use crate::state::SideState;
use crate::store::{Scan, ScanMode, Store};

/// Each side's scan and whether the job must still select the mailbox before acting.
pub(super) struct Opened {
    /// The scans.
    pub scans: [Scan; 2],
    /// Per side: the scan was reused and the mailbox is not selected on this connection.
    pub unselected: [bool; 2],
}

/// Opens both sides of a pair, reusing the move step's scan of a side it did not touch.
#[allow(clippy::too_many_arguments)]
pub(super) async fn open_pair(
    stores: &mut [Box<dyn Store>; 2],
    prescan: Option<super::moves::Prescan>,
    native: &[String; 2],
    saved: &[SideState; 2],
    known: &[Vec<u32>; 2],
    mode: ScanMode,
    read_only: [bool; 2],
) -> anyhow::Result<Opened> {
    let mut prescan = prescan;
    let reuse: [Option<Scan>; 2] = [0, 1].map(|i| match prescan.as_mut() {
        Some(p) if !p.touched[i] && p.scans[i].status.uidnext != 0 && stores[i].can_reselect() => {
            Some(std::mem::take(&mut p.scans[i]))
        }
        _ => None,
    });
    let unselected = reuse.each_ref().map(Option::is_some);
    let [reuse0, reuse1] = reuse;
    let (s0, s1) = {
        let [a, b] = &mut *stores;
        tokio::join!(
            open_side(
                a.as_mut(),
                reuse0,
                &native[0],
                &saved[0],
                &known[0],
                mode,
                read_only[0]
            ),
            open_side(
                b.as_mut(),
                reuse1,
                &native[1],
                &saved[1],
                &known[1],
                mode,
                read_only[1]
            )
        )
    };
    Ok(Opened {
        scans: [
            anyhow::Context::context(s0, "local")?,
            anyhow::Context::context(s1, "remote")?,
        ],
        unselected,
    })
}

async fn open_side(
    store: &mut dyn Store,
    reuse: Option<Scan>,
    name: &str,
    saved: &SideState,
    known: &[u32],
    mode: ScanMode,
    read_only: bool,
) -> anyhow::Result<Scan> {
    match reuse {
        Some(s) => Ok(s),
        None => store.open(name, saved, known, mode, read_only).await,
    }
}

/// Whether the plan acts on side `s` (reads or stores messages, changes flags, expunges).
fn acts_on(p: &Plan, s: Side) -> bool {
    !p.copies.is_empty()
        || p.flags.iter().any(|(f, _, _)| f.side == s)
        || !p.expunges[s.i()].is_empty()
}

/// Selects, without reading changes again, each side whose scan was reused and on which
/// the plan acts.
pub(super) async fn select_for(
    stores: &mut [Box<dyn Store>; 2],
    scans: &[Scan; 2],
    unselected: &mut [bool; 2],
    p: &Plan,
    native: &[String; 2],
    read_only: [bool; 2],
) -> anyhow::Result<()> {
    for s in Side::BOTH {
        let i = s.i();
        if unselected[i] && acts_on(p, s) {
            stores[i]
                .reselect(&native[i], &scans[i].status, read_only[i])
                .await
                .map_err(|e| e.context(s.name()))?;
            unselected[i] = false;
        }
    }
    Ok(())
}
