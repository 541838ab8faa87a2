//! Benchmark (ignored by default): the no-op resync of a native Maildir. Prints the
//! figures; asserts only outcomes (unchanged folders are not read), never times.
//!
//! `BENCH_FOLDERS=20 BENCH_MESSAGES=500 cargo test --release --test protocol \
//!  maildir_native_noop_bench -- --ignored --nocapture`

use std::time::Instant;

use super::maildir_bed::{copied, folders_read, Bed, Engine, REMOTE};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Small distinct messages (the figure is about folders and files, not bytes).
fn messages(folder: usize, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            format!(
                "From: bench@example.test\r\nTo: bob@example.test\r\nSubject: message {i} of folder {folder}\r\n\
                 Message-ID: <{folder}.{i}@bench.example.test>\r\nDate: Tue, 14 Nov 2023 10:00:00 +0000\r\n\r\nbody {i}\r\n"
            )
            .into_bytes()
        })
        .collect()
}

fn timed(bed: &Bed, what: &str) -> (f64, String) {
    let t = Instant::now();
    let out = bed.command().output().expect("run twinbox");
    let secs = t.elapsed().as_secs_f64();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what}: {text}");
    println!(
        "bench: {what}: {secs:.3} s, folders read: {:?}, copied {:?}",
        folders_read(&text),
        copied(&text)
    );
    (secs, text)
}

#[test]
#[ignore]
fn maildir_native_noop_bench() {
    let nf = env_or("BENCH_FOLDERS", 20);
    let nm = env_or("BENCH_MESSAGES", 500);
    let bed = Bed::new(Engine::Native, '/');
    // The first sync writes without fsync (faster set-up; the figure is the resync).
    let conf = std::fs::read_to_string(&bed.conf).expect("conf");
    std::fs::write(
        &bed.conf,
        conf.replace(
            "maildir_engine = native\n",
            "maildir_engine = native\nfsync = no\n",
        ),
    )
    .expect("conf");
    for f in 0..nf {
        bed.dv
            .seed_mailbox(REMOTE, &format!("F{f:02}"), &messages(f, nm), &[])
            .expect("seed");
    }
    println!("bench: {nf} folders x {nm} messages");
    let (_, out) = timed(&bed, "first sync");
    assert_eq!(copied(&out), ((nf * nm) as u64, 0));
    // Stamps younger than 2 s are not trusted; the next run reads those folders once.
    std::thread::sleep(std::time::Duration::from_millis(2200));
    timed(&bed, "second sync (re-reads folders written by the first)");
    let (_, out) = timed(&bed, "no-op resync");
    assert_eq!(folders_read(&out), Some(0), "{out}");
    assert!(out.contains("(0 opened)"), "{out}");
    let (_, out) = timed(&bed, "no-op resync again");
    assert_eq!(folders_read(&out), Some(0), "{out}");
    // One folder changed behind twinbox's back: only it is read.
    let dir = bed.maildir.join("F07").join("new");
    std::fs::write(dir.join("1700000000.bench.example"), &messages(99, 1)[0]).expect("write");
    std::thread::sleep(std::time::Duration::from_millis(2200));
    let (_, out) = timed(&bed, "resync after one new local file");
    assert_eq!(folders_read(&out), Some(1), "{out}");
    assert_eq!(copied(&out), (0, 1), "{out}");
}
