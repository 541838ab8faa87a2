//! Network faults through the fault-injecting proxy, with the real binary against a real
//! dovecot, on the traffic of `sync_crash::prepare` (changes in both directions, literals
//! both ways):
//! - the connection cut after N bytes, N swept over every command and response boundary
//!   and points inside literals of a recorded clean run, in both directions; each faulty
//!   run followed by a clean run ends exactly where an uninterrupted sync ends, and
//!   `twinbox check` finds the state consistent;
//! - a server that stops answering (or stops reading) mid-sync: the run ends by itself
//!   (socktimeout) with a clear error, and the next run recovers;
//! - every packet delayed: the sync still completes correctly.
//!
//! CI sweeps `TWINBOX_FAULT_POINTS` points (default 60, half per direction);
//! `TWINBOX_FAULT_SWEEP=full` sweeps every point of the recording.

use crate::faults_support::{assert_recovers, env_count, proxied_bed};
use crate::support::proxy::{fault_points, spread, Dir, Mode, Proxy};
use crate::support::sync::{ImapSide, SyncBed};
use crate::sync_crash::{prepare, reference};

/// Records a clean run of the prepared traffic; returns the streams (to server, to client).
fn record(bed: &SyncBed<ImapSide>, proxy: &Proxy) -> (Vec<u8>, Vec<u8>) {
    bed.restore("prepared");
    proxy.set(Mode::Pass);
    proxy.record();
    let run = bed.run_with(&["-1"], &[]);
    let rec = proxy.recorded();
    assert!(run.ok(), "clean recorded run:\n{run}");
    rec
}

#[test]
fn connection_cut_at_every_boundary_both_ways_converges() {
    let want = reference(&SyncBed::imap());
    let (bed, proxy) = proxied_bed();
    prepare(&bed);
    bed.checkpoint("prepared");
    let (up, down) = record(&bed, &proxy);
    let (pu, pd) = (fault_points(&up), fault_points(&down));
    let full = std::env::var("TWINBOX_FAULT_SWEEP").is_ok_and(|v| v == "full");
    let k = if full {
        usize::MAX
    } else {
        env_count("TWINBOX_FAULT_POINTS", 60).div_ceil(2)
    };
    let mut points: Vec<(Dir, u64)> = spread(&pu, k)
        .into_iter()
        .map(|p| (Dir::ToServer, p))
        .collect();
    points.extend(spread(&pd, k).into_iter().map(|p| (Dir::ToClient, p)));
    let (mut tripped, mut failed) = (0, 0);
    for (i, &(dir, at)) in points.iter().enumerate() {
        bed.restore("prepared");
        proxy.set(Mode::Drop { dir, at });
        let run = bed.run_with(&["-1"], &[]);
        if proxy.tripped() {
            tripped += 1;
        }
        if !run.ok() {
            failed += 1;
        }
        proxy.set(Mode::Pass);
        let what = format!("cut {dir:?} after {at} bytes (point {i})");
        assert_recovers(&bed, &run, &want, &what);
    }
    eprintln!(
        "recorded {} bytes to the server ({} cut points), {} to the client ({} cut points); \
         injected {tripped} cuts over {} runs, {failed} runs failed, all recovered",
        up.len(),
        pu.len(),
        down.len(),
        pd.len(),
        points.len()
    );
    // The replay follows the recording: (nearly) every point is reached.
    assert!(
        tripped * 10 >= points.len() * 9,
        "only {tripped} of {} faults happened",
        points.len()
    );
    assert!(failed > 0, "no faulty run failed: the faults did nothing");
}

/// A stall in `dir` in the middle of the recorded stream.
fn stall_then_recover(dir: Dir) {
    let want = reference(&SyncBed::imap());
    let (bed, proxy) = proxied_bed();
    prepare(&bed);
    bed.checkpoint("prepared");
    let (up, down) = record(&bed, &proxy);
    let len = match dir {
        Dir::ToServer => up.len(),
        Dir::ToClient => down.len(),
    };
    bed.restore("prepared");
    proxy.set(Mode::Stall {
        dir,
        at: len as u64 / 2,
    });
    // The harness kills a run after RUN_TIMEOUT and fails the test: ending at all is
    // the assertion, not how fast.
    let run = bed.run_with(&["-1"], &[]);
    assert!(proxy.tripped(), "the stall never happened:\n{run}");
    assert!(!run.ok(), "a stalled sync reported success:\n{run}");
    assert!(
        run.stderr.contains("timed out") || run.stdout.contains("timed out"),
        "no timeout named in the error:\n{run}"
    );
    proxy.set(Mode::Pass);
    assert_recovers(&bed, &run, &want, &format!("stall {dir:?}"));
}

#[test]
fn a_server_that_stops_answering_times_out_and_the_next_run_recovers() {
    stall_then_recover(Dir::ToClient);
}

#[test]
fn a_server_that_stops_reading_times_out_and_the_next_run_recovers() {
    stall_then_recover(Dir::ToServer);
}

#[test]
fn every_packet_delayed_still_syncs_correctly() {
    let want = reference(&SyncBed::imap());
    let (bed, proxy) = proxied_bed();
    proxy.set(Mode::Delay(std::time::Duration::from_millis(3)));
    prepare(&bed);
    let run = bed.run_with(&["-1"], &[]);
    assert!(run.ok(), "{run}");
    assert_eq!(bed.assert_converged(), want);
}
