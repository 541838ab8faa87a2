//! The client's commands against dovecot, each checked on the server's side (doveadm, the
//! rawlog of what dovecot received, its log): LIST-STATUS in one round trip and the
//! LIST + STATUS fallback, ENABLE QRESYNC with SELECT (QRESYNC ...) and VANISHED (EARLIER),
//! UID FETCH CHANGEDSINCE, MULTIAPPEND with LITERAL+ and APPENDUID ranges, UID STORE
//! UNCHANGEDSINCE with MODIFIED, UID EXPUNGE, CREATE, IDLE, AUTHENTICATE PLAIN, ID, LOGOUT.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use imap_types::flag::StoreType;
use twinbox::imap::commands::{FetchItems, IdleEvent, QresyncParams};
use twinbox::imap::types::{expand_ranges, AppendMessage};
use twinbox::imap::{Compression, ConnectOptions, Session};
use twinbox::testbed::{
    capabilities_without, message_sha256_hex, normalize_crlf, sample_messages, Dovecot,
    DovecotOptions,
};

use crate::imap_support::{check_list_status, connect, plain, seed, start, TIMEOUT, USER};

fn opts(dc: &Dovecot) -> ConnectOptions {
    let mut o = plain(dc);
    o.compress = Compression::Never;
    o
}

/// Commands sent so far.
fn commands(s: &Session) -> u64 {
    s.counters().snapshot().2
}

/// Logs out and returns every command dovecot's imap process received from `USER`.
async fn logout_and_rawlog(s: Session, dc: &Dovecot) -> Vec<String> {
    s.logout().await.expect("LOGOUT");
    dc.wait_for_log("Logged out", TIMEOUT)
        .expect("session ended");
    dc.commands_seen(USER).expect("rawlog")
}

/// The command word of a rawlog entry (`UID FETCH` for UID commands).
fn name(cmd: &str) -> String {
    let mut w = cmd.split_ascii_whitespace().skip(1);
    let first = w.next().unwrap_or("").to_ascii_uppercase();
    if first == "UID" {
        format!("UID {}", w.next().unwrap_or("").to_ascii_uppercase())
    } else {
        first
    }
}

fn uids(ranges: &[(u32, u32)]) -> BTreeSet<u32> {
    expand_ranges(ranges, 10_000)
        .expect("small ranges")
        .into_iter()
        .collect()
}

#[tokio::test]
async fn imap_list_status_is_one_round_trip() {
    let dc = start(DovecotOptions::default());
    seed(&dc, 3);
    let mut s = connect(&opts(&dc)).await;
    assert!(s.has("LIST-STATUS"));
    let before = commands(&s);
    check_list_status(&mut s, &dc).await;
    assert_eq!(commands(&s) - before, 1, "one command for LIST with STATUS");
    let seen = logout_and_rawlog(s, &dc).await;
    let lists: Vec<&String> = seen.iter().filter(|c| name(c) == "LIST").collect();
    assert_eq!(lists.len(), 1, "{seen:?}");
    assert!(
        lists[0].ends_with(
            "LIST \"\" \"*\" RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))"
        ),
        "{seen:?}"
    );
    assert!(!seen.iter().any(|c| name(c) == "STATUS"), "{seen:?}");
}

#[tokio::test]
async fn imap_list_falls_back_to_status_without_list_status() {
    let dc = start(DovecotOptions::default().capabilities(capabilities_without(&["LIST-STATUS"])));
    seed(&dc, 3);
    let mailboxes = dc.mailboxes(USER).expect("mailboxes");
    let mut s = connect(&opts(&dc)).await;
    assert!(!s.has("LIST-STATUS"));
    let before = commands(&s);
    check_list_status(&mut s, &dc).await;
    let selectable = mailboxes.len() as u64 - 1; // "Archive" is only a parent
    assert_eq!(commands(&s) - before, 1 + selectable);
    let seen = logout_and_rawlog(s, &dc).await;
    assert!(!seen.iter().any(|c| c.contains("RETURN")), "{seen:?}");
    assert_eq!(
        seen.iter().filter(|c| name(c) == "STATUS").count() as u64,
        selectable,
        "{seen:?}"
    );
}

