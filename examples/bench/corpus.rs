//! The deterministic corpus, the changes made between syncs, and the check that both sides
//! hold the same messages (content hash) and flags.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use twinbox::testbed::{message_sha256_hex, sample_messages, Dovecot, SampleRng};

/// Flags drawn at random for the corpus (no `\Deleted`: the peers expunge it).
const SYSTEM: &[&str] = &["\\Seen", "\\Answered", "\\Flagged", "\\Draft"];
const KEYWORDS: &[&str] = &["$Label1", "work", "Important"];

/// The mailbox names: INBOX and flat folders (every peer maps them the same way).
pub fn mailbox_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            if i == 0 {
                "INBOX".to_string()
            } else {
                format!("Archive{i:02}")
            }
        })
        .collect()
}

/// `count` messages for mailbox `index`: the sample mail (2–10 KB, one in 25 about 100 KB)
/// with one in 400 grown to 1–3 MB.
pub fn messages(seed: u64, count: usize) -> Vec<Vec<u8>> {
    let mut rng = SampleRng::new(seed ^ 0xbe7c);
    let mut msgs = sample_messages(seed, count);
    for m in msgs.iter_mut() {
        if rng.below(400) == 0 {
            let target = 1_000_000 + rng.below(2_000_000) as usize;
            let line =
                b"The quick brown fox jumps over the lazy dog; the mail must go through.\r\n";
            while m.len() < target {
                m.extend_from_slice(line);
            }
        }
    }
    msgs
}

/// A random flag set: 70% seen, 10% answered, 10% flagged, 2% draft, and a keyword on 15%.
fn random_flags(rng: &mut SampleRng) -> Vec<&'static str> {
    let mut f = Vec::new();
    for (flag, pct) in SYSTEM.iter().zip([70, 10, 10, 2]) {
        if rng.below(100) < pct {
            f.push(*flag);
        }
    }
    if rng.below(100) < 15 {
        f.push(*rng.pick(KEYWORDS));
    }
    f
}

/// Seeds `user`'s account: `mailboxes` × `per_box` messages with random flags. Returns the
/// corpus size in bytes.
pub fn seed(dv: &Dovecot, user: &str, mailboxes: usize, per_box: usize) -> Result<u64> {
    let mut total = 0;
    for (i, name) in mailbox_names(mailboxes).iter().enumerate() {
        let msgs = messages(7000 + i as u64, per_box);
        total += msgs.iter().map(|m| m.len() as u64).sum::<u64>();
        let uids = dv.seed_mailbox(user, name, &msgs, &[])?;
        let mut rng = SampleRng::new(31 * i as u64 + 5);
        let mut by_flags: BTreeMap<Vec<&str>, Vec<u32>> = BTreeMap::new();
        for uid in uids {
            let f = random_flags(&mut rng);
            if !f.is_empty() {
                by_flags.entry(f).or_default().push(uid);
            }
        }
        for (flags, uids) in by_flags {
            for chunk in uids.chunks(500) {
                let set: Vec<String> = chunk.iter().map(u32::to_string).collect();
                let set = set.join(",");
                let flags = flags.join(" ");
                let args = [
                    "flags", "add", "-u", user, &flags, "mailbox", name, "uid", &set,
                ];
                dv.doveadm(&args)?;
            }
        }
    }
    Ok(total)
}

/// UIDs of a mailbox (doveadm search).
fn uids(dv: &Dovecot, user: &str, mailbox: &str) -> Result<Vec<u32>> {
    let out = dv.doveadm(&["search", "-u", user, "mailbox", mailbox, "all"])?;
    let text = String::from_utf8_lossy(&out);
    let mut v: Vec<u32> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    v.sort_unstable();
    Ok(v)
}

