//! folderfilter, folderincludes, nametrans, derivation and the round-trip check.

use super::*;

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn filter(items: &[&str]) -> FolderFilter {
    FolderFilter::from_items(items).unwrap()
}

#[test]
fn folderfilter_include_exclude_regex() {
    let all = filter(&[]);
    assert!(all.is_empty() && all.accepts("anything"));

    let only = filter(&["INBOX", "Sent Mail", "re:Lists/.*"]);
    assert!(only.accepts("INBOX") && only.accepts("Sent Mail") && only.accepts("Lists/rust"));
    assert!(!only.accepts("INBOXes") && !only.accepts("Trash") && !only.accepts("Old/Lists/x"));

    let except = filter(&["!Trash", "!re:.*Spam.*"]);
    assert!(except.accepts("INBOX") && !except.accepts("Trash") && !except.accepts("[Gmail]/Spam"));

    let both = filter(&["re:Archive/.*", "!re:Archive/20(0|1)[0-9]"]);
    assert!(
        both.accepts("Archive/2023") && !both.accepts("Archive/2015") && !both.accepts("INBOX")
    );

    assert!(FolderFilter::from_items(&["re:(unclosed"])
        .unwrap_err()
        .contains("bad regex"));
    assert!(FolderFilter::from_items(&["!"]).is_err());
}

#[test]
fn folderfilter_from_the_file() {
    let c = parse(&base_with("folderfilter = INBOX, 'Sent Mail', \"re:Lists/[^,]+,x\"\nfolderincludes = ['debian.user', \"Other Folder\"]")).unwrap();
    let r = &c.repositories["Remote"];
    assert!(r.folderfilter.accepts("Sent Mail") && r.folderfilter.accepts("Lists/a,x"));
    assert_eq!(r.folderincludes, ["debian.user", "Other Folder"]);
    let e = err(&base_with("folderfilter = re:("));
    assert!(
        e.contains(":17: [Repository Remote] option 'folderfilter': bad regex"),
        "{e}"
    );
}

