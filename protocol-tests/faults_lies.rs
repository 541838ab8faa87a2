//! A server that lies: a real dovecot (remote, alice) behind [`Liar`], which rewrites one
//! kind of response line for the mailbox `Lies` only, while the local side (bob) is an
//! honest dovecot. Each lie must be detected: `Lies` fails with an error naming it and the
//! lie, nothing changes on either side because of it (content hashes and flags compared),
//! INBOX still syncs in the same run, and an honest run afterwards converges with nothing
//! lost or duplicated. A forged APPENDUID (wrong UIDVALIDITY) is not trusted: the appended
//! messages are found by content, and the next run finds nothing to do.

use crate::faults_support::point_remote_at;
use crate::support::liar::{Ctx, Liar};
use crate::support::sync::{msg, sha, ImapSide, MailSide, Msg, RunOutcome, SyncBed};
use twinbox::testbed::sample_messages;

const BOX: &str = "Lies";

struct Bed {
    bed: SyncBed<ImapSide>,
    liar: Liar,
    /// Messages of `Lies` on the remote side, in UID order (UIDs 1..=4).
    lies: Vec<Vec<u8>>,
}

/// Two mailboxes synced honestly through the liar; `Lies` holds four remote messages and
/// one local one.
fn bed() -> Bed {
    bed_with("")
}

/// [`bed`] with extra lines in the remote repository's section.
fn bed_with(remote: &str) -> Bed {
    let mut bed = SyncBed::imap();
    // Without CONDSTORE a full sync lists every mailbox, even with nothing to do.
    bed.noop_opens_nothing = !remote.contains("CONDSTORE");
    let liar = Liar::start(bed.remote.dovecot.imap_port());
    point_remote_at(&bed, liar.port());
    let path = bed.config_path();
    let text = std::fs::read_to_string(&path).expect("config");
    let text = text.replacen(
        "[Repository Remote]\n",
        &format!("[Repository Remote]\n{remote}"),
        1,
    );
    std::fs::write(&path, text).expect("config");
    let m = sample_messages(801, 8);
    bed.remote.seed("INBOX", &m[..2], &[]).expect("seed");
    bed.remote
        .seed(BOX, &m[2..6], &["\\Seen"])
        .expect("seed lies");
    bed.local.append(BOX, &m[6], &[]).expect("seed local");
    bed.sync();
    bed.assert_converged();
    Bed {
        bed,
        liar,
        lies: m[2..6].to_vec(),
    }
}

/// Whether the context is a SELECT/EXAMINE of `Lies`.
fn selecting_lies(c: &Ctx) -> bool {
    let cmd = c.command.to_ascii_uppercase();
    c.selected.as_deref() == Some(BOX) && (cmd.contains(" SELECT ") || cmd.contains(" EXAMINE "))
}

/// Runs the lying sync and checks the outcome: `Lies` failed naming `lie`, both sides'
/// `Lies` unchanged, a new remote INBOX message arrived locally. Returns the run.
fn lying_run(b: &Bed, lie: &str) -> RunOutcome {
    let (l0, r0) = (
        b.bed.local.messages(BOX).expect("local"),
        b.bed.remote.messages(BOX).expect("remote"),
    );
    let n = b.bed.remote.messages("INBOX").expect("inbox").len() as u64;
    let other = sample_messages(802 + n, 1).remove(0);
    b.bed
        .remote
        .append("INBOX", &other, &["\\Flagged"])
        .expect("append");
    let r = b.bed.run();
    assert!(b.liar.lies() > 0, "the liar never lied:\n{r}");
    let text = format!("{}{}", r.stdout, r.stderr);
    assert!(!r.ok() && r.summary().failed, "a lie went unnoticed:\n{r}");
    assert!(
        text.contains("contradicts itself on mailbox") && text.contains(BOX) && text.contains(lie),
        "the error does not name the mailbox and the lie {lie:?}:\n{r}"
    );
    assert!(!text.contains("panicked"), "{r}");
    assert_eq!(
        b.bed.local.messages(BOX).expect("local"),
        l0,
        "the honest side changed because of a lie:\n{r}"
    );
    assert_eq!(
        b.bed.remote.messages(BOX).expect("remote"),
        r0,
        "the lying side was changed:\n{r}"
    );
    assert!(
        b.bed
            .local
            .messages("INBOX")
            .expect("inbox")
            .contains(&msg(&other, &["\\Flagged"])),
        "the other mailbox did not sync in the lying run:\n{r}"
    );
    r
}