#[tokio::test]
async fn imap_qresync_select_and_changedsince() {
    let dc = start(DovecotOptions::default());
    let seeded = seed(&dc, 5);
    let mut s = connect(&opts(&dc)).await;
    assert!(s.qresync && s.condstore);
    let first = s.select(b"INBOX", false, None).await.expect("SELECT");
    let uidvalidity = first.uidvalidity.expect("UIDVALIDITY");
    let modseq = first.highestmodseq.expect("HIGHESTMODSEQ");
    s.select(&seeded.other.clone().into_bytes(), true, None)
        .await
        .expect("EXAMINE the other mailbox");

    // Behind the client's back: one expunge, one flag change.
    dc.expunge(USER, "INBOX", seeded.uids[1]).expect("expunge");
    dc.add_flags(USER, "INBOX", seeded.uids[3], &["\\Flagged"])
        .expect("flag");
    let params = QresyncParams {
        uidvalidity,
        modseq,
        known_uids: Some(format!("1:{}", seeded.uids[4])),
    };
    let info = s
        .select(b"INBOX", false, Some(&params))
        .await
        .expect("SELECT QRESYNC");
    assert_eq!(uids(&info.vanished), BTreeSet::from([seeded.uids[1]]));
    let changed: Vec<_> = info.changed.iter().map(|m| m.uid).collect();
    assert_eq!(changed, vec![seeded.uids[3]]);
    assert!(info.changed[0]
        .flags
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == "\\Flagged")));
    let modseq2 = info.highestmodseq.expect("HIGHESTMODSEQ");
    assert!(modseq2 > modseq);

    // More changes; UID FETCH CHANGEDSINCE reports only them.
    dc.add_flags(USER, "INBOX", seeded.uids[4], &["$Label1"])
        .expect("flag");
    dc.expunge(USER, "INBOX", seeded.uids[2]).expect("expunge");
    let items = FetchItems {
        flags: true,
        modseq: true,
        ..Default::default()
    };
    let mut got = Vec::new();
    let vanished = s
        .uid_fetch("1:*", items, Some(modseq2), true, &mut |m| {
            got.push(m);
            Ok(())
        })
        .await
        .expect("UID FETCH CHANGEDSINCE");
    let fetched: BTreeSet<u32> = got.iter().map(|m| m.uid).collect();
    assert_eq!(fetched, BTreeSet::from([seeded.uids[4]]), "{got:?}");
    assert!(got.iter().all(|m| m.modseq.is_some_and(|x| x > modseq2)));
    assert_eq!(uids(&vanished), BTreeSet::from([seeded.uids[2]]));

    let seen = logout_and_rawlog(s, &dc).await;
    let has = |needle: &str| seen.iter().any(|c| c.contains(needle));
    assert!(has("ENABLE QRESYNC"), "{seen:?}");
    assert!(
        has(&format!(
            "SELECT INBOX (QRESYNC ({uidvalidity} {modseq} 1:{}))",
            seeded.uids[4]
        )),
        "{seen:?}"
    );
    assert!(
        has(&format!("(CHANGEDSINCE {modseq2} VANISHED)")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn imap_multiappend_with_literal_plus_and_appenduid_range() {
    let dc = start(DovecotOptions::default());
    let bodies: Vec<Vec<u8>> = sample_messages(99, 3)
        .iter()
        .map(|m| normalize_crlf(m))
        .collect();
    let seen_flag = vec!["\\Seen".to_string()];
    let none: Vec<String> = Vec::new();
    let messages: Vec<AppendMessage> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| AppendMessage {
            flags: if i == 1 { &seen_flag } else { &none },
            internaldate: None,
            body: b.into(),
        })
        .collect();
    let mut s = connect(&opts(&dc)).await;
    assert!(s.has("MULTIAPPEND") && s.has("LITERAL+"));
    let before = commands(&s);
    let result = s.append(b"INBOX", &messages).await.expect("APPEND");
    assert_eq!(commands(&s) - before, 1, "one APPEND command");
    let status = dc.mailbox_status(USER, "INBOX").expect("status");
    let mapped: Vec<(u32, u32)> = result.iter().map(|r| r.expect("APPENDUID")).collect();
    assert!(mapped.iter().all(|(v, _)| *v == status.uidvalidity));
    let new_uids: Vec<u32> = mapped.iter().map(|(_, u)| *u).collect();
    assert_eq!(new_uids, vec![1, 2, 3]);
    let stored = dc.list_messages(USER, "INBOX").expect("list");
    assert_eq!(stored.len(), 3);
    for (m, body) in stored.iter().zip(&bodies) {
        assert_eq!(
            m.sha256_of_body_hex,
            message_sha256_hex(body),
            "UID {}",
            m.uid
        );
    }
    assert_eq!(stored[1].flags, vec!["\\Seen"]);
    assert!(stored[0].flags.is_empty() && stored[2].flags.is_empty());
    let seen = logout_and_rawlog(s, &dc).await;
    let appends: Vec<&String> = seen.iter().filter(|c| name(c) == "APPEND").collect();
    assert_eq!(appends.len(), 1, "{seen:?}");
    assert_eq!(appends[0].matches("+}").count(), 3, "{seen:?}");
}

#[tokio::test]
async fn imap_store_unchangedsince_and_uid_expunge() {
    let dc = start(DovecotOptions::default());
    let seeded = seed(&dc, 4);
    let u = &seeded.uids;
    let mut s = connect(&opts(&dc)).await;
    s.select(b"INBOX", false, None).await.expect("SELECT");
    let mut modseqs = Vec::new();
    let items = FetchItems {
        modseq: true,
        ..Default::default()
    };
    s.uid_fetch("1:*", items, None, false, &mut |m| {
        modseqs.push(m.modseq.unwrap_or(0));
        Ok(())
    })
    .await
    .expect("FETCH MODSEQ");
    let since = modseqs.iter().copied().max().expect("modseqs");
    // Someone else changes the first message after we read it.
    dc.add_flags(USER, "INBOX", u[0], &["$Other"])
        .expect("flag");
    let set = format!("{}:{}", u[0], u[1]);
    let res = s
        .uid_store(
            &set,
            StoreType::Add,
            &["\\Flagged".into()],
            Some(since),
            true,
        )
        .await
        .expect("UID STORE UNCHANGEDSINCE");
    assert_eq!(res.modified, vec![u[0]]);
    let flags = |uid: u32| -> Vec<String> {
        dc.list_messages(USER, "INBOX")
            .expect("list")
            .into_iter()
            .find(|m| m.uid == uid)
            .map(|m| m.flags)
            .unwrap_or_default()
    };
    assert_eq!(flags(u[0]), vec!["$Other"]);
    assert_eq!(flags(u[1]), vec!["\\Flagged"]);

    // UID EXPUNGE removes exactly the named message, not every \Deleted one.
    let set = format!("{},{}", u[2], u[3]);
    s.uid_store(&set, StoreType::Add, &["\\Deleted".into()], None, true)
        .await
        .expect("STORE \\Deleted");
    s.uid_expunge(&u[2].to_string()).await.expect("UID EXPUNGE");
    let left: Vec<u32> = dc
        .list_messages(USER, "INBOX")
        .expect("list")
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(left, vec![u[0], u[1], u[3]]);
    assert_eq!(flags(u[3]), vec!["\\Deleted"]);
    let seen = logout_and_rawlog(s, &dc).await;
    assert!(
        seen.iter()
            .any(|c| c.contains("UID STORE") && c.contains("(UNCHANGEDSINCE")),
        "{seen:?}"
    );
    assert!(!seen.iter().any(|c| name(c) == "EXPUNGE"), "{seen:?}");
}

#[tokio::test]
async fn imap_create_and_idle_wakes_on_delivery() {
    let dc = Arc::new(start(DovecotOptions::default()));
    seed(&dc, 1);
    let mut s = connect(&opts(&dc)).await;
    let sep = dc.separator();
    let folder = format!("Projects{sep}Entwürfe");
    let raw = twinbox::imap::utf7::encode(&folder);
    s.create(raw.as_bytes()).await.expect("CREATE");
    assert!(dc.mailboxes(USER).expect("mailboxes").contains(&folder));
    // Listed back under its UTF-8 name (decoded from modified UTF-7).
    check_list_status(&mut s, &dc).await;

    s.select(b"INBOX", false, None).await.expect("SELECT");
    let deliver = {
        let dc = dc.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            dc.append(USER, "INBOX", &sample_messages(5, 1)[0], &[])
        })
    };
    let event = s.idle(Duration::from_secs(60)).await.expect("IDLE");
    deliver
        .join()
        .expect("delivery thread")
        .expect("doveadm save");
    assert_eq!(event, IdleEvent::Changed);
    let st = s.status(b"INBOX").await.expect("STATUS");
    assert_eq!(st.messages, Some(2));
    let seen = logout_and_rawlog(s, &dc).await;
    assert!(seen.iter().any(|c| name(c) == "IDLE"), "{seen:?}");
    assert!(seen.iter().any(|c| c == "DONE"), "{seen:?}");
}