fn uid_set(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The remote-side change of one incremental round: in every mailbox 1% new messages,
/// 1% flag changes and 1% expunges (at least one each).
pub fn change_remote(dv: &Dovecot, user: &str, mailboxes: usize, round: u64) -> Result<()> {
    for (i, name) in mailbox_names(mailboxes).iter().enumerate() {
        let all = uids(dv, user, name)?;
        let k = (all.len() / 100).max(1);
        let mut rng = SampleRng::new(round * 1000 + i as u64);
        let mut pick = |n: usize| -> Vec<u32> {
            let mut v: Vec<u32> = (0..n)
                .map(|_| *rng.pick(&all))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            v.sort_unstable();
            v
        };
        let flagged = pick(k);
        let gone: Vec<u32> = pick(k)
            .into_iter()
            .filter(|u| !flagged.contains(u))
            .collect();
        let set = uid_set(&flagged);
        dv.doveadm(&[
            "flags",
            "add",
            "-u",
            user,
            "\\Flagged $Label1",
            "mailbox",
            name,
            "uid",
            &set,
        ])?;
        dv.doveadm(&[
            "flags", "remove", "-u", user, "\\Seen", "mailbox", name, "uid", &set,
        ])?;
        if !gone.is_empty() {
            let set = uid_set(&gone);
            dv.doveadm(&["expunge", "-u", user, "mailbox", name, "uid", &set])?;
        }
        let fresh = messages(900_000 + round * 1000 + i as u64, k);
        dv.seed_mailbox(user, name, &fresh, &[])?;
    }
    Ok(())
}

/// The local-side change of one round: 1% of the messages of each mailbox get `\Answered`
/// (IMAP: doveadm on `user`).
pub fn change_local_imap(dv: &Dovecot, user: &str, mailboxes: usize, round: u64) -> Result<()> {
    for (i, name) in mailbox_names(mailboxes).iter().enumerate() {
        let all = uids(dv, user, name)?;
        let k = (all.len() / 100).max(1);
        let mut rng = SampleRng::new(round * 7777 + i as u64);
        let chosen: Vec<u32> = (0..k).map(|_| *rng.pick(&all)).collect();
        let set = uid_set(&chosen);
        dv.doveadm(&[
            "flags",
            "add",
            "-u",
            user,
            "\\Answered",
            "mailbox",
            name,
            "uid",
            &set,
        ])?;
    }
    Ok(())
}

/// Maildir flag letters in a file name (`...:2,FS`).
fn maildir_letters(name: &str) -> &str {
    name.rsplit_once(":2,").map(|(_, f)| f).unwrap_or("")
}

/// The local-side change of one round on a Maildir tree: 1% of the files of each folder
/// get `R` (`\Answered`), by rename as a mail reader does.
pub fn change_local_maildir(root: &Path, round: u64) -> Result<()> {
    let mut dirs = Vec::new();
    maildir_dirs(root, &mut dirs)?;
    for (i, cur) in dirs.iter().enumerate() {
        let mut files: Vec<String> = std::fs::read_dir(cur)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        files.sort();
        if files.is_empty() {
            continue;
        }
        let k = (files.len() / 100).max(1);
        let mut rng = SampleRng::new(round * 4242 + i as u64);
        for _ in 0..k {
            let f = rng.pick(&files).clone();
            if maildir_letters(&f).contains('R') || !f.contains(":2,") {
                continue;
            }
            let (base, letters) = f.rsplit_once(":2,").unwrap_or((&f, ""));
            let mut l: Vec<char> = letters.chars().chain(['R']).collect();
            l.sort_unstable();
            let new: String = format!("{base}:2,{}", l.into_iter().collect::<String>());
            let _ = std::fs::rename(cur.join(&f), cur.join(new));
        }
    }
    Ok(())
}

/// Every `cur` directory under a Maildir tree.
fn maildir_dirs(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        if !e.file_type()?.is_dir() {
            continue;
        }
        let p = e.path();
        if e.file_name() == "cur" {
            out.push(p);
        } else if e.file_name() != "new" && e.file_name() != "tmp" {
            maildir_dirs(&p, out)?;
        }
    }
    Ok(())
}