#[test]
fn nametrans_syntax() {
    let nt = NameTrans::parse("s/^INBOX\\.//\n s|\\.|/|g ; s#^(.*)-old$#Old/${1}#").unwrap();
    assert_eq!(nt.apply("INBOX.Lists.rust"), "Lists/rust");
    assert_eq!(nt.apply("work-old"), "Old/work");
    assert_eq!(nt.apply("INBOX"), "INBOX");
    let groups = NameTrans::parse("s/^(a)(b)$/\\2$1$$\\\\/").unwrap();
    assert_eq!(groups.apply("ab"), "ba$\\");
    let icase = NameTrans::parse("s/^inbox$/INBOX/i").unwrap();
    assert_eq!(icase.apply("Inbox"), "INBOX");
    // `q` stops at the first matching rule: INBOX is kept, the rest gets a prefix.
    let keep = NameTrans::parse("s/^(INBOX|Drafts)$/$1/q, s/^/GMX./").unwrap();
    assert_eq!(keep.apply("INBOX"), "INBOX");
    assert_eq!(keep.apply("Lists"), "GMX.Lists");
    // An escaped delimiter stands for itself.
    assert_eq!(
        NameTrans::parse("s/^a\\/b/c\\/d/").unwrap().apply("a/b/e"),
        "c/d/e"
    );

    for (bad, why) in [
        ("lambda f: f", "expected a rule"),
        ("s/a/b", "unterminated"),
        ("s/a/b/x", "unknown flag 'x'"),
        ("s/(/b/", "bad regex"),
        ("s/a/$2/", "group 2"),
        ("s/a/\\./", "unknown escape"),
        ("s/a/b/ t/c/d/", "expected a rule"),
        ("s/a/b/gs/c/d/", "unknown flag 's'"),
    ] {
        let e = NameTrans::parse(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn nametrans_inversion_of_simple_forms() {
    let cases: &[(&str, &[&str])] = &[
        ("s/^INBOX\\.//", &["INBOX.Sent", "INBOX.a.b"]),
        ("s/^/INBOX./", &["Sent", "INBOX"]),
        ("s/\\.bak$/-backup/", &["x.bak", "y"]),
        ("s/^Old$/Archive/", &["Old", "Older"]),
        ("s/\\./\\//g", &["a.b.c", "plain"]),
        ("s/^INBOX\\.//; s/\\./\\//g", &["INBOX.a.b", "INBOX.Sent"]),
        // Guards first (offlineimap's `f if f in [...] else ...`), as import-config writes.
        (
            "s/^INBOX$/INBOX/q; s/^Sent$/Sent/q; s/^/GMX./g",
            &["INBOX", "Sent", "Drafts", "a/b"],
        ),
        ("s/^a$/a/q", &["a", "b"]),
    ];
    for (text, samples) in cases {
        let nt = NameTrans::parse(text).unwrap();
        let back = nt.invert().unwrap_or_else(|r| panic!("{text}: {r}"));
        for s in *samples {
            assert_eq!(back.apply(&nt.apply(s)), *s, "{text} / {back} on {s}");
        }
    }
    assert_eq!(
        NameTrans::parse("s/^INBOX\\.//")
            .unwrap()
            .invert()
            .unwrap()
            .apply("Sent"),
        "INBOX.Sent"
    );
    for text in [
        "s/^(.*)$/x$1/",
        "s/a+//",
        "s/x//",
        "s/^a/b/i",
        "s/^a/b/q",
        "s/^/x/; s/^a$/a/q",
    ] {
        assert!(NameTrans::parse(text).unwrap().invert().is_err(), "{text}");
    }
}

#[test]
fn reverse_nametrans_is_derived_or_required() {
    let c = parse(&base_with("nametrans = s/^INBOX\\.//")).unwrap();
    let f = &c.accounts[0].folders;
    assert_eq!(f.to_local("INBOX.Sent"), "Sent");
    assert_eq!(f.to_remote("Sent"), "INBOX.Sent");

    let local_only = BASE.replace(
        "localfolders = ~/Mail",
        "localfolders = ~/Mail\nnametrans = s/^/INBOX./",
    );
    let c = parse(&local_only).unwrap();
    assert_eq!(c.accounts[0].folders.to_local("INBOX.Sent"), "Sent");

    let e = err(&base_with("nametrans = s/^(.*)$/x-$1/"));
    assert!(e.starts_with("~/.config/twinbox/config:17: [Repository Remote] option 'nametrans': the rule 's/^(.*)$/x-${1}/'"), "{e}");
    assert!(e.contains("give [Repository Local] a nametrans"), "{e}");

    let both = base_with("nametrans = s/^(.*)$/x-$1/").replace(
        "localfolders = ~/Mail",
        "localfolders = ~/Mail\nnametrans = s/^x-//",
    );
    let c = parse(&both).unwrap();
    assert_eq!(c.accounts[0].folders.to_local("a"), "x-a");
    assert_eq!(c.accounts[0].folders.to_remote("x-a"), "a");
}

#[test]
fn round_trip_refuses_loops_naming_the_folder() {
    let c = parse(&base_with("nametrans = s/^INBOX\\.//")).unwrap();
    let f = &c.accounts[0].folders;
    let e = f
        .check_round_trip(&names(&["INBOX", "INBOX.Sent"]), &names(&["Sent"]))
        .unwrap_err();
    assert_eq!(
        e,
        FolderNameError::RoundTrip {
            side: Side::Remote,
            folder: "INBOX".into(),
            there: "INBOX".into(),
            back: "INBOX.INBOX".into(),
        }
    );
    let msg = e.to_string();
    assert!(
        msg.contains("remote folder 'INBOX' becomes local 'INBOX'")
            && msg.contains("'INBOX.INBOX'"),
        "{msg}"
    );

    // The fix: protect INBOX in both directions.
    let fixed = base_with("nametrans = s/^INBOX$/INBOX/q\n  s/^INBOX\\.//").replace(
        "localfolders = ~/Mail",
        "localfolders = ~/Mail\nnametrans = s/^INBOX$/INBOX/q; s/^/INBOX./",
    );
    let c = parse(&fixed).unwrap();
    let f = &c.accounts[0].folders;
    f.check_round_trip(
        &names(&["INBOX", "INBOX.Sent"]),
        &names(&["INBOX", "Sent", "New"]),
    )
    .unwrap();

    // Two folders landing on one name.
    let both = base_with("nametrans = s/^old-//").replace(
        "localfolders = ~/Mail",
        "localfolders = ~/Mail\nnametrans = s/^/old-/",
    );
    let c = parse(&both).unwrap();
    let e = c.accounts[0]
        .folders
        .check_round_trip(&names(&["old-x", "x"]), &[])
        .unwrap_err();
    assert!(
        matches!(&e, FolderNameError::Collision { first, second, target, .. }
        if first == "old-x" && second == "x" && target == "x"),
        "{e}"
    );
    assert!(e
        .to_string()
        .contains("remote folders 'old-x' and 'x' both become local 'x'"));
}

#[test]
fn folderincludes_are_checked_at_load_time() {
    let e = err(&base_with(
        "nametrans = s/^INBOX\\.//\nfolderincludes = INBOX",
    ));
    assert!(
        e.starts_with(
            "~/.config/twinbox/config:4: [Account Test]: folderincludes: remote folder 'INBOX'"
        ),
        "{e}"
    );
}

#[test]
fn pairing_applies_both_filters_and_includes() {
    let text = base_with("nametrans = s/^INBOX$/INBOX/q, s/^INBOX\\.//\nfolderfilter = !INBOX.Trash\nfolderincludes = INBOX.Hidden")
        .replace(
            "localfolders = ~/Mail",
            "localfolders = ~/Mail\nnametrans = s/^INBOX$/INBOX/q, s/^/INBOX./\nfolderfilter = !re:local-.*",
        );
    let c = parse(&text).unwrap();
    let pairs = c.accounts[0]
        .folders
        .pair(
            &names(&["INBOX", "INBOX.Sent", "INBOX.Trash", "INBOX.local-x"]),
            &names(&["INBOX", "Drafts", "local-y", "Trash"]),
        )
        .unwrap();
    let got: Vec<(&str, &str, bool, bool)> = pairs
        .iter()
        .map(|p| (p.remote.as_str(), p.local.as_str(), p.on_remote, p.on_local))
        .collect();
    assert_eq!(
        got,
        [
            ("INBOX", "INBOX", true, true),
            ("INBOX.Drafts", "Drafts", false, true),
            ("INBOX.Hidden", "Hidden", true, false),
            ("INBOX.Sent", "Sent", true, false),
        ]
    );
}
