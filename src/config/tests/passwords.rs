//! Password sources, resolved lazily.

use std::io::Write;

use super::*;

fn ctx(netrc: &[&std::path::Path]) -> PasswordContext {
    PasswordContext {
        netrc_files: netrc.iter().map(|p| p.to_path_buf()).collect(),
        allow_prompt: false,
    }
}

fn remote(text: &str) -> ImapRepository {
    let c = parse(text).unwrap();
    imap(&c, "Remote").clone()
}

#[test]
fn remotepasscmd_takes_the_first_line() {
    let r = remote(&BASE.replace(
        "remotepass = hunter2",
        "remotepasscmd = printf 'first line\\nsecond\\n'",
    ));
    assert!(matches!(&r.password, PasswordSource::Command(c) if !c.uses_shell()));
    assert_eq!(
        r.resolve_password_with(&ctx(&[])).unwrap().expose(),
        "first line"
    );
    let r = remote(&BASE.replace(
        "remotepass = hunter2",
        "remotepasscmd = printf 'a\\nb' | tail -n 1",
    ));
    assert_eq!(r.resolve_password_with(&ctx(&[])).unwrap().expose(), "b");
}

#[test]
fn failing_password_commands_name_the_option() {
    let r = remote(&BASE.replace("remotepass = hunter2", "remotepasscmd = false"));
    let e = r.resolve_password_with(&ctx(&[])).unwrap_err().to_string();
    assert!(e.starts_with("~/.config/twinbox/config:16: [Repository Remote] option 'remotepasscmd': `false` failed"), "{e}");
    let r = remote(&BASE.replace("remotepass = hunter2", "remotepasscmd = true"));
    let e = r.resolve_password_with(&ctx(&[])).unwrap_err().to_string();
    assert!(e.contains("printed no password"), "{e}");
    let r = remote(&BASE.replace("remotepass = hunter2", "remotepasscmd = /nonexistent/pw"));
    assert!(r
        .resolve_password_with(&ctx(&[]))
        .unwrap_err()
        .to_string()
        .contains("cannot run"));
}

#[test]
fn remotepassfile_takes_the_first_line() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "from-file\nignored").unwrap();
    let text = BASE.replace(
        "remotepass = hunter2",
        &format!("remotepassfile = {}", file.path().display()),
    );
    let r = remote(&text);
    assert_eq!(
        r.resolve_password_with(&ctx(&[])).unwrap().expose(),
        "from-file"
    );
    let r = remote(&BASE.replace("remotepass = hunter2", "remotepassfile = ~/nonexistent"));
    let e = r.resolve_password_with(&ctx(&[])).unwrap_err().to_string();
    assert!(
        e.contains(":16:") && e.contains("/home/t/nonexistent"),
        "{e}"
    );
}

#[test]
fn netrc_by_host_and_user() {
    let dir = tempfile::tempdir().unwrap();
    let netrc = dir.path().join("netrc");
    std::fs::write(
        &netrc,
        "machine imap.example.org login bob password bobs\nmachine imap.example.org login alice password alices\n",
    )
    .unwrap();
    let r = remote(&BASE.replace("remotepass = hunter2\n", ""));
    assert!(matches!(r.password, PasswordSource::NetrcOrPrompt));
    let missing = dir.path().join("absent");
    assert_eq!(
        r.resolve_password_with(&ctx(&[&missing, &netrc]))
            .unwrap()
            .expose(),
        "alices"
    );
    let anonymous = remote(
        &BASE
            .replace("remotepass = hunter2\n", "")
            .replace("remoteuser = alice\n", ""),
    );
    assert_eq!(anonymous.resolve_user(&ctx(&[&netrc])).unwrap(), "bob");
    assert_eq!(
        anonymous
            .resolve_password_with(&ctx(&[&netrc]))
            .unwrap()
            .expose(),
        "bobs"
    );
    let e = r
        .resolve_password_with(&ctx(&[&missing]))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("~/.config/twinbox/config:12: [Repository Remote]: no password configured"),
        "{e}"
    );
}

#[test]
fn secrets_never_show_in_debug_output() {
    let c = parse(BASE).unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("Secret(<redacted>)"));
    let s = Secret::new("hunter2");
    assert_eq!(format!("{s:?} {s}"), "Secret(<redacted>) <redacted>");
}