/// One message: content hash and sorted flags.
type Entry = (String, Vec<String>);

fn system_only(flags: &[String]) -> Vec<String> {
    let mut v: Vec<String> = flags
        .iter()
        .filter(|f| f.starts_with('\\') && *f != "\\Recent")
        .cloned()
        .collect();
    v.sort();
    v
}

/// The account's messages as a sorted multiset (all mailboxes together; per mailbox would
/// tie the check to each tool's folder naming). `keywords`: compare keywords too.
pub fn imap_side(dv: &Dovecot, user: &str, keywords: bool) -> Result<Vec<Entry>> {
    let mut all = Vec::new();
    for mb in dv.mailboxes(user)? {
        for m in dv.list_messages(user, &mb)? {
            let mut flags: Vec<String> = if keywords {
                m.flags.into_iter().filter(|f| f != "\\Recent").collect()
            } else {
                system_only(&m.flags)
            };
            flags.sort();
            all.push((m.sha256_of_body_hex, flags));
        }
    }
    all.sort();
    Ok(all)
}

/// A Maildir tree's messages (system flags only: the peers do not agree on keyword files).
pub fn maildir_side(root: &Path) -> Result<Vec<Entry>> {
    let mut dirs = Vec::new();
    maildir_dirs(root, &mut dirs)?;
    let mut all = Vec::new();
    for cur in dirs {
        let new = cur.with_file_name("new");
        for d in [cur, new] {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd {
                let e = e?;
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with('.') {
                    continue;
                }
                let raw = strip_tuid(std::fs::read(e.path())?);
                let mut flags: Vec<String> = maildir_letters(&name)
                    .chars()
                    .filter_map(|c| match c {
                        'S' => Some("\\Seen"),
                        'R' => Some("\\Answered"),
                        'F' => Some("\\Flagged"),
                        'D' => Some("\\Draft"),
                        'T' => Some("\\Deleted"),
                        _ => None,
                    })
                    .map(str::to_string)
                    .collect();
                flags.sort();
                all.push((message_sha256_hex(&raw), flags));
            }
        }
    }
    all.sort();
    Ok(all)
}

/// The message without the `X-TUID:` header line mbsync adds to the files it writes.
fn strip_tuid(raw: Vec<u8>) -> Vec<u8> {
    let head_end = raw
        .windows(3)
        .position(|w| w.starts_with(b"\n\n") || w == b"\n\r\n")
        .unwrap_or(raw.len());
    let Some(at) = raw[..head_end].windows(8).position(|w| w == b"\nX-TUID:") else {
        return raw;
    };
    let end = raw[at + 1..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|e| at + 1 + e + 1)
        .unwrap_or(raw.len());
    let mut out = raw[..at + 1].to_vec();
    out.extend_from_slice(&raw[end..]);
    out
}

/// Compares the two sides; an error names the first difference.
pub fn same(remote: &[Entry], local: &[Entry]) -> Result<()> {
    if remote == local {
        return Ok(());
    }
    let r: std::collections::BTreeSet<_> = remote.iter().collect();
    let l: std::collections::BTreeSet<_> = local.iter().collect();
    let only_r: Vec<_> = r.difference(&l).collect();
    let only_l: Vec<_> = l.difference(&r).collect();
    let example = only_r
        .first()
        .map(|(h, f)| {
            let there: Vec<_> = local.iter().filter(|(x, _)| x == h).map(|e| &e.1).collect();
            format!("remote {}… {f:?}, local copies' flags {there:?}", &h[..12])
        })
        .unwrap_or_default();
    bail!(
        "sides differ: {} remote vs {} local messages; {} only remote, {} only local; {example}",
        remote.len(),
        local.len(),
        only_r.len(),
        only_l.len(),
    )
}