/// Stops lying; an honest run converges; returns the common `Lies`.
fn honest_run(b: &Bed) -> Vec<Msg> {
    b.liar.honest();
    b.bed.sync();
    b.bed.assert_converged().remove(BOX).unwrap_or_default()
}

fn sorted(mut v: Vec<Msg>) -> Vec<Msg> {
    v.sort();
    v
}

/// `Lies` as seeded: the four remote messages (\Seen) and the local one, with changes.
fn expected(b: &Bed, flagged_first: bool, without: Option<usize>, extra: &[Msg]) -> Vec<Msg> {
    let mut v: Vec<Msg> = b
        .lies
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != without)
        .map(|(i, m)| {
            if i == 0 && flagged_first {
                msg(m, &["\\Flagged", "\\Seen"])
            } else {
                msg(m, &["\\Seen"])
            }
        })
        .collect();
    v.push(msg(&sample_messages(801, 8)[6], &[]));
    v.extend(extra.iter().cloned());
    sorted(v)
}

/// A flag change on the remote `Lies` (so the run opens it).
fn flag_first(b: &Bed) {
    b.bed
        .remote
        .add_flags(BOX, &sha(&b.lies[0]), &["\\Flagged"])
        .expect("flag");
}

/// Rewrites the number in `[KEY n]` to `value` in a SELECT of `Lies`.
fn rewrite_code(key: &'static str, value: u64) -> impl FnMut(&Ctx, &str) -> Option<String> {
    move |c, line| {
        let pat = format!("[{key} ");
        if !selecting_lies(c) || !line.starts_with("* OK ") || !line.contains(&pat) {
            return None;
        }
        let start = line.find(&pat)? + pat.len();
        let end = start + line[start..].find(']')?;
        Some(format!("{}{value}{}", &line[..start], &line[end..]))
    }
}

#[test]
fn lie_uidnext_going_backwards_stops_the_mailbox() {
    let b = bed();
    flag_first(&b);
    b.liar.lie(rewrite_code("UIDNEXT", 2));
    lying_run(&b, "UIDNEXT went backwards");
    assert_eq!(honest_run(&b), expected(&b, true, None, &[]));
}

#[test]
fn lie_highestmodseq_going_backwards_stops_the_mailbox() {
    let b = bed();
    flag_first(&b);
    b.liar.lie(rewrite_code("HIGHESTMODSEQ", 1));
    lying_run(&b, "HIGHESTMODSEQ went backwards");
    assert_eq!(honest_run(&b), expected(&b, true, None, &[]));
}

#[test]
fn lie_fetch_of_an_unannounced_uid_stops_the_mailbox() {
    let b = bed();
    let new = sample_messages(803, 1).remove(0);
    b.bed.remote.append(BOX, &new, &[]).expect("append");
    // Before the real answer for the new message, a message nobody announced.
    b.liar.lie(|c, line| {
        let fetching_new = c.selected.as_deref() == Some(BOX)
            && c.command.contains("UID FETCH")
            && c.command.contains(":*");
        (fetching_new && line.starts_with("* ") && line.contains(" FETCH ("))
            .then(|| format!("* 1 FETCH (UID 4000 FLAGS (\\Seen) RFC822.SIZE 10)\r\n{line}"))
    });
    lying_run(&b, "a FETCH of UID 4000");
    assert_eq!(honest_run(&b), expected(&b, false, None, &[msg(&new, &[])]));
}

#[test]
fn lie_vanished_naming_a_present_message_deletes_nothing() {
    let b = bed();
    // A real expunge (UID 4), and the lie that UID 1 went too.
    let uid1 = b.bed.remote.uid_of(BOX, &sha(&b.lies[0])).expect("uid");
    b.bed
        .remote
        .expunge(BOX, &sha(&b.lies[3]))
        .expect("expunge");
    b.liar.lie(move |c, line| {
        let rest = line.strip_prefix("* VANISHED (EARLIER) ")?;
        selecting_lies(c).then(|| format!("* VANISHED (EARLIER) {uid1},{rest}"))
    });
    lying_run(
        &b,
        &format!("VANISHED names UID {uid1}, which the server still has"),
    );
    assert_eq!(honest_run(&b), expected(&b, false, Some(3), &[]));
}