/// AUTHENTICATE PLAIN (dovecot offers SASL-IR), ID with the client's name, LOGOUT: all seen
/// by dovecot.
#[tokio::test]
async fn imap_authenticate_plain_id_and_logout() {
    let dc = start(DovecotOptions::default().extra_config("imap_id_log = *\n"));
    let mut o = opts(&dc);
    o.send_id = true; // `sendid = yes`; off by default
    let s = connect(&o).await;
    assert!(s.has("SASL-IR") && s.has("ID"));
    s.logout().await.expect("LOGOUT");
    dc.wait_for_log("Logged out", TIMEOUT).expect("logged out");
    let log = dc.log_contents();
    assert!(log.contains("Login: user=<alice>, method=PLAIN"), "{log}");
    assert!(log.contains("name=twinbox"), "{log}");
    let seen = dc.commands_seen(USER).expect("rawlog");
    assert_eq!(
        seen.iter().filter(|c| name(c) == "ID").count(),
        1,
        "{seen:?}"
    );
    assert_eq!(
        seen.last().map(|c| name(c)),
        Some("LOGOUT".into()),
        "{seen:?}"
    );
}

/// A server that does not advertise CONDSTORE/QRESYNC (dovecot still implements them): the
/// client uses none of their syntax, and still lists, selects, fetches and stores.
#[tokio::test]
async fn imap_without_condstore_uses_none_of_its_syntax() {
    let dc = start(DovecotOptions::default().without_condstore());
    let seeded = seed(&dc, 3);
    let mut s = connect(&opts(&dc)).await;
    assert!(!s.qresync && !s.condstore);
    check_list_status(&mut s, &dc).await;
    let params = QresyncParams {
        uidvalidity: 1,
        modseq: 5,
        known_uids: None,
    };
    let info = s
        .select(b"INBOX", false, Some(&params))
        .await
        .expect("SELECT");
    assert_eq!(info.exists, 3);
    assert_eq!(info.highestmodseq, None);
    let items = FetchItems {
        flags: true,
        modseq: true,
        ..Default::default()
    };
    let mut got = Vec::new();
    s.uid_fetch("1:*", items, Some(5), true, &mut |m| {
        got.push(m);
        Ok(())
    })
    .await
    .expect("UID FETCH");
    // Without CHANGEDSINCE everything comes back, without MODSEQ.
    assert_eq!(got.iter().map(|m| m.uid).collect::<Vec<_>>(), seeded.uids);
    assert!(got.iter().all(|m| m.modseq.is_none() && m.flags.is_some()));
    let set = seeded.uids[0].to_string();
    s.uid_store(&set, StoreType::Add, &["\\Seen".into()], Some(1), true)
        .await
        .expect("UID STORE");
    assert!(dc.list_messages(USER, "INBOX").expect("list")[0]
        .flags
        .contains(&"\\Seen".to_string()));
    let seen = logout_and_rawlog(s, &dc).await;
    for word in ["ENABLE", "CONDSTORE", "QRESYNC", "MODSEQ", "CHANGEDSINCE"] {
        assert!(!seen.iter().any(|c| c.contains(word)), "{word}: {seen:?}");
    }
}