#[test]
fn lie_vanished_of_a_fetched_or_impossible_uid_stops_the_mailbox() {
    let b = bed();
    let uid1 = b.bed.remote.uid_of(BOX, &sha(&b.lies[0])).expect("uid");
    // The flag change makes the SELECT report UID 1 as changed; the lie says it vanished.
    flag_first(&b);
    let inject = move |extra: String| {
        move |c: &Ctx, line: &str| {
            (selecting_lies(c) && line.starts_with("* OK [HIGHESTMODSEQ "))
                .then(|| format!("{line}\r\n{extra}"))
        }
    };
    b.liar.lie(inject(format!("* VANISHED (EARLIER) {uid1}")));
    lying_run(&b, &format!("VANISHED names UID {uid1}"));
    // A UID that cannot have existed (above UIDNEXT).
    b.liar.lie(inject("* VANISHED (EARLIER) 90000".into()));
    lying_run(&b, "VANISHED names UID 90000, at or above UIDNEXT");
    assert_eq!(honest_run(&b), expected(&b, true, None, &[]));
}

/// Without QRESYNC the expunges come from a UID listing; a listing that leaves out a
/// message the server has (here UID 1) must not expunge it on the other side.
fn listing_leaves_out_a_message(remote: &str, drop: fn(&str, u32) -> Option<String>) {
    let b = bed_with(remote);
    let uid1 = b.bed.remote.uid_of(BOX, &sha(&b.lies[0])).expect("uid");
    b.bed
        .remote
        .expunge(BOX, &sha(&b.lies[3]))
        .expect("expunge");
    b.liar.lie(move |c, line| {
        if c.selected.as_deref() == Some(BOX) {
            drop(line, uid1)
        } else {
            None
        }
    });
    lying_run(&b, "UID listing holds 3 messages where EXISTS said 4");
    assert_eq!(honest_run(&b), expected(&b, false, Some(3), &[]));
}

#[test]
fn lie_uid_search_leaving_out_a_message_deletes_nothing() {
    // CONDSTORE only: the count shows an expunge, `UID SEARCH` lists what is left.
    listing_leaves_out_a_message("disable_extensions = QRESYNC\n", |line, uid| {
        let rest = line.strip_prefix("* SEARCH")?;
        let kept: Vec<&str> = rest
            .split_whitespace()
            .filter(|u| *u != uid.to_string())
            .collect();
        Some(
            format!("* SEARCH {}", kept.join(" "))
                .trim_end()
                .to_string(),
        )
    });
}

#[test]
fn lie_flag_listing_leaving_out_a_message_deletes_nothing() {
    // Neither CONDSTORE nor QRESYNC: a full sync lists every UID with its flags.
    listing_leaves_out_a_message("disable_extensions = QRESYNC, CONDSTORE\n", |line, uid| {
        (line.starts_with("* ") && line.contains(&format!("FETCH (UID {uid} FLAGS")))
            .then(String::new)
    });
}

/// `[APPENDUID v a:b]` → `[APPENDUID v+1 a+100:b+100]`.
fn forge_appenduid(line: &str) -> Option<String> {
    let start = line.find("[APPENDUID ")? + "[APPENDUID ".len();
    let end = start + line[start..].find(']')?;
    let mut words = line[start..end].split(' ');
    let v: u64 = words.next()?.parse().ok()?;
    let uids: Vec<String> = words
        .next()?
        .split(',')
        .map(|r| {
            r.split(':')
                .map(|u| u.parse::<u64>().map(|n| (n + 100).to_string()))
                .collect::<Result<Vec<_>, _>>()
                .map(|p| p.join(":"))
        })
        .collect::<Result<_, _>>()
        .ok()?;
    Some(format!(
        "{}{} {}{}",
        &line[..start],
        v + 1,
        uids.join(","),
        &line[end..]
    ))
}

#[test]
fn lie_appenduid_with_the_wrong_uidvalidity_is_not_trusted() {
    let b = bed();
    let up = sample_messages(804, 2);
    b.bed.local.seed(BOX, &up, &["$Work"]).expect("seed");
    b.liar.lie(|_, line| forge_appenduid(line));
    let r = b.bed.sync();
    assert!(b.liar.lies() > 0, "no APPENDUID was forged:\n{r}");
    assert_eq!(r.summary().to_remote, 2, "{r}");
    // No wrong mapping recorded: the next runs copy nothing back (no duplicate).
    let extra: Vec<Msg> = up.iter().map(|m| msg(m, &["$Work"])).collect();
    assert_eq!(honest_run(&b), expected(&b, false, None, &extra));
    for m in &up {
        let uid = b.bed.remote.uid_of(BOX, &sha(m)).expect("uid");
        assert!(uid < 100, "UID {uid}");
    }
}