/// A session spends nothing on extensions it does not use: no ID unless asked for
/// (`sendid`), and ENABLE QRESYNC only once a mailbox is opened, pipelined right before
/// that first SELECT (a no-op resync, which only lists, never sends it).
#[tokio::test]
async fn imap_enable_waits_for_the_first_select_and_id_is_opt_in() {
    let dc = start(DovecotOptions::default());
    seed(&dc, 2);
    let mut s = connect(&opts(&dc)).await;
    assert!(
        s.qresync && s.condstore,
        "QRESYNC is offered, so it is used"
    );
    check_list_status(&mut s, &dc).await;
    let before = commands(&s);
    let info = s
        .select(b"INBOX", false, None)
        .await
        .expect("SELECT after a lazy ENABLE");
    assert_eq!(commands(&s) - before, 2, "ENABLE and SELECT");
    assert!(info.highestmodseq.is_some(), "{info:?}");
    assert!(s.qresync, "dovecot grants QRESYNC");
    // A second SELECT does not enable again.
    s.select(b"INBOX", true, None).await.expect("EXAMINE");
    assert_eq!(commands(&s) - before, 3);
    let seen = logout_and_rawlog(s, &dc).await;
    let names: Vec<String> = seen.iter().map(|c| name(c)).collect();
    assert!(!names.iter().any(|n| n == "ID"), "{seen:?}");
    assert_eq!(
        names.iter().filter(|n| *n == "ENABLE").count(),
        1,
        "{seen:?}"
    );
    let at = names.iter().position(|n| n == "ENABLE").expect("ENABLE");
    assert_eq!(
        names.get(at + 1).map(String::as_str),
        Some("SELECT"),
        "{seen:?}"
    );
    assert!(
        names[..at].iter().any(|n| n == "LIST"),
        "ENABLE came only after the listing: {seen:?}"
    );
}
